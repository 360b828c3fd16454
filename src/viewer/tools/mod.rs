//! The viewer's pointer tools: which tool is armed ([`Tool`]), the one trait they implement
//! ([`ViewerTool`]: pointer input, keys for the shape being drawn, its overlay), and the toolbox
//! that holds each tool with its own state ([`Toolbox`]): the selection tools that pick cells
//! ([`selection`]), the annotation tools ([`annotation`]) and landmark alignment ([`landmarks`]).
//! Tools change the document only through the [`Edit`]s they send.

pub mod annotation;
pub mod landmarks;
pub mod selection;

use cs_analysis::{Combine, GridIndex, Shape};
use egui::{Color32, Pos2, Rect, Stroke, Vec2};
use glam::{DAffine2, DVec2};

use crate::document::Edit;
use crate::document::selections::Selections;
use crate::io::records::AnnotationShape;
use crate::util::format::LengthUnits;

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

/// What a tool sees of the viewer for one frame, and where it sends its edits.
pub struct ToolContext<'a> {
    pub response: &'a egui::Response,
    /// The viewer's rectangle in window points.
    pub rect: Rect,
    pub world_from_screen: DAffine2,
    pub points_per_um: f64,
    /// The open cells' spatial index and count (the selection tools need them).
    pub cells: Option<(&'a GridIndex, usize)>,
    /// World µm to the open slide's level-0 pixels.
    pub slide_from_world: Option<DAffine2>,
    pub selections: &'a Selections,
    pub edits: &'a mut Vec<Edit>,
}

impl ToolContext<'_> {
    /// A window position in world µm.
    pub fn to_world(&self, pos: Pos2) -> DVec2 {
        let v = pos - self.rect.min;
        self.world_from_screen
            .transform_point2(DVec2::new(f64::from(v.x), f64::from(v.y)))
    }

    /// The pointer: where it is pressed, else where it hovers.
    pub fn pointer(&self) -> Option<Pos2> {
        self.response
            .interact_pointer_pos()
            .or_else(|| self.response.hover_pos())
    }

    /// Where a drag started (a drag is recognised once the pointer has moved a little).
    pub fn press_origin(&self) -> Option<Pos2> {
        self.response.ctx.input(|i| i.pointer.press_origin()).or(self.pointer())
    }
}

/// What the overlay of a tool is drawn with: the view's transform, the pointer, and how lengths
/// are written.
pub struct PaintContext {
    pub screen_from_world: DAffine2,
    pub rect: Rect,
    pub hover: Option<Pos2>,
    pub units: LengthUnits,
    /// The open slide's level-0 pixels to world µm.
    pub world_from_slide: Option<DAffine2>,
}

impl PaintContext {
    pub fn to_world(&self, pos: Pos2) -> DVec2 {
        let v = pos - self.rect.min;
        self.screen_from_world
            .inverse()
            .transform_point2(DVec2::new(f64::from(v.x), f64::from(v.y)))
    }

    pub fn to_screen(&self, p: DVec2) -> Pos2 {
        let q = self.screen_from_world.transform_point2(p);
        self.rect.min + Vec2::new(q.x as f32, q.y as f32)
    }
}

/// A pointer tool of the viewer, with its own state (as walkers' plugins and galileo's layers):
/// the viewer hands it the pointer while one of its tools is armed, and draws its overlay.
pub trait ViewerTool {
    /// Pointer input while `tool` (one of this tool's) is armed. Returns true when it used the
    /// pointer, so that the viewer does not also pan or pin a cell.
    fn pointer_input(&mut self, tool: Tool, cx: &mut ToolContext<'_>) -> bool;

    /// Esc: drops what is being drawn. Returns false when nothing was.
    fn escape(&mut self) -> bool {
        false
    }

    /// Backspace: removes the last vertex of a path or polygon being drawn.
    fn backspace(&mut self) {}

    /// Enter: ends the path or polygon being drawn.
    fn enter(&mut self, _tool: Tool, _modifiers: egui::Modifiers, _edits: &mut Vec<Edit>) {}

    /// Draws what the tool is making over the view.
    fn paint(&self, tool: Tool, painter: &egui::Painter, cx: &PaintContext);
}

/// The viewer's tools and which one is armed.
#[derive(Debug, Clone, PartialEq)]
pub struct Toolbox {
    pub tool: Tool,
    pub selection: selection::SelectionTool,
    pub annotation: annotation::AnnotationTool,
    /// Dim the cells outside the active selection.
    pub dim_outside: bool,
}

impl Default for Toolbox {
    fn default() -> Self {
        Self {
            tool: Tool::Navigate,
            selection: Default::default(),
            annotation: Default::default(),
            dim_outside: true,
        }
    }
}

impl Toolbox {
    /// Arms `tool`; a shape being drawn is dropped.
    pub fn arm(&mut self, tool: Tool) {
        self.tool = tool;
        self.selection.drawing = None;
        self.annotation.drawing = None;
    }

