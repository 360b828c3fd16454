//! The menu bar (File, View, Help) and the toolbar under it (fit, magnification presets, slide
//! opacity).

use crate::document::Edit;
use crate::document::edit::SlideStyle;
use crate::ui::dialogs::DialogPurpose;
use crate::ui::{Command, PanelContext, Window, Windows};
use crate::util::display_name;

/// Magnification presets (10x = 1 um per screen pixel).
pub const MAGNIFICATION_PRESETS: [f64; 6] = [1.0, 2.0, 5.0, 10.0, 20.0, 40.0];

pub fn top_bar_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, windows: &Windows) {
    let doc = cx.document;
    egui::Panel::top("menu_bar").show(ui, |ui| {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui
                    .add(egui::Button::new("Open session…").shortcut_text("Ctrl+O"))
                    .clicked()
                {
                    cx.send(Command::AskForFile(DialogPurpose::OpenSession));
                    ui.close();
                }
                if ui
                    .add(egui::Button::new("Save session").shortcut_text("Ctrl+S"))
                    .clicked()
                {
                    cx.send(Command::SaveSession);
                    ui.close();
                }
                if ui
                    .add(egui::Button::new("Save session as…").shortcut_text("Ctrl+Shift+S"))
                    .clicked()
                {
                    cx.send(Command::AskForFile(DialogPurpose::SaveSession));
                    ui.close();
                }
                ui.separator();
                if ui.button("Open slide…").clicked() {
                    cx.send(Command::AskForFile(DialogPurpose::Slide));
                    ui.close();
                }
                if ui.button("Open Xenium bundle or SpatialData…").clicked() {
                    cx.send(Command::AskForFile(DialogPurpose::Bundle));
                    ui.close();
                }
                if ui
                    .button("Open cohort…")
                    .on_hover_text(
                        "A manifest (CSV or TOML) listing samples: sample_id, xenium, slide, alignment and metadata \
                         such as condition; switch samples and compare them in the Cohort tab",
                    )
                    .clicked()
                {
                    cx.send(Command::AskForFile(DialogPurpose::Cohort));
                    ui.close();
                }
                if ui
                    .add_enabled(doc.slide.is_some(), egui::Button::new("Open slide to compare…"))
                    .on_hover_text("A second slide beside the first in the split view, pan and zoom linked")
                    .clicked()
                {
                    cx.send(Command::AskForFile(DialogPurpose::CompareSlide));
                    ui.close();
                }
                if ui.button("Open alignment…").clicked() {
                    cx.send(Command::AskForFile(DialogPurpose::Alignment));
                    ui.close();
                }
                if ui
                    .button("Open demo tissue")
                    .on_hover_text("Synthetic tissue: H&E slide and Xenium cells (generated once, then cached)")
                    .clicked()
                {
                    cx.send(Command::OpenDemo(cs_synth::Difficulty::Standard));
                    ui.close();
                }
                if ui
                    .button("Open hard demo tissue")
                    .on_hover_text(
                        "The cell-typing benchmark: sparse counts with dropout, shared markers, CD4/CD8 T cells, \
                         overlapping shapes, segmentation spill-over and 4% wrong labels",
                    )
                    .clicked()
                {
                    cx.send(Command::OpenDemo(cs_synth::Difficulty::Hard));
                    ui.close();
                }
                ui.menu_button("Open recent", |ui| {
                    if cx.recent.paths().is_empty() {
                        ui.label("No recent files");
                    }
                    let mut chosen = None;
                    for path in cx.recent.paths() {
                        if ui
                            .button(display_name(path))
                            .on_hover_text(path.display().to_string())
                            .clicked()
                        {
                            chosen = Some(path.clone());
                        }
                    }
                    if let Some(path) = chosen {
                        cx.send(Command::OpenPath(path));
                        ui.close();
                    }
                });
                ui.separator();
                if ui
                    .add_enabled(doc.slide.is_some(), egui::Button::new("Close slide"))
                    .clicked()
                {
                    cx.send(Command::CloseSlide);
                    ui.close();
                }
                if ui
                    .add_enabled(doc.compare.is_some(), egui::Button::new("Close the comparison"))
                    .clicked()
                {
                    cx.send(Command::CloseCompareSlide);
                    ui.close();
                }
                if ui
                    .add_enabled(doc.cells.is_some(), egui::Button::new("Close cells"))
                    .clicked()
                {
                    cx.send(Command::CloseCells);
                    ui.close();
                }
                ui.separator();
                if ui
                    .add_enabled(
                        doc.slide.is_some() || doc.cells.is_some(),
                        egui::Button::new("Export view as PNG…"),
                    )
                    .clicked()
                {
                    cx.send(Command::ShowWindow(Window::ExportView, true));
                    ui.close();
                }
                if ui.button("Preferences…").clicked() {
                    cx.send(Command::ShowWindow(Window::Preferences, true));
                    ui.close();
                }
                ui.separator();
                if ui.button("Quit").clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("View", |ui| {
                if ui
                    .add(egui::Button::new("Bookmarks and tour…").shortcut_text("Ctrl+B adds"))
                    .clicked()
                {
                    cx.send(Command::ShowWindow(Window::Bookmarks, true));
                    ui.close();
                }
                if ui
                    .add_enabled(
                        !doc.bookmarks.items.is_empty(),
                        egui::Button::new("Present the tour").shortcut_text("F5"),
                    )
                    .clicked()
                {
                    cx.send(Command::StartPresentation);
                    ui.close();
                }
                ui.separator();
                let mut layers = windows.layers_panel;
                if ui.checkbox(&mut layers, "Layers panel").changed() {
                    cx.send(Command::ShowWindow(Window::LayersPanel, layers));
                }
                let mut properties = windows.properties_panel;
                if ui.checkbox(&mut properties, "Slide properties panel").changed() {
                    cx.send(Command::ShowWindow(Window::PropertiesPanel, properties));
                }
                let mut split = cx.viewer.split.is_some();
                if ui
                    .checkbox(&mut split, "Split view")
                    .on_hover_text(
                        "Two panes side by side with linked pan and zoom: H&E on the left, cell types on the right",
                    )
                    .changed()
                {
                    cx.send(Command::SetSplitView(split));
                }
                let mut inertia = cx.viewer.pan_inertia;
                if ui
                    .checkbox(&mut inertia, "Pan inertia")
                    .on_hover_text("Keep gliding after a drag is released")
                    .changed()
                {
                    cx.send(Command::SetPanInertia(inertia));
                }
                if ui
                    .add_enabled(
                        doc.slide.is_some() || doc.cells.is_some(),
                        egui::Button::new("Fit  (0)"),
                    )
                    .clicked()
                {
                    cx.send(Command::Fit);
                    ui.close();
                }
            });
            ui.menu_button("Help", |ui| {
                if ui
                    .add(egui::Button::new("Keyboard shortcuts").shortcut_text("F1"))
                    .clicked()
                {
                    cx.send(Command::ShowWindow(Window::Shortcuts, true));
                    ui.close();
                }
            });
        });
    });
    if !doc.has_data() {
        return;
    }
    egui::Panel::top("toolbar").show(ui, |ui| {
        ui.horizontal(|ui| {
            if ui.button("Fit").on_hover_text("Show everything (0)").clicked() {
                cx.send(Command::Fit);
            }
            ui.separator();
            ui.label("Magnification:");
            let viewport = cx.viewer.last_viewport;
            for preset in MAGNIFICATION_PRESETS {
                let current = viewport.map(|v| cx.viewer.camera.magnification(&v));
                let selected = current.is_some_and(|m| (m / preset - 1.0).abs() < 0.01);
                if ui.selectable_label(selected, format!("{preset}x")).clicked() {
                    cx.send(Command::SetMagnification(preset));
                }
            }
            ui.separator();
            if let Some(slide) = &doc.slide {
                let mut style = SlideStyle {
                    visible: slide.layer.visible,
                    opacity: slide.layer.opacity,
                };
                if ui
                    .add(
                        egui::Slider::new(&mut style.opacity, 0.0..=1.0)
                            .text("Slide opacity")
                            .show_value(false),
                    )
                    .changed()
                {
                    cx.edit(Edit::SlideStyle(style));
                }
            }
        });
    });
}
