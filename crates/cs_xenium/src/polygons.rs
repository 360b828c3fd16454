//! Cell and nucleus boundaries as flat polygons: every polygon's vertices in one array, and each
//! cell's polygons as a run of them, in cell order.
//!
//! A cell usually has one polygon. From XOA 2.0 boundary files carry `label_id`, and a cell may
//! have several nuclei (one polygon each) or none; [`read_raw`] starts a new polygon where
//! `label_id` changes, and in files without it where a ring closes (its first vertex repeated)
//! and more vertices of the same cell follow.

use rustc_hash::FxHashMap as HashMap;
use std::path::Path;

use crate::cells::CellTable;
use crate::columns::{Wanted, read_batches};
use crate::error::XeniumError;

/// Polygons of every cell, in cell-table order: polygon `k` owns
/// `vertices_um[offsets[k] as usize..offsets[k + 1] as usize]`, and cell `i` owns polygons
/// `cell_polygons[i]..cell_polygons[i + 1]` (none when it has no boundary).
/// The closing vertex that repeats the first is dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Polygons {
    pub offsets: Vec<u32>,
    pub vertices_um: Vec<[f32; 2]>,
    pub cell_polygons: Vec<u32>,
}

impl Polygons {
    /// At most one polygon per cell: cell `i` owns `vertices_um[offsets[i]..offsets[i + 1]]`
    /// (an empty range for a cell without one).
    pub fn one_per_cell(offsets: Vec<u32>, vertices_um: Vec<[f32; 2]>) -> Self {
        let cell_polygons = (0..offsets.len() as u32).collect();
        Self {
            offsets,
            vertices_um,
            cell_polygons,
        }
    }

    /// Number of cells the polygons are indexed by.
    pub fn cell_count(&self) -> usize {
        self.cell_polygons.len().saturating_sub(1)
    }

    /// The polygons of cell `cell` (none for a cell without a boundary).
    pub fn parts(&self, cell: usize) -> impl Iterator<Item = &[[f32; 2]]> + '_ {
        let range = match (self.cell_polygons.get(cell), self.cell_polygons.get(cell + 1)) {
            (Some(&a), Some(&b)) => a as usize..b as usize,
            _ => 0..0,
        };
        range.map(|k| self.ring(k)).filter(|ring| !ring.is_empty())
    }

    /// How many polygons cell `cell` has (two for a binucleate cell's nuclei).
    pub fn part_count(&self, cell: usize) -> usize {
        self.parts(cell).count()
    }

    /// Polygon `k` in file order.
    fn ring(&self, k: usize) -> &[[f32; 2]] {
        match (self.offsets.get(k), self.offsets.get(k + 1)) {
            (Some(&a), Some(&b)) if a <= b && b as usize <= self.vertices_um.len() => {
                &self.vertices_um[a as usize..b as usize]
            }
            _ => &[],
        }
    }

    /// Cell `cell`'s largest polygon (its only one, usually), empty when it has none.
    pub fn polygon(&self, cell: usize) -> &[[f32; 2]] {
        self.parts(cell)
            .max_by(|a, b| ring_area_um2(a).total_cmp(&ring_area_um2(b)))
            .unwrap_or(&[])
    }

    pub fn cells_with_polygon(&self) -> usize {
        (0..self.cell_count())
            .filter(|&c| self.parts(c).next().is_some())
            .count()
    }

    /// Polygons in all, counting each nucleus of a multinucleate cell.
    pub fn polygon_count(&self) -> usize {
        (0..self.offsets.len().saturating_sub(1))
            .filter(|&k| !self.ring(k).is_empty())
            .count()
    }

    /// Shoelace area in µm² of cell `cell`'s polygons together.
    pub fn area_um2(&self, cell: usize) -> f64 {
        self.parts(cell).map(ring_area_um2).sum()
    }

    /// Area-weighted centroid of cell `cell`'s largest polygon (vertex mean for degenerate ones).
    pub fn centroid_um(&self, cell: usize) -> Option<[f64; 2]> {
        let p = self.polygon(cell);
        if p.is_empty() {
            return None;
        }
        let (mut cx, mut cy, mut twice) = (0.0, 0.0, 0.0);
        for i in 0..p.len() {
            let (ax, ay) = (f64::from(p[i][0]), f64::from(p[i][1]));
            let (bx, by) = (f64::from(p[(i + 1) % p.len()][0]), f64::from(p[(i + 1) % p.len()][1]));
            let cross = ax * by - bx * ay;
            twice += cross;
            cx += (ax + bx) * cross;
            cy += (ay + by) * cross;
        }
        if twice.abs() < 1e-12 {
            let n = p.len() as f64;
            let sx: f64 = p.iter().map(|v| f64::from(v[0])).sum();
            let sy: f64 = p.iter().map(|v| f64::from(v[1])).sum();
            return Some([sx / n, sy / n]);
        }
        Some([cx / (3.0 * twice), cy / (3.0 * twice)])
    }
}

