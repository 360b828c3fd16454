//! Model files: a folder with `model.json` (format, version, kind, config, class names, the
//! feature pipeline, the training summary) and `weights.bpk` (burn's burnpack record). Loading
//! checks the format, version, kind and every tensor's shape, and names the file at fault.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::classifier::{FusionClassifier, FusionClassifierConfig};
use crate::contrastive::{ContrastiveConfig, ContrastiveModel};
use crate::metrics::ClassificationReport;
use crate::pipeline::FeaturePipeline;
use crate::train::TrainingSettings;

pub const FORMAT: &str = "cellsymphony-model";
pub const VERSION: u32 = 1;
pub const MANIFEST_FILE: &str = "model.json";
pub const WEIGHTS_FILE: &str = "weights.bpk";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    pub label_source: String,
    pub settings: TrainingSettings,
    pub report: ClassificationReport,
    pub epoch_losses: Vec<f64>,
    pub n_train: usize,
    pub n_validation: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContrastiveSummary {
    pub epoch_losses: Vec<f64>,
    pub retrieval_top1: f64,
    pub retrieval_chance: f64,
    pub retrieval_pool: usize,
    /// The k-means centroids of the morphology projection, one row per niche: cells of other
    /// samples are assigned to the nearest, so niche frequencies compare across a cohort (empty
    /// in folders written before they were kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub niche_centroids: Vec<Vec<f32>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelKind {
    Classifier {
        config: FusionClassifierConfig,
        class_names: Vec<String>,
        /// Boxed: the report and settings make it far larger than the other kind.
        training: Box<TrainingSummary>,
    },
    Contrastive {
        config: ContrastiveConfig,
        training: ContrastiveSummary,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelManifest {
    pub format: String,
    pub version: u32,
    #[serde(flatten)]
    pub kind: ModelKind,
    pub features: FeaturePipeline,
}

fn file_error(path: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::File {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn write_model(
    dir: &Path,
    manifest: &ModelManifest,
    save: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), ModelError> {
    std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e.to_string()))?;
    let weights = dir.join(WEIGHTS_FILE);
    save(&weights).map_err(|e| file_error(&weights, e))?;
    let json = serde_json::to_vec_pretty(manifest).map_err(|e| file_error(dir, e.to_string()))?;
    let path = dir.join(MANIFEST_FILE);
    cs_files::write_atomically(&path, &json).map_err(|e| file_error(&path, e.to_string()))
}

pub fn save_classifier(
    dir: &Path,
    model: &FusionClassifier,
    class_names: &[String],
    config: &FusionClassifierConfig,
    features: &FeaturePipeline,
    training: TrainingSummary,
) -> Result<(), ModelError> {
    let manifest = ModelManifest {
        format: FORMAT.into(),
        version: VERSION,
        kind: ModelKind::Classifier {
            config: config.clone(),
            class_names: class_names.to_vec(),
            training: Box::new(training),
        },
        features: features.clone(),
    };
    write_model(dir, &manifest, |path| {
        model.clone().save_file(path).map_err(|e| e.to_string())
    })
}

pub fn save_contrastive(
    dir: &Path,
    model: &ContrastiveModel,
    config: &ContrastiveConfig,
    features: &FeaturePipeline,
    training: ContrastiveSummary,
) -> Result<(), ModelError> {
    let manifest = ModelManifest {
        format: FORMAT.into(),
        version: VERSION,
        kind: ModelKind::Contrastive {
            config: config.clone(),
            training,
        },
        features: features.clone(),
    };
    write_model(dir, &manifest, |path| {
        model.clone().save_file(path).map_err(|e| e.to_string())
    })
}

/// Reads and checks `model.json` of a model folder (or the file itself).
pub fn read_manifest(path: &Path) -> Result<(PathBuf, ModelManifest), ModelError> {
    let (dir, manifest_path) = if path.is_dir() {
        (path.to_path_buf(), path.join(MANIFEST_FILE))
    } else {
        (
            path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            path.to_path_buf(),
        )
    };
    let bytes = std::fs::read(&manifest_path)
        .map_err(|e| file_error(&manifest_path, format!("cannot read the model description: {e}")))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| file_error(&manifest_path, format!("not valid JSON: {e}")))?;
    if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(file_error(
            &manifest_path,
            format!("not a CellSymphony model (\"format\" is not \"{FORMAT}\")"),
        ));
    }
    let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
    if version != u64::from(VERSION) {
        return Err(file_error(
            &manifest_path,
            format!("model format version {version}; this build reads version {VERSION}"),
        ));
    }
    let manifest: ModelManifest = serde_json::from_value(value)
        .map_err(|e| file_error(&manifest_path, format!("malformed model description: {e}")))?;
    Ok((dir, manifest))
}

