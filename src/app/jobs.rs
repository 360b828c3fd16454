//! The shell's side of the job registry: what a job was started for ([`JobKey`]), what it gives
//! back ([`JobOutput`]), and the one path by which every finished job is applied, once per
//! frame. A job that ended without a result (its thread panicked) becomes its kind's error and
//! takes the same path.

use std::path::PathBuf;

use cs_analysis::NhoodEnrichment;
use cs_slide::SlideError;
use cs_xenium::XeniumError;

use crate::app::ViewerApp;
use crate::document::analysis::KeyedResult;
use crate::io::annotation_geojson::AnnotationImport;
use crate::io::cell_groups::ImportedGroups;
use crate::io::records::NamedDe;
use crate::io::session_file::SessionFile;
use crate::layers::cell_layer::LoadedBundle;
use crate::layers::morphology_layer::OpenedMorphology;
use crate::ui::dialogs::DialogPurpose;
use crate::work::analysis::{DeKey, NhoodKey};
use crate::work::demo::DemoFiles;
use crate::work::jobs::{Finished, JobKind, JobScope, Outcome};
use crate::work::model_runs::{ClassifierResult, ComparisonResult, NicheResult, RunKey, VirtualResult};
use crate::work::open::OpenedSlide;

/// What a job was started for: the inputs its result belongs to.
#[derive(Debug, Clone, PartialEq)]
pub enum JobKey {
    None,
    /// The file or folder it reads or writes.
    Path(PathBuf),
    /// A feature of the count matrix (gene colouring).
    Feature(u32),
    De(DeKey),
    Nhood(NhoodKey),
    Run(RunKey),
    Dialog(DialogPurpose),
}

/// What a job gives back.
// One value per finished job, moved once through a channel: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum JobOutput {
    SlideOpened(Result<OpenedSlide, SlideError>),
    /// None: the read was cancelled.
    BundleRead(anyhow::Result<Option<LoadedBundle>>),
    /// None: cancelled, or the bundle has no morphology images.
    MorphologyOpened(Result<Option<OpenedMorphology>, SlideError>),
    GeneValues(Vec<f64>),
    Transcripts(Result<Option<std::sync::Arc<cs_xenium::TranscriptIndex>>, XeniumError>),
    Demo(anyhow::Result<DemoFiles>),
    FileChosen(Option<PathBuf>),
    /// An export or a PNG written: the note to show, or the error.
    Written(anyhow::Result<String>),
    AnnotationsRead(anyhow::Result<AnnotationImport>),
    /// Each file's columns or error; `restoring`: read for a session being restored.
    GroupsRead {
        results: Vec<anyhow::Result<ImportedGroups>>,
        restoring: bool,
    },
    De(anyhow::Result<Vec<NamedDe>>),
    Nhood(anyhow::Result<NhoodEnrichment>),
    Classifier(anyhow::Result<ClassifierResult>),
    Niches(anyhow::Result<NicheResult>),
    Comparison(anyhow::Result<ComparisonResult>),
    Virtual(anyhow::Result<VirtualResult>),
    CohortComposition(anyhow::Result<crate::work::cohort::CohortComposition>),
    /// None: the read was cancelled.
    SampleOpened(anyhow::Result<Option<crate::work::cohort::OpenedSample>>),
    ModelApplied(anyhow::Result<crate::work::cohort::AppliedModel>),
    /// Save and Save as give back the file and what was written; autosaves nothing.
    SessionWritten(anyhow::Result<Option<(PathBuf, SessionFile)>>),
    /// A job's thread ended without a result, and its kind has no error of its own.
    Lost(String),
}

impl JobOutput {
    /// The error a job of `kind` gives when its thread ends without a result.
    fn lost(kind: JobKind, key: &JobKey, label: &str) -> Self {
        let path = match key {
            JobKey::Path(path) => path.clone(),
            _ => PathBuf::new(),
        };
        let stopped = |what: &str| anyhow::anyhow!("{what} stopped unexpectedly");
        match kind {
            JobKind::OpenSlide | JobKind::OpenCompareSlide => JobOutput::SlideOpened(Err(SlideError::CannotOpen {
                path,
                reason: "the reader stopped unexpectedly".to_owned(),
            })),
            JobKind::OpenBundle => JobOutput::BundleRead(Err(anyhow::anyhow!(
                "cannot read {}: the reader stopped unexpectedly",
                path.display()
            ))),
            JobKind::OpenMorphology => JobOutput::MorphologyOpened(Err(SlideError::CannotOpen {
                path,
                reason: "the reader stopped unexpectedly".to_owned(),
            })),
            JobKind::Demo => JobOutput::Demo(Err(stopped("the generator"))),
            JobKind::ViewExportWrite => JobOutput::Written(Err(stopped("the export"))),
            JobKind::AnnotationImport => {
                JobOutput::AnnotationsRead(Err(stopped(&format!("reading {}", path.display()))))
            }
            JobKind::GroupImport => JobOutput::GroupsRead {
                results: vec![Err(stopped(&format!("reading {}", path.display())))],
                restoring: false,
            },
            JobKind::DifferentialExpression => JobOutput::De(Err(stopped("differential expression"))),
            JobKind::NhoodEnrichment => JobOutput::Nhood(Err(stopped("neighbourhood enrichment"))),
            JobKind::Classifier => JobOutput::Classifier(Err(stopped(label))),
            JobKind::Niches => JobOutput::Niches(Err(stopped(label))),
            JobKind::Comparison => JobOutput::Comparison(Err(stopped(label))),
            JobKind::VirtualExpression => JobOutput::Virtual(Err(stopped(label))),
            JobKind::CohortComposition => JobOutput::CohortComposition(Err(stopped(label))),
            JobKind::OpenCompareSample => JobOutput::SampleOpened(Err(stopped(label))),
            JobKind::CohortApplyModel => JobOutput::ModelApplied(Err(stopped(label))),
            JobKind::GeneValues => JobOutput::Lost("Reading gene counts stopped unexpectedly.".into()),
            JobKind::Transcripts => JobOutput::Lost("Reading transcripts stopped unexpectedly.".into()),
            JobKind::FileDialog => JobOutput::Lost("The file dialog closed unexpectedly.".into()),
            JobKind::Export => JobOutput::Lost("The export stopped unexpectedly.".into()),
            JobKind::SessionWrite => JobOutput::Lost("Saving the session stopped unexpectedly.".into()),
        }
    }
}

