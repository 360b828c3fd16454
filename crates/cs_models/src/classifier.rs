//! The CellSymphony fusion classifier: each input (gene embedding, morphology embedding, a
//! sinusoidal x,y token) is projected to a shared width and tagged with a modality embedding; a
//! transformer encoder fuses the tokens; the mean of its outputs goes through a linear head.
//! The multi-input variant also takes one token per nearest neighbouring cell and fuses with
//! relative-position attention ([`crate::relative_attention`]).
//!
//! A linear shortcut from the cell's own gene (and morphology) features to the logits runs beside
//! the transformer (wide and deep, as Cheng et al. 2016): the model holds a logistic regression
//! on its inputs as a special case, so it need not be worse than one. Without it, on the hard
//! synthetic benchmark's 2,500 cells the transformer alone trailed logistic regression on the
//! genes by 0.03 macro-F1.

use burn::module::Module;
use burn::nn::transformer::{TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput};
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

use crate::ModelError;
use crate::matrix::Matrix;
use crate::relative_attention::{AttentionContext, NeighbourTable, RelativeEncoder};

/// Neighbouring cells a multi-input classifier sees by default.
pub const DEFAULT_NEIGHBOURS: usize = 6;

/// Which inputs the classifier fuses (the paper's four variants).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Variant {
    /// Gene embedding only.
    Unimodal,
    /// Gene embedding + sinusoidal x,y token.
    Spatial,
    /// Gene + morphology embeddings, each tagged with a modality embedding (the paper's best).
    DualModality,
    /// Gene + morphology + x,y token, plus a token per nearest neighbouring cell, fused with
    /// relative-position (distance-biased) attention.
    MultiInput,
}

impl Variant {
    pub const ALL: [Variant; 4] = [
        Variant::Unimodal,
        Variant::Spatial,
        Variant::DualModality,
        Variant::MultiInput,
    ];

    pub fn uses_morphology(self) -> bool {
        matches!(self, Variant::DualModality | Variant::MultiInput)
    }

    pub fn uses_position(self) -> bool {
        matches!(self, Variant::Spatial | Variant::MultiInput)
    }

    pub fn label(self) -> &'static str {
        match self {
            Variant::Unimodal => "unimodal (genes)",
            Variant::Spatial => "spatial (genes + x,y)",
            Variant::DualModality => "dual-modality (genes + morphology)",
            Variant::MultiInput => "multi-input (genes + morphology + x,y + neighbours)",
        }
    }
}

impl std::str::FromStr for Variant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "unimodal" => Ok(Variant::Unimodal),
            "spatial" => Ok(Variant::Spatial),
            "dual" | "dual-modality" => Ok(Variant::DualModality),
            "multi" | "multi-input" => Ok(Variant::MultiInput),
            other => Err(format!(
                "unknown variant {other:?}: use unimodal, spatial, dual or multi"
            )),
        }
    }
}

/// Shape and size of a fusion classifier; stored as JSON next to its weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FusionClassifierConfig {
    pub variant: Variant,
    pub gene_dim: usize,
    /// 0 when the variant uses no morphology.
    pub morphology_dim: usize,
    pub n_classes: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub n_layers: usize,
    pub d_ff: usize,
    pub dropout: f64,
    /// Wavelength scale of the x,y encoding in µm: the longest wavelength is about 2π times this.
    pub position_scale_um: f32,
    /// Nearest neighbouring cells a multi-input classifier attends over (0 for other variants;
    /// absent in multi-input models from before relative-position attention, which must be
    /// trained again).
    #[serde(default)]
    pub neighbours: usize,
    /// Divides the logits before the softmax: fitted after training so that confidences are
    /// calibrated ([`crate::calibration`]); 1 in models saved before calibration.
    #[serde(default = "unit_temperature")]
    pub temperature: f32,
    /// The linear shortcut from the features to the logits (absent in models saved before it).
    #[serde(default)]
    pub linear_shortcut: bool,
}

fn unit_temperature() -> f32 {
    1.0
}

