//! The columnar cell table: ids, centroids in world micrometres, numeric and categorical columns.

use std::path::Path;

use rustc_hash::FxHashMap as HashMap;

use crate::columns::{Wanted, column_names, read_batches};
use crate::error::XeniumError;

/// Marks a missing value in [`Categorical::codes`].
pub const MISSING_CODE: u32 = u32::MAX;

/// A categorical column: `codes[cell]` indexes `categories`.
#[derive(Debug, Clone, PartialEq)]
pub struct Categorical {
    pub categories: Vec<String>,
    pub codes: Vec<u32>,
}

impl Categorical {
    /// Builds a column from codes into `labels` (in any order; [`MISSING_CODE`] = missing),
    /// sorting the categories naturally (numbers by value, then text) and renumbering the codes.
    pub fn from_codes(labels: Vec<String>, codes: Vec<u32>) -> Self {
        let mut order: Vec<u32> = (0..labels.len() as u32).collect();
        order.sort_by(|&a, &b| natural_order(&labels[a as usize], &labels[b as usize]));
        let mut new_code = vec![MISSING_CODE; labels.len()];
        for (new, &old) in order.iter().enumerate() {
            new_code[old as usize] = new as u32;
        }
        let mut labels = labels;
        let categories = order
            .iter()
            .map(|&old| std::mem::take(&mut labels[old as usize]))
            .collect();
        let codes = codes
            .into_iter()
            .map(|c| new_code.get(c as usize).copied().unwrap_or(MISSING_CODE))
            .collect();
        Self { categories, codes }
    }
}

fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        _ => a.cmp(b),
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CellTable {
    pub ids: Vec<String>,
    index: HashMap<String, u32>,
    pub x_um: Vec<f64>,
    pub y_um: Vec<f64>,
    /// Numeric columns by name (`cell_area`, `nucleus_area`, `total_counts`, ...).
    pub numeric: Vec<(String, Vec<f64>)>,
    /// Categorical columns by name (clusterings, predictions).
    pub categorical: Vec<(String, Categorical)>,
}

/// Columns of cells.parquet that are neither ids nor centroids but worth keeping.
const NUMERIC_COLUMNS: &[&str] = &[
    "transcript_counts",
    "control_probe_counts",
    "genomic_control_counts",
    "control_codeword_counts",
    "unassigned_codeword_counts",
    "deprecated_codeword_counts",
    "total_counts",
    "cell_area",
    "nucleus_area",
    "nucleus_count",
    "z_level",
];

/// Text columns of cells.parquet kept as categories (`segmentation_method`, XOA 2.0+: boundary
/// stain, interior stain or nucleus expansion, per cell).
const CATEGORICAL_COLUMNS: &[&str] = &["segmentation_method"];

/// A text column being read as categories: labels in order of first appearance, their codes by
/// text, and each row's code.
type TextCategories = (Vec<String>, HashMap<Vec<u8>, u32>, Vec<u32>);

impl CellTable {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn index_of(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    pub fn numeric_column(&self, name: &str) -> Option<&[f64]> {
        self.numeric.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    pub fn categorical_column(&self, name: &str) -> Option<&Categorical> {
        self.categorical.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Builds a table from ids and centroids, checking for duplicates and non-finite coordinates.
    pub fn from_parts(file: &Path, ids: Vec<String>, x_um: Vec<f64>, y_um: Vec<f64>) -> Result<Self, XeniumError> {
        let mut index = HashMap::with_capacity_and_hasher(ids.len(), Default::default());
        for (row, id) in ids.iter().enumerate() {
            if let Some(first) = index.insert(id.clone(), row as u32) {
                return Err(XeniumError::DuplicateId {
                    file: file.to_path_buf(),
                    id: id.clone(),
                    row: row + 1,
                    first_row: first as usize + 1,
                });
            }
        }
        for (name, values) in [("x_centroid", &x_um), ("y_centroid", &y_um)] {
            if let Some(row) = values.iter().position(|v| !v.is_finite()) {
                return Err(XeniumError::BadValue {
                    file: file.to_path_buf(),
                    column: name.to_owned(),
                    row: row + 1,
                    reason: format!("coordinate is {} (cell {:?})", values[row], ids[row]),
                });
            }
        }
        Ok(Self {
            ids,
            index,
            x_um,
            y_um,
            numeric: Vec::new(),
            categorical: Vec::new(),
        })
    }

    /// Reads cells.parquet or cells.csv(.gz): `cell_id`, `x_centroid`, `y_centroid` (µm) and the
    /// numeric columns present.
    pub fn read(path: &Path) -> Result<Self, XeniumError> {
        let names = column_names(path)?;
        let extra: Vec<&str> = NUMERIC_COLUMNS
            .iter()
            .copied()
            .filter(|c| names.iter().any(|n| n == c))
            .collect();
        let mut wanted = vec![
            Wanted::text("cell_id"),
            Wanted::number("x_centroid"),
            Wanted::number("y_centroid"),
        ];
        wanted.extend(extra.iter().map(|c| Wanted::number(c)));
        let texts: Vec<&str> = CATEGORICAL_COLUMNS
            .iter()
            .copied()
            .filter(|c| names.iter().any(|n| n == c))
            .collect();
        wanted.extend(texts.iter().map(|c| Wanted::text(c)));
        let mut categories: Vec<TextCategories> = vec![Default::default(); texts.len()];
        let mut ids = Vec::new();
        let mut x_um = Vec::new();
        let mut y_um = Vec::new();
        let mut numeric: Vec<Vec<f64>> = vec![Vec::new(); extra.len()];
        let mut scratch = String::new();
        read_batches(path, &wanted, |batch| {
            let (Some(id), Some(x), Some(y)) = (batch.column(0), batch.column(1), batch.column(2)) else {
                return Ok(());
            };
            for row in 0..batch.rows {
                let bytes = id.id_at(row, &mut scratch);
                ids.push(String::from_utf8_lossy(bytes).into_owned());
            }
            x_um.extend_from_slice(x.numbers());
            y_um.extend_from_slice(y.numbers());
            for (i, column) in numeric.iter_mut().enumerate() {
                if let Some(values) = batch.column(3 + i) {
                    column.extend_from_slice(values.numbers());
                }
            }
            for (i, (labels, index, codes)) in categories.iter_mut().enumerate() {
                let Some(values) = batch.column(3 + extra.len() + i) else {
                    continue;
                };
                for row in 0..batch.rows {
                    let text = values.id_at(row, &mut scratch);
                    let next = labels.len() as u32;
                    let code = if text.is_empty() || text == b"NA" {
                        MISSING_CODE
                    } else {
                        *index.entry(text.to_vec()).or_insert_with(|| {
                            labels.push(String::from_utf8_lossy(text).into_owned());
                            next
                        })
                    };
                    codes.push(code);
                }
            }
            Ok(())
        })?;
        let mut table = Self::from_parts(path, ids, x_um, y_um)?;
        table.numeric = extra.iter().map(|s| s.to_string()).zip(numeric).collect();
        table.categorical = texts
            .iter()
            .zip(categories)
            .map(|(name, (labels, _, codes))| (name.to_string(), Categorical::from_codes(labels, codes)))
            .collect();
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_sort_naturally_and_codes_follow() {
        let labels = vec!["10".to_owned(), "2".to_owned(), "b".to_owned(), "a".to_owned()];
        let column = Categorical::from_codes(labels, vec![0, 1, MISSING_CODE, 3, 2, 0]);
        assert_eq!(column.categories, ["2", "10", "a", "b"]);
        assert_eq!(column.codes, [1, 0, MISSING_CODE, 2, 3, 1]);
    }
}
