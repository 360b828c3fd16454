//! Outlines of a selection's region as polygons with holes, for export (GeoJSON, QuPath).
//!
//! A single simple polygon is exported as drawn. Anything else (several shapes, subtraction,
//! intersection, brush strokes, a lasso that crosses itself) is sampled on a grid of up to
//! [`OUTLINE_RESOLUTION`] cells a side, its boundary traced along cell edges, and the staircase
//! simplified (Douglas–Peucker at 0.75 of a grid cell), so the outline is within about one grid
//! cell of the true region and is always a valid polygon set.

use std::collections::HashMap;

use crate::selection::{Combine, Shape, Step, region_sampler};

/// Grid cells on the longer side of the region's bounding box when tracing outlines.
pub const OUTLINE_RESOLUTION: usize = 1024;

/// A polygon with holes, in µm. Rings are open (the first vertex is not repeated); the outer ring
/// has positive shoelace area (counter-clockwise with y up, clockwise on screen where y points
/// down), holes negative.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlinePolygon {
    pub outer: Vec<[f64; 2]>,
    pub holes: Vec<Vec<[f64; 2]>>,
}

fn signed_area(ring: &[[f64; 2]]) -> f64 {
    let n = ring.len();
    (0..n)
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % n]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum::<f64>()
        * 0.5
}

fn segments_cross(a: [f64; 2], b: [f64; 2], c: [f64; 2], d: [f64; 2]) -> bool {
    let orient = |p: [f64; 2], q: [f64; 2], r: [f64; 2]| (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]);
    let (o1, o2, o3, o4) = (orient(a, b, c), orient(a, b, d), orient(c, d, a), orient(c, d, b));
    o1 * o2 < 0.0 && o3 * o4 < 0.0
}

/// True when no two non-adjacent edges cross (O(n²), so rings of more than 5,000 vertices are
/// not checked and count as not simple: they are traced instead).
fn is_simple(ring: &[[f64; 2]]) -> bool {
    let n = ring.len();
    if !(3..=5000).contains(&n) {
        return false;
    }
    for i in 0..n {
        let (a, b) = (ring[i], ring[(i + 1) % n]);
        for j in i + 2..n {
            if i == 0 && j == n - 1 {
                continue;
            }
            let (c, d) = (ring[j], ring[(j + 1) % n]);
            if segments_cross(a, b, c, d) {
                return false;
            }
        }
    }
    true
}

/// Orients a ring counter-clockwise (positive signed area in a y-up frame).
fn counter_clockwise(mut ring: Vec<[f64; 2]>) -> Vec<[f64; 2]> {
    if signed_area(&ring) < 0.0 {
        ring.reverse();
    }
    ring
}

/// The region of `steps` as polygons with holes (empty when the region is empty).
pub fn region_outline(steps: &[Step]) -> Vec<OutlinePolygon> {
    if let [
        Step {
            combine: Combine::Replace | Combine::Add,
            shape: Shape::Polygon(points),
        },
    ] = steps
    {
        let ring: Vec<[f64; 2]> = points.iter().map(|p| [f64::from(p[0]), f64::from(p[1])]).collect();
        if is_simple(&ring) && signed_area(&ring).abs() > 0.0 {
            return vec![OutlinePolygon {
                outer: counter_clockwise(ring),
                holes: Vec::new(),
            }];
        }
    }
    let Some(sampler) = region_sampler(steps) else {
        return Vec::new();
    };
    let (min, max) = sampler.bounds_um();
    let span = (max[0] - min[0]).max(max[1] - min[1]);
    let cell = span / OUTLINE_RESOLUTION as f64;
    // One empty cell of margin on every side so every boundary closes.
    let cols = ((max[0] - min[0]) / cell).ceil() as usize + 2;
    let rows = ((max[1] - min[1]) / cell).ceil() as usize + 2;
    let origin = [min[0] - cell, min[1] - cell];
    let mut inside = vec![false; cols * rows];
    for r in 1..rows - 1 {
        let y = origin[1] + (r as f64 + 0.5) * cell;
        for c in 1..cols - 1 {
            let x = origin[0] + (c as f64 + 0.5) * cell;
            inside[r * cols + c] = sampler.contains([x, y]);
        }
    }
    let rings = trace_rings(&inside, cols, rows);
    let to_um = |v: (i64, i64)| [origin[0] + v.0 as f64 * cell, origin[1] + v.1 as f64 * cell];
    let mut outers = Vec::new();
    let mut holes = Vec::new();
    for ring in rings {
        let points: Vec<[f64; 2]> = ring.into_iter().map(to_um).collect();
        let simplified = simplify_ring(&points, 0.75 * cell);
        if simplified.len() < 3 {
            continue;
        }
        // As traced (see `trace_rings`), outer rings have negative signed area and holes
        // positive; outer rings are turned to positive here and holes to negative below.
        if signed_area(&simplified) < 0.0 {
            let mut outer = simplified;
            outer.reverse();
            outers.push(outer);
        } else {
            holes.push(simplified);
        }
    }
    let mut polygons: Vec<OutlinePolygon> = outers
        .into_iter()
        .map(|outer| OutlinePolygon {
            outer,
            holes: Vec::new(),
        })
        .collect();
    for hole in holes {
        let probe = hole[0];
        // The smallest outer ring that contains the hole.
        let owner = polygons
            .iter()
            .enumerate()
            .filter(|(_, p)| ring_contains(&p.outer, probe))
            .min_by(|a, b| signed_area(&a.1.outer).abs().total_cmp(&signed_area(&b.1.outer).abs()))
            .map(|(i, _)| i);
        if let Some(i) = owner {
            let mut hole = hole;
            hole.reverse();
            polygons[i].holes.push(hole);
        }
    }
    polygons
}

