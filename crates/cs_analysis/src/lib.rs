//! Pure-CPU analysis over cells for CellSymphony: a uniform-grid spatial index over centroids and
//! polygon geometry (even-odd point-in-polygon). No UI, no GPU; benchmarked with criterion.
//! Positions are world micrometres throughout.

mod de;
mod geometry;
mod graph;
mod grid_index;
mod nhood;
mod outline;
mod selection;
mod stats;

pub use de::{
    CP10K_TARGET_SUM, CsrCounts, DeReference, FOLD_CHANGE_EPSILON, GeneDifferentialExpression, cell_totals,
    rank_genes_wilcoxon,
};
pub use geometry::{polygon_area, polygon_contains};
pub use graph::{GraphError, GraphKind, SpatialGraph};
pub use grid_index::GridIndex;
pub use nhood::{
    MAX_CLASSES, MISSING_LABEL, NhoodEnrichment, NhoodError, NhoodOptions, nhood_enrichment,
    nhood_enrichment_cancellable,
};
pub use outline::{OUTLINE_RESOLUTION, OutlinePolygon, region_outline};
pub use selection::{
    CellSet, Combine, PreparedPolygon, RegionSampler, Shape, Step, cells_in_shape, cells_in_steps, region_area_um2,
    region_sampler,
};
pub use stats::{
    CellMask, ClassEnrichment, Composition, ENRICHMENT_PSEUDOCOUNT, FISHER_RELATIVE_TOLERANCE, MannWhitney, StatsError,
    benjamini_hochberg, composition_between, composition_vs_rest, fisher_exact_two_sided, mann_whitney_u,
};
