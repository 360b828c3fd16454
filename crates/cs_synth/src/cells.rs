//! Cell and nucleus shapes. Each cell is a star-shaped polygon around its placement point: a
//! noisy ellipse sized and shaped by type, clipped by the power-diagram planes of its neighbours
//! (with a small gap), so cells never overlap and fill dense niches like a segmentation does. The
//! nucleus is a smaller noisy ellipse (bean-shaped for macrophages), slightly off centre, shrunk
//! until it lies inside the cell.

use rayon::prelude::*;

use crate::Difficulty;
use crate::control::Control;
use crate::error::SynthError;
use crate::rng::{Rng, domain};
use crate::tissue::{Buckets, Niche, Placed, kind};

pub(crate) const CELL_VERTICES: usize = 14;
pub(crate) const NUCLEUS_VERTICES: usize = 12;
/// How far apart two cell outlines stay at least, µm.
const GAP_UM: f64 = 0.3;
/// Cells farther apart than this never touch (twice the largest cell radius).
const REACH_UM: f64 = 28.0;
/// Neighbours kept per cell for expression spill-over.
pub(crate) const NEIGHBOURS: usize = 6;

/// Painting details that do not show in the bundle.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Look {
    /// Nucleolus offset from the nucleus centre (µm) and radius (0: none).
    pub nucleolus_offset: [f32; 2],
    pub nucleolus_radius_um: f32,
    /// Chromatin darkness factor (hyperchromatic tumour nuclei > 1).
    pub darkness: f32,
    /// Seed of the cell's own texture.
    pub texture: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Cell {
    /// The star centre of the cell polygon (the placement point).
    pub center_in_world: [f64; 2],
    /// Area centroid of the cell polygon (`x_centroid`, `y_centroid`).
    pub centroid_in_world: [f64; 2],
    pub kind: u8,
    pub niche: Niche,
    /// Angle of the first vertex; vertex k lies at `phase + k · 2π / n` around the centre.
    pub cell_phase: f32,
    pub cell_vertices: [[f32; 2]; CELL_VERTICES],
    pub nucleus_center_in_world: [f64; 2],
    pub nucleus_phase: f32,
    pub nucleus_vertices: [[f32; 2]; NUCLEUS_VERTICES],
    pub cell_area_um2: f64,
    pub nucleus_area_um2: f64,
    pub look: Look,
    /// Nearest neighbours (cell indices), `u32::MAX` when fewer.
    pub neighbours: [u32; NEIGHBOURS],
}

#[derive(Debug, Clone, Copy)]
struct Params {
    a: f64,
    b: f64,
    angle: f64,
    harmonics: [(f64, f64); 3],
    phase: f64,
    nuc_a: f64,
    nuc_b: f64,
    nuc_angle: f64,
    nuc_offset: [f64; 2],
    nuc_harmonics: [(f64, f64); 4],
    nuc_phase: f64,
    dent: f64,
    look: Look,
}

impl Params {
    /// Radius of the power diagram weight.
    fn power_radius(&self) -> f64 {
        (self.a * self.b).sqrt()
    }
}

fn ellipse_radius(a: f64, b: f64, angle: f64, theta: f64) -> f64 {
    let (s, c) = (theta - angle).sin_cos();
    a * b / ((b * c).powi(2) + (a * s).powi(2)).sqrt()
}

/// Shape overlap in a hard tissue.
mod hard {
    /// Chance that a fibroblast, macrophage or endothelial cell looks like another type.
    pub const MIMIC: f64 = 0.3;
    /// Log-normal spread of cell and nucleus size.
    pub const SIZE_SD: f64 = 0.15;
}

