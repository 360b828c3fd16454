//! timm-compatible Vision Transformers as morphology encoders: ViT-S/16, ViT-B/16, ViT-L/16 and
//! UNI2-h (ViT-H/14 with 8 register tokens, a SwiGLU MLP and layer scale), loaded from
//! user-supplied `.safetensors` weights saved from timm's `VisionTransformer` (nothing is
//! downloaded). The forward pass follows timm's `forward_features` (patch embedding, class and
//! register tokens, the position table with or without the prefix tokens, pre-norm blocks, final
//! norm) and matches it within 1e-4 (`tests/reference/vit_reference.py`). A cell's embedding is
//! the class token or, as in the paper, the mean of the `k` patch tokens nearest the nucleus,
//! which sits at the centre of every patch.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use burn::tensor::activation::{gelu, silu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::morphology::{BlockImage, CellShape, FOUNDATION_PATCH, MorphologyEncoder, PatchGeometry, PatchSampling};
use crate::rng::SeededRng;
use crate::safetensors::SafeTensors;

/// ImageNet normalisation, which timm's ViTs and UNI use.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// timm's ViT LayerNorm epsilon.
const NORM_EPS: f64 = 1e-6;
/// Patches per forward pass.
const BATCH: usize = 32;

/// The feed-forward block of a transformer layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VitMlp {
    /// fc1 → GELU (erf) → fc2; `hidden` is fc1's width.
    Gelu { hidden: usize },
    /// timm's `SwiGLUPacked`: fc1 to twice `hidden`, SiLU(first half) × second half → fc2.
    SwiGlu { hidden: usize },
}

/// The architecture of a ViT. Register tokens, layer scale and whether the position table
/// covers the prefix tokens are read from the weights file when it is loaded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VitConfig {
    pub img_size: usize,
    pub patch_size: usize,
    pub embed_dim: usize,
    pub depth: usize,
    pub num_heads: usize,
    pub mlp: VitMlp,
    pub reg_tokens: usize,
    pub layer_scale: bool,
    /// timm's `no_embed_class = False`: the table has a row per prefix token too.
    pub pos_embed_covers_prefix: bool,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl VitConfig {
    pub fn grid(&self) -> usize {
        self.img_size / self.patch_size
    }

    pub fn n_patches(&self) -> usize {
        self.grid() * self.grid()
    }

    /// Class token plus register tokens.
    pub fn n_prefix(&self) -> usize {
        1 + self.reg_tokens
    }

    pub fn n_tokens(&self) -> usize {
        self.n_prefix() + self.n_patches()
    }

    /// The tensors of this architecture in a timm `state_dict`, by name, with their shapes.
    pub fn timm_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let (d, p) = (self.embed_dim, self.patch_size);
        let pos_rows = if self.pos_embed_covers_prefix {
            self.n_tokens()
        } else {
            self.n_patches()
        };
        let mut tensors = vec![
            ("cls_token".to_string(), vec![1, 1, d]),
            ("pos_embed".to_string(), vec![1, pos_rows, d]),
            ("patch_embed.proj.weight".to_string(), vec![d, 3, p, p]),
            ("patch_embed.proj.bias".to_string(), vec![d]),
        ];
        if self.reg_tokens > 0 {
            tensors.push(("reg_token".to_string(), vec![1, self.reg_tokens, d]));
        }
        let (fc1_out, fc2_in) = match self.mlp {
            VitMlp::Gelu { hidden } => (hidden, hidden),
            VitMlp::SwiGlu { hidden } => (2 * hidden, hidden),
        };
        for i in 0..self.depth {
            let mut add = |name: &str, shape: Vec<usize>| tensors.push((format!("blocks.{i}.{name}"), shape));
            for norm in ["norm1", "norm2"] {
                add(&format!("{norm}.weight"), vec![d]);
                add(&format!("{norm}.bias"), vec![d]);
            }
            add("attn.qkv.weight", vec![3 * d, d]);
            add("attn.qkv.bias", vec![3 * d]);
            add("attn.proj.weight", vec![d, d]);
            add("attn.proj.bias", vec![d]);
            add("mlp.fc1.weight", vec![fc1_out, d]);
            add("mlp.fc1.bias", vec![fc1_out]);
            add("mlp.fc2.weight", vec![d, fc2_in]);
            add("mlp.fc2.bias", vec![d]);
            if self.layer_scale {
                add("ls1.gamma", vec![d]);
                add("ls2.gamma", vec![d]);
            }
        }
        tensors.push(("norm.weight".to_string(), vec![d]));
        tensors.push(("norm.bias".to_string(), vec![d]));
        tensors
    }

    /// Writes seeded random weights of this architecture as safetensors, initialised the way
    /// timm does it (truncated-normal-like weights of scale 0.02, unit norms, zero biases): a
    /// file to benchmark the encoder's throughput with, or to test loading, with no download.
    pub fn write_seeded_weights(&self, path: &Path, seed: u64) -> Result<(), ModelError> {
        let mut rng = SeededRng::new(seed);
        let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = self
            .timm_tensors()
            .into_iter()
            .map(|(name, shape)| {
                let len = shape.iter().product::<usize>();
                let values =
                    if name.ends_with("norm1.weight") || name.ends_with("norm2.weight") || name == "norm.weight" {
                        vec![1.0; len]
                    } else if name.ends_with(".gamma") {
                        vec![0.1; len]
                    } else if name.ends_with(".bias") {
                        vec![0.0; len]
                    } else {
                        (0..len)
                            .map(|_| (0.02 * rng.normal().clamp(-2.0, 2.0)) as f32)
                            .collect()
                    };
                (name, shape, values)
            })
            .collect();
        crate::safetensors::write_f32(path, &tensors)
    }

    fn plain(patch_size: usize, embed_dim: usize, depth: usize, num_heads: usize) -> Self {
        Self {
            img_size: FOUNDATION_PATCH.size_px as usize,
            patch_size,
            embed_dim,
            depth,
            num_heads,
            mlp: VitMlp::Gelu { hidden: 4 * embed_dim },
            reg_tokens: 0,
            layer_scale: false,
            pos_embed_covers_prefix: true,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        }
    }
}

