//! The transcript layer: a run's transcripts drawn from its on-disk tiled index
//! ([`cs_xenium::transcript_index`]), never all in memory.
//!
//! Each frame the layer counts, from the index's directory, how many transcripts of the shown genes
//! the view holds. Up to [`POINT_BUDGET`] (zoomed out, while they stay one per 20 pixels or
//! fewer) it draws points: the tiles in view are read on named
//! loader threads (only the shown genes, at the quality threshold), each tile becoming one GPU
//! point set that stays resident while it is drawn. Above that (zoomed out) it draws a density
//! image of the shown genes over the whole tissue: one colour channel per gene for up to four
//! genes, else one for all of them. Where that image's bins would be several pixels wide, a finer
//! density of the tiles around the view (bins about two pixels, a power of two of µm) replaces
//! it once read, so zooming from the whole tissue to the points never shows blocks. Changing
//! genes, colours' visibility or the qv threshold starts a new generation; tiles and densities
//! of older generations are no longer drawn.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use cs_render::{
    CellGeometry, CellStyles, ChannelDisplay, ChannelDrawList, ChannelQuad, ChannelTile, ChannelTileKey,
    PointLayerDraw, PointPart, PointRaster,
};
use cs_slide::{Gray16Image, SlideError, TileLoader, TileReader};
use cs_xenium::{FeatureCategory, TileRange, TranscriptIndex};
use egui::Color32;
use glam::{DAffine2, DVec2};

use crate::layers::camera::{Camera, Viewport, clip_from_screen};
use crate::layers::cell_layer::view_box_in_world;
use crate::layers::palettes::{class_colour, to_rgba_f32};

/// Above this many transcripts in view the layer draws densities instead of points.
pub const POINT_BUDGET: u64 = 1_500_000;
/// Above this many transcripts per pixel of the view the layer draws densities.
const POINTS_PER_PIXEL: f64 = 0.05;
/// Density images have at most this many bins a side.
pub const DENSITY_BINS: u32 = 1024;
/// A finer density replaces the whole-tissue one where that one's bins are this many pixels wide.
const DETAIL_FROM_BIN_PX: f64 = 4.0;
/// The finer density's bins aim at this many pixels.
const DETAIL_BIN_PX: f64 = 2.0;
/// The finer density reads at most this many transcripts of the shown genes.
const DETAIL_BUDGET: u64 = 12_000_000;
/// Genes drawn as separate density colours; more are summed into one channel.
const DENSITY_COLOUR_GENES: usize = 4;
/// Tile point sets kept (on the GPU too) beyond those in view.
const RESIDENT_TILES: usize = 192;
const LOADER_THREADS: usize = 2;
/// The colour of a summed density (several genes).
const SUMMED_DENSITY_COLOUR: Color32 = Color32::from_rgb(255, 214, 90);

/// What the loader threads are asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TranscriptRequest {
    Tile {
        tile: u32,
        generation: u64,
    },
    Density {
        generation: u64,
    },
    /// A finer density of a block of tiles, in bins of 2^`bin_log2` µm.
    DensityDetail {
        generation: u64,
        range: TileRange,
        bin_log2: i8,
    },
}

/// What they return.
pub enum TranscriptPiece {
    Tile {
        points: Box<CellGeometry>,
        styles: CellStyles,
    },
    Density(Density),
}

/// A density image: one normalised grey image per channel, placed over the index's bounds.
pub struct Density {
    pub min_um: [f64; 2],
    pub size_um: [f64; 2],
    pub channels: Vec<(Arc<Gray16Image>, Color32)>,
}

/// What a generation shows; read by the loader threads.
/// Tiles depend on the genes and the threshold (`generation`); the density also on the colours
/// (`density_generation`).
#[derive(Clone, Default)]
struct Filter {
    generation: u64,
    density_generation: u64,
    shown: Arc<Vec<bool>>,
    min_qv: u8,
    /// Genes summed into each density channel, with the channel's colour.
    density_channels: Vec<(Vec<u32>, Color32)>,
    /// Set when a newer density generation supersedes this one (a density being computed stops).
    density_cancel: Arc<AtomicBool>,
    /// Set when the view wants another finer density (the one being computed stops).
    detail_cancel: Arc<AtomicBool>,
    /// Bins a side of the whole-tissue density ([`DENSITY_BINS`]).
    density_bins: u32,
}

struct ResidentTile {
    generation: u64,
    points: Arc<CellGeometry>,
    styles: Arc<CellStyles>,
    last_used: u64,
}

