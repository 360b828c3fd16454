//! The Annotations tab: the annotation tools (and the text the label tool places), undo and
//! redo of annotation edits, GeoJSON import and export, the classes (choose, recolour, add), and
//! the list with each annotation's measurement (select to centre on it, rename, delete).

use egui::Vec2;
use glam::DVec2;

use crate::document::Edit;
use crate::io::records::AnnotationShape;
use crate::ui::dialogs::DialogPurpose;
use crate::ui::{Command, PanelContext};
use crate::util::format::format_area;
use crate::viewer::tools::Tool;

/// The Annotations tab.
pub fn annotations_tab_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>) {
    let tools = &cx.viewer.tools;
    let annotations = &cx.document.annotations;
    ui.horizontal_wrapped(|ui| {
        for tool in Tool::ANNOTATION {
            if ui
                .selectable_label(tools.tool == tool, tool.label())
                .on_hover_text(format!("{} ({:?})", tool.hint(), tool.key()))
                .clicked()
            {
                cx.send(Command::ArmTool(tool));
            }
        }
    });
    if tools.tool == Tool::AnnotateText {
        ui.horizontal(|ui| {
            ui.label("Text:");
            let mut text = tools.annotation.label_text.clone();
            if ui.text_edit_singleline(&mut text).changed() {
                cx.send(Command::SetLabelText(text));
            }
        });
    }
    ui.horizontal(|ui| {
        let (can_undo, can_redo) = (annotations.history().can_undo(), annotations.history().can_redo());
        if ui.add_enabled(can_undo, egui::Button::new("Undo")).clicked() {
            cx.edit(Edit::UndoAnnotations);
        }
        if ui.add_enabled(can_redo, egui::Button::new("Redo")).clicked() {
            cx.edit(Edit::RedoAnnotations);
        }
        let mut show = annotations.show_measurements;
        if ui.checkbox(&mut show, "Measurements").changed() {
            cx.edit(Edit::ShowMeasurements(show));
        }
    });
    ui.horizontal(|ui| {
        if ui
            .button("Import GeoJSON…")
            .on_hover_text("QuPath annotations (GeoJSON)")
            .clicked()
        {
            cx.send(Command::AskForFile(DialogPurpose::ImportAnnotations));
        }
        if ui
            .add_enabled(!annotations.items.is_empty(), egui::Button::new("Export GeoJSON…"))
            .on_hover_text("For QuPath: coordinates in the slide's pixels when a slide is open")
            .clicked()
        {
            cx.send(Command::AskForFile(DialogPurpose::ExportAnnotations));
        }
    });
    ui.separator();
    classes_ui(ui, cx);
    ui.separator();
    list_ui(ui, cx);
}

fn classes_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>) {
    let annotations = &cx.document.annotations;
    ui.label(egui::RichText::new("Classes").strong()).on_hover_text(
        "New annotations get the chosen class, and so does the selected annotation; click a colour to change it",
    );
    let mut changed_colour = None;
    let mut chosen = None;
    for (i, class) in annotations.classes.iter().enumerate() {
        ui.horizontal(|ui| {
            let mut colour = class.colour32();
            if ui.color_edit_button_srgba(&mut colour).changed() {
                changed_colour = Some((i, colour));
            }
            let count = annotations.items.iter().filter(|a| a.class == i).count();
            if ui
                .selectable_label(annotations.current_class == i, &class.name)
                .clicked()
            {
                chosen = Some(i);
            }
            ui.weak(count.to_string());
        });
    }
    if let Some(i) = chosen {
        // The selected annotation takes the class too, as in QuPath.
        cx.edit(Edit::ChooseAnnotationClass(i));
    }
    if let Some((i, colour)) = changed_colour {
        // One undo step per visit to the colour picker: a drag over it changes it every frame.
        let id = egui::Id::unique("annotation-class-colour-edit");
        let now = ui.input(|inp| inp.time);
        let last: Option<(usize, f64)> = ui.data(|d| d.get_temp(id));
        if last.is_none_or(|(class, at)| class != i || now - at > 1.5) {
            cx.edit(Edit::RememberAnnotations);
        }
        ui.data_mut(|d| d.insert_temp(id, (i, now)));
        cx.edit(Edit::SetAnnotationClassColour(i, colour));
    }
    ui.horizontal(|ui| {
        let id = egui::Id::unique("new-annotation-class");
        let mut name: String = ui.data_mut(|d| d.get_temp::<String>(id).unwrap_or_default());
        ui.add(
            egui::TextEdit::singleline(&mut name)
                .hint_text("new class")
                .desired_width(140.0),
        );
        let add = ui
            .add_enabled(!name.trim().is_empty(), egui::Button::new("Add class"))
            .clicked();
        if add {
            cx.edit(Edit::AddAnnotationClass(name.trim().to_owned()));
            name.clear();
        }
        ui.data_mut(|d| d.insert_temp(id, name));
    });
}

