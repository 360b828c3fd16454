//! The export window (the view or the tour as PNG: resolution with the size it gives, legend)
//! and, while an export runs, its progress with Cancel.

use egui::Vec2;

use crate::ui::dialogs::DialogPurpose;
use crate::ui::{Command, PanelContext, Window};
use crate::viewer::export::{SCALES, ViewExport, size_px};

/// The choices of the export window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportChoice {
    pub scale: u32,
    pub legend: bool,
}

impl Default for ExportChoice {
    fn default() -> Self {
        Self { scale: 2, legend: true }
    }
}

/// The export window: resolution (with the size it gives) and legend, then the file dialog.
pub fn export_window_ui(ctx: &egui::Context, cx: &PanelContext<'_>, choice: &mut ExportChoice) {
    let mut open = true;
    let mut save: Option<bool> = None; // Some(true): the view, Some(false): the tour
    egui::Window::new("Export view as PNG")
        .open(&mut open)
        .collapsible(false)
        .resizable(false)
        .show(ctx, |ui| {
            let viewport = cx.viewer.last_viewport;
            ui.horizontal(|ui| {
                ui.label("Resolution:");
                for scale in SCALES {
                    let label = match viewport {
                        Some(v) => {
                            let [w, h] = size_px(&v, scale);
                            format!("{scale}x ({w} x {h})")
                        }
                        None => format!("{scale}x"),
                    };
                    ui.selectable_value(&mut choice.scale, scale, label);
                }
            });
            ui.checkbox(&mut choice.legend, "Legend")
                .on_hover_text("The colouring's classes or scale, top right");
            ui.weak("The scale bar, selections and annotations are drawn as on screen.");
            ui.horizontal(|ui| {
                if ui
                    .add_enabled(viewport.is_some(), egui::Button::new("Save the view…"))
                    .clicked()
                {
                    save = Some(true);
                }
                if ui
                    .add_enabled(
                        viewport.is_some() && !cx.document.bookmarks.items.is_empty(),
                        egui::Button::new("Save the tour…"),
                    )
                    .on_hover_text("Every bookmark as a PNG, with an index.html of names and captions")
                    .clicked()
                {
                    save = Some(false);
                }
            });
        });
    let (scale, legend) = (choice.scale, choice.legend);
    let purpose = match save {
        Some(true) => Some(DialogPurpose::ExportViewPng { scale, legend }),
        Some(false) => Some(DialogPurpose::ExportTour { scale, legend }),
        None => None,
    };
    if let Some(purpose) = purpose {
        cx.send(Command::AskForFile(purpose));
    }
    if !open || save.is_some() {
        cx.send(Command::ShowWindow(Window::ExportView, false));
    }
}

/// While an export runs: what it is doing, and Cancel.
pub fn export_progress_ui(ctx: &egui::Context, cx: &PanelContext<'_>, export: &ViewExport) {
    let [w, h] = export.size_px();
    let text = format!(
        "Exporting image {} of {} ({w} x {h} px)…",
        (export.next + 1).min(export.shots.len()),
        export.shots.len(),
    );
    let mut cancel = false;
    egui::Area::new(egui::Id::unique("view-export-progress"))
        .anchor(egui::Align2::CENTER_CENTER, Vec2::ZERO)
        .show(ctx, |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(text);
                    cancel = ui.button("Cancel").clicked();
                });
            });
        });
    if cancel {
        cx.send(Command::CancelViewExport);
    }
}
