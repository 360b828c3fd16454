//! Selections in and out of files: GeoJSON that QuPath reads and writes (annotations with a
//! classification name and colour), Xenium Explorer's selection coordinate CSV (import), and the
//! cells of a selection as a CSV in Xenium Explorer's cell-export layout.
//!
//! GeoJSON coordinates are in the H&E slide's level-0 pixels when a slide is open (QuPath works on
//! the H&E), else in Xenium micrometres; the caller passes the transform.

use std::path::Path;

use anyhow::Context as _;
use cs_analysis::{Combine, Shape, Step, region_outline};
use egui::Color32;
use glam::{DAffine2, DVec2};
use serde_json::{Value, json};

use crate::app::{DialogPurpose, PlotKind};
use crate::selections::NamedSelection;

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

fn parse_ring(value: &Value, world_from_file: &DAffine2) -> Option<Vec<[f32; 2]>> {
    let mut ring: Vec<[f32; 2]> = value
        .as_array()?
        .iter()
        .filter_map(|p| {
            let p = p.as_array()?;
            let (x, y) = (p.first()?.as_f64()?, p.get(1)?.as_f64()?);
            (x.is_finite() && y.is_finite()).then(|| {
                let q = world_from_file.transform_point2(DVec2::new(x, y));
                [q.x as f32, q.y as f32]
            })
        })
        .collect();
    if ring.len() > 1 && ring.first() == ring.last() {
        ring.pop();
    }
    (ring.len() >= 3).then_some(ring)
}

/// Steps for one GeoJSON Polygon's coordinates: the outer ring added, holes subtracted.
fn polygon_steps(rings: &Value, world_from_file: &DAffine2, steps: &mut Vec<Step>) {
    let Some(rings) = rings.as_array() else { return };
    for (i, ring) in rings.iter().enumerate() {
        if let Some(points) = parse_ring(ring, world_from_file) {
            steps.push(Step {
                combine: if i == 0 { Combine::Add } else { Combine::Subtract },
                shape: Shape::Polygon(points),
            });
        }
    }
}

fn geometry_steps(geometry: &Value, world_from_file: &DAffine2, steps: &mut Vec<Step>) {
    match geometry.get("type").and_then(Value::as_str) {
        Some("Polygon") => {
            if let Some(c) = geometry.get("coordinates") {
                polygon_steps(c, world_from_file, steps);
            }
        }
        Some("MultiPolygon") => {
            for polygon in geometry
                .get("coordinates")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                polygon_steps(polygon, world_from_file, steps);
            }
        }
        Some("GeometryCollection") => {
            for g in geometry
                .get("geometries")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                geometry_steps(g, world_from_file, steps);
            }
        }
        _ => {}
    }
}

/// QuPath colours: `classification.color` as [r, g, b], or the older packed `colorRGB` integer.
pub(crate) fn feature_colour(properties: &Value) -> Option<Color32> {
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
    let stem = crate::app::display_name(path);
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
    let mut name = crate::app::display_name(path);
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

/// The cells of a selection in Xenium Explorer's cell-export layout: `#` lines with the name and
/// area, then `Cell ID,Cluster,Transcripts,Area (µm^2)`.
pub fn cells_csv(
    selection: &NamedSelection,
    ids: &[String],
    cluster: Option<(&[u32], &[String])>,
    transcripts: Option<&[f64]>,
    cell_area_um2: Option<&[f64]>,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "#Selection name: {}", selection.name);
    let _ = writeln!(out, "#Area (µm^2): {:.2}", selection.area_um2);
    out.push_str("Cell ID,Cluster,Transcripts,Area (µm^2)\n");
    for cell in selection.cells.iter() {
        let id = ids.get(cell).map_or("", String::as_str);
        let cluster_name = cluster
            .and_then(|(codes, names)| codes.get(cell).and_then(|&c| names.get(c as usize)))
            .map_or("", String::as_str);
        let count = transcripts
            .and_then(|t| t.get(cell))
            .map_or(String::new(), |v| format!("{v:.0}"));
        let area = cell_area_um2
            .and_then(|a| a.get(cell))
            .map_or(String::new(), |v| format!("{v:.2}"));
        let _ = writeln!(out, "{id},{},{count},{area}", csv_field(cluster_name));
    }
    out
}

