//! Panels, windows and widgets. Each gets a narrow, read-only [`PanelContext`] (the document,
//! the viewer's state, the running jobs, the units) and its own state, and sends what it wants
//! done as [`Command`]s, applied once per frame by the shell. No panel starts a thread or
//! changes another part's state.
//!
//! May import: `viewer`, `document`, `work`, `io`, `layers`, `util` and the crates.

pub mod annotations_tab;
pub mod bookmarks_window;
pub mod cohort_tab;
pub mod command;
pub mod dialogs;
pub mod export_window;
pub mod help;
pub mod keys;
pub mod landmarks_window;
pub mod layers_panel;
pub mod models_tab;
pub mod neighbourhood;
pub mod plots;
pub mod preferences;
pub mod right_panel;
pub mod selections_tab;
pub mod session_prompts;
pub mod slide_tab;
pub mod start_screen;
pub mod status_bar;
pub mod toasts;
pub mod top_bar;

use std::time::Duration;

use crate::document::DocumentState;
use crate::io::recent::RecentFiles;
use crate::util::format::LengthUnits;
use crate::viewer::ViewerState;
use crate::work::jobs::{JobKind, Progress};

pub use command::{Command, CommandSender, Window};

/// One running job as the panels see it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningJob {
    pub kind: JobKind,
    /// The label, with the stage and percentage when the job reports them.
    pub status: String,
    pub progress: Progress,
    pub elapsed: Duration,
    /// Seconds left, when the progress allows an estimate.
    pub eta_seconds: Option<f64>,
}

/// What every panel may read, and where it sends what it wants done.
pub struct PanelContext<'a> {
    pub document: &'a DocumentState,
    pub viewer: &'a ViewerState,
    pub jobs: &'a [RunningJob],
    pub units: LengthUnits,
    pub recent: &'a RecentFiles,
    pub commands: &'a CommandSender,
}

impl PanelContext<'_> {
    pub fn send(&self, command: Command) {
        self.commands.send(command);
    }

    pub fn edit(&self, edit: crate::document::Edit) {
        self.commands.edit(edit);
    }

    /// The newest running job of `kind`.
    pub fn job(&self, kind: JobKind) -> Option<&RunningJob> {
        self.jobs.iter().rev().find(|j| j.kind == kind)
    }

    pub fn is_running(&self, kind: JobKind) -> bool {
        self.job(kind).is_some()
    }
}

/// The tabs of the right panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RightTab {
    Selections,
    Annotations,
    Models,
    Slide,
    Cohort,
}

/// Which panels and windows are shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Windows {
    pub layers_panel: bool,
    pub properties_panel: bool,
    pub bookmarks: bool,
    pub preferences: bool,
    pub shortcuts: bool,
    pub export_view: bool,
}

impl Default for Windows {
    fn default() -> Self {
        Self {
            layers_panel: true,
            properties_panel: true,
            bookmarks: false,
            preferences: false,
            shortcuts: false,
            export_view: false,
        }
    }
}

impl Windows {
    pub fn flag(&mut self, window: Window) -> &mut bool {
        match window {
            Window::LayersPanel => &mut self.layers_panel,
            Window::PropertiesPanel => &mut self.properties_panel,
            Window::Bookmarks => &mut self.bookmarks,
            Window::Preferences => &mut self.preferences,
            Window::Shortcuts => &mut self.shortcuts,
            Window::ExportView => &mut self.export_view,
        }
    }
}

/// The panels' own state: what each remembers between frames.
pub struct UiState {
    pub windows: Windows,
    pub right_tab: RightTab,
    /// The associated image shown enlarged.
    pub associated_window: Option<String>,
    pub slide_tab: slide_tab::SlideTabState,
    pub layers: layers_panel::LayersPanelState,
    pub selections: selections_tab::SelectionsTabState,
    pub models: models_tab::ModelsTabState,
    pub cohort: cohort_tab::CohortTabState,
    pub export: export_window::ExportChoice,
}

impl UiState {
    pub fn new(models: models_tab::ModelsTabState) -> Self {
        Self {
            windows: Windows::default(),
            right_tab: RightTab::Selections,
            associated_window: None,
            slide_tab: Default::default(),
            layers: Default::default(),
            selections: Default::default(),
            models,
            cohort: Default::default(),
            export: Default::default(),
        }
    }
}

/// A job's progress bar with its stage and time left, and Cancel.
pub fn job_progress_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, run: &RunningJob) {
    let (stage, fraction) = (&run.progress.stage, run.progress.fraction);
    ui.horizontal(|ui| {
        let text = match run.eta_seconds {
            Some(s) => format!("{stage}: {:.0}%, about {:.0} s left", fraction * 100.0, s.max(0.0)),
            None => format!("{stage}..."),
        };
        ui.add(egui::ProgressBar::new(fraction).text(text).desired_width(250.0));
        if ui.button("Cancel").clicked() {
            cx.send(Command::CancelJob(run.kind));
        }
    });
}
