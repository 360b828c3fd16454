//! Annotations: points, lines, polygons, rectangles and text labels in world µm, each with a
//! class (name and colour) and an optional name; their measurements (length in µm, area in µm²);
//! undo/redo over every edit; and GeoJSON import/export in the layout QuPath reads and writes.
//! No widgets here.

use std::path::Path;

use anyhow::Context as _;
use egui::Color32;
use glam::{DAffine2, DVec2};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::history::next_edit_number;

/// How many edits undo can take back.
const HISTORY_LIMIT: usize = 200;

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
    pub fn measurement(&self) -> String {
        match (self.area_um2(), self.length_um()) {
            (Some(area), Some(perimeter)) => format!("{} (perimeter {})", format_area(area), format_length(perimeter)),
            (None, Some(length)) => format_length(length),
            _ => String::new(),
        }
    }

    /// The measurement in a few characters: the area of an area, the length of a line.
    pub fn short_measurement(&self) -> String {
        match (self.area_um2(), self.length_um()) {
            (Some(area), _) => format_area(area),
            (None, Some(length)) => format_length(length),
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

    fn is_finite(&self) -> bool {
        self.vertices_um().iter().all(|p| p[0].is_finite() && p[1].is_finite())
    }
}

fn distance(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

/// µm below 1 mm, mm above.
pub fn format_length(um: f64) -> String {
    if um >= 1000.0 && !crate::preferences::always_micrometres() {
        format!("{:.3} mm", um / 1000.0)
    } else {
        format!("{um:.1} µm")
    }
}

/// µm² below 0.01 mm², mm² above.
pub fn format_area(um2: f64) -> String {
    if um2 >= 1e4 && !crate::preferences::always_micrometres() {
        format!("{:.4} mm²", um2 / 1e6)
    } else {
        format!("{um2:.0} µm²")
    }
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
    /// Index into [`Annotations::classes`].
    pub class: usize,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// What undo restores.
#[derive(Debug, Clone, PartialEq)]
struct Saved {
    items: Vec<Annotation>,
    classes: Vec<AnnotationClass>,
    /// When the edit was made, across selections and annotations (Ctrl+Z takes back the latest).
    edit: u64,
}

/// The annotations of a session, their classes and their edit history.
#[derive(Debug, Clone)]
pub struct Annotations {
    pub items: Vec<Annotation>,
    pub classes: Vec<AnnotationClass>,
    /// The class new annotations get.
    pub current_class: usize,
    /// The annotation selected in the list (highlighted in the viewer).
    pub selected: Option<usize>,
    /// Show lengths and areas next to the annotations in the viewer.
    pub show_measurements: bool,
    undo: Vec<Saved>,
    redo: Vec<Saved>,
}

/// QuPath's default classes, with its colours.
fn default_classes() -> Vec<AnnotationClass> {
    [
        ("Tumor", [200, 0, 0]),
        ("Stroma", [150, 200, 150]),
        ("Immune cells", [160, 90, 160]),
        ("Necrosis", [50, 50, 50]),
        ("Other", [255, 200, 0]),
        ("Region*", [0, 0, 180]),
    ]
    .into_iter()
    .map(|(name, [r, g, b])| AnnotationClass {
        name: name.to_owned(),
        colour: [r, g, b, 255],
    })
    .collect()
}

impl Default for Annotations {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            classes: default_classes(),
            current_class: 0,
            selected: None,
            show_measurements: true,
            undo: Vec::new(),
            redo: Vec::new(),
        }
    }
}

impl Annotations {
    pub fn colour_of(&self, annotation: &Annotation) -> Color32 {
        self.classes
            .get(annotation.class)
            .map_or(Color32::YELLOW, AnnotationClass::colour32)
    }

    pub fn class_name(&self, annotation: &Annotation) -> &str {
        self.classes.get(annotation.class).map_or("", |c| c.name.as_str())
    }

    fn save(&self, edit: u64) -> Saved {
        Saved {
            items: self.items.clone(),
            classes: self.classes.clone(),
            edit,
        }
    }

    /// Call before an edit, so that undo can take it back.
    pub fn remember(&mut self) {
        self.undo.push(self.save(next_edit_number()));
        if self.undo.len() > HISTORY_LIMIT {
            self.undo.remove(0);
        }
        self.redo.clear();
    }

    /// When the edit undo would take back was made (None: nothing to undo).
    pub fn last_undo_edit(&self) -> Option<u64> {
        self.undo.last().map(|s| s.edit)
    }

    pub fn last_redo_edit(&self) -> Option<u64> {
        self.redo.last().map(|s| s.edit)
    }

    /// Forgets what redo could make again (an edit elsewhere came after it).
    pub fn clear_redo(&mut self) {
        self.redo.clear();
    }

    pub fn undo(&mut self) {
        if let Some(saved) = self.undo.pop() {
            self.redo.push(self.save(saved.edit));
            self.restore(saved);
        }
    }

    pub fn redo(&mut self) {
        if let Some(saved) = self.redo.pop() {
            self.undo.push(self.save(saved.edit));
            self.restore(saved);
        }
    }

    fn restore(&mut self, saved: Saved) {
        self.items = saved.items;
        self.classes = saved.classes;
        self.selected = self.selected.filter(|&s| s < self.items.len());
        self.current_class = self.current_class.min(self.classes.len().saturating_sub(1));
    }

    /// Adds an annotation of the current class and selects it.
    pub fn add(&mut self, shape: AnnotationShape) -> usize {
        self.remember();
        self.items.push(Annotation {
            shape,
            class: self.current_class,
            name: String::new(),
        });
        let i = self.items.len() - 1;
        self.selected = Some(i);
        i
    }

    pub fn delete(&mut self, i: usize) {
        if i >= self.items.len() {
            return;
        }
        self.remember();
        self.items.remove(i);
        self.selected = match self.selected {
            Some(s) if s == i => None,
            Some(s) if s > i => Some(s - 1),
            other => other,
        };
    }

    /// The class called `name`, added (with `colour`, else a palette colour) if it is new.
    pub fn class_named(&mut self, name: &str, colour: Option<Color32>) -> usize {
        if let Some(i) = self.classes.iter().position(|c| c.name == name) {
            return i;
        }
        let colour = colour.unwrap_or_else(|| crate::palettes::class_colour(self.classes.len()));
        self.classes.push(AnnotationClass {
            name: name.to_owned(),
            colour: colour.to_srgba_unmultiplied(),
        });
        self.classes.len() - 1
    }

    /// The classes as a session stores them: none when they are the defaults.
    pub fn classes_to_store(&self) -> Vec<AnnotationClass> {
        if self.classes == default_classes() {
            Vec::new()
        } else {
            self.classes.clone()
        }
    }

    /// Replaces everything with a session's annotations (history starts afresh).
    pub fn restore_stored(&mut self, items: Vec<Annotation>, classes: Vec<AnnotationClass>) {
        let show_measurements = self.show_measurements;
        *self = Self {
            classes: if classes.is_empty() { default_classes() } else { classes },
            show_measurements,
            ..Default::default()
        };
        let n = self.classes.len();
        self.items = items
            .into_iter()
            .filter(|a| a.shape.is_finite())
            .map(|a| Annotation {
                class: a.class.min(n - 1),
                ..a
            })
            .collect();
    }

    /// Adds annotations read from a file (one undo step).
    pub fn import(&mut self, imported: Vec<ImportedAnnotation>) {
        if imported.is_empty() {
            return;
        }
        self.remember();
        for a in imported {
            let class = self.class_named(&a.class, a.colour);
            self.items.push(Annotation {
                shape: a.shape,
                class,
                name: a.name,
            });
        }
    }
}

/// An annotation read from GeoJSON, before its class is looked up.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedAnnotation {
    pub shape: AnnotationShape,
    pub class: String,
    pub colour: Option<Color32>,
    pub name: String,
}

