//! The eframe application: owns the open slide, the camera, background jobs and user messages,
//! and lays out the menu, toolbar, side panel, status bar and viewer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cs_render::{CellRenderer, TileRenderer};
use cs_slide::{OpenSlideSource, RgbaImage, SlideError, SlideSource};
use cs_xenium::{Affine2, XeniumError, read_alignment_csv, write_alignment_csv};
use eframe::egui_wgpu;
use glam::DAffine2;

use crate::camera::{Camera, Viewport};
use crate::cell_layer::{CellLayer, LoadedBundle, TranscriptLayer, gene_values, load_bundle};
use crate::demo::DemoFiles;
use crate::jobs::{Job, JobStatus, spawn_job};
use crate::landmarks::LandmarkTool;
use crate::recent::RecentFiles;
use crate::selections::Selections;
use crate::slide_layer::SlideLayer;
use crate::toasts::Toasts;
use crate::tools::ToolState;

/// GPU memory for slide tile textures.
pub const GPU_TILE_BUDGET_BYTES: usize = 512 * 1024 * 1024;
const OVERVIEW_MAX_SIDE_PX: u32 = 512;
const ASSOCIATED_MAX_SIDE_PX: u32 = 1024;

/// What the app is started with (command line).
#[derive(Debug, Clone, Default)]
pub struct StartupOptions {
    pub slide: Option<PathBuf>,
    /// A Xenium output folder.
    pub xenium: Option<PathBuf>,
    /// Xenium Explorer alignment CSV (H&E pixel -> Xenium morphology pixel).
    pub alignment: Option<PathBuf>,
    /// Generate (once, cached) and open the synthetic demo tissue.
    pub demo: bool,
    /// A session file to open.
    pub session: Option<PathBuf>,
    /// Where sessions are autosaved (None: no autosave and no crash recovery).
    pub autosave_dir: Option<PathBuf>,
}

/// A slide as read by the open job, before it reaches the UI thread.
pub struct OpenedSlide {
    pub path: PathBuf,
    pub source: Arc<dyn SlideSource>,
    pub overview: Option<RgbaImage>,
    pub associated: Vec<(String, Result<RgbaImage, SlideError>)>,
}

/// Opens a slide and reads what the panels show (overview, associated images). Runs off the UI thread.
pub fn open_slide(path: &Path) -> Result<OpenedSlide, SlideError> {
    let source = OpenSlideSource::open(path)?;
    let overview = match source.overview(OVERVIEW_MAX_SIDE_PX) {
        Ok(image) => Some(image),
        Err(error) => {
            log::warn!("{error}");
            None
        }
    };
    let associated = source
        .metadata()
        .associated_images
        .iter()
        .map(|name| {
            let image = source
                .read_associated_image(name)
                .map(|image| image.downscaled_to_fit(ASSOCIATED_MAX_SIDE_PX));
            (name.clone(), image)
        })
        .collect();
    Ok(OpenedSlide {
        path: path.to_path_buf(),
        source: Arc::new(source),
        overview,
        associated,
    })
}

pub struct AssociatedImage {
    pub name: String,
    pub image: Result<(egui::TextureHandle, [usize; 2]), String>,
}

/// The open slide on the UI side.
pub struct LoadedSlide {
    pub path: PathBuf,
    pub layer: SlideLayer,
    pub overview: Option<(egui::TextureHandle, [usize; 2])>,
    pub associated: Vec<AssociatedImage>,
}

pub fn texture_from_image(ctx: &egui::Context, name: &str, image: &RgbaImage) -> (egui::TextureHandle, [usize; 2]) {
    let size = [image.width as usize, image.height as usize];
    let color_image = egui::ColorImage::from_rgba_unmultiplied(size, &image.pixels);
    (ctx.load_texture(name, color_image, egui::TextureOptions::LINEAR), size)
}

/// Viewer-side state that the panels and the viewer widget share.
pub struct ViewState {
    pub camera: Camera,
    /// Set when data arrives or the user asks to fit: applied once the viewport size is known.
    pub fit_requested: bool,
    /// The viewport and camera of the last fit: while the camera stays as the fit left it, the fit
    /// follows viewport changes (panels appearing, window resized).
    pub fitted: Option<(Viewport, Camera)>,
    pub last_viewport: Option<Viewport>,
    /// Where the viewer was laid out last frame (window points).
    pub viewer_rect: Option<egui::Rect>,
    /// Cursor over the viewer, in world µm.
    pub cursor_in_world: Option<glam::DVec2>,
    /// Cursor over the viewer, in slide px (when a slide is open).
    pub cursor_in_slide_px: Option<glam::DVec2>,
    /// Keep gliding after a drag is released (off by default, as pathologists expect).
    pub pan_inertia: bool,
    /// Glide velocity after a drag, in screen points per second.
    pub pan_velocity: glam::DVec2,
}

/// The alignment that places the slide in world: H&E pixel -> Xenium morphology pixel.
#[derive(Debug, Clone, PartialEq)]
pub struct SlideAlignment {
    /// Where it was read from or saved to (None: made in the app and not saved yet).
    pub path: Option<PathBuf>,
    pub xenium_px_from_slide_px: Affine2,
    /// Landmark fit residual (RMS, µm) when it came from landmarks.
    pub rms_residual_um: Option<f64>,
}

/// How the next neighbourhood enrichment runs.
#[derive(Debug, Clone, PartialEq)]
pub struct NhoodSettings {
    pub graph: cs_analysis::GraphKind,
    pub n_perms: usize,
    pub seed: u64,
    /// Inside the active selection only, else over all cells.
    pub within_selection: bool,
}

impl Default for NhoodSettings {
    fn default() -> Self {
        Self {
            graph: cs_analysis::GraphKind::Radius { radius_um: 30.0 },
            n_perms: 1000,
            seed: 0,
            within_selection: false,
        }
    }
}

/// The tabs of the right panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RightTab {
    Selections,
    Annotations,
    Models,
    Slide,
}

/// What a file dialog was opened for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialogPurpose {
    OpenSession,
    SaveSession,
    Slide,
    Bundle,
    Alignment,
    SaveAlignment,
    /// A second slide, compared with the first in the split view.
    CompareSlide,
    /// GeoJSON (QuPath) or a Xenium Explorer coordinates CSV.
    ImportSelections,
    /// Annotations as GeoJSON (QuPath).
    ImportAnnotations,
    ExportAnnotations,
    /// A cell_id,label CSV for training the classifier.
    ModelLabels,
    VitWeights,
    GeneEmbeddings,
    ApplyModel,
    /// Save the model folder `from` (the classifier shown when the button was pressed).
    SaveModel {
        from: PathBuf,
    },
    /// The view as PNG at `scale` times its size on screen.
    ExportViewPng {
        scale: u32,
        legend: bool,
    },
    /// Every bookmark as PNG, with an HTML index, into a folder.
    ExportTour {
        scale: u32,
        legend: bool,
    },
    ExportGeoJson,
    ExportCellsCsv,
    ExportStatsCsv,
    ExportDeCsv,
    /// One of the panel's plots, as SVG (drawn from the numbers) or PNG (as shown).
    ExportPlot {
        plot: PlotKind,
        png: bool,
    },
}

/// The plots of the selections panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlotKind {
    Composition,
    Volcano,
    Heatmap,
}

