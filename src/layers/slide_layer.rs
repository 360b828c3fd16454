//! The slide layer: an open slide placed in `world`, its tile loader and RAM tile cache, and the
//! per-frame plan turned into a [`TileDrawList`] for the GPU. No egui here, so the benchmark
//! replays exactly what the viewer does.

use std::sync::Arc;

use cs_render::{TileDraw, TileDrawList, TileTextureKey};
use cs_slide::{RgbaImage, SlideError, SlideSource, TileKey, TileLoader, TilePyramid, ViewInSlide, plan_tiles};
use glam::{DAffine2, DVec2};

use crate::layers::camera::{Camera, Viewport, clip_from_screen};
use crate::layers::tile_store::TileStore;

/// Tile edge in level pixels: 512 keeps draw calls few on 4K screens.
pub const TILE_SIZE_PX: u32 = 512;
/// GPU memory for slide tile textures.
pub const GPU_TILE_BUDGET_BYTES: usize = 512 * 1024 * 1024;
/// Decoded tiles kept in memory.
pub const RAM_CACHE_BYTES: usize = 768 * 1024 * 1024;
const LOADER_THREADS: usize = 2;

/// What the last frame planned, for the status bar and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FrameStats {
    pub target_level: u32,
    pub visible_tiles: usize,
    pub ready_tiles: usize,
    pub drawn_tiles: usize,
    pub slide_px_per_screen_px: f64,
}

/// Scale by mpp when the slide records it; identity (and no physical scale) otherwise.
fn placement_by_resolution(meta: &cs_slide::SlideMetadata) -> (DAffine2, bool) {
    match (meta.mpp_x, meta.mpp_y) {
        (Some(x), Some(y)) if x > 0.0 && y > 0.0 => (DAffine2::from_scale(DVec2::new(x, y)), true),
        _ => (DAffine2::IDENTITY, false),
    }
}

/// Where the viewport sees an image placed in world by `world_from_slide`: clip space from
/// level-0 pixels, the view's corners in level-0 pixels, and the zoom (pixels per screen pixel).
pub struct ViewOfImage {
    pub clip_from_slide: DAffine2,
    pub view: ViewInSlide,
    pub slide_px_per_screen_px: f64,
}

impl ViewOfImage {
    pub fn new(camera: &Camera, viewport: &Viewport, world_from_slide: DAffine2) -> Self {
        let screen_from_slide = camera.screen_from_world(viewport) * world_from_slide;
        let slide_from_screen = screen_from_slide.inverse();
        let size = viewport.size_in_points;
        let corners = [DVec2::ZERO, DVec2::new(size.x, 0.0), size, DVec2::new(0.0, size.y)]
            .map(|c| slide_from_screen.transform_point2(c).to_array());
        let slide_px_per_point = slide_from_screen.matrix2.determinant().abs().sqrt();
        Self {
            clip_from_slide: clip_from_screen(viewport) * screen_from_slide,
            view: ViewInSlide {
                corners_in_slide_px: corners,
            },
            slide_px_per_screen_px: slide_px_per_point / viewport.pixels_per_point,
        }
    }
}

/// A tile's quad in clip space: its top-left corner and the vectors along its top and left edges.
pub fn tile_quad_in_clip(pyramid: &TilePyramid, key: TileKey, clip_from_slide: DAffine2) -> [[f32; 2]; 3] {
    let (min, max) = pyramid.tile_rect_in_slide_px(key);
    let min = DVec2::from_array(min);
    let max = DVec2::from_array(max);
    let origin = clip_from_slide.transform_point2(min);
    let axis_x = clip_from_slide.transform_vector2(DVec2::new(max.x - min.x, 0.0));
    let axis_y = clip_from_slide.transform_vector2(DVec2::new(0.0, max.y - min.y));
    [origin, axis_x, axis_y].map(|v| v.as_vec2().to_array())
}

pub struct SlideLayer {
    /// Distinguishes this slide's GPU textures from those of slides opened before.
    pub source_id: u64,
    pub source: Arc<dyn SlideSource>,
    pub pyramid: TilePyramid,
    /// Level-0 slide pixels to world micrometres (scale by mpp; identity when mpp is unknown).
    pub world_from_slide: DAffine2,
    pub has_physical_scale: bool,
    pub visible: bool,
    pub opacity: f32,
    tiles: TileStore<TileKey, RgbaImage>,
    pub last_frame: FrameStats,
}

