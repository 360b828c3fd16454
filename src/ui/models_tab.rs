//! The Models tab: where models run (the GPU shared with the viewer, or the CPU), which cells
//! (the whole slide or the active selection), the gene and morphology features, labels and
//! variant; the cell-type classifier's per-class precision/recall/F1 table and confusion matrix;
//! morphology niches with the cluster x cell-type enrichment heatmap and the 2-D embedding
//! linked with the slide. Runs are started, cancelled and applied by the shell.

use std::path::PathBuf;
use std::sync::Arc;

use cs_models::classifier::Variant;
use cs_models::device::ComputeDevice;
use cs_models::evaluate::{SplitKind, mean_sd};
use cs_models::pipeline::MorphologyChoice;
use cs_models::vit::{TokenReadout, VitPreset};
use egui::{Color32, RichText};

use crate::document::Edit;
use crate::document::models::{CLUSTER_COLUMN, PREDICTED_COLUMN};
use crate::layers::cell_layer::ColourBy;
use crate::layers::palettes::{class_colour, zscore_colour};
use crate::ui::dialogs::DialogPurpose;
use crate::ui::plots::{MatrixLayout, matrix_ui};
use crate::ui::{Command, PanelContext, job_progress_ui};
use crate::util::display_name;
use crate::work::jobs::JobKind;
use crate::work::model_runs::{
    ClassifierResult, ComparisonResult, ComparisonSettings, LabelChoice, ModelSettings, NicheResult,
};
use crate::work::models::{ClusterEnrichment, cluster_enrichment, labels_from_codes};

const DEVICE_KEY: &str = "model_device";
const MORPHOLOGY_KEY: &str = "model_morphology";

/// The morphology encoder choice, kept between sessions (the weights file stays where it is).
#[derive(serde::Serialize, serde::Deserialize)]
struct MorphologyPreference {
    vit_preset: Option<VitPreset>,
    vit_weights: Option<std::path::PathBuf>,
    readout: TokenReadout,
}

/// The tab's matrices: abbreviated class names above the cells.
const MATRIX: MatrixLayout = MatrixLayout {
    column_header: true,
    max_side: 32.0,
};

/// The GPU the viewer draws with, as the tab describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuAdapter {
    pub name: String,
    /// A software adapter (lavapipe, WARP): slower than burn-ndarray on the CPU.
    pub software: bool,
}

/// What the niche heatmap was computed from: the column and the version of the model results.
#[derive(Debug, Clone, PartialEq)]
struct EnrichmentInputs {
    column: String,
    results_version: u64,
}

/// The Models tab's own state: the settings of the next run, the last failure, and what the
/// embedding scatter highlights.
pub struct ModelsTabState {
    pub settings: ModelSettings,
    /// The GPU models can share with the viewer (None: there is none; models run on the CPU).
    pub gpu_adapter: Option<GpuAdapter>,
    /// Where finished runs are cached (None: never).
    pub cache_dir: Option<PathBuf>,
    /// The last run's failure, shown under its button.
    pub error: Option<String>,
    /// A cell hovered in the embedding scatter (highlighted on the slide).
    pub map_hover_cell: Option<u32>,
    /// How *Compare models* splits the cells.
    pub comparison: ComparisonSettings,
    /// The uncertain-threshold slider while it is dragged (sent when let go).
    uncertain_below: f32,
    /// Genes to predict from the H&E (comma-separated) and the patch side.
    pub virtual_genes: String,
    pub virtual_patch_um: f32,
    /// Read each tile through the ViT chosen above too (its class token), beside the tile statistics.
    pub virtual_through_encoder: bool,
    /// The niche heatmap's numbers and what they were computed from.
    niche_enrichment: Option<(EnrichmentInputs, Arc<ClusterEnrichment>)>,
}

