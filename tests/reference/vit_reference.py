#!/usr/bin/env python3
"""Reference outputs for the ViT morphology encoders in crates/cs_models/src/vit.rs.

Builds small timm VisionTransformers with the same structure as the encoders' presets (ViT-S/B/L:
class token in the position table, GELU MLP; UNI-style: layer scale; UNI2-h-style: 8 register
tokens, position table over the patches only, SwiGLU MLP, layer scale), fills every parameter
with seeded random values (so layer scale and biases are not trivially 1 or 0), runs seeded
uint8 images through them with ImageNet normalisation, and writes:

  vit/<name>.safetensors   the model's state_dict (what a user would give the app)
  vit/expected.safetensors images_<size> (uint8, N x H x W x 3) and <name>.tokens
                           (float32, N x tokens x dim: forward_features, after the final norm)

The Rust test crates/cs_models/tests/vit_reference.rs loads the weights with the app's own
safetensors reader and must match the tokens within 1e-4.

Run (needs torch, timm, safetensors, numpy):
    python3 -m venv /tmp/refenv && /tmp/refenv/bin/pip install torch timm safetensors numpy
    /tmp/refenv/bin/python tests/reference/vit_reference.py
"""

import pathlib

import numpy as np
import timm
import torch
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file as save_torch
from timm.models.vision_transformer import VisionTransformer

OUT = pathlib.Path(__file__).resolve().parent / "vit"
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

# name -> (image size, timm keyword arguments). Keep in step with the configs in the Rust test.
MODELS = {
    # ViT-S/16, B/16, L/16 structure.
    "tiny_plain": (
        32,
        dict(patch_size=8, embed_dim=48, depth=2, num_heads=3, mlp_ratio=4.0),
    ),
    # UNI (ViT-L/16 with layer scale) structure, plus register tokens inside the position table.
    "tiny_layer_scale": (
        32,
        dict(patch_size=8, embed_dim=48, depth=2, num_heads=3, mlp_ratio=4.0, init_values=1e-5, reg_tokens=4),
    ),
    # UNI2-h (ViT-H/14) structure.
    "tiny_uni2": (
        28,
        dict(
            patch_size=7,
            embed_dim=48,
            depth=2,
            num_heads=3,
            init_values=1e-5,
            mlp_ratio=2.66667 * 2,
            mlp_layer=timm.layers.SwiGLUPacked,
            act_layer=torch.nn.SiLU,
            reg_tokens=8,
            no_embed_class=True,
        ),
    ),
}


def randomise(model: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "norm.weight":
                p.copy_(1.0 + 0.1 * noise)
            elif name.endswith(".gamma"):
                p.copy_(0.5 + 0.2 * noise)
            else:
                p.copy_(0.1 * noise)


def images(size: int, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, size, size, 3), dtype=np.uint8)


def normalise(batch: np.ndarray) -> torch.Tensor:
    x = (batch.astype(np.float32) / np.float32(255.0) - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    expected = {}
    for seed, (name, (size, kwargs)) in enumerate(MODELS.items()):
        model = VisionTransformer(img_size=size, num_classes=0, **kwargs).eval()
        randomise(model, 1000 + seed)
        save_torch({k: v.contiguous() for k, v in model.state_dict().items()}, OUT / f"{name}.safetensors")
        key = f"images_{size}"
        if key not in expected:
            expected[key] = images(size, 3, size)
        with torch.no_grad():
            tokens = model.forward_features(normalise(expected[key]))
        expected[f"{name}.tokens"] = tokens.numpy().astype(np.float32)
        print(f"{name}: tokens {tuple(tokens.shape)}, |x| max {tokens.abs().max().item():.3f}")
    save_numpy(expected, OUT / "expected.safetensors")


if __name__ == "__main__":
    main()
