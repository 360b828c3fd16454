//! One registry for all background work, as rerun's `background_tasks`: every job runs on a
//! named thread and has a kind, a key (the inputs it is computed for), a label, shared progress
//! and a cancel flag; its one result comes back through a bounded channel and is handed out by
//! [`Jobs::poll`], once per frame, to one generic apply path. Jobs that belong to the open
//! document are cancelled together by [`Jobs::cancel_document_jobs`]: their results never arrive.
//!
//! The registry is generic over the key `K` and the result `O`: the app defines both (one enum
//! each), so nothing here knows what the jobs do.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Handed to the work so that it can stop early.
#[derive(Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// The shared flag, for library code that keeps it (model runs).
    pub fn shared_flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }

    /// The flag itself, for library code that polls an `AtomicBool`.
    pub fn flag(&self) -> &AtomicBool {
        &self.0
    }
}

/// What a job reports while it runs: a stage and the fraction done.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub stage: String,
    pub fraction: f32,
}

/// Progress shared between a job and the UI.
#[derive(Clone, Default)]
pub struct SharedProgress(Arc<Mutex<Progress>>);

impl SharedProgress {
    pub fn set(&self, stage: &str, fraction: f32) {
        if let Ok(mut p) = self.0.lock() {
            p.stage = stage.to_owned();
            p.fraction = fraction;
        }
    }

    pub fn get(&self) -> Progress {
        self.0.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

/// What the work of a job is given: its cancel flag and its progress (reporting asks for a repaint).
pub struct JobContext {
    pub cancel: CancelToken,
    pub progress: SharedProgress,
    repaint: Arc<dyn Fn() + Send + Sync>,
}

impl JobContext {
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Reports progress and asks for a frame to show it.
    pub fn report(&self, stage: &str, fraction: f32) {
        self.progress.set(stage, fraction);
        (self.repaint)();
    }

    /// A repaint request the work can hand to library code that reports by itself.
    pub fn repaint(&self) -> Arc<dyn Fn() + Send + Sync> {
        self.repaint.clone()
    }
}

/// The kinds of background work, each on a thread of its own name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    OpenSlide,
    OpenCompareSlide,
    OpenBundle,
    /// The bundle's morphology images (after the bundle itself).
    OpenMorphology,
    GeneValues,
    Transcripts,
    Demo,
    FileDialog,
    Export,
    /// A PNG of a view export being written (the render itself runs on the UI thread).
    ViewExportWrite,
    AnnotationImport,
    /// Xenium Explorer cell groups read from a CSV or an analysis.zarr.zip.
    GroupImport,
    DifferentialExpression,
    NhoodEnrichment,
    /// A classifier trained, applied from a saved model, or read back from the cache.
    Classifier,
    /// Morphology niches run or read back from the cache.
    Niches,
    /// Every classifier variant and the baselines compared on the same splits.
    Comparison,
    /// Virtual expression predicted from the H&E.
    VirtualExpression,
    /// The cohort's samples' compositions read and compared between groups.
    CohortComposition,
    /// A cohort sample read to show beside the open one (the split view).
    OpenCompareSample,
    /// A classifier applied to other samples of the cohort (their predictions written).
    CohortApplyModel,
    SessionWrite,
}

/// Whether a job's result belongs to the open document (and goes when it is replaced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobScope {
    /// Reads or computes for what is open: cancelled with it.
    Document,
    /// Finishes whatever is opened meanwhile (file dialogs, writes, the demo generator).
    App,
}

impl JobKind {
    /// The name of the thread it runs on (profilers and panics show it).
    pub fn thread_name(self) -> &'static str {
        match self {
            JobKind::OpenSlide | JobKind::OpenCompareSlide => "slide-open",
            JobKind::OpenBundle => "bundle-open",
            JobKind::OpenMorphology => "morphology-open",
            JobKind::GeneValues => "gene-values",
            JobKind::Transcripts => "transcripts",
            JobKind::Demo => "demo-synth",
            JobKind::FileDialog => "file-dialog",
            JobKind::Export | JobKind::ViewExportWrite => "export",
            JobKind::AnnotationImport => "annotation-import",
            JobKind::GroupImport => "cell-groups-import",
            JobKind::DifferentialExpression => "differential-expression",
            JobKind::NhoodEnrichment => "nhood-enrichment",
            JobKind::Classifier => "model-classifier",
            JobKind::Niches => "model-niches",
            JobKind::Comparison => "model-comparison",
            JobKind::VirtualExpression => "model-virtual",
            JobKind::CohortComposition => "cohort-composition",
            JobKind::OpenCompareSample => "sample-open",
            JobKind::CohortApplyModel => "cohort-apply-model",
            JobKind::SessionWrite => "session-save",
        }
    }

    pub fn scope(self) -> JobScope {
        match self {
            JobKind::OpenSlide
            | JobKind::OpenCompareSlide
            | JobKind::OpenBundle
            | JobKind::OpenMorphology
            | JobKind::GeneValues
            | JobKind::Transcripts
            | JobKind::AnnotationImport
            | JobKind::GroupImport
            | JobKind::DifferentialExpression
            | JobKind::NhoodEnrichment
            | JobKind::Classifier
            | JobKind::Niches
            | JobKind::Comparison
            | JobKind::VirtualExpression
            | JobKind::OpenCompareSample => JobScope::Document,
            JobKind::Demo
            | JobKind::FileDialog
            | JobKind::Export
            | JobKind::ViewExportWrite
            | JobKind::CohortComposition
            | JobKind::CohortApplyModel
            | JobKind::SessionWrite => JobScope::App,
        }
    }

    /// Whether the status bar lists it (model runs and view exports show their own progress;
    /// dialogs and session writes are not work the user waits for).
    pub fn in_status_bar(self) -> bool {
        !matches!(
            self,
            JobKind::FileDialog
                | JobKind::SessionWrite
                | JobKind::ViewExportWrite
                | JobKind::Classifier
                | JobKind::Niches
                | JobKind::Comparison
                | JobKind::VirtualExpression
        )
    }
}

