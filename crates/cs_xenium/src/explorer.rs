//! Xenium Explorer's cell groups, both ways: the `cell_id,group` CSV that Explorer imports and
//! exports, and the `cell_groups` of `analysis.zarr.zip` (where a run's clusterings live, and
//! where Explorer looks for groupings when a bundle opens).
//!
//! `analysis.zarr.zip` is zarr v2 in a zip: group `cell_groups` with attributes
//! `grouping_names`, `group_names` (per grouping), `number_groupings`, `major_version` 1,
//! `minor_version` 0; per grouping `i`, uint32 arrays `cell_groups/i/indices` (cell rows in
//! cells.parquet order, group after group) and `cell_groups/i/indptr` (each group's first
//! position in `indices`, one entry per group, no closing total). It is read with zarrs through
//! zarrs_zip (any compressor, stored or deflated entries). It is written here by hand
//! ([`ZarrZipWriter`], also used for the generator's `cells.zarr.zip`), because zarrs writes
//! zarr v3 into folders and Explorer reads zarr v2 from a zip: a few JSON documents and
//! uncompressed little-endian chunks, stored (not deflated) in the zip, as zarr-python's
//! `ZipStore` writes them.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use zarrs::array::Array;
use zarrs::filesystem::FilesystemStore;
use zarrs::group::Group;
use zarrs::storage::StoreKey;
use zarrs_zip::ZipStorageAdapter;

use crate::cells::{Categorical, CellTable, MISSING_CODE};
use crate::error::{XeniumError, io_error};

/// The file name Xenium writes and Explorer reads.
pub const ANALYSIS_ZARR_ZIP: &str = "analysis.zarr.zip";

fn corrupt(path: &Path, reason: impl Into<String>) -> XeniumError {
    XeniumError::Corrupt {
        file: path.to_path_buf(),
        format: "Xenium Explorer analysis.zarr.zip",
        reason: reason.into(),
    }
}

/// Reads Explorer's `cell_id,group` CSV (a `color` column, if any, is ignored) as a categorical
/// column; returns it with the number of ids that are not cells of the table.
pub fn read_group_csv(path: &Path, cells: &CellTable) -> Result<(Categorical, usize), XeniumError> {
    crate::clusters::read_labels(path, cells, "cell_id", "group")
}

/// Reads a text column `label_column` of any per-cell table (parquet or CSV keyed by
/// `cell_id`, such as `predict`'s output) as a categorical column; returns it with the number of
/// ids that are not cells of the table.
pub fn read_cell_labels(
    path: &Path,
    cells: &CellTable,
    label_column: &str,
) -> Result<(Categorical, usize), XeniumError> {
    crate::clusters::read_labels(path, cells, "cell_id", label_column)
}

/// Writes `column` as Explorer's `cell_id,group` CSV: one row per cell that has a group, in
/// table order. Returns the rows written.
pub fn write_group_csv(path: &Path, cells: &CellTable, column: &Categorical) -> Result<usize, XeniumError> {
    let file = std::fs::File::create(path).map_err(|e| io_error(path, e))?;
    let mut writer = csv::Writer::from_writer(std::io::BufWriter::new(file));
    let failed = |e: csv::Error| io_error(path, e);
    writer.write_record(["cell_id", "group"]).map_err(failed)?;
    let mut rows = 0;
    for (id, &code) in cells.ids.iter().zip(&column.codes) {
        if let Some(group) = column.categories.get(code as usize) {
            writer.write_record([id.as_str(), group.as_str()]).map_err(failed)?;
            rows += 1;
        }
    }
    writer.flush().map_err(|e| io_error(path, e))?;
    Ok(rows)
}

