//! Gene-expression PCA: the built-in gene encoder. Fits the leading principal axes of
//! log1p(CP10k) expression (centred, as scanpy's `pp.pca`) from the gene-by-gene covariance, so a
//! million sparse cells never become a dense matrix.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::matrix::{GeneExpression, Matrix};
use crate::rng::SeededRng;

/// Panels wider than this are reduced to their most variable genes before the eigensolve.
pub const MAX_PCA_GENES: usize = 2000;
/// Covariance matrices up to this size are diagonalised directly (Jacobi); larger ones by
/// subspace iteration.
const DIRECT_EIGEN_LIMIT: usize = 400;

/// A fitted PCA: which genes (by name, so a bundle with the same panel in another order still
/// works), their means, and the axes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenePca {
    pub gene_names: Vec<String>,
    pub mean: Vec<f32>,
    /// `n_components` rows of `gene_names.len()` loadings.
    pub components: Vec<Vec<f32>>,
    pub explained_variance: Vec<f32>,
}

impl GenePca {
    /// Fits up to `n_components` axes (fewer when there are fewer genes or cells).
    pub fn fit(expr: &GeneExpression, n_components: usize, seed: u64) -> Result<Self, ModelError> {
        let n_cells = expr.n_cells();
        if n_cells < 2 || expr.n_genes() == 0 {
            return Err(ModelError::Input(format!(
                "PCA needs at least 2 cells and 1 gene, got {n_cells} cells and {} genes",
                expr.n_genes()
            )));
        }
        let (mean_all, var_all) = gene_moments(expr);
        let mut genes: Vec<usize> = (0..expr.n_genes()).filter(|&g| var_all[g] > 0.0).collect();
        if genes.is_empty() {
            return Err(ModelError::Input("every gene has zero variance".into()));
        }
        if genes.len() > MAX_PCA_GENES {
            genes.sort_by(|&a, &b| var_all[b].total_cmp(&var_all[a]));
            genes.truncate(MAX_PCA_GENES);
            genes.sort_unstable();
        }
        let g = genes.len();
        let mut local_of_gene = vec![usize::MAX; expr.n_genes()];
        for (local, &gene) in genes.iter().enumerate() {
            local_of_gene[gene] = local;
        }
        let mean: Vec<f64> = genes.iter().map(|&gene| mean_all[gene]).collect();
        let covariance = covariance(expr, &local_of_gene, &mean, n_cells);
        let k = n_components.min(g).min(n_cells - 1).max(1);
        let (values, vectors) = if g <= DIRECT_EIGEN_LIMIT {
            symmetric_eigen(&covariance, g)
        } else {
            subspace_eigen(&covariance, g, k, seed)
        };
        let mut components = Vec::with_capacity(k);
        let mut explained_variance = Vec::with_capacity(k);
        for (value, mut vector) in values.into_iter().zip(vectors).take(k) {
            // A deterministic sign: the largest loading is positive.
            let largest = vector
                .iter()
                .copied()
                .fold(0f64, |a, v| if v.abs() > a.abs() { v } else { a });
            if largest < 0.0 {
                vector.iter_mut().for_each(|v| *v = -*v);
            }
            components.push(vector.iter().map(|&v| v as f32).collect());
            explained_variance.push(value.max(0.0) as f32);
        }
        Ok(Self {
            gene_names: genes.iter().map(|&gene| expr.gene_names[gene].clone()).collect(),
            mean: mean.iter().map(|&m| m as f32).collect(),
            components,
            explained_variance,
        })
    }

    pub fn n_components(&self) -> usize {
        self.components.len()
    }