/// One running job as the UI sees it.
pub struct JobInfo<'a, K> {
    pub kind: JobKind,
    pub key: &'a K,
    pub label: &'a str,
    pub progress: Progress,
    pub elapsed: Duration,
}

impl<K> JobInfo<'_, K> {
    /// The label, with the stage and percentage when the job reports them.
    pub fn status_text(&self) -> String {
        if self.progress.stage.is_empty() {
            self.label.to_owned()
        } else {
            format!(
                "{} ({}: {:.0}%)",
                self.label,
                self.progress.stage,
                self.progress.fraction * 100.0
            )
        }
    }

    /// Seconds left, estimated from the progress so far (None until there is enough of it).
    pub fn eta_seconds(&self) -> Option<f64> {
        let fraction = f64::from(self.progress.fraction);
        (fraction > 0.02).then(|| self.elapsed.as_secs_f64() * (1.0 - fraction) / fraction)
    }
}

/// How a job ended.
pub enum Outcome<O> {
    Done(O),
    /// The thread ended without a result (it panicked).
    Lost,
}

/// A job that ended, as [`Jobs::poll`] hands it out.
pub struct Finished<K, O> {
    pub kind: JobKind,
    pub key: K,
    pub label: String,
    pub outcome: Outcome<O>,
}

struct Entry<K, O> {
    kind: JobKind,
    key: K,
    label: String,
    progress: SharedProgress,
    cancel: CancelToken,
    started: Instant,
    receiver: Receiver<O>,
}

/// The running jobs.
pub struct Jobs<K, O> {
    entries: Vec<Entry<K, O>>,
    repaint: Arc<dyn Fn() + Send + Sync>,
}