fn check_gene_width(
    manifest_path: &Path,
    features: &FeaturePipeline,
    gene_dim: usize,
    morphology_dim: usize,
) -> Result<(), ModelError> {
    if features.gene_encoder.dim() != gene_dim {
        return Err(file_error(
            manifest_path,
            format!(
                "the {} gives {} features but the model takes {gene_dim}",
                features.gene_encoder.describe(),
                features.gene_encoder.dim()
            ),
        ));
    }
    let pipeline_morph = features.morphology.as_ref().map_or(0, |m| m.dim);
    if morphology_dim > 0 && pipeline_morph != morphology_dim {
        return Err(file_error(
            manifest_path,
            format!("the morphology encoder gives {pipeline_morph} features but the model takes {morphology_dim}"),
        ));
    }
    Ok(())
}

fn load_weights<M: Module>(dir: &Path, model: M) -> Result<M, ModelError> {
    let weights = dir.join(WEIGHTS_FILE);
    if !weights.is_file() {
        return Err(file_error(&weights, "the weights file is missing"));
    }
    model
        .try_load_file(&weights)
        .map_err(|e| file_error(&weights, format!("weights do not fit the model: {e}")))
}

pub struct LoadedClassifier {
    pub model: FusionClassifier,
    pub manifest: ModelManifest,
    pub config: FusionClassifierConfig,
    pub class_names: Vec<String>,
}

/// Loads a classifier folder onto `device`.
pub fn load_classifier(path: &Path, device: &Device) -> Result<LoadedClassifier, ModelError> {
    let (dir, manifest) = read_manifest(path)?;
    let manifest_path = dir.join(MANIFEST_FILE);
    let ModelKind::Classifier {
        config, class_names, ..
    } = &manifest.kind
    else {
        return Err(file_error(
            &manifest_path,
            "this is a contrastive model, not a classifier",
        ));
    };
    if class_names.len() != config.n_classes {
        return Err(file_error(
            &manifest_path,
            format!("{} class names for {} classes", class_names.len(), config.n_classes),
        ));
    }
    check_gene_width(
        &manifest_path,
        &manifest.features,
        config.gene_dim,
        config.morphology_dim,
    )?;
    let model = config
        .init(device)
        .map_err(|e| file_error(&manifest_path, e.to_string()))?;
    let model = load_weights(&dir, model)?;
    Ok(LoadedClassifier {
        model,
        config: config.clone(),
        class_names: class_names.clone(),
        manifest,
    })
}

pub struct LoadedContrastive {
    pub model: ContrastiveModel,
    pub manifest: ModelManifest,
    pub config: ContrastiveConfig,
}