impl ModelsTabState {
    pub fn new(gpu_adapter: Option<GpuAdapter>) -> Self {
        // A software adapter (lavapipe, WARP) trains far slower than burn-ndarray: start on the CPU.
        let real_gpu = gpu_adapter.as_ref().is_some_and(|g| !g.software);
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
            gpu_adapter,
            cache_dir: Some(crate::work::model_runs::default_cache_dir()),
            error: None,
            map_hover_cell: None,
            comparison: ComparisonSettings::default(),
            uncertain_below: 0.0,
            virtual_genes: String::new(),
            virtual_patch_um: cs_models::virtual_expression::DEFAULT_PATCH_UM,
            virtual_through_encoder: false,
            niche_enrichment: None,
        }
    }

    /// The device and morphology preferences, kept between sessions (GPU only when there is one).
    pub fn load_preferences(&mut self, storage: Option<&dyn eframe::Storage>) {
        let saved: Option<ComputeDevice> = storage.and_then(|s| eframe::get_value(s, DEVICE_KEY));
        if let Some(device) = saved
            && (device == ComputeDevice::Cpu || self.gpu_adapter.is_some())
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
}

pub fn models_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, state: &mut ModelsTabState) {
    let doc = cx.document;
    let Some(cells) = &doc.cells else { return };
    let categorical: Vec<String> = cells.bundle.cells.categorical.iter().map(|(n, _)| n.clone()).collect();
    let has_slide = doc.slide.is_some();
    let active = doc.selections.active().map(|s| (s.name.clone(), s.cells.count()));
    let n_selections = doc.selections.items.len();
    let settings = &mut state.settings;
    let gpu_available = state.gpu_adapter.is_some();
    let gpu_name = state.gpu_adapter.as_ref().map(|adapter| {
        let software = if adapter.software {
            " - a software adapter, slower than the CPU backend"
        } else {
            ""
        };
        format!("burn-wgpu on the viewer's own device: {}{software}", adapter.name)
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
        cx.send(Command::AskForFile(DialogPurpose::VitWeights));
    }
    if choose_embeddings {
        cx.send(Command::AskForFile(DialogPurpose::GeneEmbeddings));
    }
    let settings = &mut state.settings;

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
                )
                .on_hover_text(format!(
                    "Peak learning rate: a linear warm-up over the first 5% of steps, then a cosine decay; \
                     small data gets more epochs, up to at least {} steps",
                    cs_models::train::DEFAULT_MIN_STEPS
                ));
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
        cx.send(Command::AskForFile(DialogPurpose::ModelLabels));
    }
    let (mut start, mut choose_model) = (false, false);
    match cx.job(JobKind::Classifier) {
        Some(run) => job_progress_ui(ui, cx, run),
        None => {
            ui.horizontal(|ui| {
                start = ui
                    .button("Train and predict")
                    .on_hover_text("AdamW, class-weighted cross-entropy, batch 64, weight decay 0.01, seeded 80/20 split; 10% of the training cells pick the best epoch and calibrate the confidences")
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
        cx.send(Command::RunClassifier);
    }
    if choose_model {
        cx.send(Command::AskForFile(DialogPurpose::ApplyModel));
    }
    if let Some(error) = &state.error {
        ui.colored_label(ui.visuals().error_fg_color, error);
    }
    if let Some(result) = &doc.models.classifier {
        classifier_result_ui(ui, cx, result);
        uncertain_ui(ui, cx, &mut state.uncertain_below);
    }

    ui.separator();
    comparison_ui(ui, cx, state);

    ui.separator();
    virtual_expression_ui(ui, cx, state, has_slide);

    ui.separator();
    ui.strong("Morphology niches");
    let settings = &mut state.settings;
    ui.horizontal(|ui| {
        ui.add(egui::DragValue::new(&mut settings.k).range(2..=40).prefix("k = "));
        ui.add(
            egui::DragValue::new(&mut settings.niche_epochs)
                .range(1..=500)
                .suffix(" epochs"),
        );
    });
    let mut start = false;
    match cx.job(JobKind::Niches) {
        Some(run) => job_progress_ui(ui, cx, run),
        None => {
            start = ui
                .button("Find niches")
                .on_hover_text("Contrastive alignment (InfoNCE) of genes and morphology, then k-means on the morphology projection")
                .clicked();
        }
    }
    if start {
        cx.send(Command::RunNiches);
    }
    if let Some(result) = &doc.models.niches {
        niches_result_ui(ui, cx, state, result);
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
                ui.add(egui::Label::new(display_name(path)).truncate())
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
                    ui.add(egui::Label::new(display_name(path)).truncate())
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

fn classifier_result_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, result: &ClassifierResult) {
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
    if result.n_calibration > 0 {
        ui.label(
            RichText::new(format!(
                "confidences calibrated: temperature {:.2} fitted on {} training cells held back{}",
                result.temperature,
                result.n_calibration,
                result
                    .best_epoch
                    .map(|e| format!(
                        "; epoch {e} of {} kept (lowest loss on them)",
                        result.epoch_losses.len()
                    ))
                    .unwrap_or_default()
            ))
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
        cx.send(Command::AskForFile(DialogPurpose::SaveModel { from }));
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
    matrix_ui(
        ui,
        &names,
        &names,
        &matrix,
        fraction_colour,
        |r, c| {
            format!(
                "{} labelled, predicted {}: {} cells ({:.0}% of the label)",
                names[r],
                names[c],
                counts[r][c],
                matrix[r][c] * 100.0
            )
        },
        MATRIX,
    );
    if cx.document.cells.is_some() && ui.button("Colour cells by prediction").clicked() {
        cx.edit(Edit::ColourBy(ColourBy::Category(PREDICTED_COLUMN.into())));
    }
}

/// The *uncertain* threshold: predictions less confident than it are drawn as a grey class.
fn uncertain_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, below: &mut f32) {
    let applied = cx.document.models.uncertain_below;
    ui.horizontal(|ui| {
        ui.label("Uncertain below");
        let response = ui
            .add(egui::Slider::new(below, 0.0..=1.0).fixed_decimals(2).text("confidence"))
            .on_hover_text(
                "Cells whose predicted class has a lower probability show as \"uncertain\" (grey); 0 shows every \
                 prediction. Confidences are calibrated by temperature scaling on training cells held back.",
            );
        let let_go = response.drag_stopped() || (response.changed() && !response.dragged());
        if let_go && (*below - applied).abs() > f32::EPSILON {
            cx.send(Command::SetUncertainBelow(*below));
        }
        if !response.dragged() && !response.changed() {
            *below = applied;
        }
    });
    if let Some(result) = &cx.document.models.classifier
        && applied > 0.0
    {
        let n = result.confidence.iter().filter(|&&c| c < applied).count();
        ui.label(
            RichText::new(format!(
                "{n} of {} cells ({:.1}%) uncertain",
                result.confidence.len(),
                100.0 * n as f64 / result.confidence.len().max(1) as f64
            ))
            .small()
            .weak(),
        );
    }
}

/// Virtual expression: genes to predict from the H&E alone over the whole slide, the run, the
/// per-gene held-out scores, and the heatmap's gene, visibility and side-by-side view.
fn virtual_expression_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, state: &mut ModelsTabState, has_slide: bool) {
    ui.strong("Virtual expression (from the H&E)");
    if !has_slide {
        ui.label(
            RichText::new("Open the slide and its alignment: genes are predicted from the H&E.")
                .small()
                .weak(),
        );
        return;
    }
    // A start: the panel's four most variable genes (over at most 20,000 cells), and its four
    // most variable proteins when the run measured protein (XOA 4).
    if state.virtual_genes.is_empty()
        && let Some(cells) = &cx.document.cells
        && let Some(counts) = &cells.bundle.counts
    {
        let genes: Vec<(u32, String)> = counts
            .features_of_type(cs_xenium::GENE_EXPRESSION)
            .into_iter()
            .map(|f| (f, counts.features[f as usize].name.clone()))
            .collect();
        let mut start = most_variable(counts, &genes, 4);
        start.extend(most_variable(counts, &counts.protein_target_names(), 4));
        state.virtual_genes = start.join(", ");
    }
    ui.horizontal(|ui| {
        ui.label("Genes");
        ui.add(egui::TextEdit::singleline(&mut state.virtual_genes).desired_width(180.0))
            .on_hover_text(
                "Comma-separated, as named in the panel; an XOA 4 run's proteins too (\"NAME (protein)\" where a \
                 gene has the same name)",
            );
    });
    ui.horizontal(|ui| {
        ui.add(
            egui::DragValue::new(&mut state.virtual_patch_um)
                .range(10.0..=500.0)
                .suffix(" µm patches"),
        );
        if let Some(preset) = state.settings.vit_preset {
            ui.checkbox(
                &mut state.virtual_through_encoder,
                format!("through {}", preset.label()),
            )
            .on_hover_text(
                "Also read each tile through the ViT chosen above (its weights; class token), and give the \
                     head its embedding's 32 leading principal components beside the tile statistics",
            );
        } else {
            state.virtual_through_encoder = false;
        }
    });
    match cx.job(JobKind::VirtualExpression) {
        Some(run) => job_progress_ui(ui, cx, run),
        None => {
            if ui
                .button("Predict from H&E")
                .on_hover_text(
                    "Trains a regression head on the patches where Xenium measured cells (tile statistics of the \
                     H&E in, mean log-normalised expression out), scores it on held-out tissue blocks against a \
                     shuffled-patch control, and predicts every tissue patch of the slide",
                )
                .clicked()
            {
                cx.send(Command::RunVirtualExpression);
            }
        }
    }
    let (Some(result), Some(layer)) = (&cx.document.models.virtual_result, &cx.document.models.virtual_layer) else {
        return;
    };
    ui.label(
        RichText::new(format!(
            "{} x {} patches of {} µm{}; trained on {} measured patches, {} held out in whole tissue blocks; {:.1} s on {}{}",
            result.grid.columns,
            result.grid.rows,
            result.grid.patch_um,
            if result.feature_source.is_empty() {
                String::new()
            } else {
                format!(", read as {}", result.feature_source)
            },
            result.n_train,
            result.n_test,
            result.seconds,
            result.device,
            if result.from_cache { ", from the cache" } else { "" }
        ))
        .small(),
    );
    let (mut gene, mut visible) = (layer.gene, layer.visible);
    egui::Grid::new("virtual-scores")
        .striped(true)
        .num_columns(5)
        .show(ui, |ui| {
            for header in ["show", "gene", "Pearson r", "Spearman r", "control r"] {
                ui.strong(header);
            }
            ui.end_row();
            for (g, s) in result.scores.iter().enumerate() {
                ui.radio_value(&mut gene, g, "");
                ui.label(&s.gene);
                ui.label(format!("{:.3}", s.pearson));
                ui.label(format!("{:.3}", s.spearman));
                ui.label(RichText::new(format!("{:.3}", s.control_pearson)).weak())
                    .on_hover_text("The same head trained on targets shuffled between the training patches");
                ui.end_row();
            }
        });
    ui.horizontal(|ui| {
        ui.checkbox(&mut visible, "Show heatmap");
        if ui
            .button("Side by side with measured")
            .on_hover_text("Split view: virtual on the left, measured on the right, pan and zoom linked")
            .clicked()
        {
            cx.send(Command::SplitVirtualMeasured);
        }
    });
    if (gene, visible) != (layer.gene, layer.visible) {
        cx.send(Command::ShowVirtualGene { gene, visible });
    }
}

/// The names of the `n` of `features` whose values vary most between cells (a sample of at most
/// 20,000 cells, spread over the bundle), most variable first.
fn most_variable(counts: &cs_xenium::SparseCounts, features: &[(u32, String)], n: usize) -> Vec<String> {
    let cells = counts.row_offsets.len().saturating_sub(1);
    let step = cells.div_ceil(20_000).max(1);
    let (mut sum, mut sum_sq) = (vec![0f64; counts.features.len()], vec![0f64; counts.features.len()]);
    let mut sampled = 0f64;
    for cell in (0..cells).step_by(step) {
        let (features, values) = counts.cell(cell);
        for (&f, &v) in features.iter().zip(values) {
            sum[f as usize] += f64::from(v);
            sum_sq[f as usize] += f64::from(v) * f64::from(v);
        }
        sampled += 1.0;
    }
    let variance = |f: usize| sum_sq[f] / sampled.max(1.0) - (sum[f] / sampled.max(1.0)).powi(2);
    let mut order: Vec<&(u32, String)> = features.iter().collect();
    order.sort_by(|a, b| variance(b.0 as usize).total_cmp(&variance(a.0 as usize)));
    order.into_iter().take(n).map(|(_, name)| name.clone()).collect()
}

/// *Compare models*: the split and seeds, the button (or the run's progress), and the table of
/// the last comparison.
fn comparison_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, state: &mut ModelsTabState) {
    ui.strong("Compare models");
    let comparison = &mut state.comparison;
    ui.horizontal(|ui| {
        egui::ComboBox::from_id_salt("comparison-split")
            .selected_text(match comparison.split {
                SplitKind::Spatial => "spatial split",
                SplitKind::Random => "random split",
            })
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut comparison.split, SplitKind::Spatial, "spatial split")
                    .on_hover_text("Held-out tissue blocks (5 x 5 grid): neighbours of test cells do not train");
                ui.selectable_value(&mut comparison.split, SplitKind::Random, "random split")
                    .on_hover_text("Stratified random 20% of the labelled cells");
            });
        ui.add(
            egui::DragValue::new(&mut comparison.seeds)
                .range(1..=10)
                .suffix(" seeds"),
        );
    });
    match cx.job(JobKind::Comparison) {
        Some(run) => job_progress_ui(ui, cx, run),
        None => {
            let start = ui
                .button("Compare models")
                .on_hover_text(
                    "Trains the four variants and logistic regression (genes; genes + morphology), nearest centroid \
                     and kNN on the same splits, with the labels, epochs and lr above; reports macro-F1 mean ± sd, \
                     accuracy and calibration error",
                )
                .clicked();
            if start {
                cx.send(Command::CompareModels);
            }
        }
    }
    if let Some(result) = &cx.document.models.comparison {
        comparison_table_ui(ui, result);
    }
}