impl<K: Clone, O: Send + 'static> Jobs<K, O> {
    /// `repaint` is called (from the job's thread) when a result is ready or progress is reported.
    pub fn new(repaint: impl Fn() + Send + Sync + 'static) -> Self {
        Self {
            entries: Vec::new(),
            repaint: Arc::new(repaint),
        }
    }

    /// Starts `work` on a thread named for `kind`. Other jobs of the same kind keep running: call
    /// [`Self::cancel_kind`] first where a new job replaces the old one.
    pub fn spawn(
        &mut self,
        kind: JobKind,
        key: K,
        label: impl Into<String>,
        work: impl FnOnce(&JobContext) -> O + Send + 'static,
    ) -> std::io::Result<()> {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let context = JobContext {
            cancel: CancelToken::default(),
            progress: SharedProgress::default(),
            repaint: self.repaint.clone(),
        };
        let (cancel, progress) = (context.cancel.clone(), context.progress.clone());
        std::thread::Builder::new()
            .name(kind.thread_name().to_owned())
            .spawn(move || {
                let result = work(&context);
                // The receiver is gone when the job was cancelled or the app is closing.
                if sender.send(result).is_ok() {
                    (context.repaint)();
                }
            })?;
        self.entries.push(Entry {
            kind,
            key,
            label: label.into(),
            progress,
            cancel,
            started: Instant::now(),
            receiver,
        });
        Ok(())
    }

    /// Hands out the jobs that ended since the last call (each once). Once per frame.
    pub fn poll(&mut self) -> Vec<Finished<K, O>> {
        let mut finished = Vec::new();
        let mut i = 0;
        while i < self.entries.len() {
            let outcome = match self.entries[i].receiver.try_recv() {
                Ok(result) => Outcome::Done(result),
                Err(TryRecvError::Empty) => {
                    i += 1;
                    continue;
                }
                Err(TryRecvError::Disconnected) => Outcome::Lost,
            };
            let entry = self.entries.remove(i);
            finished.push(Finished {
                kind: entry.kind,
                key: entry.key,
                label: entry.label,
                outcome,
            });
        }
        finished
    }

    /// Cancels the jobs of `kind` and forgets them: their results are dropped.
    pub fn cancel_kind(&mut self, kind: JobKind) {
        self.entries.retain(|e| {
            if e.kind == kind {
                e.cancel.cancel();
            }
            e.kind != kind
        });
    }

    /// Asks the jobs of `kind` to stop but keeps them, so that their progress stays on screen
    /// until they end (with whatever they return when cancelled).
    pub fn request_cancel(&self, kind: JobKind) {
        for e in self.entries.iter().filter(|e| e.kind == kind) {
            e.cancel.cancel();
        }
    }

    /// Cancels and forgets every job that belongs to the open document (it is being replaced):
    /// nothing they compute reaches the next one. Returns how many there were.
    pub fn cancel_document_jobs(&mut self) -> usize {
        let before = self.entries.len();
        self.entries.retain(|e| {
            let document = e.kind.scope() == JobScope::Document;
            if document {
                e.cancel.cancel();
            }
            !document
        });
        before - self.entries.len()
    }

    pub fn is_running(&self, kind: JobKind) -> bool {
        self.entries.iter().any(|e| e.kind == kind)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every running job, oldest first.
    pub fn running(&self) -> impl Iterator<Item = JobInfo<'_, K>> {
        self.entries.iter().map(Self::info)
    }

    fn info(e: &Entry<K, O>) -> JobInfo<'_, K> {
        JobInfo {
            kind: e.kind,
            key: &e.key,
            label: &e.label,
            progress: e.progress.get(),
            elapsed: e.started.elapsed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_for<K: Clone, O: Send + 'static>(jobs: &mut Jobs<K, O>) -> Vec<Finished<K, O>> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let finished = jobs.poll();
            if !finished.is_empty() {
                return finished;
            }
            assert!(Instant::now() < deadline, "no job finished");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_result_is_handed_out_once_with_its_kind_and_key() {
        let mut jobs: Jobs<u32, u32> = Jobs::new(|| {});
        jobs.spawn(JobKind::GeneValues, 7, "adding", |_| 2 + 2).unwrap();
        assert!(jobs.is_running(JobKind::GeneValues));
        let finished = wait_for(&mut jobs);
        assert_eq!(finished.len(), 1);
        assert_eq!((finished[0].kind, finished[0].key), (JobKind::GeneValues, 7));
        assert!(matches!(finished[0].outcome, Outcome::Done(4)));
        assert!(jobs.is_empty() && jobs.poll().is_empty(), "never handed out twice");
    }

    #[test]
    fn a_panicking_job_is_lost_and_progress_is_shared() {
        let mut jobs: Jobs<(), u32> = Jobs::new(|| {});
        let (go, wait) = std::sync::mpsc::sync_channel::<()>(1);
        jobs.spawn(JobKind::Demo, (), "demo", move |cx| {
            cx.report("halfway", 0.5);
            let _ = wait.recv();
            panic!("the job failed")
        })
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let demo = |jobs: &Jobs<(), u32>| {
            jobs.running()
                .find(|j| j.kind == JobKind::Demo)
                .map(|j| j.status_text())
        };
        while demo(&jobs).is_some_and(|text| !text.contains("50%")) {
            assert!(Instant::now() < deadline);
            std::thread::yield_now();
        }
        assert_eq!(demo(&jobs).unwrap(), "demo (halfway: 50%)");
        go.send(()).unwrap();
        assert!(matches!(wait_for(&mut jobs)[0].outcome, Outcome::Lost));
    }

    #[test]
    fn cancelling_the_document_stops_its_jobs_and_drops_their_results() {
        let mut jobs: Jobs<&'static str, &'static str> = Jobs::new(|| {});
        let wait_for_cancel = |cx: &JobContext| {
            while !cx.is_cancelled() {
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        let (seen, saw) = std::sync::mpsc::sync_channel(2);
        for kind in [JobKind::AnnotationImport, JobKind::Classifier] {
            let seen = seen.clone();
            jobs.spawn(kind, "old document", "reading", move |cx| {
                wait_for_cancel(cx);
                let _ = seen.send(kind);
                "late result"
            })
            .unwrap();
        }
        jobs.spawn(JobKind::Export, "a file", "writing", |_| "written").unwrap();
        assert_eq!(jobs.cancel_document_jobs(), 2);
        // Both threads saw the cancel; only the export's result arrives.
        for _ in 0..2 {
            saw.recv_timeout(Duration::from_secs(5)).expect("cancel seen");
        }
        let finished = wait_for(&mut jobs);
        assert_eq!(finished.len(), 1);
        assert_eq!(finished[0].kind, JobKind::Export);
        std::thread::sleep(Duration::from_millis(20));
        assert!(jobs.poll().is_empty());
    }

    #[test]
    fn request_cancel_keeps_the_job_until_it_ends() {
        let mut jobs: Jobs<(), bool> = Jobs::new(|| {});
        jobs.spawn(JobKind::Niches, (), "niches", |cx| {
            while !cx.is_cancelled() {
                std::thread::sleep(Duration::from_millis(1));
            }
            false
        })
        .unwrap();
        jobs.request_cancel(JobKind::Niches);
        assert!(jobs.is_running(JobKind::Niches), "kept until it ends");
        assert!(matches!(wait_for(&mut jobs)[0].outcome, Outcome::Done(false)));
    }
}
