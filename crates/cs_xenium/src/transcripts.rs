//! Decoded transcripts (`transcripts.parquet|csv(.gz)`), loaded on demand and filtered by quality.

use rustc_hash::FxHashMap as HashMap;
use std::path::Path;

use crate::alignment::Affine2;
use crate::categories::FeatureCategory;
use crate::cells::CellTable;
use crate::columns::{Wanted, read_batches};
use crate::error::{XeniumError, io_error};

/// Xenium's default quality threshold (Phred-scaled qv >= 20).
pub const DEFAULT_MIN_QV: f64 = 20.0;
/// Marks a transcript assigned to no cell.
pub const NO_CELL: u32 = u32::MAX;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcripts {
    /// Distinct feature names, in order of first appearance.
    pub genes: Vec<String>,
    /// What each of `genes` is: from `codeword_category` or `is_gene` where the file has them,
    /// else by name prefix.
    pub gene_category: Vec<FeatureCategory>,
    pub gene: Vec<u32>,
    pub x_um: Vec<f32>,
    pub y_um: Vec<f32>,
    pub z_um: Vec<f32>,
    pub qv: Vec<f32>,
    /// Index into the cell table, or [`NO_CELL`].
    pub cell: Vec<u32>,
    /// Rows dropped for qv below the threshold.
    pub dropped_low_qv: usize,
}

impl Transcripts {
    /// Transcripts of each category (only the categories present).
    pub fn counts_by_category(&self) -> Vec<(FeatureCategory, usize)> {
        let mut per_gene = vec![0usize; self.genes.len()];
        for &g in &self.gene {
            if let Some(c) = per_gene.get_mut(g as usize) {
                *c += 1;
            }
        }
        let mut out: Vec<(FeatureCategory, usize)> = Vec::new();
        for (category, n) in self.gene_category.iter().zip(per_gene) {
            match out.iter_mut().find(|(c, _)| c == category) {
                Some((_, total)) => *total += n,
                None => out.push((*category, n)),
            }
        }
        out.sort();
        out
    }

    pub fn len(&self) -> usize {
        self.gene.len()
    }

    pub fn is_empty(&self) -> bool {
        self.gene.is_empty()
    }

    /// Reads a Xenium `transcripts` file.
    pub fn read(path: &Path, cells: &CellTable, min_qv: f64) -> Result<Self, XeniumError> {
        Self::read_with(path, cells, min_qv, &TranscriptLayout::default())
    }

    /// Reads transcripts laid out as `layout` says: one file, or a folder of parquet parts (as
    /// dask writes a SpatialData points element), read in name order.
    pub fn read_with(
        path: &Path,
        cells: &CellTable,
        min_qv: f64,
        layout: &TranscriptLayout,
    ) -> Result<Self, XeniumError> {
        let wanted = [
            Wanted::text(&layout.feature),
            Wanted::number(&layout.x),
            Wanted::number(&layout.y),
            Wanted::number(&layout.z).optional(),
            Wanted::number(&layout.qv).optional(),
            Wanted::text(&layout.cell_id).optional(),
            Wanted::text("codeword_category").optional(),
            Wanted::number("is_gene").optional(),
        ];
        let mut out = Transcripts::default();
        let mut gene_index: HashMap<Vec<u8>, u32> = HashMap::default();
        let mut scratch = String::new();
        let world = layout.world_from_file;
        for part in parts(path)? {
            let path = part.as_path();
            read_batches(path, &wanted, |batch| {
                let (Some(name), Some(x), Some(y)) = (batch.column(0), batch.column(1), batch.column(2)) else {
                    return Ok(());
                };
                let (x, y) = (x.numbers(), y.numbers());
                let z = batch.column(3).map(|v| v.numbers());
                let qv = batch.column(4).map(|v| v.numbers());
                for row in 0..batch.rows {
                    let q = qv.map_or(f64::INFINITY, |q| q[row]);
                    if q < min_qv {
                        out.dropped_low_qv += 1;
                        continue;
                    }
                    for (column, v) in [(&layout.x, x[row]), (&layout.y, y[row])] {
                        if !v.is_finite() {
                            return Err(XeniumError::BadValue {
                                file: path.to_path_buf(),
                                column: column.to_owned(),
                                row: batch.first_row + row,
                                reason: format!("coordinate is {v}"),
                            });
                        }
                    }
                    let name_bytes = name.id_at(row, &mut scratch);
                    let next = out.genes.len() as u32;
                    let gene = *gene_index.entry(name_bytes.to_vec()).or_insert_with(|| {
                        let name = String::from_utf8_lossy(name_bytes).into_owned();
                        let category = category_of(&name, batch.column(6), batch.column(7), row);
                        out.genes.push(name);
                        out.gene_category.push(category);
                        next
                    });
                    out.gene.push(gene);
                    let [x_um, y_um] = world.apply([x[row], y[row]]);
                    out.x_um.push(x_um as f32);
                    out.y_um.push(y_um as f32);
                    out.z_um.push(z.map_or(0.0, |z| z[row] as f32));
                    out.qv.push(if q.is_finite() { q as f32 } else { f32::NAN });
                    let cell = batch
                        .column(5)
                        .map(|ids| ids.id_at(row, &mut scratch))
                        .and_then(|id| std::str::from_utf8(id).ok())
                        .and_then(|id| cells.index_of(id))
                        .unwrap_or(NO_CELL);
                    out.cell.push(cell);
                }
                Ok(())
            })?;
        }
        Ok(out)
    }
}

