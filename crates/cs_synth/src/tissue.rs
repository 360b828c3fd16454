//! The tissue layout in world micrometres: the outline, the niches (tumour nests with core and
//! front, peritumoral and plain stroma, lymphoid aggregates, vessels with red blood cells), the
//! stroma flow direction, and the placement of cell centres by per-niche blue-noise dart throwing.
//!
//! Smooth fields live on a coarse [`FieldGrid`] (bilinear lookups, the same for cell placement and
//! for H&E painting); vessels and aggregates are explicit objects. Niche fractions are set by
//! quantiles of the fields over the tissue, so that every tissue size has every niche.

use rayon::prelude::*;

use crate::control::Control;
use crate::error::SynthError;
use crate::noise::Noise;
use crate::rng::{Rng, domain};

/// Cell type codes: indices into [`crate::CELL_TYPES`].
pub(crate) mod kind {
    pub const B: u8 = 0;
    pub const ENDO: u8 = 1;
    pub const EPI: u8 = 2;
    pub const FIB: u8 = 3;
    pub const MAC: u8 = 4;
    pub const T: u8 = 5;
    pub const COUNT: usize = 6;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Niche {
    TumourCore,
    TumourFront,
    Peritumoral,
    Stroma,
    FollicleCore,
    FollicleMantle,
    FollicleHalo,
    Perivascular,
    VesselWall,
}

impl Niche {
    pub fn is_follicle(self) -> bool {
        matches!(self, Niche::FollicleCore | Niche::FollicleMantle)
    }
    pub fn near_tumour(self) -> bool {
        matches!(self, Niche::TumourCore | Niche::TumourFront | Niche::Peritumoral)
    }
}

/// Field channels of the grid.
pub(crate) mod ch {
    /// Distance-like depth into the tissue, µm (tissue where above the threshold).
    pub const DEPTH: usize = 0;
    /// Tumour field (tumour where above `u_front`).
    pub const TUMOUR: usize = 1;
    /// Stroma flow orientation as (cos 2θ, sin 2θ).
    pub const FLOW_C2: usize = 2;
    pub const FLOW_S2: usize = 3;
    /// Normalised radius in the nearest lymphoid aggregate (< 1 inside).
    pub const FOLLICLE: usize = 4;
    /// Stain intensity factor (slow variation of the staining).
    pub const STAIN: usize = 5;
    pub const COUNT: usize = 6;
}

/// Smooth fields sampled every `step_um` over the tissue box.
pub(crate) struct FieldGrid {
    origin_um: [f64; 2],
    step_um: f64,
    nx: usize,
    ny: usize,
    data: Vec<[f32; ch::COUNT]>,
}

impl FieldGrid {
    fn node_pos(&self, ix: usize, iy: usize) -> [f64; 2] {
        [
            self.origin_um[0] + ix as f64 * self.step_um,
            self.origin_um[1] + iy as f64 * self.step_um,
        ]
    }

    /// All channels at `pos_in_world` (bilinear, clamped at the border).
    #[inline]
    pub fn sample(&self, pos_in_world: [f64; 2]) -> [f32; ch::COUNT] {
        let gx = ((pos_in_world[0] - self.origin_um[0]) / self.step_um).clamp(0.0, (self.nx - 1) as f64 - 1e-9);
        let gy = ((pos_in_world[1] - self.origin_um[1]) / self.step_um).clamp(0.0, (self.ny - 1) as f64 - 1e-9);
        let ix = gx as usize;
        let iy = gy as usize;
        let tx = (gx - ix as f64) as f32;
        let ty = (gy - iy as f64) as f32;
        let i = iy * self.nx + ix;
        let (a, b, c, d) = (
            &self.data[i],
            &self.data[i + 1],
            &self.data[i + self.nx],
            &self.data[i + self.nx + 1],
        );
        let mut out = [0.0; ch::COUNT];
        for k in 0..ch::COUNT {
            let top = a[k] + (b[k] - a[k]) * tx;
            let bottom = c[k] + (d[k] - c[k]) * tx;
            out[k] = top + (bottom - top) * ty;
        }
        out
    }
}

/// A spatial hash of items by square buckets.
pub(crate) struct Buckets {
    origin_um: [f64; 2],
    size_um: f64,
    nx: usize,
    ny: usize,
    items: Vec<Vec<u32>>,
}

impl Buckets {
    pub fn new(origin_um: [f64; 2], extent_um: [f64; 2], size_um: f64) -> Self {
        let nx = (extent_um[0] / size_um).ceil().max(1.0) as usize;
        let ny = (extent_um[1] / size_um).ceil().max(1.0) as usize;
        Self {
            origin_um,
            size_um,
            nx,
            ny,
            items: vec![Vec::new(); nx * ny],
        }
    }

    fn range(&self, min: [f64; 2], max: [f64; 2]) -> (usize, usize, usize, usize) {
        let to = |v: f64, o: f64, n: usize| ((v - o) / self.size_um).floor().clamp(0.0, (n - 1) as f64) as usize;
        (
            to(min[0], self.origin_um[0], self.nx),
            to(max[0], self.origin_um[0], self.nx),
            to(min[1], self.origin_um[1], self.ny),
            to(max[1], self.origin_um[1], self.ny),
        )
    }

