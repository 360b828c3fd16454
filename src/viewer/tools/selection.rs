//! The selection tools: lasso, polygon, rectangle and brush draw a shape (in world µm) that is
//! combined with the active selection as the modifier keys say; the edit tool drags the active
//! selection's vertices. The cells under the shape being drawn are counted once per change of
//! the shape (the live count beside the pointer and the panel's live statistics both read it).

use cs_analysis::{CellSet, GridIndex, Shape, cells_in_shape};
use egui::{Pos2, Vec2};
use glam::DVec2;

use crate::document::Edit;
use crate::viewer::tools::{
    Drawing, PaintContext, Tool, ToolContext, ViewerTool, backspace_drawing, combine_from_modifiers, enter_ends,
    escape_drawing, paint_drawing, pointer_label,
};

/// Freehand paths keep a point every this many screen points.
const PATH_STEP_POINTS: f64 = 2.0;
/// A vertex handle is grabbed within this many screen points.
const HANDLE_GRAB_POINTS: f32 = 7.0;

/// The selection tools' state.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectionTool {
    /// Brush radius in screen points (converted to µm when a stroke starts).
    pub brush_radius_points: f32,
    pub drawing: Option<Drawing>,
    /// The vertex being dragged by the edit tool: (step, vertex).
    pub dragged_vertex: Option<(usize, usize)>,
    /// The cells under `drawing`, computed once per change of the drawing.
    drawn_cells: Option<(Drawing, CellSet)>,
}

impl Default for SelectionTool {
    fn default() -> Self {
        Self {
            brush_radius_points: 20.0,
            drawing: None,
            dragged_vertex: None,
            drawn_cells: None,
        }
    }
}

impl SelectionTool {
    /// Counts the cells under the shape being drawn when the shape changed since the last call.
    pub fn refresh_drawn_cells(&mut self, index: &GridIndex, cell_count: usize) {
        let Some(drawing) = &self.drawing else {
            self.drawn_cells = None;
            return;
        };
        let stale = self
            .drawn_cells
            .as_ref()
            .is_none_or(|(cached, cells)| cached != drawing || cells.universe() != cell_count);
        if stale {
            self.drawn_cells = drawing
                .to_shape()
                .map(|shape| (drawing.clone(), cells_in_shape(index, cell_count, &shape)));
        }
    }

    /// The cells under the shape being drawn, as last counted (None when nothing with an inside
    /// is being drawn).
    pub fn drawn_cells(&self) -> Option<&CellSet> {
        match (&self.drawing, &self.drawn_cells) {
            (Some(drawing), Some((cached, cells))) if cached == drawing => Some(cells),
            _ => None,
        }
    }

    /// Sends the shape being drawn to be combined with the active selection.
    fn finish_drawing(&mut self, modifiers: egui::Modifiers, edits: &mut Vec<Edit>) {
        if let Some(shape) = self.drawing.take().and_then(|d| d.to_shape()) {
            edits.push(Edit::ApplyShape(combine_from_modifiers(modifiers), shape));
        }
    }

    fn edit_vertices_input(&mut self, cx: &mut ToolContext<'_>) {
        let screen_from_world = cx.world_from_screen.inverse();
        let pointer = cx.response.interact_pointer_pos();
        let primary = egui::PointerButton::Primary;
        if cx.response.drag_started_by(primary)
            && let (Some(pos), Some(selection)) = (pointer, cx.selections.active())
        {
            let mut best: Option<(f32, usize, usize)> = None;
            for (s, step) in selection.steps.iter().enumerate() {
                if let Shape::Polygon(points) = &step.shape {
                    for (v, p) in points.iter().enumerate() {
                        let q = screen_from_world.transform_point2(DVec2::new(f64::from(p[0]), f64::from(p[1])));
                        let d = (cx.rect.min + Vec2::new(q.x as f32, q.y as f32)).distance(pos);
                        if d <= HANDLE_GRAB_POINTS && best.is_none_or(|b| d < b.0) {
                            best = Some((d, s, v));
                        }
                    }
                }
            }
            if let Some((_, s, v)) = best {
                cx.edits.push(Edit::BeginVertexDrag);
                self.dragged_vertex = Some((s, v));
            }
        }
        if let (Some((step, vertex)), Some(pos)) = (self.dragged_vertex, pointer)
            && cx.response.dragged_by(primary)
        {
            let p = cx.to_world(pos);
            cx.edits.push(Edit::MoveVertex {
                step,
                vertex,
                to_um: [p.x as f32, p.y as f32],
            });
        }
        if cx.response.drag_stopped_by(primary) && self.dragged_vertex.take().is_some() {
            cx.edits.push(Edit::EndVertexDrag);
        }
    }
}

