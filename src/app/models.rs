//! Model runs from the Models tab: what a run needs of the open data and the tab's settings, the
//! device (eframe's GPU shared with burn, or the CPU), starting the classifier, a saved model or
//! the niches as a job, and putting the results on the cells once they arrive (dropped when the
//! bundle changed meanwhile).

use std::path::{Path, PathBuf};

use cs_models::burn::tensor::Device;
use cs_models::pipeline::MorphologyChoice;
use cs_models::vit::VitPreset;

use crate::app::ViewerApp;
use crate::app::jobs::{JobKey, JobOutput};
use crate::work::jobs::JobKind;
use crate::work::model_runs::{
    ClassifierResult, ComparisonResult, NicheResult, PreparedRun, RunData, RunKey, VirtualResult, classifier_run,
    comparison_run, copy_model_dir, niches_run, saved_model_run, virtual_run,
};

impl ViewerApp {
    /// What a run needs of the open data (None: no bundle, or "active selection only" without one).
    fn run_data(&self) -> Option<RunData> {
        let doc = &self.document;
        let settings = &self.runtime.ui.models.settings;
        let cells = doc.cells.as_ref()?;
        let scope = if settings.selection_only {
            Some(doc.selections.active()?.cells.clone())
        } else {
            None
        };
        Some(RunData {
            bundle: cells.bundle.clone(),
            slide: doc
                .slide
                .as_ref()
                .map(|s| (s.layer.source.clone(), s.layer.world_from_slide)),
            scope,
            selections: doc
                .selections
                .items
                .iter()
                .map(|s| (s.name.clone(), s.cells.clone()))
                .collect(),
            cache_dir: self.runtime.ui.models.cache_dir.clone(),
            gene_embeddings: settings.gene_embeddings.clone(),
        })
    }

    /// What a run needs before it starts: the open data, the morphology encoder (when
    /// `with_morphology`) and the device (None: a toast said why).
    fn run_inputs(&mut self, with_morphology: bool) -> Option<(RunData, MorphologyChoice, Device)> {
        let Some(data) = self.run_data() else {
            self.runtime
                .toasts
                .error("Open a Xenium bundle (and select a region, if 'active selection only') first.");
            return None;
        };
        let settings = &self.runtime.ui.models.settings;
        let morphology = if with_morphology {
            settings.morphology()
        } else {
            Ok(MorphologyChoice::Builtin)
        };
        let device_kind = settings.device;
        match morphology.and_then(|m| Ok((m, self.runtime.gpu.burn_device(device_kind)?))) {
            Ok((morphology, device)) => {
                self.runtime.ui.models.error = None;
                Some((data, morphology, device))
            }
            Err(e) => {
                self.runtime.toasts.error(format!("{e:#}"));
                None
            }
        }
    }

    /// Starts a prepared classifier run as the classifier job.
    pub(super) fn start_classifier_run(&mut self, run: PreparedRun<ClassifierResult>) {
        let PreparedRun { key, label, work } = run;
        self.jobs.cancel_kind(JobKind::Classifier);
        self.spawn(JobKind::Classifier, JobKey::Run(key), label, move |cx| {
            JobOutput::Classifier(work(cx))
        });
    }

    /// Starts a prepared niche run as the niches job.
    pub(super) fn start_niches_run(&mut self, run: PreparedRun<NicheResult>) {
        let PreparedRun { key, label, work } = run;
        self.jobs.cancel_kind(JobKind::Niches);
        self.spawn(JobKind::Niches, JobKey::Run(key), label, move |cx| {
            JobOutput::Niches(work(cx))
        });
    }

    /// Starts the cell-type classifier on the chosen cells.
    pub(super) fn run_classifier(&mut self) {
        let with_morphology = self.runtime.ui.models.settings.variant.uses_morphology();
        let Some((data, morphology, device)) = self.run_inputs(with_morphology) else {
            return;
        };
        let run = classifier_run(data, &self.runtime.ui.models.settings, morphology, device);
        self.start_classifier_run(run);
    }

    /// Starts applying a saved classifier folder to the chosen cells.
    pub(super) fn apply_saved_model(&mut self, model_dir: PathBuf) {
        let Some((data, _, device)) = self.run_inputs(false) else {
            return;
        };
        self.start_classifier_run(saved_model_run(data, model_dir, device));
    }

    /// Starts the comparison of every variant and the baselines on the chosen cells.
    pub(super) fn compare_models(&mut self) {
        let Some((data, morphology, device)) = self.run_inputs(true) else {
            return;
        };
        let models = &self.runtime.ui.models;
        let PreparedRun { key, label, work } =
            comparison_run(data, &models.settings, models.comparison, morphology, device);
        self.jobs.cancel_kind(JobKind::Comparison);
        self.spawn(JobKind::Comparison, JobKey::Run(key), label, move |cx| {
            JobOutput::Comparison(work(cx))
        });
    }

    pub(super) fn comparison_finished(&mut self, key: &RunKey, outcome: anyhow::Result<ComparisonResult>) {
        match outcome {
            Ok(result) => {
                if self.document.bundle_matches(key) {
                    let best = result
                        .evaluation
                        .methods
                        .iter()
                        .map(|m| (m.macro_f1_mean_sd().0, m))
                        .max_by(|a, b| a.0.total_cmp(&b.0));
                    if let Some((f1, m)) = best {
                        self.runtime.toasts.note(format!(
                            "Models compared: best {} ({}), macro-F1 {f1:.3}{}",
                            m.method,
                            m.inputs,
                            if result.from_cache { " (from the cache)" } else { "" }
                        ));
                    }
                    self.document.models.comparison = Some(std::sync::Arc::new(result));
                }
            }
            Err(e) => self.model_failed("Model comparison", &e),
        }
    }

