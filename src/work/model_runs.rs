//! Model runs in the app: the settings a user picks (device, cells, labels, variant), the work of
//! a classifier or niche run as a job (progress, ETA and cancel through its [`JobContext`]), the
//! results, and a per-cell cache on disk (parquet + JSON keyed by bundle, model and parameters)
//! so that running the same thing again is instant.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use cs_analysis::CellSet;
use cs_models::burn::tensor::Device;
use cs_models::classifier::Variant;
use cs_models::device::ComputeDevice;
use cs_models::evaluate::{Evaluation, EvaluationInputs, EvaluationPlan, ModelSize, SplitKind, evaluate};
use cs_models::labels::Labels;
use cs_models::metrics::ClassificationReport;
use cs_models::model_file::{self, TrainingSummary};
use cs_models::pipeline::{CellInputs, MorphologyChoice, SlideInput, fit_features};
use cs_models::virtual_expression::{GeneScore, VirtualSettings, virtual_expression};
use cs_models::vit::{TokenReadout, VitEncoderSpec, VitPreset};
use cs_models::{ModelError, Progress};
use cs_slide::SlideSource;
use cs_xenium::{CellColumn, XeniumBundle};
use glam::DAffine2;
use serde::{Deserialize, Serialize};

use crate::layers::patch_layer::PatchGridValues;
use crate::util::display_name;
use crate::util::fs::write_atomically;
use crate::work::jobs::JobContext;
use crate::work::models::{
    ClassifierRun, LabelSource, NicheRun, cell_inputs, niche_column, open_tile_encoder, patch_table,
    predict_with_saved, read_gene_embedding, run_classifier, run_niches, save_niche_model, slide_px_from_world,
    virtual_targets,
};

/// Name of the column the classifier's predictions go into.
pub const PREDICTED_COLUMN: &str = "predicted type";
pub const CONFIDENCE_COLUMN: &str = "prediction confidence";

/// Where training labels come from, as chosen in the panel.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelChoice {
    Markers,
    Column(String),
    Csv(PathBuf),
    /// Each selection is a class (a cell in several takes the first).
    Selections,
}

impl LabelChoice {
    pub fn label(&self) -> String {
        match self {
            LabelChoice::Markers => "marker genes".into(),
            LabelChoice::Column(c) => format!("column {c}"),
            LabelChoice::Csv(p) => format!("CSV {}", display_name(p)),
            LabelChoice::Selections => "my selections".into(),
        }
    }
}

/// What the user set in the Models tab.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSettings {
    pub device: ComputeDevice,
    pub variant: Variant,
    pub labels: LabelChoice,
    pub epochs: usize,
    pub learning_rate: f64,
    pub seed: u64,
    /// Run on the active selection's cells only.
    pub selection_only: bool,
    pub k: usize,
    pub niche_epochs: usize,
    /// Gene embeddings computed elsewhere (None: the gene PCA).
    pub gene_embeddings: Option<PathBuf>,
    /// The ViT morphology encoder (None: the built-in one, which needs no weights).
    pub vit_preset: Option<VitPreset>,
    pub vit_weights: Option<PathBuf>,
    pub readout: TokenReadout,
}

impl ModelSettings {
    /// The morphology encoder chosen; a ViT without its weights file is refused with a reason.
    pub fn morphology(&self) -> anyhow::Result<MorphologyChoice> {
        match self.vit_preset {
            None => Ok(MorphologyChoice::Builtin),
            Some(preset) => {
                let weights = self.vit_weights.clone().ok_or_else(|| {
                    anyhow::anyhow!(
                        "{} needs its weights: choose the .safetensors file (Models tab, Weights...)",
                        preset.label()
                    )
                })?;
                Ok(MorphologyChoice::Vit(VitEncoderSpec {
                    preset,
                    weights,
                    readout: self.readout,
                }))
            }
        }
    }
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            device: ComputeDevice::Gpu,
            variant: Variant::DualModality,
            labels: LabelChoice::Markers,
            epochs: 20,
            learning_rate: cs_models::train::TrainingSettings::default().learning_rate,
            seed: 0,
            selection_only: false,
            k: 8,
            niche_epochs: 20,
            gene_embeddings: None,
            vit_preset: None,
            vit_weights: None,
            readout: TokenReadout::default(),
        }
    }
}

