//! Stepping a PNG export of the view or of the tour, once per frame: wait for the shot's tiles,
//! render it (by the viewer's renderers, on the UI thread), write the PNG as an `export` job, then
//! the next shot; the tour's HTML index last. What the export changed (the slide's RAM tile
//! budget, the renderers' export frames) is put back when it ends.

use std::path::PathBuf;
use std::time::Duration;

use crate::app::ViewerApp;
use crate::app::jobs::{JobKey, JobOutput};
use crate::layers::camera::Viewport;
use crate::util::display_name;
use crate::util::fs::write_atomically;
use crate::viewer::export::Shot;
use crate::viewer::export::{
    ShotLayers, ShotStep, ViewExport, forget_export_frames, render_current_shot, shot_file_name, size_px,
    tour_index_html,
};
use crate::work::jobs::JobKind;

impl ViewerApp {
    /// Starts exporting the current view to `path`.
    pub(super) fn export_view_png(&mut self, path: PathBuf, scale: u32, legend: bool) {
        let Some(viewport) = self.runtime.viewer.last_viewport else {
            self.runtime
                .toasts
                .error("Open a slide or a bundle first: there is no view to export.");
            return;
        };
        let shot = Shot {
            path,
            camera: self.runtime.viewer.camera,
            title: String::new(),
            caption: String::new(),
        };
        self.start_view_export(vec![shot], viewport, scale, legend, None);
    }

    /// Starts exporting every bookmark into `dir` (NN-name.png) with an `index.html`.
    pub(super) fn export_tour(&mut self, dir: PathBuf, scale: u32, legend: bool) {
        let Some(viewport) = self.runtime.viewer.last_viewport else {
            self.runtime
                .toasts
                .error("Open a slide or a bundle first: there is no view to export.");
            return;
        };
        if self.document.bookmarks.items.is_empty() {
            self.runtime
                .toasts
                .error("The tour has no bookmarks yet (View > Bookmarks and tour).");
            return;
        }
        if let Err(error) = std::fs::create_dir_all(&dir) {
            self.runtime
                .toasts
                .error(format!("Cannot create {}: {error}", dir.display()));
            return;
        }
        let shots = self
            .document
            .bookmarks
            .items
            .iter()
            .enumerate()
            .map(|(i, b)| Shot {
                path: dir.join(shot_file_name(i, &b.name)),
                camera: b.camera_for(&viewport),
                title: b.name.clone(),
                caption: b.caption.clone(),
            })
            .collect();
        self.start_view_export(shots, viewport, scale, legend, Some(dir.join("index.html")));
    }

    fn start_view_export(
        &mut self,
        shots: Vec<Shot>,
        viewport: Viewport,
        scale: u32,
        legend: bool,
        index: Option<PathBuf>,
    ) {
        if self.runtime.view_export.is_some() {
            self.runtime.toasts.note("An export is already running.");
            return;
        }
        // A whole shot's tiles must fit in the RAM cache at once (RGBA, with room to spare).
        let [w, h] = size_px(&viewport, scale.max(1));
        let needed = (u64::from(w) * u64::from(h) * 4 * 3) as usize;
        let ram_budget_before = self.document.slide.as_mut().and_then(|s| {
            let before = s.layer.ram_budget_bytes();
            (needed > before).then(|| {
                s.layer.set_ram_budget(needed);
                before
            })
        });
        self.runtime.view_export = Some(ViewExport {
            shots,
            next: 0,
            scale: scale.max(1),
            legend,
            viewport,
            index,
            progress: None,
            writing: false,
            ram_budget_before,
        });
    }

    /// Stops an export between shots (what is written stays).
    pub(super) fn cancel_view_export(&mut self) {
        if let Some(export) = self.runtime.view_export.take() {
            self.end_view_export(&export);
            self.jobs.cancel_kind(JobKind::ViewExportWrite);
            self.runtime.toasts.note("Export cancelled.");
        }
    }

    /// Puts back what the export changed: the slide's tile budget, the renderers' export views.
    fn end_view_export(&mut self, export: &ViewExport) {
        if let (Some(before), Some(slide)) = (export.ram_budget_before, &mut self.document.slide) {
            slide.layer.set_ram_budget(before);
        }
        self.runtime.gpu.forget_export_frames = true;
    }

