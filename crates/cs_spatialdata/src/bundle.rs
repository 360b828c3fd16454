//! A SpatialData store as the viewer shows it: a [`XeniumBundle`] in world micrometres and the
//! images placed by their transformations.
//!
//! - The coordinate system is `global` when an element maps there, else the first one listed.
//! - Cells are the table's rows that annotate a shapes element (its `region`, matched by
//!   `instance_key` to the shapes' index); when the table annotates labels, the shapes element
//!   and id column (instance key, `cell_id`, obs names) sharing most ids stand in. Centroids
//!   come from the shapes (circle centres, polygon centroids); circles become discs when there
//!   are no polygons of the same cells.
//! - World µm per coordinate-system unit: when the cells' shapes reach the system through a uniform
//!   scale other than 1, the shapes are taken to be in µm (as spatialdata-io writes Xenium, whose
//!   `global` system is in morphology pixels), so a unit is 1/scale µm; otherwise 1 µm, with a
//!   warning.
//! - obs columns become colourings (categorical and text as categories, numbers as values); X
//!   becomes the counts, var names the features.

use std::path::{Path, PathBuf};

use cs_xenium::{
    Affine2, BundleFiles, Categorical, CellTable, Experiment, Feature, GENE_EXPRESSION, LoadWarning, MISSING_CODE,
    MorphologyFile, Polygons, SparseCounts, TranscriptLayout, XeniumBundle,
};
use rustc_hash::FxHashMap as HashMap;

use crate::error::{SpatialDataError, corrupt, missing};
use crate::shapes::{Geometry, Shapes, read_shapes};
use crate::table::{ObsColumn, Table, read_table};
use crate::transform::uniform_scale;
use crate::{Element, ElementKind, SpatialData};

/// Vertices of the polygon standing in for a circle.
const DISC_VERTICES: usize = 24;

/// An image element and where it lies.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedImage {
    pub name: String,
    /// The element's folder (an OME-NGFF multiscale image `cs_slide` opens).
    pub path: PathBuf,
    pub world_from_image_px: Affine2,
}

/// What [`read_bundle`] made of a store.
#[derive(Debug, Clone, PartialEq)]
pub struct SpatialDataBundle {
    pub bundle: XeniumBundle,
    /// The first RGB image (an H&E), to be opened as the slide.
    pub he_image: Option<PlacedImage>,
    /// Every image element placed in the chosen coordinate system.
    pub images: Vec<PlacedImage>,
    pub coordinate_system: String,
    pub um_per_unit: f64,
    /// Which shapes element the cells came from.
    pub cell_shapes: String,
    pub table: Option<String>,
}

