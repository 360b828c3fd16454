//! Whole-slide image access for CellSymphony.
//!
//! - [`SlideSource`]: what the viewer needs from a slide (levels, metadata, regions, associated images),
//!   with [`OpenSlideSource`] (OpenSlide), [`TiffSource`] (TIFF/BigTIFF/OME-TIFF with the `tiff`
//!   crate) and [`DicomSource`] (DICOM WSI with dicom-rs) as backends, chosen per file by
//!   [`open_slide`]; [`ome`] parses OME-XML; [`NgffSource`] reads OME-NGFF multiscale images in
//!   zarr (as spatialdata and ome-zarr write them) with the `zarrs` crate.
//! - [`TilePyramid`] and [`plan_tiles`]: which tiles of which level cover a view, and which coarser tiles
//!   stand in while finer ones load.
//! - [`ByteLru`]: a byte-budgeted LRU cache for decoded tiles.
//! - [`TileLoader`]: named background threads reading tiles, newest requests first.
//!
//! Coordinates: `slide_px` are level-0 pixels; `level_px` are pixels of one pyramid level.

mod byte_lru;
mod dicom_backend;
mod error;
mod ngff;
pub mod ome;
mod open;
mod openslide_backend;
mod pyramid;
mod source;
mod tiff_backend;
mod tile_loader;

pub use byte_lru::ByteLru;
pub use dicom_backend::DicomSource;
pub use error::SlideError;
pub use ngff::{NgffSource, is_ngff_image};
pub use open::{open_slide, openslide_reads_dicom};
pub use openslide_backend::OpenSlideSource;
pub use pyramid::{TileKey, TilePlan, TilePyramid, TileRange, ViewInSlide, plan_tiles};
pub use source::{ChannelInfo, Gray16Image, LevelInfo, RgbaImage, SlideMetadata, SlideSource};
pub use tiff_backend::{TiffSource, default_channel_color, percentile_window};
pub use tile_loader::{LoadedTile, LoaderKey, TileLoader, TileReader};
