//! [`SpatialGraph`]: cell-to-cell neighbour graphs over centroids (world µm), stored as CSR
//! adjacency, built the way `squidpy.gr.spatial_neighbors(adata, coord_type="generic", ...)` builds
//! them:
//!
//! - [`SpatialGraph::delaunay`] (`delaunay=True`): the edges of the Delaunay triangulation of the
//!   centroids (squidpy takes `scipy.spatial.Delaunay(coords).vertex_neighbor_vertices`). squidpy's
//!   `spatial_neighbors` ignores a scalar `radius` in this mode (only a `(min, max)` tuple prunes);
//!   its newer `DelaunayBuilder(radius=r)` prunes to `(0, r)`, which is
//!   [`SpatialGraph::without_edges_longer_than`].
//! - [`SpatialGraph::radius`] (`radius=r`): every pair of distinct cells at most `r` µm apart
//!   (sklearn's `radius_neighbors`, inclusive), found through a [`GridIndex`].
//! - [`SpatialGraph::knn`] (`n_neighs=k`): each cell's `k` nearest other cells (sklearn's
//!   `kneighbors()` on the fitted points). squidpy does **not** symmetrise this graph: row `i` lists
//!   `i`'s neighbours, so `j` may be in `i`'s row without `i` being in `j`'s. We keep it directed
//!   exactly like that; [`SpatialGraph::symmetrized`] gives the union graph when wanted.
//!
//! No self loops. Cells with a non-finite position are nodes without edges. Duplicate positions:
//! the radius and kNN graphs link duplicates (distance 0), as sklearn does; the triangulation keeps
//! one of them and leaves the others without edges, as Qhull does (it reports them "coplanar").
//! Fully collinear cells (no triangle exists, where scipy raises) are chained along their line.

use rayon::prelude::*;
use spade::{DelaunayTriangulation, HasPosition, Point2, Triangulation};

use crate::GridIndex;

/// Why a graph could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("{x} x positions but {y} y positions")]
    LengthMismatch { x: usize, y: usize },
    #[error("{cells} cells: a spatial graph holds at most {} cells", u32::MAX)]
    TooManyCells { cells: usize },
    #[error("the radius must be finite and not negative, got {radius_um} µm")]
    InvalidRadius { radius_um: f64 },
    #[error("the number of neighbours must be at least 1")]
    NoNeighbours,
    #[error("Delaunay triangulation failed: {0}")]
    Triangulation(String),
    #[error("invalid CSR adjacency: {0}")]
    InvalidCsr(String),
}

/// How to connect cells: the three generic modes of `squidpy.gr.spatial_neighbors`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GraphKind {
    /// `delaunay=True`.
    Delaunay,
    /// `radius=radius_um`.
    Radius { radius_um: f64 },
    /// `n_neighs=k` (directed, like squidpy).
    Knn { k: usize },
}

/// A cell graph in compressed sparse rows: the neighbours of cell `i` are
/// `indices()[offsets()[i]..offsets()[i + 1]]`, sorted ascending, without self loops or repeats.
/// One stored entry is one directed edge, so a symmetric graph stores each undirected edge twice
/// (squidpy's `adj.nnz` counts the same way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpatialGraph {
    offsets: Vec<usize>,
    indices: Vec<u32>,
    symmetric: bool,
}

impl Default for SpatialGraph {
    fn default() -> Self {
        Self {
            offsets: vec![0],
            indices: Vec::new(),
            symmetric: true,
        }
    }
}

/// Rows per parallel work item.
const ROWS_PER_TASK: usize = 4096;

impl SpatialGraph {
    /// Builds the graph of `kind` over cells at `(x_um[i], y_um[i])`.
    pub fn build(x_um: &[f64], y_um: &[f64], kind: GraphKind) -> Result<Self, GraphError> {
        match kind {
            GraphKind::Delaunay => Self::delaunay(x_um, y_um),
            GraphKind::Radius { radius_um } => Self::radius(x_um, y_um, radius_um),
            GraphKind::Knn { k } => Self::knn(x_um, y_um, k),
        }
    }