    pub fn insert(&mut self, item: u32, min: [f64; 2], max: [f64; 2]) {
        let (x0, x1, y0, y1) = self.range(min, max);
        for y in y0..=y1 {
            for x in x0..=x1 {
                self.items[y * self.nx + x].push(item);
            }
        }
    }

    /// Items whose box may contain `pos` (the bucket of `pos`).
    #[inline]
    pub fn at(&self, pos: [f64; 2]) -> &[u32] {
        let (x, _, y, _) = self.range(pos, pos);
        &self.items[y * self.nx + x]
    }

    /// Items of every bucket touching the box (may repeat items).
    pub fn in_box(&self, min: [f64; 2], max: [f64; 2], out: &mut Vec<u32>) {
        let (x0, x1, y0, y1) = self.range(min, max);
        for y in y0..=y1 {
            for x in x0..=x1 {
                out.extend_from_slice(&self.items[y * self.nx + x]);
            }
        }
    }
}

/// One straight piece of a vessel's centreline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    pub a: [f64; 2],
    pub b: [f64; 2],
    pub radius_um: f64,
    pub vessel: u32,
}

impl Segment {
    /// Distance from `p` to the centreline piece and the unit tangent.
    #[inline]
    pub fn distance(&self, p: [f64; 2]) -> (f64, [f64; 2]) {
        let d = [self.b[0] - self.a[0], self.b[1] - self.a[1]];
        let len2 = (d[0] * d[0] + d[1] * d[1]).max(1e-12);
        let t = (((p[0] - self.a[0]) * d[0] + (p[1] - self.a[1]) * d[1]) / len2).clamp(0.0, 1.0);
        let q = [self.a[0] + t * d[0] - p[0], self.a[1] + t * d[1] - p[1]];
        let len = len2.sqrt();
        ((q[0] * q[0] + q[1] * q[1]).sqrt(), [d[0] / len, d[1] / len])
    }
}

/// A red blood cell in a vessel lumen (painted on the H&E only; not a Xenium cell).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RedCell {
    pub center_um: [f64; 2],
    pub radius_um: f64,
}

#[derive(Debug, Clone, Copy)]
struct Aggregate {
    center_um: [f64; 2],
    radius_um: f64,
    aspect: f64,
    angle: f64,
}

/// Everything about the tissue except the cells.
pub(crate) struct Layout {
    pub origin_um: [f64; 2],
    pub size_um: [f64; 2],
    pub grid: FieldGrid,
    /// Tissue where the depth field is above this (raised when cells are trimmed to the count).
    pub depth_threshold_um: f32,
    /// Tumour field thresholds: peritumoral stroma above `u_peri`, tumour above `u_front`,
    /// tumour core above `u_core`.
    pub u_peri: f32,
    pub u_front: f32,
    pub u_core: f32,
    pub segments: Vec<Segment>,
    pub segment_index: Buckets,
    pub red_cells: Vec<RedCell>,
    vessels: Vec<Vec<[f64; 2]>>,
    vessel_radius_um: Vec<f64>,
    pub aggregate_count: usize,
}

/// Margin of vessel segment boxes in the index: enough for the perivascular niche and painting.
const VESSEL_REACH_UM: f64 = 14.0;

/// What is at a point of the tissue, for placing a cell there.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Here {
    pub niche: Niche,
    /// Unit stroma flow direction.
    pub flow: [f64; 2],
}

impl Layout {
    /// The nearest vessel: (distance from its lumen edge in µm, tangent); None when none is near.
    pub fn vessel_near(&self, p: [f64; 2]) -> Option<(f64, [f64; 2])> {
        let mut best: Option<(f64, [f64; 2])> = None;
        for &s in self.segment_index.at(p) {
            let seg = &self.segments[s as usize];
            let (d, tangent) = seg.distance(p);
            let edge = d - seg.radius_um;
            if best.is_none_or(|(b, _)| edge < b) {
                best = Some((edge, tangent));
            }
        }
        best
    }

    /// The niche at `p`; None outside the tissue, in a lumen or in a vessel wall.
    pub fn here(&self, p: [f64; 2]) -> Option<Here> {
        let f = self.grid.sample(p);
        if f[ch::DEPTH] < self.depth_threshold_um {
            return None;
        }
        let flow = flow_direction(f[ch::FLOW_C2], f[ch::FLOW_S2]);
        let make = |niche| Some(Here { niche, flow });
        if let Some((edge, _)) = self.vessel_near(p) {
            if edge < 2.6 {
                return None;
            }
            if edge < 10.0 {
                return make(Niche::Perivascular);
            }
        }
        let rho = f[ch::FOLLICLE];
        if rho < 0.62 {
            return make(Niche::FollicleCore);
        }
        if rho < 1.0 {
            return make(Niche::FollicleMantle);
        }
        let u = f[ch::TUMOUR];
        if u > self.u_core {
            return make(Niche::TumourCore);
        }
        if u > self.u_front {
            return make(Niche::TumourFront);
        }
        if rho < 1.35 {
            return make(Niche::FollicleHalo);
        }
        if u > self.u_peri {
            return make(Niche::Peritumoral);
        }
        make(Niche::Stroma)
    }

