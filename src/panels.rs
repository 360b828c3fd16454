//! Panels around the viewer: menu and toolbar, status bar, slide properties, associated images,
//! and the start screen.

use egui::RichText;

use crate::app::{DialogPurpose, ViewerApp, display_name};

/// Magnification presets (10x = 1 um per screen pixel).
pub const MAGNIFICATION_PRESETS: [f64; 6] = [1.0, 2.0, 5.0, 10.0, 20.0, 40.0];

pub fn top_bar_ui(ui: &mut egui::Ui, app: &mut ViewerApp) {
    let (save_as, save, open) = ui.input_mut(|i| {
        (
            i.consume_key(egui::Modifiers::COMMAND | egui::Modifiers::SHIFT, egui::Key::S),
            i.consume_key(egui::Modifiers::COMMAND, egui::Key::S),
            i.consume_key(egui::Modifiers::COMMAND, egui::Key::O),
        )
    });
    if save_as {
        app.ask_for_file(DialogPurpose::SaveSession);
    } else if save {
        app.save_session();
    }
    if open {
        app.ask_for_file(DialogPurpose::OpenSession);
    }
    egui::Panel::top("menu_bar").show(ui, |ui| {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui
                    .add(egui::Button::new("Open session…").shortcut_text("Ctrl+O"))
                    .clicked()
                {
                    app.ask_for_file(DialogPurpose::OpenSession);
                    ui.close();
                }
                if ui
                    .add(egui::Button::new("Save session").shortcut_text("Ctrl+S"))
                    .clicked()
                {
                    app.save_session();
                    ui.close();
                }
                if ui
                    .add(egui::Button::new("Save session as…").shortcut_text("Ctrl+Shift+S"))
                    .clicked()
                {
                    app.ask_for_file(DialogPurpose::SaveSession);
                    ui.close();
                }
                ui.separator();
                if ui.button("Open slide…").clicked() {
                    app.ask_for_file(DialogPurpose::Slide);
                    ui.close();
                }
                if ui.button("Open Xenium bundle…").clicked() {
                    app.ask_for_file(DialogPurpose::Bundle);
                    ui.close();
                }
                if ui
                    .add_enabled(app.slide.is_some(), egui::Button::new("Open slide to compare…"))
                    .on_hover_text("A second slide beside the first in the split view, pan and zoom linked")
                    .clicked()
                {
                    app.ask_for_file(DialogPurpose::CompareSlide);
                    ui.close();
                }
                if ui.button("Open alignment…").clicked() {
                    app.ask_for_file(DialogPurpose::Alignment);
                    ui.close();
                }
                if ui
                    .button("Open demo tissue")
                    .on_hover_text("Synthetic tissue: H&E slide and Xenium cells (generated once, then cached)")
                    .clicked()
                {
                    app.open_demo();
                    ui.close();
                }
                ui.menu_button("Open recent", |ui| {
                    if app.recent.paths().is_empty() {
                        ui.label("No recent files");
                    }
                    let mut chosen = None;
                    for path in app.recent.paths() {
                        if ui
                            .button(display_name(path))
                            .on_hover_text(path.display().to_string())
                            .clicked()
                        {
                            chosen = Some(path.clone());
                        }
                    }
                    if let Some(path) = chosen {
                        app.open_path(path);
                        ui.close();
                    }
                });
                ui.separator();
                if ui
                    .add_enabled(app.slide.is_some(), egui::Button::new("Close slide"))
                    .clicked()
                {
                    app.close_slide();
                    ui.close();
                }
                if ui
                    .add_enabled(app.compare.is_some(), egui::Button::new("Close the comparison slide"))
                    .clicked()
                {
                    app.close_compare_slide();
                    ui.close();
                }
                if ui
                    .add_enabled(app.cells.is_some(), egui::Button::new("Close cells"))
                    .clicked()
                {
                    app.close_cells();
                    ui.close();
                }
                ui.separator();
                if ui
                    .add_enabled(
                        app.slide.is_some() || app.cells.is_some(),
                        egui::Button::new("Export view as PNG…"),
                    )
                    .clicked()
                {
                    app.export_choice.open = true;
                    ui.close();
                }
                if ui.button("Preferences…").clicked() {
                    app.show_preferences = true;
                    ui.close();
                }
                ui.separator();
                if ui.button("Quit").clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("View", |ui| {
                if ui
                    .add(egui::Button::new("Bookmarks and tour…").shortcut_text("Ctrl+B adds"))
                    .clicked()
                {
                    app.show_bookmarks = true;
                    ui.close();
                }
                if ui
                    .add_enabled(
                        !app.bookmarks.items.is_empty(),
                        egui::Button::new("Present the tour").shortcut_text("F5"),
                    )
                    .clicked()
                {
                    app.start_presentation(ui.ctx());
                    ui.close();
                }
                ui.separator();
                ui.checkbox(&mut app.show_layers, "Layers panel");
                ui.checkbox(&mut app.show_properties, "Slide properties panel");
                let mut split = app.split.is_some();
                if ui
                    .checkbox(&mut split, "Split view")
                    .on_hover_text(
                        "Two panes side by side with linked pan and zoom: H&E on the left, cell types on the right",
                    )
                    .changed()
                {
                    app.split = split.then(crate::viewer::SplitView::default);
                }
                ui.checkbox(&mut app.view.pan_inertia, "Pan inertia")
                    .on_hover_text("Keep gliding after a drag is released");
                if ui
                    .add_enabled(
                        app.slide.is_some() || app.cells.is_some(),
                        egui::Button::new("Fit  (0)"),
                    )
                    .clicked()
                {
                    app.view.fit_requested = true;
                    ui.close();
                }
            });
            ui.menu_button("Help", |ui| {
                if ui
                    .add(egui::Button::new("Keyboard shortcuts").shortcut_text("F1"))
                    .clicked()
                {
                    app.show_shortcuts = true;
                    ui.close();
                }
            });
        });
    });
    if app.slide.is_none() && app.cells.is_none() {
        return;
    }
    egui::Panel::top("toolbar").show(ui, |ui| {
        ui.horizontal(|ui| {
            if ui.button("Fit").on_hover_text("Show everything (0)").clicked() {
                app.view.fit_requested = true;
            }
            ui.separator();
            ui.label("Magnification:");
            let viewport = app.view.last_viewport;
            for preset in MAGNIFICATION_PRESETS {
                let current = viewport.map(|v| app.view.camera.magnification(&v));
                let selected = current.is_some_and(|m| (m / preset - 1.0).abs() < 0.01);
                if ui.selectable_label(selected, format!("{preset}x")).clicked()
                    && let Some(viewport) = viewport
                {
                    app.view.camera.set_magnification(preset, &viewport);
                }
            }
            ui.separator();
            if let Some(slide) = &mut app.slide {
                ui.add(
                    egui::Slider::new(&mut slide.layer.opacity, 0.0..=1.0)
                        .text("Slide opacity")
                        .show_value(false),
                );
            }
        });
    });
}

