//! The annotation tools: a click places a point or a text label; a drag measures with the ruler
//! or draws a box; clicks place the vertices of a path or an area (double-click or Enter ends it).
//! While a shape is drawn its length or area is shown beside the pointer. Annotations need no
//! cells: they work with a slide alone.

use egui::{Color32, Vec2};

use crate::document::Edit;
use crate::io::records::AnnotationShape;
use crate::util::format::{format_area, format_length};
use crate::viewer::overlays::framed_label;
use crate::viewer::tools::{
    Drawing, PaintContext, Tool, ToolContext, ViewerTool, backspace_drawing, enter_ends, escape_drawing, paint_drawing,
};

/// Freehand drags keep a point every this many screen points.
const PATH_STEP_POINTS: f64 = 2.0;

/// The annotation tools' state.
#[derive(Debug, Clone, PartialEq)]
pub struct AnnotationTool {
    pub drawing: Option<Drawing>,
    /// What the text tool places.
    pub label_text: String,
}

impl Default for AnnotationTool {
    fn default() -> Self {
        Self {
            drawing: None,
            label_text: "Label".to_owned(),
        }
    }
}

impl AnnotationTool {
    /// Sends the annotation being drawn (a path, area or box) to be added.
    fn finish_annotation(&mut self, edits: &mut Vec<Edit>) {
        if let Some(shape) = self.drawing.take().and_then(|d| d.to_annotation()) {
            edits.push(Edit::AddAnnotation(shape));
        }
    }

    /// The text label's text: what was typed, else "Label".
    fn label(&self) -> String {
        let text = self.label_text.trim();
        if text.is_empty() {
            "Label".to_owned()
        } else {
            text.to_owned()
        }
    }
}

impl ViewerTool for AnnotationTool {
    fn pointer_input(&mut self, tool: Tool, cx: &mut ToolContext<'_>) -> bool {
        let pointer = cx.pointer();
        let press_origin = cx.press_origin();
        let step_um = PATH_STEP_POINTS / cx.points_per_um.max(1e-12);
        let primary = egui::PointerButton::Primary;
        let response = cx.response;
        match tool {
            Tool::AnnotatePoint | Tool::AnnotateText => {
                if response.clicked()
                    && let Some(pos) = pointer
                {
                    let at_um = cx.to_world(pos).to_array();
                    let shape = if tool == Tool::AnnotatePoint {
                        AnnotationShape::Point { at_um }
                    } else {
                        AnnotationShape::Text {
                            at_um,
                            text: self.label(),
                        }
                    };
                    cx.edits.push(Edit::AddAnnotation(shape));
                }
            }
            Tool::AnnotateRectangle | Tool::AnnotateLine => {
                if response.drag_started_by(primary)
                    && let Some(pos) = press_origin
                {
                    let start = cx.to_world(pos);
                    self.drawing = Some(if tool == Tool::AnnotateRectangle {
                        Drawing::Rectangle(start, start)
                    } else {
                        Drawing::Line(vec![start, start])
                    });
                }
                if response.dragged_by(primary)
                    && let Some(pos) = pointer
                {
                    let p = cx.to_world(pos);
                    if let Some(drawing) = &mut self.drawing {
                        drawing.extend(p, step_um);
                    }
                }
                let line = tool == Tool::AnnotateLine;
                if response.drag_stopped_by(primary) || (line && response.double_clicked()) {
                    self.finish_annotation(cx.edits);
                } else if line
                    && response.clicked()
                    && let Some(pos) = pointer
                {
                    let p = cx.to_world(pos);
                    match &mut self.drawing {
                        Some(Drawing::Line(points)) => points.push(p),
                        _ => self.drawing = Some(Drawing::Line(vec![p])),
                    }
                }
            }
            Tool::AnnotatePolygon => {
                if response.double_clicked() {
                    self.finish_annotation(cx.edits);
                } else if response.clicked()
                    && let Some(pos) = pointer
                {
                    let p = cx.to_world(pos);
                    match &mut self.drawing {
                        Some(Drawing::Polygon(points)) => points.push(p),
                        _ => self.drawing = Some(Drawing::Polygon(vec![p])),
                    }
                }
            }
            _ => return false,
        }
        true
    }

    fn escape(&mut self) -> bool {
        escape_drawing(&mut self.drawing)
    }

    fn backspace(&mut self) {
        backspace_drawing(&mut self.drawing);
    }

    fn enter(&mut self, _tool: Tool, _modifiers: egui::Modifiers, edits: &mut Vec<Edit>) {
        if enter_ends(&self.drawing) {
            self.finish_annotation(edits);
        }
    }

    /// The shape being drawn and its measurement at the pointer.
    fn paint(&self, _tool: Tool, painter: &egui::Painter, cx: &PaintContext) {
        let Some(drawing) = &self.drawing else { return };
        paint_drawing(painter, drawing, cx);
        let units = cx.units;
        let live = match drawing {
            Drawing::Line(points) | Drawing::Polygon(points) => {
                let mut points: Vec<[f64; 2]> = points.iter().map(|p| p.to_array()).collect();
                if let (Some(h), Drawing::Polygon(_)) = (cx.hover, drawing) {
                    points.push(cx.to_world(h).to_array());
                }
                let shape = if matches!(drawing, Drawing::Line(_)) {
                    AnnotationShape::Line { points_um: points }
                } else {
                    AnnotationShape::Polygon { points_um: points }
                };
                match (shape.area_um2(), shape.length_um()) {
                    (Some(area), _) => format_area(area, units),
                    (None, Some(length)) => format_length(length, units),
                    _ => String::new(),
                }
            }
            Drawing::Rectangle(a, b) => {
                let size = (*b - *a).abs();
                format!(
                    "{} × {} = {}",
                    format_length(size.x, units),
                    format_length(size.y, units),
                    format_area(size.x * size.y, units)
                )
            }
            Drawing::Lasso(_) | Drawing::Brush { .. } => String::new(),
        };
        if let Some(h) = cx.hover
            && !live.is_empty()
        {
            framed_label(
                painter,
                h + Vec2::new(14.0, -24.0),
                &live,
                Color32::from_rgb(255, 230, 0),
                13.0,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glam::DVec2;

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

    #[test]
    fn a_finished_shape_becomes_an_edit_and_the_text_tool_places_its_text() {
        let mut tool = AnnotationTool {
            drawing: Some(Drawing::Line(vec![DVec2::ZERO, DVec2::new(3.0, 4.0)])),
            label_text: "  ".into(),
        };
        let mut edits = Vec::new();
        tool.enter(Tool::AnnotateLine, egui::Modifiers::NONE, &mut edits);
        assert!(tool.drawing.is_none());
        assert!(matches!(
            &edits[..],
            [Edit::AddAnnotation(AnnotationShape::Line { .. })]
        ));
        assert_eq!(tool.label(), "Label", "an empty text places the default label");
    }
}
