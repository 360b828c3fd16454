//! The right panel: the selections tab (tools, the list of selections, the active selection's
//! numbers and its composition against the rest or another selection) and the slide tab.

use cs_analysis::{CellSet, Composition, composition_between, composition_vs_rest};
use egui::{Color32, RichText};
use egui_plot::{Bar, BarChart, Plot, PlotPoint, Text};

use crate::app::{DialogPurpose, PlotKind, RightTab, ViewerApp};
use crate::palettes::class_colour;
use crate::tools::{Tool, combine_from_modifiers};

/// The composition shown in the panel, recomputed only when its inputs change.
#[derive(Debug, Default)]
pub struct CompositionView {
    key: Option<(String, CellSet, Option<CellSet>)>,
    pub result: Option<Result<Composition, String>>,
}

impl CompositionView {
    /// The composition of `group` against `reference` (None: the rest of the cells) for the
    /// categorical column `column`.
    pub fn update(
        &mut self,
        column: &str,
        codes: &[u32],
        categories: usize,
        group: &CellSet,
        reference: Option<&CellSet>,
    ) -> Option<&Result<Composition, String>> {
        // Compared in place: the sets are cloned only when they changed.
        let unchanged = self
            .key
            .as_ref()
            .is_some_and(|(c, g, r)| c == column && g == group && r.as_ref() == reference);
        if !unchanged {
            let result = match reference {
                None => composition_vs_rest(codes, categories, group),
                Some(reference) => composition_between(codes, categories, group, reference),
            };
            self.result = Some(result.map_err(|e| e.to_string()));
            self.key = Some((column.to_owned(), group.clone(), reference.cloned()));
        }
        self.result.as_ref()
    }
}

/// "SVG…" and "PNG…" buttons that export one of the panel's plots.
fn plot_export_buttons(ui: &mut egui::Ui, app: &mut ViewerApp, plot: PlotKind) {
    if ui
        .small_button("SVG…")
        .on_hover_text("The plot as a vector file")
        .clicked()
    {
        app.ask_for_file(DialogPurpose::ExportPlot { plot, png: false });
    }
    if ui.small_button("PNG…").on_hover_text("The plot as shown").clicked() {
        app.ask_for_file(DialogPurpose::ExportPlot { plot, png: true });
    }
}

/// Significance marks for a q-value.
pub fn stars(q: f64) -> &'static str {
    if q < 0.001 {
        "***"
    } else if q < 0.01 {
        "**"
    } else if q < 0.05 {
        "*"
    } else {
        ""
    }
}

pub fn right_panel_ui(ui: &mut egui::Ui, app: &mut ViewerApp) {
    // Without cells there is nothing to select or model: the slide's properties show instead,
    // and the chosen tab comes back when cells arrive (whichever finished opening first).
    let has_cells = app.cells.is_some();
    let shown = match app.right_tab {
        RightTab::Selections | RightTab::Models if !has_cells => RightTab::Slide,
        tab => tab,
    };
    let tab = |text: &str| RichText::new(text).size(16.0).strong();
    let mut chosen = None;
    ui.horizontal(|ui| {
        let mut item = |ui: &mut egui::Ui, value: RightTab, text: &str| {
            if ui.selectable_label(shown == value, tab(text)).clicked() {
                chosen = Some(value);
            }
        };
        if has_cells {
            item(ui, RightTab::Selections, "Selections");
        }
        item(ui, RightTab::Annotations, "Annotations");
        if has_cells {
            item(ui, RightTab::Models, "Models");
        }
        if app.slide.is_some() {
            item(ui, RightTab::Slide, "Slide");
        }
    });
    if let Some(tab) = chosen {
        app.right_tab = tab;
    }
    ui.separator();
    match if chosen.is_some() { app.right_tab } else { shown } {
        RightTab::Slide if app.slide.is_some() => crate::panels::properties_ui(ui, app),
        RightTab::Annotations => {
            egui::ScrollArea::vertical()
                .id_salt("annotations-scroll")
                .show(ui, |ui| crate::annotations_ui::annotations_panel_ui(ui, app));
        }
        RightTab::Models => {
            egui::ScrollArea::vertical()
                .id_salt("models-scroll")
                .show(ui, |ui| crate::models_panel::models_ui(ui, app));
        }
        _ => {
            egui::ScrollArea::vertical().show(ui, |ui| {
                selections_ui(ui, app);
                neighbourhood_ui(ui, app);
            });
        }
    }
}

