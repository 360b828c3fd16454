//! Annotations in the viewer: pointer input of the annotation tools, the overlay (shapes in their
//! class colours, labels, measurements), and the Annotations tab (tools, classes, the list with
//! measurements, undo/redo, GeoJSON import and export).

use egui::{Color32, FontId, Pos2, Rect, Stroke, Vec2};
use glam::{DAffine2, DVec2};

use crate::annotations::{AnnotationShape, format_area, format_length};
use crate::app::{DialogPurpose, ViewerApp};
use crate::history::{EditTarget, redo_target, undo_target};
use crate::tools::{Drawing, Tool};

/// Freehand drags keep a point every this many screen points.
const PATH_STEP_POINTS: f64 = 2.0;

impl ViewerApp {
    /// Ctrl+Z: takes back the latest edit, to the selections or to the annotations.
    pub fn undo_edit(&mut self) {
        match undo_target(self.selections.last_undo_edit(), self.annotations.last_undo_edit()) {
            Some(EditTarget::Selections) => match &self.cells {
                Some(cells) => self.selections.undo(&cells.index, cells.len()),
                // Selections need their cells to be undone; annotations do not.
                None => self.annotations.undo(),
            },
            Some(EditTarget::Annotations) => self.annotations.undo(),
            None => {}
        }
    }

    /// Ctrl+Shift+Z / Ctrl+Y: makes the last undone edit again. An undone edit older than a
    /// later edit (to either) is not redone: redo never reorders the edits.
    pub fn redo_edit(&mut self) {
        let newest_undo = self.selections.last_undo_edit().max(self.annotations.last_undo_edit());
        if newest_undo.is_some() {
            if self.selections.last_redo_edit() < newest_undo {
                self.selections.clear_redo();
            }
            if self.annotations.last_redo_edit() < newest_undo {
                self.annotations.clear_redo();
            }
        }
        match redo_target(self.selections.last_redo_edit(), self.annotations.last_redo_edit()) {
            Some(EditTarget::Selections) => {
                if let Some(cells) = &self.cells {
                    self.selections.redo(&cells.index, cells.len());
                }
            }
            Some(EditTarget::Annotations) => self.annotations.redo(),
            None => {}
        }
    }

    /// Reads annotations from GeoJSON (QuPath's) on a worker thread; they are added when read.
    pub fn import_annotations(&mut self, path: &std::path::Path) {
        let world_from_file = self.selection_file_from_world().inverse();
        let job_path = path.to_path_buf();
        let label = format!("Reading annotations from {}", crate::app::display_name(path));
        match crate::jobs::spawn_job("annotation-import", label, self.repaint_callback(), move |_| {
            crate::annotations::read_for_import(&job_path, &world_from_file)
        }) {
            Ok(job) => self.annotation_import = Some((path.to_path_buf(), job)),
            Err(error) => self.toasts.error(format!("Cannot start reading annotations: {error}")),
        }
    }

    /// Adds the annotations of a finished import (once per frame).
    pub fn apply_annotation_import(&mut self) {
        let Some((path, job)) = &self.annotation_import else {
            return;
        };
        let result = match job.poll() {
            crate::jobs::JobStatus::Running => return,
            crate::jobs::JobStatus::Done(result) => result,
            crate::jobs::JobStatus::Lost => Err(anyhow::anyhow!("reading {} stopped unexpectedly", path.display())),
        };
        let path = path.clone();
        self.annotation_import = None;
        match result {
            Ok(import) => {
                let summary = crate::annotations::import_summary(&path, &import);
                self.annotations.import(import.annotations);
                self.toasts.note(summary);
            }
            Err(error) => self.toasts.error(format!("{error:#}")),
        }
    }

    pub fn is_importing_annotations(&self) -> bool {
        self.annotation_import.is_some()
    }

    /// Writes every annotation as GeoJSON (QuPath's layout) on the export thread.
    pub fn export_annotations(&mut self, path: std::path::PathBuf) {
        let annotations = self.annotations.clone();
        let file_from_world = self.selection_file_from_world();
        let count = annotations.items.len();
        self.start_export(move || {
            crate::annotations::write_annotations_geojson(&path, &annotations, &file_from_world)?;
            Ok(format!("{count} annotation(s) saved to {}", path.display()))
        });
    }
}

/// Ends the annotation being drawn (a path, area or box) and adds it.
pub fn finish_annotation(app: &mut ViewerApp) {
    let Some(drawing) = app.tools.drawing.take() else {
        return;
    };
    if let Some(shape) = drawing.to_annotation() {
        app.annotations.add(shape);
    }
}