    pub fn depth_at(&self, p: [f64; 2]) -> f32 {
        self.grid.sample(p)[ch::DEPTH]
    }

    /// Point and unit tangent at arc length `s` along vessel `v`.
    fn along(&self, v: usize, s: f64) -> ([f64; 2], [f64; 2]) {
        along(&self.vessels[v], s)
    }
}

/// Unit direction from a doubled-angle orientation (cos 2θ, sin 2θ).
#[inline]
pub(crate) fn flow_direction(c2: f32, s2: f32) -> [f64; 2] {
    let (c2, s2) = (f64::from(c2), f64::from(s2));
    let len = (c2 * c2 + s2 * s2).sqrt();
    if len < 1e-9 {
        return [1.0, 0.0];
    }
    let c2 = c2 / len;
    let c = ((1.0 + c2) * 0.5).max(0.0).sqrt();
    let s = ((1.0 - c2) * 0.5).max(0.0).sqrt();
    [c, if s2 < 0.0 { -s } else { s }]
}

fn polyline_length(points: &[[f64; 2]]) -> f64 {
    points
        .windows(2)
        .map(|w| ((w[1][0] - w[0][0]).powi(2) + (w[1][1] - w[0][1]).powi(2)).sqrt())
        .sum()
}

fn along(points: &[[f64; 2]], s: f64) -> ([f64; 2], [f64; 2]) {
    let mut left = s.max(0.0);
    for w in points.windows(2) {
        let d = [w[1][0] - w[0][0], w[1][1] - w[0][1]];
        let len = (d[0] * d[0] + d[1] * d[1]).sqrt().max(1e-12);
        let t = [d[0] / len, d[1] / len];
        if left <= len {
            return ([w[0][0] + t[0] * left, w[0][1] + t[1] * left], t);
        }
        left -= len;
    }
    match points {
        [.., a, b] => {
            let d = [b[0] - a[0], b[1] - a[1]];
            let len = (d[0] * d[0] + d[1] * d[1]).sqrt().max(1e-12);
            (*b, [d[0] / len, d[1] / len])
        }
        [a] => (*a, [1.0, 0.0]),
        [] => ([0.0, 0.0], [1.0, 0.0]),
    }
}

/// Mean tissue area per cell (µm²) used to size the tissue box before placing cells; measured
/// over the niche mix, with a little headroom (extra cells are trimmed at the tissue edge).
pub(crate) const AREA_PER_CELL_UM2: f64 = 150.0;
/// Fraction of the tissue box covered by tissue (the outline is an irregular ellipse).
const BOX_FILL: f64 = 0.66;

/// Tissue box size (µm) for `cells` cells, aspect 1.2 : 1.
pub(crate) fn box_size_for(cells: usize, area_per_cell_um2: f64) -> [f64; 2] {
    let area = cells.max(1) as f64 * area_per_cell_um2 / BOX_FILL;
    let height = (area / 1.2).sqrt().max(160.0);
    [height * 1.2, height]
}