pub fn load_contrastive(path: &Path, device: &Device) -> Result<LoadedContrastive, ModelError> {
    let (dir, manifest) = read_manifest(path)?;
    let manifest_path = dir.join(MANIFEST_FILE);
    let ModelKind::Contrastive { config, .. } = &manifest.kind else {
        return Err(file_error(
            &manifest_path,
            "this is a classifier, not a contrastive model",
        ));
    };
    check_gene_width(
        &manifest_path,
        &manifest.features,
        config.gene_dim,
        config.morphology_dim,
    )?;
    let model = config
        .init(device)
        .map_err(|e| file_error(&manifest_path, e.to_string()))?;
    let model = load_weights(&dir, model)?;
    Ok(LoadedContrastive {
        model,
        config: config.clone(),
        manifest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classifier::Variant;
    use crate::cpu_device;
    use crate::matrix::{ColumnScaling, GeneExpression, Matrix};
    use crate::pca::GenePca;

    fn pipeline(components: usize) -> FeaturePipeline {
        let values: Vec<f32> = (0..60).map(|i| ((i * 7919) % 13) as f32).collect();
        let m = Matrix::new(20, 3, values).unwrap();
        let expr = GeneExpression::from_dense(&m, vec!["a".into(), "b".into(), "c".into()]).unwrap();
        let gene_pca = GenePca::fit(&expr, components, 0).unwrap();
        let gene_scaling = ColumnScaling {
            mean: vec![0.0; components],
            std: vec![1.0; components],
        };
        FeaturePipeline {
            gene_encoder: crate::pipeline::GeneEncoder::Pca(gene_pca),
            gene_scaling,
            morphology: None,
        }
    }

    fn summary() -> TrainingSummary {
        TrainingSummary {
            label_source: "test".into(),
            settings: TrainingSettings::default(),
            report: ClassificationReport::from_pairs(&["a".into(), "b".into()], [(0, 0)]),
            epoch_losses: vec![1.0],
            n_train: 1,
            n_validation: 1,
        }
    }

    #[test]
    fn classifier_round_trips_and_bad_files_are_named() {
        let dir = std::env::temp_dir().join(format!("cs_models_file_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let device = cpu_device();
        let mut config = FusionClassifierConfig::new(Variant::Unimodal, 2, 0, 2);
        config.n_layers = 1;
        config.d_model = 8;
        config.n_heads = 2;
        config.d_ff = 16;
        let model = config.init(&device).unwrap();
        let names = vec!["a".to_string(), "b".to_string()];
        save_classifier(&dir, &model, &names, &config, &pipeline(2), summary()).unwrap();
        let loaded = load_classifier(&dir, &device).unwrap();
        assert_eq!(loaded.class_names, names);
        let x = burn::tensor::Tensor::<2>::from_floats([[0.5, -1.0]], &device);
        let a: Vec<f32> = model.forward(x.clone(), None, None).into_data().try_to_vec().unwrap();
        let b: Vec<f32> = loaded.model.forward(x, None, None).into_data().try_to_vec().unwrap();
        assert_eq!(a, b, "the loaded model computes the same logits");

        // Weights of another shape: the error names the weights file.
        let mut wide = config.clone();
        wide.d_model = 16;
        let other = wide.init(&device).unwrap();
        other.save_file(dir.join(WEIGHTS_FILE)).unwrap();
        let err = load_classifier(&dir, &device).err().unwrap().to_string();
        assert!(err.contains(WEIGHTS_FILE), "{err}");

        // Truncated weights.
        let bytes = std::fs::read(dir.join(WEIGHTS_FILE)).unwrap();
        std::fs::write(dir.join(WEIGHTS_FILE), &bytes[..bytes.len() / 2]).unwrap();
        assert!(load_classifier(&dir, &device).is_err());

        // A newer format version and garbage JSON.
        let manifest = std::fs::read_to_string(dir.join(MANIFEST_FILE)).unwrap();
        std::fs::write(
            dir.join(MANIFEST_FILE),
            manifest.replace("\"version\": 1", "\"version\": 9"),
        )
        .unwrap();
        let err = load_classifier(&dir, &device).err().unwrap().to_string();
        assert!(err.contains("version 9") && err.contains(MANIFEST_FILE), "{err}");
        std::fs::write(dir.join(MANIFEST_FILE), "{not json").unwrap();
        assert!(
            load_classifier(&dir, &device)
                .err()
                .unwrap()
                .to_string()
                .contains("not valid JSON")
        );
        assert!(load_contrastive(&dir.join("missing"), &device).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