    /// Edges of the Delaunay triangulation of the finite centroids (symmetric).
    pub fn delaunay(x_um: &[f64], y_um: &[f64]) -> Result<Self, GraphError> {
        let n = check_positions(x_um, y_um)?;
        let vertices: Vec<Vertex> = (0..n)
            .filter(|&i| x_um[i].is_finite() && y_um[i].is_finite())
            .map(|i| Vertex {
                // spade rejects magnitudes below ~1.8e-43 (other than zero): such a coordinate is
                // zero for any purpose here.
                pos: Point2::new(flush_tiny(x_um[i]), flush_tiny(y_um[i])),
                id: i as u32,
            })
            .collect();
        if vertices.len() < 2 {
            return Ok(Self::empty(n));
        }
        let triangulation: DelaunayTriangulation<Vertex> =
            DelaunayTriangulation::bulk_load(vertices).map_err(|e| GraphError::Triangulation(format!("{e:?}")))?;
        let mut edges: Vec<[u32; 2]> = Vec::with_capacity(triangulation.num_undirected_edges());
        for edge in triangulation.undirected_edges() {
            let [a, b] = edge.vertices();
            edges.push([a.data().id, b.data().id]);
        }
        Ok(Self::from_undirected_unchecked(n, &edges))
    }

    /// All pairs of distinct cells at most `radius_um` apart (symmetric).
    pub fn radius(x_um: &[f64], y_um: &[f64], radius_um: f64) -> Result<Self, GraphError> {
        let n = check_positions(x_um, y_um)?;
        if !(radius_um.is_finite() && radius_um >= 0.0) {
            return Err(GraphError::InvalidRadius { radius_um });
        }
        let index = GridIndex::build(&x_um[..n], &y_um[..n]);
        let r2 = radius_um * radius_um;
        // Pad the query box a hair so a pair at exactly `radius_um` is never lost to rounding.
        let pad = radius_um * (1.0 + 1e-9) + f64::MIN_POSITIVE;
        let rows = build_rows(n, |i, row| {
            let p = [x_um[i], y_um[i]];
            if !(p[0].is_finite() && p[1].is_finite()) {
                return;
            }
            index.for_each_in_rect([p[0] - pad, p[1] - pad], [p[0] + pad, p[1] + pad], |j, q| {
                let (dx, dy) = (q[0] - p[0], q[1] - p[1]);
                if j as usize != i && dx * dx + dy * dy <= r2 {
                    row.push(j);
                }
            });
            row.sort_unstable();
        });
        Ok(Self {
            symmetric: true,
            ..rows
        })
    }

