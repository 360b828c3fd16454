//! The ViT as a morphology encoder: each cell's 224-px patch at 0.5 µm/px through the model, in
//! batches, as many forward passes at once as the device allows, with patches resampled on the
//! device when it is a GPU.

use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{TokenReadout, VitModel, VitPreset};
use crate::ModelError;
use crate::morphology::{BlockImage, CellShape, FOUNDATION_PATCH, MorphologyEncoder, PatchGeometry, PatchSampling};

/// Patches per forward pass.
const BATCH: usize = 32;

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
        let on_cpu = crate::device::is_cpu(model.device());
        Self {
            name: name.replace('-', "_"),
            readout,
            dim: model.config().embed_dim,
            patch: PatchGeometry {
                size_px: model.config().img_size as u32,
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
        let size = self.model.config().img_size;
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
        if sampling.size_px != self.model.config().img_size || sampling.origins_px.len() != shapes.len() {
            return Err(ModelError::Shape(format!(
                "{} patches of {} px for {} cells; the ViT takes {} px",
                sampling.origins_px.len(),
                sampling.size_px,
                shapes.len(),
                self.model.config().img_size
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
    use crate::vit::VitConfig;
    use burn::tensor::TensorData;

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
}
