//! Decoded transcripts (`transcripts.parquet|csv(.gz)`), loaded on demand and filtered by quality.

use rustc_hash::FxHashMap as HashMap;
use std::path::Path;

use crate::alignment::Affine2;
use crate::categories::FeatureCategory;
use crate::cells::CellTable;
use crate::columns::{Batch, Wanted, read_batches};
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
        let mut per_gene = vec![0u64; self.genes.len()];
        for &g in &self.gene {
            if let Some(c) = per_gene.get_mut(g as usize) {
                *c += 1;
            }
        }
        sum_by_category(self.gene_category.iter().copied().zip(per_gene))
            .into_iter()
            .map(|(category, n)| (category, n as usize))
            .collect()
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
        let mut out = Transcripts::default();
        let mut gene_index: HashMap<Vec<u8>, u32> = HashMap::default();
        for_each_row(
            path,
            layout,
            Columns::All,
            |row| {
                if row.qv < min_qv {
                    out.dropped_low_qv += 1;
                    return Ok(());
                }
                row.check_position()?;
                let next = out.genes.len() as u32;
                let gene = *gene_index.entry(row.feature.to_vec()).or_insert_with(|| {
                    out.genes.push(String::from_utf8_lossy(row.feature).into_owned());
                    out.gene_category.push(row.category());
                    next
                });
                out.gene.push(gene);
                out.x_um.push(row.x_um as f32);
                out.y_um.push(row.y_um as f32);
                out.z_um.push(row.z_um as f32);
                out.qv.push(if row.qv.is_finite() { row.qv as f32 } else { f32::NAN });
                out.cell.push(row.cell(cells));
                Ok(())
            },
            |_| Ok(()),
        )?;
        Ok(out)
    }
}

/// One transcript row as the file gives it, coordinates already in world µm (NaN when the row
/// has none: see [`TranscriptRow::check_position`]).
pub(crate) struct TranscriptRow<'a> {
    pub feature: &'a [u8],
    pub x_um: f64,
    pub y_um: f64,
    pub z_um: f64,
    /// Infinite when the file has no qv column (every row passes any threshold).
    pub qv: f64,
    cell_id: Option<&'a [u8]>,
    batch: &'a Batch,
    row: usize,
    path: &'a Path,
    layout: &'a TranscriptLayout,
}

impl TranscriptRow<'_> {
    /// An error naming the file, column and row when x or y is not a finite number.
    pub fn check_position(&self) -> Result<(), XeniumError> {
        let x = self.batch.column(1).and_then(|v| v.numbers().get(self.row).copied());
        let y = self.batch.column(2).and_then(|v| v.numbers().get(self.row).copied());
        for (column, v) in [(&self.layout.x, x), (&self.layout.y, y)] {
            match v {
                Some(v) if v.is_finite() => {}
                _ => {
                    return Err(XeniumError::BadValue {
                        file: self.path.to_path_buf(),
                        column: column.to_owned(),
                        row: self.batch.first_row + self.row,
                        reason: format!("coordinate is {}", v.unwrap_or(f64::NAN)),
                    });
                }
            }
        }
        Ok(())
    }

    /// The feature's category (reads this row's `codeword_category` / `is_gene`, else the name).
    pub fn category(&self) -> FeatureCategory {
        category_of(
            &String::from_utf8_lossy(self.feature),
            self.batch.column(6),
            self.batch.column(7),
            self.row,
        )
    }

    /// The row's cell as an index into `cells`, or [`NO_CELL`].
    pub fn cell(&self, cells: &CellTable) -> u32 {
        self.cell_id
            .and_then(|id| std::str::from_utf8(id).ok())
            .and_then(|id| cells.index_of(id))
            .unwrap_or(NO_CELL)
    }
}

/// Which columns a pass over transcripts reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Columns {
    /// Positions and cells too.
    All,
    /// Features, categories and qualities only (counting needs no more).
    Counts,
}