/// Pointer input of the armed annotation tool. Returns true when it used the pointer.
pub fn annotation_input(
    app: &mut ViewerApp,
    response: &egui::Response,
    world_from_screen: &DAffine2,
    rect: Rect,
    points_per_um: f64,
) -> bool {
    let tool = app.tools.tool;
    if !tool.is_annotation() || app.landmarks.is_some() {
        return false;
    }
    let to_world = |pos: Pos2| {
        let v = pos - rect.min;
        world_from_screen.transform_point2(DVec2::new(f64::from(v.x), f64::from(v.y)))
    };
    let pointer = response.interact_pointer_pos().or_else(|| response.hover_pos());
    // A drag is recognised once the pointer has moved a little: it starts where it was pressed.
    let press_origin = response.ctx.input(|i| i.pointer.press_origin()).or(pointer);
    let step_um = PATH_STEP_POINTS / points_per_um.max(1e-12);
    let primary = egui::PointerButton::Primary;
    match tool {
        Tool::AnnotatePoint | Tool::AnnotateText => {
            if response.clicked()
                && let Some(pos) = pointer
            {
                let at_um = to_world(pos).to_array();
                let shape = if tool == Tool::AnnotatePoint {
                    AnnotationShape::Point { at_um }
                } else {
                    let text = app.tools.label_text.trim();
                    AnnotationShape::Text {
                        at_um,
                        text: if text.is_empty() {
                            "Label".to_owned()
                        } else {
                            text.to_owned()
                        },
                    }
                };
                app.annotations.add(shape);
            }
        }
        Tool::AnnotateRectangle => {
            if response.drag_started_by(primary)
                && let Some(pos) = press_origin
            {
                let start = to_world(pos);
                app.tools.drawing = Some(Drawing::Rectangle(start, start));
            }
            if response.dragged_by(primary)
                && let (Some(pos), Some(drawing)) = (pointer, &mut app.tools.drawing)
            {
                drawing.extend(to_world(pos), step_um);
            }
            if response.drag_stopped_by(primary) {
                finish_annotation(app);
            }
        }
        Tool::AnnotateLine => {
            if response.drag_started_by(primary)
                && let Some(pos) = press_origin
            {
                let start = to_world(pos);
                app.tools.drawing = Some(Drawing::Line(vec![start, start]));
            }
            if response.dragged_by(primary)
                && let (Some(pos), Some(drawing)) = (pointer, &mut app.tools.drawing)
            {
                drawing.extend(to_world(pos), step_um);
            }
            if response.drag_stopped_by(primary) || response.double_clicked() {
                finish_annotation(app);
            } else if response.clicked()
                && let Some(pos) = pointer
            {
                let p = to_world(pos);
                match &mut app.tools.drawing {
                    Some(Drawing::Line(points)) => points.push(p),
                    _ => app.tools.drawing = Some(Drawing::Line(vec![p])),
                }
            }
        }
        Tool::AnnotatePolygon => {
            if response.double_clicked() {
                finish_annotation(app);
            } else if response.clicked()
                && let Some(pos) = pointer
            {
                let p = to_world(pos);
                match &mut app.tools.drawing {
                    Some(Drawing::Polygon(points)) => points.push(p),
                    _ => app.tools.drawing = Some(Drawing::Polygon(vec![p])),
                }
            }
        }
        _ => return false,
    }
    true
}

/// A framed label with its top-left corner at `at`, moved left or up as needed to stay inside
/// the painter's clip rectangle (the viewer).
fn label(painter: &egui::Painter, at: Pos2, text: &str, colour: Color32, size: f32) -> Rect {
    let galley = painter.layout_no_wrap(text.to_owned(), FontId::proportional(size), Color32::WHITE);
    let frame_size = galley.size() + Vec2::splat(6.0);
    let bounds = painter.clip_rect();
    let at = Pos2::new(
        at.x.min(bounds.right() - frame_size.x).max(bounds.left()),
        at.y.min(bounds.bottom() - frame_size.y).max(bounds.top()),
    );
    let frame = Rect::from_min_size(at, frame_size);
    painter.rect_filled(frame, 3.0, Color32::from_black_alpha(170));
    painter.rect_stroke(frame, 3.0, Stroke::new(1.0, colour), egui::StrokeKind::Inside);
    painter.galley(at + Vec2::splat(3.0), galley, Color32::WHITE);
    frame
}