    /// Starts virtual expression of the tab's genes over the whole slide.
    pub(super) fn run_virtual_expression(&mut self) {
        let genes: Vec<String> = self
            .runtime
            .ui
            .models
            .virtual_genes
            .split([',', ';', '\n'])
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect();
        if genes.is_empty() {
            self.runtime.toasts.error("Type the genes to predict, comma-separated.");
            return;
        }
        if self.document.slide.is_none() {
            self.runtime
                .toasts
                .error("Virtual expression reads the H&E: open the slide and its alignment first.");
            return;
        }
        let with_encoder = self.runtime.ui.models.virtual_through_encoder;
        let Some((mut data, morphology, device)) = self.run_inputs(with_encoder) else {
            return;
        };
        // The whole slide: the patches are the slide's, not a selection's.
        data.scope = None;
        let patch_um = self.runtime.ui.models.virtual_patch_um;
        let PreparedRun { key, label, work } = virtual_run(data, genes, patch_um, morphology, device);
        self.jobs.cancel_kind(JobKind::VirtualExpression);
        self.spawn(JobKind::VirtualExpression, JobKey::Run(key), label, move |cx| {
            JobOutput::Virtual(work(cx))
        });
    }

    pub(super) fn virtual_finished(&mut self, key: &RunKey, outcome: anyhow::Result<VirtualResult>) {
        match outcome {
            Ok(result) => {
                if !self.document.bundle_matches(key) {
                    return;
                }
                let mean = result.scores.iter().map(|s| s.pearson).sum::<f64>() / result.scores.len().max(1) as f64;
                let control =
                    result.scores.iter().map(|s| s.control_pearson).sum::<f64>() / result.scores.len().max(1) as f64;
                self.runtime.toasts.note(format!(
                    "Virtual expression of {} genes: mean held-out Pearson r {mean:.2} (shuffled control {control:.2}){}",
                    result.scores.len(),
                    if result.from_cache { " (from the cache)" } else { "" }
                ));
                let grid = std::sync::Arc::new(result.grid.clone());
                self.document.models.virtual_layer = Some(crate::layers::patch_layer::PatchLayer::new(grid));
                self.document.models.virtual_result = Some(std::sync::Arc::new(result));
            }
            Err(e) => self.model_failed("Virtual expression", &e),
        }
    }

    /// Starts contrastive alignment + k-means on the chosen cells.
    pub(super) fn run_niches(&mut self) {
        let Some((data, morphology, device)) = self.run_inputs(true) else {
            return;
        };
        let run = niches_run(data, &self.runtime.ui.models.settings, morphology, device);
        self.start_niches_run(run);
    }

    /// Copies a kept model folder (`from`, the classifier shown when *Save model…* was pressed)
    /// to `to`.
    pub(super) fn save_model(&mut self, from: &Path, to: PathBuf) {
        match copy_model_dir(from, &to) {
            Ok(()) => self.runtime.toasts.note(format!(
                "Model saved to {} (cellsymphony predict --model {} ...)",
                to.display(),
                to.display()
            )),
            Err(e) => self.runtime.toasts.error(format!("Saving the model: {e:#}")),
        }
    }

    /// A ViT weights file the user picked: checked from its header (instant) against the chosen
    /// architecture, so a wrong file is named now rather than when a run starts; a file of
    /// another preset switches the choice to it.
    pub(super) fn choose_vit_weights(&mut self, path: PathBuf) {
        let file = match cs_models::safetensors::SafeTensors::open(&path) {
            Ok(file) => file,
            Err(e) => {
                self.runtime.toasts.error(format!("{e}"));
                return;
            }
        };
        let settings = &mut self.runtime.ui.models.settings;
        let checked = match settings.vit_preset {
            Some(preset) => preset.check_file(&file),
            None => Err(cs_models::ModelError::Input("no ViT chosen".into())),
        };
        match (checked, VitPreset::detect_in(&file)) {
            (Ok(()), _) => settings.vit_weights = Some(path),
            (Err(_), Some(found)) => {
                settings.vit_preset = Some(found);
                settings.vit_weights = Some(path.clone());
                self.runtime.toasts.note(format!(
                    "{} holds {} weights: switched the encoder to it.",
                    path.display(),
                    found.label()
                ));
            }
            (Err(e), None) => self.runtime.toasts.error(format!("{e}")),
        }
    }

    pub(super) fn classifier_finished(&mut self, key: &RunKey, outcome: anyhow::Result<ClassifierResult>) {
        match outcome {
            Ok(result) => {
                let applied = self.document.apply_classifier(key, result);
                self.report_applied(applied);
                self.offer_model_to_cohort();
            }
            Err(e) => self.model_failed("Cell-type classifier", &e),
        }
    }

    pub(super) fn niches_finished(&mut self, key: &RunKey, outcome: anyhow::Result<NicheResult>) {
        match outcome {
            Ok(result) => {
                let applied = self.document.apply_niches(key, result);
                self.report_applied(applied);
                self.offer_niches_to_cohort();
            }
            Err(e) => self.model_failed("Morphology niches", &e),
        }
    }

    fn report_applied(&mut self, applied: Option<Result<String, String>>) {
        match applied {
            Some(Ok(note)) => self.runtime.toasts.note(note),
            Some(Err(error)) => self.runtime.toasts.error(error),
            // The bundle changed while the model ran: its result is dropped.
            None => {}
        }
    }

    fn model_failed(&mut self, what: &str, error: &anyhow::Error) {
        let message = format!("{error:#}");
        if message != "cancelled" {
            self.runtime.toasts.error(format!("{what}: {message}"));
            self.runtime.ui.models.error = Some(format!("{what}: {message}"));
        }
    }
}
