//! The guided tour in the viewer: moving to a bookmark with an animated transition (the centre
//! slides, the zoom changes geometrically, eased), and presentation mode (full screen, the
//! panels hidden, one bookmark after another).

use std::time::Instant;

use crate::document::Edit;
use crate::document::bookmarks::{Bookmarks, TRANSITION, camera_between};
use crate::layers::camera::Camera;
use crate::viewer::ViewerState;

/// The animated move to a bookmark.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    pub from: Camera,
    pub to: usize,
    pub started: Instant,
}

/// Presentation mode: which bookmark is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presentation {
    pub step: usize,
}

impl ViewerState {
    /// Starts the animated move to bookmark `i`; returns the edit that makes it the current one.
    pub fn go_to_bookmark(&mut self, i: usize, bookmarks: &Bookmarks) -> Option<Edit> {
        if i >= bookmarks.items.len() {
            return None;
        }
        self.transition = Some(Transition {
            from: self.camera,
            to: i,
            started: Instant::now(),
        });
        self.fit_requested = false;
        self.fitted = None;
        Some(Edit::SetCurrentBookmark(i))
    }

    /// Full screen, at the first bookmark (or the current one). Err: there are no bookmarks.
    pub fn start_presentation(&mut self, ctx: &egui::Context, bookmarks: &Bookmarks) -> Result<Option<Edit>, String> {
        if bookmarks.items.is_empty() {
            return Err("Add bookmarks first (View > Bookmarks and tour, Ctrl+B): the tour steps through them.".into());
        }
        let step = bookmarks.current.unwrap_or(0);
        self.presentation = Some(Presentation { step });
        ctx.send_viewport_cmd(egui::ViewportCommand::Fullscreen(true));
        Ok(self.go_to_bookmark(step, bookmarks))
    }

    /// Shows bookmark `step` of the presentation.
    pub fn present_step(&mut self, step: usize, bookmarks: &Bookmarks) -> Option<Edit> {
        self.presentation?;
        self.presentation = Some(Presentation { step });
        self.go_to_bookmark(step, bookmarks)
    }

    pub fn end_presentation(&mut self, ctx: &egui::Context) {
        if self.presentation.take().is_some() {
            ctx.send_viewport_cmd(egui::ViewportCommand::Fullscreen(false));
        }
    }

    /// Advances the animated move (once per frame, before the viewer draws).
    pub fn tick_transition(&mut self, ctx: &egui::Context, bookmarks: &Bookmarks) {
        let (Some(transition), Some(viewport)) = (self.transition, self.last_viewport) else {
            return;
        };
        let Some(bookmark) = bookmarks.items.get(transition.to) else {
            self.transition = None;
            return;
        };
        // The target is recomputed every frame: the viewport changes when going full screen.
        let target = bookmark.camera_for(&viewport);
        let t = transition.started.elapsed().as_secs_f64() / TRANSITION.as_secs_f64();
        self.camera = camera_between(&transition.from, &target, t);
        if t >= 1.0 {
            self.transition = None;
        } else {
            ctx.request_repaint();
        }
    }
}