/// Identifies a run's inputs: the cache key and the staleness check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunKey {
    pub bundle: PathBuf,
    pub n_cells: usize,
    pub with_slide: bool,
    /// Parameters, written out (variant, labels, epochs, lr, seed / k, epochs, seed).
    pub parameters: String,
    /// Hash of the cells the run covers (0: all).
    pub scope: u64,
}

impl RunKey {
    fn file_stem(&self) -> String {
        let mut h = DefaultHasher::new();
        self.hash(&mut h);
        format!("{:016x}", h.finish())
    }
}

/// A file's modification time and size for a cache key (empty when there is no file), so a
/// file rewritten in place makes a new key.
fn file_stamp(path: Option<&std::path::Path>) -> String {
    match path.and_then(|p| std::fs::metadata(p).ok()) {
        Some(m) => format!(" [{:?} {} bytes]", m.modified().ok(), m.len()),
        None => String::new(),
    }
}

/// The work of a run, as the job runs it.
pub type RunWork<T> = Box<dyn FnOnce(&JobContext) -> anyhow::Result<T> + Send>;

/// A run ready to start as a job: the key of its inputs, its label, and its work.
pub struct PreparedRun<T> {
    pub key: RunKey,
    pub label: String,
    pub work: RunWork<T>,
}

/// The classifier's outcome over the run's cells.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassifierResult {
    pub variant: Variant,
    pub label_source: String,
    pub class_names: Vec<String>,
    /// Cell rows (bundle order) the run covered, with their predictions.
    pub rows: Vec<u32>,
    pub predicted: Vec<u16>,
    pub confidence: Vec<f32>,
    pub report: ClassificationReport,
    pub epoch_losses: Vec<f64>,
    pub n_labelled: usize,
    pub n_train: usize,
    pub n_validation: usize,
    pub seconds: f64,
    pub device: String,
    /// The trained model's folder (model.json + weights.bpk) beside the cached run, for
    /// *Save model…* and `cellsymphony predict` (None: not cached, or saving failed).
    #[serde(default)]
    pub model_dir: Option<PathBuf>,
    /// What the logits were divided by for the confidences (1: not calibrated).
    #[serde(default = "unit_temperature")]
    pub temperature: f32,
    /// Training cells held back to pick the epoch and fit the temperature (0: none), and the
    /// epoch kept.
    #[serde(default)]
    pub n_calibration: usize,
    #[serde(default)]
    pub best_epoch: Option<usize>,
    #[serde(skip)]
    pub from_cache: bool,
}

fn unit_temperature() -> f32 {
    1.0
}

/// The niche run's outcome over the run's cells.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NicheResult {
    pub k: usize,
    pub rows: Vec<u32>,
    pub clusters: Vec<u32>,
    pub map_2d: Vec<[f32; 2]>,
    pub infonce_losses: Vec<f64>,
    pub retrieval_top1: f64,
    pub retrieval_chance: f64,
    pub seconds: f64,
    pub device: String,
    /// The niche model folder (contrastive model and centroids) in the run cache, for other
    /// samples (None: not cached, or written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_dir: Option<PathBuf>,
    #[serde(skip)]
    pub from_cache: bool,
}