fn to_file(p: [f64; 2], file_from_world: &DAffine2) -> Value {
    let q = file_from_world.transform_point2(DVec2::from_array(p));
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    json!([round(q.x), round(q.y)])
}

/// The annotations as a GeoJSON FeatureCollection in QuPath's layout (`objectType`,
/// `classification` with name and colour, `name`); coordinates through `file_from_world` (the
/// slide's level-0 pixels when a slide is open, as QuPath expects). Rectangles are polygons and
/// text labels are named points, with the original kind kept in `metadata` for re-import here.
pub fn annotations_to_geojson(annotations: &Annotations, file_from_world: &DAffine2) -> Value {
    let features: Vec<Value> = annotations
        .items
        .iter()
        .map(|a| {
            let point = |p: [f64; 2]| to_file(p, file_from_world);
            let ring = |v: Vec<[f64; 2]>| {
                let mut ring: Vec<Value> = v.iter().map(|p| point(*p)).collect();
                if let Some(first) = ring.first().cloned() {
                    ring.push(first);
                }
                json!([ring])
            };
            let geometry = match &a.shape {
                AnnotationShape::Point { at_um } | AnnotationShape::Text { at_um, .. } => {
                    json!({"type": "Point", "coordinates": point(*at_um)})
                }
                AnnotationShape::Line { points_um } => json!({
                    "type": "LineString",
                    "coordinates": points_um.iter().map(|p| point(*p)).collect::<Vec<_>>()
                }),
                AnnotationShape::Polygon { .. } | AnnotationShape::Rectangle { .. } => {
                    json!({"type": "Polygon", "coordinates": ring(a.shape.vertices_um())})
                }
            };
            let name = match &a.shape {
                AnnotationShape::Text { text, .. } => text.clone(),
                _ => a.name.clone(),
            };
            let class = annotations.classes.get(a.class);
            let mut properties = json!({
                "objectType": "annotation",
                "metadata": {"cellsymphony_shape": a.shape.kind()},
            });
            if !name.is_empty() {
                properties["name"] = json!(name);
            }
            if let Some(class) = class {
                let [r, g, b, _] = class.colour;
                properties["classification"] = json!({"name": class.name, "color": [r, g, b]});
            }
            let mut measurements = serde_json::Map::new();
            if let Some(length) = a.shape.length_um() {
                measurements.insert("Length µm".into(), json!(length));
            }
            if let Some(area) = a.shape.area_um2() {
                measurements.insert("Area µm^2".into(), json!(area));
            }
            if !measurements.is_empty() {
                properties["measurements"] = Value::Object(measurements);
            }
            json!({"type": "Feature", "geometry": geometry, "properties": properties})
        })
        .collect();
    json!({"type": "FeatureCollection", "features": features})
}