/// What an export needs, gathered on the UI thread and written on a worker.
pub struct ExportInputs<'a> {
    pub bundle: &'a cs_xenium::XeniumBundle,
    pub active: &'a NamedSelection,
    pub visible: &'a [NamedSelection],
    pub file_from_world: DAffine2,
    pub composition: Option<&'a cs_analysis::Composition>,
    pub column: Option<&'a str>,
    pub reference: &'a str,
    pub de: Option<&'a [crate::analysis_jobs::NamedDe]>,
    pub nhood: Option<&'a cs_analysis::NhoodEnrichment>,
}

/// Writes one export; returns the note to show.
pub fn export(purpose: DialogPurpose, path: &Path, inputs: &ExportInputs<'_>) -> anyhow::Result<String> {
    let cells = &inputs.bundle.cells;
    let categories = inputs
        .column
        .and_then(|c| cells.categorical_column(c))
        .map(|c| (c.codes.as_slice(), c.categories.as_slice()));
    let contents = match purpose {
        DialogPurpose::ExportGeoJson => {
            let shown: Vec<&NamedSelection> = inputs.visible.iter().collect();
            serde_json::to_string_pretty(&selections_to_geojson(&shown, &inputs.file_from_world))?
        }
        DialogPurpose::ExportCellsCsv => cells_csv(
            inputs.active,
            &cells.ids,
            categories,
            cells
                .numeric_column("transcript_counts")
                .or_else(|| cells.numeric_column("total_counts")),
            cells.numeric_column("cell_area"),
        ),
        DialogPurpose::ExportStatsCsv
        | DialogPurpose::ExportPlot {
            plot: PlotKind::Composition,
            ..
        } => {
            let (Some(composition), Some((_, names))) = (inputs.composition, categories) else {
                anyhow::bail!("There is no composition to export: the bundle has no categorical column.");
            };
            if purpose == DialogPurpose::ExportStatsCsv {
                composition_csv(
                    inputs.active,
                    inputs.reference,
                    inputs.column.unwrap_or(""),
                    names,
                    composition,
                )
            } else {
                composition_svg(inputs.active, inputs.reference, names, composition)
            }
        }
        DialogPurpose::ExportPlot {
            plot: PlotKind::Volcano,
            ..
        } => {
            let Some(de) = inputs.de else {
                anyhow::bail!("Compute the differential expression first.");
            };
            volcano_svg(&inputs.active.name, inputs.reference, de)
        }
        DialogPurpose::ExportPlot {
            plot: PlotKind::Heatmap,
            ..
        } => {
            let (Some(nhood), Some((_, names))) = (inputs.nhood, categories) else {
                anyhow::bail!("Run the neighbourhood enrichment first.");
            };
            heatmap_svg(inputs.column.unwrap_or(""), names, nhood)
        }
        DialogPurpose::ExportDeCsv => {
            let Some(de) = inputs.de else {
                anyhow::bail!("Compute the differential expression first (it is for the selection as it is now).");
            };
            crate::analysis_jobs::de_csv(&inputs.active.name, inputs.reference, de)
        }
        other => anyhow::bail!("{other:?} is not an export"),
    };
    write_atomically(path, contents.as_bytes())?;
    Ok(format!("Saved {}", path.display()))
}

/// The composition table as CSV, with the comparison described in `#` lines.
pub fn composition_csv(
    selection: &NamedSelection,
    reference: &str,
    column: &str,
    names: &[String],
    composition: &cs_analysis::Composition,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "#Selection: {}", selection.name);
    let _ = writeln!(out, "#Compared with: {reference}");
    let _ = writeln!(out, "#Column: {column}");
    let _ = writeln!(
        out,
        "#Cells: {} in the selection, {} in the reference (cells without a class left out)",
        composition.cells_in_group, composition.cells_in_reference
    );
    let _ = writeln!(
        out,
        "#log2 enrichment uses a pseudocount of {} cell per class; p: two-sided Fisher exact; q: Benjamini-Hochberg",
        cs_analysis::ENRICHMENT_PSEUDOCOUNT
    );
    out.push_str("class,cells_in_selection,cells_in_reference,fraction_in_selection,fraction_in_reference,log2_enrichment,p_value,q_value\n");
    for (i, c) in composition.classes.iter().enumerate() {
        let _ = writeln!(
            out,
            "{},{},{},{:.6},{:.6},{:.6},{:.6e},{:.6e}",
            csv_field(names.get(i).map_or("", String::as_str)),
            c.count_in_group,
            c.count_in_reference,
            c.fraction_in_group,
            c.fraction_in_reference,
            c.log2_enrichment,
            c.p_value,
            c.q_value
        );
    }
    out
}