impl PlotKind {
    pub fn file_stem(self) -> &'static str {
        match self {
            PlotKind::Composition => "selection_composition",
            PlotKind::Volcano => "selection_volcano",
            PlotKind::Heatmap => "neighbourhood_enrichment",
        }
    }
}

type BundleJob = Job<Result<Option<LoadedBundle>, XeniumError>>;
/// A slide being opened, and its file.
pub type SlideOpening = (PathBuf, Job<Result<OpenedSlide, SlideError>>);

/// How a slide opening ended: its file and the slide or the error (None: still running).
pub(crate) fn slide_opening_outcome((path, job): &SlideOpening) -> Option<(PathBuf, Result<OpenedSlide, SlideError>)> {
    let result = match job.poll() {
        JobStatus::Running => return None,
        JobStatus::Done(result) => result,
        JobStatus::Lost => Err(SlideError::CannotOpen {
            path: path.clone(),
            reason: "the reader stopped unexpectedly".to_owned(),
        }),
    };
    Some((path.clone(), result))
}

/// Whole-slide image extensions the file dialogs offer.
const SLIDE_EXTENSIONS: [&str; 11] = [
    "svs", "tif", "tiff", "ndpi", "vms", "vmu", "scn", "mrxs", "svslide", "bif", "dcm",
];
/// Sender and receiver of the messages that PNG exports (done in a screenshot callback) send back.
type ExportReports = (
    std::sync::mpsc::SyncSender<Result<String, String>>,
    std::sync::mpsc::Receiver<Result<String, String>>,
);
/// The demo generator and its progress.
type DemoJob = (Arc<Mutex<DemoProgress>>, Job<anyhow::Result<DemoFiles>>);

/// Progress of the demo generator, shared with its thread.
#[derive(Default)]
pub struct DemoProgress {
    pub fraction: f32,
    pub stage: String,
}

pub struct ViewerApp {
    pub slide: Option<LoadedSlide>,
    pub cells: Option<CellLayer>,
    pub alignment: Option<SlideAlignment>,
    pub view: ViewState,
    pub recent: RecentFiles,
    pub toasts: Toasts,
    pub show_properties: bool,
    pub show_layers: bool,
    pub property_filter: String,
    pub gene_filter: String,
    pub associated_window: Option<String>,
    /// Cell under the cursor (table index), for the tooltip and highlight.
    pub hovered_cell: Option<u32>,
    /// Cell clicked for the inspector (table index).
    pub pinned_cell: Option<u32>,
    pub landmarks: Option<LandmarkTool>,
    pub selections: Selections,
    pub tools: ToolState,
    /// Which tab the right panel shows.
    pub right_tab: RightTab,
    /// The categorical column the selection statistics use (None: the one cells are coloured by).
    pub stats_column: Option<String>,
    pub composition: crate::selection_panel::CompositionView,
    /// Differential expression of the active selection (the last run and its inputs).
    pub de: Option<crate::analysis_jobs::DeRun>,
    /// Neighbourhood enrichment (the last run and its inputs) and the settings for the next run.
    pub nhood: Option<crate::analysis_jobs::NhoodRun>,
    pub nhood_settings: NhoodSettings,
    /// Model settings, runs and results (the Models tab).
    pub models: crate::models_panel::ModelsState,
    /// The session file, autosave and restore.
    pub session: crate::session::SessionState,
    /// Points, lines, areas and labels drawn on the slide.
    pub annotations: crate::annotations::Annotations,
    /// Named views in tour order, the window that lists them, and the presentation.
    pub bookmarks: crate::bookmarks::Bookmarks,
    pub show_bookmarks: bool,
    pub presentation: Option<crate::presentation::Presentation>,
    /// The animated move to a bookmark in progress.
    pub transition: Option<crate::presentation::Transition>,
    /// A PNG export of the view (or of the tour) in progress, and the export window's choices.
    pub view_export: Option<crate::view_export::ViewExport>,
    /// The renderers still hold the last export's draw data (dropped at the next frame).
    pub(crate) forget_export_frames: bool,
    /// Annotations being read from a file.
    pub(crate) annotation_import: Option<(PathBuf, Job<anyhow::Result<crate::annotations::AnnotationImport>>)>,
    pub preferences: crate::preferences::Preferences,
    pub show_preferences: bool,
    /// The keyboard shortcuts window.
    pub show_shortcuts: bool,
    /// A second slide shown in a pane of the split view, and its opening.
    pub compare: Option<crate::compare_slide::CompareSlide>,
    pub(crate) compare_opening: Option<SlideOpening>,
    /// Two panes side by side with linked pan and zoom (None: one view).
    pub split: Option<crate::viewer::SplitView>,
    pub export_choice: crate::view_export::ExportChoice,
    opening: Option<SlideOpening>,
    bundle_job: Option<(PathBuf, BundleJob)>,
    gene_job: Option<(u32, Job<Vec<f64>>)>,
    transcripts_job: Option<Job<Result<Option<TranscriptLayer>, XeniumError>>>,
    demo_job: Option<DemoJob>,
    file_dialog: Option<(DialogPurpose, Job<Option<PathBuf>>)>,
    pub(crate) export_job: Option<Job<anyhow::Result<String>>>,
    /// Where each plot of the panel was drawn last frame (for PNG export from a screenshot).
    pub plot_rects: std::collections::HashMap<PlotKind, egui::Rect>,
    /// PNG exports report back from the screenshot callback through this channel.
    screenshot_results: ExportReports,
    next_source_id: u64,
    pending_gpu_evictions: Vec<u64>,
    pending_cell_evictions: Vec<u64>,
    /// False when eframe gave us no wgpu device: nothing can be drawn, and the UI says so.
    pub gpu_ready: bool,
    pub(crate) ctx: egui::Context,
}

