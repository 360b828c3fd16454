//! `cellsymphony bench models`: throughput of the model pipeline on a synthetic tissue (or a
//! given bundle and slide): patch extraction + the built-in morphology encoder (cells/s), gene
//! PCA, one training epoch of the dual-modality classifier, prediction (cells/s), and k-means
//! (k = 8) on N x 128 points, on the chosen device. With a ViT (the user's weights, or seeded
//! random weights of a preset: throughput does not depend on the values), also patch extraction
//! + the ViT (cells/s).

use std::time::Instant;

use anyhow::Context as _;
use cs_models::Matrix;
use cs_models::classifier::{ClassifierInput, FusionClassifierConfig, Variant};
use cs_models::device::describe;
use cs_models::kmeans::{KMeansSettings, kmeans};
use cs_models::morphology::encode_cells;
use cs_models::pipeline::{MorphologyChoice, fit_features};
use cs_models::train::{TrainingSettings, predict, train_classifier};
use cs_models::vit::{VitEncoderSpec, VitMorphologyEncoder, VitPreset};

use crate::cli::models::BundleArgs;

#[derive(Debug, Clone)]
pub struct ModelBenchOptions {
    /// A bundle to use; None: a synthetic tissue of `cells` cells with its H&E, generated into
    /// the cache once.
    pub bundle: BundleArgs,
    pub cells: usize,
    /// Points for the k-means benchmark (128-d).
    pub kmeans_points: usize,
    pub device: String,
    /// Also time this ViT with seeded random weights (when the bundle names no ViT of its own).
    pub vit_seeded: Option<VitPreset>,
    /// Cells the ViT encodes.
    pub vit_cells: usize,
}

/// Patch extraction + a ViT.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VitBenchReport {
    pub encoder: String,
    /// Where patches were resampled: "cpu" or "device".
    pub resampling: &'static str,
    pub cells: usize,
    pub load_s: f64,
    pub cells_per_s: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelBenchReport {
    pub device: String,
    pub cells: usize,
    pub morphology_from_slide: bool,
    pub morphology_cells_per_s: f64,
    pub gene_pca_s: f64,
    pub train_epoch_s: f64,
    pub train_cells_per_s: f64,
    pub predict_cells_per_s: f64,
    pub kmeans_points: usize,
    pub kmeans_s: f64,
    pub kmeans_iterations: usize,
    pub vit: Option<VitBenchReport>,
}

pub fn models(options: &ModelBenchOptions) -> anyhow::Result<ModelBenchReport> {
    let device = crate::cli::models::device(&options.device)?;
    let bundle_args = match &options.bundle.xenium {
        Some(_) => options.bundle.clone(),
        None => {
            let dir = crate::work::demo::cache_root().join(format!("bench-models-{}", options.cells));
            let synth = cs_synth::SynthOptions {
                cells: options.cells,
                seed: 5,
                ..Default::default()
            };
            let summary = match cs_synth::cached(&synth, &dir) {
                Some(summary) => summary,
                None => cs_synth::generate(&synth, &dir, &|_, _| {}, &|| false)?,
            };
            BundleArgs {
                xenium: Some(summary.bundle_dir),
                slide: summary.slide_path,
                alignment: summary.alignment_csv,
                gene_embeddings: None,
                morphology: options.bundle.morphology.clone(),
            }
        }
    };
    let opened = crate::cli::models::open_inputs(&bundle_args)?;
    let wants_vit = options.vit_seeded.is_some() || options.bundle.morphology.needs_slide();
    anyhow::ensure!(
        !wants_vit || opened.slide.is_some(),
        "a ViT benchmark needs the H&E slide: give --slide (and --alignment)"
    );
    let n = opened.inputs.n_cells();
    let progress = cs_models::Progress::silent();

    // Features: PCA alone, then PCA + morphology (the difference is the morphology).
    let started = Instant::now();
    let _ = fit_features(&opened.inputs, None, None, &device, 0, &progress)?;
    let gene_pca_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let builtin = MorphologyChoice::Builtin;
    let (_, features) = fit_features(
        &opened.inputs,
        opened.slide_input(),
        Some(&builtin),
        &device,
        0,
        &progress,
    )?;
    let morphology_s = (started.elapsed().as_secs_f64() - gene_pca_s).max(1e-9);

    // One epoch of the dual-modality classifier on the ground-truth types (or marker labels).
    let labels = match opened.bundle.cells.categorical_column("synthetic_cell_type") {
        Some(c) => crate::work::models::labels_from_codes(&c.categories, &c.codes),
        None => crate::work::models::LabelSource::Markers(None).resolve(&opened.bundle, &opened.inputs.expression)?,
    };
    let morphology = features.morphology.as_ref().context("no morphology features")?;
    let config = FusionClassifierConfig::new(
        Variant::DualModality,
        features.genes.cols,
        morphology.cols,
        labels.class_names.len(),
    );
    let input = ClassifierInput::new(&features.genes, Some(morphology), None);
    let settings = TrainingSettings {
        epochs: 1,
        validation_fraction: 0.2,
        ..Default::default()
    };
    let started = Instant::now();
    let trained = train_classifier(&config, &input, &labels, &settings, &device, &progress)?;
    let train_epoch_s = started.elapsed().as_secs_f64();
    let rows: Vec<usize> = (0..n).collect();
    let started = Instant::now();
    predict(&trained.model, &input, &rows, &device, 1024, &progress)?;
    let predict_s = started.elapsed().as_secs_f64();

    let points = synthetic_points(options.kmeans_points, 128, 8);
    let started = Instant::now();
    let clustered = kmeans(
        &points,
        &KMeansSettings {
            k: 8,
            ..Default::default()
        },
        &device,
        &progress,
    )?;
    let kmeans_s = started.elapsed().as_secs_f64();
    let vit = vit_bench(options, &opened, &device)?;
    Ok(ModelBenchReport {
        device: describe(&device),
        cells: n,
        morphology_from_slide: opened.slide.is_some(),
        morphology_cells_per_s: n as f64 / morphology_s,
        gene_pca_s,
        train_epoch_s,
        train_cells_per_s: trained.n_train as f64 / train_epoch_s,
        predict_cells_per_s: n as f64 / predict_s,
        kmeans_points: options.kmeans_points,
        kmeans_s,
        kmeans_iterations: clustered.iterations,
        vit,
    })
}

