//! The viewer: the camera and how the user moves it, the widget that draws the document's layers
//! through the GPU renderers ([`widget`], [`paint`]), the split view ([`split`]), the pointer
//! tools ([`tools`]), what is drawn over the layers ([`overlays`]), the presented tour
//! ([`presentation`]) and the offscreen render of a view for PNG export ([`export`]).
//! [`ViewerState`] is the viewer's own state; the document changes only through the [`Edit`]s
//! the viewer sends.
//!
//! May import: `document`, `io`, `layers`, `util`, `work` and the crates.
//!
//! [`Edit`]: crate::document::Edit

pub mod export;
pub mod overlays;
pub mod paint;
pub mod presentation;
pub mod split;
pub mod tools;
pub mod widget;

use glam::DVec2;

use crate::layers::camera::{Camera, Viewport};

/// The viewer's own state: the camera and how it got there, the pointer, the tools, the split
/// view and the presentation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ViewerState {
    pub camera: Camera,
    /// Set when data arrives or the user asks to fit: applied once the viewport size is known.
    pub fit_requested: bool,
    /// The viewport and camera of the last fit: while the camera stays as the fit left it, the fit
    /// follows viewport changes (panels appearing, window resized).
    pub fitted: Option<(Viewport, Camera)>,
    pub last_viewport: Option<Viewport>,
    /// Where the viewer was laid out last frame (window points).
    pub viewer_rect: Option<egui::Rect>,
    /// Cursor over the viewer, in world µm.
    pub cursor_in_world: Option<DVec2>,
    /// Cursor over the viewer, in slide px (when a slide is open).
    pub cursor_in_slide_px: Option<DVec2>,
    /// Keep gliding after a drag is released (off by default, as pathologists expect).
    pub pan_inertia: bool,
    /// Glide velocity after a drag, in screen points per second.
    pub pan_velocity: DVec2,
    /// Cell under the cursor (table index), for the hover card and highlight.
    pub hovered_cell: Option<u32>,
    /// Cell clicked for the inspector (table index).
    pub pinned_cell: Option<u32>,
    pub tools: tools::Toolbox,
    /// Landmark alignment, while its window is open (it takes the clicks).
    pub landmarks: Option<tools::landmarks::LandmarkTool>,
    /// Two panes side by side with linked pan and zoom (None: one view).
    pub split: Option<split::SplitView>,
    pub presentation: Option<presentation::Presentation>,
    /// The animated move to a bookmark in progress.
    pub transition: Option<presentation::Transition>,
}

impl ViewerState {
    /// Forgets the pointer's cells (the cells were replaced or closed).
    pub fn forget_cells(&mut self) {
        self.hovered_cell = None;
        self.pinned_cell = None;
    }
}
