//! The view camera: which part of `world` (micrometres) the viewport shows, and the transforms
//! between `world`, `screen` (egui points, relative to the viewport's top-left) and clip space.

use glam::{DAffine2, DVec2};

/// The viewport: its size in egui points and the display's pixels per point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Viewport {
    pub size_in_points: DVec2,
    pub pixels_per_point: f64,
}

/// Zoom range: from a whole slide in a corner up to 100x (0.1 um per physical pixel).
const MIN_SCREEN_PX_PER_UM: f64 = 1e-5;
const MAX_SCREEN_PX_PER_UM: f64 = 10.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Camera {
    /// World point at the viewport centre.
    pub center_in_world: DVec2,
    /// Zoom: egui points per world micrometre.
    pub points_per_um: f64,
}

impl Default for Camera {
    fn default() -> Self {
        Self {
            center_in_world: DVec2::ZERO,
            points_per_um: 1.0,
        }
    }
}

impl Camera {
    pub fn screen_from_world(&self, viewport: &Viewport) -> DAffine2 {
        DAffine2::from_translation(viewport.size_in_points * 0.5)
            * DAffine2::from_scale(DVec2::splat(self.points_per_um))
            * DAffine2::from_translation(-self.center_in_world)
    }

    pub fn world_from_screen(&self, viewport: &Viewport) -> DAffine2 {
        self.screen_from_world(viewport).inverse()
    }

    /// Micrometres per physical screen pixel.
    pub fn um_per_screen_px(&self, viewport: &Viewport) -> f64 {
        1.0 / (self.points_per_um * viewport.pixels_per_point)
    }

    /// Optical magnification equivalent, using the convention 10x = 1 um per screen pixel
    /// (so 20x = 0.5 um/px, 40x = 0.25 um/px).
    pub fn magnification(&self, viewport: &Viewport) -> f64 {
        10.0 / self.um_per_screen_px(viewport)
    }

    pub fn set_magnification(&mut self, magnification: f64, viewport: &Viewport) {
        let um_per_px = 10.0 / magnification.max(1e-6);
        self.set_points_per_um(1.0 / (um_per_px * viewport.pixels_per_point), viewport);
    }

    fn set_points_per_um(&mut self, points_per_um: f64, viewport: &Viewport) {
        let px_per_um = (points_per_um * viewport.pixels_per_point).clamp(MIN_SCREEN_PX_PER_UM, MAX_SCREEN_PX_PER_UM);
        self.points_per_um = px_per_um / viewport.pixels_per_point;
    }

    /// Zooms by `factor` keeping the world point under `pos_in_screen` fixed.
    pub fn zoom_about(&mut self, pos_in_screen: DVec2, factor: f64, viewport: &Viewport) {
        if !(factor.is_finite() && factor > 0.0) {
            return;
        }
        let pos_in_world = self.world_from_screen(viewport).transform_point2(pos_in_screen);
        self.set_points_per_um(self.points_per_um * factor, viewport);
        let moved_to_screen = self.screen_from_world(viewport).transform_point2(pos_in_world);
        self.pan_by_screen(moved_to_screen - pos_in_screen);
    }

    /// Moves the view so that content shifts by `-delta_in_screen` (dragging moves content with the cursor
    /// when called with the negated drag delta).
    pub fn pan_by_screen(&mut self, delta_in_screen: DVec2) {
        self.center_in_world += delta_in_screen / self.points_per_um;
    }

    /// Frames `min..max` (world) in the viewport with a small margin.
    pub fn fit(&mut self, min_in_world: DVec2, max_in_world: DVec2, viewport: &Viewport) {
        let size = (max_in_world - min_in_world).abs().max(DVec2::splat(1e-9));
        let usable = (viewport.size_in_points * 0.95).max(DVec2::splat(1.0));
        let zoom = (usable.x / size.x).min(usable.y / size.y);
        self.center_in_world = (min_in_world + max_in_world) * 0.5;
        self.set_points_per_um(zoom, viewport);
    }
}

