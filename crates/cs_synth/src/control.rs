//! Progress and cancellation plumbing: maps each stage's own 0..1 onto the whole run's 0..1.
//! Only ever called from the thread that called [`crate::generate`].

use std::cell::Cell;

use crate::error::SynthError;

pub(crate) struct Control<'a> {
    progress: &'a dyn Fn(f32, &str),
    cancelled: &'a dyn Fn() -> bool,
    stage: Cell<(f32, f32, &'static str)>,
    /// Highest fraction reported so far: progress never goes back (a stage may be retried).
    reported: Cell<f32>,
}

impl<'a> Control<'a> {
    pub fn new(progress: &'a dyn Fn(f32, &str), cancelled: &'a dyn Fn() -> bool) -> Self {
        Self {
            progress,
            cancelled,
            stage: Cell::new((0.0, 0.0, "")),
            reported: Cell::new(0.0),
        }
    }

    /// Starts a stage covering `start..end` of the whole run.
    pub fn stage(&self, start: f32, end: f32, name: &'static str) {
        self.stage.set((start, end, name));
        self.report(0.0);
    }

    /// Reports `fraction` (0..1) of the current stage.
    pub fn report(&self, fraction: f32) {
        let (start, end, name) = self.stage.get();
        let at = (start + (end - start) * fraction.clamp(0.0, 1.0)).max(self.reported.get());
        self.reported.set(at);
        (self.progress)(at, name);
    }

    pub fn check(&self) -> Result<(), SynthError> {
        if (self.cancelled)() {
            Err(SynthError::Cancelled)
        } else {
            Ok(())
        }
    }
}