/// Shoelace area of one ring in µm² (open or closed; the orientation does not matter).
pub fn ring_area_um2(p: &[[f32; 2]]) -> f64 {
    let mut twice = 0.0;
    for i in 0..p.len() {
        let a = p[i];
        let b = p[(i + 1) % p.len()];
        twice += f64::from(a[0]) * f64::from(b[1]) - f64::from(b[0]) * f64::from(a[1]);
    }
    (twice * 0.5).abs()
}

/// Boundary rows as read, grouped by cell in order of first appearance.
pub struct RawPolygons {
    pub ids: Vec<String>,
    pub first_rows: Vec<usize>,
    /// Indexed by position in `ids`.
    pub polygons: Polygons,
}

/// Reads a boundary file (`cell_id`, `vertex_x`, `vertex_y`, and `label_id` from XOA 2.0;
/// parquet or CSV). Each cell's vertices must be contiguous rows; a cell's polygons are split by
/// `label_id`, else where a ring closes.
pub fn read_raw(path: &Path) -> Result<RawPolygons, XeniumError> {
    let wanted = [
        Wanted::text("cell_id"),
        Wanted::number("vertex_x"),
        Wanted::number("vertex_y"),
        Wanted::text("label_id").optional(),
    ];
    let mut ids: Vec<String> = Vec::new();
    let mut first_rows = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::default();
    let mut offsets = vec![0u32];
    let mut cell_polygons = vec![0u32];
    let mut vertices: Vec<[f32; 2]> = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut current_label: Vec<u8> = Vec::new();
    let mut scratch = String::new();
    let mut label_scratch = String::new();
    // Ends the open ring: drops a closing vertex that repeats the first.
    let close_ring = |offsets: &mut Vec<u32>, vertices: &mut Vec<[f32; 2]>| {
        let start = offsets.last().copied().unwrap_or(0) as usize;
        if vertices.len() == start {
            return;
        }
        if vertices.len() > start + 1 && vertices[start] == vertices[vertices.len() - 1] {
            vertices.pop();
        }
        offsets.push(vertices.len() as u32);
    };
    read_batches(path, &wanted, |batch| {
        let (Some(id), Some(x), Some(y)) = (batch.column(0), batch.column(1), batch.column(2)) else {
            return Ok(());
        };
        let (x, y) = (x.numbers(), y.numbers());
        let labels = batch.column(3);
        for row in 0..batch.rows {
            let file_row = batch.first_row + row;
            for (column, v) in [("vertex_x", x[row]), ("vertex_y", y[row])] {
                if !v.is_finite() {
                    return Err(XeniumError::BadValue {
                        file: path.to_path_buf(),
                        column: column.to_owned(),
                        row: file_row,
                        reason: format!("vertex coordinate is {v}"),
                    });
                }
            }
            let vertex = [x[row] as f32, y[row] as f32];
            let bytes = id.id_at(row, &mut scratch);
            if ids.is_empty() || bytes != current.as_slice() {
                if !ids.is_empty() {
                    close_ring(&mut offsets, &mut vertices);
                    cell_polygons.push(offsets.len() as u32 - 1);
                }
                let id_text = String::from_utf8_lossy(bytes).into_owned();
                if let Some(&first_row) = seen.get(&id_text) {
                    return Err(XeniumError::BadValue {
                        file: path.to_path_buf(),
                        column: "cell_id".to_owned(),
                        row: file_row,
                        reason: format!(
                            "vertices of cell {id_text:?} are not contiguous (it started at row {first_row})"
                        ),
                    });
                }
                current.clear();
                current.extend_from_slice(bytes);
                seen.insert(id_text.clone(), file_row);
                ids.push(id_text);
                first_rows.push(file_row);
                current_label.clear();
                if let Some(labels) = labels {
                    current_label.extend_from_slice(labels.id_at(row, &mut label_scratch));
                }
            } else {
                let start = offsets.last().copied().unwrap_or(0) as usize;
                let new_ring = match labels {
                    // Another nucleus of the same cell.
                    Some(labels) => {
                        let label = labels.id_at(row, &mut label_scratch);
                        let changed = label != current_label.as_slice();
                        if changed {
                            current_label.clear();
                            current_label.extend_from_slice(label);
                        }
                        changed
                    }
                    // No label_id: the open ring closed at the previous vertex.
                    None => vertices.len() > start + 2 && vertices[start] == vertices[vertices.len() - 1],
                };
                if new_ring {
                    close_ring(&mut offsets, &mut vertices);
                }
            }
            vertices.push(vertex);
        }
        Ok(())
    })?;
    if !ids.is_empty() {
        close_ring(&mut offsets, &mut vertices);
        cell_polygons.push(offsets.len() as u32 - 1);
    }
    Ok(RawPolygons {
        ids,
        first_rows,
        polygons: Polygons {
            offsets,
            vertices_um: vertices,
            cell_polygons,
        },
    })
}

