//! GPU rendering for CellSymphony, on a `wgpu::Device` that the caller owns (eframe's, or a headless
//! one in benchmarks). Renderers are long-lived and own pipelines and GPU caches; what to draw in a
//! frame is passed in as plain data. Nothing here knows about the app's state or about egui.
//!
//! Shaders live in the repository's `shaders/` folder and are compiled in with `include_str!`.

mod cell_geometry;
mod cell_renderer;
mod channel_renderer;
mod headless;
mod pipeline;
mod quads;
mod tile_renderer;

pub use cell_geometry::{
    CHUNK_CELLS, CellChunk, CellGeometry, GpuPolygons, MAX_DRAWN_VERTICES, PACKED_RANGE_UM, PolygonsInTable,
    unpack_offset,
};
pub use cell_renderer::{
    CellDrawList, CellDrawMode, CellLayerStyle, CellRenderer, CellStyles, CompositeUniform, FrameUniform, NO_HIGHLIGHT,
    OVERVIEW_MIN_CELLS, POINT_TILE_MAX_SIDE, PointLayerDraw, PointPart, PointRaster,
};

pub use channel_renderer::{
    CHANNELS_PER_QUAD, ChannelDisplay, ChannelDrawList, ChannelInstance, ChannelQuad, ChannelTile, ChannelTileKey,
    ChannelTileRenderer, normalised_f16_texels,
};
pub use headless::{HeadlessTarget, create_headless_device};
pub use quads::FrameId;
pub use tile_renderer::{TileDraw, TileDrawList, TileInstance, TileRenderer, TileTextureKey};

/// WGSL sources compiled into this crate, by file name (the naga test checks all of `shaders/`).
pub const SHADERS: &[(&str, &str)] = &[
    ("tiles.wgsl", pipeline::TILES_WGSL),
    ("channels.wgsl", pipeline::CHANNELS_WGSL),
    ("cells.wgsl", pipeline::CELLS_WGSL),
    ("cell_overview.wgsl", pipeline::CELL_OVERVIEW_WGSL),
];
