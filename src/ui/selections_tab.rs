//! The Selections tab: the selection tools, the list of selections (colour, name, cell count,
//! visibility), the active selection's numbers, its composition against the rest or another
//! selection (table and chart, live while a shape is drawn), and differential expression (table
//! and volcano). Exports go through file dialogs; every change is an edit.

use std::collections::HashMap;

use cs_analysis::{CellSet, Composition, composition_between, composition_vs_rest};
use egui::{Color32, RichText};
use egui_plot::{Bar, BarChart, Plot, PlotPoint, Text};

use crate::document::Edit;
use crate::io::export::{ExportKind, PlotKind};
use crate::io::records::NamedDe;
use crate::layers::palettes::class_colour;
use crate::ui::dialogs::DialogPurpose;
use crate::ui::{Command, PanelContext};
use crate::util::format::{format_area, significance_stars};
use crate::viewer::tools::{Tool, combine_from_modifiers};
use crate::work::analysis::NhoodSettings;
use crate::work::jobs::JobKind;

/// The Selections tab's own state.
#[derive(Debug, Default)]
pub struct SelectionsTabState {
    pub composition: CompositionView,
    /// How the next neighbourhood enrichment runs.
    pub nhood_settings: NhoodSettings,
    /// Where each plot was drawn last frame (for PNG export from a screenshot).
    pub plot_rects: HashMap<PlotKind, egui::Rect>,
}

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
pub fn plot_export_buttons(ui: &mut egui::Ui, cx: &PanelContext<'_>, plot: PlotKind) {
    if ui
        .small_button("SVG…")
        .on_hover_text("The plot as a vector file")
        .clicked()
    {
        cx.send(Command::AskForFile(DialogPurpose::Export(ExportKind::PlotSvg(plot))));
    }
    if ui.small_button("PNG…").on_hover_text("The plot as shown").clicked() {
        cx.send(Command::AskForFile(DialogPurpose::ExportPlotPng(plot)));
    }
}

/// The tool buttons (also in the toolbar's place when cells are open).
pub fn tools_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>) {
    let tools = &cx.viewer.tools;
    ui.horizontal_wrapped(|ui| {
        for tool in Tool::SELECTION {
            let selected = tools.tool == tool;
            if ui
                .selectable_label(selected, tool.label())
                .on_hover_text(format!("{} ({:?})", tool.hint(), tool.key()))
                .clicked()
            {
                cx.send(Command::ArmTool(tool));
            }
        }
    });
    if tools.tool == Tool::Brush {
        let mut radius = tools.selection.brush_radius_points;
        if ui
            .add(egui::Slider::new(&mut radius, 3.0..=120.0).text("brush radius (pt)"))
            .changed()
        {
            cx.send(Command::SetBrushRadius(radius));
        }
    }
}

