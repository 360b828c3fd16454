//! The Models tab of the right panel: where models run (GPU shared with the viewer, or CPU),
//! which cells (the whole slide or the active selection), labels and variant; the cell-type
//! classifier's per-class precision/recall/F1 table and confusion matrix; morphology niches with
//! the cluster x cell-type enrichment heatmap and the 2-D embedding linked with the slide.

use std::sync::Arc;

use cs_models::burn::tensor::Device;
use cs_models::classifier::Variant;
use cs_models::device::ComputeDevice;
use cs_models::pipeline::MorphologyChoice;
use cs_models::vit::{TokenReadout, VitPreset};
use egui::{Color32, RichText};

use crate::app::ViewerApp;
use crate::model_runs::{
    ClassifierResult, LabelChoice, ModelRun, ModelSettings, NicheResult, RunData, column_for_rows, start_classifier,
    start_niches,
};

/// Name of the column the classifier's predictions go into.
pub const PREDICTED_COLUMN: &str = "predicted type";
pub const CONFIDENCE_COLUMN: &str = "prediction confidence";
pub const CLUSTER_COLUMN: &str = "morphology cluster";

const DEVICE_KEY: &str = "model_device";
const MORPHOLOGY_KEY: &str = "model_morphology";

/// The morphology encoder choice, kept between sessions (the weights file stays where it is).
#[derive(serde::Serialize, serde::Deserialize)]
struct MorphologyPreference {
    vit_preset: Option<VitPreset>,
    vit_weights: Option<std::path::PathBuf>,
    readout: TokenReadout,
}

/// eframe's wgpu device, for burn to share.
#[derive(Clone)]
pub struct GpuShare {
    pub instance: wgpu::Instance,
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
}

#[derive(Default)]
pub struct ModelsState {
    pub settings: ModelSettings,
    pub gpu_share: Option<GpuShare>,
    gpu_device: Option<Device>,
    pub classifier_run: Option<ModelRun<ClassifierResult>>,
    pub niche_run: Option<ModelRun<NicheResult>>,
    pub classifier: Option<Arc<ClassifierResult>>,
    pub niches: Option<Arc<NicheResult>>,
    /// The runs whose results are on the slide (saved with a session, read back from the cache).
    pub classifier_key: Option<crate::model_runs::RunKey>,
    pub niches_key: Option<crate::model_runs::RunKey>,
    pub error: Option<String>,
    /// A cell hovered in the embedding scatter (highlighted on the slide).
    pub map_hover_cell: Option<u32>,
    /// The niche heatmap's numbers and the column they were computed against (recomputed only when
    /// the column or a result changes, not every frame).
    niche_enrichment: Option<(String, Arc<crate::models::ClusterEnrichment>)>,
    /// Where finished runs are cached (None: never).
    pub cache_dir: Option<std::path::PathBuf>,
    /// Row of each cell in `niches` (u32::MAX: not in the run), built when a result arrives.
    niche_row_of_cell: Vec<u32>,
}

impl ModelsState {
    pub fn new(gpu_share: Option<GpuShare>) -> Self {
        // A software adapter (lavapipe, WARP) trains far slower than burn-ndarray: start on the CPU.
        let real_gpu = gpu_share
            .as_ref()
            .is_some_and(|g| g.adapter.get_info().device_type != wgpu::DeviceType::Cpu);
        let settings = ModelSettings {
            device: if real_gpu {
                ComputeDevice::Gpu
            } else {
                ComputeDevice::Cpu
            },
            ..Default::default()
        };
        Self {
            settings,
            gpu_share,
            cache_dir: Some(crate::model_runs::default_cache_dir()),
            ..Default::default()
        }
    }

    /// The burn device for the chosen kind; the GPU one is registered on eframe's device once.
    pub fn device(&mut self) -> anyhow::Result<Device> {
        match self.settings.device {
            ComputeDevice::Cpu => Ok(cs_models::cpu_device()),
            ComputeDevice::Gpu => {
                if let Some(device) = &self.gpu_device {
                    return Ok(device.clone());
                }
                let share = self
                    .gpu_share
                    .clone()
                    .ok_or_else(|| anyhow::anyhow!("no GPU device: choose CPU"))?;
                let device =
                    cs_models::device::shared_gpu_device(share.instance, share.adapter, share.device, share.queue)?;
                self.gpu_device = Some(device.clone());
                Ok(device)
            }
        }
    }