/// The annotations over the slide, in their class colours; the selected one thicker; lengths and
/// areas beside them when asked; the live measurement of an annotation being drawn.
pub fn annotations_overlay_ui(
    painter: &egui::Painter,
    app: &ViewerApp,
    screen_from_world: &DAffine2,
    rect: Rect,
    hover: Option<Pos2>,
) {
    let to_screen = |p: [f64; 2]| {
        let q = screen_from_world.transform_point2(DVec2::from_array(p));
        rect.min + Vec2::new(q.x as f32, q.y as f32)
    };
    let annotations = &app.annotations;
    // What is in view (with a margin for labels beside the shapes).
    let world_from_screen = screen_from_world.inverse();
    let corner = |p: Pos2| {
        let v = p - rect.min;
        world_from_screen.transform_point2(DVec2::new(f64::from(v.x), f64::from(v.y)))
    };
    let margin = 200.0 / screen_from_world.matrix2.determinant().abs().sqrt().max(1e-12);
    let corners = [
        rect.left_top(),
        rect.right_top(),
        rect.right_bottom(),
        rect.left_bottom(),
    ]
    .map(corner);
    let view_min = corners.iter().fold(DVec2::INFINITY, |m, c| m.min(*c)) - DVec2::splat(margin);
    let view_max = corners.iter().fold(DVec2::NEG_INFINITY, |m, c| m.max(*c)) + DVec2::splat(margin);
    for (i, annotation) in annotations.items.iter().enumerate() {
        let (min, max) = annotation.shape.bounds_um();
        if max[0] < view_min.x || max[1] < view_min.y || min[0] > view_max.x || min[1] > view_max.y {
            continue;
        }
        let colour = annotations.colour_of(annotation);
        let selected = annotations.selected == Some(i);
        let stroke = Stroke::new(if selected { 3.0 } else { 2.0 }, colour);
        let screen: Vec<Pos2> = annotation.shape.vertices_um().into_iter().map(to_screen).collect();
        let mut tag = annotation.name.clone();
        match &annotation.shape {
            AnnotationShape::Point { .. } => {
                if let Some(p) = screen.first() {
                    painter.circle(
                        *p,
                        if selected { 6.0 } else { 4.5 },
                        colour,
                        Stroke::new(1.5, Color32::WHITE),
                    );
                }
            }
            AnnotationShape::Line { .. } => {
                painter.add(egui::Shape::line(screen.clone(), stroke));
                for p in [screen.first(), screen.last()].into_iter().flatten() {
                    painter.circle_filled(*p, 3.0, colour);
                }
            }
            AnnotationShape::Polygon { .. } | AnnotationShape::Rectangle { .. } => {
                painter.add(egui::Shape::closed_line(screen.clone(), stroke));
            }
            AnnotationShape::Text { text, .. } => {
                if let Some(p) = screen.first() {
                    let size = if selected { 17.0 } else { 15.0 };
                    label(painter, *p, text, colour, size);
                }
                continue;
            }
        }
        if annotations.show_measurements {
            let measurement = annotation.shape.measurement();
            if !measurement.is_empty() {
                tag = if tag.is_empty() {
                    measurement
                } else {
                    format!("{tag}: {measurement}")
                };
            }
        }
        if !tag.is_empty() {
            // Beside the rightmost vertex, so it does not cover the shape.
            let anchor = screen
                .iter()
                .copied()
                .max_by(|a, b| a.x.total_cmp(&b.x))
                .unwrap_or(rect.center());
            label(painter, anchor + Vec2::new(6.0, -10.0), &tag, colour, 12.5);
        }
    }
    // The measurement of the annotation being drawn, at the cursor.
    if app.tools.tool.is_annotation()
        && let Some(drawing) = &app.tools.drawing
    {
        let live = match drawing {
            Drawing::Line(points) | Drawing::Polygon(points) => {
                let mut points: Vec<[f64; 2]> = points.iter().map(|p| p.to_array()).collect();
                if let (Some(h), Drawing::Polygon(_)) = (hover, drawing) {
                    let v = h - rect.min;
                    let q = screen_from_world
                        .inverse()
                        .transform_point2(DVec2::new(f64::from(v.x), f64::from(v.y)));
                    points.push(q.to_array());
                }
                let shape = if matches!(drawing, Drawing::Line(_)) {
                    AnnotationShape::Line { points_um: points }
                } else {
                    AnnotationShape::Polygon { points_um: points }
                };
                match (shape.area_um2(), shape.length_um()) {
                    (Some(area), _) => format_area(area),
                    (None, Some(length)) => format_length(length),
                    _ => String::new(),
                }
            }
            Drawing::Rectangle(a, b) => {
                let size = (*b - *a).abs();
                format!(
                    "{} × {} = {}",
                    format_length(size.x),
                    format_length(size.y),
                    format_area(size.x * size.y)
                )
            }
            Drawing::Lasso(_) | Drawing::Brush { .. } => String::new(),
        };
        if let Some(h) = hover
            && !live.is_empty()
        {
            label(
                painter,
                h + Vec2::new(14.0, -24.0),
                &live,
                Color32::from_rgb(255, 230, 0),
                13.0,
            );
        }
    }
}

