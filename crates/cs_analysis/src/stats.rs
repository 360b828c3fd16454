//! Statistics for selections of cells: Fisher's exact test on 2x2 tables, Benjamini–Hochberg
//! false-discovery-rate adjustment, and the composition of a selection (which classes of a
//! categorical column it holds) against the rest of the cells or against a second selection.
//!
//! Differential expression (Wilcoxon rank-sum on log-normalised counts) is
//! [`rank_genes_wilcoxon`](crate::rank_genes_wilcoxon).
//! Results match scipy (`scipy.stats.fisher_exact`, `scipy.stats.false_discovery_control`); the
//! reference numbers and the script that computes them are in `tests/reference/stats_expected.*`.

use rayon::prelude::*;

use crate::{CellSet, MISSING_LABEL};

/// Two tables whose probabilities differ by at most this relative amount count as equally likely
/// in [`fisher_exact_two_sided`] (R's `fisher.test` uses the same `1 + 1e-7`).
pub const FISHER_RELATIVE_TOLERANCE: f64 = 1e-7;

/// Half a cell added to every class on both sides of [`ClassEnrichment::log2_enrichment`].
pub const ENRICHMENT_PSEUDOCOUNT: f64 = 0.5;

/// Invalid input to a statistic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    #[error("{what} has {got} entries, expected {expected} (one per cell)")]
    LengthMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("cell {cell} has class code {code}, but the column has only {n_categories} classes")]
    CodeOutOfRange {
        cell: usize,
        code: u32,
        n_categories: usize,
    },
    #[error("feature index {feature} is out of range: the matrix has {n_features} features")]
    FeatureOutOfRange { feature: u32, n_features: usize },
    #[error("feature index {feature} is listed twice")]
    DuplicateFeature { feature: u32 },
    #[error("malformed sparse matrix: {reason}")]
    MalformedMatrix { reason: String },
}

/// Which cells belong to a selection: one `bool` per cell, or a [`CellSet`].
pub trait CellMask: Sync {
    /// How many cells the mask ranges over (must equal the number of cells of the data).
    fn cell_count(&self) -> usize;
    /// Whether `cell` (below [`CellMask::cell_count`]) is in the selection.
    fn contains(&self, cell: usize) -> bool;
}

impl CellMask for [bool] {
    fn cell_count(&self) -> usize {
        self.len()
    }
    fn contains(&self, cell: usize) -> bool {
        self[cell]
    }
}

impl CellMask for Vec<bool> {
    fn cell_count(&self) -> usize {
        self.len()
    }
    fn contains(&self, cell: usize) -> bool {
        self[cell]
    }
}

impl<const N: usize> CellMask for [bool; N] {
    fn cell_count(&self) -> usize {
        N
    }
    fn contains(&self, cell: usize) -> bool {
        self[cell]
    }
}

impl CellMask for CellSet {
    fn cell_count(&self) -> usize {
        self.universe()
    }
    fn contains(&self, cell: usize) -> bool {
        CellSet::contains(self, cell)
    }
}

// ---------------------------------------------------------------------------------------------
// Fisher's exact test
// ---------------------------------------------------------------------------------------------

/// ln(2π).
const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// `stirlerr(n) = ln(n!) − ln(√(2πn)·(n/e)^n)` for n = 0..=15 (0 at n = 0 by convention).
const STIRLERR_SMALL: [f64; 16] = [
    0.0,
    0.081_061_466_795_327_26,
    0.041_340_695_955_409_29,
    0.027_677_925_684_998_34,
    0.020_790_672_103_765_09,
    0.016_644_691_189_821_19,
    0.013_876_128_823_070_75,
    0.011_896_709_945_891_77,
    0.010_411_265_261_972_1,
    0.009_255_462_182_712_733,
    0.008_330_563_433_362_87,
    0.007_573_675_487_951_841,
    0.006_942_840_107_209_53,
    0.006_408_994_188_004_207,
    0.005_951_370_112_758_848,
    0.005_554_733_551_962_801,
];

/// The error of Stirling's formula for `ln(n!)`, for a whole number `n ≥ 0` (Loader 2000).
fn stirlerr(n: f64) -> f64 {
    const S0: f64 = 1.0 / 12.0;
    const S1: f64 = 1.0 / 360.0;
    const S2: f64 = 1.0 / 1260.0;
    const S3: f64 = 1.0 / 1680.0;
    const S4: f64 = 1.0 / 1188.0;
    if n <= 15.0 {
        return STIRLERR_SMALL[n.max(0.0) as usize];
    }
    let nn = n * n;
    if n > 500.0 {
        (S0 - S1 / nn) / n
    } else if n > 80.0 {
        (S0 - (S1 - S2 / nn) / nn) / n
    } else if n > 35.0 {
        (S0 - (S1 - (S2 - S3 / nn) / nn) / nn) / n
    } else {
        (S0 - (S1 - (S2 - (S3 - S4 / nn) / nn) / nn) / nn) / n
    }
}

