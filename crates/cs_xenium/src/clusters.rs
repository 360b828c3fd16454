//! `analysis/clustering/<name>/clusters.csv` (`Barcode`, `Cluster`) as categorical cell columns.

use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap as HashMap;

use crate::cells::{Categorical, CellTable, MISSING_CODE};
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
    read_labels(path, cells, "Barcode", "Cluster")
}

/// Reads a table of cell ids (`id_column`) and labels (`label_column`) into a categorical
/// column; returns it with the number of ids that are not cells of the table. Empty labels are
/// missing values.
pub fn read_labels(
    path: &Path,
    cells: &CellTable,
    id_column: &str,
    label_column: &str,
) -> Result<(Categorical, usize), XeniumError> {
    let mut codes: Vec<u32> = vec![MISSING_CODE; cells.len()];
    let mut labels: Vec<String> = Vec::new();
    let mut code_of: HashMap<Vec<u8>, u32> = HashMap::default();
    let mut unknown = 0;
    let (mut barcode_scratch, mut cluster_scratch) = (String::new(), String::new());
    read_batches(path, &[Wanted::text(id_column), Wanted::text(label_column)], |batch| {
        let (Some(barcodes), Some(clusters)) = (batch.column(0), batch.column(1)) else {
            return Ok(());
        };
        for row in 0..batch.rows {
            let barcode = barcodes.id_at(row, &mut barcode_scratch);
            let Some(cell) = std::str::from_utf8(barcode).ok().and_then(|b| cells.index_of(b)) else {
                unknown += 1;
                continue;
            };
            let label = clusters.id_at(row, &mut cluster_scratch);
            if label.is_empty() {
                continue;
            }
            let code = match code_of.get(label) {
                Some(&code) => code,
                None => {
                    let code = labels.len() as u32;
                    labels.push(String::from_utf8_lossy(label).into_owned());
                    code_of.insert(label.to_vec(), code);
                    code
                }
            };
            codes[cell as usize] = code;
        }
        Ok(())
    })?;
    Ok((Categorical::from_codes(labels, codes), unknown))
}
