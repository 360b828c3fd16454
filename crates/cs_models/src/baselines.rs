//! Classical baselines that `cellsymphony evaluate` puts beside the fusion classifier, each fitted
//! on the training rows of a feature matrix standardised by those rows:
//! - multinomial logistic regression with an L2 penalty (scikit-learn's default strength, C = 1:
//!   mean cross-entropy + |W|² / (2n)), full-batch Adam to convergence;
//! - nearest centroid (the class means; probabilities from a unit-variance Gaussian per class);
//! - k nearest neighbours (Euclidean, k = 15, probabilities the neighbours' class shares) on the
//!   first [`KNN_COLUMNS`] columns (the top principal components: with every component scaled to
//!   unit variance, the noisy tail would outvote them), on at most [`KNN_MAX_TRAIN`] training
//!   rows (a seeded sample beyond that, so the brute-force search stays within seconds).
//!
//! Written here rather than taken from a crate: each is a few dozen lines over our row-major
//! [`Matrix`], with the seeding and probabilities the evaluation needs (ECE reads them).

use rayon::prelude::*;

use crate::calibration::softmax_in_place;
use crate::matrix::Matrix;
use crate::rng::SeededRng;

/// Neighbours a kNN vote counts.
pub const KNN_K: usize = 15;
/// Leading columns the kNN distance uses.
pub const KNN_COLUMNS: usize = 20;
/// Training rows the kNN search keeps at most.
pub const KNN_MAX_TRAIN: usize = 20_000;
/// Full-batch optimiser steps of the logistic regression (it stops earlier once the loss settles).
const LOGISTIC_STEPS: usize = 600;

/// Per-row class probabilities (rows of `n_classes`).
#[derive(Clone, Debug, PartialEq)]
pub struct Probabilities {
    pub n_classes: usize,
    pub values: Vec<f32>,
}

impl Probabilities {
    pub fn rows(&self) -> usize {
        self.values.len() / self.n_classes.max(1)
    }

    pub fn row(&self, r: usize) -> &[f32] {
        &self.values[r * self.n_classes..(r + 1) * self.n_classes]
    }

    /// The most probable class of each row and its probability.
    pub fn argmax(&self) -> Vec<(u16, f32)> {
        (0..self.rows())
            .map(|r| {
                let row = self.row(r);
                let (class, p) =
                    row.iter().enumerate().fold(
                        (0, f32::NEG_INFINITY),
                        |best, (c, &p)| if p > best.1 { (c, p) } else { best },
                    );
                (class as u16, p)
            })
            .collect()
    }
}

/// Column means and standard deviations of `rows` of `x`, applied to any rows: scikit-learn's
/// `StandardScaler`, which the baselines' reference figures use. Not [`crate::ColumnScaling`]:
/// that one is scanpy's `scale` (clipped at ±10 sd) for the models' inputs, fitted on a matrix
/// of training rows rather than row indices, and stored with a model.
struct Standardiser {
    mean: Vec<f32>,
    scale: Vec<f32>,
}

impl Standardiser {
    fn fit(x: &Matrix, rows: &[usize]) -> Self {
        let d = x.cols;
        let n = rows.len().max(1) as f64;
        let mut mean = vec![0f64; d];
        for &r in rows {
            for (m, &v) in mean.iter_mut().zip(x.row(r)) {
                *m += f64::from(v);
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0f64; d];
        for &r in rows {
            for ((s, &v), m) in var.iter_mut().zip(x.row(r)).zip(&mean) {
                *s += (f64::from(v) - m).powi(2);
            }
        }
        Self {
            mean: mean.iter().map(|&m| m as f32).collect(),
            scale: var
                .iter()
                .map(|&s| {
                    let sd = (s / n).sqrt();
                    if sd > 1e-12 { (1.0 / sd) as f32 } else { 0.0 }
                })
                .collect(),
        }
    }

    fn apply(&self, x: &Matrix, rows: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows.len() * x.cols);
        for &r in rows {
            out.extend(
                x.row(r)
                    .iter()
                    .zip(&self.mean)
                    .zip(&self.scale)
                    .map(|((&v, m), s)| (v - m) * s),
            );
        }
        out
    }
}

/// The linear scores of `row` for each class into `out`: `params` holds the weights (d x k,
/// row-major by feature) then the k biases.
fn linear_scores(params: &[f32], row: &[f32], out: &mut [f32]) {
    let k = out.len();
    let d = row.len();
    for (c, o) in out.iter_mut().enumerate() {
        *o = params[d * k + c] + row.iter().enumerate().map(|(j, &v)| v * params[j * k + c]).sum::<f32>();
    }
}

