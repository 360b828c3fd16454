//! The viewer widget: pan/zoom input, the GPU slide tiles and cell overlay through paint
//! callbacks, the cell under the cursor (hover card, pinning), the armed tool's pointer input and
//! overlay, and what a pathologist expects over the view (scale bar, minimap, loading notes).

use cs_render::{CellRenderer, ChannelTileRenderer, TileRenderer};
use eframe::egui_wgpu;
use egui::{Color32, Rect, Sense, Vec2};
use glam::DVec2;

use crate::document::annotations::Annotations;
use crate::document::selections::Selections;
use crate::document::{Comparison, Edit, LoadedSlide};
use crate::layers::camera::{Camera, Viewport};
use crate::layers::cell_layer::{CellInfo, CellLayer};
use crate::layers::morphology_layer::MorphologyLayer;
use crate::layers::patch_layer::PatchLayer;
use crate::util::format::LengthUnits;
use crate::viewer::ViewerState;
use crate::viewer::overlays::{
    annotations_overlay_ui, cell_info_ui, minimap_rect, minimap_ui, note_ui, scale_bar_ui, selections_overlay_ui,
};
use crate::viewer::paint::{RendererCallback, TranscriptDensityRenderer};
use crate::viewer::split::Pane;
use crate::viewer::tools::selection::brush_outline;
use crate::viewer::tools::{PaintContext, Tool, ToolContext, ViewerTool};

/// Wheel: one notch (about 50 points) zooms by about 1.28x.
const WHEEL_ZOOM_PER_POINT: f64 = 1.0 / 200.0;
const KEY_ZOOM_FACTOR: f64 = 1.5;
const KEY_PAN_FRACTION: f64 = 0.15;
const INERTIA_DECAY_PER_S: f64 = 4.0;
const INERTIA_STOP_POINTS_PER_S: f64 = 8.0;

pub(crate) fn to_dvec(v: Vec2) -> DVec2 {
    DVec2::new(f64::from(v.x), f64::from(v.y))
}

/// What the viewer draws and may touch of the document for one frame: the layers (their draw
/// caches change as they are drawn), the selections and annotations to show, and where its edits
/// go.
pub struct ViewerContext<'a> {
    pub slide: Option<&'a mut LoadedSlide>,
    pub cells: Option<&'a mut CellLayer>,
    pub morphology: Option<&'a mut MorphologyLayer>,
    /// What the split view compares with: a second slide, or another sample's slide and cells.
    pub compare: Option<&'a mut Comparison>,
    /// The cohort sample shown (the split view names it over its pane).
    pub sample: Option<&'a str>,
    /// The virtual-expression heatmaps.
    pub patches: Option<&'a mut PatchLayer>,
    pub selections: &'a Selections,
    pub annotations: &'a Annotations,
    /// The world box of everything open (for fitting).
    pub bounds_in_world: Option<(DVec2, DVec2)>,
    /// Lengths in µm (else the scale bar counts slide pixels).
    pub has_physical_scale: bool,
    /// A view export is rendering: its tiles are the ones being loaded, so the slide waits.
    pub exporting: bool,
    /// A cell highlighted from elsewhere (the Models tab's embedding scatter).
    pub highlight: Option<u32>,
    pub units: LengthUnits,
    pub edits: &'a mut Vec<Edit>,
}

