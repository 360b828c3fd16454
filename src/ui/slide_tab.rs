//! The Slide tab: the open slide's file, format, size, resolution and objective, its pyramid
//! levels, associated images (one enlarged in a window) and every property, filtered.

use egui::RichText;

use crate::ui::{Command, PanelContext};
use crate::util::display_name;

/// The Slide tab's own state.
#[derive(Debug, Default)]
pub struct SlideTabState {
    pub property_filter: String,
}

/// The slide's properties.
pub fn properties_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, state: &mut SlideTabState) {
    let Some(slide) = &cx.document.slide else { return };
    let meta = slide.layer.source.metadata();
    egui::ScrollArea::vertical().show(ui, |ui| {
        ui.heading("Slide");
        egui::Grid::new("slide_summary")
            .num_columns(2)
            .striped(true)
            .show(ui, |ui| {
                ui.label("File");
                ui.label(display_name(&slide.path))
                    .on_hover_text(slide.path.display().to_string());
                ui.end_row();
                ui.label("Format");
                ui.label(&meta.vendor);
                ui.end_row();
                let (w, h) = meta.level0_size_px();
                ui.label("Size");
                ui.label(format!("{w} × {h} px"));
                ui.end_row();
                ui.label("Resolution");
                ui.label(match (meta.mpp_x, meta.mpp_y) {
                    (Some(x), Some(y)) => format!("{x:.4} × {y:.4} µm/px"),
                    _ => "unknown".to_owned(),
                });
                ui.end_row();
                if let Some(mpp) = meta.mpp() {
                    ui.label("Physical size");
                    ui.label(format!(
                        "{:.2} × {:.2} mm",
                        w as f64 * mpp / 1000.0,
                        h as f64 * mpp / 1000.0
                    ));
                    ui.end_row();
                }
                ui.label("Objective");
                ui.label(meta.objective_power.map_or("unknown".to_owned(), |p| format!("{p}x")));
                ui.end_row();
            });
        ui.add_space(6.0);
        egui::CollapsingHeader::new(format!("Levels ({})", meta.levels.len()))
            .default_open(true)
            .show(ui, |ui| {
                egui::Grid::new("levels").num_columns(3).striped(true).show(ui, |ui| {
                    ui.strong("level");
                    ui.strong("size (px)");
                    ui.strong("downsample");
                    ui.end_row();
                    for (i, level) in meta.levels.iter().enumerate() {
                        ui.label(i.to_string());
                        ui.label(format!("{} × {}", level.width_px, level.height_px));
                        ui.label(format!("{:.3}", level.downsample));
                        ui.end_row();
                    }
                });
            });
        egui::CollapsingHeader::new(format!("Associated images ({})", slide.associated.len()))
            .default_open(true)
            .show(ui, |ui| {
                if slide.associated.is_empty() {
                    ui.label("None in this file");
                }
                ui.horizontal_wrapped(|ui| {
                    for associated in &slide.associated {
                        match &associated.image {
                            Ok((texture, [w, h])) => {
                                let scale = 96.0 / (*w.max(h) as f32);
                                let size = egui::vec2(*w as f32 * scale, *h as f32 * scale);
                                ui.vertical(|ui| {
                                    let image = egui::Image::new((texture.id(), size)).sense(egui::Sense::click());
                                    if ui.add(image).on_hover_text("Click to enlarge").clicked() {
                                        cx.send(Command::ShowAssociatedImage(Some(associated.name.clone())));
                                    }
                                    ui.small(&associated.name);
                                });
                            }
                            Err(error) => {
                                ui.label(
                                    RichText::new(format!("{}: {error}", associated.name))
                                        .color(ui.visuals().warn_fg_color),
                                );
                            }
                        }
                    }
                });
            });
        egui::CollapsingHeader::new(format!("All properties ({})", meta.properties.len())).show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label("Filter");
                ui.text_edit_singleline(&mut state.property_filter);
            });
            let filter = state.property_filter.to_lowercase();
            egui::Grid::new("all_properties")
                .num_columns(2)
                .striped(true)
                .show(ui, |ui| {
                    for (name, value) in &meta.properties {
                        if !filter.is_empty()
                            && !name.to_lowercase().contains(&filter)
                            && !value.to_lowercase().contains(&filter)
                        {
                            continue;
                        }
                        ui.label(name);
                        let shown: String = value.chars().take(80).collect();
                        ui.label(shown).on_hover_text(value);
                        ui.end_row();
                    }
                });
        });
    });
}

pub fn associated_window_ui(ctx: &egui::Context, cx: &PanelContext<'_>, shown: Option<&str>) {
    let Some(name) = shown else {
        return;
    };
    let Some(slide) = &cx.document.slide else { return };
    let Some((texture, [w, h])) = slide
        .associated
        .iter()
        .find(|a| a.name == name)
        .and_then(|a| a.image.as_ref().ok())
    else {
        return;
    };
    let mut open = true;
    egui::Window::new(format!("Associated image: {name}"))
        .open(&mut open)
        .resizable(true)
        .default_size(egui::vec2(520.0, 420.0))
        .show(ctx, |ui| {
            let available = ui.available_size();
            let scale = (available.x / *w as f32).min(available.y / *h as f32).min(2.0);
            ui.image((texture.id(), egui::vec2(*w as f32 * scale, *h as f32 * scale)));
            ui.small(format!("{w} × {h} px (shown scaled)"));
        });
    if !open {
        cx.send(Command::ShowAssociatedImage(None));
    }
}
