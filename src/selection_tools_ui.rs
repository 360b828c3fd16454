//! The selection tools in the viewer: pointer and keyboard input that draws shapes and edits
//! vertices, and the overlays (selection outlines, the shape in progress, vertex handles, the
//! live count of cells under the shape being drawn).

use cs_analysis::{Combine, Shape};
use egui::{Color32, Pos2, Rect, Stroke, Vec2};
use glam::{DAffine2, DVec2};

use crate::app::ViewerApp;
use crate::tools::{Drawing, Tool, combine_from_modifiers};

/// Freehand paths keep a point every this many screen points.
const PATH_STEP_POINTS: f64 = 2.0;
/// A vertex handle is grabbed within this many screen points.
const HANDLE_GRAB_POINTS: f32 = 7.0;
/// Handles are drawn only for selections with at most this many vertices on screen.
const MAX_HANDLES: usize = 4000;

fn to_dvec(v: Vec2) -> DVec2 {
    DVec2::new(f64::from(v.x), f64::from(v.y))
}

/// Tool shortcuts, undo/redo, Esc/Enter/Backspace. Unless a text field has focus.
pub fn selection_keys(ui: &egui::Ui, app: &mut ViewerApp) {
    if ui.ctx().egui_wants_keyboard_input() {
        return;
    }
    let (keys, undo, redo, escape, enter, backspace) = ui.input_mut(|i| {
        let keys: Vec<Tool> = Tool::ALL
            .into_iter()
            .filter(|t| i.modifiers.is_none() && i.key_pressed(t.key()))
            .collect();
        let redo = i.consume_key(egui::Modifiers::COMMAND | egui::Modifiers::SHIFT, egui::Key::Z)
            || i.consume_key(egui::Modifiers::COMMAND, egui::Key::Y);
        let undo = i.consume_key(egui::Modifiers::COMMAND, egui::Key::Z);
        (
            keys,
            undo,
            redo,
            i.key_pressed(egui::Key::Escape),
            i.key_pressed(egui::Key::Enter),
            i.key_pressed(egui::Key::Backspace),
        )
    });
    if let Some(tool) = keys.last() {
        app.tools.tool = *tool;
        app.tools.drawing = None;
    }
    if escape {
        if app.tools.drawing.is_some() {
            app.tools.drawing = None;
        } else {
            app.tools.tool = Tool::Navigate;
        }
    }
    if backspace && let Some(Drawing::Polygon(points) | Drawing::Line(points)) = &mut app.tools.drawing {
        points.pop();
    }
    if enter && matches!(app.tools.drawing, Some(Drawing::Polygon(_) | Drawing::Line(_))) {
        if app.tools.tool.is_annotation() {
            crate::annotations_ui::finish_annotation(app);
        } else {
            let modifiers = ui.input(|i| i.modifiers);
            finish_drawing(app, combine_from_modifiers(modifiers));
        }
    }
    if undo {
        app.undo_edit();
    }
    if redo {
        app.redo_edit();
    }
}

/// Applies the shape being drawn to the active selection.
fn finish_drawing(app: &mut ViewerApp, combine: Combine) {
    let Some(drawing) = app.tools.drawing.take() else {
        return;
    };
    let (Some(shape), Some(cells)) = (drawing.to_shape(), &app.cells) else {
        return;
    };
    app.selections.apply(combine, shape, &cells.index, cells.len());
}

