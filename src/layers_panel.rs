//! The layers panel (slide, cells, nuclei, transcripts: visibility, opacity, colouring, legend,
//! colour bar), the pinned-cell inspector, and the landmark alignment window.

use egui::{Color32, RichText};

use crate::app::{DialogPurpose, SlideAlignment, ViewerApp, display_name};
use crate::cell_layer::{CellLayer, ColourBy};
use crate::landmarks::LandmarkTool;
use crate::palettes::ColourMap;

pub fn layers_ui(ui: &mut egui::Ui, app: &mut ViewerApp) {
    egui::ScrollArea::vertical().show(ui, |ui| {
        slide_section_ui(ui, app);
        if app.cells.is_some() {
            ui.separator();
            cells_section_ui(ui, app);
            ui.separator();
            transcripts_section_ui(ui, app);
            inspector_ui(ui, app);
        }
    });
}

fn slide_section_ui(ui: &mut egui::Ui, app: &mut ViewerApp) {
    let pixel_size_um = app.pixel_size_um();
    let Some(slide) = &mut app.slide else {
        return;
    };
    ui.checkbox(&mut slide.layer.visible, RichText::new("Slide").heading());
    ui.label(display_name(&slide.path))
        .on_hover_text(slide.path.display().to_string());
    ui.add(
        egui::Slider::new(&mut slide.layer.opacity, 0.0..=1.0)
            .text("opacity")
            .show_value(false),
    );
    let placement = match &app.alignment {
        Some(SlideAlignment {
            path: Some(path),
            rms_residual_um,
            ..
        }) => {
            let residual = rms_residual_um.map_or(String::new(), |r| format!(", residual {r:.2} µm"));
            format!("aligned by {}{residual}", display_name(path))
        }
        Some(SlideAlignment {
            path: None,
            rms_residual_um,
            ..
        }) => format!(
            "aligned by landmarks (not saved), residual {:.2} µm",
            rms_residual_um.unwrap_or(0.0)
        ),
        None if slide.layer.has_physical_scale => "placed by its µm per pixel (no alignment)".to_owned(),
        None => "no alignment and no µm per pixel".to_owned(),
    };
    ui.small(placement)
        .on_hover_text(format!("Xenium pixel size {pixel_size_um} µm"));
    ui.horizontal_wrapped(|ui| {
        if ui
            .button("Load alignment…")
            .on_hover_text("A Xenium Explorer alignment CSV: H&E pixel to Xenium pixel")
            .clicked()
        {
            app.ask_for_file(DialogPurpose::Alignment);
        }
        if ui
            .add_enabled(app.cells.is_some(), egui::Button::new("Align by landmarks…"))
            .on_hover_text("Click matching points on the slide and among the cells")
            .clicked()
        {
            app.landmarks = Some(LandmarkTool::default());
        }
        if ui
            .add_enabled(app.alignment.is_some(), egui::Button::new("Save alignment…"))
            .clicked()
        {
            app.ask_for_file(DialogPurpose::SaveAlignment);
        }
        if ui
            .add_enabled(app.alignment.is_some(), egui::Button::new("Reset"))
            .on_hover_text("Place the slide by its µm per pixel again")
            .clicked()
        {
            app.alignment = None;
            app.place_slide();
        }
    });
}