/// One view: the whole central area (`Pane::SINGLE`) or a pane of the split view.
pub fn viewer_ui(ui: &mut egui::Ui, state: &mut ViewerState, cx: &mut ViewerContext<'_>, pane: Pane) {
    let (rect, response) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
    let viewport = Viewport {
        size_in_points: to_dvec(rect.size()),
        pixels_per_point: f64::from(ui.ctx().pixels_per_point()),
    };
    state.last_viewport = Some(viewport);
    state.viewer_rect = Some(rect);

    // A fit holds until the user moves the view: it follows the viewport as panels come and go.
    let still_fitted = state
        .fitted
        .is_some_and(|(fitted_viewport, fitted_camera)| fitted_camera == state.camera && fitted_viewport != viewport);
    if (state.fit_requested || still_fitted) && rect.width() > 1.0 && rect.height() > 1.0 {
        if let Some((min, max)) = cx.bounds_in_world {
            state.camera.fit(min, max, &viewport);
            state.fitted = Some((viewport, state.camera));
        }
        state.fit_requested = false;
    }

    // Minimap first, so that its clicks do not also pan the view.
    // A pane showing the comparison has no minimap (the minimap is the first slide's), and the
    // tools, selections and annotations of the open sample stay in the other pane.
    let compare_here = pane.layers.is_some_and(|l| l.compare) && cx.compare.is_some();
    let minimap = cx
        .slide
        .as_ref()
        .filter(|_| !compare_here)
        .and_then(|slide| minimap_rect(rect, slide.overview.as_ref().map(|(_, size)| *size)));
    let minimap_response = minimap.map(|r| ui.interact(r, response.id.with("minimap"), Sense::click_and_drag()));
    let on_minimap = minimap_response.as_ref().is_some_and(|r| r.hovered() || r.dragged());

    if pane.primary {
        state.tools.keys(ui, cx.edits);
    }
    let tool_armed = state.tools.tool != Tool::Navigate
        && state.landmarks.is_none()
        && !compare_here
        && (cx.cells.is_some() || state.tools.tool.is_annotation());
    navigation_input(ui, state, &response, rect, &viewport, on_minimap, tool_armed, pane);

    // Minimap navigation: click or drag moves the view centre there.
    if let (Some(mini), Some(mini_response), Some(slide)) = (minimap, &minimap_response, &cx.slide)
        && (mini_response.clicked() || mini_response.dragged())
        && let Some(pos) = mini_response.interact_pointer_pos()
    {
        let (w, h) = slide.layer.source.metadata().level0_size_px();
        let pos_in_slide_px = DVec2::new(
            f64::from((pos.x - mini.min.x) / mini.width()) * w as f64,
            f64::from((pos.y - mini.min.y) / mini.height()) * h as f64,
        );
        state.camera.center_in_world = slide.layer.world_from_slide.transform_point2(pos_in_slide_px);
    }

    // Cursor readout and the cell under the cursor.
    let camera = state.camera;
    let world_from_screen = camera.world_from_screen(&viewport);
    let hover_in_screen = response
        .hover_pos()
        .filter(|_| !on_minimap)
        .map(|pos| to_dvec(pos - rect.min));
    let dragging = response.dragged();
    let slide_from_world = cx.slide.as_ref().map(|s| s.layer.world_from_slide.inverse());
    // The compared sample's cell under the cursor (its hover card; the open sample's hover state
    // is left alone).
    let compare_hovered = match (&cx.compare, hover_in_screen) {
        (Some(compare), Some(pos)) if compare_here && !dragging && pane.shows_cells() => {
            compare.cells.as_ref().and_then(|c| {
                c.pick(
                    world_from_screen.transform_point2(pos),
                    camera.um_per_screen_px(&viewport),
                )
            })
        }
        _ => None,
    };
    // A pane of the split view leaves the cursor to the pane the pointer is over. Over the
    // compared sample there is no open slide's pixel or open cell under it.
    if pane.layers.is_none() || hover_in_screen.is_some() {
        state.cursor_in_world = hover_in_screen.map(|p| world_from_screen.transform_point2(p));
        state.cursor_in_slide_px = match (slide_from_world.filter(|_| !compare_here), state.cursor_in_world) {
            (Some(slide_from_world), Some(world)) => Some(slide_from_world.transform_point2(world)),
            _ => None,
        };
        state.hovered_cell = match (&cx.cells, state.cursor_in_world) {
            (Some(cells), Some(world)) if !dragging && !tool_armed && !compare_here && pane.shows_cells() => {
                cells.pick(world, camera.um_per_screen_px(&viewport))
            }
            _ => None,
        };
    }
    let cells_index = cx.cells.as_ref().map(|c| (&c.index, c.len()));
    let mut tool_cx = ToolContext {
        response: &response,
        rect,
        world_from_screen,
        points_per_um: camera.points_per_um,
        cells: cells_index,
        slide_from_world,
        selections: cx.selections,
        edits: &mut *cx.edits,
    };
    let tool_used = match &mut state.landmarks {
        // While landmarks are placed, clicks are theirs (drags still pan).
        Some(landmarks) => landmarks.pointer_input(Tool::Navigate, &mut tool_cx),
        None => {
            let tool = state.tools.tool;
            match state.tools.armed() {
                Some(armed) if tool_armed => armed.pointer_input(tool, &mut tool_cx),
                _ => false,
            }
        }
    };
    if response.clicked() && !tool_used && state.landmarks.is_none() {
        state.pinned_cell = state.hovered_cell;
    }
    if let Some((index, n)) = cells_index {
        state.tools.selection.refresh_drawn_cells(index, n);
    }

    // The slide, then the cells, drawn by the GPU renderers.
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, Color32::from_gray(40));
    if compare_here {
        if let Some(slide) = cx
            .compare
            .as_deref_mut()
            .and_then(|c| c.slide.as_mut())
            .filter(|_| !cx.exporting && pane.shows_slide())
        {
            let list = slide.layer.frame(&camera, &viewport);
            painter.add(egui_wgpu::Callback::new_paint_callback(
                rect,
                RendererCallback::<TileRenderer>::new(response.id.value(), list),
            ));
        }
        if let Some(cells) = cx
            .compare
            .as_deref_mut()
            .and_then(|c| c.cells.as_mut())
            .filter(|_| pane.shows_cells())
        {
            draw_cells(
                &painter,
                rect,
                response.id.value(),
                cells,
                &camera,
                &viewport,
                compare_hovered,
            );
        }
    } else if let Some(slide) = cx.slide.as_deref_mut().filter(|_| !cx.exporting && pane.shows_slide()) {
        let list = slide.layer.frame(&camera, &viewport);
        if slide.layer.visible {
            painter.add(egui_wgpu::Callback::new_paint_callback(
                rect,
                RendererCallback::<TileRenderer>::new(response.id.value(), list),
            ));
        }
    }
    if let Some(morphology) = cx
        .morphology
        .as_deref_mut()
        .filter(|m| !cx.exporting && !compare_here && m.visible && pane.shows_morphology())
    {
        let list = morphology.frame(&camera, &viewport);
        painter.add(egui_wgpu::Callback::new_paint_callback(
            rect,
            RendererCallback::<ChannelTileRenderer>::new(response.id.value(), list),
        ));
    }
    // The virtual (or measured) expression heatmap, over the slide and below the cells.
    if let Some(patches) = cx.patches.as_deref_mut().filter(|_| !cx.exporting && !compare_here)
        && let Some(which) = pane.shows_patches(patches.visible)
    {
        let texture = patches.texture(ui.ctx(), which);
        let (min, max) = patches.world_box();
        let screen_from_world = camera.screen_from_world(&viewport);
        let a = screen_from_world.transform_point2(min);
        let b = screen_from_world.transform_point2(max);
        let on_screen = egui::Rect::from_two_pos(
            rect.min + egui::vec2(a.x as f32, a.y as f32),
            rect.min + egui::vec2(b.x as f32, b.y as f32),
        );
        let uv = egui::Rect::from_min_max(
            egui::pos2(if a.x <= b.x { 0.0 } else { 1.0 }, if a.y <= b.y { 0.0 } else { 1.0 }),
            egui::pos2(if a.x <= b.x { 1.0 } else { 0.0 }, if a.y <= b.y { 1.0 } else { 0.0 }),
        );
        painter.image(texture, on_screen, uv, Color32::WHITE);
    }
    let highlight = state.hovered_cell.or(cx.highlight).or(state.pinned_cell);
    if let Some(cells) = cx.cells.as_deref_mut().filter(|_| !compare_here && pane.shows_cells()) {
        draw_cells(
            &painter,
            rect,
            response.id.value(),
            cells,
            &camera,
            &viewport,
            highlight,
        );
    }

    let screen_from_world = camera.screen_from_world(&viewport);
    if compare_here {
        scale_bar_ui(&painter, rect, camera.points_per_um, cx.has_physical_scale, cx.units);
        if let (Some(compare), Some(cell), Some(pointer)) = (&cx.compare, compare_hovered, response.hover_pos())
            && let Some(info) = compare.cells.as_ref().and_then(|c| c.cell_info(cell))
        {
            hover_card_ui(ui, response.id.with("compare_hover_card"), pointer, &info);
        }
        return;
    }
    let vertex_handles = state.tools.tool == Tool::EditVertices;
    selections_overlay_ui(&painter, cx.selections, &screen_from_world, rect, vertex_handles);
    annotations_overlay_ui(&painter, cx.annotations, &screen_from_world, rect, cx.units);
    let paint_cx = PaintContext {
        screen_from_world,
        rect,
        hover: response.hover_pos(),
        units: cx.units,
        world_from_slide: cx.slide.as_ref().map(|s| s.layer.world_from_slide),
    };
    state.tools.paint(&painter, &paint_cx);
    if state.tools.tool == Tool::Brush
        && tool_armed
        && let Some(pos) = response.hover_pos()
    {
        brush_outline(&painter, pos, state.tools.selection.brush_radius_points);
    }
    scale_bar_ui(&painter, rect, camera.points_per_um, cx.has_physical_scale, cx.units);
    if let (Some(mini), Some(slide)) = (minimap, &cx.slide)
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
    if let Some(landmarks) = &state.landmarks
        && cx.slide.is_some()
    {
        landmarks.paint(Tool::Navigate, &painter, &paint_cx);
    }

    if let Some(slide) = &cx.slide {
        let stats = slide.layer.last_frame;
        if stats.ready_tiles < stats.visible_tiles && slide.layer.is_loading() && slide.layer.visible {
            let text = format!("loading tiles {}/{}", stats.ready_tiles, stats.visible_tiles);
            note_ui(&painter, rect.left_top() + Vec2::new(10.0, 10.0), text);
        }
    }
    // Hover card: shown at once (no tooltip delay), beside the pointer, never taking input.
    if let (Some(cells), Some(cell), false, Some(pointer)) =
        (&cx.cells, state.hovered_cell, dragging, response.hover_pos())
        && let Some(info) = cells.cell_info(cell)
    {
        hover_card_ui(ui, response.id.with("cell_hover_card"), pointer, &info);
    }
}

