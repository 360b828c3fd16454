//! The cell x feature count matrix (10x HDF5 `cell_feature_matrix.h5` or the MEX folder), kept
//! sparse and reordered to the cell table.

use rustc_hash::FxHashMap as HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use hdf5_reader::Hdf5File;

use crate::h5;

use crate::cells::CellTable;
use crate::error::{XeniumError, io_error};

pub const GENE_EXPRESSION: &str = "Gene Expression";
/// Protein features of XOA 4 (Xenium Protein); values are divided by `protein_scaling_factor`.
pub const PROTEIN_EXPRESSION: &str = "Protein Expression";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feature {
    pub id: String,
    pub name: String,
    /// `Gene Expression`, `Negative Control Probe`, `Negative Control Codeword`, ...
    pub feature_type: String,
}

/// Counts per cell (compressed sparse rows by cell): cell `c` has features
/// `feature_index[row_offsets[c]..row_offsets[c + 1]]` with `counts[..]` at the same positions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseCounts {
    pub features: Vec<Feature>,
    pub row_offsets: Vec<u64>,
    pub feature_index: Vec<u32>,
    pub counts: Vec<f32>,
}

impl SparseCounts {
    pub fn cell(&self, cell: usize) -> (&[u32], &[f32]) {
        let a = self.row_offsets[cell] as usize;
        let b = self.row_offsets[cell + 1] as usize;
        (&self.feature_index[a..b], &self.counts[a..b])
    }

    /// Indices of features of one type (gene expression by default in the app).
    pub fn features_of_type(&self, feature_type: &str) -> Vec<u32> {
        (0..self.features.len() as u32)
            .filter(|&i| self.features[i as usize].feature_type == feature_type)
            .collect()
    }

    pub fn feature_by_name(&self, name: &str) -> Option<u32> {
        self.features.iter().position(|f| f.name == name).map(|i| i as u32)
    }

    /// The protein features (XOA 4, Xenium Protein) with the names models use for them: the
    /// feature's own name, or `NAME (protein)` where a gene of the panel has the same name.
    pub fn protein_target_names(&self) -> Vec<(u32, String)> {
        let genes: std::collections::HashSet<&str> = self
            .features
            .iter()
            .filter(|f| f.feature_type == GENE_EXPRESSION)
            .map(|f| f.name.as_str())
            .collect();
        self.features_of_type(PROTEIN_EXPRESSION)
            .into_iter()
            .map(|i| {
                let name = &self.features[i as usize].name;
                let shown = if genes.contains(name.as_str()) {
                    format!("{name} (protein)")
                } else {
                    name.clone()
                };
                (i, shown)
            })
            .collect()
    }

    /// Sum of counts over features of `feature_type` for every cell.
    pub fn totals(&self, feature_type: &str) -> Vec<f64> {
        let keep: Vec<bool> = self.features.iter().map(|f| f.feature_type == feature_type).collect();
        (0..self.row_offsets.len().saturating_sub(1))
            .map(|c| {
                let (idx, counts) = self.cell(c);
                idx.iter()
                    .zip(counts)
                    .filter(|(i, _)| keep[**i as usize])
                    .map(|(_, v)| f64::from(*v))
                    .sum()
            })
            .collect()
    }
}

/// Counts as stored: columns are barcodes (CSC).
struct ByBarcode {
    features: Vec<Feature>,
    barcodes: Vec<String>,
    col_offsets: Vec<u64>,
    feature_index: Vec<u32>,
    counts: Vec<f32>,
}

const FORMAT: &str = "10x count matrix";

fn corrupt(path: &Path, reason: impl Into<String>) -> XeniumError {
    XeniumError::Corrupt {
        file: path.to_path_buf(),
        format: FORMAT,
        reason: reason.into(),
    }
}

fn as_index(path: &Path, name: &str, values: Vec<f64>) -> Result<Vec<u64>, XeniumError> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            if v.is_finite() && v >= 0.0 && v.fract() == 0.0 {
                Ok(v as u64)
            } else {
                Err(corrupt(
                    path,
                    format!("{name}[{i}] = {v} is not a non-negative integer"),
                ))
            }
        })
        .collect()
}

