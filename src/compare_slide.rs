//! A second slide to compare with the first in the split view (two sections, or H&E beside a
//! stain): opened in the background, placed by its own µm per pixel, drawn in the right pane with
//! the same camera, so pan and zoom stay linked in micrometres.

use std::path::PathBuf;
use std::sync::Arc;

use cs_slide::SlideError;

use crate::app::{OpenedSlide, ViewerApp, display_name, open_slide};
use crate::jobs::{Job, JobStatus, spawn_job};
use crate::slide_layer::SlideLayer;

/// The comparison slide: its file and its tiles.
pub struct CompareSlide {
    pub path: PathBuf,
    pub layer: SlideLayer,
}

/// The comparison slide being opened.
pub type CompareJob = (PathBuf, Job<Result<OpenedSlide, SlideError>>);

impl ViewerApp {
    /// Opens `path` as the slide to compare with, and shows the split view with it on the right.
    pub fn open_compare_slide(&mut self, path: PathBuf) {
        if let Some((_, job)) = self.compare_opening.take() {
            job.cancel();
        }
        let job_path = path.clone();
        let label = format!("Opening {} to compare", display_name(&path));
        match spawn_job("slide-open", label, self.repaint_callback(), move |_| {
            open_slide(&job_path)
        }) {
            Ok(job) => self.compare_opening = Some((path, job)),
            Err(error) => self
                .toasts
                .error(format!("Cannot start opening {}: {error}", path.display())),
        }
    }

    /// Installs a finished comparison slide (once per frame).
    pub fn apply_compare_job(&mut self) {
        let Some((path, job)) = &self.compare_opening else {
            return;
        };
        let path = path.clone();
        let result = match job.poll() {
            JobStatus::Running => return,
            JobStatus::Done(result) => result,
            JobStatus::Lost => Err(SlideError::CannotOpen {
                path: path.clone(),
                reason: "the reader stopped unexpectedly".to_owned(),
            }),
        };
        self.compare_opening = None;
        let opened = match result {
            Ok(opened) => opened,
            Err(error) => {
                self.toasts
                    .error(format!("{error}. The slides that were open stay open."));
                return;
            }
        };
        let source_id = self.take_source_id();
        let ctx = self.ctx.clone();
        let mut layer = match SlideLayer::new(opened.source, source_id, Arc::new(move || ctx.request_repaint())) {
            Ok(layer) => layer,
            Err(error) => {
                self.toasts
                    .error(format!("Cannot start tile loading for {}: {error}", path.display()));
                return;
            }
        };
        layer.set_ram_budget(self.preferences.tile_cache_bytes());
        self.close_compare_slide();
        self.compare = Some(CompareSlide { path, layer });
        // The right pane shows the other sample: its slide, without this sample's cells on it.
        let split = self.split.get_or_insert_with(Default::default);
        split.right.compare = true;
        split.right.cells = false;
    }

    pub fn close_compare_slide(&mut self) {
        if let Some(old) = self.compare.take() {
            self.evict_slide_tiles(old.layer.source_id);
        }
        if let Some(split) = &mut self.split {
            split.left.compare = false;
            split.right.compare = false;
        }
    }

    pub fn is_opening_compare_slide(&self) -> bool {
        self.compare_opening.is_some()
    }
}