/// The Annotations tab.
pub fn annotations_panel_ui(ui: &mut egui::Ui, app: &mut ViewerApp) {
    ui.horizontal_wrapped(|ui| {
        for tool in Tool::ANNOTATION {
            if ui
                .selectable_label(app.tools.tool == tool, tool.label())
                .on_hover_text(format!("{} ({:?})", tool.hint(), tool.key()))
                .clicked()
            {
                app.tools.tool = tool;
                app.tools.drawing = None;
            }
        }
    });
    if app.tools.tool == Tool::AnnotateText {
        ui.horizontal(|ui| {
            ui.label("Text:");
            ui.text_edit_singleline(&mut app.tools.label_text);
        });
    }
    ui.horizontal(|ui| {
        let annotations = &app.annotations;
        let (can_undo, can_redo) = (
            annotations.last_undo_edit().is_some(),
            annotations.last_redo_edit().is_some(),
        );
        if ui.add_enabled(can_undo, egui::Button::new("Undo")).clicked() {
            app.annotations.undo();
        }
        if ui.add_enabled(can_redo, egui::Button::new("Redo")).clicked() {
            app.annotations.redo();
        }
        ui.checkbox(&mut app.annotations.show_measurements, "Measurements");
    });
    ui.horizontal(|ui| {
        if ui
            .button("Import GeoJSON…")
            .on_hover_text("QuPath annotations (GeoJSON)")
            .clicked()
        {
            app.ask_for_file(DialogPurpose::ImportAnnotations);
        }
        if ui
            .add_enabled(!app.annotations.items.is_empty(), egui::Button::new("Export GeoJSON…"))
            .on_hover_text("For QuPath: coordinates in the slide's pixels when a slide is open")
            .clicked()
        {
            app.ask_for_file(DialogPurpose::ExportAnnotations);
        }
    });
    ui.separator();
    classes_ui(ui, app);
    ui.separator();
    list_ui(ui, app);
}

fn classes_ui(ui: &mut egui::Ui, app: &mut ViewerApp) {
    ui.label(egui::RichText::new("Classes").strong()).on_hover_text(
        "New annotations get the chosen class, and so does the selected annotation; click a colour to change it",
    );
    let mut changed_colour = None;
    let mut chosen = None;
    for (i, class) in app.annotations.classes.iter().enumerate() {
        ui.horizontal(|ui| {
            let mut colour = class.colour32();
            if ui.color_edit_button_srgba(&mut colour).changed() {
                changed_colour = Some((i, colour));
            }
            let count = app.annotations.items.iter().filter(|a| a.class == i).count();
            if ui
                .selectable_label(app.annotations.current_class == i, &class.name)
                .clicked()
            {
                chosen = Some(i);
            }
            ui.weak(count.to_string());
        });
    }
    if let Some(i) = chosen {
        app.annotations.current_class = i;
        // The selected annotation takes the class too, as in QuPath.
        if let Some(s) = app.annotations.selected
            && app.annotations.items.get(s).is_some_and(|a| a.class != i)
        {
            app.annotations.remember();
            app.annotations.items[s].class = i;
        }
    }
    if let Some((i, colour)) = changed_colour {
        // One undo step per visit to the colour picker: a drag over it changes it every frame.
        let id = egui::Id::unique("annotation-class-colour-edit");
        let now = ui.input(|inp| inp.time);
        let last: Option<(usize, f64)> = ui.data(|d| d.get_temp(id));
        if last.is_none_or(|(class, at)| class != i || now - at > 1.5) {
            app.annotations.remember();
        }
        ui.data_mut(|d| d.insert_temp(id, (i, now)));
        if let Some(class) = app.annotations.classes.get_mut(i) {
            class.colour = colour.to_srgba_unmultiplied();
        }
    }
    ui.horizontal(|ui| {
        let id = egui::Id::unique("new-annotation-class");
        let mut name: String = ui.data_mut(|d| d.get_temp::<String>(id).unwrap_or_default());
        ui.add(
            egui::TextEdit::singleline(&mut name)
                .hint_text("new class")
                .desired_width(140.0),
        );
        let add = ui
            .add_enabled(!name.trim().is_empty(), egui::Button::new("Add class"))
            .clicked();
        if add {
            app.annotations.remember();
            app.annotations.current_class = app.annotations.class_named(name.trim(), None);
            name.clear();
        }
        ui.data_mut(|d| d.insert_temp(id, name));
    });
}