    /// Each cell's `k` nearest other cells (directed, like squidpy: not symmetrised). With fewer
    /// than `k + 1` finite cells every cell links to all others (sklearn would refuse). Ties in
    /// distance go to the lower cell index.
    pub fn knn(x_um: &[f64], y_um: &[f64], k: usize) -> Result<Self, GraphError> {
        let n = check_positions(x_um, y_um)?;
        if k == 0 {
            return Err(GraphError::NoNeighbours);
        }
        let index = GridIndex::build(&x_um[..n], &y_um[..n]);
        let finite = index.len();
        if finite < 2 {
            return Ok(Self::empty(n));
        }
        let k = k.min(finite - 1);
        let (mut min, mut max) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for i in 0..n {
            let p = [x_um[i], y_um[i]];
            if p[0].is_finite() && p[1].is_finite() {
                for a in 0..2 {
                    min[a] = min[a].min(p[a]);
                    max[a] = max[a].max(p[a]);
                }
            }
        }
        let span = [max[0] - min[0], max[1] - min[1]];
        let diagonal = span[0].hypot(span[1]);
        // A first search radius that holds about k + 1 cells at the mean density (in 2-D, or
        // along a line when the cells are (nearly) collinear), then doubled until it holds k.
        let area = span[0].max(diagonal * 1e-3) * span[1].max(diagonal * 1e-3);
        let start_um = ((k + 1) as f64 * area / (std::f64::consts::PI * finite as f64))
            .sqrt()
            .max(diagonal * (k + 1) as f64 / finite as f64 * 0.5)
            .max(1e-9);
        let mut graph = build_rows_with(n, Vec::<(f64, u32)>::new, |candidates, i, row| {
            let p = [x_um[i], y_um[i]];
            if !(p[0].is_finite() && p[1].is_finite()) {
                return;
            }
            let mut r = start_um;
            loop {
                candidates.clear();
                let pad = r * (1.0 + 1e-9);
                let r2 = r * r;
                index.for_each_in_rect([p[0] - pad, p[1] - pad], [p[0] + pad, p[1] + pad], |j, q| {
                    let (dx, dy) = (q[0] - p[0], q[1] - p[1]);
                    let d2 = dx * dx + dy * dy;
                    if j as usize != i && d2 <= r2 {
                        candidates.push((d2, j));
                    }
                });
                if candidates.len() >= k || r > diagonal {
                    break;
                }
                r *= 2.0;
            }
            let by_distance = |a: &(f64, u32), b: &(f64, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
            if candidates.len() > k {
                candidates.select_nth_unstable_by(k - 1, by_distance);
                candidates.truncate(k);
            }
            row.extend(candidates.iter().map(|c| c.1));
            row.sort_unstable();
        });
        graph.symmetric = graph.check_symmetric();
        Ok(graph)
    }

    /// A graph from CSR arrays (`offsets.len()` = cells + 1). Rows are sorted and repeats
    /// dropped; out-of-range neighbours and self loops are refused.
    pub fn from_csr(offsets: Vec<usize>, indices: Vec<u32>) -> Result<Self, GraphError> {
        let Some(&last) = offsets.last() else {
            return Err(GraphError::InvalidCsr(
                "offsets is empty (it needs cells + 1 entries)".into(),
            ));
        };
        let n = offsets.len() - 1;
        if u32::try_from(n).is_err() {
            return Err(GraphError::TooManyCells { cells: n });
        }
        if offsets[0] != 0 || last != indices.len() || offsets.windows(2).any(|w| w[0] > w[1]) {
            return Err(GraphError::InvalidCsr(format!(
                "offsets must rise from 0 to {} (the number of indices)",
                indices.len()
            )));
        }
        let mut rows = Vec::with_capacity(indices.len());
        let mut new_offsets = Vec::with_capacity(n + 1);
        new_offsets.push(0);
        let mut row: Vec<u32> = Vec::new();
        for i in 0..n {
            row.clear();
            row.extend_from_slice(&indices[offsets[i]..offsets[i + 1]]);
            if let Some(&bad) = row.iter().find(|&&j| j as usize >= n || j as usize == i) {
                return Err(GraphError::InvalidCsr(format!(
                    "cell {i} lists neighbour {bad} (a self loop or not below {n})"
                )));
            }
            row.sort_unstable();
            row.dedup();
            rows.extend_from_slice(&row);
            new_offsets.push(rows.len());
        }
        let mut graph = Self {
            offsets: new_offsets,
            indices: rows,
            symmetric: false,
        };
        graph.symmetric = graph.check_symmetric();
        Ok(graph)
    }

    /// A symmetric graph over `cells` cells from undirected edges `[a, b]`; self loops and
    /// repeats are dropped.
    pub fn from_undirected_edges(cells: usize, edges: &[[u32; 2]]) -> Result<Self, GraphError> {
        if u32::try_from(cells).is_err() {
            return Err(GraphError::TooManyCells { cells });
        }
        if let Some(bad) = edges.iter().find(|e| e[0] as usize >= cells || e[1] as usize >= cells) {
            return Err(GraphError::InvalidCsr(format!(
                "edge {bad:?} names a cell not below {cells}"
            )));
        }
        let kept: Vec<[u32; 2]> = edges.iter().copied().filter(|e| e[0] != e[1]).collect();
        let mut graph = Self::from_undirected_unchecked(cells, &kept);
        graph.dedup_rows();
        Ok(graph)
    }

    /// `cells` cells and no edges.
    pub fn empty(cells: usize) -> Self {
        Self {
            offsets: vec![0; cells + 1],
            indices: Vec::new(),
            symmetric: true,
        }
    }

    /// Number of cells (nodes), edgeless ones included.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stored (directed) entries: squidpy's `adj.nnz`. An undirected edge counts twice.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// True when `j` is `i`'s neighbour exactly when `i` is `j`'s.
    pub fn is_symmetric(&self) -> bool {
        self.symmetric
    }

    /// The neighbours of `cell`, ascending.
    pub fn neighbors(&self, cell: usize) -> &[u32] {
        &self.indices[self.offsets[cell]..self.offsets[cell + 1]]
    }

    /// Number of neighbours of `cell` (its out-degree for a directed graph).
    pub fn degree(&self, cell: usize) -> usize {
        self.offsets[cell + 1] - self.offsets[cell]
    }

    /// CSR row offsets (cells + 1 entries).
    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }

    /// CSR column indices.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// The union of the graph and its transpose (`i ~ j` when either lists the other).
    pub fn symmetrized(&self) -> Self {
        if self.symmetric {
            return self.clone();
        }
        let edges: Vec<[u32; 2]> = (0..self.len())
            .flat_map(|i| self.neighbors(i).iter().map(move |&j| [i as u32, j]))
            .collect();
        let mut graph = Self::from_undirected_unchecked(self.len(), &edges);
        graph.dedup_rows();
        graph
    }

    /// The graph without edges longer than `max_um` (squidpy's radius-interval pruning with
    /// `(0, max_um)`: edges of length exactly `max_um` stay). Positions as given to the builder.
    pub fn without_edges_longer_than(&self, x_um: &[f64], y_um: &[f64], max_um: f64) -> Result<Self, GraphError> {
        let n = check_positions(x_um, y_um)?;
        if n != self.len() {
            return Err(GraphError::InvalidCsr(format!(
                "{n} positions for a graph of {} cells",
                self.len()
            )));
        }
        let max2 = max_um * max_um;
        let pruned = build_rows(n, |i, row| {
            row.extend(self.neighbors(i).iter().copied().filter(|&j| {
                let (dx, dy) = (x_um[j as usize] - x_um[i], y_um[j as usize] - y_um[i]);
                dx * dx + dy * dy <= max2
            }));
        });
        Ok(Self {
            symmetric: self.symmetric,
            ..pruned
        })
    }

    /// The subgraph induced on the cells with `keep[cell]`, renumbered in ascending order, and for
    /// each of its cells the original index.
    pub fn induced_subgraph(&self, keep: &[bool]) -> (Self, Vec<u32>) {
        let n = self.len();
        let original: Vec<u32> = (0..n as u32)
            .filter(|&i| keep.get(i as usize).copied().unwrap_or(false))
            .collect();
        let mut local = vec![u32::MAX; n];
        for (l, &g) in original.iter().enumerate() {
            local[g as usize] = l as u32;
        }
        let sub = build_rows(original.len(), |l, row| {
            row.extend(
                self.neighbors(original[l] as usize)
                    .iter()
                    .map(|&j| local[j as usize])
                    .filter(|&lj| lj != u32::MAX),
            );
        });
        (
            Self {
                symmetric: self.symmetric,
                ..sub
            },
            original,
        )
    }

    /// Symmetric CSR from undirected edges known to be in range and loop-free (repeats kept).
    fn from_undirected_unchecked(n: usize, edges: &[[u32; 2]]) -> Self {
        let mut offsets = vec![0usize; n + 1];
        for e in edges {
            offsets[e[0] as usize + 1] += 1;
            offsets[e[1] as usize + 1] += 1;
        }
        for i in 1..offsets.len() {
            offsets[i] += offsets[i - 1];
        }
        let mut next = offsets.clone();
        let mut indices = vec![0u32; offsets[n]];
        for e in edges {
            for (a, b) in [(e[0], e[1]), (e[1], e[0])] {
                indices[next[a as usize]] = b;
                next[a as usize] += 1;
            }
        }
        let mut graph = Self {
            offsets,
            indices,
            symmetric: true,
        };
        graph.sort_rows();
        graph
    }