impl SlideLayer {
    /// The RAM tile cache's size (tiles beyond it are dropped, oldest first).
    pub fn set_ram_budget(&mut self, bytes: usize) {
        self.tiles.set_ram_budget(bytes);
    }

    pub fn ram_budget_bytes(&self) -> usize {
        self.tiles.ram_budget_bytes()
    }

    /// `notify` is called from loader threads whenever a tile is ready (the app passes `request_repaint`).
    pub fn new(
        source: Arc<dyn SlideSource>,
        source_id: u64,
        notify: Arc<dyn Fn() + Send + Sync>,
    ) -> std::io::Result<Self> {
        let meta = source.metadata();
        let pyramid = TilePyramid::new(meta.levels.clone(), TILE_SIZE_PX);
        let (world_from_slide, has_physical_scale) = placement_by_resolution(meta);
        let loader = TileLoader::new(source.clone(), pyramid.clone(), LOADER_THREADS, notify)?;
        Ok(Self {
            source_id,
            source,
            pyramid,
            world_from_slide,
            has_physical_scale,
            visible: true,
            opacity: 1.0,
            tiles: TileStore::new(loader, RAM_CACHE_BYTES),
            last_frame: FrameStats::default(),
        })
    }

    /// Places the slide by its µm per pixel alone (no alignment): world = slide px x mpp.
    pub fn place_by_resolution(&mut self) {
        (self.world_from_slide, self.has_physical_scale) = placement_by_resolution(self.source.metadata());
    }

    /// The slide's level-0 rectangle in world coordinates (min, max).
    pub fn bounds_in_world(&self) -> (DVec2, DVec2) {
        let (w, h) = self.source.metadata().level0_size_px();
        let corners = [
            DVec2::new(0.0, 0.0),
            DVec2::new(w as f64, 0.0),
            DVec2::new(0.0, h as f64),
            DVec2::new(w as f64, h as f64),
        ]
        .map(|c| self.world_from_slide.transform_point2(c));
        let min = corners.iter().fold(DVec2::splat(f64::INFINITY), |a, b| a.min(*b));
        let max = corners.iter().fold(DVec2::splat(f64::NEG_INFINITY), |a, b| a.max(*b));
        (min, max)
    }

    /// Moves finished tiles from the loader into the RAM cache. Returns how many arrived.
    pub fn receive_tiles(&mut self) -> usize {
        self.tiles.receive()
    }

    pub fn is_loading(&self) -> bool {
        self.tiles.is_loading()
    }

    pub fn failed_tile_count(&self) -> usize {
        self.tiles.failed_count()
    }

    /// One representative tile error, for the status line.
    pub fn first_tile_error(&self) -> Option<&SlideError> {
        self.tiles.first_error()
    }

    /// Slide pixel under a point of the viewport (egui points from its top-left).
    pub fn slide_from_screen(&self, camera: &Camera, viewport: &Viewport) -> DAffine2 {
        (camera.screen_from_world(viewport) * self.world_from_slide).inverse()
    }

    /// Plans the frame, updates the loader's wanted list, and returns what to draw.
    pub fn frame(&mut self, camera: &Camera, viewport: &Viewport) -> TileDrawList {
        let ViewOfImage {
            clip_from_slide,
            view,
            slide_px_per_screen_px,
        } = ViewOfImage::new(camera, viewport, self.world_from_slide);

        let plan = plan_tiles(
            &self.pyramid,
            &view,
            slide_px_per_screen_px,
            |key| self.tiles.is_ready(key),
            |key| self.tiles.has_failed(key),
        );
        self.tiles.want(plan.fetch.clone());

        let mut tiles = Vec::with_capacity(plan.draw.len());
        for key in &plan.draw {
            let Some(image) = self.tiles.get(key) else {
                continue;
            };
            let [origin_clip, axis_x_clip, axis_y_clip] = tile_quad_in_clip(&self.pyramid, *key, clip_from_slide);
            tiles.push(TileDraw {
                key: TileTextureKey {
                    source_id: self.source_id,
                    level: key.level,
                    col: key.col,
                    row: key.row,
                },
                image,
                origin_clip,
                axis_x_clip,
                axis_y_clip,
            });
        }
        self.last_frame = FrameStats {
            target_level: plan.target_level,
            visible_tiles: plan.visible_count,
            ready_tiles: plan.ready_count,
            drawn_tiles: tiles.len(),
            slide_px_per_screen_px,
        };
        TileDrawList {
            tiles,
            opacity: self.opacity,
        }
    }
}
