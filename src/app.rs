//! The eframe application: owns the open slide, the camera, background jobs and user messages,
//! and lays out the menu, toolbar, side panel, status bar and viewer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cs_render::TileRenderer;
use cs_slide::{OpenSlideSource, RgbaImage, SlideError, SlideSource};
use eframe::egui_wgpu;

use crate::camera::{Camera, Viewport};
use crate::jobs::{Job, JobStatus, spawn_job};
use crate::recent::RecentFiles;
use crate::slide_layer::SlideLayer;
use crate::toasts::Toasts;

/// GPU memory for slide tile textures.
pub const GPU_TILE_BUDGET_BYTES: usize = 512 * 1024 * 1024;
const OVERVIEW_MAX_SIDE_PX: u32 = 512;
const ASSOCIATED_MAX_SIDE_PX: u32 = 1024;

/// What the app is started with (command line).
#[derive(Debug, Clone, Default)]
pub struct StartupOptions {
    pub slide: Option<PathBuf>,
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
    /// Set when a slide arrives or the user asks to fit: applied once the viewport size is known.
    pub fit_requested: bool,
    pub last_viewport: Option<Viewport>,
    /// Cursor over the viewer, in slide px.
    pub cursor_in_slide_px: Option<glam::DVec2>,
    /// Keep gliding after a drag is released (off by default, as pathologists expect).
    pub pan_inertia: bool,
    /// Glide velocity after a drag, in screen points per second.
    pub pan_velocity: glam::DVec2,
}

pub struct ViewerApp {
    pub slide: Option<LoadedSlide>,
    pub view: ViewState,
    pub recent: RecentFiles,
    pub toasts: Toasts,
    pub show_properties: bool,
    pub property_filter: String,
    pub associated_window: Option<String>,
    opening: Option<(PathBuf, Job<Result<OpenedSlide, SlideError>>)>,
    file_dialog: Option<Job<Option<PathBuf>>>,
    next_source_id: u64,
    pending_gpu_evictions: Vec<u64>,
    /// False when eframe gave us no wgpu device: the slide cannot be drawn, and the UI says so.
    pub gpu_ready: bool,
    ctx: egui::Context,
}

impl ViewerApp {
    pub fn new(cc: &eframe::CreationContext<'_>, options: StartupOptions) -> Self {
        let gpu_ready = if let Some(render_state) = &cc.wgpu_render_state {
            let renderer = TileRenderer::new(&render_state.device, render_state.target_format, GPU_TILE_BUDGET_BYTES);
            render_state.renderer.write().callback_resources.insert(renderer);
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
            view: ViewState {
                camera: Camera::default(),
                fit_requested: false,
                last_viewport: None,
                cursor_in_slide_px: None,
                pan_inertia: false,
                pan_velocity: glam::DVec2::ZERO,
            },
            recent: RecentFiles::load(cc.storage),
            toasts: Toasts::default(),
            show_properties: true,
            property_filter: String::new(),
            associated_window: None,
            opening: None,
            file_dialog: None,
            next_source_id: 1,
            pending_gpu_evictions: Vec::new(),
            gpu_ready,
            ctx: cc.egui_ctx.clone(),
        };
        if !gpu_ready {
            app.toasts
                .error("No GPU device is available to eframe (wgpu): slides cannot be drawn.");
        }
        if let Some(path) = options.slide {
            app.open_path(path);
        }
        app
    }

    /// Starts opening `path` in the background; the current slide stays until it succeeds.
    pub fn open_path(&mut self, path: PathBuf) {
        if let Some((_, job)) = self.opening.take() {
            job.cancel();
        }
        let ctx = self.ctx.clone();
        let job_path = path.clone();
        let label = format!("Opening {}", display_name(&path));
        match spawn_job(
            "slide-open",
            label,
            move || ctx.request_repaint(),
            move |_| open_slide(&job_path),
        ) {
            Ok(job) => self.opening = Some((path, job)),
            Err(error) => self
                .toasts
                .error(format!("Cannot start opening {}: {error}", path.display())),
        }
    }

    /// What is being opened, and for how long, while an open job runs.
    pub fn is_opening(&self) -> Option<(&str, std::time::Duration)> {
        self.opening
            .as_ref()
            .map(|(_, job)| (job.label.as_str(), job.elapsed()))
    }

