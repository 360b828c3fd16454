//! Painting H&E pixels. Stains are mixed as concentrations and turned into light by Beer–Lambert
//! (optical density adds up), so overlaps and anti-aliased edges blend like real dye:
//! haematoxylin (blue-purple) in nuclei, eosin (pink) in stroma and cytoplasm, haemoglobin red
//! in erythrocytes, near-white glass outside the tissue. Every texture is a function of world
//! position, so pixels are deterministic and coarser levels agree with finer ones.

use crate::cells::{CELL_VERTICES, Cell, NUCLEUS_VERTICES};
use crate::geometry::{Affine2, fast_atan2};
use crate::noise::{Noise, grain};
use crate::rng::domain;
use crate::tissue::{Layout, ch, flow_direction, kind};

/// Optical density per unit concentration, (R, G, B).
const HAEMATOXYLIN: [f32; 3] = [0.70, 1.00, 0.40];
const EOSIN: [f32; 3] = [0.06, 0.37, 0.21];
const HAEMOGLOBIN: [f32; 3] = [0.22, 1.80, 1.40];
/// Glass and mounting medium.
const BACKGROUND_OD: f32 = 0.04;
const OD_LUT_STEPS: f32 = 256.0;
const OD_LUT_LEN: usize = 3072;

/// Edge softness of cells and nuclei, µm (anti-aliasing and a little optical blur).
const CELL_SOFT_UM: f64 = 0.55;
const NUCLEUS_SOFT_UM: f64 = 0.4;

/// A polygon ready for painting: star centre, first-vertex angle, and per edge its start vertex
/// and inward unit normal (relative to the centre).
struct Star<const N: usize> {
    center: [f64; 2],
    phase: f64,
    start: [[f64; 2]; N],
    normal: [[f64; 2]; N],
    reach: f64,
}

impl<const N: usize> Star<N> {
    fn new(center: [f64; 2], phase: f32, vertices: &[[f32; 2]; N]) -> Self {
        let rel = vertices.map(|v| [f64::from(v[0]) - center[0], f64::from(v[1]) - center[1]]);
        let mut normal = [[0.0; 2]; N];
        for k in 0..N {
            let a = rel[k];
            let b = rel[(k + 1) % N];
            let d = [b[0] - a[0], b[1] - a[1]];
            let len = (d[0] * d[0] + d[1] * d[1]).sqrt().max(1e-9);
            normal[k] = [-d[1] / len, d[0] / len];
        }
        let reach = rel
            .iter()
            .map(|v| (v[0] * v[0] + v[1] * v[1]).sqrt())
            .fold(0.0, f64::max);
        Self {
            center,
            phase: f64::from(phase),
            start: rel,
            normal,
            reach,
        }
    }

    /// Signed distance (µm, positive inside) of `q` (relative to the centre) from the edge of
    /// its sector.
    #[inline]
    fn inside_distance(&self, q: [f64; 2]) -> f64 {
        let theta = f64::from(fast_atan2(q[1] as f32, q[0] as f32));
        let step = std::f64::consts::TAU / N as f64;
        let k = ((theta - self.phase).rem_euclid(std::f64::consts::TAU) / step) as usize % N;
        let a = self.start[k];
        let n = self.normal[k];
        n[0] * (q[0] - a[0]) + n[1] * (q[1] - a[1])
    }
}

/// Everything painting needs; shared by all tile threads.
pub(crate) struct Painter<'a> {
    pub layout: &'a Layout,
    pub cells: &'a [Cell],
    pub world_from_slide: Affine2,
    pub slide_from_world: Affine2,
    pub tile_px: u32,
    pub um_per_px: f64,
    /// Items per level-0 tile (row-major), as indices.
    pub cells_by_tile: Vec<Vec<u32>>,
    pub segments_by_tile: Vec<Vec<u32>>,
    pub red_cells_by_tile: Vec<Vec<u32>>,
    pub tiles_across: u32,
    seed: u64,
    fibres: Noise,
    fibres_fine: Noise,
    texture: Noise,
    od_lut: Vec<f32>,
}

