//! Whole-slide image access for CellSymphony.
//!
//! - [`SlideSource`]: what the viewer needs from a slide (levels, metadata, regions, associated images),
//!   with [`OpenSlideSource`] as the OpenSlide backend.
//! - [`TilePyramid`] and [`plan_tiles`]: which tiles of which level cover a view, and which coarser tiles
//!   stand in while finer ones load.
//! - [`ByteLru`]: a byte-budgeted LRU cache for decoded tiles.
//! - [`TileLoader`]: named background threads reading tiles, newest requests first.
//!
//! Coordinates: `slide_px` are level-0 pixels; `level_px` are pixels of one pyramid level.

mod byte_lru;
mod error;
mod openslide_backend;
mod pyramid;
mod source;
mod tile_loader;

pub use byte_lru::ByteLru;
pub use error::SlideError;
pub use openslide_backend::OpenSlideSource;
pub use pyramid::{TileKey, TilePlan, TilePyramid, TileRange, ViewInSlide, plan_tiles};
pub use source::{LevelInfo, RgbaImage, SlideMetadata, SlideSource};
pub use tile_loader::{LoadedTile, TileLoader};
