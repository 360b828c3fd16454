//! What draws: the camera (which part of `world` a viewport shows) and the layers that turn what
//! is open into plain-data draw lists for `cs_render`: the slide ([`slide_layer`]: placement,
//! tile loading, RAM cache), the morphology images ([`morphology_layer`]: fluorescence channels
//! with their contrast and histograms), the cells ([`cell_layer`]: colouring, picking,
//! emphasis), the transcripts ([`transcript_layer`]: tiles of the on-disk index as points, densities
//! when zoomed out), and the colour [`palettes`]. No widgets and no app state, so benchmarks run exactly
//! what the viewer runs.
//!
//! May import: `util` and the crates.

pub mod camera;
pub mod cell_layer;
pub mod morphology_layer;
pub mod palettes;
pub mod patch_layer;
pub mod slide_layer;
pub mod tile_store;
pub mod transcript_layer;
