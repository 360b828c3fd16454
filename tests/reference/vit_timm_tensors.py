#!/usr/bin/env python3
"""The tensor names and shapes timm itself writes for the full-size encoders the app loads
(crates/cs_models/src/vit/config.rs `VitPreset`): vit_small/base/large_patch16_224 and UNI2-h's
published configuration (MahmoodLab/UNI2-h model card: vit_giant_patch14_224 with patch 14,
depth 24, 24 heads, embed 1536, mlp_ratio 2.66667 * 2, SwiGLUPacked with SiLU, 8 register tokens,
no_embed_class, layer scale 1e-5). Models are built on torch's meta device: no weights are made
or downloaded. Writes vit/timm_tensors.json; crates/cs_models/tests/vit_reference.rs compares it
with what the loader expects.

Run (needs torch and timm):
    python3 -m venv /tmp/refenv && /tmp/refenv/bin/pip install torch timm
    /tmp/refenv/bin/python tests/reference/vit_timm_tensors.py
"""

import json
import pathlib
from importlib.metadata import version

import timm
import torch

OUT = pathlib.Path(__file__).resolve().parent / "vit" / "timm_tensors.json"

MODELS = {
    "vit-s16": ("vit_small_patch16_224", {}),
    "vit-b16": ("vit_base_patch16_224", {}),
    "vit-l16": ("vit_large_patch16_224", {}),
    "uni2-h": (
        "vit_giant_patch14_224",
        dict(
            img_size=224,
            patch_size=14,
            depth=24,
            num_heads=24,
            init_values=1e-5,
            embed_dim=1536,
            mlp_ratio=2.66667 * 2,
            num_classes=0,
            no_embed_class=True,
            mlp_layer=timm.layers.SwiGLUPacked,
            act_layer=torch.nn.SiLU,
            reg_tokens=8,
            dynamic_img_size=True,
        ),
    ),
}

result = {"versions": {p: version(p) for p in ("timm", "torch")}, "models": {}}
for preset, (name, kwargs) in MODELS.items():
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False, **kwargs)
    result["models"][preset] = {
        "timm_name": name,
        "tensors": {k: list(v.shape) for k, v in model.state_dict().items()},
    }
OUT.write_text(json.dumps(result, indent=1) + "\n")
print({p: len(m["tensors"]) for p, m in result["models"].items()})
