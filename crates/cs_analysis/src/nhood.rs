//! Neighbourhood enrichment by label permutation, computed the way
//! `squidpy.gr.nhood_enrichment(adata, cluster_key, n_perms, seed)` computes it:
//!
//! - `count[a][b]` is the number of stored edges `i -> j` of the [`SpatialGraph`] with
//!   `label(i) = a` and `label(j) = b` (squidpy's `_nenrich` walks the CSR rows, so each undirected
//!   edge of a symmetric graph is counted from both of its cells, and `count` is symmetric; a kNN
//!   graph gives an asymmetric `count`);
//! - each permutation shuffles the labels over the cells and counts again;
//! - `zscore = (count - mean(perm_counts)) / std(perm_counts)` with the population standard
//!   deviation (numpy's default `ddof=0`, as squidpy uses); NaN where that deviation is 0.
//!
//! The permutations are our own (a seeded wyrand stream per permutation, Fisher–Yates), so the
//! z-scores agree with squidpy's within permutation noise, not bit for bit; the observed counts
//! agree exactly. Results depend only on the seed, never on the number of threads: each
//! permutation has its own stream, and the sums over permutations are exact integers.
//!
//! Speed: cells are renumbered breadth-first so neighbours' labels share cache lines, and
//! permutations run in batches of eight that share one pass over the edge list (with up to 16
//! classes, a cell's eight labels pack into one u64 and one multiply-add gives all eight
//! class-pair codes of an edge); batches run in parallel with rayon.
//!
//! Differences from squidpy, by design:
//! - cells whose label is [`MISSING_LABEL`] are left out (the subgraph induced on labelled cells;
//!   squidpy refuses such data: its labels must all be categories);
//! - an optional selection restricts the analysis to the subgraph induced on the selected cells,
//!   with the labels shuffled among them only;
//! - fewer than two classes is not an error (squidpy raises): the z-scores are then NaN.

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::SpatialGraph;

/// The label of a cell without a class (the same value as `cs_xenium::MISSING_CODE`).
pub const MISSING_LABEL: u32 = u32::MAX;

/// At most this many classes: labels are stored in a byte, and each batch of permutations in
/// flight holds a few `classes²` matrices.
pub const MAX_CLASSES: usize = 256;

/// Why enrichment could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum NhoodError {
    #[error("{labels} labels for a graph of {cells} cells")]
    LabelCount { labels: usize, cells: usize },
    #[error("cell {cell} has label {label}, but there are {n_classes} classes")]
    LabelOutOfRange { cell: usize, label: u32, n_classes: usize },
    #[error("{n_classes} classes: at most {MAX_CLASSES} are supported")]
    TooManyClasses { n_classes: usize },
    #[error("selected cell {cell} is not below {cells}")]
    SelectionOutOfRange { cell: u32, cells: usize },
    #[error("cancelled")]
    Cancelled,
}

/// Permutation settings (squidpy's `n_perms` and `seed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NhoodOptions {
    pub n_perms: usize,
    pub seed: u64,
}

impl Default for NhoodOptions {
    fn default() -> Self {
        Self { n_perms: 1000, seed: 0 }
    }
}

/// Enrichment between `n_classes` classes; matrices are row-major `n_classes × n_classes`
/// (`[a * n_classes + b]`), row = the class of the cell whose neighbours are counted.
#[derive(Debug, Clone, PartialEq)]
pub struct NhoodEnrichment {
    pub n_classes: usize,
    /// Cells taking part (selected and labelled).
    pub n_cells: usize,
    /// Taking part, per class.
    pub cells_per_class: Vec<u64>,
    pub n_perms: usize,
    /// Observed edge counts.
    pub counts: Vec<u64>,
    /// Mean and population standard deviation of the counts over the permutations.
    pub perm_mean: Vec<f64>,
    pub perm_std: Vec<f64>,
    /// `(counts - perm_mean) / perm_std`, NaN where `perm_std` is 0.
    pub zscores: Vec<f64>,
}