fn list_ui(ui: &mut egui::Ui, app: &mut ViewerApp) {
    let annotations = &app.annotations;
    if annotations.items.is_empty() {
        ui.weak("No annotations yet: pick a tool above and draw on the slide.");
        return;
    }
    let total_area: f64 = annotations.items.iter().filter_map(|a| a.shape.area_um2()).sum();
    ui.label(format!(
        "{} annotation(s); areas total {}",
        annotations.items.len(),
        format_area(total_area)
    ));
    let mut select = None;
    let mut delete = None;
    let mut rename: Option<(usize, String)> = None;
    let mut renaming_ended = false;
    egui::Grid::new("annotation-list").striped(true).show(ui, |ui| {
        for (i, annotation) in annotations.items.iter().enumerate() {
            let colour = annotations.colour_of(annotation);
            let selected = annotations.selected == Some(i);
            let (swatch, _) = ui.allocate_exact_size(Vec2::splat(12.0), egui::Sense::hover());
            ui.painter().rect_filled(swatch, 2.0, colour);
            let title = match &annotation.shape {
                AnnotationShape::Text { text, .. } => format!("“{text}”"),
                shape => format!("{} {}", annotations.class_name(annotation), shape.kind()),
            };
            if ui
                .selectable_label(selected, title)
                .on_hover_text("Select it and centre the view on it")
                .clicked()
            {
                select = Some(i);
            }
            ui.label(annotation.shape.short_measurement())
                .on_hover_text(annotation.shape.measurement());
            if ui.small_button("Delete").on_hover_text("Delete (Del)").clicked() {
                delete = Some(i);
            }
            ui.end_row();
            if selected {
                ui.label("");
                let mut text = match &annotation.shape {
                    AnnotationShape::Text { text, .. } => text.clone(),
                    _ => annotation.name.clone(),
                };
                let hint = if matches!(annotation.shape, AnnotationShape::Text { .. }) {
                    "text"
                } else {
                    "name"
                };
                let field = ui.add(
                    egui::TextEdit::singleline(&mut text)
                        .hint_text(hint)
                        .desired_width(160.0),
                );
                if field.changed() {
                    rename = Some((i, text));
                }
                renaming_ended |= field.lost_focus();
                ui.end_row();
            }
        }
    });
    let delete_key = ui.input(|i| i.key_pressed(egui::Key::Delete)) && !ui.ctx().egui_wants_keyboard_input();
    if delete_key && let Some(s) = app.annotations.selected {
        delete = Some(s);
    }
    // One undo step per visit to the field: remember when typing starts, forget when it ends.
    let editing_id = egui::Id::unique("annotation-renaming");
    if renaming_ended || select.is_some() {
        ui.data_mut(|d| d.remove::<usize>(editing_id));
    }
    if let Some((i, text)) = rename {
        let already = ui.data(|d| d.get_temp::<usize>(editing_id)) == Some(i);
        if !already {
            app.annotations.remember();
            ui.data_mut(|d| d.insert_temp(editing_id, i));
        }
        if let Some(annotation) = app.annotations.items.get_mut(i) {
            match &mut annotation.shape {
                AnnotationShape::Text { text: t, .. } => *t = text,
                _ => annotation.name = text,
            }
        }
    }
    if let Some(i) = delete {
        app.annotations.delete(i);
    }
    if let Some(i) = select
        && let Some(annotation) = app.annotations.items.get(i)
    {
        let (min, max) = annotation.shape.bounds_um();
        app.annotations.selected = Some(i);
        app.view.camera.center_in_world = (DVec2::from_array(min) + DVec2::from_array(max)) / 2.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawings_become_annotations_when_they_have_enough_points() {
        let line = Drawing::Line(vec![DVec2::ZERO, DVec2::ZERO]);
        assert!(line.to_annotation().is_none(), "a click is not a ruler");
        let line = Drawing::Line(vec![DVec2::ZERO, DVec2::new(3.0, 4.0)]);
        assert_eq!(line.to_annotation().and_then(|a| a.length_um()), Some(5.0));
        let rect = Drawing::Rectangle(DVec2::new(4.0, 4.0), DVec2::ZERO);
        assert_eq!(
            rect.to_annotation(),
            Some(AnnotationShape::Rectangle {
                min_um: [0.0, 0.0],
                max_um: [4.0, 4.0]
            })
        );
        assert!(Drawing::Polygon(vec![DVec2::ZERO, DVec2::X]).to_annotation().is_none());
    }
}