pub fn status_bar_ui(ui: &mut egui::Ui, app: &mut ViewerApp) {
    egui::Panel::bottom("status_bar").show(ui, |ui| {
        // One line, always: a wrapped status bar would change the viewer's height mid-fit.
        ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Truncate);
        ui.horizontal(|ui| {
            for (label, elapsed) in app.busy_jobs() {
                ui.spinner();
                if elapsed.as_secs() >= 1 {
                    ui.label(format!("{label}… {} s", elapsed.as_secs()));
                } else {
                    ui.label(format!("{label}…"));
                }
                ui.separator();
            }
            if app.slide.is_none() && app.cells.is_none() {
                ui.label("Nothing open");
                return;
            }
            if let Some(cells) = &app.cells {
                ui.label(format!("{} · {} cells", display_name(&cells.dir), cells.len()));
                ui.separator();
            }
            if let Some(slide) = &app.slide {
                ui.label(display_name(&slide.path));
                ui.separator();
            }
            if let Some(pos) = app.view.cursor_in_slide_px {
                ui.label(format!("x {:.0} px, y {:.0} px", pos.x, pos.y));
            }
            let physical = app.cells.is_some() || app.slide.as_ref().is_some_and(|s| s.layer.has_physical_scale);
            if let (Some(pos), true) = (app.view.cursor_in_world, physical) {
                ui.label(format!("({:.1} µm, {:.1} µm)", pos.x, pos.y));
            }
            if app.view.cursor_in_world.is_some() {
                ui.separator();
            }
            if let Some(viewport) = app.view.last_viewport {
                ui.label(format!("{:.1}x", app.view.camera.magnification(&viewport)));
                ui.separator();
            }
            let Some(slide) = &app.slide else { return };
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

pub fn properties_ui(ui: &mut egui::Ui, app: &mut ViewerApp) {
    let Some(slide) = &app.slide else { return };
    let meta = slide.layer.source.metadata();
    egui::ScrollArea::vertical().show(ui, |ui| {
        ui.heading("Slide");
        egui::Grid::new("slide_summary")
            .num_columns(2)
            .striped(true)
            .show(ui, |ui| {
                ui.label("File");
                ui.label(display_name(&slide.path))
                    .on_hover_text(slide.path.display().to_string());
                ui.end_row();
                ui.label("Format");
                ui.label(&meta.vendor);
                ui.end_row();
                let (w, h) = meta.level0_size_px();
                ui.label("Size");
                ui.label(format!("{w} × {h} px"));
                ui.end_row();
                ui.label("Resolution");
                ui.label(match (meta.mpp_x, meta.mpp_y) {
                    (Some(x), Some(y)) => format!("{x:.4} × {y:.4} µm/px"),
                    _ => "unknown".to_owned(),
                });
                ui.end_row();
                if let Some(mpp) = meta.mpp() {
                    ui.label("Physical size");
                    ui.label(format!(
                        "{:.2} × {:.2} mm",
                        w as f64 * mpp / 1000.0,
                        h as f64 * mpp / 1000.0
                    ));
                    ui.end_row();
                }
                ui.label("Objective");
                ui.label(meta.objective_power.map_or("unknown".to_owned(), |p| format!("{p}x")));
                ui.end_row();
            });
        ui.add_space(6.0);
        egui::CollapsingHeader::new(format!("Levels ({})", meta.levels.len()))
            .default_open(true)
            .show(ui, |ui| {
                egui::Grid::new("levels").num_columns(3).striped(true).show(ui, |ui| {
                    ui.strong("level");
                    ui.strong("size (px)");
                    ui.strong("downsample");
                    ui.end_row();
                    for (i, level) in meta.levels.iter().enumerate() {
                        ui.label(i.to_string());
                        ui.label(format!("{} × {}", level.width_px, level.height_px));
                        ui.label(format!("{:.3}", level.downsample));
                        ui.end_row();
                    }
                });
            });
        egui::CollapsingHeader::new(format!("Associated images ({})", slide.associated.len()))
            .default_open(true)
            .show(ui, |ui| {
                if slide.associated.is_empty() {
                    ui.label("None in this file");
                }
                ui.horizontal_wrapped(|ui| {
                    for associated in &slide.associated {
                        match &associated.image {
                            Ok((texture, [w, h])) => {
                                let scale = 96.0 / (*w.max(h) as f32);
                                let size = egui::vec2(*w as f32 * scale, *h as f32 * scale);
                                ui.vertical(|ui| {
                                    let image = egui::Image::new((texture.id(), size)).sense(egui::Sense::click());
                                    if ui.add(image).on_hover_text("Click to enlarge").clicked() {
                                        app.associated_window = Some(associated.name.clone());
                                    }
                                    ui.small(&associated.name);
                                });
                            }
                            Err(error) => {
                                ui.label(
                                    RichText::new(format!("{}: {error}", associated.name))
                                        .color(ui.visuals().warn_fg_color),
                                );
                            }
                        }
                    }
                });
            });
        egui::CollapsingHeader::new(format!("All properties ({})", meta.properties.len())).show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label("Filter");
                ui.text_edit_singleline(&mut app.property_filter);
            });
            let filter = app.property_filter.to_lowercase();
            egui::Grid::new("all_properties")
                .num_columns(2)
                .striped(true)
                .show(ui, |ui| {
                    for (name, value) in &meta.properties {
                        if !filter.is_empty()
                            && !name.to_lowercase().contains(&filter)
                            && !value.to_lowercase().contains(&filter)
                        {
                            continue;
                        }
                        ui.label(name);
                        let shown: String = value.chars().take(80).collect();
                        ui.label(shown).on_hover_text(value);
                        ui.end_row();
                    }
                });
        });
    });
}