impl NhoodEnrichment {
    pub fn count(&self, a: usize, b: usize) -> u64 {
        self.counts[a * self.n_classes + b]
    }

    pub fn zscore(&self, a: usize, b: usize) -> f64 {
        self.zscores[a * self.n_classes + b]
    }
}

/// Neighbourhood enrichment of `labels` (one per graph cell: a class below `n_classes`, or
/// [`MISSING_LABEL`]) over `graph`, on all cells or on the `selection` (cell indices; repeats
/// ignored).
pub fn nhood_enrichment(
    graph: &SpatialGraph,
    labels: &[u32],
    n_classes: usize,
    selection: Option<&[u32]>,
    options: &NhoodOptions,
) -> Result<NhoodEnrichment, NhoodError> {
    nhood_enrichment_cancellable(graph, labels, n_classes, selection, options, &AtomicBool::new(false))
}

/// [`nhood_enrichment`] that gives up with [`NhoodError::Cancelled`] soon after `cancel` is set.
pub fn nhood_enrichment_cancellable(
    graph: &SpatialGraph,
    labels: &[u32],
    n_classes: usize,
    selection: Option<&[u32]>,
    options: &NhoodOptions,
    cancel: &AtomicBool,
) -> Result<NhoodEnrichment, NhoodError> {
    let n = graph.len();
    if labels.len() != n {
        return Err(NhoodError::LabelCount {
            labels: labels.len(),
            cells: n,
        });
    }
    if n_classes > MAX_CLASSES {
        return Err(NhoodError::TooManyClasses { n_classes });
    }
    if let Some((cell, &label)) = labels
        .iter()
        .enumerate()
        .find(|(_, l)| **l != MISSING_LABEL && **l as usize >= n_classes)
    {
        return Err(NhoodError::LabelOutOfRange { cell, label, n_classes });
    }
    let mut keep: Vec<bool> = labels.iter().map(|&l| l != MISSING_LABEL).collect();
    if let Some(selection) = selection {
        let mut selected = vec![false; n];
        for &cell in selection {
            *selected
                .get_mut(cell as usize)
                .ok_or(NhoodError::SelectionOutOfRange { cell, cells: n })? = true;
        }
        for (k, s) in keep.iter_mut().zip(selected) {
            *k &= s;
        }
    }
    let (sub, original) = graph.induced_subgraph(&keep);
    let mut cells_per_class = vec![0u64; n_classes];
    for &g in &original {
        cells_per_class[labels[g as usize] as usize] += 1;
    }
    let counter = Counter::new(&sub, n_classes);
    // Labels in the counter's cell order, one byte each (the shuffles walk this array).
    let base: Vec<u8> = counter
        .order
        .iter()
        .map(|&l| labels[original[l as usize] as usize] as u8)
        .collect();
    let (counts, sums) = if n_classes <= PACKED_MAX_CLASSES {
        permutation_test::<PackedLanes>(&counter, &base, options, cancel)?
    } else {
        permutation_test::<WideLanes>(&counter, &base, options, cancel)?
    };

    let (perm_mean, perm_std) = sums.mean_std(options.n_perms);
    let zscores = counts
        .iter()
        .zip(perm_mean.iter().zip(&perm_std))
        .map(|(&c, (&m, &s))| if s > 0.0 { (c as f64 - m) / s } else { f64::NAN })
        .collect();
    Ok(NhoodEnrichment {
        n_classes,
        n_cells: original.len(),
        cells_per_class,
        n_perms: options.n_perms,
        counts,
        perm_mean,
        perm_std,
        zscores,
    })
}