/// What a worker needs of the open data.
#[derive(Clone)]
pub struct RunData {
    pub bundle: Arc<XeniumBundle>,
    pub slide: Option<(Arc<dyn SlideSource>, DAffine2)>,
    /// The cells to run on (None: all).
    pub scope: Option<CellSet>,
    /// Named selections, for `LabelChoice::Selections`.
    pub selections: Vec<(String, CellSet)>,
    /// Where finished runs are cached (None: not cached).
    pub cache_dir: Option<PathBuf>,
    /// Per-cell gene embeddings to use instead of the gene PCA (parquet, CSV or .npy).
    pub gene_embeddings: Option<PathBuf>,
}

impl RunData {
    fn key(&self, mut parameters: String) -> RunKey {
        if let Some(path) = &self.gene_embeddings {
            // The file's time and size too (and its ids' for .npy): a rewritten embedding is a new run.
            parameters += &format!(
                " genes={}{}{}",
                path.display(),
                file_stamp(Some(path)),
                file_stamp(Some(&cs_xenium::npy_cell_ids_path(path)))
            );
        }
        let scope = self.scope.as_ref().map_or(0, |s| {
            let mut h = DefaultHasher::new();
            for cell in s.iter() {
                cell.hash(&mut h);
            }
            h.finish() | 1
        });
        RunKey {
            bundle: self.bundle.dir.clone(),
            n_cells: self.bundle.cells.len(),
            with_slide: self.slide.is_some(),
            parameters,
            scope,
        }
    }

    fn rows(&self) -> Vec<usize> {
        match &self.scope {
            Some(set) => set.iter().collect(),
            None => (0..self.bundle.cells.len()).collect(),
        }
    }

    fn slide_input(&self) -> Option<SlideInput<'_>> {
        self.slide.as_ref().map(|(slide, world_from_slide)| SlideInput {
            slide: slide.as_ref(),
            slide_px_from_world: slide_px_from_world(*world_from_slide),
        })
    }
}

/// Where cached runs live by default.
pub fn default_cache_dir() -> PathBuf {
    crate::work::demo::cache_root().join("model-runs")
}

/// The models' progress reporter, writing into the job's progress (with a repaint) and stopping
/// at its cancel flag.
pub fn progress_for(cx: &JobContext) -> Progress {
    progress_for_part(cx, String::new(), 0, 1)
}

/// As [`progress_for`], for part `part` of `parts` of a job (one sample of several): its stages
/// are prefixed with `prefix` and its fractions placed in the part's share of the whole.
pub fn progress_for_part(cx: &JobContext, prefix: String, part: usize, parts: usize) -> Progress {
    let (shared, repaint) = (cx.progress.clone(), cx.repaint());
    let parts = parts.max(1) as f32;
    Progress::new(
        move |stage, fraction| {
            let whole = (part as f32 + fraction.clamp(0.0, 1.0)) / parts;
            if prefix.is_empty() {
                shared.set(stage, whole);
            } else {
                shared.set(&format!("{prefix}: {stage}"), whole);
            }
            repaint();
        },
        cx.cancel.shared_flag(),
    )
}

fn resolve_labels(
    choice: &LabelChoice,
    data: &RunData,
    expression: &cs_models::GeneExpression,
) -> anyhow::Result<Labels> {
    match choice {
        LabelChoice::Markers => LabelSource::Markers(None).resolve(&data.bundle, expression),
        LabelChoice::Column(c) => LabelSource::Column(c.clone()).resolve(&data.bundle, expression),
        LabelChoice::Csv(p) => LabelSource::Csv(p.clone()).resolve(&data.bundle, expression),
        LabelChoice::Selections => {
            anyhow::ensure!(
                data.selections.len() >= 2,
                "labels from selections need at least two selections (one per class)"
            );
            let n = data.bundle.cells.len();
            let mut per_cell = vec![None; n];
            for (class, (_, set)) in data.selections.iter().enumerate().rev() {
                for cell in set.iter() {
                    per_cell[cell] = Some(class as u16);
                }
            }
            Ok(Labels {
                class_names: data.selections.iter().map(|(n, _)| n.clone()).collect(),
                per_cell,
            })
        }
    }
}

