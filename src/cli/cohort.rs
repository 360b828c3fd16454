//! `cellsymphony cohort run` and `cohort summarise`: one step over every sample of a manifest
//! ([`cs_cohort::Manifest`]), each sample's outputs in its own folder, and the gathered table.
//!
//! A step writes `OUT/<sample_id>/<step>.parquet` (keyed by cell_id, or by patch or class pair),
//! then `<step>.json` (the step's report, the fingerprint of its inputs and parameters, timing)
//! as the mark that the sample is done, and `<step>.log`; every file through a temporary file and
//! a rename. A sample whose `<step>.json` holds the same fingerprint is skipped, so a killed run
//! resumes. One failing sample is logged and the others go on; the exit status is the number of
//! samples that failed or could not run (at most 100).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use cs_cohort::summary::share_rows;
use cs_cohort::{Manifest, Measure, Sample, Shard, SummaryRow, fingerprint_paths, group_tests};
use cs_models::pipeline::MorphologyChoice;
use cs_xenium::CellColumn;
use serde_json::json;

use crate::cli::models::BundleArgs;
use crate::io::export::csv_field;
use crate::util::fs::write_atomically;
use crate::work::cohort::{PREDICTED, read_nhood_rows, read_predicted_types, read_shared_niches};

/// The per-sample steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Embed,
    Predict,
    Cluster,
    Virtual,
    Enrich,
}

impl Step {
    pub const ALL: [Step; 5] = [Step::Embed, Step::Predict, Step::Cluster, Step::Virtual, Step::Enrich];

    pub fn name(self) -> &'static str {
        match self {
            Step::Embed => "embed",
            Step::Predict => "predict",
            Step::Cluster => "cluster",
            Step::Virtual => "virtual",
            Step::Enrich => "enrich",
        }
    }
}

impl std::str::FromStr for Step {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Step::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| format!("{text:?}: the steps are embed, predict, cluster, virtual and enrich"))
    }
}

/// What `cohort run` is asked for.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub manifest: PathBuf,
    pub step: Step,
    pub out: PathBuf,
    /// The classifier folder, for `predict`; a shared niche model, for `cluster`.
    pub model: Option<PathBuf>,
    pub shard: Shard,
    /// Only these samples (empty: all of the shard's).
    pub samples: Vec<String>,
    pub device: String,
    pub seed: u64,
    pub morphology: MorphologyChoice,
    /// Morphology clusters, for `cluster`.
    pub k: usize,
    pub epochs: usize,
    /// Genes (and proteins) to predict, for `virtual`.
    pub genes: Vec<String>,
    /// Cell labels for `enrich`: `predicted` (this cohort's `predict` outputs) or a bundle column.
    pub labels: String,
    /// The spatial graph for `enrich`: radius=R, knn=K or delaunay.
    pub nhood: String,
    pub perms: usize,
}

/// How one sample went.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SampleOutcome {
    pub sample_id: String,
    pub row: String,
    /// `ran`, `skipped` (done before with the same inputs), `failed` or `invalid` (the manifest row).
    pub status: &'static str,
    pub seconds: f64,
    pub message: String,
}

/// The samples that failed or could not run; `cohort run` exits with their number.
#[derive(Debug)]
pub struct SamplesFailed {
    pub failed: usize,
    pub report: String,
}

impl std::fmt::Display for SamplesFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} sample(s) failed or could not run (see the table above)",
            self.failed
        )
    }
}

impl std::error::Error for SamplesFailed {}