/// Pointer input for the armed tool. Returns true when the tool used the pointer (so the viewer
/// does not also pan or pin).
pub fn selection_input(
    ui: &egui::Ui,
    app: &mut ViewerApp,
    response: &egui::Response,
    world_from_screen: &DAffine2,
    rect: Rect,
    points_per_um: f64,
) -> bool {
    let tool = app.tools.tool;
    if tool == Tool::Navigate || tool.is_annotation() || app.cells.is_none() || app.landmarks.is_some() {
        return false;
    }
    let to_world = |pos: Pos2| world_from_screen.transform_point2(to_dvec(pos - rect.min));
    let pointer = response.interact_pointer_pos().or_else(|| response.hover_pos());
    let modifiers = ui.input(|i| i.modifiers);
    let step_um = PATH_STEP_POINTS / points_per_um.max(1e-12);
    match tool {
        Tool::Lasso | Tool::Rectangle | Tool::Brush => {
            // A drag is recognised once the pointer has moved a little: it starts where pressed.
            let press_origin = ui.input(|i| i.pointer.press_origin()).or(pointer);
            if response.drag_started_by(egui::PointerButton::Primary)
                && let Some(pos) = press_origin
            {
                let start = to_world(pos);
                app.tools.drawing = Some(match tool {
                    Tool::Lasso => Drawing::Lasso(vec![start]),
                    Tool::Rectangle => Drawing::Rectangle(start, start),
                    _ => Drawing::Brush {
                        centers: vec![start],
                        radius_um: f64::from(app.tools.brush_radius_points) / points_per_um.max(1e-12),
                    },
                });
            }
            if response.dragged_by(egui::PointerButton::Primary)
                && let (Some(pos), Some(drawing)) = (pointer, &mut app.tools.drawing)
            {
                drawing.extend(to_world(pos), step_um);
            }
            if response.drag_stopped_by(egui::PointerButton::Primary) {
                finish_drawing(app, combine_from_modifiers(modifiers));
            }
            true
        }
        Tool::Polygon => {
            if response.double_clicked() {
                finish_drawing(app, combine_from_modifiers(modifiers));
            } else if response.clicked()
                && let Some(pos) = pointer
            {
                let p = to_world(pos);
                match &mut app.tools.drawing {
                    Some(Drawing::Polygon(points)) => points.push(p),
                    _ => app.tools.drawing = Some(Drawing::Polygon(vec![p])),
                }
            }
            true
        }
        Tool::EditVertices => {
            edit_vertices_input(app, response, &to_world, world_from_screen, rect);
            true
        }
        Tool::Navigate
        | Tool::AnnotatePoint
        | Tool::AnnotateLine
        | Tool::AnnotatePolygon
        | Tool::AnnotateRectangle
        | Tool::AnnotateText => false,
    }
}

fn edit_vertices_input(
    app: &mut ViewerApp,
    response: &egui::Response,
    to_world: &dyn Fn(Pos2) -> DVec2,
    world_from_screen: &DAffine2,
    rect: Rect,
) {
    let screen_from_world = world_from_screen.inverse();
    let pointer = response.interact_pointer_pos();
    if response.drag_started_by(egui::PointerButton::Primary)
        && let (Some(pos), Some(selection)) = (pointer, app.selections.active())
    {
        let mut best: Option<(f32, usize, usize)> = None;
        for (s, step) in selection.steps.iter().enumerate() {
            if let Shape::Polygon(points) = &step.shape {
                for (v, p) in points.iter().enumerate() {
                    let q = screen_from_world.transform_point2(DVec2::new(f64::from(p[0]), f64::from(p[1])));
                    let d = (rect.min + Vec2::new(q.x as f32, q.y as f32)).distance(pos);
                    if d <= HANDLE_GRAB_POINTS && best.is_none_or(|b| d < b.0) {
                        best = Some((d, s, v));
                    }
                }
            }
        }
        if let Some((_, s, v)) = best {
            app.selections.remember();
            app.tools.dragged_vertex = Some((s, v));
        }
    }
    if let (Some((s, v)), Some(pos)) = (app.tools.dragged_vertex, pointer)
        && response.dragged_by(egui::PointerButton::Primary)
    {
        let p = to_world(pos);
        app.selections.move_vertex(s, v, [p.x as f32, p.y as f32]);
    }
    if response.drag_stopped_by(egui::PointerButton::Primary)
        && app.tools.dragged_vertex.take().is_some()
        && let Some(cells) = &app.cells
    {
        app.selections.refresh_active(&cells.index, cells.len());
    }
}

