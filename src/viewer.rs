//! The viewer widget: pan/zoom input, the GPU slide tiles and cell overlay through paint
//! callbacks, the cell under the cursor (hover card, pinning), the selection tools and landmark
//! clicks, and the overlays a pathologist expects (scale bar, minimap, loading notes).

use cs_render::{CellRenderer, TileRenderer};
use eframe::egui_wgpu;
use egui::{Color32, Pos2, Rect, Sense, Stroke, Vec2};
use glam::DVec2;

use crate::app::{RendererCallback, ViewerApp};
use crate::camera::{Viewport, format_length_um, nice_scale_bar_um};
use crate::cell_layer::CellInfo;
use crate::landmarks::LandmarkTool;
use crate::tools::Tool;

/// Wheel: one notch (about 50 points) zooms by about 1.28x.
const WHEEL_ZOOM_PER_POINT: f64 = 1.0 / 200.0;
const KEY_ZOOM_FACTOR: f64 = 1.5;
const KEY_PAN_FRACTION: f64 = 0.15;
const INERTIA_DECAY_PER_S: f64 = 4.0;
const INERTIA_STOP_POINTS_PER_S: f64 = 8.0;
const MINIMAP_MAX_SIDE_POINTS: f32 = 200.0;
const MINIMAP_MARGIN_POINTS: f32 = 12.0;

fn to_dvec(v: Vec2) -> DVec2 {
    DVec2::new(f64::from(v.x), f64::from(v.y))
}

/// Which layers a pane of the split view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaneLayers {
    pub slide: bool,
    pub cells: bool,
    /// The comparison slide instead of the first one (File > Open slide to compare).
    pub compare: bool,
}

/// One view of the viewer: the whole central area, or a pane of the split view. Keyboard input
/// (tools, arrow keys, undo) goes to the primary pane only; the camera is shared, so the panes'
/// pan and zoom are linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pane {
    pub primary: bool,
    /// None: the single view, which shows whatever the layers panel shows.
    pub layers: Option<PaneLayers>,
}

impl Pane {
    pub const SINGLE: Pane = Pane {
        primary: true,
        layers: None,
    };

    fn shows_slide(&self) -> bool {
        self.layers.is_none_or(|l| l.slide)
    }

    fn shows_cells(&self) -> bool {
        self.layers.is_none_or(|l| l.cells)
    }
}

/// The split view: two panes side by side with linked pan and zoom (H&E on the left, cell types
/// on the right by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitView {
    pub left: PaneLayers,
    pub right: PaneLayers,
}

impl Default for SplitView {
    fn default() -> Self {
        Self {
            left: PaneLayers {
                slide: true,
                cells: false,
                compare: false,
            },
            right: PaneLayers {
                slide: true,
                cells: true,
                compare: false,
            },
        }
    }
}

/// The two panes, each with its layer switches above it.
pub fn split_view_ui(ui: &mut egui::Ui, app: &mut ViewerApp) {
    let Some(mut split) = app.split else { return };
    // Each pane sets the cursor and the hovered cell only while the pointer is over it.
    app.view.cursor_in_world = None;
    app.view.cursor_in_slide_px = None;
    app.hovered_cell = None;
    ui.columns(2, |columns| {
        for (i, column) in columns.iter_mut().enumerate() {
            let layers = if i == 0 { &mut split.left } else { &mut split.right };
            column.horizontal(|ui| {
                ui.label(if i == 0 { "Left:" } else { "Right:" });
                ui.checkbox(&mut layers.slide, "Slide");
                ui.checkbox(&mut layers.cells, "Cells");
                if let Some(compare) = &app.compare {
                    ui.checkbox(
                        &mut layers.compare,
                        format!("Compare: {}", crate::app::display_name(&compare.path)),
                    )
                    .on_hover_text("Show the comparison slide in this pane instead of the first one");
                }
            });
            let pane = Pane {
                primary: i == 0,
                layers: Some(*layers),
            };
            column.push_id(("viewer-pane", i), |ui| viewer_ui(ui, app, pane));
        }
    });
    if app.split.is_some() {
        app.split = Some(split);
    }
}