/// The architectures the app knows by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VitPreset {
    VitS16,
    VitB16,
    /// Also UNI (v1), whose layer scale is found in its weights.
    VitL16,
    Uni2H,
}

impl VitPreset {
    pub const ALL: [VitPreset; 4] = [
        VitPreset::VitS16,
        VitPreset::VitB16,
        VitPreset::VitL16,
        VitPreset::Uni2H,
    ];

    /// The name used on the command line and in model files.
    pub fn name(self) -> &'static str {
        match self {
            VitPreset::VitS16 => "vit-s16",
            VitPreset::VitB16 => "vit-b16",
            VitPreset::VitL16 => "vit-l16",
            VitPreset::Uni2H => "uni2-h",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            VitPreset::VitS16 => "ViT-S/16",
            VitPreset::VitB16 => "ViT-B/16",
            VitPreset::VitL16 => "ViT-L/16 (UNI)",
            VitPreset::Uni2H => "UNI2-h (ViT-H/14)",
        }
    }

    pub fn config(self) -> VitConfig {
        match self {
            VitPreset::VitS16 => VitConfig::plain(16, 384, 12, 6),
            VitPreset::VitB16 => VitConfig::plain(16, 768, 12, 12),
            VitPreset::VitL16 => VitConfig::plain(16, 1024, 24, 16),
            VitPreset::Uni2H => VitConfig {
                // timm: mlp_ratio 2.66667 * 2 → int(1536 * 5.33334) = 8192, halved by the gate.
                mlp: VitMlp::SwiGlu { hidden: 4096 },
                reg_tokens: 8,
                layer_scale: true,
                pos_embed_covers_prefix: false,
                ..VitConfig::plain(14, 1536, 24, 24)
            },
        }
    }
}

impl VitPreset {
    /// Checks from the header alone (nothing is loaded) that a weights file holds this
    /// architecture; the error names the file and the first tensor that differs.
    pub fn check_weights(self, path: &Path) -> Result<(), ModelError> {
        self.check_file(&SafeTensors::open(path)?)
    }

    /// As [`VitPreset::check_weights`], on a file already open.
    pub fn check_file(self, file: &SafeTensors) -> Result<(), ModelError> {
        let device = crate::cpu_device();
        let reader = WeightReader {
            file,
            device: &device,
            preset: self.label(),
        };
        let mut config = self.config();
        reader.read_layout(&mut config)?;
        reader.check_tensors(&config)
    }

    /// The architecture a weights file holds, if it is one of the presets.
    pub fn detect(path: &Path) -> Option<VitPreset> {
        let file = SafeTensors::open(path).ok()?;
        Self::detect_in(&file)
    }

    /// As [`VitPreset::detect`], on a file already open.
    pub fn detect_in(file: &SafeTensors) -> Option<VitPreset> {
        Self::ALL.into_iter().find(|p| p.check_file(file).is_ok())
    }
}

impl std::str::FromStr for VitPreset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.to_ascii_lowercase().replace(['_', '/'], "-");
        Self::ALL.into_iter().find(|p| p.name() == wanted).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|p| p.name()).collect();
            format!("unknown ViT {s:?}: use one of {}", names.join(", "))
        })
    }
}

/// How a cell's embedding is read from the transformer's output tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TokenReadout {
    ClassToken,
    /// Mean of the `k` patch tokens whose centres are nearest the nucleus (the patch centre).
    NucleusTokens {
        k: usize,
    },
}

/// The paper's readout averages the patch tokens around the nucleus; 4 is the 2 x 2 block at the
/// centre of an even grid.
pub const DEFAULT_NUCLEUS_TOKENS: usize = 4;

impl Default for TokenReadout {
    fn default() -> Self {
        TokenReadout::NucleusTokens {
            k: DEFAULT_NUCLEUS_TOKENS,
        }
    }
}

impl TokenReadout {
    pub fn describe(self) -> String {
        match self {
            TokenReadout::ClassToken => "class token".into(),
            TokenReadout::NucleusTokens { k } => format!("mean of the {k} patch tokens nearest the nucleus"),
        }
    }