/// The observed counts and the sums over `options.n_perms` shuffles of `base`.
///
/// Permutations go in batches of [`LANES`]: the batch's labellings sit side by side per cell
/// (layout `P`), so one pass over the edges counts them all, and the edge list is read once per
/// batch rather than once per permutation.
fn permutation_test<P: LaneLayout>(
    counter: &Counter,
    base: &[u8],
    options: &NhoodOptions,
    cancel: &AtomicBool,
) -> Result<(Vec<u64>, Sums), NhoodError> {
    let c2 = counter.n_classes * counter.n_classes;
    let mut counts = vec![0u64; c2];
    counter.count(base, &mut counts);
    let batches = options.n_perms.div_ceil(LANES);
    let sums = (0..batches)
        .into_par_iter()
        .map(|batch| -> Result<Sums, NhoodError> {
            if cancel.load(Ordering::Relaxed) {
                return Err(NhoodError::Cancelled);
            }
            let perms = batch * LANES..((batch + 1) * LANES).min(options.n_perms);
            // Each permutation shuffles its own contiguous copy (Fisher–Yates with its own
            // stream, in cache), which then goes into its lane.
            let mut lanes = P::with_cells(base.len());
            let mut shuffled = base.to_vec();
            for (lane, perm) in perms.clone().enumerate() {
                shuffled.copy_from_slice(base);
                let mut rng = WyRand::new(options.seed, perm as u64);
                for i in (1..shuffled.len()).rev() {
                    shuffled.swap(i, rng.below(i as u64 + 1) as usize);
                }
                lanes.set_lane(lane, &shuffled);
            }
            let mut tallies = vec![0u64; LANES * c2];
            lanes.count(counter, &mut tallies);
            let mut sums = Sums::new(c2);
            for lane in 0..perms.len() {
                sums.add(&tallies[lane * c2..][..c2]);
            }
            Ok(sums)
        })
        .try_reduce(|| Sums::new(c2), |a, b| Ok(a.merge(b)))?;
    Ok((counts, sums))
}

/// Permutations counted together in one pass over the edges.
const LANES: usize = 8;

/// Up to this many classes, a cell's labels under the [`LANES`] permutations of a batch pack
/// into the bytes of one u64, and `label_i * classes + label_j` (< 256) for all lanes is one
/// multiply-add.
const PACKED_MAX_CLASSES: usize = 16;

/// How a batch's labellings are stored per cell, and counted.
trait LaneLayout: Sized {
    fn with_cells(cells: usize) -> Self;
    /// Sets lane `lane` to `labels` (one per cell, in the counter's order).
    fn set_lane(&mut self, lane: usize, labels: &[u8]);
    /// Writes each lane's count matrix into `out` (`LANES × n_classes²`).
    fn count(&self, counter: &Counter, out: &mut [u64]);
}

/// Labels below [`PACKED_MAX_CLASSES`], lane `k` in byte `k` of a cell's word.
struct PackedLanes(Vec<u64>);

impl LaneLayout for PackedLanes {
    fn with_cells(cells: usize) -> Self {
        Self(vec![0; cells])
    }

    fn set_lane(&mut self, lane: usize, labels: &[u8]) {
        let shift = 8 * lane;
        let keep = !(0xFFu64 << shift);
        for (word, &label) in self.0.iter_mut().zip(labels) {
            *word = (*word & keep) | (u64::from(label) << shift);
        }
    }

    fn count(&self, counter: &Counter, out: &mut [u64]) {
        let c = counter.n_classes;
        let c2 = c * c;
        if c2 == 0 {
            return;
        }
        // Byte-wise a * c + b stays below c² <= 256 in every byte: no carries between lanes.
        let mut tallies = [[0u64; 256]; LANES];
        let labels = &self.0;
        for &[i, j] in &counter.pairs {
            let codes = labels[i as usize] * c as u64 + labels[j as usize];
            for (lane, tally) in tallies.iter_mut().enumerate() {
                tally[((codes >> (8 * lane)) & 0xFF) as usize] += 1;
            }
        }
        for (matrix, tally) in out.chunks_exact_mut(c2).zip(&tallies) {
            matrix.copy_from_slice(&tally[..c2]);
            counter.complete(matrix);
        }
    }
}

/// Any labels: `[u8; LANES]` per cell.
struct WideLanes(Vec<[u8; LANES]>);

