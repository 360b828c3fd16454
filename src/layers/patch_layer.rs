//! The virtual-expression layer: one gene's values on the patch grid over the slide, predicted
//! from the H&E (every tissue patch) or measured (patches with Xenium cells), each as an egui
//! texture (one texel a patch, nearest sampling) drawn over the slide and below the cells. Both
//! share one colour range, so the two can be compared side by side.

use std::sync::Arc;

use egui::{Color32, ColorImage, TextureHandle, TextureOptions};
use glam::DVec2;
use serde::{Deserialize, Serialize};

use crate::layers::palettes::ColourMap;

/// Genes' values on a grid of square patches: predicted and measured, patch after patch (row
/// after row), genes within a patch; NaN where there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchGridValues {
    pub genes: Vec<String>,
    pub patch_um: f32,
    pub origin_um: [f32; 2],
    pub columns: usize,
    pub rows: usize,
    pub predicted: Vec<f32>,
    pub measured: Vec<f32>,
}

/// Which values a heatmap shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchValues {
    Virtual,
    Measured,
}

pub struct PatchLayer {
    pub result: Arc<PatchGridValues>,
    /// Index into `result.genes`.
    pub gene: usize,
    /// The single view shows the virtual heatmap.
    pub visible: bool,
    pub opacity: f32,
    /// (gene, opacity) the textures were made for, and the textures (virtual, measured).
    textures: Option<((usize, u32), TextureHandle, TextureHandle)>,
}

impl PatchLayer {
    pub fn new(result: Arc<PatchGridValues>) -> Self {
        Self {
            result,
            gene: 0,
            visible: true,
            opacity: 0.75,
            textures: None,
        }
    }

    pub fn gene_name(&self) -> &str {
        self.result.genes.get(self.gene).map_or("", String::as_str)
    }

    /// The grid's world box (µm).
    pub fn world_box(&self) -> (DVec2, DVec2) {
        let r = &self.result;
        let min = DVec2::new(f64::from(r.origin_um[0]), f64::from(r.origin_um[1]));
        let size = DVec2::new(r.columns as f64, r.rows as f64) * f64::from(r.patch_um);
        (min, min + size)
    }

    /// `which` values of the chosen gene, patch after patch.
    pub fn values(&self, which: PatchValues) -> Vec<f32> {
        let r = &self.result;
        let k = r.genes.len().max(1);
        let all = match which {
            PatchValues::Virtual => &r.predicted,
            PatchValues::Measured => &r.measured,
        };
        all.iter().skip(self.gene).step_by(k).copied().collect()
    }

    /// The colour range both heatmaps share: the 2nd to 98th percentile of every finite value.
    pub fn range(&self) -> (f32, f32) {
        let mut finite: Vec<f32> = self
            .values(PatchValues::Virtual)
            .into_iter()
            .chain(self.values(PatchValues::Measured))
            .filter(|v| v.is_finite())
            .collect();
        if finite.is_empty() {
            return (0.0, 1.0);
        }
        finite.sort_by(f32::total_cmp);
        let at = |q: f64| finite[((finite.len() - 1) as f64 * q).round() as usize];
        let (lo, hi) = (at(0.02), at(0.98));
        if hi > lo { (lo, hi) } else { (lo, lo + 1.0) }
    }

    /// The texture of `which` for the chosen gene, made on first use and after a change.
    pub fn texture(&mut self, ctx: &egui::Context, which: PatchValues) -> egui::TextureId {
        let key = (self.gene, (self.opacity * 255.0) as u32);
        if self.textures.as_ref().is_none_or(|(made_for, ..)| *made_for != key) {
            let range = self.range();
            let make = |which: PatchValues, name: &str| {
                let image = heatmap(
                    &self.values(which),
                    self.result.columns,
                    self.result.rows,
                    range,
                    self.opacity,
                );
                ctx.load_texture(name, image, TextureOptions::NEAREST)
            };
            let virtual_texture = make(PatchValues::Virtual, "virtual-expression");
            let measured_texture = make(PatchValues::Measured, "measured-expression");
            self.textures = Some((key, virtual_texture, measured_texture));
        }
        match (&self.textures, which) {
            (Some((_, t, _)), PatchValues::Virtual) | (Some((_, _, t)), PatchValues::Measured) => t.id(),
            (None, _) => egui::TextureId::default(),
        }
    }
}

/// Viridis over `range`, `opacity` alpha; NaN transparent.
fn heatmap(values: &[f32], columns: usize, rows: usize, (lo, hi): (f32, f32), opacity: f32) -> ColorImage {
    let alpha = (opacity.clamp(0.0, 1.0) * 255.0) as u8;
    let pixels = (0..columns * rows)
        .map(|i| match values.get(i) {
            Some(v) if v.is_finite() => {
                let t = f64::from(((v - lo) / (hi - lo)).clamp(0.0, 1.0));
                let c = ColourMap::Viridis.colour(t);
                Color32::from_rgba_unmultiplied(c.r(), c.g(), c.b(), alpha)
            }
            _ => Color32::TRANSPARENT,
        })
        .collect();
    ColorImage::new([columns.max(1), rows.max(1)], pixels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heatmap_is_transparent_where_nothing_was_predicted() {
        let image = heatmap(&[0.0, f32::NAN, 1.0, 0.5], 2, 2, (0.0, 1.0), 1.0);
        assert_eq!(image.size, [2, 2]);
        assert_eq!(image.pixels[1], Color32::TRANSPARENT);
        assert_eq!(image.pixels[0], ColourMap::Viridis.colour(0.0));
        assert_eq!(image.pixels[2], ColourMap::Viridis.colour(1.0));
    }
}