/// A feature's category from `codeword_category` (XOA 3.0+), else `is_gene`, else its name.
fn category_of(
    name: &str,
    codeword_category: Option<&crate::columns::Values>,
    is_gene: Option<&crate::columns::Values>,
    row: usize,
) -> FeatureCategory {
    let mut scratch = String::new();
    if let Some(category) = codeword_category
        .and_then(|c| std::str::from_utf8(c.id_at(row, &mut scratch)).ok().map(str::to_owned))
        .and_then(|text| FeatureCategory::from_codeword_category(&text))
    {
        return category;
    }
    let by_name = FeatureCategory::from_feature_name(name);
    match is_gene.and_then(|g| g.numbers().get(row).copied()) {
        // `is_gene` false for a name the prefixes do not place: still a control.
        Some(g) if g == 0.0 && by_name == FeatureCategory::Gene => FeatureCategory::UnassignedCodeword,
        Some(g) if g != 0.0 => FeatureCategory::Gene,
        _ => by_name,
    }
}

/// Transcript counts of a file, read as a stream (nothing is kept but one entry per feature).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TranscriptSummary {
    pub total: u64,
    /// Of `total`, those with qv below the threshold.
    pub below_min_qv: u64,
    pub min_qv: f64,
    /// Per category (those present), all qualities.
    pub by_category: Vec<(FeatureCategory, u64)>,
    pub features: usize,
}

impl TranscriptSummary {
    pub fn read(path: &Path, layout: &TranscriptLayout, min_qv: f64) -> Result<Self, XeniumError> {
        let wanted = [
            Wanted::text(&layout.feature),
            Wanted::number(&layout.qv).optional(),
            Wanted::text("codeword_category").optional(),
            Wanted::number("is_gene").optional(),
        ];
        let mut per_feature: HashMap<Vec<u8>, (FeatureCategory, u64)> = HashMap::default();
        let mut out = TranscriptSummary {
            min_qv,
            ..Default::default()
        };
        let mut scratch = String::new();
        for part in parts(path)? {
            read_batches(&part, &wanted, |batch| {
                let Some(name) = batch.column(0) else {
                    return Ok(());
                };
                let qv = batch.column(1).map(|q| q.numbers());
                for row in 0..batch.rows {
                    out.total += 1;
                    if qv.is_some_and(|q| q[row] < min_qv) {
                        out.below_min_qv += 1;
                    }
                    let bytes = name.id_at(row, &mut scratch);
                    match per_feature.get_mut(bytes) {
                        Some((_, n)) => *n += 1,
                        None => {
                            let text = String::from_utf8_lossy(bytes).into_owned();
                            let category = category_of(&text, batch.column(2), batch.column(3), row);
                            per_feature.insert(bytes.to_vec(), (category, 1));
                        }
                    }
                }
                Ok(())
            })?;
        }
        out.features = per_feature.len();
        for (category, n) in per_feature.into_values() {
            match out.by_category.iter_mut().find(|(c, _)| *c == category) {
                Some((_, total)) => *total += n,
                None => out.by_category.push((category, n)),
            }
        }
        out.by_category.sort();
        Ok(out)
    }
}

/// Where a transcript table keeps its columns, and how its coordinates map to world µm.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptLayout {
    pub feature: String,
    pub x: String,
    pub y: String,
    pub z: String,
    pub qv: String,
    pub cell_id: String,
    pub world_from_file: Affine2,
}

impl Default for TranscriptLayout {
    /// Xenium's `transcripts.parquet`: µm already.
    fn default() -> Self {
        Self {
            feature: "feature_name".to_owned(),
            x: "x_location".to_owned(),
            y: "y_location".to_owned(),
            z: "z_location".to_owned(),
            qv: "qv".to_owned(),
            cell_id: "cell_id".to_owned(),
            world_from_file: Affine2::IDENTITY,
        }
    }
}

/// The file itself, or a folder's parquet parts in name order.
fn parts(path: &Path) -> Result<Vec<std::path::PathBuf>, XeniumError> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut parts: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| io_error(path, e))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| crate::columns::is_parquet(p))
        .collect();
    parts.sort_by(|a, b| natord(a, b));
    if parts.is_empty() {
        return Err(XeniumError::MissingFile {
            dir: path.to_path_buf(),
            what: "parquet parts (part.N.parquet)".to_owned(),
        });
    }
    Ok(parts)
}

/// `part.2` before `part.10`.
fn natord(a: &Path, b: &Path) -> std::cmp::Ordering {
    let key = |p: &Path| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let digits: String = name.chars().filter(char::is_ascii_digit).collect();
        (digits.len(), digits, name)
    };
    key(a).cmp(&key(b))
}