    /// Projects cells onto the axes: one row of `n_components` scores per cell. Genes of the PCA
    /// missing from `expr` count as zero expression; an error if none is present.
    pub fn transform(&self, expr: &GeneExpression) -> Result<Matrix, ModelError> {
        let k = self.n_components();
        let mut gene_map = vec![usize::MAX; expr.n_genes()];
        let mut found = 0;
        for (local, name) in self.gene_names.iter().enumerate() {
            if let Some(gene) = expr.gene(name) {
                gene_map[gene] = local;
                found += 1;
            }
        }
        if found == 0 {
            return Err(ModelError::Input(
                "none of the PCA's genes is in this expression matrix".into(),
            ));
        }
        // (x - mean) . v = x . v - mean . v
        let offset: Vec<f32> = self
            .components
            .iter()
            .map(|c| c.iter().zip(&self.mean).map(|(a, b)| a * b).sum())
            .collect();
        let mut out = Matrix::zeros(expr.n_cells(), k);
        out.values
            .par_chunks_mut(k.max(1))
            .enumerate()
            .for_each(|(cell, scores)| {
                scores.iter_mut().zip(&offset).for_each(|(s, o)| *s = -o);
                let (genes, values) = expr.cell(cell);
                for (&gene, &v) in genes.iter().zip(values) {
                    let local = gene_map[gene as usize];
                    if local == usize::MAX {
                        continue;
                    }
                    for (s, c) in scores.iter_mut().zip(&self.components) {
                        *s += v * c[local];
                    }
                }
            });
        Ok(out)
    }
}

