//! The plain records the document is made of and files store: annotations (a shape in world µm,
//! a class, a name) and their classes, bookmarks (named views), named selections (their shapes
//! and the cells those hold), and one gene's differential-expression result. Values with their
//! own geometry and measurements only: the collections, edits and undo are the document's.
//!
//! They live in `io`, below the document, because the session file, the GeoJSON and CSV readers
//! and writers and the SVG plots all speak them, and `io` may not import the document.

use cs_analysis::{CellSet, GeneDifferentialExpression, Step};
use egui::Color32;
use glam::DVec2;
use serde::{Deserialize, Serialize};

use crate::layers::camera::{Camera, Viewport};
use crate::util::format::{LengthUnits, format_area, format_length};

/// The geometry of an annotation, in world µm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AnnotationShape {
    Point {
        at_um: [f64; 2],
    },
    /// An open polyline (a ruler when it has two points).
    Line {
        points_um: Vec<[f64; 2]>,
    },
    /// Closed implicitly.
    Polygon {
        points_um: Vec<[f64; 2]>,
    },
    Rectangle {
        min_um: [f64; 2],
        max_um: [f64; 2],
    },
    /// A label anchored at its top-left corner.
    Text {
        at_um: [f64; 2],
        text: String,
    },
}

impl AnnotationShape {
    pub fn kind(&self) -> &'static str {
        match self {
            AnnotationShape::Point { .. } => "point",
            AnnotationShape::Line { .. } => "line",
            AnnotationShape::Polygon { .. } => "polygon",
            AnnotationShape::Rectangle { .. } => "rectangle",
            AnnotationShape::Text { .. } => "text",
        }
    }

    /// The vertices, as drawn (a rectangle's four corners).
    pub fn vertices_um(&self) -> Vec<[f64; 2]> {
        match self {
            AnnotationShape::Point { at_um } | AnnotationShape::Text { at_um, .. } => vec![*at_um],
            AnnotationShape::Line { points_um } | AnnotationShape::Polygon { points_um } => points_um.clone(),
            AnnotationShape::Rectangle { min_um, max_um } => {
                vec![*min_um, [max_um[0], min_um[1]], *max_um, [min_um[0], max_um[1]]]
            }
        }
    }

    /// Length of a line, or perimeter of an area, in µm (None for points and text).
    pub fn length_um(&self) -> Option<f64> {
        let path = |points: &[[f64; 2]], closed: bool| {
            let mut total: f64 = points.windows(2).map(|w| distance(w[0], w[1])).sum();
            if closed && let (Some(first), Some(last)) = (points.first(), points.last()) {
                total += distance(*last, *first);
            }
            total
        };
        match self {
            AnnotationShape::Line { points_um } => Some(path(points_um, false)),
            AnnotationShape::Polygon { .. } | AnnotationShape::Rectangle { .. } => {
                Some(path(&self.vertices_um(), true))
            }
            AnnotationShape::Point { .. } | AnnotationShape::Text { .. } => None,
        }
    }

    /// Area of a polygon or rectangle in µm² (None for the rest).
    pub fn area_um2(&self) -> Option<f64> {
        match self {
            AnnotationShape::Polygon { .. } | AnnotationShape::Rectangle { .. } => {
                let v = self.vertices_um();
                let twice: f64 = (0..v.len())
                    .map(|i| {
                        let (a, b) = (v[i], v[(i + 1) % v.len()]);
                        a[0] * b[1] - b[0] * a[1]
                    })
                    .sum();
                Some(twice.abs() / 2.0)
            }
            _ => None,
        }
    }

    /// The measurement a user reads: "12.3 µm", "450 µm² (perimeter 80.1 µm)", or "".
    pub fn measurement(&self, units: LengthUnits) -> String {
        match (self.area_um2(), self.length_um()) {
            (Some(area), Some(perimeter)) => format!(
                "{} (perimeter {})",
                format_area(area, units),
                format_length(perimeter, units)
            ),
            (None, Some(length)) => format_length(length, units),
            _ => String::new(),
        }
    }

    /// The measurement in a few characters: the area of an area, the length of a line.
    pub fn short_measurement(&self, units: LengthUnits) -> String {
        match (self.area_um2(), self.length_um()) {
            (Some(area), _) => format_area(area, units),
            (None, Some(length)) => format_length(length, units),
            _ => String::new(),
        }
    }

    /// Bounding box (min, max) in µm.
    pub fn bounds_um(&self) -> ([f64; 2], [f64; 2]) {
        let v = self.vertices_um();
        let mut min = [f64::INFINITY; 2];
        let mut max = [f64::NEG_INFINITY; 2];
        for p in &v {
            for a in 0..2 {
                min[a] = min[a].min(p[a]);
                max[a] = max[a].max(p[a]);
            }
        }
        (min, max)
    }

    /// Whether every vertex is a finite number (files may hold NaN).
    pub fn is_finite(&self) -> bool {
        self.vertices_um().iter().all(|p| p[0].is_finite() && p[1].is_finite())
    }
}