pub struct TranscriptLayer {
    pub index: Arc<TranscriptIndex>,
    pub gene_colours: Vec<Color32>,
    pub gene_visible: Vec<bool>,
    /// Transcripts per gene at the current qv threshold (for the gene list).
    pub gene_counts: Vec<u64>,
    /// Transcripts with a lower whole Phred quality are not shown.
    pub min_qv: u8,
    pub visible: bool,
    pub opacity: f32,
    pub radius_px: f32,
    filter: Arc<Mutex<Filter>>,
    /// What the current generations were made from: genes and threshold, and the colours.
    signature: Option<(u64, u64)>,
    /// Tiles that failed to read in the current generation (not asked for again).
    failed: std::collections::HashSet<u32>,
    /// Per tile, transcripts of the shown genes (all qualities): what a view would draw.
    tile_shown_counts: Vec<u64>,
    loader: TileLoader<TranscriptRequest, TranscriptPiece>,
    tiles: HashMap<u32, ResidentTile>,
    density: Option<(u64, Arc<Density>)>,
    density_id: u64,
    /// The finer density around the view: what it was asked as, a serial (its GPU key), the image.
    detail: Option<(TranscriptRequest, u32, Arc<Density>)>,
    detail_serial: u32,
    /// The finer density the view wants (or is being read), and one that failed.
    detail_wanted: Option<TranscriptRequest>,
    detail_failed: Option<TranscriptRequest>,
    frame_count: u64,
    /// Pieces the last frame asked for and did not have.
    waiting: usize,
    /// The density generation whose image failed (not asked for again).
    density_failed: Option<u64>,
    /// GPU point sets no longer needed (the app passes them to the renderer's eviction).
    pub evicted: Vec<u64>,
    /// The last load error, shown once.
    pub error: Option<String>,
    /// The last cell asked for by [`Self::cell_gene_counts`] (the inspector asks every frame).
    cell_cache: Mutex<Option<(u32, u64, CellTranscripts)>>,
}

/// A cell's transcripts per gene, most first.
pub type CellTranscripts = Result<Vec<(String, u32)>, String>;

impl TranscriptLayer {
    /// Starts the loader threads over an opened index. `id_base` gives this layer's GPU ids a
    /// range of their own; `notify` asks for a repaint when a piece arrives.
    pub fn new(
        index: Arc<TranscriptIndex>,
        id_base: u64,
        notify: Arc<dyn Fn() + Send + Sync>,
    ) -> std::io::Result<Self> {
        let filter = Arc::new(Mutex::new(Filter {
            density_bins: DENSITY_BINS,
            ..Filter::default()
        }));
        let next_id = Arc::new(AtomicU64::new((id_base << 32) | 1));
        let read: TileReader<TranscriptRequest, TranscriptPiece> = {
            let (index, filter) = (index.clone(), filter.clone());
            Arc::new(move |request| read_piece(&index, &filter, &next_id, request))
        };
        let loader = TileLoader::with_reader(read, "transcript-tiles", LOADER_THREADS, notify)?;
        let genes = index.genes.len();
        let mut layer = Self {
            gene_colours: (0..genes).map(class_colour).collect(),
            // Controls (negative probes and codewords, unassigned codewords) start hidden.
            gene_visible: index.categories.iter().map(|c| !c.is_control()).collect(),
            gene_counts: Vec::new(),
            min_qv: cs_xenium::DEFAULT_MIN_QV as u8,
            visible: true,
            opacity: 1.0,
            radius_px: 2.0,
            filter,
            signature: None,
            failed: std::collections::HashSet::new(),
            tile_shown_counts: Vec::new(),
            loader,
            tiles: HashMap::new(),
            density: None,
            density_id: id_base << 32,
            detail: None,
            detail_serial: 0,
            detail_wanted: None,
            detail_failed: None,
            frame_count: 0,
            waiting: 0,
            density_failed: None,
            evicted: Vec::new(),
            error: None,
            cell_cache: Mutex::new(None),
            index,
        };
        layer.refresh_filter();
        Ok(layer)
    }