/// Multinomial logistic regression fitted on `train` (labels `targets`), applied to `test`.
pub fn logistic_regression(
    x: &Matrix,
    train: &[usize],
    targets: &[u16],
    test: &[usize],
    n_classes: usize,
) -> Probabilities {
    let d = x.cols;
    let k = n_classes.max(1);
    let standardiser = Standardiser::fit(x, train);
    let xs = standardiser.apply(x, train);
    let n = train.len().max(1);
    let penalty = 1.0 / n as f32;
    // Weights (d x k) then biases (k), one parameter vector for Adam.
    let mut params = vec![0f32; d * k + k];
    let (mut m1, mut m2) = (vec![0f32; params.len()], vec![0f32; params.len()]);
    let (lr, beta1, beta2, eps) = (0.05f32, 0.9f32, 0.999f32, 1e-8f32);
    let mut last_loss = f64::INFINITY;
    for step in 1..=LOGISTIC_STEPS {
        // Gradient and loss summed over row chunks in parallel.
        let (grad, loss) = xs
            .par_chunks(d.max(1) * 256)
            .zip(targets.par_chunks(256))
            .map(|(rows, ts)| {
                let mut grad = vec![0f32; d * k + k];
                let mut loss = 0f64;
                let mut logits = vec![0f32; k];
                for (row, &t) in rows.chunks_exact(d.max(1)).zip(ts) {
                    linear_scores(&params, row, &mut logits);
                    softmax_in_place(&mut logits);
                    loss -= f64::from(logits[t as usize].max(1e-12).ln());
                    for (c, &p) in logits.iter().enumerate() {
                        let delta = p - f32::from(u8::from(c == t as usize));
                        for (j, &v) in row.iter().enumerate() {
                            grad[j * k + c] += delta * v;
                        }
                        grad[d * k + c] += delta;
                    }
                }
                (grad, loss)
            })
            .reduce(
                || (vec![0f32; d * k + k], 0f64),
                |(mut a, la), (b, lb)| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    (a, la + lb)
                },
            );
        let weight_norm: f64 = params[..d * k].iter().map(|&w| f64::from(w * w)).sum();
        let loss = loss / n as f64 + f64::from(penalty) * 0.5 * weight_norm;
        for (i, g) in grad.into_iter().enumerate() {
            let g = g / n as f32 + if i < d * k { penalty * params[i] } else { 0.0 };
            m1[i] = beta1 * m1[i] + (1.0 - beta1) * g;
            m2[i] = beta2 * m2[i] + (1.0 - beta2) * g * g;
            let m_hat = m1[i] / (1.0 - beta1.powi(step as i32));
            let v_hat = m2[i] / (1.0 - beta2.powi(step as i32));
            params[i] -= lr * m_hat / (v_hat.sqrt() + eps);
        }
        if (last_loss - loss).abs() < 1e-7 * loss.max(1e-12) {
            break;
        }
        last_loss = loss;
    }
    let xt = standardiser.apply(x, test);
    let mut values = vec![0f32; test.len() * k];
    values
        .par_chunks_mut(k)
        .zip(xt.par_chunks(d.max(1)))
        .for_each(|(out, row)| {
            linear_scores(&params, row, out);
            softmax_in_place(out);
        });
    Probabilities { n_classes: k, values }
}

/// Nearest class mean on standardised features.
pub fn nearest_centroid(
    x: &Matrix,
    train: &[usize],
    targets: &[u16],
    test: &[usize],
    n_classes: usize,
) -> Probabilities {
    let d = x.cols;
    let k = n_classes.max(1);
    let standardiser = Standardiser::fit(x, train);
    let xs = standardiser.apply(x, train);
    let mut centroids = vec![0f64; k * d];
    let mut counts = vec![0usize; k];
    for (row, &t) in xs.chunks_exact(d.max(1)).zip(targets) {
        counts[t as usize] += 1;
        for (c, &v) in centroids[t as usize * d..(t as usize + 1) * d].iter_mut().zip(row) {
            *c += f64::from(v);
        }
    }
    for (class, &count) in counts.iter().enumerate() {
        for c in &mut centroids[class * d..(class + 1) * d] {
            *c /= count.max(1) as f64;
        }
    }
    let xt = standardiser.apply(x, test);
    let mut values = vec![0f32; test.len() * k];
    values
        .par_chunks_mut(k)
        .zip(xt.par_chunks(d.max(1)))
        .for_each(|(out, row)| {
            for (class, o) in out.iter_mut().enumerate() {
                *o = if counts[class] == 0 {
                    f32::NEG_INFINITY
                } else {
                    let d2: f64 = row
                        .iter()
                        .zip(&centroids[class * d..(class + 1) * d])
                        .map(|(&v, &c)| (f64::from(v) - c).powi(2))
                        .sum();
                    (-0.5 * d2) as f32
                };
            }
            softmax_in_place(out);
        });
    Probabilities { n_classes: k, values }
}

