//! From a bundle's cells to model inputs: the per-cell inputs (ids, centroids, expression,
//! shapes), the fitted feature pipeline (gene PCA + scaling, morphology encoder + scaling) that
//! is stored with every model so new cells are encoded the same way, and the features it makes.

use cs_slide::SlideSource;
use serde::{Deserialize, Serialize};

use crate::matrix::{ColumnScaling, GeneExpression, Matrix};
use crate::morphology::{BuiltinMorphologyEncoder, CellShape, MorphologyEncoder, SlidePxFromWorld, encode_cells};
use crate::pca::GenePca;
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

/// The morphology encoder a pipeline names.
pub fn morphology_encoder(name: &str) -> Result<Box<dyn MorphologyEncoder>, ModelError> {
    match name {
        "builtin" => Ok(Box::new(BuiltinMorphologyEncoder)),
        other => Err(ModelError::Input(format!("unknown morphology encoder {other:?}"))),
    }
}

pub const GENE_COMPONENTS: usize = 50;

/// Fits the pipeline on `inputs` and returns it with their features. Morphology is computed
/// when `with_morphology` (from the slide when there is one, else from shapes alone).
pub fn fit_features(
    inputs: &CellInputs,
    slide: Option<SlideInput<'_>>,
    with_morphology: bool,
    seed: u64,
    progress: &Progress,
) -> Result<(FeaturePipeline, CellFeatures), ModelError> {
    inputs.validate()?;
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
    let (morphology_pipeline, morphology) = if with_morphology {
        let encoder = BuiltinMorphologyEncoder;
        let mut m = encode_morphology(inputs, slide, &encoder, progress)?;
        let scaling = ColumnScaling::fit(&m);
        scaling.apply(&mut m)?;
        let pipeline = MorphologyPipeline {
            encoder: encoder.name().to_string(),
            dim: encoder.dim(),
            with_slide: slide.is_some(),
            scaling,
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
    /// Features of new cells, encoded as the pipeline was fitted.
    pub fn apply(
        &self,
        inputs: &CellInputs,
        slide: Option<SlideInput<'_>>,
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
                let encoder = morphology_encoder(&pipeline.encoder)?;
                let slide = if pipeline.with_slide { slide } else { None };
                let mut m = encode_morphology(inputs, slide, encoder.as_ref(), progress)?;
                pipeline.scaling.apply(&mut m)?;
                Some(m)
            }
            None => None,
        };
        Ok(CellFeatures { genes, morphology })
    }
}
