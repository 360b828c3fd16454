//! Cohorts in the app: opening a manifest, switching the sample shown (the one left is parked as
//! a captured session and comes back as it was), another sample beside it in the split view, a
//! classifier applied to other samples, and the cohort tab's composition comparison.

use std::path::{Path, PathBuf};

use crate::app::{JobKey, JobOutput, ViewerApp};
use crate::document::cohort::{CohortModel, CohortState};
use crate::document::{CompareSlide, Comparison};
use crate::io::session_file::{SessionFile, StoredAlignment, StoredPath};
use crate::layers::cell_layer::CellLayer;
use crate::ui::RightTab;
use crate::util::display_name;
use crate::viewer::split::SplitView;
use crate::work::cohort::{
    AppliedKind, AppliedModel, ApplyModelRequest, CompositionRequest, OpenedSample, SampleToOpen, apply_model,
    cohort_composition, open_sample, predictions_path,
};
use crate::work::jobs::JobKind;

impl ViewerApp {
    /// Reads a manifest; its first sample that can run is shown, and the cohort tab.
    pub(super) fn open_cohort(&mut self, path: PathBuf) {
        let manifest = match cs_cohort::Manifest::read(&path) {
            Ok(manifest) => manifest,
            Err(error) => {
                self.runtime.toasts.error(format!("{error}"));
                return;
            }
        };
        let problems: Vec<String> = manifest
            .samples
            .iter()
            .filter_map(|s| s.problem.as_ref().map(|p| format!("{} ({}): {p}", s.id, s.row)))
            .collect();
        let first = manifest.runnable().next().map(|s| s.id.clone());
        let message = format!(
            "Cohort {}: {} sample(s), {} can be opened",
            display_name(&path),
            manifest.samples.len(),
            manifest.runnable().count()
        );
        if problems.is_empty() {
            self.runtime.toasts.note(message);
        } else {
            self.runtime
                .toasts
                .error(format!("{message}. Cannot open: {}", problems.join("; ")));
        }
        self.document.cohort = Some(CohortState::new(manifest));
        self.runtime.ui.right_tab = RightTab::Cohort;
        if let Some(id) = first {
            self.switch_sample(&id);
        }
    }

    /// Shows sample `id`: the sample shown now is parked as it is (view, layers, selections,
    /// annotations, model runs) and `id` comes back as it was left, or opens fresh.
    pub(super) fn switch_sample(&mut self, id: &str) {
        let Some(cohort) = &self.document.cohort else {
            return;
        };
        if cohort.active.as_deref() == Some(id) {
            return;
        }
        // A sample visited before comes back as it was left; a new one opens its files.
        let session = cohort.openable(id).and_then(|sample| match cohort.parked.get(id) {
            Some(parked) => Ok(parked.clone()),
            None => fresh_session(sample),
        });
        let session = match session {
            Ok(session) => session,
            Err(message) => {
                self.runtime.toasts.error(message);
                return;
            }
        };
        // The sample left is parked without the cohort around it (that is kept once, here).
        let left = cohort.active.clone().map(|active| {
            let mut parked = self.capture_session(None);
            parked.cohort = None;
            (active, parked)
        });
        if let Some(cohort) = &mut self.document.cohort {
            cohort.parked.remove(id);
            cohort.parked.extend(left);
            cohort.active = Some(id.to_owned());
        }
        // Another sample shown beside stays there; the sample now shown leaves that pane.
        let beside = self
            .document
            .compare
            .take_if(|c| c.sample.as_deref().is_some_and(|s| s != id));
        // Restoring replaces the document's contents, not the cohort around them.
        self.restore_session(session, None);
        if let Some(beside) = beside {
            self.document.compare = Some(beside);
            self.runtime.viewer.split = Some(SplitView::two_samples());
        }
    }

    /// Opens sample `id` beside the one shown: its slide (placed by its alignment) and its cells
    /// in the split view's right pane, pan and zoom linked in µm.
    pub(super) fn compare_sample(&mut self, id: &str) {
        let Some(cohort) = &self.document.cohort else {
            return;
        };
        let sample = match cohort.openable(id) {
            Ok(sample) => sample,
            Err(message) => {
                self.runtime.toasts.error(message);
                return;
            }
        };
        // The alignment the sample was left with (a landmark fit made in the app), else its CSV.
        let xenium_px_from_slide_px = cohort
            .parked
            .get(id)
            .and_then(|session| session.alignment.as_ref())
            .map(|a| cs_xenium::Affine2 {
                rows: a.xenium_px_from_slide_px,
            });
        let request = SampleToOpen {
            sample: sample.clone(),
            xenium_px_from_slide_px,
            predictions: cohort.outputs.as_deref().map(|dir| predictions_path(dir, id)),
        };
        let dir = sample.xenium.clone();
        let geometry_id = self.take_source_id();
        self.jobs.cancel_kind(JobKind::OpenCompareSample);
        self.spawn(
            JobKind::OpenCompareSample,
            JobKey::Path(dir),
            format!("Opening sample {id} to compare"),
            move |cx| JobOutput::SampleOpened(open_sample(request, geometry_id, &cx.cancel)),
        );
    }