/// Reads every grouping of an `analysis.zarr.zip` as categorical columns over `cells` (by row).
pub fn read_analysis_zarr_zip(path: &Path, cells: &CellTable) -> Result<Vec<(String, Categorical)>, XeniumError> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io_error(path, "not a file path"));
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let folder = FilesystemStore::new(dir).map_err(|e| io_error(dir, e))?;
    let key = StoreKey::new(name.to_string_lossy()).map_err(|e| io_error(path, e))?;
    let zip = ZipStorageAdapter::new(Arc::new(folder), key).map_err(|e| corrupt(path, format!("not a zip: {e}")))?;
    let store = Arc::new(zip);
    let group = Group::open(store.clone(), "/cell_groups").map_err(|e| {
        corrupt(
            path,
            format!("no cell_groups group ({e}): this is not the analysis.zarr.zip of a Xenium run"),
        )
    })?;
    let attrs = group.attributes();
    let names: Vec<String> = attrs
        .get("grouping_names")
        .and_then(Value::as_array)
        .ok_or_else(|| corrupt(path, "cell_groups has no grouping_names attribute"))?
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect();
    let group_names = attrs
        .get("group_names")
        .and_then(Value::as_array)
        .ok_or_else(|| corrupt(path, "cell_groups has no group_names attribute"))?;
    let mut out = Vec::with_capacity(names.len());
    for (i, name) in names.into_iter().enumerate() {
        let labels: Vec<String> = group_names
            .get(i)
            .and_then(Value::as_array)
            .ok_or_else(|| corrupt(path, format!("group_names has no entry for grouping {i} ({name})")))?
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect();
        let read = |array: &str| -> Result<Vec<u64>, XeniumError> {
            let node = format!("/cell_groups/{i}/{array}");
            let array = Array::open(store.clone(), &node).map_err(|e| corrupt(path, format!("{node}: {e}")))?;
            let all: Vec<std::ops::Range<u64>> = array.shape().iter().map(|&n| 0..n).collect();
            let values = array
                .retrieve_array_subset::<Vec<u32>>(&all)
                .or_else(|_| {
                    array
                        .retrieve_array_subset::<Vec<i64>>(&all)
                        .map(|v| v.into_iter().map(|x| x.max(0) as u32).collect())
                })
                .map_err(|e| corrupt(path, format!("{node}: {e}")))?;
            Ok(values.into_iter().map(u64::from).collect())
        };
        let (indices, indptr) = (read("indices")?, read("indptr")?);
        let mut codes = vec![MISSING_CODE; cells.len()];
        for (group, &start) in indptr.iter().enumerate() {
            let end = indptr.get(group + 1).copied().unwrap_or(indices.len() as u64);
            if start > end || end > indices.len() as u64 || group >= labels.len() {
                return Err(corrupt(
                    path,
                    format!(
                        "grouping {name}: group {group} spans {start}..{end} of {} cells ({} group names)",
                        indices.len(),
                        labels.len()
                    ),
                ));
            }
            for &cell in &indices[start as usize..end as usize] {
                match codes.get_mut(cell as usize) {
                    Some(code) => *code = group as u32,
                    None => {
                        return Err(corrupt(
                            path,
                            format!(
                                "grouping {name}: cell row {cell} is past the {} cells of the bundle",
                                cells.len()
                            ),
                        ));
                    }
                }
            }
        }
        out.push((name, Categorical::from_codes(labels, codes)));
    }
    Ok(out)
}

/// Writes `groupings` (name, column over the cell table's rows) as an `analysis.zarr.zip` that
/// Xenium Explorer opens. Cells without a group are left out of their grouping.
pub fn write_analysis_zarr_zip(path: &Path, groupings: &[(&str, &Categorical)]) -> Result<(), XeniumError> {
    let mut zip = ZarrZipWriter::create(path)?;
    zip.group("", None)?;
    let attrs = json!({
        "major_version": 1,
        "minor_version": 0,
        "number_groupings": groupings.len(),
        "grouping_names": groupings.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        "group_names": groupings.iter().map(|(_, c)| c.categories.clone()).collect::<Vec<_>>(),
    });
    zip.group("cell_groups", Some(&attrs))?;
    for (i, (_, column)) in groupings.iter().enumerate() {
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); column.categories.len()];
        for (cell, &code) in column.codes.iter().enumerate() {
            if let Some(m) = members.get_mut(code as usize) {
                m.push(cell as u32);
            }
        }
        let mut indptr = Vec::with_capacity(members.len());
        let mut indices = Vec::with_capacity(column.codes.len());
        for m in &members {
            indptr.push(indices.len() as u32);
            indices.extend_from_slice(m);
        }
        zip.group(&format!("cell_groups/{i}"), None)?;
        // One chunk holding each whole array, as Xenium writes them.
        for (name, values) in [("indices", &indices), ("indptr", &indptr)] {
            let node = format!("cell_groups/{i}/{name}");
            zip.array(&node, &[values.len()], values.len().max(1), values, None)?;
        }
    }
    zip.finish()
}

/// A sample type zarr v2 stores little-endian.
pub trait ZarrElement: Copy + Default {
    /// The v2 `dtype` string (`<u4`, `<f8`, ...).
    const DTYPE: &'static str;
    fn put_le(self, out: &mut Vec<u8>);
}