/// Puts raw polygons into cell-table order. Polygons of cells the table does not have (common
/// after a run was subset) are skipped: the result says how many and the first one's id and row.
pub fn assign_to_cells(raw: RawPolygons, cells: &CellTable) -> (Polygons, Option<SkippedPolygons>) {
    let mut per_cell: Vec<Option<usize>> = vec![None; cells.len()];
    let mut skipped: Option<SkippedPolygons> = None;
    for (i, id) in raw.ids.iter().enumerate() {
        match cells.index_of(id) {
            Some(cell) => per_cell[cell as usize] = Some(i),
            None => {
                let s = skipped.get_or_insert_with(|| SkippedPolygons {
                    count: 0,
                    first_id: id.clone(),
                    first_row: raw.first_rows[i],
                });
                s.count += 1;
            }
        }
    }
    let mut offsets = Vec::with_capacity(raw.polygons.offsets.len());
    offsets.push(0u32);
    let mut cell_polygons = Vec::with_capacity(cells.len() + 1);
    cell_polygons.push(0u32);
    let mut vertices = Vec::with_capacity(raw.polygons.vertices_um.len());
    for slot in per_cell {
        if let Some(i) = slot {
            for ring in raw.polygons.parts(i) {
                vertices.extend_from_slice(ring);
                offsets.push(vertices.len() as u32);
            }
        }
        cell_polygons.push(offsets.len() as u32 - 1);
    }
    (
        Polygons {
            offsets,
            vertices_um: vertices,
            cell_polygons,
        },
        skipped,
    )
}

/// Boundary rows whose cell the cell table does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedPolygons {
    pub count: usize,
    pub first_id: String,
    pub first_row: usize,
}

impl SkippedPolygons {
    pub fn message(&self) -> String {
        format!(
            "skipped the boundaries of {} cells that are not in the cell table (the first, {:?}, at row {})",
            self.count, self.first_id, self.first_row
        )
    }
}