    /// Token indices (into the full token sequence) the readout averages.
    pub fn token_indices(self, config: &VitConfig) -> Vec<usize> {
        match self {
            TokenReadout::ClassToken => vec![0],
            TokenReadout::NucleusTokens { k } => {
                let grid = config.grid();
                let centre = config.img_size as f64 / 2.0;
                let p = config.patch_size as f64;
                let mut patches: Vec<(f64, usize)> = (0..grid * grid)
                    .map(|i| {
                        let dx = ((i % grid) as f64 + 0.5) * p - centre;
                        let dy = ((i / grid) as f64 + 0.5) * p - centre;
                        (dx * dx + dy * dy, i)
                    })
                    .collect();
                patches.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                patches
                    .into_iter()
                    .take(k.clamp(1, grid * grid))
                    .map(|(_, i)| config.n_prefix() + i)
                    .collect()
            }
        }
    }
}

impl std::str::FromStr for TokenReadout {
    type Err = String;
    /// `cls`, `nucleus` (k = 4) or `nucleus:K`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            None if s == "cls" => Ok(TokenReadout::ClassToken),
            None if s == "nucleus" => Ok(TokenReadout::default()),
            Some(("nucleus", k)) => match k.parse::<usize>() {
                Ok(k) if k > 0 => Ok(TokenReadout::NucleusTokens { k }),
                _ => Err(format!("nucleus:{k}: k must be a whole number above 0")),
            },
            _ => Err(format!("unknown readout {s:?}: use cls, nucleus or nucleus:K")),
        }
    }
}

/// A linear layer; `weight` is [in, out] (PyTorch's transpose).
struct Linear {
    weight: Tensor<2>,
    bias: Tensor<1>,
}

impl Linear {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, tokens, d_in] = x.dims();
        let d_out = self.weight.dims()[1];
        let y = x.reshape([batch * tokens, d_in]).matmul(self.weight.clone());
        y.reshape([batch, tokens, d_out]) + self.bias.clone().reshape([1, 1, d_out])
    }
}

struct LayerNorm {
    gamma: Tensor<1>,
    beta: Tensor<1>,
}

impl LayerNorm {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let d = x.dims()[2];
        let centred = x.clone() - x.mean_dim(2);
        let variance = centred.clone().powi_scalar(2).mean_dim(2);
        let normed = centred / (variance + NORM_EPS).sqrt();
        normed * self.gamma.clone().reshape([1, 1, d]) + self.beta.clone().reshape([1, 1, d])
    }
}

struct Block {
    norm1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    proj: Linear,
    ls1: Option<Tensor<1>>,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    ls2: Option<Tensor<1>>,
}

fn scaled(x: Tensor<3>, gamma: &Option<Tensor<1>>) -> Tensor<3> {
    match gamma {
        Some(g) => {
            let d = g.dims()[0];
            x * g.clone().reshape([1, 1, d])
        }
        None => x,
    }
}

/// A ViT's weights on a device.
pub struct VitModel {
    config: VitConfig,
    device: Device,
    /// The patch-embedding convolution as a linear map from (channel, row, column) pixels.
    patch_embed: Linear,
    cls_token: Tensor<3>,
    reg_tokens: Option<Tensor<3>>,
    pos_embed: Tensor<3>,
    blocks: Vec<Block>,
    norm: LayerNorm,
}

/// Reads tensors by name with shape checks, naming the file in every error.
struct WeightReader<'a> {
    file: &'a SafeTensors,
    device: &'a Device,
    preset: &'a str,
}

impl WeightReader<'_> {
    fn error(&self, reason: String) -> ModelError {
        ModelError::File {
            path: self.file.path().to_path_buf(),
            reason: format!("{reason} (expected weights for {})", self.preset),
        }
    }

    fn values(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let Some(info) = self.file.info(name) else {
            return Err(self.error(format!("has no tensor {name:?}")));
        };
        if info.shape != shape {
            return Err(self.error(format!("{name} has shape {:?}, the model needs {shape:?}", info.shape)));
        }
        let (values, _) = self.file.read_f32(name)?;
        if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
            return Err(self.error(format!("{name} holds a non-finite value at {bad}")));
        }
        Ok(values)
    }

    /// Takes register tokens, layer scale and the position table's layout from the file into
    /// `config`; returns the position table's rows.
    fn read_layout(&self, config: &mut VitConfig) -> Result<usize, ModelError> {
        let file = self.file;
        config.reg_tokens = file
            .info("reg_token")
            .map_or(0, |t| t.shape.get(1).copied().unwrap_or(0));
        config.layer_scale = file.info("blocks.0.ls1.gamma").is_some();
        let pos_rows = file
            .info("pos_embed")
            .map(|t| t.shape.get(1).copied().unwrap_or(0))
            .ok_or_else(|| self.error("has no tensor \"pos_embed\"".into()))?;
        config.pos_embed_covers_prefix = if pos_rows == config.n_patches() {
            false
        } else if pos_rows == config.n_tokens() {
            true
        } else {
            return Err(self.error(format!(
                "pos_embed has {pos_rows} positions; a {}-px input in {}-px patches needs {} (or {} with the prefix tokens)",
                config.img_size,
                config.patch_size,
                config.n_patches(),
                config.n_tokens()
            )));
        };
        Ok(pos_rows)
    }

    /// Every tensor of `config` is in the file with its shape, and there are no further blocks.
    fn check_tensors(&self, config: &VitConfig) -> Result<(), ModelError> {
        for (name, shape) in config.timm_tensors() {
            match self.file.info(&name) {
                None => return Err(self.error(format!("has no tensor {name:?}"))),
                Some(info) if info.shape != shape => {
                    return Err(self.error(format!("{name} has shape {:?}, the model needs {shape:?}", info.shape)));
                }
                Some(_) => {}
            }
        }
        if self
            .file
            .info(&format!("blocks.{}.norm1.weight", config.depth))
            .is_some()
        {
            return Err(self.error(format!("has more than the {} blocks the model has", config.depth)));
        }
        Ok(())
    }

    fn vector(&self, name: &str, len: usize) -> Result<Tensor<1>, ModelError> {
        let values = self.values(name, &[len])?;
        Ok(Tensor::from_data(TensorData::new(values, [len]), self.device))
    }

    fn tokens(&self, name: &str, count: usize, dim: usize) -> Result<Tensor<3>, ModelError> {
        let values = self.values(name, &[1, count, dim])?;
        Ok(Tensor::from_data(TensorData::new(values, [1, count, dim]), self.device))
    }

    /// PyTorch `Linear` weights [out, in] and bias, transposed to [in, out].
    fn linear(&self, prefix: &str, d_in: usize, d_out: usize) -> Result<Linear, ModelError> {
        let weight = self.values(&format!("{prefix}.weight"), &[d_out, d_in])?;
        Ok(Linear {
            weight: Tensor::<2>::from_data(TensorData::new(weight, [d_out, d_in]), self.device).transpose(),
            bias: self.vector(&format!("{prefix}.bias"), d_out)?,
        })
    }

    fn layer_norm(&self, prefix: &str, dim: usize) -> Result<LayerNorm, ModelError> {
        Ok(LayerNorm {
            gamma: self.vector(&format!("{prefix}.weight"), dim)?,
            beta: self.vector(&format!("{prefix}.bias"), dim)?,
        })
    }
}

