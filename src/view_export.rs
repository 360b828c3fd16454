//! The view as a PNG at a chosen resolution, and a tour as PNGs with an HTML index. The slide
//! tiles and the cells are rendered offscreen by the viewer's own renderers at the export size
//! (the tiles that resolution needs are loaded first); the selections, annotations, scale bar and
//! a legend are drawn on top by egui into the same image; the pixels are read back and the PNG
//! (and the index) written on the `export` thread.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cs_render::{CellRenderer, HeadlessTarget, TileRenderer};
use egui::{Color32, FontId, Pos2, Rect, Stroke, Vec2};
use glam::DVec2;

use crate::app::ViewerApp;
use crate::camera::{Camera, Viewport};
use crate::cell_layer::ColourBy;
use crate::jobs::{Job, JobStatus, spawn_job};

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
    progress: Option<(Instant, usize)>,
    /// The current shot's PNG being written.
    writing: Option<Job<anyhow::Result<String>>>,
    /// The slide's RAM tile budget before the export raised it to hold a whole shot.
    ram_budget_before: Option<usize>,
}

/// The choices of the export window, and whether it is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportChoice {
    pub open: bool,
    pub scale: u32,
    pub legend: bool,
}

impl Default for ExportChoice {
    fn default() -> Self {
        Self {
            open: false,
            scale: 2,
            legend: true,
        }
    }
}

impl ViewExport {
    /// The size in pixels of the images.
    pub fn size_px(&self) -> [u32; 2] {
        size_px(&self.viewport, self.scale)
    }
}

fn size_px(viewport: &Viewport, scale: u32) -> [u32; 2] {
    let px = viewport.size_in_points * viewport.pixels_per_point * f64::from(scale);
    [px.x.round().max(1.0) as u32, px.y.round().max(1.0) as u32]
}

