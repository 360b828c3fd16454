//! From a bundle's cells to model inputs: the per-cell inputs (ids, centroids, expression,
//! shapes), the fitted feature pipeline (gene PCA + scaling, morphology encoder + scaling) that
//! is stored with every model so new cells are encoded the same way, and the features it makes.

use std::path::PathBuf;

use burn::tensor::Device;
use cs_slide::SlideSource;
use serde::{Deserialize, Serialize};

use crate::matrix::{ColumnScaling, GeneExpression, Matrix};
use crate::morphology::{BuiltinMorphologyEncoder, CellShape, MorphologyEncoder, SlidePxFromWorld, encode_cells};
use crate::pca::GenePca;
use crate::vit::{TokenReadout, VitEncoderSpec, VitMorphologyEncoder, VitPreset};
use crate::{ModelError, Progress};

/// Per-cell gene embeddings computed elsewhere (for example scGPT), rows aligned with the cells.
#[derive(Clone, Debug)]
pub struct ImportedEmbedding {
    /// The file they came from (for messages and the model description).
    pub source: String,
    pub columns: Vec<String>,
    pub values: Matrix,
}

/// What the models read about each cell, rows aligned.
#[derive(Clone, Debug)]
pub struct CellInputs {
    pub cell_ids: Vec<String>,
    pub centres_um: Vec<[f32; 2]>,
    pub expression: GeneExpression,
    pub shapes: Vec<CellShape>,
    /// When set, the gene modality is this embedding instead of the built-in PCA.
    pub gene_embedding: Option<ImportedEmbedding>,
}

impl CellInputs {
    pub fn n_cells(&self) -> usize {
        self.cell_ids.len()
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        let n = self.cell_ids.len();
        if self.centres_um.len() != n || self.expression.n_cells() != n || self.shapes.len() != n {
            return Err(ModelError::Shape(format!(
                "{n} cell ids, {} centres, {} expression rows, {} shapes",
                self.centres_um.len(),
                self.expression.n_cells(),
                self.shapes.len()
            )));
        }
        if let Some(cell) = self
            .centres_um
            .iter()
            .position(|c| !c[0].is_finite() || !c[1].is_finite())
        {
            return Err(ModelError::Input(format!(
                "cell {} has a NaN or infinite centroid",
                self.cell_ids[cell]
            )));
        }
        Ok(())
    }

    /// The cells at `rows`, in that order.
    pub fn subset(&self, rows: &[usize]) -> CellInputs {
        CellInputs {
            cell_ids: rows.iter().map(|&r| self.cell_ids[r].clone()).collect(),
            centres_um: rows.iter().map(|&r| self.centres_um[r]).collect(),
            expression: self.expression.select_cells(rows),
            shapes: rows.iter().map(|&r| self.shapes[r]).collect(),
            gene_embedding: self.gene_embedding.as_ref().map(|e| ImportedEmbedding {
                source: e.source.clone(),
                columns: e.columns.clone(),
                values: e.values.select_rows(rows),
            }),
        }
    }
}

/// The H&E slide the morphology is read from, and where it sits.
#[derive(Clone, Copy)]
pub struct SlideInput<'a> {
    pub slide: &'a dyn SlideSource,
    pub slide_px_from_world: SlidePxFromWorld,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MorphologyPipeline {
    pub encoder: String,
    pub dim: usize,
    /// Whether the encoder saw H&E patches when fitted (false: shapes only).
    pub with_slide: bool,
    pub scaling: ColumnScaling,
    /// The ViT and its weights file when the encoder is one (absent: the built-in encoder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vit: Option<VitEncoderSpec>,
}

impl MorphologyPipeline {
    /// Names of the feature columns (for tables and CSV headers).
    pub fn feature_names(&self) -> Vec<String> {
        match &self.vit {
            None if self.dim == BuiltinMorphologyEncoder.dim() => BuiltinMorphologyEncoder.feature_names(),
            _ => (0..self.dim).map(|i| format!("{}_{i}", self.encoder)).collect(),
        }
    }

    /// The encoder this pipeline was fitted with.
    pub fn choice(&self) -> MorphologyChoice {
        match &self.vit {
            Some(spec) => MorphologyChoice::Vit(spec.clone()),
            None => MorphologyChoice::Builtin,
        }
    }
}

