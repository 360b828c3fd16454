//! The Cohort tab: the manifest's samples with their metadata (click one to show it; each keeps
//! its own view, selections and results; *compare* shows one beside it in the split view), a
//! classifier or niche model found on one sample applied to the others, and the samples compared
//! between the manifest's groups (composition, niches or neighbourhood z-scores): each sample's
//! value as a point, grouped by condition, with the Mann-Whitney test per class (BH across
//! classes), exported as CSV.

use std::collections::BTreeSet;

use cs_cohort::Measure;
use egui::{Color32, RichText};

use crate::document::cohort::CohortState;
use crate::document::models::{CLUSTER_COLUMN, PREDICTED_COLUMN};
use crate::layers::palettes::class_colour;
use crate::ui::dialogs::DialogPurpose;
use crate::ui::{Command, PanelContext, job_progress_ui};
use crate::util::display_name;
use crate::util::format::significance_stars;
use crate::work::cohort::{AppliedKind, CohortComposition, NHOOD, NICHES, PREDICTED};
use crate::work::jobs::JobKind;

/// The tab's own state: the column compared, the samples left out of *Apply*.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CohortTabState {
    pub column: String,
    /// Samples the user unticked for *Apply the model* (the others are ticked).
    pub not_applied: BTreeSet<String>,
}

pub fn cohort_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, state: &mut CohortTabState) {
    let Some(cohort) = &cx.document.cohort else {
        ui.label("No cohort is open: File → Open cohort…");
        return;
    };
    samples_ui(ui, cx, cohort);
    ui.separator();
    apply_model_ui(ui, cx, cohort, state);
    ui.separator();
    compare_ui(ui, cx, cohort, state);
}

fn samples_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, cohort: &CohortState) {
    let manifest = &cohort.manifest;
    ui.strong(format!("Cohort {}", cohort.name()));
    ui.label(
        RichText::new(format!(
            "{} samples, {} can be opened; click one to show it (each keeps its view, selections and \
             results), or compare it beside the one shown",
            manifest.samples.len(),
            manifest.runnable().count()
        ))
        .small()
        .weak(),
    );
    egui::Grid::new("cohort-samples")
        .striped(true)
        .num_columns(3 + manifest.metadata_columns.len())
        .show(ui, |ui| {
            ui.strong("sample");
            for column in &manifest.metadata_columns {
                ui.strong(column);
            }
            ui.strong("");
            ui.strong("");
            ui.end_row();
            let compared = cx.document.compare.as_ref().and_then(|c| c.sample.as_deref());
            for sample in &manifest.samples {
                let active = cohort.active.as_deref() == Some(sample.id.as_str());
                let text = if active {
                    RichText::new(&sample.id).strong()
                } else {
                    RichText::new(&sample.id)
                };
                let button = ui
                    .add_enabled(sample.problem.is_none(), egui::Button::new(text).selected(active))
                    .on_hover_text(sample.xenium.display().to_string());
                if button.clicked() && !active {
                    cx.send(Command::SwitchSample(sample.id.clone()));
                }
                for value in &sample.metadata {
                    ui.label(value);
                }
                match &sample.problem {
                    Some(problem) => {
                        ui.colored_label(ui.visuals().error_fg_color, "cannot open")
                            .on_hover_text(format!("{}: {problem}", sample.row));
                    }
                    None if cohort.parked.contains_key(&sample.id) => {
                        ui.label(RichText::new("visited").small().weak());
                    }
                    None => {
                        ui.label("");
                    }
                }
                if compared == Some(sample.id.as_str()) {
                    if ui
                        .add(egui::Button::new("compared").selected(true).small())
                        .on_hover_text("Shown beside in the split view; click to close it")
                        .clicked()
                    {
                        cx.send(Command::CloseCompareSlide);
                    }
                } else if ui
                    .add_enabled(
                        sample.problem.is_none() && !active && cx.document.has_data(),
                        egui::Button::new("compare").small(),
                    )
                    .on_hover_text("Show this sample's slide and cells beside the one shown (split view)")
                    .clicked()
                {
                    cx.send(Command::CompareSample(sample.id.clone()));
                }
                ui.end_row();
            }
        });
    for sample in manifest.samples.iter().filter(|s| s.problem.is_some()) {
        ui.add(
            egui::Label::new(
                RichText::new(format!(
                    "{} ({}): {}",
                    sample.id,
                    sample.row,
                    sample.problem.as_deref().unwrap_or_default()
                ))
                .small()
                .color(ui.visuals().error_fg_color),
            )
            .wrap(),
        );
    }
}