/// The deviance term `x·ln(x/np) + np − x`, without cancellation when `x ≈ np` (Loader 2000).
fn bd0(x: f64, np: f64) -> f64 {
    if (x - np).abs() < 0.1 * (x + np) {
        let mut v = (x - np) / (x + np);
        let mut s = (x - np) * v;
        if s.abs() < f64::MIN_POSITIVE {
            return s;
        }
        let mut ej = 2.0 * x * v;
        v *= v;
        for j in 1..1000 {
            ej *= v;
            let next = s + ej / f64::from(2 * j + 1);
            if next == s {
                return next;
            }
            s = next;
        }
    }
    x * (x / np).ln() + np - x
}

/// ln of the binomial probability of `x` successes in `n` trials with success probability `p`
/// (`q = 1 − p`), accurate to a few ulps in relative terms even for millions of trials.
fn ln_binomial_pmf(x: f64, n: f64, p: f64, q: f64) -> f64 {
    if p == 0.0 {
        return if x == 0.0 { 0.0 } else { f64::NEG_INFINITY };
    }
    if q == 0.0 {
        return if x == n { 0.0 } else { f64::NEG_INFINITY };
    }
    if x == 0.0 {
        if n == 0.0 {
            return 0.0;
        }
        return if p < 0.1 { -bd0(n, n * q) - n * p } else { n * q.ln() };
    }
    if x == n {
        return if q < 0.1 { -bd0(n, n * p) - n * q } else { n * p.ln() };
    }
    if x < 0.0 || x > n {
        return f64::NEG_INFINITY;
    }
    let lc = stirlerr(n) - stirlerr(x) - stirlerr(n - x) - bd0(x, n * p) - bd0(n - x, n * q);
    let lf = LN_2PI + x.ln() + (-x / n).ln_1p();
    lc - 0.5 * lf
}

/// The hypergeometric distribution of the top-left cell of a 2x2 table with fixed margins:
/// `draws` balls drawn from an urn of `successes` white and `failures` black balls.
#[derive(Debug, Clone, Copy)]
struct Hypergeometric {
    successes: u64,
    failures: u64,
    draws: u64,
}

impl Hypergeometric {
    /// Smallest possible number of white balls drawn.
    fn lowest(&self) -> u64 {
        self.draws.saturating_sub(self.failures)
    }

    /// Largest possible number of white balls drawn.
    fn highest(&self) -> u64 {
        self.draws.min(self.successes)
    }

    /// `⌊(draws + 1)(successes + 1) / (total + 2)⌋`, the (upper) mode.
    fn mode(&self) -> u64 {
        let total = u128::from(self.successes) + u128::from(self.failures);
        let mode = (u128::from(self.draws) + 1) * (u128::from(self.successes) + 1) / (total + 2);
        (mode as u64).clamp(self.lowest(), self.highest())
    }

    /// ln P(X = x) (R's `dhyper(log = TRUE)` algorithm).
    fn ln_pmf(&self, x: u64) -> f64 {
        if x < self.lowest() || x > self.highest() {
            return f64::NEG_INFINITY;
        }
        let (r, b, n, x) = (self.successes as f64, self.failures as f64, self.draws as f64, x as f64);
        if n == 0.0 {
            return 0.0;
        }
        let p = n / (r + b);
        let q = (r + b - n) / (r + b);
        ln_binomial_pmf(x, r, p, q) + ln_binomial_pmf(n - x, b, p, q) - ln_binomial_pmf(n, r + b, p, q)
    }

    /// P(X = x + 1) / P(X = x).
    fn ratio_up(&self, x: u64) -> f64 {
        let (r, b, n, x) = (self.successes as f64, self.failures as f64, self.draws as f64, x as f64);
        (r - x) * (n - x) / ((x + 1.0) * (b - n + x + 1.0))
    }

    /// P(X = x − 1) / P(X = x).
    fn ratio_down(&self, x: u64) -> f64 {
        let (r, b, n, x) = (self.successes as f64, self.failures as f64, self.draws as f64, x as f64);
        x * (b - n + x) / ((r - x + 1.0) * (n - x + 1.0))
    }

