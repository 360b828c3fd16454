//! The document: what is open and made in a session, the part a session file captures. The slide
//! (with what the split view compares it with: a slide, or another sample) and the Xenium cells
//! as layers, the alignment that places the slide, selections, annotations and bookmarks with
//! one undo order ([`history`]), and the results of analyses and models, each kept with the
//! inputs it was computed for. Changes come as [`Edit`]s ([`edit`]), applied once per frame by
//! the shell; nothing here starts work or draws.
//!
//! May import: `work` (result and key types), `io` (records, session file), `layers`, `util` and
//! the crates.

pub mod analysis;
pub mod annotations;
pub mod bookmarks;
pub mod cohort;
pub mod edit;
pub mod history;
pub mod models;
pub mod selections;
pub mod session;

use std::path::PathBuf;

use cs_xenium::Affine2;
use glam::{DAffine2, DVec2};

use crate::layers::cell_layer::CellLayer;
use crate::layers::morphology_layer::MorphologyLayer;
use crate::layers::slide_layer::SlideLayer;

pub use edit::Edit;

/// A slide image shown in the panels (overview, associated images) and its size in pixels.
pub type SlideTexture = (egui::TextureHandle, [usize; 2]);

/// One of a slide's associated images (label, macro), or why it could not be read.
pub struct AssociatedImage {
    pub name: String,
    pub image: Result<SlideTexture, String>,
}

/// The open slide: its file, its tile layer, and the pictures the panels show.
pub struct LoadedSlide {
    pub path: PathBuf,
    pub layer: SlideLayer,
    pub overview: Option<SlideTexture>,
    pub associated: Vec<AssociatedImage>,
}

/// A second slide to compare with the first in the split view (two sections, or H&E beside a
/// stain): placed by its own µm per pixel, drawn with the same camera, so pan and zoom stay linked
/// in micrometres.
pub struct CompareSlide {
    pub path: PathBuf,
    pub layer: SlideLayer,
}

/// What the split view shows beside the document: a second slide (File > Open slide to compare),
/// or another sample of the cohort, its slide placed by its own alignment and its cells, so two
/// samples are seen side by side at the same scale.
pub struct Comparison {
    /// The cohort sample shown (None: a slide opened on its own).
    pub sample: Option<String>,
    pub slide: Option<CompareSlide>,
    pub cells: Option<CellLayer>,
}

impl Comparison {
    /// A slide opened to compare, without cells.
    pub fn slide(slide: CompareSlide) -> Self {
        Self {
            sample: None,
            slide: Some(slide),
            cells: None,
        }
    }

    /// What the pane's switch is labelled with: the sample's id, else the slide's file name.
    pub fn name(&self) -> String {
        match (&self.sample, &self.slide) {
            (Some(id), _) => id.clone(),
            (None, Some(slide)) => crate::util::display_name(&slide.path),
            (None, None) => String::new(),
        }
    }
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

/// GPU resources of layers that closed, for the shell to free at the next frame (the renderers
/// live in egui_wgpu's callback resources).
#[derive(Debug, Default)]
pub struct Evictions {
    pub tile_sources: Vec<u64>,
    pub channel_sources: Vec<u64>,
    pub geometries: Vec<u64>,
}

impl Evictions {
    /// A closed cell layer's GPU geometry and its transcript tiles.
    fn cells(&mut self, mut layer: CellLayer) {
        self.geometries.push(layer.geometry.id);
        if let Some(t) = &mut layer.transcripts {
            self.geometries.extend(t.release_all());
        }
    }
}

/// What is open and made.
#[derive(Default)]
pub struct DocumentState {
    pub slide: Option<LoadedSlide>,
    pub cells: Option<CellLayer>,
    /// The bundle's morphology images (DAPI and the other stains), placed by its pixel size.
    pub morphology: Option<MorphologyLayer>,
    /// What the split view shows beside the open data (a slide, or another sample of the cohort).
    pub compare: Option<Comparison>,
    pub alignment: Option<SlideAlignment>,
    pub selections: selections::Selections,
    pub annotations: annotations::Annotations,
    pub bookmarks: bookmarks::Bookmarks,
    pub analysis: analysis::AnalysisResults,
    pub models: models::ModelResults,
    /// Layers closed since the shell last freed their GPU resources.
    pub evictions: Evictions,
    /// The open cohort, whose samples this document shows one at a time.
    pub cohort: Option<cohort::CohortState>,
}

impl DocumentState {
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