/// The morphology encoder to fit with, as the user picks it.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum MorphologyChoice {
    /// Colour deconvolution, texture and shape features: no weights needed.
    #[default]
    Builtin,
    /// A ViT from a weights file the user has.
    Vit(VitEncoderSpec),
}

impl MorphologyChoice {
    /// From the command line's words: `builtin` or a ViT preset (`vit-s16`, `uni2-h`, ...),
    /// which then needs its weights file.
    pub fn parse(name: &str, weights: Option<PathBuf>, readout: TokenReadout) -> Result<Self, ModelError> {
        if name.eq_ignore_ascii_case("builtin") {
            if let Some(weights) = weights {
                return Err(ModelError::Input(format!(
                    "a weights file ({}) is for a ViT encoder: name its architecture too (vit-s16, vit-b16, vit-l16 or uni2-h)",
                    weights.display()
                )));
            }
            return Ok(MorphologyChoice::Builtin);
        }
        let preset: VitPreset = name
            .parse()
            .map_err(|e: String| ModelError::Input(format!("{e} (or builtin, which needs no weights)")))?;
        let weights = weights.ok_or_else(|| {
            ModelError::Input(format!(
                "{} needs its weights: give the .safetensors file saved from timm (nothing is downloaded)",
                preset.label()
            ))
        })?;
        // Stored absolute in model files, so a model predicts from any working folder.
        let weights = std::fs::canonicalize(&weights).map_err(|e| ModelError::File {
            path: weights.clone(),
            reason: format!("the {} weights file cannot be opened: {e}", preset.label()),
        })?;
        Ok(MorphologyChoice::Vit(VitEncoderSpec {
            preset,
            weights,
            readout,
        }))
    }

    /// The ViT (None for the built-in encoder).
    pub fn vit(&self) -> Option<&VitEncoderSpec> {
        match self {
            MorphologyChoice::Builtin => None,
            MorphologyChoice::Vit(spec) => Some(spec),
        }
    }

    /// The ViT's weights file (None for the built-in encoder).
    pub fn weights(&self) -> Option<&std::path::Path> {
        self.vit().map(|spec| spec.weights.as_path())
    }

    /// One line for messages and summaries: the encoder, its weights file and readout.
    pub fn describe(&self) -> String {
        match self {
            MorphologyChoice::Builtin => "built-in morphology (H&E deconvolution, texture, shape)".into(),
            MorphologyChoice::Vit(spec) => spec.describe(),
        }
    }

    /// Whether the encoder reads the H&E (a ViT has nothing to look at without it).
    pub fn needs_slide(&self) -> bool {
        self.vit().is_some()
    }

    /// Opens the encoder; a ViT's weights are loaded onto `device`.
    pub fn open(&self, device: &Device) -> Result<Box<dyn MorphologyEncoder>, ModelError> {
        Ok(match self {
            MorphologyChoice::Builtin => Box::new(BuiltinMorphologyEncoder),
            MorphologyChoice::Vit(spec) => Box::new(VitMorphologyEncoder::open(spec, device)?),
        })
    }
}

/// How the gene modality is made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GeneEncoder {
    /// The built-in encoder: PCA of log1p(CP10k).
    Pca(GenePca),
    /// Embeddings imported per cell (the columns, in order, must be given again to predict).
    Imported { source: String, columns: Vec<String> },
}

impl GeneEncoder {
    pub fn dim(&self) -> usize {
        match self {
            GeneEncoder::Pca(pca) => pca.n_components(),
            GeneEncoder::Imported { columns, .. } => columns.len(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            GeneEncoder::Pca(pca) => format!("gene PCA ({} components)", pca.n_components()),
            GeneEncoder::Imported { source, columns } => {
                format!("imported embedding {source} ({} columns)", columns.len())
            }
        }
    }
}

/// Fitted transforms from cells to features; saved with a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeaturePipeline {
    pub gene_encoder: GeneEncoder,
    pub gene_scaling: ColumnScaling,
    pub morphology: Option<MorphologyPipeline>,
}

/// Model-ready features, rows aligned with the inputs.
#[derive(Clone, Debug)]
pub struct CellFeatures {
    pub genes: Matrix,
    pub morphology: Option<Matrix>,
}

pub const GENE_COMPONENTS: usize = 50;

