//! The landmark alignment window: the pairs clicked so far, the fit's residual, undo and apply.

use egui::{Color32, RichText};

use crate::ui::{Command, PanelContext};

/// The window, while landmarks are being placed.
pub fn landmark_window_ui(ctx: &egui::Context, cx: &PanelContext<'_>) {
    let Some(tool) = &cx.viewer.landmarks else { return };
    let pixel_size_um = cx.document.pixel_size_um();
    let mut open = true;
    egui::Window::new("Align slide by landmarks")
        .open(&mut open)
        .default_width(340.0)
        // Top right, over the properties panel rather than the tissue being clicked.
        .default_pos(ctx.content_rect().right_top() + egui::vec2(-360.0, 60.0))
        .show(ctx, |ui| {
            ui.label(
                "Click a feature on the slide (yellow), then the same feature among the cells (cyan). \
                 Three or more pairs fit an affine map; hide a layer or lower its opacity to see the other.",
            );
            egui::Grid::new("landmark_pairs")
                .num_columns(3)
                .striped(true)
                .show(ui, |ui| {
                    ui.strong("#");
                    ui.strong("slide px");
                    ui.strong("cells µm");
                    ui.end_row();
                    for (i, pair) in tool.pairs.iter().enumerate() {
                        ui.label(format!("{}", i + 1));
                        ui.label(format!("{:.0}, {:.0}", pair.slide_px.x, pair.slide_px.y));
                        ui.label(format!("{:.1}, {:.1}", pair.world_um.x, pair.world_um.y));
                        ui.end_row();
                    }
                });
            match tool.fit() {
                Some(fit) => {
                    ui.label(format!(
                        "Residual: {:.2} µm RMS, {:.2} µm max over {} pairs",
                        fit.rms_residual,
                        fit.max_residual,
                        tool.pairs.len()
                    ));
                }
                None => {
                    ui.label(RichText::new("Needs 3 pairs not on one line").color(Color32::LIGHT_GRAY));
                }
            }
            ui.horizontal(|ui| {
                if ui.button("Undo last").clicked() {
                    cx.send(Command::UndoLandmark);
                }
                let fit = tool.xenium_px_from_slide_px(pixel_size_um);
                if ui.add_enabled(fit.is_some(), egui::Button::new("Apply")).clicked()
                    && let Some((affine, rms)) = fit
                {
                    cx.send(Command::ApplyLandmarks {
                        xenium_px_from_slide_px: affine,
                        rms_residual_um: rms,
                    });
                }
            });
        });
    if !open {
        cx.send(Command::CloseLandmarks);
    }
}