    /// Shows the native file dialog on its own thread so frames keep coming.
    pub fn ask_for_slide(&mut self) {
        if self.file_dialog.is_some() {
            return;
        }
        let ctx = self.ctx.clone();
        let start_dir = self
            .recent
            .paths()
            .first()
            .and_then(|p| p.parent())
            .map(Path::to_path_buf);
        let job = spawn_job(
            "file-dialog",
            "Choosing a slide",
            move || ctx.request_repaint(),
            move |_| {
                let mut dialog = rfd::FileDialog::new()
                    .set_title("Open whole-slide image")
                    .add_filter(
                        "Whole-slide images",
                        &[
                            "svs", "tif", "tiff", "ndpi", "vms", "vmu", "scn", "mrxs", "svslide", "bif", "dcm",
                        ],
                    )
                    .add_filter("All files", &["*"]);
                if let Some(dir) = start_dir {
                    dialog = dialog.set_directory(dir);
                }
                dialog.pick_file()
            },
        );
        match job {
            Ok(job) => self.file_dialog = Some(job),
            Err(error) => self.toasts.error(format!("Cannot show the file dialog: {error}")),
        }
    }

    /// Applies finished background work. Called once per frame, before any UI.
    fn apply_finished_jobs(&mut self, ctx: &egui::Context) {
        if let Some(job) = &self.file_dialog {
            match job.poll() {
                JobStatus::Running => {}
                JobStatus::Done(choice) => {
                    self.file_dialog = None;
                    if let Some(path) = choice {
                        self.open_path(path);
                    }
                }
                JobStatus::Lost => {
                    self.file_dialog = None;
                    self.toasts.error("The file dialog closed unexpectedly.");
                }
            }
        }
        let Some((path, job)) = &self.opening else {
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
        let repaint_ctx = ctx.clone();
        let source_id = self.next_source_id;
        self.next_source_id += 1;
        let layer = match SlideLayer::new(
            opened.source,
            source_id,
            Arc::new(move || repaint_ctx.request_repaint()),
        ) {
            Ok(layer) => layer,
            Err(error) => {
                self.toasts.error(format!(
                    "Cannot start tile loading for {}: {error}",
                    opened.path.display()
                ));
                return;
            }
        };
        if let Some(old) = self.slide.take() {
            self.evict_gpu_tiles(old.layer.source_id);
        }
        if !layer.has_physical_scale {
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
        self.view.fit_requested = true;
    }

    /// The renderer lives in egui_wgpu's callback resources: evictions wait for the next frame.
    fn evict_gpu_tiles(&mut self, source_id: u64) {
        self.pending_gpu_evictions.push(source_id);
    }

    pub fn close_slide(&mut self) {
        if let Some(old) = self.slide.take() {
            self.evict_gpu_tiles(old.layer.source_id);
        }
        self.associated_window = None;
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
        if let Some(path) = dropped.into_iter().next() {
            self.open_path(path);
        }
    }

    fn flush_gpu_evictions(&mut self, frame: &eframe::Frame) {
        let pending = std::mem::take(&mut self.pending_gpu_evictions);
        if pending.is_empty() {
            return;
        }
        if let Some(render_state) = frame.wgpu_render_state()
            && let Some(renderer) = render_state
                .renderer
                .write()
                .callback_resources
                .get_mut::<TileRenderer>()
        {
            for source_id in pending {
                renderer.evict_source(source_id);
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
        self.apply_finished_jobs(&ctx);
        self.handle_dropped_files(&ctx);
        self.flush_gpu_evictions(frame);
        if let Some(slide) = &mut self.slide {
            slide.layer.receive_tiles();
        }

        crate::panels::top_bar_ui(ui, self);
        crate::panels::status_bar_ui(ui, self);
        if self.show_properties && self.slide.is_some() {
            egui::Panel::right("properties")
                .default_size(320.0)
                .show(ui, |ui| crate::panels::properties_ui(ui, self));
        }
        egui::CentralPanel::default()
            .frame(egui::Frame::NONE.fill(egui::Color32::from_gray(40)))
            .show(ui, |ui| {
                if self.slide.is_some() {
                    crate::viewer::viewer_ui(ui, self);
                } else {
                    crate::panels::start_screen_ui(ui, self);
                }
            });
        crate::panels::associated_window_ui(&ctx, self);
        crate::panels::drop_hint_ui(&ctx);
        self.toasts.show(&ctx);

        if self.opening.is_some() || self.file_dialog.is_some() {
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.recent.save(storage);
    }
}

/// eframe's wgpu paint callback for the slide layer.
pub struct TilePaintCallback {
    pub frame_id: cs_render::FrameId,
    pub list: cs_render::TileDrawList,
}

impl egui_wgpu::CallbackTrait for TilePaintCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen_descriptor: &egui_wgpu::ScreenDescriptor,
        _egui_encoder: &mut wgpu::CommandEncoder,
        callback_resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if let Some(renderer) = callback_resources.get_mut::<TileRenderer>() {
            renderer.prepare(device, queue, self.frame_id, &self.list);
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        callback_resources: &egui_wgpu::CallbackResources,
    ) {
        if let Some(renderer) = callback_resources.get::<TileRenderer>() {
            renderer.paint(render_pass, self.frame_id);
        }
    }
}