pub fn viewer_ui(ui: &mut egui::Ui, app: &mut ViewerApp, pane: Pane) {
    let (rect, response) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
    let viewport = Viewport {
        size_in_points: to_dvec(rect.size()),
        pixels_per_point: f64::from(ui.ctx().pixels_per_point()),
    };
    app.view.last_viewport = Some(viewport);
    app.view.viewer_rect = Some(rect);

    // A fit holds until the user moves the view: it follows the viewport as panels come and go.
    let still_fitted = app.view.fitted.is_some_and(|(fitted_viewport, fitted_camera)| {
        fitted_camera == app.view.camera && fitted_viewport != viewport
    });
    if (app.view.fit_requested || still_fitted) && rect.width() > 1.0 && rect.height() > 1.0 {
        if let Some((min, max)) = app.bounds_in_world() {
            app.view.camera.fit(min, max, &viewport);
            app.view.fitted = Some((viewport, app.view.camera));
        }
        app.view.fit_requested = false;
    }

    // Minimap first, so that its clicks do not also pan the view.
    // A pane showing the comparison slide has no minimap (the minimap is the first slide's).
    let compare_here = pane.layers.is_some_and(|l| l.compare) && app.compare.is_some();
    let minimap = app
        .slide
        .as_ref()
        .filter(|_| !compare_here)
        .and_then(|slide| minimap_rect(rect, slide.overview.as_ref().map(|(_, size)| *size)));
    let minimap_response = minimap.map(|r| ui.interact(r, response.id.with("minimap"), Sense::click_and_drag()));
    let on_minimap = minimap_response.as_ref().is_some_and(|r| r.hovered() || r.dragged());

    if pane.primary {
        crate::selection_tools_ui::selection_keys(ui, app);
    }
    let tool_armed = app.tools.tool != Tool::Navigate
        && app.landmarks.is_none()
        && (app.cells.is_some() || app.tools.tool.is_annotation());
    navigation_input(ui, app, &response, rect, &viewport, on_minimap, tool_armed, pane);

    // Minimap navigation: click or drag moves the view centre there.
    if let (Some(mini), Some(mini_response), Some(slide)) = (minimap, &minimap_response, &app.slide)
        && (mini_response.clicked() || mini_response.dragged())
        && let Some(pos) = mini_response.interact_pointer_pos()
    {
        let (w, h) = slide.layer.source.metadata().level0_size_px();
        let pos_in_slide_px = DVec2::new(
            f64::from((pos.x - mini.min.x) / mini.width()) * w as f64,
            f64::from((pos.y - mini.min.y) / mini.height()) * h as f64,
        );
        app.view.camera.center_in_world = slide.layer.world_from_slide.transform_point2(pos_in_slide_px);
    }

    // Cursor readout and the cell under the cursor.
    let camera = app.view.camera;
    let world_from_screen = camera.world_from_screen(&viewport);
    let hover_in_screen = response
        .hover_pos()
        .filter(|_| !on_minimap)
        .map(|pos| to_dvec(pos - rect.min));
    let dragging = response.dragged();
    // A pane of the split view leaves the cursor to the pane the pointer is over.
    if pane.layers.is_none() || hover_in_screen.is_some() {
        app.view.cursor_in_world = hover_in_screen.map(|p| world_from_screen.transform_point2(p));
        app.view.cursor_in_slide_px = match (&app.slide, app.view.cursor_in_world) {
            (Some(slide), Some(world)) => Some(slide.layer.world_from_slide.inverse().transform_point2(world)),
            _ => None,
        };
        app.hovered_cell = match (&app.cells, app.view.cursor_in_world) {
            (Some(cells), Some(world)) if !dragging && !tool_armed && pane.shows_cells() => {
                cells.pick(world, camera.um_per_screen_px(&viewport))
            }
            _ => None,
        };
    }
    let tool_used =
        crate::selection_tools_ui::selection_input(ui, app, &response, &world_from_screen, rect, camera.points_per_um)
            || crate::annotations_ui::annotation_input(app, &response, &world_from_screen, rect, camera.points_per_um);
    if response.clicked() && !tool_used {
        match (&mut app.landmarks, app.view.cursor_in_world) {
            (Some(tool), Some(world)) => {
                if let Some(slide_px) = app.view.cursor_in_slide_px {
                    tool.click(slide_px, world);
                }
            }
            _ => app.pinned_cell = app.hovered_cell,
        }
    }

    // The slide, then the cells, drawn by the GPU renderers.
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, Color32::from_gray(40));
    // While the view is exported, its tiles are the ones being loaded: the viewer waits.
    let exporting = app.view_export.is_some();
    if compare_here {
        if let Some(compare) = app.compare.as_mut().filter(|_| !exporting && pane.shows_slide()) {
            let list = compare.layer.frame(&camera, &viewport);
            painter.add(egui_wgpu::Callback::new_paint_callback(
                rect,
                RendererCallback::<TileRenderer>::new(response.id.value(), list),
            ));
        }
    } else if let Some(slide) = app.slide.as_mut().filter(|_| !exporting && pane.shows_slide()) {
        let list = slide.layer.frame(&camera, &viewport);
        if slide.layer.visible {
            painter.add(egui_wgpu::Callback::new_paint_callback(
                rect,
                RendererCallback::<TileRenderer>::new(response.id.value(), list),
            ));
        }
    }
    let highlight = app.hovered_cell.or(app.models.map_hover_cell).or(app.pinned_cell);
    if let Some(cells) = app.cells.as_mut().filter(|_| pane.shows_cells())
        && let Some(list) = cells.frame(&camera, &viewport, highlight)
    {
        painter.add(egui_wgpu::Callback::new_paint_callback(
            rect,
            RendererCallback::<CellRenderer>::new(response.id.value(), list),
        ));
    }

    let drawn_count = match &app.cells {
        Some(cells) => app.tools.drawn_cells(&cells.index, cells.len()).map(|c| c.count()),
        None => None,
    };
    crate::selection_tools_ui::selections_overlay_ui(
        &painter,
        app,
        &camera.screen_from_world(&viewport),
        rect,
        response.hover_pos(),
        drawn_count,
    );
    crate::annotations_ui::annotations_overlay_ui(
        &painter,
        app,
        &camera.screen_from_world(&viewport),
        rect,
        response.hover_pos(),
    );
    if app.tools.tool == Tool::Brush
        && tool_armed
        && let Some(pos) = response.hover_pos()
    {
        painter.circle_stroke(
            pos,
            app.tools.brush_radius_points,
            Stroke::new(1.5, Color32::from_rgb(255, 230, 0)),
        );
    }
    let physical = app.cells.is_some() || app.slide.as_ref().is_none_or(|s| s.layer.has_physical_scale);
    scale_bar_ui(&painter, rect, camera.points_per_um, physical);
    if let (Some(mini), Some(slide)) = (minimap, &app.slide)
        && let Some((texture, _)) = &slide.overview
    {
        let slide_from_screen = slide.layer.slide_from_screen(&camera, &viewport);
        let view_corners_in_slide_px = [
            DVec2::ZERO,
            DVec2::new(viewport.size_in_points.x, 0.0),
            viewport.size_in_points,
            DVec2::new(0.0, viewport.size_in_points.y),
        ]
        .map(|c| slide_from_screen.transform_point2(c));
        let (w, h) = slide.layer.source.metadata().level0_size_px();
        minimap_ui(
            &painter,
            mini,
            texture.id(),
            &view_corners_in_slide_px,
            (w as f64, h as f64),
        );
    }
    if let (Some(tool), Some(slide)) = (&app.landmarks, &app.slide) {
        let screen_from_world = camera.screen_from_world(&viewport);
        let to_screen = |world: DVec2| rect.min + to_vec2(screen_from_world.transform_point2(world));
        landmarks_ui(
            &painter,
            tool,
            |slide_px| to_screen(slide.layer.world_from_slide.transform_point2(slide_px)),
            to_screen,
        );
    }

    if let Some(slide) = &app.slide {
        let stats = slide.layer.last_frame;
        if stats.ready_tiles < stats.visible_tiles && slide.layer.is_loading() && slide.layer.visible {
            let text = format!("loading tiles {}/{}", stats.ready_tiles, stats.visible_tiles);
            note_ui(&painter, rect.left_top() + Vec2::new(10.0, 10.0), text);
        }
    }
    // Hover card: shown at once (no tooltip delay), beside the pointer, never taking input.
    if let (Some(cells), Some(cell), false, Some(pointer)) =
        (&app.cells, app.hovered_cell, dragging, response.hover_pos())
        && let Some(info) = cells.cell_info(cell)
    {
        egui::Area::new(response.id.with("cell_hover_card"))
            .order(egui::Order::Tooltip)
            .fixed_pos(pointer + Vec2::new(18.0, 18.0))
            .interactable(false)
            .show(ui.ctx(), |ui| {
                egui::Frame::popup(ui.style()).show(ui, |ui| cell_info_ui(ui, &info));
            });
    }
}