/// Writes the annotations as GeoJSON (atomically).
pub fn write_annotations_geojson(
    path: &Path,
    annotations: &Annotations,
    file_from_world: &DAffine2,
) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(&annotations_to_geojson(annotations, file_from_world))?;
    crate::session_file::write_atomically(path, &json)
}

fn coordinate(value: &Value, world_from_file: &DAffine2) -> Option<[f64; 2]> {
    let p = value.as_array()?;
    let (x, y) = (p.first()?.as_f64()?, p.get(1)?.as_f64()?);
    (x.is_finite() && y.is_finite()).then(|| world_from_file.transform_point2(DVec2::new(x, y)).to_array())
}

fn coordinates(value: &Value, world_from_file: &DAffine2) -> Vec<[f64; 2]> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| coordinate(p, world_from_file))
        .collect()
}

/// The shapes of one GeoJSON geometry (multi-geometries give several). Polygon holes are dropped
/// (`holes` counts them).
fn geometry_shapes(geometry: &Value, world_from_file: &DAffine2, holes: &mut usize, out: &mut Vec<AnnotationShape>) {
    let coords = geometry.get("coordinates").unwrap_or(&Value::Null);
    let polygon = |rings: &Value, holes: &mut usize| -> Option<AnnotationShape> {
        let rings = rings.as_array()?;
        *holes += rings.len().saturating_sub(1);
        let mut points = coordinates(rings.first()?, world_from_file);
        if points.len() > 1 && points.first() == points.last() {
            points.pop();
        }
        (points.len() >= 3).then_some(AnnotationShape::Polygon { points_um: points })
    };
    match geometry.get("type").and_then(Value::as_str) {
        Some("Point") => out.extend(coordinate(coords, world_from_file).map(|at_um| AnnotationShape::Point { at_um })),
        Some("MultiPoint") => out.extend(
            coordinates(coords, world_from_file)
                .into_iter()
                .map(|at_um| AnnotationShape::Point { at_um }),
        ),
        Some("LineString") => {
            let points = coordinates(coords, world_from_file);
            if points.len() >= 2 {
                out.push(AnnotationShape::Line { points_um: points });
            }
        }
        Some("MultiLineString") => {
            for line in coords.as_array().into_iter().flatten() {
                let points = coordinates(line, world_from_file);
                if points.len() >= 2 {
                    out.push(AnnotationShape::Line { points_um: points });
                }
            }
        }
        Some("Polygon") => out.extend(polygon(coords, holes)),
        Some("MultiPolygon") => {
            for rings in coords.as_array().into_iter().flatten() {
                out.extend(polygon(rings, holes));
            }
        }
        Some("GeometryCollection") => {
            for g in geometry
                .get("geometries")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                geometry_shapes(g, world_from_file, holes, out);
            }
        }
        _ => {}
    }
}