fn graph_label(kind: cs_analysis::GraphKind) -> String {
    match kind {
        cs_analysis::GraphKind::Delaunay => "Delaunay".to_owned(),
        cs_analysis::GraphKind::Radius { radius_um } => format!("radius {radius_um} µm"),
        cs_analysis::GraphKind::Knn { k } => format!("{k} nearest"),
    }
}

/// Neighbourhood enrichment (squidpy's `nhood_enrichment`): settings, run/cancel, and the
/// z-score heatmap.
fn neighbourhood_ui(ui: &mut egui::Ui, app: &mut ViewerApp) {
    let Some(column) = stats_column(app) else { return };
    ui.separator();
    ui.strong("Neighbourhood enrichment");
    let settings = &mut app.nhood_settings;
    ui.horizontal(|ui| {
        egui::ComboBox::from_label("graph")
            .selected_text(graph_label(settings.graph))
            .show_ui(ui, |ui| {
                for kind in [
                    cs_analysis::GraphKind::Radius { radius_um: 30.0 },
                    cs_analysis::GraphKind::Knn { k: 6 },
                    cs_analysis::GraphKind::Delaunay,
                ] {
                    let same = std::mem::discriminant(&kind) == std::mem::discriminant(&settings.graph);
                    if ui.selectable_label(same, graph_label(kind)).clicked() && !same {
                        settings.graph = kind;
                    }
                }
            });
        match &mut settings.graph {
            cs_analysis::GraphKind::Radius { radius_um } => {
                ui.add(egui::DragValue::new(radius_um).range(1.0..=500.0).suffix(" µm"));
            }
            cs_analysis::GraphKind::Knn { k } => {
                ui.add(egui::DragValue::new(k).range(1..=50).suffix(" nn"));
            }
            cs_analysis::GraphKind::Delaunay => {}
        }
    });
    ui.horizontal(|ui| {
        ui.add(
            egui::DragValue::new(&mut settings.n_perms)
                .range(10..=10_000)
                .suffix(" permutations"),
        );
        ui.add(egui::DragValue::new(&mut settings.seed).prefix("seed "));
    });
    ui.add_enabled(
        app.selections.active().is_some(),
        egui::Checkbox::new(&mut settings.within_selection, "inside the active selection only"),
    );
    let running = app.nhood.as_ref().is_some_and(|n| n.is_running());
    ui.horizontal(|ui| {
        if running {
            ui.spinner();
            if ui.button("Cancel").clicked() {
                app.cancel_nhood();
            }
        } else if ui
            .button("Run")
            .on_hover_text(format!(
                "Permutation z-scores of neighbouring {column} pairs, as squidpy"
            ))
            .clicked()
        {
            app.run_nhood();
        }
    });
    if let Some(error) = app.nhood.as_ref().and_then(|n| n.error_for(app.nhood_key().as_ref())) {
        ui.colored_label(ui.visuals().error_fg_color, error);
    }
    let (Some(result), Some(cells)) = (app.current_nhood_result(), &app.cells) else {
        return;
    };
    let Some(names) = cells
        .bundle
        .cells
        .categorical_column(&column)
        .map(|c| c.categories.clone())
    else {
        return;
    };
    ui.label(
        RichText::new(format!(
            "{} cells, {} permutations; row: a cell's class, column: its neighbours'",
            result.n_cells, result.n_perms
        ))
        .small()
        .weak(),
    );
    let rect = heatmap_ui(ui, &result, &names);
    app.plot_rects.insert(PlotKind::Heatmap, rect);
    ui.horizontal(|ui| {
        ui.label("heatmap");
        plot_export_buttons(ui, app, PlotKind::Heatmap);
    });
}

/// Diverging colour for a z-score: blue (depleted) through white to red (enriched), saturating
/// at |z| = 10; grey for NaN.
pub fn zscore_colour(z: f64) -> Color32 {
    if !z.is_finite() {
        return Color32::from_gray(120);
    }
    let t = (z / 10.0).clamp(-1.0, 1.0) as f32;
    let lerp = |a: f32, b: f32, t: f32| (a + (b - a) * t).round() as u8;
    if t >= 0.0 {
        Color32::from_rgb(255, lerp(255.0, 40.0, t), lerp(255.0, 40.0, t))
    } else {
        Color32::from_rgb(lerp(255.0, 40.0, -t), lerp(255.0, 90.0, -t), 255)
    }
}