/// Zoom (wheel, pinch, double-click, keys), drag pan with optional inertia (the single view
/// only). Keys move the view from the primary pane only.
#[allow(clippy::too_many_arguments)]
fn navigation_input(
    ui: &egui::Ui,
    app: &mut ViewerApp,
    response: &egui::Response,
    rect: Rect,
    viewport: &Viewport,
    on_minimap: bool,
    tool_armed: bool,
    pane: Pane,
) {
    let camera = &mut app.view.camera;
    if let Some(pos) = response.hover_pos().filter(|_| !on_minimap) {
        let pos_in_screen = to_dvec(pos - rect.min);
        let (scroll_y, pinch) = ui.input(|i| (f64::from(i.smooth_scroll_delta.y), f64::from(i.zoom_delta())));
        let factor = pinch * (scroll_y * WHEEL_ZOOM_PER_POINT).exp();
        if (factor - 1.0).abs() > 1e-6 {
            camera.zoom_about(pos_in_screen, factor, viewport);
        }
        if response.double_clicked() && !tool_armed {
            let shift = ui.input(|i| i.modifiers.shift);
            camera.zoom_about(pos_in_screen, if shift { 0.5 } else { 2.0 }, viewport);
        }
    }
    let dt = f64::from(ui.input(|i| i.stable_dt)).clamp(1e-3, 0.1);
    // With a selection tool armed, the primary button draws; the middle button still pans.
    let panning = (response.dragged_by(egui::PointerButton::Primary) && !tool_armed)
        || response.dragged_by(egui::PointerButton::Middle);
    if panning {
        let delta = -to_dvec(response.drag_delta());
        camera.pan_by_screen(delta);
        // Smoothed release velocity, used only when inertia is on.
        app.view.pan_velocity = app.view.pan_velocity * 0.5 + (delta / dt) * 0.5;
    } else if pane.layers.is_some() {
        // The split view's panes share the camera: no inertia there (each pane would glide it).
        app.view.pan_velocity = DVec2::ZERO;
    } else if app.view.pan_inertia && app.view.pan_velocity.length() > INERTIA_STOP_POINTS_PER_S {
        camera.pan_by_screen(app.view.pan_velocity * dt);
        app.view.pan_velocity *= (-INERTIA_DECAY_PER_S * dt).exp();
        ui.ctx().request_repaint();
    } else {
        app.view.pan_velocity = DVec2::ZERO;
    }

    // Keyboard, unless a text field has focus.
    if pane.primary && !ui.ctx().egui_wants_keyboard_input() {
        let center = viewport.size_in_points * 0.5;
        let pan = viewport.size_in_points * KEY_PAN_FRACTION;
        ui.input(|i| {
            if i.key_pressed(egui::Key::ArrowLeft) {
                camera.pan_by_screen(DVec2::new(-pan.x, 0.0));
            }
            if i.key_pressed(egui::Key::ArrowRight) {
                camera.pan_by_screen(DVec2::new(pan.x, 0.0));
            }
            if i.key_pressed(egui::Key::ArrowUp) {
                camera.pan_by_screen(DVec2::new(0.0, -pan.y));
            }
            if i.key_pressed(egui::Key::ArrowDown) {
                camera.pan_by_screen(DVec2::new(0.0, pan.y));
            }
            if i.key_pressed(egui::Key::Plus) || i.key_pressed(egui::Key::Equals) {
                camera.zoom_about(center, KEY_ZOOM_FACTOR, viewport);
            }
            if i.key_pressed(egui::Key::Minus) {
                camera.zoom_about(center, 1.0 / KEY_ZOOM_FACTOR, viewport);
            }
            if i.key_pressed(egui::Key::Num0) {
                app.view.fit_requested = true;
            }
        });
    }
}

