//! Applying what the panels, windows and the viewer asked for: every [`Command`] goes through
//! [`ViewerApp::apply_command`], once per frame after the UI; a file picked in a dialog through
//! [`ViewerApp::apply_file_choice`].

use std::path::PathBuf;

use crate::app::ViewerApp;
use crate::document::{Edit, SlideAlignment};
use crate::ui::Command;
use crate::ui::dialogs::DialogPurpose;
use crate::viewer::export::tour_dir;
use crate::viewer::split::SplitView;
use crate::viewer::tools::landmarks::LandmarkTool;
use crate::work::jobs::JobKind;
use crate::work::model_runs::LabelChoice;

impl ViewerApp {
    /// Applies the commands sent during this frame, in order.
    pub(super) fn apply_commands(&mut self) {
        let commands = self.commands.take();
        if !commands.is_empty() {
            // What they change is drawn at the next frame.
            self.ctx.request_repaint();
        }
        for command in commands {
            self.apply_command(command);
        }
    }

    pub(super) fn apply_command(&mut self, command: Command) {
        match command {
            Command::Edit(edit) => self.document.apply(edit),
            Command::OpenPath(path) => {
                self.leave_cohort_sample();
                self.open_path(path)
            }
            Command::AskForFile(purpose) => self.ask_for_file(purpose),
            Command::OpenDemo(difficulty) => {
                self.leave_cohort_sample();
                self.open_demo(difficulty)
            }
            Command::SwitchSample(id) => self.switch_sample(&id),
            Command::CompareSample(id) => self.compare_sample(&id),
            Command::ApplyCohortModel { samples, kind } => self.apply_cohort_model(samples, kind),
            Command::CompareCohort { column } => self.compare_cohort(column),
            Command::CloseSlide => self.close_slide(),
            Command::CloseCompareSlide => self.close_compare_slide(),
            Command::CloseCells => self.close_cells(),
            Command::SaveSession => self.save_session(),
            Command::AnswerRestoreOffer(restore) => self.answer_restore_offer(restore),
            Command::AnswerQuit(answer) => self.answer_quit(answer),
            Command::AnswerOpenSession(save_first) => self.answer_open_session(save_first),
            Command::ColourByGene(feature) => self.colour_by_gene(feature),
            Command::LoadTranscripts => self.load_transcripts(),
            Command::StartLandmarks => self.runtime.viewer.landmarks = Some(LandmarkTool::default()),
            Command::UndoLandmark => {
                if let Some(landmarks) = &mut self.runtime.viewer.landmarks {
                    landmarks.undo();
                }
            }
            Command::CloseLandmarks => self.runtime.viewer.landmarks = None,
            Command::ApplyLandmarks {
                xenium_px_from_slide_px,
                rms_residual_um,
            } => {
                self.document.apply(Edit::SetAlignment(SlideAlignment {
                    path: None,
                    xenium_px_from_slide_px,
                    rms_residual_um: Some(rms_residual_um),
                }));
                self.runtime.viewer.landmarks = None;
                self.runtime.toasts.note(format!(
                    "Slide aligned by landmarks (residual {rms_residual_um:.2} µm RMS). Save it from the layers panel."
                ));
            }
            Command::ShowAssociatedImage(name) => self.runtime.ui.associated_window = name,
            Command::RunDifferentialExpression => self.run_differential_expression(),
            Command::RunNhood(settings) => self.run_nhood(&settings),
            Command::CancelNhood => self.cancel_nhood(),
            Command::RunClassifier => self.run_classifier(),
            Command::RunNiches => self.run_niches(),
            Command::CompareModels => self.compare_models(),
            Command::SetUncertainBelow(threshold) => self.document.set_uncertain_below(threshold),
            Command::RunVirtualExpression => self.run_virtual_expression(),
            Command::ShowVirtualGene { gene, visible } => {
                if let Some(layer) = &mut self.document.models.virtual_layer {
                    layer.gene = gene.min(layer.result.genes.len().saturating_sub(1));
                    layer.visible = visible;
                }
            }
            Command::SplitVirtualMeasured => {
                self.runtime.viewer.split = Some(crate::viewer::split::SplitView::virtual_vs_measured());
            }
            Command::CancelJob(kind) => self.jobs.request_cancel(kind),
            Command::SaveModel { from, to } => self.save_model(&from, to),
            Command::Fit => self.runtime.viewer.fit_requested = true,
            Command::SetMagnification(magnification) => {
                let viewer = &mut self.runtime.viewer;
                if let Some(viewport) = viewer.last_viewport {
                    viewer.camera.set_magnification(magnification, &viewport);
                }
            }
            Command::CentreOn(pos_in_world) => self.runtime.viewer.camera.center_in_world = pos_in_world,
            Command::UnpinCell => self.runtime.viewer.pinned_cell = None,
            Command::ArmTool(tool) => self.runtime.viewer.tools.arm(tool),
            Command::SetBrushRadius(radius) => self.runtime.viewer.tools.selection.brush_radius_points = radius,
            Command::SetLabelText(text) => self.runtime.viewer.tools.annotation.label_text = text,
            Command::SetDimOutside(dim) => self.runtime.viewer.tools.dim_outside = dim,
            Command::SetSplitView(split) => {
                let has_morphology = self.document.morphology.is_some();
                self.runtime.viewer.split = split.then(|| SplitView::for_document(has_morphology));
                // The right pane shows the stains: the layer itself must be on.
                if split && let Some(morphology) = &mut self.document.morphology {
                    morphology.visible = true;
                }
            }
            Command::SetPanInertia(inertia) => self.runtime.viewer.pan_inertia = inertia,
            Command::GoToBookmark(i) => {
                let edit = self.runtime.viewer.go_to_bookmark(i, &self.document.bookmarks);
                self.apply_optional_edit(edit);
            }
            Command::BookmarkCurrentView => self.bookmark_current_view(),
            Command::StartPresentation => {
                match self
                    .runtime
                    .viewer
                    .start_presentation(&self.ctx, &self.document.bookmarks)
                {
                    Ok(edit) => self.apply_optional_edit(edit),
                    Err(message) => self.runtime.toasts.error(message),
                }
            }
            Command::PresentStep(step) => {
                let edit = self.runtime.viewer.present_step(step, &self.document.bookmarks);
                self.apply_optional_edit(edit);
            }
            Command::EndPresentation => self.runtime.viewer.end_presentation(&self.ctx),
            Command::CancelViewExport => self.cancel_view_export(),
            Command::ShowWindow(window, shown) => *self.runtime.ui.windows.flag(window) = shown,
            Command::ToggleWindow(window) => {
                let flag = self.runtime.ui.windows.flag(window);
                *flag = !*flag;
            }
            Command::SetPreferences(preferences) => self.apply_preferences(preferences),
            Command::SetModelDevice(device) => self.runtime.ui.models.settings.device = device,
            Command::ClearModelCache => self.clear_model_cache(),
        }
    }

