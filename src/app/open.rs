//! Opening data: slides (and the comparison slide), Xenium bundles, alignments, the demo tissue,
//! a gene's counts and the transcripts, each read by a job; what is open stays until the new data
//! has arrived. Also the file dialog, which blocks and so runs as a job too.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cs_slide::{SlideError, SlideSource};
use cs_xenium::{TranscriptIndex, XeniumError, read_alignment_csv, write_alignment_csv};

use crate::app::ViewerApp;
use crate::app::jobs::{JobKey, JobOutput};
use crate::document::{AssociatedImage, CompareSlide, Comparison, LoadedSlide, SlideAlignment, SlideTexture};
use crate::io::session_file::SESSION_EXTENSION;
use crate::layers::cell_layer::{CellLayer, LoadedBundle, gene_values};
use crate::layers::morphology_layer::{MorphologyLayer, OpenedMorphology};
use crate::layers::slide_layer::SlideLayer;
use crate::layers::transcript_layer::TranscriptLayer;
use crate::ui::dialogs::{DialogPurpose, show_file_dialog};
use crate::util::display_name;
use crate::work::cohort::attach_predictions;
use crate::work::demo::{DemoFiles, demo_dir, prepare_demo};
use crate::work::jobs::JobKind;
use crate::work::open::{
    OpenedSlide, load_bundle, open_morphology, open_slide, open_transcript_index, transcript_index_dir,
};

fn texture_from_image(ctx: &egui::Context, name: &str, image: &cs_slide::RgbaImage) -> SlideTexture {
    let size = [image.width as usize, image.height as usize];
    let color_image = egui::ColorImage::from_rgba_unmultiplied(size, &image.pixels);
    (ctx.load_texture(name, color_image, egui::TextureOptions::LINEAR), size)
}

impl ViewerApp {
    /// Starts a job, or says in a toast why it could not start.
    pub(super) fn spawn(
        &mut self,
        kind: JobKind,
        key: JobKey,
        label: impl Into<String>,
        work: impl FnOnce(&crate::work::jobs::JobContext) -> JobOutput + Send + 'static,
    ) {
        let label = label.into();
        if let Err(error) = self.jobs.spawn(kind, key, label.clone(), work) {
            self.runtime.toasts.error(format!("Cannot start “{label}”: {error}"));
        }
    }

