//! CPU preparation of cell overlay data for the GPU, done once per bundle off the UI thread.
//!
//! Cells are reordered along a Morton (Z-order) curve so that consecutive cells are close in
//! space, then cut into chunks of [`CHUNK_CELLS`] with a bounding box each. A frame draws only the
//! chunks that meet the view ([`CellGeometry::visible_ranges`]), as a few instance ranges.
//! Each polygon is stored as its anchor (vertex mean, two f32 words) followed by its vertices
//! relative to the anchor as two packed 16-bit signed fixed-point numbers (one word each), so a
//! million cells with boundaries fit comfortably in storage-buffer limits, and one polygon set
//! takes two storage bindings (offsets, words).

use std::ops::Range;

/// Cells per culling chunk.
pub const CHUNK_CELLS: usize = 256;
/// Packed vertex offsets span ±[`PACKED_RANGE_UM`] around the anchor.
pub const PACKED_RANGE_UM: f32 = 512.0;
/// Polygons with more vertices are decimated to this many for drawing.
pub const MAX_DRAWN_VERTICES: usize = 64;

/// A contiguous run of cells (in GPU order) and the world box that holds them and their polygons.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellChunk {
    pub first: u32,
    pub count: u32,
    pub min_um: [f32; 2],
    pub max_um: [f32; 2],
}

/// Polygons ready for the GPU, in the GPU order of their cells. A cell has none, one, or several
/// (the nuclei of a multinucleate cell); each polygon is drawn as its own instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuPolygons {
    /// Polygon `k` owns `words[offsets[k]..offsets[k + 1]]`: its anchor's x and y as f32 bits,
    /// its cell's GPU index, then one packed vertex per word.
    pub offsets: Vec<u32>,
    /// Packed vertices: offset from the anchor, x in the low 16 bits, y in the high 16, each
    /// `snorm16 * PACKED_RANGE_UM`.
    pub words: Vec<u32>,
    pub max_vertices: u32,
    /// GPU cell `i` owns polygons `first_polygon[i]..first_polygon[i + 1]`.
    pub first_polygon: Vec<u32>,
}

/// Words before a polygon's vertices (the anchor, then the cell's GPU index).
pub const POLYGON_HEADER_WORDS: usize = 3;

impl GpuPolygons {
    /// The anchor (µm), the cell's GPU index and the packed vertices of polygon `k`.
    pub fn polygon(&self, k: usize) -> Option<([f32; 2], u32, &[u32])> {
        let (a, b) = (*self.offsets.get(k)? as usize, *self.offsets.get(k + 1)? as usize);
        if b < a + POLYGON_HEADER_WORDS {
            return None;
        }
        let anchor = [f32::from_bits(self.words[a]), f32::from_bits(self.words[a + 1])];
        Some((anchor, self.words[a + 2], &self.words[a + POLYGON_HEADER_WORDS..b]))
    }

    /// Vertices of polygon `k` in µm (empty when there is none).
    pub fn vertices_um(&self, k: usize) -> Vec<[f32; 2]> {
        self.polygon(k).map_or_else(Vec::new, |(anchor, _, packed)| {
            packed
                .iter()
                .map(|&p| {
                    let d = unpack_offset(p);
                    [anchor[0] + d[0], anchor[1] + d[1]]
                })
                .collect()
        })
    }

    /// The polygons of GPU cells `cells`.
    pub fn polygons_of(&self, cells: Range<u32>) -> Range<u32> {
        let at = |i: u32| self.first_polygon.get(i as usize).copied().unwrap_or(0);
        at(cells.start)..at(cells.end).max(at(cells.start))
    }

    /// The polygon ranges of cell ranges, empty ones left out.
    pub fn polygon_ranges(&self, cells: &[Range<u32>]) -> Vec<Range<u32>> {
        cells
            .iter()
            .map(|r| self.polygons_of(r.clone()))
            .filter(|r| !r.is_empty())
            .collect()
    }

    pub fn polygon_count(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
}

/// Flat polygons in table order, as a reader produces them: polygon `k` owns
/// `vertices_um[offsets[k]..offsets[k + 1]]`, and table cell `i` owns polygons
/// `cell_polygons[i]..cell_polygons[i + 1]`.
#[derive(Debug, Clone, Copy)]
pub struct PolygonsInTable<'a> {
    pub offsets: &'a [u32],
    pub vertices_um: &'a [[f32; 2]],
    pub cell_polygons: &'a [u32],
}