impl ViewerApp {
    pub fn new(cc: &eframe::CreationContext<'_>, options: StartupOptions) -> Self {
        let gpu_ready = if let Some(render_state) = &cc.wgpu_render_state {
            let tiles = TileRenderer::new(&render_state.device, render_state.target_format, GPU_TILE_BUDGET_BYTES);
            let cells = CellRenderer::new(&render_state.device, render_state.target_format);
            let mut renderer = render_state.renderer.write();
            renderer.callback_resources.insert(tiles);
            renderer.callback_resources.insert(cells);
            let info = render_state.adapter.get_info();
            log::info!(
                "rendering on {} ({:?}, {:?})",
                info.name,
                info.device_type,
                info.backend
            );
            true
        } else {
            false
        };
        let mut app = Self {
            slide: None,
            cells: None,
            alignment: None,
            view: ViewState {
                camera: Camera::default(),
                fit_requested: false,
                fitted: None,
                last_viewport: None,
                viewer_rect: None,
                cursor_in_world: None,
                cursor_in_slide_px: None,
                pan_inertia: false,
                pan_velocity: glam::DVec2::ZERO,
            },
            recent: RecentFiles::load(cc.storage),
            toasts: Toasts::default(),
            show_properties: true,
            show_layers: true,
            property_filter: String::new(),
            gene_filter: String::new(),
            associated_window: None,
            hovered_cell: None,
            pinned_cell: None,
            landmarks: None,
            selections: Selections::default(),
            tools: ToolState::default(),
            right_tab: RightTab::Selections,
            stats_column: None,
            composition: Default::default(),
            de: None,
            nhood: None,
            nhood_settings: NhoodSettings::default(),
            session: crate::session::SessionState::new(options.autosave_dir.as_deref()),
            annotations: Default::default(),
            bookmarks: Default::default(),
            show_bookmarks: false,
            presentation: None,
            transition: None,
            view_export: None,
            forget_export_frames: false,
            annotation_import: None,
            split: None,
            compare: None,
            compare_opening: None,
            preferences: crate::preferences::Preferences::load(cc.storage),
            show_preferences: false,
            show_shortcuts: false,
            export_choice: Default::default(),
            models: crate::models_panel::ModelsState::new(cc.wgpu_render_state.as_ref().map(|r| {
                crate::models_panel::GpuShare {
                    instance: r.instance.clone(),
                    adapter: r.adapter.clone(),
                    device: r.device.clone(),
                    queue: r.queue.clone(),
                }
            })),
            opening: None,
            bundle_job: None,
            gene_job: None,
            transcripts_job: None,
            demo_job: None,
            file_dialog: None,
            export_job: None,
            plot_rects: Default::default(),
            screenshot_results: std::sync::mpsc::sync_channel(4),
            next_source_id: 1,
            pending_gpu_evictions: Vec::new(),
            pending_cell_evictions: Vec::new(),
            gpu_ready,
            ctx: cc.egui_ctx.clone(),
        };
        app.models.load_preferences(cc.storage);
        app.apply_preferences(&cc.egui_ctx);
        if !gpu_ready {
            app.toasts
                .error("No GPU device is available to eframe (wgpu): slides and cells cannot be drawn.");
        }
        if options.demo {
            app.open_demo();
        }
        if let Some(path) = options.xenium {
            app.open_bundle(path);
        }
        if let Some(path) = options.slide {
            app.open_slide_path(path);
        }
        if let Some(path) = options.alignment {
            app.load_alignment(&path);
        }
        if let Some(path) = options.session {
            app.open_session(&path);
        }
        app
    }

    /// Cancels the opening of a slide or bundle, transcripts and gene counts being read, and
    /// model runs (a session is being replaced); their results are dropped with them.
    pub fn cancel_background_loads(&mut self) {
        if let Some((_, job)) = self.opening.take() {
            job.cancel();
        }
        if let Some((_, job)) = self.compare_opening.take() {
            job.cancel();
        }
        if let Some((_, job)) = self.bundle_job.take() {
            job.cancel();
        }
        if let Some(job) = self.transcripts_job.take() {
            job.cancel();
        }
        self.gene_job = None;
        if let Some(run) = self.models.classifier_run.take() {
            run.job.cancel();
        }
        if let Some(run) = self.models.niche_run.take() {
            run.job.cancel();
        }
        self.models.classifier = None;
        self.models.niches = None;
        self.models.classifier_key = None;
        self.models.niches_key = None;
    }

    /// Whether a bundle, a slide or transcripts are being read.
    pub fn is_opening_bundle(&self) -> bool {
        self.bundle_job.is_some()
    }

    pub fn is_opening_slide(&self) -> bool {
        self.opening.is_some()
    }

    pub fn is_loading_transcripts(&self) -> bool {
        self.transcripts_job.is_some()
    }