fn subset_labels(labels: &Labels, rows: &[usize]) -> Labels {
    Labels {
        class_names: labels.class_names.clone(),
        per_cell: rows.iter().map(|&r| labels.per_cell[r]).collect(),
    }
}

fn read_cached<T: for<'de> Deserialize<'de>>(dir: Option<&std::path::Path>, key: &RunKey) -> Option<T> {
    let path = dir?.join(format!("{}.json", key.file_stem()));
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn write_cached<T: Serialize>(
    dir: Option<&std::path::Path>,
    key: &RunKey,
    result: &T,
    cell_ids: &[String],
    columns: &[(String, CellColumn)],
) {
    let Some(dir) = dir else { return };
    let stem = key.file_stem();
    // The per-cell table for other tools (keyed by cell_id), then the summary the app reloads.
    let table = cs_xenium::write_cell_parquet(&dir.join(format!("{stem}.parquet")), cell_ids, columns);
    let json = serde_json::to_vec(result)
        .map_err(|e| e.to_string())
        .and_then(|bytes| write_atomically(&dir.join(format!("{stem}.json")), &bytes).map_err(|e| format!("{e:#}")));
    if let Err(e) = table.map_err(|e| e.to_string()).and(json) {
        log::warn!("model run not cached in {}: {e}", dir.display());
    }
}

/// A result that can be cached: it knows whether it came from the cache.
pub trait CachedResult: Serialize + for<'de> Deserialize<'de> + Send + 'static {
    fn mark_cached(&mut self);
}

impl CachedResult for ClassifierResult {
    fn mark_cached(&mut self) {
        self.from_cache = true;
    }
}

impl CachedResult for VirtualResult {
    fn mark_cached(&mut self) {
        self.from_cache = true;
    }
}

impl CachedResult for ComparisonResult {
    fn mark_cached(&mut self) {
        self.from_cache = true;
    }
}

impl CachedResult for NicheResult {
    fn mark_cached(&mut self) {
        self.from_cache = true;
    }
}

/// What a run's work gives back: the result and its per-cell table (cell ids and columns).
type RunOutput<T> = (T, Vec<String>, Vec<(String, CellColumn)>);

/// A run of `work`: a cached result for the same key comes back at once; otherwise the work gets
/// the model inputs of every cell, the rows it covers and the progress, and its result is cached.
fn prepare_run<T: CachedResult>(
    label: &str,
    data: RunData,
    key: RunKey,
    work: impl FnOnce(&RunData, CellInputs, Vec<usize>, &Progress) -> anyhow::Result<RunOutput<T>> + Send + 'static,
) -> PreparedRun<T> {
    let worker_key = key.clone();
    PreparedRun {
        key,
        label: label.to_owned(),
        work: Box::new(move |cx: &JobContext| {
            cx.report("Starting", 0.0);
            if let Some(mut cached) = read_cached::<T>(data.cache_dir.as_deref(), &worker_key) {
                cached.mark_cached();
                return Ok(cached);
            }
            let progress = progress_for(cx);
            progress.report("Reading expression and shapes", 0.0);
            let mut all = cell_inputs(&data.bundle)?;
            if let Some(path) = &data.gene_embeddings {
                progress.report("Reading gene embeddings", 0.0);
                all.gene_embedding = Some(read_gene_embedding(path, &all.cell_ids)?);
            }
            let rows = data.rows();
            let (result, cell_ids, columns) = work(&data, all, rows, &progress).map_err(|e| {
                if e.downcast_ref::<ModelError>()
                    .is_some_and(|m| matches!(m, ModelError::Cancelled))
                {
                    anyhow::anyhow!("cancelled")
                } else {
                    e
                }
            })?;
            write_cached(data.cache_dir.as_deref(), &worker_key, &result, &cell_ids, &columns);
            Ok(result)
        }),
    }
}