/// Runs the step over the shard's samples; the report as JSON or text, or [`SamplesFailed`].
pub fn run(options: &RunOptions, json_out: bool) -> anyhow::Result<String> {
    let manifest = Manifest::read(&options.manifest)?;
    for id in &options.samples {
        anyhow::ensure!(
            manifest.samples.iter().any(|s| &s.id == id),
            "{}: no sample {id:?} in the manifest",
            options.manifest.display()
        );
    }
    match options.step {
        Step::Predict => anyhow::ensure!(options.model.is_some(), "--step predict needs --model DIR"),
        Step::Virtual => anyhow::ensure!(!options.genes.is_empty(), "--step virtual needs --genes"),
        _ => {}
    }
    std::fs::create_dir_all(&options.out).with_context(|| format!("creating {}", options.out.display()))?;
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for (position, sample) in manifest.samples.iter().enumerate() {
        if !options.shard.takes(position) || (!options.samples.is_empty() && !options.samples.contains(&sample.id)) {
            continue;
        }
        let outcome = match &sample.problem {
            Some(problem) => SampleOutcome {
                sample_id: sample.id.clone(),
                row: sample.row.clone(),
                status: "invalid",
                seconds: 0.0,
                message: format!("{} {}: {problem}", options.manifest.display(), sample.row),
            },
            None => run_sample(options, sample),
        };
        eprintln!(
            "[{}] {} {}{}",
            options.step.name(),
            outcome.sample_id,
            outcome.status,
            if outcome.message.is_empty() {
                String::new()
            } else {
                format!(": {}", outcome.message)
            }
        );
        outcomes.push(outcome);
    }
    let count = |status: &str| outcomes.iter().filter(|o| o.status == status).count();
    let failed = count("failed") + count("invalid");
    let report = if json_out {
        serde_json::to_string_pretty(&json!({
            "step": options.step.name(),
            "manifest": options.manifest.display().to_string(),
            "out": options.out.display().to_string(),
            "shard": format!("{}/{}", options.shard.index, options.shard.count),
            "ran": count("ran"),
            "skipped": count("skipped"),
            "failed": failed,
            "seconds": started.elapsed().as_secs_f64(),
            "samples": outcomes,
        }))?
    } else {
        let mut text = format!(
            "{} over {} sample(s) of {}: {} ran, {} skipped (done before), {failed} failed; {:.1} s\n\n| sample | status | seconds | message |\n|---|---|---|---|\n",
            options.step.name(),
            outcomes.len(),
            options.manifest.display(),
            count("ran"),
            count("skipped"),
            started.elapsed().as_secs_f64()
        );
        for o in &outcomes {
            let _ = writeln!(
                text,
                "| {} | {} | {:.1} | {} |",
                o.sample_id, o.status, o.seconds, o.message
            );
        }
        text
    };
    if failed > 0 {
        return Err(SamplesFailed { failed, report }.into());
    }
    Ok(report)
}

/// The files of one sample's step.
struct StepFiles {
    dir: PathBuf,
    table: PathBuf,
    done: PathBuf,
    log: PathBuf,
}

fn step_files(out: &Path, sample_id: &str, step: Step) -> StepFiles {
    let dir = out.join(sample_id);
    StepFiles {
        table: dir.join(format!("{}.parquet", step.name())),
        done: dir.join(format!("{}.json", step.name())),
        log: dir.join(format!("{}.log", step.name())),
        dir,
    }
}

