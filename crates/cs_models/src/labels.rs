//! Training labels: a marker-gene scorer (an editable table of types and their markers), and the
//! `Labels` every label source (marker scoring, Xenium clusters, an imported CSV, selections)
//! becomes. Cells whose label is unsure are left unlabelled and so out of training, as in the
//! paper.

use std::collections::HashMap;
use std::path::Path;

use crate::ModelError;
use crate::matrix::GeneExpression;

/// One class per cell or none (unlabelled, ambiguous or low confidence).
#[derive(Clone, Debug, PartialEq)]
pub struct Labels {
    pub class_names: Vec<String>,
    pub per_cell: Vec<Option<u16>>,
}

impl Labels {
    /// Labels from per-cell names (`None` or an empty name = unlabelled); classes are sorted.
    pub fn from_names<'a>(names: impl IntoIterator<Item = Option<&'a str>>) -> Self {
        let names: Vec<Option<&str>> = names.into_iter().collect();
        let mut class_names: Vec<String> = names
            .iter()
            .flatten()
            .filter(|n| !n.is_empty())
            .map(|n| n.to_string())
            .collect();
        class_names.sort();
        class_names.dedup();
        let index: HashMap<&str, u16> = class_names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i as u16))
            .collect();
        let per_cell = names.iter().map(|n| n.and_then(|n| index.get(n).copied())).collect();
        Self { class_names, per_cell }
    }

    pub fn n_labelled(&self) -> usize {
        self.per_cell.iter().flatten().count()
    }

    /// Cells per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.class_names.len()];
        for &label in self.per_cell.iter().flatten() {
            counts[label as usize] += 1;
        }
        counts
    }
}

/// A cell type and its marker genes.
#[derive(Clone, Debug, PartialEq)]
pub struct MarkerSet {
    pub cell_type: String,
    pub genes: Vec<String>,
}

/// Parses a marker table: `type<TAB>gene,gene,...` per line, `#` comments and blank lines ignored.
pub fn parse_marker_table(text: &str, source: &Path) -> Result<Vec<MarkerSet>, ModelError> {
    let mut sets = Vec::new();
    for (line_number, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((cell_type, genes)) = line.split_once('\t') else {
            return Err(ModelError::File {
                path: source.to_path_buf(),
                reason: format!(
                    "line {}: expected a cell type, a tab, then comma-separated genes",
                    line_number + 1
                ),
            });
        };
        let genes: Vec<String> = genes
            .split(',')
            .map(|g| g.trim().to_string())
            .filter(|g| !g.is_empty())
            .collect();
        if cell_type.trim().is_empty() || genes.is_empty() {
            return Err(ModelError::File {
                path: source.to_path_buf(),
                reason: format!(
                    "line {}: a cell type needs a name and at least one gene",
                    line_number + 1
                ),
            });
        }
        sets.push(MarkerSet {
            cell_type: cell_type.trim().to_string(),
            genes,
        });
    }
    if sets.is_empty() {
        return Err(ModelError::File {
            path: source.to_path_buf(),
            reason: "no cell types in the table".into(),
        });
    }
    Ok(sets)
}

/// The marker table shipped in `assets/markers/cell_types.tsv`.
pub fn default_marker_table() -> Vec<MarkerSet> {
    let text = include_str!("../../../assets/markers/cell_types.tsv");
    // The shipped table is checked by a test; an error here cannot happen at run time.
    parse_marker_table(text, Path::new("assets/markers/cell_types.tsv")).unwrap_or_default()
}

/// Settings of the marker scorer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MarkerScoring {
    /// A cell is labelled only if its best score beats the runner-up by this much (in standard
    /// deviations of marker expression).
    pub min_margin: f32,
    /// ... and its best score is at least this (a cell expressing no marker stays unlabelled).
    pub min_score: f32,
}

impl Default for MarkerScoring {
    fn default() -> Self {
        Self {
            min_margin: 0.5,
            min_score: 0.5,
        }
    }
}

/// What the marker scorer found.
#[derive(Clone, Debug)]
pub struct MarkerLabels {
    pub labels: Labels,
    /// Best score minus runner-up per cell.
    pub margin: Vec<f32>,
    /// Marker genes found on the panel, per type (types with none are dropped).
    pub used_markers: Vec<(String, Vec<String>)>,
}

