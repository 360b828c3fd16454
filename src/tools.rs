//! Pointer tools: which tool is armed (selection tools that pick cells, annotation tools that
//! draw points, lines, areas and labels), the shape being drawn (in world µm), and how modifier
//! keys combine it with the active selection. No widgets; the viewer feeds pointer positions in.

use cs_analysis::{CellSet, Combine, GridIndex, Shape, cells_in_shape};

use crate::annotations::AnnotationShape;
use glam::DVec2;

/// The viewer's pointer tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// Drag pans, wheel zooms, click inspects a cell.
    Navigate,
    /// Freehand: drag around the cells.
    Lasso,
    /// Click vertices; double-click or Enter closes, Backspace removes the last one.
    Polygon,
    /// Drag from corner to corner.
    Rectangle,
    /// Paint over cells with a round brush.
    Brush,
    /// Drag the vertices of the active selection's polygons.
    EditVertices,
    /// Annotation: click to place a point.
    AnnotatePoint,
    /// Annotation: drag a ruler, or click vertices of a path (double-click or Enter ends it).
    AnnotateLine,
    /// Annotation: click vertices of an area (double-click or Enter closes it).
    AnnotatePolygon,
    /// Annotation: drag a rectangle.
    AnnotateRectangle,
    /// Annotation: click to place a text label.
    AnnotateText,
}

impl Tool {
    /// The tools of the Selections tab.
    pub const SELECTION: [Tool; 6] = [
        Tool::Navigate,
        Tool::Lasso,
        Tool::Polygon,
        Tool::Rectangle,
        Tool::Brush,
        Tool::EditVertices,
    ];
    /// The tools of the Annotations tab.
    pub const ANNOTATION: [Tool; 6] = [
        Tool::Navigate,
        Tool::AnnotatePoint,
        Tool::AnnotateLine,
        Tool::AnnotatePolygon,
        Tool::AnnotateRectangle,
        Tool::AnnotateText,
    ];
    pub const ALL: [Tool; 11] = [
        Tool::Navigate,
        Tool::Lasso,
        Tool::Polygon,
        Tool::Rectangle,
        Tool::Brush,
        Tool::EditVertices,
        Tool::AnnotatePoint,
        Tool::AnnotateLine,
        Tool::AnnotatePolygon,
        Tool::AnnotateRectangle,
        Tool::AnnotateText,
    ];

    /// Annotation tools draw without cells; selection tools need them.
    pub fn is_annotation(self) -> bool {
        matches!(
            self,
            Tool::AnnotatePoint
                | Tool::AnnotateLine
                | Tool::AnnotatePolygon
                | Tool::AnnotateRectangle
                | Tool::AnnotateText
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            Tool::Navigate => "Navigate",
            Tool::Lasso => "Lasso",
            Tool::Polygon => "Polygon",
            Tool::Rectangle => "Rectangle",
            Tool::Brush => "Brush",
            Tool::EditVertices => "Edit",
            Tool::AnnotatePoint => "Point",
            Tool::AnnotateLine => "Ruler",
            Tool::AnnotatePolygon => "Area",
            Tool::AnnotateRectangle => "Box",
            Tool::AnnotateText => "Text",
        }
    }

    /// Keyboard shortcut (shown in tooltips).
    pub fn key(self) -> egui::Key {
        match self {
            Tool::Navigate => egui::Key::N,
            Tool::Lasso => egui::Key::L,
            Tool::Polygon => egui::Key::P,
            Tool::Rectangle => egui::Key::R,
            Tool::Brush => egui::Key::B,
            Tool::EditVertices => egui::Key::E,
            Tool::AnnotatePoint => egui::Key::O,
            Tool::AnnotateLine => egui::Key::M,
            Tool::AnnotatePolygon => egui::Key::G,
            Tool::AnnotateRectangle => egui::Key::X,
            Tool::AnnotateText => egui::Key::T,
        }
    }

