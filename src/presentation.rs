//! The guided tour: the bookmarks window (add the current view, go to one, name and caption it,
//! reorder, delete) and presentation mode (full screen, panels hidden, the caption in large type,
//! arrow keys stepping through the bookmarks with an animated move, Esc to end).

use std::time::Instant;

use egui::{Align2, Color32, FontId, RichText, Vec2};

use crate::app::ViewerApp;
use crate::bookmarks::{TRANSITION, camera_between};
use crate::camera::Camera;

/// The animated move to a bookmark.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    pub from: Camera,
    pub to: usize,
    pub started: Instant,
}

/// Presentation mode: which bookmark is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presentation {
    pub step: usize,
}

impl ViewerApp {
    /// Moves the view to bookmark `i`, animated.
    pub fn go_to_bookmark(&mut self, i: usize) {
        if i >= self.bookmarks.items.len() {
            return;
        }
        self.bookmarks.current = Some(i);
        self.transition = Some(Transition {
            from: self.view.camera,
            to: i,
            started: Instant::now(),
        });
        self.view.fit_requested = false;
        self.view.fitted = None;
    }

    /// Adds the current view as a bookmark (after the current one) and shows the list.
    pub fn bookmark_current_view(&mut self) {
        let Some(viewport) = self.view.last_viewport else {
            self.toasts
                .error("Open a slide or a bundle first: there is no view to bookmark.");
            return;
        };
        self.bookmarks.add(&self.view.camera, &viewport);
        self.show_bookmarks = true;
    }

    /// Full screen, panels hidden, at the first bookmark (or the current one).
    pub fn start_presentation(&mut self, ctx: &egui::Context) {
        if self.bookmarks.items.is_empty() {
            self.toasts
                .error("Add bookmarks first (View > Bookmarks and tour, Ctrl+B): the tour steps through them.");
            return;
        }
        let step = self.bookmarks.current.unwrap_or(0);
        self.presentation = Some(Presentation { step });
        ctx.send_viewport_cmd(egui::ViewportCommand::Fullscreen(true));
        self.go_to_bookmark(step);
    }

    pub fn end_presentation(&mut self, ctx: &egui::Context) {
        if self.presentation.take().is_some() {
            ctx.send_viewport_cmd(egui::ViewportCommand::Fullscreen(false));
        }
    }

    /// Advances the animated move (once per frame, before the viewer draws).
    pub fn tick_transition(&mut self, ctx: &egui::Context) {
        let (Some(transition), Some(viewport)) = (self.transition, self.view.last_viewport) else {
            return;
        };
        let Some(bookmark) = self.bookmarks.items.get(transition.to) else {
            self.transition = None;
            return;
        };
        // The target is recomputed every frame: the viewport changes when going full screen.
        let target = bookmark.camera_for(&viewport);
        let t = transition.started.elapsed().as_secs_f64() / TRANSITION.as_secs_f64();
        self.view.camera = camera_between(&transition.from, &target, t);
        if t >= 1.0 {
            self.transition = None;
        } else {
            ctx.request_repaint();
        }
    }
}

/// Presentation keys: → / Space / Page Down next, ← / Page Up back, Home / End, Esc ends. They are
/// taken before the viewer sees them (arrows would pan).
pub fn presentation_keys(ctx: &egui::Context, app: &mut ViewerApp) {
    let Some(presentation) = app.presentation else { return };
    let none = egui::Modifiers::NONE;
    let (next, back, first, last, end) = ctx.input_mut(|i| {
        (
            i.consume_key(none, egui::Key::ArrowRight)
                || i.consume_key(none, egui::Key::Space)
                || i.consume_key(none, egui::Key::PageDown),
            i.consume_key(none, egui::Key::ArrowLeft) || i.consume_key(none, egui::Key::PageUp),
            i.consume_key(none, egui::Key::Home),
            i.consume_key(none, egui::Key::End),
            i.consume_key(none, egui::Key::Escape),
        )
    });
    if end {
        app.end_presentation(ctx);
        return;
    }
    let n = app.bookmarks.items.len();
    if n == 0 {
        app.end_presentation(ctx);
        return;
    }
    let step = if next {
        (presentation.step + 1).min(n - 1)
    } else if back {
        presentation.step.saturating_sub(1)
    } else if first {
        0
    } else if last {
        n - 1
    } else {
        return;
    };
    if step != presentation.step {
        app.presentation = Some(Presentation { step });
        app.go_to_bookmark(step);
    }
}