/// Scores each cell for each type as the mean z-score (over cells) of the type's markers in
/// log1p(CP10k) expression; the best type wins when it is clear enough.
pub fn score_markers(
    expr: &GeneExpression,
    markers: &[MarkerSet],
    settings: MarkerScoring,
) -> Result<MarkerLabels, ModelError> {
    let n_cells = expr.n_cells();
    let mut used: Vec<(String, Vec<usize>)> = Vec::new();
    for set in markers {
        let genes: Vec<usize> = set.genes.iter().filter_map(|g| expr.gene(g)).collect();
        if !genes.is_empty() {
            used.push((set.cell_type.clone(), genes));
        }
    }
    if used.len() < 2 {
        return Err(ModelError::Input(format!(
            "only {} of the marker table's cell types have a marker gene on this panel; at least 2 are needed",
            used.len()
        )));
    }
    // Per-gene mean and sd over all cells (zeros included).
    let n = n_cells.max(1) as f64;
    let mut sum = vec![0f64; expr.n_genes()];
    let mut sum_sq = vec![0f64; expr.n_genes()];
    for (&g, &v) in expr.gene_index.iter().zip(&expr.values) {
        sum[g as usize] += f64::from(v);
        sum_sq[g as usize] += f64::from(v) * f64::from(v);
    }
    let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
    let sd: Vec<f32> = sum
        .iter()
        .zip(&sum_sq)
        .map(|(s, q)| {
            let m = s / n;
            ((q / n - m * m).max(0.0).sqrt() as f32).max(1e-6)
        })
        .collect();
    let n_types = used.len();
    let mut per_cell = Vec::with_capacity(n_cells);
    let mut margins = Vec::with_capacity(n_cells);
    let mut dense = vec![0f32; expr.n_genes()];
    for cell in 0..n_cells {
        let (genes, values) = expr.cell(cell);
        for (&g, &v) in genes.iter().zip(values) {
            dense[g as usize] = v;
        }
        let mut best = (f32::NEG_INFINITY, 0usize);
        let mut second = f32::NEG_INFINITY;
        for (t, (_, markers)) in used.iter().enumerate() {
            let score = markers.iter().map(|&g| (dense[g] - mean[g]) / sd[g]).sum::<f32>() / markers.len() as f32;
            if score > best.0 {
                second = best.0;
                best = (score, t);
            } else if score > second {
                second = score;
            }
        }
        for &g in genes {
            dense[g as usize] = 0.0;
        }
        let margin = best.0 - second;
        margins.push(margin);
        let confident = best.0 >= settings.min_score && margin >= settings.min_margin;
        per_cell.push(confident.then_some(best.1 as u16));
    }
    debug_assert!(n_types <= u16::MAX as usize);
    let class_names = used.iter().map(|(name, _)| name.clone()).collect();
    let used_markers = used
        .iter()
        .map(|(name, genes)| {
            (
                name.clone(),
                genes.iter().map(|&g| expr.gene_names[g].clone()).collect(),
            )
        })
        .collect();
    Ok(MarkerLabels {
        labels: Labels { class_names, per_cell },
        margin: margins,
        used_markers,
    })
}

/// Reads a label CSV (`cell_id,label` with a header row; extra columns ignored) and matches it
/// to `cell_ids`; cells missing from the file are unlabelled.
pub fn read_label_csv(path: &Path, cell_ids: &[String]) -> Result<Labels, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut lines = text.lines();
    let header = lines.next().ok_or_else(|| ModelError::File {
        path: path.to_path_buf(),
        reason: "the file is empty".into(),
    })?;
    let columns: Vec<String> = header
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_lowercase())
        .collect();
    let id_col = columns
        .iter()
        .position(|c| c == "cell_id" || c == "barcode" || c == "cell");
    let Some(id_col) = id_col else {
        return Err(ModelError::File {
            path: path.to_path_buf(),
            reason: "no cell_id column in the header".into(),
        });
    };
    let label_col = columns
        .iter()
        .position(|c| c == "label" || c == "cell_type" || c == "group" || c == "cluster")
        .or_else(|| (0..columns.len()).find(|&c| c != id_col))
        .ok_or_else(|| ModelError::File {
            path: path.to_path_buf(),
            reason: "no label column".into(),
        })?;
    let mut by_id: HashMap<String, String> = HashMap::new();
    for (n, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(|f| f.trim().trim_matches('"')).collect();
        let (Some(id), Some(label)) = (fields.get(id_col), fields.get(label_col)) else {
            return Err(ModelError::File {
                path: path.to_path_buf(),
                reason: format!("line {} has {} fields, fewer than the header", n + 2, fields.len()),
            });
        };
        by_id.insert(id.to_string(), label.to_string());
    }
    let labels = Labels::from_names(cell_ids.iter().map(|id| by_id.get(id).map(String::as_str)));
    if labels.n_labelled() == 0 {
        return Err(ModelError::File {
            path: path.to_path_buf(),
            reason: "no cell_id in the file matches a cell of the bundle".into(),
        });
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::Matrix;

    #[test]
    fn shipped_marker_table_parses() {
        let table = default_marker_table();
        assert_eq!(table.len(), 6);
        assert_eq!(table[0].cell_type, "B cells");
        assert!(table.iter().all(|s| s.genes.len() >= 5));
    }

    #[test]
    fn bad_tables_name_the_line() {
        let err = parse_marker_table("T cells CD3E\n", Path::new("m.tsv"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("m.tsv") && err.contains("line 1"), "{err}");
    }

    #[test]
    fn markers_pick_the_type_and_leave_unclear_cells_out() {
        // genes: A1 A2 (type A), B1 (type B)
        let rows = vec![
            5.0, 4.0, 0.0, // clearly A
            0.0, 0.0, 6.0, // clearly B
            0.0, 0.0, 0.0, // nothing
            4.0, 4.0, 0.0, // A
            0.0, 0.0, 5.0, // B
        ];
        let m = Matrix::new(5, 3, rows).unwrap();
        let expr = GeneExpression::from_dense(&m, vec!["A1".into(), "A2".into(), "B1".into()]).unwrap();
        let table = parse_marker_table("A\tA1,A2,MISSING\nB\tB1\n", Path::new("t.tsv")).unwrap();
        let found = score_markers(&expr, &table, MarkerScoring::default()).unwrap();
        assert_eq!(found.labels.per_cell, vec![Some(0), Some(1), None, Some(0), Some(1)]);
        assert_eq!(found.used_markers[0].1, vec!["A1", "A2"]);
    }
}
