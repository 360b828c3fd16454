//! Selections in and out of files: GeoJSON that QuPath reads and writes (annotations with a
//! classification name and colour) and Xenium Explorer's selection coordinate CSV (import); the
//! GeoJSON feature reading and QuPath colours that annotations share.
//!
//! GeoJSON coordinates are in the H&E slide's level-0 pixels when a slide is open (QuPath works on
//! the H&E), else in Xenium micrometres; the caller passes the transform.

use std::path::Path;

use anyhow::Context as _;
use cs_analysis::{Combine, Shape, Step, region_outline};
use egui::Color32;
use glam::{DAffine2, DVec2};
use serde_json::{Value, json};

use crate::io::records::NamedSelection;
use crate::util::display_name;

/// A selection read from a file: its name, colour when the file has one, and its shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedSelection {
    pub name: String,
    pub colour: Option<Color32>,
    pub steps: Vec<Step>,
}

fn ring_to_json(ring: &[[f64; 2]], out_from_world: &DAffine2) -> Value {
    let mut points: Vec<Value> = ring
        .iter()
        .map(|p| {
            let q = out_from_world.transform_point2(DVec2::new(p[0], p[1]));
            json!([round3(q.x), round3(q.y)])
        })
        .collect();
    // GeoJSON rings are closed.
    if let Some(first) = points.first().cloned() {
        points.push(first);
    }
    Value::Array(points)
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// A FeatureCollection with one annotation per selection (a MultiPolygon with holes where
/// shapes were subtracted), named and coloured as QuPath expects.
pub fn selections_to_geojson(selections: &[&NamedSelection], out_from_world: &DAffine2) -> Value {
    let features: Vec<Value> = selections
        .iter()
        .filter_map(|selection| {
            let outline = region_outline(&selection.steps);
            if outline.is_empty() {
                return None;
            }
            // Slide pixels are y-down like the world, so orientation carries over unless the
            // transform mirrors; GeoJSON readers (QuPath/JTS) accept either orientation.
            let polygons: Vec<Value> = outline
                .iter()
                .map(|p| {
                    let mut rings = vec![ring_to_json(&p.outer, out_from_world)];
                    rings.extend(p.holes.iter().map(|h| ring_to_json(h, out_from_world)));
                    Value::Array(rings)
                })
                .collect();
            let [r, g, b, _] = selection.colour.to_srgba_unmultiplied();
            Some(json!({
                "type": "Feature",
                "geometry": {"type": "MultiPolygon", "coordinates": polygons},
                "properties": {
                    "objectType": "annotation",
                    "name": selection.name,
                    "classification": {"name": selection.name, "color": [r, g, b]},
                    "cellCount": selection.cell_count(),
                },
            }))
        })
        .collect();
    json!({"type": "FeatureCollection", "features": features})
}

/// One GeoJSON position in world µm (through `world_from_file`); None unless it is two finite
/// numbers.
pub fn coordinate(value: &Value, world_from_file: &DAffine2) -> Option<[f64; 2]> {
    let p = value.as_array()?;
    let (x, y) = (p.first()?.as_f64()?, p.get(1)?.as_f64()?);
    (x.is_finite() && y.is_finite()).then(|| world_from_file.transform_point2(DVec2::new(x, y)).to_array())
}

/// The positions of a GeoJSON coordinate array in world µm; positions that are not two finite
/// numbers are skipped.
pub fn coordinates(value: &Value, world_from_file: &DAffine2) -> Vec<[f64; 2]> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| coordinate(p, world_from_file))
        .collect()
}

/// A polygon ring in world µm without its closing position (None: fewer than three points).
pub fn ring(value: &Value, world_from_file: &DAffine2) -> Option<Vec<[f64; 2]>> {
    let mut ring = coordinates(value, world_from_file);
    if ring.len() > 1 && ring.first() == ring.last() {
        ring.pop();
    }
    (ring.len() >= 3).then_some(ring)
}