/// The cells (and, zoomed out, the transcripts' density below them) through the GPU renderers.
fn draw_cells(
    painter: &egui::Painter,
    rect: Rect,
    view_id: u64,
    cells: &mut CellLayer,
    camera: &Camera,
    viewport: &Viewport,
    highlight: Option<u32>,
) {
    let list = cells.frame(camera, viewport, highlight);
    if let Some(density) = cells.take_transcript_density() {
        painter.add(egui_wgpu::Callback::new_paint_callback(
            rect,
            RendererCallback::<TranscriptDensityRenderer>::new(view_id, density),
        ));
    }
    if let Some(list) = list {
        painter.add(egui_wgpu::Callback::new_paint_callback(
            rect,
            RendererCallback::<CellRenderer>::new(view_id, list),
        ));
    }
}

/// The hover card of a cell: shown at once (no tooltip delay), beside the pointer, never taking
/// input.
fn hover_card_ui(ui: &egui::Ui, id: egui::Id, pointer: egui::Pos2, info: &CellInfo) {
    egui::Area::new(id)
        .order(egui::Order::Tooltip)
        .fixed_pos(pointer + Vec2::new(18.0, 18.0))
        .interactable(false)
        .show(ui.ctx(), |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| cell_info_ui(ui, info));
        });
}

