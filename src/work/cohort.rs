//! The cohort's background work in the app: each runnable sample's cell-type composition (a
//! categorical column every bundle has, or the predicted types of a `cohort run --step predict`
//! folder) and the per-class tests between the manifest's groups; a sample opened beside the one
//! shown (split view); a model applied to other samples. A sample that cannot be read is
//! reported and the others go on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use cs_cohort::summary::share_rows;
use cs_cohort::{GroupTest, Manifest, Measure, Sample, SummaryRow, group_tests};
use cs_models::burn::tensor::Device;
use cs_models::model_file;
use cs_xenium::{Affine2, Categorical, CellColumn, XeniumBundle};
use glam::DAffine2;

use crate::io::export::csv_field;
use crate::layers::cell_layer::LoadedBundle;
use crate::work::jobs::{CancelToken, JobContext};
use crate::work::model_runs::{CONFIDENCE_COLUMN, PREDICTED_COLUMN, progress_for_part};
use crate::work::models::{
    NICHE_TABLE_COLUMN, assign_niches, niche_column, open_sample_inputs, predict_with_saved, write_predictions,
};
use crate::work::open::{OpenedSlide, load_bundle, open_slide};

/// What to compare: the column, and where `cohort run` wrote predictions (for `predicted`).
#[derive(Clone, Debug, PartialEq)]
pub struct CompositionRequest {
    pub manifest: Manifest,
    /// A categorical column of every bundle, `predicted` or `niches` (with `outputs`).
    pub column: String,
    /// The `cohort run --out` folder whose `<sample>/predict.parquet` hold predicted types.
    pub outputs: Option<PathBuf>,
}

/// Per-sample shares (or neighbourhood z-scores) and the group tests.
#[derive(Clone, Debug, PartialEq)]
pub struct CohortComposition {
    pub column: String,
    /// Shares of classes (composition, niches), or z-scores of class pairs (`nhood`).
    pub measure: Measure,
    pub rows: Vec<SummaryRow>,
    /// (sample id, group) for every sample with rows ("" when the manifest has no group column).
    pub groups: Vec<(String, String)>,
    pub tests: Vec<GroupTest>,
    /// Samples that could not be read, with why.
    pub failures: Vec<String>,
}

impl CohortComposition {
    /// The classes in first-seen order.
    pub fn classes(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.rows {
            if !out.contains(&r.class.as_str()) {
                out.push(&r.class);
            }
        }
        out
    }

    /// The share of `class` in `sample` (0 when absent).
    pub fn share(&self, sample: &str, class: &str) -> f64 {
        self.rows
            .iter()
            .find(|r| r.sample_id == sample && r.class == class)
            .map_or(0.0, |r| r.value)
    }

    /// The table as CSV: one row per sample and class (share, cells; or z-score, edges), then
    /// the tests.
    pub fn to_csv(&self) -> String {
        let mut text = if self.measure == Measure::Nhood {
            String::from("sample_id,group,class_pair,edges,z_score\n")
        } else {
            String::from("sample_id,group,class,cells,share\n")
        };
        for r in &self.rows {
            let group = self
                .groups
                .iter()
                .find(|(s, _)| *s == r.sample_id)
                .map_or("", |(_, g)| g.as_str());
            text += &format!(
                "{},{},{},{},{}\n",
                csv_field(&r.sample_id),
                csv_field(group),
                csv_field(&r.class),
                r.count,
                r.value
            );
        }
        if !self.tests.is_empty() {
            text += "\nclass,group_a,group_b,n_a,n_b,median_a,median_b,u,p_value,q_value\n";
            for t in &self.tests {
                text += &format!(
                    "{},{},{},{},{},{},{},{},{},{}\n",
                    csv_field(&t.class),
                    csv_field(&t.group_a),
                    csv_field(&t.group_b),
                    t.n_a,
                    t.n_b,
                    t.median_a,
                    t.median_b,
                    t.u,
                    t.p_value,
                    t.q_value
                );
            }
        }
        text
    }
}