    pub fn hint(self) -> &'static str {
        match self {
            Tool::Navigate => "Drag to pan, wheel to zoom, click a cell to inspect it",
            Tool::Lasso => "Drag around cells. Shift adds, Alt subtracts, Shift+Alt intersects",
            Tool::Polygon => {
                "Click vertices; double-click or Enter closes; Backspace removes the last vertex. \
                 Shift adds, Alt subtracts, Shift+Alt intersects"
            }
            Tool::Rectangle => "Drag from corner to corner. Shift adds, Alt subtracts, Shift+Alt intersects",
            Tool::Brush => "Paint over cells. Shift adds, Alt subtracts, Shift+Alt intersects",
            Tool::EditVertices => "Drag a vertex of the active selection",
            Tool::AnnotatePoint => "Click to place a point annotation",
            Tool::AnnotateLine => {
                "Drag to measure a distance, or click the vertices of a path (double-click or Enter ends it)"
            }
            Tool::AnnotatePolygon => "Click the vertices of an area; double-click or Enter closes it",
            Tool::AnnotateRectangle => "Drag a box from corner to corner",
            Tool::AnnotateText => "Click to place the text typed in the Annotations tab",
        }
    }
}

/// Shift adds, Alt subtracts, both intersect; no modifier replaces the active selection's shapes.
pub fn combine_from_modifiers(modifiers: egui::Modifiers) -> Combine {
    match (modifiers.shift, modifiers.alt) {
        (true, true) => Combine::Intersect,
        (true, false) => Combine::Add,
        (false, true) => Combine::Subtract,
        (false, false) => Combine::Replace,
    }
}

/// A shape being drawn, in world µm.
#[derive(Debug, Clone, PartialEq)]
pub enum Drawing {
    Lasso(Vec<DVec2>),
    /// An annotation path or ruler (open).
    Line(Vec<DVec2>),
    Polygon(Vec<DVec2>),
    Rectangle(DVec2, DVec2),
    Brush {
        centers: Vec<DVec2>,
        radius_um: f64,
    },
}

fn to_f32(points: &[DVec2]) -> Vec<[f32; 2]> {
    points.iter().map(|p| [p.x as f32, p.y as f32]).collect()
}

impl Drawing {
    /// The finished shape, or None when there is too little of it (fewer than three vertices, a
    /// rectangle without area, an empty stroke).
    pub fn to_shape(&self) -> Option<Shape> {
        match self {
            Drawing::Lasso(points) | Drawing::Polygon(points) => {
                (points.len() >= 3).then(|| Shape::Polygon(to_f32(points)))
            }
            Drawing::Rectangle(a, b) => {
                let (min, max) = (a.min(*b), a.max(*b));
                (max.x > min.x && max.y > min.y)
                    .then(|| Shape::Polygon(to_f32(&[min, DVec2::new(max.x, min.y), max, DVec2::new(min.x, max.y)])))
            }
            Drawing::Brush { centers, radius_um } => (!centers.is_empty() && *radius_um > 0.0).then(|| Shape::Brush {
                centers_um: to_f32(centers),
                radius_um: *radius_um as f32,
            }),
            Drawing::Line(_) => None,
        }
    }

    /// The finished annotation, or None when there is too little of it.
    pub fn to_annotation(&self) -> Option<AnnotationShape> {
        let arrays = |points: &[DVec2]| points.iter().map(|p| p.to_array()).collect::<Vec<_>>();
        match self {
            Drawing::Line(points) => {
                let mut points = points.clone();
                points.dedup();
                (points.len() >= 2).then(|| AnnotationShape::Line {
                    points_um: arrays(&points),
                })
            }
            Drawing::Polygon(points) | Drawing::Lasso(points) => {
                (points.len() >= 3).then(|| AnnotationShape::Polygon {
                    points_um: arrays(points),
                })
            }
            Drawing::Rectangle(a, b) => {
                let (min, max) = (a.min(*b), a.max(*b));
                (max.x > min.x && max.y > min.y).then(|| AnnotationShape::Rectangle {
                    min_um: min.to_array(),
                    max_um: max.to_array(),
                })
            }
            Drawing::Brush { .. } => None,
        }
    }

    /// Adds a pointer position to a freehand lasso or brush stroke when it moved far enough
    /// (`min_step_um`), so paths stay light.
    pub fn extend(&mut self, pos_in_world: DVec2, min_step_um: f64) {
        match self {
            Drawing::Lasso(points) => {
                if points
                    .last()
                    .is_none_or(|last| last.distance(pos_in_world) >= min_step_um)
                {
                    points.push(pos_in_world);
                }
            }
            Drawing::Brush { centers, radius_um } => {
                let step = min_step_um.max(*radius_um * 0.5);
                if centers.last().is_none_or(|last| last.distance(pos_in_world) >= step) {
                    centers.push(pos_in_world);
                }
            }
            Drawing::Rectangle(_, corner) => *corner = pos_in_world,
            Drawing::Polygon(_) => {}
            Drawing::Line(points) => {
                if let Some(last) = points.last_mut() {
                    *last = pos_in_world;
                }
            }
        }
    }
}