/// Patch extraction + the ViT on the first `vit_cells` cells (None: no ViT asked for).
fn vit_bench(
    options: &ModelBenchOptions,
    opened: &crate::work::models::OpenedInputs,
    device: &cs_models::burn::tensor::Device,
) -> anyhow::Result<Option<VitBenchReport>> {
    let spec = match (&options.bundle.morphology, options.vit_seeded) {
        (MorphologyChoice::Vit(spec), _) => spec.clone(),
        (MorphologyChoice::Builtin, Some(preset)) => {
            let root = crate::work::demo::cache_root();
            std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
            let weights = root.join(format!("bench-{}-seeded.safetensors", preset.name()));
            if VitPreset::detect(&weights) != Some(preset) {
                log::info!("writing seeded {} weights to {}", preset.label(), weights.display());
                preset.config().write_seeded_weights(&weights, 1)?;
            }
            VitEncoderSpec {
                preset,
                weights,
                readout: Default::default(),
            }
        }
        (MorphologyChoice::Builtin, None) => return Ok(None),
    };
    let slide = opened.slide_input().context("a ViT benchmark needs the H&E slide")?;
    let started = Instant::now();
    let encoder = VitMorphologyEncoder::open(&spec, device)?;
    let load_s = started.elapsed().as_secs_f64();
    let n = options.vit_cells.min(opened.inputs.n_cells());
    let started = Instant::now();
    encode_cells(
        Some((slide.slide, slide.slide_px_from_world)),
        &opened.inputs.centres_um[..n],
        &opened.inputs.shapes[..n],
        &encoder,
        &cs_models::Progress::silent(),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Some(VitBenchReport {
        encoder: spec.describe(),
        resampling: if encoder.resamples_on_device() { "device" } else { "cpu" },
        cells: n,
        load_s,
        cells_per_s: n as f64 / seconds.max(1e-9),
    }))
}

/// A mixture of `k` Gaussian blobs in `dim` dimensions (deterministic).
fn synthetic_points(n: usize, dim: usize, k: usize) -> Matrix {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32
    };
    let centres: Vec<f32> = (0..k * dim).map(|_| uniform() * 4.0 - 2.0).collect();
    let mut values = Vec::with_capacity(n * dim);
    for i in 0..n {
        let c = i % k;
        for j in 0..dim {
            values.push(centres[c * dim + j] + (uniform() - 0.5));
        }
    }
    Matrix {
        rows: n,
        cols: dim,
        values,
    }
}

pub fn format_report(r: &ModelBenchReport) -> String {
    let vit = r.vit.as_ref().map_or(String::new(), |v| {
        format!(
            "\n  morphology (patches resampled on the {} + {}): {:.1} cells/s on {} cells (weights loaded in {:.1} s)",
            v.resampling, v.encoder, v.cells_per_s, v.cells, v.load_s
        )
    });
    let text = format!(
        "models on {} ({} cells{})\n  morphology (patches + built-in encoder): {:.0} cells/s\n  gene PCA (50 components): {:.2} s\n  dual-modality training, one epoch: {:.2} s ({:.0} cells/s)\n  prediction: {:.0} cells/s\n  k-means k=8 on {} x 128: {:.2} s ({} iterations)",
        r.device,
        r.cells,
        if r.morphology_from_slide {
            ", morphology from the H&E"
        } else {
            ", shapes only"
        },
        r.morphology_cells_per_s,
        r.gene_pca_s,
        r.train_epoch_s,
        r.train_cells_per_s,
        r.predict_cells_per_s,
        r.kmeans_points,
        r.kmeans_s,
        r.kmeans_iterations
    );
    text + &vit
}