/// `predicted`: the types in a `cohort run` folder's predictions.
pub const PREDICTED: &str = "predicted";

/// Reads every runnable sample's labels and compares the groups.
pub fn cohort_composition(request: CompositionRequest, cx: &JobContext) -> anyhow::Result<CohortComposition> {
    let manifest = &request.manifest;
    let runnable: Vec<_> = manifest.runnable().collect();
    let mut rows = Vec::new();
    let mut groups = Vec::new();
    let mut failures = Vec::new();
    for (i, sample) in runnable.iter().enumerate() {
        if cx.is_cancelled() {
            anyhow::bail!("cancelled");
        }
        cx.report(
            &format!("Reading {}", sample.id),
            i as f32 / runnable.len().max(1) as f32,
        );
        match sample_rows(&request, sample) {
            Ok(sample_rows) => {
                rows.extend(sample_rows);
                let group = manifest.group_of(sample).unwrap_or_default().to_owned();
                groups.push((sample.id.clone(), group));
            }
            Err(e) => failures.push(format!("{} ({}): {e:#}", sample.id, sample.row)),
        }
    }
    anyhow::ensure!(
        !rows.is_empty(),
        "no sample could be read: {}",
        failures.first().map_or("", String::as_str)
    );
    let tests = if manifest.group_column().is_some() {
        let group_of = |id: &str| {
            groups
                .iter()
                .find(|(s, _)| s == id)
                .map(|(_, g)| g.clone())
                .filter(|g| !g.is_empty())
        };
        group_tests(&rows, &group_of)
    } else {
        Vec::new()
    };
    Ok(CohortComposition {
        column: request.column.clone(),
        measure: measure_of(&request.column),
        rows,
        groups,
        tests,
        failures,
    })
}

/// The `predicted_type` of every row of a `predict` table (None where blank).
pub fn read_predicted_types(path: &Path) -> anyhow::Result<Vec<Option<String>>> {
    let columns = cs_xenium::read_table_columns(path, &["predicted_type"], &[])?;
    let Some(cs_xenium::CellColumn::Text(types)) = columns.into_iter().next() else {
        anyhow::bail!("{}: no predicted_type column", path.display());
    };
    Ok(types.into_iter().map(|t| Some(t).filter(|t| !t.is_empty())).collect())
}

/// `nhood`: the neighbourhood z-scores of a `cohort run --step enrich` folder.
pub const NHOOD: &str = "nhood";

/// What comparing `column` measures.
fn measure_of(column: &str) -> Measure {
    match column {
        NHOOD => Measure::Nhood,
        NICHES => Measure::Niche,
        _ => Measure::Composition,
    }
}

/// One sample's rows: the shares of its labels, or its neighbourhood z-scores.
fn sample_rows(request: &CompositionRequest, sample: &Sample) -> anyhow::Result<Vec<SummaryRow>> {
    if request.column == NHOOD {
        let dir = sample_outputs(request, sample, "z-scores", "--step enrich")?;
        return read_nhood_rows(&dir, &sample.id)?.with_context(|| format!("no enrich outputs in {}", dir.display()));
    }
    let labels = sample_labels(request, sample)?;
    Ok(share_rows(
        &sample.id,
        measure_of(&request.column),
        labels.iter().map(|l| l.as_deref()),
    ))
}

/// The sample's folder of the `cohort run` outputs, which `what` (made by `step`) comes from.
fn sample_outputs(request: &CompositionRequest, sample: &Sample, what: &str, step: &str) -> anyhow::Result<PathBuf> {
    let outputs = request
        .outputs
        .as_ref()
        .with_context(|| format!("{what} need the folder `cohort run {step}` wrote"))?;
    Ok(outputs.join(&sample.id))
}