fn list_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>) {
    let annotations = &cx.document.annotations;
    if annotations.items.is_empty() {
        ui.weak("No annotations yet: pick a tool above and draw on the slide.");
        return;
    }
    let total_area: f64 = annotations.items.iter().filter_map(|a| a.shape.area_um2()).sum();
    ui.label(format!(
        "{} annotation(s); areas total {}",
        annotations.items.len(),
        format_area(total_area, cx.units)
    ));
    let mut select = None;
    let mut delete = None;
    let mut rename: Option<(usize, String)> = None;
    let mut renaming_ended = false;
    egui::Grid::new("annotation-list").striped(true).show(ui, |ui| {
        for (i, annotation) in annotations.items.iter().enumerate() {
            let colour = annotations.colour_of(annotation);
            let selected = annotations.selected == Some(i);
            let (swatch, _) = ui.allocate_exact_size(Vec2::splat(12.0), egui::Sense::hover());
            ui.painter().rect_filled(swatch, 2.0, colour);
            let title = match &annotation.shape {
                AnnotationShape::Text { text, .. } => format!("“{text}”"),
                shape => format!("{} {}", annotations.class_name(annotation), shape.kind()),
            };
            if ui
                .selectable_label(selected, title)
                .on_hover_text("Select it and centre the view on it")
                .clicked()
            {
                select = Some(i);
            }
            ui.label(annotation.shape.short_measurement(cx.units))
                .on_hover_text(annotation.shape.measurement(cx.units));
            if ui.small_button("Delete").on_hover_text("Delete (Del)").clicked() {
                delete = Some(i);
            }
            ui.end_row();
            if selected {
                ui.label("");
                let mut text = match &annotation.shape {
                    AnnotationShape::Text { text, .. } => text.clone(),
                    _ => annotation.name.clone(),
                };
                let hint = if matches!(annotation.shape, AnnotationShape::Text { .. }) {
                    "text"
                } else {
                    "name"
                };
                let field = ui.add(
                    egui::TextEdit::singleline(&mut text)
                        .hint_text(hint)
                        .desired_width(160.0),
                );
                if field.changed() {
                    rename = Some((i, text));
                }
                renaming_ended |= field.lost_focus();
                ui.end_row();
            }
        }
    });
    let delete_key = ui.input(|i| i.key_pressed(egui::Key::Delete)) && !ui.ctx().egui_wants_keyboard_input();
    if delete_key && let Some(s) = annotations.selected {
        delete = Some(s);
    }
    // One undo step per visit to the field: remember when typing starts, forget when it ends.
    let editing_id = egui::Id::unique("annotation-renaming");
    if renaming_ended || select.is_some() {
        ui.data_mut(|d| d.remove::<usize>(editing_id));
    }
    if let Some((i, text)) = rename {
        let already = ui.data(|d| d.get_temp::<usize>(editing_id)) == Some(i);
        if !already {
            cx.edit(Edit::RememberAnnotations);
            ui.data_mut(|d| d.insert_temp(editing_id, i));
        }
        cx.edit(Edit::SetAnnotationText(i, text));
    }
    if let Some(i) = delete {
        cx.edit(Edit::DeleteAnnotation(i));
    }
    if let Some(i) = select
        && let Some(annotation) = annotations.items.get(i)
    {
        let (min, max) = annotation.shape.bounds_um();
        cx.edit(Edit::SelectAnnotation(i));
        cx.send(Command::CentreOn(
            (DVec2::from_array(min) + DVec2::from_array(max)) / 2.0,
        ));
    }
}