/// Reads a store whole, as described in the module docs.
pub fn read_bundle(path: &Path) -> Result<SpatialDataBundle, SpatialDataError> {
    let sdata = SpatialData::open(path)?;
    let mut warnings: Vec<LoadWarning> = Vec::new();
    let mut warn = |file: Option<PathBuf>, message: String| warnings.push(LoadWarning { file, message });

    let systems = sdata.coordinate_systems();
    let Some(system) = systems.first().cloned() else {
        return Err(missing(
            path,
            "elements with coordinate transformations (no shapes, points or images)",
        ));
    };
    let table_element = sdata
        .element(ElementKind::Table, "table")
        .or_else(|| sdata.of_kind(ElementKind::Table).next());
    let table = table_element.map(|t| read_table(&sdata.store, &t.node)).transpose()?;

    // The shapes the cells are: the table's region if it is shapes, else the best id match.
    let shapes_elements: Vec<&Element> = sdata
        .of_kind(ElementKind::Shapes)
        .filter(|e| e.to_system(&system).is_some())
        .collect();
    if shapes_elements.is_empty() {
        return Err(missing(
            path,
            format!("a shapes element in coordinate system {system:?} (the cells)"),
        ));
    }
    let mut loaded: HashMap<String, Shapes> = HashMap::default();
    for element in &shapes_elements {
        let shapes = read_shapes(&sdata.store.path_of(&element.node))?;
        loaded.insert(element.name.clone(), shapes);
    }
    // Ids the table's rows may carry: the instance key, a `cell_id` column, the obs names.
    let candidates = table.as_ref().map(id_candidates).unwrap_or_default();
    let annotated = table.as_ref().and_then(|t| {
        t.annotation
            .regions
            .iter()
            .find(|r| loaded.contains_key(r.as_str()))
            .cloned()
    });
    // When the table annotates labels (spatialdata-io's default for Xenium), the shapes element
    // and id column that match best stand in, and every row counts.
    let (cell_shapes, id_source) = match &annotated {
        Some(name) => (name.clone(), 0),
        None => best_match(&shapes_elements, &loaded, &candidates),
    };
    let Some(cell_element) = shapes_elements.iter().find(|e| e.name == cell_shapes) else {
        return Err(missing(path, "the cells' shapes element"));
    };
    let cs_from_cells = cell_element
        .to_system(&system)
        .map_or(Affine2::IDENTITY, |t| t.cs_from_element);
    let um_per_unit = match uniform_scale(&cs_from_cells) {
        Some(s) if (s - 1.0).abs() > 1e-9 => 1.0 / s,
        _ => {
            warn(
                None,
                format!("coordinate system {system:?} does not say its unit: one unit is taken as 1 µm"),
            );
            1.0
        }
    };
    let world_from = |element: &Element| -> Affine2 {
        let cs = element
            .to_system(&system)
            .map_or(Affine2::IDENTITY, |t| t.cs_from_element);
        cs.scaled(um_per_unit)
    };

    // Which rows of the table are cells of `cell_shapes`, and their ids.
    let shapes = &loaded[&cell_shapes];
    let shape_row: HashMap<&str, usize> = shapes.ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let (row_ids, rows_in_region): (Vec<String>, Vec<usize>) = match (&table, candidates.get(id_source)) {
        (Some(table), Some(ids)) => {
            let region_key = table.annotation.region_key.as_deref().filter(|_| annotated.is_some());
            (0..ids.len())
                .filter(|&row| {
                    region_key
                        .and_then(|key| table.text_at(key, row))
                        .is_none_or(|region| region == cell_shapes)
                })
                .map(|row| (ids[row].clone(), row))
                .unzip()
        }
        _ => (shapes.ids.clone(), Vec::new()),
    };
    let world_from_cells = world_from(cell_element);
    let mut ids = Vec::with_capacity(row_ids.len());
    let mut table_rows = Vec::with_capacity(row_ids.len());
    let mut shape_rows = Vec::with_capacity(row_ids.len());
    let mut without_shape = 0usize;
    for (i, id) in row_ids.into_iter().enumerate() {
        match shape_row.get(id.as_str()) {
            Some(&s) => {
                ids.push(id);
                shape_rows.push(s);
                table_rows.push(rows_in_region.get(i).copied());
            }
            None => without_shape += 1,
        }
    }
    if without_shape > 0 {
        warn(
            Some(sdata.store.path_of(&cell_element.node)),
            format!("{without_shape} table rows have no shape in {cell_shapes:?} and are left out"),
        );
    }
    let cell_polygons_um: Vec<Vec<[f64; 2]>> = shape_rows
        .iter()
        .map(|&s| {
            outline(&shapes.geometry, s)
                .iter()
                .map(|&p| world_from_cells.apply(p))
                .collect()
        })
        .collect();
    let (x_um, y_um): (Vec<f64>, Vec<f64>) = shape_rows
        .iter()
        .zip(&cell_polygons_um)
        .map(|(&s, polygon)| {
            let c = match &shapes.geometry {
                Geometry::Circles { centres, .. } => world_from_cells.apply(centres[s]),
                Geometry::Polygons(_) => centroid(polygon),
            };
            (c[0], c[1])
        })
        .unzip();
    let cells_path = sdata.store.path_of(&cell_element.node);
    let mut cells = CellTable::from_parts(&cells_path, ids, x_um, y_um).map_err(|e| corrupt(&cells_path, e))?;

    // Cell boundaries: polygons of the same cells (the cells' own, or a polygon element sharing
    // their ids, cell-named first); nuclei from a nucleus-named polygon element.
    let polygon_elements: Vec<&&Element> = shapes_elements
        .iter()
        .filter(|e| matches!(loaded[&e.name].geometry, Geometry::Polygons(_)))
        .collect();
    let is_nucleus = |name: &str| name.to_ascii_lowercase().contains("nucle");
    let boundary_element = if matches!(shapes.geometry, Geometry::Polygons(_)) {
        Some(*cell_element)
    } else {
        polygon_elements
            .iter()
            .filter(|e| !is_nucleus(&e.name))
            .map(|e| (overlap(&loaded[&e.name].ids, &cells), e.name.contains("cell"), **e))
            .max_by_key(|&(shared, named_cell, _)| (shared, named_cell))
            .filter(|&(shared, ..)| shared > 0)
            .map(|(.., e)| e)
    };
    let cell_boundaries = match boundary_element {
        Some(element) => Some(polygons_for_cells(&loaded[&element.name], &cells, world_from(element))),
        None => Some(polygons_for_cells(shapes, &cells, world_from_cells)),
    };
    let nucleus_boundaries = polygon_elements
        .iter()
        .filter(|e| is_nucleus(&e.name))
        .find(|e| overlap(&loaded[&e.name].ids, &cells) > 0)
        .map(|e| polygons_for_cells(&loaded[&e.name], &cells, world_from(e)));

    // obs columns and counts, in cell order.
    let mut counts = None;
    if let (Some(table), Some(element)) = (&table, table_element) {
        let skip: Vec<&str> = [
            table.annotation.region_key.as_deref(),
            table.annotation.instance_key.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let table_path = sdata.store.path_of(&element.node);
        for (name, column) in &table.obs {
            if skip.contains(&name.as_str()) || name == "cell_id" {
                continue;
            }
            add_column(&mut cells, name, column, &table_rows, &mut warn, &table_path);
        }
        counts = table.x.as_ref().map(|x| counts_for_cells(table, x, &table_rows));
    }
    if counts.is_none() {
        warn(None, "the table has no X: no gene expression".to_owned());
    }

    // Points: the first element (transcripts by name) as the bundle's transcripts.
    let points = sdata.element(ElementKind::Points, "transcripts").or_else(|| {
        sdata
            .of_kind(ElementKind::Points)
            .find(|e| e.to_system(&system).is_some())
    });
    let transcript_layout = points.map(|element| {
        let attrs = element.attributes.get("spatialdata_attrs");
        let key = |name: &str, default: &str| {
            attrs
                .and_then(|a| a.get(name))
                .and_then(serde_json::Value::as_str)
                .unwrap_or(default)
                .to_owned()
        };
        TranscriptLayout {
            feature: key("feature_key", "feature_name"),
            x: "x".to_owned(),
            y: "y".to_owned(),
            z: "z".to_owned(),
            qv: "qv".to_owned(),
            cell_id: key("instance_key", "cell_id"),
            world_from_file: world_from(element),
        }
    });
    let transcripts_path = points.map(|element| sdata.store.path_of(&element.node).join("points.parquet"));

    // Images: RGB ones are H&E candidates; the rest are morphology, `focus` first.
    let mut images = Vec::new();
    let mut morphology = Vec::new();
    let mut he_image = None;
    let mut image_elements: Vec<&Element> = sdata
        .of_kind(ElementKind::Image)
        .filter(|e| e.to_system(&system).is_some())
        .collect();
    image_elements.sort_by_key(|e| !e.name.contains("focus"));
    for element in image_elements {
        let placed = PlacedImage {
            name: element.name.clone(),
            path: sdata.store.path_of(&element.node),
            world_from_image_px: world_from(element),
        };
        if is_rgb(&sdata, element) {
            if he_image.is_none() {
                he_image = Some(placed.clone());
            }
        } else if morphology.is_empty() {
            morphology.push(MorphologyFile {
                path: placed.path.clone(),
                channel_name_hint: None,
                world_from_image_px: Some(placed.world_from_image_px),
            });
        }
        images.push(placed);
    }

    let files = BundleFiles {
        transcripts: transcripts_path,
        transcript_layout: transcript_layout.unwrap_or_default(),
        morphology,
        ..BundleFiles::default()
    };
    let experiment = Experiment {
        pixel_size_um: um_per_unit,
        ranger_version: None,
        software_version: Some(format!(
            "SpatialData{}",
            sdata
                .format_version
                .as_deref()
                .map(|v| format!(" {v}"))
                .unwrap_or_default()
        )),
        panel_name: None,
        panel_organism: None,
        run_name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        region_name: Some(system.clone()),
        num_cells: None,
    };
    Ok(SpatialDataBundle {
        bundle: XeniumBundle {
            dir: path.to_path_buf(),
            files,
            experiment: Some(experiment),
            cells,
            cell_boundaries,
            nucleus_boundaries,
            counts,
            warnings,
        },
        he_image,
        images,
        coordinate_system: system,
        um_per_unit,
        cell_shapes,
        table: table_element.map(|t| t.name.clone()),
    })
}

/// Each table row's possible ids, best first: the `instance_key` column, a `cell_id` column, the
/// obs names.
fn id_candidates(table: &Table) -> Vec<Vec<String>> {
    let column = |key: &str| -> Vec<String> {
        (0..table.obs_names.len())
            .map(|row| table.text_at(key, row).unwrap_or_default())
            .collect()
    };
    let mut candidates = Vec::new();
    if let Some(key) = table
        .annotation
        .instance_key
        .as_deref()
        .filter(|k| table.column(k).is_some())
    {
        candidates.push(column(key));
    }
    if table.annotation.instance_key.as_deref() != Some("cell_id") && table.column("cell_id").is_some() {
        candidates.push(column("cell_id"));
    }
    candidates.push(table.obs_names.clone());
    candidates
}

/// The shapes element, and the id candidate, sharing most ids (cells before nuclei, polygons
/// before circles on a tie). Without a table every element's own ids count.
fn best_match(elements: &[&Element], loaded: &HashMap<String, Shapes>, candidates: &[Vec<String>]) -> (String, usize) {
    let mut best: Option<((usize, bool, bool), String, usize)> = None;
    for element in elements {
        let shapes = &loaded[&element.name];
        let set: std::collections::HashSet<&str> = shapes.ids.iter().map(String::as_str).collect();
        let cells_first = !element.name.to_ascii_lowercase().contains("nucle");
        let polygons = matches!(shapes.geometry, Geometry::Polygons(_));
        let shared_by: Vec<usize> = if candidates.is_empty() {
            vec![shapes.len()]
        } else {
            candidates
                .iter()
                .map(|ids| ids.iter().filter(|id| set.contains(id.as_str())).count())
                .collect()
        };
        for (source, shared) in shared_by.into_iter().enumerate() {
            let score = (shared, cells_first, polygons);
            if best.as_ref().is_none_or(|(b, _, _)| score > *b) {
                best = Some((score, element.name.clone(), source));
            }
        }
    }
    best.map(|(_, name, source)| (name, source)).unwrap_or_default()
}

fn overlap(ids: &[String], cells: &CellTable) -> usize {
    ids.iter().filter(|id| cells.index_of(id).is_some()).count()
}

/// Row `row`'s outline in element coordinates: its ring, or a disc for a circle.
fn outline(geometry: &Geometry, row: usize) -> Vec<[f64; 2]> {
    match geometry {
        Geometry::Polygons(rings) => rings[row].clone(),
        Geometry::Circles { centres, radii } => {
            let ([cx, cy], r) = (centres[row], radii[row]);
            (0..DISC_VERTICES)
                .map(|i| {
                    let a = std::f64::consts::TAU * i as f64 / DISC_VERTICES as f64;
                    [cx + r * a.cos(), cy + r * a.sin()]
                })
                .collect()
        }
    }
}

fn centroid(polygon: &[[f64; 2]]) -> [f64; 2] {
    let p = Polygons::one_per_cell(
        vec![0, polygon.len() as u32],
        polygon.iter().map(|v| [v[0] as f32, v[1] as f32]).collect(),
    );
    // f32 vertices lose < 0.01 µm over a 100 mm slide; the centroid itself is computed in f64.
    p.centroid_um(0).unwrap_or([f64::NAN, f64::NAN])
}

/// Outlines of `shapes` in the cell table's order (none for cells it lacks; every part of a
/// multipolygon, largest first), in world µm.
fn polygons_for_cells(shapes: &Shapes, cells: &CellTable, world_from_element: Affine2) -> Polygons {
    let mut by_cell: Vec<Option<usize>> = vec![None; cells.len()];
    for (row, id) in shapes.ids.iter().enumerate() {
        if let Some(cell) = cells.index_of(id) {
            by_cell[cell as usize].get_or_insert(row);
        }
    }
    let mut polygons = Polygons {
        offsets: vec![0],
        vertices_um: Vec::new(),
        cell_polygons: vec![0],
    };
    let push_ring = |polygons: &mut Polygons, ring: &[[f64; 2]]| {
        for &p in ring {
            let [x, y] = world_from_element.apply(p);
            polygons.vertices_um.push([x as f32, y as f32]);
        }
        polygons.offsets.push(polygons.vertices_um.len() as u32);
    };
    for row in by_cell {
        if let Some(row) = row {
            push_ring(&mut polygons, &outline(&shapes.geometry, row));
            for part in shapes.smaller_parts.get(&row).into_iter().flatten() {
                push_ring(&mut polygons, part);
            }
        }
        polygons.cell_polygons.push((polygons.offsets.len() - 1) as u32);
    }
    polygons
}

/// Distinct texts with at most this many values become categories; more are ids, left out.
const MAX_TEXT_CATEGORIES: usize = 1000;

fn add_column(
    cells: &mut CellTable,
    name: &str,
    column: &ObsColumn,
    table_rows: &[Option<usize>],
    warn: &mut impl FnMut(Option<PathBuf>, String),
    table_path: &Path,
) {
    match column {
        ObsColumn::Numbers(values) => {
            let per_cell = table_rows
                .iter()
                .map(|row| row.and_then(|r| values.get(r).copied()).unwrap_or(f64::NAN))
                .collect();
            cells.numeric.push((name.to_owned(), per_cell));
        }
        ObsColumn::Categories { labels, codes } => {
            let per_cell = table_rows
                .iter()
                .map(|row| {
                    row.and_then(|r| codes.get(r).copied().flatten())
                        .unwrap_or(MISSING_CODE)
                })
                .collect();
            cells
                .categorical
                .push((name.to_owned(), Categorical::from_codes(labels.clone(), per_cell)));
        }
        ObsColumn::Text(values) => {
            let mut labels: Vec<String> = Vec::new();
            let mut index: HashMap<&str, u32> = HashMap::default();
            let mut codes = Vec::with_capacity(table_rows.len());
            for row in table_rows {
                let Some(text) = row.and_then(|r| values.get(r)).filter(|t| !t.is_empty()) else {
                    codes.push(MISSING_CODE);
                    continue;
                };
                let next = labels.len() as u32;
                let code = *index.entry(text.as_str()).or_insert_with(|| {
                    labels.push(text.clone());
                    next
                });
                codes.push(code);
                if labels.len() > MAX_TEXT_CATEGORIES {
                    warn(
                        Some(table_path.to_path_buf()),
                        format!(
                            "obs column {name:?} has over {MAX_TEXT_CATEGORIES} distinct texts: not offered as a colouring"
                        ),
                    );
                    return;
                }
            }
            cells
                .categorical
                .push((name.to_owned(), Categorical::from_codes(labels, codes)));
        }
    }
}

/// X's rows in cell order.
fn counts_for_cells(table: &Table, x: &crate::table::SparseRows, table_rows: &[Option<usize>]) -> SparseCounts {
    let features = table
        .var_names
        .iter()
        .enumerate()
        .map(|(i, name)| Feature {
            id: name.clone(),
            name: name.clone(),
            feature_type: table
                .feature_types
                .as_ref()
                .and_then(|t| t.get(i))
                .filter(|t| !t.is_empty())
                .cloned()
                .unwrap_or_else(|| GENE_EXPRESSION.to_owned()),
        })
        .collect();
    let mut counts = SparseCounts {
        features,
        row_offsets: Vec::with_capacity(table_rows.len() + 1),
        feature_index: Vec::new(),
        counts: Vec::new(),
    };
    counts.row_offsets.push(0);
    for row in table_rows {
        if let Some(r) = row {
            let (a, b) = (x.offsets[*r] as usize, x.offsets[*r + 1] as usize);
            counts.feature_index.extend_from_slice(&x.columns[a..b]);
            counts.counts.extend_from_slice(&x.values[a..b]);
        }
        counts.row_offsets.push(counts.feature_index.len() as u64);
    }
    counts
}

/// Whether an image element is an RGB(A) picture: 3 or 4 channels named r, g, b(, a), or an
/// 8-bit image of 3 or 4 channels.
fn is_rgb(sdata: &SpatialData, element: &Element) -> bool {
    let labels: Vec<String> = element
        .attributes
        .get("omero")
        .and_then(|o| o.get("channels"))
        .and_then(serde_json::Value::as_array)
        .map(|channels| {
            channels
                .iter()
                .filter_map(|c| c.get("label").and_then(serde_json::Value::as_str))
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default();
    if labels.len() >= 3 && labels[..3] == ["r", "g", "b"] {
        return true;
    }
    let multiscale = element.attributes.get("multiscales").and_then(|m| m.get(0));
    let level0 = multiscale
        .and_then(|m| m.get("datasets"))
        .and_then(|d| d.get(0))
        .and_then(|d| d.get("path"))
        .and_then(serde_json::Value::as_str);
    let channel_axis = multiscale
        .and_then(|m| m.get("axes"))
        .and_then(serde_json::Value::as_array)
        .and_then(|axes| {
            axes.iter()
                .position(|a| a.get("name").or(Some(a)).and_then(serde_json::Value::as_str) == Some("c"))
        });
    let (Some(level0), Some(axis)) = (level0, channel_axis) else {
        return false;
    };
    let node = format!("{}/{level0}", element.node);
    let channels = sdata.store.shape(&node).ok().and_then(|s| s.get(axis).copied());
    matches!(channels, Some(3 | 4)) && sdata.store.is_u8(&node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_of_a_multipolygon_cell_is_drawn_largest_first() {
        let square = |x: f64, side: f64| vec![[x, 0.0], [x + side, 0.0], [x + side, side], [x, side]];
        let shapes = Shapes {
            ids: vec!["b".to_owned(), "a".to_owned()],
            geometry: Geometry::Polygons(vec![square(0.0, 4.0), square(20.0, 2.0)]),
            // Row 0 ("b") is a multipolygon: a second, smaller square.
            smaller_parts: std::collections::HashMap::from([(0, vec![square(10.0, 1.0)])]),
        };
        let cells = CellTable::from_parts(
            std::path::Path::new("cells"),
            vec!["a".to_owned(), "b".to_owned(), "c".to_owned()],
            vec![0.0; 3],
            vec![0.0; 3],
        )
        .unwrap_or_default();
        let polygons = polygons_for_cells(&shapes, &cells, Affine2::IDENTITY);
        assert_eq!(polygons.part_count(0), 1, "a: one square");
        assert_eq!(polygons.part_count(1), 2, "b: both parts");
        assert_eq!(polygons.part_count(2), 0, "c: no shape");
        assert_eq!(polygons.polygon(1).len(), 4);
        assert!((polygons.area_um2(1) - 17.0).abs() < 1e-9, "{}", polygons.area_um2(1));
    }
}