/// A file name for a bookmark: its number and a slug of its name.
fn shot_file_name(i: usize, name: &str) -> String {
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

impl ViewerApp {
    /// Starts exporting the current view to `path`.
    pub fn export_view_png(&mut self, path: PathBuf, scale: u32, legend: bool) {
        let Some(viewport) = self.view.last_viewport else {
            self.toasts
                .error("Open a slide or a bundle first: there is no view to export.");
            return;
        };
        let shot = Shot {
            path,
            camera: self.view.camera,
            title: String::new(),
            caption: String::new(),
        };
        self.start_view_export(vec![shot], viewport, scale, legend, None);
    }

    /// Starts exporting every bookmark into `dir` (NN-name.png) with an `index.html`.
    pub fn export_tour(&mut self, dir: PathBuf, scale: u32, legend: bool) {
        let Some(viewport) = self.view.last_viewport else {
            self.toasts
                .error("Open a slide or a bundle first: there is no view to export.");
            return;
        };
        if self.bookmarks.items.is_empty() {
            self.toasts
                .error("The tour has no bookmarks yet (View > Bookmarks and tour).");
            return;
        }
        if let Err(error) = std::fs::create_dir_all(&dir) {
            self.toasts.error(format!("Cannot create {}: {error}", dir.display()));
            return;
        }
        let shots = self
            .bookmarks
            .items
            .iter()
            .enumerate()
            .map(|(i, b)| Shot {
                path: dir.join(shot_file_name(i, &b.name)),
                camera: b.camera_for(&viewport),
                title: b.name.clone(),
                caption: b.caption.clone(),
            })
            .collect();
        self.start_view_export(shots, viewport, scale, legend, Some(dir.join("index.html")));
    }

    fn start_view_export(
        &mut self,
        shots: Vec<Shot>,
        viewport: Viewport,
        scale: u32,
        legend: bool,
        index: Option<PathBuf>,
    ) {
        if self.view_export.is_some() {
            self.toasts.note("An export is already running.");
            return;
        }
        // A whole shot's tiles must fit in the RAM cache at once (RGBA, with room to spare).
        let [w, h] = size_px(&viewport, scale.max(1));
        let needed = (u64::from(w) * u64::from(h) * 4 * 3) as usize;
        let ram_budget_before = self.slide.as_mut().and_then(|s| {
            let before = s.layer.ram_budget_bytes();
            (needed > before).then(|| {
                s.layer.set_ram_budget(needed);
                before
            })
        });
        self.view_export = Some(ViewExport {
            shots,
            next: 0,
            scale: scale.max(1),
            legend,
            viewport,
            index,
            progress: None,
            writing: None,
            ram_budget_before,
        });
    }

    /// Stops an export between shots (what is written stays).
    pub fn cancel_view_export(&mut self) {
        if let Some(export) = self.view_export.take() {
            self.end_view_export(&export);
            self.toasts.note("Export cancelled.");
        }
    }

    /// Puts back what the export changed: the slide's tile budget, the renderers' export views.
    fn end_view_export(&mut self, export: &ViewExport) {
        if let (Some(before), Some(slide)) = (export.ram_budget_before, &mut self.slide) {
            slide.layer.set_ram_budget(before);
        }
        self.forget_export_frames = true;
    }

    /// Advances an export by one step: waits for the tiles of the current shot, renders it, hands
    /// the PNG to the export thread, and goes on with the next once it is written. Once per frame.
    pub fn step_view_export(&mut self, frame: &eframe::Frame) {
        if std::mem::take(&mut self.forget_export_frames)
            && let Some(render_state) = frame.wgpu_render_state()
        {
            let mut renderer = render_state.renderer.write();
            if let Some(tiles) = renderer.callback_resources.get_mut::<TileRenderer>() {
                tiles.forget_frame(EXPORT_FRAME_ID);
            }
            if let Some(cells) = renderer.callback_resources.get_mut::<CellRenderer>() {
                cells.forget_view(EXPORT_FRAME_ID);
            }
        }
        let Some(mut export) = self.view_export.take() else {
            return;
        };
        if let Some(job) = &export.writing {
            let outcome = match job.poll() {
                JobStatus::Running => {
                    self.view_export = Some(export);
                    return;
                }
                JobStatus::Done(result) => result,
                JobStatus::Lost => Err(anyhow::anyhow!("the export stopped unexpectedly")),
            };
            export.writing = None;
            match outcome {
                Ok(message) => {
                    if export.index.is_none() {
                        self.toasts.note(message);
                    }
                    export.next += 1;
                    export.progress = None;
                }
                Err(error) => {
                    self.toasts.error(format!("{error:#}"));
                    self.end_view_export(&export);
                    return;
                }
            }
        }
        if export.next >= export.shots.len() {
            self.finish_view_export(&export);
            self.end_view_export(&export);
            return;
        }
        let Some(render_state) = frame.wgpu_render_state() else {
            self.toasts
                .error("The view cannot be exported: there is no GPU device.");
            self.end_view_export(&export);
            return;
        };
        let [width, height] = export.size_px();
        let limits = render_state.device.limits();
        let max_side = limits.max_texture_dimension_2d;
        let readback_bytes =
            u64::from(width * 4).next_multiple_of(u64::from(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT)) * u64::from(height);
        if width > max_side || height > max_side || readback_bytes > limits.max_buffer_size {
            self.toasts.error(format!(
                "{width} x {height} px is larger than this GPU can render ({max_side} px a side): choose a smaller resolution."
            ));
            self.end_view_export(&export);
            return;
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
        let tile_list = self
            .slide
            .as_mut()
            .map(|s| s.layer.frame(&export_camera, &export_viewport));
        // Wait while tiles keep arriving; a stall (a slide that cannot give them) ends the wait.
        let (ready, tiles_ready) = self.slide.as_ref().map_or((0, true), |s| {
            let f = s.layer.last_frame;
            (f.ready_tiles, f.ready_tiles == f.visible_tiles && !s.layer.is_loading())
        });
        let (last_arrival, last_ready) = *export.progress.get_or_insert((Instant::now(), ready));
        if ready != last_ready {
            export.progress = Some((Instant::now(), ready));
        }
        if !tiles_ready && (ready != last_ready || last_arrival.elapsed() < TILE_STALL) {
            self.view_export = Some(export);
            self.ctx.request_repaint_after(Duration::from_millis(30));
            return;
        }
        let highlight = None;
        let cell_list = self
            .cells
            .as_mut()
            .filter(|c| c.show_cells || c.show_nuclei)
            .and_then(|cells| cells.frame(&export_camera, &export_viewport, highlight));
        let slide_visible = self.slide.as_ref().is_some_and(|s| s.layer.visible);
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
                if cell_list.is_some()
                    && let Some(cells) = renderer.callback_resources.get::<CellRenderer>()
                {
                    cells.paint(&mut pass, EXPORT_FRAME_ID);
                }
            }
            self.paint_export_overlays(
                device,
                queue,
                &mut encoder,
                &target,
                &shot.camera,
                &overlay_viewport,
                export.legend,
                render_state.target_format,
            );
            queue.submit([encoder.finish()]);
            target.read_rgba(device, queue)
        };
        let pixels = match rendered {
            Ok(pixels) => pixels,
            Err(error) => {
                self.toasts.error(format!("The view could not be rendered: {error}"));
                return;
            }
        };
        let path = shot.path.clone();
        let written = spawn_job("export", "Writing the PNG", self.repaint_callback(), move |_| {
            let image = image::RgbaImage::from_raw(width, height, pixels)
                .ok_or_else(|| anyhow::anyhow!("the rendered image has the wrong size"))?;
            image
                .save(&path)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            Ok(format!("Saved {} ({width} x {height} px)", path.display()))
        });
        match written {
            Ok(job) => {
                export.writing = Some(job);
                self.view_export = Some(export);
            }
            Err(error) => {
                self.toasts.error(format!("Cannot start writing the PNG: {error}"));
                self.end_view_export(&export);
            }
        }
    }

    fn finish_view_export(&mut self, export: &ViewExport) {
        let Some(index) = &export.index else { return };
        let title = self
            .session
            .path
            .as_deref()
            .map_or_else(|| "CellSymphony tour".to_owned(), crate::app::display_name);
        match crate::session_file::write_atomically(index, tour_index_html(&title, &export.shots).as_bytes()) {
            Ok(()) => self.toasts.note(format!(
                "Tour exported: {} images and {}",
                export.shots.len(),
                index.display()
            )),
            Err(error) => self.toasts.error(format!("{error:#}")),
        }
    }

    /// Selections, annotations, the scale bar and the legend, drawn by egui over the layers.
    #[allow(clippy::too_many_arguments)]
    fn paint_export_overlays(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        target: &HeadlessTarget,
        camera: &Camera,
        viewport: &Viewport,
        legend: bool,
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
            crate::selection_tools_ui::selections_overlay_ui(&painter, self, &screen_from_world, rect, None, None);
            crate::annotations_ui::annotations_overlay_ui(&painter, self, &screen_from_world, rect, None);
            let physical = self.cells.is_some() || self.slide.as_ref().is_none_or(|s| s.layer.has_physical_scale);
            crate::viewer::scale_bar_ui(&painter, rect, camera.points_per_um, physical);
            if legend {
                legend_ui(&painter, rect, self);
            }
        });
        let primitives = ctx.tessellate(output.shapes, ppp);
        let mut renderer =
            eframe::egui_wgpu::Renderer::new(device, format, eframe::egui_wgpu::RendererOptions::default());
        let mut textures = output.textures_delta;
        for (id, deltas) in &textures.set {
            for delta in deltas {
                renderer.update_texture(device, queue, *id, delta);
            }
        }
        // This renderer and its textures live for this image only.
        textures.clear();
        let screen = eframe::egui_wgpu::ScreenDescriptor {
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
}

