//! Selection analyses that take longer than a frame and run as jobs: differential expression of
//! a selection against the rest or another selection, and the neighbourhood enrichment. Each is
//! described by a key (the inputs it is computed for), so that a result for a selection or
//! settings that have changed since is not shown.

use cs_analysis::{
    CellSet, CsrCounts, DeReference, GraphKind, NhoodEnrichment, NhoodOptions, SpatialGraph, cell_totals,
    nhood_enrichment_cancellable, rank_genes_wilcoxon,
};
use cs_xenium::{GENE_EXPRESSION, XeniumBundle};

use crate::io::records::NamedDe;
use crate::work::jobs::CancelToken;

/// What a differential-expression result was computed for.
#[derive(Debug, Clone, PartialEq)]
pub struct DeKey {
    pub group: CellSet,
    pub reference: Option<CellSet>,
}

/// Wilcoxon rank-sum of every gene-expression feature, `group` against `reference` (None: the
/// rest of the cells), on log1p(CP10k); sorted by score, highest first.
pub fn differential_expression(bundle: &XeniumBundle, key: &DeKey) -> anyhow::Result<Vec<NamedDe>> {
    let Some(counts) = &bundle.counts else {
        anyhow::bail!("This bundle has no count matrix: differential expression needs one.");
    };
    let matrix = CsrCounts::new(
        &counts.row_offsets,
        &counts.feature_index,
        &counts.counts,
        counts.features.len(),
    )?;
    let genes = counts.features_of_type(GENE_EXPRESSION);
    let totals = cell_totals(matrix, &genes)?;
    let reference = match &key.reference {
        Some(cells) => DeReference::Cells(cells),
        None => DeReference::Rest,
    };
    let mut results: Vec<NamedDe> = rank_genes_wilcoxon(matrix, &totals, &genes, &key.group, reference)?
        .into_iter()
        .map(|result| NamedDe {
            gene: counts
                .features
                .get(result.feature as usize)
                .map_or_else(|| format!("feature {}", result.feature), |f| f.name.clone()),
            result,
        })
        .collect();
    results.sort_by(|a, b| b.result.score.total_cmp(&a.result.score));
    Ok(results)
}

/// How the next neighbourhood enrichment runs (the panel's settings).
#[derive(Debug, Clone, PartialEq)]
pub struct NhoodSettings {
    pub graph: GraphKind,
    pub n_perms: usize,
    pub seed: u64,
    /// Inside the active selection only, else over all cells.
    pub within_selection: bool,
}

impl Default for NhoodSettings {
    fn default() -> Self {
        Self {
            graph: GraphKind::Radius { radius_um: 30.0 },
            n_perms: 1000,
            seed: 0,
            within_selection: false,
        }
    }
}

/// What a neighbourhood-enrichment result was computed for.
#[derive(Debug, Clone, PartialEq)]
pub struct NhoodKey {
    pub column: String,
    pub graph: GraphKind,
    pub n_perms: usize,
    pub seed: u64,
    /// Inside this selection only (None: all cells).
    pub within: Option<CellSet>,
}

/// Builds the spatial graph and runs the permutations (squidpy's `nhood_enrichment`).
pub fn neighbourhood_enrichment(
    bundle: &XeniumBundle,
    key: &NhoodKey,
    cancel: &CancelToken,
) -> anyhow::Result<NhoodEnrichment> {
    let cells = &bundle.cells;
    let Some(column) = cells.categorical_column(&key.column) else {
        anyhow::bail!("There is no categorical column {:?}.", key.column);
    };
    let graph = SpatialGraph::build(&cells.x_um, &cells.y_um, key.graph)?;
    let selection: Option<Vec<u32>> = key.within.as_ref().map(|s| s.iter().map(|c| c as u32).collect());
    Ok(nhood_enrichment_cancellable(
        &graph,
        &column.codes,
        column.categories.len(),
        selection.as_deref(),
        &NhoodOptions {
            n_perms: key.n_perms,
            seed: key.seed,
        },
        cancel.flag(),
    )?)
}