pub fn selections_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, state: &mut SelectionsTabState) {
    tools_ui(ui, cx);
    let doc = cx.document;
    if doc.cells.is_none() {
        return;
    }
    let selections = &doc.selections;
    ui.horizontal(|ui| {
        if ui.button("New selection").clicked() {
            cx.edit(Edit::CreateSelection);
        }
        if ui
            .add_enabled(selections.history().can_undo(), egui::Button::new("Undo"))
            .on_hover_text("Ctrl+Z")
            .clicked()
        {
            cx.edit(Edit::UndoSelections);
        }
        if ui
            .add_enabled(selections.history().can_redo(), egui::Button::new("Redo"))
            .on_hover_text("Ctrl+Shift+Z")
            .clicked()
        {
            cx.edit(Edit::RedoSelections);
        }
    });
    let mut dim_outside = cx.viewer.tools.dim_outside;
    if ui
        .checkbox(&mut dim_outside, "Dim cells outside the active selection")
        .changed()
    {
        cx.send(Command::SetDimOutside(dim_outside));
    }
    if selections.items.is_empty() {
        ui.add_space(6.0);
        ui.label(
            RichText::new("Pick a tool (Lasso, Polygon, Rectangle, Brush) and draw around cells.")
                .color(ui.visuals().weak_text_color()),
        );
        return;
    }
    ui.add_space(4.0);
    for (i, selection) in selections.items.iter().enumerate() {
        ui.horizontal(|ui| {
            let mut colour = selection.colour;
            if ui.color_edit_button_srgba(&mut colour).changed() {
                cx.edit(Edit::SetSelectionColour(i, colour));
            }
            let mut name = selection.name.clone();
            let edit = ui.add(egui::TextEdit::singleline(&mut name).desired_width(96.0));
            // One undo step per visit to the field.
            if edit.gained_focus() {
                cx.edit(Edit::RememberSelections);
            }
            if edit.changed() {
                cx.edit(Edit::RenameSelection(i, name));
            }
            let active = selections.active == Some(i);
            if ui
                .selectable_label(active, format!("{}", selection.cell_count()))
                .on_hover_text(
                    "Cells in the selection. Click to make it the one the tools edit and the panel describes",
                )
                .clicked()
            {
                cx.edit(Edit::SetActiveSelection(i));
            }
            let mut visible = selection.visible;
            if ui.checkbox(&mut visible, "show").changed() {
                cx.edit(Edit::SetSelectionVisible(i, visible));
            }
            if ui.small_button("Delete").clicked() {
                cx.edit(Edit::DeleteSelection(i));
            }
        });
    }
    let Some(active) = selections.active() else {
        return;
    };
    ui.separator();
    ui.label(RichText::new(&active.name).strong().color(active.colour));
    egui::Grid::new("selection_numbers").num_columns(2).show(ui, |ui| {
        ui.label("Cells");
        ui.label(format!("{}", active.cell_count()));
        ui.end_row();
        ui.label("Area");
        ui.label(format_area(active.area_um2, cx.units));
        ui.end_row();
        ui.label("Density");
        ui.label(
            active
                .density_per_mm2()
                .map_or("–".to_owned(), |d| format!("{d:.0} cells/mm²")),
        );
        ui.end_row();
    });
    let mut compare = selections.compare;
    egui::ComboBox::from_label("compared with")
        .selected_text(match selections.compared() {
            Some(other) => other.name.clone(),
            None => "the rest of the cells".to_owned(),
        })
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut compare, None, "the rest of the cells");
            for (i, other) in selections.items.iter().enumerate() {
                if Some(i) != selections.active {
                    ui.selectable_value(&mut compare, Some(i), &other.name);
                }
            }
        });
    if compare != selections.compare {
        cx.edit(Edit::SetComparedSelection(compare));
    }
    ui.horizontal_wrapped(|ui| {
        if ui
            .button("Import…")
            .on_hover_text("GeoJSON (QuPath) or a Xenium Explorer selection CSV")
            .clicked()
        {
            cx.send(Command::AskForFile(DialogPurpose::ImportSelections));
        }
        if ui
            .button("GeoJSON…")
            .on_hover_text("The shown selections as QuPath annotations (slide pixels when a slide is open, else µm)")
            .clicked()
        {
            cx.send(Command::AskForFile(DialogPurpose::Export(
                ExportKind::SelectionsGeoJson,
            )));
        }
        if ui
            .button("Cells CSV…")
            .on_hover_text("The active selection's cells in Xenium Explorer's layout")
            .clicked()
        {
            cx.send(Command::AskForFile(DialogPurpose::Export(ExportKind::CellsCsv)));
        }
        if ui.button("Stats CSV…").on_hover_text("The composition table").clicked() {
            cx.send(Command::AskForFile(DialogPurpose::Export(ExportKind::StatsCsv)));
        }
        if ui
            .button("Explorer groups…")
            .on_hover_text(
                "The shown selections as Xenium Explorer cell groups (cell_id,group CSV or analysis.zarr.zip)",
            )
            .clicked()
        {
            cx.send(Command::AskForFile(DialogPurpose::ExportCellGroups(
                crate::ui::dialogs::GroupSource::Selections,
            )));
        }
    });
    composition_ui(ui, cx, state);
    differential_expression_ui(ui, cx, state);
}

