//! Selections of cells: shapes in world µm (polygons from the lasso, polygon and rectangle tools;
//! brush strokes as chains of circles) combined in order (replace, add, subtract, intersect), the
//! set of cells they hold, and the area they cover.
//!
//! Point-in-polygon uses the even-odd rule, so a lasso that crosses itself still gives a sensible
//! region. Polygons are prepared once into horizontal bands of edges, so a 1,000-vertex lasso
//! tests a point against a handful of edges instead of all of them.

use crate::grid_index::GridIndex;

/// How a shape changes the selection built so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// The shape alone (what came before is dropped).
    Replace,
    Add,
    Subtract,
    Intersect,
}

/// A drawn shape in world µm.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Closed implicitly; lasso, polygon and rectangle tools all give polygons.
    Polygon(Vec<[f32; 2]>),
    /// A brush stroke: every point within `radius_um` of a centre.
    Brush { centers_um: Vec<[f32; 2]>, radius_um: f32 },
}

impl Shape {
    /// Bounding box (min, max) in µm; None for an empty shape.
    pub fn bounds_um(&self) -> Option<([f64; 2], [f64; 2])> {
        let (points, grow) = match self {
            Shape::Polygon(points) => (points.as_slice(), 0.0),
            Shape::Brush { centers_um, radius_um } => (centers_um.as_slice(), f64::from(*radius_um)),
        };
        let mut min = [f64::INFINITY; 2];
        let mut max = [f64::NEG_INFINITY; 2];
        for p in points {
            for a in 0..2 {
                let v = f64::from(p[a]);
                if v.is_finite() {
                    min[a] = min[a].min(v - grow);
                    max[a] = max[a].max(v + grow);
                }
            }
        }
        (min[0] <= max[0] && min[1] <= max[1]).then_some((min, max))
    }
}

/// One step of a selection: a shape and how it combines with the steps before.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub combine: Combine,
    pub shape: Shape,
}

/// A set of cell indices as a bitset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CellSet {
    words: Vec<u64>,
    len: usize,
}

impl CellSet {
    /// An empty set over `len` cells.
    pub fn new(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// How many cells the set ranges over (not how many it holds).
    pub fn universe(&self) -> usize {
        self.len
    }

    pub fn insert(&mut self, cell: usize) {
        if cell < self.len {
            self.words[cell / 64] |= 1 << (cell % 64);
        }
    }

    pub fn contains(&self, cell: usize) -> bool {
        cell < self.len && self.words[cell / 64] & (1 << (cell % 64)) != 0
    }

    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Cell indices in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            let mut w = word;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(i * 64 + bit)
            })
        })
    }

    /// Combines `other` into this set as a drawn shape would (replace, add, subtract, intersect).
    pub fn combine(&mut self, other: &CellSet, combine: Combine) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a = match combine {
                Combine::Replace => *b,
                Combine::Add => *a | *b,
                Combine::Subtract => *a & !*b,
                Combine::Intersect => *a & *b,
            };
        }
    }

    /// Cells in neither this set nor excluded by `keep` (e.g. the rest of the slide).
    pub fn complement(&self) -> CellSet {
        let mut out = CellSet {
            words: self.words.iter().map(|w| !w).collect(),
            len: self.len,
        };
        // Clear the bits past the end.
        if !self.len.is_multiple_of(64)
            && let Some(last) = out.words.last_mut()
        {
            *last &= (1u64 << (self.len % 64)) - 1;
        }
        out
    }
}

/// A polygon ready for many point tests: edges bucketed by horizontal band.
#[derive(Debug, Clone)]
pub struct PreparedPolygon {
    edges: Vec<[f64; 4]>,
    y_min: f64,
    band_height: f64,
    bands: Vec<Vec<u32>>,
    min_um: [f64; 2],
    max_um: [f64; 2],
}

impl PreparedPolygon {
    pub fn new(polygon_um: &[[f32; 2]]) -> Self {
        let points: Vec<[f64; 2]> = polygon_um
            .iter()
            .map(|p| [f64::from(p[0]), f64::from(p[1])])
            .filter(|p| p[0].is_finite() && p[1].is_finite())
            .collect();
        let n = points.len();
        let mut edges = Vec::with_capacity(n);
        let (mut min, mut max) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for i in 0..n {
            let a = points[i];
            let b = points[(i + 1) % n];
            for axis in 0..2 {
                min[axis] = min[axis].min(a[axis]);
                max[axis] = max[axis].max(a[axis]);
            }
            if a[1] != b[1] {
                edges.push([a[0], a[1], b[0], b[1]]);
            }
        }
        if n < 3 {
            edges.clear();
        }
        let band_count = (edges.len() / 2).clamp(1, 4096);
        let height = (max[1] - min[1]).max(1e-9);
        let band_height = height / band_count as f64;
        let mut bands = vec![Vec::new(); band_count];
        let band_of = |y: f64| (((y - min[1]) / band_height) as usize).min(band_count - 1);
        for (i, e) in edges.iter().enumerate() {
            let (lo, hi) = (e[1].min(e[3]), e[1].max(e[3]));
            for band in bands.iter_mut().take(band_of(hi) + 1).skip(band_of(lo)) {
                band.push(i as u32);
            }
        }
        Self {
            edges,
            y_min: min[1],
            band_height,
            bands,
            min_um: min,
            max_um: max,
        }
    }

