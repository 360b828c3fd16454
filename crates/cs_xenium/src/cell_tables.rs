//! Per-cell tables keyed by `cell_id` that the models write and read: predictions, clusters and
//! embeddings as parquet (written atomically), and imported per-cell embeddings (parquet or CSV,
//! one row per cell, a `cell_id` column and numeric feature columns; or a NumPy `.npy` matrix
//! with its cell ids, one per line, in `NAME.cell_ids.txt` beside it).

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::columns::{Values, Wanted, column_names, read_batches};
use crate::error::{XeniumError, io_error};

/// A column of a per-cell table (or of any table [`write_table_parquet`] writes).
#[derive(Debug, Clone, PartialEq)]
pub enum CellColumn {
    Text(Vec<String>),
    Number(Vec<f32>),
    /// Doubles, for tables whose values need them (p-values, z-scores); NaN stays NaN.
    Double(Vec<f64>),
}

impl CellColumn {
    pub fn len(&self) -> usize {
        match self {
            CellColumn::Text(v) => v.len(),
            CellColumn::Number(v) => v.len(),
            CellColumn::Double(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes `cell_id` plus the columns as parquet (zstd), through a temporary file and a rename.
pub fn write_cell_parquet(
    path: &Path,
    cell_ids: &[String],
    columns: &[(String, CellColumn)],
) -> Result<(), XeniumError> {
    write_parquet(path, Some(cell_ids), columns)
}

/// Writes the columns (all of one length) as parquet (zstd), through a temporary file and a
/// rename.
pub fn write_table_parquet(path: &Path, columns: &[(String, CellColumn)]) -> Result<(), XeniumError> {
    write_parquet(path, None, columns)
}

/// The columns, after a `cell_id` column when `cell_ids` is given, as parquet.
fn write_parquet(
    path: &Path,
    cell_ids: Option<&[String]>,
    columns: &[(String, CellColumn)],
) -> Result<(), XeniumError> {
    let encode = |e: &dyn std::fmt::Display| XeniumError::Io {
        file: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut fields = Vec::with_capacity(columns.len() + 1);
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len() + 1);
    if let Some(ids) = cell_ids {
        fields.push(Field::new("cell_id", DataType::Utf8, false));
        arrays.push(Arc::new(StringArray::from_iter_values(ids)));
    }
    let rows = cell_ids.map_or_else(|| columns.first().map_or(0, |(_, c)| c.len()), <[String]>::len);
    for (name, column) in columns {
        let (field, array): (Field, ArrayRef) = match column {
            CellColumn::Text(values) => (
                Field::new(name, DataType::Utf8, false),
                Arc::new(StringArray::from_iter_values(values)),
            ),
            CellColumn::Number(values) => (
                Field::new(name, DataType::Float32, false),
                Arc::new(Float32Array::from(values.clone())),
            ),
            CellColumn::Double(values) => (
                Field::new(name, DataType::Float64, false),
                Arc::new(Float64Array::from(values.clone())),
            ),
        };
        if column.len() != rows {
            let against = if cell_ids.is_some() {
                "cells"
            } else {
                "rows in the first column"
            };
            return Err(encode(&format!(
                "column {name:?} has {} rows for {rows} {against}",
                column.len()
            )));
        }
        fields.push(field);
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| encode(&e))?;
    let file = cs_files::AtomicFile::create(path).map_err(|e| io_error(path, e))?;
    let level = ZstdLevel::try_new(3).map_err(|e| encode(&e))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .build();
    let mut writer = ArrowWriter::try_new(file.file(), schema, Some(properties)).map_err(|e| encode(&e))?;
    writer.write(&batch).map_err(|e| encode(&e))?;
    writer.close().map_err(|e| encode(&e))?;
    file.commit().map_err(|e| io_error(path, e))
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
/// A `.npy` matrix (cells x features) is read with the ids in `NAME.cell_ids.txt`.
pub fn read_cell_features(path: &Path) -> Result<CellFeatureTable, XeniumError> {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")) {
        return read_npy_features(path);
    }
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

/// Reads named columns of a table (parquet or CSV) whole: `text` columns as strings (numbers
/// written in decimal), the others as doubles (NaN where blank). A missing column is an error
/// naming the file and the columns it has.
pub fn read_table_columns(path: &Path, text: &[&str], numbers: &[&str]) -> Result<Vec<CellColumn>, XeniumError> {
    let mut wanted: Vec<Wanted<'_>> = text.iter().map(|n| Wanted::text(n)).collect();
    wanted.extend(numbers.iter().map(|n| Wanted::number(n)));
    let mut texts: Vec<Vec<String>> = vec![Vec::new(); text.len()];
    let mut doubles: Vec<Vec<f64>> = vec![Vec::new(); numbers.len()];
    read_batches(path, &wanted, |batch| {
        let mut scratch = String::new();
        for (c, out) in texts.iter_mut().enumerate() {
            let values = batch.column(c);
            for row in 0..batch.rows {
                out.push(
                    values
                        .map(|v| String::from_utf8_lossy(v.id_at(row, &mut scratch)).into_owned())
                        .unwrap_or_default(),
                );
            }
        }
        for (c, out) in doubles.iter_mut().enumerate() {
            let values = batch.column(text.len() + c).map(Values::numbers);
            out.extend((0..batch.rows).map(|row| values.and_then(|v| v.get(row)).copied().unwrap_or(f64::NAN)));
        }
        Ok(())
    })?;
    Ok(texts
        .into_iter()
        .map(CellColumn::Text)
        .chain(doubles.into_iter().map(CellColumn::Double))
        .collect())
}

/// The file holding the cell ids of `NAME.npy`: `NAME.cell_ids.txt`.
pub fn npy_cell_ids_path(npy: &Path) -> std::path::PathBuf {
    npy.with_extension("cell_ids.txt")
}

fn read_npy_features(path: &Path) -> Result<CellFeatureTable, XeniumError> {
    let (rows, cols, values) = read_npy_matrix(path)?;
    let ids_path = npy_cell_ids_path(path);
    let text = std::fs::read_to_string(&ids_path).map_err(|e| XeniumError::Io {
        file: ids_path.clone(),
        reason: format!(
            "{e}: a .npy matrix has no cell ids; write them one per line, in the matrix's row order, to this file"
        ),
    })?;
    let mut cell_ids: Vec<String> = text
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if cell_ids.first().is_some_and(|h| h == "cell_id" || h == "barcode") && cell_ids.len() == rows + 1 {
        cell_ids.remove(0);
    }
    if cell_ids.len() != rows {
        return Err(XeniumError::Corrupt {
            file: ids_path,
            format: "cell id list",
            reason: format!("{} ids for the {rows} rows of {}", cell_ids.len(), path.display()),
        });
    }
    if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
        return Err(XeniumError::BadValue {
            file: path.to_path_buf(),
            column: format!("emb_{}", bad % cols),
            row: bad / cols + 1,
            reason: "not a finite number".into(),
        });
    }
    Ok(CellFeatureTable {
        cell_ids,
        columns: (0..cols).map(|c| format!("emb_{c}")).collect(),
        values,
    })
}

/// Reads a 2-D NumPy array (`.npy`, format 1-3; little-endian float32 or float64, C or Fortran
/// order) as (rows, columns, row-major f32 values).
pub fn read_npy_matrix(path: &Path) -> Result<(usize, usize, Vec<f32>), XeniumError> {
    let corrupt = |reason: String| XeniumError::Corrupt {
        file: path.to_path_buf(),
        format: "NumPy .npy",
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(corrupt("it does not start with the .npy magic bytes".into()));
    }
    let (header_len, header_start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        2 | 3 => return Err(corrupt("the file ends inside its header (truncated?)".into())),
        v => return Err(corrupt(format!("unsupported format version {v}"))),
    };
    let data_start = header_start + header_len;
    let header = bytes
        .get(header_start..data_start)
        .map(String::from_utf8_lossy)
        .ok_or_else(|| corrupt("the header runs past the end of the file".into()))?;
    let field = |key: &str| -> Option<String> {
        let at = header.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
        let end = if rest.starts_with('(') {
            rest.find(')')? + 1
        } else {
            rest.find([',', '}'])?
        };
        Some(rest[..end].trim().trim_matches('\'').to_string())
    };
    let descr = field("descr").ok_or_else(|| corrupt("the header has no 'descr'".into()))?;
    let fortran = field("fortran_order").is_some_and(|v| v == "True");
    let shape_text = field("shape").ok_or_else(|| corrupt("the header has no 'shape'".into()))?;
    let shape: Vec<usize> = shape_text
        .trim_matches(['(', ')'])
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| corrupt(format!("the shape {shape_text} is not a list of sizes")))?;
    let [rows, cols] = shape[..] else {
        return Err(corrupt(format!(
            "the array has shape {shape_text}; a cells x features matrix (2-D) is needed"
        )));
    };
    let width = match descr.as_str() {
        "<f4" => 4,
        "<f8" => 8,
        other => {
            return Err(corrupt(format!(
                "dtype {other} is not supported: save float32 or float64 (little-endian)"
            )));
        }
    };
    if cols == 0 {
        return Err(corrupt(format!("the array has shape {shape_text}: no feature columns")));
    }
    let data = &bytes[data_start..];
    let Some(needed) = rows.checked_mul(cols).and_then(|n| n.checked_mul(width)) else {
        return Err(corrupt(format!("the shape {shape_text} is too large")));
    };
    if data.len() != needed {
        return Err(corrupt(format!(
            "{} data bytes for a {rows} x {cols} {descr} array, which needs {needed}{}",
            data.len(),
            if data.len() < needed { " (truncated?)" } else { "" }
        )));
    }
    let stored: Vec<f32> = data[..needed]
        .chunks_exact(width)
        .map(|b| match b {
            [a, b, c, d] => f32::from_le_bytes([*a, *b, *c, *d]),
            _ => {
                let mut eight = [0u8; 8];
                eight.copy_from_slice(b);
                f64::from_le_bytes(eight) as f32
            }
        })
        .collect();
    let values = if fortran {
        let mut row_major = vec![0.0; rows * cols];
        for c in 0..cols {
            for r in 0..rows {
                row_major[r * cols + c] = stored[c * rows + r];
            }
        }
        row_major
    } else {
        stored
    };
    Ok((rows, cols, values))
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

    /// A .npy file as NumPy writes it (format 1.0, header padded to 64 bytes).
    fn npy_bytes(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn npy_matrices_read_with_their_cell_ids() {
        let dir = std::env::temp_dir().join(format!("cs_cell_tables_npy_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("scgpt.npy");
        let f32s: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        std::fs::write(&path, npy_bytes("<f4", false, "(2, 3)", &f32s)).unwrap();
        let message = read_cell_features(&path).unwrap_err().to_string();
        assert!(
            message.contains("scgpt.cell_ids.txt") && message.contains("one per line"),
            "{message}"
        );
        std::fs::write(npy_cell_ids_path(&path), "cell_id\naaa-1\nbbb-1\n").unwrap();
        let table = read_cell_features(&path).unwrap();
        assert_eq!(table.cell_ids, ["aaa-1", "bbb-1"]);
        assert_eq!(table.columns, ["emb_0", "emb_1", "emb_2"]);
        assert_eq!(table.values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        // float64 in Fortran order: columns stored one after another.
        let f64s: Vec<u8> = [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        std::fs::write(&path, npy_bytes("<f8", true, "(2, 3)", &f64s)).unwrap();
        assert_eq!(
            read_cell_features(&path).unwrap().values,
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
        // Truncated, wrong dtype, 1-D, not npy, ids of another length.
        std::fs::write(&path, npy_bytes("<f4", false, "(2, 3)", &f32s[..20])).unwrap();
        assert!(read_cell_features(&path).unwrap_err().to_string().contains("truncated"));
        std::fs::write(&path, npy_bytes("<i8", false, "(2, 3)", &f64s)).unwrap();
        assert!(read_cell_features(&path).unwrap_err().to_string().contains("float32"));
        std::fs::write(&path, npy_bytes("<f4", false, "(6,)", &f32s)).unwrap();
        assert!(read_cell_features(&path).unwrap_err().to_string().contains("2-D"));
        std::fs::write(&path, npy_bytes("<f4", false, "(2, 4611686018427387904)", &f32s)).unwrap();
        assert!(read_cell_features(&path).unwrap_err().to_string().contains("too large"));
        std::fs::write(&path, b"hello").unwrap();
        assert!(read_cell_features(&path).unwrap_err().to_string().contains("magic"));
        std::fs::write(&path, npy_bytes("<f4", false, "(2, 3)", &f32s)).unwrap();
        std::fs::write(npy_cell_ids_path(&path), "a\nb\nc\n").unwrap();
        let message = read_cell_features(&path).unwrap_err().to_string();
        assert!(message.contains("3 ids for the 2 rows"), "{message}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
