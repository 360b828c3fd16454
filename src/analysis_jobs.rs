//! Selection analyses that take longer than a frame, run on named worker threads: differential
//! expression of a selection against the rest or another selection, and (when asked) the
//! neighbourhood enrichment. Results are keyed by their inputs, so a result for a selection that
//! has changed since is dropped instead of shown.

use std::sync::Arc;

use cs_analysis::{
    CellSet, CsrCounts, DeReference, GeneDifferentialExpression, GraphKind, NhoodEnrichment, NhoodOptions,
    SpatialGraph, cell_totals, nhood_enrichment_cancellable, rank_genes_wilcoxon,
};
use cs_xenium::{GENE_EXPRESSION, XeniumBundle};

/// What a differential-expression result was computed for.
#[derive(Debug, Clone, PartialEq)]
pub struct DeKey {
    pub group: CellSet,
    pub reference: Option<CellSet>,
}

/// One gene's result with its name.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedDe {
    pub gene: String,
    pub result: GeneDifferentialExpression,
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

/// An analysis run in progress or done, with the inputs (`key`) it was started for; results are
/// only shown while the current inputs equal the key.
pub struct AnalysisRun<K, T> {
    pub key: K,
    job: Option<crate::jobs::Job<anyhow::Result<T>>>,
    result: Option<Result<Arc<T>, String>>,
}

impl<K: PartialEq, T> AnalysisRun<K, T> {
    pub fn new(key: K, job: crate::jobs::Job<anyhow::Result<T>>) -> Self {
        Self {
            key,
            job: Some(job),
            result: None,
        }
    }

    pub fn job(&self) -> Option<&crate::jobs::Job<anyhow::Result<T>>> {
        self.job.as_ref()
    }

    pub fn is_running(&self) -> bool {
        self.job.is_some()
    }

    /// Takes a finished job's outcome (called once per frame); `what` names it in errors.
    pub fn poll(&mut self, what: &str) {
        let Some(job) = &self.job else { return };
        let outcome = match job.poll() {
            crate::jobs::JobStatus::Running => return,
            crate::jobs::JobStatus::Done(result) => result.map(Arc::new).map_err(|e| format!("{e:#}")),
            crate::jobs::JobStatus::Lost => Err(format!("{what} stopped unexpectedly")),
        };
        self.job = None;
        self.result = Some(outcome);
    }

    /// Stops the run and forgets any result.
    pub fn cancel(&mut self) {
        if let Some(job) = self.job.take() {
            job.cancel();
        }
        self.result = None;
    }

    /// The result, if it is for `current` inputs.
    pub fn result_for(&self, current: Option<&K>) -> Option<Arc<T>> {
        (Some(&self.key) == current)
            .then(|| self.result.as_ref()?.as_ref().ok().cloned())
            .flatten()
    }

    /// The error, if the run for `current` inputs failed.
    pub fn error_for(&self, current: Option<&K>) -> Option<String> {
        (Some(&self.key) == current)
            .then(|| self.result.as_ref()?.as_ref().err().cloned())
            .flatten()
    }
}

/// A differential-expression run.
pub type DeRun = AnalysisRun<DeKey, Vec<NamedDe>>;
/// A neighbourhood-enrichment run.
pub type NhoodRun = AnalysisRun<NhoodKey, NhoodEnrichment>;

/// The DE results as CSV (scanpy's column meanings).
pub fn de_csv(selection: &str, reference: &str, results: &[NamedDe]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "#Selection: {selection}");
    let _ = writeln!(out, "#Compared with: {reference}");
    let _ = writeln!(
        out,
        "#Wilcoxon rank-sum (tie-corrected, two-sided) on log1p(CP10k); p_adjusted: Benjamini-Hochberg"
    );
    out.push_str("gene,score,log2_fold_change,p_value,p_adjusted,mean_log1p_cp10k_selection,mean_log1p_cp10k_reference,fraction_expressing_selection,fraction_expressing_reference\n");
    for r in results {
        let d = &r.result;
        let _ = writeln!(
            out,
            "{},{:.6},{:.6},{:.6e},{:.6e},{:.6},{:.6},{:.6},{:.6}",
            crate::selection_io::csv_field(&r.gene),
            d.score,
            d.log2_fold_change,
            d.p_value,
            d.p_adjusted,
            d.mean_log1p_cp10k_group,
            d.mean_log1p_cp10k_reference,
            d.fraction_expressing_group,
            d.fraction_expressing_reference
        );
    }
    out
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
    cancel: &crate::jobs::CancelToken,
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
