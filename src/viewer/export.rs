//! The view as a PNG at a chosen resolution, and a tour as PNGs with an HTML index. The slide
//! tiles and the cells are rendered offscreen by the viewer's own renderers at the export size
//! (the tiles that resolution needs are loaded first); the selections, annotations, scale bar and
//! a legend are drawn on top by egui into the same image, and the pixels read back. The shell
//! steps an export once per frame and writes each PNG (and the index) as an `export` job.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cs_render::{CellRenderer, ChannelTileRenderer, HeadlessTarget, TileRenderer};
use eframe::egui_wgpu;
use egui::{Pos2, Rect, Vec2};
use glam::DVec2;

use crate::document::annotations::Annotations;
use crate::document::selections::Selections;
use crate::layers::camera::{Camera, Viewport};
use crate::layers::cell_layer::CellLayer;
use crate::layers::morphology_layer::MorphologyLayer;
use crate::layers::slide_layer::SlideLayer;
use crate::util::format::LengthUnits;
use crate::viewer::overlays::{annotations_overlay_ui, legend_ui, scale_bar_ui, selections_overlay_ui};
use crate::viewer::paint::TranscriptDensityRenderer;
use crate::viewer::tools::{PaintContext, Toolbox};

/// The renderers' draw lists for exports are kept under this view id (the viewer uses its own).
const EXPORT_FRAME_ID: cs_render::FrameId = 0xE5_0127;
/// Tiles the export needs are waited for while they keep arriving, at most this long without a
/// new one (then coarser tiles stand in).
const TILE_STALL: Duration = Duration::from_secs(10);
/// Resolutions offered: times the viewer's size on screen.
pub const SCALES: [u32; 3] = [1, 2, 4];

/// One image to render: the view (in the viewer's points) and where it goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Shot {
    pub path: PathBuf,
    pub camera: Camera,
    /// For the tour's index: the bookmark's name and caption.
    pub title: String,
    pub caption: String,
}

/// An export in progress: its shots, taken one after another.
pub struct ViewExport {
    pub shots: Vec<Shot>,
    pub next: usize,
    /// Times the on-screen size.
    pub scale: u32,
    pub legend: bool,
    /// The viewer's size in points when the export started (every shot has it).
    pub viewport: Viewport,
    /// Write `index.html` here once every shot is written (a tour).
    pub index: Option<PathBuf>,
    /// When a tile of the current shot last arrived, and how many were ready then.
    pub progress: Option<(Instant, usize)>,
    /// The current shot's PNG is being written (the next shot waits for it).
    pub writing: bool,
    /// The slide's RAM tile budget before the export raised it to hold a whole shot.
    pub ram_budget_before: Option<usize>,
}

impl ViewExport {
    /// The size in pixels of the images.
    pub fn size_px(&self) -> [u32; 2] {
        size_px(&self.viewport, self.scale)
    }
}

/// The size in pixels of an image `scale` times the size of `viewport`.
pub fn size_px(viewport: &Viewport, scale: u32) -> [u32; 2] {
    let px = viewport.size_in_points * viewport.pixels_per_point * f64::from(scale);
    [px.x.round().max(1.0) as u32, px.y.round().max(1.0) as u32]
}