fn svg_text(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The composition chart as a standalone SVG: grouped bars (selection, reference) per class with
/// significance stars and labelled axes.
pub fn composition_svg(
    selection: &NamedSelection,
    reference: &str,
    names: &[String],
    composition: &cs_analysis::Composition,
) -> String {
    use std::fmt::Write as _;
    let n = composition.classes.len().max(1);
    let (left, top, plot_h, group_w) = (60.0, 40.0, 240.0, 70.0);
    let width = left + group_w * n as f64 + 20.0;
    let height = top + plot_h + 90.0;
    let max_pct = composition
        .classes
        .iter()
        .map(|c| 100.0 * c.fraction_in_group.max(c.fraction_in_reference))
        .fold(1.0, f64::max);
    let y_max = (max_pct / 10.0).ceil() * 10.0;
    let y = |pct: f64| top + plot_h * (1.0 - pct / y_max);
    let [r, g, b, _] = selection.colour.to_srgba_unmultiplied();
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{left}" y="20" font-size="14">{} vs {}: % of cells per class</text>"#,
        svg_text(&selection.name),
        svg_text(reference)
    );
    for tick in 0..=((y_max / 10.0) as usize) {
        let pct = tick as f64 * 10.0;
        let ty = y(pct);
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{ty:.1}" y2="{ty:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{pct}</text>"##,
            width - 20.0,
            left - 6.0,
            ty + 4.0
        );
    }
    for (i, c) in composition.classes.iter().enumerate() {
        let x0 = left + group_w * i as f64 + 10.0;
        let (a, bar) = (100.0 * c.fraction_in_group, 100.0 * c.fraction_in_reference);
        let _ = writeln!(
            svg,
            r#"<rect x="{x0:.1}" y="{:.1}" width="24" height="{:.1}" fill="rgb({r},{g},{b})"/>"#,
            y(a),
            top + plot_h - y(a)
        );
        let _ = writeln!(
            svg,
            r##"<rect x="{:.1}" y="{:.1}" width="24" height="{:.1}" fill="#999"/>"##,
            x0 + 26.0,
            y(bar),
            top + plot_h - y(bar)
        );
        let mark = crate::selection_panel::stars(c.q_value);
        if !mark.is_empty() {
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{mark}</text>"#,
                x0 + 25.0,
                y(a.max(bar)) - 4.0
            );
        }
        let _ = writeln!(
            svg,
            r#"<text transform="translate({:.1},{:.1}) rotate(35)">{}</text>"#,
            x0 + 10.0,
            top + plot_h + 14.0,
            svg_text(names.get(i).map_or("", String::as_str))
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{left}" y="{:.1}">coloured: {}; grey: {}; * q &lt; 0.05, ** &lt; 0.01, *** &lt; 0.001 (Fisher exact, BH)</text>"#,
        height - 8.0,
        svg_text(&selection.name),
        svg_text(reference)
    );
    svg.push_str("</svg>\n");
    svg
}

