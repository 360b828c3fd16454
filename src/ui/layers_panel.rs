//! The layers panel: the slide (visibility, opacity, how it is placed, alignment actions), the
//! morphology images (each channel's colour, contrast over its histogram, gamma), the
//! cells (visibility, opacity, fills and outlines, colouring by a column or a gene, the legend or
//! colour bar), the transcripts (per-gene colours), and the pinned cell's inspector. Every change
//! is sent as an edit.

use egui::RichText;

use crate::document::edit::{CellDisplay, SlideStyle, TranscriptStyle};
use crate::document::{DocumentState, Edit, SlideAlignment};
use crate::layers::cell_layer::{CellLayer, ColourBy};
use crate::layers::morphology_layer::{ChannelStyle, MorphologyChannel, MorphologyLayer};
use crate::layers::palettes::{ColourMap, MISSING_COLOUR};
use crate::ui::dialogs::{DialogPurpose, GroupSource};
use crate::ui::{Command, PanelContext};
use crate::util::display_name;
use crate::viewer::overlays::cell_info_ui;

/// The layers panel's own state.
#[derive(Debug, Default)]
pub struct LayersPanelState {
    /// What the gene list is filtered by.
    pub gene_filter: String,
    /// Which features the list offers: genes (the default), proteins, or the controls.
    pub feature_type: Option<String>,
}

pub fn layers_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, state: &mut LayersPanelState) {
    egui::ScrollArea::vertical().show(ui, |ui| {
        slide_section_ui(ui, cx);
        if let Some(morphology) = &cx.document.morphology {
            ui.separator();
            morphology_section_ui(ui, cx, morphology);
        }
        if let Some(cells) = &cx.document.cells {
            ui.separator();
            cells_section_ui(ui, cx, cells, state);
            ui.separator();
            transcripts_section_ui(ui, cx, cells);
            inspector_ui(ui, cx, cells);
        }
    });
}

/// How the slide is placed in world, in words.
fn placement_text(doc: &DocumentState, has_physical_scale: bool) -> String {
    match &doc.alignment {
        // A SpatialData image: its folder, placed by its coordinate transformation.
        Some(SlideAlignment { path: Some(path), .. })
            if !path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) =>
        {
            format!("placed by the SpatialData transformation of {}", display_name(path))
        }
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
        None if has_physical_scale => "placed by its µm per pixel (no alignment)".to_owned(),
        None => "no alignment and no µm per pixel".to_owned(),
    }
}

fn slide_section_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>) {
    let doc = cx.document;
    let Some(slide) = &doc.slide else {
        return;
    };
    let before = SlideStyle {
        visible: slide.layer.visible,
        opacity: slide.layer.opacity,
    };
    let mut style = before;
    ui.checkbox(&mut style.visible, RichText::new("Slide").heading());
    ui.label(display_name(&slide.path))
        .on_hover_text(slide.path.display().to_string());
    ui.add(
        egui::Slider::new(&mut style.opacity, 0.0..=1.0)
            .text("opacity")
            .show_value(false),
    );
    if style != before {
        cx.edit(Edit::SlideStyle(style));
    }
    ui.small(placement_text(doc, slide.layer.has_physical_scale))
        .on_hover_text(format!("Xenium pixel size {} µm", doc.pixel_size_um()));
    ui.horizontal_wrapped(|ui| {
        if ui
            .button("Load alignment…")
            .on_hover_text("A Xenium Explorer alignment CSV: H&E pixel to Xenium pixel")
            .clicked()
        {
            cx.send(Command::AskForFile(DialogPurpose::Alignment));
        }
        if ui
            .add_enabled(doc.cells.is_some(), egui::Button::new("Align by landmarks…"))
            .on_hover_text("Click matching points on the slide and among the cells")
            .clicked()
        {
            cx.send(Command::StartLandmarks);
        }
        if ui
            .add_enabled(doc.alignment.is_some(), egui::Button::new("Save alignment…"))
            .clicked()
        {
            cx.send(Command::AskForFile(DialogPurpose::SaveAlignment));
        }
        if ui
            .add_enabled(doc.alignment.is_some(), egui::Button::new("Reset"))
            .on_hover_text("Place the slide by its µm per pixel again")
            .clicked()
        {
            cx.edit(Edit::ResetAlignment);
        }
    });
}

