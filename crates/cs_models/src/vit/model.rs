//! The transformer: timm's `VisionTransformer` `forward_features` in burn (patch embedding, class
//! and register tokens, the position table with or without the prefix tokens, pre-norm blocks
//! with GELU or SwiGLU MLPs and optional layer scale, final norm), and its weights read from
//! safetensors with every tensor's name and shape checked.

use std::path::Path;

use burn::tensor::activation::{gelu, silu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::{TokenReadout, VitConfig, VitMlp};
use crate::ModelError;
use crate::morphology::{BlockImage, PatchSampling};
use crate::safetensors::SafeTensors;

/// timm's ViT LayerNorm epsilon.
const NORM_EPS: f64 = 1e-6;

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
pub(super) struct WeightReader<'a> {
    pub(super) file: &'a SafeTensors,
    pub(super) device: &'a Device,
    pub(super) preset: &'a str,
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
    pub(super) fn read_layout(&self, config: &mut VitConfig) -> Result<usize, ModelError> {
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
    pub(super) fn check_tensors(&self, config: &VitConfig) -> Result<(), ModelError> {
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

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn config(&self) -> &VitConfig {
        &self.config
    }

    /// Normalised pixels of `images` (RGB bytes, `img_size`² each) cut into patches, as the
    /// patch-embedding convolution sees them: [images, patches, channel × row × column].
    pub(super) fn patchify(&self, images: &[u8]) -> Tensor<3> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vit::VitPreset;

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
