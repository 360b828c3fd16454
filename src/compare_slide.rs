//! A second slide to compare with the first in the split view (two sections, or H&E beside a
//! stain): opened in the background, placed by its own µm per pixel, drawn in the right pane with
//! the same camera, so pan and zoom stay linked in micrometres.

use std::path::PathBuf;

use crate::app::{ViewerApp, display_name, slide_opening_outcome};
use crate::slide_layer::SlideLayer;

/// The comparison slide: its file and its tiles.
pub struct CompareSlide {
    pub path: PathBuf,
    pub layer: SlideLayer,
}

impl ViewerApp {
    /// Opens `path` as the slide to compare with, and shows the split view with it on the right.
    pub fn open_compare_slide(&mut self, path: PathBuf) {
        let label = format!("Opening {} to compare", display_name(&path));
        let replaced = self.compare_opening.take();
        self.compare_opening = self.start_slide_open(path, label, replaced);
    }

    /// Installs a finished comparison slide (once per frame).
    pub fn apply_compare_job(&mut self) {
        let Some((path, result)) = self.compare_opening.as_ref().and_then(slide_opening_outcome) else {
            return;
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
        let Some(layer) = self.new_slide_layer(opened.source, &path) else {
            return;
        };
        self.close_compare_slide();
        self.compare = Some(CompareSlide { path, layer });
        // The right pane shows the other sample: its slide, without this sample's cells on it.
        let split = self.split.get_or_insert_with(Default::default);
        split.right.compare = true;
        split.right.cells = false;
    }

    pub fn close_compare_slide(&mut self) {
        if let Some(old) = self.compare.take() {
            self.evict_gpu_tiles(old.layer.source_id);
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
