//! The app's keyboard shortcuts outside the viewer: sessions (Ctrl+O, Ctrl+S, Ctrl+Shift+S),
//! the tour (Ctrl+B bookmarks the view, F5 presents), and presenting (→ / Space / Page Down next,
//! ← / Page Up back, Home / End, Esc ends). They are taken before the viewer sees them (arrows
//! would pan).

use crate::ui::dialogs::DialogPurpose;
use crate::ui::{Command, PanelContext};

/// Ctrl+O opens a session, Ctrl+S saves it, Ctrl+Shift+S saves it as.
pub fn session_keys(ctx: &egui::Context, cx: &PanelContext<'_>) {
    let (save_as, save, open) = ctx.input_mut(|i| {
        (
            i.consume_key(egui::Modifiers::COMMAND | egui::Modifiers::SHIFT, egui::Key::S),
            i.consume_key(egui::Modifiers::COMMAND, egui::Key::S),
            i.consume_key(egui::Modifiers::COMMAND, egui::Key::O),
        )
    });
    if save_as {
        cx.send(Command::AskForFile(DialogPurpose::SaveSession));
    } else if save {
        cx.send(Command::SaveSession);
    }
    if open {
        cx.send(Command::AskForFile(DialogPurpose::OpenSession));
    }
}

/// Presentation keys, while presenting.
pub fn presentation_keys(ctx: &egui::Context, cx: &PanelContext<'_>) {
    let Some(presentation) = cx.viewer.presentation else {
        return;
    };
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
    let n = cx.document.bookmarks.items.len();
    if end || n == 0 {
        cx.send(Command::EndPresentation);
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
        cx.send(Command::PresentStep(step));
    }
}

/// Ctrl+B adds the current view; F5 starts the presentation (not while presenting).
pub fn tour_keys(ctx: &egui::Context, cx: &PanelContext<'_>) {
    if cx.viewer.presentation.is_some() {
        return;
    }
    let (add, present) = ctx.input_mut(|i| {
        (
            i.consume_key(egui::Modifiers::COMMAND, egui::Key::B),
            i.consume_key(egui::Modifiers::NONE, egui::Key::F5),
        )
    });
    if add {
        cx.send(Command::BookmarkCurrentView);
    }
    if present {
        cx.send(Command::StartPresentation);
    }
}
