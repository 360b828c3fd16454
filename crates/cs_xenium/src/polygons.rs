//! Cell and nucleus boundaries as flat polygons: `offsets` into one vertex array, in cell order.

use rustc_hash::FxHashMap as HashMap;
use std::path::Path;

use crate::cells::CellTable;
use crate::columns::{Wanted, read_batches};
use crate::error::XeniumError;

/// Polygons of every cell, in cell-table order: cell `i` owns
/// `vertices_um[offsets[i] as usize..offsets[i + 1] as usize]` (empty when it has none).
/// The closing vertex that repeats the first is dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Polygons {
    pub offsets: Vec<u32>,
    pub vertices_um: Vec<[f32; 2]>,
}

impl Polygons {
    pub fn polygon(&self, cell: usize) -> &[[f32; 2]] {
        match (self.offsets.get(cell), self.offsets.get(cell + 1)) {
            (Some(&a), Some(&b)) => &self.vertices_um[a as usize..b as usize],
            _ => &[],
        }
    }

    pub fn cells_with_polygon(&self) -> usize {
        self.offsets.windows(2).filter(|w| w[1] > w[0]).count()
    }

    /// Shoelace area in µm² of cell `cell`'s polygon.
    pub fn area_um2(&self, cell: usize) -> f64 {
        let p = self.polygon(cell);
        let mut twice = 0.0;
        for i in 0..p.len() {
            let a = p[i];
            let b = p[(i + 1) % p.len()];
            twice += f64::from(a[0]) * f64::from(b[1]) - f64::from(b[0]) * f64::from(a[1]);
        }
        (twice * 0.5).abs()
    }

    /// Area-weighted centroid of cell `cell`'s polygon (vertex mean for degenerate ones).
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

/// Boundary rows as read, grouped by cell in order of first appearance.
pub struct RawPolygons {
    pub ids: Vec<String>,
    pub first_rows: Vec<usize>,
    pub polygons: Polygons,
}

/// Reads a boundary file (`cell_id`, `vertex_x`, `vertex_y`; parquet or CSV). Each cell's vertices
/// must be contiguous rows.
pub fn read_raw(path: &Path) -> Result<RawPolygons, XeniumError> {
    let wanted = [
        Wanted::text("cell_id"),
        Wanted::number("vertex_x"),
        Wanted::number("vertex_y"),
    ];
    let mut ids: Vec<String> = Vec::new();
    let mut first_rows = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::default();
    let mut offsets = vec![0u32];
    let mut vertices: Vec<[f32; 2]> = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut scratch = String::new();
    let close_polygon = |offsets: &mut Vec<u32>, vertices: &mut Vec<[f32; 2]>| {
        let start = offsets.last().copied().unwrap_or(0) as usize;
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
            let bytes = id.id_at(row, &mut scratch);
            if ids.is_empty() || bytes != current.as_slice() {
                if !ids.is_empty() {
                    close_polygon(&mut offsets, &mut vertices);
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
            }
            vertices.push([x[row] as f32, y[row] as f32]);
        }
        Ok(())
    })?;
    if !ids.is_empty() {
        close_polygon(&mut offsets, &mut vertices);
    }
    Ok(RawPolygons {
        ids,
        first_rows,
        polygons: Polygons {
            offsets,
            vertices_um: vertices,
        },
    })
}

/// Puts raw polygons into cell-table order. Polygons of cells not in the table are an error.
pub fn assign_to_cells(path: &Path, raw: RawPolygons, cells: &CellTable) -> Result<Polygons, XeniumError> {
    let mut per_cell: Vec<Option<usize>> = vec![None; cells.len()];
    for (i, id) in raw.ids.iter().enumerate() {
        match cells.index_of(id) {
            Some(cell) => per_cell[cell as usize] = Some(i),
            None => {
                return Err(XeniumError::UnknownCell {
                    file: path.to_path_buf(),
                    id: id.clone(),
                    row: raw.first_rows[i],
                });
            }
        }
    }
    let mut offsets = Vec::with_capacity(cells.len() + 1);
    offsets.push(0u32);
    let mut vertices = Vec::with_capacity(raw.polygons.vertices_um.len());
    for slot in per_cell {
        if let Some(i) = slot {
            vertices.extend_from_slice(raw.polygons.polygon(i));
        }
        offsets.push(vertices.len() as u32);
    }
    Ok(Polygons {
        offsets,
        vertices_um: vertices,
    })
}