/// What an import found: the annotations, and what was left out (for a note).
#[derive(Debug, Default)]
pub struct AnnotationImport {
    pub annotations: Vec<ImportedAnnotation>,
    pub skipped_detections: usize,
    pub dropped_holes: usize,
}

/// Reads annotations from GeoJSON as QuPath writes it (FeatureCollection, Feature, bare
/// geometry or a list of features). Detections (QuPath's cells) are left out and counted.
pub fn read_annotations_geojson(path: &Path, world_from_file: &DAffine2) -> anyhow::Result<AnnotationImport> {
    let features = crate::selection_io::read_geojson_features(path)?;
    let mut import = AnnotationImport::default();
    for feature in &features {
        let properties = feature.get("properties").cloned().unwrap_or(Value::Null);
        let object_type = properties
            .get("objectType")
            .and_then(Value::as_str)
            .unwrap_or("annotation");
        if matches!(object_type, "detection" | "cell" | "tile") {
            import.skipped_detections += 1;
            continue;
        }
        let mut shapes = Vec::new();
        if let Some(geometry) = feature.get("geometry") {
            geometry_shapes(geometry, world_from_file, &mut import.dropped_holes, &mut shapes);
        }
        let class = properties
            .get("classification")
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("Unclassified")
            .to_owned();
        let name = properties.get("name").and_then(Value::as_str).unwrap_or("").to_owned();
        let kind = properties
            .get("metadata")
            .and_then(|m| m.get("cellsymphony_shape"))
            .and_then(Value::as_str);
        for shape in shapes {
            let (shape, name) = match (kind, shape) {
                (Some("text"), AnnotationShape::Point { at_um }) => (
                    AnnotationShape::Text {
                        at_um,
                        text: name.clone(),
                    },
                    String::new(),
                ),
                (Some("rectangle"), AnnotationShape::Polygon { points_um }) => {
                    (rectangle_or_polygon(points_um), name.clone())
                }
                (_, shape) => (shape, name.clone()),
            };
            import.annotations.push(ImportedAnnotation {
                shape,
                class: class.clone(),
                colour: crate::selection_io::feature_colour(&properties),
                name,
            });
        }
    }
    if import.annotations.is_empty() {
        anyhow::bail!(
            "{} holds no annotations (points, lines or polygons){}",
            path.display(),
            if import.skipped_detections > 0 {
                format!(
                    "; its {} detections are not read as annotations",
                    import.skipped_detections
                )
            } else {
                String::new()
            }
        );
    }
    Ok(import)
}

