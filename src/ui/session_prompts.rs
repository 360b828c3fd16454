//! The questions about the session, as a window in the middle of the screen: quitting with
//! unsaved changes, opening another session over them, and restoring an autosave (after a crash,
//! or instead of a session file that cannot be read).

use crate::ui::command::QuitAnswer;
use crate::ui::{Command, PanelContext};

/// The question to ask now (the shell picks the most pressing one).
#[derive(Debug, Clone, PartialEq)]
pub enum SessionPrompt {
    /// The window is closing with unsaved changes.
    ConfirmQuit {
        /// The session has a file (Save), else it needs one (Save as).
        has_file: bool,
    },
    /// A session is about to replace this one's unsaved changes.
    ConfirmOpen { file_name: String },
    /// An autosave that can be restored.
    RestoreOffer {
        reason: String,
        summary: String,
        autosave: String,
    },
}

/// A fixed window in the middle of the screen.
fn prompt_window(title: &str) -> egui::Window<'_> {
    egui::Window::new(title)
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
}

pub fn session_prompt_ui(ctx: &egui::Context, cx: &PanelContext<'_>, prompt: &SessionPrompt) {
    match prompt {
        SessionPrompt::ConfirmQuit { has_file } => {
            prompt_window("Quit with unsaved changes?").show(ctx, |ui| {
                ui.set_max_width(460.0);
                ui.label("This session has changes that are not saved in a session file.");
                ui.add_space(8.0);
                ui.horizontal(|ui| {
                    let save = if *has_file {
                        "Save, then quit"
                    } else {
                        "Save as…, then quit"
                    };
                    if ui.button(save).clicked() {
                        cx.send(Command::AnswerQuit(QuitAnswer::SaveThenQuit));
                    }
                    if ui
                        .button("Quit without saving")
                        .on_hover_text("The autosave keeps this session's last state")
                        .clicked()
                    {
                        cx.send(Command::AnswerQuit(QuitAnswer::QuitWithoutSaving));
                    }
                    if ui.button("Cancel").clicked() {
                        cx.send(Command::AnswerQuit(QuitAnswer::Cancel));
                    }
                });
            });
        }
        SessionPrompt::ConfirmOpen { file_name } => {
            prompt_window("Unsaved changes").show(ctx, |ui| {
                ui.set_max_width(460.0);
                ui.label(format!(
                    "This session has changes that are not saved. Opening {file_name} replaces it."
                ));
                ui.add_space(8.0);
                ui.horizontal(|ui| {
                    if ui.button("Save, then open").clicked() {
                        cx.send(Command::AnswerOpenSession(Some(true)));
                    }
                    if ui.button("Discard changes and open").clicked() {
                        cx.send(Command::AnswerOpenSession(Some(false)));
                    }
                    if ui.button("Cancel").clicked() {
                        cx.send(Command::AnswerOpenSession(None));
                    }
                });
            });
        }
        SessionPrompt::RestoreOffer {
            reason,
            summary,
            autosave,
        } => {
            prompt_window("Restore the session?").show(ctx, |ui| {
                ui.set_max_width(460.0);
                ui.label(reason);
                ui.add_space(4.0);
                ui.label(format!("The autosave holds: {summary}."));
                ui.label(egui::RichText::new(autosave).small().weak());
                ui.add_space(8.0);
                ui.horizontal(|ui| {
                    if ui.button("Restore").clicked() {
                        cx.send(Command::AnswerRestoreOffer(true));
                    }
                    if ui.button("Not now").clicked() {
                        cx.send(Command::AnswerRestoreOffer(false));
                    }
                });
            });
        }
    }
}