fn run_sample(options: &RunOptions, sample: &Sample) -> SampleOutcome {
    let started = Instant::now();
    let files = step_files(&options.out, &sample.id, options.step);
    let fingerprint = step_fingerprint(options, sample, &files).0;
    let outcome = |status, message: String| SampleOutcome {
        sample_id: sample.id.clone(),
        row: sample.row.clone(),
        status,
        seconds: started.elapsed().as_secs_f64(),
        message,
    };
    if done_with(&files.done, &fingerprint) && files.table.is_file() {
        return outcome("skipped", String::new());
    }
    // A stale mark goes first: a run killed from here on leaves the sample to be done again.
    let _ = std::fs::remove_file(&files.done);
    if let Err(e) = std::fs::create_dir_all(&files.dir) {
        return outcome("failed", format!("creating {}: {e}", files.dir.display()));
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_step(options, sample, &files)))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            Err(anyhow::anyhow!("the step stopped unexpectedly: {what}"))
        });
    let seconds = started.elapsed().as_secs_f64();
    let mut log = format!(
        "cellsymphony {} cohort run --step {}\nsample {} ({} of {})\nxenium {}\n",
        env!("CARGO_PKG_VERSION"),
        options.step.name(),
        sample.id,
        sample.row,
        options.manifest.display(),
        sample.xenium.display()
    );
    match result {
        Ok(report) => {
            let done = json!({
                "sample_id": sample.id,
                "step": options.step.name(),
                "fingerprint": fingerprint,
                "seconds": seconds,
                "table": files.table.file_name().map(|n| n.to_string_lossy().into_owned()),
                "report": report,
            });
            let _ = writeln!(
                log,
                "done in {seconds:.1} s\n{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            let written = serde_json::to_string_pretty(&done)
                .map_err(anyhow::Error::from)
                .and_then(|text| write_atomically(&files.log, log.as_bytes()).map(|_| text))
                .and_then(|text| write_atomically(&files.done, text.as_bytes()));
            match written {
                Ok(()) => outcome("ran", String::new()),
                Err(e) => outcome("failed", format!("{e:#}")),
            }
        }
        Err(e) => {
            let message = format!("{e:#}").replace('\n', " ");
            let _ = writeln!(log, "failed after {seconds:.1} s: {message}");
            let _ = write_atomically(&files.log, log.as_bytes());
            // The manifest row too, so a bad slide or folder is found where it was listed.
            outcome(
                "failed",
                format!("{} {}: {message}", options.manifest.display(), sample.row),
            )
        }
    }
}

/// Whether `done` records a finished step with this fingerprint.
fn done_with(done: &Path, fingerprint: &str) -> bool {
    std::fs::read_to_string(done)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|v| v["fingerprint"] == fingerprint)
}

/// The inputs and parameters a step's outputs depend on.
fn step_fingerprint(options: &RunOptions, sample: &Sample, files: &StepFiles) -> cs_cohort::Fingerprint {
    let mut paths: Vec<&Path> = vec![&sample.xenium];
    paths.extend(sample.slide.as_deref());
    paths.extend(sample.alignment.as_deref());
    paths.extend(options.morphology.weights());
    let predictions = files.dir.join("predict.parquet");
    let mut parameters = format!(
        "cellsymphony {} step={} seed={} morphology={}",
        env!("CARGO_PKG_VERSION"),
        options.step.name(),
        options.seed,
        options.morphology.describe()
    );
    match options.step {
        Step::Embed => {}
        Step::Predict => paths.extend(options.model.as_deref()),
        Step::Cluster => match options.model.as_deref() {
            Some(model) => paths.push(model),
            None => parameters += &format!(" k={} epochs={}", options.k, options.epochs),
        },
        Step::Virtual => parameters += &format!(" genes={}", options.genes.join(",")),
        Step::Enrich => {
            parameters += &format!(
                " labels={} nhood={} perms={}",
                options.labels, options.nhood, options.perms
            );
            if options.labels == PREDICTED {
                paths.push(&predictions);
            }
        }
    }
    fingerprint_paths(&paths, &parameters)
}

/// Runs one step on one sample; returns the step's report.
fn run_step(options: &RunOptions, sample: &Sample, files: &StepFiles) -> anyhow::Result<serde_json::Value> {
    let bundle = BundleArgs {
        xenium: Some(sample.xenium.clone()),
        slide: sample.slide.clone(),
        alignment: sample.alignment.clone(),
        gene_embeddings: None,
        morphology: options.morphology.clone(),
    };
    let report = match options.step {
        Step::Embed => crate::cli::models::embed(&bundle, &files.table, options.seed, &options.device, true)?,
        Step::Predict => {
            let model = options.model.as_deref().context("--step predict needs --model DIR")?;
            crate::cli::models::predict_cmd(&bundle, model, &files.table, &options.device, true)?
        }
        Step::Cluster if options.model.is_some() => {
            let model = options.model.as_deref().context("a niche model")?;
            crate::cli::models::assign_niches_cmd(&bundle, model, &files.table, &options.device, true)?
        }
        Step::Cluster => crate::cli::models::cluster(
            &crate::cli::models::ClusterArgs {
                bundle,
                k: options.k,
                labels: None,
                model_out: None,
                out: files.table.clone(),
                epochs: options.epochs,
                seed: options.seed,
                device: options.device.clone(),
            },
            true,
        )?,
        Step::Virtual => {
            anyhow::ensure!(
                sample.slide.is_some(),
                "virtual expression reads the H&E: give the sample a slide (and alignment) in the manifest"
            );
            crate::cli::virtual_expression::run(
                &crate::cli::virtual_expression::VirtualArgs {
                    bundle,
                    genes: options.genes.clone(),
                    out: files.table.clone(),
                    settings: cs_models::virtual_expression::VirtualSettings {
                        seed: options.seed,
                        ..Default::default()
                    },
                    device: options.device.clone(),
                },
                true,
            )?
        }
        Step::Enrich => return enrich_sample(options, sample, files),
    };
    Ok(serde_json::from_str(&report)?)
}