    /// The device preference, kept between sessions (GPU only when one is shared).
    pub fn load_preferences(&mut self, storage: Option<&dyn eframe::Storage>) {
        let saved: Option<ComputeDevice> = storage.and_then(|s| eframe::get_value(s, DEVICE_KEY));
        if let Some(device) = saved
            && (device == ComputeDevice::Cpu || self.gpu_share.is_some())
        {
            self.settings.device = device;
        }
        let morphology: Option<MorphologyPreference> = storage.and_then(|s| eframe::get_value(s, MORPHOLOGY_KEY));
        if let Some(m) = morphology {
            self.settings.vit_preset = m.vit_preset;
            self.settings.vit_weights = m.vit_weights;
            self.settings.readout = m.readout;
        }
    }

    pub fn save_preferences(&self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, DEVICE_KEY, &self.settings.device);
        let morphology = MorphologyPreference {
            vit_preset: self.settings.vit_preset,
            vit_weights: self.settings.vit_weights.clone(),
            readout: self.settings.readout,
        };
        eframe::set_value(storage, MORPHOLOGY_KEY, &morphology);
    }

    pub fn is_running(&self) -> bool {
        self.classifier_run.is_some() || self.niche_run.is_some()
    }
}

impl ViewerApp {
    fn run_data(&self) -> Option<RunData> {
        let cells = self.cells.as_ref()?;
        let scope = if self.models.settings.selection_only {
            Some(self.selections.active()?.cells.clone())
        } else {
            None
        };
        Some(RunData {
            bundle: cells.bundle.clone(),
            slide: self
                .slide
                .as_ref()
                .map(|s| (s.layer.source.clone(), s.layer.world_from_slide)),
            scope,
            selections: self
                .selections
                .items
                .iter()
                .map(|s| (s.name.clone(), s.cells.clone()))
                .collect(),
            cache_dir: self.models.cache_dir.clone(),
            gene_embeddings: self.models.settings.gene_embeddings.clone(),
        })
    }

    /// What a run needs before it starts: the open data, the morphology encoder (when
    /// `with_morphology`) and the device (None: a toast said why).
    fn run_inputs(&mut self, with_morphology: bool) -> Option<(RunData, MorphologyChoice, Device)> {
        let Some(data) = self.run_data() else {
            self.toasts
                .error("Open a Xenium bundle (and select a region, if 'active selection only') first.");
            return None;
        };
        let morphology = if with_morphology {
            self.models.settings.morphology()
        } else {
            Ok(MorphologyChoice::Builtin)
        };
        match morphology.and_then(|m| Ok((m, self.models.device()?))) {
            Ok((morphology, device)) => {
                self.models.error = None;
                Some((data, morphology, device))
            }
            Err(e) => {
                self.toasts.error(format!("{e:#}"));
                None
            }
        }
    }

    /// Starts the cell-type classifier on the chosen cells.
    pub fn run_classifier(&mut self) {
        let with_morphology = self.models.settings.variant.uses_morphology();
        let Some((data, morphology, device)) = self.run_inputs(with_morphology) else {
            return;
        };
        match start_classifier(data, &self.models.settings, morphology, device, &self.ctx) {
            Ok(run) => self.models.classifier_run = Some(run),
            Err(e) => self.toasts.error(format!("Could not start the model thread: {e}")),
        }
    }

    /// Starts applying a saved classifier folder to the chosen cells.
    pub fn apply_saved_model(&mut self, model_dir: std::path::PathBuf) {
        let Some((data, _, device)) = self.run_inputs(false) else {
            return;
        };
        match crate::model_runs::start_saved_model(data, model_dir, device, &self.ctx) {
            Ok(run) => self.models.classifier_run = Some(run),
            Err(e) => self.toasts.error(format!("Could not start the model thread: {e}")),
        }
    }

    /// Starts contrastive alignment + k-means on the chosen cells.
    pub fn run_niches(&mut self) {
        let Some((data, morphology, device)) = self.run_inputs(true) else {
            return;
        };
        match start_niches(data, &self.models.settings, morphology, device, &self.ctx) {
            Ok(run) => self.models.niche_run = Some(run),
            Err(e) => self.toasts.error(format!("Could not start the model thread: {e}")),
        }
    }

    /// Copies a kept model folder (`from`, the classifier shown when *Save model…* was pressed)
    /// to `to`.
    pub fn save_model(&mut self, from: &std::path::Path, to: std::path::PathBuf) {
        match crate::model_runs::copy_model_dir(from, &to) {
            Ok(()) => self.toasts.note(format!(
                "Model saved to {} (cellsymphony predict --model {} ...)",
                to.display(),
                to.display()
            )),
            Err(e) => self.toasts.error(format!("Saving the model: {e:#}")),
        }
    }

