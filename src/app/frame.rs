//! One frame of the app: finished jobs are applied, the session ticks, the shortcuts outside the
//! viewer are read (and take effect before the UI is laid out, as keys always have), then the
//! panels, the viewer and the windows are laid out, each with a narrow context and its own state,
//! and what they asked for is applied at the end of the frame.

use crate::app::ViewerApp;
use crate::app::gpu::flush_evictions;
use crate::ui::bookmarks_window::{bookmarks_window_ui, presentation_overlay_ui};
use crate::ui::export_window::{export_progress_ui, export_window_ui};
use crate::ui::help::{help_keys, shortcuts_window_ui};
use crate::ui::keys::{presentation_keys, session_keys, tour_keys};
use crate::ui::landmarks_window::landmark_window_ui;
use crate::ui::layers_panel::layers_ui;
use crate::ui::preferences::preferences_window_ui;
use crate::ui::right_panel::right_panel_ui;
use crate::ui::session_prompts::session_prompt_ui;
use crate::ui::slide_tab::associated_window_ui;
use crate::ui::start_screen::{drop_hint_ui, start_screen_ui};
use crate::ui::status_bar::status_bar_ui;
use crate::ui::top_bar::top_bar_ui;
use crate::ui::{Command, PanelContext};
use crate::viewer::split::{Pane, split_view_ui};
use crate::viewer::widget::{ViewerContext, viewer_ui};