/// Draws the heatmap and returns where.
fn heatmap_ui(ui: &mut egui::Ui, result: &cs_analysis::NhoodEnrichment, names: &[String]) -> egui::Rect {
    let n = result.n_classes.min(names.len());
    if n == 0 {
        return egui::Rect::NOTHING;
    }
    let label_width = 90.0;
    let side = ((ui.available_width() - label_width) / n as f32).clamp(10.0, 36.0);
    let (rect, response) = ui.allocate_exact_size(
        egui::vec2(label_width + side * n as f32, side * n as f32 + 4.0),
        egui::Sense::hover(),
    );
    let painter = ui.painter_at(rect);
    let text_colour = ui.visuals().text_color();
    for (a, name) in names.iter().enumerate().take(n) {
        let y = rect.top() + a as f32 * side;
        painter.text(
            egui::pos2(rect.left() + label_width - 4.0, y + side / 2.0),
            egui::Align2::RIGHT_CENTER,
            name,
            egui::FontId::proportional(11.0),
            text_colour,
        );
        for b in 0..n {
            let cell = egui::Rect::from_min_size(
                egui::pos2(rect.left() + label_width + b as f32 * side, y),
                egui::vec2(side - 1.0, side - 1.0),
            );
            painter.rect_filled(cell, 1.0, zscore_colour(result.zscore(a, b)));
        }
    }
    if let Some(pos) = response.hover_pos() {
        let col = ((pos.x - rect.left() - label_width) / side).floor();
        let row = ((pos.y - rect.top()) / side).floor();
        if col >= 0.0 && row >= 0.0 && (col as usize) < n && (row as usize) < n {
            let (a, b) = (row as usize, col as usize);
            response.on_hover_text(format!(
                "{} next to {}: z = {:.2}, {} neighbour pairs (permutations: {:.1} ± {:.1})",
                names[a],
                names[b],
                result.zscore(a, b),
                result.count(a, b),
                result.perm_mean[a * result.n_classes + b],
                result.perm_std[a * result.n_classes + b]
            ));
        }
    }
    rect
}

/// The tool buttons (also in the toolbar's place when cells are open).
pub fn tools_ui(ui: &mut egui::Ui, app: &mut ViewerApp) {
    ui.horizontal_wrapped(|ui| {
        for tool in Tool::SELECTION {
            let selected = app.tools.tool == tool;
            if ui
                .selectable_label(selected, tool.label())
                .on_hover_text(format!("{} ({:?})", tool.hint(), tool.key()))
                .clicked()
            {
                app.tools.tool = tool;
                app.tools.drawing = None;
            }
        }
    });
    if app.tools.tool == Tool::Brush {
        ui.add(egui::Slider::new(&mut app.tools.brush_radius_points, 3.0..=120.0).text("brush radius (pt)"));
    }
}