/// A file name for a bookmark: its number and a slug of its name.
pub fn shot_file_name(i: usize, name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    format!("{:02}-{}.png", i + 1, if slug.is_empty() { "view" } else { &slug })
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The tour's index page: every bookmark's name, caption and image, in order.
pub fn tour_index_html(title: &str, shots: &[Shot]) -> String {
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\
         body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;background:#222;color:#eee}}\
         img{{max-width:100%;border:1px solid #555}}section{{margin-bottom:3em}}p{{font-size:1.2em}}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        html_escape(title),
        html_escape(title)
    );
    for (i, shot) in shots.iter().enumerate() {
        let file = shot
            .path
            .file_name()
            .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
        html += &format!(
            "<section>\n<h2>{}. {}</h2>\n<p>{}</p>\n<img src=\"{}\" alt=\"{}\">\n</section>\n",
            i + 1,
            html_escape(&shot.title),
            html_escape(&shot.caption),
            html_escape(&file),
            html_escape(&shot.title)
        );
    }
    html + "</body>\n</html>\n"
}

/// What a shot is rendered from: the layers (their draw lists change as they are drawn) and what
/// is drawn over them.
pub struct ShotLayers<'a> {
    pub slide: Option<&'a mut SlideLayer>,
    pub morphology: Option<&'a mut MorphologyLayer>,
    pub cells: Option<&'a mut CellLayer>,
    pub selections: &'a Selections,
    pub annotations: &'a Annotations,
    pub tools: &'a Toolbox,
    pub has_physical_scale: bool,
    pub units: LengthUnits,
}

/// Where the current shot stands after a step.
pub enum ShotStep {
    /// Its tiles are still arriving: step again at the next frame.
    WaitingForTiles,
    /// Rendered: the RGBA pixels, `width` x `height`.
    Rendered { pixels: Vec<u8>, width: u32, height: u32 },
    /// It cannot be rendered (the message says why).
    Failed(String),
}

/// Frees what the renderers keep for exports (called once an export has ended).
pub fn forget_export_frames(render_state: &egui_wgpu::RenderState) {
    let mut renderer = render_state.renderer.write();
    if let Some(tiles) = renderer.callback_resources.get_mut::<TileRenderer>() {
        tiles.forget_frame(EXPORT_FRAME_ID);
    }
    if let Some(channels) = renderer.callback_resources.get_mut::<ChannelTileRenderer>() {
        channels.forget_frame(EXPORT_FRAME_ID);
    }
    if let Some(densities) = renderer.callback_resources.get_mut::<TranscriptDensityRenderer>() {
        densities.0.forget_frame(EXPORT_FRAME_ID);
    }
    if let Some(cells) = renderer.callback_resources.get_mut::<CellRenderer>() {
        cells.forget_view(EXPORT_FRAME_ID);
    }
}

/// Renders the current shot of `export` once the tiles it needs have arrived (or stopped
/// arriving): the layers by the viewer's renderers, then the overlays, read back as RGBA.
pub fn render_current_shot(
    render_state: &egui_wgpu::RenderState,
    export: &mut ViewExport,
    layers: ShotLayers<'_>,
) -> ShotStep {
    let [width, height] = export.size_px();
    let limits = render_state.device.limits();
    let max_side = limits.max_texture_dimension_2d;
    let readback_bytes =
        u64::from(width * 4).next_multiple_of(u64::from(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT)) * u64::from(height);
    if width > max_side || height > max_side || readback_bytes > limits.max_buffer_size {
        return ShotStep::Failed(format!(
            "{width} x {height} px is larger than this GPU can render ({max_side} px a side): choose a smaller resolution."
        ));
    }
    let shot = export.shots[export.next].clone();
    // The export camera: the shot's world box at the export's pixel size, one point a pixel.
    let export_viewport = Viewport {
        size_in_points: DVec2::new(f64::from(width), f64::from(height)),
        pixels_per_point: 1.0,
    };
    let pixels_per_viewer_point = export.viewport.pixels_per_point * f64::from(export.scale);
    let export_camera = Camera {
        center_in_world: shot.camera.center_in_world,
        points_per_um: shot.camera.points_per_um * pixels_per_viewer_point,
    };
    let ShotLayers {
        mut slide,
        morphology,
        mut cells,
        selections,
        annotations,
        tools,
        has_physical_scale,
        units,
    } = layers;
    let tile_list = slide.as_mut().map(|s| s.frame(&export_camera, &export_viewport));
    let morphology = morphology.filter(|m| m.visible);
    let channel_list = morphology.map(|m| {
        let list = m.frame(&export_camera, &export_viewport);
        let f = m.last_frame;
        (list, f.ready_tiles, f.ready_tiles == f.visible_tiles && !m.is_loading())
    });
    // Wait while tiles keep arriving; a stall (a slide that cannot give them) ends the wait.
    let (slide_ready, slide_tiles_ready) = slide.as_ref().map_or((0, true), |s| {
        let f = s.last_frame;
        (f.ready_tiles, f.ready_tiles == f.visible_tiles && !s.is_loading())
    });
    let (morphology_ready, morphology_tiles_ready) = channel_list.as_ref().map_or((0, true), |c| (c.1, c.2));
    let ready = slide_ready + morphology_ready;
    let tiles_ready = slide_tiles_ready && morphology_tiles_ready;
    let channel_list = channel_list.map(|c| c.0);
    let (last_arrival, last_ready) = *export.progress.get_or_insert((Instant::now(), ready));
    if ready != last_ready {
        export.progress = Some((Instant::now(), ready));
    }
    if !tiles_ready && (ready != last_ready || last_arrival.elapsed() < TILE_STALL) {
        return ShotStep::WaitingForTiles;
    }
    let highlight = None;
    // Cells and transcripts (points, or their density when zoomed out); the transcript tiles the
    // view needs are read first.
    let cell_list = cells
        .as_mut()
        .and_then(|cells| cells.frame(&export_camera, &export_viewport, highlight));
    let density_list = cells.as_mut().and_then(|c| c.take_transcript_density());
    let transcripts_waiting = cells
        .as_ref()
        .and_then(|c| c.transcripts.as_ref())
        .is_some_and(|t| t.waiting() > 0);
    if transcripts_waiting && last_arrival.elapsed() < TILE_STALL {
        return ShotStep::WaitingForTiles;
    }
    let slide_visible = slide.as_ref().is_some_and(|s| s.visible);
    let overlay_viewport = Viewport {
        size_in_points: export.viewport.size_in_points,
        pixels_per_point: pixels_per_viewer_point,
    };
    let rendered = {
        let device = &render_state.device;
        let queue = &render_state.queue;
        let target = HeadlessTarget::with_format(device, width, height, render_state.target_format);
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("view-export"),
        });
        {
            let mut renderer = render_state.renderer.write();
            if let (Some(list), true) = (&tile_list, slide_visible)
                && let Some(tiles) = renderer.callback_resources.get_mut::<TileRenderer>()
            {
                tiles.prepare(device, queue, EXPORT_FRAME_ID, list);
            }
            if let Some(list) = &channel_list
                && let Some(channels) = renderer.callback_resources.get_mut::<ChannelTileRenderer>()
            {
                channels.prepare(device, queue, EXPORT_FRAME_ID, list);
            }
            if let Some(list) = &density_list
                && let Some(densities) = renderer.callback_resources.get_mut::<TranscriptDensityRenderer>()
            {
                densities.0.prepare(device, queue, EXPORT_FRAME_ID, list);
            }
            if let Some(list) = &cell_list
                && let Some(cells) = renderer.callback_resources.get_mut::<CellRenderer>()
            {
                cells.prepare(device, queue, EXPORT_FRAME_ID, list);
            }
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("view-export-layers"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &target.view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color {
                            r: 40.0 / 255.0,
                            g: 40.0 / 255.0,
                            b: 40.0 / 255.0,
                            a: 1.0,
                        }),
                        store: wgpu::StoreOp::Store,
                    },
                })],
                ..Default::default()
            });
            if slide_visible
                && tile_list.is_some()
                && let Some(tiles) = renderer.callback_resources.get::<TileRenderer>()
            {
                tiles.paint(&mut pass, EXPORT_FRAME_ID);
            }
            if channel_list.is_some()
                && let Some(channels) = renderer.callback_resources.get::<ChannelTileRenderer>()
            {
                channels.paint(&mut pass, EXPORT_FRAME_ID);
            }
            if density_list.is_some()
                && let Some(densities) = renderer.callback_resources.get::<TranscriptDensityRenderer>()
            {
                densities.0.paint(&mut pass, EXPORT_FRAME_ID);
            }
            if cell_list.is_some()
                && let Some(cells) = renderer.callback_resources.get::<CellRenderer>()
            {
                cells.paint(&mut pass, EXPORT_FRAME_ID);
            }
        }
        let overlays = ExportOverlays {
            selections,
            annotations,
            tools,
            cells: cells.as_deref(),
            has_physical_scale,
            units,
            legend: export.legend,
        };
        paint_export_overlays(
            device,
            queue,
            &mut encoder,
            &target,
            &shot.camera,
            &overlay_viewport,
            &overlays,
            render_state.target_format,
        );
        queue.submit([encoder.finish()]);
        target.read_rgba(device, queue)
    };
    match rendered {
        Ok(pixels) => ShotStep::Rendered { pixels, width, height },
        Err(error) => ShotStep::Failed(format!("The view could not be rendered: {error}")),
    }
}

