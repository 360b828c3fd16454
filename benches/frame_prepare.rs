//! Frame preparation for a full-screen 4K viewport: plan + draw list (`SlideLayer::frame`) on a
//! 100k x 80k px, 9-level slide whose visible tiles are all cached, at 20x and while zoomed out.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benches fail loudly by design

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cellsymphony::layers::camera::{Camera, Viewport};
use cellsymphony::layers::slide_layer::SlideLayer;
use criterion::{Criterion, criterion_group, criterion_main};
use cs_slide::{LevelInfo, RgbaImage, SlideError, SlideMetadata, SlideSource};
use glam::DVec2;

/// An in-memory slide: every read returns a flat tile at once.
struct FlatSlide {
    path: PathBuf,
    meta: SlideMetadata,
}

impl SlideSource for FlatSlide {
    fn path(&self) -> &Path {
        &self.path
    }
    fn metadata(&self) -> &SlideMetadata {
        &self.meta
    }
    fn read_region(&self, _pos: (u64, u64), _level: usize, width: u32, height: u32) -> Result<RgbaImage, SlideError> {
        Ok(RgbaImage {
            width,
            height,
            pixels: vec![200; width as usize * height as usize * 4],
        })
    }
    fn read_associated_image(&self, name: &str) -> Result<RgbaImage, SlideError> {
        Err(SlideError::NoSuchAssociatedImage {
            path: self.path.clone(),
            name: name.to_owned(),
        })
    }
}

fn big_slide() -> FlatSlide {
    let levels = (0..9)
        .map(|i| {
            let d = f64::from(1u32 << i);
            LevelInfo {
                width_px: (100_000.0 / d) as u64,
                height_px: (80_000.0 / d) as u64,
                downsample: d,
            }
        })
        .collect();
    FlatSlide {
        path: PathBuf::from("flat.svs"),
        meta: SlideMetadata {
            vendor: "synthetic".into(),
            levels,
            mpp_x: Some(0.25),
            mpp_y: Some(0.25),
            objective_power: Some(40.0),
            properties: Default::default(),
            associated_images: vec![],
            ..Default::default()
        },
    }
}

fn warm(layer: &mut SlideLayer, camera: &Camera, viewport: &Viewport) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        layer.receive_tiles();
        let _ = layer.frame(camera, viewport);
        let f = layer.last_frame;
        if f.ready_tiles == f.visible_tiles && !layer.is_loading() {
            break;
        }
        assert!(Instant::now() < deadline, "tiles did not load");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn frame_prepare(c: &mut Criterion) {
    let viewport = Viewport {
        size_in_points: DVec2::new(3840.0, 2160.0),
        pixels_per_point: 1.0,
    };
    let mut layer = SlideLayer::new(Arc::new(big_slide()), 1, Arc::new(|| {})).unwrap();
    let mut group = c.benchmark_group("frame_prepare_4k");
    for (name, magnification) in [("20x", 20.0), ("2x", 2.0)] {
        let mut camera = Camera {
            center_in_world: DVec2::new(12_500.0, 10_000.0),
            points_per_um: 1.0,
        };
        camera.set_magnification(magnification, &viewport);
        warm(&mut layer, &camera, &viewport);
        group.bench_function(name, |b| {
            b.iter(|| {
                layer.receive_tiles();
                std::hint::black_box(layer.frame(&camera, &viewport))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, frame_prepare);
criterion_main!(benches);