fn selections_ui(ui: &mut egui::Ui, app: &mut ViewerApp) {
    tools_ui(ui, app);
    let Some(cells) = &app.cells else { return };
    let (index, cell_count) = (&cells.index, cells.len());
    ui.horizontal(|ui| {
        if ui.button("New selection").clicked() {
            app.selections.create(cell_count);
        }
        if ui
            .add_enabled(app.selections.can_undo(), egui::Button::new("Undo"))
            .on_hover_text("Ctrl+Z")
            .clicked()
        {
            app.selections.undo(index, cell_count);
        }
        if ui
            .add_enabled(app.selections.can_redo(), egui::Button::new("Redo"))
            .on_hover_text("Ctrl+Shift+Z")
            .clicked()
        {
            app.selections.redo(index, cell_count);
        }
    });
    ui.checkbox(&mut app.tools.dim_outside, "Dim cells outside the active selection");
    if app.selections.items.is_empty() {
        ui.add_space(6.0);
        ui.label(
            RichText::new("Pick a tool (Lasso, Polygon, Rectangle, Brush) and draw around cells.")
                .color(ui.visuals().weak_text_color()),
        );
        return;
    }
    ui.add_space(4.0);
    let mut delete = None;
    let mut rename_started = false;
    for (i, selection) in app.selections.items.iter_mut().enumerate() {
        ui.horizontal(|ui| {
            ui.color_edit_button_srgba(&mut selection.colour);
            let edit = ui.add(egui::TextEdit::singleline(&mut selection.name).desired_width(96.0));
            rename_started |= edit.gained_focus();
            let active = app.selections.active == Some(i);
            if ui
                .selectable_label(active, format!("{}", selection.cell_count()))
                .on_hover_text(
                    "Cells in the selection. Click to make it the one the tools edit and the panel describes",
                )
                .clicked()
            {
                app.selections.active = Some(i);
            }
            ui.checkbox(&mut selection.visible, "show");
            if ui.small_button("Delete").clicked() {
                delete = Some(i);
            }
        });
    }
    if rename_started {
        app.selections.remember();
    }
    if let Some(i) = delete {
        app.selections.delete(i);
    }
    let Some(active) = app.selections.active() else {
        return;
    };
    ui.separator();
    ui.label(RichText::new(&active.name).strong().color(active.colour));
    egui::Grid::new("selection_numbers").num_columns(2).show(ui, |ui| {
        ui.label("Cells");
        ui.label(format!("{}", active.cell_count()));
        ui.end_row();
        ui.label("Area");
        ui.label(format_area(active.area_um2));
        ui.end_row();
        ui.label("Density");
        ui.label(
            active
                .density_per_mm2()
                .map_or("–".to_owned(), |d| format!("{d:.0} cells/mm²")),
        );
        ui.end_row();
    });
    let mut compare = app.selections.compare;
    egui::ComboBox::from_label("compared with")
        .selected_text(match app.selections.compared() {
            Some(other) => other.name.clone(),
            None => "the rest of the cells".to_owned(),
        })
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut compare, None, "the rest of the cells");
            for (i, other) in app.selections.items.iter().enumerate() {
                if Some(i) != app.selections.active {
                    ui.selectable_value(&mut compare, Some(i), &other.name);
                }
            }
        });
    app.selections.compare = compare;
    ui.horizontal_wrapped(|ui| {
        if ui
            .button("Import…")
            .on_hover_text("GeoJSON (QuPath) or a Xenium Explorer selection CSV")
            .clicked()
        {
            app.ask_for_file(DialogPurpose::ImportSelections);
        }
        if ui
            .button("GeoJSON…")
            .on_hover_text("The shown selections as QuPath annotations (slide pixels when a slide is open, else µm)")
            .clicked()
        {
            app.ask_for_file(DialogPurpose::ExportGeoJson);
        }
        if ui
            .button("Cells CSV…")
            .on_hover_text("The active selection's cells in Xenium Explorer's layout")
            .clicked()
        {
            app.ask_for_file(DialogPurpose::ExportCellsCsv);
        }
        if ui.button("Stats CSV…").on_hover_text("The composition table").clicked() {
            app.ask_for_file(DialogPurpose::ExportStatsCsv);
        }
    });
    composition_ui(ui, app);
    differential_expression_ui(ui, app);
}

fn differential_expression_ui(ui: &mut egui::Ui, app: &mut ViewerApp) {
    if app.cells.as_ref().is_none_or(|c| c.bundle.counts.is_none()) {
        return;
    }
    ui.separator();
    let running = app.de.as_ref().is_some_and(|d| d.is_running());
    let current = app.current_de_result();
    let failed = app.de.as_ref().and_then(|d| d.error_for(app.de_key().as_ref()));
    ui.horizontal(|ui| {
        ui.strong("Differential expression");
        if running {
            ui.spinner();
        } else if ui
            .button(if current.is_some() { "Recompute" } else { "Compute" })
            .on_hover_text("Wilcoxon rank-sum on log1p(CP10k), tie-corrected, BH-adjusted, like scanpy")
            .clicked()
        {
            app.run_de();
        }
        if current.is_some() && ui.button("CSV…").clicked() {
            app.ask_for_file(DialogPurpose::ExportDeCsv);
        }
    });
    if let Some(error) = failed {
        ui.colored_label(ui.visuals().error_fg_color, error);
    }
    let Some(results) = current else {
        if app.de.is_some() && !running {
            ui.label(RichText::new("The selection changed since the last run.").weak());
        }
        return;
    };
    egui::Grid::new("de_table").num_columns(4).striped(true).show(ui, |ui| {
        ui.strong("gene");
        ui.strong("score");
        ui.strong("log2 FC");
        ui.strong("q");
        ui.end_row();
        let up = results.iter().take(10);
        let down = results.iter().rev().take(5).filter(|r| r.result.score < 0.0);
        for r in up.filter(|r| r.result.score > 0.0).chain(down) {
            ui.label(&r.gene);
            ui.label(format!("{:+.1}", r.result.score));
            ui.label(format!("{:+.2}", r.result.log2_fold_change));
            ui.label(format!("{:.1e}", r.result.p_adjusted));
            ui.end_row();
        }
    });
    let rect = volcano_ui(ui, &results);
    app.plot_rects.insert(PlotKind::Volcano, rect);
    ui.horizontal(|ui| {
        ui.label("volcano");
        plot_export_buttons(ui, app, PlotKind::Volcano);
    });
}

