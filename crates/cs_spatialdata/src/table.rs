//! A table element: AnnData stored in zarr (anndata's encoding 0.1/0.2, zarr v2 or v3). Reads
//! what the viewer uses: the obs index and columns (numeric, boolean, string, categorical,
//! nullable), var names and feature types, X (CSR, CSC or dense), and spatialdata's annotation
//! target (`region`, `region_key`, `instance_key`, as table attributes or, in older stores, in
//! `uns/spatialdata_attrs`).

use serde_json::{Map, Value};

use crate::error::{SpatialDataError, corrupt};
use crate::zarr::{ArrayValues, Store};

/// One obs column.
#[derive(Debug, Clone, PartialEq)]
pub enum ObsColumn {
    Numbers(Vec<f64>),
    /// Category labels and, per row, an index into them (None: missing).
    Categories {
        labels: Vec<String>,
        codes: Vec<Option<u32>>,
    },
    Text(Vec<String>),
}

/// Which elements the table annotates and how its rows point at their instances.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Annotation {
    pub regions: Vec<String>,
    pub region_key: Option<String>,
    pub instance_key: Option<String>,
}

/// X as compressed rows: row `r` has `columns[offsets[r]..offsets[r + 1]]` with `values` there.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SparseRows {
    pub offsets: Vec<u64>,
    pub columns: Vec<u32>,
    pub values: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub obs_names: Vec<String>,
    pub obs: Vec<(String, ObsColumn)>,
    pub var_names: Vec<String>,
    /// `var["feature_types"]` when present (10x's `Gene Expression`, controls, ...).
    pub feature_types: Option<Vec<String>>,
    pub annotation: Annotation,
    /// None when the table has no X.
    pub x: Option<SparseRows>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&ObsColumn> {
        self.obs.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// A column's value in row `row` as text (ids and region names).
    pub fn text_at(&self, name: &str, row: usize) -> Option<String> {
        match self.column(name)? {
            ObsColumn::Text(values) => values.get(row).cloned(),
            ObsColumn::Categories { labels, codes } => codes.get(row)?.and_then(|c| labels.get(c as usize).cloned()),
            ObsColumn::Numbers(values) => values.get(row).map(|v| {
                if v.fract() == 0.0 {
                    format!("{}", *v as i64)
                } else {
                    v.to_string()
                }
            }),
        }
    }
}

fn text_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// Reads the table at node `node` (`tables/table`).
pub fn read_table(store: &Store, node: &str) -> Result<Table, SpatialDataError> {
    let attrs = store.group_attributes(node)?;
    let annotation = annotation(store, node, &attrs);
    let obs_node = format!("{node}/obs");
    let (obs_names, obs) = read_dataframe(store, &obs_node)?;
    let var_node = format!("{node}/var");
    let (var_names, var) = read_dataframe(store, &var_node)?;
    let feature_types = var.iter().find(|(n, _)| n == "feature_types").map(|(_, column)| {
        (0..var_names.len())
            .map(|i| match column {
                ObsColumn::Text(v) => v.get(i).cloned().unwrap_or_default(),
                ObsColumn::Categories { labels, codes } => codes
                    .get(i)
                    .copied()
                    .flatten()
                    .and_then(|c| labels.get(c as usize).cloned())
                    .unwrap_or_default(),
                ObsColumn::Numbers(_) => String::new(),
            })
            .collect()
    });
    let x_node = format!("{node}/X");
    let x = if store.path_of(&x_node).exists() {
        Some(read_matrix(store, &x_node, obs_names.len(), var_names.len())?)
    } else {
        None
    };
    Ok(Table {
        obs_names,
        obs,
        var_names,
        feature_types,
        annotation,
        x,
    })
}

fn annotation(store: &Store, node: &str, attrs: &Map<String, Value>) -> Annotation {
    let from = |attrs: &Map<String, Value>| Annotation {
        regions: text_list(attrs.get("region")),
        region_key: attrs.get("region_key").and_then(Value::as_str).map(str::to_owned),
        instance_key: attrs.get("instance_key").and_then(Value::as_str).map(str::to_owned),
    };
    let found = from(attrs);
    if !found.regions.is_empty() || found.instance_key.is_some() {
        return found;
    }
    // Older stores: uns/spatialdata_attrs/{region, region_key, instance_key} as arrays.
    let uns = format!("{node}/uns/spatialdata_attrs");
    let read = |key: &str| store.strings(&format!("{uns}/{key}")).ok();
    Annotation {
        regions: read("region").unwrap_or_default(),
        region_key: read("region_key").and_then(|v| v.into_iter().next()),
        instance_key: read("instance_key").and_then(|v| v.into_iter().next()),
    }
}

/// An AnnData dataframe group: its index and columns in `column-order`.
/// A dataframe's index and its named columns.
type Dataframe = (Vec<String>, Vec<(String, ObsColumn)>);

fn read_dataframe(store: &Store, node: &str) -> Result<Dataframe, SpatialDataError> {
    let attrs = store.group_attributes(node)?;
    let index_name = attrs.get("_index").and_then(Value::as_str).unwrap_or("_index");
    let index = store.strings(&format!("{node}/{index_name}"))?;
    let mut columns = Vec::new();
    for name in text_list(attrs.get("column-order")) {
        let column_node = format!("{node}/{name}");
        let column = read_column(store, &column_node)?;
        let rows = match &column {
            ObsColumn::Numbers(v) => v.len(),
            ObsColumn::Categories { codes, .. } => codes.len(),
            ObsColumn::Text(v) => v.len(),
        };
        if rows != index.len() {
            return Err(corrupt(
                store.path_of(&column_node),
                format!("{rows} rows, the index has {}", index.len()),
            ));
        }
        columns.push((name, column));
    }
    Ok((index, columns))
}