fn read_h5(path: &Path) -> Result<ByBarcode, XeniumError> {
    let file = Hdf5File::open(path).map_err(|e| corrupt(path, e.to_string()))?;
    let shape = as_index(path, "matrix/shape", h5::numbers(path, &file, FORMAT, "matrix/shape")?)?;
    let [n_features, n_barcodes] = shape[..] else {
        return Err(corrupt(
            path,
            format!("matrix/shape has {} entries, expected 2", shape.len()),
        ));
    };
    let barcodes = h5::strings(path, &file, FORMAT, "matrix/barcodes")?;
    let ids = h5::strings(path, &file, FORMAT, "matrix/features/id")?;
    let names = h5::strings(path, &file, FORMAT, "matrix/features/name")?;
    let types = h5::strings(path, &file, FORMAT, "matrix/features/feature_type")?;
    let counts: Vec<f32> = h5::numbers(path, &file, FORMAT, "matrix/data")?
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let indices = as_index(
        path,
        "matrix/indices",
        h5::numbers(path, &file, FORMAT, "matrix/indices")?,
    )?;
    let indptr = as_index(
        path,
        "matrix/indptr",
        h5::numbers(path, &file, FORMAT, "matrix/indptr")?,
    )?;
    if barcodes.len() as u64 != n_barcodes || indptr.len() as u64 != n_barcodes + 1 {
        return Err(corrupt(
            path,
            format!(
                "shape says {n_barcodes} barcodes, found {} barcodes and {} indptr entries",
                barcodes.len(),
                indptr.len()
            ),
        ));
    }
    if ids.len() as u64 != n_features || names.len() != ids.len() || types.len() != ids.len() {
        return Err(corrupt(
            path,
            format!("shape says {n_features} features, found {} ids", ids.len()),
        ));
    }
    let features: Vec<Feature> = ids
        .into_iter()
        .zip(names)
        .zip(types)
        .map(|((id, name), feature_type)| Feature { id, name, feature_type })
        .collect();
    let mut counts = counts;
    if let Some(factor) = protein_scaling_factor(path, &file)? {
        // XOA 4 stores protein intensities as integers times the factor: divide it out.
        let is_protein: Vec<bool> = features.iter().map(|f| f.feature_type == PROTEIN_EXPRESSION).collect();
        for (value, &feature) in counts.iter_mut().zip(&indices) {
            if is_protein.get(feature as usize).copied().unwrap_or(false) {
                *value = (f64::from(*value) / factor) as f32;
            }
        }
    }
    finish(path, features, barcodes, indptr, indices, counts)
}

/// The root attribute `protein_scaling_factor` (XOA 4 with protein), when present.
fn protein_scaling_factor(path: &Path, file: &Hdf5File) -> Result<Option<f64>, XeniumError> {
    let Ok(attribute) = file
        .root_group()
        .and_then(|root| root.attribute("protein_scaling_factor"))
    else {
        return Ok(None);
    };
    let value = match attribute.datatype {
        hdf5_reader::Datatype::FloatingPoint { size: 8, .. } => attribute.read_scalar::<f64>().ok(),
        hdf5_reader::Datatype::FloatingPoint { size: 4, .. } => attribute.read_scalar::<f32>().ok().map(f64::from),
        hdf5_reader::Datatype::FixedPoint {
            size: 8, signed: true, ..
        } => attribute.read_scalar::<i64>().ok().map(|v| v as f64),
        hdf5_reader::Datatype::FixedPoint {
            size: 4, signed: true, ..
        } => attribute.read_scalar::<i32>().ok().map(f64::from),
        hdf5_reader::Datatype::FixedPoint {
            size: 4, signed: false, ..
        } => attribute.read_scalar::<u32>().ok().map(f64::from),
        _ => None,
    };
    match value {
        Some(v) if v.is_finite() && v > 0.0 => Ok(Some(v)),
        _ => Err(corrupt(
            path,
            format!(
                "protein_scaling_factor must be a positive number, found {:?}",
                attribute.datatype
            ),
        )),
    }
}

fn finish(
    path: &Path,
    features: Vec<Feature>,
    barcodes: Vec<String>,
    col_offsets: Vec<u64>,
    indices: Vec<u64>,
    counts: Vec<f32>,
) -> Result<ByBarcode, XeniumError> {
    let n_features = features.len() as u64;
    if indices.len() != counts.len() || col_offsets.last().copied() != Some(counts.len() as u64) {
        return Err(corrupt(path, "indices, data and indptr lengths disagree"));
    }
    if col_offsets.windows(2).any(|w| w[1] < w[0]) {
        return Err(corrupt(path, "indptr decreases"));
    }
    if let Some(bad) = indices.iter().find(|&&i| i >= n_features) {
        return Err(corrupt(
            path,
            format!("feature index {bad} is beyond the {n_features} features"),
        ));
    }
    Ok(ByBarcode {
        features,
        barcodes,
        col_offsets,
        feature_index: indices.into_iter().map(|i| i as u32).collect(),
        counts,
    })
}