fn to_vec2(v: DVec2) -> Vec2 {
    Vec2::new(v.x as f32, v.y as f32)
}

/// A small dark label over the view.
fn note_ui(painter: &egui::Painter, pos: Pos2, text: String) {
    let galley = painter.layout_no_wrap(text, egui::FontId::proportional(13.0), Color32::WHITE);
    painter.rect_filled(
        Rect::from_min_size(pos - Vec2::splat(4.0), galley.size() + Vec2::splat(8.0)),
        4.0,
        Color32::from_black_alpha(160),
    );
    painter.galley(pos, galley, Color32::WHITE);
}

/// The tooltip and inspector body for one cell.
pub fn cell_info_ui(ui: &mut egui::Ui, info: &CellInfo) {
    egui::Grid::new(("cell_info", info.table_index))
        .num_columns(2)
        .show(ui, |ui| {
            ui.label("Cell");
            ui.strong(&info.id);
            ui.end_row();
            if let Some((column, class)) = &info.class {
                ui.label(column);
                ui.strong(class);
                ui.end_row();
            }
            if let Some(area) = info.cell_area_um2 {
                ui.label("Cell area");
                ui.label(format!("{area:.1} µm²"));
                ui.end_row();
            }
            if let Some(area) = info.nucleus_area_um2 {
                ui.label("Nucleus area");
                ui.label(format!("{area:.1} µm²"));
                ui.end_row();
            }
            if let Some(total) = info.total_counts {
                ui.label("Total counts");
                ui.label(format!("{total:.0}"));
                ui.end_row();
            }
            ui.label("Position");
            ui.label(format!("{:.1}, {:.1} µm", info.pos_in_world.x, info.pos_in_world.y));
            ui.end_row();
        });
    if !info.top_genes.is_empty() {
        ui.label("Top genes");
        ui.horizontal_wrapped(|ui| {
            for (gene, count) in &info.top_genes {
                ui.label(format!("{gene} {count:.0}"));
            }
        });
    }
}