    pub(crate) fn repaint_callback(&self) -> impl Fn() + Send + 'static {
        let ctx = self.ctx.clone();
        move || ctx.request_repaint()
    }

    /// Opens whatever `path` is: a folder is a Xenium bundle, a `.csv` an alignment, a
    /// `.cellsymphony` file a session, anything else a slide. Runs in the background; what is
    /// open stays until the new data is ready.
    pub fn open_path(&mut self, path: PathBuf) {
        let extension_is = |ext: &str| path.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext));
        if extension_is(crate::session_file::SESSION_EXTENSION) {
            self.open_session(&path);
        } else if path.is_dir() {
            self.open_bundle(path);
        } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
            self.load_alignment(&path);
        } else {
            self.open_slide_path(path);
        }
    }

    /// Starts opening a slide in the background; the current slide stays until it succeeds.
    pub fn open_slide_path(&mut self, path: PathBuf) {
        let label = format!("Opening {}", display_name(&path));
        let replaced = self.opening.take();
        self.opening = self.start_slide_open(path, label, replaced);
    }

    /// Starts opening `path` on a `slide-open` thread, cancelling the opening it `replaces`.
    /// None: it could not start (a toast said why).
    pub(crate) fn start_slide_open(
        &mut self,
        path: PathBuf,
        label: String,
        replaces: Option<SlideOpening>,
    ) -> Option<SlideOpening> {
        if let Some((_, job)) = replaces {
            job.cancel();
        }
        let job_path = path.clone();
        match spawn_job("slide-open", label, self.repaint_callback(), move |_| {
            open_slide(&job_path)
        }) {
            Ok(job) => Some((path, job)),
            Err(error) => {
                self.toasts
                    .error(format!("Cannot start opening {}: {error}", path.display()));
                None
            }
        }
    }

    /// A tile layer for a slide just opened, with the preferred RAM tile budget. None: tile
    /// loading could not start (a toast said why).
    pub(crate) fn new_slide_layer(&mut self, source: Arc<dyn SlideSource>, path: &Path) -> Option<SlideLayer> {
        let source_id = self.take_source_id();
        let ctx = self.ctx.clone();
        match SlideLayer::new(source, source_id, Arc::new(move || ctx.request_repaint())) {
            Ok(mut layer) => {
                layer.set_ram_budget(self.preferences.tile_cache_bytes());
                Some(layer)
            }
            Err(error) => {
                self.toasts
                    .error(format!("Cannot start tile loading for {}: {error}", path.display()));
                None
            }
        }
    }

    /// Starts reading a Xenium bundle in the background; the cells shown stay until it succeeds.
    pub fn open_bundle(&mut self, dir: PathBuf) {
        if let Some((_, job)) = self.bundle_job.take() {
            job.cancel();
        }
        let geometry_id = self.take_source_id();
        let job_dir = dir.clone();
        let label = format!("Reading Xenium bundle {}", display_name(&dir));
        match spawn_job("bundle-open", label, self.repaint_callback(), move |cancel| {
            load_bundle(&job_dir, geometry_id, cancel)
        }) {
            Ok(job) => self.bundle_job = Some((dir, job)),
            Err(error) => self
                .toasts
                .error(format!("Cannot start reading {}: {error}", dir.display())),
        }
    }

    /// Reads a Xenium Explorer alignment CSV and places the slide with it.
    pub fn load_alignment(&mut self, path: &Path) {
        match read_alignment_csv(path) {
            Ok(affine) => {
                self.alignment = Some(SlideAlignment {
                    path: Some(path.to_path_buf()),
                    xenium_px_from_slide_px: affine,
                    rms_residual_um: None,
                });
                self.place_slide();
                self.toasts
                    .note(format!("Slide placed with the alignment in {}", display_name(path)));
            }
            Err(error) => self
                .toasts
                .error(format!("{error}. The slide keeps its current placement.")),
        }
    }

    /// Saves the current alignment in Xenium Explorer's CSV layout.
    pub fn save_alignment(&mut self, path: &Path) {
        let Some(alignment) = &mut self.alignment else {
            self.toasts.error("There is no alignment to save.");
            return;
        };
        match write_alignment_csv(path, &alignment.xenium_px_from_slide_px) {
            Ok(()) => {
                alignment.path = Some(path.to_path_buf());
                self.toasts.note(format!("Alignment saved to {}", path.display()));
            }
            Err(error) => self.toasts.error(error.to_string()),
        }
    }

    /// Micrometres per Xenium morphology pixel: the open bundle's, else Xenium's default.
    pub fn pixel_size_um(&self) -> f64 {
        self.cells
            .as_ref()
            .map_or(cs_xenium::DEFAULT_PIXEL_SIZE_UM, |c| c.bundle.pixel_size_um())
    }

    /// `world_from_slide` from the alignment (times the pixel size), else from the slide's µm/px.
    pub fn place_slide(&mut self) {
        let pixel_size_um = self.pixel_size_um();
        let Some(slide) = &mut self.slide else { return };
        match &self.alignment {
            Some(alignment) => {
                slide.layer.world_from_slide =
                    DAffine2::from_cols_array(&alignment.xenium_px_from_slide_px.scaled(pixel_size_um).to_cols_array());
                slide.layer.has_physical_scale = true;
            }
            None => slide.layer.place_by_resolution(),
        }
    }

    /// Generates the synthetic demo tissue once (cached) and opens it.
    pub fn open_demo(&mut self) {
        if self.demo_job.is_some() {
            return;
        }
        let progress = Arc::new(Mutex::new(DemoProgress::default()));
        let shared = progress.clone();
        let repaint = self.repaint_callback();
        let ctx = self.ctx.clone();
        let job = spawn_job("demo-synth", "Preparing the demo tissue", repaint, move |cancel| {
            let report = |fraction: f32, stage: &str| {
                if let Ok(mut p) = shared.lock() {
                    p.fraction = fraction;
                    p.stage = stage.to_owned();
                }
                ctx.request_repaint();
            };
            crate::demo::prepare_demo(&crate::demo::demo_dir(), &report, &|| cancel.is_cancelled())
        });
        match job {
            Ok(job) => self.demo_job = Some((progress, job)),
            Err(error) => self.toasts.error(format!("Cannot start the demo generator: {error}")),
        }
    }

    /// Labels and ages of the background jobs that open data, for the status bar.
    pub fn busy_jobs(&self) -> Vec<(String, std::time::Duration)> {
        let mut jobs = Vec::new();
        if let Some((progress, job)) = &self.demo_job {
            let label = match progress.lock() {
                Ok(p) if !p.stage.is_empty() => format!("{} ({}: {:.0}%)", job.label, p.stage, p.fraction * 100.0),
                _ => job.label.clone(),
            };
            jobs.push((label, job.elapsed()));
        }
        if let Some((_, job)) = &self.opening {
            jobs.push((job.label.clone(), job.elapsed()));
        }
        if let Some((_, job)) = &self.compare_opening {
            jobs.push((job.label.clone(), job.elapsed()));
        }
        if let Some((_, job)) = &self.bundle_job {
            jobs.push((job.label.clone(), job.elapsed()));
        }
        if let Some((_, job)) = &self.gene_job {
            jobs.push((job.label.clone(), job.elapsed()));
        }
        if let Some(job) = &self.transcripts_job {
            jobs.push((job.label.clone(), job.elapsed()));
        }
        if let Some(job) = &self.export_job {
            jobs.push((job.label.clone(), job.elapsed()));
        }
        if let Some(job) = self.de.as_ref().and_then(|d| d.job()) {
            jobs.push((job.label.clone(), job.elapsed()));
        }
        if let Some(job) = self.nhood.as_ref().and_then(|d| d.job()) {
            jobs.push((job.label.clone(), job.elapsed()));
        }
        jobs
    }

    /// What is being opened, and for how long, while an open job runs.
    pub fn is_opening(&self) -> Option<(String, std::time::Duration)> {
        self.busy_jobs().into_iter().next()
    }

    /// Shows a native file dialog on its own thread so frames keep coming.
    pub fn ask_for_file(&mut self, purpose: DialogPurpose) {
        if self.file_dialog.is_some() {
            return;
        }
        let start_dir = self
            .recent
            .paths()
            .first()
            .and_then(|p| p.parent())
            .map(Path::to_path_buf);
        let dialog_purpose = purpose.clone();
        let job = spawn_job("file-dialog", "Choosing a file", self.repaint_callback(), move |_| {
            let purpose = dialog_purpose;
            let mut dialog = rfd::FileDialog::new();
            if let Some(dir) = start_dir {
                dialog = dialog.set_directory(dir);
            }
            let session_filter = ("CellSymphony session", [crate::session_file::SESSION_EXTENSION]);
            match purpose {
                DialogPurpose::OpenSession => dialog
                    .set_title("Open session")
                    .add_filter(session_filter.0, &session_filter.1)
                    .pick_file(),
                DialogPurpose::SaveSession => dialog
                    .set_title("Save session as")
                    .add_filter(session_filter.0, &session_filter.1)
                    .set_file_name("session.cellsymphony")
                    .save_file(),
                DialogPurpose::Slide => dialog
                    .set_title("Open whole-slide image")
                    .add_filter("Whole-slide images", &SLIDE_EXTENSIONS)
                    .add_filter("All files", &["*"])
                    .pick_file(),
                DialogPurpose::Bundle => dialog.set_title("Open Xenium output folder").pick_folder(),
                DialogPurpose::Alignment => dialog
                    .set_title("Open H&E alignment (Xenium Explorer CSV)")
                    .add_filter("Alignment CSV", &["csv"])
                    .pick_file(),
                DialogPurpose::SaveAlignment => dialog
                    .set_title("Save H&E alignment (Xenium Explorer CSV)")
                    .add_filter("Alignment CSV", &["csv"])
                    .set_file_name("he_alignment.csv")
                    .save_file(),
                DialogPurpose::ImportSelections => dialog
                    .set_title("Import selections (GeoJSON, Xenium Explorer CSV)")
                    .add_filter("Selections", &["geojson", "json", "csv"])
                    .pick_file(),
                DialogPurpose::CompareSlide => dialog
                    .set_title("Open a slide to compare (shown beside the first)")
                    .add_filter("Whole-slide images", &SLIDE_EXTENSIONS)
                    .add_filter("All files", &["*"])
                    .pick_file(),
                DialogPurpose::ImportAnnotations => dialog
                    .set_title("Import annotations (GeoJSON, e.g. from QuPath)")
                    .add_filter("GeoJSON", &["geojson", "json"])
                    .pick_file(),
                DialogPurpose::ExportAnnotations => dialog
                    .set_title("Export annotations as GeoJSON (QuPath)")
                    .add_filter("GeoJSON", &["geojson"])
                    .set_file_name("annotations.geojson")
                    .save_file(),
                DialogPurpose::ModelLabels => dialog
                    .set_title("Training labels (CSV with cell_id and label columns)")
                    .add_filter("CSV", &["csv"])
                    .pick_file(),
                DialogPurpose::GeneEmbeddings => dialog
                    .set_title("Per-cell gene embeddings (cell_id + numeric columns, or .npy + NAME.cell_ids.txt)")
                    .add_filter("embeddings", &["parquet", "csv", "gz", "npy"])
                    .pick_file(),
                DialogPurpose::ApplyModel => dialog
                    .set_title("A saved classifier (the folder with model.json and weights.bpk)")
                    .pick_folder(),
                DialogPurpose::SaveModel { .. } => dialog
                    .set_title("Save the classifier as a model folder")
                    .set_file_name("cellsymphony-model")
                    .save_file(),
                DialogPurpose::VitWeights => dialog
                    .set_title("ViT weights (.safetensors saved from timm)")
                    .add_filter("safetensors", &["safetensors"])
                    .pick_file(),
                DialogPurpose::ExportViewPng { .. } => dialog
                    .set_title("Export the view as PNG")
                    .add_filter("PNG", &["png"])
                    .set_file_name("view.png")
                    .save_file(),
                DialogPurpose::ExportTour { .. } => dialog
                    .set_title("Export the tour into a folder (PNGs and index.html)")
                    .pick_folder(),
                DialogPurpose::ExportGeoJson => dialog
                    .set_title("Export selections as GeoJSON (QuPath)")
                    .add_filter("GeoJSON", &["geojson"])
                    .set_file_name("selections.geojson")
                    .save_file(),
                DialogPurpose::ExportCellsCsv => dialog
                    .set_title("Export the selection's cells (Xenium Explorer CSV)")
                    .add_filter("CSV", &["csv"])
                    .set_file_name("selection_cells.csv")
                    .save_file(),
                DialogPurpose::ExportStatsCsv => dialog
                    .set_title("Export the selection's statistics (CSV)")
                    .add_filter("CSV", &["csv"])
                    .set_file_name("selection_composition.csv")
                    .save_file(),
                DialogPurpose::ExportPlot { plot, png } => {
                    let extension = if png { "png" } else { "svg" };
                    dialog
                        .set_title(format!("Export the plot ({})", extension.to_uppercase()))
                        .add_filter(extension.to_uppercase(), &[extension])
                        .set_file_name(format!("{}.{extension}", plot.file_stem()))
                        .save_file()
                }
                DialogPurpose::ExportDeCsv => dialog
                    .set_title("Export differential expression (CSV)")
                    .add_filter("CSV", &["csv"])
                    .set_file_name("selection_differential_expression.csv")
                    .save_file(),
            }
        });
        match job {
            Ok(job) => self.file_dialog = Some((purpose, job)),
            Err(error) => self.toasts.error(format!("Cannot show the file dialog: {error}")),
        }
    }

    /// Shows the native dialog for a slide.
    pub fn ask_for_slide(&mut self) {
        self.ask_for_file(DialogPurpose::Slide);
    }

    /// Colours cells by one gene: its counts are gathered off the UI thread.
    pub fn colour_by_gene(&mut self, feature: u32) {
        let Some(cells) = &self.cells else { return };
        let bundle = cells.bundle.clone();
        let label = format!("Gathering {} counts", cells.feature_name(feature));
        match spawn_job("gene-values", label, self.repaint_callback(), move |_| {
            gene_values(&bundle, feature)
        }) {
            Ok(job) => self.gene_job = Some((feature, job)),
            Err(error) => self.toasts.error(format!("Cannot start reading gene counts: {error}")),
        }
    }

    /// Loads the bundle's transcripts (qv >= 20) in the background and shows them.
    pub fn load_transcripts(&mut self) {
        let Some(cells) = &self.cells else { return };
        if self.transcripts_job.is_some() {
            return;
        }
        let bundle = cells.bundle.clone();
        let geometry_id = self.take_source_id();
        match spawn_job(
            "transcripts",
            "Reading transcripts",
            self.repaint_callback(),
            move |cancel| {
                let transcripts = bundle.load_transcripts(cs_xenium::DEFAULT_MIN_QV)?;
                if cancel.is_cancelled() {
                    return Ok(None);
                }
                Ok(transcripts.map(|t| TranscriptLayer::new(t, geometry_id)))
            },
        ) {
            Ok(job) => self.transcripts_job = Some(job),
            Err(error) => self.toasts.error(format!("Cannot start reading transcripts: {error}")),
        }
    }

    /// World µm to the coordinates selections are exchanged in: the slide's level-0 pixels when a
    /// slide is open (QuPath works on the H&E), else µm.
    pub fn selection_file_from_world(&self) -> DAffine2 {
        self.slide
            .as_ref()
            .map_or(DAffine2::IDENTITY, |s| s.layer.world_from_slide.inverse())
    }

    /// Reads selections from GeoJSON or a Xenium Explorer coordinates CSV and adds them.
    pub fn import_selections(&mut self, path: &Path) {
        let Some(cells) = &self.cells else {
            self.toasts.error("Open a Xenium bundle before importing selections.");
            return;
        };
        let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let read = if is_csv {
            crate::selection_io::read_xenium_explorer_csv(path)
        } else {
            crate::selection_io::read_geojson(path, &self.selection_file_from_world().inverse())
        };
        match read {
            Ok(imported) => {
                let count = imported.len();
                self.selections.import(imported, &cells.index, cells.len());
                self.toasts
                    .note(format!("Imported {count} selection(s) from {}", display_name(path)));
            }
            Err(error) => self.toasts.error(format!("{error:#}")),
        }
    }

    /// Writes an export in the background; a note or an error says how it went.
    pub fn export(&mut self, purpose: DialogPurpose, path: PathBuf) {
        let Some(cells) = &self.cells else { return };
        let Some(active) = self.selections.active().cloned() else {
            self.toasts
                .error("Select cells first: there is no active selection to export.");
            return;
        };
        let bundle = cells.bundle.clone();
        let file_from_world = self.selection_file_from_world();
        let visible: Vec<crate::selections::NamedSelection> =
            self.selections.items.iter().filter(|s| s.visible).cloned().collect();
        let composition = self.composition.result.clone().and_then(Result::ok);
        let column = self.composition_column();
        let de = self.current_de_result();
        let nhood = self.current_nhood_result();
        let reference = self
            .selections
            .compared()
            .map_or("rest of the cells".to_owned(), |s| s.name.clone());
        self.start_export(move || {
            crate::selection_io::export(
                purpose,
                &path,
                &crate::selection_io::ExportInputs {
                    bundle: &bundle,
                    active: &active,
                    visible: &visible,
                    file_from_world,
                    composition: composition.as_ref(),
                    column: column.as_deref(),
                    reference: &reference,
                    de: de.as_deref().map(Vec::as_slice),
                    nhood: nhood.as_deref(),
                },
            )
        });
    }

    /// Runs an export on the `export` thread; its message or error becomes a toast.
    pub(crate) fn start_export(&mut self, work: impl FnOnce() -> anyhow::Result<String> + Send + 'static) {
        match spawn_job("export", "Exporting", self.repaint_callback(), move |_| work()) {
            Ok(job) => self.export_job = Some(job),
            Err(error) => self.toasts.error(format!("Cannot start the export: {error}")),
        }
    }

    /// Saves a plot as shown on screen: the next frame is captured and the plot's rectangle cut
    /// out and written as PNG.
    pub fn export_plot_png(&mut self, plot: PlotKind, path: PathBuf) {
        let Some(rect) = self.plot_rects.get(&plot).copied() else {
            self.toasts
                .error("That plot is not on screen: show it, then export it.");
            return;
        };
        let sender = self.screenshot_results.0.clone();
        let ctx = self.ctx.clone();
        let pixels_per_point = self.ctx.pixels_per_point();
        self.ctx.request_screenshot(move |image| {
            let region = image.region(&rect, Some(pixels_per_point));
            let [w, h] = region.size;
            let rgba: Vec<u8> = region.pixels.iter().flat_map(|c| c.to_srgba_unmultiplied()).collect();
            let result = image::RgbaImage::from_raw(w as u32, h as u32, rgba)
                .ok_or_else(|| "the screenshot has the wrong size".to_owned())
                .and_then(|png| {
                    png.save(&path)
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))
                })
                .map(|()| format!("Saved {}", path.display()));
            let _ = sender.try_send(result);
            ctx.request_repaint();
        });
    }

    fn apply_screenshot_results(&mut self) {
        while let Ok(result) = self.screenshot_results.1.try_recv() {
            match result {
                Ok(message) => self.toasts.note(message),
                Err(error) => self.toasts.error(error),
            }
        }
    }

    /// The categorical column whose composition the panel shows.
    pub fn composition_column(&self) -> Option<String> {
        crate::selection_panel::stats_column(self)
    }

    /// The inputs a differential-expression run for the active selection would have.
    pub fn de_key(&self) -> Option<crate::analysis_jobs::DeKey> {
        Some(crate::analysis_jobs::DeKey {
            group: self.selections.active()?.cells.clone(),
            reference: self.selections.compared().map(|s| s.cells.clone()),
        })
    }

    /// The DE result for the active selection as it is now (None when it changed since).
    pub fn current_de_result(&self) -> Option<Arc<Vec<crate::analysis_jobs::NamedDe>>> {
        self.de.as_ref()?.result_for(self.de_key().as_ref())
    }

    /// Starts differential expression of the active selection against the rest (or the
    /// compared selection) on a worker thread.
    pub fn run_de(&mut self) {
        let (Some(cells), Some(key)) = (&self.cells, self.de_key()) else {
            return;
        };
        let bundle = cells.bundle.clone();
        let job_key = key.clone();
        match spawn_job(
            "differential-expression",
            "Differential expression",
            self.repaint_callback(),
            move |_| crate::analysis_jobs::differential_expression(&bundle, &job_key),
        ) {
            Ok(job) => self.de = Some(crate::analysis_jobs::AnalysisRun::new(key, job)),
            Err(error) => self
                .toasts
                .error(format!("Cannot start differential expression: {error}")),
        }
    }

    /// The inputs the next neighbourhood enrichment would have.
    pub fn nhood_key(&self) -> Option<crate::analysis_jobs::NhoodKey> {
        let settings = &self.nhood_settings;
        let within = if settings.within_selection {
            Some(self.selections.active()?.cells.clone())
        } else {
            None
        };
        Some(crate::analysis_jobs::NhoodKey {
            column: self.composition_column()?,
            graph: settings.graph,
            n_perms: settings.n_perms,
            seed: settings.seed,
            within,
        })
    }

    /// The enrichment for the current settings and selection (None when they changed since).
    pub fn current_nhood_result(&self) -> Option<Arc<cs_analysis::NhoodEnrichment>> {
        self.nhood.as_ref()?.result_for(self.nhood_key().as_ref())
    }

    /// Starts neighbourhood enrichment on a worker thread (a running one is cancelled).
    pub fn run_nhood(&mut self) {
        let (Some(cells), Some(key)) = (&self.cells, self.nhood_key()) else {
            return;
        };
        if let Some(run) = &mut self.nhood {
            run.cancel();
        }
        let bundle = cells.bundle.clone();
        let job_key = key.clone();
        match spawn_job(
            "nhood-enrichment",
            "Neighbourhood enrichment",
            self.repaint_callback(),
            move |cancel| crate::analysis_jobs::neighbourhood_enrichment(&bundle, &job_key, cancel),
        ) {
            Ok(job) => self.nhood = Some(crate::analysis_jobs::AnalysisRun::new(key, job)),
            Err(error) => self
                .toasts
                .error(format!("Cannot start neighbourhood enrichment: {error}")),
        }
    }

    pub fn cancel_nhood(&mut self) {
        if let Some(run) = &mut self.nhood {
            run.cancel();
        }
    }

    fn apply_export_job(&mut self) {
        let Some(job) = &self.export_job else { return };
        match job.poll() {
            JobStatus::Running => {}
            JobStatus::Done(result) => {
                self.export_job = None;
                match result {
                    Ok(message) => self.toasts.note(message),
                    Err(error) => self.toasts.error(format!("{error:#}")),
                }
            }
            JobStatus::Lost => {
                self.export_job = None;
                self.toasts.error("The export stopped unexpectedly.");
            }
        }
    }

    /// Applies finished background work. Called once per frame, before any UI.
    fn apply_finished_jobs(&mut self, ctx: &egui::Context) {
        self.apply_export_job();
        self.apply_screenshot_results();
        if let Some(run) = &mut self.de {
            run.poll("differential expression");
        }
        if let Some(run) = &mut self.nhood {
            run.poll("neighbourhood enrichment");
        }
        self.apply_model_runs();
        self.apply_compare_job();
        self.apply_annotation_import();
        if let Some((purpose, job)) = &self.file_dialog {
            let purpose = purpose.clone();
            match job.poll() {
                JobStatus::Running => {}
                JobStatus::Done(choice) => {
                    self.file_dialog = None;
                    if choice.is_none() && purpose == DialogPurpose::SaveSession {
                        // Save as… was cancelled: a quit waiting for it is called off.
                        self.session.quit_after_save = false;
                    }
                    if let Some(path) = choice {
                        match purpose {
                            DialogPurpose::OpenSession => self.open_session(&path),
                            DialogPurpose::SaveSession => self.save_session_as(path),
                            DialogPurpose::Slide => self.open_slide_path(path),
                            DialogPurpose::Bundle => self.open_bundle(path),
                            DialogPurpose::Alignment => self.load_alignment(&path),
                            DialogPurpose::SaveAlignment => self.save_alignment(&path),
                            DialogPurpose::ImportSelections => self.import_selections(&path),
                            DialogPurpose::ImportAnnotations => self.import_annotations(&path),
                            DialogPurpose::CompareSlide => self.open_compare_slide(path),
                            DialogPurpose::ExportAnnotations => self.export_annotations(path),
                            DialogPurpose::ModelLabels => {
                                self.models.settings.labels = crate::model_runs::LabelChoice::Csv(path);
                            }
                            DialogPurpose::VitWeights => self.choose_vit_weights(path),
                            DialogPurpose::GeneEmbeddings => self.models.settings.gene_embeddings = Some(path),
                            DialogPurpose::SaveModel { from } => self.save_model(&from, path),
                            DialogPurpose::ApplyModel => self.apply_saved_model(path),
                            DialogPurpose::ExportViewPng { scale, legend } => self.export_view_png(path, scale, legend),
                            DialogPurpose::ExportTour { scale, legend } => {
                                self.export_tour(crate::view_export::tour_dir(&path), scale, legend);
                            }
                            DialogPurpose::ExportGeoJson
                            | DialogPurpose::ExportCellsCsv
                            | DialogPurpose::ExportStatsCsv
                            | DialogPurpose::ExportDeCsv
                            | DialogPurpose::ExportPlot { png: false, .. } => self.export(purpose, path),
                            DialogPurpose::ExportPlot { plot, png: true } => self.export_plot_png(plot, path),
                        }
                    }
                }
                JobStatus::Lost => {
                    self.file_dialog = None;
                    self.toasts.error("The file dialog closed unexpectedly.");
                }
            }
        }
        self.apply_demo_job();
        self.apply_bundle_job();
        self.apply_gene_job();
        self.apply_transcripts_job();
        self.apply_slide_job(ctx);
    }

    fn apply_demo_job(&mut self) {
        let Some((_, job)) = &self.demo_job else { return };
        let result = match job.poll() {
            JobStatus::Running => return,
            JobStatus::Done(result) => result,
            JobStatus::Lost => Err(anyhow::anyhow!("the generator stopped unexpectedly")),
        };
        self.demo_job = None;
        match result {
            Ok(files) => {
                self.open_bundle(files.bundle_dir);
                if let Some(slide) = files.slide {
                    self.open_slide_path(slide);
                }
                if let Some(alignment) = files.alignment {
                    self.load_alignment(&alignment);
                }
            }
            Err(error) => self
                .toasts
                .error(format!("The demo tissue could not be prepared: {error:#}")),
        }
    }

    fn apply_bundle_job(&mut self) {
        let Some((dir, job)) = &self.bundle_job else { return };
        let dir = dir.clone();
        let result = match job.poll() {
            JobStatus::Running => return,
            JobStatus::Done(result) => result,
            JobStatus::Lost => Err(XeniumError::Io {
                file: dir.clone(),
                reason: "the reader stopped unexpectedly".to_owned(),
            }),
        };
        self.bundle_job = None;
        match result {
            Ok(Some(loaded)) => {
                for warning in &loaded.bundle.warnings {
                    log::warn!("{warning}");
                }
                let noteworthy: Vec<String> = loaded
                    .bundle
                    .warnings
                    .iter()
                    .filter(|w| !w.message.starts_with("no "))
                    .map(|w| w.to_string())
                    .collect();
                if !noteworthy.is_empty() {
                    self.toasts.note(noteworthy.join("\n"));
                }
                let cells = loaded.bundle.cells.len();
                if let Some(old) = self.cells.take() {
                    self.pending_cell_evictions.push(old.geometry.id);
                    if let Some(t) = &old.transcripts {
                        self.pending_cell_evictions.push(t.points.id);
                    }
                }
                self.hovered_cell = None;
                self.pinned_cell = None;
                self.models.classifier = None;
                self.models.niches = None;
                self.models.classifier_key = None;
                self.models.niches_key = None;
                self.gene_job = None;
                self.transcripts_job = None;
                self.recent.add(&dir);
                let layer = CellLayer::new(dir.clone(), loaded);
                // Selections are shapes in world µm: they carry over to the new cells.
                self.selections.refresh_all(&layer.index, layer.len());
                self.cells = Some(layer);
                self.place_slide();
                self.view.fit_requested = true;
                log::info!("{}: {cells} cells", dir.display());
            }
            Ok(None) => {}
            Err(error) => {
                let keep = if self.cells.is_some() {
                    " The cells that were open stay open."
                } else {
                    ""
                };
                self.toasts.error(format!("{error}.{keep}"));
            }
        }
    }

    fn apply_gene_job(&mut self) {
        let Some((feature, job)) = &self.gene_job else { return };
        let feature = *feature;
        match job.poll() {
            JobStatus::Running => {}
            JobStatus::Done(values) => {
                self.gene_job = None;
                if let Some(cells) = &mut self.cells
                    && values.len() == cells.len()
                {
                    cells.set_gene_values(feature, values);
                    // A restored session's colour map and range for this gene.
                    if let Some((gene, map, range)) = self.session.pending_gene_style.take()
                        && gene == feature
                        && let Some(numeric) = &mut cells.numeric
                    {
                        if let Some(map) = map {
                            numeric.colour_map = map;
                        }
                        if let Some([min, max]) = range.filter(|[a, b]| a.is_finite() && b > a) {
                            (numeric.min, numeric.max) = (min, max);
                        }
                        cells.numeric_changed();
                    }
                }
            }
            JobStatus::Lost => {
                self.gene_job = None;
                self.toasts.error("Reading gene counts stopped unexpectedly.");
            }
        }
    }

    fn apply_transcripts_job(&mut self) {
        let Some(job) = &self.transcripts_job else { return };
        let result = match job.poll() {
            JobStatus::Running => return,
            JobStatus::Done(result) => result,
            JobStatus::Lost => {
                self.transcripts_job = None;
                self.toasts.error("Reading transcripts stopped unexpectedly.");
                return;
            }
        };
        self.transcripts_job = None;
        match result {
            Ok(Some(layer)) => {
                if let Some(cells) = &mut self.cells {
                    cells.transcripts = Some(layer);
                }
            }
            Ok(None) => {
                if let Some(cells) = &self.cells
                    && cells.bundle.files.transcripts.is_none()
                {
                    self.toasts.note("This bundle has no transcripts file.");
                }
            }
            Err(error) => self.toasts.error(error.to_string()),
        }
    }

    fn apply_slide_job(&mut self, ctx: &egui::Context) {
        let Some((path, result)) = self.opening.as_ref().and_then(slide_opening_outcome) else {
            return;
        };
        self.opening = None;
        match result {
            Ok(opened) => self.install_slide(ctx, opened),
            Err(error) => {
                let keep = if self.slide.is_some() {
                    " The slide that was open stays open."
                } else {
                    ""
                };
                self.toasts.error(format!("{error}.{keep}"));
                if matches!(error, SlideError::NotFound { .. }) {
                    self.recent.remove(&path);
                }
            }
        }
    }

    fn install_slide(&mut self, ctx: &egui::Context, opened: OpenedSlide) {
        let Some(layer) = self.new_slide_layer(opened.source.clone(), &opened.path) else {
            return;
        };
        if let Some(old) = self.slide.take() {
            self.evict_gpu_tiles(old.layer.source_id);
        }
        if !layer.has_physical_scale && self.alignment.is_none() {
            self.toasts.note(format!(
                "{} records no microns per pixel: lengths are shown in pixels.",
                display_name(&opened.path)
            ));
        }
        let overview = opened
            .overview
            .as_ref()
            .map(|image| texture_from_image(ctx, "slide-overview", image));
        let associated = opened
            .associated
            .into_iter()
            .map(|(name, image)| AssociatedImage {
                image: image
                    .map(|image| texture_from_image(ctx, &format!("associated-{name}"), &image))
                    .map_err(|e| e.to_string()),
                name,
            })
            .collect();
        self.recent.add(&opened.path);
        self.associated_window = None;
        self.slide = Some(LoadedSlide {
            path: opened.path,
            layer,
            overview,
            associated,
        });
        self.place_slide();
        self.view.fit_requested = true;
    }

    /// Dims the cells outside the active selection (when asked to) by restyling the cell layer;
    /// a no-op when nothing changed.
    fn sync_emphasis(&mut self) {
        let Some(cells) = &mut self.cells else { return };
        let wanted = self
            .selections
            .active()
            .filter(|s| self.tools.dim_outside && !s.steps.is_empty())
            .map(|s| &s.cells);
        cells.set_emphasis(wanted);
    }

    /// The world box of everything open (slide and cells), for fitting the view.
    pub fn bounds_in_world(&self) -> Option<(glam::DVec2, glam::DVec2)> {
        let boxes = [
            self.slide.as_ref().map(|s| s.layer.bounds_in_world()),
            self.cells
                .as_ref()
                .filter(|c| !c.is_empty())
                .map(|c| c.bounds_in_world()),
        ];
        boxes
            .into_iter()
            .flatten()
            .reduce(|(a0, a1), (b0, b1)| (a0.min(b0), a1.max(b1)))
    }

    /// The renderer lives in egui_wgpu's callback resources: evictions wait for the next frame.
    pub(crate) fn evict_gpu_tiles(&mut self, source_id: u64) {
        self.pending_gpu_evictions.push(source_id);
    }

    /// A new id for a tile or geometry source.
    pub(crate) fn take_source_id(&mut self) -> u64 {
        let id = self.next_source_id;
        self.next_source_id += 1;
        id
    }

    pub fn close_slide(&mut self) {
        if let Some(old) = self.slide.take() {
            self.evict_gpu_tiles(old.layer.source_id);
        }
        self.associated_window = None;
    }

    pub fn close_cells(&mut self) {
        if let Some(old) = self.cells.take() {
            self.pending_cell_evictions.push(old.geometry.id);
            if let Some(t) = &old.transcripts {
                self.pending_cell_evictions.push(t.points.id);
            }
        }
        self.hovered_cell = None;
        self.pinned_cell = None;
        self.place_slide();
    }

    fn handle_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        for path in dropped {
            self.open_path(path);
        }
    }

    fn flush_gpu_evictions(&mut self, frame: &eframe::Frame) {
        if self.pending_gpu_evictions.is_empty() && self.pending_cell_evictions.is_empty() {
            return;
        }
        let tiles = std::mem::take(&mut self.pending_gpu_evictions);
        let cells = std::mem::take(&mut self.pending_cell_evictions);
        if let Some(render_state) = frame.wgpu_render_state() {
            let mut renderer = render_state.renderer.write();
            if let Some(tile_renderer) = renderer.callback_resources.get_mut::<TileRenderer>() {
                for source_id in tiles {
                    tile_renderer.evict_source(source_id);
                }
            }
            if let Some(cell_renderer) = renderer.callback_resources.get_mut::<CellRenderer>() {
                for id in cells {
                    cell_renderer.evict(id);
                }
            }
        }
    }
}

