//! The ViT encoders against PyTorch timm: the same random weights (saved by
//! `tests/reference/vit_reference.py`) on the same images give the same tokens within 1e-4.
// The helper `check` runs inside the tests; a failed load or read should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use cs_models::cpu_device;
use cs_models::safetensors::SafeTensors;
use cs_models::vit::{IMAGENET_MEAN, IMAGENET_STD, TokenReadout, VitConfig, VitMlp, VitModel};

fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference/vit")
}

/// The architectures of the script's models; register tokens, layer scale and the position
/// table's layout are left for the loader to find in the files.
fn config(img_size: usize, patch_size: usize, mlp: VitMlp) -> VitConfig {
    VitConfig {
        img_size,
        patch_size,
        embed_dim: 48,
        depth: 2,
        num_heads: 3,
        mlp,
        reg_tokens: 0,
        layer_scale: false,
        pos_embed_covers_prefix: true,
        mean: IMAGENET_MEAN,
        std: IMAGENET_STD,
    }
}

fn check(name: &str, config: VitConfig, expect: (usize, bool, bool)) {
    let device = cpu_device();
    let dir = reference_dir();
    let model = VitModel::load(config, name, &dir.join(format!("{name}.safetensors")), &device).unwrap();
    let found = model.config();
    assert_eq!(
        (found.reg_tokens, found.layer_scale, found.pos_embed_covers_prefix),
        expect,
        "{name}"
    );
    let expected = SafeTensors::open(&dir.join("expected.safetensors")).unwrap();
    let (images, image_shape) = expected.read_u8(&format!("images_{}", found.img_size)).unwrap();
    let (want, want_shape) = expected.read_f32(&format!("{name}.tokens")).unwrap();
    let tokens = model.forward_features(&images);
    assert_eq!(
        tokens.dims().to_vec(),
        want_shape,
        "{name}: {image_shape:?} images give the wrong token shape"
    );
    let got = tokens.into_data().try_to_vec::<f32>().unwrap();
    let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-4, "{name}: largest difference from timm {worst}");

    // The nucleus readout is the mean of the central patch tokens of timm's output.
    let [n, t, d] = [want_shape[0], want_shape[1], want_shape[2]];
    let readout = TokenReadout::NucleusTokens { k: 4 };
    let embedding = model.embed(&images, readout).into_data().try_to_vec::<f32>().unwrap();
    let indices = readout.token_indices(found);
    for image in 0..n {
        for j in 0..d {
            let mean = indices.iter().map(|&i| want[(image * t + i) * d + j]).sum::<f32>() / indices.len() as f32;
            assert!(
                (embedding[image * d + j] - mean).abs() < 1e-4,
                "{name}: readout differs"
            );
        }
    }
}

#[test]
fn plain_vit_matches_timm() {
    check(
        "tiny_plain",
        config(32, 8, VitMlp::Gelu { hidden: 192 }),
        (0, false, true),
    );
}

#[test]
fn vit_with_layer_scale_and_registers_matches_timm() {
    check(
        "tiny_layer_scale",
        config(32, 8, VitMlp::Gelu { hidden: 192 }),
        (4, true, true),
    );
}

#[test]
fn uni2_style_vit_matches_timm() {
    check(
        "tiny_uni2",
        config(28, 7, VitMlp::SwiGlu { hidden: 128 }),
        (8, true, false),
    );
}

#[test]
fn wrong_weights_name_the_file_and_the_tensor() {
    let device = cpu_device();
    let path = reference_dir().join("tiny_plain.safetensors");
    // Right file, wrong architecture: a wider model.
    let mut wide = config(32, 8, VitMlp::Gelu { hidden: 256 });
    wide.embed_dim = 64;
    wide.num_heads = 4;
    let message = VitModel::load(wide, "wide", &path, &device).err().unwrap().to_string();
    assert!(message.contains("tiny_plain.safetensors"), "{message}");
    assert!(
        message.contains("cls_token has shape [1, 1, 48], the model needs [1, 1, 64]"),
        "{message}"
    );
    // A different patch grid.
    let message = VitModel::load(config(64, 8, VitMlp::Gelu { hidden: 192 }), "big", &path, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(message.contains("pos_embed has 17 positions"), "{message}");
    // Not weights at all.
    let not_weights = reference_dir().join("../vit_reference.py");
    let message = VitModel::load(config(32, 8, VitMlp::Gelu { hidden: 192 }), "x", &not_weights, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(message.contains("not a safetensors file"), "{message}");
}

/// The full-size presets against the tensor names and shapes timm itself writes
/// (`tests/reference/vit_timm_tensors.py`, models built on torch's meta device): every tensor the
/// loader reads is in timm's state dict with the same shape, and timm writes no other tensor
/// than the classifier head (which forward_features does not use).
#[test]
fn presets_read_the_tensors_timm_writes() {
    use cs_models::vit::VitPreset;
    let text = std::fs::read_to_string(reference_dir().join("timm_tensors.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    for preset in VitPreset::ALL {
        let timm = reference["models"][preset.name()]["tensors"]
            .as_object()
            .unwrap_or_else(|| panic!("no timm tensors for {}", preset.name()));
        let ours = preset.config().timm_tensors();
        for (name, shape) in &ours {
            let theirs: Vec<usize> = timm
                .get(name)
                .unwrap_or_else(|| panic!("{}: timm has no {name}", preset.name()))
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(&theirs, shape, "{}: {name}", preset.name());
        }
        let extra: Vec<&String> = timm
            .keys()
            .filter(|k| !k.starts_with("head.") && !ours.iter().any(|(n, _)| n == *k))
            .collect();
        assert!(extra.is_empty(), "{}: timm also writes {extra:?}", preset.name());
    }
}
