//! `cellsymphony virtual`: predicts chosen genes' expression from the H&E alone on a grid of
//! patches over the whole slide, trained where Xenium measured them (see
//! [`cs_models::virtual_expression`]); writes one row per patch as parquet and reports each gene's
//! held-out Pearson and Spearman r beside the shuffled-patch control.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use cs_models::device::describe;
use cs_models::virtual_expression::{GeneScore, VirtualSettings, virtual_expression};

use crate::cli::models::{BundleArgs, device, open_inputs, stderr_progress};
use crate::work::models::{open_tile_encoder, patch_table, virtual_targets};

pub struct VirtualArgs {
    pub bundle: BundleArgs,
    pub genes: Vec<String>,
    pub out: PathBuf,
    pub settings: VirtualSettings,
    pub device: String,
}

pub fn run(args: &VirtualArgs, json_out: bool) -> anyhow::Result<String> {
    let started = Instant::now();
    let device = device(&args.device)?;
    let progress = stderr_progress();
    let opened = open_inputs(&args.bundle)?;
    let slide = opened
        .slide_input()
        .context("virtual expression reads the H&E: give --slide FILE and --alignment CSV")?;
    let targets = virtual_targets(&opened.bundle, &opened.inputs.expression)?;
    let foundation = open_tile_encoder(&args.bundle.morphology, &device)?;
    let result = virtual_expression(
        &slide,
        &opened.inputs.centres_um,
        &targets,
        &args.genes,
        &args.settings,
        foundation.as_deref(),
        &device,
        &progress,
    )?;
    let grid = result.grid;
    let n = grid.len();
    let (ids, columns) = patch_table(&result);
    cs_xenium::write_cell_parquet(&args.out, &ids, &columns)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let mean =
        |f: &dyn Fn(&GeneScore) -> f64| result.scores.iter().map(f).sum::<f64>() / result.scores.len().max(1) as f64;
    let (mean_pearson, mean_control) = (mean(&|s| s.pearson), mean(&|s| s.control_pearson));
    let tissue_patches = result
        .tissue_fraction
        .iter()
        .filter(|&&t| t >= cs_models::virtual_expression::MIN_TISSUE_FRACTION)
        .count();
    if json_out {
        return Ok(serde_json::to_string_pretty(&serde_json::json!({
            "out": args.out.display().to_string(),
            "patch_um": grid.patch_um,
            "patches": n,
            "tissue_patches": tissue_patches,
            "n_train": result.n_train,
            "n_test": result.n_test,
            "features": result.feature_source,
            "scores": result.scores,
            "mean_pearson": mean_pearson,
            "mean_control_pearson": mean_control,
            "device": describe(&device),
            "seconds": seconds,
        }))?);
    }
    let mut text = format!(
        "{n} patches of {} µm ({tissue_patches} on tissue), read as {}; trained on {} measured patches, {} held \
         out in whole tissue blocks; {seconds:.1} s on {}\n\n| gene | Pearson r | Spearman r | shuffled control r |\n|---|---|---|---|\n",
        grid.patch_um,
        result.feature_source,
        result.n_train,
        result.n_test,
        describe(&device)
    );
    for s in &result.scores {
        text += &format!(
            "| {} | {:.3} | {:.3} | {:.3} |\n",
            s.gene, s.pearson, s.spearman, s.control_pearson
        );
    }
    text += &format!(
        "| mean | {mean_pearson:.3} | | {mean_control:.3} |\nWritten to {}\n",
        args.out.display()
    );
    Ok(text)
}