    /// A ViT weights file the user picked: checked from its header (instant) against the chosen
    /// architecture, so a wrong file is named now rather than when a run starts; a file of
    /// another preset switches the choice to it.
    pub fn choose_vit_weights(&mut self, path: std::path::PathBuf) {
        let file = match cs_models::safetensors::SafeTensors::open(&path) {
            Ok(file) => file,
            Err(e) => {
                self.toasts.error(format!("{e}"));
                return;
            }
        };
        let settings = &mut self.models.settings;
        let checked = match settings.vit_preset {
            Some(preset) => preset.check_file(&file),
            None => Err(cs_models::ModelError::Input("no ViT chosen".into())),
        };
        match (checked, VitPreset::detect_in(&file)) {
            (Ok(()), _) => settings.vit_weights = Some(path),
            (Err(_), Some(found)) => {
                self.toasts.note(format!(
                    "{} holds {} weights: switched the encoder to it.",
                    path.display(),
                    found.label()
                ));
                settings.vit_preset = Some(found);
                settings.vit_weights = Some(path);
            }
            (Err(e), None) => self.toasts.error(format!("{e}")),
        }
    }

    /// Takes finished model runs (once per frame) and puts their columns on the slide.
    pub fn apply_model_runs(&mut self) {
        if let Some(run) = &self.models.classifier_run
            && let Some(outcome) = run.poll()
        {
            let key = run.key.clone();
            self.models.classifier_run = None;
            match outcome {
                Ok(result) => self.apply_classifier(&key, result),
                Err(e) => self.model_failed("Cell-type classifier", &e),
            }
        }
        if let Some(run) = &self.models.niche_run
            && let Some(outcome) = run.poll()
        {
            let key = run.key.clone();
            self.models.niche_run = None;
            match outcome {
                Ok(result) => self.apply_niches(&key, result),
                Err(e) => self.model_failed("Morphology niches", &e),
            }
        }
    }

    fn model_failed(&mut self, what: &str, error: &anyhow::Error) {
        let message = format!("{error:#}");
        if message != "cancelled" {
            self.toasts.error(format!("{what}: {message}"));
            self.models.error = Some(format!("{what}: {message}"));
        }
    }

    fn current_bundle_matches(&self, key: &crate::model_runs::RunKey) -> bool {
        self.cells
            .as_ref()
            .is_some_and(|c| c.bundle.dir == key.bundle && c.bundle.cells.len() == key.n_cells)
    }

    fn apply_classifier(&mut self, key: &crate::model_runs::RunKey, mut result: ClassifierResult) {
        if !self.current_bundle_matches(key) {
            return; // the bundle changed while the model ran
        }
        // Checked once here, not every frame: a cached run's model folder may have been removed.
        result.model_dir = result.model_dir.filter(|dir| dir.is_dir());
        let Some(cells) = &mut self.cells else { return };
        let n = cells.len();
        match column_for_rows(n, &result.rows, &result.predicted, &result.class_names) {
            Ok(column) => {
                cells.put_categorical_column(PREDICTED_COLUMN, column);
                let mut confidence = vec![f64::NAN; n];
                for (&row, &c) in result.rows.iter().zip(&result.confidence) {
                    confidence[row as usize] = f64::from(c);
                }
                cells.put_numeric_column(CONFIDENCE_COLUMN, confidence);
                cells.set_colour_by(crate::cell_layer::ColourBy::Category(PREDICTED_COLUMN.into()));
                self.toasts.note(format!(
                    "Predicted {} cells ({}), macro-F1 {:.2} on held-out cells{}",
                    result.rows.len(),
                    result.variant.label(),
                    result.report.macro_f1,
                    if result.from_cache { " (from the cache)" } else { "" }
                ));
                self.models.classifier = Some(Arc::new(result));
                self.models.classifier_key = Some(key.clone());
                self.models.niche_enrichment = None;
            }
            Err(e) => self.toasts.error(format!("Predictions could not be applied: {e:#}")),
        }
    }

    fn apply_niches(&mut self, key: &crate::model_runs::RunKey, result: NicheResult) {
        if !self.current_bundle_matches(key) {
            return;
        }
        let Some(cells) = &mut self.cells else { return };
        let n = cells.len();
        let names: Vec<String> = (1..=result.k).map(|c| format!("M{c}")).collect();
        let clusters: Vec<u16> = result.clusters.iter().map(|&c| c as u16).collect();
        match column_for_rows(n, &result.rows, &clusters, &names) {
            Ok(column) => {
                cells.put_categorical_column(CLUSTER_COLUMN, column);
                cells.set_colour_by(crate::cell_layer::ColourBy::Category(CLUSTER_COLUMN.into()));
                let mut row_of_cell = vec![u32::MAX; n];
                for (i, &row) in result.rows.iter().enumerate() {
                    row_of_cell[row as usize] = i as u32;
                }
                self.models.niche_row_of_cell = row_of_cell;
                self.toasts.note(format!(
                    "{} cells in {} morphology clusters{}",
                    result.rows.len(),
                    result.k,
                    if result.from_cache { " (from the cache)" } else { "" }
                ));
                self.models.niches = Some(Arc::new(result));
                self.models.niches_key = Some(key.clone());
                self.models.niche_enrichment = None;
            }
            Err(e) => self.toasts.error(format!("Clusters could not be applied: {e:#}")),
        }
    }
}