pub fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

impl eframe::App for ViewerApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.confirm_quit_if_unsaved(&ctx);
        self.apply_finished_jobs(&ctx);
        self.tick_session(&ctx);
        crate::presentation::presentation_keys(&ctx, self);
        crate::presentation::tour_keys(&ctx, self);
        crate::help::help_keys(&ctx, self);
        self.tick_transition(&ctx);
        self.step_view_export(frame);
        let presenting = self.presentation.is_some();
        self.handle_dropped_files(&ctx);
        self.flush_gpu_evictions(frame);
        if let Some(slide) = &mut self.slide {
            slide.layer.receive_tiles();
        }
        if let Some(compare) = &mut self.compare {
            compare.layer.receive_tiles();
        }

        if !presenting {
            crate::panels::top_bar_ui(ui, self);
            crate::panels::status_bar_ui(ui, self);
        }
        let has_data = self.slide.is_some() || self.cells.is_some();
        if self.show_layers && has_data && !presenting {
            // Fixed width: its layout must not depend on whether the slide or the cells came first.
            egui::Panel::left("layers")
                .exact_size(290.0)
                .show(ui, |ui| crate::layers_panel::layers_ui(ui, self));
        }
        if self.show_properties && has_data && !presenting {
            egui::Panel::right("properties")
                .exact_size(360.0)
                .show(ui, |ui| crate::selection_panel::right_panel_ui(ui, self));
        }
        self.sync_emphasis();
        egui::CentralPanel::default()
            .frame(egui::Frame::NONE.fill(egui::Color32::from_gray(40)))
            .show(ui, |ui| {
                if has_data && self.split.is_some() && !presenting {
                    crate::viewer::split_view_ui(ui, self);
                } else if has_data {
                    crate::viewer::viewer_ui(ui, self, crate::viewer::Pane::SINGLE);
                } else {
                    crate::panels::start_screen_ui(ui, self);
                }
            });
        crate::panels::associated_window_ui(&ctx, self);
        crate::layers_panel::landmark_window_ui(&ctx, self);
        crate::panels::drop_hint_ui(&ctx);
        crate::session::session_prompts_ui(&ctx, self);
        crate::presentation::bookmarks_window_ui(&ctx, self);
        crate::presentation::presentation_overlay_ui(&ctx, self);
        crate::view_export::export_window_ui(&ctx, self);
        crate::view_export::export_progress_ui(&ctx, self);
        crate::preferences::preferences_window_ui(&ctx, self);
        crate::help::shortcuts_window_ui(&ctx, self);
        self.toasts.show(&ctx);

        if !self.busy_jobs().is_empty() || self.file_dialog.is_some() {
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.recent.save(storage);
        self.models.save_preferences(storage);
        self.preferences.save(storage);
    }

    fn on_exit(&mut self) {
        self.close_session_cleanly();
    }
}