/// A sample's neighbourhood enrichment from `cohort run --step enrich` (`enrich.parquet`): one
/// row per class pair `A|B`, its edge count and z-score (None: the sample has no such output).
pub fn read_nhood_rows(sample_dir: &Path, sample_id: &str) -> anyhow::Result<Option<Vec<SummaryRow>>> {
    let table = sample_dir.join("enrich.parquet");
    if !table.is_file() {
        return Ok(None);
    }
    let columns = cs_xenium::read_table_columns(&table, &["class_a", "class_b"], &["edges", "z_score"])?;
    let [
        CellColumn::Text(a),
        CellColumn::Text(b),
        CellColumn::Double(edges),
        CellColumn::Double(z),
    ] = &columns[..]
    else {
        anyhow::bail!("{}: unexpected column types", table.display());
    };
    Ok(Some(
        (0..a.len())
            .map(|i| SummaryRow {
                sample_id: sample_id.to_owned(),
                measure: Measure::Nhood,
                class: format!("{}|{}", a[i], b[i]),
                count: edges[i] as u64,
                value: z[i],
            })
            .collect(),
    ))
}

/// One sample's label per cell (None: unlabelled).
fn sample_labels(request: &CompositionRequest, sample: &cs_cohort::Sample) -> anyhow::Result<Vec<Option<String>>> {
    if request.column == PREDICTED {
        let path = sample_outputs(request, sample, "predicted types", "--step predict")?.join(PREDICTIONS_FILE);
        anyhow::ensure!(
            path.is_file(),
            "no predictions ({} is missing): apply a model to it from the Cohort tab, or run \
             `cohort run --step predict`",
            path.display()
        );
        return read_predicted_types(&path);
    }
    if request.column == NICHES {
        let dir = sample_outputs(request, sample, "niches", "--step cluster --model")?;
        return read_shared_niches(&dir)?.with_context(|| format!("no cluster outputs in {}", dir.display()));
    }
    let (bundle, _) = crate::work::open::read_bundle(&sample.xenium)?;
    let column = bundle
        .cells
        .categorical_column(&request.column)
        .with_context(|| format!("{} has no column {:?}", sample.xenium.display(), request.column))?;
    Ok(column
        .codes
        .iter()
        .map(|&code| column.categories.get(code as usize).cloned())
        .collect())
}

/// Where `cohort run --step predict` (and the Cohort tab's *Apply the model*) put a sample's
/// predicted types: `<outputs>/<sample>/predict.parquet`.
pub fn predictions_path(outputs: &Path, sample_id: &str) -> PathBuf {
    outputs.join(sample_id).join(PREDICTIONS_FILE)
}

/// A sample's predictions in the `cohort run` outputs.
const PREDICTIONS_FILE: &str = "predict.parquet";