    /// Even-odd point-in-polygon.
    pub fn contains(&self, pos_um: [f64; 2]) -> bool {
        let [px, py] = pos_um;
        if self.edges.is_empty()
            || px < self.min_um[0]
            || px > self.max_um[0]
            || py < self.min_um[1]
            || py > self.max_um[1]
        {
            return false;
        }
        let band = (((py - self.y_min) / self.band_height) as usize).min(self.bands.len() - 1);
        let mut inside = false;
        for &i in &self.bands[band] {
            let [x0, y0, x1, y1] = self.edges[i as usize];
            if (y0 > py) != (y1 > py) && px < x0 + (py - y0) * (x1 - x0) / (y1 - y0) {
                inside = !inside;
            }
        }
        inside
    }
}

/// A shape prepared for point tests.
enum PreparedShape {
    Polygon(PreparedPolygon),
    Brush { centers: GridIndex, radius_um: f64 },
}

impl PreparedShape {
    fn new(shape: &Shape) -> Self {
        match shape {
            Shape::Polygon(points) => PreparedShape::Polygon(PreparedPolygon::new(points)),
            Shape::Brush { centers_um, radius_um } => {
                let x: Vec<f64> = centers_um.iter().map(|c| f64::from(c[0])).collect();
                let y: Vec<f64> = centers_um.iter().map(|c| f64::from(c[1])).collect();
                PreparedShape::Brush {
                    centers: GridIndex::build(&x, &y),
                    radius_um: f64::from(radius_um.max(0.0)),
                }
            }
        }
    }

    fn contains(&self, pos_um: [f64; 2]) -> bool {
        match self {
            PreparedShape::Polygon(polygon) => polygon.contains(pos_um),
            PreparedShape::Brush { centers, radius_um } => centers.nearest_within(pos_um, *radius_um).is_some(),
        }
    }
}

/// The cells of `index` (over `cell_count` cells) inside `shape`.
pub fn cells_in_shape(index: &GridIndex, cell_count: usize, shape: &Shape) -> CellSet {
    let mut set = CellSet::new(cell_count);
    let Some((min, max)) = shape.bounds_um() else {
        return set;
    };
    let prepared = PreparedShape::new(shape);
    index.for_each_in_rect(min, max, |id, p| {
        if prepared.contains(p) {
            set.insert(id as usize);
        }
    });
    set
}

/// The cells held by `steps` applied in order (an empty list holds none).
pub fn cells_in_steps(index: &GridIndex, cell_count: usize, steps: &[Step]) -> CellSet {
    let mut set = CellSet::new(cell_count);
    for step in steps {
        let shape_cells = cells_in_shape(index, cell_count, &step.shape);
        set.combine(&shape_cells, step.combine);
    }
    set
}

/// The region of a list of steps, prepared for point tests.
pub struct RegionSampler {
    prepared: Vec<(Combine, PreparedShape)>,
    min_um: [f64; 2],
    max_um: [f64; 2],
}

impl RegionSampler {
    /// Bounding box (min, max) of everything the region can cover.
    pub fn bounds_um(&self) -> ([f64; 2], [f64; 2]) {
        (self.min_um, self.max_um)
    }

    /// Whether the region covers `pos_um` (the steps applied in order).
    pub fn contains(&self, pos_um: [f64; 2]) -> bool {
        self.prepared
            .iter()
            .fold(false, |inside, (combine, shape)| match combine {
                Combine::Replace => shape.contains(pos_um),
                Combine::Add => inside || shape.contains(pos_um),
                Combine::Subtract => inside && !shape.contains(pos_um),
                Combine::Intersect => inside && shape.contains(pos_um),
            })
    }
}

/// Prepares `steps` for point tests; None when they cover nothing.
pub fn region_sampler(steps: &[Step]) -> Option<RegionSampler> {
    let mut min = [f64::INFINITY; 2];
    let mut max = [f64::NEG_INFINITY; 2];
    for step in steps {
        if let (Combine::Replace | Combine::Add, Some((lo, hi))) = (step.combine, step.shape.bounds_um()) {
            if step.combine == Combine::Replace {
                min = lo;
                max = hi;
            } else {
                for a in 0..2 {
                    min[a] = min[a].min(lo[a]);
                    max[a] = max[a].max(hi[a]);
                }
            }
        }
    }
    if !(min[0] < max[0] && min[1] < max[1]) {
        return None;
    }
    Some(RegionSampler {
        prepared: steps
            .iter()
            .map(|s| (s.combine, PreparedShape::new(&s.shape)))
            .collect(),
        min_um: min,
        max_um: max,
    })
}