/// The gene modality alone (an AnnData reference, which has no positions or shapes): the gene
/// PCA fitted on the cells and scaled, as [`fit_features`] fits it for a bundle.
pub fn fit_gene_features(
    expression: &GeneExpression,
    seed: u64,
) -> Result<(FeaturePipeline, CellFeatures), ModelError> {
    let gene_pca = GenePca::fit(expression, GENE_COMPONENTS, seed)?;
    let mut genes = gene_pca.transform(expression)?;
    let gene_scaling = ColumnScaling::fit(&genes);
    gene_scaling.apply(&mut genes)?;
    Ok((
        FeaturePipeline {
            gene_encoder: GeneEncoder::Pca(gene_pca),
            gene_scaling,
            morphology: None,
        },
        CellFeatures {
            genes,
            morphology: None,
        },
    ))
}

/// Fits the pipeline on `inputs` and returns it with their features. Morphology is computed
/// when an encoder is given (from the slide when there is one, else from shapes alone, which
/// only the built-in encoder can do); a ViT runs on `device`.
pub fn fit_features(
    inputs: &CellInputs,
    slide: Option<SlideInput<'_>>,
    morphology: Option<&MorphologyChoice>,
    device: &Device,
    seed: u64,
    progress: &Progress,
) -> Result<(FeaturePipeline, CellFeatures), ModelError> {
    inputs.validate()?;
    if let Some(choice) = morphology
        && choice.needs_slide()
        && slide.is_none()
    {
        return Err(ModelError::Input(format!(
            "{} reads the H&E: open the slide (and its alignment) first, or use the built-in encoder",
            choice.describe()
        )));
    }
    // Open the encoder (a ViT loads its weights) before the gene PCA, so a wrong file is
    // reported at once.
    let encoder = morphology.map(|choice| choice.open(device)).transpose()?;
    let (gene_encoder, mut genes) = match &inputs.gene_embedding {
        Some(e) => (
            GeneEncoder::Imported {
                source: e.source.clone(),
                columns: e.columns.clone(),
            },
            e.values.clone(),
        ),
        None => {
            progress.report("Gene PCA", 0.0);
            let gene_pca = GenePca::fit(&inputs.expression, GENE_COMPONENTS, seed)?;
            progress.check()?;
            let genes = gene_pca.transform(&inputs.expression)?;
            (GeneEncoder::Pca(gene_pca), genes)
        }
    };
    let gene_scaling = ColumnScaling::fit(&genes);
    gene_scaling.apply(&mut genes)?;
    let (morphology_pipeline, morphology) = if let (Some(encoder), Some(choice)) = (encoder, morphology) {
        let mut m = encode_morphology(inputs, slide, encoder.as_ref(), progress)?;
        let scaling = ColumnScaling::fit(&m);
        scaling.apply(&mut m)?;
        let pipeline = MorphologyPipeline {
            encoder: encoder.name().to_string(),
            dim: encoder.dim(),
            with_slide: slide.is_some(),
            scaling,
            vit: choice.vit().cloned(),
        };
        (Some(pipeline), Some(m))
    } else {
        (None, None)
    };
    Ok((
        FeaturePipeline {
            gene_encoder,
            gene_scaling,
            morphology: morphology_pipeline,
        },
        CellFeatures { genes, morphology },
    ))
}

fn encode_morphology(
    inputs: &CellInputs,
    slide: Option<SlideInput<'_>>,
    encoder: &dyn MorphologyEncoder,
    progress: &Progress,
) -> Result<Matrix, ModelError> {
    encode_cells(
        slide.map(|s| (s.slide, s.slide_px_from_world)),
        &inputs.centres_um,
        &inputs.shapes,
        encoder,
        progress,
    )
}

