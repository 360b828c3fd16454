//! `cellsymphony bench transcripts`: the transcript index and layer at scale, as the viewer runs
//! them. Builds the index of a bundle's transcripts into a fresh cache folder (time and peak
//! memory), opens it again (the cached case), then renders headless: time to the first complete
//! frame of one gene over the whole tissue (its density) and of all genes at 40x (their points),
//! frame times for a pan of each, and the memory while browsing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cs_render::{CellRenderer, ChannelTileRenderer, HeadlessTarget, create_headless_device};
use cs_xenium::TranscriptIndex;
use glam::DVec2;

use crate::bench::cells::resident_mb;
use crate::bench::replay::{PassStats, render_frame, save_png, stats};
use crate::layers::camera::{Camera, Viewport};
use crate::layers::cell_layer::CellLayer;
use crate::layers::transcript_layer::TranscriptLayer;
use crate::work::jobs::CancelToken;
use crate::work::open::load_bundle;

#[derive(Debug, Clone)]
pub struct TranscriptBenchOptions {
    pub xenium: PathBuf,
    pub frames: usize,
    pub width: u32,
    pub height: u32,
    pub prefer_cpu: bool,
    /// Where the index is built (a fresh folder under the temp dir when None; removed after).
    pub cache_dir: Option<PathBuf>,
    pub png_overview: Option<PathBuf>,
    pub png_40x: Option<PathBuf>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TranscriptBenchReport {
    pub bundle: String,
    pub transcripts: u64,
    pub genes: usize,
    pub tiles: usize,
    pub tile_um: f64,
    pub index_mb: f64,
    pub adapter: String,
    pub device_type: String,
    pub width: u32,
    pub height: u32,
    /// The bundle's cells, boundaries and counts, as the viewer opens them (before transcripts).
    pub bundle_load_s: f64,
    pub index_build_s: f64,
    /// Peak resident memory while building (the bundle already open), MB.
    pub index_build_peak_mb: Option<f64>,
    /// Opening the cached index (header and directory).
    pub index_open_s: f64,
    /// From the cached index's open to the first complete frame of one gene (its density).
    pub first_frame_one_gene_s: f64,
    /// From there to the first complete frame of all genes at 40x (their points).
    pub first_frame_40x_s: f64,
    pub one_gene: String,
    pub one_gene_transcripts: u64,
    pub whole_tissue_one_gene: TranscriptPass,
    pub pan_40x_all_genes: TranscriptPass,
    pub points_drawn_40x: usize,
    pub resident_mb_browsing: Option<f64>,
    /// Peak resident memory from the cached open to the end, MB.
    pub peak_mb_browsing: Option<f64>,
}

/// Resets the peak resident size (VmHWM) the kernel keeps for this process (Linux; no-op
/// elsewhere).
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub fn transcripts(options: &TranscriptBenchOptions) -> anyhow::Result<TranscriptBenchReport> {
    let started = Instant::now();
    let loaded = load_bundle(&options.xenium, 1, &CancelToken::default())
        .with_context(|| format!("bench transcripts: {}", options.xenium.display()))?
        .context("bench transcripts: loading was cancelled")?;
    let bundle_load_s = started.elapsed().as_secs_f64();
    let mut layer = CellLayer::new(options.xenium.clone(), loaded);
    layer.show_cells = false;
    layer.show_nuclei = false;
    let source = layer
        .bundle
        .files
        .transcripts
        .clone()
        .context("bench transcripts: the bundle has no transcripts file")?;

    let temp_cache = options.cache_dir.is_none();
    let cache_dir = options
        .cache_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("cs_bench_index_{}", std::process::id())));
    let index_path = cache_dir.join(cs_xenium::transcript_index::index_file_name(
        &source,
        &layer.bundle.files.transcript_layout,
        &layer.bundle.cells,
    )?);
    let _ = std::fs::remove_file(&index_path);
    reset_peak_memory();
    let started = Instant::now();
    let built = cs_xenium::open_or_build_index(
        &source,
        &layer.bundle.files.transcript_layout,
        &layer.bundle.cells,
        &cache_dir,
        &mut |_| true,
    )?;
    let index_build_s = started.elapsed().as_secs_f64();
    let (_, index_build_peak_mb) = resident_mb();
    drop(built);
    let index_mb = std::fs::metadata(&index_path).map_or(0.0, |m| m.len() as f64 / 1e6);

    reset_peak_memory();
    let opened = Instant::now();
    let index = Arc::new(TranscriptIndex::open(&index_path)?);
    let index_open_s = opened.elapsed().as_secs_f64();
    let mut transcripts = TranscriptLayer::new(index.clone(), 1 << 20, Arc::new(|| {}))?;

    let (adapter, device, queue) = create_headless_device(options.prefer_cpu).map_err(anyhow::Error::msg)?;
    let info = adapter.get_info();
    let target = HeadlessTarget::new(&device, options.width, options.height);
    let mut cell_renderer = CellRenderer::new(&device, target.format);
    let mut density_renderer = ChannelTileRenderer::new(&device, &queue, target.format, 64 << 20);
    let viewport = Viewport {
        size_in_points: DVec2::new(f64::from(options.width), f64::from(options.height)),
        pixels_per_point: 1.0,
    };
    let (min, max) = layer.bounds_in_world();
    let mut fit = Camera::default();
    fit.fit(min, max, &viewport);

    // One gene: the one with the most transcripts.
    let counts = transcripts.gene_counts.clone();
    let top = (0..counts.len()).max_by_key(|&g| counts[g]).unwrap_or(0);
    transcripts.gene_visible.iter_mut().for_each(|v| *v = false);
    if let Some(v) = transcripts.gene_visible.get_mut(top) {
        *v = true;
    }
    layer.transcripts = Some(transcripts);

    // One frame as the viewer draws it; true when nothing was waiting to be read.
    let mut draw = |layer: &mut CellLayer, camera: &Camera| -> anyhow::Result<Drawn> {
        let start = Instant::now();
        if let Some(t) = layer.transcripts.as_mut() {
            t.receive();
            let evicted: Vec<u64> = t.evicted.drain(..).collect();
            for id in evicted {
                cell_renderer.evict(id);
            }
        }
        let list = layer.frame(camera, &viewport, None);
        let density = layer.take_transcript_density();
        let cpu = start.elapsed();
        if let Some(density) = &density {
            density_renderer.prepare(&device, &queue, 0, density);
        }
        if let Some(list) = &list {
            cell_renderer.prepare(&device, &queue, 0, list);
        }
        render_frame(&device, &queue, &target, |pass| {
            if density.is_some() {
                density_renderer.paint(pass, 0);
            }
            if list.is_some() {
                cell_renderer.paint(pass, 0);
            }
        })?;
        let complete = layer.transcripts.as_ref().is_some_and(|t| t.waiting() == 0);
        Ok(Drawn {
            time: start.elapsed(),
            layer_time: cpu,
            complete,
        })
    };
    let first_frame_one_gene_s = until_complete(&mut draw, &mut layer, &fit)? + index_open_s;
    let frames = options.frames.max(3);
    let whole_tissue_one_gene = pass(&mut draw, &mut layer, frames, &|t| {
        let mut camera = fit;
        camera.center_in_world.x += (t - 0.5) * 0.2 * (max.x - min.x);
        camera
    })?;
    if let Some(png) = &options.png_overview {
        draw(&mut layer, &fit)?;
        save_png(
            png,
            options.width,
            options.height,
            target.read_rgba(&device, &queue).map_err(anyhow::Error::msg)?,
        )?;
    }

    // All genes (not the controls) at 40x, from the centre, panning a tile's width and more.
    if let Some(t) = layer.transcripts.as_mut() {
        t.set_visible_where(true, |c| !c.is_control());
    }
    let centre = (min + max) * 0.5;
    let at_40x = |offset_um: f64| {
        let mut camera = fit;
        camera.set_magnification(40.0, &viewport);
        camera.center_in_world = centre + DVec2::new(offset_um, 0.3 * offset_um);
        camera
    };
    let first_frame_40x_s = until_complete(&mut draw, &mut layer, &at_40x(0.0))?;
    let span_um = 2.0 * index.tile_um;
    let pan_40x_all_genes = pass(&mut draw, &mut layer, frames, &|t| at_40x(t * span_um))?;
    let points_drawn_40x = layer.transcripts.as_ref().map_or(0, TranscriptLayer::drawn_points);
    if let Some(png) = &options.png_40x {
        let camera = at_40x(0.0);
        until_complete(&mut draw, &mut layer, &camera)?;
        save_png(
            png,
            options.width,
            options.height,
            target.read_rgba(&device, &queue).map_err(anyhow::Error::msg)?,
        )?;
    }
    let (resident_mb_browsing, peak_mb_browsing) = resident_mb();
    let one_gene = index.genes.get(top).cloned().unwrap_or_default();
    let report = TranscriptBenchReport {
        bundle: options.xenium.display().to_string(),
        transcripts: index.total,
        genes: index.genes.len(),
        tiles: index.tile_count(),
        tile_um: index.tile_um,
        index_mb,
        adapter: info.name,
        device_type: format!("{:?}", info.device_type),
        width: options.width,
        height: options.height,
        bundle_load_s,
        index_build_s,
        index_build_peak_mb,
        index_open_s,
        first_frame_one_gene_s,
        first_frame_40x_s,
        one_gene,
        one_gene_transcripts: counts.get(top).copied().unwrap_or(0),
        whole_tissue_one_gene,
        pan_40x_all_genes,
        points_drawn_40x,
        resident_mb_browsing,
        peak_mb_browsing,
    };
    drop(layer);
    if temp_cache {
        let _ = std::fs::remove_dir_all(&cache_dir);
    }
    Ok(report)
}