fn cells_section_ui(ui: &mut egui::Ui, app: &mut ViewerApp) {
    let mut gene_request = None;
    let Some(cells) = &mut app.cells else { return };
    ui.horizontal(|ui| {
        ui.checkbox(&mut cells.show_cells, RichText::new("Cells").heading());
        ui.label(format!("{}", cells.len()));
    });
    ui.label(display_name(&cells.dir))
        .on_hover_text(cells.dir.display().to_string());
    let has_nuclei = cells.bundle.nucleus_boundaries.is_some();
    ui.add_enabled(has_nuclei, egui::Checkbox::new(&mut cells.show_nuclei, "Nuclei"));
    ui.add(egui::Slider::new(&mut cells.style.opacity, 0.0..=1.0).text("opacity"));
    ui.add(egui::Slider::new(&mut cells.style.cell_fill_alpha, 0.0..=1.0).text("fill"));
    ui.add(egui::Slider::new(&mut cells.style.cell_line_alpha, 0.0..=1.0).text("outline"));
    if has_nuclei {
        ui.add(egui::Slider::new(&mut cells.style.nucleus_fill_alpha, 0.0..=1.0).text("nucleus fill"));
        ui.add(egui::Slider::new(&mut cells.style.nucleus_line_alpha, 0.0..=1.0).text("nucleus outline"));
    }
    ui.add_space(4.0);
    colour_by_ui(ui, cells, &mut app.gene_filter, &mut gene_request);
    ui.add_space(4.0);
    match cells.colour_by.clone() {
        ColourBy::Category(_) => legend_ui(ui, cells),
        ColourBy::Numeric(_) | ColourBy::Gene(_) => colour_bar_ui(ui, cells),
        ColourBy::Uniform => {
            ui.horizontal(|ui| {
                ui.color_edit_button_srgba(&mut cells.uniform_colour);
                ui.label("colour");
            });
        }
    }
    if let Some(feature) = gene_request {
        app.colour_by_gene(feature);
    }
}

fn colour_by_label(cells: &CellLayer) -> String {
    match &cells.colour_by {
        ColourBy::Uniform => "one colour".to_owned(),
        ColourBy::Category(name) | ColourBy::Numeric(name) => name.clone(),
        ColourBy::Gene(feature) => format!("gene {}", cells.feature_name(*feature)),
    }
}

fn colour_by_ui(ui: &mut egui::Ui, cells: &mut CellLayer, gene_filter: &mut String, gene_request: &mut Option<u32>) {
    let mut choice: Option<ColourBy> = None;
    ui.horizontal(|ui| {
        egui::ComboBox::from_label("colour by")
            .selected_text(colour_by_label(cells))
            .width(180.0)
            .show_ui(ui, |ui| {
                if ui
                    .selectable_label(cells.colour_by == ColourBy::Uniform, "one colour")
                    .clicked()
                {
                    choice = Some(ColourBy::Uniform);
                }
                for (name, _) in &cells.bundle.cells.categorical {
                    let value = ColourBy::Category(name.clone());
                    if ui.selectable_label(cells.colour_by == value, name).clicked() {
                        choice = Some(value);
                    }
                }
                ui.separator();
                for (name, _) in &cells.bundle.cells.numeric {
                    let value = ColourBy::Numeric(name.clone());
                    if ui.selectable_label(cells.colour_by == value, name).clicked() {
                        choice = Some(value);
                    }
                }
            });
    });
    if let Some(choice) = choice {
        cells.set_colour_by(choice);
    }
    let Some(counts) = &cells.bundle.counts else {
        return;
    };
    egui::CollapsingHeader::new("Colour by gene")
        .id_salt("gene_picker")
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label("Find");
                ui.text_edit_singleline(gene_filter);
            });
            let filter = gene_filter.to_lowercase();
            egui::ScrollArea::vertical()
                .id_salt("gene_list")
                .max_height(160.0)
                .show(ui, |ui| {
                    for (i, feature) in counts.features.iter().enumerate() {
                        if feature.feature_type != cs_xenium::GENE_EXPRESSION
                            || (!filter.is_empty() && !feature.name.to_lowercase().contains(&filter))
                        {
                            continue;
                        }
                        let selected = cells.colour_by == ColourBy::Gene(i as u32);
                        if ui.selectable_label(selected, &feature.name).clicked() {
                            *gene_request = Some(i as u32);
                        }
                    }
                });
        });
}