impl FusionClassifierConfig {
    pub fn new(variant: Variant, gene_dim: usize, morphology_dim: usize, n_classes: usize) -> Self {
        Self {
            variant,
            gene_dim,
            morphology_dim: if variant.uses_morphology() { morphology_dim } else { 0 },
            n_classes,
            d_model: 64,
            n_heads: 4,
            n_layers: 6,
            d_ff: 128,
            dropout: 0.1,
            position_scale_um: 1000.0,
            neighbours: if variant == Variant::MultiInput {
                DEFAULT_NEIGHBOURS
            } else {
                0
            },
            temperature: 1.0,
            linear_shortcut: true,
        }
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::Input(m));
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return bad(format!("temperature {}: must be a positive number", self.temperature));
        }
        if self.gene_dim == 0 {
            return bad("the classifier needs at least one gene feature".into());
        }
        if self.variant.uses_morphology() && self.morphology_dim == 0 {
            return bad(format!(
                "the {} variant needs morphology features",
                self.variant.label()
            ));
        }
        if self.variant == Variant::MultiInput && self.neighbours == 0 {
            return bad(
                "a multi-input classifier needs at least one neighbour; a multi-input model \
                 saved before relative-position attention has none: train it again"
                    .into(),
            );
        }
        if self.n_classes < 2 {
            return bad(format!("need at least 2 classes, got {}", self.n_classes));
        }
        if self.d_model == 0 || !self.d_model.is_multiple_of(self.n_heads.max(1)) || !self.d_model.is_multiple_of(4) {
            return bad(format!(
                "d_model {} must be a multiple of 4 and of n_heads {}",
                self.d_model, self.n_heads
            ));
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> Result<FusionClassifier, ModelError> {
        self.validate()?;
        let d = self.d_model;
        let own_tokens = 1 + usize::from(self.variant.uses_morphology()) + usize::from(self.variant.uses_position());
        let relative = self.variant == Variant::MultiInput;
        // Multi-input tags its neighbour tokens with one more modality.
        let modalities = own_tokens + usize::from(relative);
        Ok(FusionClassifier {
            gene_projection: LinearConfig::new(self.gene_dim, d).init(device),
            morphology_projection: self
                .variant
                .uses_morphology()
                .then(|| LinearConfig::new(self.morphology_dim, d).init(device)),
            position_projection: self
                .variant
                .uses_position()
                .then(|| LinearConfig::new(d, d).init(device)),
            modality_embedding: EmbeddingConfig::new(modalities, d).init(device),
            encoder: (!relative).then(|| {
                TransformerEncoderConfig::new(d, self.d_ff, self.n_heads, self.n_layers)
                    .with_dropout(self.dropout)
                    .with_norm_first(true)
                    .init(device)
            }),
            relative_encoder: relative
                .then(|| RelativeEncoder::new(d, self.d_ff, self.n_heads, self.n_layers, self.dropout, device)),
            head: LinearConfig::new(d, self.n_classes).init(device),
            shortcut: self
                .linear_shortcut
                .then(|| LinearConfig::new(self.gene_dim + self.morphology_dim, self.n_classes).init(device)),
            n_tokens: own_tokens + if relative { self.neighbours } else { 0 },
            neighbours: if relative { self.neighbours } else { 0 },
            d_model: d,
            position_scale_um: self.position_scale_um,
            temperature: self.temperature,
        })
    }
}

/// The classifier; see the module docs.
#[derive(Module, Debug)]
pub struct FusionClassifier {
    gene_projection: Linear,
    morphology_projection: Option<Linear>,
    position_projection: Option<Linear>,
    modality_embedding: Embedding,
    /// The fusing encoder of the unimodal, spatial and dual-modality variants.
    encoder: Option<TransformerEncoder>,
    /// The multi-input variant's distance-biased encoder.
    relative_encoder: Option<RelativeEncoder>,
    head: Linear,
    /// Features to logits, beside the transformer (see the module docs).
    shortcut: Option<Linear>,
    #[module(skip)]
    n_tokens: usize,
    #[module(skip)]
    neighbours: usize,
    #[module(skip)]
    d_model: usize,
    #[module(skip)]
    position_scale_um: f32,
    #[module(skip)]
    temperature: f32,
}

/// The classifier's inputs, rows aligned: the classifier uses what its variant needs.
pub struct ClassifierInput<'a> {
    pub genes: &'a Matrix,
    pub morphology: Option<&'a Matrix>,
    /// Cell centroids in µm (world space), one row of (x, y) per cell.
    pub positions_um: Option<&'a [[f32; 2]]>,
    /// Each cell's nearest cells among these rows, found once for the first multi-input model.
    neighbours: OnceLock<Result<NeighbourTable, String>>,
}