fn progress_ui<T>(ui: &mut egui::Ui, run: &ModelRun<T>) -> bool {
    let (stage, fraction, eta) = run.status();
    let mut cancel = false;
    ui.horizontal(|ui| {
        let text = match eta {
            Some(s) => format!("{stage}: {:.0}%, about {:.0} s left", fraction * 100.0, s.max(0.0)),
            None => format!("{stage}..."),
        };
        ui.add(egui::ProgressBar::new(fraction).text(text).desired_width(250.0));
        cancel = ui.button("Cancel").clicked();
    });
    if cancel {
        run.job.cancel();
    }
    cancel
}

pub fn models_ui(ui: &mut egui::Ui, app: &mut ViewerApp) {
    let Some(cells) = &app.cells else { return };
    let categorical: Vec<String> = cells.bundle.cells.categorical.iter().map(|(n, _)| n.clone()).collect();
    let has_slide = app.slide.is_some();
    let active = app.selections.active().map(|s| (s.name.clone(), s.cells.count()));
    let n_selections = app.selections.items.len();
    let settings = &mut app.models.settings;
    let gpu_available = app.models.gpu_share.is_some();
    let gpu_name = app.models.gpu_share.as_ref().map(|g| {
        let info = g.adapter.get_info();
        let software = if info.device_type == wgpu::DeviceType::Cpu {
            " - a software adapter, slower than the CPU backend"
        } else {
            ""
        };
        format!("burn-wgpu on the viewer's own device: {}{software}", info.name)
    });

    let (mut choose_weights, mut choose_embeddings) = (false, false);
    egui::Grid::new("model-settings")
        .num_columns(2)
        .spacing([8.0, 4.0])
        .show(ui, |ui| {
            ui.label("Run on");
            ui.horizontal(|ui| {
                ui.add_enabled_ui(gpu_available, |ui| {
                    ui.radio_value(&mut settings.device, ComputeDevice::Gpu, "GPU")
                        .on_hover_text(gpu_name.unwrap_or_default());
                });
                ui.radio_value(&mut settings.device, ComputeDevice::Cpu, "CPU")
                    .on_hover_text("burn-ndarray on the processor");
            });
            ui.end_row();
            ui.label("Cells");
            ui.vertical(|ui| {
                ui.radio_value(
                    &mut settings.selection_only,
                    false,
                    format!("whole slide ({} cells)", cells.len()),
                );
                ui.add_enabled_ui(active.is_some(), |ui| {
                    let text = match &active {
                        Some((name, n)) => format!("{name} ({n} cells)"),
                        None => "active selection (none)".into(),
                    };
                    ui.radio_value(&mut settings.selection_only, true, text);
                });
            });
            ui.end_row();
            ui.label("Genes");
            choose_embeddings = gene_features_ui(ui, settings);
            ui.end_row();
            ui.label("Morphology");
            choose_weights = morphology_encoder_ui(ui, settings);
            ui.end_row();
        });
    if settings.selection_only && active.is_none() {
        settings.selection_only = false;
    }
    if settings.vit_preset.is_some() && !has_slide {
        ui.label(
            RichText::new("A ViT encoder reads the H&E: open the slide (and its alignment) to use it.")
                .small()
                .color(ui.visuals().warn_fg_color),
        );
    }
    if choose_weights {
        app.ask_for_file(crate::app::DialogPurpose::VitWeights);
    }
    if choose_embeddings {
        app.ask_for_file(crate::app::DialogPurpose::GeneEmbeddings);
    }
    let settings = &mut app.models.settings;

    let mut choose_labels = false;
    ui.separator();
    ui.strong("Cell types");
    egui::Grid::new("classifier-settings")
        .num_columns(2)
        .spacing([8.0, 4.0])
        .show(ui, |ui| {
            ui.label("Labels from");
            egui::ComboBox::from_id_salt("label-source")
                .selected_text(settings.labels.label())
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut settings.labels, LabelChoice::Markers, "marker genes")
                        .on_hover_text(
                            "Scores the six types of assets/markers/cell_types.tsv; unsure cells are left out",
                        );
                    for name in categorical.iter().filter(|n| n.as_str() != PREDICTED_COLUMN) {
                        ui.selectable_value(
                            &mut settings.labels,
                            LabelChoice::Column(name.clone()),
                            format!("column {name}"),
                        );
                    }
                    if n_selections >= 2 {
                        ui.selectable_value(
                            &mut settings.labels,
                            LabelChoice::Selections,
                            "my selections (one class each)",
                        );
                    }
                    if let LabelChoice::Csv(path) = &settings.labels {
                        let choice = LabelChoice::Csv(path.clone());
                        ui.selectable_value(&mut settings.labels, choice.clone(), choice.label());
                    }
                    if ui.selectable_label(false, "label CSV...").clicked() {
                        choose_labels = true;
                    }
                });
            ui.end_row();
            ui.label("Model");
            egui::ComboBox::from_id_salt("variant")
                .selected_text(settings.variant.label())
                .show_ui(ui, |ui| {
                    for variant in Variant::ALL {
                        ui.selectable_value(&mut settings.variant, variant, variant.label());
                    }
                });
            ui.end_row();
            ui.label("Training");
            ui.horizontal(|ui| {
                ui.add(
                    egui::DragValue::new(&mut settings.epochs)
                        .range(1..=500)
                        .suffix(" epochs"),
                );
                ui.add(
                    egui::DragValue::new(&mut settings.learning_rate)
                        .range(1e-6..=1e-1)
                        .speed(1e-6)
                        .prefix("lr "),
                );
                ui.add(egui::DragValue::new(&mut settings.seed).prefix("seed "));
            });
            ui.end_row();
        });
    if settings.variant.uses_morphology() && !has_slide && settings.vit_preset.is_none() {
        ui.label(
            RichText::new("No slide is open: morphology comes from the cell and nucleus shapes only.")
                .small()
                .weak(),
        );
    }
    if choose_labels {
        app.ask_for_file(crate::app::DialogPurpose::ModelLabels);
    }
    let (mut start, mut choose_model) = (false, false);
    match &app.models.classifier_run {
        Some(run) => {
            progress_ui(ui, run);
        }
        None => {
            ui.horizontal(|ui| {
                start = ui
                    .button("Train and predict")
                    .on_hover_text("AdamW, class-weighted cross-entropy, batch 64, weight decay 0.01, seeded 80/20 split")
                    .clicked();
                if ui
                    .button("Apply a saved model...")
                    .on_hover_text("Predict with a model folder saved here or by cellsymphony train (its own genes, morphology and variant)")
                    .clicked()
                {
                    choose_model = true;
                }
            });
        }
    }
    if start {
        app.run_classifier();
    }
    if choose_model {
        app.ask_for_file(crate::app::DialogPurpose::ApplyModel);
    }
    if let Some(error) = &app.models.error {
        ui.colored_label(ui.visuals().error_fg_color, error);
    }
    if let Some(result) = app.models.classifier.clone() {
        classifier_result_ui(ui, app, &result);
    }

    ui.separator();
    ui.strong("Morphology niches");
    let settings = &mut app.models.settings;
    ui.horizontal(|ui| {
        ui.add(egui::DragValue::new(&mut settings.k).range(2..=40).prefix("k = "));
        ui.add(
            egui::DragValue::new(&mut settings.niche_epochs)
                .range(1..=500)
                .suffix(" epochs"),
        );
    });
    let mut start = false;
    match &app.models.niche_run {
        Some(run) => {
            progress_ui(ui, run);
        }
        None => {
            start = ui
                .button("Find niches")
                .on_hover_text("Contrastive alignment (InfoNCE) of genes and morphology, then k-means on the morphology projection")
                .clicked();
        }
    }
    if start {
        app.run_niches();
    }
    if let Some(result) = app.models.niches.clone() {
        niches_result_ui(ui, app, &result);
    }
}