/// The colouring's legend in the top-right corner: the visible classes with their colours, or
/// the numeric scale with its range.
fn legend_ui(painter: &egui::Painter, rect: Rect, app: &ViewerApp) {
    let Some(cells) = &app.cells else { return };
    let font = FontId::proportional(13.0);
    let mut rows: Vec<(Color32, String)> = Vec::new();
    let title = match &cells.colour_by {
        ColourBy::Category(name) => {
            rows.extend(
                cells
                    .active_classes()
                    .into_iter()
                    .flatten()
                    .filter(|c| c.visible)
                    .map(|c| (c.colour, c.name.clone())),
            );
            name.clone()
        }
        ColourBy::Numeric(_) | ColourBy::Gene(_) => match &cells.numeric {
            Some(numeric) => {
                for (t, value) in [
                    (1.0, numeric.max),
                    (0.5, (numeric.min + numeric.max) / 2.0),
                    (0.0, numeric.min),
                ] {
                    rows.push((numeric.colour_map.colour(t), format!("{value:.3}")));
                }
                numeric.label.clone()
            }
            None => return,
        },
        ColourBy::Uniform => return,
    };
    if rows.is_empty() {
        return;
    }
    let line = 18.0;
    let title_galley = painter.layout_no_wrap(title, FontId::proportional(14.0), Color32::WHITE);
    let galleys: Vec<_> = rows
        .iter()
        .map(|(_, text)| painter.layout_no_wrap(text.clone(), font.clone(), Color32::WHITE))
        .collect();
    let width = galleys
        .iter()
        .map(|g| g.size().x + 22.0)
        .fold(title_galley.size().x, f32::max)
        + 16.0;
    let height = title_galley.size().y + 6.0 + line * rows.len() as f32 + 12.0;
    let frame = Rect::from_min_size(
        rect.right_top() + Vec2::new(-width - 10.0, 10.0),
        Vec2::new(width, height),
    );
    painter.rect_filled(frame, 4.0, Color32::from_black_alpha(180));
    painter.rect_stroke(
        frame,
        4.0,
        Stroke::new(1.0, Color32::from_gray(90)),
        egui::StrokeKind::Inside,
    );
    let mut at = frame.min + Vec2::new(8.0, 6.0);
    let title_height = title_galley.size().y;
    painter.galley(at, title_galley, Color32::WHITE);
    at.y += title_height + 6.0;
    for ((colour, _), galley) in rows.iter().zip(galleys) {
        painter.rect_filled(
            Rect::from_min_size(at + Vec2::new(0.0, 3.0), Vec2::splat(12.0)),
            2.0,
            *colour,
        );
        painter.galley(at + Vec2::new(20.0, 0.0), galley, Color32::WHITE);
        at.y += line;
    }
}