/// The volcano plot as SVG: log2 fold change against −log10 adjusted p, significant genes named.
pub fn volcano_svg(selection: &str, reference: &str, results: &[crate::analysis_jobs::NamedDe]) -> String {
    use std::fmt::Write as _;
    let (left, top, w, h) = (60.0, 40.0, 420.0, 300.0);
    let point = |r: &crate::analysis_jobs::NamedDe| {
        (
            r.result.log2_fold_change.clamp(-20.0, 20.0),
            -r.result.p_adjusted.max(1e-300).log10(),
        )
    };
    let x_max = results.iter().map(|r| point(r).0.abs()).fold(1.0, f64::max).ceil();
    let y_max = results.iter().map(|r| point(r).1).fold(1.0, f64::max).ceil();
    let sx = |x: f64| left + (x + x_max) / (2.0 * x_max) * w;
    let sy = |y: f64| top + h * (1.0 - y / y_max);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="12">"#,
        left + w + 30.0,
        top + h + 60.0
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{left}" y="20" font-size="14">{} vs {}: differential expression (Wilcoxon, BH)</text>"#,
        svg_text(selection),
        svg_text(reference)
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#888"/>"##
    );
    let _ = writeln!(
        svg,
        r##"<line x1="{:.1}" x2="{:.1}" y1="{top}" y2="{}" stroke="#ccc"/>"##,
        sx(0.0),
        sx(0.0),
        top + h
    );
    for r in results {
        let (x, y) = point(r);
        let hit = r.result.p_adjusted < 0.05 && r.result.log2_fold_change.abs() > 1.0;
        let _ = writeln!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="{}" fill="{}"/>"#,
            sx(x),
            sy(y),
            if hit { 3 } else { 2 },
            if hit { "#e6503c" } else { "#a0a0a0" }
        );
        if hit {
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" font-size="10">{}</text>"#,
                sx(x) + 4.0,
                sy(y) - 4.0,
                svg_text(&r.gene)
            );
        }
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">log2 fold change (±{x_max})</text>"#,
        left + w / 2.0,
        top + h + 30.0
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(20,{:.1}) rotate(-90)" text-anchor="middle">-log10 q (0 to {y_max})</text>"#,
        top + h / 2.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// The neighbourhood-enrichment heatmap as SVG (the panel's blue–white–red z-score scale).
pub fn heatmap_svg(column: &str, names: &[String], nhood: &cs_analysis::NhoodEnrichment) -> String {
    use std::fmt::Write as _;
    let n = nhood.n_classes.min(names.len());
    let (left, top, side) = (140.0, 150.0, 36.0);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="12">"#,
        left + side * n as f64 + 20.0,
        top + side * n as f64 + 50.0
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="10" y="20" font-size="14">Neighbourhood enrichment z-scores of {} ({} cells, {} permutations)</text>"#,
        svg_text(column),
        nhood.n_cells,
        nhood.n_perms
    );
    for (a, name) in names.iter().enumerate().take(n) {
        let y = top + side * a as f64;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 6.0,
            y + side / 2.0 + 4.0,
            svg_text(name)
        );
        let _ = writeln!(
            svg,
            r#"<text transform="translate({:.1},{:.1}) rotate(-60)">{}</text>"#,
            left + side * a as f64 + side / 2.0,
            top - 6.0,
            svg_text(name)
        );
        for b in 0..n {
            let z = nhood.zscore(a, b);
            let [r, g, bl, _] = crate::selection_panel::zscore_colour(z).to_srgba_unmultiplied();
            let _ = writeln!(
                svg,
                r#"<rect x="{:.1}" y="{y:.1}" width="{}" height="{}" fill="rgb({r},{g},{bl})"><title>{:.2}</title></rect>"#,
                left + side * b as f64,
                side - 1.0,
                side - 1.0,
                z
            );
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"#,
                left + side * b as f64 + side / 2.0,
                y + side / 2.0 + 3.0,
                if z.is_finite() {
                    format!("{z:.1}")
                } else {
                    "–".to_owned()
                }
            );
        }
    }
    let _ = writeln!(
        svg,
        r#"<text x="10" y="{:.1}">row: a cell's class; column: its neighbours'; blue depleted, red enriched (saturating at |z| = 10)</text>"#,
        top + side * n as f64 + 30.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// Quotes a CSV field when it needs it.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// Writes `contents` to `path` atomically (temporary file, then rename).
pub fn write_atomically(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, contents).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cs_analysis::GridIndex;

    fn selection(name: &str, steps: Vec<Step>) -> NamedSelection {
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
    fn xenium_explorer_coordinates_and_cell_export() {
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

        let ids: Vec<String> = (0..100).map(|i| format!("cell-{i}")).collect();
        let codes: Vec<u32> = (0..100).map(|i| i % 2).collect();
        let names = vec!["T cells".to_owned(), "B, plasma".to_owned()];
        let csv = cells_csv(&niche, &ids, Some((&codes, &names)), None, None);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "#Selection name: Niche A");
        assert_eq!(lines[2], "Cell ID,Cluster,Transcripts,Area (µm^2)");
        assert_eq!(lines.len(), 3 + 16);
        assert_eq!(lines[3], "cell-0,T cells,,");
        assert_eq!(lines[4], "cell-1,\"B, plasma\",,");
        std::fs::remove_dir_all(&dir).ok();
    }
}