/// The morphology images: the layer's visibility and opacity, then each channel's visibility,
/// colour, contrast window over its histogram, and gamma.
fn morphology_section_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, morphology: &MorphologyLayer) {
    let before = SlideStyle {
        visible: morphology.visible,
        opacity: morphology.opacity,
    };
    let mut style = before;
    ui.checkbox(&mut style.visible, RichText::new("Morphology").heading())
        .on_hover_text("The bundle's fluorescence images, added channel by channel");
    for path in &morphology.paths {
        ui.small(display_name(path)).on_hover_text(path.display().to_string());
    }
    ui.add(egui::Slider::new(&mut style.opacity, 0.0..=1.0).text("opacity"));
    if style != before {
        cx.edit(Edit::MorphologyStyle(style));
    }
    if morphology.failed_tile_count() > 0
        && let Some(error) = morphology.first_tile_error()
    {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            format!("{} tiles failed: {error}", morphology.failed_tile_count()),
        );
    }
    for (index, channel) in morphology.channels.iter().enumerate() {
        ui.push_id(("morphology-channel", index), |ui| {
            channel_ui(ui, cx, morphology, index, channel);
        });
    }
}

fn channel_ui(
    ui: &mut egui::Ui,
    cx: &PanelContext<'_>,
    morphology: &MorphologyLayer,
    index: usize,
    channel: &MorphologyChannel,
) {
    let before = channel.style;
    let mut style = before;
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        ui.color_edit_button_srgb(&mut style.color);
        ui.checkbox(&mut style.visible, RichText::new(&channel.name).strong())
            .on_hover_text(format!("{}-bit", channel.bits_per_sample));
    });
    if style.visible {
        egui::CollapsingHeader::new("Contrast")
            .id_salt(("channel-contrast", index))
            .show(ui, |ui| contrast_ui(ui, morphology, index, channel, &mut style));
    }
    style.window_max = style.window_max.max(style.window_min + 1.0);
    if style != before {
        cx.edit(Edit::MorphologyChannel(index, style));
    }
}

/// A channel's histogram with its window, the window's sliders, gamma, and automatic contrast.
fn contrast_ui(
    ui: &mut egui::Ui,
    morphology: &MorphologyLayer,
    index: usize,
    channel: &MorphologyChannel,
    style: &mut ChannelStyle,
) {
    histogram_ui(ui, channel, style);
    let top = f32::from(channel.histogram.top_value).max(style.window_max).max(1.0);
    ui.add(
        egui::Slider::new(&mut style.window_min, 0.0..=top)
            .text("min")
            .integer(),
    );
    ui.add(
        egui::Slider::new(&mut style.window_max, 0.0..=top)
            .text("max")
            .integer(),
    );
    ui.add(
        egui::Slider::new(&mut style.gamma, 0.2..=5.0)
            .logarithmic(true)
            .text("gamma"),
    );
    ui.horizontal(|ui| {
        if ui
            .small_button("Auto")
            .on_hover_text("Contrast from the whole image's histogram (0.1–99.9 percentile)")
            .clicked()
        {
            let (lo, hi) = channel.histogram.auto_window;
            set_window(style, lo, hi);
        }
        if ui
            .small_button("Auto (view)")
            .on_hover_text("Contrast from what the view shows now")
            .clicked()
            && let Some((lo, hi)) = morphology.window_from_view(index)
        {
            set_window(style, lo, hi);
        }
    });
}

fn set_window(style: &mut ChannelStyle, lo: u16, hi: u16) {
    style.window_min = f32::from(lo);
    style.window_max = f32::from(hi.max(lo + 1));
    style.gamma = 1.0;
}

/// The channel's histogram (log counts) in its colour, with the window's ends marked.
fn histogram_ui(ui: &mut egui::Ui, channel: &MorphologyChannel, style: &ChannelStyle) {
    let width = ui.available_width().min(260.0);
    let (rect, response) = ui.allocate_exact_size(egui::vec2(width, 36.0), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, ui.visuals().extreme_bg_color);
    let bins = &channel.histogram.bins;
    let peak = bins.iter().copied().max().unwrap_or(0).max(1) as f32;
    let colour = egui::Color32::from_rgb(style.color[0], style.color[1], style.color[2]);
    let bar_width = rect.width() / bins.len() as f32;
    for (i, &count) in bins.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let height = ((count as f32).ln_1p() / peak.ln_1p()) * rect.height();
        let x = rect.left() + i as f32 * bar_width;
        painter.rect_filled(
            egui::Rect::from_min_max(
                egui::pos2(x, rect.bottom() - height),
                egui::pos2(x + bar_width.max(1.0), rect.bottom()),
            ),
            0.0,
            colour.gamma_multiply(0.8),
        );
    }
    let top = f32::from(channel.histogram.top_value).max(1.0);
    let marker = |value: f32| rect.left() + (value / top).clamp(0.0, 1.0) * rect.width();
    let stroke = egui::Stroke::new(1.5, ui.visuals().strong_text_color());
    for value in [style.window_min, style.window_max] {
        let x = marker(value);
        painter.line_segment([egui::pos2(x, rect.top()), egui::pos2(x, rect.bottom())], stroke);
    }
    response.on_hover_text(format!(
        "Intensities 0–{} (log counts of the whole image); lines: the contrast window",
        channel.histogram.top_value
    ));
}