    /// Whether a slide or cells are open (else the start screen shows).
    pub fn has_data(&self) -> bool {
        self.slide.is_some() || self.cells.is_some()
    }

    /// Whether anything is open or made that a prompt about unsaved changes would be about.
    pub fn has_anything_open(&self) -> bool {
        self.has_data()
            || !self.selections.items.is_empty()
            || !self.annotations.items.is_empty()
            || !self.bookmarks.items.is_empty()
    }

    /// Whether lengths can be given in µm: cells are open, or the slide records its µm per pixel
    /// (or there is no slide).
    pub fn has_physical_scale(&self) -> bool {
        self.cells.is_some() || self.slide.as_ref().is_none_or(|s| s.layer.has_physical_scale)
    }

    /// The world box of everything open (slide and cells), for fitting the view.
    pub fn bounds_in_world(&self) -> Option<(DVec2, DVec2)> {
        let boxes = [
            self.slide.as_ref().map(|s| s.layer.bounds_in_world()),
            self.morphology.as_ref().map(|m| m.bounds_in_world()),
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

    /// World µm to the coordinates selections and annotations are exchanged in: the slide's
    /// level-0 pixels when a slide is open (QuPath works on the H&E), else µm.
    pub fn selection_file_from_world(&self) -> DAffine2 {
        self.slide
            .as_ref()
            .map_or(DAffine2::IDENTITY, |s| s.layer.world_from_slide.inverse())
    }

    /// Installs a new slide in place of the old one (whose tiles are freed) and places it.
    pub fn set_slide(&mut self, slide: LoadedSlide) {
        self.close_slide();
        self.slide = Some(slide);
        self.place_slide();
    }

    pub fn close_slide(&mut self) {
        if let Some(old) = self.slide.take() {
            self.evictions.tile_sources.push(old.layer.source_id);
        }
    }

    /// Installs new cells in place of the old ones: model results of the old bundle go, the
    /// selections (shapes in world µm) find their cells in the new one, the slide is placed by
    /// the new bundle's pixel size.
    pub fn set_cells(&mut self, layer: CellLayer) {
        self.close_cells();
        self.models = Default::default();
        self.selections.refresh_all(&layer.index, layer.len());
        self.cells = Some(layer);
        self.place_slide();
    }

    /// Shows a bundle's morphology images in place of any shown before.
    pub fn set_morphology(&mut self, layer: MorphologyLayer) {
        self.close_morphology();
        self.morphology = Some(layer);
    }

    pub fn close_morphology(&mut self) {
        if let Some(old) = self.morphology.take() {
            self.evictions.channel_sources.push(old.source_id);
        }
    }

    pub fn close_cells(&mut self) {
        self.close_morphology();
        if let Some(old) = self.cells.take() {
            self.evictions.cells(old);
        }
        self.place_slide();
    }

    pub fn set_compare(&mut self, compare: Comparison) {
        self.close_compare();
        self.compare = Some(compare);
    }

    pub fn close_compare(&mut self) {
        let Some(old) = self.compare.take() else { return };
        if let Some(slide) = old.slide {
            self.evictions.tile_sources.push(slide.layer.source_id);
        }
        if let Some(cells) = old.cells {
            self.evictions.cells(cells);
        }
    }

    /// Keeps the compared sample's cells coloured as the open ones are (column, class colours).
    pub fn sync_comparison_colouring(&mut self) {
        if let (Some(shown), Some(compared)) = (&self.cells, self.compare.as_mut().and_then(|c| c.cells.as_mut())) {
            compared.follow_colouring(shown);
        }
    }

    /// Dims the cells outside the active selection (when `dim_outside`) by restyling the cell
    /// layer; a no-op when nothing changed.
    pub fn sync_emphasis(&mut self, dim_outside: bool) {
        let Some(cells) = &mut self.cells else { return };
        let wanted = self
            .selections
            .active()
            .filter(|s| dim_outside && !s.steps.is_empty())
            .map(|s| &s.cells);
        cells.set_emphasis(wanted);
    }
}
