//! Row-major per-cell feature matrices and sparse gene expression (log1p CP10k), the inputs every
//! model in this crate takes.

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// A dense row-major matrix: one row per cell, one column per feature.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub values: Vec<f32>,
}

impl Matrix {
    pub fn new(rows: usize, cols: usize, values: Vec<f32>) -> Result<Self, ModelError> {
        if rows * cols != values.len() {
            return Err(ModelError::Shape(format!(
                "a {rows} x {cols} matrix needs {} values, got {}",
                rows * cols,
                values.len()
            )));
        }
        Ok(Self { rows, cols, values })
    }

    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            values: vec![0.0; rows * cols],
        }
    }

    pub fn row(&self, row: usize) -> &[f32] {
        &self.values[row * self.cols..(row + 1) * self.cols]
    }

    pub fn row_mut(&mut self, row: usize) -> &mut [f32] {
        &mut self.values[row * self.cols..(row + 1) * self.cols]
    }

    /// The rows at `indices`, in that order.
    pub fn select_rows(&self, indices: &[usize]) -> Matrix {
        let mut values = Vec::with_capacity(indices.len() * self.cols);
        for &row in indices {
            values.extend_from_slice(self.row(row));
        }
        Matrix {
            rows: indices.len(),
            cols: self.cols,
            values,
        }
    }

    /// Whether any value is NaN or infinite.
    pub fn has_non_finite(&self) -> bool {
        self.values.iter().any(|v| !v.is_finite())
    }
}

/// Per-column centring and scaling, fitted on training cells and stored with a model so that
/// prediction scales new cells the same way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnScaling {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl ColumnScaling {
    /// Mean and standard deviation of each column (a constant column gets std 1).
    pub fn fit(matrix: &Matrix) -> Self {
        let n = matrix.rows.max(1) as f64;
        let mut sum = vec![0f64; matrix.cols];
        let mut sum_sq = vec![0f64; matrix.cols];
        for row in 0..matrix.rows {
            for (col, &v) in matrix.row(row).iter().enumerate() {
                let v = f64::from(v);
                sum[col] += v;
                sum_sq[col] += v * v;
            }
        }
        let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        let std = sum
            .iter()
            .zip(&sum_sq)
            .map(|(s, sq)| {
                let m = s / n;
                let var = (sq / n - m * m).max(0.0);
                if var > 1e-12 { var.sqrt() as f32 } else { 1.0 }
            })
            .collect();
        Self { mean, std }
    }

    /// Scales in place; values are clipped to ±10 standard deviations as scanpy's `scale` does.
    pub fn apply(&self, matrix: &mut Matrix) -> Result<(), ModelError> {
        if matrix.cols != self.mean.len() {
            return Err(ModelError::Shape(format!(
                "features have {} columns but the scaling was fitted on {}",
                matrix.cols,
                self.mean.len()
            )));
        }
        for row in 0..matrix.rows {
            for ((v, m), s) in matrix.row_mut(row).iter_mut().zip(&self.mean).zip(&self.std) {
                *v = ((*v - m) / s).clamp(-10.0, 10.0);
            }
        }
        Ok(())
    }
}

/// Sparse per-cell expression over a gene panel (CSR), normalised to log1p(counts per 10k).
#[derive(Clone, Debug, PartialEq)]
pub struct GeneExpression {
    pub gene_names: Vec<String>,
    pub row_offsets: Vec<u64>,
    pub gene_index: Vec<u32>,
    pub values: Vec<f32>,
}

impl GeneExpression {
    /// Normalises raw CSR counts: keeps the features listed in `genes` (in that order, so control
    /// probes can be left out), scales each cell to 10,000 counts over those genes and takes
    /// log1p, as scanpy's `normalize_total(target_sum=1e4)` + `log1p`.
    pub fn log1p_cp10k(
        row_offsets: &[u64],
        feature_index: &[u32],
        counts: &[f32],
        genes: &[(u32, String)],
    ) -> Result<Self, ModelError> {
        if row_offsets.last().copied().unwrap_or(0) as usize != counts.len() || feature_index.len() != counts.len() {
            return Err(ModelError::Shape(
                "the count matrix's CSR arrays disagree in length".into(),
            ));
        }
        let max_feature = genes.iter().map(|(f, _)| *f as usize + 1).max().unwrap_or(0);
        let mut gene_of_feature = vec![u32::MAX; max_feature];
        for (gene, (feature, _)) in genes.iter().enumerate() {
            gene_of_feature[*feature as usize] = gene as u32;
        }
        let n_cells = row_offsets.len().saturating_sub(1);
        let mut out_offsets = Vec::with_capacity(n_cells + 1);
        out_offsets.push(0u64);
        let mut gene_index = Vec::new();
        let mut values = Vec::new();
        for cell in 0..n_cells {
            let range = row_offsets[cell] as usize..row_offsets[cell + 1] as usize;
            let start = values.len();
            let mut total = 0f64;
            for (feature, count) in feature_index[range.clone()].iter().zip(&counts[range]) {
                let Some(&gene) = gene_of_feature.get(*feature as usize) else {
                    continue;
                };
                if gene == u32::MAX || *count <= 0.0 || !count.is_finite() {
                    continue;
                }
                gene_index.push(gene);
                values.push(*count);
                total += f64::from(*count);
            }
            if total > 0.0 {
                let scale = 1e4 / total;
                for v in &mut values[start..] {
                    *v = ((f64::from(*v) * scale).ln_1p()) as f32;
                }
            }
            out_offsets.push(values.len() as u64);
        }
        Ok(Self {
            gene_names: genes.iter().map(|(_, name)| name.clone()).collect(),
            row_offsets: out_offsets,
            gene_index,
            values,
        })
    }

