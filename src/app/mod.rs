//! The eframe shell, as rerun's viewer and egui's demo app have it: [`ViewerApp`] owns the
//! document ([`DocumentState`]: what is open and made), the runtime state ([`RuntimeState`]: the
//! viewer, the panels' state, toasts, preferences, the session's bookkeeping) and the one job
//! registry; each frame it applies finished jobs, lays out the panels and the viewer
//! ([`frame`]), and applies the commands they sent ([`commands`]) once.
//!
//! Nothing but this folder and `main` names the shell. May import everything below it.

mod analysis;
mod cohort;
mod commands;
mod frame;
mod gpu;
mod jobs;
mod models;
mod open;
mod session;
mod view_export;

use std::path::PathBuf;

use crate::document::DocumentState;
use crate::io::recent::RecentFiles;
use crate::ui::dialogs::DialogPurpose;
use crate::ui::models_tab::ModelsTabState;
use crate::ui::preferences::Preferences;
use crate::ui::toasts::Toasts;
use crate::ui::{Command, CommandSender, RunningJob, UiState};
use crate::viewer::ViewerState;
use crate::viewer::export::ViewExport;
use crate::work::jobs::{JobKind, Jobs};

pub use gpu::native_options;
pub use jobs::{JobKey, JobOutput};
pub use session::SessionState;

/// What the app is started with (command line).
#[derive(Debug, Clone, Default)]
pub struct StartupOptions {
    pub slide: Option<PathBuf>,
    /// A Xenium output folder.
    pub xenium: Option<PathBuf>,
    /// Xenium Explorer alignment CSV (H&E pixel -> Xenium morphology pixel).
    pub alignment: Option<PathBuf>,
    /// Generate (once, cached) and open the synthetic demo tissue of this difficulty.
    pub demo: Option<cs_synth::Difficulty>,
    /// A session file to open.
    pub session: Option<PathBuf>,
    /// A cohort manifest to open (its first sample is shown).
    pub cohort: Option<PathBuf>,
    /// Where sessions are autosaved (None: no autosave and no crash recovery).
    pub autosave_dir: Option<PathBuf>,
}

/// Sender and receiver of the messages that PNG exports of plots (done in a screenshot callback)
/// send back.
type ScreenshotReports = (
    std::sync::mpsc::SyncSender<Result<String, String>>,
    std::sync::mpsc::Receiver<Result<String, String>>,
);

/// How the app is being used right now: not part of the document, not saved with a session.
pub struct RuntimeState {
    pub viewer: ViewerState,
    pub ui: UiState,
    pub toasts: Toasts,
    pub preferences: Preferences,
    pub recent: RecentFiles,
    pub session: SessionState,
    pub gpu: gpu::GpuState,
    /// A PNG export of the view (or of the tour) in progress.
    pub view_export: Option<ViewExport>,
    /// PNG exports of plots report back from the screenshot callback through this channel.
    screenshot_reports: ScreenshotReports,
    next_source_id: u64,
}

/// The eframe app.
pub struct ViewerApp {
    document: DocumentState,
    runtime: RuntimeState,
    jobs: Jobs<JobKey, JobOutput>,
    /// Counts the documents replaced (sessions opened): a job's result polled together with the
    /// one that replaced its document is not applied to the new one.
    document_generation: u64,
    commands: CommandSender,
    ctx: egui::Context,
}

impl ViewerApp {
    pub fn new(cc: &eframe::CreationContext<'_>, options: StartupOptions) -> Self {
        let gpu = gpu::GpuState::new(cc);
        let mut models = ModelsTabState::new(gpu.adapter());
        models.load_preferences(cc.storage);
        let ctx = cc.egui_ctx.clone();
        let repaint = ctx.clone();
        let mut app = Self {
            document: DocumentState::default(),
            runtime: RuntimeState {
                viewer: ViewerState::default(),
                ui: UiState::new(models),
                toasts: Toasts::default(),
                preferences: Preferences::load(cc.storage),
                recent: RecentFiles::load(cc.storage),
                session: SessionState::new(options.autosave_dir.as_deref()),
                gpu,
                view_export: None,
                screenshot_reports: std::sync::mpsc::sync_channel(4),
                next_source_id: 1,
            },
            jobs: Jobs::new(move || repaint.request_repaint()),
            document_generation: 0,
            commands: CommandSender::default(),
            ctx,
        };
        app.apply_preferences(app.runtime.preferences.clone());
        if !app.runtime.gpu.ready {
            app.runtime
                .toasts
                .error("No GPU device is available to eframe (wgpu): slides and cells cannot be drawn.");
        }
        if let Some(difficulty) = options.demo {
            app.open_demo(difficulty);
        }
        if let Some(path) = options.xenium {
            app.open_bundle(path);
        }
        if let Some(path) = options.slide {
            // A folder given as the positional argument: a SpatialData store or a Xenium bundle
            // (an OME-NGFF image folder is a slide).
            if path.is_dir() && !cs_slide::is_ngff_image(&path) {
                app.open_bundle(path);
            } else {
                app.open_slide(path);
            }
        }
        if let Some(path) = options.alignment {
            app.load_alignment(&path);
        }
        if let Some(path) = options.session {
            app.open_session(&path);
        }
        if let Some(path) = options.cohort {
            app.open_cohort(path);
        }
        app
    }

