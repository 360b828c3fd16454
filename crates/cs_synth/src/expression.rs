//! The gene panel and per-cell counts. Each type has a marker profile; cell state (T-cell
//! subtype) and niche (tumour front, aggregate, vessel) modulate it; counts are negative binomial
//! (Poisson–gamma) around a library size that grows with cell area, and part of each cell's
//! counts spill over from its neighbours (ambient RNA and segmentation errors), so markers are
//! informative but not perfect. A [`Difficulty::Hard`] tissue mixes each profile with its
//! lineage's (immune, stromal), softens the T-subset contrasts, samples fewer and noisier counts
//! with dropout, and spills more.

use rayon::prelude::*;

use crate::Difficulty;
use crate::cells::Cell;
use crate::control::Control;
use crate::error::SynthError;
use crate::rng::{Rng, domain};
use crate::tissue::{Niche, kind};

/// Gene name and relative expression per type, in [`crate::CELL_TYPES`] order:
/// B cells, Endothelial, Epithelial, Fibroblasts, Macrophages, T cells.
pub(crate) const GENES: &[(&str, [f64; kind::COUNT])] = &[
    ("MS4A1", [10.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("CD79A", [12.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("CD19", [5.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("BANK1", [5.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("CD22", [4.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("CD3E", [0.0, 0.0, 0.0, 0.0, 0.0, 10.0]),
    ("CD3D", [0.0, 0.0, 0.0, 0.0, 0.0, 9.0]),
    ("CD2", [0.0, 0.0, 0.0, 0.0, 0.0, 7.0]),
    ("CD8A", [0.0, 0.0, 0.0, 0.0, 0.0, 9.0]),
    ("CD4", [0.0, 0.0, 0.0, 0.0, 2.5, 6.0]),
    ("IL7R", [0.0, 0.0, 0.0, 0.0, 0.0, 6.0]),
    ("TRAC", [0.0, 0.0, 0.0, 0.0, 0.0, 8.0]),
    ("CD68", [0.0, 0.0, 0.0, 0.0, 12.0, 0.0]),
    ("CD163", [0.0, 0.0, 0.0, 0.0, 8.0, 0.0]),
    ("LYZ", [0.4, 0.0, 0.0, 0.0, 10.0, 0.0]),
    ("C1QA", [0.0, 0.0, 0.0, 0.0, 9.0, 0.0]),
    ("CSF1R", [0.0, 0.0, 0.0, 0.0, 6.0, 0.0]),
    ("MRC1", [0.0, 0.5, 0.0, 0.0, 5.0, 0.0]),
    ("COL1A1", [0.0, 0.0, 0.0, 14.0, 0.0, 0.0]),
    ("COL1A2", [0.0, 0.0, 0.0, 12.0, 0.0, 0.0]),
    ("DCN", [0.0, 0.0, 0.0, 8.0, 0.0, 0.0]),
    ("LUM", [0.0, 0.0, 0.0, 8.0, 0.0, 0.0]),
    ("PDGFRA", [0.0, 0.0, 0.0, 4.0, 0.0, 0.0]),
    ("FAP", [0.0, 0.0, 0.0, 3.0, 0.0, 0.0]),
    ("POSTN", [0.0, 0.0, 0.0, 4.0, 0.0, 0.0]),
    ("PECAM1", [0.0, 10.0, 0.0, 0.0, 0.5, 0.0]),
    ("VWF", [0.0, 12.0, 0.0, 0.0, 0.0, 0.0]),
    ("CDH5", [0.0, 7.0, 0.0, 0.0, 0.0, 0.0]),
    ("CLDN5", [0.0, 6.0, 0.0, 0.0, 0.0, 0.0]),
    ("KDR", [0.0, 5.0, 0.0, 0.0, 0.0, 0.0]),
    ("EMCN", [0.0, 5.0, 0.0, 0.0, 0.0, 0.0]),
    ("EPCAM", [0.0, 0.0, 10.0, 0.0, 0.0, 0.0]),
    ("KRT8", [0.0, 0.0, 14.0, 0.0, 0.0, 0.0]),
    ("KRT18", [0.0, 0.0, 12.0, 0.0, 0.0, 0.0]),
    ("KRT19", [0.0, 0.0, 10.0, 0.0, 0.0, 0.0]),
    ("CDH1", [0.0, 0.0, 8.0, 0.0, 0.0, 0.0]),
    ("ERBB2", [0.0, 0.0, 6.0, 0.0, 0.0, 0.0]),
    ("ESR1", [0.0, 0.0, 5.0, 0.0, 0.0, 0.0]),
    ("MKI67", [0.3, 0.0, 1.2, 0.0, 0.0, 0.4]),
    ("ACTB", [4.0, 4.0, 4.0, 4.0, 4.0, 4.0]),
    ("GAPDH", [3.0, 3.0, 3.5, 3.0, 3.0, 3.0]),
    ("PTPRC", [6.0, 0.0, 0.0, 0.0, 5.0, 6.0]),
    ("VIM", [1.5, 6.0, 0.3, 8.0, 4.0, 2.0]),
    ("HLA-DRA", [6.0, 1.0, 0.2, 0.0, 8.0, 0.5]),
    ("CD74", [8.0, 1.5, 0.5, 0.3, 8.0, 1.0]),
    ("HLA-DPA1", [3.0, 0.3, 0.0, 0.0, 4.0, 0.3]),
    ("SPP1", [0.0, 0.0, 0.3, 0.0, 1.0, 0.0]),
    ("CXCL13", [0.0, 0.0, 0.0, 0.2, 0.0, 0.4]),
    ("CCL19", [0.0, 0.0, 0.0, 0.5, 0.0, 0.0]),
    ("CCR7", [2.0, 0.0, 0.0, 0.0, 0.0, 1.0]),
    ("GZMB", [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]),
    ("PRF1", [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]),
    ("FOXP3", [0.0, 0.0, 0.0, 0.0, 0.0, 6.0]),
    ("ACTA2", [0.0, 1.0, 0.0, 3.0, 0.0, 0.0]),
    ("MYH11", [0.0, 0.8, 0.0, 0.5, 0.0, 0.0]),
    ("TAGLN", [0.0, 0.5, 0.0, 3.0, 0.0, 0.0]),
    ("SERPINE1", [0.0, 2.0, 0.0, 1.0, 0.3, 0.0]),
    ("MMP2", [0.0, 0.0, 0.0, 3.0, 0.0, 0.0]),
    ("TOP2A", [0.2, 0.0, 1.0, 0.0, 0.0, 0.3]),
    ("CCND1", [0.0, 0.0, 3.0, 0.3, 0.0, 0.0]),
    ("GATA3", [0.0, 0.0, 3.0, 0.0, 0.0, 1.5]),
    ("FOXA1", [0.0, 0.0, 3.0, 0.0, 0.0, 0.0]),
    ("LGALS3", [0.0, 0.5, 2.0, 0.5, 3.0, 0.0]),
];

/// Control features after the genes: (name, 10x feature type, mean count per cell).
pub(crate) const CONTROLS: &[(&str, &str, f64)] = &[
    ("NegControlProbe_00042", "Negative Control Probe", 0.02),
    ("NegControlProbe_00041", "Negative Control Probe", 0.015),
    ("NegControlProbe_00039", "Negative Control Probe", 0.015),
    ("NegControlProbe_00035", "Negative Control Probe", 0.01),
    ("NegControlProbe_00034", "Negative Control Probe", 0.01),
    ("NegControlCodeword_0500", "Negative Control Codeword", 0.008),
    ("NegControlCodeword_0501", "Negative Control Codeword", 0.008),
];

pub(crate) const GENE_EXPRESSION: &str = "Gene Expression";
const BASELINE: f64 = 0.25;
/// Negative binomial shape (smaller: noisier).
const DISPERSION_SHAPE: f64 = 2.0;

/// The hard tissue's counts (see [`Counting`]).
mod hard {
    /// Share of each profile that is its lineage's mean profile.
    pub const LINEAGE_SHARE: f64 = 0.2;
    /// State and niche modifiers are raised to this power (0.03 -> 0.086, 2.5 -> 1.9).
    pub const CONTRAST: f64 = 0.7;
    pub const LIBRARY_FACTOR: f64 = 1.0;
    pub const DISPERSION_SHAPE: f64 = 1.2;
    /// Chance that a gene detected in a cell is lost (probe dropout).
    pub const DROPOUT: f64 = 0.1;
    /// Chance of swallowing a share of the nearest neighbour: small cells, others.
    pub const SWALLOW: [f64; 2] = [0.35, 0.2];
}

/// How counts are drawn at a difficulty.
#[derive(Debug, Clone, Copy)]
struct Counting {
    lineage_share: f64,
    contrast: f64,
    library_factor: f64,
    dispersion_shape: f64,
    dropout: f64,
    swallow: [f64; 2],
}

impl Counting {
    fn of(difficulty: Difficulty) -> Self {
        match difficulty {
            Difficulty::Standard => Self {
                lineage_share: 0.0,
                contrast: 1.0,
                library_factor: 1.0,
                dispersion_shape: DISPERSION_SHAPE,
                dropout: 0.0,
                swallow: [0.22, 0.1],
            },
            Difficulty::Hard => Self {
                lineage_share: hard::LINEAGE_SHARE,
                contrast: hard::CONTRAST,
                library_factor: hard::LIBRARY_FACTOR,
                dispersion_shape: hard::DISPERSION_SHAPE,
                dropout: hard::DROPOUT,
                swallow: hard::SWALLOW,
            },
        }
    }
}

/// The lineage whose profile a type shares in a hard tissue: immune (B, T, macrophages),
/// stromal (endothelial, fibroblasts), epithelial.
fn lineage(kind: u8) -> u8 {
    match kind {
        kind::B | kind::T | kind::MAC => 0,
        kind::ENDO | kind::FIB => 1,
        _ => 2,
    }
}

/// Per type, the mean of its lineage's base profiles.
fn lineage_profiles(profiles: &[Vec<f64>]) -> Vec<Vec<f64>> {
    (0..kind::COUNT as u8)
        .map(|k| {
            let members: Vec<&Vec<f64>> = (0..kind::COUNT as u8)
                .filter(|&o| lineage(o) == lineage(k))
                .map(|o| &profiles[o as usize])
                .collect();
            let mut mean = vec![0.0; GENES.len()];
            for m in &members {
                for (s, v) in mean.iter_mut().zip(m.iter()) {
                    *s += v / members.len() as f64;
                }
            }
            mean
        })
        .collect()
}

fn mixed(own: &[f64], shared: &[f64], share: f64) -> Vec<f64> {
    own.iter()
        .zip(shared)
        .map(|(o, s)| (1.0 - share) * o + share * s)
        .collect()
}

/// Feature names, genes first then controls.
pub(crate) fn feature_names() -> impl Iterator<Item = &'static str> {
    GENES.iter().map(|g| g.0).chain(CONTROLS.iter().map(|c| c.0))
}

pub(crate) fn feature_type(feature: usize) -> &'static str {
    if feature < GENES.len() {
        GENE_EXPRESSION
    } else {
        CONTROLS[feature - GENES.len()].1
    }
}

/// Counts of every cell, compressed sparse rows (features ascending within a cell).
pub(crate) struct Counts {
    pub row_offsets: Vec<u64>,
    pub feature: Vec<u16>,
    pub count: Vec<u32>,
    /// Per cell: gene counts, control probe counts, control codeword counts.
    pub gene_total: Vec<u32>,
    pub control_probe_total: Vec<u32>,
    pub control_codeword_total: Vec<u32>,
}

impl Counts {
    pub fn cell(&self, cell: usize) -> (&[u16], &[u32]) {
        let a = self.row_offsets[cell] as usize;
        let b = self.row_offsets[cell + 1] as usize;
        (&self.feature[a..b], &self.count[a..b])
    }

    /// The counts of these cells only, in this order (the cells a partial Xenium region kept).
    pub fn subset(&self, cells: &[usize]) -> Counts {
        let mut out = Counts {
            row_offsets: Vec::with_capacity(cells.len() + 1),
            feature: Vec::new(),
            count: Vec::new(),
            gene_total: Vec::with_capacity(cells.len()),
            control_probe_total: Vec::with_capacity(cells.len()),
            control_codeword_total: Vec::with_capacity(cells.len()),
        };
        out.row_offsets.push(0);
        for &cell in cells {
            let (feature, count) = self.cell(cell);
            out.feature.extend_from_slice(feature);
            out.count.extend_from_slice(count);
            out.row_offsets.push(out.feature.len() as u64);
            out.gene_total.push(self.gene_total[cell]);
            out.control_probe_total.push(self.control_probe_total[cell]);
            out.control_codeword_total.push(self.control_codeword_total[cell]);
        }
        out
    }
}

fn gene(name: &str) -> usize {
    GENES.iter().position(|g| g.0 == name).unwrap_or(usize::MAX)
}

/// Gene-weight modifiers by cell state and niche: (gene, factor).
fn modifiers(kind: u8, state: u8, niche: Niche) -> Vec<(usize, f64)> {
    let mut m: Vec<(&str, f64)> = Vec::new();
    match kind {
        kind::T => {
            match state {
                0 => m.extend([("CD8A", 0.03), ("FOXP3", 0.03), ("GZMB", 0.4), ("PRF1", 0.4)]),
                1 => m.extend([("CD4", 0.03), ("FOXP3", 0.03), ("GZMB", 2.5), ("PRF1", 2.0)]),
                _ => m.extend([("CD8A", 0.03), ("IL7R", 0.3), ("GZMB", 0.2)]),
            }
            if niche.is_follicle() || niche == Niche::FollicleHalo {
                m.extend([("CCR7", 4.0), ("IL7R", 1.5), ("CXCL13", 4.0), ("GZMB", 0.3)]);
            } else if niche.near_tumour() {
                m.extend([("GZMB", 2.0), ("PRF1", 2.0), ("CCR7", 0.3)]);
            }
        }
        kind::MAC if niche.near_tumour() => {
            m.extend([("SPP1", 8.0), ("CD163", 1.8), ("MRC1", 1.6), ("LGALS3", 1.5)]);
        }
        kind::FIB => {
            if niche.near_tumour() {
                m.extend([("FAP", 3.0), ("POSTN", 3.0), ("ACTA2", 2.0), ("MMP2", 1.5)]);
            } else if niche == Niche::Perivascular {
                m.extend([("ACTA2", 3.0), ("MYH11", 3.0)]);
            } else {
                m.extend([("DCN", 1.5), ("LUM", 1.5), ("FAP", 0.5)]);
            }
        }
        kind::EPI => {
            if niche == Niche::TumourCore {
                m.extend([("MKI67", 3.0), ("TOP2A", 3.0)]);
            } else {
                m.extend([("CDH1", 0.7), ("VIM", 3.0)]);
            }
        }
        kind::B if niche.is_follicle() => m.push(("CCR7", 1.5)),
        _ => {}
    }
    m.into_iter()
        .map(|(g, f)| (gene(g), f))
        .filter(|(g, _)| *g != usize::MAX)
        .collect()
}

fn normalised(mut w: Vec<f64>) -> Vec<f64> {
    let total: f64 = w.iter().sum();
    if total > 0.0 {
        for v in &mut w {
            *v /= total;
        }
    }
    w
}

fn base_profile(kind: u8) -> Vec<f64> {
    normalised(GENES.iter().map(|g| g.1[kind as usize] + BASELINE).collect())
}

fn library_factor(kind: u8) -> f64 {
    match kind {
        kind::EPI => 1.2,
        kind::MAC => 1.1,
        kind::FIB => 1.0,
        kind::ENDO => 0.9,
        _ => 0.85,
    }
}

/// Samples the counts of every cell.
pub(crate) fn sample_counts(
    seed: u64,
    cells: &[Cell],
    difficulty: Difficulty,
    control: &Control,
) -> Result<Counts, SynthError> {
    let counting = Counting::of(difficulty);
    let base: Vec<Vec<f64>> = (0..kind::COUNT as u8).map(base_profile).collect();
    let lineages = lineage_profiles(&base);
    let profiles: Vec<Vec<f64>> = base
        .iter()
        .zip(&lineages)
        .map(|(own, shared)| mixed(own, shared, counting.lineage_share))
        .collect();
    let sampler = Sampler {
        seed,
        cells,
        profiles: &profiles,
        lineages: &lineages,
        counting,
    };
    let ambient = {
        let mut sum = vec![0.0; GENES.len()];
        for c in cells {
            for (s, p) in sum.iter_mut().zip(&profiles[c.kind as usize]) {
                *s += p;
            }
        }
        normalised(sum)
    };
    let n = cells.len();
    let mut counts = Counts {
        row_offsets: Vec::with_capacity(n + 1),
        feature: Vec::new(),
        count: Vec::new(),
        gene_total: Vec::with_capacity(n),
        control_probe_total: Vec::with_capacity(n),
        control_codeword_total: Vec::with_capacity(n),
    };
    counts.row_offsets.push(0);
    let chunk = 16_384;
    for start in (0..n).step_by(chunk) {
        let end = (start + chunk).min(n);
        let sampled: Vec<Vec<(u16, u32)>> = (start..end)
            .into_par_iter()
            .map(|i| sampler.cell(i, &ambient))
            .collect();
        for row in sampled {
            let (mut genes, mut probes, mut codewords) = (0, 0, 0);
            for (f, c) in &row {
                match feature_type(*f as usize) {
                    GENE_EXPRESSION => genes += c,
                    "Negative Control Probe" => probes += c,
                    _ => codewords += c,
                }
                counts.feature.push(*f);
                counts.count.push(*c);
            }
            counts.gene_total.push(genes);
            counts.control_probe_total.push(probes);
            counts.control_codeword_total.push(codewords);
            counts.row_offsets.push(counts.feature.len() as u64);
        }
        control.check()?;
        control.report(end as f32 / n.max(1) as f32);
    }
    Ok(counts)
}

/// T-cell subtype of cell `i` (the first draw of its counts stream): 0 CD4 helper, 1 CD8
/// cytotoxic, 2 regulatory; 0 for other types.
pub(crate) fn cell_state(seed: u64, i: usize, kind: u8) -> u8 {
    if kind == kind::T {
        t_state(&mut Rng::new(seed, domain::COUNTS, i as u64))
    } else {
        0
    }
}

fn t_state(rng: &mut Rng) -> u8 {
    let r = rng.f64();
    if r < 0.45 {
        0
    } else if r < 0.85 {
        1
    } else {
        2
    }
}

/// What every cell's counts are drawn from.
struct Sampler<'a> {
    seed: u64,
    cells: &'a [Cell],
    /// Per type: the profile neighbours spill (mixed with the lineage's in a hard tissue).
    profiles: &'a [Vec<f64>],
    lineages: &'a [Vec<f64>],
    counting: Counting,
}

impl Sampler<'_> {
    fn cell(&self, i: usize, ambient: &[f64]) -> Vec<(u16, u32)> {
        let Sampler {
            seed,
            cells,
            profiles,
            lineages,
            counting,
        } = *self;
        let cell = &cells[i];
        let mut rng = Rng::new(seed, domain::COUNTS, i as u64);
        let state = if cell.kind == kind::T { t_state(&mut rng) } else { 0 };
        let mut own: Vec<f64> = GENES.iter().map(|g| g.1[cell.kind as usize] + BASELINE).collect();
        for (g, factor) in modifiers(cell.kind, state, cell.niche) {
            own[g] *= factor.powf(counting.contrast);
        }
        let own = mixed(&normalised(own), &lineages[cell.kind as usize], counting.lineage_share);

        let mut neighbourhood = vec![0.0; GENES.len()];
        let mut k = 0.0;
        for &j in cell.neighbours.iter().filter(|&&j| j != u32::MAX) {
            for (s, p) in neighbourhood.iter_mut().zip(&profiles[cells[j as usize].kind as usize]) {
                *s += p;
            }
            k += 1.0;
        }
        if k == 0.0 {
            neighbourhood.copy_from_slice(ambient);
        } else {
            for v in &mut neighbourhood {
                *v /= k;
            }
        }
        // Segmentation errors: some cells take a large share of one neighbour's transcripts (small
        // cells more often), every cell a little of its neighbourhood's and of the tissue's.
        let small = matches!(cell.kind, kind::B | kind::T | kind::ENDO);
        let u = rng.f64();
        let mut near_share = 0.05 + 0.2 * u * u;
        let mut nearest_share = 0.0;
        let nearest = cell.neighbours[0];
        if nearest != u32::MAX && rng.chance(counting.swallow[usize::from(!small)]) {
            nearest_share = rng.range(0.3, 0.8);
        }
        let ambient_share = 0.04;
        let own_share = 1.0 - near_share - nearest_share - ambient_share;
        if own_share < 0.1 {
            near_share -= 0.1 - own_share;
        }
        let own_share = 1.0 - near_share - nearest_share - ambient_share;
        let nearest_profile = profiles[cells[nearest.min(cells.len() as u32 - 1) as usize].kind as usize].as_slice();
        let quality = if rng.chance(0.08) { rng.range(0.15, 0.4) } else { 1.0 };
        let library = 190.0
            * counting.library_factor
            * quality
            * library_factor(cell.kind)
            * (cell.cell_area_um2 / 110.0).max(0.05).sqrt()
            * (0.35 * rng.normal()).exp();

        let mut row = Vec::with_capacity(48);
        for g in 0..GENES.len() {
            let p = own_share * own[g]
                + near_share * neighbourhood[g]
                + nearest_share * nearest_profile[g]
                + ambient_share * ambient[g];
            let mean = library * p;
            let lambda = if mean < 0.03 {
                mean
            } else {
                mean * rng.gamma(counting.dispersion_shape) / counting.dispersion_shape
            };
            let c = rng.poisson(lambda);
            if c > 0 && (counting.dropout == 0.0 || !rng.chance(counting.dropout)) {
                row.push((g as u16, c));
            }
        }
        for (k, control) in CONTROLS.iter().enumerate() {
            let c = rng.poisson(control.2);
            if c > 0 {
                row.push(((GENES.len() + k) as u16, c));
            }
        }
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panel_is_consistent() {
        let names: Vec<&str> = feature_names().collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        assert!((55..=70).contains(&GENES.len()));
        for (g, _) in modifiers(kind::T, 1, Niche::TumourFront) {
            assert!(g < GENES.len());
        }
        // Every type has markers of its own.
        for t in 0..kind::COUNT {
            assert!(
                GENES
                    .iter()
                    .filter(|g| g.1[t] >= 4.0 && g.1.iter().filter(|v| **v > 0.0).count() == 1)
                    .count()
                    >= 3,
                "type {t}"
            );
        }
    }
}