fn ring_contains(ring: &[[f64; 2]], p: [f64; 2]) -> bool {
    let n = ring.len();
    let mut inside = false;
    let mut j = n - 1;
    for i in 0..n {
        let (a, b) = (ring[i], ring[j]);
        if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < b[0] + (p[1] - b[1]) * (a[0] - b[0]) / (a[1] - b[1]) {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Boundary loops of the `true` cells along grid edges (vertices are grid corners). Each cell's
/// boundary edges run top edge leftwards, left edge down, bottom edge rightwards, right edge up,
/// so outer loops have negative shoelace area and loops around holes positive.
fn trace_rings(inside: &[bool], cols: usize, rows: usize) -> Vec<Vec<(i64, i64)>> {
    let at = |c: i64, r: i64| {
        c >= 0 && r >= 0 && (c as usize) < cols && (r as usize) < rows && inside[r as usize * cols + c as usize]
    };
    // Directed edges: from corner -> list of next corners.
    let mut next: HashMap<(i64, i64), Vec<(i64, i64)>> = HashMap::new();
    for r in 0..rows as i64 {
        for c in 0..cols as i64 {
            if !at(c, r) {
                continue;
            }
            if !at(c, r - 1) {
                next.entry((c + 1, r)).or_default().push((c, r));
            }
            if !at(c - 1, r) {
                next.entry((c, r)).or_default().push((c, r + 1));
            }
            if !at(c, r + 1) {
                next.entry((c, r + 1)).or_default().push((c + 1, r + 1));
            }
            if !at(c + 1, r) {
                next.entry((c + 1, r + 1)).or_default().push((c + 1, r));
            }
        }
    }
    let mut rings = Vec::new();
    let mut starts: Vec<(i64, i64)> = next.keys().copied().collect();
    starts.sort_unstable();
    for start in starts {
        while let Some(first) = next.get_mut(&start).and_then(|v| v.pop()) {
            let mut ring = vec![start];
            let mut prev = start;
            let mut current = first;
            let mut guard = 0usize;
            while current != start && guard < 4 * cols * rows {
                guard += 1;
                ring.push(current);
                let dir_in = (current.0 - prev.0, current.1 - prev.1);
                let Some(options) = next.get_mut(&current) else { break };
                // At a corner shared by two diagonal cells, keep turning the same way so the two
                // regions stay separate loops.
                let pick = if options.len() > 1 {
                    let turn = |o: &(i64, i64)| {
                        let d = (o.0 - current.0, o.1 - current.1);
                        dir_in.0 * d.1 - dir_in.1 * d.0
                    };
                    options
                        .iter()
                        .enumerate()
                        .max_by_key(|(_, o)| turn(o))
                        .map(|(i, _)| i)
                        .unwrap_or(0)
                } else {
                    0
                };
                let following = options.swap_remove(pick);
                prev = current;
                current = following;
            }
            if ring.len() >= 3 {
                rings.push(ring);
            }
        }
    }
    rings
}

/// Drops collinear vertices, then Douglas–Peucker with `tolerance` on the closed ring.
fn simplify_ring(ring: &[[f64; 2]], tolerance: f64) -> Vec<[f64; 2]> {
    let n = ring.len();
    if n < 4 {
        return ring.to_vec();
    }
    // Split the closed ring at its first vertex and the vertex farthest from it.
    let far = (1..n)
        .max_by(|&a, &b| {
            let d = |i: usize| (ring[i][0] - ring[0][0]).powi(2) + (ring[i][1] - ring[0][1]).powi(2);
            d(a).total_cmp(&d(b))
        })
        .unwrap_or(n / 2);
    let mut first_half: Vec<[f64; 2]> = ring[..=far].to_vec();
    let mut second_half: Vec<[f64; 2]> = ring[far..].to_vec();
    second_half.push(ring[0]);
    first_half = douglas_peucker(&first_half, tolerance);
    second_half = douglas_peucker(&second_half, tolerance);
    first_half.pop();
    second_half.pop();
    first_half.extend(second_half);
    first_half
}

fn douglas_peucker(points: &[[f64; 2]], tolerance: f64) -> Vec<[f64; 2]> {
    if points.len() < 3 {
        return points.to_vec();
    }
    let mut keep = vec![false; points.len()];
    keep[0] = true;
    keep[points.len() - 1] = true;
    let mut stack = vec![(0usize, points.len() - 1)];
    while let Some((a, b)) = stack.pop() {
        let (pa, pb) = (points[a], points[b]);
        let (dx, dy) = (pb[0] - pa[0], pb[1] - pa[1]);
        let len = (dx * dx + dy * dy).sqrt().max(1e-12);
        let mut best = (0.0, a);
        for (i, p) in points.iter().enumerate().take(b).skip(a + 1) {
            let d = ((p[0] - pa[0]) * dy - (p[1] - pa[1]) * dx).abs() / len;
            if d > best.0 {
                best = (d, i);
            }
        }
        if best.0 > tolerance {
            keep[best.1] = true;
            stack.push((a, best.1));
            stack.push((best.1, b));
        }
    }
    points.iter().zip(keep).filter(|(_, k)| *k).map(|(p, _)| *p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(x0: f32, y0: f32, x1: f32, y1: f32) -> Shape {
        Shape::Polygon(vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    }

    fn area(p: &OutlinePolygon) -> f64 {
        signed_area(&p.outer).abs() - p.holes.iter().map(|h| signed_area(h).abs()).sum::<f64>()
    }

    #[test]
    fn a_simple_polygon_is_exported_as_drawn() {
        let steps = [Step {
            combine: Combine::Replace,
            shape: rect(0.0, 0.0, 10.0, 5.0),
        }];
        let outline = region_outline(&steps);
        assert_eq!(outline.len(), 1);
        assert_eq!(outline[0].outer.len(), 4);
        assert!(signed_area(&outline[0].outer) > 0.0);
        assert_eq!(area(&outline[0]), 50.0);
    }

    #[test]
    fn a_subtracted_middle_becomes_a_hole_and_apart_shapes_separate_polygons() {
        let steps = [
            Step {
                combine: Combine::Replace,
                shape: rect(0.0, 0.0, 100.0, 100.0),
            },
            Step {
                combine: Combine::Subtract,
                shape: rect(30.0, 30.0, 70.0, 70.0),
            },
            Step {
                combine: Combine::Add,
                shape: rect(200.0, 0.0, 250.0, 50.0),
            },
        ];
        let mut outline = region_outline(&steps);
        outline.sort_by(|a, b| a.outer[0][0].total_cmp(&b.outer[0][0]));
        assert_eq!(outline.len(), 2, "{outline:?}");
        assert_eq!(outline[0].holes.len(), 1);
        // Grid cells are 250/1024 µm: areas agree to well under 1%.
        assert!(
            (area(&outline[0]) - 8400.0).abs() < 0.01 * 8400.0,
            "{}",
            area(&outline[0])
        );
        assert!((area(&outline[1]) - 2500.0).abs() < 0.01 * 2500.0);
        // Axis-aligned edges simplify back to few vertices.
        assert!(outline[1].outer.len() <= 8, "{:?}", outline[1].outer);
        assert!(outline[0].holes[0].len() <= 8);
    }

    #[test]
    fn a_crossing_lasso_and_a_brush_give_valid_outlines() {
        let bow = Shape::Polygon(vec![[0.0, 0.0], [10.0, 10.0], [10.0, 0.0], [0.0, 10.0]]);
        let outline = region_outline(&[Step {
            combine: Combine::Replace,
            shape: bow,
        }]);
        assert_eq!(outline.len(), 2, "a bow tie is two triangles");
        let total: f64 = outline.iter().map(area).sum();
        assert!((total - 50.0).abs() < 1.0, "{total}");
        // A stroke: circles every µm along 20 µm.
        let brush = Shape::Brush {
            centers_um: (0..=20).map(|k| [k as f32, 0.0]).collect(),
            radius_um: 5.0,
        };
        let outline = region_outline(&[Step {
            combine: Combine::Replace,
            shape: brush,
        }]);
        assert_eq!(outline.len(), 1);
        let expected = 20.0 * 10.0 + 25.0 * std::f64::consts::PI;
        assert!((area(&outline[0]) - expected).abs() < 0.02 * expected);
        assert!(region_outline(&[]).is_empty());
    }
}