fn open_maybe_gz(path: &Path) -> Result<Box<dyn BufRead>, XeniumError> {
    let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::new(reader)))
}

fn find_in(dir: &Path, stem: &str) -> Option<std::path::PathBuf> {
    [format!("{stem}.gz"), stem.to_owned()]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.exists())
}

/// Reads a MEX folder: matrix.mtx(.gz) (features x barcodes, 1-based), barcodes.tsv(.gz),
/// features.tsv(.gz) (id, name, type).
fn read_mex(dir: &Path) -> Result<ByBarcode, XeniumError> {
    let need = |stem: &str| {
        find_in(dir, stem).ok_or_else(|| XeniumError::MissingFile {
            dir: dir.to_path_buf(),
            what: format!("{stem}(.gz)"),
        })
    };
    let matrix_path = need("matrix.mtx")?;
    let barcodes_path = need("barcodes.tsv")?;
    let features_path = need("features.tsv")?;
    let barcodes: Vec<String> = open_maybe_gz(&barcodes_path)?
        .lines()
        .map(|l| l.map(|l| l.trim().to_owned()).map_err(|e| io_error(&barcodes_path, e)))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|l| !l.is_empty())
        .collect();
    let mut features = Vec::new();
    for (i, line) in open_maybe_gz(&features_path)?.lines().enumerate() {
        let line = line.map_err(|e| io_error(&features_path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() < 2 {
            return Err(XeniumError::BadValue {
                file: features_path.clone(),
                column: "name".to_owned(),
                row: i + 1,
                reason: "expected id<TAB>name[<TAB>type]".to_owned(),
            });
        }
        features.push(Feature {
            id: fields[0].to_owned(),
            name: fields[1].to_owned(),
            feature_type: fields.get(2).map_or(GENE_EXPRESSION, |t| t).to_owned(),
        });
    }
    // Tens of millions of entry lines: parse bytes in place, no String per line.
    let mut reader = open_maybe_gz(&matrix_path)?;
    let mut line = Vec::with_capacity(64);
    let mut header_seen = false;
    let mut entries: Vec<(u32, u32, f32)> = Vec::new();
    let mut declared: Option<(u64, u64, u64)> = None;
    let mut line_number = 0usize;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| io_error(&matrix_path, e))?;
        if read == 0 {
            break;
        }
        line_number += 1;
        if line.first() == Some(&b'%') {
            header_seen |= line.starts_with(b"%%MatrixMarket");
            continue;
        }
        let mut fields = line.split(|b| b.is_ascii_whitespace()).filter(|f| !f.is_empty());
        let (Some(a), Some(b), Some(c), None) = (fields.next(), fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let bad = |what: &str| XeniumError::BadValue {
            file: matrix_path.clone(),
            column: what.to_owned(),
            row: line_number,
            reason: format!("cannot read {:?}", String::from_utf8_lossy(&line).trim_end()),
        };
        if declared.is_none() {
            let dims = (parse_u64(a), parse_u64(b), parse_u64(c));
            let (Some(f), Some(bc), Some(n)) = dims else {
                return Err(bad("size line"));
            };
            if f > u64::from(u32::MAX) || bc > u64::from(u32::MAX) {
                return Err(bad("size line"));
            }
            declared = Some((f, bc, n));
            entries.reserve(n.min(1 << 31) as usize);
            continue;
        }
        let row = parse_u64(a).ok_or_else(|| bad("feature"))?;
        let col = parse_u64(b).ok_or_else(|| bad("barcode"))?;
        let value = parse_count(c).ok_or_else(|| bad("count"))?;
        if row == 0 || col == 0 || row > u64::from(u32::MAX) || col > u64::from(u32::MAX) {
            return Err(bad("1-based index"));
        }
        entries.push(((col - 1) as u32, (row - 1) as u32, value));
    }
    let Some((n_features, n_barcodes, n_entries)) = declared else {
        return Err(corrupt(&matrix_path, "no size line"));
    };
    if !header_seen {
        return Err(corrupt(&matrix_path, "missing %%MatrixMarket header"));
    }
    if n_features != features.len() as u64 || n_barcodes != barcodes.len() as u64 || n_entries != entries.len() as u64 {
        return Err(corrupt(
            &matrix_path,
            format!(
                "size line says {n_features} x {n_barcodes} with {n_entries} entries; found {} features, {} barcodes, {} entries",
                features.len(),
                barcodes.len(),
                entries.len()
            ),
        ));
    }
    if let Some(e) = entries.iter().find(|e| u64::from(e.0) >= n_barcodes) {
        return Err(corrupt(
            &matrix_path,
            format!("barcode index {} is beyond {n_barcodes}", e.0 + 1),
        ));
    }
    // Counting sort by barcode (linear; the order of features within a barcode is kept).
    let mut col_offsets = vec![0u64; n_barcodes as usize + 1];
    for e in &entries {
        col_offsets[e.0 as usize + 1] += 1;
    }
    for i in 1..col_offsets.len() {
        col_offsets[i] += col_offsets[i - 1];
    }
    let mut next: Vec<u64> = col_offsets[..n_barcodes as usize].to_vec();
    let mut indices = vec![0u64; entries.len()];
    let mut counts = vec![0f32; entries.len()];
    for e in &entries {
        let slot = &mut next[e.0 as usize];
        indices[*slot as usize] = u64::from(e.1);
        counts[*slot as usize] = e.2;
        *slot += 1;
    }
    drop(entries);
    finish(&matrix_path, features, barcodes, col_offsets, indices, counts)
}

