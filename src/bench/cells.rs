//! `cellsymphony bench cells`: loads a Xenium bundle as the viewer does (timed), then renders the
//! cell overlay headless through the same [`CellLayer`] and [`CellRenderer`]: the whole tissue
//! zoomed out, a pan at a zoom where cells are markers, and a pan at 40x where they are polygons.
//! Reports median and p95 frame times, the recolour cost, and memory.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cs_render::{CellRenderer, HeadlessTarget, create_headless_device};
use glam::DVec2;

use crate::bench::replay::{PassStats, render_frame, save_png, stats};
use crate::layers::camera::{Camera, Viewport};
use crate::layers::cell_layer::{CellLayer, ColourBy};
use crate::work::jobs::CancelToken;
use crate::work::open::load_bundle;

#[derive(Debug, Clone)]
pub struct CellBenchOptions {
    pub xenium: PathBuf,
    pub frames: usize,
    pub width: u32,
    pub height: u32,
    pub prefer_cpu: bool,
    pub png: Option<PathBuf>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CellBenchReport {
    pub bundle: String,
    pub cells: usize,
    pub vertices_cells: usize,
    pub vertices_nuclei: usize,
    pub adapter: String,
    pub device_type: String,
    pub width: u32,
    pub height: u32,
    /// Reading the bundle (cells, both boundary sets, counts, clusters) plus GPU layout and index.
    pub load_s: f64,
    /// Of that: cells.parquet and both boundary parquets alone, read one after the other.
    pub cells_and_boundaries_s: f64,
    /// Of that: the count matrix alone.
    pub counts_s: Option<f64>,
    pub resident_mb_after_load: Option<f64>,
    pub peak_resident_mb: Option<f64>,
    pub gpu_geometry_mb: f64,
    /// First frame: uploads the geometry.
    pub first_frame_ms: f64,
    /// The whole tissue in view, panning by a fifth of its width.
    pub overview: PassStats,
    pub pan_markers: PassStats,
    pub pan_polygons_40x: PassStats,
    /// CPU: per-cell palette indices for a new colouring (median of 9).
    pub recolour_compute_ms: f64,
    /// The frame right after a recolour (uploads one u32 per cell), median of 9.
    pub recolour_frame_ms: f64,
}

/// VmRSS and VmHWM from /proc/self/status, in MB (Linux only).
pub fn resident_mb() -> (Option<f64>, Option<f64>) {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return (None, None);
    };
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Reads the parts one by one (for the breakdown); the bundle load itself reads them in parallel.
fn time_parts(dir: &std::path::Path) -> anyhow::Result<(f64, Option<f64>)> {
    let files = cs_xenium::BundleFiles::find(dir);
    let started = Instant::now();
    let cells = match &files.cells {
        Some(path) => Some(cs_xenium::CellTable::read(path)?),
        None => None,
    };
    for path in [&files.cell_boundaries, &files.nucleus_boundaries]
        .into_iter()
        .flatten()
    {
        cs_xenium::read_boundaries(path)?;
    }
    let cells_and_boundaries_s = started.elapsed().as_secs_f64();
    let counts_s = match (&files.counts, &cells) {
        (Some(path), Some(cells)) => {
            let started = Instant::now();
            cs_xenium::read_counts(path, cells)?;
            Some(started.elapsed().as_secs_f64())
        }
        _ => None,
    };
    Ok((cells_and_boundaries_s, counts_s))
}

pub fn cells(options: &CellBenchOptions) -> anyhow::Result<CellBenchReport> {
    let (cells_and_boundaries_s, counts_s) = time_parts(&options.xenium)?;
    let started = Instant::now();
    let loaded = load_bundle(&options.xenium, 1, &CancelToken::default())
        .with_context(|| format!("bench cells: {}", options.xenium.display()))?
        .context("bench cells: loading was cancelled")?;
    let load_s = started.elapsed().as_secs_f64();
    let (resident_mb_after_load, _) = resident_mb();
    let vertices_cells = loaded
        .bundle
        .cell_boundaries
        .as_ref()
        .map_or(0, |p| p.vertices_um.len());
    let vertices_nuclei = loaded
        .bundle
        .nucleus_boundaries
        .as_ref()
        .map_or(0, |p| p.vertices_um.len());
    let gpu_geometry_mb = loaded.geometry.gpu_bytes() as f64 / 1e6;
    let mut layer = CellLayer::new(options.xenium.clone(), loaded);

    let (adapter, device, queue) = create_headless_device(options.prefer_cpu).map_err(anyhow::Error::msg)?;
    let info = adapter.get_info();
    let target = HeadlessTarget::new(&device, options.width, options.height);
    let mut renderer = CellRenderer::new(&device, target.format);
    let viewport = Viewport {
        size_in_points: DVec2::new(f64::from(options.width), f64::from(options.height)),
        pixels_per_point: 1.0,
    };
    let (min, max) = layer.bounds_in_world();
    let mut fit = Camera::default();
    fit.fit(min, max, &viewport);

    let mut draw = |layer: &mut CellLayer, camera: &Camera| -> anyhow::Result<Duration> {
        let start = Instant::now();
        if let Some(list) = layer.frame(camera, &viewport, None) {
            renderer.prepare(&device, &queue, 0, &list);
        }
        render_frame(&device, &queue, &target, |pass| renderer.paint(pass, 0))?;
        Ok(start.elapsed())
    };
    let first_frame_ms = draw(&mut layer, &fit)?.as_secs_f64() * 1000.0;

    let frames = options.frames.max(3);
    let mut pass = |layer: &mut CellLayer, camera_at: &dyn Fn(f64) -> Camera| -> anyhow::Result<PassStats> {
        let mut times = Vec::with_capacity(frames);
        for i in 0..frames {
            times.push(draw(layer, &camera_at(i as f64 / (frames - 1) as f64))?);
        }
        Ok(stats(times, frames))
    };
    // Zoomed out to the whole tissue, panning by a fifth of it.
    let overview = pass(&mut layer, &|t| {
        let mut camera = fit;
        camera.center_in_world.x += (t - 0.5) * 0.2 * (max.x - min.x);
        camera
    })?;
    // Markers: 4x the fit zoom (still below the polygon threshold for typical cells), panning.
    let pan_at = |magnification: f64, t: f64| {
        let mut camera = fit;
        camera.set_magnification(magnification, &viewport);
        let from = min + (max - min) * 0.2;
        let to = min + (max - min) * 0.8;
        camera.center_in_world = from + (to - from) * t;
        camera
    };
    let markers_zoom = (fit.magnification(&viewport) * 4.0).min(5.0);
    let pan_markers = pass(&mut layer, &|t| pan_at(markers_zoom, t))?;
    let pan_polygons_40x = pass(&mut layer, &|t| pan_at(40.0, t))?;
    if let Some(png) = &options.png {
        draw(&mut layer, &fit)?;
        let rgba = target.read_rgba(&device, &queue).map_err(anyhow::Error::msg)?;
        save_png(png, options.width, options.height, rgba)?;
    }

    // Recolour: alternate between the categorical columns (or a numeric one) and time the work.
    let mut colourings: Vec<ColourBy> = layer
        .bundle
        .cells
        .categorical
        .iter()
        .map(|(name, _)| ColourBy::Category(name.clone()))
        .collect();
    if let Some((name, _)) = layer.bundle.cells.numeric.first() {
        colourings.push(ColourBy::Numeric(name.clone()));
    }
    colourings.push(ColourBy::Uniform);
    let (mut compute, mut frame_after) = (Vec::new(), Vec::new());
    for i in 0..9 {
        layer.set_colour_by(colourings[i % colourings.len()].clone());
        let start = Instant::now();
        layer.refresh_styles();
        compute.push(start.elapsed().as_secs_f64() * 1000.0);
        frame_after.push(draw(&mut layer, &fit)?.as_secs_f64() * 1000.0);
    }
    let (_, peak_resident_mb) = resident_mb();
    Ok(CellBenchReport {
        bundle: options.xenium.display().to_string(),
        cells: layer.len(),
        vertices_cells,
        vertices_nuclei,
        adapter: info.name,
        device_type: format!("{:?}", info.device_type),
        width: options.width,
        height: options.height,
        load_s,
        cells_and_boundaries_s,
        counts_s,
        resident_mb_after_load,
        peak_resident_mb,
        gpu_geometry_mb,
        first_frame_ms,
        overview,
        pan_markers,
        pan_polygons_40x,
        recolour_compute_ms: median(compute),
        recolour_frame_ms: median(frame_after),
    })
}

pub fn format_report(r: &CellBenchReport) -> String {
    let pass = |name: &str, p: &PassStats| {
        format!(
            "  {name:<20} {} frames: median {:.2} ms, p95 {:.2} ms, max {:.2} ms",
            p.frames, p.median_ms, p.p95_ms, p.max_ms
        )
    };
    let mb = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.0} MB"));
    format!(
        "{} cells ({} cell + {} nucleus vertices) from {}\n  load {:.2} s (parts one by one: cells + both boundary sets {:.2} s, count matrix {}); \
         resident {} after load, peak {}; GPU geometry {:.0} MB\n\
         rendering at {}x{} on {} ({})\n  first frame (upload) {:.1} ms\n{}\n{}\n{}\n  recolour: {:.2} ms to compute, next frame {:.2} ms",
        r.cells,
        r.vertices_cells,
        r.vertices_nuclei,
        r.bundle,
        r.load_s,
        r.cells_and_boundaries_s,
        r.counts_s.map_or("none".to_owned(), |s| format!("{s:.2} s")),
        mb(r.resident_mb_after_load),
        mb(r.peak_resident_mb),
        r.gpu_geometry_mb,
        r.width,
        r.height,
        r.adapter,
        r.device_type,
        r.first_frame_ms,
        pass("pan, whole tissue", &r.overview),
        pass("pan (markers)", &r.pan_markers),
        pass("pan 40x (polygons)", &r.pan_polygons_40x),
        r.recolour_compute_ms,
        r.recolour_frame_ms
    )
}
