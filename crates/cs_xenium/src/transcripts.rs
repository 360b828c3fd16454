//! Decoded transcripts (`transcripts.parquet|csv(.gz)`), loaded on demand and filtered by quality.

use rustc_hash::FxHashMap as HashMap;
use std::path::Path;

use crate::cells::CellTable;
use crate::columns::{Wanted, read_batches};
use crate::error::XeniumError;

/// Xenium's default quality threshold (Phred-scaled qv >= 20).
pub const DEFAULT_MIN_QV: f64 = 20.0;
/// Marks a transcript assigned to no cell.
pub const NO_CELL: u32 = u32::MAX;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcripts {
    /// Distinct feature names, in order of first appearance.
    pub genes: Vec<String>,
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
    pub fn len(&self) -> usize {
        self.gene.len()
    }

    pub fn is_empty(&self) -> bool {
        self.gene.is_empty()
    }

    pub fn read(path: &Path, cells: &CellTable, min_qv: f64) -> Result<Self, XeniumError> {
        let wanted = [
            Wanted::text("feature_name"),
            Wanted::number("x_location"),
            Wanted::number("y_location"),
            Wanted::number("z_location").optional(),
            Wanted::number("qv").optional(),
            Wanted::text("cell_id").optional(),
        ];
        let mut out = Transcripts::default();
        let mut gene_index: HashMap<Vec<u8>, u32> = HashMap::default();
        let mut scratch = String::new();
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
                for (column, v) in [("x_location", x[row]), ("y_location", y[row])] {
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
                    out.genes.push(String::from_utf8_lossy(name_bytes).into_owned());
                    next
                });
                out.gene.push(gene);
                out.x_um.push(x[row] as f32);
                out.y_um.push(y[row] as f32);
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
        Ok(out)
    }
}