/// The caption of the current bookmark in large type, the step count and the keys.
pub fn presentation_overlay_ui(ctx: &egui::Context, app: &ViewerApp) {
    let Some(presentation) = app.presentation else { return };
    let Some(bookmark) = app.bookmarks.items.get(presentation.step) else {
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
                    app.bookmarks.items.len()
                ))
                .font(FontId::proportional(20.0))
                .color(Color32::from_gray(220))
                .background_color(Color32::from_black_alpha(150)),
            );
        });
}

/// The bookmarks window: the tour in order, each bookmark with its name and caption.
pub fn bookmarks_window_ui(ctx: &egui::Context, app: &mut ViewerApp) {
    if !app.show_bookmarks || app.presentation.is_some() {
        return;
    }
    let mut open = true;
    let mut go = None;
    let mut shift = None;
    let mut remove = None;
    let mut present = false;
    let has_view = app.view.last_viewport.is_some();
    egui::Window::new("Bookmarks and tour")
        .open(&mut open)
        .default_width(340.0)
        .default_pos(egui::pos2(320.0, 90.0))
        .show(ctx, |ui| {
            ui.horizontal(|ui| {
                if ui
                    .add_enabled(has_view, egui::Button::new("Add current view").shortcut_text("Ctrl+B"))
                    .clicked()
                    && let Some(viewport) = app.view.last_viewport
                {
                    app.bookmarks.add(&app.view.camera, &viewport);
                }
                if ui
                    .add_enabled(!app.bookmarks.items.is_empty(), egui::Button::new("Export…"))
                    .on_hover_text("Every bookmark as a PNG, with an index.html of names and captions")
                    .clicked()
                {
                    app.export_choice.open = true;
                }
                if ui
                    .add_enabled(
                        !app.bookmarks.items.is_empty(),
                        egui::Button::new("Present").shortcut_text("F5"),
                    )
                    .on_hover_text("Full screen; the arrow keys step through the bookmarks; Esc ends")
                    .clicked()
                {
                    present = true;
                }
            });
            if app.bookmarks.items.is_empty() {
                ui.weak("No bookmarks yet. Frame a view and add it; the bookmarks, in order, are the tour.");
                return;
            }
            ui.separator();
            let n = app.bookmarks.items.len();
            egui::ScrollArea::vertical().max_height(420.0).show(ui, |ui| {
                for i in 0..n {
                    let current = app.bookmarks.current == Some(i);
                    ui.horizontal(|ui| {
                        ui.label(format!("{}.", i + 1));
                        let bookmark = &mut app.bookmarks.items[i];
                        ui.add(egui::TextEdit::singleline(&mut bookmark.name).desired_width(130.0));
                        if ui
                            .selectable_label(current, "Go")
                            .on_hover_text("Show this view")
                            .clicked()
                        {
                            go = Some(i);
                        }
                        if ui.add_enabled(i > 0, egui::Button::new("Up").small()).clicked() {
                            shift = Some((i, true));
                        }
                        if ui.add_enabled(i + 1 < n, egui::Button::new("Down").small()).clicked() {
                            shift = Some((i, false));
                        }
                        if ui.small_button("Delete").clicked() {
                            remove = Some(i);
                        }
                    });
                    let bookmark = &mut app.bookmarks.items[i];
                    ui.add(
                        egui::TextEdit::multiline(&mut bookmark.caption)
                            .hint_text("caption shown in the presentation")
                            .desired_rows(1)
                            .desired_width(f32::INFINITY),
                    );
                    ui.add_space(4.0);
                }
            });
        });
    app.show_bookmarks = open;
    if let Some(i) = go {
        app.go_to_bookmark(i);
    }
    if let Some((i, up)) = shift {
        app.bookmarks.shift(i, up);
    }
    if let Some(i) = remove {
        app.bookmarks.remove(i);
    }
    if present {
        app.start_presentation(ctx);
    }
}

/// Ctrl+B adds the current view; F5 starts the presentation.
pub fn tour_keys(ctx: &egui::Context, app: &mut ViewerApp) {
    if app.presentation.is_some() {
        return;
    }
    let (add, present) = ctx.input_mut(|i| {
        (
            i.consume_key(egui::Modifiers::COMMAND, egui::Key::B),
            i.consume_key(egui::Modifiers::NONE, egui::Key::F5),
        )
    });
    if add {
        app.bookmark_current_view();
    }
    if present {
        app.start_presentation(ctx);
    }
}