/// Everything the cell renderer uploads once per bundle.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CellGeometry {
    /// Distinguishes geometries in the renderer's cache (a new bundle gets a new id).
    pub id: u64,
    /// `gpu_from_table[table_index]` = GPU index.
    pub gpu_from_table: Vec<u32>,
    /// `table_from_gpu[gpu_index]` = table index.
    pub table_from_gpu: Vec<u32>,
    pub centroids_um: Vec<[f32; 2]>,
    pub chunks: Vec<CellChunk>,
    pub cells: Option<GpuPolygons>,
    pub nuclei: Option<GpuPolygons>,
    pub min_um: [f32; 2],
    pub max_um: [f32; 2],
    /// Median cell radius (from polygon area, else a typical 5 µm), for the points/polygons switch.
    pub typical_radius_um: f32,
}

fn morton_spread(v: u32) -> u64 {
    let mut x = u64::from(v & 0xFFFF);
    x = (x | (x << 8)) & 0x00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333;
    x = (x | (x << 1)) & 0x5555_5555;
    x
}

/// Packs an offset in µm into snorm16 (clamped to ±PACKED_RANGE_UM).
fn pack_offset(dx_um: f32, dy_um: f32) -> u32 {
    let q = |v: f32| -> u32 {
        let n = (v / PACKED_RANGE_UM).clamp(-1.0, 1.0);
        ((n * 32767.0).round() as i32 as i16) as u16 as u32
    };
    q(dx_um) | (q(dy_um) << 16)
}

/// Inverse of [`pack_offset`], for tests and picking.
pub fn unpack_offset(packed: u32) -> [f32; 2] {
    let u = |bits: u32| f32::from(bits as u16 as i16) / 32767.0 * PACKED_RANGE_UM;
    [u(packed & 0xFFFF), u(packed >> 16)]
}

impl CellGeometry {
    /// Builds the GPU layout from centroids (world µm, table order) and optional polygons (table
    /// order). Non-finite centroids are placed at the box minimum (readers reject them anyway).
    pub fn build(
        id: u64,
        x_um: &[f64],
        y_um: &[f64],
        cells: Option<PolygonsInTable<'_>>,
        nuclei: Option<PolygonsInTable<'_>>,
    ) -> Self {
        let n = x_um.len().min(y_um.len());
        let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
        let (mut min, mut max) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for i in 0..n {
            let p = [finite(x_um[i]), finite(y_um[i])];
            for a in 0..2 {
                min[a] = min[a].min(p[a]);
                max[a] = max[a].max(p[a]);
            }
        }
        if n == 0 {
            min = [0.0; 2];
            max = [0.0; 2];
        }
        let span = [(max[0] - min[0]).max(1e-9), (max[1] - min[1]).max(1e-9)];
        let mut keys: Vec<(u64, u32)> = (0..n)
            .map(|i| {
                let gx = ((finite(x_um[i]) - min[0]) / span[0] * 65535.0) as u32;
                let gy = ((finite(y_um[i]) - min[1]) / span[1] * 65535.0) as u32;
                (morton_spread(gx) | (morton_spread(gy) << 1), i as u32)
            })
            .collect();
        keys.sort_unstable();
        let table_from_gpu: Vec<u32> = keys.iter().map(|k| k.1).collect();
        drop(keys);
        let mut gpu_from_table = vec![0u32; n];
        for (gpu, &table) in table_from_gpu.iter().enumerate() {
            gpu_from_table[table as usize] = gpu as u32;
        }
        let centroids_um: Vec<[f32; 2]> = table_from_gpu
            .iter()
            .map(|&t| [finite(x_um[t as usize]) as f32, finite(y_um[t as usize]) as f32])
            .collect();
        let cells = cells.map(|p| gpu_polygons(p, &table_from_gpu));
        let nuclei = nuclei.map(|p| gpu_polygons(p, &table_from_gpu));

        let mut chunks = Vec::with_capacity(n.div_ceil(CHUNK_CELLS));
        let mut first = 0;
        while first < n {
            let count = CHUNK_CELLS.min(n - first);
            let mut lo = [f32::INFINITY; 2];
            let mut hi = [f32::NEG_INFINITY; 2];
            let mut grow = |p: [f32; 2]| {
                for a in 0..2 {
                    lo[a] = lo[a].min(p[a]);
                    hi[a] = hi[a].max(p[a]);
                }
            };
            for centroid in centroids_um.iter().skip(first).take(count) {
                grow(*centroid);
            }
            for set in [&cells, &nuclei].into_iter().flatten() {
                for k in set.polygons_of(first as u32..(first + count) as u32) {
                    for v in set.vertices_um(k as usize) {
                        grow(v);
                    }
                }
            }
            chunks.push(CellChunk {
                first: first as u32,
                count: count as u32,
                min_um: lo,
                max_um: hi,
            });
            first += count;
        }
        let typical_radius_um = cells
            .as_ref()
            .and_then(median_radius_um)
            .or_else(|| nuclei.as_ref().and_then(median_radius_um).map(|r| r * 1.8))
            .unwrap_or(5.0);
        Self {
            id,
            gpu_from_table,
            table_from_gpu,
            centroids_um,
            chunks,
            cells,
            nuclei,
            min_um: [min[0] as f32, min[1] as f32],
            max_um: [max[0] as f32, max[1] as f32],
            typical_radius_um,
        }
    }