    fn rows_mut(&mut self) -> Vec<&mut [u32]> {
        let mut rows = Vec::with_capacity(self.len());
        let mut rest: &mut [u32] = &mut self.indices;
        for w in self.offsets.windows(2) {
            let (row, tail) = rest.split_at_mut(w[1] - w[0]);
            rows.push(row);
            rest = tail;
        }
        rows
    }

    fn sort_rows(&mut self) {
        self.rows_mut().into_par_iter().for_each(|row| row.sort_unstable());
    }

    /// Drops repeated neighbours within (sorted) rows.
    fn dedup_rows(&mut self) {
        if !self.offsets.windows(2).any(|w| {
            let row = &self.indices[w[0]..w[1]];
            row.windows(2).any(|p| p[0] == p[1])
        }) {
            return;
        }
        let symmetric = self.symmetric;
        let deduped = build_rows(self.len(), |i, row| {
            row.extend_from_slice(self.neighbors(i));
            row.dedup();
        });
        *self = Self { symmetric, ..deduped };
    }

    fn check_symmetric(&self) -> bool {
        (0..self.len()).into_par_iter().with_min_len(ROWS_PER_TASK).all(|i| {
            self.neighbors(i)
                .iter()
                .all(|&j| self.neighbors(j as usize).binary_search(&(i as u32)).is_ok())
        })
    }
}

/// The number of cells, when positions are consistent.
fn check_positions(x_um: &[f64], y_um: &[f64]) -> Result<usize, GraphError> {
    if x_um.len() != y_um.len() {
        return Err(GraphError::LengthMismatch {
            x: x_um.len(),
            y: y_um.len(),
        });
    }
    if u32::try_from(x_um.len()).is_err() {
        return Err(GraphError::TooManyCells { cells: x_um.len() });
    }
    Ok(x_um.len())
}

fn flush_tiny(v: f64) -> f64 {
    if v.abs() < 1e-30 { 0.0 } else { v }
}

/// Builds CSR rows in parallel: `fill(i, row)` pushes cell `i`'s neighbours into an empty `row`.
/// The result is marked directed; callers set the flag.
fn build_rows(n: usize, fill: impl Fn(usize, &mut Vec<u32>) + Sync) -> SpatialGraph {
    build_rows_with(n, || (), |_, i, row| fill(i, row))
}

/// [`build_rows`] with a per-task scratch value made by `init`.
fn build_rows_with<S>(
    n: usize,
    init: impl Fn() -> S + Sync,
    fill: impl Fn(&mut S, usize, &mut Vec<u32>) + Sync,
) -> SpatialGraph {
    let tasks = n.div_ceil(ROWS_PER_TASK);
    let parts: Vec<(Vec<u32>, Vec<u32>)> = (0..tasks)
        .into_par_iter()
        .map(|task| {
            let mut scratch = init();
            let rows = task * ROWS_PER_TASK..((task + 1) * ROWS_PER_TASK).min(n);
            let mut lengths = Vec::with_capacity(rows.len());
            let mut indices = Vec::new();
            let mut row = Vec::new();
            for i in rows {
                row.clear();
                fill(&mut scratch, i, &mut row);
                lengths.push(row.len() as u32);
                indices.extend_from_slice(&row);
            }
            (lengths, indices)
        })
        .collect();
    let total: usize = parts.iter().map(|p| p.1.len()).sum();
    let mut offsets = Vec::with_capacity(n + 1);
    let mut indices = Vec::with_capacity(total);
    offsets.push(0);
    for (lengths, part) in parts {
        for len in lengths {
            let last = offsets.last().copied().unwrap_or(0);
            offsets.push(last + len as usize);
        }
        indices.extend_from_slice(&part);
    }
    SpatialGraph {
        offsets,
        indices,
        symmetric: false,
    }
}

