//! A shapes element's GeoParquet (`shapes/<name>/shapes.parquet`): geometry as WKB (spatialdata's
//! default) or native GeoArrow (`point`, `polygon`, `multipolygon`; separated or interleaved
//! coordinates), a `radius` column for circles, and the pandas index as the shapes' ids.

use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use geo_traits::{
    CoordTrait, GeometryTrait, GeometryType, LineStringTrait, MultiPolygonTrait, PointTrait, PolygonTrait,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use crate::error::{SpatialDataError, corrupt, missing};

/// The geometry of every row, in element coordinates.
#[derive(Debug, Clone, PartialEq)]
pub enum Geometry {
    /// One outer ring per row (of a multipolygon, its largest polygon, which gives the row's
    /// centre; the others are in [`Shapes::smaller_parts`]); closing vertex dropped.
    Polygons(Vec<Vec<[f64; 2]>>),
    Circles {
        centres: Vec<[f64; 2]>,
        radii: Vec<f64>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Shapes {
    /// The index of each row, as text.
    pub ids: Vec<String>,
    pub geometry: Geometry,
    /// Multipolygon rows: their parts other than the largest, by row (drawn as polygons of the
    /// same cell, as a multinucleate cell's nuclei are).
    pub smaller_parts: std::collections::HashMap<usize, Vec<Vec<[f64; 2]>>>,
}

impl Shapes {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Reads `element_dir/shapes.parquet`.
pub fn read_shapes(element_dir: &Path) -> Result<Shapes, SpatialDataError> {
    let path = element_dir.join("shapes.parquet");
    if !path.exists() {
        return Err(if element_dir.join("coords").exists() {
            SpatialDataError::Unsupported {
                path: element_dir.to_path_buf(),
                reason: "shapes in spatialdata's pre-0.1 layout (zarr coordinate arrays); re-save the store with \
                         spatialdata 0.1 or later"
                    .to_owned(),
            }
        } else {
            missing(element_dir, "shapes.parquet")
        });
    }
    let file = File::open(&path).map_err(|e| corrupt(&path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| corrupt(&path, format!("not a readable parquet file: {e}")))?;
    let metadata = builder.schema().metadata().clone();
    let geo: Value = metadata
        .get("geo")
        .and_then(|g| serde_json::from_str(g).ok())
        .unwrap_or(Value::Null);
    let geometry_column = geo
        .get("primary_column")
        .and_then(Value::as_str)
        .unwrap_or("geometry")
        .to_owned();
    let index = pandas_index(metadata.get("pandas"));
    let reader = builder.build().map_err(|e| corrupt(&path, e))?;
    let batches: Vec<RecordBatch> = reader
        .collect::<Result<_, _>>()
        .map_err(|e| corrupt(&path, format!("cannot read rows: {e}")))?;

    let mut rings: Vec<Vec<[f64; 2]>> = Vec::new();
    let mut centres: Vec<[f64; 2]> = Vec::new();
    let mut radii: Vec<f64> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let mut smaller_parts = std::collections::HashMap::new();
    let mut rows_seen = 0usize;
    for batch in &batches {
        let schema = batch.schema();
        let Ok(g) = schema.index_of(&geometry_column) else {
            let found: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(missing(
                &path,
                format!("geometry column {geometry_column:?} (found {})", found.join(", ")),
            ));
        };
        let column = batch.column(g);
        for row in 0..batch.num_rows() {
            let parsed = geometry_at(column, row)
                .map_err(|reason| corrupt(&path, format!("row {}: {reason}", rows_seen + row + 1)))?;
            match parsed {
                Parsed::Point(p) => centres.push(p),
                Parsed::Rings(mut parts) => {
                    parts.sort_by(|a, b| ring_area(b).total_cmp(&ring_area(a)));
                    let mut parts = parts.into_iter();
                    rings.push(parts.next().unwrap_or_default());
                    let rest: Vec<Vec<[f64; 2]>> = parts.filter(|p| !p.is_empty()).collect();
                    if !rest.is_empty() {
                        smaller_parts.insert(rows_seen + row, rest);
                    }
                }
            }
        }
        if let Ok(r) = schema.index_of("radius") {
            radii.extend(numbers(batch.column(r)).map_err(|reason| corrupt(&path, format!("radius: {reason}")))?);
        }
        match &index {
            PandasIndex::Column(name) => {
                let Ok(i) = schema.index_of(name) else {
                    return Err(missing(&path, format!("index column {name:?}")));
                };
                ids.extend(texts(batch.column(i)).map_err(|reason| corrupt(&path, format!("{name}: {reason}")))?);
            }
            PandasIndex::Range { start, step } => {
                ids.extend((rows_seen..rows_seen + batch.num_rows()).map(|i| (start + step * i as i64).to_string()));
            }
        }
        rows_seen += batch.num_rows();
    }
    let geometry = match (rings.is_empty(), centres.is_empty()) {
        (true, false) => {
            if radii.len() != centres.len() {
                return Err(missing(&path, "a `radius` column for its points (circles)"));
            }
            Geometry::Circles { centres, radii }
        }
        (false, true) | (true, true) => Geometry::Polygons(rings),
        (false, false) => {
            return Err(SpatialDataError::Unsupported {
                path,
                reason: "points and polygons mixed in one shapes element".to_owned(),
            });
        }
    };
    Ok(Shapes {
        ids,
        geometry,
        smaller_parts,
    })
}

enum PandasIndex {
    Column(String),
    Range { start: i64, step: i64 },
}

/// The index pandas recorded (`index_columns`: a column name, or a range).
fn pandas_index(pandas: Option<&String>) -> PandasIndex {
    let value: Option<Value> = pandas.and_then(|p| serde_json::from_str(p).ok());
    let first = value
        .as_ref()
        .and_then(|v| v.get("index_columns"))
        .and_then(|c| c.get(0))
        .cloned();
    match first {
        Some(Value::String(name)) => PandasIndex::Column(name),
        Some(range) => PandasIndex::Range {
            start: range.get("start").and_then(Value::as_i64).unwrap_or(0),
            step: range.get("step").and_then(Value::as_i64).unwrap_or(1),
        },
        None => PandasIndex::Range { start: 0, step: 1 },
    }
}

enum Parsed {
    Point([f64; 2]),
    Rings(Vec<Vec<[f64; 2]>>),
}

fn geometry_at(column: &ArrayRef, row: usize) -> Result<Parsed, String> {
    if column.is_null(row) {
        return Ok(Parsed::Rings(Vec::new()));
    }
    match column.data_type() {
        DataType::Binary => wkb_geometry(column.as_binary::<i32>().value(row)),
        DataType::LargeBinary => wkb_geometry(column.as_binary::<i64>().value(row)),
        DataType::BinaryView => wkb_geometry(column.as_binary_view().value(row)),
        // GeoArrow point: struct {x, y} or fixed-size list [x, y].
        DataType::Struct(_) | DataType::FixedSizeList(_, _) => coordinate(column, row).map(Parsed::Point),
        // GeoArrow polygon (list of rings) or multipolygon (list of polygons).
        DataType::List(_) | DataType::LargeList(_) => {
            let polygon_or_parts = list_item(column, row)?;
            if nesting(&polygon_or_parts) == 2 {
                Ok(Parsed::Rings(first_ring(&polygon_or_parts)?.into_iter().collect()))
            } else {
                let mut parts = Vec::new();
                for p in 0..polygon_or_parts.len() {
                    let polygon = list_item(&polygon_or_parts, p)?;
                    parts.extend(first_ring(&polygon)?);
                }
                Ok(Parsed::Rings(parts))
            }
        }
        other => Err(format!("a geometry column of type {other}")),
    }
}

/// List depth above the coordinates: a ring is 1, a polygon 2, a multipolygon 3.
fn nesting(array: &ArrayRef) -> usize {
    fn depth(data_type: &DataType) -> usize {
        match data_type {
            DataType::List(f) | DataType::LargeList(f) => 1 + depth(f.data_type()),
            _ => 0,
        }
    }
    depth(array.data_type()) + 1
}

fn list_item(array: &ArrayRef, row: usize) -> Result<ArrayRef, String> {
    match array.data_type() {
        DataType::List(_) => Ok(array.as_list::<i32>().value(row)),
        DataType::LargeList(_) => Ok(array.as_list::<i64>().value(row)),
        other => Err(format!("expected a list, found {other}")),
    }
}

/// The outer ring of a GeoArrow polygon (its rings as a list array).
fn first_ring(polygon: &ArrayRef) -> Result<Option<Vec<[f64; 2]>>, String> {
    if polygon.is_empty() {
        return Ok(None);
    }
    let ring = list_item(polygon, 0)?;
    let mut points = Vec::with_capacity(ring.len());
    for i in 0..ring.len() {
        points.push(coordinate(&ring, i)?);
    }
    Ok(Some(without_closing(points)))
}

fn coordinate(array: &ArrayRef, row: usize) -> Result<[f64; 2], String> {
    match array.data_type() {
        DataType::Struct(_) => {
            let s = array.as_struct();
            let x = s.column_by_name("x").ok_or("a coordinate struct without x")?;
            let y = s.column_by_name("y").ok_or("a coordinate struct without y")?;
            Ok([number_at(x, row)?, number_at(y, row)?])
        }
        DataType::FixedSizeList(_, n) if *n >= 2 => {
            let values = array.as_fixed_size_list().value(row);
            Ok([number_at(&values, 0)?, number_at(&values, 1)?])
        }
        other => Err(format!("coordinates of type {other}")),
    }
}

fn number_at(array: &ArrayRef, row: usize) -> Result<f64, String> {
    Ok(match array.data_type() {
        DataType::Float64 => array.as_primitive::<Float64Type>().value(row),
        DataType::Float32 => f64::from(array.as_primitive::<Float32Type>().value(row)),
        other => return Err(format!("coordinates of type {other}")),
    })
}

fn wkb_geometry(bytes: &[u8]) -> Result<Parsed, String> {
    let geometry = wkb::reader::read_wkb(bytes).map_err(|e| format!("invalid WKB: {e}"))?;
    let ring = |polygon: &dyn PolygonLike| polygon.outer();
    match geometry.as_type() {
        GeometryType::Point(p) => p
            .coord()
            .map(|c| Parsed::Point([c.x(), c.y()]))
            .ok_or_else(|| "an empty point".to_owned()),
        GeometryType::Polygon(p) => Ok(Parsed::Rings(ring(p).into_iter().collect())),
        GeometryType::MultiPolygon(m) => Ok(Parsed::Rings(m.polygons().filter_map(|p| ring(&p)).collect())),
        _ => Err("a geometry that is neither a point, a polygon nor a multipolygon".to_owned()),
    }
}

/// A polygon's outer ring, whatever the reader's polygon type.
trait PolygonLike {
    fn outer(&self) -> Option<Vec<[f64; 2]>>;
}

impl<P: PolygonTrait<T = f64>> PolygonLike for P {
    fn outer(&self) -> Option<Vec<[f64; 2]>> {
        let exterior = self.exterior()?;
        Some(without_closing(exterior.coords().map(|c| [c.x(), c.y()]).collect()))
    }
}

fn without_closing(mut ring: Vec<[f64; 2]>) -> Vec<[f64; 2]> {
    if ring.len() > 1 && ring.first() == ring.last() {
        ring.pop();
    }
    ring
}

fn ring_area(ring: &[[f64; 2]]) -> f64 {
    let mut twice = 0.0;
    for i in 0..ring.len() {
        let (a, b) = (ring[i], ring[(i + 1) % ring.len()]);
        twice += a[0] * b[1] - b[0] * a[1];
    }
    (twice * 0.5).abs()
}

fn numbers(array: &ArrayRef) -> Result<Vec<f64>, String> {
    macro_rules! cast {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            (0..a.len())
                .map(|i| if a.is_null(i) { f64::NAN } else { a.value(i) as f64 })
                .collect()
        }};
    }
    Ok(match array.data_type() {
        DataType::Float64 => cast!(Float64Type),
        DataType::Float32 => cast!(Float32Type),
        DataType::Int64 => cast!(Int64Type),
        DataType::Int32 => cast!(Int32Type),
        other => return Err(format!("numbers of type {other}")),
    })
}

fn texts(array: &ArrayRef) -> Result<Vec<String>, String> {
    macro_rules! ints {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            (0..a.len()).map(|i| a.value(i).to_string()).collect()
        }};
    }
    Ok(match array.data_type() {
        DataType::Utf8 => array
            .as_string::<i32>()
            .iter()
            .map(|v| v.unwrap_or("").to_owned())
            .collect(),
        DataType::LargeUtf8 => array
            .as_string::<i64>()
            .iter()
            .map(|v| v.unwrap_or("").to_owned())
            .collect(),
        DataType::Utf8View => array
            .as_string_view()
            .iter()
            .map(|v| v.unwrap_or("").to_owned())
            .collect(),
        DataType::Binary => array
            .as_binary::<i32>()
            .iter()
            .map(|v| String::from_utf8_lossy(v.unwrap_or(b"")).into_owned())
            .collect(),
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => ints!(UInt64Type),
        DataType::Dictionary(_, _) => {
            let dictionary = array.as_any_dictionary();
            let values = texts(dictionary.values())?;
            dictionary
                .normalized_keys()
                .into_iter()
                .map(|k| values.get(k).cloned().unwrap_or_default())
                .collect()
        }
        other => return Err(format!("ids of type {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_drop_their_closing_vertex_and_measure_area() {
        let ring = without_closing(vec![[0.0, 0.0], [2.0, 0.0], [2.0, 3.0], [0.0, 0.0]]);
        assert_eq!(ring.len(), 3);
        assert_eq!(ring_area(&ring), 3.0);
    }

    #[test]
    fn wkb_polygons_and_points_parse() {
        // A little-endian WKB point (1.5, -2).
        let mut point = vec![1u8, 1, 0, 0, 0];
        point.extend(1.5f64.to_le_bytes());
        point.extend((-2.0f64).to_le_bytes());
        assert!(matches!(wkb_geometry(&point), Ok(Parsed::Point([1.5, -2.0]))));
        // A polygon with one ring of 4 points (closed).
        let mut polygon = vec![1u8, 3, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0];
        for (x, y) in [(0.0f64, 0.0f64), (1.0, 0.0), (1.0, 1.0), (0.0, 0.0)] {
            polygon.extend(x.to_le_bytes());
            polygon.extend(y.to_le_bytes());
        }
        let rings = match wkb_geometry(&polygon) {
            Ok(Parsed::Rings(rings)) => rings,
            _ => Vec::new(),
        };
        assert_eq!(rings, vec![vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]]);
        assert!(wkb_geometry(&[1, 3]).is_err());
    }

    #[test]
    fn a_wkb_multipolygon_gives_every_part() {
        // Two triangles: a small one, then one four times its area.
        let mut multi = vec![1u8, 6, 0, 0, 0, 2, 0, 0, 0];
        for scale in [1.0f64, 2.0] {
            multi.extend([1u8, 3, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0]);
            for (x, y) in [(0.0f64, 0.0f64), (scale, 0.0), (scale, scale), (0.0, 0.0)] {
                multi.extend((x + 10.0 * scale).to_le_bytes());
                multi.extend(y.to_le_bytes());
            }
        }
        let parts = match wkb_geometry(&multi) {
            Ok(Parsed::Rings(rings)) => rings,
            _ => Vec::new(),
        };
        assert_eq!(parts.len(), 2);
        assert_eq!(ring_area(&parts[1]), 4.0 * ring_area(&parts[0]));
    }
}