    pub fn len(&self) -> usize {
        self.centroids_um.len()
    }

    pub fn is_empty(&self) -> bool {
        self.centroids_um.is_empty()
    }

    /// Per-cell values given in table order, rearranged into GPU order.
    pub fn to_gpu_order(&self, values_in_table_order: &[u32]) -> Vec<u32> {
        self.table_from_gpu
            .iter()
            .map(|&t| values_in_table_order.get(t as usize).copied().unwrap_or(0))
            .collect()
    }

    /// GPU index ranges of the chunks that meet the world box `min..max`, adjacent ones merged.
    pub fn visible_ranges(&self, min_um: [f32; 2], max_um: [f32; 2]) -> Vec<Range<u32>> {
        let mut ranges: Vec<Range<u32>> = Vec::new();
        for chunk in &self.chunks {
            let meets = chunk.min_um[0] <= max_um[0]
                && chunk.max_um[0] >= min_um[0]
                && chunk.min_um[1] <= max_um[1]
                && chunk.max_um[1] >= min_um[1];
            if !meets {
                continue;
            }
            let range = chunk.first..chunk.first + chunk.count;
            match ranges.last_mut() {
                Some(last) if last.end == range.start => last.end = range.end,
                _ => ranges.push(range),
            }
        }
        ranges
    }

    /// Bytes this geometry takes on the GPU (for memory reports).
    pub fn gpu_bytes(&self) -> usize {
        let polygons = |p: &Option<GpuPolygons>| p.as_ref().map_or(0, |p| 4 * p.offsets.len() + 4 * p.words.len());
        // Centroids + one style word per cell.
        12 * self.len() + polygons(&self.cells) + polygons(&self.nuclei)
    }
}

fn median_radius_um(polygons: &GpuPolygons) -> Option<f32> {
    let n = polygons.offsets.len().saturating_sub(1);
    let mut radii: Vec<f32> = (0..n)
        .step_by((n / 4096).max(1))
        .filter_map(|i| {
            let p = polygons.vertices_um(i);
            if p.len() < 3 {
                return None;
            }
            let mut twice = 0.0;
            for k in 0..p.len() {
                let (u, v) = (p[k], p[(k + 1) % p.len()]);
                twice += u[0] * v[1] - v[0] * u[1];
            }
            Some((twice.abs() * 0.5 / std::f32::consts::PI).sqrt())
        })
        .collect();
    if radii.is_empty() {
        return None;
    }
    let mid = radii.len() / 2;
    radii.select_nth_unstable_by(mid, f32::total_cmp);
    Some(radii[mid])
}