fn smoothstep(edge0: f32, edge1: f32, x: f32) -> f32 {
    let t = ((x - edge0) / (edge1 - edge0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

impl<'a> Painter<'a> {
    pub fn new(
        seed: u64,
        layout: &'a Layout,
        cells: &'a [Cell],
        world_from_slide: Affine2,
        tile_px: u32,
        level0_size_px: (u64, u64),
    ) -> Self {
        let tiles_across = level0_size_px.0.div_ceil(u64::from(tile_px)) as u32;
        let tiles_down = level0_size_px.1.div_ceil(u64::from(tile_px)) as u32;
        let slide_from_world = world_from_slide.inverse();
        let um_per_px = world_from_slide.scale();
        let n_tiles = (tiles_across * tiles_down) as usize;
        let bucket = |center: [f64; 2], radius_um: f64, out: &mut Vec<Vec<u32>>, item: u32| {
            let c = slide_from_world.apply(center);
            let r = radius_um / um_per_px + 2.0;
            let t = f64::from(tile_px);
            let x0 = ((c[0] - r) / t).floor().max(0.0) as i64;
            let x1 = ((c[0] + r) / t).floor().min(f64::from(tiles_across) - 1.0) as i64;
            let y0 = ((c[1] - r) / t).floor().max(0.0) as i64;
            let y1 = ((c[1] + r) / t).floor().min(f64::from(tiles_down) - 1.0) as i64;
            for y in y0..=y1 {
                for x in x0..=x1 {
                    out[(y as u32 * tiles_across + x as u32) as usize].push(item);
                }
            }
        };
        let mut cells_by_tile = vec![Vec::new(); n_tiles];
        for (i, cell) in cells.iter().enumerate() {
            let reach = cell
                .cell_vertices
                .iter()
                .map(|v| (f64::from(v[0]) - cell.center_in_world[0]).hypot(f64::from(v[1]) - cell.center_in_world[1]))
                .fold(0.0, f64::max);
            bucket(cell.center_in_world, reach + 1.0, &mut cells_by_tile, i as u32);
        }
        let mut segments_by_tile = vec![Vec::new(); n_tiles];
        for (i, s) in layout.segments.iter().enumerate() {
            let mid = [(s.a[0] + s.b[0]) * 0.5, (s.a[1] + s.b[1]) * 0.5];
            let half = ((s.b[0] - s.a[0]).hypot(s.b[1] - s.a[1])) * 0.5;
            bucket(mid, half + s.radius_um + 3.0, &mut segments_by_tile, i as u32);
        }
        let mut red_cells_by_tile = vec![Vec::new(); n_tiles];
        for (i, r) in layout.red_cells.iter().enumerate() {
            bucket(r.center_um, r.radius_um + 1.0, &mut red_cells_by_tile, i as u32);
        }
        let od_lut = (0..OD_LUT_LEN)
            .map(|i| 255.0 * (-(i as f32) / OD_LUT_STEPS).exp())
            .collect();
        Self {
            layout,
            cells,
            world_from_slide,
            slide_from_world,
            tile_px,
            um_per_px,
            cells_by_tile,
            segments_by_tile,
            red_cells_by_tile,
            tiles_across,
            seed,
            fibres: Noise::new(seed, domain::PIXELS, 1),
            fibres_fine: Noise::new(seed, domain::PIXELS, 2),
            texture: Noise::new(seed, domain::PIXELS, 3),
            od_lut,
        }
    }

    #[inline]
    fn world(&self, x: f64, y: f64) -> [f64; 2] {
        self.world_from_slide.apply([x + 0.5, y + 0.5])
    }

    /// Pixel box (tile-relative, clipped) covering a world circle.
    fn pixel_box(&self, x0: f64, y0: f64, center: [f64; 2], radius_um: f64) -> Option<(usize, usize, usize, usize)> {
        let c = self.slide_from_world.apply(center);
        let r = radius_um / self.um_per_px + 1.5;
        let t = f64::from(self.tile_px);
        let bx0 = (c[0] - r - x0).floor().max(0.0);
        let bx1 = (c[0] + r - x0).ceil().min(t - 1.0);
        let by0 = (c[1] - r - y0).floor().max(0.0);
        let by1 = (c[1] + r - y0).ceil().min(t - 1.0);
        (bx0 <= bx1 && by0 <= by1).then_some((bx0 as usize, bx1 as usize, by0 as usize, by1 as usize))
    }

    /// Paints level-0 tile (`col`, `row`) as packed RGB.
    pub fn paint_tile(&self, col: u32, row: u32) -> Vec<u8> {
        let t = self.tile_px as usize;
        let x0 = f64::from(col * self.tile_px);
        let y0 = f64::from(row * self.tile_px);
        let tile_index = (row * self.tiles_across + col) as usize;
        let mut h = vec![0.0f32; t * t];
        let mut e = vec![0.0f32; t * t];
        let mut r = vec![0.0f32; t * t];

        // Vessel lumens: distance from the lumen edge (negative inside).
        let mut lumen = vec![f32::INFINITY; t * t];
        for &s in &self.segments_by_tile[tile_index] {
            let seg = &self.layout.segments[s as usize];
            let mid = [(seg.a[0] + seg.b[0]) * 0.5, (seg.a[1] + seg.b[1]) * 0.5];
            let half = ((seg.b[0] - seg.a[0]).hypot(seg.b[1] - seg.a[1])) * 0.5;
            let Some((bx0, bx1, by0, by1)) = self.pixel_box(x0, y0, mid, half + seg.radius_um + 2.0) else {
                continue;
            };
            for py in by0..=by1 {
                for px in bx0..=bx1 {
                    let w = self.world(x0 + px as f64, y0 + py as f64);
                    let d = (seg.distance(w).0 - seg.radius_um) as f32;
                    let slot = &mut lumen[py * t + px];
                    *slot = slot.min(d);
                }
            }
        }

        let layout = self.layout;
        for py in 0..t {
            for px in 0..t {
                let i = py * t + px;
                let w = self.world(x0 + px as f64, y0 + py as f64);
                let f = layout.grid.sample(w);
                let tissue = smoothstep(-1.5, 1.5, f[ch::DEPTH] - layout.depth_threshold_um);
                if tissue <= 0.0 {
                    continue;
                }
                let stain = f[ch::STAIN];
                let flow = flow_direction(f[ch::FLOW_C2], f[ch::FLOW_S2]);
                let along = (w[0] * flow[0] + w[1] * flow[1]) / 7.0;
                let across = (-w[0] * flow[1] + w[1] * flow[0]) / 1.3;
                let streak =
                    0.65 * self.fibres.value(along, across) + 0.35 * self.fibres_fine.value(along * 2.3, across * 2.1);
                let tumourness = smoothstep(layout.u_front - 0.01, layout.u_front + 0.02, f[ch::TUMOUR]);
                let follicle = 1.0 - smoothstep(0.9, 1.15, f[ch::FOLLICLE]);
                let base = 1.05 * (1.0 - tumourness) + 0.55 * tumourness;
                let base = base * (1.0 - follicle) + 0.45 * follicle;
                let mut ee = base * (0.5 + 0.85 * streak);
                if streak < 0.3 {
                    // Retraction clefts between collagen bundles.
                    ee *= 0.35 + 0.65 * smoothstep(0.2, 0.3, streak);
                }
                let mut hh = 0.04 + 0.05 * tumourness + 0.05 * follicle;
                let d = lumen[i];
                if d < 1.6 {
                    let open = smoothstep(0.3, -0.3, d);
                    let wall = smoothstep(-0.3, 0.3, d) * smoothstep(1.6, 1.0, d);
                    ee = ee * (1.0 - open) * (1.0 - wall) + 0.07 * open + 1.5 * wall;
                    hh *= 1.0 - open;
                }
                e[i] = ee * stain * tissue;
                h[i] = hh * stain * tissue;
            }
        }

        for &k in &self.red_cells_by_tile[tile_index] {
            let red = &layout.red_cells[k as usize];
            let Some((bx0, bx1, by0, by1)) = self.pixel_box(x0, y0, red.center_um, red.radius_um + 0.6) else {
                continue;
            };
            for py in by0..=by1 {
                for px in bx0..=bx1 {
                    let w = self.world(x0 + px as f64, y0 + py as f64);
                    let dist = (w[0] - red.center_um[0]).hypot(w[1] - red.center_um[1]);
                    let alpha = ((red.radius_um - dist) / 0.45 + 0.5).clamp(0.0, 1.0) as f32;
                    if alpha <= 0.0 {
                        continue;
                    }
                    let q = (dist / (0.45 * red.radius_um)) as f32;
                    let density = 1.0 - 0.3 * (-q * q).exp();
                    let i = py * t + px;
                    let tissue = smoothstep(-1.5, 1.5, layout.depth_at(w) - layout.depth_threshold_um);
                    let alpha = alpha * tissue;
                    r[i] = r[i].max(alpha * density);
                    e[i] *= 1.0 - alpha;
                    h[i] *= 1.0 - alpha;
                }
            }
        }

        for &c in &self.cells_by_tile[tile_index] {
            self.paint_cell(&self.cells[c as usize], x0, y0, &mut h, &mut e, &mut r);
        }

        let mut rgb = vec![0u8; t * t * 3];
        for py in 0..t {
            for px in 0..t {
                let i = py * t + px;
                let g = grain(self.seed, x0 as i64 + px as i64, y0 as i64 + py as i64);
                let noise = (g - 0.5) * 4.0;
                for c in 0..3 {
                    let od = BACKGROUND_OD + h[i] * HAEMATOXYLIN[c] + e[i] * EOSIN[c] + r[i] * HAEMOGLOBIN[c];
                    let index = ((od * OD_LUT_STEPS) as usize).min(OD_LUT_LEN - 1);
                    let v = self.od_lut[index] + noise;
                    rgb[i * 3 + c] = v.round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        rgb
    }

    fn paint_cell(&self, cell: &Cell, x0: f64, y0: f64, h: &mut [f32], e: &mut [f32], r: &mut [f32]) {
        let t = self.tile_px as usize;
        let outline: Star<CELL_VERTICES> = Star::new(cell.center_in_world, cell.cell_phase, &cell.cell_vertices);
        let nucleus: Star<NUCLEUS_VERTICES> =
            Star::new(cell.nucleus_center_in_world, cell.nucleus_phase, &cell.nucleus_vertices);
        let Some((bx0, bx1, by0, by1)) = self.pixel_box(x0, y0, outline.center, outline.reach + CELL_SOFT_UM) else {
            return;
        };
        let reach2 = (outline.reach + CELL_SOFT_UM).powi(2);
        let nucleus_reach2 = (nucleus.reach + NUCLEUS_SOFT_UM).powi(2);
        let look = &cell.look;
        let darkness = look.darkness;
        let nucleolus = [
            nucleus.center[0] + f64::from(look.nucleolus_offset[0]),
            nucleus.center[1] + f64::from(look.nucleolus_offset[1]),
        ];
        let texture_shift = f64::from(look.texture % 1024);
        for py in by0..=by1 {
            for px in bx0..=bx1 {
                let w = self.world(x0 + px as f64, y0 + py as f64);
                let q = [w[0] - outline.center[0], w[1] - outline.center[1]];
                if q[0] * q[0] + q[1] * q[1] > reach2 {
                    continue;
                }
                let inside = outline.inside_distance(q);
                let alpha = ((inside / CELL_SOFT_UM) + 0.5).clamp(0.0, 1.0) as f32;
                if alpha <= 0.0 {
                    continue;
                }
                let tex = self.texture.value(w[0] / 0.75 + texture_shift, w[1] / 0.75);
                let (mut ch, mut ce) = match cell.kind {
                    kind::EPI => {
                        let membrane = smoothstep(0.9, 0.2, inside as f32);
                        (0.2 + 0.1 * membrane, (0.72 + 0.3 * tex) + 0.4 * membrane)
                    }
                    kind::MAC => {
                        let foam = self.texture.value(w[0] / 1.1 - texture_shift, w[1] / 1.1 + 7.0);
                        let vacuole = smoothstep(0.55, 0.68, foam);
                        (0.06, 0.7 * (1.0 - 0.35 * vacuole) + 0.12 * tex)
                    }
                    kind::B | kind::T => (0.32, 0.45),
                    kind::FIB => (0.08, 0.95 + 0.2 * tex),
                    _ => (0.1, 0.85),
                };
                let qn = [w[0] - nucleus.center[0], w[1] - nucleus.center[1]];
                if qn[0] * qn[0] + qn[1] * qn[1] <= nucleus_reach2 {
                    let inside_n = nucleus.inside_distance(qn);
                    let alpha_n = ((inside_n / NUCLEUS_SOFT_UM) + 0.5).clamp(0.0, 1.0) as f32;
                    if alpha_n > 0.0 {
                        let clump = self.texture.value(w[0] / 0.55 + 31.0, w[1] / 0.55 - texture_shift);
                        let (nh, ne) = match cell.kind {
                            kind::B => (1.85 * darkness + 0.3 * (clump - 0.5), 0.12),
                            kind::T => (1.75 * darkness + 0.35 * (clump - 0.5), 0.12),
                            kind::EPI => {
                                let rim = smoothstep(1.0, 0.25, inside_n as f32);
                                let mut nh = (0.62 + 0.65 * rim + 0.5 * (clump - 0.5)) * darkness;
                                let mut ne = 0.15;
                                if look.nucleolus_radius_um > 0.0 {
                                    let dn = (w[0] - nucleolus[0]).hypot(w[1] - nucleolus[1]);
                                    let a =
                                        ((f64::from(look.nucleolus_radius_um) - dn) / 0.3 + 0.5).clamp(0.0, 1.0) as f32;
                                    nh = nh * (1.0 - a) + 1.6 * a;
                                    ne = ne * (1.0 - a) + 0.9 * a;
                                }
                                (nh, ne)
                            }
                            kind::MAC => (1.4 * darkness + 0.4 * (clump - 0.5), 0.15),
                            kind::FIB => (1.6 * darkness + 0.2 * (clump - 0.5), 0.1),
                            _ => (1.65 * darkness + 0.2 * (clump - 0.5), 0.1),
                        };
                        ch = ch * (1.0 - alpha_n) + nh * alpha_n;
                        ce = ce * (1.0 - alpha_n) + ne * alpha_n;
                    }
                }
                let i = py * t + px;
                h[i] = h[i] * (1.0 - alpha) + ch * alpha;
                e[i] = e[i] * (1.0 - alpha) + ce * alpha;
                r[i] *= 1.0 - alpha;
            }
        }
    }
}

/// The four Xenium morphology stains, in file order.
pub(crate) const STAINS: usize = 4;

/// Per cell type: boundary stain (ATP1A1 everywhere, E-cadherin on epithelium, CD45 on immune
/// cells), interior RNA (18S), interior protein (αSMA/vimentin on stroma), as relative brightness.
fn stain_levels(kind: u8) -> [f32; 3] {
    match kind {
        kind::EPI => [1.0, 0.75, 0.15],
        kind::B | kind::T => [0.8, 0.45, 0.1],
        kind::MAC => [0.55, 0.6, 0.55],
        kind::FIB => [0.3, 0.5, 1.0],
        kind::ENDO => [0.4, 0.55, 0.85],
        _ => [0.4, 0.5, 0.3],
    }
}

impl Painter<'_> {
    /// Paints level-0 tile (`col`, `row`) of the four morphology stains as 16-bit intensities, in
    /// the ranges real Xenium images have (DAPI nuclei in the low thousands over a dim
    /// background): DAPI (nuclei, with chromatin texture), boundary (membranes), interior RNA
    /// (cytoplasm), interior protein (stroma). Plus shot noise, so contrast matters.
    pub fn paint_fluorescence_tile(&self, col: u32, row: u32) -> [Vec<u16>; STAINS] {
        let t = self.tile_px as usize;
        let x0 = f64::from(col * self.tile_px);
        let y0 = f64::from(row * self.tile_px);
        let tile_index = (row * self.tiles_across + col) as usize;
        let mut stains: [Vec<f32>; STAINS] = std::array::from_fn(|_| vec![0.0f32; t * t]);
        let layout = self.layout;
        for py in 0..t {
            for px in 0..t {
                let w = self.world(x0 + px as f64, y0 + py as f64);
                let tissue = smoothstep(-1.5, 1.5, layout.depth_at(w) - layout.depth_threshold_um);
                // Autofluorescence of the tissue (collagen glows in the boundary channel a little).
                let i = py * t + px;
                stains[0][i] = 90.0 + 60.0 * tissue;
                stains[1][i] = 70.0 + 110.0 * tissue;
                stains[2][i] = 60.0 + 50.0 * tissue;
                stains[3][i] = 50.0 + 140.0 * tissue * self.fibres.value(w[0] / 7.0, w[1] / 1.3);
            }
        }
        for &c in &self.cells_by_tile[tile_index] {
            self.paint_cell_fluorescence(&self.cells[c as usize], x0, y0, &mut stains);
        }
        stains.map(|values| {
            values
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let g = grain(
                        self.seed ^ 0x5eed,
                        x0 as i64 + (i % t) as i64,
                        y0 as i64 + (i / t) as i64,
                    );
                    // Shot-like noise: grows with the square root of the signal.
                    (v + (g - 0.5) * 2.0 * v.max(1.0).sqrt() * 1.5)
                        .round()
                        .clamp(0.0, 65_535.0) as u16
                })
                .collect()
        })
    }

    fn paint_cell_fluorescence(&self, cell: &Cell, x0: f64, y0: f64, stains: &mut [Vec<f32>; STAINS]) {
        let t = self.tile_px as usize;
        let outline: Star<CELL_VERTICES> = Star::new(cell.center_in_world, cell.cell_phase, &cell.cell_vertices);
        let nucleus: Star<NUCLEUS_VERTICES> =
            Star::new(cell.nucleus_center_in_world, cell.nucleus_phase, &cell.nucleus_vertices);
        let Some((bx0, bx1, by0, by1)) = self.pixel_box(x0, y0, outline.center, outline.reach + CELL_SOFT_UM) else {
            return;
        };
        let reach2 = (outline.reach + CELL_SOFT_UM).powi(2);
        let [boundary, rna, protein] = stain_levels(cell.kind);
        let brightness = cell.look.darkness.clamp(0.6, 1.6);
        let texture_shift = f64::from(cell.look.texture % 1024);
        for py in by0..=by1 {
            for px in bx0..=bx1 {
                let w = self.world(x0 + px as f64, y0 + py as f64);
                let q = [w[0] - outline.center[0], w[1] - outline.center[1]];
                if q[0] * q[0] + q[1] * q[1] > reach2 {
                    continue;
                }
                let inside = outline.inside_distance(q);
                let alpha = ((inside / CELL_SOFT_UM) + 0.5).clamp(0.0, 1.0) as f32;
                if alpha <= 0.0 {
                    continue;
                }
                let membrane = (-(inside as f32 / 0.5).powi(2)).exp();
                let qn = [w[0] - nucleus.center[0], w[1] - nucleus.center[1]];
                let inside_n = nucleus.inside_distance(qn);
                let nucleus_alpha = ((inside_n / NUCLEUS_SOFT_UM) + 0.5).clamp(0.0, 1.0) as f32;
                let chromatin = self.texture.value(w[0] / 0.6 + texture_shift, w[1] / 0.6);
                let i = py * t + px;
                stains[0][i] += nucleus_alpha * brightness * (1400.0 + 1600.0 * chromatin);
                stains[1][i] += alpha * membrane * boundary * 2600.0;
                stains[2][i] += alpha * (1.0 - 0.6 * nucleus_alpha) * rna * 1500.0 * (0.7 + 0.6 * chromatin);
                stains[3][i] += alpha * (1.0 - nucleus_alpha) * protein * 1900.0;
            }
        }
    }
}