fn params_for(placed: &Placed, difficulty: Difficulty, rng: &mut Rng) -> Params {
    use std::f64::consts::{PI, TAU};
    let orient = f64::from(placed.orient);
    let mut harmonics = [(0.0, 0.0); 3];
    let mut nuc_harmonics = [(0.0, 0.0); 4];
    let fill = |h: &mut [(f64, f64)], amp: f64, rng: &mut Rng| {
        for slot in h.iter_mut() {
            *slot = (amp * rng.range(0.3, 1.0), rng.range(0.0, TAU));
        }
    };
    let mut look = Look {
        nucleolus_offset: [0.0, 0.0],
        nucleolus_radius_um: 0.0,
        darkness: 1.0,
        texture: rng.next_u64() as u32,
    };
    let (mut a, mut b, mut nuc_a, mut nuc_b, offset, mut dent, cell_noise, nuc_noise, nuc_angle);
    match placed.kind {
        kind::B | kind::T => {
            let big = if placed.kind == kind::B { 1.05 } else { 1.0 };
            a = rng.range(3.3, 4.0) * big;
            b = a * rng.range(0.86, 1.0);
            nuc_a = rng.range(2.55, 2.95) * big;
            nuc_b = nuc_a * rng.range(0.84, 1.0);
            offset = rng.range(0.0, 0.35);
            dent = 0.0;
            cell_noise = 0.05;
            nuc_noise = if placed.kind == kind::T { 0.06 } else { 0.035 };
            nuc_angle = rng.range(0.0, PI);
            look.darkness = rng.range(0.95, 1.08) as f32;
        }
        kind::EPI => {
            let pleo = rng.range(0.82, 1.22);
            // Nucleus plus about 5 µm of expansion, like Xenium's segmentation; neighbours clip it.
            a = rng.range(8.5, 10.5) * pleo;
            b = a * rng.range(0.82, 1.0);
            nuc_a = rng.range(4.4, 5.6) * pleo.powf(1.4);
            nuc_b = nuc_a * rng.range(0.68, 0.94);
            offset = rng.range(0.0, 1.1);
            dent = 0.0;
            cell_noise = 0.07;
            nuc_noise = rng.range(0.06, 0.14);
            nuc_angle = rng.range(0.0, PI);
            let (s, c) = rng.range(0.0, TAU).sin_cos();
            let r = rng.range(0.0, 0.35) * nuc_b;
            look.nucleolus_offset = [(c * r) as f32, (s * r) as f32];
            look.nucleolus_radius_um = rng.range(0.45, 0.85) as f32;
            look.darkness = if rng.chance(0.22) {
                rng.range(1.25, 1.5) as f32
            } else {
                rng.range(0.92, 1.08) as f32
            };
        }
        kind::FIB => {
            a = rng.range(8.5, 11.5);
            b = rng.range(2.2, 3.3);
            nuc_a = rng.range(4.6, 6.2);
            nuc_b = nuc_a / rng.range(3.5, 4.6);
            offset = rng.range(0.0, 0.6);
            dent = 0.0;
            cell_noise = 0.05;
            nuc_noise = 0.04;
            nuc_angle = orient + rng.normal() * 0.06;
            look.darkness = rng.range(0.95, 1.1) as f32;
        }
        kind::MAC => {
            a = rng.range(7.0, 8.6);
            b = a * rng.range(0.8, 1.0);
            nuc_a = rng.range(3.3, 4.0);
            nuc_b = nuc_a * rng.range(0.62, 0.78);
            offset = rng.range(1.1, 1.9);
            dent = rng.range(0.25, 0.4);
            cell_noise = 0.09;
            nuc_noise = 0.05;
            nuc_angle = rng.range(0.0, PI);
            look.darkness = rng.range(0.95, 1.05) as f32;
        }
        _ => {
            // Endothelial: flat, along the vessel.
            a = rng.range(6.5, 8.0);
            b = rng.range(1.6, 2.2);
            nuc_a = rng.range(3.4, 4.4);
            nuc_b = rng.range(0.9, 1.2);
            offset = rng.range(0.0, 0.4);
            dent = 0.0;
            cell_noise = 0.04;
            nuc_noise = 0.03;
            nuc_angle = orient + rng.normal() * 0.05;
            look.darkness = rng.range(0.95, 1.1) as f32;
        }
    }
    if difficulty == Difficulty::Hard {
        match placed.kind {
            kind::FIB if rng.chance(hard::MIMIC) => {
                // Activated fibroblast: a plump cell with an ovoid nucleus.
                b = a * rng.range(0.45, 0.7);
                nuc_b = nuc_a * rng.range(0.45, 0.7);
            }
            kind::MAC if rng.chance(hard::MIMIC) => {
                // Monocyte-like: not much bigger than a lymphocyte.
                let scale = rng.range(0.55, 0.7);
                (a, b) = (a * scale, b * scale);
                (nuc_a, nuc_b) = (nuc_a * scale * 1.1, nuc_b * scale * 1.1);
                dent *= 0.5;
            }
            kind::ENDO if rng.chance(hard::MIMIC) => {
                // Plump (high) endothelium.
                b = rng.range(2.8, 3.8);
                nuc_b = rng.range(1.6, 2.2);
            }
            _ => {}
        }
        let cell_scale = (hard::SIZE_SD * rng.normal()).exp();
        let nucleus_scale = (hard::SIZE_SD * rng.normal()).exp();
        (a, b) = (a * cell_scale, b * cell_scale);
        (nuc_a, nuc_b) = (nuc_a * nucleus_scale, nuc_b * nucleus_scale);
    }
    fill(&mut harmonics, cell_noise, rng);
    fill(&mut nuc_harmonics, nuc_noise, rng);
    let angle = match placed.kind {
        kind::FIB | kind::ENDO => orient,
        _ => rng.range(0.0, PI),
    };
    let (s, c) = rng.range(0.0, TAU).sin_cos();
    Params {
        a,
        b,
        angle,
        harmonics,
        phase: rng.range(0.0, TAU),
        nuc_a,
        nuc_b,
        nuc_angle,
        nuc_offset: [c * offset, s * offset],
        nuc_harmonics,
        nuc_phase: rng.range(0.0, TAU),
        dent,
        look,
    }
}