impl<'a> ClassifierInput<'a> {
    pub fn new(genes: &'a Matrix, morphology: Option<&'a Matrix>, positions_um: Option<&'a [[f32; 2]]>) -> Self {
        Self {
            genes,
            morphology,
            positions_um,
            neighbours: OnceLock::new(),
        }
    }

    /// The `k` nearest cells of every row (computed on first use).
    fn neighbours(&self, k: usize) -> Result<std::borrow::Cow<'_, NeighbourTable>, ModelError> {
        let positions = self
            .positions_um
            .ok_or_else(|| ModelError::Input("this classifier needs cell positions".into()))?;
        let table = self
            .neighbours
            .get_or_init(|| NeighbourTable::nearest(positions, k).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| ModelError::Input(e.clone()))?;
        if table.k == k {
            Ok(std::borrow::Cow::Borrowed(table))
        } else {
            Ok(std::borrow::Cow::Owned(NeighbourTable::nearest(positions, k)?))
        }
    }
}

impl FusionClassifier {
    /// What the logits are divided by before the softmax (1: uncalibrated).
    pub fn temperature(&self) -> f32 {
        self.temperature
    }

    pub fn set_temperature(&mut self, temperature: f32) {
        self.temperature = temperature;
    }

    /// Logits `[batch, n_classes]` for the rows `rows` of the inputs.
    pub fn forward_rows(
        &self,
        input: &ClassifierInput<'_>,
        rows: &[usize],
        device: &Device,
    ) -> Result<Tensor<2>, ModelError> {
        let genes = matrix_rows_tensor(input.genes, rows, device);
        let morphology = match (&self.morphology_projection, input.morphology) {
            (Some(_), Some(m)) => Some(matrix_rows_tensor(m, rows, device)),
            (Some(_), None) => return Err(ModelError::Input("this classifier needs morphology features".into())),
            (None, _) => None,
        };
        let position = match (&self.position_projection, input.positions_um) {
            (Some(_), Some(p)) => {
                let enc = sinusoidal_positions(rows.iter().map(|&r| p[r]), self.d_model, self.position_scale_um);
                Some(Tensor::<2>::from_data(
                    TensorData::new(enc, [rows.len(), self.d_model]),
                    device,
                ))
            }
            (Some(_), None) => return Err(ModelError::Input("this classifier needs cell positions".into())),
            (None, _) => None,
        };
        let shortcut = self.shortcut_logits(&genes, morphology.as_ref());
        let tokens = self.own_tokens(genes, morphology, position);
        let Some(relative_encoder) = &self.relative_encoder else {
            return Ok(with_shortcut(self.fuse(tokens), shortcut));
        };
        // Multi-input: one token per neighbour (its genes and morphology, projected and summed,
        // tagged as a neighbour), attended over with the distance between cells as a bias.
        let k = self.neighbours;
        let table = input.neighbours(k)?;
        let (Some(positions), Some(morphology_projection), Some(morphology)) =
            (input.positions_um, &self.morphology_projection, input.morphology)
        else {
            return Err(ModelError::Input(
                "the multi-input classifier needs morphology features and cell positions".into(),
            ));
        };
        let mut neighbour_rows = Vec::with_capacity(rows.len() * k);
        let mut offsets_um = Vec::with_capacity(rows.len());
        for &r in rows {
            let [x, y] = positions[r];
            let found = table.of(r);
            // Empty slots take the cell's own row; the attention mask hides them.
            neighbour_rows.extend(found.iter().map(|n| n.map_or(r, |n| n as usize)));
            offsets_um.push(
                found
                    .iter()
                    .map(|n| n.map(|n| [positions[n as usize][0] - x, positions[n as usize][1] - y]))
                    .collect::<Vec<_>>(),
            );
        }
        let batch = rows.len();
        let d = self.d_model;
        let neighbour_tokens = (self
            .gene_projection
            .forward(matrix_rows_tensor(input.genes, &neighbour_rows, device))
            + morphology_projection.forward(matrix_rows_tensor(morphology, &neighbour_rows, device)))
        .reshape([batch, k, d]);
        let own = tokens.dims()[1];
        let neighbour_id = Tensor::<2, Int>::from_data(TensorData::new(vec![own as i64], [1, 1]), device);
        let neighbour_tokens = neighbour_tokens + self.modality_embedding.forward(neighbour_id);
        let context = AttentionContext::new(own, &offsets_um, device);
        let fused = relative_encoder.forward(Tensor::cat(vec![tokens, neighbour_tokens], 1), &context);
        Ok(with_shortcut(self.head.forward(context.mean_pool(fused)), shortcut))
    }

