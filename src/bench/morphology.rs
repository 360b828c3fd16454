//! `cellsymphony bench morphology`: the scripted pan/zoom of `bench replay` over a bundle's
//! morphology stains, every channel shown, with its cells drawn on top, headless, through the
//! viewer's morphology and cell layers and their renderers. A cold pass (channel tiles load in the
//! background while frames keep coming) and a warm pass over the same path.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cs_render::{CellRenderer, ChannelTileRenderer, HeadlessTarget, create_headless_device};
use glam::DVec2;

use crate::bench::replay::{PassStats, cold_and_warm_passes, format_pass, render_frame, save_png, scripted_camera};
use crate::layers::camera::{Camera, Viewport};
use crate::layers::cell_layer::CellLayer;
use crate::layers::morphology_layer::MorphologyLayer;
use crate::layers::slide_layer::GPU_TILE_BUDGET_BYTES;
use crate::work::jobs::CancelToken;
use crate::work::open::{load_bundle, open_morphology};

#[derive(Debug, Clone)]
pub struct MorphologyBenchOptions {
    pub xenium: PathBuf,
    pub frames: usize,
    pub width: u32,
    pub height: u32,
    pub prefer_cpu: bool,
    /// Save the last frame of the warm pass here.
    pub png: Option<PathBuf>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MorphologyBenchReport {
    pub bundle: String,
    pub cells: usize,
    pub channels: usize,
    pub image_width: u64,
    pub image_height: u64,
    pub levels: usize,
    pub adapter: String,
    pub device_type: String,
    pub width: u32,
    pub height: u32,
    /// Reading the bundle (cells, boundaries, counts, GPU geometry).
    pub bundle_open_s: f64,
    /// Opening the morphology images and measuring each channel's histogram.
    pub morphology_open_s: f64,
    pub cold: PassStats,
    pub warm: PassStats,
}

pub fn morphology(options: &MorphologyBenchOptions) -> anyhow::Result<MorphologyBenchReport> {
    let cancel = CancelToken::default();
    let started = Instant::now();
    let loaded = load_bundle(&options.xenium, 1, &cancel)
        .with_context(|| format!("bench morphology: {}", options.xenium.display()))?
        .context("bench morphology: loading was cancelled")?;
    let bundle_open_s = started.elapsed().as_secs_f64();
    let files = loaded.bundle.files.morphology.clone();
    let pixel_size_um = loaded.bundle.pixel_size_um();
    let started = Instant::now();
    let opened = open_morphology(&files, pixel_size_um, &cancel)?.with_context(|| {
        format!(
            "bench morphology: {} has no morphology images (synth --morphology writes them)",
            options.xenium.display()
        )
    })?;
    let morphology_open_s = started.elapsed().as_secs_f64();
    let mut stains = MorphologyLayer::new(opened, 1, Arc::new(|| {}))?;
    for channel in &mut stains.channels {
        channel.style.visible = true;
    }
    let image = stains.sources[0].metadata();
    let (image_width, image_height) = image.level0_size_px();
    let levels = image.levels.len();
    let mut cells = CellLayer::new(options.xenium.clone(), loaded);

    let (adapter, device, queue) = create_headless_device(options.prefer_cpu).map_err(anyhow::Error::msg)?;
    let info = adapter.get_info();
    let target = HeadlessTarget::new(&device, options.width, options.height);
    let mut channel_renderer = ChannelTileRenderer::new(&device, &queue, target.format, GPU_TILE_BUDGET_BYTES / 2);
    let mut cell_renderer = CellRenderer::new(&device, target.format);
    let viewport = Viewport {
        size_in_points: DVec2::new(f64::from(options.width), f64::from(options.height)),
        pixels_per_point: 1.0,
    };
    let bounds = stains.bounds_in_world();
    let mut fit = Camera::default();
    fit.fit(bounds.0, bounds.1, &viewport);

    let (cold, warm) = cold_and_warm_passes(
        options.frames,
        |i| scripted_camera(i, options.frames, &fit, &viewport, bounds),
        &mut (&mut stains, &mut cells),
        |(stains, cells), camera| {
            stains.receive_tiles();
            let channels = stains.frame(camera, &viewport);
            channel_renderer.prepare(&device, &queue, 0, &channels);
            let cell_list = cells.frame(camera, &viewport, None);
            if let Some(list) = &cell_list {
                cell_renderer.prepare(&device, &queue, 0, list);
            }
            render_frame(&device, &queue, &target, |pass| {
                channel_renderer.paint(pass, 0);
                if cell_list.is_some() {
                    cell_renderer.paint(pass, 0);
                }
            })?;
            let frame = stains.last_frame;
            Ok(frame.ready_tiles == frame.visible_tiles)
        },
        |(stains, _)| {
            stains.receive_tiles();
            stains.is_loading()
        },
        Duration::from_secs(120),
    )?;
    if let Some(png) = &options.png {
        let rgba = target.read_rgba(&device, &queue).map_err(anyhow::Error::msg)?;
        save_png(png, options.width, options.height, rgba)?;
    }
    Ok(MorphologyBenchReport {
        bundle: options.xenium.display().to_string(),
        cells: cells.len(),
        channels: stains.channels.len(),
        image_width,
        image_height,
        levels,
        adapter: info.name,
        device_type: format!("{:?}", info.device_type),
        width: options.width,
        height: options.height,
        bundle_open_s,
        morphology_open_s,
        cold,
        warm,
    })
}

pub fn format_report(report: &MorphologyBenchReport) -> String {
    format!(
        "morphology replay of {} ({} cells; {} channels of {}x{} px, {} levels) at {}x{} on {} ({})\n  \
         bundle open {:.1} s, morphology open {:.1} s\n{}\n{}",
        report.bundle,
        report.cells,
        report.channels,
        report.image_width,
        report.image_height,
        report.levels,
        report.width,
        report.height,
        report.adapter,
        report.device_type,
        report.bundle_open_s,
        report.morphology_open_s,
        format_pass("cold", &report.cold),
        format_pass("warm", &report.warm)
    )
}
