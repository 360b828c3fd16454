//! k-means on the device: seeded k-means++ initialisation, then Lloyd iterations as matrix
//! products (distances from ‖x‖² − 2x·c + ‖c‖², assignments by argmin, centroids from a one-hot
//! product), so half a million 128-d points cluster on the GPU in a few passes.

use burn::tensor::{Device, Tensor};

use crate::matrix::Matrix;
use crate::rng::SeededRng;
use crate::{ModelError, Progress};

#[derive(Clone, Debug, PartialEq)]
pub struct KMeansSettings {
    pub k: usize,
    pub max_iterations: usize,
    /// Stop when no centroid moves more than this (in feature units).
    pub tolerance: f32,
    pub seed: u64,
}

impl Default for KMeansSettings {
    fn default() -> Self {
        Self {
            k: 8,
            max_iterations: 100,
            tolerance: 1e-4,
            seed: 0,
        }
    }
}

#[derive(Clone, Debug)]
pub struct KMeansResult {
    pub centroids: Matrix,
    pub assignments: Vec<u32>,
    /// Sum of squared distances to the assigned centroid.
    pub inertia: f64,
    pub iterations: usize,
}

fn read_f32(t: Tensor<2>) -> Result<Vec<f32>, ModelError> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| ModelError::Input(format!("reading back from the device: {e:?}")))
}

pub fn kmeans(
    data: &Matrix,
    settings: &KMeansSettings,
    device: &Device,
    progress: &Progress,
) -> Result<KMeansResult, ModelError> {
    let (n, d) = (data.rows, data.cols);
    let k = settings.k;
    if k == 0 || n < k {
        return Err(ModelError::Input(format!(
            "k-means with k = {k} needs at least {k} points, got {n}"
        )));
    }
    if data.has_non_finite() {
        return Err(ModelError::Input("k-means input has NaN or infinite values".into()));
    }
    let x = Tensor::<2>::from_data(burn::tensor::TensorData::new(data.values.clone(), [n, d]), device);
    let x_sq = x.clone().powi_scalar(2).sum_dim(1); // [n, 1]
    // k-means++: each next centre drawn with probability proportional to D(x)².
    let mut rng = SeededRng::new(settings.seed);
    let mut centres: Vec<usize> = vec![rng.below(n)];
    let mut min_d2: Option<Tensor<2>> = None;
    while centres.len() < k {
        progress.check()?;
        let last = data.row(centres[centres.len() - 1]).to_vec();
        let c = Tensor::<2>::from_data(burn::tensor::TensorData::new(last, [1, d]), device);
        let d2 = (x.clone() - c).powi_scalar(2).sum_dim(1); // [n, 1]
        let current = match min_d2.take() {
            Some(m) => m.min_pair(d2),
            None => d2,
        };
        let weights = read_f32(current.clone())?;
        min_d2 = Some(current);
        let total: f64 = weights.iter().map(|&w| f64::from(w.max(0.0))).sum();
        let next = if total <= 0.0 {
            rng.below(n)
        } else {
            let mut target = rng.next_f64() * total;
            let mut chosen = n - 1;
            for (i, &w) in weights.iter().enumerate() {
                target -= f64::from(w.max(0.0));
                if target <= 0.0 {
                    chosen = i;
                    break;
                }
            }
            chosen
        };
        centres.push(next);
    }
    let mut centroids = data.select_rows(&centres);
    let mut iterations = 0;
    for iteration in 0..settings.max_iterations {
        progress.check()?;
        iterations = iteration + 1;
        let c = Tensor::<2>::from_data(burn::tensor::TensorData::new(centroids.values.clone(), [k, d]), device);
        let c_sq = c.clone().powi_scalar(2).sum_dim(1).transpose(); // [1, k]
        let d2 = x_sq.clone() - x.clone().matmul(c.transpose()).mul_scalar(2.0) + c_sq; // [n, k]
        let assign = d2.argmin(1).squeeze_dim::<1>(1); // [n]
        let one_hot = assign.one_hot::<2>(k).float(); // [n, k]
        let counts = read_f32(one_hot.clone().sum_dim(0))?; // [1, k]
        let sums = read_f32(one_hot.transpose().matmul(x.clone()))?; // [k, d]
        let mut shift = 0f32;
        for cluster in 0..k {
            if counts[cluster] < 0.5 {
                continue; // an empty cluster keeps its centroid
            }
            let row = centroids.row_mut(cluster);
            for j in 0..d {
                let new = sums[cluster * d + j] / counts[cluster];
                shift = shift.max((new - row[j]).abs());
                row[j] = new;
            }
        }
        progress.report("Clustering", iterations as f32 / settings.max_iterations as f32);
        if shift <= settings.tolerance {
            break;
        }
    }
    // Final assignment against the final centroids, and the inertia.
    let c = Tensor::<2>::from_data(burn::tensor::TensorData::new(centroids.values.clone(), [k, d]), device);
    let c_sq = c.clone().powi_scalar(2).sum_dim(1).transpose();
    let d2 = x_sq - x.matmul(c.transpose()).mul_scalar(2.0) + c_sq;
    let (min, assign) = d2.min_dim_with_indices(1);
    let inertia = read_f32(min)?.iter().map(|&v| f64::from(v.max(0.0))).sum();
    let assignments = assign
        .into_data()
        .try_to_vec::<i64>()
        .map_err(|e| ModelError::Input(format!("reading assignments back: {e:?}")))?
        .into_iter()
        .map(|a| a as u32)
        .collect();
    Ok(KMeansResult {
        centroids,
        assignments,
        inertia,
        iterations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_device;

    #[test]
    fn finds_three_separated_blobs() {
        let mut rng = SeededRng::new(5);
        let centres = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]];
        let mut values = Vec::new();
        for i in 0..300 {
            let c = centres[i % 3];
            values.push((c[0] + rng.normal()) as f32);
            values.push((c[1] + rng.normal()) as f32);
        }
        let data = Matrix::new(300, 2, values).unwrap();
        let settings = KMeansSettings {
            k: 3,
            seed: 2,
            ..Default::default()
        };
        let result = kmeans(&data, &settings, &cpu_device(), &Progress::silent()).unwrap();
        // Every blob maps to one cluster.
        for blob in 0..3 {
            let first = result.assignments[blob];
            assert!((blob..300).step_by(3).all(|i| result.assignments[i] == first));
        }
        assert!(
            result.inertia / 300.0 < 3.0,
            "inertia per point {}",
            result.inertia / 300.0
        );
        let again = kmeans(&data, &settings, &cpu_device(), &Progress::silent()).unwrap();
        assert_eq!(again.assignments, result.assignments, "seeded runs agree");
        assert!(
            kmeans(
                &data,
                &KMeansSettings { k: 400, ..settings },
                &cpu_device(),
                &Progress::silent()
            )
            .is_err()
        );
    }
}