fn read_column(store: &Store, node: &str) -> Result<ObsColumn, SpatialDataError> {
    match store.values(node)? {
        Some(ArrayValues::Text(values)) => return Ok(ObsColumn::Text(values)),
        Some(ArrayValues::Numbers(values)) => return Ok(ObsColumn::Numbers(values)),
        None => {}
    }
    let attrs = store.group_attributes(node)?;
    match attrs.get("encoding-type").and_then(Value::as_str) {
        Some("categorical") => {
            let labels = store.strings(&format!("{node}/categories"))?;
            let codes = store
                .numbers(&format!("{node}/codes"))?
                .into_iter()
                .map(|c| (c >= 0.0 && (c as usize) < labels.len()).then_some(c as u32))
                .collect();
            Ok(ObsColumn::Categories { labels, codes })
        }
        Some("nullable-integer" | "nullable-boolean" | "nullable-float") => {
            let values = store.numbers(&format!("{node}/values"))?;
            let mask = store.numbers(&format!("{node}/mask"))?;
            Ok(ObsColumn::Numbers(
                values
                    .into_iter()
                    .zip(mask)
                    .map(|(v, missing)| if missing != 0.0 { f64::NAN } else { v })
                    .collect(),
            ))
        }
        Some("nullable-string-array") => {
            let values = store.strings(&format!("{node}/values"))?;
            let mask = store.numbers(&format!("{node}/mask"))?;
            Ok(ObsColumn::Text(
                values
                    .into_iter()
                    .zip(mask)
                    .map(|(v, missing)| if missing != 0.0 { String::new() } else { v })
                    .collect(),
            ))
        }
        other => Err(SpatialDataError::Unsupported {
            path: store.path_of(node),
            reason: format!("an obs column encoded as {}", other.unwrap_or("an unnamed group")),
        }),
    }
}

/// X as rows: CSR as is, CSC transposed, dense compressed.
fn read_matrix(store: &Store, node: &str, rows: usize, columns: usize) -> Result<SparseRows, SpatialDataError> {
    let bad = |reason: String| corrupt(store.path_of(node), reason);
    if store.is_array(node) {
        let shape = store.shape(node)?;
        if shape != [rows as u64, columns as u64] {
            return Err(bad(format!("X is {shape:?}, the table is {rows} x {columns}")));
        }
        let dense = store.numbers(node)?;
        let mut out = SparseRows {
            offsets: Vec::with_capacity(rows + 1),
            ..Default::default()
        };
        out.offsets.push(0);
        for row in dense.chunks(columns.max(1)).take(rows) {
            for (c, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    out.columns.push(c as u32);
                    out.values.push(v as f32);
                }
            }
            out.offsets.push(out.columns.len() as u64);
        }
        return Ok(out);
    }
    let attrs = store.group_attributes(node)?;
    let encoding = attrs.get("encoding-type").and_then(Value::as_str).unwrap_or("");
    let data = store.numbers(&format!("{node}/data"))?;
    let indices = store.numbers(&format!("{node}/indices"))?;
    let indptr = store.numbers(&format!("{node}/indptr"))?;
    if data.len() != indices.len() {
        return Err(bad(format!("{} values but {} indices", data.len(), indices.len())));
    }
    let (major, minor) = match encoding {
        "csr_matrix" => (rows, columns),
        "csc_matrix" => (columns, rows),
        other => return Err(bad(format!("X encoded as {other:?} (CSR, CSC or dense are read)"))),
    };
    if indptr.len() != major + 1
        || indptr.windows(2).any(|w| w[1] < w[0])
        || indptr.last().copied() != Some(data.len() as f64)
    {
        return Err(bad(format!(
            "indptr does not describe {major} {} over {} values",
            if encoding == "csr_matrix" { "rows" } else { "columns" },
            data.len()
        )));
    }
    if indices.iter().any(|&i| i < 0.0 || i as usize >= minor) {
        return Err(bad(format!("an index outside 0..{minor}")));
    }
    if encoding == "csr_matrix" {
        return Ok(SparseRows {
            offsets: indptr.iter().map(|&v| v as u64).collect(),
            columns: indices.iter().map(|&v| v as u32).collect(),
            values: data.iter().map(|&v| v as f32).collect(),
        });
    }
    // CSC: count per row, then scatter.
    let mut counts = vec![0u64; rows + 1];
    for &r in &indices {
        counts[r as usize + 1] += 1;
    }
    for r in 0..rows {
        counts[r + 1] += counts[r];
    }
    let mut next = counts.clone();
    let mut out_columns = vec![0u32; data.len()];
    let mut out_values = vec![0f32; data.len()];
    for c in 0..columns {
        for k in indptr[c] as usize..indptr[c + 1] as usize {
            let r = indices[k] as usize;
            let at = next[r] as usize;
            out_columns[at] = c as u32;
            out_values[at] = data[k] as f32;
            next[r] += 1;
        }
    }
    Ok(SparseRows {
        offsets: counts,
        columns: out_columns,
        values: out_values,
    })
}