/// Reads a finished run back from the cache (a session being restored): the result arrives
/// through the same path as a run's, under `key` (the bundle as open now); it is looked up under
/// `cached_as` (the key it was cached with, which names the bundle where it was then). An error
/// says when it is no longer cached.
pub fn from_cache<T: CachedResult>(
    what: &str,
    key: RunKey,
    cached_as: RunKey,
    cache_dir: Option<PathBuf>,
) -> PreparedRun<T> {
    let what = what.to_owned();
    PreparedRun {
        key,
        label: format!("Restoring {what}"),
        work: Box::new(move |cx: &JobContext| {
            cx.report("Reading the cache", 0.0);
            let mut cached = read_cached::<T>(cache_dir.as_deref(), &cached_as).ok_or_else(|| {
                anyhow::anyhow!("the session's {what} are no longer in the cache: run the model again")
            })?;
            cached.mark_cached();
            Ok(cached)
        }),
    }
}

/// Every classifier variant and the baselines trained on the same splits of the run's cells
/// ([`cs_models::evaluate`]): what the Models tab's *Compare models* table shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComparisonResult {
    pub evaluation: Evaluation,
    pub label_source: String,
    pub seconds: f64,
    pub device: String,
    #[serde(skip)]
    pub from_cache: bool,
}

/// How the Models tab compares models: the split and how many seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ComparisonSettings {
    pub split: SplitKind,
    pub seeds: usize,
}

impl Default for ComparisonSettings {
    fn default() -> Self {
        Self {
            split: SplitKind::Spatial,
            seeds: 3,
        }
    }
}

/// A comparison run (or the cached result): the variants the open data can feed (morphology
/// from `morphology`, positions from the bundle) and the baselines, with the tab's labels,
/// epochs and learning rate.
pub fn comparison_run(
    data: RunData,
    settings: &ModelSettings,
    comparison: ComparisonSettings,
    morphology: MorphologyChoice,
    device: Device,
) -> PreparedRun<ComparisonResult> {
    let parameters = format!(
        "comparison split={:?} seeds={} labels={} epochs={} lr={} morphology={morphology:?}{}",
        comparison.split,
        comparison.seeds,
        settings.labels.label(),
        settings.epochs,
        settings.learning_rate,
        file_stamp(morphology.weights())
    );
    let key = data.key(parameters);
    let settings = settings.clone();
    prepare_run("model comparison", data, key, move |data, all, rows, progress| {
        let started = std::time::Instant::now();
        let labels = resolve_labels(&settings.labels, data, &all.expression)?;
        let inputs = if data.scope.is_some() { all.subset(&rows) } else { all };
        let labels = subset_labels(&labels, &rows);
        let (_, features) = fit_features(&inputs, data.slide_input(), Some(&morphology), &device, 0, progress)?;
        let defaults = ClassifierRun::default();
        let plan = EvaluationPlan {
            split: comparison.split,
            seeds: (0..comparison.seeds.max(1) as u64).collect(),
            training: cs_models::train::TrainingSettings {
                epochs: settings.epochs,
                learning_rate: settings.learning_rate,
                ..Default::default()
            },
            size: ModelSize {
                d_model: defaults.d_model,
                n_layers: defaults.n_layers,
            },
            variants: Variant::ALL.to_vec(),
        };
        let evaluation_inputs = EvaluationInputs {
            genes: &features.genes,
            morphology: features.morphology.as_ref(),
            centres_um: Some(&inputs.centres_um),
            labels: &labels,
        };
        let evaluation = evaluate(&evaluation_inputs, &plan, &device, progress)?;
        let result = ComparisonResult {
            evaluation,
            label_source: settings.labels.label(),
            seconds: started.elapsed().as_secs_f64(),
            device: cs_models::device::describe(&device),
            from_cache: false,
        };
        Ok((result, inputs.cell_ids, Vec::new()))
    })
}