/// Zoom (wheel, pinch, double-click, keys), drag pan with optional inertia (the single view
/// only). Keys move the view from the primary pane only.
#[allow(clippy::too_many_arguments)]
fn navigation_input(
    ui: &egui::Ui,
    state: &mut ViewerState,
    response: &egui::Response,
    rect: Rect,
    viewport: &Viewport,
    on_minimap: bool,
    tool_armed: bool,
    pane: Pane,
) {
    let camera = &mut state.camera;
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
        state.pan_velocity = state.pan_velocity * 0.5 + (delta / dt) * 0.5;
    } else if pane.layers.is_some() {
        // The split view's panes share the camera: no inertia there (each pane would glide it).
        state.pan_velocity = DVec2::ZERO;
    } else if state.pan_inertia && state.pan_velocity.length() > INERTIA_STOP_POINTS_PER_S {
        camera.pan_by_screen(state.pan_velocity * dt);
        state.pan_velocity *= (-INERTIA_DECAY_PER_S * dt).exp();
        ui.ctx().request_repaint();
    } else {
        state.pan_velocity = DVec2::ZERO;
    }

    // Keyboard, unless a text field has focus.
    if pane.primary && !ui.ctx().egui_wants_keyboard_input() {
        let center = viewport.size_in_points * 0.5;
        let pan = viewport.size_in_points * KEY_PAN_FRACTION;
        let mut fit = false;
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
            fit = i.key_pressed(egui::Key::Num0);
        });
        if fit {
            state.fit_requested = true;
        }
    }
}