    /// genes `[batch, gene_dim]`, morphology `[batch, morphology_dim]`, position encodings
    /// `[batch, d_model]` -> logits `[batch, n_classes]` (variants without neighbours).
    pub fn forward(&self, genes: Tensor<2>, morphology: Option<Tensor<2>>, position: Option<Tensor<2>>) -> Tensor<2> {
        let shortcut = self.shortcut_logits(&genes, morphology.as_ref());
        let tokens = self.own_tokens(genes, morphology, position);
        with_shortcut(self.fuse(tokens), shortcut)
    }

    /// The linear shortcut's logits from the cell's own features (None without one).
    fn shortcut_logits(&self, genes: &Tensor<2>, morphology: Option<&Tensor<2>>) -> Option<Tensor<2>> {
        let shortcut = self.shortcut.as_ref()?;
        let features = match morphology {
            Some(m) if self.morphology_projection.is_some() => Tensor::cat(vec![genes.clone(), m.clone()], 1),
            _ => genes.clone(),
        };
        Some(shortcut.forward(features))
    }

    /// The cell's own tokens, projected and tagged with their modality: [batch, tokens, d].
    fn own_tokens(&self, genes: Tensor<2>, morphology: Option<Tensor<2>>, position: Option<Tensor<2>>) -> Tensor<3> {
        let device = genes.device();
        let mut tokens = vec![self.gene_projection.forward(genes)];
        if let (Some(proj), Some(m)) = (&self.morphology_projection, morphology) {
            tokens.push(proj.forward(m));
        }
        if let (Some(proj), Some(p)) = (&self.position_projection, position) {
            tokens.push(proj.forward(p));
        }
        let n_tokens = tokens.len();
        let tokens: Tensor<3> = Tensor::stack(tokens, 1); // [batch, tokens, d]
        let ids: Vec<i64> = (0..n_tokens as i64).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, n_tokens]), &device);
        tokens + self.modality_embedding.forward(ids) // broadcast over the batch
    }

    /// The plain encoder, mean pool and head.
    fn fuse(&self, tokens: Tensor<3>) -> Tensor<2> {
        let fused = match &self.encoder {
            Some(encoder) => encoder.forward(TransformerEncoderInput::new(tokens)),
            None => tokens,
        };
        let pooled: Tensor<2> = fused.mean_dim(1).squeeze_dim(1);
        self.head.forward(pooled)
    }

    pub fn n_tokens(&self) -> usize {
        self.n_tokens
    }
}

fn with_shortcut(logits: Tensor<2>, shortcut: Option<Tensor<2>>) -> Tensor<2> {
    match shortcut {
        Some(s) => logits + s,
        None => logits,
    }
}

/// Rows of a matrix as a `[rows, cols]` tensor.
pub(crate) fn matrix_rows_tensor(matrix: &Matrix, rows: &[usize], device: &Device) -> Tensor<2> {
    let mut values = Vec::with_capacity(rows.len() * matrix.cols);
    for &r in rows {
        values.extend_from_slice(matrix.row(r));
    }
    Tensor::from_data(TensorData::new(values, [rows.len(), matrix.cols]), device)
}

