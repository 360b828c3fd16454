//! Annotations in and out of GeoJSON in the layout QuPath reads and writes (`objectType`,
//! `classification` with name and colour, `name`; detections left out on import, polygon holes
//! dropped with a count), in the slide's level-0 pixels when a slide is open (the caller passes
//! the transform). Rectangles and text labels round trip through `metadata`.

use std::path::Path;

use anyhow::Context as _;
use egui::Color32;
use glam::{DAffine2, DVec2};
use serde_json::{Value, json};

use crate::io::records::{Annotation, AnnotationClass, AnnotationShape};
use crate::io::selection_io::{
    coordinate, coordinates, feature_colour, for_each_geometry, read_geojson_features, ring,
};
use crate::util::display_name;
use crate::util::fs::write_atomically;

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
pub fn annotations_to_geojson(items: &[Annotation], classes: &[AnnotationClass], file_from_world: &DAffine2) -> Value {
    let features: Vec<Value> = items
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
            let class = classes.get(a.class);
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
    items: &[Annotation],
    classes: &[AnnotationClass],
    file_from_world: &DAffine2,
) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(&annotations_to_geojson(items, classes, file_from_world))?;
    write_atomically(path, &json)
}

/// The shapes of one GeoJSON geometry (multi-geometries give several). Polygon holes are dropped
/// (`holes` counts them).
fn geometry_shapes(geometry: &Value, world_from_file: &DAffine2, holes: &mut usize, out: &mut Vec<AnnotationShape>) {
    let mut polygon = |rings: &Value| -> Option<AnnotationShape> {
        let rings = rings.as_array()?;
        *holes += rings.len().saturating_sub(1);
        ring(rings.first()?, world_from_file).map(|points_um| AnnotationShape::Polygon { points_um })
    };
    let line = |positions: &Value| {
        let points_um = coordinates(positions, world_from_file);
        (points_um.len() >= 2).then_some(AnnotationShape::Line { points_um })
    };
    for_each_geometry(geometry, &mut |kind, coords| match kind {
        "Point" => out.extend(coordinate(coords, world_from_file).map(|at_um| AnnotationShape::Point { at_um })),
        "MultiPoint" => out.extend(
            coordinates(coords, world_from_file)
                .into_iter()
                .map(|at_um| AnnotationShape::Point { at_um }),
        ),
        "LineString" => out.extend(line(coords)),
        "MultiLineString" => out.extend(coords.as_array().into_iter().flatten().filter_map(line)),
        "Polygon" => out.extend(polygon(coords)),
        "MultiPolygon" => out.extend(coords.as_array().into_iter().flatten().filter_map(&mut polygon)),
        _ => {}
    });
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
    let features = read_geojson_features(path)?;
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
                colour: feature_colour(&properties),
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
        display_name(path)
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
    fn geojson_round_trips_every_kind_through_slide_pixels() {
        let classes = vec![
            AnnotationClass {
                name: "Tumor".into(),
                colour: [200, 0, 0, 255],
            },
            AnnotationClass {
                name: "Stroma".into(),
                colour: [150, 200, 150, 255],
            },
            AnnotationClass {
                name: "Lymphoid aggregate".into(),
                colour: [10, 20, 30, 255],
            },
        ];
        let item = |shape, class, name: &str| Annotation {
            shape,
            class,
            name: name.to_owned(),
        };
        let items = vec![
            item(AnnotationShape::Point { at_um: [10.0, 20.0] }, 1, ""),
            item(
                AnnotationShape::Line {
                    points_um: vec![[0.0, 0.0], [30.0, 40.0]],
                },
                1,
                "",
            ),
            item(
                AnnotationShape::Polygon {
                    points_um: vec![[0.0, 0.0], [50.0, 0.0], [25.0, 40.0]],
                },
                1,
                "front",
            ),
            item(
                AnnotationShape::Rectangle {
                    min_um: [5.0, 5.0],
                    max_um: [15.0, 25.0],
                },
                2,
                "",
            ),
            item(
                AnnotationShape::Text {
                    at_um: [1.0, 1.0],
                    text: "tumour front".into(),
                },
                2,
                "",
            ),
        ];
        // World µm -> slide px: 4 px per µm and an offset, as an aligned slide would have.
        let file_from_world = DAffine2::from_scale_angle_translation(DVec2::splat(4.0), 0.0, DVec2::new(100.0, 7.0));
        let json = annotations_to_geojson(&items, &classes, &file_from_world);
        let features = json["features"].as_array().unwrap();
        assert_eq!(features[0]["geometry"]["coordinates"], json!([140.0, 87.0]));
        assert_eq!(features[2]["properties"]["classification"]["name"], "Stroma");
        assert_eq!(features[2]["properties"]["name"], "front");
        assert_eq!(
            features[3]["properties"]["classification"]["color"],
            json!([10, 20, 30])
        );
        let path = std::env::temp_dir().join(format!("annotations_{}.geojson", std::process::id()));
        write_annotations_geojson(&path, &items, &classes, &file_from_world).unwrap();
        let back = read_annotations_geojson(&path, &file_from_world.inverse()).unwrap();
        assert_eq!(back.annotations.len(), 5);
        for (x, y) in items.iter().zip(&back.annotations) {
            assert_eq!(classes[x.class].name, y.class);
            assert_eq!(y.colour, Some(classes[x.class].colour32()));
            assert_eq!(x.name, y.name);
            assert_eq!(x.shape.kind(), y.shape.kind());
            for (p, q) in x.shape.vertices_um().iter().zip(y.shape.vertices_um()) {
                assert!(crate::io::records::distance(*p, q) < 1e-3, "{p:?} {q:?}");
            }
        }
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