/// Clip space of a viewport: x right, y up, both in -1..1.
pub fn clip_from_screen(viewport: &Viewport) -> DAffine2 {
    let size = viewport.size_in_points.max(DVec2::splat(1e-9));
    DAffine2::from_cols(
        DVec2::new(2.0 / size.x, 0.0),
        DVec2::new(0.0, -2.0 / size.y),
        DVec2::new(-1.0, 1.0),
    )
}

/// A length for a scale bar: the largest 1, 2 or 5 x 10^k micrometres not longer than `max_um`.
pub fn nice_scale_bar_um(max_um: f64) -> f64 {
    if !(max_um.is_finite() && max_um > 0.0) {
        return 0.0;
    }
    let power = 10f64.powf(max_um.log10().floor());
    for step in [5.0, 2.0, 1.0] {
        if step * power <= max_um {
            return step * power;
        }
    }
    power
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewport() -> Viewport {
        Viewport {
            size_in_points: DVec2::new(800.0, 600.0),
            pixels_per_point: 2.0,
        }
    }

    #[test]
    fn screen_and_world_round_trip() {
        let cam = Camera {
            center_in_world: DVec2::new(100.0, 50.0),
            points_per_um: 4.0,
        };
        let vp = viewport();
        let center = cam.screen_from_world(&vp).transform_point2(DVec2::new(100.0, 50.0));
        assert!((center - DVec2::new(400.0, 300.0)).length() < 1e-9);
        let p = DVec2::new(13.0, 77.0);
        let back = cam
            .world_from_screen(&vp)
            .transform_point2(cam.screen_from_world(&vp).transform_point2(p));
        assert!((back - p).length() < 1e-9);
    }

    #[test]
    fn zoom_keeps_the_point_under_the_cursor() {
        let mut cam = Camera::default();
        let vp = viewport();
        let cursor = DVec2::new(123.0, 456.0);
        let before = cam.world_from_screen(&vp).transform_point2(cursor);
        cam.zoom_about(cursor, 3.7, &vp);
        let after = cam.world_from_screen(&vp).transform_point2(cursor);
        assert!((before - after).length() < 1e-9);
        assert!((cam.points_per_um - 3.7).abs() < 1e-12);
        cam.zoom_about(cursor, f64::NAN, &vp);
        assert!((cam.points_per_um - 3.7).abs() < 1e-12);
    }

    #[test]
    fn magnification_presets() {
        let mut cam = Camera::default();
        let vp = viewport();
        cam.set_magnification(20.0, &vp);
        assert!((cam.um_per_screen_px(&vp) - 0.5).abs() < 1e-12);
        assert!((cam.magnification(&vp) - 20.0).abs() < 1e-9);
        cam.set_magnification(1e9, &vp);
        assert!(cam.magnification(&vp) <= 100.0 + 1e-9, "zoom is clamped");
    }

    #[test]
    fn fit_frames_the_rectangle() {
        let mut cam = Camera::default();
        let vp = viewport();
        cam.fit(DVec2::new(0.0, 0.0), DVec2::new(1000.0, 2000.0), &vp);
        let s = cam.screen_from_world(&vp);
        let top = s.transform_point2(DVec2::new(0.0, 0.0));
        let bottom = s.transform_point2(DVec2::new(1000.0, 2000.0));
        assert!(top.y >= 0.0 && bottom.y <= 600.0);
        assert!((bottom.y - top.y - 570.0).abs() < 1e-6, "height fills 95%");
    }

    #[test]
    fn clip_space_corners() {
        let vp = viewport();
        let c = clip_from_screen(&vp);
        assert!((c.transform_point2(DVec2::ZERO) - DVec2::new(-1.0, 1.0)).length() < 1e-12);
        assert!((c.transform_point2(DVec2::new(800.0, 600.0)) - DVec2::new(1.0, -1.0)).length() < 1e-12);
    }

    #[test]
    fn scale_bar_lengths() {
        assert_eq!(nice_scale_bar_um(180.0), 100.0);
        assert_eq!(nice_scale_bar_um(260.0), 200.0);
        assert_eq!(nice_scale_bar_um(0.7), 0.5);
        assert_eq!(nice_scale_bar_um(5000.0), 5000.0);
        assert_eq!(nice_scale_bar_um(f64::NAN), 0.0);
    }
}