fn cells_section_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, cells: &CellLayer, state: &mut LayersPanelState) {
    let before = CellDisplay {
        show_cells: cells.show_cells,
        show_nuclei: cells.show_nuclei,
        style: cells.style,
        uniform_colour: cells.uniform_colour,
    };
    let mut display = before;
    ui.horizontal(|ui| {
        ui.checkbox(&mut display.show_cells, RichText::new("Cells").heading());
        ui.label(format!("{}", cells.len()));
        explorer_groups_menu_ui(ui, cx, cells);
    });
    ui.label(display_name(&cells.dir))
        .on_hover_text(cells.dir.display().to_string());
    let has_nuclei = cells.bundle.nucleus_boundaries.is_some();
    ui.add_enabled(has_nuclei, egui::Checkbox::new(&mut display.show_nuclei, "Nuclei"));
    let style = &mut display.style;
    ui.add(egui::Slider::new(&mut style.opacity, 0.0..=1.0).text("opacity"));
    ui.add(egui::Slider::new(&mut style.cell_fill_alpha, 0.0..=1.0).text("fill"));
    ui.add(egui::Slider::new(&mut style.cell_line_alpha, 0.0..=1.0).text("outline"));
    if has_nuclei {
        ui.add(egui::Slider::new(&mut style.nucleus_fill_alpha, 0.0..=1.0).text("nucleus fill"));
        ui.add(egui::Slider::new(&mut style.nucleus_line_alpha, 0.0..=1.0).text("nucleus outline"));
    }
    ui.add_space(4.0);
    colour_by_ui(ui, cx, cells, state);
    ui.add_space(4.0);
    match &cells.colour_by {
        ColourBy::Category(_) => legend_ui(ui, cx, cells),
        ColourBy::Numeric(_) | ColourBy::Gene(_) => colour_bar_ui(ui, cx, cells),
        ColourBy::Uniform => {
            ui.horizontal(|ui| {
                ui.color_edit_button_srgba(&mut display.uniform_colour);
                ui.label("colour");
            });
        }
    }
    if display != before {
        cx.edit(Edit::CellDisplay(display));
    }
}

fn colour_by_label(cells: &CellLayer) -> String {
    match &cells.colour_by {
        ColourBy::Uniform => "one colour".to_owned(),
        ColourBy::Category(name) | ColourBy::Numeric(name) => name.clone(),
        ColourBy::Gene(feature) => format!("gene {}", cells.feature_name(*feature)),
    }
}

fn colour_by_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, cells: &CellLayer, state: &mut LayersPanelState) {
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
        cx.edit(Edit::ColourBy(choice));
    }
    let Some(counts) = &cells.bundle.counts else {
        return;
    };
    // Feature types in the matrix, genes first: controls (negative control probes and codewords,
    // genomic controls, unassigned codewords) are offered only when asked for.
    let mut types: Vec<&str> = Vec::new();
    for feature in &counts.features {
        if !types.contains(&feature.feature_type.as_str()) {
            types.push(&feature.feature_type);
        }
    }
    types.sort_by_key(|t| match *t {
        cs_xenium::GENE_EXPRESSION => 0,
        cs_xenium::PROTEIN_EXPRESSION => 1,
        _ => 2,
    });
    let shown_type = state
        .feature_type
        .clone()
        .filter(|t| types.contains(&t.as_str()))
        .unwrap_or_else(|| types.first().map_or_else(String::new, |t| (*t).to_owned()));
    let heading = match shown_type.as_str() {
        cs_xenium::GENE_EXPRESSION => "Colour by gene".to_owned(),
        cs_xenium::PROTEIN_EXPRESSION => "Colour by protein".to_owned(),
        other => format!("Colour by feature ({other})"),
    };
    egui::CollapsingHeader::new(heading)
        .id_salt("gene_picker")
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label("Find");
                ui.add(egui::TextEdit::singleline(&mut state.gene_filter).desired_width(110.0));
                if types.len() > 1 {
                    egui::ComboBox::from_id_salt("feature_type")
                        .selected_text(&shown_type)
                        .width(120.0)
                        .show_ui(ui, |ui| {
                            for t in &types {
                                if ui.selectable_label(shown_type == *t, *t).clicked() {
                                    state.feature_type = Some((*t).to_owned());
                                }
                            }
                        })
                        .response
                        .on_hover_text("Which features to list: genes, proteins, or a kind of control");
                }
            });
            let filter = state.gene_filter.to_lowercase();
            egui::ScrollArea::vertical()
                .id_salt("gene_list")
                .max_height(160.0)
                .show(ui, |ui| {
                    for (i, feature) in counts.features.iter().enumerate() {
                        if feature.feature_type != shown_type
                            || (!filter.is_empty() && !feature.name.to_lowercase().contains(&filter))
                        {
                            continue;
                        }
                        let selected = cells.colour_by == ColourBy::Gene(i as u32);
                        if ui.selectable_label(selected, &feature.name).clicked() {
                            cx.send(Command::ColourByGene(i as u32));
                        }
                    }
                });
        });
}