    /// Transcripts at the current threshold, all genes.
    pub fn len(&self) -> u64 {
        self.gene_counts.iter().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn categories(&self) -> &[FeatureCategory] {
        &self.index.categories
    }

    /// Shows or hides every feature whose category passes `which`.
    pub fn set_visible_where(&mut self, visible: bool, which: impl Fn(FeatureCategory) -> bool) {
        for (shown, category) in self.gene_visible.iter_mut().zip(&self.index.categories) {
            if which(*category) {
                *shown = visible;
            }
        }
    }

    /// Transcripts of control features (0 when the run has none).
    pub fn control_count(&self) -> u64 {
        self.gene_counts
            .iter()
            .zip(&self.index.categories)
            .filter(|(_, c)| c.is_control())
            .map(|(n, _)| n)
            .sum()
    }

    /// Transcripts of the shown genes (at the threshold).
    pub fn shown_count(&self) -> u64 {
        self.gene_counts
            .iter()
            .zip(&self.gene_visible)
            .filter(|(_, v)| **v)
            .map(|(n, _)| n)
            .sum()
    }

    /// Hashes of what tiles depend on (genes shown, threshold) and of the shown genes' colours
    /// (which only the density bakes in; points take theirs from the palette).
    fn current_signature(&self) -> (u64, u64) {
        let mut tiles = std::collections::hash_map::DefaultHasher::new();
        self.gene_visible.hash(&mut tiles);
        self.min_qv.hash(&mut tiles);
        let mut colours = std::collections::hash_map::DefaultHasher::new();
        for (c, v) in self.gene_colours.iter().zip(&self.gene_visible) {
            if *v {
                c.to_array().hash(&mut colours);
            }
        }
        (tiles.finish(), colours.finish())
    }

    /// Starts a new generation when the shown genes or the threshold changed, and a new density
    /// generation when they or the shown genes' colours did.
    fn refresh_filter(&mut self) {
        let signature = self.current_signature();
        if self.signature == Some(signature) {
            return;
        }
        let new_tiles = self.signature.is_none_or(|(tiles, _)| tiles != signature.0);
        self.signature = Some(signature);
        if new_tiles {
            self.refresh_counts();
        }
        let shown_genes: Vec<u32> = (0..self.gene_visible.len() as u32)
            .filter(|&g| self.gene_visible[g as usize])
            .collect();
        let density_channels = if shown_genes.len() <= DENSITY_COLOUR_GENES {
            shown_genes
                .iter()
                .map(|&g| (vec![g], self.gene_colours[g as usize]))
                .collect()
        } else {
            vec![(shown_genes, SUMMED_DENSITY_COLOUR)]
        };
        let mut filter = self.filter.lock().unwrap_or_else(PoisonError::into_inner);
        if new_tiles {
            filter.generation += 1;
            filter.shown = Arc::new(self.gene_visible.clone());
            filter.min_qv = self.min_qv;
            self.failed.clear();
        }
        filter.density_cancel.store(true, Ordering::Relaxed);
        filter.density_cancel = Arc::new(AtomicBool::new(false));
        filter.density_generation += 1;
        filter.density_channels = density_channels;
    }

    /// Counts per gene at the threshold, and per tile of the shown genes.
    fn refresh_counts(&mut self) {
        self.gene_counts = self.index.gene_counts(self.min_qv);
        self.tile_shown_counts = (0..self.index.tile_count() as u32)
            .map(|t| {
                self.index
                    .tile_gene_counts(t)
                    .iter()
                    .filter(|(g, _)| self.gene_visible.get(*g as usize).copied().unwrap_or(false))
                    .map(|(_, n)| u64::from(*n))
                    .sum()
            })
            .collect();
    }

    fn generation(&self) -> u64 {
        self.filter.lock().unwrap_or_else(PoisonError::into_inner).generation
    }

    fn density_generation(&self) -> u64 {
        self.filter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .density_generation
    }

    /// Takes in what the loader threads finished (once per frame, on the UI thread).
    pub fn receive(&mut self) -> usize {
        let loaded = self.loader.drain();
        let n = loaded.len();
        let (current, current_density) = (self.generation(), self.density_generation());
        for piece in loaded {
            match (piece.key, piece.result) {
                // Pieces of an older generation arrive late: a newer one may already be here.
                (TranscriptRequest::Tile { generation, .. }, _) if generation != current => {}
                (TranscriptRequest::Density { generation }, _) if generation != current_density => {}
                (TranscriptRequest::DensityDetail { generation, .. }, _) if generation != current_density => {}
                (key @ TranscriptRequest::DensityDetail { .. }, Ok(piece)) => {
                    if let Ok(TranscriptPiece::Density(density)) = Arc::try_unwrap(piece) {
                        self.detail_serial = self.detail_serial.wrapping_add(1);
                        self.detail = Some((key, self.detail_serial, Arc::new(density)));
                    }
                }
                // Stopped because the view moved on: asked again if it comes back.
                (key @ TranscriptRequest::DensityDetail { .. }, Err(_)) if self.detail_wanted != Some(key) => {}
                (key @ TranscriptRequest::DensityDetail { .. }, Err(error)) => {
                    self.error = Some(error.to_string());
                    self.detail_failed = Some(key);
                }
                (TranscriptRequest::Tile { tile, generation }, Ok(piece)) => {
                    let Ok(piece) = Arc::try_unwrap(piece) else { continue };
                    if let TranscriptPiece::Tile { points, styles, .. } = piece {
                        let resident = ResidentTile {
                            generation,
                            points: Arc::from(points),
                            styles: Arc::new(styles),
                            last_used: self.frame_count,
                        };
                        if let Some(old) = self.tiles.insert(tile, resident) {
                            self.evicted.push(old.points.id);
                        }
                    }
                }
                (TranscriptRequest::Density { generation }, Ok(piece)) => {
                    if let Ok(TranscriptPiece::Density(density)) = Arc::try_unwrap(piece) {
                        self.density = Some((generation, Arc::new(density)));
                    }
                }
                (TranscriptRequest::Tile { tile, .. }, Err(error)) => {
                    // Shown once; the tile is not asked for again in this generation.
                    if self.failed.insert(tile) && self.failed.len() == 1 {
                        self.error = Some(error.to_string());
                    }
                }
                (TranscriptRequest::Density { .. }, Err(error)) => {
                    self.error = Some(error.to_string());
                    self.density_failed = Some(current_density);
                }
            }
        }
        n
    }

    /// Tiles and density this frame: points for the tiles in view (when they are few enough),
    /// else the density image; what is missing is asked of the loader threads.
    pub fn frame(&mut self, camera: &Camera, viewport: &Viewport) -> (Option<PointLayerDraw>, Option<ChannelDrawList>) {
        self.frame_count += 1;
        self.refresh_filter();
        if !self.visible {
            self.loader.set_wanted(&[]);
            self.waiting = 0;
            return (None, None);
        }
        let generation = self.generation();
        let density_generation = self.density_generation();
        let screen_from_world = camera.screen_from_world(viewport);
        let clip_from_world = clip_from_screen(viewport) * screen_from_world;
        let (min, max) = view_box_in_world(&screen_from_world.inverse(), viewport);
        // The tiles in view that hold shown transcripts.
        let mut in_view = self.index.tiles_in(min.to_array(), max.to_array());
        in_view.retain(|&t| self.shown_in_tile(t) > 0);
        let shown_in_view: u64 = in_view.iter().map(|&t| self.shown_in_tile(t)).sum();
        // Points while they are few enough to draw; zoomed out (coarser than 1 µm a pixel) only
        // while they stay apart, since past one per 20 pixels they merge into a blur that the
        // density shows better.
        let size_px = viewport.size_in_points * viewport.pixels_per_point;
        let um_per_px = 1.0 / (camera.points_per_um * viewport.pixels_per_point).max(1e-12);
        let legible = (size_px.x * size_px.y * POINTS_PER_PIXEL) as u64;
        let use_points = shown_in_view <= POINT_BUDGET
            && in_view.len() <= RESIDENT_TILES
            && (um_per_px <= 1.0 || shown_in_view <= legible);
        let mut wanted = Vec::new();
        let mut parts = Vec::new();
        if use_points {
            // Nearest the centre first.
            let centre = (min + max) * 0.5;
            in_view.sort_by(|&a, &b| {
                let d = |t: u32| {
                    let (lo, hi) = self.index.tile_rect(t);
                    (DVec2::from(lo) + DVec2::from(hi)) * 0.5 - centre
                };
                d(a).length_squared().total_cmp(&d(b).length_squared())
            });
            let (lo, hi) = ([min.x as f32, min.y as f32], [max.x as f32, max.y as f32]);
            for &tile in &in_view {
                match self.tiles.get_mut(&tile) {
                    Some(resident) if resident.generation == generation => {
                        resident.last_used = self.frame_count;
                        let visible = resident.points.visible_ranges(lo, hi);
                        let (lo_um, hi_um) = self.index.tile_rect(tile);
                        parts.push(PointPart {
                            bounds_um: [[lo_um[0] as f32, lo_um[1] as f32], [hi_um[0] as f32, hi_um[1] as f32]],
                            points: resident.points.clone(),
                            styles: resident.styles.clone(),
                            visible,
                        });
                    }
                    _ if self.failed.contains(&tile) => {}
                    _ => wanted.push(TranscriptRequest::Tile { tile, generation }),
                }
            }
        }
        // The density when zoomed out, and as a stand-in while tiles load.
        let density_current = self.density.as_ref().is_some_and(|(g, _)| *g == density_generation);
        if !use_points && !density_current && self.density_failed != Some(density_generation) {
            wanted.push(TranscriptRequest::Density {
                generation: density_generation,
            });
        }
        // Where the whole-tissue bins are several pixels wide, a finer density around the view.
        let detail = if use_points {
            None
        } else {
            self.detail_for_view(min, max, um_per_px, density_generation)
        };
        if let Some(request) = detail.filter(|r| !self.detail_ready(detail) && self.detail_failed != Some(*r)) {
            wanted.push(request);
        }
        if detail != self.detail_wanted {
            // The view wants another one: a read of the old one stops.
            let mut filter = self.filter.lock().unwrap_or_else(PoisonError::into_inner);
            filter.detail_cancel.store(true, Ordering::Relaxed);
            filter.detail_cancel = Arc::new(AtomicBool::new(false));
            self.detail_wanted = detail;
        }
        self.loader.set_wanted(&wanted);
        self.waiting = wanted.len();
        self.evict_unused();

        // Zoomed in, each tile is drawn once into a texture (texels the power of two of µm nearest
        // a pixel, so markers stay within 0.71-1.41 of their size) and panning moves quads.
        let raster = (um_per_px <= 1.0).then(|| PointRaster {
            um_per_texel: 2f64.powf(um_per_px.log2().round()) as f32,
        });
        let points = (!parts.is_empty()).then(|| PointLayerDraw {
            parts,
            raster,
            palette: self.palette(),
            radius_px: self.radius_px,
            opacity: self.opacity,
        });
        let show_density = !use_points || !wanted.is_empty();
        // The finer density once read (or the last one, while it still covers the view at this
        // generation), else the whole-tissue one.
        let detail_shown = self.detail.as_ref().filter(|(key, _, d)| {
            !use_points
                && detail.is_some()
                && matches!(key, TranscriptRequest::DensityDetail { generation, .. } if *generation == density_generation)
                && self.density_covers(d, min, max)
        });
        let density = match detail_shown {
            Some((_, serial, d)) => Some(self.density_list(self.density_id + 1, *serial, d, &clip_from_world)),
            None => self
                .density
                .as_ref()
                .filter(|(g, _)| show_density && (*g == density_generation || !use_points))
                .map(|(g, d)| self.density_list(self.density_id, *g as u32, d, &clip_from_world)),
        };
        (points, density)
    }

    /// The finer density the view at `um_per_px` wants: None while the whole-tissue bins are
    /// fine enough, or when the tiles around the view hold too many shown transcripts. The
    /// current one is kept while it covers the view at the same bin size.
    fn detail_for_view(&self, min: DVec2, max: DVec2, um_per_px: f64, generation: u64) -> Option<TranscriptRequest> {
        let index = &self.index;
        let bins = self.filter.lock().unwrap_or_else(PoisonError::into_inner).density_bins;
        let coarse_bin_um = index.tile_um * f64::from(index.cols.max(index.rows)) / f64::from(bins.max(1));
        if coarse_bin_um < DETAIL_FROM_BIN_PX * um_per_px {
            return None;
        }
        let bin_log2 = (DETAIL_BIN_PX * um_per_px).log2().round().clamp(-8.0, 16.0) as i8;
        if let Some((
            key @ TranscriptRequest::DensityDetail {
                generation: g,
                bin_log2: b,
                ..
            },
            _,
            d,
        )) = &self.detail
            && *g == generation
            && *b == bin_log2
            && self.density_covers(d, min, max)
        {
            return Some(*key);
        }
        if let Some(TranscriptRequest::DensityDetail {
            generation: g,
            bin_log2: b,
            range,
        }) = self.detail_wanted
            && g == generation
            && b == bin_log2
            && self.range_covers(range, min, max)
        {
            return self.detail_wanted;
        }
        // Half a view of margin on each side (so small pans need nothing new), less if that
        // holds too much.
        let size = max - min;
        [0.5, 0.0].into_iter().find_map(|margin| {
            let range = index.tile_range((min - size * margin).to_array(), (max + size * margin).to_array())?;
            let shown: u64 = range.tiles(index.cols, index.rows).map(|t| self.shown_in_tile(t)).sum();
            (shown <= DETAIL_BUDGET).then_some(TranscriptRequest::DensityDetail {
                generation,
                range,
                bin_log2,
            })
        })
    }

    /// Whether the density's rectangle covers the view `min`..`max` where it meets the index.
    fn density_covers(&self, density: &Density, min: DVec2, max: DVec2) -> bool {
        let index = &self.index;
        let index_min = DVec2::from(index.min_um);
        let index_max = index_min + DVec2::new(f64::from(index.cols), f64::from(index.rows)) * index.tile_um;
        let (lo, hi) = (min.max(index_min), max.min(index_max));
        let d_min = DVec2::from(density.min_um);
        let d_max = d_min + DVec2::from(density.size_um);
        // A little slack for rounding at the index's edges.
        let slack = 1e-6 * (index_max - index_min).max_element();
        lo.x >= d_min.x - slack && lo.y >= d_min.y - slack && hi.x <= d_max.x + slack && hi.y <= d_max.y + slack
    }

    /// Whether the finer density `wanted` is the one at hand.
    fn detail_ready(&self, wanted: Option<TranscriptRequest>) -> bool {
        wanted.is_some() && self.detail.as_ref().map(|(key, ..)| *key) == wanted
    }

    /// Whether the block of tiles `range` covers the view `min`..`max` (or all of the index there).
    fn range_covers(&self, range: TileRange, min: DVec2, max: DVec2) -> bool {
        self.index
            .tile_range(min.to_array(), max.to_array())
            .is_some_and(|view| {
                view.col0 >= range.col0
                    && view.row0 >= range.row0
                    && view.col0 + view.cols <= range.col0 + range.cols
                    && view.row0 + view.rows <= range.row0 + range.rows
            })
    }

    /// Transcripts of the shown genes in a tile (all qualities).
    fn shown_in_tile(&self, tile: u32) -> u64 {
        self.tile_shown_counts.get(tile as usize).copied().unwrap_or(0)
    }

    /// Tiles of the current generation drawn in the last frame.
    pub fn drawn_tiles(&self) -> usize {
        let generation = self.generation();
        self.tiles
            .values()
            .filter(|t| t.generation == generation && t.last_used == self.frame_count)
            .count()
    }

    /// Pieces (tiles, a density) the last frame wanted and did not have yet.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// Transcripts in the tiles drawn in the last frame.
    pub fn drawn_points(&self) -> usize {
        let generation = self.generation();
        self.tiles
            .values()
            .filter(|t| t.generation == generation && t.last_used == self.frame_count)
            .map(|t| t.points.len())
            .sum()
    }

    /// Whether a density image of the current genes and threshold is at hand.
    pub fn has_current_density(&self) -> bool {
        let generation = self.density_generation();
        self.density.as_ref().is_some_and(|(g, _)| *g == generation)
    }

    /// Drops the least recently drawn tiles beyond [`RESIDENT_TILES`].
    fn evict_unused(&mut self) {
        if self.tiles.len() <= RESIDENT_TILES {
            return;
        }
        // Tiles drawn in this frame stay (the view draws at most RESIDENT_TILES).
        let mut by_age: Vec<(u64, u32)> = self
            .tiles
            .iter()
            .filter(|(_, r)| r.last_used != self.frame_count)
            .map(|(t, r)| (r.last_used, *t))
            .collect();
        by_age.sort_unstable();
        let excess = self.tiles.len() - RESIDENT_TILES;
        for (_, tile) in by_age.into_iter().take(excess) {
            if let Some(old) = self.tiles.remove(&tile) {
                self.evicted.push(old.points.id);
            }
        }
    }

    /// Everything resident goes (the layer is closing or replaced).
    pub fn release_all(&mut self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.tiles.drain().map(|(_, r)| r.points.id).collect();
        ids.append(&mut self.evicted);
        ids
    }

    /// The density as channel quads; `source_id` and `serial` make its GPU textures' keys.
    fn density_list(
        &self,
        source_id: u64,
        serial: u32,
        density: &Density,
        clip_from_world: &DAffine2,
    ) -> ChannelDrawList {
        let origin = DVec2::from(density.min_um);
        let clip = |p: DVec2| clip_from_world.transform_point2(p);
        let origin_clip = clip(origin);
        let axis_x = clip(origin + DVec2::new(density.size_um[0], 0.0)) - origin_clip;
        let axis_y = clip(origin + DVec2::new(0.0, density.size_um[1])) - origin_clip;
        let channels = density
            .channels
            .iter()
            .enumerate()
            .map(|(c, (image, colour))| ChannelTile {
                key: ChannelTileKey {
                    source_id,
                    channel: c as u32,
                    level: serial,
                    col: 0,
                    row: 0,
                },
                image: image.clone(),
                display: ChannelDisplay {
                    color_rgb: rgb(*colour),
                    window_min: 0.0,
                    window_max: 65535.0,
                    gamma: 1.0,
                },
            })
            .collect::<Vec<_>>();
        let quads = channels
            .chunks(cs_render::CHANNELS_PER_QUAD)
            .map(|chunk| ChannelQuad {
                origin_clip: origin_clip.as_vec2().to_array(),
                axis_x_clip: axis_x.as_vec2().to_array(),
                axis_y_clip: axis_y.as_vec2().to_array(),
                channels: chunk.to_vec(),
                additive: false,
                alpha_from_intensity: true,
            })
            .collect();
        ChannelDrawList {
            quads,
            opacity: self.opacity,
        }
    }

    fn palette(&self) -> Vec<[f32; 4]> {
        std::iter::once(to_rgba_f32(Color32::TRANSPARENT))
            .chain(
                self.gene_colours.iter().zip(&self.gene_visible).map(
                    |(c, visible)| {
                        if *visible { to_rgba_f32(*c) } else { [0.0; 4] }
                    },
                ),
            )
            .collect()
    }

    /// A cell's transcripts (at the threshold) per gene, most first, read from the tiles that
    /// meet its bounds.
    pub fn cell_gene_counts(&self, cell: u32, lo: [f64; 2], hi: [f64; 2]) -> CellTranscripts {
        let mut cache = self.cell_cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((c, generation, counts)) = cache.as_ref()
            && *c == cell
            && *generation == self.generation()
        {
            return counts.clone();
        }
        let counts = self.read_cell_gene_counts(cell, lo, hi);
        *cache = Some((cell, self.generation(), counts.clone()));
        counts
    }

    fn read_cell_gene_counts(&self, cell: u32, lo: [f64; 2], hi: [f64; 2]) -> CellTranscripts {
        let points = self
            .index
            .cell_transcripts(cell, lo, hi, self.min_qv)
            .map_err(|e| e.to_string())?;
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for &g in &points.gene {
            *counts.entry(g).or_default() += 1;
        }
        let mut out: Vec<(String, u32)> = counts
            .into_iter()
            .map(|(g, n)| (self.index.genes.get(g as usize).cloned().unwrap_or_default(), n))
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(out)
    }
}

impl Drop for TranscriptLayer {
    /// A density being computed stops, so the loader threads end soon.
    fn drop(&mut self) {
        let filter = self.filter.lock().unwrap_or_else(PoisonError::into_inner);
        filter.density_cancel.store(true, Ordering::Relaxed);
    }
}

fn rgb(c: Color32) -> [f32; 3] {
    let [r, g, b, _] = to_rgba_f32(c);
    [r, g, b]
}

/// Reads one piece on a loader thread; a request of an older generation is dropped.
fn read_piece(
    index: &TranscriptIndex,
    filter: &Mutex<Filter>,
    next_id: &AtomicU64,
    request: TranscriptRequest,
) -> Result<TranscriptPiece, SlideError> {
    let filter = filter.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let failed = |error: cs_xenium::XeniumError| SlideError::ReadFailed {
        path: index.path().to_path_buf(),
        what: "transcripts".to_owned(),
        reason: error.to_string(),
    };
    let stale = match request {
        TranscriptRequest::Tile { generation, .. } => generation != filter.generation,
        TranscriptRequest::Density { generation } | TranscriptRequest::DensityDetail { generation, .. } => {
            generation != filter.density_generation
        }
    };
    match request {
        _ if stale => Err(SlideError::ReadFailed {
            path: index.path().to_path_buf(),
            what: "transcripts".to_owned(),
            reason: "superseded by a newer request".to_owned(),
        }),
        TranscriptRequest::Tile { tile, .. } => {
            let read = index.read_tile(tile, &filter.shown, filter.min_qv).map_err(failed)?;
            let x: Vec<f64> = read.x_um.iter().map(|&v| f64::from(v)).collect();
            let y: Vec<f64> = read.y_um.iter().map(|&v| f64::from(v)).collect();
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            let points = CellGeometry::build(id, &x, &y, None, None);
            let values: Vec<u32> = read.gene.iter().map(|&g| g + 1).collect();
            let styles = CellStyles {
                id,
                values: points.to_gpu_order(&values),
            };
            Ok(TranscriptPiece::Tile {
                points: Box::new(points),
                styles,
            })
        }
        TranscriptRequest::Density { .. } | TranscriptRequest::DensityDetail { .. } => {
            let channels: Vec<Vec<u32>> = filter.density_channels.iter().map(|(g, _)| g.clone()).collect();
            let grid = match request {
                TranscriptRequest::DensityDetail { range, bin_log2, .. } => {
                    // Stops when either the generation or the wanted view moves on.
                    let cancelled = || {
                        filter.density_cancel.load(Ordering::Relaxed) || filter.detail_cancel.load(Ordering::Relaxed)
                    };
                    let bin_um = 2f64.powi(i32::from(bin_log2));
                    index.density_in(&channels, filter.min_qv, range, bin_um, &cancelled)
                }
                _ => index.density(&channels, filter.min_qv, filter.density_bins, &filter.density_cancel),
            }
            .map_err(failed)?;
            let size_um = [grid.bin_um * f64::from(grid.cols), grid.bin_um * f64::from(grid.rows)];
            let channels = grid
                .channels
                .iter()
                .zip(&filter.density_channels)
                .map(|(counts, (_, colour))| (Arc::new(density_image(counts, grid.cols, grid.rows)), *colour))
                .collect();
            Ok(TranscriptPiece::Density(Density {
                min_um: grid.min_um,
                size_um,
                channels,
            }))
        }
    }
}

/// Counts as grey levels: square root of the count over the 99.5th percentile of occupied bins
/// (so one dense spot does not leave the rest dark), clamped to white.
pub fn density_image(counts: &[u32], cols: u32, rows: u32) -> Gray16Image {
    let mut occupied: Vec<u32> = counts.iter().copied().filter(|&n| n > 0).collect();
    let top = if occupied.is_empty() {
        1.0
    } else {
        let k = ((occupied.len() - 1) as f64 * 0.995) as usize;
        let (_, v, _) = occupied.select_nth_unstable(k);
        f64::from((*v).max(1))
    };
    let pixels = counts
        .iter()
        .map(|&n| ((f64::from(n) / top).sqrt().min(1.0) * 65535.0).round() as u16)
        .collect();
    Gray16Image {
        width: cols,
        height: rows,
        pixels,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

    use std::time::{Duration, Instant};

    use super::*;

    /// Frames until nothing is waiting; the density drawn then.
    fn settle(layer: &mut TranscriptLayer, camera: &Camera, viewport: &Viewport) -> ChannelDrawList {
        let start = Instant::now();
        loop {
            layer.receive();
            let (_, density) = layer.frame(camera, viewport);
            if layer.waiting() == 0 {
                return density.expect("a density is drawn");
            }
            assert!(start.elapsed() < Duration::from_secs(60), "the density never arrived");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_finer_density_replaces_coarse_bins_and_only_then() {
        let out = std::env::temp_dir().join(format!("transcript_layer_detail_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let options = cs_synth::SynthOptions {
            cells: 2000,
            seed: 3,
            write_slide: false,
            write_transcripts: true,
            ..Default::default()
        };
        let summary = cs_synth::generate(&options, &out, &|_, _| {}, &|| false).unwrap();
        let bundle = cs_xenium::XeniumBundle::open(&summary.bundle_dir).unwrap();
        let source = bundle.files.transcripts.clone().unwrap();
        let index = cs_xenium::open_or_build_index(
            &source,
            &bundle.files.transcript_layout,
            &bundle.cells,
            &out.join("index"),
            &mut |_| true,
        )
        .unwrap();
        let mut layer = TranscriptLayer::new(Arc::new(index), 9, Arc::new(|| {})).unwrap();
        // Sixteen whole-tissue bins (about 46 µm here) stand in for 1,024 over a real section.
        layer.filter.lock().unwrap().density_bins = 16;
        let index = layer.index.clone();
        let span_um = index.tile_um * f64::from(index.cols.max(index.rows));
        let centre = DVec2::from(index.min_um) + DVec2::splat(span_um / 2.0);
        let viewport = Viewport {
            size_in_points: DVec2::new(800.0, 600.0),
            pixels_per_point: 1.0,
        };
        // 5 µm a pixel: whole-tissue bins of ~9 pixels give way to 8 µm bins (2^3, nearest two
        // pixels) over the tiles around the view, with every shown transcript of them.
        let camera = Camera {
            center_in_world: centre,
            points_per_um: 0.2,
        };
        let drawn = settle(&mut layer, &camera, &viewport);
        let tile = &drawn.quads[0].channels[0];
        assert_eq!(tile.key.source_id, layer.density_id + 1, "the finer density is drawn");
        let (_, _, detail) = layer.detail.as_ref().unwrap();
        let bin_um = detail.size_um[0] / f64::from(tile.image.width);
        assert!((bin_um - 8.0).abs() < 1e-9, "bins of {bin_um} µm");
        let Some(TranscriptRequest::DensityDetail { range, .. }) = layer.detail_wanted else {
            panic!("no finer density wanted")
        };
        assert!(layer.range_covers(range, centre - DVec2::splat(2000.0), centre + DVec2::splat(1500.0)));
        // Zoomed out to 50 µm a pixel the whole-tissue bins are under a pixel: they are drawn.
        let far = Camera {
            center_in_world: centre,
            points_per_um: 0.02,
        };
        let drawn = settle(&mut layer, &far, &viewport);
        assert_eq!(drawn.quads[0].channels[0].key.source_id, layer.density_id);
        assert!(layer.detail_wanted.is_none());
        std::fs::remove_dir_all(&out).unwrap();
    }
}
