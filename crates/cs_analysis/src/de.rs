//! Differential expression of a group of cells (a selection) against a reference (the rest of
//! the cells, or a second selection): the Wilcoxon rank-sum test on log1p(CP10k) expression, gene
//! by gene, with the statistics scanpy reports.
//!
//! Matches `scanpy.tl.rank_genes_groups(adata, groupby, groups=[group], reference=...,
//! method="wilcoxon", tie_correct=True)` after `sc.pp.normalize_total(adata, target_sum=1e4)` and
//! `sc.pp.log1p(adata)` on a float64 matrix holding the genes that [`cell_totals`] summed over
//! (checked against scanpy 1.11 in `tests/reference/stats_expected.py`), except that ties are
//! exact (see [`rank_genes_wilcoxon`]). Works on the sparse counts directly: zeros are one tie
//! block that is never sorted, genes run in parallel.

use rayon::prelude::*;

use crate::stats::{CellMask, StatsError, benjamini_hochberg, check_len};

/// Counts are scaled to this many per cell before log1p (CP10k).
pub const CP10K_TARGET_SUM: f64 = 1e4;

/// Added to both mean expressions before their ratio in
/// [`GeneDifferentialExpression::log2_fold_change`] (scanpy's constant).
pub const FOLD_CHANGE_EPSILON: f64 = 1e-9;

/// A borrowed cell × feature count matrix in compressed sparse rows by cell, the layout of
/// `cs_xenium::SparseCounts`: cell `c` has features `feature_index[row_offsets[c]..row_offsets[c + 1]]`
/// with `counts[..]` at the same positions. Counts are non-negative; a feature appears at most
/// once per cell.
#[derive(Debug, Clone, Copy)]
pub struct CsrCounts<'a> {
    row_offsets: &'a [u64],
    feature_index: &'a [u32],
    counts: &'a [f32],
    n_features: usize,
}

impl<'a> CsrCounts<'a> {
    /// Wraps CSR arrays after checking their shape: `row_offsets` has one entry per cell plus one,
    /// never decreases, and ends at the length of `feature_index` and `counts`. Feature indices at
    /// or beyond `n_features` are ignored by the statistics.
    pub fn new(
        row_offsets: &'a [u64],
        feature_index: &'a [u32],
        counts: &'a [f32],
        n_features: usize,
    ) -> Result<Self, StatsError> {
        let malformed = |reason: String| Err(StatsError::MalformedMatrix { reason });
        if feature_index.len() != counts.len() {
            return malformed(format!(
                "{} feature indices but {} counts",
                feature_index.len(),
                counts.len()
            ));
        }
        let Some(&last) = row_offsets.last() else {
            return malformed("row_offsets is empty (it needs cells + 1 entries)".to_owned());
        };
        if row_offsets[0] != 0 || last != counts.len() as u64 {
            return malformed(format!(
                "row_offsets runs from {} to {last}, expected 0 to {}",
                row_offsets[0],
                counts.len()
            ));
        }
        if let Some(cell) = row_offsets.windows(2).position(|w| w[1] < w[0]) {
            return malformed(format!("row_offsets decreases after cell {cell}"));
        }
        Ok(Self {
            row_offsets,
            feature_index,
            counts,
            n_features,
        })
    }

    pub fn n_cells(&self) -> usize {
        self.row_offsets.len() - 1
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Feature indices and counts of one cell.
    fn cell(&self, cell: usize) -> (&'a [u32], &'a [f32]) {
        let start = self.row_offsets[cell] as usize;
        let end = self.row_offsets[cell + 1] as usize;
        (&self.feature_index[start..end], &self.counts[start..end])
    }
}

/// Which cells the group is compared with.
#[derive(Clone, Copy)]
pub enum DeReference<'a> {
    /// Every cell not in the group (scanpy's `reference="rest"`).
    Rest,
    /// A second selection (a mask over every cell). A cell in both the group and this selection
    /// counts in both; cells in neither are left out of the ranking.
    Cells(&'a dyn CellMask),
}

impl std::fmt::Debug for DeReference<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rest => f.write_str("Rest"),
            Self::Cells(cells) => write!(f, "Cells(mask over {} cells)", cells.cell_count()),
        }
    }
}