    /// `Σ P(X = y)` for `y` from `start` to `end` (inclusive, either direction), where the terms
    /// shrink from `start` on (a tail beyond the mode). Walks the pmf recurrence, re-anchoring on
    /// the exact pmf every 256 steps, and stops once the rest cannot reach 1e-17 of the sum.
    fn tail_sum(&self, start: u64, end: u64) -> f64 {
        const REANCHOR_STEPS: u32 = 256;
        let ln_first = self.ln_pmf(start);
        if ln_first == f64::NEG_INFINITY {
            return 0.0;
        }
        let up = end >= start;
        // Terms relative to the first one, so that tails far below f64's range still add up.
        let (mut term, mut sum, mut y, mut steps) = (1.0_f64, 1.0_f64, start, 0_u32);
        while y != end {
            let ratio = if up { self.ratio_up(y) } else { self.ratio_down(y) };
            y = if up { y + 1 } else { y - 1 };
            steps += 1;
            term = if steps % REANCHOR_STEPS == 0 {
                (self.ln_pmf(y) - ln_first).exp()
            } else {
                term * ratio
            };
            sum += term;
            // The pmf is log-concave: beyond `y` the terms fall at least as fast as `ratio`.
            if term == 0.0 || (ratio < 1.0 && term / (1.0 - ratio) < sum * 1e-17) {
                break;
            }
        }
        (ln_first + sum.ln()).exp()
    }
}

/// First `y` in `lo..=hi` for which `test(y)` holds, where `test` is false then true along the
/// range; `None` when it never holds.
fn first_where(mut lo: u64, hi: u64, test: impl Fn(u64) -> bool) -> Option<u64> {
    if lo > hi || !test(hi) {
        return None;
    }
    let mut hi = hi;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if test(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo)
}

/// Two-sided Fisher's exact test for the 2x2 table `[[a, b], [c, d]]` (counts, any size up to
/// millions): the probability, under independence with the table's margins fixed, of a table
/// as likely as or less likely than the observed one.
///
/// Follows `scipy.stats.fisher_exact(table, alternative="two-sided")`: 1 when a row or column
/// sums to zero or when the observed table is the most likely one; probabilities are compared
/// with the relative tolerance [`FISHER_RELATIVE_TOLERANCE`] (R's; scipy 1.17 uses 1e-14, which
/// only differs for tables whose probability lies within 1e-7 of the observed one without
/// being equal). The pmf is evaluated in log space with Loader's saddle-point algorithm, so huge
/// tables neither overflow nor lose precision and take microseconds. The result is in [0, 1].
pub fn fisher_exact_two_sided(a: u64, b: u64, c: u64, d: u64) -> f64 {
    let (row1, row2, col1) = (a + b, c + d, a + c);
    if row1 == 0 || row2 == 0 || col1 == 0 || b + d == 0 {
        return 1.0;
    }
    let hyper = Hypergeometric {
        successes: row1,
        failures: row2,
        draws: col1,
    };
    let (lowest, highest, mode) = (hyper.lowest(), hyper.highest(), hyper.mode());
    let ln_p_observed = hyper.ln_pmf(a);
    let ln_p_mode = hyper.ln_pmf(mode);
    // |p_observed − p_mode| / max(p_observed, p_mode) <= tolerance: the observed table is a mode.
    if -(-(ln_p_mode - ln_p_observed).abs()).exp_m1() <= FISHER_RELATIVE_TOLERANCE {
        return 1.0;
    }
    let ln_threshold = ln_p_observed + FISHER_RELATIVE_TOLERANCE.ln_1p();
    let p = if a < mode {
        // All tables below the observed one, plus those above the mode less likely than it.
        let lower = hyper.tail_sum(a, lowest);
        let upper = first_where(mode, highest, |y| hyper.ln_pmf(y) < ln_threshold)
            .map_or(0.0, |first| hyper.tail_sum(first, highest));
        lower + upper
    } else {
        let upper = hyper.tail_sum(a, highest);
        // The lower tail is `lowest..=last` with `last` the last table below the mode at most as
        // likely as the observed one (the pmf rises up to the mode).
        let lower = if hyper.ln_pmf(lowest) <= ln_threshold {
            let last = first_where(lowest, mode, |y| hyper.ln_pmf(y) > ln_threshold)
                .map_or(mode, |first_above| first_above - 1);
            hyper.tail_sum(last, lowest)
        } else {
            0.0
        };
        upper + lower
    };
    if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) }
}