/// log2 fold change against −log10 q, significant genes (q < 0.05, |log2 FC| > 1) named.
fn volcano_ui(ui: &mut egui::Ui, results: &[crate::analysis_jobs::NamedDe]) -> egui::Rect {
    use egui_plot::{PlotPoints, Points};
    let point = |r: &crate::analysis_jobs::NamedDe| {
        [
            r.result.log2_fold_change.clamp(-20.0, 20.0),
            -r.result.p_adjusted.max(1e-300).log10(),
        ]
    };
    let significant =
        |r: &&crate::analysis_jobs::NamedDe| r.result.p_adjusted < 0.05 && r.result.log2_fold_change.abs() > 1.0;
    let (hits, rest): (Vec<_>, Vec<_>) = results.iter().partition(|r| significant(r));
    let shown = Plot::new("volcano")
        .height(180.0)
        .x_axis_label("log2 fold change")
        .y_axis_label("-log10 q")
        .allow_scroll(false)
        .show(ui, |plot| {
            plot.points(
                Points::new("genes", PlotPoints::new(rest.iter().map(|r| point(r)).collect()))
                    .radius(2.0)
                    .color(Color32::from_gray(160)),
            );
            plot.points(
                Points::new(
                    "q < 0.05, |log2 FC| > 1",
                    PlotPoints::new(hits.iter().map(|r| point(r)).collect()),
                )
                .radius(3.0)
                .color(Color32::from_rgb(230, 80, 60)),
            );
            for r in hits.iter().take(12) {
                let [x, y] = point(r);
                plot.text(Text::new("", PlotPoint::new(x, y + 0.4), r.gene.as_str()));
            }
        });
    shown.response.rect
}

/// The column the statistics use: the one cells are coloured by, else the chosen one, else the
/// first categorical column.
pub fn stats_column(app: &ViewerApp) -> Option<String> {
    let cells = app.cells.as_ref()?;
    let columns = &cells.bundle.cells.categorical;
    let coloured = match &cells.colour_by {
        crate::cell_layer::ColourBy::Category(name) => Some(name.clone()),
        _ => None,
    };
    app.stats_column
        .clone()
        .filter(|c| columns.iter().any(|(n, _)| n == c))
        .or(coloured)
        .or_else(|| columns.first().map(|(n, _)| n.clone()))
}

