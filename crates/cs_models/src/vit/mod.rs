//! timm-compatible Vision Transformers as morphology encoders: ViT-S/16, ViT-B/16, ViT-L/16 and
//! UNI2-h (ViT-H/14 with 8 register tokens, a SwiGLU MLP and layer scale), loaded from
//! user-supplied `.safetensors` weights saved from timm's `VisionTransformer` (nothing is
//! downloaded). The forward pass follows timm's `forward_features` (patch embedding, class and
//! register tokens, the position table with or without the prefix tokens, pre-norm blocks, final
//! norm) and matches it within 1e-4 (`tests/reference/vit_reference.py`). A cell's embedding is
//! the class token or, as in the paper, the mean of the `k` patch tokens nearest the nucleus,
//! which sits at the centre of every patch.//!
//! By concern: the architectures and readouts ([`config`]), the transformer and its weights
//! ([`model`]), and the per-cell encoder over slide patches ([`encoder`]).

mod config;
mod encoder;
mod model;

pub use config::{DEFAULT_NUCLEUS_TOKENS, TokenReadout, VitConfig, VitMlp, VitPreset};
pub use encoder::{VitEncoderSpec, VitMorphologyEncoder};
pub use model::VitModel;

/// ImageNet normalisation, which timm's ViTs and UNI use.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
