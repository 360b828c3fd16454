//! Per-cell tables keyed by `cell_id` that the models write and read: predictions, clusters and
//! embeddings as parquet (written atomically), and imported per-cell embeddings (parquet or CSV,
//! one row per cell, a `cell_id` column and numeric feature columns).

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::columns::{Values, Wanted, column_names, read_batches};
use crate::error::{XeniumError, io_error};

/// A column of a per-cell table.
#[derive(Debug, Clone, PartialEq)]
pub enum CellColumn {
    Text(Vec<String>),
    Number(Vec<f32>),
}

/// Writes `cell_id` plus the columns as parquet (zstd), through a temporary file and a rename.
pub fn write_cell_parquet(
    path: &Path,
    cell_ids: &[String],
    columns: &[(String, CellColumn)],
) -> Result<(), XeniumError> {
    let encode = |e: &dyn std::fmt::Display| XeniumError::Io {
        file: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut fields = vec![Field::new("cell_id", DataType::Utf8, false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(cell_ids))];
    for (name, column) in columns {
        let (len, field, array): (usize, Field, ArrayRef) = match column {
            CellColumn::Text(values) => (
                values.len(),
                Field::new(name, DataType::Utf8, false),
                Arc::new(StringArray::from_iter_values(values)),
            ),
            CellColumn::Number(values) => (
                values.len(),
                Field::new(name, DataType::Float32, false),
                Arc::new(Float32Array::from(values.clone())),
            ),
        };
        if len != cell_ids.len() {
            return Err(encode(&format!(
                "column {name:?} has {len} rows for {} cells",
                cell_ids.len()
            )));
        }
        fields.push(field);
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| encode(&e))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
    }
    let temp = path.with_extension("parquet.tmp");
    let file = std::fs::File::create(&temp).map_err(|e| io_error(&temp, e))?;
    let level = ZstdLevel::try_new(3).map_err(|e| encode(&e))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .build();
    let mut writer = ArrowWriter::try_new(file, schema, Some(properties)).map_err(|e| encode(&e))?;
    writer.write(&batch).map_err(|e| encode(&e))?;
    writer.close().map_err(|e| encode(&e))?;
    std::fs::rename(&temp, path).map_err(|e| io_error(path, e))
}

/// Per-cell numeric features read from a table: ids, column names, row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct CellFeatureTable {
    pub cell_ids: Vec<String>,
    pub columns: Vec<String>,
    pub values: Vec<f32>,
}

/// Reads a per-cell embedding table (parquet or CSV): the `cell_id` column (or `barcode`) and
/// every other column as a number. A non-numeric value is an error naming row and column.
pub fn read_cell_features(path: &Path) -> Result<CellFeatureTable, XeniumError> {
    let names = column_names(path)?;
    let id_name = names
        .iter()
        .find(|n| n.as_str() == "cell_id" || n.as_str() == "barcode")
        .cloned()
        .ok_or_else(|| XeniumError::MissingColumn {
            file: path.to_path_buf(),
            column: "cell_id".into(),
            found: names.join(", "),
        })?;
    let feature_names: Vec<String> = names
        .iter()
        .filter(|n| **n != id_name && !n.starts_with("__index_level"))
        .cloned()
        .collect();
    if feature_names.is_empty() {
        return Err(XeniumError::Corrupt {
            file: path.to_path_buf(),
            format: "per-cell embedding table",
            reason: "no feature columns besides cell_id".into(),
        });
    }
    let mut wanted = vec![Wanted::text(&id_name)];
    wanted.extend(feature_names.iter().map(|n| Wanted::number(n)));
    let mut cell_ids = Vec::new();
    let mut values = Vec::new();
    let width = feature_names.len();
    read_batches(path, &wanted, |batch| {
        let mut scratch = String::new();
        let ids = batch.column(0);
        let columns: Vec<Option<&[f64]>> = (1..=width).map(|c| batch.column(c).map(Values::numbers)).collect();
        for row in 0..batch.rows {
            let id = ids
                .map(|v| String::from_utf8_lossy(v.id_at(row, &mut scratch)).into_owned())
                .unwrap_or_default();
            cell_ids.push(id);
            for (c, column) in columns.iter().enumerate() {
                let v = column.and_then(|col| col.get(row)).copied().unwrap_or(f64::NAN);
                if !v.is_finite() {
                    return Err(XeniumError::BadValue {
                        file: path.to_path_buf(),
                        column: feature_names[c].clone(),
                        row: batch.first_row + row + 1,
                        reason: "not a finite number".into(),
                    });
                }
                values.push(v as f32);
            }
        }
        Ok(())
    })?;
    Ok(CellFeatureTable {
        cell_ids,
        columns: feature_names,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parquet_round_trip_and_bad_values() {
        let dir = std::env::temp_dir().join(format!("cs_cell_tables_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("emb.parquet");
        let ids = vec!["a-1".to_string(), "b-1".to_string()];
        write_cell_parquet(
            &path,
            &ids,
            &[
                ("e0".into(), CellColumn::Number(vec![1.0, 2.0])),
                ("e1".into(), CellColumn::Number(vec![3.0, 4.5])),
            ],
        )
        .unwrap();
        let table = read_cell_features(&path).unwrap();
        assert_eq!(table.cell_ids, ids);
        assert_eq!(table.columns, vec!["e0", "e1"]);
        assert_eq!(table.values, vec![1.0, 3.0, 2.0, 4.5]);
        let csv = dir.join("emb.csv");
        std::fs::write(&csv, "cell_id,e0\na-1,1.5\nb-1,oops\n").unwrap();
        let err = read_cell_features(&csv).unwrap_err().to_string();
        assert!(err.contains("emb.csv") && err.contains("e0"), "{err}");
        assert!(write_cell_parquet(&path, &ids, &[("x".into(), CellColumn::Number(vec![1.0]))]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