fn harmonic_factor(harmonics: &[(f64, f64)], theta: f64) -> f64 {
    1.0 + harmonics
        .iter()
        .enumerate()
        .map(|(i, (amp, phase))| amp * ((i as f64 + 2.0) * theta + phase).sin())
        .sum::<f64>()
}

/// Where the ray from the polygon's star centre at `theta` leaves it (vertices relative to the
/// centre, vertex k at angle `phase + k · 2π / n`).
pub(crate) fn radial_extent(relative: &[[f64; 2]], phase: f64, theta: f64) -> f64 {
    let n = relative.len();
    let step = std::f64::consts::TAU / n as f64;
    let k = (((theta - phase).rem_euclid(std::f64::consts::TAU)) / step) as usize % n;
    let a = relative[k];
    let b = relative[(k + 1) % n];
    let (s, c) = theta.sin_cos();
    let cross_ab = a[0] * b[1] - a[1] * b[0];
    let denom = c * (b[1] - a[1]) - s * (b[0] - a[0]);
    if denom.abs() < 1e-12 {
        return (a[0] * a[0] + a[1] * a[1]).sqrt();
    }
    cross_ab / denom
}

/// Builds shapes for all placed cells (in order). Progress covers the stage.
pub(crate) fn build_cells(
    seed: u64,
    placed: &[Placed],
    origin_um: [f64; 2],
    size_um: [f64; 2],
    difficulty: Difficulty,
    control: &Control,
) -> Result<Vec<Cell>, SynthError> {
    let params: Vec<Params> = placed
        .par_iter()
        .enumerate()
        .map(|(i, p)| params_for(p, difficulty, &mut Rng::new(seed, domain::SHAPE, i as u64)))
        .collect();
    control.check()?;
    let mut index = Buckets::new(origin_um, size_um, 32.0);
    for (i, p) in placed.iter().enumerate() {
        index.insert(i as u32, p.pos_in_world, p.pos_in_world);
    }
    let mut cells = Vec::with_capacity(placed.len());
    let chunk = 32_768;
    for start in (0..placed.len()).step_by(chunk) {
        let end = (start + chunk).min(placed.len());
        let built: Vec<Cell> = (start..end)
            .into_par_iter()
            .map(|i| shape_cell(i, placed, &params, &index))
            .collect();
        cells.extend(built);
        control.check()?;
        control.report(end as f32 / placed.len().max(1) as f32);
    }
    Ok(cells)
}