/// The classifier (found on a sample, or a saved one) and the niche model found on a sample,
/// applied to the ticked samples: the tick boxes, a button per model, or the run's progress.
fn apply_model_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, cohort: &CohortState, state: &mut CohortTabState) {
    ui.strong("Apply a model to the samples");
    let choose_saved = |ui: &mut egui::Ui, text: &str| {
        if ui
            .small_button(text)
            .on_hover_text("A saved classifier folder (Save model… or cellsymphony train)")
            .clicked()
        {
            cx.send(Command::AskForFile(DialogPurpose::CohortModel));
        }
    };
    if cohort.model.is_none() && cohort.niche_model.is_none() {
        ui.horizontal_wrapped(|ui| {
            ui.label(
                RichText::new("Train a classifier or find niches on a sample in the Models tab, or")
                    .small()
                    .weak(),
            );
            choose_saved(ui, "Choose a saved model…");
        });
        return;
    }
    // The sample a model came from is ticked too: its outputs then sit beside the others' for
    // the comparison below (the same model on the same cells gives what the Models tab showed).
    let trained_on = |id: &str| {
        [&cohort.model, &cohort.niche_model]
            .iter()
            .any(|m| m.as_ref().and_then(|m| m.trained_on.as_deref()) == Some(id))
    };
    let runnable: Vec<&str> = cohort.manifest.runnable().map(|s| s.id.as_str()).collect();
    ui.horizontal_wrapped(|ui| {
        ui.label("to:");
        for id in &runnable {
            let mut ticked = !state.not_applied.contains(*id);
            let label = if trained_on(id) {
                format!("{id} (trained on)")
            } else {
                (*id).to_owned()
            };
            if ui.checkbox(&mut ticked, label).changed() {
                if ticked {
                    state.not_applied.remove(*id);
                } else {
                    state.not_applied.insert((*id).to_owned());
                }
            }
        }
    });
    let chosen: Vec<String> = runnable
        .iter()
        .filter(|id| !state.not_applied.contains(**id))
        .map(|id| (*id).to_owned())
        .collect();
    if let Some(run) = cx.job(JobKind::CohortApplyModel) {
        job_progress_ui(ui, cx, run);
        return;
    }
    let outputs = cohort.outputs_or_default();
    let apply = |ui: &mut egui::Ui, what: &str, kind: AppliedKind, hover: String| {
        if ui
            .add_enabled(
                !chosen.is_empty(),
                egui::Button::new(format!("Apply {what} to {} sample(s)", chosen.len())),
            )
            .on_hover_text(hover)
            .clicked()
        {
            cx.send(Command::ApplyCohortModel {
                samples: chosen.clone(),
                kind,
            });
        }
    };
    ui.horizontal_wrapped(|ui| match &cohort.model {
        Some(model) => {
            ui.label(format!("Cell types: {}", model.description))
                .on_hover_text(model.dir.display().to_string());
            choose_saved(ui, "Other…");
            apply(
                ui,
                "cell types",
                AppliedKind::Classifier,
                format!(
                    "Predicts each sample's cell types with this model (its own features, on the device \
                     chosen in the Models tab), saved in {} as `cohort run --step predict` does: a \
                     sample shows them when opened or compared, and they are the `predicted` composition",
                    outputs.display()
                ),
            );
        }
        None => {
            ui.label(
                RichText::new("Cell types: train a classifier in the Models tab, or")
                    .small()
                    .weak(),
            );
            choose_saved(ui, "Choose a saved model…");
        }
    });
    ui.horizontal_wrapped(|ui| match &cohort.niche_model {
        Some(model) => {
            ui.label(format!("Niches: {}", model.description))
                .on_hover_text(model.dir.display().to_string());
            apply(
                ui,
                "niches",
                AppliedKind::Niches,
                format!(
                    "Puts each sample's cells in these niches (the model's morphology projection, then \
                     the nearest of its k-means centres), saved in {} as `cohort run --step cluster \
                     --model` does: the same niches in every sample, compared as `niches` below",
                    outputs.display()
                ),
            );
        }
        None => {
            ui.label(
                RichText::new("Niches: find niches on a sample in the Models tab")
                    .small()
                    .weak(),
            );
        }
    });
}