impl LaneLayout for WideLanes {
    fn with_cells(cells: usize) -> Self {
        Self(vec![[0; LANES]; cells])
    }

    fn set_lane(&mut self, lane: usize, labels: &[u8]) {
        for (cell, &label) in self.0.iter_mut().zip(labels) {
            cell[lane] = label;
        }
    }

    fn count(&self, counter: &Counter, out: &mut [u64]) {
        let c = counter.n_classes;
        let c2 = c * c;
        if c2 == 0 {
            return;
        }
        out.fill(0);
        for &[i, j] in &counter.pairs {
            let (a, b) = (&self.0[i as usize], &self.0[j as usize]);
            // Each lane has its own matrix, so the increments do not wait on each other.
            for lane in 0..LANES {
                out[lane * c2 + usize::from(a[lane]) * c + usize::from(b[lane])] += 1;
            }
        }
        for matrix in out.chunks_exact_mut(c2) {
            counter.complete(matrix);
        }
    }
}

/// Counts class-to-class edges over a compact graph. Cells are renumbered in breadth-first
/// order, so that a cell's neighbours sit close to it in the label arrays (the counting then
/// reads labels from cache, whatever the order the cells came in). The edges are kept as a flat
/// list of pairs; for a symmetric graph only the pairs `i -> j` with `j > i`, and the matrix is
/// completed by symmetry.
struct Counter {
    /// `order[new] = old`: the cell (of the compact graph) at each position.
    order: Vec<u32>,
    pairs: Vec<[u32; 2]>,
    half: bool,
    n_classes: usize,
}

impl Counter {
    fn new(graph: &SpatialGraph, n_classes: usize) -> Self {
        let n = graph.len();
        let half = graph.is_symmetric();
        let mut order: Vec<u32> = Vec::with_capacity(n);
        let mut position = vec![u32::MAX; n];
        for root in 0..n {
            if position[root] != u32::MAX {
                continue;
            }
            position[root] = order.len() as u32;
            order.push(root as u32);
            let mut head = order.len() - 1;
            while head < order.len() {
                let cell = order[head] as usize;
                head += 1;
                for &j in graph.neighbors(cell) {
                    if position[j as usize] == u32::MAX {
                        position[j as usize] = order.len() as u32;
                        order.push(j);
                    }
                }
            }
        }
        let mut pairs = Vec::with_capacity(if half { graph.nnz() / 2 } else { graph.nnz() });
        for (new, &old) in order.iter().enumerate() {
            let row = graph.neighbors(old as usize).iter().map(|&j| position[j as usize]);
            pairs.extend(row.filter(|&j| !half || j as usize > new).map(|j| [new as u32, j]));
        }
        Self {
            order,
            pairs,
            half,
            n_classes,
        }
    }

    /// Adds the counts for `labels` (one per cell, in `order`) to `out` (`n_classes²`).
    fn count(&self, labels: &[u8], out: &mut [u64]) {
        let c = self.n_classes;
        for &[i, j] in &self.pairs {
            out[usize::from(labels[i as usize]) * c + usize::from(labels[j as usize])] += 1;
        }
        self.complete(out);
    }

    /// For a half-stored symmetric graph: `out = U + Uᵀ`.
    fn complete(&self, out: &mut [u64]) {
        let c = self.n_classes;
        if self.half {
            for a in 0..c {
                for b in a..c {
                    let sum = out[a * c + b] + out[b * c + a];
                    out[a * c + b] = sum;
                    out[b * c + a] = sum;
                }
            }
        }
    }
}

/// Exact integer sums over permutations: addition in any order gives the same result.
struct Sums {
    sum: Vec<u128>,
    sum_sq: Vec<u128>,
}

impl Sums {
    fn new(len: usize) -> Self {
        Self {
            sum: vec![0; len],
            sum_sq: vec![0; len],
        }
    }

    fn add(&mut self, counts: &[u64]) {
        for ((s, q), &c) in self.sum.iter_mut().zip(&mut self.sum_sq).zip(counts) {
            let c = u128::from(c);
            *s += c;
            *q += c * c;
        }
    }