/// Virtual expression from the H&E ([`cs_models::virtual_expression`]): per patch of the grid over
/// the slide, the predicted and measured value of each gene (patch after patch, genes within).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VirtualResult {
    /// Predicted (NaN on background) and measured (NaN where no cell was) values.
    pub grid: PatchGridValues,
    pub measured_cells: Vec<u32>,
    pub scores: Vec<GeneScore>,
    pub n_train: usize,
    pub n_test: usize,
    /// What the head read (tile statistics, and a foundation encoder's components).
    #[serde(default)]
    pub feature_source: String,
    pub seconds: f64,
    pub device: String,
    #[serde(skip)]
    pub from_cache: bool,
}

/// A virtual-expression run on the whole slide (or the cached result) for `genes`.
pub fn virtual_run(
    data: RunData,
    genes: Vec<String>,
    patch_um: f32,
    morphology: MorphologyChoice,
    device: Device,
) -> PreparedRun<VirtualResult> {
    let key = data.key(format!(
        "virtual genes={} patch={patch_um} tiles={}{}",
        genes.join(","),
        morphology.describe(),
        file_stamp(morphology.weights())
    ));
    prepare_run("virtual expression", data, key, move |data, all, _rows, progress| {
        let started = std::time::Instant::now();
        let slide = data
            .slide_input()
            .context("virtual expression reads the H&E: open the slide and its alignment first")?;
        let settings = VirtualSettings {
            patch_um,
            ..Default::default()
        };
        let targets = virtual_targets(&data.bundle, &all.expression)?;
        let foundation = open_tile_encoder(&morphology, &device)?;
        let result = virtual_expression(
            &slide,
            &all.centres_um,
            &targets,
            &genes,
            &settings,
            foundation.as_deref(),
            &device,
            progress,
        )?;
        let grid = result.grid;
        let (ids, columns) = patch_table(&result);
        let out = VirtualResult {
            grid: PatchGridValues {
                genes: genes.clone(),
                patch_um: grid.patch_um,
                origin_um: grid.origin_um,
                columns: grid.columns,
                rows: grid.rows,
                predicted: result.predicted.values.clone(),
                measured: result.measured.values.values.clone(),
            },
            measured_cells: result.measured.cells.clone(),
            scores: result.scores.clone(),
            n_train: result.n_train,
            n_test: result.n_test,
            feature_source: result.feature_source.clone(),
            seconds: started.elapsed().as_secs_f64(),
            device: cs_models::device::describe(&device),
            from_cache: false,
        };
        Ok((out, ids, columns))
    })
}