/// The export window: resolution (with the size it gives) and legend, then the file dialog.
pub fn export_window_ui(ctx: &egui::Context, app: &mut ViewerApp) {
    if !app.export_choice.open {
        return;
    }
    let mut open = true;
    let mut save: Option<bool> = None; // Some(true): the view, Some(false): the tour
    egui::Window::new("Export view as PNG")
        .open(&mut open)
        .collapsible(false)
        .resizable(false)
        .show(ctx, |ui| {
            let viewport = app.view.last_viewport;
            ui.horizontal(|ui| {
                ui.label("Resolution:");
                for scale in SCALES {
                    let label = match viewport {
                        Some(v) => {
                            let [w, h] = size_px(&v, scale);
                            format!("{scale}x ({w} x {h})")
                        }
                        None => format!("{scale}x"),
                    };
                    ui.selectable_value(&mut app.export_choice.scale, scale, label);
                }
            });
            ui.checkbox(&mut app.export_choice.legend, "Legend")
                .on_hover_text("The colouring's classes or scale, top right");
            ui.weak("The scale bar, selections and annotations are drawn as on screen.");
            ui.horizontal(|ui| {
                if ui
                    .add_enabled(viewport.is_some(), egui::Button::new("Save the view…"))
                    .clicked()
                {
                    save = Some(true);
                }
                if ui
                    .add_enabled(
                        viewport.is_some() && !app.bookmarks.items.is_empty(),
                        egui::Button::new("Save the tour…"),
                    )
                    .on_hover_text("Every bookmark as a PNG, with an index.html of names and captions")
                    .clicked()
                {
                    save = Some(false);
                }
            });
        });
    app.export_choice.open = open;
    let (scale, legend) = (app.export_choice.scale, app.export_choice.legend);
    match save {
        Some(true) => {
            app.export_choice.open = false;
            app.ask_for_file(crate::app::DialogPurpose::ExportViewPng { scale, legend });
        }
        Some(false) => {
            app.export_choice.open = false;
            app.ask_for_file(crate::app::DialogPurpose::ExportTour { scale, legend });
        }
        None => {}
    }
}

/// While an export runs: what it is doing, and Cancel.
pub fn export_progress_ui(ctx: &egui::Context, app: &mut ViewerApp) {
    let Some(export) = &app.view_export else { return };
    let [w, h] = export.size_px();
    let text = format!(
        "Exporting image {} of {} ({w} x {h} px)…",
        (export.next + 1).min(export.shots.len()),
        export.shots.len(),
    );
    let mut cancel = false;
    egui::Area::new(egui::Id::unique("view-export-progress"))
        .anchor(egui::Align2::CENTER_CENTER, Vec2::ZERO)
        .show(ctx, |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(text);
                    cancel = ui.button("Cancel").clicked();
                });
            });
        });
    if cancel {
        app.cancel_view_export();
    }
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