// ---------------------------------------------------------------------------------------------
// Benjamini–Hochberg
// ---------------------------------------------------------------------------------------------

/// Benjamini–Hochberg adjusted p-values (q-values), in the order of `p_values`.
///
/// `q_(i) = min_{j ≥ i} p_(j) / (j / m)` over the p-values sorted ascending, clamped to 1, as
/// `scipy.stats.false_discovery_control(p, method="bh")` and statsmodels `fdrcorrection`. NaN
/// p-values stay NaN and are left out: `m` counts the others only.
pub fn benjamini_hochberg(p_values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..p_values.len()).filter(|&i| !p_values[i].is_nan()).collect();
    order.sort_by(|&i, &j| p_values[i].total_cmp(&p_values[j]));
    let m = order.len() as f64;
    let mut q_values = vec![f64::NAN; p_values.len()];
    let mut running_min = f64::INFINITY;
    for (rank, &i) in order.iter().enumerate().rev() {
        let raw = p_values[i] / ((rank + 1) as f64 / m);
        running_min = running_min.min(raw);
        q_values[i] = running_min.clamp(0.0, 1.0);
    }
    q_values
}

/// The two-sided Mann–Whitney U test of two independent samples (a cohort's per-sample shares
/// in one group against another's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of the first sample (the number of pairs in which it is larger, ties counting 1/2).
    pub u: f64,
    pub p_value: f64,
    /// Whether `p_value` is from the exact distribution (else the normal approximation).
    pub exact: bool,
}

/// Mann–Whitney U as `scipy.stats.mannwhitneyu(a, b, alternative="two-sided")` with its
/// default method: exact when either sample has at most 8 values and nothing ties, else the
/// normal approximation with tie correction and continuity correction. NaN values are left
/// out; None when a side is then empty.
pub fn mann_whitney_u(a: &[f64], b: &[f64]) -> Option<MannWhitney> {
    let a: Vec<f64> = a.iter().copied().filter(|v| !v.is_nan()).collect();
    let b: Vec<f64> = b.iter().copied().filter(|v| !v.is_nan()).collect();
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    // Mid-ranks over both samples.
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|&v| (v, true))
        .chain(b.iter().map(|&v| (v, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = all.len();
    let (mut rank_sum_a, mut tie_sum, mut ties) = (0.0, 0.0, false);
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && all[j].0 == all[i].0 {
            j += 1;
        }
        let t = (j - i) as f64;
        let mid_rank = (i + j + 1) as f64 / 2.0;
        rank_sum_a += mid_rank * all[i..j].iter().filter(|x| x.1).count() as f64;
        if j - i > 1 {
            ties = true;
            tie_sum += t * t * t - t;
        }
        i = j;
    }
    let (f1, f2) = (n1 as f64, n2 as f64);
    let u1 = rank_sum_a - f1 * (f1 + 1.0) / 2.0;
    let u_max = u1.max(f1 * f2 - u1);
    let exact = (n1 <= 8 || n2 <= 8) && !ties;
    let p_value = if exact {
        // P(U >= u_max) under the null, doubled.
        let counts = u_distribution(n1, n2);
        let total: f64 = counts.iter().sum();
        let from = u_max.round() as usize;
        (2.0 * counts[from.min(counts.len())..].iter().sum::<f64>() / total).min(1.0)
    } else {
        let mean = f1 * f2 / 2.0;
        let nf = f1 + f2;
        let sd = (f1 * f2 / 12.0 * ((nf + 1.0) - tie_sum / (nf * (nf - 1.0)))).sqrt();
        if sd > 0.0 {
            crate::de::two_sided_normal_p((u_max - mean - 0.5) / sd)
        } else {
            1.0
        }
    };
    Some(MannWhitney { u: u1, p_value, exact })
}

/// How many arrangements of `n1` + `n2` distinct values give each U (0 ..= n1·n2).
fn u_distribution(n1: usize, n2: usize) -> Vec<f64> {
    // counts[j][u] for the first sample of i values against j values, built up over i.
    let max_u = n1 * n2;
    let mut previous: Vec<Vec<f64>> = (0..=n2).map(|_| vec![1.0]).collect();
    for i in 1..=n1 {
        let mut current: Vec<Vec<f64>> = Vec::with_capacity(n2 + 1);
        current.push(vec![1.0]);
        for j in 1..=n2 {
            // The largest value is the first sample's (adds j to U) or the second's.
            let mut row = vec![0.0; i * j + 1];
            for (u, &c) in previous[j].iter().enumerate() {
                row[u + j] += c;
            }
            for (u, &c) in current[j - 1].iter().enumerate() {
                row[u] += c;
            }
            current.push(row);
        }
        previous = current;
    }
    let mut counts = previous.swap_remove(n2);
    counts.resize(max_u + 1, 0.0);
    counts
}

// ---------------------------------------------------------------------------------------------
// Composition
// ---------------------------------------------------------------------------------------------

/// One class of a categorical column in a [`Composition`]: its share of the group against its
/// share of the reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassEnrichment {
    /// Cells of this class in the group (`k_g`).
    pub count_in_group: u64,
    /// Cells of this class in the reference (`k_r`).
    pub count_in_reference: u64,
    /// `k_g / n_g` (0 when the group has no classified cells).
    pub fraction_in_group: f64,
    /// `k_r / n_r` (0 when the reference has no classified cells).
    pub fraction_in_reference: f64,
    /// `log2((k_g + ½) / (n_g + ½K)) − log2((k_r + ½) / (n_r + ½K))` with `K` the number of
    /// classes: the log2 ratio of the class's share in the two groups, each smoothed by half a
    /// cell per class (Jeffreys pseudocount, [`ENRICHMENT_PSEUDOCOUNT`]) so that empty classes
    /// stay finite. 0 when the class is untested (see `p_value`).
    pub log2_enrichment: f64,
    /// Two-sided Fisher's exact p on `[[k_g, n_g − k_g], [k_r, n_r − k_r]]`. 1 for an untested
    /// class: one with no cells on either side, or any class when a side has no classified cells.
    pub p_value: f64,
    /// Benjamini–Hochberg adjustment of `p_value` across the tested classes (1 when untested).
    pub q_value: f64,
}