fn quantile(sorted: &[f32], q: f64) -> f32 {
    if sorted.is_empty() {
        return 0.5;
    }
    let i = ((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    sorted[i]
}

/// Builds the layout for a tissue box of `size_um` whose corner is `origin_um`.
pub(crate) fn build_layout(seed: u64, origin_um: [f64; 2], size_um: [f64; 2]) -> Layout {
    let min_side = size_um[0].min(size_um[1]);
    let step_um = (size_um[0].max(size_um[1]) / 1500.0).max(8.0);
    let nx = (size_um[0] / step_um).ceil() as usize + 2;
    let ny = (size_um[1] / step_um).ceil() as usize + 2;
    let grid_origin = [origin_um[0] - step_um * 0.5, origin_um[1] - step_um * 0.5];
    let centre = [origin_um[0] + size_um[0] * 0.5, origin_um[1] + size_um[1] * 0.5];
    let semi = [size_um[0] * 0.5 * 0.92, size_um[1] * 0.5 * 0.92];
    let outline_low = Noise::new(seed, domain::NOISE, 1);
    let outline_high = Noise::new(seed, domain::NOISE, 2);
    let warp_x = Noise::new(seed, domain::NOISE, 3);
    let warp_y = Noise::new(seed, domain::NOISE, 4);
    let tumour = Noise::new(seed, domain::NOISE, 5);
    let flow = Noise::new(seed, domain::NOISE, 6);
    let stain = Noise::new(seed, domain::NOISE, 7);
    let outline_scale = min_side * 0.45;
    let r_min = min_side * 0.5 * 0.92;

    let mut data = vec![[0.0f32; ch::COUNT]; nx * ny];
    data.par_chunks_mut(nx).enumerate().for_each(|(iy, row)| {
        for (ix, node) in row.iter_mut().enumerate() {
            let p = [
                grid_origin[0] + ix as f64 * step_um,
                grid_origin[1] + iy as f64 * step_um,
            ];
            let ex = (p[0] - centre[0]) / semi[0];
            let ey = (p[1] - centre[1]) / semi[1];
            let rho = (ex * ex + ey * ey).sqrt();
            let low = f64::from(outline_low.fbm(p[0] / outline_scale, p[1] / outline_scale, 3)) - 0.5;
            let high = f64::from(outline_high.fbm(p[0] / 90.0, p[1] / 90.0, 2)) - 0.5;
            node[ch::DEPTH] = (r_min * (1.0 - rho + 0.55 * low) + 40.0 * high) as f32;
            let wx = f64::from(warp_x.fbm(p[0] / 220.0, p[1] / 220.0, 2)) - 0.5;
            let wy = f64::from(warp_y.fbm(p[0] / 220.0, p[1] / 220.0, 2)) - 0.5;
            let q = [p[0] + 160.0 * wx, p[1] + 160.0 * wy];
            // Nests (~300 µm) grouped into tumour-rich and stroma-rich regions (~3 mm).
            let regional = tumour.fbm(p[0] / 3000.0 + 101.0, p[1] / 3000.0 - 57.0, 2);
            node[ch::TUMOUR] = 0.7 * tumour.fbm(q[0] / 300.0, q[1] / 300.0, 4) + 0.3 * regional;
            let angle = std::f64::consts::TAU * f64::from(flow.fbm(p[0] / 700.0, p[1] / 700.0, 2)) * 2.0;
            node[ch::FLOW_C2] = (2.0 * angle).cos() as f32;
            node[ch::FLOW_S2] = (2.0 * angle).sin() as f32;
            node[ch::FOLLICLE] = 99.0;
            node[ch::STAIN] = 0.86 + 0.28 * stain.fbm(p[0] / 500.0, p[1] / 500.0, 2);
        }
    });
    let mut grid = FieldGrid {
        origin_um: grid_origin,
        step_um,
        nx,
        ny,
        data,
    };

    // Niche thresholds from quantiles of the tumour field over the tissue.
    let mut u_values: Vec<f32> = grid
        .data
        .iter()
        .filter(|n| n[ch::DEPTH] > 0.0)
        .map(|n| n[ch::TUMOUR])
        .collect();
    u_values.sort_by(f32::total_cmp);
    let tissue_area_um2 = u_values.len() as f64 * step_um * step_um;
    let u_core = quantile(&u_values, 1.0 - 0.36 * 0.58);
    let u_front = quantile(&u_values, 1.0 - 0.36);
    let u_peri = quantile(&u_values, 1.0 - 0.36 - 0.12);

    // Stroma runs along tumour nest borders: blend the flow with the tumour contour's tangent.
    let tangent_flow: Vec<Option<(f32, f32, f32)>> = (0..nx * ny)
        .into_par_iter()
        .map(|i| {
            let (ix, iy) = (i % nx, i / nx);
            if ix == 0 || iy == 0 || ix + 1 >= nx || iy + 1 >= ny {
                return None;
            }
            let gx = grid.data[i + 1][ch::TUMOUR] - grid.data[i - 1][ch::TUMOUR];
            let gy = grid.data[i + nx][ch::TUMOUR] - grid.data[i - nx][ch::TUMOUR];
            let g2 = gx * gx + gy * gy;
            if g2 < 1e-12 {
                return None;
            }
            let closeness = (grid.data[i][ch::TUMOUR] - u_front) / 0.07;
            let weight = 0.85 * (-closeness * closeness).exp();
            // The contour's tangent is the gradient turned by 90°: doubled angle negated.
            Some((-(gx * gx - gy * gy) / g2, -(2.0 * gx * gy) / g2, weight))
        })
        .collect();
    for (node, tangent) in grid.data.iter_mut().zip(tangent_flow) {
        if let Some((c2, s2, w)) = tangent {
            node[ch::FLOW_C2] = node[ch::FLOW_C2] * (1.0 - w) + c2 * w;
            node[ch::FLOW_S2] = node[ch::FLOW_S2] * (1.0 - w) + s2 * w;
        }
    }

    let aggregates = place_aggregates(seed, &grid, origin_um, size_um, tissue_area_um2, u_peri, u_front);
    let follicle_edge = Noise::new(seed, domain::NOISE, 8);
    for agg in &aggregates {
        let reach = agg.radius_um * 1.6;
        let (ix0, iy0) = grid_index(&grid, [agg.center_um[0] - reach, agg.center_um[1] - reach]);
        let (ix1, iy1) = grid_index(&grid, [agg.center_um[0] + reach, agg.center_um[1] + reach]);
        let (s, c) = agg.angle.sin_cos();
        for iy in iy0..=iy1 {
            for ix in ix0..=ix1 {
                let p = grid.node_pos(ix, iy);
                let d = [p[0] - agg.center_um[0], p[1] - agg.center_um[1]];
                let along = (d[0] * c + d[1] * s) / agg.radius_um;
                let across = (-d[0] * s + d[1] * c) / (agg.radius_um * agg.aspect);
                let wobble = 1.0 + 0.22 * (f64::from(follicle_edge.fbm(p[0] / 45.0, p[1] / 45.0, 2)) - 0.5);
                let rho = ((along * along + across * across).sqrt() * wobble) as f32;
                let node = &mut grid.data[iy * nx + ix];
                node[ch::FOLLICLE] = node[ch::FOLLICLE].min(rho);
            }
        }
    }

    let mut layout = Layout {
        origin_um,
        size_um,
        grid,
        depth_threshold_um: 0.0,
        u_peri,
        u_front,
        u_core,
        segments: Vec::new(),
        segment_index: Buckets::new(origin_um, size_um, 64.0),
        red_cells: Vec::new(),
        vessels: Vec::new(),
        vessel_radius_um: Vec::new(),
        aggregate_count: aggregates.len(),
    };
    grow_vessels(seed, &mut layout, tissue_area_um2);
    layout
}

fn grid_index(grid: &FieldGrid, p: [f64; 2]) -> (usize, usize) {
    let gx = ((p[0] - grid.origin_um[0]) / grid.step_um)
        .round()
        .clamp(0.0, (grid.nx - 1) as f64);
    let gy = ((p[1] - grid.origin_um[1]) / grid.step_um)
        .round()
        .clamp(0.0, (grid.ny - 1) as f64);
    (gx as usize, gy as usize)
}

fn place_aggregates(
    seed: u64,
    grid: &FieldGrid,
    origin_um: [f64; 2],
    size_um: [f64; 2],
    tissue_area_um2: f64,
    u_peri: f32,
    u_front: f32,
) -> Vec<Aggregate> {
    let mut rng = Rng::new(seed, domain::AGGREGATES, 0);
    let wanted = ((tissue_area_um2 / 1e6 * 1.6).round() as usize).max(1);
    let max_radius = 0.17 * size_um[0].min(size_um[1]);
    let mut placed: Vec<Aggregate> = Vec::new();
    let mut best_fallback: Option<(f64, Aggregate)> = None;
    for _ in 0..wanted * 300 {
        if placed.len() >= wanted {
            break;
        }
        let radius = rng.range(55.0, 125.0).min(max_radius);
        let candidate = Aggregate {
            center_um: [
                origin_um[0] + rng.f64() * size_um[0],
                origin_um[1] + rng.f64() * size_um[1],
            ],
            radius_um: radius,
            aspect: rng.range(0.78, 1.0),
            angle: rng.range(0.0, std::f64::consts::PI),
        };
        let f = grid.sample(candidate.center_um);
        let depth = f64::from(f[ch::DEPTH]);
        if depth < radius * 0.9 {
            continue;
        }
        let apart = placed.iter().all(|a| {
            let d = ((a.center_um[0] - candidate.center_um[0]).powi(2)
                + (a.center_um[1] - candidate.center_um[1]).powi(2))
            .sqrt();
            d > a.radius_um + radius + 80.0
        });
        if !apart {
            continue;
        }
        let mut worst_u = f[ch::TUMOUR];
        for k in 0..8 {
            let (s, c) = (f64::from(k) * std::f64::consts::FRAC_PI_4).sin_cos();
            let p = [
                candidate.center_um[0] + c * radius * 1.25,
                candidate.center_um[1] + s * radius * 1.25,
            ];
            worst_u = worst_u.max(grid.sample(p)[ch::TUMOUR]);
        }
        if f[ch::TUMOUR] < u_peri && worst_u < u_front {
            placed.push(candidate);
        } else {
            let score = depth / radius - f64::from(worst_u - u_front) * 20.0;
            if best_fallback.as_ref().is_none_or(|(b, _)| score > *b) {
                best_fallback = Some((score, candidate));
            }
        }
    }
    if placed.is_empty()
        && let Some((_, a)) = best_fallback
    {
        placed.push(a);
    }
    placed
}

fn grow_vessels(seed: u64, layout: &mut Layout, tissue_area_um2: f64) {
    let wanted = ((tissue_area_um2 / 1e6 * 10.0).round() as usize).max(3);
    let origin = layout.origin_um;
    let size = layout.size_um;
    for v in 0..wanted {
        let mut rng = Rng::new(seed, domain::VESSELS, v as u64);
        let u = rng.f64();
        let radius = 3.4 + 12.0 * u * u * u;
        let length = rng.range(90.0, 420.0);
        let vessel_id = layout.vessels.len() as u32;
        let clear = |layout: &Layout, p: [f64; 2], own: u32| {
            let f = layout.grid.sample(p);
            if f[ch::DEPTH] < 12.0 || f[ch::TUMOUR] > layout.u_core || f[ch::FOLLICLE] < 1.15 {
                return false;
            }
            layout.segment_index.at(p).iter().all(|&s| {
                let seg = &layout.segments[s as usize];
                seg.vessel == own || seg.distance(p).0 > seg.radius_um + radius + 14.0
            })
        };
        let mut start = None;
        for _ in 0..40 {
            let p = [origin[0] + rng.f64() * size[0], origin[1] + rng.f64() * size[1]];
            let f = layout.grid.sample(p);
            if f[ch::TUMOUR] < layout.u_front && f[ch::DEPTH] > 30.0 && clear(layout, p, vessel_id) {
                start = Some(p);
                break;
            }
        }
        let Some(start) = start else { continue };
        let mut heading = rng.range(0.0, std::f64::consts::TAU);
        let mut curvature: f64 = 0.0;
        let step = 5.0;
        let mut points = vec![start];
        let mut walked = 0.0;
        while walked < length {
            curvature = (curvature + rng.normal() * 0.003).clamp(-0.012, 0.012);
            heading += curvature * step;
            let last = points[points.len() - 1];
            let next = [last[0] + heading.cos() * step, last[1] + heading.sin() * step];
            if !clear(layout, next, vessel_id) {
                break;
            }
            points.push(next);
            walked += step;
        }
        if points.len() < 7 {
            continue;
        }
        for w in points.windows(2) {
            let seg = Segment {
                a: w[0],
                b: w[1],
                radius_um: radius,
                vessel: vessel_id,
            };
            let reach = radius + VESSEL_REACH_UM;
            let id = layout.segments.len() as u32;
            layout.segment_index.insert(
                id,
                [w[0][0].min(w[1][0]) - reach, w[0][1].min(w[1][1]) - reach],
                [w[0][0].max(w[1][0]) + reach, w[0][1].max(w[1][1]) + reach],
            );
            layout.segments.push(seg);
        }
        // Red blood cells in the lumen.
        let total = polyline_length(&points);
        let count = (total / 16.0 * rng.range(0.3, 1.3)).round() as usize;
        for _ in 0..count {
            let (p, t) = along(&points, rng.f64() * total);
            let lateral = rng.range(-1.0, 1.0) * (radius - 3.3).max(0.0);
            layout.red_cells.push(RedCell {
                center_um: [p[0] - t[1] * lateral, p[1] + t[0] * lateral],
                radius_um: (radius + 0.6).min(3.7) * rng.range(0.9, 1.04),
            });
        }
        layout.vessels.push(points);
        layout.vessel_radius_um.push(radius);
    }
}

/// A placed cell centre, before its shape exists.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placed {
    pub pos_in_world: [f64; 2],
    pub kind: u8,
    pub niche: Niche,
    /// Exclusion diameter used while placing, µm.
    pub spacing_um: f32,
    /// Orientation of the long axis, radians.
    pub orient: f32,
}

const BLOCK_UM: f64 = 32.0;
const DARTS_PER_BLOCK: usize = 140;

/// (probability that a dart is kept at all, weights per cell type, exclusion diameter per type).
fn niche_mix(niche: Niche) -> (f64, [f64; kind::COUNT], [f32; kind::COUNT]) {
    //                          B     Endo  Epi   Fib   Mac   T
    match niche {
        Niche::TumourCore => (
            1.0,
            [0.0, 0.0, 0.93, 0.02, 0.03, 0.02],
            [7.0, 9.0, 9.8, 10.0, 10.0, 7.0],
        ),
        Niche::TumourFront => (
            1.0,
            [0.0, 0.0, 0.78, 0.05, 0.08, 0.09],
            [7.0, 9.0, 10.2, 10.0, 10.0, 7.0],
        ),
        Niche::Peritumoral => (
            0.9,
            [0.03, 0.0, 0.0, 0.40, 0.24, 0.33],
            [7.5, 9.0, 11.0, 10.5, 11.0, 7.5],
        ),
        Niche::Stroma => (
            0.85,
            [0.02, 0.02, 0.0, 0.72, 0.10, 0.14],
            [8.5, 9.0, 12.0, 11.5, 11.5, 8.5],
        ),
        Niche::FollicleCore => (
            1.0,
            [0.88, 0.0, 0.0, 0.0, 0.02, 0.10],
            [5.5, 9.0, 10.0, 10.0, 10.0, 5.5],
        ),
        Niche::FollicleMantle => (
            1.0,
            [0.15, 0.0, 0.0, 0.02, 0.03, 0.80],
            [5.7, 9.0, 10.0, 10.0, 10.0, 5.7],
        ),
        Niche::FollicleHalo => (
            0.9,
            [0.05, 0.0, 0.0, 0.35, 0.15, 0.45],
            [7.5, 9.0, 11.0, 10.5, 11.0, 7.5],
        ),
        Niche::Perivascular => (
            0.8,
            [0.0, 0.0, 0.0, 0.70, 0.15, 0.15],
            [8.0, 9.0, 10.0, 10.0, 10.0, 8.0],
        ),
        Niche::VesselWall => (1.0, [0.0, 1.0, 0.0, 0.0, 0.0, 0.0], [9.0; kind::COUNT]),
    }
}

struct BlockGrid {
    nx: usize,
    ny: usize,
    origin_um: [f64; 2],
}

impl BlockGrid {
    fn of(&self, p: [f64; 2]) -> usize {
        let bx = ((p[0] - self.origin_um[0]) / BLOCK_UM)
            .floor()
            .clamp(0.0, (self.nx - 1) as f64) as usize;
        let by = ((p[1] - self.origin_um[1]) / BLOCK_UM)
            .floor()
            .clamp(0.0, (self.ny - 1) as f64) as usize;
        by * self.nx + bx
    }

    fn neighbours(&self, block: usize) -> impl Iterator<Item = usize> + '_ {
        let (bx, by) = ((block % self.nx) as i64, (block / self.nx) as i64);
        (-1..=1).flat_map(move |dy| {
            (-1..=1).filter_map(move |dx| {
                let (x, y) = (bx + dx, by + dy);
                (x >= 0 && y >= 0 && x < self.nx as i64 && y < self.ny as i64)
                    .then(|| y as usize * self.nx + x as usize)
            })
        })
    }
}

