//! CellSymphony Viewer: the eframe app (panels, tools, background jobs) and its command line.
//! Libraries with one job each live in `crates/`; this crate wires them to the UI.

pub mod app;
pub mod bench;
pub mod camera;
pub mod cli;
pub mod jobs;
pub mod panels;
pub mod recent;
pub mod slide_layer;
pub mod toasts;
pub mod viewer;

pub use app::{StartupOptions, ViewerApp};

/// The window icon, from `assets/icon.png`.
const ICON_PNG: &[u8] = include_bytes!("../assets/icon.png");

/// eframe options for the main window.
pub fn native_options() -> eframe::NativeOptions {
    let mut viewport = egui::ViewportBuilder::default();
    match eframe::icon_data::from_png_bytes(ICON_PNG) {
        Ok(icon) => viewport = viewport.with_icon(icon),
        Err(error) => log::warn!("window icon not decoded: {error}"),
    }
    eframe::NativeOptions {
        viewport: viewport
            .with_title("CellSymphony Viewer")
            .with_app_id("cellsymphony")
            .with_inner_size([1400.0, 900.0])
            .with_min_inner_size([640.0, 420.0])
            .with_drag_and_drop(true),
        ..Default::default()
    }
}