/// A frame drawn headless.
struct Drawn {
    time: Duration,
    /// Of `time`: the layers' work on the CPU (what to draw), before upload and rendering.
    layer_time: Duration,
    /// Nothing was waiting to be read.
    complete: bool,
}

type DrawFrame<'a> = dyn FnMut(&mut CellLayer, &Camera) -> anyhow::Result<Drawn> + 'a;

/// A pass's frame times, and the median of the layers' CPU share.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TranscriptPass {
    #[serde(flatten)]
    pub frames: PassStats,
    pub layer_median_ms: f64,
}

/// `frames` frames along `camera_at(0..=1)`.
fn pass(
    draw: &mut DrawFrame<'_>,
    layer: &mut CellLayer,
    frames: usize,
    camera_at: &dyn Fn(f64) -> Camera,
) -> anyhow::Result<TranscriptPass> {
    let (mut times, mut layer_times, mut complete) = (Vec::with_capacity(frames), Vec::new(), 0);
    for i in 0..frames {
        let drawn = draw(layer, &camera_at(i as f64 / (frames - 1) as f64))?;
        times.push(drawn.time);
        layer_times.push(drawn.layer_time);
        complete += usize::from(drawn.complete);
    }
    layer_times.sort();
    Ok(TranscriptPass {
        frames: stats(times, complete),
        layer_median_ms: layer_times[layer_times.len() / 2].as_secs_f64() * 1000.0,
    })
}