impl VitModel {
    /// Loads weights saved from timm (`state_dict` → safetensors) for `config`. Register tokens,
    /// layer scale and the position table's layout are taken from the file; everything else must
    /// match the config, or the error says which tensor differs.
    pub fn load(mut config: VitConfig, preset: &str, path: &Path, device: &Device) -> Result<Self, ModelError> {
        if config.patch_size == 0
            || !config.img_size.is_multiple_of(config.patch_size)
            || config.num_heads == 0
            || !config.embed_dim.is_multiple_of(config.num_heads)
        {
            return Err(ModelError::Input(format!(
                "{preset}: inconsistent ViT config {config:?}"
            )));
        }
        let file = SafeTensors::open(path)?;
        let reader = WeightReader {
            file: &file,
            device,
            preset,
        };
        let d = config.embed_dim;
        let pos_rows = reader.read_layout(&mut config)?;
        // From the header alone, before a gigabyte is read.
        reader.check_tensors(&config)?;
        let p = config.patch_size;
        let conv = reader.values("patch_embed.proj.weight", &[d, 3, p, p])?;
        let patch_embed = Linear {
            weight: Tensor::<2>::from_data(TensorData::new(conv, [d, 3 * p * p]), device).transpose(),
            bias: reader.vector("patch_embed.proj.bias", d)?,
        };
        let (fc1_out, fc2_in) = match config.mlp {
            VitMlp::Gelu { hidden } => (hidden, hidden),
            VitMlp::SwiGlu { hidden } => (2 * hidden, hidden),
        };
        let mut blocks = Vec::with_capacity(config.depth);
        for i in 0..config.depth {
            let prefix = format!("blocks.{i}");
            let qkv = reader.values(&format!("{prefix}.attn.qkv.weight"), &[3 * d, d])?;
            let qkv_bias = reader.values(&format!("{prefix}.attn.qkv.bias"), &[3 * d])?;
            let part = |j: usize| Linear {
                weight: Tensor::<2>::from_data(
                    TensorData::new(qkv[j * d * d..(j + 1) * d * d].to_vec(), [d, d]),
                    device,
                )
                .transpose(),
                bias: Tensor::from_data(TensorData::new(qkv_bias[j * d..(j + 1) * d].to_vec(), [d]), device),
            };
            let gamma = |name: &str| -> Result<Option<Tensor<1>>, ModelError> {
                if config.layer_scale {
                    reader.vector(&format!("{prefix}.{name}.gamma"), d).map(Some)
                } else {
                    Ok(None)
                }
            };
            blocks.push(Block {
                norm1: reader.layer_norm(&format!("{prefix}.norm1"), d)?,
                q: part(0),
                k: part(1),
                v: part(2),
                proj: reader.linear(&format!("{prefix}.attn.proj"), d, d)?,
                ls1: gamma("ls1")?,
                norm2: reader.layer_norm(&format!("{prefix}.norm2"), d)?,
                fc1: reader.linear(&format!("{prefix}.mlp.fc1"), d, fc1_out)?,
                fc2: reader.linear(&format!("{prefix}.mlp.fc2"), fc2_in, d)?,
                ls2: gamma("ls2")?,
            });
        }
        let reg_tokens = match config.reg_tokens {
            0 => None,
            r => Some(reader.tokens("reg_token", r, d)?),
        };
        Ok(Self {
            cls_token: reader.tokens("cls_token", 1, d)?,
            pos_embed: reader.tokens("pos_embed", pos_rows, d)?,
            norm: reader.layer_norm("norm", d)?,
            reg_tokens,
            patch_embed,
            blocks,
            device: device.clone(),
            config,
        })
    }

    pub fn config(&self) -> &VitConfig {
        &self.config
    }