/// A long-lived renderer in egui_wgpu's callback resources that prepares one view's draw list
/// and paints it (the slide tiles, the cells).
pub trait ViewRenderer: Send + Sync + 'static {
    type DrawList: Send + Sync + 'static;
    fn prepare_view(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        view: cs_render::FrameId,
        list: &Self::DrawList,
    );
    fn paint_view(&self, pass: &mut wgpu::RenderPass<'static>, view: cs_render::FrameId);
}

impl ViewRenderer for TileRenderer {
    type DrawList = cs_render::TileDrawList;
    fn prepare_view(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        view: cs_render::FrameId,
        list: &Self::DrawList,
    ) {
        self.prepare(device, queue, view, list);
    }
    fn paint_view(&self, pass: &mut wgpu::RenderPass<'static>, view: cs_render::FrameId) {
        self.paint(pass, view);
    }
}

impl ViewRenderer for CellRenderer {
    type DrawList = cs_render::CellDrawList;
    fn prepare_view(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        view: cs_render::FrameId,
        list: &Self::DrawList,
    ) {
        self.prepare(device, queue, view, list);
    }
    fn paint_view(&self, pass: &mut wgpu::RenderPass<'static>, view: cs_render::FrameId) {
        self.paint(pass, view);
    }
}

/// eframe's wgpu paint callback handing one view's draw list to renderer `R`.
pub struct RendererCallback<R: ViewRenderer> {
    pub frame_id: cs_render::FrameId,
    pub list: R::DrawList,
    renderer: std::marker::PhantomData<fn() -> R>,
}

impl<R: ViewRenderer> RendererCallback<R> {
    pub fn new(frame_id: cs_render::FrameId, list: R::DrawList) -> Self {
        Self {
            frame_id,
            list,
            renderer: std::marker::PhantomData,
        }
    }
}

impl<R: ViewRenderer> egui_wgpu::CallbackTrait for RendererCallback<R> {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen_descriptor: &egui_wgpu::ScreenDescriptor,
        _egui_encoder: &mut wgpu::CommandEncoder,
        callback_resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if let Some(renderer) = callback_resources.get_mut::<R>() {
            renderer.prepare_view(device, queue, self.frame_id, &self.list);
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        callback_resources: &egui_wgpu::CallbackResources,
    ) {
        if let Some(renderer) = callback_resources.get::<R>() {
            renderer.paint_view(render_pass, self.frame_id);
        }
    }
}