/// k nearest neighbours' class shares (k = [`KNN_K`]), on standardised features.
pub fn k_nearest_neighbours(
    x: &Matrix,
    train: &[usize],
    targets: &[u16],
    test: &[usize],
    n_classes: usize,
    seed: u64,
) -> Probabilities {
    let leading = x.cols.min(KNN_COLUMNS);
    let x = &Matrix::new(
        x.rows,
        leading,
        (0..x.rows).flat_map(|r| x.row(r)[..leading].to_vec()).collect(),
    )
    .unwrap_or_else(|_| x.clone());
    let d = x.cols.max(1);
    let k = n_classes.max(1);
    let mut kept: Vec<usize> = (0..train.len()).collect();
    if kept.len() > KNN_MAX_TRAIN {
        SeededRng::new(seed).shuffle(&mut kept);
        kept.truncate(KNN_MAX_TRAIN);
    }
    let train_rows: Vec<usize> = kept.iter().map(|&i| train[i]).collect();
    let train_targets: Vec<u16> = kept.iter().map(|&i| targets[i]).collect();
    let standardiser = Standardiser::fit(x, &train_rows);
    let xs = standardiser.apply(x, &train_rows);
    let xt = standardiser.apply(x, test);
    let neighbours = KNN_K.min(train_rows.len()).max(1);
    let mut values = vec![0f32; test.len() * k];
    values.par_chunks_mut(k).zip(xt.par_chunks(d)).for_each(|(out, row)| {
        let mut distances: Vec<(f32, u16)> = xs
            .chunks_exact(d)
            .zip(&train_targets)
            .map(|(t, &class)| (row.iter().zip(t).map(|(a, b)| (a - b) * (a - b)).sum(), class))
            .collect();
        let nth = neighbours.min(distances.len()).saturating_sub(1);
        if !distances.is_empty() {
            distances.select_nth_unstable_by(nth, |a, b| a.0.total_cmp(&b.0));
        }
        for &(_, class) in &distances[..neighbours.min(distances.len())] {
            out[class as usize] += 1.0 / neighbours as f32;
        }
    });
    Probabilities { n_classes: k, values }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Three Gaussian blobs in 4-D, 300 rows each, centres `spread` apart.
    fn blobs(spread: f32) -> (Matrix, Vec<u16>) {
        let mut rng = SeededRng::new(4);
        let (mut values, mut labels) = (Vec::new(), Vec::new());
        for i in 0..900 {
            let class = (i % 3) as u16;
            for j in 0..4 {
                let centre = if j == class as usize { spread } else { 0.0 };
                values.push(centre + rng.normal() as f32);
            }
            labels.push(class);
        }
        (Matrix::new(900, 4, values).unwrap(), labels)
    }

    fn accuracy(p: &Probabilities, truth: &[u16]) -> f64 {
        let hits = p.argmax().iter().zip(truth).filter(|((c, _), t)| c == *t).count();
        hits as f64 / truth.len() as f64
    }

    #[test]
    fn each_baseline_separates_blobs_and_gives_probabilities() {
        let (x, labels) = blobs(6.0);
        let train: Vec<usize> = (0..600).collect();
        let test: Vec<usize> = (600..900).collect();
        let targets: Vec<u16> = train.iter().map(|&r| labels[r]).collect();
        let truth: Vec<u16> = test.iter().map(|&r| labels[r]).collect();
        for (name, p) in [
            ("logistic", logistic_regression(&x, &train, &targets, &test, 3)),
            ("centroid", nearest_centroid(&x, &train, &targets, &test, 3)),
            ("knn", k_nearest_neighbours(&x, &train, &targets, &test, 3, 1)),
        ] {
            assert!(accuracy(&p, &truth) > 0.98, "{name}: {}", accuracy(&p, &truth));
            for r in 0..p.rows() {
                let sum: f32 = p.row(r).iter().sum();
                assert!((sum - 1.0).abs() < 1e-4, "{name} row {r} sums to {sum}");
            }
        }
    }

    #[test]
    fn overlapping_blobs_are_harder_and_logistic_is_near_bayes() {
        // Centres 1.5 sd apart: the Bayes rule (nearest centre) is right about 64% of the time.
        let (x, labels) = blobs(1.5);
        let train: Vec<usize> = (0..600).collect();
        let test: Vec<usize> = (600..900).collect();
        let targets: Vec<u16> = train.iter().map(|&r| labels[r]).collect();
        let truth: Vec<u16> = test.iter().map(|&r| labels[r]).collect();
        let logistic = accuracy(&logistic_regression(&x, &train, &targets, &test, 3), &truth);
        assert!((0.5..0.8).contains(&logistic), "{logistic}");
    }
}