pub fn associated_window_ui(ctx: &egui::Context, app: &mut ViewerApp) {
    let Some(name) = app.associated_window.clone() else {
        return;
    };
    let Some(slide) = &app.slide else { return };
    let Some((texture, [w, h])) = slide
        .associated
        .iter()
        .find(|a| a.name == name)
        .and_then(|a| a.image.as_ref().ok())
    else {
        return;
    };
    let mut open = true;
    egui::Window::new(format!("Associated image: {name}"))
        .open(&mut open)
        .resizable(true)
        .default_size(egui::vec2(520.0, 420.0))
        .show(ctx, |ui| {
            let available = ui.available_size();
            let scale = (available.x / *w as f32).min(available.y / *h as f32).min(2.0);
            ui.image((texture.id(), egui::vec2(*w as f32 * scale, *h as f32 * scale)));
            ui.small(format!("{w} × {h} px (shown scaled)"));
        });
    if !open {
        app.associated_window = None;
    }
}

pub fn start_screen_ui(ui: &mut egui::Ui, app: &mut ViewerApp) {
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
                app.ask_for_file(DialogPurpose::OpenSession);
            }
            if ui
                .add(egui::Button::new(RichText::new("Open slide…").size(18.0)))
                .clicked()
            {
                app.ask_for_slide();
            }
            if ui
                .add(egui::Button::new(RichText::new("Open Xenium bundle…").size(18.0)))
                .clicked()
            {
                app.ask_for_file(DialogPurpose::Bundle);
            }
            if ui
                .add(egui::Button::new(RichText::new("Open demo tissue").size(18.0)))
                .on_hover_text("Synthetic tissue: H&E slide and Xenium cells (generated once, then cached)")
                .clicked()
            {
                app.open_demo();
            }
        });
        ui.add_space(6.0);
        ui.label(
            RichText::new(
                "or drop a slide file (SVS, NDPI, MRXS, SCN, TIFF, BIF…), a Xenium output folder, \
                 an alignment CSV or a session file anywhere in this window",
            )
            .color(egui::Color32::GRAY),
        );
        if !app.recent.paths().is_empty() {
            ui.add_space(24.0);
            ui.label(RichText::new("Recent files").strong().color(egui::Color32::WHITE));
            let mut chosen = None;
            for path in app.recent.paths() {
                if ui
                    .link(display_name(path))
                    .on_hover_text(path.display().to_string())
                    .clicked()
                {
                    chosen = Some(path.clone());
                }
            }
            if let Some(path) = chosen {
                app.open_path(path);
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
