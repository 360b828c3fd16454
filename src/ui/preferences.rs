//! Preferences: the theme, how lengths are written, the slide tile cache's size, autosave, and
//! where models run; kept between sessions in eframe's storage; the Preferences window. The units
//! are handed to whatever writes lengths (never read from a global).

use serde::{Deserialize, Serialize};

use crate::ui::{Command, PanelContext, Window};
use crate::util::format::LengthUnits;

const STORAGE_KEY: &str = "preferences";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Theme {
    Dark,
    Light,
    /// As the desktop says.
    System,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Preferences {
    pub theme: Theme,
    pub units: LengthUnits,
    /// Slide tiles kept in memory, in MiB.
    pub tile_cache_mib: usize,
    pub autosave: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            theme: Theme::Dark,
            units: LengthUnits::Automatic,
            tile_cache_mib: crate::layers::slide_layer::RAM_CACHE_BYTES / (1024 * 1024),
            autosave: true,
        }
    }
}

impl Preferences {
    pub fn load(storage: Option<&dyn eframe::Storage>) -> Self {
        storage
            .and_then(|s| eframe::get_value(s, STORAGE_KEY))
            .unwrap_or_default()
    }

    pub fn save(&self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, STORAGE_KEY, self);
    }

    pub fn tile_cache_bytes(&self) -> usize {
        self.tile_cache_mib.clamp(64, 64 * 1024) * 1024 * 1024
    }

    /// Puts the theme into effect (the shell applies the rest: the tile cache, autosave).
    pub fn apply_theme(&self, ctx: &egui::Context) {
        ctx.options_mut(|o| {
            o.theme_preference = match self.theme {
                Theme::Dark => egui::ThemePreference::Dark,
                Theme::Light => egui::ThemePreference::Light,
                Theme::System => egui::ThemePreference::System,
            };
        });
    }
}

/// The Preferences window.
pub fn preferences_window_ui(
    ctx: &egui::Context,
    cx: &PanelContext<'_>,
    preferences: &Preferences,
    models: &crate::ui::models_tab::ModelsTabState,
) {
    let mut open = true;
    let mut prefs = preferences.clone();
    let mut device = models.settings.device;
    let mut clear_cache = false;
    egui::Window::new("Preferences")
        .open(&mut open)
        .collapsible(false)
        .resizable(false)
        .show(ctx, |ui| {
            egui::Grid::new("preferences")
                .num_columns(2)
                .spacing([16.0, 8.0])
                .show(ui, |ui| {
                    ui.label("Theme");
                    ui.horizontal(|ui| {
                        ui.selectable_value(&mut prefs.theme, Theme::Dark, "Dark");
                        ui.selectable_value(&mut prefs.theme, Theme::Light, "Light");
                        ui.selectable_value(&mut prefs.theme, Theme::System, "As the system");
                    });
                    ui.end_row();
                    ui.label("Lengths");
                    ui.horizontal(|ui| {
                        ui.selectable_value(&mut prefs.units, LengthUnits::Automatic, "µm, mm when long");
                        ui.selectable_value(&mut prefs.units, LengthUnits::Micrometres, "always µm");
                    });
                    ui.end_row();
                    ui.label("Slide tile cache");
                    ui.add(
                        egui::Slider::new(&mut prefs.tile_cache_mib, 64..=8192)
                            .logarithmic(true)
                            .suffix(" MiB"),
                    )
                    .on_hover_text("Decoded slide tiles kept in memory: more makes returning to a place instant");
                    ui.end_row();
                    ui.label("Autosave");
                    ui.checkbox(&mut prefs.autosave, "every 15 s when something changed")
                        .on_hover_text("Into the app's data folder; offered back after a crash");
                    ui.end_row();
                    ui.label("Models run on");
                    ui.horizontal(|ui| {
                        ui.selectable_value(&mut device, cs_models::ComputeDevice::Gpu, "GPU (burn-wgpu)");
                        ui.selectable_value(&mut device, cs_models::ComputeDevice::Cpu, "CPU (burn-ndarray)");
                    });
                    ui.end_row();
                    ui.label("Model results cache");
                    ui.horizontal(|ui| {
                        let dir = models.cache_dir.clone();
                        // Measured once while the window is open (a walk of the folder).
                        let size_id = egui::Id::unique("model-cache-size");
                        let size = match ui.data(|d| d.get_temp::<u64>(size_id)) {
                            Some(size) => size,
                            None => {
                                let size = dir.as_deref().map_or(0, folder_size_bytes);
                                ui.data_mut(|d| d.insert_temp(size_id, size));
                                size
                            }
                        };
                        ui.label(format!("{:.1} MiB", size as f64 / (1024.0 * 1024.0)))
                            .on_hover_text(dir.map_or_else(String::new, |d| d.display().to_string()));
                        if ui.button("Clear").clicked() {
                            clear_cache = true;
                        }
                    });
                    ui.end_row();
                });
        });
    if !open {
        cx.send(Command::ShowWindow(Window::Preferences, false));
    }
    if !open || clear_cache {
        ctx.data_mut(|d| d.remove::<u64>(egui::Id::unique("model-cache-size")));
    }
    if prefs != *preferences {
        cx.send(Command::SetPreferences(prefs));
    }
    if device != models.settings.device {
        cx.send(Command::SetModelDevice(device));
    }
    if clear_cache {
        cx.send(Command::ClearModelCache);
    }
}

/// The bytes of the files under `dir` (0 when it does not exist).
fn folder_size_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => folder_size_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferences_read_back_and_fill_missing_fields() {
        let prefs = Preferences {
            theme: Theme::Light,
            units: LengthUnits::Micrometres,
            tile_cache_mib: 256,
            autosave: false,
        };
        let text = serde_json::to_string(&prefs).unwrap();
        assert_eq!(serde_json::from_str::<Preferences>(&text).unwrap(), prefs);
        let partial: Preferences = serde_json::from_str(r#"{"theme": "Light"}"#).unwrap();
        assert_eq!(partial.units, LengthUnits::Automatic);
        assert_eq!(
            Preferences::default().tile_cache_bytes(),
            crate::layers::slide_layer::RAM_CACHE_BYTES
        );
    }
}