/// Numbered landmark markers: slide points (yellow circles) and cell-side points (cyan crosses).
fn landmarks_ui(
    painter: &egui::Painter,
    tool: &LandmarkTool,
    slide_to_screen: impl Fn(DVec2) -> Pos2,
    world_to_screen: impl Fn(DVec2) -> Pos2,
) {
    let slide_stroke = Stroke::new(2.0, Color32::from_rgb(255, 220, 0));
    let world_stroke = Stroke::new(2.0, Color32::from_rgb(0, 230, 255));
    let label = |pos: Pos2, text: String, colour: Color32| {
        painter.text(
            pos + Vec2::new(8.0, -8.0),
            egui::Align2::LEFT_BOTTOM,
            text,
            egui::FontId::proportional(14.0),
            colour,
        );
    };
    for (i, pair) in tool.pairs.iter().enumerate() {
        let a = slide_to_screen(pair.slide_px);
        let b = world_to_screen(pair.world_um);
        painter.circle_stroke(a, 6.0, slide_stroke);
        painter.line_segment([b - Vec2::new(6.0, 0.0), b + Vec2::new(6.0, 0.0)], world_stroke);
        painter.line_segment([b - Vec2::new(0.0, 6.0), b + Vec2::new(0.0, 6.0)], world_stroke);
        painter.line_segment([a, b], Stroke::new(1.0, Color32::from_white_alpha(160)));
        label(a, format!("{}", i + 1), slide_stroke.color);
        label(b, format!("{}", i + 1), world_stroke.color);
    }
    if let Some(pending) = tool.pending_slide_px {
        let a = slide_to_screen(pending);
        painter.circle_stroke(a, 8.0, slide_stroke);
        label(
            a,
            format!("{} (now click its match among the cells)", tool.pairs.len() + 1),
            slide_stroke.color,
        );
    }
}