fn conflicts(cells: &[Placed], p: [f64; 2], spacing: f32) -> bool {
    cells.iter().any(|c| {
        let min = f64::from(spacing + c.spacing_um) * 0.5;
        let dx = c.pos_in_world[0] - p[0];
        let dy = c.pos_in_world[1] - p[1];
        dx * dx + dy * dy < min * min
    })
}

/// Places cell centres over the whole tissue box: endothelial cells along vessel walls first,
/// then darts block by block in four interleaved phases (blocks of one phase never touch, so
/// they run in parallel with the same result as a serial run).
pub(crate) fn place_cells(seed: u64, layout: &Layout, control: &Control) -> Result<Vec<Placed>, SynthError> {
    let blocks_grid = BlockGrid {
        nx: (layout.size_um[0] / BLOCK_UM).ceil() as usize,
        ny: (layout.size_um[1] / BLOCK_UM).ceil() as usize,
        origin_um: layout.origin_um,
    };
    let mut blocks: Vec<Vec<Placed>> = vec![Vec::new(); blocks_grid.nx * blocks_grid.ny];

    // Endothelial lining, both sides of every vessel.
    for (v, points) in layout.vessels.iter().enumerate() {
        let radius = layout.vessel_radius_um[v];
        let total = polyline_length(points);
        let mut rng = Rng::new(seed, domain::VESSELS, 1_000_000 + v as u64);
        for side in [-1.0, 1.0] {
            let mut s = rng.range(0.0, 9.0);
            while s < total {
                let (p, t) = layout.along(v, s);
                let offset = radius + 1.8;
                let pos = [p[0] - t[1] * offset * side, p[1] + t[0] * offset * side];
                s += rng.range(12.0, 17.0);
                if layout.depth_at(pos) < layout.depth_threshold_um {
                    continue;
                }
                let cell = Placed {
                    pos_in_world: pos,
                    kind: kind::ENDO,
                    niche: Niche::VesselWall,
                    spacing_um: 9.0,
                    orient: t[1].atan2(t[0]) as f32,
                };
                let block = blocks_grid.of(pos);
                if blocks_grid
                    .neighbours(block)
                    .any(|b| conflicts(&blocks[b], pos, cell.spacing_um))
                {
                    continue;
                }
                blocks[block].push(cell);
            }
        }
    }
    control.check()?;

    for phase in 0..4 {
        let (px, py) = (phase % 2, phase / 2);
        let members: Vec<usize> = (0..blocks.len())
            .filter(|b| (b % blocks_grid.nx) % 2 == px && (b / blocks_grid.nx) % 2 == py)
            .collect();
        let filled: Vec<(usize, Vec<Placed>)> = members
            .par_iter()
            .map(|&block| {
                let mut own = blocks[block].clone();
                let mut rng = Rng::new(seed, domain::DARTS, block as u64);
                let bx = (block % blocks_grid.nx) as f64;
                let by = (block / blocks_grid.nx) as f64;
                let corner = [layout.origin_um[0] + bx * BLOCK_UM, layout.origin_um[1] + by * BLOCK_UM];
                for _ in 0..DARTS_PER_BLOCK {
                    let p = [corner[0] + rng.f64() * BLOCK_UM, corner[1] + rng.f64() * BLOCK_UM];
                    let draw = rng.f64();
                    let type_draw = rng.f64();
                    let size_draw = rng.f64();
                    let orient_draw = rng.normal();
                    let Some(here) = layout.here(p) else { continue };
                    let (keep, weights, spacing) = niche_mix(here.niche);
                    if draw >= keep {
                        continue;
                    }
                    let kind = pick(&weights, type_draw);
                    let spacing_um = (spacing[kind as usize] * (0.92 + 0.16 * size_draw as f32)).min(30.0);
                    if conflicts(&own, p, spacing_um)
                        || blocks_grid
                            .neighbours(block)
                            .filter(|&b| b != block)
                            .any(|b| conflicts(&blocks[b], p, spacing_um))
                    {
                        continue;
                    }
                    let flow_angle = here.flow[1].atan2(here.flow[0]);
                    let orient = match kind {
                        kind::FIB => flow_angle + 0.18 * orient_draw,
                        _ => flow_angle + std::f64::consts::PI * orient_draw,
                    };
                    own.push(Placed {
                        pos_in_world: p,
                        kind,
                        niche: here.niche,
                        spacing_um,
                        orient: orient as f32,
                    });
                }
                (block, own)
            })
            .collect();
        for (block, cells) in filled {
            blocks[block] = cells;
        }
        control.check()?;
        control.report((phase + 1) as f32 / 4.0);
    }
    Ok(blocks.into_iter().flatten().collect())
}