    /// Normalised pixels of `images` (RGB bytes, `img_size`² each) cut into patches, as the
    /// patch-embedding convolution sees them: [images, patches, channel × row × column].
    fn patchify(&self, images: &[u8]) -> Tensor<3> {
        let c = &self.config;
        let (size, p, grid) = (c.img_size, c.patch_size, c.grid());
        let n = images.len() / (size * size * 3);
        let per_patch = 3 * p * p;
        let mut values = vec![0f32; n * grid * grid * per_patch];
        for (image, out) in images
            .chunks_exact(size * size * 3)
            .zip(values.chunks_exact_mut(grid * grid * per_patch))
        {
            for (patch, out) in out.chunks_exact_mut(per_patch).enumerate() {
                let (row0, col0) = ((patch / grid) * p, (patch % grid) * p);
                for channel in 0..3 {
                    for dy in 0..p {
                        for dx in 0..p {
                            let byte = image[((row0 + dy) * size + col0 + dx) * 3 + channel];
                            out[(channel * p + dy) * p + dx] =
                                (f32::from(byte) / 255.0 - c.mean[channel]) / c.std[channel];
                        }
                    }
                }
            }
        }
        Tensor::from_data(TensorData::new(values, [n, grid * grid, per_patch]), &self.device)
    }

    /// A block of the slide on the device: RGB values 0–255 per pixel, [height × width, 3];
    /// transparent pixels read as white, as on the CPU.
    pub fn upload_block(&self, block: &BlockImage<'_>) -> Tensor<2> {
        let mut values = Vec::with_capacity(block.width * block.height * 3);
        for pixel in block.pixels.chunks_exact(4).take(block.width * block.height) {
            if pixel[3] > 0 {
                values.extend(pixel[..3].iter().map(|&v| f32::from(v)));
            } else {
                values.extend([255.0; 3]);
            }
        }
        values.resize(block.width * block.height * 3, 255.0);
        Tensor::from_data(TensorData::new(values, [block.width * block.height, 3]), &self.device)
    }

    /// The patches of `cells` resampled on the device from a block uploaded by
    /// [`VitModel::upload_block`] (bilinear, clamped to the block's edges, rounded to whole
    /// values as the CPU's bytes are): RGB 0–255, [cells, rows, columns, 3].
    pub fn resample_on_device(
        &self,
        block: &Tensor<2>,
        (width, height): (usize, usize),
        sampling: &PatchSampling,
        cells: std::ops::Range<usize>,
    ) -> Tensor<4> {
        let size = sampling.size_px;
        let (n, samples) = (cells.len(), size * size);
        let device = &self.device;
        // Column and row (+ 0.5) of every sample, [1, samples].
        let (columns, rows): (Vec<f32>, Vec<f32>) = (0..samples)
            .map(|s| ((s % size) as f32 + 0.5, (s / size) as f32 + 0.5))
            .unzip();
        let columns = Tensor::<2>::from_data(TensorData::new(columns, [1, samples]), device);
        let rows = Tensor::<2>::from_data(TensorData::new(rows, [1, samples]), device);
        let origins = &sampling.origins_px[cells];
        let axis = |a: usize, limit: usize| {
            let origin: Vec<f32> = origins.iter().map(|o| o[a] as f32).collect();
            let origin = Tensor::<2>::from_data(TensorData::new(origin, [n, 1]), device);
            let along = origin
                + columns.clone() * sampling.column_step_px[a] as f32
                + rows.clone() * sampling.row_step_px[a] as f32;
            let along = along.clamp(0.0, limit.saturating_sub(1) as f32).reshape([n * samples]);
            let low = along.clone().floor();
            let fraction = (along - low.clone()).reshape([n * samples, 1]);
            let low = low.int();
            let high = (low.clone() + 1).clamp_max(limit.saturating_sub(1) as i64);
            (low, high, fraction)
        };
        let (x0, x1, fx) = axis(0, width);
        let (y0, y1, fy) = axis(1, height);
        let at = |y: &Tensor<1, Int>, x: &Tensor<1, Int>| block.clone().select(0, y.clone() * width as i64 + x.clone());
        let top = at(&y0, &x0) * (fx.clone().neg() + 1.0) + at(&y0, &x1) * fx.clone();
        let bottom = at(&y1, &x0) * (fx.clone().neg() + 1.0) + at(&y1, &x1) * fx;
        let rgb = top * (fy.clone().neg() + 1.0) + bottom * fy;
        rgb.round().clamp(0.0, 255.0).reshape([n, size, size, 3])
    }

    /// RGB patches 0–255 [images, rows, columns, 3] on the device, normalised and cut into
    /// patch tokens as [`VitModel::patchify`] does: [images, patches, channel × row × column].
    pub fn patchify_on_device(&self, images: Tensor<4>) -> Tensor<3> {
        let c = &self.config;
        let [n, size, _, _] = images.dims();
        let (p, grid) = (c.patch_size, size / c.patch_size);
        let device = &self.device;
        let mean = Tensor::<4>::from_data(TensorData::new(c.mean.to_vec(), [1, 1, 1, 3]), device);
        let std = Tensor::<4>::from_data(TensorData::new(c.std.to_vec(), [1, 1, 1, 3]), device);
        let normalised = (images / 255.0 - mean) / std;
        normalised
            .reshape([n, grid, p, grid, p, 3])
            .permute([0, 1, 3, 5, 2, 4])
            .reshape([n, grid * grid, 3 * p * p])
    }