fn legend_ui(ui: &mut egui::Ui, cells: &mut CellLayer) {
    let Some(classes) = cells.active_classes_mut() else {
        return;
    };
    let mut changed = false;
    ui.horizontal(|ui| {
        if ui.small_button("show all").clicked() {
            classes.iter_mut().for_each(|c| c.visible = true);
            changed = true;
        }
        if ui.small_button("hide all").clicked() {
            classes.iter_mut().for_each(|c| c.visible = false);
            changed = true;
        }
    });
    egui::Grid::new("legend").num_columns(3).striped(true).show(ui, |ui| {
        for class in classes.iter_mut() {
            changed |= ui.color_edit_button_srgba(&mut class.colour).changed();
            let text = if class.visible {
                RichText::new(&class.name)
            } else {
                RichText::new(&class.name).strikethrough().weak()
            };
            if ui
                .selectable_label(class.visible, text)
                .on_hover_text("Click to hide or show this class")
                .clicked()
            {
                class.visible = !class.visible;
                changed = true;
            }
            ui.label(format!("{}", class.cells));
            ui.end_row();
        }
    });
    // Colours and visibility live in the palette, rebuilt every frame: per-cell styles stay as they are.
    let _ = changed;
}

fn colour_bar_ui(ui: &mut egui::Ui, cells: &mut CellLayer) {
    let Some(numeric) = &mut cells.numeric else {
        ui.spinner();
        return;
    };
    let mut changed = false;
    ui.label(RichText::new(&numeric.label).strong());
    let (rect, _) = ui.allocate_exact_size(egui::vec2(ui.available_width().min(260.0), 14.0), egui::Sense::hover());
    let colours = numeric.colour_map.colours();
    let painter = ui.painter_at(rect);
    let n = colours.len().max(1);
    for (i, colour) in colours.iter().enumerate() {
        let x0 = rect.left() + rect.width() * i as f32 / n as f32;
        let x1 = rect.left() + rect.width() * (i + 1) as f32 / n as f32 + 0.5;
        painter.rect_filled(
            egui::Rect::from_min_max(egui::pos2(x0, rect.top()), egui::pos2(x1, rect.bottom())),
            0.0,
            *colour,
        );
    }
    let speed = ((numeric.data_max - numeric.data_min).abs() / 200.0).max(1e-6);
    ui.horizontal(|ui| {
        ui.label("min");
        changed |= ui.add(egui::DragValue::new(&mut numeric.min).speed(speed)).changed();
        ui.label("max");
        changed |= ui.add(egui::DragValue::new(&mut numeric.max).speed(speed)).changed();
    });
    ui.horizontal(|ui| {
        egui::ComboBox::from_label("map")
            .selected_text(numeric.colour_map.name())
            .show_ui(ui, |ui| {
                for map in ColourMap::ALL {
                    changed |= ui.selectable_value(&mut numeric.colour_map, map, map.name()).changed();
                }
            });
        if ui
            .small_button("full range")
            .on_hover_text(format!("{:.3} … {:.3}", numeric.data_min, numeric.data_max))
            .clicked()
        {
            numeric.min = numeric.data_min;
            numeric.max = numeric.data_max;
            changed = true;
        }
    });
    ui.colored_label(crate::palettes::MISSING_COLOUR, "grey: no value");
    if changed {
        if numeric.max <= numeric.min {
            numeric.max = numeric.min + 1e-6;
        }
        cells.numeric_changed();
    }
}

fn transcripts_section_ui(ui: &mut egui::Ui, app: &mut ViewerApp) {
    let mut load = false;
    let Some(cells) = &mut app.cells else { return };
    let has_file = cells.bundle.files.transcripts.is_some();
    match &mut cells.transcripts {
        None => {
            ui.horizontal(|ui| {
                ui.heading("Transcripts");
            });
            if has_file {
                load = ui
                    .button("Show transcripts")
                    .on_hover_text("Reads transcripts with qv of 20 or more in the background")
                    .clicked();
            } else {
                ui.small("this bundle has no transcripts file");
            }
        }
        Some(layer) => {
            ui.horizontal(|ui| {
                ui.checkbox(&mut layer.visible, RichText::new("Transcripts").heading());
                ui.label(format!("{}", layer.transcripts.len()));
            });
            ui.add(egui::Slider::new(&mut layer.opacity, 0.0..=1.0).text("opacity"));
            ui.add(egui::Slider::new(&mut layer.radius_px, 0.5..=6.0).text("size (px)"));
            ui.horizontal(|ui| {
                if ui.small_button("all genes").clicked() {
                    layer.gene_visible.iter_mut().for_each(|v| *v = true);
                }
                if ui.small_button("none").clicked() {
                    layer.gene_visible.iter_mut().for_each(|v| *v = false);
                }
            });
            egui::ScrollArea::vertical()
                .id_salt("transcript_genes")
                .max_height(180.0)
                .show(ui, |ui| {
                    egui::Grid::new("transcript_genes_grid").num_columns(3).show(ui, |ui| {
                        let genes = layer.transcripts.genes.clone();
                        for (g, name) in genes.iter().enumerate() {
                            ui.color_edit_button_srgba(&mut layer.gene_colours[g]);
                            ui.checkbox(&mut layer.gene_visible[g], name.as_str());
                            ui.label(format!("{}", layer.gene_counts[g]));
                            ui.end_row();
                        }
                    });
                });
        }
    }
    if load {
        app.load_transcripts();
    }
}