impl ViewerTool for SelectionTool {
    fn pointer_input(&mut self, tool: Tool, cx: &mut ToolContext<'_>) -> bool {
        if cx.cells.is_none() {
            return false;
        }
        let pointer = cx.pointer();
        let modifiers = cx.response.ctx.input(|i| i.modifiers);
        let step_um = PATH_STEP_POINTS / cx.points_per_um.max(1e-12);
        let primary = egui::PointerButton::Primary;
        match tool {
            Tool::Lasso | Tool::Rectangle | Tool::Brush => {
                if cx.response.drag_started_by(primary)
                    && let Some(pos) = cx.press_origin()
                {
                    let start = cx.to_world(pos);
                    self.drawing = Some(match tool {
                        Tool::Lasso => Drawing::Lasso(vec![start]),
                        Tool::Rectangle => Drawing::Rectangle(start, start),
                        _ => Drawing::Brush {
                            centers: vec![start],
                            radius_um: f64::from(self.brush_radius_points) / cx.points_per_um.max(1e-12),
                        },
                    });
                }
                if cx.response.dragged_by(primary)
                    && let Some(pos) = pointer
                {
                    let p = cx.to_world(pos);
                    if let Some(drawing) = &mut self.drawing {
                        drawing.extend(p, step_um);
                    }
                }
                if cx.response.drag_stopped_by(primary) {
                    self.finish_drawing(modifiers, cx.edits);
                }
                true
            }
            Tool::Polygon => {
                if cx.response.double_clicked() {
                    self.finish_drawing(modifiers, cx.edits);
                } else if cx.response.clicked()
                    && let Some(pos) = pointer
                {
                    let p = cx.to_world(pos);
                    match &mut self.drawing {
                        Some(Drawing::Polygon(points)) => points.push(p),
                        _ => self.drawing = Some(Drawing::Polygon(vec![p])),
                    }
                }
                true
            }
            Tool::EditVertices => {
                self.edit_vertices_input(cx);
                true
            }
            _ => false,
        }
    }

    fn escape(&mut self) -> bool {
        escape_drawing(&mut self.drawing)
    }

    fn backspace(&mut self) {
        backspace_drawing(&mut self.drawing);
    }

    fn enter(&mut self, _tool: Tool, modifiers: egui::Modifiers, edits: &mut Vec<Edit>) {
        if enter_ends(&self.drawing) {
            self.finish_drawing(modifiers, edits);
        }
    }

    /// The shape being drawn, and the live count of the cells under it beside the pointer.
    fn paint(&self, _tool: Tool, painter: &egui::Painter, cx: &PaintContext) {
        if let Some(drawing) = &self.drawing {
            paint_drawing(painter, drawing, cx);
        }
        if let (Some(cells), Some(h)) = (self.drawn_cells(), cx.hover) {
            pointer_label(painter, h + Vec2::new(14.0, -22.0), format!("{} cells", cells.count()));
        }
    }
}

/// The brush's outline at the pointer.
pub fn brush_outline(painter: &egui::Painter, pos: Pos2, radius_points: f32) {
    painter.circle_stroke(
        pos,
        radius_points,
        egui::Stroke::new(1.5, egui::Color32::from_rgb(255, 230, 0)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawn_cells_follow_the_drawing() {
        let (x, y): (Vec<f64>, Vec<f64>) = (0..100).map(|i| ((i % 10) as f64 + 0.5, (i / 10) as f64 + 0.5)).unzip();
        let index = GridIndex::build(&x, &y);
        let mut tool = SelectionTool {
            drawing: Some(Drawing::Rectangle(DVec2::ZERO, DVec2::new(5.0, 5.0))),
            ..Default::default()
        };
        tool.refresh_drawn_cells(&index, 100);
        assert_eq!(tool.drawn_cells().map(CellSet::count), Some(25));
        if let Some(drawing) = &mut tool.drawing {
            drawing.extend(DVec2::new(10.0, 5.0), 1.0);
        }
        assert_eq!(tool.drawn_cells(), None, "stale until counted again");
        tool.refresh_drawn_cells(&index, 100);
        assert_eq!(tool.drawn_cells().map(CellSet::count), Some(50));
        tool.drawing = None;
        tool.refresh_drawn_cells(&index, 100);
        assert!(tool.drawn_cells().is_none());
    }
}
