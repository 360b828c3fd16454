//! Spatial graph building and neighbourhood enrichment on synthetic cells.
//! `cargo bench -p cs_analysis --bench nhood`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use cs_analysis::{NhoodOptions, SpatialGraph, nhood_enrichment};

/// `n` cells at tissue-like density (about one per 100 µm²) in clumps, with 12 classes that are
/// spatially patchy (so enrichment has something to find).
fn synthetic_cells(n: usize) -> (Vec<f64>, Vec<f64>, Vec<u32>) {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let side_um = (n as f64 * 100.0).sqrt();
    let (mut x, mut y, mut labels) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let (px, py) = (next() * side_um, next() * side_um);
        let patch = ((px / 250.0) as u32 * 7 + (py / 250.0) as u32 * 3) % 12;
        let label = if next() < 0.6 {
            patch
        } else {
            (next() * 12.0) as u32 % 12
        };
        x.push(px);
        y.push(py);
        labels.push(label);
    }
    (x, y, labels)
}

fn graphs(c: &mut Criterion) {
    let mut group = c.benchmark_group("graph_200k");
    group.sample_size(10);
    let (x, y, _) = synthetic_cells(200_000);
    group.bench_function("delaunay", |b| b.iter(|| black_box(SpatialGraph::delaunay(&x, &y))));
    group.bench_function("radius_30um", |b| {
        b.iter(|| black_box(SpatialGraph::radius(&x, &y, 30.0)))
    });
    group.bench_function("knn_6", |b| b.iter(|| black_box(SpatialGraph::knn(&x, &y, 6))));
    group.finish();
}

fn enrichment(c: &mut Criterion) {
    let mut group = c.benchmark_group("nhood_50k_100perms");
    group.sample_size(10);
    let (x, y, labels) = synthetic_cells(50_000);
    let options = NhoodOptions { n_perms: 100, seed: 1 };
    for (name, graph) in [
        ("delaunay", SpatialGraph::delaunay(&x, &y)),
        ("radius_30um", SpatialGraph::radius(&x, &y, 30.0)),
        ("knn_6", SpatialGraph::knn(&x, &y, 6)),
    ] {
        let Ok(graph) = graph else {
            continue;
        };
        group.bench_function(name, |b| {
            b.iter(|| black_box(nhood_enrichment(&graph, &labels, 12, None, &options)))
        });
    }
    group.finish();
}

criterion_group!(benches, graphs, enrichment);
criterion_main!(benches);
