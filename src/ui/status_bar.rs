//! The status bar: the running jobs with how long they have run, what is open, the cursor in
//! slide pixels and µm, the magnification, and the slide's tile state.

use egui::RichText;

use crate::ui::PanelContext;
use crate::util::display_name;

pub fn status_bar_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>) {
    let doc = cx.document;
    egui::Panel::bottom("status_bar").show(ui, |ui| {
        // One line, always: a wrapped status bar would change the viewer's height mid-fit.
        ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Truncate);
        ui.horizontal(|ui| {
            for job in cx.jobs.iter().filter(|j| j.kind.in_status_bar()) {
                ui.spinner();
                if job.elapsed.as_secs() >= 1 {
                    ui.label(format!("{}… {} s", job.status, job.elapsed.as_secs()));
                } else {
                    ui.label(format!("{}…", job.status));
                }
                ui.separator();
            }
            if !doc.has_data() {
                ui.label("Nothing open");
                return;
            }
            if let Some(cells) = &doc.cells {
                ui.label(format!("{} · {} cells", display_name(&cells.dir), cells.len()));
                ui.separator();
            }
            if let Some(slide) = &doc.slide {
                ui.label(display_name(&slide.path));
                ui.separator();
            }
            if let Some(pos) = cx.viewer.cursor_in_slide_px {
                ui.label(format!("x {:.0} px, y {:.0} px", pos.x, pos.y));
            }
            if let (Some(pos), true) = (cx.viewer.cursor_in_world, doc.has_physical_scale()) {
                ui.label(format!("({:.1} µm, {:.1} µm)", pos.x, pos.y));
            }
            if cx.viewer.cursor_in_world.is_some() {
                ui.separator();
            }
            if let Some(viewport) = cx.viewer.last_viewport {
                ui.label(format!("{:.1}x", cx.viewer.camera.magnification(&viewport)));
                ui.separator();
            }
            let Some(slide) = &doc.slide else { return };
            let stats = slide.layer.last_frame;
            ui.label(format!(
                "level {} · tiles {}/{}",
                stats.target_level, stats.ready_tiles, stats.visible_tiles
            ));
            if slide.layer.is_loading() {
                ui.spinner();
            }
            if let Some(error) = slide.layer.first_tile_error() {
                ui.separator();
                ui.label(
                    RichText::new(format!("{} tiles could not be read", slide.layer.failed_tile_count()))
                        .color(ui.visuals().warn_fg_color),
                )
                .on_hover_text(error.to_string());
            }
        });
    });
}
