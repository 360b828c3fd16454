//! `cellsymphony embed | train | predict | cluster`: the models for batch use, writing parquet
//! tables keyed by cell_id and printing a JSON or text summary.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use cs_models::Progress;
use cs_models::burn::tensor::Device;
use cs_models::classifier::Variant;
use cs_models::device::{ComputeDevice, describe, standalone_device};
use cs_models::model_file::{self, TrainingSummary};
use cs_models::pipeline::{MorphologyChoice, fit_features, fit_gene_features};
use cs_models::train::TrainingSettings;
use cs_xenium::{CellColumn, write_cell_parquet};
use serde_json::json;

use crate::work::models::{
    ClassifierRun, LabelSource, NicheRun, OpenedInputs, assign_niches, classify_features, cluster_enrichment,
    h5ad_inputs, niche_column, open_sample_inputs, predict_with_saved, run_classifier, run_niches, save_niche_model,
    write_predictions,
};

/// Inputs shared by the commands: a bundle, optionally its slide and alignment, and a device.
#[derive(Clone, Debug, Default)]
pub struct BundleArgs {
    pub xenium: Option<PathBuf>,
    pub slide: Option<PathBuf>,
    pub alignment: Option<PathBuf>,
    /// Per-cell gene embeddings (parquet/CSV keyed by cell_id, or .npy with NAME.cell_ids.txt) to
    /// use instead of the gene PCA.
    pub gene_embeddings: Option<PathBuf>,
    /// The morphology encoder to fit with (for `predict`, a ViT here says where the model's
    /// weights file is now).
    pub morphology: MorphologyChoice,
}

/// The bundle named by `args` (with imported gene embeddings, when given) and its slide.
pub(crate) fn open_inputs(args: &BundleArgs) -> anyhow::Result<OpenedInputs> {
    let dir = args.xenium.as_ref().context("--xenium DIR is required")?;
    open_sample_inputs(
        dir,
        args.slide.as_deref(),
        args.alignment.as_deref(),
        args.gene_embeddings.as_deref(),
    )
}

pub fn device(choice: &str) -> anyhow::Result<Device> {
    let choice: ComputeDevice = choice.parse().map_err(anyhow::Error::msg)?;
    Ok(standalone_device(choice)?)
}

pub(crate) fn stderr_progress() -> Progress {
    let last = std::sync::Mutex::new((String::new(), -1i32));
    Progress::new(
        move |stage, fraction| {
            let percent = (fraction * 100.0) as i32 / 10 * 10;
            if let Ok(mut last) = last.lock()
                && (last.0 != stage || last.1 != percent)
            {
                *last = (stage.to_string(), percent);
                log::info!("{stage}: {percent}%");
            }
        },
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
    )
}

/// `embed`: gene features (PCA or imported) and morphology features (built-in or a ViT) of
/// every cell, as parquet. The device is only opened for a ViT.
pub fn embed(args: &BundleArgs, out: &Path, seed: u64, device_name: &str, json_out: bool) -> anyhow::Result<String> {
    let started = Instant::now();
    let device = match &args.morphology {
        MorphologyChoice::Builtin => cs_models::cpu_device(),
        MorphologyChoice::Vit(_) => device(device_name)?,
    };
    let opened = open_inputs(args)?;
    let (pipeline, features) = fit_features(
        &opened.inputs,
        opened.slide_input(),
        Some(&args.morphology),
        &device,
        seed,
        &stderr_progress(),
    )?;
    let mut columns = Vec::new();
    let imported = opened.inputs.gene_embedding.as_ref().map(|e| e.columns.clone());
    for c in 0..features.genes.cols {
        let name = match &imported {
            Some(names) => format!("gene_{}", names[c]),
            None => format!("gene_pc_{}", c + 1),
        };
        columns.push((
            name,
            CellColumn::Number((0..features.genes.rows).map(|r| features.genes.row(r)[c]).collect()),
        ));
    }
    let morphology = features.morphology.as_ref().context("no morphology features")?;
    let names = pipeline
        .morphology
        .as_ref()
        .context("no morphology pipeline")?
        .feature_names();
    for (c, name) in names.iter().enumerate() {
        columns.push((
            format!("morph_{name}"),
            CellColumn::Number((0..morphology.rows).map(|r| morphology.row(r)[c]).collect()),
        ));
    }
    write_cell_parquet(out, &opened.inputs.cell_ids, &columns)?;
    let summary = json!({
        "cells": opened.inputs.n_cells(),
        "gene_features": pipeline.gene_encoder.describe(),
        "morphology_features": names,
        "morphology_encoder": args.morphology.describe(),
        "morphology_from_slide": opened.slide.is_some(),
        "device": describe(&device),
        "out": out.display().to_string(),
        "seconds": started.elapsed().as_secs_f64(),
    });
    Ok(if json_out {
        serde_json::to_string_pretty(&summary)?
    } else {
        format!(
            "{} cells: {} + {} morphology features of {}{} -> {} ({:.1} s)",
            opened.inputs.n_cells(),
            pipeline.gene_encoder.describe(),
            names.len(),
            args.morphology.describe(),
            if opened.slide.is_some() {
                " (from the H&E)"
            } else {
                " (shapes only: no slide)"
            },
            out.display(),
            started.elapsed().as_secs_f64()
        )
    })
}