/// A non-negative decimal integer.
fn parse_u64(field: &[u8]) -> Option<u64> {
    if field.is_empty() || field.len() > 19 {
        return None;
    }
    field.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

/// A count: integers on the fast path, any finite real otherwise.
fn parse_count(field: &[u8]) -> Option<f32> {
    if let Some(v) = parse_u64(field) {
        return Some(v as f32);
    }
    std::str::from_utf8(field)
        .ok()?
        .parse::<f32>()
        .ok()
        .filter(|v| v.is_finite())
}

/// Reads `path` (an .h5 file or a MEX folder) and reorders it to the cell table. Barcodes that
/// are not cells are an error; cells without a barcode get no counts (reported in the warning).
pub fn read_counts(path: &Path, cells: &CellTable) -> Result<(SparseCounts, Option<String>), XeniumError> {
    let by_barcode = if path.is_dir() { read_mex(path)? } else { read_h5(path)? };
    let mut column_of_cell: Vec<Option<usize>> = vec![None; cells.len()];
    let mut unknown = Vec::new();
    let mut seen: HashMap<&str, usize> =
        HashMap::with_capacity_and_hasher(by_barcode.barcodes.len(), Default::default());
    for (col, barcode) in by_barcode.barcodes.iter().enumerate() {
        if let Some(first) = seen.insert(barcode.as_str(), col) {
            return Err(XeniumError::Mismatch {
                file: path.to_path_buf(),
                reason: format!(
                    "barcode {barcode:?} appears twice (columns {} and {})",
                    first + 1,
                    col + 1
                ),
            });
        }
        match cells.index_of(barcode) {
            Some(cell) => column_of_cell[cell as usize] = Some(col),
            None => unknown.push(barcode.clone()),
        }
    }
    if !unknown.is_empty() {
        return Err(XeniumError::Mismatch {
            file: path.to_path_buf(),
            reason: format!(
                "{} of {} matrix barcodes are not cells of this bundle (first: {:?})",
                unknown.len(),
                by_barcode.barcodes.len(),
                &unknown[..unknown.len().min(3)]
            ),
        });
    }
    let mut row_offsets = Vec::with_capacity(cells.len() + 1);
    row_offsets.push(0u64);
    let mut feature_index = Vec::with_capacity(by_barcode.feature_index.len());
    let mut counts = Vec::with_capacity(by_barcode.counts.len());
    let mut without = 0;
    for slot in &column_of_cell {
        match slot {
            Some(col) => {
                let a = by_barcode.col_offsets[*col] as usize;
                let b = by_barcode.col_offsets[*col + 1] as usize;
                feature_index.extend_from_slice(&by_barcode.feature_index[a..b]);
                counts.extend_from_slice(&by_barcode.counts[a..b]);
            }
            None => without += 1,
        }
        row_offsets.push(feature_index.len() as u64);
    }
    let warning =
        (without > 0).then(|| format!("{without} of {} cells have no column in the count matrix", cells.len()));
    Ok((
        SparseCounts {
            features: by_barcode.features,
            row_offsets,
            feature_index,
            counts,
        },
        warning,
    ))
}