/// An axis-aligned 4-gon back to a rectangle (in world µm; a rotated slide makes it a polygon).
fn rectangle_or_polygon(points_um: Vec<[f64; 2]>) -> AnnotationShape {
    let ([min, max], aligned) = {
        let mut min = [f64::INFINITY; 2];
        let mut max = [f64::NEG_INFINITY; 2];
        for p in &points_um {
            for a in 0..2 {
                min[a] = min[a].min(p[a]);
                max[a] = max[a].max(p[a]);
            }
        }
        let tolerance = 1e-6 * (max[0] - min[0]).abs().max(max[1] - min[1]).max(1.0);
        let on_corner = |p: &[f64; 2]| {
            ((p[0] - min[0]).abs() < tolerance || (p[0] - max[0]).abs() < tolerance)
                && ((p[1] - min[1]).abs() < tolerance || (p[1] - max[1]).abs() < tolerance)
        };
        ([min, max], points_um.len() == 4 && points_um.iter().all(on_corner))
    };
    if aligned {
        AnnotationShape::Rectangle {
            min_um: min,
            max_um: max,
        }
    } else {
        AnnotationShape::Polygon { points_um }
    }
}

/// Reads annotations and says what was left out.
pub fn import_summary(path: &Path, import: &AnnotationImport) -> String {
    let mut text = format!(
        "Imported {} annotation(s) from {}",
        import.annotations.len(),
        crate::app::display_name(path)
    );
    if import.skipped_detections > 0 {
        text += &format!("; {} detections (cells) left out", import.skipped_detections);
    }
    if import.dropped_holes > 0 {
        text += &format!("; {} polygon holes dropped", import.dropped_holes);
    }
    text
}

