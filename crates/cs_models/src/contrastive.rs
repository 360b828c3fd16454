//! Contrastive alignment of the two modalities: one projection MLP per modality into a shared
//! 128-d space, trained with the symmetric InfoNCE loss (the matched cell is the positive, the
//! other cells of the batch the negatives). At inference the morphology projection alone places
//! a cell, so niches can be found from H&E.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::activation::gelu;
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::classifier::matrix_rows_tensor;
use crate::matrix::Matrix;
use crate::rng::SeededRng;
use crate::{ModelError, Progress};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContrastiveConfig {
    pub gene_dim: usize,
    pub morphology_dim: usize,
    pub hidden_dim: usize,
    pub projection_dim: usize,
    /// Softmax temperature of InfoNCE.
    pub temperature: f32,
}

impl ContrastiveConfig {
    pub fn new(gene_dim: usize, morphology_dim: usize) -> Self {
        Self {
            gene_dim,
            morphology_dim,
            hidden_dim: 256,
            projection_dim: 128,
            temperature: 0.1,
        }
    }

    pub fn init(&self, device: &Device) -> Result<ContrastiveModel, ModelError> {
        if self.gene_dim == 0 || self.morphology_dim == 0 || self.projection_dim == 0 {
            return Err(ModelError::Input(format!(
                "contrastive alignment needs both modalities: {} gene and {} morphology features",
                self.gene_dim, self.morphology_dim
            )));
        }
        let head = |input: usize| ProjectionHead {
            hidden: LinearConfig::new(input, self.hidden_dim).init(device),
            output: LinearConfig::new(self.hidden_dim, self.projection_dim).init(device),
        };
        Ok(ContrastiveModel {
            gene: head(self.gene_dim),
            morphology: head(self.morphology_dim),
            temperature: self.temperature,
        })
    }
}

/// Linear -> GELU -> Linear -> L2 normalisation.
#[derive(Module, Debug)]
pub struct ProjectionHead {
    hidden: Linear,
    output: Linear,
}

impl ProjectionHead {
    /// `[batch, input]` -> unit vectors `[batch, projection_dim]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let y = self.output.forward(gelu(self.hidden.forward(x)));
        let norm = y.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-6);
        y / norm
    }
}

#[derive(Module, Debug)]
pub struct ContrastiveModel {
    pub gene: ProjectionHead,
    pub morphology: ProjectionHead,
    #[module(skip)]
    temperature: f32,
}

