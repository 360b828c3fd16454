//! Progress reporting and cancellation for long model runs (training, encoding, k-means).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The progress callback: (stage, fraction done).
type ReportFn = dyn Fn(&str, f32) + Send + Sync;

/// Returned by a run that saw its cancel flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancelled;

/// What a run reports and how it is stopped: a callback for (stage, fraction done) and a flag the
/// caller sets to cancel.
#[derive(Clone)]
pub struct Progress {
    report: Arc<ReportFn>,
    cancel: Arc<AtomicBool>,
}

impl Progress {
    pub fn new(report: impl Fn(&str, f32) + Send + Sync + 'static, cancel: Arc<AtomicBool>) -> Self {
        Self {
            report: Arc::new(report),
            cancel,
        }
    }

    /// Reports nothing and never cancels.
    pub fn silent() -> Self {
        Self::new(|_, _| {}, Arc::new(AtomicBool::new(false)))
    }

    pub fn report(&self, stage: &str, fraction: f32) {
        (self.report)(stage, fraction.clamp(0.0, 1.0));
    }

    /// A part of this run, reported as `stage` at `start..end` of it; it shares the cancel flag.
    pub fn part(&self, stage: String, start: f32, end: f32) -> Progress {
        let parent = self.report.clone();
        Progress {
            report: Arc::new(move |_, fraction| parent(&stage, start + (end - start) * fraction.clamp(0.0, 1.0))),
            cancel: self.cancel.clone(),
        }
    }

    /// `Err(Cancelled)` once the caller asked to stop.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }
}