    /// The current shot's PNG was written (or not): on to the next shot, or the export ends.
    pub(super) fn view_export_shot_written(&mut self, result: anyhow::Result<String>) {
        let Some(mut export) = self.runtime.view_export.take() else {
            return;
        };
        export.writing = false;
        match result {
            Ok(message) => {
                if export.index.is_none() {
                    self.runtime.toasts.note(message);
                }
                export.next += 1;
                export.progress = None;
                self.runtime.view_export = Some(export);
            }
            Err(error) => {
                self.runtime.toasts.error(format!("{error:#}"));
                self.end_view_export(&export);
            }
        }
    }

    /// Advances an export by one step: waits for the tiles of the current shot, renders it and
    /// hands the PNG to an `export` job; the next shot starts once it is written. Once per frame.
    pub(super) fn step_view_export(&mut self, frame: &eframe::Frame) {
        if std::mem::take(&mut self.runtime.gpu.forget_export_frames)
            && let Some(render_state) = frame.wgpu_render_state()
        {
            forget_export_frames(render_state);
        }
        let Some(mut export) = self.runtime.view_export.take() else {
            return;
        };
        if export.writing {
            self.runtime.view_export = Some(export);
            return;
        }
        if export.next >= export.shots.len() {
            self.finish_view_export(&export);
            self.end_view_export(&export);
            return;
        }
        let Some(render_state) = frame.wgpu_render_state() else {
            self.runtime
                .toasts
                .error("The view cannot be exported: there is no GPU device.");
            self.end_view_export(&export);
            return;
        };
        let has_physical_scale = self.document.has_physical_scale();
        let doc = &mut self.document;
        let layers = ShotLayers {
            slide: doc.slide.as_mut().map(|s| &mut s.layer),
            morphology: doc.morphology.as_mut(),
            cells: doc.cells.as_mut(),
            selections: &doc.selections,
            annotations: &doc.annotations,
            tools: &self.runtime.viewer.tools,
            has_physical_scale,
            units: self.runtime.preferences.units,
        };
        match render_current_shot(render_state, &mut export, layers) {
            ShotStep::WaitingForTiles => {
                self.runtime.view_export = Some(export);
                self.ctx.request_repaint_after(Duration::from_millis(30));
            }
            ShotStep::Failed(message) => {
                self.runtime.toasts.error(message);
                self.end_view_export(&export);
            }
            ShotStep::Rendered { pixels, width, height } => {
                let path = export.shots[export.next].path.clone();
                let written = self.jobs.spawn(
                    JobKind::ViewExportWrite,
                    JobKey::Path(path.clone()),
                    "Writing the PNG",
                    move |_| {
                        JobOutput::Written((|| {
                            let image = image::RgbaImage::from_raw(width, height, pixels)
                                .ok_or_else(|| anyhow::anyhow!("the rendered image has the wrong size"))?;
                            image
                                .save(&path)
                                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
                            Ok(format!("Saved {} ({width} x {height} px)", path.display()))
                        })())
                    },
                );
                match written {
                    Ok(()) => {
                        export.writing = true;
                        self.runtime.view_export = Some(export);
                    }
                    Err(error) => {
                        self.runtime
                            .toasts
                            .error(format!("Cannot start writing the PNG: {error}"));
                        self.end_view_export(&export);
                    }
                }
            }
        }
    }

    fn finish_view_export(&mut self, export: &ViewExport) {
        let Some(index) = &export.index else { return };
        let title = self
            .runtime
            .session
            .path
            .as_deref()
            .map_or_else(|| "CellSymphony tour".to_owned(), display_name);
        match write_atomically(index, tour_index_html(&title, &export.shots).as_bytes()) {
            Ok(()) => self.runtime.toasts.note(format!(
                "Tour exported: {} images and {}",
                export.shots.len(),
                index.display()
            )),
            Err(error) => self.runtime.toasts.error(format!("{error:#}")),
        }
    }
}