/// Outlines of the visible selections, the shape in progress with its live cell count
/// (`drawn_count`, from [`crate::tools::ToolState::drawn_cells`]), and vertex handles for the edit tool.
pub fn selections_overlay_ui(
    painter: &egui::Painter,
    app: &ViewerApp,
    screen_from_world: &DAffine2,
    rect: Rect,
    hover: Option<Pos2>,
    drawn_count: Option<usize>,
) {
    let to_screen = |p: DVec2| {
        let q = screen_from_world.transform_point2(p);
        rect.min + Vec2::new(q.x as f32, q.y as f32)
    };
    let to_screen_f32 = |p: &[f32; 2]| to_screen(DVec2::new(f64::from(p[0]), f64::from(p[1])));
    let scale = screen_from_world.matrix2.determinant().abs().sqrt() as f32;
    for (i, selection) in app.selections.items.iter().enumerate() {
        if !selection.visible {
            continue;
        }
        let active = app.selections.active == Some(i);
        let width = if active { 2.5 } else { 1.5 };
        for step in &selection.steps {
            let stroke = Stroke::new(width, selection.colour);
            match &step.shape {
                Shape::Polygon(points) => {
                    let screen: Vec<Pos2> = points.iter().map(to_screen_f32).collect();
                    if step.combine == Combine::Subtract {
                        let mut closed = screen.clone();
                        if let Some(first) = screen.first() {
                            closed.push(*first);
                        }
                        painter.extend(egui::Shape::dashed_line(&closed, stroke, 6.0, 4.0));
                    } else {
                        painter.add(egui::Shape::closed_line(screen, stroke));
                    }
                }
                Shape::Brush { centers_um, radius_um } => {
                    let radius = radius_um * scale;
                    let fill = selection.colour.gamma_multiply(0.25);
                    for c in centers_um {
                        painter.circle_filled(to_screen_f32(c), radius, fill);
                    }
                }
            }
        }
        if active && app.tools.tool == Tool::EditVertices {
            let count: usize = selection
                .steps
                .iter()
                .map(|s| match &s.shape {
                    Shape::Polygon(p) => p.len(),
                    Shape::Brush { .. } => 0,
                })
                .sum();
            if count <= MAX_HANDLES {
                for step in &selection.steps {
                    if let Shape::Polygon(points) = &step.shape {
                        for p in points {
                            let q = to_screen_f32(p);
                            painter.rect_filled(Rect::from_center_size(q, Vec2::splat(6.0)), 1.0, Color32::WHITE);
                            painter.rect_stroke(
                                Rect::from_center_size(q, Vec2::splat(6.0)),
                                1.0,
                                Stroke::new(1.0, selection.colour),
                                egui::StrokeKind::Middle,
                            );
                        }
                    }
                }
            }
        }
    }
    let Some(drawing) = &app.tools.drawing else {
        return;
    };
    let ink = Stroke::new(2.0, Color32::from_rgb(255, 230, 0));
    match drawing {
        Drawing::Lasso(points) => {
            let screen: Vec<Pos2> = points.iter().map(|p| to_screen(*p)).collect();
            painter.add(egui::Shape::line(screen, ink));
        }
        Drawing::Line(points) => {
            let screen: Vec<Pos2> = points.iter().map(|p| to_screen(*p)).collect();
            for p in &screen {
                painter.circle_filled(*p, 3.0, ink.color);
            }
            painter.add(egui::Shape::line(screen, ink));
        }
        Drawing::Polygon(points) => {
            let mut screen: Vec<Pos2> = points.iter().map(|p| to_screen(*p)).collect();
            for p in &screen {
                painter.circle_filled(*p, 3.0, ink.color);
            }
            if let Some(h) = hover {
                screen.push(h);
            }
            painter.add(egui::Shape::line(screen, ink));
        }
        Drawing::Rectangle(a, b) => {
            painter.rect_stroke(
                Rect::from_two_pos(to_screen(*a), to_screen(*b)),
                0.0,
                ink,
                egui::StrokeKind::Middle,
            );
        }
        Drawing::Brush { centers, radius_um } => {
            let radius = *radius_um as f32 * scale;
            for c in centers {
                painter.circle_filled(to_screen(*c), radius, ink.color.gamma_multiply(0.3));
            }
        }
    }
    // Live count of the cells under the shape being drawn.
    if let (Some(count), Some(h)) = (drawn_count, hover) {
        let galley = painter.layout_no_wrap(
            format!("{count} cells"),
            egui::FontId::proportional(13.0),
            Color32::WHITE,
        );
        let pos = h + Vec2::new(14.0, -22.0);
        painter.rect_filled(
            Rect::from_min_size(pos - Vec2::splat(3.0), galley.size() + Vec2::splat(6.0)),
            3.0,
            Color32::from_black_alpha(170),
        );
        painter.galley(pos, galley, Color32::WHITE);
    }
}