/// Reads a GeoJSON file and names it in the error.
pub fn read_for_import(path: &Path, world_from_file: &DAffine2) -> anyhow::Result<AnnotationImport> {
    read_annotations_geojson(path, world_from_file)
        .with_context(|| format!("importing annotations from {}", path.display()))
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
        assert_eq!(line.measurement(), "11.0 µm");
        let rect = AnnotationShape::Rectangle {
            min_um: [0.0, 0.0],
            max_um: [200.0, 100.0],
        };
        assert_eq!(rect.area_um2(), Some(20_000.0));
        assert_eq!(rect.length_um(), Some(600.0));
        assert_eq!(rect.measurement(), "0.0200 mm² (perimeter 600.0 µm)");
        let triangle = AnnotationShape::Polygon {
            points_um: vec![[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]],
        };
        assert_eq!(triangle.area_um2(), Some(50.0));
        assert_eq!(AnnotationShape::Point { at_um: [1.0, 1.0] }.measurement(), "");
        assert_eq!(format_length(2500.0), "2.500 mm");
    }

    #[test]
    fn undo_and_redo_take_edits_back_in_order() {
        let mut a = Annotations::default();
        a.add(AnnotationShape::Point { at_um: [1.0, 2.0] });
        a.add(AnnotationShape::Point { at_um: [3.0, 4.0] });
        a.delete(0);
        assert_eq!(a.items.len(), 1);
        let last = a.last_undo_edit().unwrap();
        a.undo();
        assert_eq!(a.items.len(), 2);
        assert_eq!(a.last_redo_edit(), Some(last));
        a.undo();
        a.undo();
        assert!(a.items.is_empty());
        a.redo();
        assert_eq!(a.items.len(), 1);
        a.add(AnnotationShape::Point { at_um: [5.0, 6.0] });
        assert_eq!(a.last_redo_edit(), None, "a new edit drops the redo history");
    }

    #[test]
    fn geojson_round_trips_every_kind_through_slide_pixels() {
        let mut a = Annotations {
            current_class: 1,
            ..Default::default()
        };
        a.add(AnnotationShape::Point { at_um: [10.0, 20.0] });
        a.add(AnnotationShape::Line {
            points_um: vec![[0.0, 0.0], [30.0, 40.0]],
        });
        let i = a.add(AnnotationShape::Polygon {
            points_um: vec![[0.0, 0.0], [50.0, 0.0], [25.0, 40.0]],
        });
        a.items[i].name = "front".into();
        a.class_named("Lymphoid aggregate", Some(Color32::from_rgb(10, 20, 30)));
        a.current_class = a.classes.len() - 1;
        a.add(AnnotationShape::Rectangle {
            min_um: [5.0, 5.0],
            max_um: [15.0, 25.0],
        });
        a.add(AnnotationShape::Text {
            at_um: [1.0, 1.0],
            text: "tumour front".into(),
        });
        // World µm -> slide px: 4 px per µm and an offset, as an aligned slide would have.
        let file_from_world = DAffine2::from_scale_angle_translation(DVec2::splat(4.0), 0.0, DVec2::new(100.0, 7.0));
        let json = annotations_to_geojson(&a, &file_from_world);
        let features = json["features"].as_array().unwrap();
        assert_eq!(features[0]["geometry"]["coordinates"], json!([140.0, 87.0]));
        assert_eq!(features[2]["properties"]["classification"]["name"], "Stroma");
        assert_eq!(features[2]["properties"]["name"], "front");
        assert_eq!(
            features[3]["properties"]["classification"]["color"],
            json!([10, 20, 30])
        );
        let path = std::env::temp_dir().join(format!("annotations_{}.geojson", std::process::id()));
        write_annotations_geojson(&path, &a, &file_from_world).unwrap();
        let back = read_annotations_geojson(&path, &file_from_world.inverse()).unwrap();
        let mut b = Annotations::default();
        b.import(back.annotations);
        assert_eq!(b.items.len(), 5);
        for (x, y) in a.items.iter().zip(&b.items) {
            assert_eq!(a.class_name(x), b.class_name(y));
            assert_eq!(x.name, y.name);
            assert_eq!(x.shape.kind(), y.shape.kind());
            for (p, q) in x.shape.vertices_um().iter().zip(y.shape.vertices_um()) {
                assert!(distance(*p, q) < 1e-3, "{p:?} {q:?}");
            }
        }
        assert_eq!(b.colour_of(&b.items[3]), Color32::from_rgb(10, 20, 30));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn qupath_files_with_detections_holes_and_packed_colours_read() {
        // As QuPath 0.4 exports: an array of features, cells as detections, a polygon with a hole,
        // an older packed colour.
        let text = r#"[
          {"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[0,0],[100,0],[100,100],[0,100],[0,0]],[[10,10],[20,10],[20,20],[10,10]]]},
           "properties":{"objectType":"annotation","classification":{"name":"Tumor","colorRGB":-3670016},"isLocked":false}},
          {"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[1,1],[2,1],[2,2],[1,1]]]},
           "properties":{"objectType":"detection","classification":{"name":"Tumor"}}},
          {"type":"Feature","geometry":{"type":"MultiPoint","coordinates":[[5,5],[6,6]]},
           "properties":{"objectType":"annotation"}}
        ]"#;
        let path = std::env::temp_dir().join(format!("qupath_{}.geojson", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let import = read_annotations_geojson(&path, &DAffine2::IDENTITY).unwrap();
        assert_eq!(import.annotations.len(), 3);
        assert_eq!(import.skipped_detections, 1);
        assert_eq!(import.dropped_holes, 1);
        assert_eq!(import.annotations[0].class, "Tumor");
        assert_eq!(import.annotations[0].colour, Some(Color32::from_rgb(200, 0, 0)));
        assert_eq!(import.annotations[0].shape.area_um2(), Some(10_000.0));
        assert_eq!(import.annotations[2].class, "Unclassified");
        assert!(import_summary(&path, &import).contains("1 detections (cells) left out"));
        // Only detections: a clear error naming the file.
        std::fs::write(&path, r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[1,2]},"properties":{"objectType":"detection"}}"#).unwrap();
        let message = format!("{:#}", read_for_import(&path, &DAffine2::IDENTITY).unwrap_err());
        assert!(
            message.contains("qupath_") && message.contains("detections"),
            "{message}"
        );
        std::fs::write(&path, &text[..40]).unwrap();
        let message = format!("{:#}", read_for_import(&path, &DAffine2::IDENTITY).unwrap_err());
        assert!(message.contains("truncated"), "{message}");
        let _ = std::fs::remove_file(&path);
    }
}
