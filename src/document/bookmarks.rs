//! Bookmarks: named views with a caption, kept in order so that they also make a guided tour;
//! and the animated move from one view to the next (centre slides, zoom changes geometrically,
//! eased). No widgets here.

use std::time::Duration;

use crate::io::records::Bookmark;
use crate::layers::camera::{Camera, Viewport};

/// How long a move between two views takes in the presentation.
pub const TRANSITION: Duration = Duration::from_millis(900);

/// The camera a fraction `t` (0–1) of the way from `from` to `to`: eased in and out, the centre
/// moving in a straight line and the zoom changing by a constant factor per unit of time.
pub fn camera_between(from: &Camera, to: &Camera, t: f64) -> Camera {
    let t = t.clamp(0.0, 1.0);
    let eased = t * t * (3.0 - 2.0 * t);
    Camera {
        center_in_world: from.center_in_world.lerp(to.center_in_world, eased),
        points_per_um: (from.points_per_um.ln() * (1.0 - eased) + to.points_per_um.ln() * eased).exp(),
    }
}

/// The bookmarks of a session, in tour order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bookmarks {
    pub items: Vec<Bookmark>,
    /// The bookmark last gone to (highlighted in the list; the presentation's step).
    pub current: Option<usize>,
}

impl Bookmarks {
    /// Adds the current view as "View N" after the current bookmark (or at the end).
    pub fn add(&mut self, camera: &Camera, viewport: &Viewport) -> usize {
        let name = format!("View {}", self.items.len() + 1);
        let at = self.current.map_or(self.items.len(), |c| (c + 1).min(self.items.len()));
        self.items.insert(at, Bookmark::of_view(name, camera, viewport));
        self.current = Some(at);
        at
    }

    pub fn remove(&mut self, i: usize) {
        if i < self.items.len() {
            self.items.remove(i);
            self.current = match self.current {
                Some(c) if c == i => None,
                Some(c) if c > i => Some(c - 1),
                other => other,
            };
        }
    }

    /// Moves bookmark `i` one place earlier (`up`) or later in the tour.
    pub fn shift(&mut self, i: usize, up: bool) {
        let j = if up { i.checked_sub(1) } else { Some(i + 1) };
        if let Some(j) = j.filter(|&j| j < self.items.len() && i < self.items.len()) {
            self.items.swap(i, j);
            if self.current == Some(i) {
                self.current = Some(j);
            } else if self.current == Some(j) {
                self.current = Some(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glam::DVec2;

    fn viewport(w: f64, h: f64) -> Viewport {
        Viewport {
            size_in_points: DVec2::new(w, h),
            pixels_per_point: 1.0,
        }
    }

    #[test]
    fn a_bookmark_shows_the_same_world_in_another_window() {
        let camera = Camera {
            center_in_world: DVec2::new(100.0, 50.0),
            points_per_um: 2.0,
        };
        let saved = Bookmark::of_view("a".into(), &camera, &viewport(800.0, 600.0));
        assert_eq!(saved.span_um, [400.0, 300.0]);
        assert_eq!(saved.camera_for(&viewport(800.0, 600.0)), camera);
        // Full screen, wider: all of the box still shows (height limits), centred.
        let wide = saved.camera_for(&viewport(1920.0, 1080.0));
        assert_eq!(wide.center_in_world, camera.center_in_world);
        assert!((wide.points_per_um - 3.6).abs() < 1e-12);
    }

    #[test]
    fn transitions_ease_and_zoom_geometrically() {
        let a = Camera {
            center_in_world: DVec2::ZERO,
            points_per_um: 1.0,
        };
        let b = Camera {
            center_in_world: DVec2::new(10.0, 0.0),
            points_per_um: 4.0,
        };
        assert_eq!(camera_between(&a, &b, 0.0), a);
        assert_eq!(camera_between(&a, &b, 1.0).center_in_world, b.center_in_world);
        let mid = camera_between(&a, &b, 0.5);
        assert!(
            (mid.points_per_um - 2.0).abs() < 1e-12,
            "halfway in zoom is the geometric mean"
        );
        assert!((mid.center_in_world.x - 5.0).abs() < 1e-12);
        assert!(
            camera_between(&a, &b, 0.1).center_in_world.x < 1.0,
            "eased at the start"
        );
    }

    #[test]
    fn bookmarks_insert_after_the_current_one_and_reorder() {
        let mut marks = Bookmarks::default();
        let camera = Camera::default();
        let v = viewport(100.0, 100.0);
        marks.add(&camera, &v);
        marks.add(&camera, &v);
        marks.current = Some(0);
        let at = marks.add(&camera, &v);
        assert_eq!(at, 1);
        let names: Vec<&str> = marks.items.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["View 1", "View 3", "View 2"]);
        marks.shift(1, false);
        assert_eq!(marks.current, Some(2));
        assert_eq!(marks.items[2].name, "View 3");
        marks.remove(0);
        assert_eq!(marks.current, Some(1));
    }
}