fn gpu_polygons(table: PolygonsInTable<'_>, table_from_gpu: &[u32]) -> GpuPolygons {
    let n = table_from_gpu.len();
    let mut offsets = Vec::with_capacity(table.offsets.len());
    offsets.push(0u32);
    let mut first_polygon = Vec::with_capacity(n + 1);
    first_polygon.push(0u32);
    let mut words = Vec::with_capacity(table.vertices_um.len() + POLYGON_HEADER_WORDS * n);
    let mut max_vertices = 0u32;
    let ring = |k: usize| -> &[[f32; 2]] {
        match (table.offsets.get(k), table.offsets.get(k + 1)) {
            (Some(&a), Some(&b)) if a <= b && (b as usize) <= table.vertices_um.len() => {
                &table.vertices_um[a as usize..b as usize]
            }
            _ => &[],
        }
    };
    for (gpu, &t) in table_from_gpu.iter().enumerate() {
        let t = t as usize;
        let polygons = match (table.cell_polygons.get(t), table.cell_polygons.get(t + 1)) {
            (Some(&a), Some(&b)) if a <= b => a as usize..b as usize,
            _ => 0..0,
        };
        for k in polygons {
            let polygon = ring(k);
            let step = polygon.len().div_ceil(MAX_DRAWN_VERTICES).max(1);
            let kept: Vec<[f32; 2]> = polygon.iter().step_by(step).copied().collect();
            if kept.is_empty() {
                continue;
            }
            let count = kept.len() as f32;
            let anchor = [
                kept.iter().map(|v| v[0]).sum::<f32>() / count,
                kept.iter().map(|v| v[1]).sum::<f32>() / count,
            ];
            words.push(anchor[0].to_bits());
            words.push(anchor[1].to_bits());
            words.push(gpu as u32);
            words.extend(kept.iter().map(|v| pack_offset(v[0] - anchor[0], v[1] - anchor[1])));
            max_vertices = max_vertices.max(kept.len() as u32);
            offsets.push(words.len() as u32);
        }
        first_polygon.push(offsets.len() as u32 - 1);
    }
    GpuPolygons {
        offsets,
        words,
        max_vertices,
        first_polygon,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(cx: f32, cy: f32, half: f32) -> Vec<[f32; 2]> {
        vec![
            [cx - half, cy - half],
            [cx + half, cy - half],
            [cx + half, cy + half],
            [cx - half, cy + half],
        ]
    }

    #[test]
    fn packing_round_trips_to_a_fraction_of_a_nanometre_scale() {
        for (dx, dy) in [(0.0, 0.0), (3.25, -7.5), (-511.0, 511.0), (100.0, -0.01)] {
            let back = unpack_offset(pack_offset(dx, dy));
            assert!((back[0] - dx).abs() < 0.02 && (back[1] - dy).abs() < 0.02, "{back:?}");
        }
        // Out of range clamps instead of wrapping.
        assert!(unpack_offset(pack_offset(10_000.0, 0.0))[0] > 511.0);
    }

    #[test]
    fn morton_order_keeps_chunks_compact_and_permutation_consistent() {
        // 64 x 64 grid of cells 10 µm apart, given in a scrambled table order.
        let side = 64usize;
        let n = side * side;
        let mut x = vec![0.0; n];
        let mut y = vec![0.0; n];
        for i in 0..n {
            let scrambled = (i * 2654435761) % n; // a permutation (n is a power of two, odd factor)
            x[scrambled] = (i % side) as f64 * 10.0;
            y[scrambled] = (i / side) as f64 * 10.0;
        }
        let g = CellGeometry::build(7, &x, &y, None, None);
        assert_eq!(g.len(), n);
        for t in 0..n {
            let gpu = g.gpu_from_table[t] as usize;
            assert_eq!(g.table_from_gpu[gpu] as usize, t);
            assert_eq!(g.centroids_um[gpu], [x[t] as f32, y[t] as f32]);
        }
        assert_eq!(g.chunks.len(), n / CHUNK_CELLS);
        // Each chunk of 256 cells is one 16 x 16 block of the grid (Morton order).
        for chunk in &g.chunks {
            let w = chunk.max_um[0] - chunk.min_um[0];
            let h = chunk.max_um[1] - chunk.min_um[1];
            assert!(w <= 150.0 && h <= 150.0, "{chunk:?}");
        }
        // A small view in one corner touches one chunk.
        let ranges = g.visible_ranges([0.0, 0.0], [50.0, 50.0]);
        assert_eq!(ranges.iter().map(|r| r.len()).sum::<usize>(), CHUNK_CELLS);
        // The whole box: one merged range.
        assert_eq!(g.visible_ranges([-1.0, -1.0], [1e4, 1e4]), vec![0..n as u32]);
        assert!(g.visible_ranges([1e5, 1e5], [2e5, 2e5]).is_empty());
        let values: Vec<u32> = (0..n as u32).collect();
        let gpu = g.to_gpu_order(&values);
        assert_eq!(gpu[g.gpu_from_table[5] as usize], 5);
    }

    #[test]
    fn polygons_follow_their_cells_and_extend_chunk_boxes() {
        let x = [0.0, 100.0];
        let y = [0.0, 0.0];
        let mut vertices = square(0.0, 0.0, 5.0);
        vertices.extend(square(100.0, 0.0, 40.0)); // a big cell reaching beyond its centroid
        let offsets = [0u32, 4, 8];
        let g = CellGeometry::build(
            1,
            &x,
            &y,
            Some(PolygonsInTable {
                offsets: &offsets,
                vertices_um: &vertices,
                cell_polygons: &[0, 1, 2],
            }),
            None,
        );
        let cells = g.cells.as_ref().unwrap();
        assert_eq!(cells.max_vertices, 4);
        for t in 0..2 {
            let gpu = g.gpu_from_table[t] as usize;
            assert_eq!(
                cells.polygons_of(gpu as u32..gpu as u32 + 1),
                gpu as u32..gpu as u32 + 1
            );
            let (anchor, cell, packed) = cells.polygon(gpu).unwrap();
            assert_eq!(anchor, [x[t] as f32, 0.0]);
            assert_eq!(cell as usize, gpu);
            assert_eq!(packed.len(), 4);
            let first = cells.vertices_um(gpu)[0];
            let expected = vertices[offsets[t] as usize];
            assert!((first[0] - expected[0]).abs() < 0.02 && (first[1] - expected[1]).abs() < 0.02);
        }
        assert!(g.chunks[0].max_um[0] >= 139.9 && g.chunks[0].min_um[1] <= -39.9);
        // Radius from polygon area: median of {sqrt(100/pi), sqrt(6400/pi)} picks the larger of two.
        assert!(g.typical_radius_um > 5.0);
    }

    #[test]
    fn long_polygons_are_decimated() {
        let vertices: Vec<[f32; 2]> = (0..200)
            .map(|k| {
                let a = k as f32 / 200.0 * std::f32::consts::TAU;
                [10.0 * a.cos(), 10.0 * a.sin()]
            })
            .collect();
        let offsets = [0u32, 200];
        let g = CellGeometry::build(
            1,
            &[0.0],
            &[0.0],
            Some(PolygonsInTable {
                offsets: &offsets,
                vertices_um: &vertices,
                cell_polygons: &[0, 1],
            }),
            None,
        );
        let cells = g.cells.unwrap();
        assert!(cells.max_vertices as usize <= MAX_DRAWN_VERTICES && cells.max_vertices >= 40);
    }

    #[test]
    fn a_binucleate_cell_keeps_both_nuclei_and_an_anucleate_one_has_none() {
        let x = [0.0, 100.0];
        let y = [0.0, 0.0];
        // Cell 0: two nuclei; cell 1: none.
        let mut vertices = square(-3.0, 0.0, 2.0);
        vertices.extend(square(3.0, 0.0, 2.0));
        let offsets = [0u32, 4, 8];
        let g = CellGeometry::build(
            1,
            &x,
            &y,
            None,
            Some(PolygonsInTable {
                offsets: &offsets,
                vertices_um: &vertices,
                cell_polygons: &[0, 2, 2],
            }),
        );
        let nuclei = g.nuclei.as_ref().unwrap();
        assert_eq!(nuclei.polygon_count(), 2);
        let gpu0 = g.gpu_from_table[0];
        let gpu1 = g.gpu_from_table[1];
        assert_eq!(nuclei.polygons_of(gpu0..gpu0 + 1).len(), 2);
        assert!(nuclei.polygons_of(gpu1..gpu1 + 1).is_empty());
        let anchors: Vec<[f32; 2]> = nuclei
            .polygons_of(gpu0..gpu0 + 1)
            .map(|k| {
                let (anchor, cell, _) = nuclei.polygon(k as usize).unwrap();
                assert_eq!(cell, gpu0);
                anchor
            })
            .collect();
        assert_eq!(anchors, [[-3.0, 0.0], [3.0, 0.0]]);
        let all_cells = std::iter::once(0..2).collect::<Vec<_>>();
        assert_eq!(nuclei.polygon_ranges(&all_cells), all_cells);
    }
}
