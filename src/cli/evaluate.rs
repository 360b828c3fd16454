//! `cellsymphony evaluate`: every classifier variant the inputs allow and the classical baselines
//! (logistic regression, nearest centroid, kNN) trained on the same random or spatial splits over
//! several seeds, reported as a Markdown table (and JSON) of macro-F1 mean ± sd, accuracy,
//! per-class F1 and calibration error.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use cs_models::classifier::Variant;
use cs_models::device::describe;
use cs_models::evaluate::{Evaluation, EvaluationInputs, EvaluationPlan, ModelSize, SplitKind, evaluate};
use cs_models::pipeline::{CellInputs, fit_features, fit_gene_features};
use cs_models::train::{LrSchedule, TrainingSettings};

use crate::cli::models::{BundleArgs, device, open_inputs, stderr_progress};
use crate::work::models::{LabelSource, h5ad_inputs};

pub struct EvaluateArgs {
    pub bundle: BundleArgs,
    /// AnnData reference instead of a bundle (genes only: no position, no morphology).
    pub h5ad: Option<PathBuf>,
    pub h5ad_raw: bool,
    pub labels: String,
    pub split: SplitKind,
    pub seeds: usize,
    pub training: TrainingSettings,
    pub size: ModelSize,
    /// CellSymphony variants to train (the baselines always run).
    pub variants: Vec<Variant>,
    pub device: String,
    /// Where to write the JSON and the Markdown table (besides standard output).
    pub out_json: Option<PathBuf>,
    pub out_markdown: Option<PathBuf>,
    /// Each seed's held-out cells (ids), so a reference script can score the same split.
    pub out_splits: Option<PathBuf>,
}

pub fn run(args: &EvaluateArgs, json_out: bool) -> anyhow::Result<String> {
    let started = Instant::now();
    let device = device(&args.device)?;
    let progress = stderr_progress();
    let seeds: Vec<u64> = (0..args.seeds.max(1) as u64).collect();
    // What each source gives: gene features, morphology, positions, labels, and its cells.
    let (features, centres_um, labels, source, cell_ids) = if let Some(h5ad) = &args.h5ad {
        anyhow::ensure!(
            args.split == SplitKind::Random,
            "{}: an AnnData reference has no cell positions here: use --split random",
            h5ad.display()
        );
        let (cell_ids, expression, labels) = h5ad_inputs(h5ad, args.h5ad_raw, &args.labels)?;
        let (_, features) = fit_gene_features(&expression, 0)?;
        let source = format!("{} obs/{}", h5ad.display(), args.labels);
        (features, None, labels, source, cell_ids)
    } else {
        let opened = open_inputs(&args.bundle)?;
        let source = LabelSource::parse(&args.labels);
        let labels = source.resolve(&opened.bundle, &opened.inputs.expression)?;
        // Morphology from the H&E when given, else from the cells' shapes (the built-in encoder).
        let (_, features) = fit_features(
            &opened.inputs,
            opened.slide_input(),
            Some(&args.bundle.morphology),
            &device,
            0,
            &progress,
        )?;
        let CellInputs {
            cell_ids, centres_um, ..
        } = opened.inputs;
        (features, Some(centres_um), labels, source.describe(), cell_ids)
    };
    let inputs = EvaluationInputs {
        genes: &features.genes,
        morphology: features.morphology.as_ref(),
        centres_um: centres_um.as_deref(),
        labels: &labels,
    };
    let plan = EvaluationPlan {
        split: args.split,
        seeds,
        training: args.training.clone(),
        size: args.size,
        variants: args.variants.clone(),
    };
    let evaluation = evaluate(&inputs, &plan, &device, &progress)?;
    let schedule = match args.training.schedule {
        LrSchedule::Constant => "constant",
        LrSchedule::WarmupCosine => "warm-up and cosine decay",
    };
    let markdown = format!(
        "{}\nLabels: {source}. {} epochs (at least {} steps), lr {} ({schedule}), batch {}, d_model {}, {} layers, on {}; {:.1} s in all.\n",
        evaluation.to_markdown(),
        args.training.epochs,
        args.training.min_steps,
        args.training.learning_rate,
        args.training.batch_size,
        args.size.d_model,
        args.size.n_layers,
        describe(&device),
        started.elapsed().as_secs_f64()
    );
    let json = serde_json::to_string_pretty(&serde_json::json!({
        "labels": source,
        "device": describe(&device),
        "seconds": started.elapsed().as_secs_f64(),
        "evaluation": evaluation,
        "summary": summary(&evaluation),
    }))?;
    if let Some(path) = &args.out_json {
        cs_files::write_atomically(path, json.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.out_splits {
        let splits: Vec<serde_json::Value> = evaluation
            .seeds
            .iter()
            .zip(&evaluation.test_rows)
            .map(|(seed, rows)| {
                let ids: Vec<&str> = rows.iter().map(|&r| cell_ids[r].as_str()).collect();
                serde_json::json!({ "seed": seed, "test_cell_ids": ids })
            })
            .collect();
        let text = serde_json::to_string(&serde_json::json!({ "split": evaluation.split, "seeds": splits }))?;
        cs_files::write_atomically(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.out_markdown {
        cs_files::write_atomically(path, markdown.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if json_out { json } else { markdown })
}

/// Per method: macro-F1 mean and sd, mean accuracy and ECE.
fn summary(evaluation: &Evaluation) -> Vec<serde_json::Value> {
    use cs_models::evaluate::mean_sd;
    evaluation
        .methods
        .iter()
        .map(|m| {
            let (f1, sd) = m.macro_f1_mean_sd();
            serde_json::json!({
                "method": m.method,
                "inputs": m.inputs,
                "macro_f1_mean": f1,
                "macro_f1_sd": sd,
                "accuracy_mean": mean_sd(&m.accuracy).0,
                "ece_mean": mean_sd(&m.ece).0,
            })
        })
        .collect()
}