/// A triangulation vertex that remembers its cell.
struct Vertex {
    pos: Point2<f64>,
    id: u32,
}

impl HasPosition for Vertex {
    type Scalar = f64;

    fn position(&self) -> Point2<f64> {
        self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random_points(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let x = (0..n).map(|_| next() * 400.0).collect();
        let y = (0..n).map(|_| next() * 300.0 + 1000.0).collect();
        (x, y)
    }

    fn brute_radius(x: &[f64], y: &[f64], r: f64) -> Vec<Vec<u32>> {
        (0..x.len())
            .map(|i| {
                (0..x.len() as u32)
                    .filter(|&j| {
                        let j = j as usize;
                        j != i && (x[j] - x[i]).powi(2) + (y[j] - y[i]).powi(2) <= r * r
                    })
                    .collect()
            })
            .collect()
    }

    fn brute_knn(x: &[f64], y: &[f64], k: usize) -> Vec<Vec<u32>> {
        (0..x.len())
            .map(|i| {
                let mut d: Vec<(f64, u32)> = (0..x.len())
                    .filter(|&j| j != i)
                    .map(|j| ((x[j] - x[i]).powi(2) + (y[j] - y[i]).powi(2), j as u32))
                    .collect();
                d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                let mut row: Vec<u32> = d.iter().take(k).map(|p| p.1).collect();
                row.sort_unstable();
                row
            })
            .collect()
    }

    fn rows(g: &SpatialGraph) -> Vec<Vec<u32>> {
        (0..g.len()).map(|i| g.neighbors(i).to_vec()).collect()
    }

    #[test]
    fn radius_and_knn_match_brute_force() {
        let (x, y) = pseudo_random_points(3000, 7);
        let g = SpatialGraph::radius(&x, &y, 12.5).unwrap();
        assert!(g.is_symmetric());
        assert_eq!(rows(&g), brute_radius(&x, &y, 12.5));
        for k in [1, 6, 15] {
            let g = SpatialGraph::knn(&x, &y, k).unwrap();
            assert_eq!(g.nnz(), 3000 * k);
            assert_eq!(rows(&g), brute_knn(&x, &y, k), "k = {k}");
            assert_eq!(g.is_symmetric(), g.symmetrized() == g);
        }
    }

    #[test]
    fn knn_with_clusters_far_apart() {
        // Very uneven density: most cells in one clump, a few far away.
        let mut x: Vec<f64> = (0..500).map(|i| (i % 25) as f64 * 0.1).collect();
        let mut y: Vec<f64> = (0..500).map(|i| (i / 25) as f64 * 0.1).collect();
        x.extend([5000.0, 5001.0, -3000.0]);
        y.extend([5000.0, 4000.0, 0.0]);
        let g = SpatialGraph::knn(&x, &y, 4).unwrap();
        assert_eq!(rows(&g), brute_knn(&x, &y, 4));
    }

    #[test]
    fn delaunay_is_a_planar_triangulation() {
        let (x, y) = pseudo_random_points(2000, 3);
        let g = SpatialGraph::delaunay(&x, &y).unwrap();
        assert!(g.is_symmetric());
        // Euler: a triangulation of n points with h on the hull has 3n - 3 - h edges.
        let edges = g.nnz() / 2;
        assert!(edges <= 3 * 2000 - 6 && edges > 2 * 2000, "{edges}");
        // Every point's nearest neighbour is a Delaunay neighbour.
        let nn = brute_knn(&x, &y, 1);
        for (i, row) in nn.iter().enumerate() {
            assert!(g.neighbors(i).contains(&row[0]), "cell {i}");
        }
    }

    #[test]
    fn square_collinear_duplicates_and_nan() {
        // A unit square: 4 sides and one diagonal.
        let g = SpatialGraph::delaunay(&[0.0, 1.0, 1.0, 0.0], &[0.0, 0.0, 1.0, 1.0]).unwrap();
        assert_eq!(g.nnz(), 10);
        let r = SpatialGraph::radius(&[0.0, 1.0, 1.0, 0.0], &[0.0, 0.0, 1.0, 1.0], 1.0).unwrap();
        assert_eq!(rows(&r), vec![vec![1, 3], vec![0, 2], vec![1, 3], vec![0, 2]]);

        // Collinear: chained along the line in order of position.
        let g = SpatialGraph::delaunay(&[3.0, 0.0, 2.0, 1.0], &[3.0, 0.0, 2.0, 1.0]).unwrap();
        assert_eq!(rows(&g), vec![vec![2], vec![3], vec![0, 3], vec![1, 2]]);

        // Duplicates: linked by radius and kNN, one of them left out of the triangulation.
        let (x, y) = ([0.0, 0.0, 5.0, 0.0], [0.0, 0.0, 0.0, 5.0]);
        let r = SpatialGraph::radius(&x, &y, 0.0).unwrap();
        assert_eq!(rows(&r), vec![vec![1], vec![0], vec![], vec![]]);
        let k = SpatialGraph::knn(&x, &y, 1).unwrap();
        assert_eq!(rows(&k), vec![vec![1], vec![0], vec![0], vec![0]]);
        let d = SpatialGraph::delaunay(&x, &y).unwrap();
        assert_eq!(d.nnz(), 6);
        assert!(d.degree(0) == 0 || d.degree(1) == 0);

        // NaN cells have no edges; k larger than n - 1 links everything.
        let (x, y) = ([0.0, f64::NAN, 2.0, 3.0], [0.0, 1.0, f64::INFINITY, 0.0]);
        for g in [
            SpatialGraph::delaunay(&x, &y).unwrap(),
            SpatialGraph::radius(&x, &y, 100.0).unwrap(),
            SpatialGraph::knn(&x, &y, 10).unwrap(),
        ] {
            assert_eq!(rows(&g), vec![vec![3], vec![], vec![], vec![0]]);
        }
        assert!(SpatialGraph::knn(&x, &y, 0).is_err());
        assert!(SpatialGraph::radius(&x, &y, f64::NAN).is_err());
        assert!(SpatialGraph::radius(&x[..2], &y, 1.0).is_err());
        for g in [
            SpatialGraph::delaunay(&[], &[]).unwrap(),
            SpatialGraph::radius(&[1.0], &[1.0], 3.0).unwrap(),
            SpatialGraph::knn(&[1.0], &[1.0], 3).unwrap(),
        ] {
            assert_eq!(g.nnz(), 0);
        }
    }

    #[test]
    fn csr_helpers() {
        let g = SpatialGraph::from_csr(vec![0, 2, 3, 3], vec![2, 1, 0]).unwrap();
        assert!(!g.is_symmetric());
        assert_eq!(g.neighbors(0), &[1, 2]);
        let s = g.symmetrized();
        assert!(s.is_symmetric());
        assert_eq!(rows(&s), vec![vec![1, 2], vec![0], vec![0]]);
        assert!(SpatialGraph::from_csr(vec![0, 1], vec![0]).is_err(), "self loop");
        assert!(SpatialGraph::from_csr(vec![0, 1], vec![5]).is_err());
        assert!(SpatialGraph::from_csr(vec![], vec![]).is_err());
        let e = SpatialGraph::from_undirected_edges(4, &[[0, 1], [1, 0], [2, 2], [3, 1]]).unwrap();
        assert_eq!(rows(&e), vec![vec![1], vec![0, 3], vec![], vec![1]]);
        let (sub, original) = e.induced_subgraph(&[false, true, true, true]);
        assert_eq!(original, vec![1, 2, 3]);
        assert_eq!(rows(&sub), vec![vec![2], vec![], vec![0]]);
        let x = [0.0, 1.0, 0.0, 3.0];
        let y = [0.0; 4];
        let pruned = e.without_edges_longer_than(&x, &y, 1.0).unwrap();
        assert_eq!(rows(&pruned), vec![vec![1], vec![0], vec![], vec![]]);
    }
}