/// Neighbourhood enrichment of one sample's cell types: the class pairs' edge counts and
/// z-scores as `enrich.parquet`, the cells per class in the report.
fn enrich_sample(options: &RunOptions, sample: &Sample, files: &StepFiles) -> anyhow::Result<serde_json::Value> {
    let (bundle, _) = crate::work::open::read_bundle(&sample.xenium)?;
    let cells = &bundle.cells;
    let column = if options.labels == PREDICTED {
        let predictions = files.dir.join("predict.parquet");
        anyhow::ensure!(
            predictions.is_file(),
            "{} is missing: run --step predict first (or give --labels a column of the bundle)",
            predictions.display()
        );
        let (column, unknown) = cs_xenium::explorer::read_cell_labels(&predictions, cells, "predicted_type")?;
        anyhow::ensure!(
            unknown == 0,
            "{}: {unknown} cell ids are not cells of {} (predicted from another bundle?)",
            predictions.display(),
            sample.xenium.display()
        );
        column
    } else {
        crate::work::models::categorical_column(&bundle, &options.labels)?.clone()
    };
    let n_classes = column.categories.len();
    let kind = crate::cli::parse_graph_kind(&options.nhood)?;
    let graph = cs_analysis::SpatialGraph::build(&cells.x_um, &cells.y_um, kind)?;
    let result = cs_analysis::nhood_enrichment(
        &graph,
        &column.codes,
        n_classes,
        None,
        &cs_analysis::NhoodOptions {
            n_perms: options.perms,
            seed: options.seed,
        },
    )?;
    let (mut a, mut b, mut count, mut z) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..n_classes {
        for j in 0..n_classes {
            a.push(column.categories[i].clone());
            b.push(column.categories[j].clone());
            count.push(result.count(i, j) as f64);
            z.push(result.zscore(i, j));
        }
    }
    cs_xenium::write_table_parquet(
        &files.table,
        &[
            ("class_a".into(), CellColumn::Text(a)),
            ("class_b".into(), CellColumn::Text(b)),
            ("edges".into(), CellColumn::Double(count)),
            ("z_score".into(), CellColumn::Double(z)),
        ],
    )?;
    Ok(json!({
        "labels": options.labels,
        "classes": column.categories,
        "cells_per_class": result.cells_per_class,
        "cells": result.n_cells,
        "graph": options.nhood,
        "edges": graph.nnz(),
        "n_perms": result.n_perms,
    }))
}