/// Xenium Explorer cell groups: import a CSV or analysis.zarr.zip as columns, export the
/// categorical column cells are coloured by.
fn explorer_groups_menu_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, cells: &CellLayer) {
    ui.menu_button("Groups", |ui| {
        if ui
            .button("Import Xenium Explorer groups…")
            .on_hover_text("A cell_id,group CSV, or an analysis.zarr.zip: each grouping becomes a column")
            .clicked()
        {
            cx.send(Command::AskForFile(DialogPurpose::ImportCellGroups));
            ui.close();
        }
        match &cells.colour_by {
            ColourBy::Category(name) => {
                if ui
                    .button(format!("Export {name} for Xenium Explorer…"))
                    .on_hover_text("As a cell_id,group CSV (.csv) or an analysis.zarr.zip grouping (.zarr.zip)")
                    .clicked()
                {
                    cx.send(Command::AskForFile(DialogPurpose::ExportCellGroups(
                        GroupSource::Column(name.clone()),
                    )));
                    ui.close();
                }
            }
            _ => {
                ui.label("Colour by a categorical column to export it as groups.");
            }
        }
    })
    .response
    .on_hover_text("Cell groups to and from Xenium Explorer");
}

fn legend_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, cells: &CellLayer) {
    let Some(classes) = cells.active_classes() else {
        return;
    };
    ui.horizontal(|ui| {
        if ui.small_button("show all").clicked() {
            cx.edit(Edit::AllClassesVisible(true));
        }
        if ui.small_button("hide all").clicked() {
            cx.edit(Edit::AllClassesVisible(false));
        }
    });
    egui::Grid::new("legend").num_columns(3).striped(true).show(ui, |ui| {
        for (i, class) in classes.iter().enumerate() {
            let (mut colour, mut visible) = (class.colour, class.visible);
            ui.color_edit_button_srgba(&mut colour);
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
                visible = !visible;
            }
            ui.label(format!("{}", class.cells));
            ui.end_row();
            if (colour, visible) != (class.colour, class.visible) {
                cx.edit(Edit::ClassStyle {
                    class: i,
                    colour,
                    visible,
                });
            }
        }
    });
}

fn colour_bar_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, cells: &CellLayer) {
    let Some(numeric) = &cells.numeric else {
        ui.spinner();
        return;
    };
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
    let (mut min, mut max, mut colour_map) = (numeric.min, numeric.max, numeric.colour_map);
    let speed = ((numeric.data_max - numeric.data_min).abs() / 200.0).max(1e-6);
    ui.horizontal(|ui| {
        ui.label("min");
        ui.add(egui::DragValue::new(&mut min).speed(speed));
        ui.label("max");
        ui.add(egui::DragValue::new(&mut max).speed(speed));
    });
    ui.horizontal(|ui| {
        egui::ComboBox::from_label("map")
            .selected_text(colour_map.name())
            .show_ui(ui, |ui| {
                for map in ColourMap::ALL {
                    ui.selectable_value(&mut colour_map, map, map.name());
                }
            });
        if ui
            .small_button("full range")
            .on_hover_text(format!("{:.3} … {:.3}", numeric.data_min, numeric.data_max))
            .clicked()
        {
            min = numeric.data_min;
            max = numeric.data_max;
        }
    });
    ui.colored_label(MISSING_COLOUR, "grey: no value");
    if (min, max, colour_map) != (numeric.min, numeric.max, numeric.colour_map) {
        cx.edit(Edit::NumericStyle { min, max, colour_map });
    }
}