/// The class composition of a group of cells against a reference group.
#[derive(Debug, Clone, PartialEq)]
pub struct Composition {
    /// `n_g`: cells of the group with a class.
    pub cells_in_group: u64,
    /// `n_r`: cells of the reference with a class.
    pub cells_in_reference: u64,
    /// Cells of the group without a class (left out of `n_g`).
    pub unclassified_in_group: u64,
    /// Cells of the reference without a class (left out of `n_r`).
    pub unclassified_in_reference: u64,
    /// One entry per class code `0..n_categories`.
    pub classes: Vec<ClassEnrichment>,
}

/// The composition of a selection against the rest of the cells for one categorical column.
///
/// - `codes[cell]`: the cell's class in `0..n_categories`, or [`MISSING_LABEL`] (left out);
/// - `in_selection`: the selected cells (a mask over every cell).
///
/// The group is the selection, the reference every other cell. An empty selection, or one that
/// holds every cell, gives counts and fractions with every class untested (p = q = 1).
pub fn composition_vs_rest(
    codes: &[u32],
    n_categories: usize,
    in_selection: &(impl CellMask + ?Sized),
) -> Result<Composition, StatsError> {
    check_len("selection mask", codes.len(), in_selection.cell_count())?;
    let counts = count_classes(codes, n_categories, |cell| {
        let selected = in_selection.contains(cell);
        (selected, !selected)
    })?;
    Ok(compose(counts, n_categories))
}

/// The composition of selection A (the group) against selection B (the reference) for one
/// categorical column; `codes` as in [`composition_vs_rest`], `in_a` / `in_b` masks over every
/// cell. A cell in both selections counts in both; cells in neither are ignored.
pub fn composition_between(
    codes: &[u32],
    n_categories: usize,
    in_a: &(impl CellMask + ?Sized),
    in_b: &(impl CellMask + ?Sized),
) -> Result<Composition, StatsError> {
    check_len("selection A mask", codes.len(), in_a.cell_count())?;
    check_len("selection B mask", codes.len(), in_b.cell_count())?;
    let counts = count_classes(codes, n_categories, |cell| (in_a.contains(cell), in_b.contains(cell)))?;
    Ok(compose(counts, n_categories))
}

pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), StatsError> {
    if expected == got {
        Ok(())
    } else {
        Err(StatsError::LengthMismatch { what, expected, got })
    }
}

/// Per-class cell counts of the group and the reference; the last slot of each counts the cells
/// without a class.
struct ClassCounts {
    group: Vec<u64>,
    reference: Vec<u64>,
}