fn pick(weights: &[f64; kind::COUNT], draw: f64) -> u8 {
    let total: f64 = weights.iter().sum();
    let mut target = draw * total;
    for (i, w) in weights.iter().enumerate() {
        if target < *w {
            return i as u8;
        }
        target -= w;
    }
    weights.iter().rposition(|w| *w > 0.0).unwrap_or(0) as u8
}

/// Keeps the `count` cells deepest in the tissue (so extra cells go from the rim and the outline
/// stays smooth), in their original order, and raises the layout's tissue threshold to match.
pub(crate) fn trim_to(layout: &mut Layout, mut cells: Vec<Placed>, count: usize) -> Vec<Placed> {
    if cells.len() <= count {
        return cells;
    }
    let depth: Vec<f32> = cells.par_iter().map(|c| layout.depth_at(c.pos_in_world)).collect();
    let mut order: Vec<u32> = (0..cells.len() as u32).collect();
    order.par_sort_unstable_by(|&a, &b| depth[b as usize].total_cmp(&depth[a as usize]).then(a.cmp(&b)));
    let mut keep = vec![false; cells.len()];
    for &i in &order[..count] {
        keep[i as usize] = true;
    }
    let shallowest = depth[order[count - 1] as usize];
    layout.depth_threshold_um = layout.depth_threshold_um.max(shallowest - 3.0);
    let mut i = 0;
    cells.retain(|_| {
        let k = keep[i];
        i += 1;
        k
    });
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_direction_recovers_the_angle() {
        for deg in [0.0f64, 30.0, 89.0, 120.0, 179.0] {
            let t = deg.to_radians();
            let d = flow_direction((2.0 * t).cos() as f32, (2.0 * t).sin() as f32);
            let got = d[1].atan2(d[0]).rem_euclid(std::f64::consts::PI);
            assert!((got - t).abs() < 1e-5, "{deg}: {got}");
        }
    }

    #[test]
    fn small_layout_has_every_niche() {
        let size = box_size_for(2000, AREA_PER_CELL_UM2);
        let layout = build_layout(1, [200.0, 200.0], size);
        assert!(layout.aggregate_count >= 1);
        assert!(!layout.segments.is_empty());
        let mut seen = std::collections::HashSet::new();
        for iy in 0..200 {
            for ix in 0..200 {
                let p = [
                    200.0 + size[0] * f64::from(ix) / 200.0,
                    200.0 + size[1] * f64::from(iy) / 200.0,
                ];
                if let Some(h) = layout.here(p) {
                    seen.insert(format!("{:?}", h.niche));
                }
            }
        }
        for niche in [
            "TumourCore",
            "TumourFront",
            "Stroma",
            "FollicleCore",
            "FollicleMantle",
            "Perivascular",
        ] {
            assert!(seen.contains(niche), "{niche} missing from {seen:?}");
        }
    }
}
#[cfg(test)]
mod density {
    use super::*;

