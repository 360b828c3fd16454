//! Selecting cells: a 1,000-vertex lasso over a million cells (target: 20 ms or less), a
//! rectangle, a brush stroke, and the area of the lasso's region.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benches fail loudly by design

use criterion::{Criterion, criterion_group, criterion_main};
use cs_analysis::{Combine, GridIndex, Shape, Step, cells_in_shape, cells_in_steps, region_area_um2};

/// A million cells scattered over 10 x 10 mm (about tissue density), from a fixed seed.
fn million_cells() -> (Vec<f64>, Vec<f64>) {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..1_000_000).map(|_| (next() * 10_000.0, next() * 10_000.0)).unzip()
}

/// A wobbly freehand loop of `n` vertices, about 4 mm across, crossing itself once.
fn lasso(n: usize) -> Vec<[f32; 2]> {
    (0..n)
        .map(|k| {
            let t = k as f32 / n as f32 * std::f32::consts::TAU;
            let r = 2000.0 + 300.0 * (9.0 * t).sin();
            [
                5000.0 + r * t.cos() + 400.0 * (2.0 * t).cos(),
                5000.0 + r * (2.0 * t).sin() * 0.8,
            ]
        })
        .collect()
}

fn selection(c: &mut Criterion) {
    let (x, y) = million_cells();
    let index = GridIndex::build(&x, &y);
    let n = x.len();
    let lasso_shape = Shape::Polygon(lasso(1000));
    let selected = cells_in_shape(&index, n, &lasso_shape).count();
    eprintln!("the lasso holds {selected} of {n} cells");
    c.bench_function("lasso 1000 vertices over 1M cells", |b| {
        b.iter(|| cells_in_shape(&index, n, &lasso_shape).count())
    });
    let rectangle = Shape::Polygon(vec![
        [1000.0, 1000.0],
        [6000.0, 1000.0],
        [6000.0, 6000.0],
        [1000.0, 6000.0],
    ]);
    c.bench_function("rectangle 5 x 5 mm over 1M cells", |b| {
        b.iter(|| cells_in_shape(&index, n, &rectangle).count())
    });
    let brush = Shape::Brush {
        centers_um: (0..400)
            .map(|k| [2000.0 + k as f32 * 10.0, 5000.0 + 500.0 * (k as f32 / 40.0).sin()])
            .collect(),
        radius_um: 60.0,
    };
    c.bench_function("brush stroke 400 circles over 1M cells", |b| {
        b.iter(|| cells_in_shape(&index, n, &brush).count())
    });
    let steps = [
        Step {
            combine: Combine::Replace,
            shape: lasso_shape.clone(),
        },
        Step {
            combine: Combine::Subtract,
            shape: rectangle.clone(),
        },
    ];
    c.bench_function("lasso minus rectangle over 1M cells", |b| {
        b.iter(|| cells_in_steps(&index, n, &steps).count())
    });
    c.bench_function("area of a 1000-vertex lasso region", |b| {
        b.iter(|| region_area_um2(&steps[..1]))
    });
    c.bench_function("spatial index of 1M cells", |b| {
        b.iter(|| GridIndex::build(&x, &y).len())
    });
}

criterion_group!(benches, selection);
criterion_main!(benches);
