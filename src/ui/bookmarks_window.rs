//! The guided tour's windows: the bookmarks window (add the current view, go to one, name and
//! caption it, reorder, delete, export, present) and, while presenting, the current bookmark's
//! caption in large type with the step count and keys.

use egui::{Align2, Color32, FontId, RichText, Vec2};

use crate::document::Edit;
use crate::ui::{Command, PanelContext, Window};

/// The bookmarks window: the tour in order, each bookmark with its name and caption.
pub fn bookmarks_window_ui(ctx: &egui::Context, cx: &PanelContext<'_>) {
    if cx.viewer.presentation.is_some() {
        return;
    }
    let bookmarks = &cx.document.bookmarks;
    let mut open = true;
    let has_view = cx.viewer.last_viewport.is_some();
    egui::Window::new("Bookmarks and tour")
        .open(&mut open)
        .default_width(340.0)
        .default_pos(egui::pos2(320.0, 90.0))
        .show(ctx, |ui| {
            ui.horizontal(|ui| {
                if ui
                    .add_enabled(has_view, egui::Button::new("Add current view").shortcut_text("Ctrl+B"))
                    .clicked()
                {
                    cx.send(Command::BookmarkCurrentView);
                }
                if ui
                    .add_enabled(!bookmarks.items.is_empty(), egui::Button::new("Export…"))
                    .on_hover_text("Every bookmark as a PNG, with an index.html of names and captions")
                    .clicked()
                {
                    cx.send(Command::ShowWindow(Window::ExportView, true));
                }
                if ui
                    .add_enabled(
                        !bookmarks.items.is_empty(),
                        egui::Button::new("Present").shortcut_text("F5"),
                    )
                    .on_hover_text("Full screen; the arrow keys step through the bookmarks; Esc ends")
                    .clicked()
                {
                    cx.send(Command::StartPresentation);
                }
            });
            if bookmarks.items.is_empty() {
                ui.weak("No bookmarks yet. Frame a view and add it; the bookmarks, in order, are the tour.");
                return;
            }
            ui.separator();
            let n = bookmarks.items.len();
            egui::ScrollArea::vertical().max_height(420.0).show(ui, |ui| {
                for (i, bookmark) in bookmarks.items.iter().enumerate() {
                    let current = bookmarks.current == Some(i);
                    ui.horizontal(|ui| {
                        ui.label(format!("{}.", i + 1));
                        let mut name = bookmark.name.clone();
                        if ui
                            .add(egui::TextEdit::singleline(&mut name).desired_width(130.0))
                            .changed()
                        {
                            cx.edit(Edit::RenameBookmark(i, name));
                        }
                        if ui
                            .selectable_label(current, "Go")
                            .on_hover_text("Show this view")
                            .clicked()
                        {
                            cx.send(Command::GoToBookmark(i));
                        }
                        if ui.add_enabled(i > 0, egui::Button::new("Up").small()).clicked() {
                            cx.edit(Edit::ShiftBookmark { index: i, up: true });
                        }
                        if ui.add_enabled(i + 1 < n, egui::Button::new("Down").small()).clicked() {
                            cx.edit(Edit::ShiftBookmark { index: i, up: false });
                        }
                        if ui.small_button("Delete").clicked() {
                            cx.edit(Edit::RemoveBookmark(i));
                        }
                    });
                    let mut caption = bookmark.caption.clone();
                    if ui
                        .add(
                            egui::TextEdit::multiline(&mut caption)
                                .hint_text("caption shown in the presentation")
                                .desired_rows(1)
                                .desired_width(f32::INFINITY),
                        )
                        .changed()
                    {
                        cx.edit(Edit::SetBookmarkCaption(i, caption));
                    }
                    ui.add_space(4.0);
                }
            });
        });
    if !open {
        cx.send(Command::ShowWindow(Window::Bookmarks, false));
    }
}

/// The caption of the current bookmark in large type, the step count and the keys.
pub fn presentation_overlay_ui(ctx: &egui::Context, cx: &PanelContext<'_>) {
    let Some(presentation) = cx.viewer.presentation else {
        return;
    };
    let bookmarks = &cx.document.bookmarks;
    let Some(bookmark) = bookmarks.items.get(presentation.step) else {
        return;
    };
    egui::Area::new(egui::Id::unique("presentation-caption"))
        .anchor(Align2::CENTER_BOTTOM, Vec2::new(0.0, -36.0))
        .interactable(false)
        .show(ctx, |ui| {
            egui::Frame::new()
                .fill(Color32::from_black_alpha(190))
                .corner_radius(8.0)
                .inner_margin(egui::Margin::symmetric(28, 16))
                .show(ui, |ui| {
                    // As wide as the caption needs, up to 60% of the screen (clear of the minimap).
                    ui.set_max_width((ctx.content_rect().width() * 0.6).max(300.0));
                    ui.vertical(|ui| {
                        ui.label(
                            RichText::new(&bookmark.name)
                                .font(FontId::proportional(38.0))
                                .color(Color32::WHITE),
                        );
                        if !bookmark.caption.is_empty() {
                            ui.add_space(6.0);
                            ui.label(
                                RichText::new(&bookmark.caption)
                                    .font(FontId::proportional(26.0))
                                    .color(Color32::from_gray(230)),
                            );
                        }
                    });
                });
        });
    egui::Area::new(egui::Id::unique("presentation-step"))
        .anchor(Align2::RIGHT_TOP, Vec2::new(-20.0, 16.0))
        .interactable(false)
        .show(ctx, |ui| {
            ui.label(
                RichText::new(format!(
                    "{} / {}   Left, Right: step  ·  Esc ends",
                    presentation.step + 1,
                    bookmarks.items.len()
                ))
                .font(FontId::proportional(20.0))
                .color(Color32::from_gray(220))
                .background_color(Color32::from_black_alpha(150)),
            );
        });
}