    /// The box is sized by `AREA_PER_CELL_UM2`: the tissue's measured area per cell, over the
    /// niche mix, must not exceed it (else the box holds fewer cells than asked for) nor fall far
    /// below it (else the box is oversized and cells are trimmed away). Lymphoid follicle cores
    /// are packed much denser than stroma, as in tissue.
    #[test]
    fn tissue_density_fits_the_box_the_generator_sizes() {
        let requested = 20_000;
        let size = box_size_for(requested, AREA_PER_CELL_UM2);
        let layout = build_layout(1, [200.0, 200.0], size);
        let progress = |_: f32, _: &str| {};
        let cancelled = || false;
        let control = Control::new(&progress, &cancelled);
        let cells = place_cells(1, &layout, &control).unwrap();
        // Tissue area per niche, sampled on a 400 x 400 grid over the box.
        let mut area_um2 = std::collections::BTreeMap::new();
        let n = 400;
        for iy in 0..n {
            for ix in 0..n {
                let p = [
                    200.0 + size[0] * (ix as f64 + 0.5) / n as f64,
                    200.0 + size[1] * (iy as f64 + 0.5) / n as f64,
                ];
                if let Some(here) = layout.here(p) {
                    *area_um2.entry(format!("{:?}", here.niche)).or_insert(0.0) += size[0] * size[1] / (n * n) as f64;
                }
            }
        }
        let mut count = std::collections::BTreeMap::new();
        for c in &cells {
            *count.entry(format!("{:?}", c.niche)).or_insert(0usize) += 1;
        }
        let per_cell = |niche: &str| area_um2[niche] / count[niche] as f64;
        let tissue_um2: f64 = area_um2.values().sum();
        let mean = tissue_um2 / cells.len() as f64;
        assert!(cells.len() >= requested, "{} cells placed", cells.len());
        assert!(
            (0.85 * AREA_PER_CELL_UM2..=AREA_PER_CELL_UM2).contains(&mean),
            "{mean:.1} µm² of tissue per cell"
        );
        assert!(
            per_cell("FollicleCore") < 0.5 * per_cell("Stroma"),
            "follicle core {:.1}, stroma {:.1} µm² per cell",
            per_cell("FollicleCore"),
            per_cell("Stroma")
        );
    }
}
