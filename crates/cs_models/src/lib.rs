//! CellSymphony models, written with burn and run on whichever device the caller picks: burn-wgpu
//! on the app's own wgpu device, or burn-ndarray on the CPU for tests, CI and `--device cpu`.
//!
//! - [`matrix`]: per-cell feature matrices and log1p(CP10k) gene expression;
//! - [`pca`]: the built-in gene encoder (PCA, 50 components);
//! - [`morphology`]: the built-in morphology encoder (colour deconvolution, texture, shape);
//! - [`labels`]: marker-gene scoring and the label sets training takes;
//! - [`classifier`]: the fusion transformer (unimodal, spatial, dual-modality, multi-input);
//! - [`relative_attention`]: the multi-input variant's neighbour tokens and distance-biased attention;
//! - [`train`]: seeded split, class-weighted training with AdamW, prediction;
//! - [`metrics`]: per-class precision/recall/F1 and the confusion matrix;
//! - [`baselines`]: logistic regression, nearest centroid and kNN, and the calibration error;
//! - [`evaluate`]: every variant and baseline on the same random or spatial splits over seeds;
//! - [`contrastive`]: the two projection networks and symmetric InfoNCE;
//! - [`kmeans`]: k-means++ and Lloyd iterations on the device;
//! - [`model_file`]: config JSON + weights, with version and shape checks;
//! - [`vit`]: timm-compatible ViT morphology encoders (ViT-S/B/L, UNI2-h) from safetensors;
//! - [`safetensors`]: the weights-file reader.

pub mod baselines;
pub mod calibration;
pub mod classifier;
pub mod contrastive;
pub mod device;
pub mod evaluate;
pub mod kmeans;
pub mod labels;
pub mod matrix;
pub mod metrics;
pub mod model_file;
pub mod morphology;
pub mod pca;
pub mod pipeline;
mod progress;
pub mod relative_attention;
mod rng;
pub mod safetensors;
pub mod train;
pub mod virtual_expression;
pub mod vit;

use std::path::PathBuf;

pub use burn;
pub use device::{ComputeDevice, cpu_device};
pub use matrix::{ColumnScaling, GeneExpression, Matrix};
pub use progress::{Cancelled, Progress};

/// Errors of the model layer; each names what it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("shape mismatch: {0}")]
    Shape(String),
    #[error("{0}")]
    Input(String),
    #[error("no GPU: {0}")]
    NoGpu(String),
    #[error("cancelled")]
    Cancelled,
}

impl From<Cancelled> for ModelError {
    fn from(_: Cancelled) -> Self {
        ModelError::Cancelled
    }
}
