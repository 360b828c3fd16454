//! CellSymphony Viewer: the eframe app (panels, tools, background jobs) and its command line.
//! Libraries with one job each live in `crates/`; this crate wires them to the UI.

pub mod analysis_jobs;
pub mod annotations;
pub mod annotations_ui;
pub mod app;
pub mod bench;
pub mod bench_cells;
pub mod bench_models;
pub mod bookmarks;
pub mod camera;
pub mod cell_layer;
pub mod cli;
pub mod cli_models;
pub mod compare_slide;
pub mod demo;
pub mod help;
pub mod history;
pub mod jobs;
pub mod landmarks;
pub mod layers_panel;
pub mod model_runs;
pub mod models;
pub mod models_panel;
pub mod palettes;
pub mod panels;
pub mod preferences;
pub mod presentation;
pub mod recent;
pub mod selection_io;
pub mod selection_panel;
pub mod selection_tools_ui;
pub mod selections;
pub mod session;
pub mod session_file;
pub mod slide_layer;
pub mod toasts;
pub mod tools;
pub mod view_export;
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
    let mut setup = eframe::egui_wgpu::WgpuSetupCreateNew::without_display_handle();
    // The adapter's full features and limits: GPU models (burn, through cubecl) read capabilities
    // from the adapter and share this device, and large cell overlays want large buffers.
    setup.device_descriptor = std::sync::Arc::new(|adapter| {
        let limits = if adapter.get_info().backend == wgpu::Backend::Gl {
            wgpu::Limits::downlevel_webgl2_defaults().using_resolution(adapter.limits())
        } else {
            adapter.limits()
        };
        wgpu::DeviceDescriptor {
            label: Some("cellsymphony device"),
            required_features: adapter.features(),
            required_limits: limits,
            ..Default::default()
        }
    });
    let wgpu_options = eframe::egui_wgpu::WgpuConfiguration {
        wgpu_setup: eframe::egui_wgpu::WgpuSetup::CreateNew(setup),
        ..Default::default()
    };
    eframe::NativeOptions {
        wgpu_options,
        viewport: viewport
            .with_title("CellSymphony Viewer")
            .with_app_id("cellsymphony")
            .with_inner_size([1400.0, 900.0])
            .with_min_inner_size([640.0, 420.0])
            .with_drag_and_drop(true),
        ..Default::default()
    }
}