    fn merge(mut self, other: Self) -> Self {
        for (a, b) in self.sum.iter_mut().zip(other.sum) {
            *a += b;
        }
        for (a, b) in self.sum_sq.iter_mut().zip(other.sum_sq) {
            *a += b;
        }
        self
    }

    /// Mean and population standard deviation over `n` permutations; the variance is
    /// `(n·Σc² − (Σc)²) / n²`, computed exactly before the one rounding to f64.
    fn mean_std(&self, n: usize) -> (Vec<f64>, Vec<f64>) {
        if n == 0 {
            let nan = vec![f64::NAN; self.sum.len()];
            return (nan.clone(), nan);
        }
        let nn = n as u128;
        let mean = self.sum.iter().map(|&s| s as f64 / n as f64).collect();
        let std = self
            .sum
            .iter()
            .zip(&self.sum_sq)
            .map(|(&s, &q)| {
                let numerator = nn.saturating_mul(q).saturating_sub(s.saturating_mul(s));
                (numerator as f64 / (n as f64 * n as f64)).sqrt()
            })
            .collect();
        (mean, std)
    }
}

/// wyrand (Wang Yi): a small, fast generator that passes BigCrush and PractRand. One stream per
/// permutation, keyed by the seed and the permutation's index.
struct WyRand(u64);