/// Counts classes over `codes`; `sides(cell)` says whether the cell is in (group, reference).
fn count_classes(
    codes: &[u32],
    n_categories: usize,
    sides: impl Fn(usize) -> (bool, bool) + Sync,
) -> Result<ClassCounts, StatsError> {
    const CELLS_PER_TASK: usize = 1 << 16;
    let missing_slot = n_categories;
    let empty = || ClassCounts {
        group: vec![0; n_categories + 1],
        reference: vec![0; n_categories + 1],
    };
    codes
        .par_chunks(CELLS_PER_TASK)
        .enumerate()
        .map(|(chunk, chunk_codes)| {
            let mut counts = empty();
            let first_cell = chunk * CELLS_PER_TASK;
            for (offset, &code) in chunk_codes.iter().enumerate() {
                let cell = first_cell + offset;
                let slot = if code == MISSING_LABEL {
                    missing_slot
                } else if (code as usize) < n_categories {
                    code as usize
                } else {
                    return Err(StatsError::CodeOutOfRange {
                        cell,
                        code,
                        n_categories,
                    });
                };
                let (in_group, in_reference) = sides(cell);
                counts.group[slot] += u64::from(in_group);
                counts.reference[slot] += u64::from(in_reference);
            }
            Ok(counts)
        })
        .try_reduce(empty, |mut a, b| {
            for (x, y) in a.group.iter_mut().zip(&b.group) {
                *x += y;
            }
            for (x, y) in a.reference.iter_mut().zip(&b.reference) {
                *x += y;
            }
            Ok(a)
        })
}