/// The gene modality: the built-in PCA or embeddings imported from a file. Returns whether the
/// user asked to choose the file.
fn gene_features_ui(ui: &mut egui::Ui, settings: &mut ModelSettings) -> bool {
    let mut choose = false;
    ui.horizontal(|ui| {
        match &settings.gene_embeddings {
            None => {
                ui.label(format!("PCA, {} components", cs_models::pipeline::GENE_COMPONENTS))
                    .on_hover_text("PCA of log1p(CP10k) expression, fitted on the cells of the run");
            }
            Some(path) => {
                ui.add(egui::Label::new(crate::app::display_name(path)).truncate())
                    .on_hover_text(path.display().to_string());
                if ui
                    .small_button("PCA")
                    .on_hover_text("Back to the built-in gene PCA")
                    .clicked()
                {
                    settings.gene_embeddings = None;
                }
            }
        }
        choose = ui
            .small_button("Import...")
            .on_hover_text(
                "Per-cell gene embeddings computed elsewhere (e.g. scGPT): parquet or CSV with a cell_id column, \
                 or a .npy matrix with its ids in NAME.cell_ids.txt",
            )
            .clicked();
    });
    choose
}

/// The morphology encoder: built-in or a ViT with its weights file and readout. Returns whether
/// the user asked to choose the weights file.
fn morphology_encoder_ui(ui: &mut egui::Ui, settings: &mut ModelSettings) -> bool {
    const BUILTIN: &str = "built-in (no weights)";
    let mut choose_weights = false;
    ui.vertical(|ui| {
        egui::ComboBox::from_id_salt("morphology-encoder")
            .selected_text(settings.vit_preset.map_or(BUILTIN, VitPreset::label))
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut settings.vit_preset, None, BUILTIN)
                    .on_hover_text(MorphologyChoice::Builtin.describe());
                for preset in VitPreset::ALL {
                    ui.selectable_value(&mut settings.vit_preset, Some(preset), preset.label())
                        .on_hover_text("timm weights you have, as .safetensors; nothing is downloaded");
                }
            });
        if settings.vit_preset.is_none() {
            return;
        }
        ui.horizontal(|ui| {
            choose_weights = ui
                .button("Weights...")
                .on_hover_text("The .safetensors file saved from timm's VisionTransformer")
                .clicked();
            match &settings.vit_weights {
                Some(path) => {
                    ui.add(egui::Label::new(crate::app::display_name(path)).truncate())
                        .on_hover_text(path.display().to_string());
                }
                None => {
                    ui.colored_label(ui.visuals().warn_fg_color, "no weights file");
                }
            }
        });
        ui.horizontal(|ui| {
            let k = match settings.readout {
                TokenReadout::NucleusTokens { k } => k,
                TokenReadout::ClassToken => cs_models::vit::DEFAULT_NUCLEUS_TOKENS,
            };
            let nucleus = TokenReadout::NucleusTokens { k };
            let selected = match settings.readout {
                TokenReadout::NucleusTokens { .. } => "nucleus tokens",
                TokenReadout::ClassToken => "class token",
            };
            egui::ComboBox::from_id_salt("vit-readout")
                .selected_text(selected)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut settings.readout, nucleus, "nucleus tokens")
                        .on_hover_text(
                            "The paper's per-cell readout: the mean of the k patch tokens nearest the nucleus",
                        );
                    ui.selectable_value(&mut settings.readout, TokenReadout::ClassToken, "class token")
                        .on_hover_text("The image-level token");
                });
            if let TokenReadout::NucleusTokens { k } = &mut settings.readout {
                ui.add(egui::DragValue::new(k).range(1..=64).prefix("k = "))
                    .on_hover_text("Patch tokens averaged around the nucleus");
            }
        });
    });
    choose_weights
}