fn gene_moments(expr: &GeneExpression) -> (Vec<f64>, Vec<f64>) {
    let n = expr.n_cells() as f64;
    let mut sum = vec![0f64; expr.n_genes()];
    let mut sum_sq = vec![0f64; expr.n_genes()];
    for (&gene, &v) in expr.gene_index.iter().zip(&expr.values) {
        let v = f64::from(v);
        sum[gene as usize] += v;
        sum_sq[gene as usize] += v * v;
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let var = sum_sq
        .iter()
        .zip(&mean)
        .map(|(sq, m)| (sq / n - m * m).max(0.0))
        .collect();
    (mean, var)
}

/// Population covariance over the kept genes (row-major g x g), from sparse rows in parallel.
fn covariance(expr: &GeneExpression, local_of_gene: &[usize], mean: &[f64], n_cells: usize) -> Vec<f64> {
    let g = mean.len();
    let chunk = n_cells.div_ceil(rayon::current_num_threads().max(1) * 4).max(1);
    let gram = (0..n_cells)
        .into_par_iter()
        .step_by(chunk)
        .map(|start| {
            let mut gram = vec![0f64; g * g];
            let mut row: Vec<(usize, f64)> = Vec::new();
            for cell in start..(start + chunk).min(n_cells) {
                row.clear();
                let (genes, values) = expr.cell(cell);
                for (&gene, &v) in genes.iter().zip(values) {
                    let local = local_of_gene[gene as usize];
                    if local != usize::MAX {
                        row.push((local, f64::from(v)));
                    }
                }
                for &(a, va) in &row {
                    let line = &mut gram[a * g..(a + 1) * g];
                    for &(b, vb) in &row {
                        line[b] += va * vb;
                    }
                }
            }
            gram
        })
        .reduce(
            || vec![0f64; g * g],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let n = n_cells as f64;
    let mut cov = gram;
    for a in 0..g {
        for b in 0..g {
            cov[a * g + b] = cov[a * g + b] / n - mean[a] * mean[b];
        }
    }
    cov
}

/// Eigenvalues (descending) and unit eigenvectors of a symmetric n x n matrix, by cyclic Jacobi.
pub(crate) fn symmetric_eigen(matrix: &[f64], n: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    let mut a = matrix.to_vec();
    let mut v = vec![0f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let norm: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
    for _sweep in 0..60 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-13 * norm {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let sign = if theta >= 0.0 { 1.0 } else { -1.0 };
                let t = sign / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&x, &y| a[y * n + y].total_cmp(&a[x * n + x]));
    let values = order.iter().map(|&i| a[i * n + i]).collect();
    let vectors = order.iter().map(|&i| (0..n).map(|k| v[k * n + i]).collect()).collect();
    (values, vectors)
}

/// The leading `k` eigenpairs of a large symmetric matrix: block power iteration on `k + 10`
/// vectors, then Rayleigh–Ritz.
fn subspace_eigen(matrix: &[f64], n: usize, k: usize, seed: u64) -> (Vec<f64>, Vec<Vec<f64>>) {
    let m = (k + 10).min(n);
    let mut rng = SeededRng::new(seed);
    let mut basis: Vec<Vec<f64>> = (0..m).map(|_| (0..n).map(|_| rng.normal()).collect()).collect();
    orthonormalise(&mut basis);
    let multiply = |basis: &[Vec<f64>]| -> Vec<Vec<f64>> {
        basis
            .par_iter()
            .map(|b| {
                (0..n)
                    .map(|i| matrix[i * n..(i + 1) * n].iter().zip(b).map(|(x, y)| x * y).sum())
                    .collect()
            })
            .collect()
    };
    for _ in 0..40 {
        basis = multiply(&basis);
        orthonormalise(&mut basis);
    }
    let image = multiply(&basis);
    let mut small = vec![0f64; m * m];
    for i in 0..m {
        for j in 0..m {
            small[i * m + j] = basis[i].iter().zip(&image[j]).map(|(a, b)| a * b).sum();
        }
    }
    let (values, small_vectors) = symmetric_eigen(&small, m);
    let vectors = small_vectors
        .iter()
        .map(|w| {
            (0..n)
                .map(|row| w.iter().zip(&basis).map(|(wi, b)| wi * b[row]).sum())
                .collect()
        })
        .collect();
    (values, vectors)
}

fn orthonormalise(basis: &mut [Vec<f64>]) {
    for i in 0..basis.len() {
        for j in 0..i {
            let dot: f64 = basis[i].iter().zip(&basis[j]).map(|(a, b)| a * b).sum();
            let (head, tail) = basis.split_at_mut(i);
            tail[0].iter_mut().zip(&head[j]).for_each(|(a, b)| *a -= dot * b);
        }
        let norm = basis[i].iter().map(|a| a * a).sum::<f64>().sqrt();
        if norm > 1e-300 {
            basis[i].iter_mut().for_each(|a| *a /= norm);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_diagonalises_a_known_matrix() {
        // [[2,1],[1,2]] has eigenvalues 3 and 1.
        let (values, vectors) = symmetric_eigen(&[2.0, 1.0, 1.0, 2.0], 2);
        assert!((values[0] - 3.0).abs() < 1e-12 && (values[1] - 1.0).abs() < 1e-12);
        assert!((vectors[0][0].abs() - vectors[0][1].abs()).abs() < 1e-12);
    }

    #[test]
    fn subspace_iteration_agrees_with_jacobi() {
        let n = 30;
        let mut rng = SeededRng::new(3);
        let b: Vec<f64> = (0..n * n).map(|_| rng.normal()).collect();
        let mut a = vec![0f64; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| b[i * n + k] * b[j * n + k]).sum();
            }
        }
        let (direct, _) = symmetric_eigen(&a, n);
        let (iterated, _) = subspace_eigen(&a, n, 5, 1);
        for i in 0..5 {
            assert!(
                (direct[i] - iterated[i]).abs() < 1e-6 * direct[0],
                "{i}: {} vs {}",
                direct[i],
                iterated[i]
            );
        }
    }

    #[test]
    fn pca_finds_the_axis_of_a_line() {
        // Cells on the line gene1 = 2 * gene0: one axis explains everything.
        let values: Vec<f32> = (0..20).flat_map(|i| [i as f32, 2.0 * i as f32, 0.0]).collect();
        let dense = Matrix::new(20, 3, values).unwrap();
        let expr = GeneExpression::from_dense(&dense, vec!["a".into(), "b".into(), "c".into()]).unwrap();
        let pca = GenePca::fit(&expr, 2, 0).unwrap();
        assert_eq!(pca.gene_names, vec!["a", "b"], "the zero-variance gene is dropped");
        let axis = &pca.components[0];
        assert!((axis[1] / axis[0] - 2.0).abs() < 1e-4);
        assert!(pca.explained_variance[1] < 1e-4 * pca.explained_variance[0]);
        let scores = pca.transform(&expr).unwrap();
        let mean: f32 = (0..20).map(|r| scores.row(r)[0]).sum::<f32>() / 20.0;
        assert!(mean.abs() < 1e-3, "scores are centred");
    }
}