    /// timm's `forward_features`: every output token after the final norm, [images, tokens, dim].
    pub fn forward_features(&self, images: &[u8]) -> Tensor<3> {
        self.forward_patches(self.patchify(images))
    }

    /// [`VitModel::forward_features`] from patch tokens [images, patches, 3 × p × p].
    fn forward_patches(&self, patches: Tensor<3>) -> Tensor<3> {
        let c = &self.config;
        let x = self.patch_embed.forward(patches);
        let [batch, _, d] = x.dims();
        let mut prefix = vec![self.cls_token.clone().expand([batch, 1, d])];
        if let Some(reg) = &self.reg_tokens {
            prefix.push(reg.clone().expand([batch, c.reg_tokens, d]));
        }
        let mut x = if c.pos_embed_covers_prefix {
            prefix.push(x);
            Tensor::cat(prefix, 1) + self.pos_embed.clone()
        } else {
            prefix.push(x + self.pos_embed.clone());
            Tensor::cat(prefix, 1)
        };
        let heads = c.num_heads;
        let head_dim = d / heads;
        let scale = (head_dim as f64).powf(-0.5);
        for block in &self.blocks {
            let h = block.norm1.forward(x.clone());
            let tokens = h.dims()[1];
            let split = |t: Tensor<3>| t.reshape([batch, tokens, heads, head_dim]).swap_dims(1, 2);
            let q = split(block.q.forward(h.clone())) * scale;
            let k = split(block.k.forward(h.clone()));
            let v = split(block.v.forward(h));
            let attention = softmax(q.matmul(k.swap_dims(2, 3)), 3);
            let o = attention.matmul(v).swap_dims(1, 2).reshape([batch, tokens, d]);
            x = x + scaled(block.proj.forward(o), &block.ls1);
            let h = block.fc1.forward(block.norm2.forward(x.clone()));
            let h = match c.mlp {
                VitMlp::Gelu { .. } => gelu(h),
                VitMlp::SwiGlu { hidden } => {
                    let gate = h.clone().narrow(2, 0, hidden);
                    let value = h.narrow(2, hidden, hidden);
                    silu(gate) * value
                }
            };
            x = x + scaled(block.fc2.forward(h), &block.ls2);
        }
        self.norm.forward(x)
    }

    /// One embedding per image: the mean of the readout's tokens, [images, dim].
    pub fn embed(&self, images: &[u8], readout: TokenReadout) -> Tensor<2> {
        self.embed_patches(self.patchify(images), readout)
    }

    /// [`VitModel::embed`] from patch tokens [images, patches, 3 × p × p].
    pub fn embed_patches(&self, patches: Tensor<3>, readout: TokenReadout) -> Tensor<2> {
        let tokens = self.forward_patches(patches);
        let indices = readout.token_indices(&self.config);
        let count = indices.len();
        let index = Tensor::<1, Int>::from_data(
            TensorData::new(indices.into_iter().map(|i| i as i64).collect::<Vec<_>>(), [count]),
            &self.device,
        );
        let [batch, _, d] = tokens.dims();
        tokens.select(1, index).mean_dim(1).reshape([batch, d])
    }
}

/// Where a ViT encoder comes from: its architecture, weights file and readout (saved with models).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VitEncoderSpec {
    pub preset: VitPreset,
    pub weights: PathBuf,
    pub readout: TokenReadout,
}

impl VitEncoderSpec {
    pub fn describe(&self) -> String {
        let file = self.weights.file_name().map_or_else(
            || self.weights.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        format!("{} from {file}, {}", self.preset.label(), self.readout.describe())
    }
}

/// A ViT run over each cell's 224-px patch at 0.5 µm/px.
pub struct VitMorphologyEncoder {
    name: String,
    readout: TokenReadout,
    dim: usize,
    patch: PatchGeometry,
    model: VitModel,
    /// Forward passes that may run at once: one on a GPU (it is busy with one already, and its
    /// memory is not multiplied), one per core on the CPU (burn-ndarray's matrix products use one
    /// core each), so the blocks read in parallel are also encoded in parallel.
    slots: ForwardSlots,
    /// Resample patches on the device (a GPU) rather than on the CPU.
    resample_on_device: bool,
}

/// A counting semaphore over forward passes.
struct ForwardSlots {
    free: Mutex<usize>,
    freed: Condvar,
}

impl ForwardSlots {
    fn new(n: usize) -> Self {
        Self {
            free: Mutex::new(n.max(1)),
            freed: Condvar::new(),
        }
    }

    /// Runs `f` once a slot is free.
    fn run<T>(&self, f: impl FnOnce() -> T) -> Result<T, ModelError> {
        let poisoned = || ModelError::Input("the ViT encoder failed in another thread".into());
        {
            let mut free = self.free.lock().map_err(|_| poisoned())?;
            while *free == 0 {
                free = self.freed.wait(free).map_err(|_| poisoned())?;
            }
            *free -= 1;
        }
        let result = f();
        let mut free = self.free.lock().map_err(|_| poisoned())?;
        *free += 1;
        self.freed.notify_one();
        Ok(result)
    }
}

impl VitMorphologyEncoder {
    /// Loads the spec's weights onto `device`. On a GPU the patches are resampled there too.
    pub fn open(spec: &VitEncoderSpec, device: &Device) -> Result<Self, ModelError> {
        let model = VitModel::load(spec.preset.config(), spec.preset.label(), &spec.weights, device)?;
        let on_cpu = crate::device::is_cpu(device);
        Ok(Self::from_model(spec.preset.name(), model, spec.readout, !on_cpu))
    }