    fn apply_optional_edit(&mut self, edit: Option<Edit>) {
        if let Some(edit) = edit {
            self.document.apply(edit);
        }
    }

    /// Adds the current view as a bookmark (after the current one) and shows the list.
    fn bookmark_current_view(&mut self) {
        let viewer = &self.runtime.viewer;
        let Some(viewport) = viewer.last_viewport else {
            self.runtime
                .toasts
                .error("Open a slide or a bundle first: there is no view to bookmark.");
            return;
        };
        self.document.apply(Edit::AddBookmark {
            camera: viewer.camera,
            viewport,
        });
        self.runtime.ui.windows.bookmarks = true;
    }

    /// Empties the model results cache (runs compute again).
    fn clear_model_cache(&mut self) {
        let Some(dir) = self.runtime.ui.models.cache_dir.clone() else {
            return;
        };
        match std::fs::remove_dir_all(&dir).or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(e)
            }
        }) {
            Ok(()) => self
                .runtime
                .toasts
                .note("The model results cache is empty: runs will compute again."),
            Err(error) => self
                .runtime
                .toasts
                .error(format!("Cannot clear {}: {error}", dir.display())),
        }
    }

    /// What a file picked in the dialog for `purpose` is used for.
    pub(super) fn apply_file_choice(&mut self, purpose: DialogPurpose, path: PathBuf) {
        match purpose {
            DialogPurpose::OpenSession => {
                self.leave_cohort_sample();
                self.open_session(&path)
            }
            DialogPurpose::SaveSession => self.save_session_as(path),
            DialogPurpose::Slide => {
                self.leave_cohort_sample();
                self.open_slide(path)
            }
            DialogPurpose::Bundle => {
                self.leave_cohort_sample();
                self.open_bundle(path)
            }
            DialogPurpose::Alignment => self.load_alignment(&path),
            DialogPurpose::SaveAlignment => self.save_alignment(&path),
            DialogPurpose::ImportSelections => self.import_selections(&path),
            DialogPurpose::ImportAnnotations => self.import_annotations(&path),
            DialogPurpose::CompareSlide => self.open_compare_slide(path),
            DialogPurpose::ExportAnnotations => self.export_annotations(path),
            DialogPurpose::ModelLabels => self.runtime.ui.models.settings.labels = LabelChoice::Csv(path),
            DialogPurpose::VitWeights => self.choose_vit_weights(path),
            DialogPurpose::GeneEmbeddings => self.runtime.ui.models.settings.gene_embeddings = Some(path),
            DialogPurpose::SaveModel { from } => self.save_model(&from, path),
            DialogPurpose::ApplyModel => self.apply_saved_model(path),
            DialogPurpose::ExportViewPng { scale, legend } => self.export_view_png(path, scale, legend),
            DialogPurpose::ExportTour { scale, legend } => self.export_tour(tour_dir(&path), scale, legend),
            DialogPurpose::Export(kind) => self.export(kind, path),
            DialogPurpose::ExportPlotPng(plot) => self.export_plot_png(plot, path),
            DialogPurpose::ImportCellGroups => self.import_cell_groups(&path),
            DialogPurpose::ExportCellGroups(source) => self.export_cell_groups(source, path),
            DialogPurpose::Cohort => self.open_cohort(path),
            DialogPurpose::CohortOutputs => {
                if let Some(cohort) = &mut self.document.cohort {
                    cohort.outputs = Some(path);
                }
            }
            DialogPurpose::ExportCohortTable => self.export_cohort_table(path),
            DialogPurpose::CohortModel => self.choose_cohort_model(path),
        }
    }

    /// Whether annotations are being read from a file.
    pub fn is_importing_annotations(&self) -> bool {
        self.jobs.is_running(JobKind::AnnotationImport)
    }

    /// Whether a comparison slide is being opened.
    pub fn is_opening_compare_slide(&self) -> bool {
        self.jobs.is_running(JobKind::OpenCompareSlide)
    }
}
