//! The right panel: its tabs (Selections, Annotations, Models, Slide, and Cohort when a cohort is
//! open), the chosen one shown;
//! without cells the slide's properties show, and the chosen tab comes back when cells arrive.

use egui::RichText;

use crate::ui::annotations_tab::annotations_tab_ui;
use crate::ui::cohort_tab::{CohortTabState, cohort_ui};
use crate::ui::models_tab::{ModelsTabState, models_ui};
use crate::ui::neighbourhood::neighbourhood_ui;
use crate::ui::selections_tab::{SelectionsTabState, selections_ui};
use crate::ui::slide_tab::{SlideTabState, properties_ui};
use crate::ui::{PanelContext, RightTab};

pub fn right_panel_ui(
    ui: &mut egui::Ui,
    cx: &PanelContext<'_>,
    tab_state: &mut RightTab,
    slide_tab: &mut SlideTabState,
    selections: &mut SelectionsTabState,
    models: &mut ModelsTabState,
    cohort: &mut CohortTabState,
) {
    // Without cells there is nothing to select or model: the slide's properties show instead,
    // and the chosen tab comes back when cells arrive (whichever finished opening first).
    let has_cells = cx.document.cells.is_some();
    let has_cohort = cx.document.cohort.is_some();
    let shown = match *tab_state {
        RightTab::Cohort if has_cohort => RightTab::Cohort,
        RightTab::Selections | RightTab::Models | RightTab::Cohort if !has_cells => {
            if has_cohort {
                RightTab::Cohort
            } else {
                RightTab::Slide
            }
        }
        RightTab::Cohort => RightTab::Selections,
        tab => tab,
    };
    let tab = |text: &str| RichText::new(text).size(16.0).strong();
    let mut chosen = None;
    ui.horizontal_wrapped(|ui| {
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
        if cx.document.slide.is_some() {
            item(ui, RightTab::Slide, "Slide");
        }
        if has_cohort {
            item(ui, RightTab::Cohort, "Cohort");
        }
    });
    if let Some(tab) = chosen {
        *tab_state = tab;
    }
    ui.separator();
    match if chosen.is_some() { *tab_state } else { shown } {
        RightTab::Slide if cx.document.slide.is_some() => properties_ui(ui, cx, slide_tab),
        RightTab::Annotations => {
            egui::ScrollArea::vertical()
                .id_salt("annotations-scroll")
                .show(ui, |ui| annotations_tab_ui(ui, cx));
        }
        RightTab::Cohort if has_cohort => {
            egui::ScrollArea::vertical()
                .id_salt("cohort-scroll")
                .show(ui, |ui| cohort_ui(ui, cx, cohort));
        }
        RightTab::Models => {
            egui::ScrollArea::vertical()
                .id_salt("models-scroll")
                .show(ui, |ui| models_ui(ui, cx, models));
        }
        _ => {
            egui::ScrollArea::vertical().show(ui, |ui| {
                selections_ui(ui, cx, selections);
                neighbourhood_ui(ui, cx, selections);
            });
        }
    }
}