    /// The tool that answers while `self.tool` is armed (None: navigating).
    pub fn armed(&mut self) -> Option<&mut dyn ViewerTool> {
        match self.tool {
            Tool::Navigate => None,
            tool if tool.is_annotation() => Some(&mut self.annotation),
            _ => Some(&mut self.selection),
        }
    }

    /// Draws the armed tool's overlay.
    pub fn paint(&self, painter: &egui::Painter, cx: &PaintContext) {
        match self.tool {
            Tool::Navigate => {}
            tool if tool.is_annotation() => self.annotation.paint(tool, painter, cx),
            tool => self.selection.paint(tool, painter, cx),
        }
    }

    /// Tool shortcuts, undo/redo, Esc/Enter/Backspace, unless a text field has focus.
    pub fn keys(&mut self, ui: &egui::Ui, edits: &mut Vec<Edit>) {
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
            self.arm(*tool);
        }
        let tool = self.tool;
        let modifiers = ui.input(|i| i.modifiers);
        let mut navigate = false;
        if let Some(armed) = self.armed() {
            if escape && !armed.escape() {
                navigate = true;
            }
            if backspace {
                armed.backspace();
            }
            if enter {
                armed.enter(tool, modifiers, edits);
            }
        }
        if navigate {
            self.tool = Tool::Navigate;
        }
        if undo {
            edits.push(Edit::Undo);
        }
        if redo {
            edits.push(Edit::Redo);
        }
    }
}

/// Esc on a shape being drawn: drops it (false when there was none).
pub fn escape_drawing(drawing: &mut Option<Drawing>) -> bool {
    drawing.take().is_some()
}

/// Backspace on a path or polygon being drawn: its last vertex goes.
pub fn backspace_drawing(drawing: &mut Option<Drawing>) {
    if let Some(Drawing::Polygon(points) | Drawing::Line(points)) = drawing {
        points.pop();
    }
}

/// Whether Enter ends `drawing` (a path or polygon).
pub fn enter_ends(drawing: &Option<Drawing>) -> bool {
    matches!(drawing, Some(Drawing::Polygon(_) | Drawing::Line(_)))
}

/// The shape being drawn, in yellow ink: lasso, path, polygon (with the segment to the pointer),
/// rectangle or brush strokes.
pub fn paint_drawing(painter: &egui::Painter, drawing: &Drawing, cx: &PaintContext) {
    let ink = Stroke::new(2.0, Color32::from_rgb(255, 230, 0));
    let scale = cx.screen_from_world.matrix2.determinant().abs().sqrt() as f32;
    match drawing {
        Drawing::Lasso(points) => {
            let screen: Vec<Pos2> = points.iter().map(|p| cx.to_screen(*p)).collect();
            painter.add(egui::Shape::line(screen, ink));
        }
        Drawing::Line(points) => {
            let screen: Vec<Pos2> = points.iter().map(|p| cx.to_screen(*p)).collect();
            for p in &screen {
                painter.circle_filled(*p, 3.0, ink.color);
            }
            painter.add(egui::Shape::line(screen, ink));
        }
        Drawing::Polygon(points) => {
            let mut screen: Vec<Pos2> = points.iter().map(|p| cx.to_screen(*p)).collect();
            for p in &screen {
                painter.circle_filled(*p, 3.0, ink.color);
            }
            if let Some(h) = cx.hover {
                screen.push(h);
            }
            painter.add(egui::Shape::line(screen, ink));
        }
        Drawing::Rectangle(a, b) => {
            painter.rect_stroke(
                Rect::from_two_pos(cx.to_screen(*a), cx.to_screen(*b)),
                0.0,
                ink,
                egui::StrokeKind::Middle,
            );
        }
        Drawing::Brush { centers, radius_um } => {
            let radius = *radius_um as f32 * scale;
            for c in centers {
                painter.circle_filled(cx.to_screen(*c), radius, ink.color.gamma_multiply(0.3));
            }
        }
    }
}

/// A small dark label with white text at `pos` (live counts and measurements beside the pointer).
pub fn pointer_label(painter: &egui::Painter, pos: Pos2, text: String) {
    let galley = painter.layout_no_wrap(text, egui::FontId::proportional(13.0), Color32::WHITE);
    painter.rect_filled(
        Rect::from_min_size(pos - Vec2::splat(3.0), galley.size() + Vec2::splat(6.0)),
        3.0,
        Color32::from_black_alpha(170),
    );
    painter.galley(pos, galley, Color32::WHITE);
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
}