/// The tool state of the viewer.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolState {
    pub tool: Tool,
    /// Brush radius in screen points (converted to µm when a stroke starts).
    pub brush_radius_points: f32,
    pub drawing: Option<Drawing>,
    /// The vertex being dragged by the edit tool: (step, vertex).
    pub dragged_vertex: Option<(usize, usize)>,
    /// Dim the cells outside the active selection.
    pub dim_outside: bool,
    /// What the text tool places.
    pub label_text: String,
    /// The cells under `drawing`, computed once per change of the drawing (the live count in the
    /// viewer and the live statistics in the panel both read it).
    drawn_cells: Option<(Drawing, CellSet)>,
}

impl ToolState {
    /// The cells under the shape being drawn (None when nothing with an inside is being drawn).
    pub fn drawn_cells(&mut self, index: &GridIndex, cell_count: usize) -> Option<&CellSet> {
        let Some(drawing) = self.drawing.as_ref().filter(|_| !self.tool.is_annotation()) else {
            self.drawn_cells = None;
            return None;
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
        self.drawn_cells.as_ref().map(|(_, cells)| cells)
    }
}

impl Default for ToolState {
    fn default() -> Self {
        Self {
            tool: Tool::Navigate,
            brush_radius_points: 20.0,
            drawing: None,
            dragged_vertex: None,
            dim_outside: true,
            label_text: "Label".to_owned(),
            drawn_cells: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modifiers_choose_how_shapes_combine() {
        let m = |shift, alt| egui::Modifiers {
            shift,
            alt,
            ..Default::default()
        };
        assert_eq!(combine_from_modifiers(m(false, false)), Combine::Replace);
        assert_eq!(combine_from_modifiers(m(true, false)), Combine::Add);
        assert_eq!(combine_from_modifiers(m(false, true)), Combine::Subtract);
        assert_eq!(combine_from_modifiers(m(true, true)), Combine::Intersect);
    }

    #[test]
    fn drawings_become_shapes_only_when_they_have_an_inside() {
        let mut lasso = Drawing::Lasso(vec![DVec2::ZERO]);
        lasso.extend(DVec2::new(0.1, 0.0), 1.0);
        assert_eq!(lasso, Drawing::Lasso(vec![DVec2::ZERO]), "too close to the last point");
        lasso.extend(DVec2::new(10.0, 0.0), 1.0);
        assert!(lasso.to_shape().is_none());
        lasso.extend(DVec2::new(10.0, 10.0), 1.0);
        assert!(matches!(lasso.to_shape(), Some(Shape::Polygon(p)) if p.len() == 3));

        let mut rect = Drawing::Rectangle(DVec2::new(5.0, 5.0), DVec2::new(5.0, 5.0));
        assert!(rect.to_shape().is_none());
        rect.extend(DVec2::new(1.0, 9.0), 1.0);
        let Some(Shape::Polygon(corners)) = rect.to_shape() else {
            panic!("rectangle")
        };
        assert_eq!(corners, [[1.0, 5.0], [5.0, 5.0], [5.0, 9.0], [1.0, 9.0]]);

        let mut brush = Drawing::Brush {
            centers: vec![DVec2::ZERO],
            radius_um: 4.0,
        };
        brush.extend(DVec2::new(1.0, 0.0), 0.5);
        brush.extend(DVec2::new(3.0, 0.0), 0.5);
        assert!(matches!(brush.to_shape(), Some(Shape::Brush { centers_um, .. }) if centers_um.len() == 2));
    }

    #[test]
    fn drawn_cells_follow_the_drawing() {
        let (x, y): (Vec<f64>, Vec<f64>) = (0..100).map(|i| ((i % 10) as f64 + 0.5, (i / 10) as f64 + 0.5)).unzip();
        let index = GridIndex::build(&x, &y);
        let mut tools = ToolState {
            drawing: Some(Drawing::Rectangle(DVec2::ZERO, DVec2::new(5.0, 5.0))),
            ..Default::default()
        };
        assert_eq!(tools.drawn_cells(&index, 100).map(CellSet::count), Some(25));
        if let Some(drawing) = &mut tools.drawing {
            drawing.extend(DVec2::new(10.0, 5.0), 1.0);
        }
        assert_eq!(tools.drawn_cells(&index, 100).map(CellSet::count), Some(50));
        tools.drawing = None;
        assert!(tools.drawn_cells(&index, 100).is_none());
    }
}
