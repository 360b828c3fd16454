//! User-facing messages: errors stay until dismissed, notes fade after a while.

use std::time::{Duration, Instant};

const NOTE_LIFETIME: Duration = Duration::from_secs(8);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToastKind {
    Error,
    Note,
}

#[derive(Debug, Clone)]
pub struct Toast {
    pub kind: ToastKind,
    pub text: String,
    created: Instant,
}

#[derive(Default)]
pub struct Toasts {
    items: Vec<Toast>,
}

impl Toasts {
    pub fn error(&mut self, text: impl Into<String>) {
        let text = text.into();
        log::error!("{text}");
        self.push(ToastKind::Error, text);
    }

    pub fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        log::info!("{text}");
        self.push(ToastKind::Note, text);
    }

    fn push(&mut self, kind: ToastKind, text: String) {
        // The same message twice in a row is shown once.
        if self.items.last().is_some_and(|t| t.text == text) {
            return;
        }
        self.items.push(Toast {
            kind,
            text,
            created: Instant::now(),
        });
    }

    pub fn items(&self) -> &[Toast] {
        &self.items
    }

    /// Draws the messages in the top-right corner of `ctx`'s screen.
    pub fn show(&mut self, ctx: &egui::Context) {
        self.items
            .retain(|t| t.kind == ToastKind::Error || t.created.elapsed() < NOTE_LIFETIME);
        if self.items.is_empty() {
            return;
        }
        if self.items.iter().any(|t| t.kind == ToastKind::Note) {
            ctx.request_repaint_after(Duration::from_millis(500));
        }
        let mut dismissed = None;
        egui::Area::new(egui::Id::unique("toasts"))
            // Bottom centre, above the status bar: over the slide, clear of the panels and their buttons.
            .anchor(egui::Align2::CENTER_BOTTOM, egui::vec2(0.0, -36.0))
            .order(egui::Order::Foreground)
            .show(ctx, |ui| {
                ui.set_max_width(460.0);
                for (i, toast) in self.items.iter().enumerate() {
                    let (fill, title) = match toast.kind {
                        ToastKind::Error => (egui::Color32::from_rgb(120, 30, 30), "Error"),
                        ToastKind::Note => (egui::Color32::from_rgb(40, 60, 90), "Note"),
                    };
                    egui::Frame::popup(ui.style()).fill(fill).show(ui, |ui| {
                        ui.horizontal(|ui| {
                            ui.label(egui::RichText::new(title).strong().color(egui::Color32::WHITE));
                            ui.add(
                                egui::Label::new(egui::RichText::new(&toast.text).color(egui::Color32::WHITE)).wrap(),
                            );
                            if ui.small_button("Dismiss").clicked() {
                                dismissed = Some(i);
                            }
                        });
                    });
                    ui.add_space(4.0);
                }
            });
        if let Some(i) = dismissed {
            self.items.remove(i);
        }
    }
}