/// Puts a sample's predictions (a `predict` table: cell_id, predicted_type and, when present,
/// confidence) on its cells, matched by cell_id: the predicted-type column first (so the cells
/// are coloured by it) and the confidence column. Returns how many cells have a prediction.
pub fn attach_predictions(bundle: &mut XeniumBundle, path: &Path) -> anyhow::Result<usize> {
    // Tables written elsewhere may have no confidence: then the types are read alone.
    let text = ["cell_id", "predicted_type"];
    let columns = match cs_xenium::read_table_columns(path, &text, &["confidence"]) {
        Ok(columns) => columns,
        Err(_) => cs_xenium::read_table_columns(path, &text, &[])?,
    };
    let (ids, types, confidence) = match columns.as_slice() {
        [CellColumn::Text(ids), CellColumn::Text(types)] => (ids, types, None),
        [
            CellColumn::Text(ids),
            CellColumn::Text(types),
            CellColumn::Double(confidence),
        ] => (ids, types, Some(confidence)),
        _ => anyhow::bail!("{}: cell_id and predicted_type are not text columns", path.display()),
    };
    let cells = &mut bundle.cells;
    let row_of: HashMap<&str, usize> = cells.ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let mut labels: Vec<String> = Vec::new();
    let mut code_of: HashMap<&str, u32> = HashMap::new();
    let mut codes = vec![cs_xenium::MISSING_CODE; cells.len()];
    let mut confidence_of_cell = vec![f64::NAN; cells.len()];
    let mut matched = 0usize;
    for (i, (id, class)) in ids.iter().zip(types).enumerate() {
        let Some(&row) = row_of.get(id.as_str()) else { continue };
        if class.is_empty() {
            continue;
        }
        let code = *code_of.entry(class.as_str()).or_insert_with(|| {
            labels.push(class.clone());
            labels.len() as u32 - 1
        });
        codes[row] = code;
        if let Some(value) = confidence.and_then(|c| c.get(i)) {
            confidence_of_cell[row] = *value;
        }
        matched += 1;
    }
    anyhow::ensure!(
        matched > 0,
        "{}: none of its {} cell ids is a cell of this sample ({} cells): predictions of another sample?",
        path.display(),
        ids.len(),
        cells.len()
    );
    cells.categorical.retain(|(name, _)| name != PREDICTED_COLUMN);
    cells
        .categorical
        .insert(0, (PREDICTED_COLUMN.to_owned(), Categorical::from_codes(labels, codes)));
    if confidence.is_some() {
        cells.numeric.retain(|(name, _)| name != CONFIDENCE_COLUMN);
        cells.numeric.push((CONFIDENCE_COLUMN.to_owned(), confidence_of_cell));
    }
    Ok(matched)
}

/// A sample to open beside the one shown (the split view's right pane).
#[derive(Clone, Debug)]
pub struct SampleToOpen {
    pub sample: Sample,
    /// The alignment the sample was left with in the app, else the manifest's is read.
    pub xenium_px_from_slide_px: Option<Affine2>,
    /// Its predictions (`predict.parquet`), when the cohort's outputs have them.
    pub predictions: Option<PathBuf>,
}

/// A sample read for the split view: its cells, its slide and where the slide lies.
pub struct OpenedSample {
    pub id: String,
    pub dir: PathBuf,
    pub loaded: LoadedBundle,
    /// The slide and `world_from_slide` (None: placed by the slide's own µm per pixel).
    pub slide: Option<(OpenedSlide, Option<DAffine2>)>,
    /// What could not be read without stopping the rest (the slide, the predictions).
    pub warnings: Vec<String>,
}

/// Reads a sample's bundle, its predictions and its slide (None: cancelled). A slide or a
/// predictions table that cannot be read is a warning: the cells still open.
pub fn open_sample(
    request: SampleToOpen,
    geometry_id: u64,
    cancel: &CancelToken,
) -> anyhow::Result<Option<OpenedSample>> {
    let sample = &request.sample;
    let where_ = format!("sample {} ({})", sample.id, sample.row);
    let Some(mut loaded) = load_bundle(&sample.xenium, geometry_id, cancel).with_context(|| where_.clone())? else {
        return Ok(None);
    };
    let mut warnings = Vec::new();
    if let Some(path) = request.predictions.as_deref().filter(|p| p.is_file())
        && let Err(e) = attach_predictions(&mut loaded.bundle, path)
    {
        warnings.push(format!("{where_}: {e:#}"));
    }
    let pixel_size_um = loaded.bundle.pixel_size_um();
    let alignment = match (request.xenium_px_from_slide_px, &sample.alignment) {
        (Some(affine), _) => Some(affine),
        (None, Some(csv)) => Some(cs_xenium::read_alignment_csv(csv).with_context(|| where_.clone())?),
        (None, None) => None,
    };
    let to_glam = |affine: Affine2| DAffine2::from_cols_array(&affine.to_cols_array());
    let slide = match (&sample.slide, &loaded.slide) {
        (Some(path), _) => Some((path.clone(), alignment.map(|a| to_glam(a.scaled(pixel_size_um))))),
        // A SpatialData store's own H&E, placed by its transformation.
        (None, Some(own)) => Some((own.path.clone(), Some(to_glam(own.world_from_slide_px)))),
        (None, None) => None,
    };
    let slide = match slide {
        Some((path, world_from_slide)) if !cancel.is_cancelled() => match open_slide(&path) {
            Ok(opened) => Some((opened, world_from_slide)),
            Err(e) => {
                warnings.push(format!("{where_}: {e}; its cells are shown without it"));
                None
            }
        },
        _ => None,
    };
    if cancel.is_cancelled() {
        return Ok(None);
    }
    Ok(Some(OpenedSample {
        id: sample.id.clone(),
        dir: sample.xenium.clone(),
        loaded,
        slide,
        warnings,
    }))
}