/// Gathers every sample's outputs under `out` into `summary.parquet` / `summary.csv` (and the
/// group tests into `group_tests.parquet` / `.csv` when the manifest has a group column).
pub fn summarise(manifest_path: &Path, out: &Path, json_out: bool) -> anyhow::Result<String> {
    let manifest = Manifest::read(manifest_path)?;
    let mut rows: Vec<SummaryRow> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    for sample in &manifest.samples {
        if let Some(problem) = &sample.problem {
            missing.push(format!("{} ({}): {problem}", sample.id, sample.row));
            continue;
        }
        let before = rows.len();
        gather_sample(out, sample, &mut rows, &mut missing)
            .with_context(|| format!("sample {} ({})", sample.id, sample.row))?;
        if rows.len() == before {
            missing.push(format!(
                "{}: no predict, shared-niche cluster or enrich outputs in {}",
                sample.id,
                out.join(&sample.id).display()
            ));
        }
    }
    anyhow::ensure!(
        !rows.is_empty(),
        "{}: no sample has outputs to summarise (run `cohort run --step predict` and `--step enrich` first)",
        out.display()
    );
    // Rows come from runnable samples only, whose ids are unique.
    let sample_of: std::collections::HashMap<&str, &Sample> = manifest.runnable().map(|s| (s.id.as_str(), s)).collect();
    let mut columns: Vec<(String, CellColumn)> = vec![(
        "sample_id".into(),
        CellColumn::Text(rows.iter().map(|r| r.sample_id.clone()).collect()),
    )];
    for (c, name) in manifest.metadata_columns.iter().enumerate() {
        columns.push((
            name.clone(),
            CellColumn::Text(
                rows.iter()
                    .map(|r| {
                        sample_of
                            .get(r.sample_id.as_str())
                            .map_or("", |s| s.metadata[c].as_str())
                            .to_owned()
                    })
                    .collect(),
            ),
        ));
    }
    columns.extend([
        (
            "measure".into(),
            CellColumn::Text(rows.iter().map(|r| r.measure.name().to_owned()).collect()),
        ),
        (
            "class".into(),
            CellColumn::Text(rows.iter().map(|r| r.class.clone()).collect()),
        ),
        (
            "count".into(),
            CellColumn::Double(rows.iter().map(|r| r.count as f64).collect()),
        ),
        (
            "value".into(),
            CellColumn::Double(rows.iter().map(|r| r.value).collect()),
        ),
    ]);
    write_table(&out.join("summary"), &columns)?;
    let group_column = manifest.group_column().map(str::to_owned);
    let tests = if group_column.is_some() {
        let group_of = |id: &str| sample_of.get(id).and_then(|s| manifest.group_of(s)).map(str::to_owned);
        group_tests(&rows, &group_of)
    } else {
        Vec::new()
    };
    if !tests.is_empty() {
        let text = |f: &dyn Fn(&cs_cohort::GroupTest) -> String| CellColumn::Text(tests.iter().map(f).collect());
        let number = |f: &dyn Fn(&cs_cohort::GroupTest) -> f64| CellColumn::Double(tests.iter().map(f).collect());
        write_table(
            &out.join("group_tests"),
            &[
                ("measure".into(), text(&|t| t.measure.name().to_owned())),
                ("class".into(), text(&|t| t.class.clone())),
                ("group_a".into(), text(&|t| t.group_a.clone())),
                ("group_b".into(), text(&|t| t.group_b.clone())),
                ("n_a".into(), number(&|t| t.n_a as f64)),
                ("n_b".into(), number(&|t| t.n_b as f64)),
                ("median_a".into(), number(&|t| t.median_a)),
                ("median_b".into(), number(&|t| t.median_b)),
                ("u".into(), number(&|t| t.u)),
                ("p_value".into(), number(&|t| t.p_value)),
                ("q_value".into(), number(&|t| t.q_value)),
            ],
        )?;
    }
    let samples_with_rows = {
        let mut ids: Vec<&str> = rows.iter().map(|r| r.sample_id.as_str()).collect();
        ids.dedup();
        ids.len()
    };
    if json_out {
        return Ok(serde_json::to_string_pretty(&json!({
            "summary": out.join("summary.parquet").display().to_string(),
            "rows": rows.len(),
            "samples": samples_with_rows,
            "metadata_columns": manifest.metadata_columns,
            "group_column": group_column,
            "group_tests": tests,
            "missing": missing,
        }))?);
    }
    let mut text = format!(
        "{} rows from {samples_with_rows} sample(s) -> {} and summary.csv\n",
        rows.len(),
        out.join("summary.parquet").display()
    );
    for m in &missing {
        let _ = writeln!(text, "  not summarised: {m}");
    }
    if !tests.is_empty() {
        let _ = writeln!(
            text,
            "\nBetween groups of {:?} (Mann-Whitney U, BH across classes) -> group_tests.csv\n| measure | class | groups | medians | p | q |\n|---|---|---|---|---|---|",
            group_column.unwrap_or_default()
        );
        for t in &tests {
            let _ = writeln!(
                text,
                "| {} | {} | {} vs {} ({} / {}) | {:.3} / {:.3} | {:.3} | {:.3} |",
                t.measure.name(),
                t.class,
                t.group_a,
                t.group_b,
                t.n_a,
                t.n_b,
                t.median_a,
                t.median_b,
                t.p_value,
                t.q_value
            );
        }
    }
    Ok(text)
}