fn differential_expression_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, state: &mut SelectionsTabState) {
    let doc = cx.document;
    if doc.cells.as_ref().is_none_or(|c| c.bundle.counts.is_none()) {
        return;
    }
    ui.separator();
    let running = cx.is_running(JobKind::DifferentialExpression);
    let current = doc.current_de_result();
    let failed = doc
        .analysis
        .de
        .as_ref()
        .and_then(|d| d.error_for(doc.de_key().as_ref()));
    ui.horizontal(|ui| {
        ui.strong("Differential expression");
        if running {
            ui.spinner();
        } else if ui
            .button(if current.is_some() { "Recompute" } else { "Compute" })
            .on_hover_text("Wilcoxon rank-sum on log1p(CP10k), tie-corrected, BH-adjusted, like scanpy")
            .clicked()
        {
            cx.send(Command::RunDifferentialExpression);
        }
        if current.is_some() && ui.button("CSV…").clicked() {
            cx.send(Command::AskForFile(DialogPurpose::Export(ExportKind::DeCsv)));
        }
    });
    if let Some(error) = failed {
        ui.colored_label(ui.visuals().error_fg_color, error);
    }
    let Some(results) = current else {
        if doc.analysis.de.is_some() && !running {
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
    state.plot_rects.insert(PlotKind::Volcano, rect);
    ui.horizontal(|ui| {
        ui.label("volcano");
        plot_export_buttons(ui, cx, PlotKind::Volcano);
    });
}

/// log2 fold change against −log10 q, significant genes (q < 0.05, |log2 FC| > 1) named.
fn volcano_ui(ui: &mut egui::Ui, results: &[NamedDe]) -> egui::Rect {
    use egui_plot::{PlotPoints, Points};
    let point = |r: &NamedDe| {
        [
            r.result.log2_fold_change.clamp(-20.0, 20.0),
            -r.result.p_adjusted.max(1e-300).log10(),
        ]
    };
    let significant = |r: &&NamedDe| r.result.p_adjusted < 0.05 && r.result.log2_fold_change.abs() > 1.0;
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

fn composition_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, state: &mut SelectionsTabState) {
    let doc = cx.document;
    let Some(column_name) = doc.stats_column() else {
        ui.label(RichText::new("No categorical column to compare").weak());
        return;
    };
    let (Some(cells), Some(active)) = (&doc.cells, doc.selections.active()) else {
        return;
    };
    // While a shape is being drawn, the numbers follow it live.
    let drawing_set = cx.viewer.tools.selection.drawn_cells().map(|drawn| {
        let modifiers = ui.input(|i| i.modifiers);
        let mut prospective = active.cells.clone();
        prospective.combine(drawn, combine_from_modifiers(modifiers));
        prospective
    });
    let group = drawing_set.as_ref().unwrap_or(&active.cells);
    let Some(column) = cells.bundle.cells.categorical_column(&column_name) else {
        return;
    };
    let reference = doc.selections.compared().map(|s| &s.cells);
    let reference_name = doc.selections.compared().map_or("rest".to_owned(), |s| s.name.clone());
    let class_colours: Vec<Color32> = cells
        .classes
        .iter()
        .find(|(n, _)| *n == column_name)
        .map(|(_, classes)| classes.iter().map(|c| c.colour).collect())
        .unwrap_or_else(|| (0..column.categories.len()).map(class_colour).collect());
    let categories = column.categories.clone();
    let result = state
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
        cx.edit(Edit::SetStatsColumn(name));
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
                ui.label(format!(
                    "{:+.2} {}",
                    class.log2_enrichment,
                    significance_stars(class.q_value)
                ))
                .on_hover_text(format!(
                    "two-sided Fisher p = {:.3e}, BH q = {:.3e}",
                    class.p_value, class.q_value
                ));
                ui.end_row();
            }
        });
    let rect = composition_chart_ui(ui, &composition, &categories, &class_colours, &reference_name);
    state.plot_rects.insert(PlotKind::Composition, rect);
    ui.horizontal(|ui| {
        ui.label("chart");
        plot_export_buttons(ui, cx, PlotKind::Composition);
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
                let mark = significance_stars(c.q_value);
                if !mark.is_empty() {
                    let top = 100.0 * c.fraction_in_group.max(c.fraction_in_reference);
                    plot.text(Text::new("", PlotPoint::new(i as f64, top + 3.0), mark));
                }
            }
        });
    shown.response.rect
}