fn compose(counts: ClassCounts, n_categories: usize) -> Composition {
    let n_group: u64 = counts.group[..n_categories].iter().sum();
    let n_reference: u64 = counts.reference[..n_categories].iter().sum();
    let k = n_categories as f64;
    let share = |count: u64, total: u64| if total == 0 { 0.0 } else { count as f64 / total as f64 };
    let smoothed_log2 = |count: u64, total: u64| {
        ((count as f64 + ENRICHMENT_PSEUDOCOUNT) / (total as f64 + ENRICHMENT_PSEUDOCOUNT * k)).log2()
    };
    let mut classes: Vec<ClassEnrichment> = (0..n_categories)
        .map(|class| {
            let (k_g, k_r) = (counts.group[class], counts.reference[class]);
            let tested = n_group > 0 && n_reference > 0 && k_g + k_r > 0;
            ClassEnrichment {
                count_in_group: k_g,
                count_in_reference: k_r,
                fraction_in_group: share(k_g, n_group),
                fraction_in_reference: share(k_r, n_reference),
                log2_enrichment: if tested {
                    smoothed_log2(k_g, n_group) - smoothed_log2(k_r, n_reference)
                } else {
                    0.0
                },
                p_value: if tested {
                    fisher_exact_two_sided(k_g, n_group - k_g, k_r, n_reference - k_r)
                } else {
                    1.0
                },
                q_value: 1.0,
            }
        })
        .collect();
    let tested: Vec<usize> = (0..n_categories)
        .filter(|&class| n_group > 0 && n_reference > 0 && counts.group[class] + counts.reference[class] > 0)
        .collect();
    let p_tested: Vec<f64> = tested.iter().map(|&class| classes[class].p_value).collect();
    for (&class, q) in tested.iter().zip(benjamini_hochberg(&p_tested)) {
        classes[class].q_value = q;
    }
    Composition {
        cells_in_group: n_group,
        cells_in_reference: n_reference,
        unclassified_in_group: counts.group[n_categories],
        unclassified_in_reference: counts.reference[n_categories],
        classes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mann_whitney_matches_scipy() {
        // scipy 1.17.1 stats.mannwhitneyu(a, b, alternative="two-sided").
        // (a, b, U of a, p, exact)
        type Case<'a> = (&'a [f64], &'a [f64], f64, f64, bool);
        let cases: [Case<'_>; 5] = [
            (&[0.1, 0.2, 0.3], &[0.4, 0.5, 0.6], 0.0, 0.1, true),
            (&[0.3, 0.1, 0.5, 0.45], &[0.2, 0.25, 0.6], 6.0, 1.0, true),
            (
                &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
                &[5.5, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0],
                5.0,
                0.0012590162631761445,
                false,
            ),
            (
                &[1.0, 2.0, 2.0, 3.0, 3.0, 3.0],
                &[2.0, 3.0, 4.0, 4.0, 5.0],
                5.5,
                0.08871369199677616,
                false,
            ),
            (&[0.5, 0.5], &[0.5, 0.5, 0.5], 3.0, 1.0, false),
        ];
        for (a, b, u, p, exact) in cases {
            let r = mann_whitney_u(a, b).unwrap();
            assert_eq!((r.u, r.exact), (u, exact), "{a:?} {b:?}");
            assert!((r.p_value - p).abs() < 1e-12, "{a:?} {b:?}: {} vs {p}", r.p_value);
        }
        assert!(mann_whitney_u(&[f64::NAN], &[1.0]).is_none());
    }

    fn close(actual: f64, expected: f64, rel: f64) -> bool {
        (actual - expected).abs() <= rel * expected.abs().max(1e-300)
    }

    #[test]
    fn fisher_small_tables_match_scipy() {
        // scipy.stats.fisher_exact(...).pvalue
        assert!(close(
            fisher_exact_two_sided(8, 2, 1, 5),
            0.034_965_034_965_034_975,
            1e-12
        ));
        assert!(close(
            fisher_exact_two_sided(1, 9, 11, 3),
            0.002_759_456_185_220_083_6,
            1e-12
        ));
        assert_eq!(fisher_exact_two_sided(10, 10, 10, 10), 1.0);
        assert_eq!(fisher_exact_two_sided(0, 0, 3, 4), 1.0);
        assert_eq!(fisher_exact_two_sided(0, 5, 0, 7), 1.0);
        assert_eq!(fisher_exact_two_sided(0, 0, 0, 0), 1.0);
    }

    #[test]
    fn fisher_symmetric_ties_count_both_tails() {
        // Margins all 20: P(7) == P(13) exactly, so both tails count.
        assert!(close(
            fisher_exact_two_sided(7, 13, 13, 7),
            0.112_833_775_483_096,
            1e-12
        ));
        assert!(close(
            fisher_exact_two_sided(13, 7, 7, 13),
            0.112_833_775_483_096,
            1e-12
        ));
    }

    #[test]
    fn fisher_huge_tables_do_not_overflow() {
        let p = fisher_exact_two_sided(400_000, 100_000, 100_000, 400_000);
        assert_eq!(p, 0.0);
        let p = fisher_exact_two_sided(250_100, 249_900, 249_900, 250_100);
        assert!(close(p, 0.690_630_206_350_879_8, 1e-9), "{p}");
    }

    #[test]
    fn bh_matches_statsmodels_and_keeps_nan() {
        // statsmodels.stats.multitest.fdrcorrection([0.01, 0.04, 0.03, 0.2])
        let q = benjamini_hochberg(&[0.01, 0.04, f64::NAN, 0.03, 0.2]);
        let expected = [0.04, 0.053_333_333_333_333_33, f64::NAN, 0.053_333_333_333_333_33, 0.2];
        for (a, e) in q.iter().zip(expected) {
            if e.is_nan() {
                assert!(a.is_nan());
            } else {
                assert!(close(*a, e, 1e-12), "{a} vs {e}");
            }
        }
        assert!(benjamini_hochberg(&[]).is_empty());
        assert!(benjamini_hochberg(&[f64::NAN])[0].is_nan());
        assert_eq!(benjamini_hochberg(&[0.9, 0.95]), vec![0.95, 0.95]);
        assert_eq!(benjamini_hochberg(&[1.0]), vec![1.0]);
    }

    #[test]
    fn bh_is_monotone_in_p() {
        let p = [0.5, 0.001, 0.02, 0.02, 0.3, 0.0401, 0.9];
        let q = benjamini_hochberg(&p);
        for i in 0..p.len() {
            for j in 0..p.len() {
                if p[i] <= p[j] {
                    assert!(q[i] <= q[j]);
                }
            }
            assert!(q[i] >= p[i] && q[i] <= 1.0);
        }
    }

    const M: u32 = MISSING_LABEL;

    #[test]
    fn composition_counts_fractions_and_missing() {
        let codes = [0, 1, 1, M, 2, 0, 1, M];
        let sel = [true, true, true, true, false, false, false, false];
        let c = composition_vs_rest(&codes, 4, &sel).unwrap();
        assert_eq!((c.cells_in_group, c.cells_in_reference), (3, 3));
        assert_eq!((c.unclassified_in_group, c.unclassified_in_reference), (1, 1));
        let counts: Vec<(u64, u64)> = c
            .classes
            .iter()
            .map(|k| (k.count_in_group, k.count_in_reference))
            .collect();
        assert_eq!(counts, vec![(1, 1), (2, 1), (0, 1), (0, 0)]);
        assert!(close(c.classes[1].fraction_in_group, 2.0 / 3.0, 1e-15));
        let expected = ((2.5_f64 / 5.0) / (1.5 / 5.0)).log2();
        assert!(close(c.classes[1].log2_enrichment, expected, 1e-12));
        // Class 3 has no cells: untested, neutral.
        assert_eq!(c.classes[3].log2_enrichment, 0.0);
        assert_eq!((c.classes[3].p_value, c.classes[3].q_value), (1.0, 1.0));
        for class in &c.classes {
            assert!((0.0..=1.0).contains(&class.p_value) && (0.0..=1.0).contains(&class.q_value));
        }
    }

    #[test]
    fn composition_edge_cases_do_not_panic() {
        let codes = [0, 1, 1, 0, 2];
        // Empty selection.
        let c = composition_vs_rest(&codes, 3, &[false; 5]).unwrap();
        assert_eq!((c.cells_in_group, c.cells_in_reference), (0, 5));
        assert!(c.classes.iter().all(|k| k.p_value == 1.0 && k.q_value == 1.0));
        assert!(
            c.classes
                .iter()
                .all(|k| k.fraction_in_group == 0.0 && k.log2_enrichment == 0.0)
        );
        // Selection = every cell: the rest is empty.
        let c = composition_vs_rest(&codes, 3, &[true; 5]).unwrap();
        assert_eq!((c.cells_in_group, c.cells_in_reference), (5, 0));
        assert!(
            c.classes
                .iter()
                .all(|k| k.p_value == 1.0 && k.fraction_in_reference == 0.0)
        );
        assert!(close(c.classes[1].fraction_in_group, 0.4, 1e-15));
        // One class only.
        let c = composition_vs_rest(&[0, 0, 0, 0], 1, &[true, false, true, false]).unwrap();
        assert_eq!(c.classes.len(), 1);
        assert_eq!((c.classes[0].p_value, c.classes[0].log2_enrichment), (1.0, 0.0));
        // No classes, no cells.
        let c = composition_vs_rest(&[], 0, &[]).unwrap();
        assert!(c.classes.is_empty());
        // Every cell unclassified.
        let c = composition_vs_rest(&[M, M], 2, &[true, false]).unwrap();
        assert_eq!((c.cells_in_group, c.unclassified_in_group), (0, 1));
        assert!(c.classes.iter().all(|k| k.p_value == 1.0));
    }

    #[test]
    fn composition_rejects_bad_input() {
        assert!(matches!(
            composition_vs_rest(&[0, 5], 3, &[true, false]),
            Err(StatsError::CodeOutOfRange { cell: 1, code: 5, .. })
        ));
        assert!(matches!(
            composition_vs_rest(&[0, 1], 3, &[true]),
            Err(StatsError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn composition_between_counts_overlap_in_both() {
        let codes = [0, 1, 0, 1, 0];
        let a = [true, true, true, false, false];
        let b = [false, false, true, true, true];
        let c = composition_between(&codes, 2, &a, &b).unwrap();
        assert_eq!((c.cells_in_group, c.cells_in_reference), (3, 3));
        assert_eq!(c.classes[0].count_in_group, 2);
        assert_eq!(c.classes[0].count_in_reference, 2);
        let p = fisher_exact_two_sided(2, 1, 2, 1);
        assert_eq!(c.classes[0].p_value, p);
    }

    #[test]
    fn composition_matches_direct_fisher_on_many_cells() {
        let n = 200_000_usize;
        let codes: Vec<u32> = (0..n).map(|i| ((i * 7919) % 8) as u32).collect();
        let sel: Vec<bool> = (0..n).map(|i| i % 5 == 0 || (codes[i] == 3 && i % 7 == 0)).collect();
        let c = composition_vs_rest(&codes, 8, &sel).unwrap();
        let class3 = c.classes[3];
        let p = fisher_exact_two_sided(
            class3.count_in_group,
            c.cells_in_group - class3.count_in_group,
            class3.count_in_reference,
            c.cells_in_reference - class3.count_in_reference,
        );
        assert_eq!(class3.p_value, p);
        assert!(class3.p_value < 1e-10 && class3.log2_enrichment > 0.0);
    }

    #[test]
    fn cell_sets_work_as_masks() {
        let mut set = CellSet::new(5);
        set.insert(1);
        set.insert(2);
        let codes = [0, 1, 1, 0, 1];
        let from_set = composition_vs_rest(&codes, 2, &set).unwrap();
        let from_bools = composition_vs_rest(&codes, 2, &[false, true, true, false, false]).unwrap();
        assert_eq!(from_set, from_bools);
    }
}
