//! The ViT architectures the app knows (their timm tensor names and shapes, seeded weights for
//! benchmarks, recognising a weights file from its header) and how a cell's embedding is read
//! out of the tokens.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::model::WeightReader;
use super::{IMAGENET_MEAN, IMAGENET_STD};
use crate::ModelError;
use crate::morphology::FOUNDATION_PATCH;
use crate::rng::SeededRng;
use crate::safetensors::SafeTensors;

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

    pub(super) fn plain(patch_size: usize, embed_dim: usize, depth: usize, num_heads: usize) -> Self {
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
}