impl ViewerApp {
    /// Applies every job that finished since the last frame. Called once per frame, before any UI.
    pub(super) fn apply_finished_jobs(&mut self) {
        let document = self.document_generation;
        for finished in self.jobs.poll() {
            // A result of this batch may have replaced the document (a session opened from the
            // file dialog): the old document's results polled with it are dropped too.
            if self.document_generation != document && finished.kind.scope() == JobScope::Document {
                continue;
            }
            self.apply_finished(finished);
        }
    }

    /// The one path every finished job takes.
    fn apply_finished(&mut self, finished: Finished<JobKey, JobOutput>) {
        let Finished {
            kind,
            key,
            label,
            outcome,
        } = finished;
        let output = match outcome {
            Outcome::Done(output) => output,
            Outcome::Lost => JobOutput::lost(kind, &key, &label),
        };
        match (output, key) {
            (JobOutput::SlideOpened(result), JobKey::Path(path)) => {
                if kind == JobKind::OpenCompareSlide {
                    self.compare_slide_opened(path, result);
                } else {
                    self.slide_opened(path, result);
                }
            }
            (JobOutput::BundleRead(result), JobKey::Path(dir)) => self.bundle_read(dir, result),
            (JobOutput::MorphologyOpened(result), JobKey::Path(dir)) => self.morphology_opened(&dir, result),
            (JobOutput::GeneValues(values), JobKey::Feature(feature)) => self.gene_values_read(feature, values),
            (JobOutput::Transcripts(result), _) => self.transcripts_read(result),
            (JobOutput::Demo(result), _) => self.demo_prepared(result),
            (JobOutput::FileChosen(choice), JobKey::Dialog(purpose)) => match choice {
                Some(path) => self.apply_file_choice(purpose, path),
                // Save as… was cancelled: a quit waiting for it is called off.
                None if purpose == DialogPurpose::SaveSession => self.runtime.session.quit_after_save = false,
                None => {}
            },
            (JobOutput::Written(result), _) if kind == JobKind::ViewExportWrite => {
                self.view_export_shot_written(result)
            }
            (JobOutput::Written(result), _) => match result {
                Ok(message) => self.runtime.toasts.note(message),
                Err(error) => self.runtime.toasts.error(format!("{error:#}")),
            },
            (JobOutput::AnnotationsRead(result), JobKey::Path(path)) => self.annotations_read(&path, result),
            (JobOutput::GroupsRead { results, restoring }, _) => self.groups_read(results, restoring),
            (JobOutput::De(result), JobKey::De(key)) => {
                self.document.analysis.de = Some(KeyedResult::new(key, result));
            }
            (JobOutput::Nhood(result), JobKey::Nhood(key)) => {
                self.document.analysis.nhood = Some(KeyedResult::new(key, result));
            }
            (JobOutput::Classifier(result), JobKey::Run(key)) => self.classifier_finished(&key, result),
            (JobOutput::Niches(result), JobKey::Run(key)) => self.niches_finished(&key, result),
            (JobOutput::Comparison(result), JobKey::Run(key)) => self.comparison_finished(&key, result),
            (JobOutput::Virtual(result), JobKey::Run(key)) => self.virtual_finished(&key, result),
            (JobOutput::CohortComposition(result), _) => self.cohort_compared(result),
            (JobOutput::SampleOpened(result), _) => self.compare_sample_opened(result),
            (JobOutput::ModelApplied(result), _) => self.cohort_model_applied(result),
            (JobOutput::SessionWritten(result), _) => self.session_written(result),
            (JobOutput::Lost(message), _) => self.runtime.toasts.error(message),
            (_, key) => log::error!("a {kind:?} job gave a result that does not match its key {key:?}"),
        }
    }
}