    /// Opens whatever `path` is: a folder is a Xenium bundle or a SpatialData store (an OME-NGFF
    /// image folder a slide), a `.csv` an alignment, a `.cellsymphony` file a session, anything
    /// else a slide.
    pub(super) fn open_path(&mut self, path: PathBuf) {
        let extension_is = |ext: &str| path.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext));
        if extension_is(SESSION_EXTENSION) {
            self.open_session(&path);
        } else if path.is_dir() && !cs_slide::is_ngff_image(&path) {
            self.open_bundle(path);
        } else if extension_is("csv") {
            self.load_alignment(&path);
        } else {
            self.open_slide(path);
        }
    }

    /// Starts opening a slide; the current slide stays until it succeeds.
    pub(super) fn open_slide(&mut self, path: PathBuf) {
        self.start_slide_open(JobKind::OpenSlide, path, "");
    }

    /// Opens `path` as the slide to compare with, shown in the split view's right pane.
    pub(super) fn open_compare_slide(&mut self, path: PathBuf) {
        self.start_slide_open(JobKind::OpenCompareSlide, path, " to compare");
    }

    fn start_slide_open(&mut self, kind: JobKind, path: PathBuf, purpose: &str) {
        self.jobs.cancel_kind(kind);
        let label = format!("Opening {}{purpose}", display_name(&path));
        let job_path = path.clone();
        self.spawn(kind, JobKey::Path(path), label, move |_| {
            JobOutput::SlideOpened(open_slide(&job_path))
        });
    }

    /// A tile layer for a slide just opened, with the preferred RAM tile budget. None: tile
    /// loading could not start (a toast said why).
    pub(super) fn new_slide_layer(&mut self, source: Arc<dyn SlideSource>, path: &Path) -> Option<SlideLayer> {
        let source_id = self.take_source_id();
        let ctx = self.ctx.clone();
        match SlideLayer::new(source, source_id, Arc::new(move || ctx.request_repaint())) {
            Ok(mut layer) => {
                layer.set_ram_budget(self.runtime.preferences.tile_cache_bytes());
                Some(layer)
            }
            Err(error) => {
                self.runtime
                    .toasts
                    .error(format!("Cannot start tile loading for {}: {error}", path.display()));
                None
            }
        }
    }

    pub(super) fn slide_opened(&mut self, path: PathBuf, result: Result<OpenedSlide, SlideError>) {
        match result {
            Ok(opened) => self.install_slide(opened),
            Err(error) => {
                let keep = if self.document.slide.is_some() {
                    " The slide that was open stays open."
                } else {
                    ""
                };
                self.runtime.toasts.error(format!("{error}.{keep}"));
                if matches!(error, SlideError::NotFound { .. }) {
                    self.runtime.recent.remove(&path);
                }
            }
        }
    }

    fn install_slide(&mut self, opened: OpenedSlide) {
        let Some(layer) = self.new_slide_layer(opened.source.clone(), &opened.path) else {
            return;
        };
        if !layer.has_physical_scale && self.document.alignment.is_none() {
            self.runtime.toasts.note(format!(
                "{} records no microns per pixel: lengths are shown in pixels.",
                display_name(&opened.path)
            ));
        }
        let overview = opened
            .overview
            .as_ref()
            .map(|image| texture_from_image(&self.ctx, "slide-overview", image));
        let associated = opened
            .associated
            .into_iter()
            .map(|(name, image)| AssociatedImage {
                image: image
                    .map(|image| texture_from_image(&self.ctx, &format!("associated-{name}"), &image))
                    .map_err(|e| e.to_string()),
                name,
            })
            .collect();
        self.runtime.recent.add(&opened.path);
        self.runtime.ui.associated_window = None;
        self.document.set_slide(LoadedSlide {
            path: opened.path,
            layer,
            overview,
            associated,
        });
        self.runtime.viewer.fit_requested = true;
    }

    pub(super) fn compare_slide_opened(&mut self, path: PathBuf, result: Result<OpenedSlide, SlideError>) {
        let opened = match result {
            Ok(opened) => opened,
            Err(error) => {
                self.runtime
                    .toasts
                    .error(format!("{error}. The slides that were open stay open."));
                return;
            }
        };
        let Some(layer) = self.new_slide_layer(opened.source, &path) else {
            return;
        };
        self.close_compare_slide();
        self.document
            .set_compare(Comparison::slide(CompareSlide { path, layer }));
        // The right pane shows the other sample: its slide, without this sample's cells on it.
        let split = self.runtime.viewer.split.get_or_insert_with(Default::default);
        split.right.compare = true;
        split.right.cells = false;
    }

    pub(super) fn close_compare_slide(&mut self) {
        self.document.close_compare();
        if let Some(split) = &mut self.runtime.viewer.split {
            split.left.compare = false;
            split.right.compare = false;
        }
    }

    pub(super) fn close_slide(&mut self) {
        self.document.close_slide();
        self.runtime.ui.associated_window = None;
    }

    pub(super) fn close_cells(&mut self) {
        self.document.close_cells();
        self.runtime.viewer.forget_cells();
    }

    /// Starts reading a Xenium bundle; the cells shown stay until it succeeds.
    pub(super) fn open_bundle(&mut self, dir: PathBuf) {
        self.jobs.cancel_kind(JobKind::OpenBundle);
        let geometry_id = self.take_source_id();
        let job_dir = dir.clone();
        let what = if cs_spatialdata::is_spatialdata(&dir) {
            "SpatialData store"
        } else {
            "Xenium bundle"
        };
        let label = format!("Reading {what} {}", display_name(&dir));
        // A cohort sample's predictions (`cohort run` or the Cohort tab's *Apply*) come with it.
        let predictions = self.cohort_predictions_for(&dir);
        self.spawn(JobKind::OpenBundle, JobKey::Path(dir), label, move |cx| {
            let mut result = load_bundle(&job_dir, geometry_id, &cx.cancel);
            if let (Ok(Some(loaded)), Some(path)) = (&mut result, predictions)
                && let Err(e) = attach_predictions(&mut loaded.bundle, &path)
            {
                loaded.bundle.warnings.push(cs_xenium::LoadWarning {
                    file: Some(path),
                    message: format!("the sample's predictions are not shown: {e:#}"),
                });
            }
            JobOutput::BundleRead(result)
        });
    }

    pub(super) fn bundle_read(&mut self, dir: PathBuf, result: anyhow::Result<Option<LoadedBundle>>) {
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
                    self.runtime.toasts.note(noteworthy.join("\n"));
                }
                let cells = loaded.bundle.cells.len();
                // Reads for the old cells are of no use to the new ones.
                self.jobs.cancel_kind(JobKind::GeneValues);
                self.jobs.cancel_kind(JobKind::Transcripts);
                self.runtime.viewer.forget_cells();
                self.runtime.recent.add(&dir);
                let morphology_files = loaded.bundle.files.morphology.clone();
                let pixel_size_um = loaded.bundle.pixel_size_um();
                let slide = loaded.slide.clone();
                self.document.set_cells(CellLayer::new(dir.clone(), loaded));
                self.start_morphology_open(dir.clone(), morphology_files, pixel_size_um);
                // A restored session brings its own slide and alignment.
                let restoring = self.runtime.session.is_restoring();
                if let Some(slide) = slide.filter(|_| !restoring) {
                    // A SpatialData H&E: placed by its transformation, as an alignment would.
                    self.document.apply(crate::document::Edit::SetAlignment(SlideAlignment {
                        path: Some(slide.path.clone()),
                        xenium_px_from_slide_px: slide.world_from_slide_px.scaled(1.0 / pixel_size_um),
                        rms_residual_um: None,
                    }));
                    self.open_slide(slide.path);
                }
                self.runtime.viewer.fit_requested = true;
                log::info!("{}: {cells} cells", dir.display());
            }
            Ok(None) => {}
            Err(error) => {
                let keep = if self.document.cells.is_some() {
                    " The cells that were open stay open."
                } else {
                    ""
                };
                self.runtime.toasts.error(format!("{error:#}.{keep}"));
            }
        }
    }

    /// Opens the bundle's morphology images in the background (nothing when it has none).
    fn start_morphology_open(&mut self, dir: PathBuf, files: Vec<cs_xenium::MorphologyFile>, pixel_size_um: f64) {
        self.jobs.cancel_kind(JobKind::OpenMorphology);
        if files.is_empty() {
            // A restored session's stain display has nothing to apply to.
            self.runtime.session.pending_morphology = None;
            return;
        }
        let label = format!("Opening the morphology images of {}", display_name(&dir));
        self.spawn(JobKind::OpenMorphology, JobKey::Path(dir), label, move |cx| {
            JobOutput::MorphologyOpened(open_morphology(&files, pixel_size_um, &cx.cancel))
        });
    }

    pub(super) fn morphology_opened(&mut self, dir: &Path, result: Result<Option<OpenedMorphology>, SlideError>) {
        // Only for the bundle still open.
        if self.document.cells.as_ref().is_none_or(|c| c.dir != dir) {
            return;
        }
        match result {
            Ok(Some(opened)) => {
                if !opened.warnings.is_empty() {
                    self.runtime.toasts.note(opened.warnings.join("\n"));
                }
                let source_id = self.take_source_id();
                let ctx = self.ctx.clone();
                match MorphologyLayer::new(opened, source_id, Arc::new(move || ctx.request_repaint())) {
                    Ok(mut layer) => {
                        // Over an open (or opening) H&E the stains start hidden (the layers panel
                        // and the split view show them); alone they are what there is to see.
                        let store_has_he = self
                            .document
                            .alignment
                            .as_ref()
                            .and_then(|a| a.path.as_ref())
                            .is_some_and(|p| p.starts_with(dir));
                        layer.visible = self.document.slide.is_none() && !store_has_he;
                        let pending = self.runtime.session.pending_morphology.take();
                        self.document.set_morphology(layer);
                        if let Some(saved) = pending {
                            self.document.restore_morphology_display(&saved);
                        }
                    }
                    Err(error) => self
                        .runtime
                        .toasts
                        .error(format!("Cannot start loading the morphology tiles: {error}")),
                }
            }
            Ok(None) => {}
            Err(error) => self.runtime.toasts.error(format!(
                "The morphology images cannot be shown: {error}. The cells stay open."
            )),
        }
    }

    /// Reads a Xenium Explorer alignment CSV and places the slide with it.
    pub(super) fn load_alignment(&mut self, path: &Path) {
        match read_alignment_csv(path) {
            Ok(affine) => {
                self.document.apply(crate::document::Edit::SetAlignment(SlideAlignment {
                    path: Some(path.to_path_buf()),
                    xenium_px_from_slide_px: affine,
                    rms_residual_um: None,
                }));
                self.runtime
                    .toasts
                    .note(format!("Slide placed with the alignment in {}", display_name(path)));
            }
            Err(error) => self
                .runtime
                .toasts
                .error(format!("{error}. The slide keeps its current placement.")),
        }
    }

    /// Saves the current alignment in Xenium Explorer's CSV layout.
    pub(super) fn save_alignment(&mut self, path: &Path) {
        let Some(alignment) = &mut self.document.alignment else {
            self.runtime.toasts.error("There is no alignment to save.");
            return;
        };
        match write_alignment_csv(path, &alignment.xenium_px_from_slide_px) {
            Ok(()) => {
                alignment.path = Some(path.to_path_buf());
                self.runtime
                    .toasts
                    .note(format!("Alignment saved to {}", path.display()));
            }
            Err(error) => self.runtime.toasts.error(error.to_string()),
        }
    }

    /// Generates the synthetic demo tissue once (cached) and opens it.
    pub(super) fn open_demo(&mut self, difficulty: cs_synth::Difficulty) {
        if self.jobs.is_running(JobKind::Demo) {
            return;
        }
        let label = match difficulty {
            cs_synth::Difficulty::Standard => "Preparing the demo tissue",
            cs_synth::Difficulty::Hard => "Preparing the hard demo tissue",
        };
        self.spawn(JobKind::Demo, JobKey::None, label, move |cx| {
            let report = |fraction: f32, stage: &str| cx.report(stage, fraction);
            JobOutput::Demo(prepare_demo(&demo_dir(difficulty), difficulty, &report, &|| {
                cx.is_cancelled()
            }))
        });
    }

    pub(super) fn demo_prepared(&mut self, result: anyhow::Result<DemoFiles>) {
        match result {
            Ok(files) => {
                self.open_bundle(files.bundle_dir);
                if let Some(slide) = files.slide {
                    self.open_slide(slide);
                }
                if let Some(alignment) = files.alignment {
                    self.load_alignment(&alignment);
                }
            }
            Err(error) => self
                .runtime
                .toasts
                .error(format!("The demo tissue could not be prepared: {error:#}")),
        }
    }

    /// Colours cells by one gene: its counts are gathered off the UI thread.
    pub(super) fn colour_by_gene(&mut self, feature: u32) {
        let Some(cells) = &self.document.cells else { return };
        let bundle = cells.bundle.clone();
        let label = format!("Gathering {} counts", cells.feature_name(feature));
        self.jobs.cancel_kind(JobKind::GeneValues);
        self.spawn(JobKind::GeneValues, JobKey::Feature(feature), label, move |_| {
            JobOutput::GeneValues(gene_values(&bundle, feature))
        });
    }

    pub(super) fn gene_values_read(&mut self, feature: u32, values: Vec<f64>) {
        if let Some(cells) = &mut self.document.cells
            && values.len() == cells.len()
        {
            cells.set_gene_values(feature, values);
        }
    }

    /// Loads the bundle's transcripts (qv >= 20) in the background and shows them.
    pub(super) fn load_transcripts(&mut self) {
        let Some(cells) = &self.document.cells else { return };
        if self.jobs.is_running(JobKind::Transcripts) {
            return;
        }
        let bundle = cells.bundle.clone();
        let cache_dir = transcript_index_dir();
        self.spawn(JobKind::Transcripts, JobKey::None, "Reading transcripts", move |cx| {
            JobOutput::Transcripts(open_transcript_index(&bundle, &cache_dir, cx))
        });
    }

    pub(super) fn transcripts_read(&mut self, result: Result<Option<Arc<TranscriptIndex>>, XeniumError>) {
        match result {
            Ok(Some(index)) => {
                let id_base = self.take_source_id();
                let ctx = self.ctx.clone();
                let notify: Arc<dyn Fn() + Send + Sync> = Arc::new(move || ctx.request_repaint());
                match TranscriptLayer::new(index, id_base, notify) {
                    Ok(layer) => {
                        if let Some(cells) = &mut self.document.cells
                            && let Some(mut old) = cells.transcripts.replace(layer)
                        {
                            self.document.evictions.geometries.extend(old.release_all());
                        }
                    }
                    Err(error) => self
                        .runtime
                        .toasts
                        .error(format!("cannot start the transcript reading threads: {error}")),
                }
            }
            Ok(None) => {
                if let Some(cells) = &self.document.cells
                    && cells.bundle.files.transcripts.is_none()
                {
                    self.runtime.toasts.note("This bundle has no transcripts file.");
                }
            }
            Err(error) => self.runtime.toasts.error(error.to_string()),
        }
    }

    /// Shows a native file dialog on its own thread so frames keep coming (one at a time).
    pub(super) fn ask_for_file(&mut self, purpose: DialogPurpose) {
        if self.jobs.is_running(JobKind::FileDialog) {
            return;
        }
        let start_dir = self
            .runtime
            .recent
            .paths()
            .first()
            .and_then(|p| p.parent())
            .map(Path::to_path_buf);
        let dialog_purpose = purpose.clone();
        self.spawn(
            JobKind::FileDialog,
            JobKey::Dialog(purpose),
            "Choosing a file",
            move |_| JobOutput::FileChosen(show_file_dialog(&dialog_purpose, start_dir)),
        );
    }

    /// Opens the files dropped on the window.
    pub(super) fn handle_dropped_files(&mut self) {
        let dropped: Vec<PathBuf> = self.ctx.input(|i| {
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
}