#[derive(Clone, Debug)]
pub struct TrainArgs {
    pub bundle: BundleArgs,
    /// AnnData reference instead of a bundle (gene modality only).
    pub h5ad: Option<PathBuf>,
    pub h5ad_raw: bool,
    pub labels: String,
    pub variant: Variant,
    pub training: TrainingSettings,
    pub d_model: usize,
    pub n_layers: usize,
    pub out: PathBuf,
    pub device: String,
}

/// `train`: fits the feature pipeline and the classifier, reports per-class metrics on the
/// held-out fifth, and saves the model folder.
pub fn train(args: &TrainArgs, json_out: bool) -> anyhow::Result<String> {
    let started = Instant::now();
    let device = device(&args.device)?;
    let run = ClassifierRun {
        variant: args.variant,
        training: args.training.clone(),
        d_model: args.d_model,
        n_layers: args.n_layers,
        morphology: args.bundle.morphology.clone(),
    };
    let progress = stderr_progress();
    let (outcome, label_source, n_cells) = if let Some(h5ad) = &args.h5ad {
        anyhow::ensure!(
            !args.variant.uses_morphology() && !args.variant.uses_position(),
            "an AnnData reference has genes only: use --variant unimodal"
        );
        let (_, expression, labels) = h5ad_inputs(h5ad, args.h5ad_raw, &args.labels)?;
        let (pipeline, features) = fit_gene_features(&expression, args.training.seed)?;
        let centres = vec![[0.0f32; 2]; features.genes.rows];
        let n = features.genes.rows;
        (
            classify_features(&features, &centres, pipeline, &labels, &run, &device, &progress)?,
            format!("{} obs/{}", h5ad.display(), args.labels),
            n,
        )
    } else {
        let opened = open_inputs(&args.bundle)?;
        let source = LabelSource::parse(&args.labels);
        let labels = source.resolve(&opened.bundle, &opened.inputs.expression)?;
        let outcome = run_classifier(&opened.inputs, opened.slide_input(), &labels, &run, &device, &progress)?;
        (outcome, source.describe(), opened.inputs.n_cells())
    };
    let trained = &outcome.trained;
    let summary = TrainingSummary {
        label_source: label_source.clone(),
        settings: args.training.clone(),
        report: trained.report.clone(),
        epoch_losses: trained.epoch_losses.clone(),
        n_train: trained.n_train,
        n_validation: trained.n_validation,
    };
    model_file::save_classifier(
        &args.out,
        &trained.model,
        &trained.class_names,
        &trained.config,
        &outcome.pipeline,
        summary.clone(),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let value = json!({
        "model": args.out.display().to_string(),
        "variant": format!("{:?}", args.variant),
        "device": describe(&device),
        "cells": n_cells,
        "labelled": outcome.n_labelled,
        "label_source": label_source,
        "n_train": trained.n_train,
        "n_validation": trained.n_validation,
        "n_calibration": trained.n_calibration,
        "best_epoch": trained.best_epoch,
        "temperature": trained.config.temperature,
        "macro_f1": trained.report.macro_f1,
        "accuracy": trained.report.accuracy,
        "per_class": trained.report.per_class,
        "confusion": trained.report.confusion,
        "epoch_losses": trained.epoch_losses,
        "seconds": seconds,
    });
    Ok(if json_out {
        serde_json::to_string_pretty(&value)?
    } else {
        format!(
            "{} on {} ({} labelled cells of {n_cells}; {} train / {} held out; {:.1} s on {}){}\n{}",
            args.variant.label(),
            label_source,
            outcome.n_labelled,
            trained.n_train,
            trained.n_validation,
            seconds,
            describe(&device),
            match trained.best_epoch {
                Some(epoch) => format!(
                    "\n{} training cells held back: epoch {epoch} of {} kept, confidences calibrated at temperature {:.2}",
                    trained.n_calibration,
                    trained.epoch_losses.len(),
                    trained.config.temperature
                ),
                None => String::new(),
            },
            trained.report.to_text()
        )
    })
}

/// `predict`: applies a saved classifier to every cell of a bundle; writes cell_id, predicted
/// class and confidence.
pub fn predict_cmd(
    args: &BundleArgs,
    model_dir: &Path,
    out: &Path,
    device_name: &str,
    json_out: bool,
) -> anyhow::Result<String> {
    let started = Instant::now();
    let device = device(device_name)?;
    let mut loaded = model_file::load_classifier(model_dir, &device)?;
    relocate_vit(&mut loaded.manifest.features, &args.morphology, model_dir)?;
    let opened = open_inputs(args)?;
    let progress = stderr_progress();
    let predictions = predict_with_saved(&loaded, &opened.inputs, opened.slide_input(), &device, &progress)?;
    let names = write_predictions(out, &opened.inputs.cell_ids, &loaded.class_names, &predictions)?;
    let mut counts: Vec<(String, usize)> = loaded
        .class_names
        .iter()
        .map(|c| (c.clone(), names.iter().filter(|n| *n == c).count()))
        .collect();
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    let value = json!({
        "cells": predictions.len(),
        "model": model_dir.display().to_string(),
        "device": describe(&device),
        "out": out.display().to_string(),
        "predicted": counts.iter().map(|(c, n)| json!({"class": c, "cells": n})).collect::<Vec<_>>(),
        "seconds": started.elapsed().as_secs_f64(),
    });
    Ok(if json_out {
        serde_json::to_string_pretty(&value)?
    } else {
        let mut text = format!(
            "{} cells -> {} ({:.1} s)\n",
            predictions.len(),
            out.display(),
            started.elapsed().as_secs_f64()
        );
        for (class, n) in counts {
            text += &format!("{class:<24} {n:>8}\n");
        }
        text
    })
}

/// A saved model's ViT readout where `--morphology` says its weights file is now; the
/// architecture must be the one the model was fitted with.
fn relocate_vit(
    features: &mut cs_models::pipeline::FeaturePipeline,
    morphology: &MorphologyChoice,
    model_dir: &Path,
) -> anyhow::Result<()> {
    let MorphologyChoice::Vit(spec) = morphology else {
        return Ok(());
    };
    let fitted = features.morphology.as_ref().and_then(|m| m.vit.as_ref());
    if let Some(fitted) = fitted
        && fitted.preset != spec.preset
    {
        anyhow::bail!(
            "{} was trained with {}; --morphology must name the same architecture (it only says where the weights are now)",
            model_dir.display(),
            fitted.describe()
        );
    }
    // The model's own readout is kept: only the weights file moves.
    features
        .relocate_vit_weights(spec.weights.clone())
        .with_context(|| model_dir.display().to_string())?;
    Ok(())
}

/// `cohort run --step cluster --model DIR`: every cell of a bundle assigned to the niches of a
/// saved niche model (`cluster --model-out`); writes cell_id and morphology_cluster.
pub fn assign_niches_cmd(
    args: &BundleArgs,
    model_dir: &Path,
    out: &Path,
    device_name: &str,
    json_out: bool,
) -> anyhow::Result<String> {
    let started = Instant::now();
    let device = device(device_name)?;
    let mut loaded = model_file::load_contrastive(model_dir, &device)?;
    relocate_vit(&mut loaded.manifest.features, &args.morphology, model_dir)?;
    let opened = open_inputs(args)?;
    let niches = assign_niches(
        &loaded,
        model_dir,
        &opened.inputs,
        opened.slide_input(),
        &device,
        &stderr_progress(),
    )?;
    write_cell_parquet(out, &opened.inputs.cell_ids, &[niche_column(&niches)])?;
    let k = match &loaded.manifest.kind {
        model_file::ModelKind::Contrastive { training, .. } => training.niche_centroids.len(),
        model_file::ModelKind::Classifier { .. } => 0,
    };
    let mut cells_per_niche = vec![0usize; k];
    for &c in &niches {
        cells_per_niche[c as usize] += 1;
    }
    let value = json!({
        "cells": niches.len(),
        "niche_model": model_dir.display().to_string(),
        "cells_per_niche": cells_per_niche,
        "device": describe(&device),
        "out": out.display().to_string(),
        "seconds": started.elapsed().as_secs_f64(),
    });
    Ok(if json_out {
        serde_json::to_string_pretty(&value)?
    } else {
        format!(
            "{} cells in the niches of {} -> {} ({:.1} s)\n",
            niches.len(),
            model_dir.display(),
            out.display(),
            started.elapsed().as_secs_f64()
        )
    })
}

/// `cluster`: contrastive alignment, morphology projection, k-means on the device; writes
/// cell_id, morphology_cluster and the 2-D map; summarises cluster x label enrichment.
/// Options of `cluster`.
#[derive(Clone, Debug)]
pub struct ClusterArgs {
    pub bundle: BundleArgs,
    pub k: usize,
    /// Label source for the enrichment table.
    pub labels: Option<String>,
    /// Where to save the contrastive model folder.
    pub model_out: Option<PathBuf>,
    pub out: PathBuf,
    pub epochs: usize,
    pub seed: u64,
    pub device: String,
}

pub fn cluster(a: &ClusterArgs, json_out: bool) -> anyhow::Result<String> {
    let started = Instant::now();
    let device = device(&a.device)?;
    let opened = open_inputs(&a.bundle)?;
    let out = &a.out;
    let mut run = NicheRun {
        k: a.k,
        morphology: a.bundle.morphology.clone(),
        ..Default::default()
    };
    run.contrastive.epochs = a.epochs;
    run.contrastive.seed = a.seed;
    let outcome = run_niches(&opened.inputs, opened.slide_input(), &run, &device, &stderr_progress())?;
    write_cell_parquet(
        out,
        &opened.inputs.cell_ids,
        &[
            niche_column(&outcome.clusters),
            (
                "map_x".into(),
                CellColumn::Number(outcome.map_2d.iter().map(|p| p[0]).collect()),
            ),
            (
                "map_y".into(),
                CellColumn::Number(outcome.map_2d.iter().map(|p| p[1]).collect()),
            ),
        ],
    )?;
    if let Some(dir) = &a.model_out {
        save_niche_model(dir, &outcome)?;
    }
    let enrichment = match &a.labels {
        Some(source) => {
            let labels = LabelSource::parse(source).resolve(&opened.bundle, &opened.inputs.expression)?;
            Some(cluster_enrichment(&outcome.clusters, outcome.k, &labels))
        }
        None => None,
    };
    let t = &outcome.trained;
    let value = json!({
        "cells": outcome.clusters.len(),
        "k": outcome.k,
        "device": describe(&device),
        "morphology_from_slide": opened.slide.is_some(),
        "morphology_encoder": a.bundle.morphology.describe(),
        "infonce_epoch_losses": t.epoch_losses,
        "retrieval_top1": t.retrieval_top1,
        "retrieval_chance": t.retrieval_chance,
        "retrieval_pool": t.retrieval_pool,
        "cluster_sizes": (0..outcome.k).map(|c| outcome.clusters.iter().filter(|&&a| a as usize == c).count()).collect::<Vec<_>>(),
        "enrichment": enrichment,
        "out": out.display().to_string(),
        "seconds": started.elapsed().as_secs_f64(),
    });
    if json_out {
        return Ok(serde_json::to_string_pretty(&value)?);
    }
    let mut text = format!(
        "{} cells in {} morphology clusters ({:.1} s on {})\nInfoNCE {:.3} -> {:.3}; matched-pair top-1 retrieval {:.3} (chance {:.4}, pool {})\n",
        outcome.clusters.len(),
        outcome.k,
        started.elapsed().as_secs_f64(),
        describe(&device),
        t.epoch_losses.first().copied().unwrap_or(f64::NAN),
        t.epoch_losses.last().copied().unwrap_or(f64::NAN),
        t.retrieval_top1,
        t.retrieval_chance,
        t.retrieval_pool
    );
    if let Some(e) = enrichment {
        text += &format!("{:<6}", "");
        for class in &e.class_names {
            text += &format!(" {:>12.12}", class);
        }
        text += "\n";
        for (c, row) in e.log2_enrichment.iter().enumerate() {
            text += &format!("M{:<5}", c + 1);
            for v in row {
                text += &format!(" {v:>12.2}");
            }
            text += "\n";
        }
    }
    Ok(text)
}