/// Streams every row of a transcript file (or folder of parts) through `on_row`; `after_batch`
/// gets the rows read so far after each batch (to report progress, or stop with an error).
pub(crate) fn for_each_row(
    path: &Path,
    layout: &TranscriptLayout,
    columns: Columns,
    mut on_row: impl FnMut(&TranscriptRow<'_>) -> Result<(), XeniumError>,
    mut after_batch: impl FnMut(u64) -> Result<(), XeniumError>,
) -> Result<(), XeniumError> {
    // The same positions in every case (missing optional columns read as None).
    let positions = columns == Columns::All;
    let wanted = [
        Wanted::text(&layout.feature),
        Wanted {
            required: positions,
            ..Wanted::number(if positions { &layout.x } else { "" })
        },
        Wanted {
            required: positions,
            ..Wanted::number(if positions { &layout.y } else { "" })
        },
        Wanted::number(if positions { &layout.z } else { "" }).optional(),
        Wanted::number(&layout.qv).optional(),
        Wanted::text(if positions { &layout.cell_id } else { "" }).optional(),
        Wanted::text("codeword_category").optional(),
        Wanted::number("is_gene").optional(),
    ];
    let world = layout.world_from_file;
    let (mut name_scratch, mut id_scratch) = (String::new(), String::new());
    let mut rows_read = 0u64;
    for part in parts(path)? {
        let path = part.as_path();
        read_batches(path, &wanted, |batch| {
            let Some(name) = batch.column(0) else {
                return Ok(());
            };
            let x = batch.column(1).map(|v| v.numbers());
            let y = batch.column(2).map(|v| v.numbers());
            let z = batch.column(3).map(|v| v.numbers());
            let qv = batch.column(4).map(|v| v.numbers());
            let ids = batch.column(5);
            for row in 0..batch.rows {
                let at = |v: Option<&[f64]>| v.and_then(|v| v.get(row).copied()).unwrap_or(f64::NAN);
                let [x_um, y_um] = world.apply([at(x), at(y)]);
                on_row(&TranscriptRow {
                    feature: name.id_at(row, &mut name_scratch),
                    x_um,
                    y_um,
                    z_um: z.map_or(0.0, |z| z[row]),
                    qv: qv.map_or(f64::INFINITY, |q| if q[row].is_nan() { f64::INFINITY } else { q[row] }),
                    cell_id: ids.map(|ids| ids.id_at(row, &mut id_scratch)),
                    batch,
                    row,
                    path,
                    layout,
                })?;
            }
            rows_read += batch.rows as u64;
            after_batch(rows_read)
        })?;
    }
    Ok(())
}

/// Rows in a transcript file or folder of parts, from parquet metadata (None for CSV).
pub(crate) fn row_count(path: &Path) -> Option<u64> {
    let mut total = 0;
    for part in parts(path).ok()? {
        total += crate::columns::parquet_row_count(&part)?;
    }
    Some(total)
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
        let mut per_feature: HashMap<Vec<u8>, (FeatureCategory, u64)> = HashMap::default();
        let mut out = TranscriptSummary {
            min_qv,
            ..Default::default()
        };
        for_each_row(
            path,
            layout,
            Columns::Counts,
            |row| {
                out.total += 1;
                if row.qv < min_qv {
                    out.below_min_qv += 1;
                }
                match per_feature.get_mut(row.feature) {
                    Some((_, n)) => *n += 1,
                    None => {
                        per_feature.insert(row.feature.to_vec(), (row.category(), 1));
                    }
                }
                Ok(())
            },
            |_| Ok(()),
        )?;
        out.features = per_feature.len();
        out.by_category = sum_by_category(per_feature.into_values());
        Ok(out)
    }
}

/// Totals per category (those present, in category order) of (category, count) pairs.
pub(crate) fn sum_by_category(counts: impl IntoIterator<Item = (FeatureCategory, u64)>) -> Vec<(FeatureCategory, u64)> {
    let mut out: Vec<(FeatureCategory, u64)> = Vec::new();
    for (category, n) in counts {
        match out.iter_mut().find(|(c, _)| *c == category) {
            Some((_, total)) => *total += n,
            None => out.push((category, n)),
        }
    }
    out.sort();
    out
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