/// Test results for one gene.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeneDifferentialExpression {
    /// The feature index (into the matrix's features).
    pub feature: u32,
    /// The rank-sum z statistic with tie correction (scanpy's `scores`): positive when the gene is
    /// higher in the group. 0 when it cannot be computed (a side is empty, or all values tie).
    pub score: f64,
    /// Two-sided p-value of `score` under the normal approximation.
    pub p_value: f64,
    /// Benjamini–Hochberg adjustment of `p_value` across the genes tested together.
    pub p_adjusted: f64,
    /// `log2((expm1(mean_group) + 1e-9) / (expm1(mean_reference) + 1e-9))` of the log1p(CP10k)
    /// means (scanpy's `logfoldchanges`); 0 when a side is empty.
    pub log2_fold_change: f64,
    /// Mean log1p(CP10k) expression over the group's cells (zeros included; 0 when empty).
    pub mean_log1p_cp10k_group: f64,
    /// Mean log1p(CP10k) expression over the reference's cells.
    pub mean_log1p_cp10k_reference: f64,
    /// Share of the group's cells with a non-zero count (scanpy's `pts`).
    pub fraction_expressing_group: f64,
    /// Share of the reference's cells with a non-zero count (scanpy's `pts_rest`).
    pub fraction_expressing_reference: f64,
}

/// Total counts of every cell over `features` (feature indices; usually every gene of type
/// "Gene Expression"): the library sizes that [`rank_genes_wilcoxon`] normalises by.
pub fn cell_totals(counts: CsrCounts<'_>, features: &[u32]) -> Result<Vec<f64>, StatsError> {
    let mut counted = vec![false; counts.n_features];
    for &feature in features {
        *counted.get_mut(feature as usize).ok_or(StatsError::FeatureOutOfRange {
            feature,
            n_features: counts.n_features,
        })? = true;
    }
    Ok((0..counts.n_cells())
        .into_par_iter()
        .with_min_len(4096)
        .map(|cell| {
            let (index, values) = counts.cell(cell);
            index
                .iter()
                .zip(values)
                .filter(|(feature, _)| counted.get(**feature as usize).copied().unwrap_or(false))
                .map(|(_, &count)| f64::from(count))
                .sum()
        })
        .collect())
}

/// Wilcoxon rank-sum test of every gene in `genes` between a group of cells and a reference.
///
/// - `counts`: raw counts, cells × features;
/// - `cell_totals_counts`: each cell's library size (from [`cell_totals`]); a cell's
///   expression is `ln(1 + count / (total / 1e4))` (a total of 0 counts as 1, like scanpy);
/// - `genes`: the feature indices to test (distinct; callers pass genes of type
///   "Gene Expression"); results come back in this order;
/// - `group`: the selected cells (a mask over every cell);
/// - `reference`: what the group is compared with.
///
/// Ranks are average ranks over the group's and the reference's values together, with all zeros
/// one tie block; the z score uses the tie-corrected variance and is 0 when undefined. Values
/// are ranked by the exact ratio count / total (log1p(CP10k) is increasing in it), so cells whose
/// counts are proportional to their totals tie exactly. scanpy ranks its rounded float values,
/// where such ties can split or merge by an ulp depending on numpy's SIMD `log1p`; its results
/// equal these once those ties are restored (see `tests/reference/stats_expected.py`).
pub fn rank_genes_wilcoxon(
    counts: CsrCounts<'_>,
    cell_totals_counts: &[f64],
    genes: &[u32],
    group: &(impl CellMask + ?Sized),
    reference: DeReference<'_>,
) -> Result<Vec<GeneDifferentialExpression>, StatsError> {
    let n_cells = counts.n_cells();
    check_len("cell totals", n_cells, cell_totals_counts.len())?;
    check_len("group mask", n_cells, group.cell_count())?;
    if let DeReference::Cells(cells) = reference {
        check_len("reference mask", n_cells, cells.cell_count())?;
    }
    const NOT_TESTED: u32 = u32::MAX;
    let mut slot_of_feature = vec![NOT_TESTED; counts.n_features];
    for (slot, &feature) in genes.iter().enumerate() {
        let entry = slot_of_feature
            .get_mut(feature as usize)
            .ok_or(StatsError::FeatureOutOfRange {
                feature,
                n_features: counts.n_features,
            })?;
        if *entry != NOT_TESTED {
            return Err(StatsError::DuplicateFeature { feature });
        }
        *entry = slot as u32;
    }
    let sides = |cell: usize| {
        let in_group = group.contains(cell);
        match reference {
            DeReference::Rest => (in_group, !in_group),
            DeReference::Cells(cells) => (in_group, cells.contains(cell)),
        }
    };
    let (n_group, n_reference) = (0..n_cells).fold((0_u64, 0_u64), |(g, r), cell| {
        let (in_group, in_reference) = sides(cell);
        (g + u64::from(in_group), r + u64::from(in_reference))
    });

    // Gather each tested gene's non-zero rank keys per side, in parallel over blocks of cells.
    const CELLS_PER_TASK: usize = 1 << 15;
    let blocks: Vec<Values> = (0..n_cells.div_ceil(CELLS_PER_TASK))
        .into_par_iter()
        .map(|block| {
            let mut values = Values::new(genes.len());
            let start = block * CELLS_PER_TASK;
            let end = (start + CELLS_PER_TASK).min(n_cells);
            for (cell, &total) in (start..end).zip(&cell_totals_counts[start..end]) {
                let (in_group, in_reference) = sides(cell);
                if !in_group && !in_reference {
                    continue;
                }
                // scanpy divides by total / 1e4, with a zero total counting as 1; the rank key
                // count / total is the same ratio up to the constant 1e4.
                let denominator = if total == 0.0 { CP10K_TARGET_SUM } else { total };
                let (index, cell_counts) = counts.cell(cell);
                for (&feature, &count) in index.iter().zip(cell_counts) {
                    let Some(&slot) = slot_of_feature.get(feature as usize) else {
                        continue;
                    };
                    if slot == NOT_TESTED || count.is_nan() || count <= 0.0 {
                        continue;
                    }
                    let bits = (f64::from(count) / denominator).to_bits();
                    if in_group {
                        values.group[slot as usize].push(bits);
                    }
                    if in_reference {
                        values.reference[slot as usize].push(bits);
                    }
                }
            }
            values
        })
        .collect();

    let rest = matches!(reference, DeReference::Rest);
    let mut results: Vec<GeneDifferentialExpression> = genes
        .par_iter()
        .enumerate()
        .map(|(slot, &feature)| {
            let mut group_bits = concat(blocks.iter().map(|b| b.group[slot].as_slice()));
            let mut reference_bits = concat(blocks.iter().map(|b| b.reference[slot].as_slice()));
            group_bits.sort_unstable();
            reference_bits.sort_unstable();
            gene_statistics(feature, &group_bits, &reference_bits, n_group, n_reference, rest)
        })
        .collect();
    let p_values: Vec<f64> = results.iter().map(|r| r.p_value).collect();
    for (result, q) in results.iter_mut().zip(benjamini_hochberg(&p_values)) {
        result.p_adjusted = q;
    }
    Ok(results)
}