    /// An encoder around a loaded model; `resample_on_device` chooses where patches are resampled.
    pub fn from_model(name: &str, model: VitModel, readout: TokenReadout, resample_on_device: bool) -> Self {
        let on_cpu = crate::device::is_cpu(&model.device);
        Self {
            name: name.replace('-', "_"),
            readout,
            dim: model.config.embed_dim,
            patch: PatchGeometry {
                size_px: model.config.img_size as u32,
                um_per_px: FOUNDATION_PATCH.um_per_px,
            },
            model,
            slots: ForwardSlots::new(if on_cpu {
                std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
            } else {
                1
            }),
            resample_on_device,
        }
    }

    /// Whether patches are resampled on the device (a GPU) rather than on the CPU.
    pub fn resamples_on_device(&self) -> bool {
        self.resample_on_device
    }

    fn output(embedding: Tensor<2>) -> Result<Vec<f32>, ModelError> {
        embedding
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| ModelError::Input(format!("reading the ViT output: {e:?}")))
    }
}

impl MorphologyEncoder for VitMorphologyEncoder {
    fn name(&self) -> &str {
        &self.name
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn patch(&self) -> PatchGeometry {
        self.patch
    }

    fn encode(&self, patches: &[u8], shapes: &[CellShape]) -> Result<Vec<f32>, ModelError> {
        use rayon::prelude::*;
        let size = self.model.config.img_size;
        let bytes_per_patch = size * size * 3;
        if patches.len() != shapes.len() * bytes_per_patch {
            return Err(ModelError::Input(
                "the ViT encoder needs the H&E slide: open the slide and its alignment first".into(),
            ));
        }
        // Batches in parallel, as many at once as there are forward slots.
        let batches: Vec<Result<Vec<f32>, ModelError>> = patches
            .par_chunks(BATCH * bytes_per_patch)
            .map(|batch| self.slots.run(|| Self::output(self.model.embed(batch, self.readout)))?)
            .collect();
        let mut out = Vec::with_capacity(shapes.len() * self.dim);
        for batch in batches {
            out.extend(batch?);
        }
        Ok(out)
    }

    fn encode_block(
        &self,
        block: &BlockImage<'_>,
        sampling: &PatchSampling,
        shapes: &[CellShape],
    ) -> Result<Vec<f32>, ModelError> {
        if !self.resample_on_device {
            return self.encode(&sampling.resample(block), shapes);
        }
        if sampling.size_px != self.model.config.img_size || sampling.origins_px.len() != shapes.len() {
            return Err(ModelError::Shape(format!(
                "{} patches of {} px for {} cells; the ViT takes {} px",
                sampling.origins_px.len(),
                sampling.size_px,
                shapes.len(),
                self.model.config.img_size
            )));
        }
        // The block goes to the device once; each batch's patches are resampled there.
        self.slots.run(|| {
            let on_device = self.model.upload_block(block);
            let mut out = Vec::with_capacity(shapes.len() * self.dim);
            for start in (0..shapes.len()).step_by(BATCH) {
                let cells = start..(start + BATCH).min(shapes.len());
                let images = self
                    .model
                    .resample_on_device(&on_device, (block.width, block.height), sampling, cells);
                out.extend(Self::output(
                    self.model
                        .embed_patches(self.model.patchify_on_device(images), self.readout),
                )?);
            }
            Ok(out)
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_the_published_shapes() {
        let uni2 = VitPreset::Uni2H.config();
        assert_eq!(
            (uni2.grid(), uni2.n_tokens(), uni2.embed_dim / uni2.num_heads),
            (16, 265, 64)
        );
        let large = VitPreset::VitL16.config();
        assert_eq!((large.grid(), large.n_tokens(), large.embed_dim), (14, 197, 1024));
        for preset in VitPreset::ALL {
            assert_eq!(preset.name().parse::<VitPreset>(), Ok(preset));
        }
        assert!("vit-x".parse::<VitPreset>().is_err());
    }

    #[test]
    fn nucleus_readout_takes_the_central_tokens() {
        let config = VitPreset::VitS16.config(); // 14 x 14 patches of 16 px; centre at 112 px.
        let four = TokenReadout::NucleusTokens { k: 4 }.token_indices(&config);
        let central: Vec<usize> = [6 * 14 + 6, 6 * 14 + 7, 7 * 14 + 6, 7 * 14 + 7]
            .iter()
            .map(|i| i + 1)
            .collect();
        assert_eq!(four, central);
        assert_eq!(TokenReadout::ClassToken.token_indices(&config), [0]);
        let uni2 = VitPreset::Uni2H.config(); // 16 x 16 patches of 14 px, 9 prefix tokens.
        let one = TokenReadout::NucleusTokens { k: 1 }.token_indices(&uni2);
        assert_eq!(one, [9 + 7 * 16 + 7]);
        assert_eq!("nucleus:9".parse(), Ok(TokenReadout::NucleusTokens { k: 9 }));
        assert_eq!("cls".parse(), Ok(TokenReadout::ClassToken));
        assert!("nucleus:0".parse::<TokenReadout>().is_err());
    }

    #[test]
    fn patches_resampled_on_the_device_match_the_cpu() {
        let config = VitConfig {
            img_size: 32,
            ..VitConfig::plain(8, 16, 1, 2)
        };
        let path = std::env::temp_dir().join(format!("cs_models_vit_resample_{}.safetensors", std::process::id()));
        config.write_seeded_weights(&path, 5).unwrap();
        let device = crate::cpu_device();
        // A 50 x 40 block: smooth colour ramps plus a transparent corner.
        let (width, height) = (50usize, 40usize);
        let mut pixels = Vec::with_capacity(width * height * 4);
        for y in 0..height {
            for x in 0..width {
                let alpha = if x > 40 && y > 30 { 0 } else { 255 };
                pixels.extend_from_slice(&[(x * 5) as u8, (y * 6) as u8, ((x * y) % 251) as u8, alpha]);
            }
        }
        let block = BlockImage {
            pixels: &pixels,
            width,
            height,
        };
        // Three cells, the patch turned by 30° and scaled by 0.7, one running off the block.
        let (sin, cos) = (0.5f64, 0.75f64.sqrt());
        let sampling = PatchSampling {
            size_px: 32,
            origins_px: vec![[10.0, 3.0], [25.5, 8.25], [40.0, 30.0]],
            column_step_px: [0.7 * cos, 0.7 * sin],
            row_step_px: [-0.7 * sin, 0.7 * cos],
        };
        let shapes = vec![CellShape::default(); 3];
        let on_cpu_bytes = sampling.resample(&block);
        let model = VitModel::load(config.clone(), "tiny", &path, &device).unwrap();
        let uploaded = model.upload_block(&block);
        let on_device = model.resample_on_device(&uploaded, (width, height), &sampling, 0..3);
        assert_eq!(on_device.dims(), [3, 32, 32, 3]);
        let on_device: Vec<f32> = on_device.into_data().try_to_vec().unwrap();
        let worst = on_cpu_bytes
            .iter()
            .zip(&on_device)
            .map(|(&a, &b)| (f32::from(a) - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= 1.0, "device and CPU resampling differ by {worst}");
        let differing = on_cpu_bytes
            .iter()
            .zip(&on_device)
            .filter(|(a, b)| f32::from(**a) != **b)
            .count();
        assert!(differing * 1000 < on_device.len(), "{differing} values differ");
        // Patchify on the device is the CPU's patchify.
        let cpu_tokens: Vec<f32> = model.patchify(&on_cpu_bytes).into_data().try_to_vec().unwrap();
        let rounded = Tensor::<4>::from_data(
            TensorData::new(on_cpu_bytes.iter().map(|&v| f32::from(v)).collect(), [3, 32, 32, 3]),
            &device,
        );
        let device_tokens: Vec<f32> = model.patchify_on_device(rounded).into_data().try_to_vec().unwrap();
        assert_eq!(cpu_tokens.len(), device_tokens.len());
        assert!(cpu_tokens.iter().zip(&device_tokens).all(|(a, b)| (a - b).abs() < 1e-5));
        // And the two encoders agree.
        let readout = TokenReadout::NucleusTokens { k: 4 };
        let on_cpu = VitMorphologyEncoder::from_model("tiny", model, readout, false);
        let model = VitModel::load(config, "tiny", &path, &device).unwrap();
        let on_device = VitMorphologyEncoder::from_model("tiny", model, readout, true);
        let a = on_cpu.encode_block(&block, &sampling, &shapes).unwrap();
        let b = on_device.encode_block(&block, &sampling, &shapes).unwrap();
        assert_eq!(a.len(), 3 * 16);
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "embeddings differ by {worst}");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn seeded_weights_load_into_their_architecture_only() {
        let config = VitConfig {
            img_size: 32,
            mlp: VitMlp::SwiGlu { hidden: 24 },
            reg_tokens: 2,
            layer_scale: true,
            pos_embed_covers_prefix: false,
            ..VitConfig::plain(8, 16, 2, 2)
        };
        let path = std::env::temp_dir().join(format!("cs_models_vit_seeded_{}.safetensors", std::process::id()));
        config.write_seeded_weights(&path, 3).unwrap();
        let device = crate::cpu_device();
        let model = VitModel::load(config.clone(), "tiny", &path, &device).unwrap();
        assert_eq!(model.config(), &config);
        let images = vec![128u8; 2 * 32 * 32 * 3];
        let embedding = model.embed(&images, TokenReadout::NucleusTokens { k: 4 });
        assert_eq!(embedding.dims(), [2, 16]);
        assert_eq!(VitPreset::detect(&path), None);
        let message = VitPreset::VitS16.check_weights(&path).err().unwrap().to_string();
        assert!(
            message.contains("ViT-S/16") && message.contains("pos_embed has 16 positions"),
            "{message}"
        );
        let deeper = VitConfig { depth: 3, ..config };
        let message = VitModel::load(deeper, "tiny-deeper", &path, &device)
            .err()
            .unwrap()
            .to_string();
        assert!(
            message.contains("blocks.2") && message.contains("tiny-deeper"),
            "{message}"
        );
        let _ = std::fs::remove_file(&path);
    }
}