/// Draws until a frame has everything it wanted; the seconds that took.
fn until_complete(draw: &mut DrawFrame<'_>, layer: &mut CellLayer, camera: &Camera) -> anyhow::Result<f64> {
    let started = Instant::now();
    loop {
        if draw(layer, camera)?.complete {
            return Ok(started.elapsed().as_secs_f64());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "bench transcripts: no complete frame in 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn format_report(r: &TranscriptBenchReport) -> String {
    let mb = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.0} MB"));
    let pass = |name: &str, p: &TranscriptPass| {
        let f = &p.frames;
        format!(
            "  {name:<26} {} frames: median {:.2} ms (layer {:.2} ms), p95 {:.2} ms, max {:.2} ms ({} complete)",
            f.frames, f.median_ms, p.layer_median_ms, f.p95_ms, f.max_ms, f.complete_frames
        )
    };
    [
        format!(
            "transcripts of {}: {} in {} features, {} tiles of {:.0} µm, index {:.0} MB",
            r.bundle, r.transcripts, r.genes, r.tiles, r.tile_um, r.index_mb
        ),
        format!(
            "  rendering on {} ({}) at {}x{}",
            r.adapter, r.device_type, r.width, r.height
        ),
        format!("  bundle load                {:.2} s", r.bundle_load_s),
        format!(
            "  index build                {:.2} s, peak {}",
            r.index_build_s,
            mb(r.index_build_peak_mb)
        ),
        format!("  cached index open          {:.3} s", r.index_open_s),
        format!(
            "  first frame, {} ({} transcripts) over the tissue: {:.3} s",
            r.one_gene, r.one_gene_transcripts, r.first_frame_one_gene_s
        ),
        format!("  first frame, all genes at 40x: {:.3} s", r.first_frame_40x_s),
        pass("whole tissue, one gene", &r.whole_tissue_one_gene),
        pass("pan at 40x, all genes", &r.pan_40x_all_genes),
        format!("  points drawn at 40x        {}", r.points_drawn_40x),
        format!(
            "  memory while browsing      {} (peak {})",
            mb(r.resident_mb_browsing),
            mb(r.peak_mb_browsing)
        ),
    ]
    .join("\n")
}