    /// Wraps an already normalised dense matrix (for example an AnnData `X`), keeping non-zeros.
    pub fn from_dense(matrix: &Matrix, gene_names: Vec<String>) -> Result<Self, ModelError> {
        if gene_names.len() != matrix.cols {
            return Err(ModelError::Shape(format!(
                "{} gene names for {} columns",
                gene_names.len(),
                matrix.cols
            )));
        }
        let mut row_offsets = vec![0u64];
        let mut gene_index = Vec::new();
        let mut values = Vec::new();
        for row in 0..matrix.rows {
            for (gene, &v) in matrix.row(row).iter().enumerate() {
                if v != 0.0 {
                    gene_index.push(gene as u32);
                    values.push(if v.is_finite() { v } else { 0.0 });
                }
            }
            row_offsets.push(values.len() as u64);
        }
        Ok(Self {
            gene_names,
            row_offsets,
            gene_index,
            values,
        })
    }

    pub fn n_cells(&self) -> usize {
        self.row_offsets.len().saturating_sub(1)
    }

    pub fn n_genes(&self) -> usize {
        self.gene_names.len()
    }

    /// (gene indices, values) of one cell.
    pub fn cell(&self, cell: usize) -> (&[u32], &[f32]) {
        let range = self.row_offsets[cell] as usize..self.row_offsets[cell + 1] as usize;
        (&self.gene_index[range.clone()], &self.values[range])
    }

    /// The cells at `indices`, in that order.
    pub fn select_cells(&self, indices: &[usize]) -> GeneExpression {
        let mut row_offsets = Vec::with_capacity(indices.len() + 1);
        row_offsets.push(0);
        let mut gene_index = Vec::new();
        let mut values = Vec::new();
        for &cell in indices {
            let (genes, vals) = self.cell(cell);
            gene_index.extend_from_slice(genes);
            values.extend_from_slice(vals);
            row_offsets.push(values.len() as u64);
        }
        GeneExpression {
            gene_names: self.gene_names.clone(),
            row_offsets,
            gene_index,
            values,
        }
    }

    /// Index of a gene by name.
    pub fn gene(&self, name: &str) -> Option<usize> {
        self.gene_names.iter().position(|g| g == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log1p_cp10k_normalises_over_the_kept_genes() {
        // Cell 0: gene A 1, control 5, gene B 3. Cell 1: nothing.
        let offsets = [0u64, 3, 3];
        let features = [0u32, 1, 2];
        let counts = [1.0f32, 5.0, 3.0];
        let genes = vec![(0, "A".to_string()), (2, "B".to_string())];
        let expr = GeneExpression::log1p_cp10k(&offsets, &features, &counts, &genes).unwrap();
        let (idx, vals) = expr.cell(0);
        assert_eq!(idx, &[0, 1]);
        assert!((vals[0] - (2500f32).ln_1p()).abs() < 1e-4);
        assert!((vals[1] - (7500f32).ln_1p()).abs() < 1e-4);
        assert_eq!(expr.cell(1).0.len(), 0);
    }

    #[test]
    fn scaling_centres_and_clips() {
        let mut m = Matrix::new(3, 2, vec![1.0, 5.0, 2.0, 5.0, 3.0, 5.0]).unwrap();
        let scaling = ColumnScaling::fit(&m);
        scaling.apply(&mut m).unwrap();
        assert!((m.row(1)[0]).abs() < 1e-6);
        assert!((m.row(0)[0] + m.row(2)[0]).abs() < 1e-6);
        assert_eq!(m.row(0)[1], 0.0, "constant columns become 0");
        assert!(Matrix::new(2, 2, vec![0.0; 3]).is_err());
    }
}