fn transcripts_section_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, cells: &CellLayer) {
    let has_file = cells.bundle.files.transcripts.is_some();
    let Some(layer) = &cells.transcripts else {
        ui.horizontal(|ui| {
            ui.heading("Transcripts");
        });
        if has_file {
            if ui
                .button("Show transcripts")
                .on_hover_text("Reads transcripts with qv of 20 or more in the background")
                .clicked()
            {
                cx.send(Command::LoadTranscripts);
            }
        } else {
            ui.small("this bundle has no transcripts file");
        }
        return;
    };
    let before = TranscriptStyle {
        visible: layer.visible,
        opacity: layer.opacity,
        radius_px: layer.radius_px,
        min_qv: layer.min_qv,
    };
    let mut style = before;
    ui.horizontal(|ui| {
        ui.checkbox(&mut style.visible, RichText::new("Transcripts").heading());
        ui.label(format!("{} shown of {}", layer.shown_count(), layer.len()))
            .on_hover_text("Transcripts of the ticked genes, and of all features, at the quality threshold");
    });
    ui.add(egui::Slider::new(&mut style.opacity, 0.0..=1.0).text("opacity"));
    ui.add(egui::Slider::new(&mut style.radius_px, 0.5..=6.0).text("size (px)"));
    ui.add(egui::Slider::new(&mut style.min_qv, 0..=40).text("min qv"))
        .on_hover_text("Phred-scaled quality: 20 (Xenium's default) keeps calls with at most 1% error");
    if style != before {
        cx.edit(Edit::TranscriptStyle(style));
    }
    ui.horizontal(|ui| {
        if ui.small_button("all genes").clicked() {
            cx.edit(Edit::AllGenesVisible(true));
        }
        if ui.small_button("none").clicked() {
            cx.edit(Edit::AllGenesVisible(false));
        }
        let controls = layer.control_count();
        if controls > 0 {
            let shown = layer
                .gene_visible
                .iter()
                .zip(layer.categories())
                .any(|(v, c)| *v && c.is_control());
            let mut show = shown;
            ui.checkbox(&mut show, format!("controls ({controls})")).on_hover_text(
                "Negative control probes and codewords, genomic controls, unassigned and deprecated codewords",
            );
            if show != shown {
                cx.edit(Edit::ControlsVisible(show));
            }
        }
    });
    let search_id = egui::Id::unique("transcript_gene_search");
    let mut search: String = ui.data(|d| d.get_temp(search_id)).unwrap_or_default();
    ui.horizontal(|ui| {
        ui.label("Find");
        ui.add(
            egui::TextEdit::singleline(&mut search)
                .hint_text("gene name")
                .desired_width(140.0),
        );
    });
    ui.data_mut(|d| d.insert_temp(search_id, search.clone()));
    let needle = search.to_lowercase();
    // Controls are listed only while shown; the list is ordered by count, most first.
    let mut listed: Vec<usize> = (0..layer.index.genes.len())
        .filter(|&g| {
            let is_control = layer.categories().get(g).is_some_and(|c| c.is_control());
            (!is_control || layer.gene_visible[g])
                && (needle.is_empty() || layer.index.genes[g].to_lowercase().contains(&needle))
        })
        .collect();
    listed.sort_by(|&a, &b| layer.gene_counts[b].cmp(&layer.gene_counts[a]));
    if !needle.is_empty() && !listed.is_empty() {
        ui.horizontal(|ui| {
            if ui.small_button("show only these").clicked() {
                cx.edit(Edit::OnlyGenesVisible(listed.clone()));
            }
        });
    }
    let row_height = ui.spacing().interact_size.y;
    egui::ScrollArea::vertical()
        .id_salt("transcript_genes")
        .max_height(180.0)
        .show_rows(ui, row_height, listed.len(), |ui, rows| {
            for &g in &listed[rows] {
                ui.horizontal(|ui| {
                    let (mut colour, mut visible) = (layer.gene_colours[g], layer.gene_visible[g]);
                    ui.color_edit_button_srgba(&mut colour);
                    ui.checkbox(&mut visible, layer.index.genes[g].as_str());
                    ui.weak(format!("{}", layer.gene_counts[g]));
                    if (colour, visible) != (layer.gene_colours[g], layer.gene_visible[g]) {
                        cx.edit(Edit::GeneStyle {
                            gene: g,
                            colour,
                            visible,
                        });
                    }
                });
            }
        });
}

/// The pinned cell: its id, class, areas, counts, position and top genes.
fn inspector_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, cells: &CellLayer) {
    let Some(cell) = cx.viewer.pinned_cell else {
        return;
    };
    let Some(info) = cells.cell_info(cell) else {
        return;
    };
    ui.separator();
    ui.horizontal(|ui| {
        ui.heading("Inspector");
        if ui.small_button("Unpin").clicked() {
            cx.send(Command::UnpinCell);
        }
    });
    cell_info_ui(ui, &info);
}