    pub(super) fn compare_sample_opened(&mut self, result: anyhow::Result<Option<OpenedSample>>) {
        let opened = match result {
            Ok(Some(opened)) => opened,
            Ok(None) => return,
            Err(error) => {
                self.runtime.toasts.error(format!("{error:#}"));
                return;
            }
        };
        if !opened.warnings.is_empty() {
            self.runtime.toasts.error(opened.warnings.join("\n"));
        }
        let slide = opened.slide.and_then(|(slide, world_from_slide)| {
            let mut layer = self.new_slide_layer(slide.source, &slide.path)?;
            match world_from_slide {
                Some(world_from_slide) => {
                    layer.world_from_slide = world_from_slide;
                    layer.has_physical_scale = true;
                }
                None => layer.place_by_resolution(),
            }
            Some(CompareSlide {
                path: slide.path,
                layer,
            })
        });
        // Coloured as the shown cells by `sync_comparison_colouring`, before this frame draws.
        let cells = CellLayer::new(opened.dir, opened.loaded);
        self.close_compare_slide();
        self.document.set_compare(Comparison {
            sample: Some(opened.id),
            slide,
            cells: Some(cells),
        });
        self.runtime.viewer.split = Some(SplitView::two_samples());
    }

    /// The classifier the tab applies: a saved model folder the user chose.
    pub(super) fn choose_cohort_model(&mut self, dir: PathBuf) {
        let description = format!("saved model {}", display_name(&dir));
        if let Some(cohort) = &mut self.document.cohort {
            cohort.model = Some(CohortModel {
                dir,
                description,
                trained_on: None,
            });
        }
    }

    /// A classifier trained (or applied) on the sample shown becomes the tab's model.
    pub(super) fn offer_model_to_cohort(&mut self) {
        let Some(cohort) = &mut self.document.cohort else {
            return;
        };
        let Some(result) = &self.document.models.classifier else {
            return;
        };
        let (Some(dir), Some(active)) = (&result.model_dir, &cohort.active) else {
            return;
        };
        cohort.model = Some(CohortModel {
            dir: dir.clone(),
            description: format!("{}, from sample {active}", result.variant.label()),
            trained_on: Some(active.clone()),
        });
    }

    /// Morphology niches found on the sample shown become the tab's niche model.
    pub(super) fn offer_niches_to_cohort(&mut self) {
        let Some(cohort) = &mut self.document.cohort else {
            return;
        };
        let Some(result) = &self.document.models.niches else {
            return;
        };
        let (Some(dir), Some(active)) = (&result.model_dir, &cohort.active) else {
            return;
        };
        cohort.niche_model = Some(CohortModel {
            dir: dir.clone(),
            description: format!("{} niches from sample {active}", result.k),
            trained_on: Some(active.clone()),
        });
    }

    /// Applies the tab's classifier (or niche model) to `samples` in the background; each
    /// sample's outputs go where `cohort run` puts them: predictions colour its cells when it is
    /// shown, and both are columns of the comparison.
    pub(super) fn apply_cohort_model(&mut self, samples: Vec<String>, kind: AppliedKind) {
        let Some(cohort) = &self.document.cohort else {
            return;
        };
        let model = match kind {
            AppliedKind::Classifier => &cohort.model,
            AppliedKind::Niches => &cohort.niche_model,
        };
        let Some(model) = model else {
            self.runtime.toasts.error(match kind {
                AppliedKind::Classifier => "Train a classifier on a sample (Models tab) or choose a saved model first.",
                AppliedKind::Niches => "Find niches on a sample (Models tab) first.",
            });
            return;
        };
        if !model.dir.is_dir() {
            self.runtime.toasts.error(format!(
                "The model folder {} is gone: train the model again or choose a saved one.",
                model.dir.display()
            ));
            return;
        }
        let device = match self.runtime.gpu.burn_device(self.runtime.ui.models.settings.device) {
            Ok(device) => device,
            Err(e) => {
                self.runtime.toasts.error(format!("{e:#}"));
                return;
            }
        };
        let request = ApplyModelRequest {
            manifest: cohort.manifest.clone(),
            samples,
            model_dir: model.dir.clone(),
            kind,
            outputs: cohort.outputs_or_default(),
        };
        let label = format!("Applying {} to {} sample(s)", model.description, request.samples.len());
        self.jobs.cancel_kind(JobKind::CohortApplyModel);
        self.spawn(
            JobKind::CohortApplyModel,
            JobKey::Path(cohort.manifest.path.clone()),
            label,
            move |cx| JobOutput::ModelApplied(apply_model(request, device, cx)),
        );
    }

