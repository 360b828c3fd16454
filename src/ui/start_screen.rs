//! The start screen (open a session, a slide, a bundle or the demo; recent files) and the hint
//! shown while files are dragged over the window.

use egui::RichText;

use crate::ui::dialogs::DialogPurpose;
use crate::ui::{Command, PanelContext};
use crate::util::display_name;

pub fn start_screen_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>) {
    ui.vertical_centered(|ui| {
        ui.add_space((ui.available_height() * 0.2).max(20.0));
        ui.label(
            RichText::new("CellSymphony Viewer")
                .size(30.0)
                .strong()
                .color(egui::Color32::WHITE),
        );
        ui.label(
            RichText::new("Whole-slide H&E with Xenium cells, statistics and models on your GPU")
                .color(egui::Color32::LIGHT_GRAY),
        );
        ui.add_space(24.0);
        ui.horizontal(|ui| {
            // Centre the four buttons as a row.
            ui.add_space((ui.available_width() - 610.0).max(0.0) / 2.0);
            if ui
                .add(egui::Button::new(RichText::new("Open session…").size(18.0)))
                .on_hover_text("A session saved from File > Save session (.cellsymphony)")
                .clicked()
            {
                cx.send(Command::AskForFile(DialogPurpose::OpenSession));
            }
            if ui
                .add(egui::Button::new(RichText::new("Open slide…").size(18.0)))
                .clicked()
            {
                cx.send(Command::AskForFile(DialogPurpose::Slide));
            }
            if ui
                .add(egui::Button::new(RichText::new("Open Xenium / .zarr…").size(18.0)))
                .on_hover_text("A Xenium output folder or a SpatialData .zarr store")
                .clicked()
            {
                cx.send(Command::AskForFile(DialogPurpose::Bundle));
            }
            if ui
                .add(egui::Button::new(RichText::new("Open demo tissue").size(18.0)))
                .on_hover_text("Synthetic tissue: H&E slide and Xenium cells (generated once, then cached)")
                .clicked()
            {
                cx.send(Command::OpenDemo(cs_synth::Difficulty::Standard));
            }
        });
        ui.add_space(6.0);
        ui.label(
            RichText::new(
                "or drop a slide file (SVS, NDPI, MRXS, SCN, TIFF, BIF…), a Xenium folder, a SpatialData \
                 .zarr, an alignment CSV or a session file anywhere in this window",
            )
            .color(egui::Color32::GRAY),
        );
        ui.add_space(4.0);
        if ui
            .link("or the hard demo: a cell-typing benchmark")
            .on_hover_text(
                "Sparse counts with dropout, shared markers, CD4/CD8 T cells, overlapping shapes, segmentation \
                 spill-over and 4% wrong labels (generated once, then cached)",
            )
            .clicked()
        {
            cx.send(Command::OpenDemo(cs_synth::Difficulty::Hard));
        }
        if !cx.recent.paths().is_empty() {
            ui.add_space(24.0);
            ui.label(RichText::new("Recent files").strong().color(egui::Color32::WHITE));
            let mut chosen = None;
            for path in cx.recent.paths() {
                if ui
                    .link(display_name(path))
                    .on_hover_text(path.display().to_string())
                    .clicked()
                {
                    chosen = Some(path.clone());
                }
            }
            if let Some(path) = chosen {
                cx.send(Command::OpenPath(path));
            }
        }
    });
}

/// Darkens the window with a hint while files are dragged over it.
pub fn drop_hint_ui(ctx: &egui::Context) {
    let hovering = ctx.input(|i| !i.raw.hovered_files.is_empty());
    if !hovering {
        return;
    }
    let painter = ctx.layer_painter(egui::LayerId::new(
        egui::Order::Foreground,
        egui::Id::unique("drop_hint"),
    ));
    let screen = ctx.content_rect();
    painter.rect_filled(screen, 0.0, egui::Color32::from_black_alpha(180));
    painter.text(
        screen.center(),
        egui::Align2::CENTER_CENTER,
        "Drop to open",
        egui::FontId::proportional(28.0),
        egui::Color32::WHITE,
    );
}