macro_rules! zarr_element {
    ($t:ty, $dtype:literal) => {
        impl ZarrElement for $t {
            const DTYPE: &'static str = $dtype;
            fn put_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    };
}
zarr_element!(u32, "<u4");
zarr_element!(i32, "<i4");
zarr_element!(f32, "<f4");
zarr_element!(f64, "<f8");

/// Writes zarr v2 groups and arrays into a zip, entries stored (the layout of Xenium's
/// `*.zarr.zip` files). Arrays are C order, uncompressed, chunked along their first axis.
pub struct ZarrZipWriter {
    path: std::path::PathBuf,
    zip: zip::ZipWriter<std::io::BufWriter<std::fs::File>>,
}

impl ZarrZipWriter {
    pub fn create(path: &Path) -> Result<Self, XeniumError> {
        let file = std::fs::File::create(path).map_err(|e| io_error(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            zip: zip::ZipWriter::new(std::io::BufWriter::new(file)),
        })
    }

    fn put(&mut self, name: &str, bytes: &[u8]) -> Result<(), XeniumError> {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(bytes.len() >= u32::MAX as usize);
        self.zip
            .start_file(name, options)
            .map_err(|e| io_error(&self.path, e))?;
        self.zip.write_all(bytes).map_err(|e| io_error(&self.path, e))
    }

    fn key(node: &str, file: &str) -> String {
        let node = node.trim_matches('/');
        if node.is_empty() {
            file.to_owned()
        } else {
            format!("{node}/{file}")
        }
    }

    /// A group at `node` ("" for the root), with attributes if given.
    pub fn group(&mut self, node: &str, attrs: Option<&Value>) -> Result<(), XeniumError> {
        self.put(
            &Self::key(node, ".zgroup"),
            json!({"zarr_format": 2}).to_string().as_bytes(),
        )?;
        if let Some(attrs) = attrs {
            self.put(&Self::key(node, ".zattrs"), attrs.to_string().as_bytes())?;
        }
        Ok(())
    }

    /// An array of `shape` (C order) at `node`, in chunks of `chunk_rows` along the first axis
    /// (the last one padded to full size, as zarr v2 stores edge chunks).
    pub fn array<T: ZarrElement>(
        &mut self,
        node: &str,
        shape: &[usize],
        chunk_rows: usize,
        values: &[T],
        attrs: Option<&Value>,
    ) -> Result<(), XeniumError> {
        let row_len: usize = shape.iter().skip(1).product();
        let rows = shape.first().copied().unwrap_or(0);
        if values.len() != rows * row_len || chunk_rows == 0 {
            return Err(io_error(
                &self.path,
                format!(
                    "{node}: {} values for shape {shape:?} (chunk rows {chunk_rows})",
                    values.len()
                ),
            ));
        }
        let mut chunks: Vec<usize> = vec![chunk_rows];
        chunks.extend(shape.iter().skip(1));
        let meta = json!({
            "zarr_format": 2,
            "shape": shape,
            "chunks": chunks,
            "dtype": T::DTYPE,
            "compressor": null,
            "fill_value": 0,
            "filters": null,
            "order": "C",
        });
        self.put(&Self::key(node, ".zarray"), meta.to_string().as_bytes())?;
        if let Some(attrs) = attrs {
            self.put(&Self::key(node, ".zattrs"), attrs.to_string().as_bytes())?;
        }
        let zeros_after_first = vec!["0"; shape.len().saturating_sub(1)];
        let mut bytes = Vec::with_capacity(chunk_rows * row_len * std::mem::size_of::<T>());
        for (k, chunk) in values.chunks((chunk_rows * row_len).max(1)).enumerate() {
            bytes.clear();
            for &v in chunk {
                v.put_le(&mut bytes);
            }
            for _ in chunk.len()..chunk_rows * row_len {
                T::default().put_le(&mut bytes);
            }
            let mut index = vec![k.to_string()];
            index.extend(zeros_after_first.iter().map(|s| (*s).to_owned()));
            self.put(&Self::key(node, &index.join(".")), &bytes)?;
        }
        Ok(())
    }

    pub fn finish(self) -> Result<(), XeniumError> {
        let mut inner = self.zip.finish().map_err(|e| io_error(&self.path, e))?;
        inner.flush().map_err(|e| io_error(&self.path, e))
    }
}