/// Steps for one GeoJSON Polygon's coordinates: the outer ring added, holes subtracted.
fn polygon_steps(rings: &Value, world_from_file: &DAffine2, steps: &mut Vec<Step>) {
    let Some(rings) = rings.as_array() else { return };
    for (i, positions) in rings.iter().enumerate() {
        if let Some(points) = ring(positions, world_from_file) {
            steps.push(Step {
                combine: if i == 0 { Combine::Add } else { Combine::Subtract },
                shape: Shape::Polygon(points.iter().map(|p| [p[0] as f32, p[1] as f32]).collect()),
            });
        }
    }
}

fn geometry_steps(geometry: &Value, world_from_file: &DAffine2, steps: &mut Vec<Step>) {
    for_each_geometry(geometry, &mut |kind, coordinates| match kind {
        "Polygon" => polygon_steps(coordinates, world_from_file, steps),
        "MultiPolygon" => {
            for polygon in coordinates.as_array().into_iter().flatten() {
                polygon_steps(polygon, world_from_file, steps);
            }
        }
        _ => {}
    });
}

/// Calls `visit(type, coordinates)` for each simple geometry (Point to MultiPolygon) of a GeoJSON
/// geometry, walking into GeometryCollections; missing coordinates are `null`.
pub fn for_each_geometry(geometry: &Value, visit: &mut dyn FnMut(&str, &Value)) {
    match geometry.get("type").and_then(Value::as_str) {
        Some("GeometryCollection") => {
            for part in geometry
                .get("geometries")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for_each_geometry(part, visit);
            }
        }
        Some(kind) => visit(kind, geometry.get("coordinates").unwrap_or(&Value::Null)),
        None => {}
    }
}

/// QuPath colours: `classification.color` as [r, g, b], or the older packed `colorRGB` integer.
pub fn feature_colour(properties: &Value) -> Option<Color32> {
    let rgb = properties
        .get("classification")
        .and_then(|c| c.get("color"))
        .or_else(|| properties.get("color"));
    if let Some(rgb) = rgb.and_then(Value::as_array) {
        let c: Vec<u8> = rgb
            .iter()
            .filter_map(|v| v.as_u64())
            .map(|v| v.min(255) as u8)
            .collect();
        if let [r, g, b, ..] = c[..] {
            return Some(Color32::from_rgb(r, g, b));
        }
    }
    let packed = properties
        .get("classification")
        .and_then(|c| c.get("colorRGB"))
        .or_else(|| properties.get("colorRGB"))?
        .as_i64()?;
    Some(Color32::from_rgb(
        (packed >> 16) as u8,
        (packed >> 8) as u8,
        packed as u8,
    ))
}

/// Reads polygons from a GeoJSON Feature, FeatureCollection or bare geometry (QuPath exports any
/// of these). Features with a name or classification become separate selections.
pub fn read_geojson(path: &Path, world_from_file: &DAffine2) -> anyhow::Result<Vec<ImportedSelection>> {
    let features = read_geojson_features(path)?;
    let stem = display_name(path);
    let mut out = Vec::new();
    for (i, feature) in features.iter().enumerate() {
        let properties = feature.get("properties").cloned().unwrap_or(Value::Null);
        let mut steps = Vec::new();
        if let Some(geometry) = feature.get("geometry") {
            geometry_steps(geometry, world_from_file, &mut steps);
        }
        if steps.is_empty() {
            continue;
        }
        steps[0].combine = Combine::Replace;
        let name = properties
            .get("name")
            .and_then(Value::as_str)
            .or_else(|| {
                properties
                    .get("classification")
                    .and_then(|c| c.get("name"))
                    .and_then(Value::as_str)
            })
            .map_or_else(|| format!("{stem} {}", i + 1), str::to_owned);
        out.push(ImportedSelection {
            name,
            colour: feature_colour(&properties),
            steps,
        });
    }
    if out.is_empty() {
        anyhow::bail!(
            "{} holds no polygons (only Polygon and MultiPolygon geometries are read)",
            path.display()
        );
    }
    Ok(out)
}

