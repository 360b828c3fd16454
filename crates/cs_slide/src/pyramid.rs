//! Tile pyramid math: which level to draw at a zoom, which tiles cover a view, and the plan of
//! what to draw now (with coarser stand-ins for missing tiles) and what to fetch next.

use std::collections::BTreeSet;

use crate::source::LevelInfo;

/// One tile: `col`/`row` index the level's grid of `tile_size_px` squares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileKey {
    pub level: u32,
    pub col: u32,
    pub row: u32,
}

/// Inclusive-exclusive ranges of tile columns and rows at one level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileRange {
    pub level: u32,
    pub cols: std::ops::Range<u32>,
    pub rows: std::ops::Range<u32>,
}

impl TileRange {
    pub fn len(&self) -> usize {
        self.cols.len() * self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The viewport as a convex quad in level-0 slide pixels (a rotated or flipped view is still a quad).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewInSlide {
    /// Corners in order around the quad.
    pub corners_in_slide_px: [[f64; 2]; 4],
}

impl ViewInSlide {
    pub fn from_rect(min: [f64; 2], max: [f64; 2]) -> Self {
        Self {
            corners_in_slide_px: [min, [max[0], min[1]], max, [min[0], max[1]]],
        }
    }

    pub fn bounding_box(&self) -> ([f64; 2], [f64; 2]) {
        let mut min = [f64::INFINITY; 2];
        let mut max = [f64::NEG_INFINITY; 2];
        for c in &self.corners_in_slide_px {
            for axis in 0..2 {
                min[axis] = min[axis].min(c[axis]);
                max[axis] = max[axis].max(c[axis]);
            }
        }
        (min, max)
    }

    pub fn center(&self) -> [f64; 2] {
        let c = &self.corners_in_slide_px;
        [
            0.25 * (c[0][0] + c[1][0] + c[2][0] + c[3][0]),
            0.25 * (c[0][1] + c[1][1] + c[2][1] + c[3][1]),
        ]
    }

    /// Separating-axis test against an axis-aligned rectangle (the quad's own edges as axes;
    /// the caller has already culled by bounding box).
    fn overlaps_rect(&self, min: [f64; 2], max: [f64; 2]) -> bool {
        let quad = &self.corners_in_slide_px;
        let rect = [min, [max[0], min[1]], max, [min[0], max[1]]];
        for i in 0..4 {
            let a = quad[i];
            let b = quad[(i + 1) % 4];
            let axis = [b[1] - a[1], a[0] - b[0]];
            if axis == [0.0, 0.0] {
                continue;
            }
            let project = |p: &[f64; 2]| p[0] * axis[0] + p[1] * axis[1];
            let (q_min, q_max) = quad
                .iter()
                .map(project)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
            let (r_min, r_max) = rect
                .iter()
                .map(project)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
            if r_max < q_min || r_min > q_max {
                return false;
            }
        }
        true
    }
}

/// The slide's levels cut into square tiles.
#[derive(Debug, Clone, PartialEq)]
pub struct TilePyramid {
    tile_size_px: u32,
    levels: Vec<LevelInfo>,
}

impl TilePyramid {
    pub fn new(levels: Vec<LevelInfo>, tile_size_px: u32) -> Self {
        Self {
            tile_size_px: tile_size_px.max(1),
            levels,
        }
    }

    pub fn tile_size_px(&self) -> u32 {
        self.tile_size_px
    }

    pub fn levels(&self) -> &[LevelInfo] {
        &self.levels
    }

    pub fn coarsest_level(&self) -> u32 {
        self.levels.len().saturating_sub(1) as u32
    }

    /// Number of tile columns and rows at `level`.
    pub fn grid(&self, level: u32) -> (u32, u32) {
        let Some(info) = self.levels.get(level as usize) else {
            return (0, 0);
        };
        let t = u64::from(self.tile_size_px);
        (
            info.width_px.div_ceil(t).min(u64::from(u32::MAX)) as u32,
            info.height_px.div_ceil(t).min(u64::from(u32::MAX)) as u32,
        )
    }

    /// The finest level whose pixels are no smaller than a screen pixel would need:
    /// the largest downsample not above `slide_px_per_screen_px` (with 1% slack), else level 0.
    pub fn level_for(&self, slide_px_per_screen_px: f64) -> u32 {
        let mut best = 0;
        for (i, level) in self.levels.iter().enumerate() {
            if level.downsample <= slide_px_per_screen_px * 1.01 {
                best = i as u32;
            }
        }
        best
    }

    /// The tile's rectangle in pixels of its own level: (x, y, width, height), clipped to the level.
    pub fn tile_rect_in_level_px(&self, key: TileKey) -> (u64, u64, u32, u32) {
        let Some(info) = self.levels.get(key.level as usize) else {
            return (0, 0, 0, 0);
        };
        let t = u64::from(self.tile_size_px);
        let x = u64::from(key.col) * t;
        let y = u64::from(key.row) * t;
        let w = info.width_px.saturating_sub(x).min(t) as u32;
        let h = info.height_px.saturating_sub(y).min(t) as u32;
        (x, y, w, h)
    }

    /// The tile's rectangle in level-0 slide pixels: (min, max).
    pub fn tile_rect_in_slide_px(&self, key: TileKey) -> ([f64; 2], [f64; 2]) {
        let downsample = self.downsample(key.level);
        let (x, y, w, h) = self.tile_rect_in_level_px(key);
        let min = [x as f64 * downsample, y as f64 * downsample];
        let max = [
            (x + u64::from(w)) as f64 * downsample,
            (y + u64::from(h)) as f64 * downsample,
        ];
        (min, max)
    }

    pub fn downsample(&self, level: u32) -> f64 {
        self.levels.get(level as usize).map(|l| l.downsample).unwrap_or(1.0)
    }

    /// What to ask a [`crate::SlideSource`] for: (top-left in slide px, level, width, height).
    pub fn read_args(&self, key: TileKey) -> ((u64, u64), usize, u32, u32) {
        let (x, y, w, h) = self.tile_rect_in_level_px(key);
        let downsample = self.downsample(key.level);
        (
            (
                (x as f64 * downsample).round() as u64,
                (y as f64 * downsample).round() as u64,
            ),
            key.level as usize,
            w,
            h,
        )
    }

    /// Range of tiles at `level` whose rectangles meet the bounding box of `view`.
    pub fn tiles_in_view(&self, level: u32, view: &ViewInSlide) -> TileRange {
        let (cols, rows) = self.grid(level);
        let empty = TileRange {
            level,
            cols: 0..0,
            rows: 0..0,
        };
        if !view.corners_in_slide_px.iter().flatten().all(|v| v.is_finite()) {
            return empty;
        }
        let (min, max) = view.bounding_box();
        let tile_in_slide_px = f64::from(self.tile_size_px) * self.downsample(level);
        let to_index = |v: f64, count: u32| (v / tile_in_slide_px).floor().clamp(0.0, f64::from(count)) as u32;
        let col0 = to_index(min[0], cols);
        let row0 = to_index(min[1], rows);
        let col1 = ((max[0] / tile_in_slide_px).ceil().clamp(0.0, f64::from(cols))) as u32;
        let row1 = ((max[1] / tile_in_slide_px).ceil().clamp(0.0, f64::from(rows))) as u32;
        if col0 >= col1 || row0 >= row1 {
            return empty;
        }
        TileRange {
            level,
            cols: col0..col1,
            rows: row0..row1,
        }
    }

    /// Tiles at `level` that actually overlap the view quad (exact for rotated views).
    pub fn visible_tiles(&self, level: u32, view: &ViewInSlide) -> Vec<TileKey> {
        let range = self.tiles_in_view(level, view);
        let axis_aligned = is_axis_aligned(view);
        let mut out = Vec::with_capacity(range.len());
        for row in range.rows.clone() {
            for col in range.cols.clone() {
                let key = TileKey { level, col, row };
                if axis_aligned {
                    out.push(key);
                } else {
                    let (min, max) = self.tile_rect_in_slide_px(key);
                    if view.overlaps_rect(min, max) {
                        out.push(key);
                    }
                }
            }
        }
        out
    }

    /// The tile at `coarser_level` that contains the centre of `key`.
    pub fn ancestor(&self, key: TileKey, coarser_level: u32) -> TileKey {
        let (min, max) = self.tile_rect_in_slide_px(key);
        let center = [(min[0] + max[0]) * 0.5, (min[1] + max[1]) * 0.5];
        let tile_in_slide_px = f64::from(self.tile_size_px) * self.downsample(coarser_level);
        let (cols, rows) = self.grid(coarser_level);
        TileKey {
            level: coarser_level,
            col: ((center[0] / tile_in_slide_px) as u32).min(cols.saturating_sub(1)),
            row: ((center[1] / tile_in_slide_px) as u32).min(rows.saturating_sub(1)),
        }
    }
}

fn is_axis_aligned(view: &ViewInSlide) -> bool {
    let c = &view.corners_in_slide_px;
    (0..4).all(|i| {
        let a = c[i];
        let b = c[(i + 1) % 4];
        a[0] == b[0] || a[1] == b[1]
    })
}

/// What one frame draws and what it asks the loader for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TilePlan {
    /// Level chosen for the zoom.
    pub target_level: u32,
    /// Tiles to draw, coarsest first so finer tiles paint over their stand-ins.
    pub draw: Vec<TileKey>,
    /// Tiles to load, most urgent first.
    pub fetch: Vec<TileKey>,
    /// Target-level tiles in view.
    pub visible_count: usize,
    /// Target-level tiles in view that are ready to draw.
    pub ready_count: usize,
}

impl TilePlan {
    pub fn is_complete(&self) -> bool {
        self.ready_count == self.visible_count
    }
}

/// Plans one frame. `is_ready(key)` says whether a tile is decoded and can be drawn now;
/// `is_failed(key)` says whether reading it failed before (it is then neither fetched nor drawn).
///
/// Fetch order: the coarsest level's visible tiles first (few, and they cover the whole view, so
/// the screen is never left empty), then target-level tiles from the view centre outwards.
pub fn plan_tiles(
    pyramid: &TilePyramid,
    view: &ViewInSlide,
    slide_px_per_screen_px: f64,
    is_ready: impl Fn(&TileKey) -> bool,
    is_failed: impl Fn(&TileKey) -> bool,
) -> TilePlan {
    let target_level = pyramid.level_for(slide_px_per_screen_px);
    let coarsest = pyramid.coarsest_level();
    let center = view.center();
    let by_distance = |keys: &mut Vec<TileKey>| {
        keys.sort_by(|a, b| {
            let da = distance_sq(pyramid, *a, center);
            let db = distance_sq(pyramid, *b, center);
            da.total_cmp(&db)
        });
    };

    let mut target_tiles = pyramid.visible_tiles(target_level, view);
    by_distance(&mut target_tiles);

    let mut fetch = Vec::new();
    if coarsest != target_level {
        let mut coarse = pyramid.visible_tiles(coarsest, view);
        by_distance(&mut coarse);
        fetch.extend(coarse.into_iter().filter(|k| !is_ready(k) && !is_failed(k)));
    }

    let mut stand_ins: BTreeSet<(std::cmp::Reverse<u32>, u32, u32)> = BTreeSet::new();
    let mut fine = Vec::with_capacity(target_tiles.len());
    let mut ready_count = 0;
    for key in &target_tiles {
        if is_ready(key) {
            ready_count += 1;
            fine.push(*key);
            continue;
        }
        if !is_failed(key) {
            fetch.push(*key);
        }
        // Nearest coarser tile that is ready stands in.
        for level in target_level + 1..=coarsest {
            let ancestor = pyramid.ancestor(*key, level);
            if is_ready(&ancestor) {
                stand_ins.insert((std::cmp::Reverse(level), ancestor.col, ancestor.row));
                break;
            }
        }
    }
    let mut draw: Vec<TileKey> = stand_ins
        .into_iter()
        .map(|(std::cmp::Reverse(level), col, row)| TileKey { level, col, row })
        .collect();
    draw.extend(fine);

    TilePlan {
        target_level,
        draw,
        fetch,
        visible_count: target_tiles.len(),
        ready_count,
    }
}

fn distance_sq(pyramid: &TilePyramid, key: TileKey, point: [f64; 2]) -> f64 {
    let (min, max) = pyramid.tile_rect_in_slide_px(key);
    let dx = 0.5 * (min[0] + max[0]) - point[0];
    let dy = 0.5 * (min[1] + max[1]) - point[1];
    dx * dx + dy * dy
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4-level pyramid like CMU-1-Small-Region.pyramid.tiff (2220x2967, downsamples 1,2,4,8).
    fn cmu_like() -> TilePyramid {
        let levels = [(2220, 2967, 1.0), (1110, 1483, 2.0), (555, 741, 4.0), (277, 370, 8.0)]
            .iter()
            .map(|&(w, h, d)| LevelInfo {
                width_px: w,
                height_px: h,
                downsample: d,
            })
            .collect();
        TilePyramid::new(levels, 256)
    }

    #[test]
    fn level_choice_follows_zoom() {
        let p = cmu_like();
        assert_eq!(p.level_for(0.25), 0, "zoomed in past 1:1 uses level 0");
        assert_eq!(p.level_for(1.0), 0);
        assert_eq!(p.level_for(1.9), 0);
        assert_eq!(
            p.level_for(1.995),
            1,
            "1% slack avoids reading a level for a hair of zoom"
        );
        assert_eq!(p.level_for(2.0), 1);
        assert_eq!(p.level_for(3.9), 1);
        assert_eq!(p.level_for(4.0), 2);
        assert_eq!(p.level_for(100.0), 3, "far out uses the coarsest");
    }

    #[test]
    fn grid_and_edge_tiles() {
        let p = cmu_like();
        assert_eq!(p.grid(0), (9, 12)); // ceil(2220/256), ceil(2967/256)
        assert_eq!(p.grid(3), (2, 2));
        let edge = TileKey {
            level: 0,
            col: 8,
            row: 11,
        };
        assert_eq!(p.tile_rect_in_level_px(edge), (2048, 2816, 172, 151));
        let coarse = TileKey {
            level: 2,
            col: 1,
            row: 0,
        };
        assert_eq!(p.read_args(coarse), ((1024, 0), 2, 256, 256));
        let (min, max) = p.tile_rect_in_slide_px(coarse);
        assert_eq!(min, [1024.0, 0.0]);
        assert_eq!(max, [2048.0, 1024.0]);
    }

    #[test]
    fn visible_range_is_clamped_to_the_slide() {
        let p = cmu_like();
        let view = ViewInSlide::from_rect([-500.0, -500.0], [300.0, 600.0]);
        let r = p.tiles_in_view(0, &view);
        assert_eq!((r.cols.clone(), r.rows.clone()), (0..2, 0..3));
        let whole = ViewInSlide::from_rect([-1e6, -1e6], [1e6, 1e6]);
        assert_eq!(p.tiles_in_view(0, &whole).len(), 9 * 12);
        let outside = ViewInSlide::from_rect([5000.0, 5000.0], [6000.0, 6000.0]);
        assert!(p.tiles_in_view(0, &outside).is_empty());
        let nan = ViewInSlide::from_rect([f64::NAN, 0.0], [10.0, 10.0]);
        assert!(p.tiles_in_view(0, &nan).is_empty());
    }

    #[test]
    fn rotated_view_skips_tiles_outside_the_quad() {
        let p = cmu_like();
        // A diamond centred at (1024, 1024) with half-diagonal 700: its bounding box covers
        // tiles 1..=6 in both axes, but corner tiles like (1,1) lie outside the diamond.
        let c = 1024.0;
        let r = 700.0;
        let view = ViewInSlide {
            corners_in_slide_px: [[c, c - r], [c + r, c], [c, c + r], [c - r, c]],
        };
        let range = p.tiles_in_view(0, &view);
        let visible = p.visible_tiles(0, &view);
        assert!(visible.len() < range.len());
        assert!(!visible.contains(&TileKey {
            level: 0,
            col: 1,
            row: 1
        }));
        assert!(visible.contains(&TileKey {
            level: 0,
            col: 4,
            row: 4
        }));
    }

    #[test]
    fn plan_uses_coarser_stand_ins_and_fetches_coarsest_first() {
        let p = cmu_like();
        let view = ViewInSlide::from_rect([0.0, 0.0], [1024.0, 768.0]);
        // Nothing loaded yet: fetch coarsest-level tiles first, then level 0 centre-out.
        let plan = plan_tiles(&p, &view, 1.0, |_| false, |_| false);
        assert_eq!(plan.target_level, 0);
        assert_eq!(plan.visible_count, 12);
        assert!(plan.draw.is_empty());
        assert_eq!(
            plan.fetch[0],
            TileKey {
                level: 3,
                col: 0,
                row: 0
            }
        );
        assert_eq!(plan.fetch[1].level, 0);
        let centre = plan.fetch[1];
        assert!(
            (1..=2).contains(&centre.col) && (1..=2).contains(&centre.row),
            "{centre:?}"
        );

        // Only the coarsest tile is ready: it stands in, drawn once, before any fine tile.
        let coarse = TileKey {
            level: 3,
            col: 0,
            row: 0,
        };
        let ready = |k: &TileKey| {
            *k == coarse
                || *k
                    == TileKey {
                        level: 0,
                        col: 0,
                        row: 0,
                    }
        };
        let plan = plan_tiles(&p, &view, 1.0, ready, |_| false);
        assert_eq!(plan.draw[0], coarse);
        assert_eq!(plan.draw.len(), 2);
        assert_eq!(plan.ready_count, 1);
        assert!(!plan.is_complete());
        assert!(!plan.fetch.contains(&coarse));
    }

    #[test]
    fn failed_tiles_are_not_fetched_again() {
        let p = cmu_like();
        let view = ViewInSlide::from_rect([0.0, 0.0], [256.0, 256.0]);
        let plan = plan_tiles(&p, &view, 1.0, |_| false, |k| k.level == 0);
        assert!(plan.fetch.iter().all(|k| k.level != 0));
    }
}
