//! The CellSymphony fusion classifier: each input (gene embedding, morphology embedding, a
//! sinusoidal x,y token) is projected to a shared width and tagged with a modality embedding; a
//! transformer encoder fuses the tokens; the mean of its outputs goes through a linear head.

use burn::module::Module;
use burn::nn::transformer::{TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput};
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::matrix::Matrix;

/// Which inputs the classifier fuses (the paper's four variants).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Variant {
    /// Gene embedding only.
    Unimodal,
    /// Gene embedding + sinusoidal x,y token.
    Spatial,
    /// Gene + morphology embeddings, each tagged with a modality embedding (the paper's best).
    DualModality,
    /// Gene + morphology + x,y token.
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
            Variant::MultiInput => "multi-input (genes + morphology + x,y)",
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
        }
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::Input(m));
        if self.gene_dim == 0 {
            return bad("the classifier needs at least one gene feature".into());
        }
        if self.variant.uses_morphology() && self.morphology_dim == 0 {
            return bad(format!(
                "the {} variant needs morphology features",
                self.variant.label()
            ));
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
        let n_tokens = 1 + usize::from(self.variant.uses_morphology()) + usize::from(self.variant.uses_position());
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
            modality_embedding: EmbeddingConfig::new(n_tokens, d).init(device),
            encoder: TransformerEncoderConfig::new(d, self.d_ff, self.n_heads, self.n_layers)
                .with_dropout(self.dropout)
                .with_norm_first(true)
                .init(device),
            head: LinearConfig::new(d, self.n_classes).init(device),
            n_tokens,
            d_model: d,
            position_scale_um: self.position_scale_um,
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
    encoder: TransformerEncoder,
    head: Linear,
    #[module(skip)]
    n_tokens: usize,
    #[module(skip)]
    d_model: usize,
    #[module(skip)]
    position_scale_um: f32,
}

/// One batch of inputs, rows aligned: the classifier uses what its variant needs.
pub struct ClassifierInput<'a> {
    pub genes: &'a Matrix,
    pub morphology: Option<&'a Matrix>,
    /// Cell centroids in µm (world space), one row of (x, y) per cell.
    pub positions_um: Option<&'a [[f32; 2]]>,
}

impl FusionClassifier {
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
        Ok(self.forward(genes, morphology, position))
    }

    /// genes `[batch, gene_dim]`, morphology `[batch, morphology_dim]`, position encodings
    /// `[batch, d_model]` -> logits `[batch, n_classes]`.
    pub fn forward(&self, genes: Tensor<2>, morphology: Option<Tensor<2>>, position: Option<Tensor<2>>) -> Tensor<2> {
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
        let tagged = tokens + self.modality_embedding.forward(ids); // broadcast over the batch
        let fused = self.encoder.forward(TransformerEncoderInput::new(tagged));
        let pooled: Tensor<2> = fused.mean_dim(1).squeeze_dim(1);
        self.head.forward(pooled)
    }

    pub fn n_tokens(&self) -> usize {
        self.n_tokens
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
        let input = ClassifierInput {
            genes: &genes,
            morphology: Some(&morph),
            positions_um: Some(&positions),
        };
        for variant in Variant::ALL {
            let mut config = FusionClassifierConfig::new(variant, 3, 2, 4);
            config.n_layers = 2;
            let model = config.init(&device).unwrap();
            assert_eq!(
                model.n_tokens(),
                1 + usize::from(variant.uses_morphology()) + usize::from(variant.uses_position())
            );
            let logits = model.forward_rows(&input, &[0, 2, 4], &device).unwrap();
            assert_eq!(logits.dims(), [3, 4], "{variant:?}");
            let values: Vec<f32> = logits.into_data().try_to_vec().unwrap();
            assert!(values.iter().all(|v| v.is_finite()));
        }
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
