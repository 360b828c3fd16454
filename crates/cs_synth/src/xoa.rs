//! The Xenium Onboard Analysis version a synthetic bundle imitates (`--xoa 1|2|3|4`), and what
//! changes with it:
//! - 1 (XOA 1.0.2): integer cell ids (`-1` for a transcript in no cell), no `label_id`, cells
//!   with one nucleus and no `nucleus_count`/`segmentation_method`, binary `feature_name`;
//! - 2 (XOA 2.0): `aaaabbbb-1` ids, `UNASSIGNED`, boundaries with `label_id`, multinucleate and
//!   anucleate cells, `nucleus_count`, `segmentation_method`, `codeword_index`;
//! - 3 (XOA 3.0): also `codeword_category` and `is_gene`, `genomic_control_counts`;
//! - 4 (XOA 4.0): the 3.0 layout with a version of 4, and `cell_feature_matrix.h5` with a
//!   protein panel's rows (scaled by `protein_scaling_factor`).
//!
//! Without `--xoa` the generator writes its own long-standing layout (2.x style, one nucleus
//! per cell), which the demo and its caches use.

use cs_xenium::ring_area_um2;

use crate::cells::Cell;
use crate::rng::{Rng, domain};

/// Share of cells with two nuclei, and with none, in XOA 2.0+ layouts.
pub(crate) const MULTINUCLEATE_SHARE: f64 = 0.03;
pub(crate) const ANUCLEATE_SHARE: f64 = 0.01;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum XoaVersion {
    V1,
    V2,
    V3,
    V4,
}

impl XoaVersion {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.trim() {
            "1" => XoaVersion::V1,
            "2" => XoaVersion::V2,
            "3" => XoaVersion::V3,
            "4" => XoaVersion::V4,
            _ => return None,
        })
    }

    pub fn number(self) -> u32 {
        match self {
            XoaVersion::V1 => 1,
            XoaVersion::V2 => 2,
            XoaVersion::V3 => 3,
            XoaVersion::V4 => 4,
        }
    }

    /// `analysis_sw_version` as that release writes it.
    pub fn analysis_sw_version(self) -> &'static str {
        match self {
            XoaVersion::V1 => "xenium-1.0.2",
            XoaVersion::V2 => "xenium-2.0.0.10",
            XoaVersion::V3 => "xenium-3.0.0.15",
            XoaVersion::V4 => "xenium-4.0.1.0",
        }
    }

    /// Cell ids are integers before XOA 1.3.
    pub fn integer_ids(self) -> bool {
        self == XoaVersion::V1
    }

    /// `label_id` in boundaries, several or no nuclei per cell, `nucleus_count`.
    pub fn has_label_ids(self) -> bool {
        self >= XoaVersion::V2
    }

    /// `codeword_category` and `is_gene` in transcripts.
    pub fn has_codeword_category(self) -> bool {
        self >= XoaVersion::V3
    }
}

/// The nuclei of cell `index`: its one nucleus, or (from XOA 2.0) none for a few cells and two
/// halves of it for a few others (each half pulled towards its own centre, leaving a gap).
pub(crate) fn nuclei_of(seed: u64, index: usize, cell: &Cell, xoa: Option<XoaVersion>) -> Vec<Vec<[f32; 2]>> {
    let whole = cell.nucleus_vertices.to_vec();
    if !xoa.is_some_and(XoaVersion::has_label_ids) {
        return vec![whole];
    }
    let mut rng = Rng::new(seed, domain::NUCLEI, index as u64);
    let u = rng.range(0.0, 1.0);
    if u < ANUCLEATE_SHARE {
        return Vec::new();
    }
    if u >= ANUCLEATE_SHARE + MULTINUCLEATE_SHARE {
        return vec![whole];
    }
    let centre = [
        cell.nucleus_center_in_world[0] as f32,
        cell.nucleus_center_in_world[1] as f32,
    ];
    let angle = rng.range(0.0, std::f64::consts::PI) as f32;
    let normal = [angle.cos(), angle.sin()];
    [1.0f32, -1.0]
        .iter()
        .filter_map(|side| {
            let half = clip_half_plane(&whole, centre, [normal[0] * side, normal[1] * side]);
            (half.len() >= 3).then(|| shrink(&half, 0.8))
        })
        .collect()
}

/// The part of `polygon` on the side of the line through `point` that `normal` points to
/// (Sutherland–Hodgman against one edge).
fn clip_half_plane(polygon: &[[f32; 2]], point: [f32; 2], normal: [f32; 2]) -> Vec<[f32; 2]> {
    let side = |p: [f32; 2]| (p[0] - point[0]) * normal[0] + (p[1] - point[1]) * normal[1];
    let mut out = Vec::with_capacity(polygon.len() + 2);
    for (k, &a) in polygon.iter().enumerate() {
        let b = polygon[(k + 1) % polygon.len()];
        let (sa, sb) = (side(a), side(b));
        if sa >= 0.0 {
            out.push(a);
        }
        if (sa >= 0.0) != (sb >= 0.0) {
            let t = sa / (sa - sb);
            out.push([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]);
        }
    }
    out
}

/// `polygon` scaled by `factor` about its vertex mean.
fn shrink(polygon: &[[f32; 2]], factor: f32) -> Vec<[f32; 2]> {
    let n = polygon.len() as f32;
    let cx = polygon.iter().map(|p| p[0]).sum::<f32>() / n;
    let cy = polygon.iter().map(|p| p[1]).sum::<f32>() / n;
    polygon
        .iter()
        .map(|p| [cx + (p[0] - cx) * factor, cy + (p[1] - cy) * factor])
        .collect()
}

/// The `nucleus_area` a run records for a cell with these nuclei: the cell's own nucleus area
/// when it has its one nucleus, the halves' areas summed, None (NaN) when it has none.
pub(crate) fn nucleus_area_um2(cell: &Cell, nuclei: &[Vec<[f32; 2]>]) -> Option<f64> {
    match nuclei.len() {
        0 => None,
        1 => Some(cell.nucleus_area_um2),
        _ => Some(nuclei.iter().map(|n| ring_area_um2(n)).sum()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_square_cut_through_its_centre_gives_two_halves() {
        let square = [[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]];
        let right = clip_half_plane(&square, [1.0, 1.0], [1.0, 0.0]);
        assert!((ring_area_um2(&right) - 2.0).abs() < 1e-6);
        assert!(right.iter().all(|p| p[0] >= 1.0 - 1e-6));
        let left = clip_half_plane(&square, [1.0, 1.0], [-1.0, 0.0]);
        assert!((ring_area_um2(&left) - 2.0).abs() < 1e-6);
    }

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(XoaVersion::parse("3"), Some(XoaVersion::V3));
        assert_eq!(XoaVersion::parse("5"), None);
        assert!(XoaVersion::V2.has_label_ids() && !XoaVersion::V1.has_label_ids());
        assert!(XoaVersion::V4.has_codeword_category());
    }
}