impl ViewerApp {
    pub(super) fn run_frame(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.confirm_quit_if_unsaved();
        self.apply_finished_jobs();
        self.apply_screenshot_reports();
        self.tick_session();
        self.runtime.viewer.tick_transition(&ctx, &self.document.bookmarks);
        self.step_view_export(frame);
        self.handle_dropped_files();
        flush_evictions(&mut self.document.evictions, frame);
        if let Some(slide) = &mut self.document.slide {
            slide.layer.receive_tiles();
        }
        if let Some(slide) = self.document.compare.as_mut().and_then(|c| c.slide.as_mut()) {
            slide.layer.receive_tiles();
        }
        if let Some(morphology) = &mut self.document.morphology {
            morphology.receive_tiles();
        }
        if let Some(transcripts) = self.document.cells.as_mut().and_then(|c| c.transcripts.as_mut()) {
            transcripts.receive();
            self.document.evictions.geometries.append(&mut transcripts.evicted);
            if let Some(error) = transcripts.error.take() {
                self.runtime.toasts.error(error);
            }
        }
        let dim_outside = self.runtime.viewer.tools.dim_outside;
        self.document.sync_emphasis(dim_outside);
        self.document.sync_comparison_colouring();
        if let Some(cells) = &self.document.cells {
            // The live statistics of the shape being drawn read this count.
            self.runtime
                .viewer
                .tools
                .selection
                .refresh_drawn_cells(&cells.index, cells.len());
        }

        let jobs = self.running_jobs();
        // Shortcuts take effect before this frame's UI is laid out (F1 shows the list now).
        self.keys(&ctx, &jobs);
        self.apply_commands();
        self.panels_ui(ui, &jobs);
        self.central_ui(ui);
        self.windows_ui(&ctx, &jobs);
        self.runtime.toasts.show(&ctx);

        self.apply_commands();
        let busy = !self.jobs.is_empty();
        if busy {
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
    }

    /// The keyboard shortcuts outside the viewer.
    fn keys(&mut self, ctx: &egui::Context, jobs: &[crate::ui::RunningJob]) {
        let cx = self.panel_context(jobs);
        presentation_keys(ctx, &cx);
        tour_keys(ctx, &cx);
        help_keys(ctx, &cx);
        if cx.viewer.presentation.is_none() {
            session_keys(ctx, &cx);
        }
    }

    fn panel_context<'a>(&'a self, jobs: &'a [crate::ui::RunningJob]) -> PanelContext<'a> {
        PanelContext {
            document: &self.document,
            viewer: &self.runtime.viewer,
            jobs,
            units: self.runtime.preferences.units,
            recent: &self.runtime.recent,
            commands: &self.commands,
        }
    }

    /// The menu, toolbar and status bar, and the side panels.
    fn panels_ui(&mut self, ui: &mut egui::Ui, jobs: &[crate::ui::RunningJob]) {
        let Self {
            document,
            runtime,
            commands,
            ..
        } = self;
        let cx = PanelContext {
            document,
            viewer: &runtime.viewer,
            jobs,
            units: runtime.preferences.units,
            recent: &runtime.recent,
            commands,
        };
        if runtime.viewer.presentation.is_some() {
            return;
        }
        let ui_state = &mut runtime.ui;
        top_bar_ui(ui, &cx, &ui_state.windows);
        status_bar_ui(ui, &cx);
        if !document.has_data() {
            return;
        }
        if ui_state.windows.layers_panel {
            // Fixed width: its layout must not depend on whether the slide or the cells came first.
            egui::Panel::left("layers")
                .exact_size(290.0)
                .show(ui, |ui| layers_ui(ui, &cx, &mut ui_state.layers));
        }
        if ui_state.windows.properties_panel {
            egui::Panel::right("properties").exact_size(360.0).show(ui, |ui| {
                right_panel_ui(
                    ui,
                    &cx,
                    &mut ui_state.right_tab,
                    &mut ui_state.slide_tab,
                    &mut ui_state.selections,
                    &mut ui_state.models,
                    &mut ui_state.cohort,
                );
            });
        }
    }

    /// The viewer (one view or the split view), or the start screen when nothing is open.
    fn central_ui(&mut self, ui: &mut egui::Ui) {
        let Self {
            document,
            runtime,
            commands,
            ..
        } = self;
        let presenting = runtime.viewer.presentation.is_some();
        let has_data = document.has_data();
        let bounds_in_world = document.bounds_in_world();
        let has_physical_scale = document.has_physical_scale();
        let mut edits = Vec::new();
        egui::CentralPanel::default()
            .frame(egui::Frame::NONE.fill(egui::Color32::from_gray(40)))
            .show(ui, |ui| {
                if !has_data {
                    let cx = PanelContext {
                        document,
                        viewer: &runtime.viewer,
                        jobs: &[],
                        units: runtime.preferences.units,
                        recent: &runtime.recent,
                        commands,
                    };
                    start_screen_ui(ui, &cx);
                    return;
                }
                let mut cx = ViewerContext {
                    slide: document.slide.as_mut(),
                    cells: document.cells.as_mut(),
                    morphology: document.morphology.as_mut(),
                    compare: document.compare.as_mut(),
                    sample: document.cohort.as_ref().and_then(|c| c.active.as_deref()),
                    patches: document.models.virtual_layer.as_mut(),
                    selections: &document.selections,
                    annotations: &document.annotations,
                    bounds_in_world,
                    has_physical_scale,
                    exporting: runtime.view_export.is_some(),
                    highlight: runtime.ui.models.map_hover_cell,
                    units: runtime.preferences.units,
                    edits: &mut edits,
                };
                if runtime.viewer.split.is_some() && !presenting {
                    split_view_ui(ui, &mut runtime.viewer, &mut cx);
                } else {
                    viewer_ui(ui, &mut runtime.viewer, &mut cx, Pane::SINGLE);
                }
            });
        for edit in edits {
            commands.send(Command::Edit(edit));
        }
    }

    /// The windows over everything: associated image, landmarks, session prompts, bookmarks,
    /// the presentation's captions, export, preferences, shortcuts.
    fn windows_ui(&mut self, ctx: &egui::Context, jobs: &[crate::ui::RunningJob]) {
        let Self {
            document,
            runtime,
            commands,
            ..
        } = self;
        let prompt = runtime.session.prompt();
        let crate::app::RuntimeState {
            viewer,
            ui,
            preferences,
            recent,
            view_export,
            ..
        } = runtime;
        let cx = PanelContext {
            document,
            viewer,
            jobs,
            units: preferences.units,
            recent,
            commands,
        };
        associated_window_ui(ctx, &cx, ui.associated_window.as_deref());
        if viewer.landmarks.is_some() {
            landmark_window_ui(ctx, &cx);
        }
        drop_hint_ui(ctx);
        if let Some(prompt) = &prompt {
            session_prompt_ui(ctx, &cx, prompt);
        }
        if ui.windows.bookmarks {
            bookmarks_window_ui(ctx, &cx);
        }
        presentation_overlay_ui(ctx, &cx);
        if ui.windows.export_view {
            export_window_ui(ctx, &cx, &mut ui.export);
        }
        if let Some(export) = view_export {
            export_progress_ui(ctx, &cx, export);
        }
        if ui.windows.preferences {
            preferences_window_ui(ctx, &cx, preferences, &ui.models);
        }
        if ui.windows.shortcuts {
            shortcuts_window_ui(ctx, &cx);
        }
    }
}
