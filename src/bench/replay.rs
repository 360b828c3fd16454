//! `cellsymphony bench replay`: a scripted pan/zoom session rendered headless at a chosen size
//! (4K by default) through the same slide layer and tile renderer as the viewer. Reports the
//! median and 95th-percentile frame time (CPU planning + upload + GPU draw, waited for).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cs_render::{HeadlessTarget, TileRenderer, create_headless_device};
use cs_slide::open_slide;
use glam::DVec2;

use crate::layers::camera::{Camera, Viewport};
use crate::layers::slide_layer::SlideLayer;

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub slide: PathBuf,
    pub frames: usize,
    pub width: u32,
    pub height: u32,
    pub prefer_cpu: bool,
    /// Save the last frame of the warm pass here.
    pub png: Option<PathBuf>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PassStats {
    pub frames: usize,
    pub median_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
    /// Frames whose target-level tiles were all ready.
    pub complete_frames: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplayReport {
    pub slide: String,
    pub adapter: String,
    pub device_type: String,
    pub backend: String,
    pub width: u32,
    pub height: u32,
    /// First pass: tiles load in the background while frames keep coming.
    pub cold: PassStats,
    /// Second pass over the same path: tiles come from the caches.
    pub warm: PassStats,
    pub tiles_uploaded_mb: f64,
}

/// The camera for frame `i` of `n`: zoom from fit to 40x at the centre, pan across at 20x, zoom out.
pub(crate) fn scripted_camera(i: usize, n: usize, fit: &Camera, viewport: &Viewport, bounds: (DVec2, DVec2)) -> Camera {
    let t = i as f64 / n.max(1) as f64;
    let mut camera = *fit;
    let fit_magnification = fit.magnification(viewport);
    let (min, max) = bounds;
    let center = (min + max) * 0.5;
    if t < 1.0 / 3.0 {
        let s = t * 3.0;
        let magnification = fit_magnification * (40.0 / fit_magnification).powf(s);
        camera.set_magnification(magnification, viewport);
        camera.center_in_world = center;
    } else if t < 2.0 / 3.0 {
        let s = (t - 1.0 / 3.0) * 3.0;
        camera.set_magnification(20.0, viewport);
        // Diagonal pan across the middle 60% of the slide.
        let from = min + (max - min) * 0.2;
        let to = min + (max - min) * 0.8;
        camera.center_in_world = from + (to - from) * s;
    } else {
        let s = (t - 2.0 / 3.0) * 3.0;
        let magnification = 20.0 * (fit_magnification / 20.0).powf(s);
        camera.set_magnification(magnification, viewport);
        camera.center_in_world = center;
    }
    camera
}

pub fn stats(mut times: Vec<Duration>, complete_frames: usize) -> PassStats {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| {
        times
            .get(((times.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    PassStats {
        frames: times.len(),
        median_ms: ms(at(0.5)),
        p95_ms: ms(at(0.95)),
        max_ms: ms(times.last().copied().unwrap_or_default()),
        complete_frames,
    }
}

pub fn replay(options: &ReplayOptions) -> anyhow::Result<ReplayReport> {
    let source = open_slide(&options.slide).context("bench replay")?;
    let (adapter, device, queue) = create_headless_device(options.prefer_cpu).map_err(anyhow::Error::msg)?;
    let info = adapter.get_info();
    let target = HeadlessTarget::new(&device, options.width, options.height);
    let mut renderer = TileRenderer::new(
        &device,
        target.format,
        crate::layers::slide_layer::GPU_TILE_BUDGET_BYTES,
    );
    let mut layer = SlideLayer::new(source, 1, Arc::new(|| {}))?;
    let viewport = Viewport {
        size_in_points: DVec2::new(f64::from(options.width), f64::from(options.height)),
        pixels_per_point: 1.0,
    };
    let bounds = layer.bounds_in_world();
    let mut fit = Camera::default();
    fit.fit(bounds.0, bounds.1, &viewport);

    let (cold, warm) = cold_and_warm_passes(
        options.frames,
        |i| scripted_camera(i, options.frames, &fit, &viewport, bounds),
        &mut layer,
        |layer, camera| {
            layer.receive_tiles();
            let list = layer.frame(camera, &viewport);
            renderer.prepare(&device, &queue, 0, &list);
            render_frame(&device, &queue, &target, |pass| renderer.paint(pass, 0))?;
            let frame = layer.last_frame;
            Ok(frame.ready_tiles == frame.visible_tiles)
        },
        |layer| {
            layer.receive_tiles();
            layer.is_loading()
        },
        Duration::from_secs(60),
    )?;
    if let Some(png) = &options.png {
        let rgba = target.read_rgba(&device, &queue).map_err(anyhow::Error::msg)?;
        save_png(png, options.width, options.height, rgba)?;
    }
    Ok(ReplayReport {
        slide: options.slide.display().to_string(),
        adapter: info.name,
        device_type: format!("{:?}", info.device_type),
        backend: format!("{:?}", info.backend),
        width: options.width,
        height: options.height,
        cold,
        warm,
        tiles_uploaded_mb: renderer.uploaded_bytes_total() as f64 / 1e6,
    })
}

/// The scripted path drawn twice: a cold pass while tiles load in the background, then, once the
/// loaders are done (`still_loading` false, or `settle_limit` passed) so that the caches hold what
/// the cold pass asked for, a warm pass. `draw` renders one frame of `scene` (waited for) and says
/// whether it was fully sharp.
pub(crate) fn cold_and_warm_passes<S>(
    frames: usize,
    camera_at: impl Fn(usize) -> Camera,
    scene: &mut S,
    mut draw: impl FnMut(&mut S, &Camera) -> anyhow::Result<bool>,
    mut still_loading: impl FnMut(&mut S) -> bool,
    settle_limit: Duration,
) -> anyhow::Result<(PassStats, PassStats)> {
    let mut passes = Vec::with_capacity(2);
    for _pass in 0..2 {
        let mut times = Vec::with_capacity(frames);
        let mut complete = 0;
        for i in 0..frames {
            let camera = camera_at(i);
            let start = Instant::now();
            if draw(scene, &camera)? {
                complete += 1;
            }
            times.push(start.elapsed());
        }
        passes.push(stats(times, complete));
        let deadline = Instant::now() + settle_limit;
        while still_loading(scene) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let warm = passes.pop().context("no warm pass")?;
    let cold = passes.pop().context("no cold pass")?;
    Ok((cold, warm))
}

/// One pass of a replay report, as a line.
pub(crate) fn format_pass(name: &str, p: &PassStats) -> String {
    format!(
        "  {name:<5} {} frames: median {:.2} ms, p95 {:.2} ms, max {:.2} ms, {} frames fully sharp",
        p.frames, p.median_ms, p.p95_ms, p.max_ms, p.complete_frames
    )
}

/// Clears `target` to the viewer's background, runs `paint` in one render pass, submits, and waits
/// for the GPU, so that the caller's timer covers the whole frame.
pub fn render_frame(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    target: &HeadlessTarget,
    paint: impl FnOnce(&mut wgpu::RenderPass<'_>),
) -> anyhow::Result<()> {
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("bench") });
    {
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("bench"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &target.view,
                resolve_target: None,
                depth_slice: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color {
                        r: 0.16,
                        g: 0.16,
                        b: 0.16,
                        a: 1.0,
                    }),
                    store: wgpu::StoreOp::Store,
                },
            })],
            ..Default::default()
        });
        paint(&mut pass);
    }
    queue.submit([encoder.finish()]);
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| anyhow::anyhow!("GPU did not finish a frame: {e}"))?;
    Ok(())
}

pub fn save_png(path: &Path, width: u32, height: u32, rgba: Vec<u8>) -> anyhow::Result<()> {
    let image = image::RgbaImage::from_raw(width, height, rgba).context("readback has the wrong size")?;
    image
        .save(path)
        .with_context(|| format!("cannot write {}", path.display()))
}

pub fn format_report(report: &ReplayReport) -> String {
    format!(
        "replay of {} at {}x{} on {} ({}, {})\n{}\n{}\n  uploaded {:.1} MB of tiles",
        report.slide,
        report.width,
        report.height,
        report.adapter,
        report.device_type,
        report.backend,
        format_pass("cold", &report.cold),
        format_pass("warm", &report.warm),
        report.tiles_uploaded_mb
    )
}
