//! Tile read+decode throughput on the shared slides (the same CMU pixels through OpenSlide as SVS
//! and pyramid TIFF, and through the TIFF reader as 10x-style OME-TIFF, 16-bit DAPI too), and
//! frame planning for a full-screen 4K view.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly by design

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use cs_slide::plan_tiles;
use cs_slide::{TileKey, TilePyramid, ViewInSlide, open_slide};
use std::collections::HashSet;

fn tile_read(c: &mut Criterion) {
    let mut group = c.benchmark_group("tile_read_decode_256px");
    for name in [
        "wsi/CMU-1-Small-Region.svs",
        "wsi/CMU-1-Small-Region.pyramid.tiff",
        "wsi/CMU-1-Small-Region.ome.tif",
    ] {
        let Some(path) = cs_testdata::shared_file(name) else {
            continue;
        };
        let Ok(slide) = open_slide(&path) else {
            continue;
        };
        let pyramid = TilePyramid::new(slide.metadata().levels.clone(), 256);
        let (cols, rows) = pyramid.grid(0);
        let keys: Vec<TileKey> = (0..rows)
            .flat_map(|row| (0..cols).map(move |col| TileKey { level: 0, col, row }))
            .collect();
        group.throughput(Throughput::Elements(keys.len() as u64));
        group.sample_size(10);
        let label = format!("{} ({})", name.trim_start_matches("wsi/"), slide.metadata().backend);
        group.bench_function(label, |b| {
            b.iter(|| {
                for key in &keys {
                    let (pos, level, w, h) = pyramid.read_args(*key);
                    let tile = slide.read_region(pos, level, w, h);
                    std::hint::black_box(tile.ok());
                }
            })
        });
    }
    group.finish();
}

fn plan_4k(c: &mut Criterion) {
    // A 100k x 80k slide with 9 levels (downsample 2 each), 512 px tiles, viewed full screen at 4K.
    let levels = (0..9)
        .map(|i| {
            let d = f64::from(1u32 << i);
            cs_slide::LevelInfo {
                width_px: (100_000.0 / d) as u64,
                height_px: (80_000.0 / d) as u64,
                downsample: d,
            }
        })
        .collect();
    let pyramid = TilePyramid::new(levels, 512);
    let view = ViewInSlide::from_rect([40_000.0, 30_000.0], [40_000.0 + 3840.0 * 1.5, 30_000.0 + 2160.0 * 1.5]);
    let ready: HashSet<TileKey> = pyramid.visible_tiles(0, &view).into_iter().step_by(2).collect();
    let mut group = c.benchmark_group("frame_plan");
    group.bench_function("4k_viewport_half_loaded", |b| {
        b.iter(|| {
            let plan = plan_tiles(&pyramid, &view, 1.5, |k| ready.contains(k) || k.level == 8, |_| false);
            std::hint::black_box(plan)
        })
    });
    let rotated = ViewInSlide {
        corners_in_slide_px: [
            [40_000.0, 30_000.0],
            [44_000.0, 33_000.0],
            [41_000.0, 37_000.0],
            [37_000.0, 34_000.0],
        ],
    };
    group.bench_function("4k_viewport_rotated_cold", |b| {
        b.iter(|| std::hint::black_box(plan_tiles(&pyramid, &rotated, 1.5, |_| false, |_| false)))
    });
    group.finish();
}

criterion_group!(benches, tile_read, plan_4k);
criterion_main!(benches);
