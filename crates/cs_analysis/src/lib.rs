//! Pure-CPU analysis over cells for CellSymphony: a uniform-grid spatial index over centroids and
//! polygon geometry (even-odd point-in-polygon). No UI, no GPU; benchmarked with criterion.
//! Positions are world micrometres throughout.

mod geometry;
mod grid_index;

pub use geometry::{polygon_area, polygon_contains};
pub use grid_index::GridIndex;
