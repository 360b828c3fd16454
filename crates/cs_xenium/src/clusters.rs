//! `analysis/clustering/<name>/clusters.csv` (`Barcode`, `Cluster`) as categorical cell columns.

use std::path::{Path, PathBuf};

use crate::cells::{Categorical, CellTable, id_string};
use crate::columns::{Wanted, read_batches};
use crate::error::XeniumError;

/// Every clustering under `dir/analysis/clustering`, sorted by name.
pub fn find_clusterings(dir: &Path) -> Vec<(String, PathBuf)> {
    let root = dir.join("analysis").join("clustering");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    let mut found: Vec<(String, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("clusters.csv").exists())
        .filter_map(|p| Some((p.file_name()?.to_string_lossy().into_owned(), p.join("clusters.csv"))))
        .collect();
    found.sort();
    found
}

/// Reads one clusters.csv into a categorical column; returns it with the number of barcodes
/// that are not cells of the table.
pub fn read_clusters(path: &Path, cells: &CellTable) -> Result<(Categorical, usize), XeniumError> {
    let mut labels: Vec<Option<String>> = vec![None; cells.len()];
    let mut unknown = 0;
    let mut scratch = String::new();
    read_batches(path, &[Wanted::text("Barcode"), Wanted::text("Cluster")], |batch| {
        let (Some(barcodes), Some(clusters)) = (batch.column(0), batch.column(1)) else {
            return Ok(());
        };
        for row in 0..batch.rows {
            let barcode = id_string(barcodes, row, &mut scratch);
            match cells.index_of(&barcode) {
                Some(cell) => labels[cell as usize] = Some(id_string(clusters, row, &mut scratch)),
                None => unknown += 1,
            }
        }
        Ok(())
    })?;
    Ok((Categorical::from_labels(&labels), unknown))
}