/// What the Cohort tab applies to samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppliedKind {
    /// A cell-type classifier: `predict.parquet`, as `cohort run --step predict` writes it.
    Classifier,
    /// A niche model: `cluster.parquet` and its mark naming the model, as `cohort run --step
    /// cluster --model` writes them.
    Niches,
}

/// A saved model to apply to some of the cohort's samples, writing each one's outputs where
/// `cohort run` would.
#[derive(Clone, Debug)]
pub struct ApplyModelRequest {
    pub manifest: Manifest,
    pub samples: Vec<String>,
    pub model_dir: PathBuf,
    pub kind: AppliedKind,
    pub outputs: PathBuf,
}

/// What applying a model to samples did.
#[derive(Clone, Debug, PartialEq)]
pub struct AppliedModel {
    pub kind: AppliedKind,
    pub outputs: PathBuf,
    /// (sample, cells predicted) of each sample done.
    pub predicted: Vec<(String, usize)>,
    /// Samples that failed, each with its manifest row and why.
    pub failures: Vec<String>,
    pub seconds: f64,
}

/// A model loaded to apply.
enum LoadedModel {
    Classifier(Box<model_file::LoadedClassifier>),
    Niches(Box<model_file::LoadedContrastive>),
}

/// Applies the model to each sample in turn (its own feature pipeline on the sample's cells and
/// slide); one failing sample is reported and the others go on.
pub fn apply_model(request: ApplyModelRequest, device: Device, cx: &JobContext) -> anyhow::Result<AppliedModel> {
    let started = std::time::Instant::now();
    let model_dir = &request.model_dir;
    let loaded = match request.kind {
        AppliedKind::Classifier => {
            let loaded = model_file::load_classifier(model_dir, &device)?;
            anyhow::ensure!(
                matches!(loaded.manifest.kind, model_file::ModelKind::Classifier { .. }),
                "{}: not a cell-type classifier",
                model_dir.display()
            );
            LoadedModel::Classifier(Box::new(loaded))
        }
        AppliedKind::Niches => LoadedModel::Niches(Box::new(model_file::load_contrastive(model_dir, &device)?)),
    };
    let n = request.samples.len();
    let mut predicted = Vec::new();
    let mut failures = Vec::new();
    for (i, id) in request.samples.iter().enumerate() {
        if cx.is_cancelled() {
            anyhow::bail!("cancelled");
        }
        let Some(sample) = request.manifest.samples.iter().find(|s| &s.id == id) else {
            failures.push(format!("{id}: not in {}", request.manifest.path.display()));
            continue;
        };
        let progress = progress_for_part(cx, format!("{id} ({}/{n})", i + 1), i, n);
        progress.report("reading", 0.0);
        let outcome = match (&sample.problem, &loaded) {
            (Some(problem), _) => Err(anyhow::anyhow!("{problem}")),
            (None, LoadedModel::Classifier(loaded)) => {
                predict_sample(loaded, sample, &request.outputs, &device, &progress)
            }
            (None, LoadedModel::Niches(loaded)) => {
                niche_sample(loaded, model_dir, sample, &request.outputs, &device, &progress)
            }
        };
        match outcome {
            Ok(cells) => predicted.push((id.clone(), cells)),
            Err(e) if cx.is_cancelled() => return Err(e),
            Err(e) => failures.push(format!("{id} ({}): {e:#}", sample.row)),
        }
    }
    Ok(AppliedModel {
        kind: request.kind,
        outputs: request.outputs,
        predicted,
        failures,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// One sample's cells in the niche model's niches, written as `<outputs>/<sample>/cluster.parquet`
/// with `cluster.json` naming the model (what [`read_shared_niches`] asks for).
fn niche_sample(
    loaded: &model_file::LoadedContrastive,
    model_dir: &Path,
    sample: &Sample,
    outputs: &Path,
    device: &Device,
    progress: &cs_models::Progress,
) -> anyhow::Result<usize> {
    let opened = sample_inputs(sample)?;
    let niches = assign_niches(
        loaded,
        model_dir,
        &opened.inputs,
        opened.slide_input(),
        device,
        progress,
    )?;
    let dir = outputs.join(&sample.id);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    cs_xenium::write_cell_parquet(
        &dir.join("cluster.parquet"),
        &opened.inputs.cell_ids,
        &[niche_column(&niches)],
    )?;
    // The mark comes last: its report names the shared model. Without `cohort run`'s
    // fingerprint, a later `cohort run --step cluster` redoes the sample.
    let mark = serde_json::json!({
        "report": {
            "cells": niches.len(),
            "niche_model": model_dir.display().to_string(),
            "written_by": "the Cohort tab",
        }
    });
    crate::util::fs::write_atomically(
        &dir.join("cluster.json"),
        serde_json::to_string_pretty(&mark)?.as_bytes(),
    )?;
    Ok(niches.len())
}

/// A manifest sample's cells as model inputs, with its slide placed by its alignment.
fn sample_inputs(sample: &Sample) -> anyhow::Result<crate::work::models::OpenedInputs> {
    open_sample_inputs(
        &sample.xenium,
        sample.slide.as_deref(),
        sample.alignment.as_deref(),
        None,
    )
}

/// One sample's predictions, written as `<outputs>/<sample>/predict.parquet`.
fn predict_sample(
    loaded: &model_file::LoadedClassifier,
    sample: &Sample,
    outputs: &Path,
    device: &Device,
    progress: &cs_models::Progress,
) -> anyhow::Result<usize> {
    let opened = sample_inputs(sample)?;
    let predictions = predict_with_saved(loaded, &opened.inputs, opened.slide_input(), device, progress)?;
    let path = predictions_path(outputs, &sample.id);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_predictions(&path, &opened.inputs.cell_ids, &loaded.class_names, &predictions)?;
    Ok(predictions.len())
}

/// `niches`: the morphology niches of a `cohort run --step cluster --model` folder.
pub const NICHES: &str = "niches";

/// A sample's niches from `cohort run --step cluster` when a shared niche model assigned them
/// (None: no cluster output). Niches clustered on each sample alone are an error: their
/// numbers mean different things in different samples.
pub fn read_shared_niches(sample_dir: &Path) -> anyhow::Result<Option<Vec<Option<String>>>> {
    let done = sample_dir.join("cluster.json");
    let table = sample_dir.join("cluster.parquet");
    if !done.is_file() || !table.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&done).with_context(|| format!("reading {}", done.display()))?;
    let mark: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", done.display()))?;
    anyhow::ensure!(
        mark["report"]["niche_model"].is_string(),
        "{}: each sample was clustered on its own, so its niches are not those of the other samples; \
         run `cohort run --step cluster --model NICHE_MODEL` (from `cellsymphony cluster --model-out`)",
        table.display()
    );
    let columns = cs_xenium::read_table_columns(&table, &[NICHE_TABLE_COLUMN], &[])?;
    let Some(CellColumn::Text(niches)) = columns.into_iter().next() else {
        anyhow::bail!("{}: no {NICHE_TABLE_COLUMN} column", table.display());
    };
    Ok(Some(
        niches.into_iter().map(|n| Some(n).filter(|n| !n.is_empty())).collect(),
    ))
}