impl WyRand {
    fn new(seed: u64, stream: u64) -> Self {
        // SplitMix64 finaliser over both keys, so nearby seeds and streams start far apart.
        let mut z = seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(stream.wrapping_mul(0xD1B5_4A32_D192_ED03))
            .wrapping_add(0x632B_E59B_D9B4_E019);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self(z ^ (z >> 31))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xA076_1D64_78BD_642F);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xE703_7ED1_A0B4_28DB);
        ((t >> 64) as u64) ^ (t as u64)
    }

    /// Uniform in `0..bound` (`bound > 0`): Lemire's nearly divisionless multiply-and-reject.
    fn below(&mut self, bound: u64) -> u64 {
        let mut m = u128::from(self.next_u64()) * u128::from(bound);
        if (m as u64) < bound {
            let threshold = bound.wrapping_neg() % bound;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(bound);
            }
        }
        (m >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square() -> SpatialGraph {
        // 0 - 1
        // |   |
        // 3 - 2
        SpatialGraph::from_undirected_edges(4, &[[0, 1], [1, 2], [2, 3], [3, 0]]).unwrap()
    }

    #[test]
    fn counts_follow_squidpy_directed_counting() {
        let g = square();
        let r = nhood_enrichment(&g, &[0, 1, 0, 1], 2, None, &NhoodOptions::default()).unwrap();
        // Every edge joins the two classes and is counted from both cells.
        assert_eq!(r.counts, vec![0, 4, 4, 0]);
        assert_eq!(r.cells_per_class, vec![2, 2]);
        // Alternating labels on a 4-cycle are the most mixed arrangement.
        assert!(r.zscore(0, 1) > 0.0 && r.zscore(0, 0) < 0.0, "{:?}", r.zscores);

        // Directed graph: 0 -> 1, 0 -> 2, 2 -> 1.
        let d = SpatialGraph::from_csr(vec![0, 2, 2, 3], vec![1, 2, 1]).unwrap();
        let r = nhood_enrichment(&d, &[0, 1, 0], 2, None, &NhoodOptions { n_perms: 10, seed: 1 }).unwrap();
        assert_eq!(r.counts, vec![1, 2, 0, 0]);
    }

    #[test]
    fn permutation_mean_matches_the_exact_expectation() {
        // A ring of 60 cells with three classes: E[count_ab] = nnz · P(a, b) for random labels.
        let n = 60u32;
        let edges: Vec<[u32; 2]> = (0..n).map(|i| [i, (i + 1) % n]).collect();
        let g = SpatialGraph::from_undirected_edges(n as usize, &edges).unwrap();
        let labels: Vec<u32> = (0..n).map(|i| [0, 0, 0, 1, 1, 2][i as usize % 6]).collect();
        let r = nhood_enrichment(&g, &labels, 3, None, &NhoodOptions { n_perms: 4000, seed: 9 }).unwrap();
        let sizes = [30.0, 20.0, 10.0];
        let m = 60.0;
        for a in 0..3 {
            for b in 0..3 {
                let pairs = if a == b {
                    sizes[a] * (sizes[a] - 1.0)
                } else {
                    sizes[a] * sizes[b]
                };
                let expected = g.nnz() as f64 * pairs / (m * (m - 1.0));
                let se = r.perm_std[a * 3 + b] / (4000f64).sqrt();
                assert!(
                    (r.perm_mean[a * 3 + b] - expected).abs() < 5.0 * se + 1e-9,
                    "{a},{b}: {} vs {expected}",
                    r.perm_mean[a * 3 + b]
                );
            }
        }
        // Blocks of equal labels along the ring: same-class neighbours are enriched.
        assert!(r.zscore(0, 0) > 2.0);
    }

    #[test]
    fn deterministic_for_a_seed_whatever_the_threads() {
        let n = 500u32;
        let edges: Vec<[u32; 2]> = (0..n).flat_map(|i| [[i, (i + 1) % n], [i, (i + 7) % n]]).collect();
        let g = SpatialGraph::from_undirected_edges(n as usize, &edges).unwrap();
        let labels: Vec<u32> = (0..n).map(|i| (i * i / 7) % 5).collect();
        let options = NhoodOptions { n_perms: 200, seed: 5 };
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| nhood_enrichment(&g, &labels, 5, None, &options).unwrap())
        };
        let one = run(1);
        assert_eq!(one, run(3));
        let other_seed = nhood_enrichment(&g, &labels, 5, None, &NhoodOptions { seed: 6, ..options }).unwrap();
        assert_eq!(one.counts, other_seed.counts);
        assert_ne!(one.perm_mean, other_seed.perm_mean);
    }

    #[test]
    fn missing_labels_selection_and_degenerate_classes() {
        let g = square();
        // Cell 3 unlabelled: the path 0 - 1 - 2 remains.
        let r = nhood_enrichment(&g, &[0, 1, 0, MISSING_LABEL], 3, None, &NhoodOptions::default()).unwrap();
        assert_eq!(r.n_cells, 3);
        assert_eq!(r.counts, vec![0, 2, 0, 2, 0, 0, 0, 0, 0]);
        // Class 2 has no cells: its rows and columns are zero with NaN z-scores.
        for k in 0..3 {
            assert!(r.zscore(2, k).is_nan() && r.zscore(k, 2).is_nan());
        }
        // A single class 1 cell never neighbours another one: count(1, 1) is always 0.
        assert!(r.zscore(1, 1).is_nan());
        assert!(r.zscore(0, 0).is_finite());

        // Selection {0, 1}: one edge.
        let r = nhood_enrichment(&g, &[0, 1, 0, 1], 2, Some(&[1, 0, 1]), &NhoodOptions::default()).unwrap();
        assert_eq!((r.n_cells, r.counts.clone()), (2, vec![0, 1, 1, 0]));

        // One class only: counts are the edges, every permutation the same, z NaN.
        let r = nhood_enrichment(&g, &[0; 4], 1, None, &NhoodOptions::default()).unwrap();
        assert_eq!(r.counts, vec![8]);
        assert!(r.zscores[0].is_nan());

        // Nothing left, zero permutations, no classes: no panic.
        let none = nhood_enrichment(&g, &[MISSING_LABEL; 4], 2, None, &NhoodOptions::default()).unwrap();
        assert_eq!(none.counts, vec![0; 4]);
        let zero = nhood_enrichment(&g, &[0, 1, 0, 1], 2, None, &NhoodOptions { n_perms: 0, seed: 0 }).unwrap();
        assert!(zero.zscores.iter().all(|z| z.is_nan()));
        let empty = nhood_enrichment(&SpatialGraph::empty(0), &[], 0, None, &NhoodOptions::default()).unwrap();
        assert!(empty.counts.is_empty());

        assert!(nhood_enrichment(&g, &[0, 1, 2, 0], 2, None, &NhoodOptions::default()).is_err());
        assert!(nhood_enrichment(&g, &[0, 1], 2, None, &NhoodOptions::default()).is_err());
        assert!(nhood_enrichment(&g, &[0; 4], 1, Some(&[9]), &NhoodOptions::default()).is_err());
        assert!(nhood_enrichment(&g, &[0; 4], MAX_CLASSES + 1, None, &NhoodOptions::default()).is_err());
        let cancel = AtomicBool::new(true);
        assert!(matches!(
            nhood_enrichment_cancellable(&g, &[0, 1, 0, 1], 2, None, &NhoodOptions::default(), &cancel),
            Err(NhoodError::Cancelled)
        ));
    }

    #[test]
    fn packed_and_wide_lanes_count_the_same() {
        // Packed (<= 16 classes) and wide lanes (<= 256), on symmetric and directed
        // graphs: observed counts against brute force, permutation means against the exact
        // expectation nnz · P(label_i = a, label_j = b).
        let n = 400u32;
        let edges: Vec<[u32; 2]> = (0..n).flat_map(|i| [[i, (i + 1) % n], [i, (i * 7 + 3) % n]]).collect();
        let symmetric = SpatialGraph::from_undirected_edges(n as usize, &edges).unwrap();
        let offsets: Vec<usize> = (0..=n as usize).map(|i| i * 3).collect();
        let indices: Vec<u32> = (0..n)
            .flat_map(|i| [(i + 1) % n, (i + 5) % n, (i * 11 + 2) % n])
            .collect();
        let directed = SpatialGraph::from_csr(offsets, indices).unwrap();
        assert!(!directed.is_symmetric());
        for n_classes in [3usize, 17, 256] {
            let labels: Vec<u32> = (0..n).map(|i| (i * 37 + i / 3) % n_classes as u32).collect();
            let mut sizes = vec![0f64; n_classes];
            for &l in &labels {
                sizes[l as usize] += 1.0;
            }
            for g in [&symmetric, &directed] {
                let r =
                    nhood_enrichment(g, &labels, n_classes, None, &NhoodOptions { n_perms: 1000, seed: 2 }).unwrap();
                let mut brute = vec![0u64; n_classes * n_classes];
                for i in 0..g.len() {
                    for &j in g.neighbors(i) {
                        brute[labels[i] as usize * n_classes + labels[j as usize] as usize] += 1;
                    }
                }
                assert_eq!(r.counts, brute, "{n_classes} classes");
                let m = f64::from(n);
                for a in 0..n_classes.min(20) {
                    for b in 0..n_classes.min(20) {
                        let pairs = if a == b {
                            sizes[a] * (sizes[a] - 1.0)
                        } else {
                            sizes[a] * sizes[b]
                        };
                        let expected = g.nnz() as f64 * pairs / (m * (m - 1.0));
                        let se = r.perm_std[a * n_classes + b] / 1000f64.sqrt();
                        let got = r.perm_mean[a * n_classes + b];
                        assert!(
                            (got - expected).abs() <= 5.0 * se + 1e-9,
                            "{n_classes}: {a},{b}: {got} vs {expected}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn shuffles_are_uniform() {
        // All 6 orders of 3 items appear about equally often.
        let mut seen = [0u32; 6];
        for perm in 0..6000 {
            let mut v = [0u8, 1, 2];
            let mut rng = WyRand::new(3, perm);
            for i in (1..3).rev() {
                v.swap(i, rng.below(i as u64 + 1) as usize);
            }
            let code = v[0] as usize * 2 + usize::from(v[1] > v[2]);
            seen[code] += 1;
        }
        assert!(seen.iter().all(|&s| (900..1100).contains(&s)), "{seen:?}");
    }
}