/// A classifier run (or the cached result, through the same path).
/// `morphology` is the encoder for the variants that use it (resolved from the settings by the
/// caller, so a missing weights file is reported before anything starts).
pub fn classifier_run(
    data: RunData,
    settings: &ModelSettings,
    morphology: MorphologyChoice,
    device: Device,
) -> PreparedRun<ClassifierResult> {
    let morphology_key = if settings.variant.uses_morphology() {
        format!(" morphology={morphology:?}{}", file_stamp(morphology.weights()))
    } else {
        String::new()
    };
    let parameters = format!(
        "classifier {:?} labels={} epochs={} lr={} seed={} calibrated{morphology_key}",
        settings.variant,
        settings.labels.label(),
        settings.epochs,
        settings.learning_rate,
        settings.seed
    );
    let key = data.key(parameters);
    let model_dir = data
        .cache_dir
        .as_ref()
        .map(|dir| dir.join(format!("{}.model", key.file_stem())));
    let settings = settings.clone();
    prepare_run("cell-type classifier", data, key, move |data, all, rows, progress| {
        let started = std::time::Instant::now();
        let labels = resolve_labels(&settings.labels, data, &all.expression)?;
        let inputs = if data.scope.is_some() { all.subset(&rows) } else { all };
        let labels = subset_labels(&labels, &rows);
        let run = ClassifierRun {
            variant: settings.variant,
            training: cs_models::train::TrainingSettings {
                epochs: settings.epochs,
                learning_rate: settings.learning_rate,
                seed: settings.seed,
                ..Default::default()
            },
            morphology,
            ..Default::default()
        };
        let outcome = run_classifier(&inputs, data.slide_input(), &labels, &run, &device, progress)?;
        let t = &outcome.trained;
        let summary = TrainingSummary {
            label_source: settings.labels.label(),
            settings: run.training.clone(),
            report: t.report.clone(),
            epoch_losses: t.epoch_losses.clone(),
            n_train: t.n_train,
            n_validation: t.n_validation,
        };
        let model_dir = model_dir.filter(|dir| {
            let saved =
                model_file::save_classifier(dir, &t.model, &t.class_names, &t.config, &outcome.pipeline, summary);
            if let Err(e) = &saved {
                log::warn!("the trained model was not kept: {e}");
            }
            saved.is_ok()
        });
        let result = ClassifierResult {
            variant: settings.variant,
            label_source: settings.labels.label(),
            class_names: t.class_names.clone(),
            rows: rows.iter().map(|&r| r as u32).collect(),
            predicted: outcome.predictions.iter().map(|p| p.class).collect(),
            confidence: outcome.predictions.iter().map(|p| p.confidence).collect(),
            report: t.report.clone(),
            epoch_losses: t.epoch_losses.clone(),
            n_labelled: outcome.n_labelled,
            n_train: t.n_train,
            n_validation: t.n_validation,
            seconds: started.elapsed().as_secs_f64(),
            device: cs_models::device::describe(&device),
            model_dir,
            temperature: t.config.temperature,
            n_calibration: t.n_calibration,
            best_epoch: t.best_epoch,
            from_cache: false,
        };
        let columns = prediction_columns(&result);
        Ok((result, inputs.cell_ids, columns))
    })
}

/// Applying a saved classifier (a model folder from *Save model…* or `cellsymphony
/// train`) to the run's cells: its own feature pipeline, then prediction. The report shown is the
/// one from the model's training.
pub fn saved_model_run(data: RunData, model_dir: PathBuf, device: Device) -> PreparedRun<ClassifierResult> {
    let parameters = format!(
        "apply model {}{}{}",
        model_dir.display(),
        file_stamp(Some(&model_dir.join(model_file::MANIFEST_FILE))),
        file_stamp(Some(&model_dir.join(model_file::WEIGHTS_FILE)))
    );
    let key = data.key(parameters);
    prepare_run("saved classifier", data, key, move |data, all, rows, progress| {
        let started = std::time::Instant::now();
        progress.report("Loading the model", 0.0);
        let loaded = model_file::load_classifier(&model_dir, &device)?;
        let model_file::ModelKind::Classifier { training, .. } = &loaded.manifest.kind else {
            anyhow::bail!("{}: not a classifier", model_dir.display());
        };
        let inputs = if data.scope.is_some() { all.subset(&rows) } else { all };
        let predictions = predict_with_saved(&loaded, &inputs, data.slide_input(), &device, progress)
            .with_context(|| format!("applying {}", model_dir.display()))?;
        let name = display_name(&model_dir);
        let result = ClassifierResult {
            variant: loaded.config.variant,
            label_source: format!(
                "saved model {name} (trained on {}; report from its training)",
                training.label_source
            ),
            class_names: loaded.class_names.clone(),
            rows: rows.iter().map(|&r| r as u32).collect(),
            predicted: predictions.iter().map(|p| p.class).collect(),
            confidence: predictions.iter().map(|p| p.confidence).collect(),
            report: training.report.clone(),
            epoch_losses: training.epoch_losses.clone(),
            n_labelled: training.n_train + training.n_validation,
            n_train: training.n_train,
            n_validation: training.n_validation,
            seconds: started.elapsed().as_secs_f64(),
            device: cs_models::device::describe(&device),
            model_dir: Some(model_dir.clone()),
            temperature: loaded.config.temperature,
            n_calibration: 0,
            best_epoch: None,
            from_cache: false,
        };
        let columns = prediction_columns(&result);
        Ok((result, inputs.cell_ids, columns))
    })
}

