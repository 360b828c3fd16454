//! Neighbourhood enrichment in the Selections tab (squidpy's `nhood_enrichment`): the graph and
//! permutation settings, run and cancel, and the z-score heatmap.

use egui::RichText;

use crate::io::export::PlotKind;
use crate::layers::palettes::zscore_colour;
use crate::ui::plots::{MatrixLayout, matrix_ui};
use crate::ui::selections_tab::{SelectionsTabState, plot_export_buttons};
use crate::ui::{Command, PanelContext};
use crate::work::jobs::JobKind;

fn graph_label(kind: cs_analysis::GraphKind) -> String {
    match kind {
        cs_analysis::GraphKind::Delaunay => "Delaunay".to_owned(),
        cs_analysis::GraphKind::Radius { radius_um } => format!("radius {radius_um} µm"),
        cs_analysis::GraphKind::Knn { k } => format!("{k} nearest"),
    }
}

/// Neighbourhood enrichment (squidpy's `nhood_enrichment`): settings, run/cancel, and the
/// z-score heatmap.
pub fn neighbourhood_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, state: &mut SelectionsTabState) {
    let doc = cx.document;
    let Some(column) = doc.stats_column() else { return };
    ui.separator();
    ui.strong("Neighbourhood enrichment");
    let settings = &mut state.nhood_settings;
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
        doc.selections.active().is_some(),
        egui::Checkbox::new(&mut settings.within_selection, "inside the active selection only"),
    );
    let running = cx.is_running(JobKind::NhoodEnrichment);
    ui.horizontal(|ui| {
        if running {
            ui.spinner();
            if ui.button("Cancel").clicked() {
                cx.send(Command::CancelNhood);
            }
        } else if ui
            .button("Run")
            .on_hover_text(format!(
                "Permutation z-scores of neighbouring {column} pairs, as squidpy"
            ))
            .clicked()
        {
            cx.send(Command::RunNhood(settings.clone()));
        }
    });
    if let Some(error) = doc
        .analysis
        .nhood
        .as_ref()
        .and_then(|n| n.error_for(doc.nhood_key(&state.nhood_settings).as_ref()))
    {
        ui.colored_label(ui.visuals().error_fg_color, error);
    }
    let (Some(result), Some(cells)) = (doc.current_nhood_result(&state.nhood_settings), &doc.cells) else {
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
    state.plot_rects.insert(PlotKind::Heatmap, rect);
    ui.horizontal(|ui| {
        ui.label("heatmap");
        plot_export_buttons(ui, cx, PlotKind::Heatmap);
    });
}

/// Draws the heatmap (row: a cell's class, column: its neighbours') and returns where.
fn heatmap_ui(ui: &mut egui::Ui, result: &cs_analysis::NhoodEnrichment, names: &[String]) -> egui::Rect {
    let n = result.n_classes.min(names.len());
    let names = &names[..n];
    let zscores: Vec<Vec<f64>> = (0..n).map(|a| (0..n).map(|b| result.zscore(a, b)).collect()).collect();
    let hover = |a: usize, b: usize| {
        format!(
            "{} next to {}: z = {:.2}, {} neighbour pairs (permutations: {:.1} ± {:.1})",
            names[a],
            names[b],
            result.zscore(a, b),
            result.count(a, b),
            result.perm_mean[a * result.n_classes + b],
            result.perm_std[a * result.n_classes + b]
        )
    };
    let layout = MatrixLayout {
        column_header: false,
        max_side: 36.0,
    };
    matrix_ui(ui, names, names, &zscores, zscore_colour, hover, layout)
}