/// What is drawn over an exported image.
struct ExportOverlays<'a> {
    selections: &'a Selections,
    annotations: &'a Annotations,
    tools: &'a Toolbox,
    cells: Option<&'a CellLayer>,
    has_physical_scale: bool,
    units: LengthUnits,
    legend: bool,
}

/// Selections, annotations, the scale bar and the legend, drawn by egui over the layers.
#[allow(clippy::too_many_arguments)]
fn paint_export_overlays(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    encoder: &mut wgpu::CommandEncoder,
    target: &HeadlessTarget,
    camera: &Camera,
    viewport: &Viewport,
    overlays: &ExportOverlays<'_>,
    format: wgpu::TextureFormat,
) {
    let ctx = egui::Context::default();
    let size = viewport.size_in_points;
    let rect = Rect::from_min_size(Pos2::ZERO, Vec2::new(size.x as f32, size.y as f32));
    let ppp = viewport.pixels_per_point as f32;
    let mut input = egui::RawInput {
        screen_rect: Some(rect),
        ..Default::default()
    };
    input
        .viewports
        .entry(egui::ViewportId::ROOT)
        .or_default()
        .native_pixels_per_point = Some(ppp);
    let screen_from_world = camera.screen_from_world(viewport);
    let output = ctx.run_ui(input, |ui| {
        let painter = ui.ctx().layer_painter(egui::LayerId::background());
        let vertex_handles = overlays.tools.tool == crate::viewer::tools::Tool::EditVertices;
        selections_overlay_ui(&painter, overlays.selections, &screen_from_world, rect, vertex_handles);
        annotations_overlay_ui(&painter, overlays.annotations, &screen_from_world, rect, overlays.units);
        let paint_cx = PaintContext {
            screen_from_world,
            rect,
            hover: None,
            units: overlays.units,
            world_from_slide: None,
        };
        overlays.tools.paint(&painter, &paint_cx);
        scale_bar_ui(
            &painter,
            rect,
            camera.points_per_um,
            overlays.has_physical_scale,
            overlays.units,
        );
        if let (true, Some(cells)) = (overlays.legend, overlays.cells) {
            legend_ui(&painter, rect, cells);
        }
    });
    let primitives = ctx.tessellate(output.shapes, ppp);
    let mut renderer = egui_wgpu::Renderer::new(device, format, egui_wgpu::RendererOptions::default());
    let mut textures = output.textures_delta;
    for (id, deltas) in &textures.set {
        for delta in deltas {
            renderer.update_texture(device, queue, *id, delta);
        }
    }
    // This renderer and its textures live for this image only.
    textures.clear();
    let screen = egui_wgpu::ScreenDescriptor {
        size_in_pixels: [target.width, target.height],
        pixels_per_point: ppp,
    };
    renderer.update_buffers(device, queue, encoder, &primitives, &screen);
    let pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
        label: Some("view-export-overlays"),
        color_attachments: &[Some(wgpu::RenderPassColorAttachment {
            view: &target.view,
            depth_slice: None,
            resolve_target: None,
            ops: wgpu::Operations {
                load: wgpu::LoadOp::Load,
                store: wgpu::StoreOp::Store,
            },
        })],
        ..Default::default()
    });
    renderer.render(&mut pass.forget_lifetime(), &primitives, &screen);
}

/// The tour's folder: an existing folder as picked; a new name with `.html` becomes a folder
/// beside it (some dialogs return a file name).
pub fn tour_dir(chosen: &Path) -> PathBuf {
    if !chosen.is_dir() && chosen.extension().is_some_and(|e| e.eq_ignore_ascii_case("html")) {
        chosen.with_extension("")
    } else {
        chosen.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tour_files_are_numbered_and_the_index_lists_them_escaped() {
        assert_eq!(shot_file_name(0, "Tumour front / <b>"), "01-tumour-front-b.png");
        assert_eq!(shot_file_name(11, "  "), "12-view.png");
        let shots = vec![Shot {
            path: PathBuf::from("/x/01-a.png"),
            camera: Camera::default(),
            title: "A & B".into(),
            caption: "<script>".into(),
        }];
        let html = tour_index_html("Tour", &shots);
        assert!(html.contains("<h2>1. A &amp; B</h2>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("src=\"01-a.png\""));
        assert_eq!(tour_dir(Path::new("/t/tour.html")), PathBuf::from("/t/tour"));
        assert_eq!(tour_dir(Path::new("/t/tour.v2")), PathBuf::from("/t/tour.v2"));
    }
}