/// The per-cell table of a classifier result: predicted type and confidence.
fn prediction_columns(result: &ClassifierResult) -> Vec<(String, CellColumn)> {
    let names = result
        .predicted
        .iter()
        .map(|&c| result.class_names[c as usize].clone())
        .collect();
    vec![
        ("predicted_type".into(), CellColumn::Text(names)),
        ("confidence".into(), CellColumn::Number(result.confidence.clone())),
    ]
}

/// A niche run (contrastive projection + k-means).
pub fn niches_run(
    data: RunData,
    settings: &ModelSettings,
    morphology: MorphologyChoice,
    device: Device,
) -> PreparedRun<NicheResult> {
    let parameters = format!(
        "niches k={} epochs={} seed={} morphology={morphology:?}{}",
        settings.k,
        settings.niche_epochs,
        settings.seed,
        file_stamp(morphology.weights())
    );
    let data_key = data.key(parameters);
    let model_dir = data
        .cache_dir
        .as_ref()
        .map(|dir| dir.join(format!("{}.model", data_key.file_stem())));
    let settings = settings.clone();
    prepare_run("morphology niches", data, data_key, move |data, all, rows, progress| {
        let started = std::time::Instant::now();
        let inputs = if data.scope.is_some() { all.subset(&rows) } else { all };
        let mut run = NicheRun {
            k: settings.k,
            morphology,
            ..Default::default()
        };
        run.contrastive.epochs = settings.niche_epochs;
        run.contrastive.seed = settings.seed;
        let outcome = run_niches(&inputs, data.slide_input(), &run, &device, progress)?;
        let model_dir = model_dir.filter(|dir| {
            let saved = save_niche_model(dir, &outcome);
            if let Err(e) = &saved {
                log::warn!("the niche model was not kept: {e:#}");
            }
            saved.is_ok()
        });
        let t = &outcome.trained;
        let result = NicheResult {
            k: outcome.k,
            rows: rows.iter().map(|&r| r as u32).collect(),
            clusters: outcome.clusters.clone(),
            map_2d: outcome.map_2d.clone(),
            infonce_losses: t.epoch_losses.clone(),
            retrieval_top1: t.retrieval_top1,
            retrieval_chance: t.retrieval_chance,
            seconds: started.elapsed().as_secs_f64(),
            device: cs_models::device::describe(&device),
            model_dir,
            from_cache: false,
        };
        let columns = vec![niche_column(&result.clusters)];
        Ok((result, inputs.cell_ids, columns))
    })
}

/// Copies a model folder (model.json + weights.bpk) to `to`, which is created; existing model
/// files there are replaced, other files are left alone.
pub fn copy_model_dir(from: &std::path::Path, to: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for name in [model_file::MANIFEST_FILE, model_file::WEIGHTS_FILE] {
        let source = from.join(name);
        std::fs::copy(&source, to.join(name))
            .with_context(|| format!("copying {} to {}", source.display(), to.display()))?;
    }
    Ok(())
}

/// A categorical column over all cells from per-row classes (cells outside the run are missing).
pub fn column_for_rows(
    n_cells: usize,
    rows: &[u32],
    classes: &[u16],
    class_names: &[String],
) -> anyhow::Result<cs_xenium::Categorical> {
    anyhow::ensure!(
        rows.len() == classes.len(),
        "{} rows for {} classes",
        rows.len(),
        classes.len()
    );
    let mut codes = vec![cs_xenium::MISSING_CODE; n_cells];
    for (&row, &class) in rows.iter().zip(classes) {
        *codes
            .get_mut(row as usize)
            .context("a result row is outside the bundle")? = u32::from(class);
    }
    Ok(cs_xenium::Categorical {
        categories: class_names.to_vec(),
        codes,
    })
}