/// Euclidean distance between two points.
pub fn distance(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

/// A class of annotations (QuPath's "classification").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnotationClass {
    pub name: String,
    pub colour: [u8; 4],
}

impl AnnotationClass {
    pub fn colour32(&self) -> Color32 {
        let [r, g, b, a] = self.colour;
        Color32::from_rgba_unmultiplied(r, g, b, a)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    pub shape: AnnotationShape,
    /// Index into the document's annotation classes.
    pub class: usize,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// A named view: what part of the world it shows (so that it fits any window), and a caption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bookmark {
    pub name: String,
    #[serde(default)]
    pub caption: String,
    pub center_in_world_um: [f64; 2],
    /// Width and height of world the view showed, in µm.
    pub span_um: [f64; 2],
}

impl Bookmark {
    /// The view `camera` shows in `viewport`.
    pub fn of_view(name: String, camera: &Camera, viewport: &Viewport) -> Self {
        let span = viewport.size_in_points / camera.points_per_um.max(1e-12);
        Self {
            name,
            caption: String::new(),
            center_in_world_um: camera.center_in_world.to_array(),
            span_um: span.to_array(),
        }
    }

    /// The camera that shows this bookmark's world box in `viewport` (all of it, centred).
    pub fn camera_for(&self, viewport: &Viewport) -> Camera {
        let span = DVec2::from_array(self.span_um).max(DVec2::splat(1e-9));
        let fit = viewport.size_in_points / span;
        Camera {
            center_in_world: DVec2::from_array(self.center_in_world_um),
            points_per_um: fit.x.min(fit.y).max(1e-9),
        }
    }
}

/// One named selection.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedSelection {
    pub name: String,
    pub colour: Color32,
    pub visible: bool,
    pub steps: Vec<Step>,
    /// The cells the steps hold (kept in step with `steps` by [`Selections`]).
    pub cells: CellSet,
    pub area_um2: f64,
}

impl NamedSelection {
    pub fn cell_count(&self) -> usize {
        self.cells.count()
    }

    /// Cells per mm² of the selected region.
    pub fn density_per_mm2(&self) -> Option<f64> {
        (self.area_um2 > 0.0).then(|| self.cell_count() as f64 / (self.area_um2 * 1e-6))
    }
}

/// One gene's result with its name.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedDe {
    pub gene: String,
    pub result: GeneDifferentialExpression,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurements_in_micrometres() {
        let line = AnnotationShape::Line {
            points_um: vec![[0.0, 0.0], [3.0, 4.0], [3.0, 10.0]],
        };
        assert_eq!(line.length_um(), Some(11.0));
        assert_eq!(line.area_um2(), None);
        assert_eq!(line.measurement(LengthUnits::Automatic), "11.0 µm");
        let rect = AnnotationShape::Rectangle {
            min_um: [0.0, 0.0],
            max_um: [200.0, 100.0],
        };
        assert_eq!(rect.area_um2(), Some(20_000.0));
        assert_eq!(rect.length_um(), Some(600.0));
        assert_eq!(
            rect.measurement(LengthUnits::Automatic),
            "0.0200 mm² (perimeter 600.0 µm)"
        );
        let triangle = AnnotationShape::Polygon {
            points_um: vec![[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]],
        };
        assert_eq!(triangle.area_um2(), Some(50.0));
        assert_eq!(
            AnnotationShape::Point { at_um: [1.0, 1.0] }.measurement(LengthUnits::Automatic),
            ""
        );
        assert_eq!(
            line.measurement(LengthUnits::Micrometres),
            "11.0 µm",
            "the units are passed in"
        );
    }
}