fn shape_cell(i: usize, placed: &[Placed], params: &[Params], index: &Buckets) -> Cell {
    use std::f64::consts::TAU;
    let me = &placed[i];
    let p = &params[i];
    let c = me.pos_in_world;
    let mut candidates = Vec::with_capacity(64);
    index.in_box(
        [c[0] - REACH_UM, c[1] - REACH_UM],
        [c[0] + REACH_UM, c[1] + REACH_UM],
        &mut candidates,
    );
    // (distance, unit normal towards the neighbour, plane offset from my centre, index)
    let mut planes: Vec<(f64, [f64; 2], f64, u32)> = Vec::with_capacity(candidates.len());
    for &j in &candidates {
        if j as usize == i {
            continue;
        }
        let q = placed[j as usize].pos_in_world;
        let d = [q[0] - c[0], q[1] - c[1]];
        let dist = (d[0] * d[0] + d[1] * d[1]).sqrt();
        if !(1e-9..REACH_UM).contains(&dist) {
            continue;
        }
        let wi = p.power_radius();
        let wj = params[j as usize].power_radius();
        let frac = ((dist * dist + wi * wi - wj * wj) / (2.0 * dist * dist)).clamp(0.3, 0.7);
        planes.push((dist, [d[0] / dist, d[1] / dist], frac * dist - GAP_UM * 0.5, j));
    }
    planes.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.3.cmp(&b.3)));
    let mut neighbours = [u32::MAX; NEIGHBOURS];
    for (slot, plane) in neighbours.iter_mut().zip(&planes) {
        *slot = plane.3;
    }

    let step = TAU / CELL_VERTICES as f64;
    let mut relative = [[0.0f64; 2]; CELL_VERTICES];
    for (k, v) in relative.iter_mut().enumerate() {
        let theta = p.phase + k as f64 * step;
        let (s, co) = theta.sin_cos();
        let mut r = ellipse_radius(p.a, p.b, p.angle, theta) * harmonic_factor(&p.harmonics, theta - p.angle);
        for (_, n, h, _) in &planes {
            let cos = co * n[0] + s * n[1];
            if cos > 1e-9 {
                r = r.min(h / cos);
            }
        }
        // Never beyond half the neighbour search reach, so that unseen cells cannot overlap.
        r = r.clamp(0.6, REACH_UM * 0.5 - 0.5);
        *v = [co * r, s * r];
    }
    let cell_vertices = relative.map(|v| [(c[0] + v[0]) as f32, (c[1] + v[1]) as f32]);
    // Use the rounded vertices from here on, so that fitting and painting see the file's polygon.
    let relative = cell_vertices.map(|v| [f64::from(v[0]) - c[0], f64::from(v[1]) - c[1]]);

    // Nucleus: shrink until every vertex is well inside the cell.
    let nstep = TAU / NUCLEUS_VERTICES as f64;
    let mut scale = 1.0;
    let mut nucleus = [[0.0f64; 2]; NUCLEUS_VERTICES];
    let mut offset = p.nuc_offset;
    for _ in 0..16 {
        let mut worst: f64 = 1.0;
        for (k, v) in nucleus.iter_mut().enumerate() {
            let theta = p.nuc_phase + k as f64 * nstep;
            let (s, co) = theta.sin_cos();
            let mut r = ellipse_radius(p.nuc_a, p.nuc_b, p.nuc_angle, theta)
                * harmonic_factor(&p.nuc_harmonics, theta - p.nuc_angle)
                * scale;
            if p.dent > 0.0 {
                let dent_dir = p.nuc_angle + std::f64::consts::FRAC_PI_2;
                let delta = (theta - dent_dir + std::f64::consts::PI).rem_euclid(TAU) - std::f64::consts::PI;
                r *= 1.0 - p.dent * (-(delta * delta) / (2.0 * 0.5 * 0.5)).exp();
            }
            *v = [offset[0] + co * r, offset[1] + s * r];
            let dist = (v[0] * v[0] + v[1] * v[1]).sqrt();
            if dist > 1e-9 {
                let limit = 0.9 * radial_extent(&relative, p.phase, v[1].atan2(v[0])) - 0.25;
                worst = worst.min(limit.max(0.0) / dist);
            }
        }
        if worst >= 1.0 {
            break;
        }
        let shrink = worst.max(0.5) * 0.99;
        scale *= shrink;
        offset = [offset[0] * shrink, offset[1] * shrink];
    }
    let nucleus_vertices = nucleus.map(|v| [(c[0] + v[0]) as f32, (c[1] + v[1]) as f32]);
    let (cell_area, centroid) = crate::geometry::area_and_centroid(&cell_vertices);
    let (nucleus_area, _) = crate::geometry::area_and_centroid(&nucleus_vertices);
    let mut look = p.look;
    look.nucleolus_offset = [
        (f64::from(look.nucleolus_offset[0]) * scale) as f32,
        (f64::from(look.nucleolus_offset[1]) * scale) as f32,
    ];
    look.nucleolus_radius_um = (f64::from(look.nucleolus_radius_um) * scale.sqrt()) as f32;
    Cell {
        center_in_world: c,
        centroid_in_world: centroid,
        kind: me.kind,
        niche: me.niche,
        cell_phase: p.phase as f32,
        cell_vertices,
        nucleus_center_in_world: [c[0] + offset[0], c[1] + offset[1]],
        nucleus_phase: p.nuc_phase as f32,
        nucleus_vertices,
        cell_area_um2: cell_area.abs(),
        nucleus_area_um2: nucleus_area.abs(),
        look,
        neighbours,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radial_extent_of_a_square_diamond() {
        // Vertices at 0°, 90°, 180°, 270° with radius 1: the edge at 45° is at 1/√2.
        let rel = [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]];
        let r = radial_extent(&rel, 0.0, std::f64::consts::FRAC_PI_4);
        assert!((r - 0.5f64.sqrt()).abs() < 1e-9);
        assert!((radial_extent(&rel, 0.0, 0.0) - 1.0).abs() < 1e-9);
    }
}