/// Rank keys of the non-zero counts, per tested gene, for the group and the reference: the bits
/// of `count / total` (positive f64 values sort like their bits). One correctly rounded division
/// keeps the exact ties: cells whose counts are in the same proportion to their totals get the
/// same key, which computing log1p(count / (total / 1e4)) first would not guarantee.
struct Values {
    group: Vec<Vec<u64>>,
    reference: Vec<Vec<u64>>,
}

impl Values {
    fn new(n_genes: usize) -> Self {
        Self {
            group: vec![Vec::new(); n_genes],
            reference: vec![Vec::new(); n_genes],
        }
    }
}

fn concat<'s>(parts: impl Iterator<Item = &'s [u64]> + Clone) -> Vec<u64> {
    let mut all = Vec::with_capacity(parts.clone().map(<[u64]>::len).sum());
    for part in parts {
        all.extend_from_slice(part);
    }
    all
}

/// `t³ − t` for a tie block of `t` values.
fn tie_term(t: u64) -> f64 {
    let t = t as f64;
    t * t * t - t
}

/// The statistics of one gene from its sorted non-zero values on each side; `n_group` and
/// `n_reference` count every cell of each side, zeros included. `rest`: the reference is every
/// other cell (changes only the floating-point order of scanpy's expected rank sum).
fn gene_statistics(
    feature: u32,
    group: &[u64],
    reference: &[u64],
    n_group: u64,
    n_reference: u64,
    rest: bool,
) -> GeneDifferentialExpression {
    let zeros_group = n_group - group.len() as u64;
    let zeros = zeros_group + (n_reference - reference.len() as u64);
    let mut rank_sum = zeros_group as f64 * ((zeros as f64 + 1.0) / 2.0);
    let mut ties = tie_term(zeros);
    let mut ranked = zeros;
    let (mut sum_group, mut sum_reference) = (0.0_f64, 0.0_f64);
    let (mut i, mut j) = (0, 0);
    while i < group.len() || j < reference.len() {
        let value = match (group.get(i), reference.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        let in_group = group[i..].iter().take_while(|&&v| v == value).count();
        let in_reference = reference[j..].iter().take_while(|&&v| v == value).count();
        i += in_group;
        j += in_reference;
        let tied = (in_group + in_reference) as u64;
        // Average of ranks ranked + 1 ..= ranked + tied.
        rank_sum += in_group as f64 * (ranked as f64 + (tied as f64 + 1.0) / 2.0);
        ties += tie_term(tied);
        ranked += tied;
        // One log1p per distinct value: the key is count / total, the value log1p(1e4 · key).
        let log1p_cp10k = (f64::from_bits(value) * CP10K_TARGET_SUM).ln_1p();
        sum_group += in_group as f64 * log1p_cp10k;
        sum_reference += in_reference as f64 * log1p_cp10k;
    }

    let (n_g, n_r) = (n_group as f64, n_reference as f64);
    let n = n_g + n_r;
    let tie_correction = if n >= 2.0 { 1.0 - ties / (n * n * n - n) } else { 1.0 };
    let std_dev = (tie_correction * n_g * n_r * (n + 1.0) / 12.0).sqrt();
    let expected = if rest {
        n_g * (n + 1.0) / 2.0
    } else {
        n_g * ((n_g + n_r + 1.0) / 2.0)
    };
    let mut score = (rank_sum - expected) / std_dev;
    if !score.is_finite() {
        score = 0.0;
    }

    let mean_or_zero = |total: f64, cells: f64| if cells > 0.0 { total / cells } else { 0.0 };
    let mean_group = mean_or_zero(sum_group, n_g);
    let mean_reference = mean_or_zero(sum_reference, n_r);
    let log2_fold_change = if n_group == 0 || n_reference == 0 {
        0.0
    } else {
        ((mean_group.exp_m1() + FOLD_CHANGE_EPSILON) / (mean_reference.exp_m1() + FOLD_CHANGE_EPSILON)).log2()
    };
    GeneDifferentialExpression {
        feature,
        score,
        p_value: two_sided_normal_p(score),
        p_adjusted: 1.0,
        log2_fold_change,
        mean_log1p_cp10k_group: mean_group,
        mean_log1p_cp10k_reference: mean_reference,
        fraction_expressing_group: mean_or_zero(group.len() as f64, n_g),
        fraction_expressing_reference: mean_or_zero(reference.len() as f64, n_r),
    }
}

/// `2·Φ(−|z|)`, evaluated the way scipy's `ndtr` does (erf near 0, erfc in the tail).
pub(crate) fn two_sided_normal_p(z: f64) -> f64 {
    use std::f64::consts::FRAC_1_SQRT_2;
    let x = -z.abs() * FRAC_1_SQRT_2;
    let lower_tail = if -x < FRAC_1_SQRT_2 {
        0.5 + 0.5 * libm::erf(x)
    } else {
        0.5 * libm::erfc(-x)
    };
    (2.0 * lower_tail).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dense cells × genes matrix to CSR (zeros left out).
    fn csr(dense: &[&[f32]]) -> (Vec<u64>, Vec<u32>, Vec<f32>) {
        let mut offsets = vec![0u64];
        let (mut index, mut values) = (Vec::new(), Vec::new());
        for row in dense {
            for (feature, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    index.push(feature as u32);
                    values.push(v);
                }
            }
            offsets.push(index.len() as u64);
        }
        (offsets, index, values)
    }

    /// The textbook statistic on dense values, for comparison.
    fn dense_z(group: &[f64], reference: &[f64]) -> f64 {
        let mut all: Vec<(f64, bool)> = group
            .iter()
            .map(|&v| (v, true))
            .chain(reference.iter().map(|&v| (v, false)))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n = all.len() as f64;
        let (mut rank_sum, mut ties, mut i) = (0.0, 0.0, 0);
        while i < all.len() {
            let mut j = i;
            while j < all.len() && all[j].0 == all[i].0 {
                j += 1;
            }
            let avg = (i + 1 + j) as f64 / 2.0;
            rank_sum += all[i..j].iter().filter(|x| x.1).count() as f64 * avg;
            let t = (j - i) as f64;
            ties += t * t * t - t;
            i = j;
        }
        let (ng, nr) = (group.len() as f64, reference.len() as f64);
        let tc = 1.0 - ties / (n * n * n - n);
        (rank_sum - ng * (n + 1.0) / 2.0) / (tc * ng * nr * (n + 1.0) / 12.0).sqrt()
    }

    #[test]
    fn sparse_ranks_equal_dense_ranks() {
        let dense: Vec<Vec<f32>> = (0..40)
            .map(|c| {
                vec![
                    ((c * 7) % 5) as f32 * f32::from(c % 3 != 0),
                    ((c * 3) % 4) as f32,
                    if c < 20 { 2.0 } else { 0.0 },
                    0.0,
                ]
            })
            .collect();
        let rows: Vec<&[f32]> = dense.iter().map(Vec::as_slice).collect();
        let (offsets, index, values) = csr(&rows);
        let counts = CsrCounts::new(&offsets, &index, &values, 4).unwrap();
        let totals = cell_totals(counts, &[0, 1, 2, 3]).unwrap();
        let group: Vec<bool> = (0..40).map(|c| c % 4 == 0 || c < 6).collect();
        let result = rank_genes_wilcoxon(counts, &totals, &[0, 1, 2, 3], &group, DeReference::Rest).unwrap();
        for (gene, r) in result.iter().enumerate() {
            let expr = |c: usize| {
                let t = totals[c] / 1e4;
                (f64::from(dense[c][gene]) / if t == 0.0 { 1.0 } else { t }).ln_1p()
            };
            let g: Vec<f64> = (0..40).filter(|&c| group[c]).map(expr).collect();
            let rf: Vec<f64> = (0..40).filter(|&c| !group[c]).map(expr).collect();
            let z = dense_z(&g, &rf);
            let z = if z.is_finite() { z } else { 0.0 };
            assert!((r.score - z).abs() < 1e-12, "gene {gene}: {} vs {z}", r.score);
            let mean_g = g.iter().sum::<f64>() / g.len() as f64;
            assert!((r.mean_log1p_cp10k_group - mean_g).abs() < 1e-12);
            assert!(r.p_value > 0.0 && r.p_value <= 1.0 && r.p_adjusted >= r.p_value);
        }
        // Gene 3 is all zeros: neutral.
        assert_eq!((result[3].score, result[3].p_value), (0.0, 1.0));
        assert!(result[2].score > 0.0 && result[2].log2_fold_change > 0.0);
    }

    #[test]
    fn empty_sides_give_neutral_results() {
        let (offsets, index, values) = csr(&[&[1.0, 0.0], &[0.0, 3.0], &[2.0, 2.0]]);
        let counts = CsrCounts::new(&offsets, &index, &values, 2).unwrap();
        let totals = cell_totals(counts, &[0, 1]).unwrap();
        for group in [[false; 3], [true; 3]] {
            let result = rank_genes_wilcoxon(counts, &totals, &[0, 1], &group, DeReference::Rest).unwrap();
            for r in result {
                assert_eq!(
                    (r.score, r.p_value, r.p_adjusted, r.log2_fold_change),
                    (0.0, 1.0, 1.0, 0.0)
                );
            }
        }
        let none = [false; 3];
        let result = rank_genes_wilcoxon(counts, &totals, &[1], &[true, false, false], DeReference::Cells(&none));
        assert_eq!(result.unwrap()[0].score, 0.0);
    }

    #[test]
    fn bad_input_is_an_error() {
        let (offsets, index, values) = csr(&[&[1.0, 0.0], &[0.0, 3.0]]);
        let counts = CsrCounts::new(&offsets, &index, &values, 2).unwrap();
        let totals = [1.0, 3.0];
        let group = [true, false];
        assert!(matches!(
            rank_genes_wilcoxon(counts, &totals, &[0, 0], &group, DeReference::Rest),
            Err(StatsError::DuplicateFeature { feature: 0 })
        ));
        assert!(matches!(
            rank_genes_wilcoxon(counts, &totals, &[2], &group, DeReference::Rest),
            Err(StatsError::FeatureOutOfRange { .. })
        ));
        assert!(matches!(
            rank_genes_wilcoxon(counts, &totals[..1], &[0], &group, DeReference::Rest),
            Err(StatsError::LengthMismatch { .. })
        ));
        assert!(CsrCounts::new(&[0, 2, 1], &index, &values, 2).is_err());
        assert!(CsrCounts::new(&[], &[], &[], 2).is_err());
        assert!(CsrCounts::new(&[0, 1], &index, &values, 2).is_err());
    }

    #[test]
    fn normal_p_values() {
        assert_eq!(two_sided_normal_p(0.0), 1.0);
        assert!((two_sided_normal_p(1.959_963_984_540_054) - 0.05).abs() < 1e-15);
        assert!((two_sided_normal_p(-1.959_963_984_540_054) - 0.05).abs() < 1e-15);
        // 2·Φ(−10) = 1.5239706048321...e-23
        assert!((two_sided_normal_p(10.0) / 1.523_970_604_832_105e-23 - 1.0).abs() < 1e-12);
    }
}
