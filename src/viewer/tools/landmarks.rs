//! Landmark alignment: the user clicks a feature on the slide, then the same feature among the
//! cells, three or more times; a least-squares affine map from slide pixels to world µm follows,
//! with its residual in µm. Applying it turns it into the Xenium Explorer alignment layout.

use cs_xenium::{Affine2, AffineFit, fit_affine};
use egui::{Color32, Pos2, Stroke, Vec2};
use glam::DVec2;

use crate::viewer::tools::{PaintContext, Tool, ToolContext, ViewerTool};

/// One pair: a slide pixel and the world point (µm) that should lie under it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LandmarkPair {
    pub slide_px: DVec2,
    pub world_um: DVec2,
}

/// The landmark tool's state while it is open.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LandmarkTool {
    pub pairs: Vec<LandmarkPair>,
    /// The slide point of a pair whose world point is not clicked yet.
    pub pending_slide_px: Option<DVec2>,
}

impl LandmarkTool {
    /// A click in the viewer: first the slide feature, then its world counterpart.
    pub fn click(&mut self, slide_px: DVec2, world_um: DVec2) {
        match self.pending_slide_px.take() {
            None => self.pending_slide_px = Some(slide_px),
            Some(first) => self.pairs.push(LandmarkPair {
                slide_px: first,
                world_um,
            }),
        }
    }

    pub fn undo(&mut self) {
        if self.pending_slide_px.take().is_none() {
            self.pairs.pop();
        }
    }

    /// The least-squares map slide px -> world µm, once there are three pairs not on a line.
    pub fn fit(&self) -> Option<AffineFit> {
        let pairs: Vec<([f64; 2], [f64; 2])> = self
            .pairs
            .iter()
            .map(|p| (p.slide_px.to_array(), p.world_um.to_array()))
            .collect();
        fit_affine(&pairs)
    }

    /// The fit in Xenium Explorer's terms: slide px -> Xenium morphology px.
    pub fn xenium_px_from_slide_px(&self, pixel_size_um: f64) -> Option<(Affine2, f64)> {
        let fit = self.fit()?;
        Some((fit.affine.scaled(1.0 / pixel_size_um), fit.rms_residual))
    }
}

impl ViewerTool for LandmarkTool {
    /// A click is the next landmark (on the slide first, then among the cells). Drags still pan.
    fn pointer_input(&mut self, _tool: Tool, cx: &mut ToolContext<'_>) -> bool {
        let (Some(pos), Some(slide_from_world)) = (cx.response.interact_pointer_pos(), cx.slide_from_world) else {
            return false;
        };
        if !cx.response.clicked() {
            return false;
        }
        let world = cx.to_world(pos);
        self.click(slide_from_world.transform_point2(world), world);
        true
    }

    /// Numbered markers: slide points (yellow circles) and cell-side points (cyan crosses),
    /// joined by a line.
    fn paint(&self, _tool: Tool, painter: &egui::Painter, cx: &PaintContext) {
        let Some(world_from_slide) = cx.world_from_slide else {
            return;
        };
        let slide_stroke = Stroke::new(2.0, Color32::from_rgb(255, 220, 0));
        let world_stroke = Stroke::new(2.0, Color32::from_rgb(0, 230, 255));
        let slide_to_screen = |slide_px: DVec2| cx.to_screen(world_from_slide.transform_point2(slide_px));
        let label = |pos: Pos2, text: String, colour: Color32| {
            painter.text(
                pos + Vec2::new(8.0, -8.0),
                egui::Align2::LEFT_BOTTOM,
                text,
                egui::FontId::proportional(14.0),
                colour,
            );
        };
        for (i, pair) in self.pairs.iter().enumerate() {
            let a = slide_to_screen(pair.slide_px);
            let b = cx.to_screen(pair.world_um);
            painter.circle_stroke(a, 6.0, slide_stroke);
            painter.line_segment([b - Vec2::new(6.0, 0.0), b + Vec2::new(6.0, 0.0)], world_stroke);
            painter.line_segment([b - Vec2::new(0.0, 6.0), b + Vec2::new(0.0, 6.0)], world_stroke);
            painter.line_segment([a, b], Stroke::new(1.0, Color32::from_white_alpha(160)));
            label(a, format!("{}", i + 1), slide_stroke.color);
            label(b, format!("{}", i + 1), world_stroke.color);
        }
        if let Some(pending) = self.pending_slide_px {
            let a = slide_to_screen(pending);
            painter.circle_stroke(a, 8.0, slide_stroke);
            label(
                a,
                format!("{} (now click its match among the cells)", self.pairs.len() + 1),
                slide_stroke.color,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_clicked_pairs_give_the_alignment_back() {
        // Truth: world = 0.2125 * (2.35 * R(3°) * slide + t).
        let pixel_size = 0.2125;
        let (s, c) = 3f64.to_radians().sin_cos();
        let xenium_px = |p: DVec2| DVec2::new(2.35 * (c * p.x - s * p.y) + 100.0, 2.35 * (s * p.x + c * p.y) - 40.0);
        let mut tool = LandmarkTool::default();
        for slide_px in [
            DVec2::new(10.0, 10.0),
            DVec2::new(900.0, 40.0),
            DVec2::new(300.0, 700.0),
        ] {
            tool.click(slide_px, DVec2::ZERO);
            assert!(tool.pending_slide_px.is_some());
            tool.click(DVec2::new(-1.0, -1.0), xenium_px(slide_px) * pixel_size);
        }
        assert_eq!(tool.pairs.len(), 3);
        let (affine, rms) = tool.xenium_px_from_slide_px(pixel_size).unwrap();
        assert!(rms < 1e-6);
        let p = affine.apply([500.0, 500.0]);
        let expected = xenium_px(DVec2::new(500.0, 500.0));
        assert!((p[0] - expected.x).abs() < 1e-6 && (p[1] - expected.y).abs() < 1e-6);
        tool.click(DVec2::ONE, DVec2::ZERO);
        tool.undo();
        assert_eq!((tool.pairs.len(), tool.pending_slide_px), (3, None));
        tool.undo();
        assert_eq!(tool.pairs.len(), 2);
        assert!(tool.fit().is_none());
    }
}