fn comparison_table_ui(ui: &mut egui::Ui, result: &ComparisonResult) {
    let evaluation = &result.evaluation;
    ui.label(
        RichText::new(format!(
            "{} split, {} seeds, labels: {}; {} labelled cells, {} held out per seed; {:.0} s on {}{}",
            match evaluation.split {
                SplitKind::Spatial => "Spatial",
                SplitKind::Random => "Random",
            },
            evaluation.seeds.len(),
            result.label_source,
            evaluation.n_labelled,
            evaluation.n_test.iter().sum::<usize>() / evaluation.n_test.len().max(1),
            result.seconds,
            result.device,
            if result.from_cache { ", from the cache" } else { "" }
        ))
        .small(),
    );
    let best = evaluation
        .methods
        .iter()
        .map(|m| m.macro_f1_mean_sd().0)
        .fold(f64::NEG_INFINITY, f64::max);
    // Narrow enough for the panel: what each method reads under its name, its time on hover;
    // scrolls sideways rather than widening the panel past the window.
    egui::ScrollArea::horizontal()
        .id_salt("comparison-scroll")
        .show(ui, |ui| {
            egui::Grid::new("comparison-table")
                .striped(true)
                .num_columns(4)
                .show(ui, |ui| {
                    for header in ["method (inputs)", "macro-F1", "accuracy", "ECE"] {
                        ui.strong(header);
                    }
                    ui.end_row();
                    for m in &evaluation.methods {
                        let (f1, sd) = m.macro_f1_mean_sd();
                        ui.vertical(|ui| {
                            ui.label(m.method.trim_start_matches("CellSymphony "))
                                .on_hover_text(format!("{:.1} s over the seeds", m.seconds));
                            ui.label(RichText::new(&m.inputs).small().weak());
                        });
                        let text = RichText::new(format!("{f1:.3} ± {sd:.3}"));
                        ui.label(if f1 >= best { text.strong() } else { text });
                        ui.label(format!("{:.3}", mean_sd(&m.accuracy).0));
                        ui.label(format!("{:.3}", mean_sd(&m.ece).0));
                        ui.end_row();
                    }
                });
        });
    egui::CollapsingHeader::new("Per-class F1")
        .id_salt("comparison-per-class")
        .show(ui, |ui| {
            // Short row names (the matrix's labels sit left of it); the full ones on hover.
            let full: Vec<String> = evaluation
                .methods
                .iter()
                .map(|m| format!("{} ({})", m.method.trim_start_matches("CellSymphony "), m.inputs))
                .collect();
            let rows: Vec<String> = evaluation
                .methods
                .iter()
                .map(|m| match (m.method.as_str(), m.inputs.contains("morphology")) {
                    ("logistic regression", false) => "LR (genes)".to_owned(),
                    ("logistic regression", true) => "LR (+ morph.)".to_owned(),
                    (method, _) => method.trim_start_matches("CellSymphony ").to_owned(),
                })
                .collect();
            let values: Vec<Vec<f64>> = evaluation
                .methods
                .iter()
                .map(|m| {
                    (0..evaluation.class_names.len())
                        .map(|c| {
                            let per_seed: Vec<f64> = m.per_class_f1.iter().filter_map(|s| s.get(c).copied()).collect();
                            mean_sd(&per_seed).0
                        })
                        .collect()
                })
                .collect();
            egui::ScrollArea::horizontal()
                .id_salt("comparison-per-class-scroll")
                .show(ui, |ui| {
                    matrix_ui(
                        ui,
                        &rows,
                        &evaluation.class_names,
                        &values,
                        fraction_colour,
                        |r, c| format!("{}, {}: F1 {:.3}", full[r], evaluation.class_names[c], values[r][c]),
                        MATRIX,
                    );
                });
        });
}