    pub(super) fn cohort_model_applied(&mut self, result: anyhow::Result<AppliedModel>) {
        let applied = match result {
            Ok(applied) => applied,
            Err(error) => {
                let message = format!("{error:#}");
                if message != "cancelled" {
                    self.runtime.toasts.error(format!("Applying the model: {message}"));
                }
                return;
            }
        };
        if !applied.failures.is_empty() {
            self.runtime
                .toasts
                .error(format!("Not done: {}", applied.failures.join("; ")));
        }
        if !applied.predicted.is_empty() {
            let done: Vec<String> = applied
                .predicted
                .iter()
                .map(|(id, cells)| format!("{id} ({cells} cells)"))
                .collect();
            let (what, then) = match applied.kind {
                AppliedKind::Classifier => ("Predicted cell types in", "shown when you open or compare a sample"),
                AppliedKind::Niches => ("Assigned the niches in", "compare the samples' niches below"),
            };
            self.runtime.toasts.note(format!(
                "{what} {} in {:.1} s, saved in {}; {then}",
                done.join(", "),
                applied.seconds,
                applied.outputs.display()
            ));
        }
        if let Some(cohort) = &mut self.document.cohort {
            cohort.outputs = Some(applied.outputs);
        }
    }

    /// The predictions the cohort's outputs hold for the sample whose bundle is `dir`, when it
    /// is the sample shown.
    pub(super) fn cohort_predictions_for(&self, dir: &Path) -> Option<PathBuf> {
        let cohort = self.document.cohort.as_ref()?;
        let id = cohort.active.as_deref()?;
        if cohort.sample(id)?.xenium != dir {
            return None;
        }
        let path = predictions_path(cohort.outputs.as_deref()?, id);
        path.is_file().then_some(path)
    }

    /// Reads every sample's labels and compares the groups, as a background job.
    pub(super) fn compare_cohort(&mut self, column: String) {
        let Some(cohort) = &self.document.cohort else {
            return;
        };
        let request = CompositionRequest {
            manifest: cohort.manifest.clone(),
            column: column.clone(),
            outputs: cohort.outputs.clone(),
        };
        self.jobs.cancel_kind(JobKind::CohortComposition);
        self.spawn(
            JobKind::CohortComposition,
            JobKey::Path(cohort.manifest.path.clone()),
            format!("Comparing the samples' {column}"),
            move |cx| JobOutput::CohortComposition(cohort_composition(request, cx)),
        );
    }

    pub(super) fn cohort_compared(&mut self, result: anyhow::Result<crate::work::cohort::CohortComposition>) {
        let Some(cohort) = &mut self.document.cohort else {
            return;
        };
        if let Ok(composition) = &result
            && !composition.failures.is_empty()
        {
            self.runtime.toasts.error(format!(
                "Left out of the comparison: {}",
                composition.failures.join("; ")
            ));
        }
        cohort.composition = Some(result.map_err(|e| format!("{e:#}")));
    }

    /// Writes the comparison's table (shares per sample and class, then the tests) as CSV.
    pub(super) fn export_cohort_table(&mut self, path: PathBuf) {
        let Some(Some(Ok(composition))) = self.document.cohort.as_ref().map(|c| c.composition.clone()) else {
            self.runtime
                .toasts
                .error("Compare the samples first: there is no table to export.");
            return;
        };
        self.start_export(move || {
            crate::util::fs::write_atomically(&path, composition.to_csv().as_bytes())?;
            Ok(format!(
                "{} rows and {} tests saved to {}",
                composition.rows.len(),
                composition.tests.len(),
                path.display()
            ))
        });
    }

    /// The document no longer shows a sample of the cohort (the user opened something else);
    /// the samples already parked stay as they were.
    pub(super) fn leave_cohort_sample(&mut self) {
        if let Some(cohort) = &mut self.document.cohort {
            cohort.active = None;
        }
    }
}

/// A sample opened for the first time: its bundle, slide and alignment.
fn fresh_session(sample: &cs_cohort::Sample) -> Result<SessionFile, String> {
    let stored = |path: &Path| StoredPath::new(path, None);
    let alignment = match &sample.alignment {
        Some(csv) => Some(
            cs_xenium::read_alignment_csv(csv)
                .map(|affine| StoredAlignment {
                    file: Some(stored(csv)),
                    xenium_px_from_slide_px: affine.rows,
                    rms_residual_um: None,
                })
                .map_err(|e| format!("Sample {} ({}): {e}", sample.id, sample.row))?,
        ),
        None => None,
    };
    Ok(SessionFile {
        bundle: Some(stored(&sample.xenium)),
        slide: sample.slide.as_deref().map(stored),
        alignment,
        ..Default::default()
    })
}