impl ContrastiveModel {
    /// Symmetric InfoNCE over a batch of matched rows.
    pub fn loss(&self, genes: Tensor<2>, morphology: Tensor<2>) -> Tensor<1> {
        let device = genes.device();
        let batch = genes.dims()[0];
        let g = self.gene.forward(genes);
        let m = self.morphology.forward(morphology);
        let logits = m.matmul(g.transpose()).div_scalar(self.temperature); // [batch, batch]
        let targets = Tensor::<1, Int>::arange(0..batch as i64, &device);
        let ce = CrossEntropyLossConfig::new().init(&device);
        let morph_to_gene = ce.forward(logits.clone(), targets.clone());
        let gene_to_morph = ce.forward(logits.transpose(), targets);
        (morph_to_gene + gene_to_morph).div_scalar(2.0)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContrastiveSettings {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f32,
    pub seed: u64,
}

impl Default for ContrastiveSettings {
    fn default() -> Self {
        Self {
            epochs: 20,
            batch_size: 256,
            learning_rate: 1e-3,
            weight_decay: 0.01,
            seed: 0,
        }
    }
}

pub struct TrainedContrastive {
    pub model: ContrastiveModel,
    pub config: ContrastiveConfig,
    pub epoch_losses: Vec<f64>,
    /// Held-out cells: how often a cell's morphology projection is nearest to its own gene
    /// projection among the pool, and what chance would give.
    pub retrieval_top1: f64,
    pub retrieval_chance: f64,
    pub retrieval_pool: usize,
}

/// Trains on 90% of the cells and measures matched-pair retrieval on the other 10% (in pools of
/// up to 1,000 cells).
pub fn train_contrastive(
    config: &ContrastiveConfig,
    genes: &Matrix,
    morphology: &Matrix,
    settings: &ContrastiveSettings,
    device: &Device,
    progress: &Progress,
) -> Result<TrainedContrastive, ModelError> {
    if genes.rows != morphology.rows {
        return Err(ModelError::Shape(format!(
            "{} gene rows but {} morphology rows",
            genes.rows, morphology.rows
        )));
    }
    let mut rng = SeededRng::new(settings.seed);
    let mut rows: Vec<usize> = (0..genes.rows).collect();
    rng.shuffle(&mut rows);
    let n_held = (rows.len() / 10).clamp(2.min(rows.len()), 1000);
    let held_out: Vec<usize> = rows[..n_held].to_vec();
    let mut train: Vec<usize> = rows[n_held..].to_vec();
    if train.len() < 4 {
        return Err(ModelError::Input(format!(
            "contrastive training needs more cells than {}",
            genes.rows
        )));
    }
    let ad_device = device.clone().autodiff();
    ad_device.seed(settings.seed);
    let mut model = config.init(&ad_device)?;
    let mut optimizer = AdamWConfig::new().with_weight_decay(settings.weight_decay).init();
    let batch = settings.batch_size.max(2);
    let steps = train.len().div_ceil(batch);
    let mut epoch_losses = Vec::new();
    for epoch in 0..settings.epochs {
        rng.shuffle(&mut train);
        let (mut sum, mut count) = (0f64, 0usize);
        for (step, chunk) in train.chunks(batch).enumerate() {
            progress.check()?;
            if chunk.len() < 2 {
                continue;
            }
            let loss = model.loss(
                matrix_rows_tensor(genes, chunk, &ad_device),
                matrix_rows_tensor(morphology, chunk, &ad_device),
            );
            sum += f64::from(loss.clone().into_scalar::<f32>()) * chunk.len() as f64;
            count += chunk.len();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(settings.learning_rate, model, grads);
            progress.report(
                "Aligning modalities",
                (epoch * steps + step + 1) as f32 / (settings.epochs * steps).max(1) as f32,
            );
        }
        epoch_losses.push(sum / count.max(1) as f64);
    }
    let model = model.valid();
    let g = model.gene.forward(matrix_rows_tensor(genes, &held_out, device));
    let m = model
        .morphology
        .forward(matrix_rows_tensor(morphology, &held_out, device));
    let best: Vec<i64> = m
        .matmul(g.transpose())
        .argmax(1)
        .into_data()
        .try_to_vec::<i64>()
        .map_err(|e| ModelError::Input(format!("reading retrieval back: {e:?}")))?;
    let hits = best.iter().enumerate().filter(|(i, b)| **b == *i as i64).count();
    Ok(TrainedContrastive {
        model,
        config: config.clone(),
        epoch_losses,
        retrieval_top1: hits as f64 / held_out.len().max(1) as f64,
        retrieval_chance: 1.0 / held_out.len().max(1) as f64,
        retrieval_pool: held_out.len(),
    })
}

/// Projects rows of a modality's features in batches: one 128-d unit row per cell.
pub fn project(
    head: &ProjectionHead,
    features: &Matrix,
    device: &Device,
    progress: &Progress,
) -> Result<Matrix, ModelError> {
    let rows: Vec<usize> = (0..features.rows).collect();
    let mut values = Vec::new();
    let mut dim = 0;
    for (i, chunk) in rows.chunks(4096).enumerate() {
        progress.check()?;
        let out = head.forward(matrix_rows_tensor(features, chunk, device));
        dim = out.dims()[1];
        values.extend(
            out.into_data()
                .try_to_vec::<f32>()
                .map_err(|e| ModelError::Input(format!("{e:?}")))?,
        );
        progress.report("Projecting", ((i + 1) * 4096) as f32 / features.rows.max(1) as f32);
    }
    Matrix::new(features.rows, dim, values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_device;

    #[test]
    fn loss_falls_and_matched_pairs_are_retrieved() {
        // Morphology is a noisy linear view of a shared latent that the genes also see.
        let mut rng = SeededRng::new(1);
        let n = 600;
        let (mut g, mut m) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let z: Vec<f64> = (0..6).map(|_| rng.normal()).collect();
            for j in 0..8 {
                g.push((z[j % 6] + 0.1 * rng.normal()) as f32);
            }
            for j in 0..5 {
                m.push((z[j] - z[(j + 1) % 6] + 0.1 * rng.normal()) as f32);
            }
        }
        let genes = Matrix::new(n, 8, g).unwrap();
        let morph = Matrix::new(n, 5, m).unwrap();
        let mut config = ContrastiveConfig::new(8, 5);
        config.hidden_dim = 32;
        config.projection_dim = 16;
        let settings = ContrastiveSettings {
            epochs: 15,
            batch_size: 64,
            ..Default::default()
        };
        let trained =
            train_contrastive(&config, &genes, &morph, &settings, &cpu_device(), &Progress::silent()).unwrap();
        assert!(
            trained.epoch_losses.last().unwrap() < &(trained.epoch_losses[0] * 0.8),
            "{:?}",
            trained.epoch_losses
        );
        assert!(
            trained.retrieval_top1 > 5.0 * trained.retrieval_chance,
            "top-1 {} vs chance {}",
            trained.retrieval_top1,
            trained.retrieval_chance
        );
        let projected = project(&trained.model.morphology, &morph, &cpu_device(), &Progress::silent()).unwrap();
        assert_eq!((projected.rows, projected.cols), (n, 16));
        let norm: f32 = projected.row(0).iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }
}