fn compare_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, cohort: &CohortState, state: &mut CohortTabState) {
    ui.strong("Compare samples");
    // The columns of the sample shown, and the predicted types of a `cohort run` folder.
    // Not the columns the app made on the shown sample (predictions, clusters): the other
    // samples' files do not have them (their predictions are `predicted`, from the outputs).
    let made_here = [PREDICTED_COLUMN, CLUSTER_COLUMN];
    let mut columns: Vec<String> = cx
        .document
        .cells
        .as_ref()
        .map(|c| {
            c.bundle
                .cells
                .categorical
                .iter()
                .map(|(n, _)| n.clone())
                .filter(|n| !made_here.contains(&n.as_str()))
                .collect()
        })
        .unwrap_or_default();
    if cohort.outputs.is_some() {
        columns.push(PREDICTED.to_owned());
        columns.push(NICHES.to_owned());
        columns.push(NHOOD.to_owned());
    }
    // A start: the column the cells are coloured by, else one that names cell types or
    // clusters, else the first.
    if state.column.is_empty() {
        let coloured = cx.document.cells.as_ref().and_then(|c| match &c.colour_by {
            // Coloured by predictions: the samples' predictions, when the outputs hold them.
            crate::layers::cell_layer::ColourBy::Category(name) if name == PREDICTED_COLUMN => {
                columns.iter().find(|c| *c == PREDICTED).cloned()
            }
            crate::layers::cell_layer::ColourBy::Category(name) if columns.contains(name) => Some(name.clone()),
            _ => None,
        });
        let typed = columns
            .iter()
            .find(|c| c.contains("type") || c.contains("cluster"))
            .cloned();
        if let Some(column) = coloured.or(typed).or_else(|| columns.first().cloned()) {
            state.column = column;
        }
    }
    ui.horizontal(|ui| {
        egui::ComboBox::from_label("per sample")
            .selected_text(column_label(&state.column))
            .show_ui(ui, |ui| {
                for column in &columns {
                    ui.selectable_value(&mut state.column, column.clone(), column_label(column));
                }
            });
    });
    ui.horizontal(|ui| {
        let outputs = cohort
            .outputs
            .as_deref()
            .map_or_else(|| "no cohort run folder".to_owned(), display_name);
        ui.label(RichText::new(outputs).small().weak());
        if ui
            .small_button("Cohort run folder…")
            .on_hover_text("The folder `cellsymphony cohort run --out` wrote: its predictions become a column")
            .clicked()
        {
            cx.send(Command::AskForFile(DialogPurpose::CohortOutputs));
        }
    });
    match cx.job(JobKind::CohortComposition) {
        Some(run) => job_progress_ui(ui, cx, run),
        None => {
            let group = cohort.manifest.group_column().unwrap_or("no group column");
            if ui
                .add_enabled(!state.column.is_empty(), egui::Button::new("Compare the samples"))
                .on_hover_text(format!(
                    "Each sample's share of each class (or z-score of each class pair), grouped by \
                     {group}; Mann-Whitney U per class, Benjamini-Hochberg across classes"
                ))
                .clicked()
            {
                cx.send(Command::CompareCohort {
                    column: state.column.clone(),
                });
            }
        }
    }
    match &cohort.composition {
        None => {}
        Some(Err(error)) => {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
        Some(Ok(composition)) => composition_ui(ui, cx, cohort, composition),
    }
}

/// How the comparison's choices read: a bundle column by its name, the `cohort run` outputs
/// by what they are.
fn column_label(column: &str) -> &str {
    match column {
        PREDICTED => "predicted (cohort run)",
        NICHES => "niches (cohort run, shared model)",
        NHOOD => "neighbourhood z-scores (cohort run)",
        _ => column,
    }
}

/// Class pairs of a neighbourhood comparison shown in the plot (the smallest p first).
const NHOOD_PAIRS_PLOTTED: usize = 12;

fn composition_ui(ui: &mut egui::Ui, cx: &PanelContext<'_>, cohort: &CohortState, composition: &CohortComposition) {
    use egui_plot::{Legend, Plot, PlotPoints, Points};
    let nhood = composition.measure == Measure::Nhood;
    let mut classes: Vec<String> = composition.classes().into_iter().map(str::to_owned).collect();
    let all_classes = classes.len();
    if nhood {
        // The pairs that differ most between the groups, when there are tests.
        let best_p = |class: &String| {
            composition
                .tests
                .iter()
                .filter(|t| &t.class == class)
                .map(|t| t.p_value)
                .fold(f64::INFINITY, f64::min)
        };
        classes.sort_by(|a, b| best_p(a).total_cmp(&best_p(b)));
        classes.truncate(NHOOD_PAIRS_PLOTTED);
    }
    let value_of = |sample: &str, class: &str| {
        let value = composition.share(sample, class);
        if nhood { value } else { 100.0 * value }
    };
    let mut groups: Vec<String> = composition.groups.iter().map(|(_, g)| g.clone()).collect();
    groups.sort();
    groups.dedup();
    let group_name = cohort.manifest.group_column().unwrap_or("group");
    let heading = if nhood {
        format!(
            "neighbourhood enrichment z-score of each class pair (cohort run --step enrich); one point per \
             sample, coloured by {group_name}{}",
            if all_classes > classes.len() {
                format!("; the {} of {all_classes} pairs that differ most", classes.len())
            } else {
                String::new()
            }
        )
    } else {
        format!(
            "% of each sample's cells by {}; one point per sample, coloured by {group_name}",
            composition.column
        )
    };
    ui.label(RichText::new(heading).small().weak());
    // Classes down the side (their names readable), shares across; groups side by side per class.
    let labels = classes.clone();
    let n_classes = classes.len();
    let spread = 0.6 / groups.len().max(1) as f64;
    Plot::new("cohort-composition")
        .height(40.0 + 26.0 * n_classes as f32)
        .legend(Legend::default())
        .x_axis_label(if nhood { "z-score" } else { "% of cells" })
        .y_axis_min_width(80.0)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .include_x(0.0)
        .include_y(-0.5)
        .include_y(n_classes as f64 - 0.5)
        .y_grid_spacer(move |_| {
            (0..n_classes)
                .map(|i| egui_plot::GridMark {
                    value: i as f64,
                    step_size: 1.0,
                })
                .collect()
        })
        .y_axis_formatter(move |mark, _| {
            let i = mark.value.round();
            // Top to bottom in the classes' order.
            let row = n_classes as f64 - 1.0 - i;
            if (mark.value - i).abs() < 1e-6 && row >= 0.0 {
                labels.get(row as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .show(ui, |plot| {
            for (g, group) in groups.iter().enumerate() {
                let offset = (g as f64 - (groups.len() as f64 - 1.0) / 2.0) * spread;
                let points: PlotPoints = classes
                    .iter()
                    .enumerate()
                    .flat_map(|(i, class)| {
                        let y = (n_classes - 1 - i) as f64 - offset;
                        composition
                            .groups
                            .iter()
                            .filter(move |(_, sg)| sg == group)
                            .map(move |(sample, _)| [value_of(sample, class), y])
                    })
                    .collect();
                let name = if group.is_empty() { "(no group)" } else { group.as_str() };
                plot.points(Points::new(name, points).radius(4.0).color(class_colour(g)));
            }
        });
    if composition.tests.is_empty() {
        ui.label(
            RichText::new("No tests: the manifest has no group or condition column with two or more groups.")
                .small()
                .weak(),
        );
    } else {
        // One block per pair of groups (most manifests have two groups: one block).
        let mut pairs: Vec<(&str, &str)> = composition
            .tests
            .iter()
            .map(|t| (t.group_a.as_str(), t.group_b.as_str()))
            .collect();
        pairs.dedup();
        for (a, b) in pairs {
            let tests: Vec<_> = composition
                .tests
                .iter()
                .filter(|t| t.group_a == a && t.group_b == b)
                .collect();
            let (n_a, n_b) = tests.first().map_or((0, 0), |t| (t.n_a, t.n_b));
            let samples = |n: usize| {
                if n == 1 {
                    "1 sample".to_owned()
                } else {
                    format!("{n} samples")
                }
            };
            ui.label(
                RichText::new(format!(
                    "{a} ({}) vs {b} ({}): Mann-Whitney U, BH across classes",
                    samples(n_a),
                    samples(n_b)
                ))
                .small(),
            );
            let mut tests = tests;
            if nhood {
                // 36 pairs and more: the ones that differ most first.
                tests.sort_by(|x, y| x.p_value.total_cmp(&y.p_value));
            }
            // Long class-pair names scroll sideways rather than widen the panel.
            egui::ScrollArea::horizontal()
                .id_salt(("cohort-tests-scroll", a, b))
                .show(ui, |ui| {
                    egui::Grid::new(("cohort-tests", a, b))
                        .striped(true)
                        .num_columns(4)
                        .show(ui, |ui| {
                            let median = if nhood { "median z" } else { "median %" };
                            for header in ["class", median, "p", "q"] {
                                ui.strong(header);
                            }
                            ui.end_row();
                            for t in tests {
                                ui.label(&t.class);
                                ui.label(if nhood {
                                    format!("{:.2} / {:.2}", t.median_a, t.median_b)
                                } else {
                                    format!("{:.1} / {:.1}", 100.0 * t.median_a, 100.0 * t.median_b)
                                });
                                ui.label(format!("{:.3}", t.p_value));
                                let q = RichText::new(format!("{:.3} {}", t.q_value, significance_stars(t.q_value)));
                                ui.label(if t.q_value < 0.05 {
                                    q.color(Color32::from_rgb(200, 80, 40))
                                } else {
                                    q
                                });
                                ui.end_row();
                            }
                        });
                });
        }
    }
    if ui
        .button("Export table…")
        .on_hover_text("Shares per sample and class, then the tests, as CSV")
        .clicked()
    {
        cx.send(Command::AskForFile(DialogPurpose::ExportCohortTable));
    }
}