    /// What is open and made.
    pub fn document(&self) -> &DocumentState {
        &self.document
    }

    pub fn document_mut(&mut self) -> &mut DocumentState {
        &mut self.document
    }

    pub fn runtime(&self) -> &RuntimeState {
        &self.runtime
    }

    pub fn runtime_mut(&mut self) -> &mut RuntimeState {
        &mut self.runtime
    }

    /// The viewer's camera, pointer, tools, split view and presentation.
    pub fn viewer(&self) -> &ViewerState {
        &self.runtime.viewer
    }

    pub fn viewer_mut(&mut self) -> &mut ViewerState {
        &mut self.runtime.viewer
    }

    pub fn toasts(&self) -> &Toasts {
        &self.runtime.toasts
    }

    /// False when eframe gave no wgpu device: nothing can be drawn, and the UI says so.
    pub fn gpu_ready(&self) -> bool {
        self.runtime.gpu.ready
    }

    /// The neighbourhood enrichment for the Selections tab's settings and the selection as they
    /// are now (None when either changed since it was computed).
    pub fn current_nhood_result(&self) -> Option<std::sync::Arc<cs_analysis::NhoodEnrichment>> {
        self.document
            .current_nhood_result(&self.runtime.ui.selections.nhood_settings)
    }

    /// Applies `command` now, as the shell does with the panels' commands once per frame.
    pub fn run_command(&mut self, command: Command) {
        self.apply_command(command);
    }

    /// As if the user picked `path` in the file dialog for `purpose`.
    pub fn file_chosen(&mut self, purpose: DialogPurpose, path: PathBuf) {
        self.apply_file_choice(purpose, path);
    }

    /// The jobs the status bar lists (opening data, analyses, exports), with their labels and ages.
    pub fn busy_jobs(&self) -> Vec<RunningJob> {
        self.running_jobs()
            .into_iter()
            .filter(|j| j.kind.in_status_bar())
            .collect()
    }

    /// What is being opened or computed, while a job the status bar lists runs.
    pub fn is_opening(&self) -> Option<RunningJob> {
        self.busy_jobs().into_iter().next()
    }

    pub fn is_running(&self, kind: JobKind) -> bool {
        self.jobs.is_running(kind)
    }

    /// Every running job, for the panels.
    fn running_jobs(&self) -> Vec<RunningJob> {
        self.jobs
            .running()
            .map(|j| RunningJob {
                kind: j.kind,
                status: j.status_text(),
                eta_seconds: j.eta_seconds(),
                progress: j.progress,
                elapsed: j.elapsed,
            })
            .collect()
    }

    /// A new id for a tile or geometry source.
    fn take_source_id(&mut self) -> u64 {
        let id = self.runtime.next_source_id;
        self.runtime.next_source_id += 1;
        id
    }

    /// Puts preferences into effect: the theme, the open slide's tile cache, autosave.
    fn apply_preferences(&mut self, preferences: Preferences) {
        preferences.apply_theme(&self.ctx);
        let bytes = preferences.tile_cache_bytes();
        if let Some(slide) = &mut self.document.slide {
            slide.layer.set_ram_budget(bytes);
        }
        self.runtime.session.autosave_enabled = preferences.autosave;
        self.runtime.preferences = preferences;
    }
}

impl eframe::App for ViewerApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        self.run_frame(ui, frame);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.runtime.recent.save(storage);
        self.runtime.ui.models.save_preferences(storage);
        self.runtime.preferences.save(storage);
    }

    fn on_exit(&mut self) {
        self.close_session_cleanly();
    }
}