fn classifier_result_ui(ui: &mut egui::Ui, app: &mut ViewerApp, result: &ClassifierResult) {
    ui.label(
        RichText::new(format!(
            "{}, labels: {}. {} cells, {} labelled ({} train / {} held out); {:.1} s on {}{}",
            result.variant.label(),
            result.label_source,
            result.rows.len(),
            result.n_labelled,
            result.n_train,
            result.n_validation,
            result.seconds,
            result.device,
            if result.from_cache { ", from the cache" } else { "" }
        ))
        .small(),
    );
    if let (Some(first), Some(last)) = (result.epoch_losses.first(), result.epoch_losses.last()) {
        ui.label(
            RichText::new(format!("training loss {first:.3} -> {last:.3}"))
                .small()
                .weak(),
        );
    }
    egui::Grid::new("classifier-report")
        .striped(true)
        .num_columns(5)
        .show(ui, |ui| {
            for header in ["class", "precision", "recall", "F1", "cells"] {
                ui.strong(header);
            }
            ui.end_row();
            for m in &result.report.per_class {
                ui.label(&m.class);
                ui.label(format!("{:.2}", m.precision));
                ui.label(format!("{:.2}", m.recall));
                ui.label(format!("{:.2}", m.f1));
                ui.label(m.support.to_string());
                ui.end_row();
            }
            ui.strong("macro");
            ui.label("");
            ui.label("");
            ui.strong(format!("{:.2}", result.report.macro_f1));
            ui.label(format!("acc {:.2}", result.report.accuracy));
            ui.end_row();
        });
    let kept = result.model_dir.clone();
    let save = ui
        .add_enabled(kept.is_some(), egui::Button::new("Save model..."))
        .on_hover_text("A model folder (model.json + weights.bpk) for cellsymphony predict --model")
        .on_disabled_hover_text(
            "The trained model was not kept (a run cached before models were kept, or the cache is off): train again",
        )
        .clicked();
    if save && let Some(from) = kept {
        app.ask_for_file(crate::app::DialogPurpose::SaveModel { from });
    }
    ui.label(
        RichText::new("Confusion matrix (rows: label, columns: prediction)")
            .small()
            .weak(),
    );
    let matrix: Vec<Vec<f64>> = result
        .report
        .confusion
        .iter()
        .map(|row| {
            let total: usize = row.iter().sum();
            row.iter()
                .map(|&n| if total > 0 { n as f64 / total as f64 } else { 0.0 })
                .collect()
        })
        .collect();
    let names = result.class_names.clone();
    let counts = result.report.confusion.clone();
    matrix_ui(ui, &names, &names, &matrix, fraction_colour, |r, c| {
        format!(
            "{} labelled, predicted {}: {} cells ({:.0}% of the label)",
            names[r],
            names[c],
            counts[r][c],
            matrix[r][c] * 100.0
        )
    });
    if let Some(cells) = &mut app.cells
        && ui.button("Colour cells by prediction").clicked()
    {
        cells.set_colour_by(crate::cell_layer::ColourBy::Category(PREDICTED_COLUMN.into()));
    }
}

