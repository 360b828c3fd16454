//! The keyboard shortcuts window (F1 or ?): every key the viewer answers to, grouped, the tool
//! keys taken from the tools themselves so the list cannot drift from them.

use crate::ui::{Command, PanelContext, Window};
use crate::viewer::tools::Tool;

/// (keys, what they do) in groups.
pub fn shortcut_groups() -> Vec<(&'static str, Vec<(String, String)>)> {
    let s = |keys: &str, what: &str| (keys.to_owned(), what.to_owned());
    let tools = |list: &[Tool]| -> Vec<(String, String)> {
        list.iter()
            .map(|t| (format!("{:?}", t.key()), format!("{}: {}", t.label(), t.hint())))
            .collect()
    };
    vec![
        (
            "Navigate",
            vec![
                s("Drag, middle drag", "Pan"),
                s("Wheel, pinch", "Zoom about the pointer"),
                s("Double-click (Shift: out)", "Zoom in 2x (out)"),
                s("Arrow keys", "Pan"),
                s("+ / -", "Zoom in / out"),
                s("0", "Fit everything"),
                s("Click a cell", "Pin it in the inspector"),
            ],
        ),
        ("Selection tools", tools(&Tool::SELECTION)),
        ("Annotation tools", tools(&Tool::ANNOTATION[1..])),
        (
            "Edit",
            vec![
                s("Ctrl+Z", "Undo the latest edit (selections and annotations)"),
                s("Ctrl+Shift+Z, Ctrl+Y", "Redo"),
                s("Enter, double-click", "Close a polygon or end a path"),
                s("Backspace", "Remove the last vertex being drawn"),
                s("Esc", "Drop the shape being drawn, then back to Navigate"),
                s(
                    "Shift / Alt / Shift+Alt",
                    "Add to / subtract from / intersect the selection",
                ),
                s("Delete", "Delete the selected annotation (Annotations tab)"),
            ],
        ),
        (
            "Sessions",
            vec![
                s("Ctrl+O", "Open a session"),
                s("Ctrl+S", "Save the session"),
                s("Ctrl+Shift+S", "Save the session as"),
            ],
        ),
        (
            "Tour",
            vec![
                s("Ctrl+B", "Bookmark the current view"),
                s("F5", "Present the tour full screen"),
                s("Right, Space, Page Down", "Next bookmark (presenting)"),
                s("Left, Page Up", "Previous bookmark (presenting)"),
                s("Home / End", "First / last bookmark (presenting)"),
                s("Esc", "End the presentation"),
            ],
        ),
        ("Help", vec![s("F1, ?", "This list")]),
    ]
}

/// F1 or ? toggles the window (not while typing).
pub fn help_keys(ctx: &egui::Context, cx: &PanelContext<'_>) {
    if ctx.egui_wants_keyboard_input() {
        return;
    }
    let toggle = ctx.input_mut(|i| {
        i.consume_key(egui::Modifiers::NONE, egui::Key::F1)
            || i.consume_key(egui::Modifiers::SHIFT, egui::Key::Questionmark)
            || i.consume_key(egui::Modifiers::NONE, egui::Key::Questionmark)
    });
    if toggle {
        cx.send(Command::ToggleWindow(Window::Shortcuts));
    }
}

pub fn shortcuts_window_ui(ctx: &egui::Context, cx: &PanelContext<'_>) {
    let mut open = true;
    egui::Window::new("Keyboard shortcuts")
        .open(&mut open)
        .collapsible(false)
        .default_width(560.0)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
        .show(ctx, |ui| {
            egui::ScrollArea::vertical()
                .max_height(ctx.content_rect().height() * 0.75)
                .show(ui, |ui| {
                    for (group, rows) in shortcut_groups() {
                        ui.label(egui::RichText::new(group).strong());
                        egui::Grid::new(("shortcuts", group))
                            .num_columns(2)
                            .striped(true)
                            .show(ui, |ui| {
                                for (keys, what) in rows {
                                    ui.monospace(keys);
                                    ui.label(what);
                                    ui.end_row();
                                }
                            });
                        ui.add_space(6.0);
                    }
                });
        });
    if !open {
        cx.send(Command::ShowWindow(Window::Shortcuts, false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_key_is_listed_once() {
        let groups = shortcut_groups();
        let keys: Vec<String> = groups
            .iter()
            .flat_map(|(_, rows)| rows.iter().map(|r| r.0.clone()))
            .collect();
        for tool in Tool::ALL {
            let key = format!("{:?}", tool.key());
            assert_eq!(keys.iter().filter(|k| **k == key).count(), 1, "{key}");
        }
    }
}