/// Transformer-style sinusoidal encoding of (x, y) in µm: the first half of the width encodes x,
/// the second y, each as sin/cos pairs over geometric wavelengths.
pub fn sinusoidal_positions(positions_um: impl Iterator<Item = [f32; 2]>, width: usize, scale_um: f32) -> Vec<f32> {
    let half = width / 2;
    let pairs = half / 2;
    let mut out = Vec::new();
    for [x, y] in positions_um {
        for coord in [x, y] {
            for i in 0..pairs {
                let freq = 1.0 / (scale_um * 10_000f32.powf(-(i as f32) / pairs as f32));
                let angle = coord * freq;
                out.push(angle.sin());
                out.push(angle.cos());
            }
            out.extend(std::iter::repeat_n(0.0, half - 2 * pairs));
        }
        out.extend(std::iter::repeat_n(0.0, width - 2 * half));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_device;

    #[test]
    fn every_variant_gives_one_row_of_logits_per_cell() {
        let device = cpu_device();
        let genes = Matrix::new(5, 3, (0..15).map(|v| v as f32 * 0.1).collect()).unwrap();
        let morph = Matrix::new(5, 2, (0..10).map(|v| v as f32 * -0.1).collect()).unwrap();
        let positions: Vec<[f32; 2]> = (0..5).map(|i| [i as f32 * 10.0, 3.0]).collect();
        let input = ClassifierInput::new(&genes, Some(&morph), Some(&positions));
        for variant in Variant::ALL {
            let mut config = FusionClassifierConfig::new(variant, 3, 2, 4);
            config.n_layers = 2;
            let model = config.init(&device).unwrap();
            assert_eq!(
                model.n_tokens(),
                1 + usize::from(variant.uses_morphology())
                    + usize::from(variant.uses_position())
                    + if variant == Variant::MultiInput {
                        DEFAULT_NEIGHBOURS
                    } else {
                        0
                    }
            );
            let logits = model.forward_rows(&input, &[0, 2, 4], &device).unwrap();
            assert_eq!(logits.dims(), [3, 4], "{variant:?}");
            let values: Vec<f32> = logits.into_data().try_to_vec().unwrap();
            assert!(values.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn multi_input_sees_its_neighbours_and_its_weights_round_trip() {
        let device = cpu_device();
        let genes = Matrix::new(6, 2, (0..12).map(|v| (v as f32 * 0.7).sin()).collect()).unwrap();
        let morph = Matrix::new(6, 2, (0..12).map(|v| (v as f32 * 0.3).cos()).collect()).unwrap();
        let positions: Vec<[f32; 2]> = (0..6).map(|i| [i as f32 * 5.0, 0.0]).collect();
        let mut config = FusionClassifierConfig::new(Variant::MultiInput, 2, 2, 3);
        (
            config.n_layers,
            config.d_model,
            config.d_ff,
            config.neighbours,
            config.dropout,
        ) = (2, 8, 16, 2, 0.0);
        let model = config.init(&device).unwrap();
        let input = ClassifierInput::new(&genes, Some(&morph), Some(&positions));
        let logits = |model: &FusionClassifier, input: &ClassifierInput<'_>| -> Vec<f32> {
            model
                .forward_rows(input, &[0, 3], &device)
                .unwrap()
                .into_data()
                .try_to_vec()
                .unwrap()
        };
        let before = logits(&model, &input);
        // A neighbour's genes change cell 3's logits (cells 2 and 4 are its neighbours), not
        // those of cell 0 (neighbours 1 and 2).
        let mut other_genes = genes.clone();
        other_genes.row_mut(4).copy_from_slice(&[3.0, -3.0]);
        let changed = logits(
            &model,
            &ClassifierInput::new(&other_genes, Some(&morph), Some(&positions)),
        );
        assert!(before[..3].iter().zip(&changed[..3]).all(|(a, b)| (a - b).abs() < 1e-6));
        assert!(before[3..].iter().zip(&changed[3..]).any(|(a, b)| (a - b).abs() > 1e-5));

        let path = std::env::temp_dir().join(format!("cs_models_multi_{}.bpk", std::process::id()));
        model.clone().save_file(&path).unwrap();
        let loaded = config.init(&device).unwrap().try_load_file(&path).unwrap();
        assert_eq!(logits(&loaded, &input), before);
        // Weights of a dual-modality model do not fit a multi-input one.
        let dual = FusionClassifierConfig {
            variant: Variant::DualModality,
            neighbours: 0,
            ..config.clone()
        };
        dual.init(&device).unwrap().save_file(&path).unwrap();
        assert!(config.init(&device).unwrap().try_load_file(&path).is_err());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn position_encoding_is_bounded_and_distinguishes_nearby_cells() {
        let enc = sinusoidal_positions([[0.0, 0.0], [10.0, 0.0]].into_iter(), 16, 1000.0);
        assert_eq!(enc.len(), 32);
        assert!(enc.iter().all(|v| v.abs() <= 1.0));
        assert!(enc[..16].iter().zip(&enc[16..]).any(|(a, b)| (a - b).abs() > 1e-3));
    }

    #[test]
    fn configs_are_checked() {
        assert!(
            FusionClassifierConfig::new(Variant::DualModality, 3, 0, 4)
                .validate()
                .is_err()
        );
        assert!(
            FusionClassifierConfig::new(Variant::Unimodal, 3, 0, 1)
                .validate()
                .is_err()
        );
        let mut c = FusionClassifierConfig::new(Variant::Unimodal, 3, 0, 3);
        c.n_heads = 5;
        assert!(c.validate().is_err());
    }
}