fn niches_result_ui(ui: &mut egui::Ui, app: &mut ViewerApp, result: &NicheResult) {
    ui.label(
        RichText::new(format!(
            "{} cells, k = {}; InfoNCE {:.2} -> {:.2}; matched-pair retrieval {:.1}% (chance {:.2}%); {:.1} s on {}{}",
            result.rows.len(),
            result.k,
            result.infonce_losses.first().copied().unwrap_or(f64::NAN),
            result.infonce_losses.last().copied().unwrap_or(f64::NAN),
            result.retrieval_top1 * 100.0,
            result.retrieval_chance * 100.0,
            result.seconds,
            result.device,
            if result.from_cache { ", from the cache" } else { "" }
        ))
        .small(),
    );
    // Enrichment against the cell types: the predictions when there are some, else the column
    // the statistics use.
    let Some(cells) = &app.cells else { return };
    let table = &cells.bundle.cells;
    let column_name = if table.categorical_column(PREDICTED_COLUMN).is_some() {
        Some(PREDICTED_COLUMN.to_string())
    } else {
        app.stats_column.clone().or_else(|| {
            table
                .categorical
                .iter()
                .map(|(n, _)| n.clone())
                .find(|n| n != CLUSTER_COLUMN)
        })
    };
    if let Some(column) = column_name.as_deref().and_then(|c| table.categorical_column(c)) {
        let name = column_name.clone().unwrap_or_default();
        let enrichment = match &app.models.niche_enrichment {
            Some((cached, enrichment)) if *cached == name => enrichment.clone(),
            _ => {
                let codes: Vec<u32> = result.rows.iter().map(|&r| column.codes[r as usize]).collect();
                let labels = crate::models::labels_from_codes(&column.categories, &codes);
                let enrichment = Arc::new(crate::models::cluster_enrichment(&result.clusters, result.k, &labels));
                app.models.niche_enrichment = Some((name, enrichment.clone()));
                enrichment
            }
        };
        ui.label(
            RichText::new(format!(
                "Cluster x {} enrichment (log2 observed / expected)",
                column_name.unwrap_or_default()
            ))
            .small()
            .weak(),
        );
        let rows: Vec<String> = (1..=result.k).map(|c| format!("M{c}")).collect();
        let values = enrichment.log2_enrichment.clone();
        let counts = enrichment.counts.clone();
        let class_names = enrichment.class_names.clone();
        matrix_ui(ui, &rows, &class_names, &values, log2_colour, |r, c| {
            format!(
                "M{}: {} {} cells, log2 enrichment {:+.2}",
                r + 1,
                counts[r][c],
                class_names[c],
                values[r][c]
            )
        });
    }
    embedding_ui(ui, app, result);
}