fn minimap_rect(viewer: Rect, overview_size: Option<[usize; 2]>) -> Option<Rect> {
    let [w, h] = overview_size?;
    if w == 0
        || h == 0
        || viewer.width() < 3.0 * MINIMAP_MAX_SIDE_POINTS
        || viewer.height() < 2.0 * MINIMAP_MAX_SIDE_POINTS
    {
        return None;
    }
    let scale = MINIMAP_MAX_SIDE_POINTS / (w.max(h) as f32);
    let size = Vec2::new(w as f32 * scale, h as f32 * scale);
    let max = viewer.right_bottom() - Vec2::splat(MINIMAP_MARGIN_POINTS);
    Some(Rect::from_min_max(max - size, max))
}

fn minimap_ui(
    painter: &egui::Painter,
    mini: Rect,
    texture: egui::TextureId,
    view_corners_in_slide_px: &[DVec2; 4],
    level0_size_px: (f64, f64),
) {
    painter.rect_filled(mini.expand(3.0), 3.0, Color32::from_black_alpha(180));
    painter.image(
        texture,
        mini,
        Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
        Color32::WHITE,
    );
    let to_mini = |p: &DVec2| {
        Pos2::new(
            mini.min.x + (p.x / level0_size_px.0) as f32 * mini.width(),
            mini.min.y + (p.y / level0_size_px.1) as f32 * mini.height(),
        )
    };
    let points: Vec<Pos2> = view_corners_in_slide_px.iter().map(to_mini).collect();
    let clip = painter.with_clip_rect(mini.expand(1.0));
    clip.add(egui::Shape::closed_line(
        points,
        Stroke::new(2.0, Color32::from_rgb(255, 210, 0)),
    ));
}

pub(crate) fn scale_bar_ui(painter: &egui::Painter, viewer: Rect, points_per_um: f64, physical: bool) {
    const MAX_BAR_POINTS: f64 = 160.0;
    let length_um = nice_scale_bar_um(MAX_BAR_POINTS / points_per_um);
    if length_um <= 0.0 {
        return;
    }
    let length_points = (length_um * points_per_um) as f32;
    let label = if physical {
        format_length_um(length_um)
    } else {
        format!("{length_um} px")
    };
    let base = viewer.left_bottom() + Vec2::new(16.0, -18.0);
    let galley = painter.layout_no_wrap(label, egui::FontId::proportional(13.0), Color32::WHITE);
    let background = Rect::from_min_max(
        base + Vec2::new(-8.0, -galley.size().y - 14.0),
        base + Vec2::new(length_points.max(galley.size().x) + 8.0, 8.0),
    );
    painter.rect_filled(background, 4.0, Color32::from_black_alpha(160));
    let stroke = Stroke::new(3.0, Color32::WHITE);
    painter.line_segment([base, base + Vec2::new(length_points, 0.0)], stroke);
    painter.line_segment([base + Vec2::new(0.0, -5.0), base + Vec2::new(0.0, 3.0)], stroke);
    painter.line_segment(
        [
            base + Vec2::new(length_points, -5.0),
            base + Vec2::new(length_points, 3.0),
        ],
        stroke,
    );
    painter.galley(base + Vec2::new(0.0, -galley.size().y - 8.0), galley, Color32::WHITE);
}
