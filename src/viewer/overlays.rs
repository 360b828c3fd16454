//! What the viewer draws over the layers: the document's selections and annotations, the scale
//! bar, the minimap, notes, the colouring's legend (in exported images), and the cell card shown
//! on hover and in the inspector. Plain painter functions over the data they are given, so the
//! PNG export draws exactly what the screen shows.

use cs_analysis::{Combine, Shape};
use egui::{Color32, FontId, Pos2, Rect, Stroke, Vec2};
use glam::{DAffine2, DVec2};

use crate::document::annotations::Annotations;
use crate::document::selections::Selections;
use crate::io::records::AnnotationShape;
use crate::layers::camera::nice_scale_bar_um;
use crate::layers::cell_layer::{CellInfo, CellLayer, ColourBy};
use crate::util::format::{LengthUnits, format_scale_length};

const MINIMAP_MAX_SIDE_POINTS: f32 = 200.0;
const MINIMAP_MARGIN_POINTS: f32 = 12.0;
/// Handles are drawn only for selections with at most this many vertices on screen.
const MAX_HANDLES: usize = 4000;

/// Outlines of the visible selections (subtracted shapes dashed, brush strokes filled), the
/// active one thicker, with vertex handles for the edit tool (`vertex_handles`).
pub fn selections_overlay_ui(
    painter: &egui::Painter,
    selections: &Selections,
    screen_from_world: &DAffine2,
    rect: Rect,
    vertex_handles: bool,
) {
    let to_screen = |p: DVec2| {
        let q = screen_from_world.transform_point2(p);
        rect.min + Vec2::new(q.x as f32, q.y as f32)
    };
    let to_screen_f32 = |p: &[f32; 2]| to_screen(DVec2::new(f64::from(p[0]), f64::from(p[1])));
    let scale = screen_from_world.matrix2.determinant().abs().sqrt() as f32;
    for (i, selection) in selections.items.iter().enumerate() {
        if !selection.visible {
            continue;
        }
        let active = selections.active == Some(i);
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
        if active && vertex_handles {
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
}

/// A framed label with its top-left corner at `at`, moved left or up as needed to stay inside
/// the painter's clip rectangle (the viewer).
pub fn framed_label(painter: &egui::Painter, at: Pos2, text: &str, colour: Color32, size: f32) -> Rect {
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
/// areas beside them when asked. Those out of view are skipped.
pub fn annotations_overlay_ui(
    painter: &egui::Painter,
    annotations: &Annotations,
    screen_from_world: &DAffine2,
    rect: Rect,
    units: LengthUnits,
) {
    let to_screen = |p: [f64; 2]| {
        let q = screen_from_world.transform_point2(DVec2::from_array(p));
        rect.min + Vec2::new(q.x as f32, q.y as f32)
    };
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
                    framed_label(painter, *p, text, colour, size);
                }
                continue;
            }
        }
        if annotations.show_measurements {
            let measurement = annotation.shape.measurement(units);
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
            framed_label(painter, anchor + Vec2::new(6.0, -10.0), &tag, colour, 12.5);
        }
    }
}

/// A small dark label over the view.
pub fn note_ui(painter: &egui::Painter, pos: Pos2, text: String) {
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
    match &info.transcripts {
        Some(Ok(genes)) => {
            let total: u32 = genes.iter().map(|(_, n)| n).sum();
            ui.label(format!("Transcripts: {total} in {} genes", genes.len()));
            ui.horizontal_wrapped(|ui| {
                for (gene, count) in genes.iter().take(CELL_TRANSCRIPT_GENES) {
                    ui.label(format!("{gene} {count}"));
                }
                if genes.len() > CELL_TRANSCRIPT_GENES {
                    ui.weak(format!("and {} more", genes.len() - CELL_TRANSCRIPT_GENES));
                }
            });
        }
        Some(Err(error)) => {
            ui.colored_label(ui.visuals().error_fg_color, format!("Transcripts not read: {error}"));
        }
        None => {}
    }
}

/// Genes listed with a cell's transcripts.
const CELL_TRANSCRIPT_GENES: usize = 12;

pub fn minimap_rect(viewer: Rect, overview_size: Option<[usize; 2]>) -> Option<Rect> {
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

pub fn minimap_ui(
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

/// The scale bar in the bottom-left corner: a round length in µm (px when the slide has no
/// physical scale).
pub fn scale_bar_ui(painter: &egui::Painter, viewer: Rect, points_per_um: f64, physical: bool, units: LengthUnits) {
    const MAX_BAR_POINTS: f64 = 160.0;
    let length_um = nice_scale_bar_um(MAX_BAR_POINTS / points_per_um);
    if length_um <= 0.0 {
        return;
    }
    let length_points = (length_um * points_per_um) as f32;
    let label = if physical {
        format_scale_length(length_um, units)
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

/// The colouring's legend in the top-right corner: the visible classes with their colours, or
/// the numeric scale with its range.
pub fn legend_ui(painter: &egui::Painter, rect: Rect, cells: &CellLayer) {
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