/// The 2-D map of the morphology projection, coloured by cluster; hovering a point highlights
/// its cell on the slide, and the hovered cell and the active selection are marked here.
fn embedding_ui(ui: &mut egui::Ui, app: &mut ViewerApp, result: &NicheResult) {
    use egui_plot::{Plot, PlotPoints, Points};
    const MAX_POINTS: usize = 20_000;
    let step = result.rows.len().div_ceil(MAX_POINTS).max(1);
    let active = app.selections.active().map(|s| s.cells.clone());
    let highlighted = app.hovered_cell.or(app.pinned_cell);
    let row_of_cell = &app.models.niche_row_of_cell;
    let mut hovered = None;
    ui.label(
        RichText::new("Morphology embedding (2-D): hover a point to find its cell")
            .small()
            .weak(),
    );
    let response = Plot::new("niche-map")
        .height(220.0)
        .data_aspect(1.0)
        .show_axes([false, false])
        .show(ui, |plot| {
            for cluster in 0..result.k {
                let points: PlotPoints = result
                    .map_2d
                    .iter()
                    .zip(&result.clusters)
                    .step_by(step)
                    .filter(|(_, c)| **c as usize == cluster)
                    .map(|(p, _)| [f64::from(p[0]), f64::from(p[1])])
                    .collect();
                plot.points(
                    Points::new(format!("M{}", cluster + 1), points)
                        .radius(1.5)
                        .color(crate::palettes::class_colour(cluster)),
                );
            }
            if let Some(selected) = &active {
                let points: PlotPoints = result
                    .rows
                    .iter()
                    .zip(&result.map_2d)
                    .step_by(step)
                    .filter(|(r, _)| selected.contains(**r as usize))
                    .map(|(_, p)| [f64::from(p[0]), f64::from(p[1])])
                    .collect();
                plot.points(
                    Points::new("active selection", points)
                        .radius(2.5)
                        .filled(false)
                        .color(Color32::WHITE),
                );
            }
            if let Some(cell) = highlighted
                && let Some(&row) = row_of_cell.get(cell as usize)
                && row != u32::MAX
            {
                let p = result.map_2d[row as usize];
                plot.points(
                    Points::new("hovered cell", vec![[f64::from(p[0]), f64::from(p[1])]])
                        .radius(6.0)
                        .filled(false)
                        .color(Color32::YELLOW),
                );
            }
            if let Some(pointer) = plot.pointer_coordinate() {
                let bounds = plot.plot_bounds();
                let reach = (bounds.width().max(bounds.height()) * 0.01).powi(2);
                let mut best = (reach, None);
                for (i, p) in result.map_2d.iter().enumerate().step_by(step) {
                    let d = (f64::from(p[0]) - pointer.x).powi(2) + (f64::from(p[1]) - pointer.y).powi(2);
                    if d < best.0 {
                        best = (d, Some(result.rows[i]));
                    }
                }
                hovered = best.1;
            }
        });
    app.models.map_hover_cell = if response.response.hovered() { hovered } else { None };
}

/// A labelled matrix of coloured cells with hover text.
fn matrix_ui(
    ui: &mut egui::Ui,
    row_names: &[String],
    col_names: &[String],
    values: &[Vec<f64>],
    colour: impl Fn(f64) -> Color32,
    hover: impl Fn(usize, usize) -> String,
) {
    let (rows, cols) = (row_names.len(), col_names.len());
    if rows == 0 || cols == 0 {
        return;
    }
    let label_width = 90.0;
    let header = 14.0;
    let side = ((ui.available_width() - label_width) / cols as f32).clamp(10.0, 32.0);
    let (rect, response) = ui.allocate_exact_size(
        egui::vec2(label_width + side * cols as f32, header + side * rows as f32 + 2.0),
        egui::Sense::hover(),
    );
    let painter = ui.painter_at(rect);
    let text_colour = ui.visuals().text_color();
    for (c, name) in col_names.iter().enumerate() {
        let short: String = name.chars().take((side / 6.0).max(2.0) as usize).collect();
        painter.text(
            egui::pos2(
                rect.left() + label_width + (c as f32 + 0.5) * side,
                rect.top() + header / 2.0,
            ),
            egui::Align2::CENTER_CENTER,
            short,
            egui::FontId::proportional(9.0),
            text_colour,
        );
    }
    for (r, name) in row_names.iter().enumerate() {
        let y = rect.top() + header + r as f32 * side;
        painter.text(
            egui::pos2(rect.left() + label_width - 4.0, y + side / 2.0),
            egui::Align2::RIGHT_CENTER,
            name,
            egui::FontId::proportional(11.0),
            text_colour,
        );
        for c in 0..cols {
            let cell = egui::Rect::from_min_size(
                egui::pos2(rect.left() + label_width + c as f32 * side, y),
                egui::vec2(side - 1.0, side - 1.0),
            );
            let v = values.get(r).and_then(|row| row.get(c)).copied().unwrap_or(0.0);
            painter.rect_filled(cell, 1.0, colour(v));
        }
    }
    if let Some(pos) = response.hover_pos() {
        let c = ((pos.x - rect.left() - label_width) / side).floor();
        let r = ((pos.y - rect.top() - header) / side).floor();
        if c >= 0.0 && r >= 0.0 && (c as usize) < cols && (r as usize) < rows {
            response.on_hover_text(hover(r as usize, c as usize));
        }
    }
}

/// Blue (depleted) - white - red (enriched), saturating at ±3 log2 units.
fn log2_colour(v: f64) -> Color32 {
    crate::selection_panel::zscore_colour(v * 10.0 / 3.0)
}

/// 0 = dark, 1 = bright teal.
fn fraction_colour(v: f64) -> Color32 {
    let t = v.clamp(0.0, 1.0) as f32;
    Color32::from_rgb(
        (20.0 + 10.0 * t) as u8,
        (30.0 + 190.0 * t) as u8,
        (40.0 + 170.0 * t) as u8,
    )
}