fn composition_ui(ui: &mut egui::Ui, app: &mut ViewerApp) {
    let Some(column_name) = stats_column(app) else {
        ui.label(RichText::new("No categorical column to compare").weak());
        return;
    };
    let (Some(cells), Some(active)) = (&app.cells, app.selections.active()) else {
        return;
    };
    // While a shape is being drawn, the numbers follow it live.
    let drawing_set = app.tools.drawn_cells(&cells.index, cells.len()).map(|drawn| {
        let modifiers = ui.input(|i| i.modifiers);
        let mut prospective = active.cells.clone();
        prospective.combine(drawn, combine_from_modifiers(modifiers));
        prospective
    });
    let group = drawing_set.as_ref().unwrap_or(&active.cells);
    let Some(column) = cells.bundle.cells.categorical_column(&column_name) else {
        return;
    };
    let reference = app.selections.compared().map(|s| &s.cells);
    let reference_name = app.selections.compared().map_or("rest".to_owned(), |s| s.name.clone());
    let class_colours: Vec<Color32> = cells
        .classes
        .iter()
        .find(|(n, _)| *n == column_name)
        .map(|(_, classes)| classes.iter().map(|c| c.colour).collect())
        .unwrap_or_else(|| (0..column.categories.len()).map(class_colour).collect());
    let categories = column.categories.clone();
    let result = app
        .composition
        .update(&column_name, &column.codes, categories.len(), group, reference)
        .cloned();
    ui.separator();
    let mut chosen = None;
    egui::ComboBox::from_label("composition of")
        .selected_text(&column_name)
        .show_ui(ui, |ui| {
            for (name, _) in &cells.bundle.cells.categorical {
                if ui.selectable_label(*name == column_name, name).clicked() {
                    chosen = Some(name.clone());
                }
            }
        });
    if let Some(name) = chosen {
        app.stats_column = Some(name);
    }
    let composition = match result {
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            ui.colored_label(ui.visuals().error_fg_color, e);
            return;
        }
        None => return,
    };
    if drawing_set.is_some() {
        ui.label(RichText::new("following the shape being drawn").italics().weak());
    }
    egui::Grid::new("composition_table")
        .num_columns(5)
        .striped(true)
        .show(ui, |ui| {
            ui.strong("class");
            ui.strong("cells");
            ui.strong("% sel");
            ui.strong(format!("% {reference_name}"));
            ui.strong("log2 enr (q)");
            ui.end_row();
            for (i, class) in composition.classes.iter().enumerate() {
                let colour = class_colours.get(i).copied().unwrap_or(Color32::GRAY);
                ui.colored_label(colour, categories.get(i).map_or("?", String::as_str));
                ui.label(format!("{}", class.count_in_group));
                ui.label(format!("{:.1}", 100.0 * class.fraction_in_group));
                ui.label(format!("{:.1}", 100.0 * class.fraction_in_reference));
                ui.label(format!("{:+.2} {}", class.log2_enrichment, stars(class.q_value)))
                    .on_hover_text(format!(
                        "two-sided Fisher p = {:.3e}, BH q = {:.3e}",
                        class.p_value, class.q_value
                    ));
                ui.end_row();
            }
        });
    let rect = composition_chart_ui(ui, &composition, &categories, &class_colours, &reference_name);
    app.plot_rects.insert(PlotKind::Composition, rect);
    ui.horizontal(|ui| {
        ui.label("chart");
        plot_export_buttons(ui, app, PlotKind::Composition);
    });
}

/// Grouped bars: the class's share in the selection (class colour) and in the reference (grey),
/// with stars over significant classes.
fn composition_chart_ui(
    ui: &mut egui::Ui,
    composition: &Composition,
    categories: &[String],
    colours: &[Color32],
    reference_name: &str,
) -> egui::Rect {
    let selection_bars: Vec<Bar> = composition
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Bar::new(i as f64 - 0.2, 100.0 * c.fraction_in_group)
                .width(0.38)
                .fill(colours.get(i).copied().unwrap_or(Color32::GRAY))
                .name(categories.get(i).cloned().unwrap_or_default())
        })
        .collect();
    let reference_bars: Vec<Bar> = composition
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Bar::new(i as f64 + 0.2, 100.0 * c.fraction_in_reference)
                .width(0.38)
                .fill(Color32::from_gray(150))
                .name(categories.get(i).cloned().unwrap_or_default())
        })
        .collect();
    let labels = categories.to_vec();
    ui.label(
        RichText::new(format!(
            "% of cells: selection in class colours, {reference_name} in grey; * q < 0.05, ** < 0.01, *** < 0.001"
        ))
        .small()
        .weak(),
    );
    let shown = Plot::new("composition_chart")
        .height(180.0)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .y_axis_label("% of cells")
        .x_axis_formatter(move |mark, _| {
            let i = mark.value.round();
            if (mark.value - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .show(ui, |plot| {
            plot.bar_chart(BarChart::new("selection", selection_bars));
            plot.bar_chart(BarChart::new(reference_name, reference_bars));
            for (i, c) in composition.classes.iter().enumerate() {
                let mark = stars(c.q_value);
                if !mark.is_empty() {
                    let top = 100.0 * c.fraction_in_group.max(c.fraction_in_reference);
                    plot.text(Text::new("", PlotPoint::new(i as f64, top + 3.0), mark));
                }
            }
        });
    shown.response.rect
}

/// µm² below 0.1 mm², else mm².
pub fn format_area(area_um2: f64) -> String {
    if area_um2 >= 1e5 {
        format!("{:.3} mm²", area_um2 * 1e-6)
    } else {
        format!("{area_um2:.0} µm²")
    }
}