fn inspector_ui(ui: &mut egui::Ui, app: &mut ViewerApp) {
    let (Some(cells), Some(cell)) = (&app.cells, app.pinned_cell) else {
        return;
    };
    let Some(info) = cells.cell_info(cell) else {
        return;
    };
    ui.separator();
    ui.horizontal(|ui| {
        ui.heading("Inspector");
        if ui.small_button("Unpin").clicked() {
            app.pinned_cell = None;
        }
    });
    crate::viewer::cell_info_ui(ui, &info);
}

/// The landmark alignment window: pairs, residual, apply.
pub fn landmark_window_ui(ctx: &egui::Context, app: &mut ViewerApp) {
    if app.landmarks.is_none() {
        return;
    }
    let pixel_size_um = app.pixel_size_um();
    let mut open = true;
    let mut apply = None;
    egui::Window::new("Align slide by landmarks")
        .open(&mut open)
        .default_width(340.0)
        // Top right, over the properties panel rather than the tissue being clicked.
        .default_pos(ctx.content_rect().right_top() + egui::vec2(-360.0, 60.0))
        .show(ctx, |ui| {
            let Some(tool) = &mut app.landmarks else { return };
            ui.label(
                "Click a feature on the slide (yellow), then the same feature among the cells (cyan). \
                 Three or more pairs fit an affine map; hide a layer or lower its opacity to see the other.",
            );
            egui::Grid::new("landmark_pairs")
                .num_columns(3)
                .striped(true)
                .show(ui, |ui| {
                    ui.strong("#");
                    ui.strong("slide px");
                    ui.strong("cells µm");
                    ui.end_row();
                    for (i, pair) in tool.pairs.iter().enumerate() {
                        ui.label(format!("{}", i + 1));
                        ui.label(format!("{:.0}, {:.0}", pair.slide_px.x, pair.slide_px.y));
                        ui.label(format!("{:.1}, {:.1}", pair.world_um.x, pair.world_um.y));
                        ui.end_row();
                    }
                });
            match tool.fit() {
                Some(fit) => {
                    ui.label(format!(
                        "Residual: {:.2} µm RMS, {:.2} µm max over {} pairs",
                        fit.rms_residual,
                        fit.max_residual,
                        tool.pairs.len()
                    ));
                }
                None => {
                    ui.label(RichText::new("Needs 3 pairs not on one line").color(Color32::LIGHT_GRAY));
                }
            }
            ui.horizontal(|ui| {
                if ui.button("Undo last").clicked() {
                    tool.undo();
                }
                let fit = tool.xenium_px_from_slide_px(pixel_size_um);
                if ui.add_enabled(fit.is_some(), egui::Button::new("Apply")).clicked() {
                    apply = fit;
                }
            });
        });
    if let Some((affine, rms)) = apply {
        app.alignment = Some(SlideAlignment {
            path: None,
            xenium_px_from_slide_px: affine,
            rms_residual_um: Some(rms),
        });
        app.place_slide();
        app.landmarks = None;
        app.toasts.note(format!(
            "Slide aligned by landmarks (residual {rms:.2} µm RMS). Save it from the layers panel."
        ));
    }
    if !open {
        app.landmarks = None;
    }
}