fn niches_result_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, state: &mut ModelsTabState, result: &Arc<NicheResult>) {
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
    let doc = cx.document;
    let Some(cells) = &doc.cells else { return };
    let table = &cells.bundle.cells;
    let column_name = if table.categorical_column(PREDICTED_COLUMN).is_some() {
        Some(PREDICTED_COLUMN.to_string())
    } else {
        doc.analysis.stats_column.clone().or_else(|| {
            table
                .categorical
                .iter()
                .map(|(n, _)| n.clone())
                .find(|n| n != CLUSTER_COLUMN)
        })
    };
    if let Some(column) = column_name.as_deref().and_then(|c| table.categorical_column(c)) {
        let name = column_name.clone().unwrap_or_default();
        // Recomputed only when the column, the niches or the predictions change.
        let inputs = EnrichmentInputs {
            column: name,
            results_version: doc.models.version,
        };
        let enrichment = match &state.niche_enrichment {
            Some((cached, enrichment)) if *cached == inputs => enrichment.clone(),
            _ => {
                let codes: Vec<u32> = result.rows.iter().map(|&r| column.codes[r as usize]).collect();
                let labels = labels_from_codes(&column.categories, &codes);
                let enrichment = Arc::new(cluster_enrichment(&result.clusters, result.k, &labels));
                state.niche_enrichment = Some((inputs, enrichment.clone()));
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
        matrix_ui(
            ui,
            &rows,
            &class_names,
            &values,
            log2_colour,
            |r, c| {
                format!(
                    "M{}: {} {} cells, log2 enrichment {:+.2}",
                    r + 1,
                    counts[r][c],
                    class_names[c],
                    values[r][c]
                )
            },
            MATRIX,
        );
    }
    embedding_ui(ui, cx, state, result);
}

/// The 2-D map of the morphology projection, coloured by cluster; hovering a point highlights
/// its cell on the slide, and the hovered cell and the active selection are marked here.
fn embedding_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, state: &mut ModelsTabState, result: &NicheResult) {
    use egui_plot::{Plot, PlotPoints, Points};
    const MAX_POINTS: usize = 20_000;
    let step = result.rows.len().div_ceil(MAX_POINTS).max(1);
    let active = cx.document.selections.active().map(|s| s.cells.clone());
    let highlighted = cx.viewer.hovered_cell.or(cx.viewer.pinned_cell);
    let row_of_cell = &cx.document.models.niche_row_of_cell;
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
                        .color(class_colour(cluster)),
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
    state.map_hover_cell = if response.response.hovered() { hovered } else { None };
}

/// Blue (depleted) - white - red (enriched), saturating at ±3 log2 units.
fn log2_colour(v: f64) -> Color32 {
    zscore_colour(v * 10.0 / 3.0)
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