/// Area (µm²) of the region of `steps`, by sampling a 512 x 512 grid over its bounding box (exact
/// for the combination rules, to within about 0.5% of the area for lasso-sized regions).
pub fn region_area_um2(steps: &[Step]) -> f64 {
    const SAMPLES: usize = 512;
    let Some(sampler) = region_sampler(steps) else {
        return 0.0;
    };
    let (min, max) = sampler.bounds_um();
    let step = [(max[0] - min[0]) / SAMPLES as f64, (max[1] - min[1]) / SAMPLES as f64];
    let mut inside = 0usize;
    for row in 0..SAMPLES {
        let y = min[1] + (row as f64 + 0.5) * step[1];
        for col in 0..SAMPLES {
            let x = min[0] + (col as f64 + 0.5) * step[0];
            if sampler.contains([x, y]) {
                inside += 1;
            }
        }
    }
    inside as f64 * step[0] * step[1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::polygon_contains;

    fn square(x0: f32, y0: f32, side: f32) -> Shape {
        Shape::Polygon(vec![[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side]])
    }

    /// 100 x 100 cells on a 1 µm grid at half-integer positions.
    fn grid() -> (GridIndex, usize) {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..10_000 {
            x.push((i % 100) as f64 + 0.5);
            y.push((i / 100) as f64 + 0.5);
        }
        (GridIndex::build(&x, &y), 10_000)
    }

    #[test]
    fn prepared_polygon_agrees_with_the_plain_test() {
        // A wobbly 1000-vertex lasso that crosses itself.
        let lasso: Vec<[f32; 2]> = (0..1000)
            .map(|k| {
                let t = k as f32 / 1000.0 * std::f32::consts::TAU;
                let r = 40.0 + 15.0 * (7.0 * t).sin();
                [50.0 + r * t.cos() + 10.0 * (3.0 * t).cos(), 50.0 + r * (2.0 * t).sin()]
            })
            .collect();
        let prepared = PreparedPolygon::new(&lasso);
        let mut agree = 0;
        for i in 0..200 {
            for j in 0..200 {
                let p = [i as f64 * 0.5 + 0.13, j as f64 * 0.5 + 0.27];
                assert_eq!(prepared.contains(p), polygon_contains(&lasso, p), "{p:?}");
                agree += 1;
            }
        }
        assert_eq!(agree, 40_000);
        assert!(!PreparedPolygon::new(&[[0.0, 0.0], [1.0, 1.0]]).contains([0.5, 0.5]));
    }

    #[test]
    fn combining_shapes_adds_subtracts_and_intersects() {
        let (index, n) = grid();
        let a = square(0.0, 0.0, 50.0); // 2500 cells
        let b = square(25.0, 25.0, 50.0); // 2500 cells, 625 shared with a
        let step = |combine, shape: &Shape| Step {
            combine,
            shape: shape.clone(),
        };
        let count = |steps: &[Step]| cells_in_steps(&index, n, steps).count();
        assert_eq!(count(&[step(Combine::Replace, &a)]), 2500);
        assert_eq!(count(&[step(Combine::Replace, &a), step(Combine::Add, &b)]), 4375);
        assert_eq!(count(&[step(Combine::Replace, &a), step(Combine::Subtract, &b)]), 1875);
        assert_eq!(count(&[step(Combine::Replace, &a), step(Combine::Intersect, &b)]), 625);
        assert_eq!(
            count(&[step(Combine::Add, &a), step(Combine::Replace, &b)]),
            2500,
            "replace drops what came before"
        );
        assert_eq!(count(&[]), 0);
        let area = region_area_um2(&[step(Combine::Replace, &a), step(Combine::Subtract, &b)]);
        assert!((area - 1875.0).abs() < 0.01 * 1875.0, "{area}");
        assert_eq!(region_area_um2(&[]), 0.0);
    }

    #[test]
    fn brush_strokes_hold_cells_within_the_radius() {
        let (index, n) = grid();
        let stroke = Shape::Brush {
            centers_um: (0..=20).map(|k| [20.0 + k as f32 * 3.0, 50.0]).collect(),
            radius_um: 5.0,
        };
        let set = cells_in_shape(&index, n, &stroke);
        // A 60 µm long, 10 µm wide band with round caps: about 60*10 + 25*pi cells.
        let expected = 60.0 * 10.0 + 25.0 * std::f64::consts::PI;
        assert!((set.count() as f64 - expected).abs() < 40.0, "{}", set.count());
        assert!(set.contains(50 * 100 + 40) && !set.contains(70 * 100 + 40));
        let area = region_area_um2(&[Step {
            combine: Combine::Replace,
            shape: stroke,
        }]);
        assert!((area - expected).abs() < 0.03 * expected, "{area}");
    }

    #[test]
    fn cell_sets_iterate_and_complement() {
        let mut set = CellSet::new(130);
        for i in [0, 63, 64, 129, 500] {
            set.insert(i);
        }
        assert_eq!(set.iter().collect::<Vec<_>>(), [0, 63, 64, 129]);
        let rest = set.complement();
        assert_eq!(rest.count(), 126);
        assert!(!rest.contains(129) && rest.contains(128) && !rest.contains(130));
        assert!(CellSet::new(0).is_empty() && CellSet::new(0).complement().is_empty());
    }
}