/// One sample's summary rows: composition from its predictions (else from the labels its
/// enrichment used) and neighbourhood z-scores from its enrichment.
fn gather_sample(
    out: &Path,
    sample: &Sample,
    rows: &mut Vec<SummaryRow>,
    left_out: &mut Vec<String>,
) -> anyhow::Result<()> {
    let dir = out.join(&sample.id);
    let predictions = dir.join("predict.parquet");
    let enrich_done = dir.join("enrich.json");
    if predictions.is_file() {
        let types = read_predicted_types(&predictions)?;
        rows.extend(share_rows(
            &sample.id,
            Measure::Composition,
            types.iter().map(Option::as_deref),
        ));
    }
    // Niche frequencies only from a shared niche model: niches clustered per sample differ.
    match read_shared_niches(&dir) {
        Ok(Some(niches)) => rows.extend(share_rows(
            &sample.id,
            Measure::Niche,
            niches.iter().map(Option::as_deref),
        )),
        Ok(None) => {}
        Err(e) => left_out.push(format!("{} niches: {e:#}", sample.id)),
    }
    if !enrich_done.is_file() {
        return Ok(());
    }
    let done: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&enrich_done).with_context(|| format!("reading {}", enrich_done.display()))?,
    )
    .with_context(|| format!("{} is not JSON", enrich_done.display()))?;
    if !predictions.is_file() {
        let report = &done["report"];
        let classes: Vec<String> = serde_json::from_value(report["classes"].clone()).unwrap_or_default();
        let counts: Vec<u64> = serde_json::from_value(report["cells_per_class"].clone()).unwrap_or_default();
        let total: u64 = counts.iter().sum();
        rows.extend(
            classes
                .iter()
                .zip(&counts)
                .filter(|(_, n)| **n > 0)
                .map(|(class, &n)| SummaryRow {
                    sample_id: sample.id.clone(),
                    measure: Measure::Composition,
                    class: class.clone(),
                    count: n,
                    value: n as f64 / total.max(1) as f64,
                }),
        );
    }
    rows.extend(read_nhood_rows(&dir, &sample.id)?.unwrap_or_default());
    Ok(())
}

/// `STEM.parquet` and `STEM.csv`.
fn write_table(stem: &Path, columns: &[(String, CellColumn)]) -> anyhow::Result<()> {
    let parquet = stem.with_extension("parquet");
    cs_xenium::write_table_parquet(&parquet, columns)?;
    let rows = columns.first().map_or(0, |(_, c)| c.len());
    let mut csv = String::new();
    csv += &columns.iter().map(|(n, _)| csv_field(n)).collect::<Vec<_>>().join(",");
    csv.push('\n');
    for row in 0..rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|(_, c)| match c {
                CellColumn::Text(v) => csv_field(&v[row]),
                CellColumn::Number(v) => v[row].to_string(),
                CellColumn::Double(v) if v[row].is_nan() => String::new(),
                CellColumn::Double(v) => v[row].to_string(),
            })
            .collect();
        csv += &cells.join(",");
        csv.push('\n');
    }
    write_atomically(&stem.with_extension("csv"), csv.as_bytes())?;
    Ok(())
}