/// The features of a GeoJSON file: a FeatureCollection's, a Feature, a bare geometry, or QuPath's
/// "export as array" list of features.
pub fn read_geojson_features(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        if e.is_eof() {
            anyhow::anyhow!("{} is truncated: it ends in the middle of the JSON", path.display())
        } else {
            anyhow::anyhow!("{} is not valid GeoJSON ({e})", path.display())
        }
    })?;
    Ok(match value.get("type").and_then(Value::as_str) {
        Some("FeatureCollection") => value
            .get("features")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        Some("Feature") => vec![value.clone()],
        Some(_) => vec![json!({"type": "Feature", "geometry": value, "properties": {}})],
        None => match value.as_array() {
            // QuPath's "Export as array" writes a bare list of features.
            Some(list) => list.clone(),
            None => anyhow::bail!("{} has no GeoJSON \"type\"", path.display()),
        },
    })
}

/// Reads Xenium Explorer's selection coordinates CSV: two `#` lines (name, area), then `X,Y` in
/// µm, or `Selection,X,Y` when several selections were exported together.
pub fn read_xenium_explorer_csv(path: &Path) -> anyhow::Result<Vec<ImportedSelection>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut name = display_name(path);
    let mut lines = text.lines().enumerate().peekable();
    while let Some((_, line)) = lines.peek() {
        let line = line.trim();
        if let Some(comment) = line.strip_prefix('#') {
            if let Some(n) = comment.trim().strip_prefix("Selection name:") {
                name = n.trim().to_owned();
            }
            lines.next();
        } else if line.is_empty() {
            lines.next();
        } else {
            break;
        }
    }
    let Some((_, header)) = lines.next() else {
        anyhow::bail!("{} has no X,Y header", path.display());
    };
    let columns: Vec<String> = header
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_owned())
        .collect();
    let find = |want: &str| columns.iter().position(|c| c.eq_ignore_ascii_case(want));
    let (Some(x_col), Some(y_col)) = (find("X"), find("Y")) else {
        anyhow::bail!(
            "{}: expected columns X and Y, found {}",
            path.display(),
            columns.join(", ")
        );
    };
    let group_col = find("Selection");
    let mut groups: Vec<(String, Vec<[f32; 2]>)> = Vec::new();
    for (line_number, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(|f| f.trim().trim_matches('"')).collect();
        let number = |col: usize, what: &str| -> anyhow::Result<f32> {
            let field = fields.get(col).copied().unwrap_or("");
            field.parse::<f32>().ok().filter(|v| v.is_finite()).with_context(|| {
                format!(
                    "{}, line {}: {what} {field:?} is not a number",
                    path.display(),
                    line_number + 1
                )
            })
        };
        let point = [number(x_col, "X")?, number(y_col, "Y")?];
        let group = group_col
            .and_then(|c| fields.get(c))
            .map_or_else(|| name.clone(), |g| g.to_string());
        match groups.last_mut() {
            Some((g, points)) if *g == group => points.push(point),
            _ => groups.push((group, vec![point])),
        }
    }
    let selections: Vec<ImportedSelection> = groups
        .into_iter()
        .filter(|(_, points)| points.len() >= 3)
        .map(|(name, points)| ImportedSelection {
            name,
            colour: None,
            steps: vec![Step {
                combine: Combine::Replace,
                shape: Shape::Polygon(points),
            }],
        })
        .collect();
    if selections.is_empty() {
        anyhow::bail!("{} holds no polygon of three or more points", path.display());
    }
    Ok(selections)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::util::fs::write_atomically;
    use cs_analysis::GridIndex;

    pub(crate) fn selection(name: &str, steps: Vec<Step>) -> NamedSelection {
        let (x, y): (Vec<f64>, Vec<f64>) = (0..100)
            .map(|i| ((i % 10) as f64 * 10.0 + 5.0, (i / 10) as f64 * 10.0 + 5.0))
            .unzip();
        let index = GridIndex::build(&x, &y);
        NamedSelection {
            name: name.to_owned(),
            colour: Color32::from_rgb(200, 10, 20),
            visible: true,
            cells: cs_analysis::cells_in_steps(&index, 100, &steps),
            area_um2: cs_analysis::region_area_um2(&steps),
            steps,
        }
    }

    fn rect(x0: f32, y0: f32, x1: f32, y1: f32) -> Shape {
        Shape::Polygon(vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    }

    #[test]
    fn geojson_round_trip_keeps_name_colour_holes_and_cells() {
        let steps = vec![
            Step {
                combine: Combine::Replace,
                shape: rect(0.0, 0.0, 60.0, 60.0),
            },
            Step {
                combine: Combine::Subtract,
                shape: rect(20.0, 20.0, 40.0, 40.0),
            },
        ];
        let original = selection("Tumour front", steps);
        assert_eq!(original.cell_count(), 32);
        // Exported in slide pixels (2 px per µm, shifted), read back into µm.
        let out_from_world = DAffine2::from_scale_angle_translation(DVec2::splat(2.0), 0.0, DVec2::new(100.0, 50.0));
        let json = selections_to_geojson(&[&original], &out_from_world);
        let dir = std::env::temp_dir().join(format!("geojson_rt_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("selections.geojson");
        write_atomically(&path, serde_json::to_string_pretty(&json).unwrap().as_bytes()).unwrap();
        let read = read_geojson(&path, &out_from_world.inverse()).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].name, "Tumour front");
        assert_eq!(read[0].colour, Some(Color32::from_rgb(200, 10, 20)));
        let back = selection("back", read[0].steps.clone());
        assert_eq!(back.cells, original.cells);
        assert!((back.area_um2 - original.area_um2).abs() < 0.02 * original.area_um2);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn qupath_style_files_and_bad_ones() {
        let dir = std::env::temp_dir().join(format!("geojson_qp_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("qupath.geojson");
        // QuPath 0.3-style bare feature array with packed colour.
        std::fs::write(
            &path,
            r#"[{"type":"Feature","id":"PathAnnotationObject","geometry":{"type":"Polygon","coordinates":[[[0,0],[30,0],[30,30],[0,30],[0,0]]]},"properties":{"objectType":"annotation","classification":{"name":"Stroma","colorRGB":-16711936}}}]"#,
        )
        .unwrap();
        let read = read_geojson(&path, &DAffine2::IDENTITY).unwrap();
        assert_eq!(read[0].name, "Stroma");
        assert_eq!(read[0].colour, Some(Color32::from_rgb(0, 255, 0)));
        std::fs::write(&path, "{not json").unwrap();
        let err = read_geojson(&path, &DAffine2::IDENTITY).unwrap_err().to_string();
        assert!(err.contains("qupath.geojson"), "{err}");
        std::fs::write(
            &path,
            r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[1,2]}}"#,
        )
        .unwrap();
        let err = format!("{:#}", read_geojson(&path, &DAffine2::IDENTITY).unwrap_err());
        assert!(err.contains("no polygons"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn xenium_explorer_coordinates() {
        let dir = std::env::temp_dir().join(format!("xe_csv_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("coordinates.csv");
        std::fs::write(
            &path,
            "#Selection name: Niche A\n#Area (µm^2): 1600.00\nX,Y\n0,0\n40,0\n40,40\n0,40\n",
        )
        .unwrap();
        let read = read_xenium_explorer_csv(&path).unwrap();
        assert_eq!(read[0].name, "Niche A");
        let niche = selection("Niche A", read[0].steps.clone());
        assert_eq!(niche.cell_count(), 16);
        std::fs::write(
            &path,
            "#x\n#y\nSelection,X,Y\nA,0,0\nA,10,0\nA,10,10\nB,50,50\nB,60,50\nB,60,60\n",
        )
        .unwrap();
        let read = read_xenium_explorer_csv(&path).unwrap();
        assert_eq!(read.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["A", "B"]);
        std::fs::write(&path, "X,Y\n0,0\n1,abc\n").unwrap();
        let err = read_xenium_explorer_csv(&path).unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("abc"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