impl FeaturePipeline {
    /// Features of new cells, encoded as the pipeline was fitted (a ViT runs on `device`).
    pub fn apply(
        &self,
        inputs: &CellInputs,
        slide: Option<SlideInput<'_>>,
        device: &Device,
        progress: &Progress,
    ) -> Result<CellFeatures, ModelError> {
        inputs.validate()?;
        let mut genes = match (&self.gene_encoder, &inputs.gene_embedding) {
            (GeneEncoder::Pca(pca), _) => pca.transform(&inputs.expression)?,
            (GeneEncoder::Imported { columns, source }, Some(e)) => {
                if &e.columns != columns {
                    return Err(ModelError::Input(format!(
                        "{}: the embedding columns differ from those the model was trained on ({source})",
                        e.source
                    )));
                }
                e.values.clone()
            }
            (GeneEncoder::Imported { source, .. }, None) => {
                return Err(ModelError::Input(format!(
                    "this model was trained on imported gene embeddings ({source}): give the embeddings of these cells"
                )));
            }
        };
        self.gene_scaling.apply(&mut genes)?;
        let morphology = match &self.morphology {
            Some(pipeline) => {
                if pipeline.with_slide && slide.is_none() {
                    return Err(ModelError::Input(
                        "this model was trained with H&E morphology: open the slide (and its alignment) first".into(),
                    ));
                }
                let encoder = pipeline.choice().open(device)?;
                if encoder.name() != pipeline.encoder || encoder.dim() != pipeline.dim {
                    return Err(ModelError::Input(format!(
                        "the model's morphology encoder was {} with {} features; {} gives {}",
                        pipeline.encoder,
                        pipeline.dim,
                        encoder.name(),
                        encoder.dim()
                    )));
                }
                let slide = if pipeline.with_slide { slide } else { None };
                let mut m = encode_morphology(inputs, slide, encoder.as_ref(), progress)?;
                pipeline.scaling.apply(&mut m)?;
                Some(m)
            }
            None => None,
        };
        Ok(CellFeatures { genes, morphology })
    }

    /// Points a ViT pipeline at its weights file's new place (the model moved to another
    /// machine); refused for pipelines without a ViT.
    pub fn relocate_vit_weights(&mut self, weights: PathBuf) -> Result<(), ModelError> {
        match self.morphology.as_mut().and_then(|m| m.vit.as_mut()) {
            Some(spec) => {
                spec.weights = weights;
                Ok(())
            }
            None => Err(ModelError::Input(
                "this model has no ViT morphology encoder, so it takes no weights file".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin_pipeline() -> MorphologyPipeline {
        MorphologyPipeline {
            encoder: BuiltinMorphologyEncoder.name().into(),
            dim: BuiltinMorphologyEncoder.dim(),
            with_slide: true,
            scaling: ColumnScaling {
                mean: vec![0.0; BuiltinMorphologyEncoder.dim()],
                std: vec![1.0; BuiltinMorphologyEncoder.dim()],
            },
            vit: None,
        }
    }

    #[test]
    fn pipelines_saved_before_vit_encoders_still_load() {
        let builtin = builtin_pipeline();
        let json = serde_json::to_value(&builtin).unwrap();
        assert!(json.get("vit").is_none(), "{json}");
        let back: MorphologyPipeline = serde_json::from_value(json).unwrap();
        assert_eq!(back.choice(), MorphologyChoice::Builtin);
        assert_eq!(back.feature_names(), BuiltinMorphologyEncoder.feature_names());

        let spec = VitEncoderSpec {
            preset: VitPreset::Uni2H,
            weights: PathBuf::from("/weights/uni2.safetensors"),
            readout: TokenReadout::NucleusTokens { k: 9 },
        };
        let vit = MorphologyPipeline {
            encoder: "uni2_h".into(),
            dim: 1536,
            vit: Some(spec.clone()),
            ..builtin
        };
        let back: MorphologyPipeline = serde_json::from_str(&serde_json::to_string(&vit).unwrap()).unwrap();
        assert_eq!(back.choice(), MorphologyChoice::Vit(spec));
        assert_eq!(back.feature_names()[1535], "uni2_h_1535");
    }

    #[test]
    fn encoder_choices_are_parsed_with_reasons() {
        let readout = TokenReadout::default();
        assert_eq!(
            MorphologyChoice::parse("builtin", None, readout).unwrap(),
            MorphologyChoice::Builtin
        );
        let message = MorphologyChoice::parse("vit-l16", None, readout)
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains("needs its weights"), "{message}");
        let message = MorphologyChoice::parse("resnet", None, readout)
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains("uni2-h") && message.contains("builtin"), "{message}");
        let missing = PathBuf::from("/no/such/uni.safetensors");
        let message = MorphologyChoice::parse("vit-l16", Some(missing.clone()), readout)
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains("/no/such/uni.safetensors"), "{message}");
        let message = MorphologyChoice::parse("builtin", Some(missing), readout)
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains("name its architecture"), "{message}");
    }
}
