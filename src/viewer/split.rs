//! The split view: two panes side by side with one camera, so their pan and zoom stay linked in
//! micrometres (H&E on the left, cell types on the right by default; a comparison slide, or
//! another sample of the cohort with its cells, in a pane when one is open).

use crate::layers::patch_layer::PatchValues;
use crate::viewer::ViewerState;
use crate::viewer::widget::{ViewerContext, viewer_ui};

/// Which layers a pane of the split view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaneLayers {
    pub slide: bool,
    /// The bundle's morphology images (DAPI and the other stains).
    pub morphology: bool,
    pub cells: bool,
    /// What is compared instead of the open data: a slide (File > Open slide to compare) or
    /// another sample of the cohort (its slide and cells).
    pub compare: bool,
    /// The virtual-expression heatmap (predicted from the H&E), or the measured one.
    pub patches: Option<PatchValues>,
}

/// One view of the viewer: the whole central area, or a pane of the split view. Keyboard input
/// (tools, arrow keys, undo) goes to the primary pane only; the camera is shared, so the panes'
/// pan and zoom are linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pane {
    pub primary: bool,
    /// None: the single view, which shows whatever the layers panel shows.
    pub layers: Option<PaneLayers>,
}

impl Pane {
    pub const SINGLE: Pane = Pane {
        primary: true,
        layers: None,
    };

    pub fn shows_slide(&self) -> bool {
        self.layers.is_none_or(|l| l.slide)
    }

    pub fn shows_morphology(&self) -> bool {
        self.layers.is_none_or(|l| l.morphology)
    }

    pub fn shows_cells(&self) -> bool {
        self.layers.is_none_or(|l| l.cells)
    }

    /// Which heatmap the pane shows: its own choice in the split view; in the single view the
    /// virtual one when the layer is visible.
    pub fn shows_patches(&self, layer_visible: bool) -> Option<PatchValues> {
        match self.layers {
            Some(l) => l.patches,
            None => layer_visible.then_some(PatchValues::Virtual),
        }
    }
}

/// The split view: two panes side by side with linked pan and zoom (H&E on the left; on the right
/// the cells over the slide, or over the morphology images when the bundle has them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitView {
    pub left: PaneLayers,
    pub right: PaneLayers,
}

impl Default for SplitView {
    fn default() -> Self {
        Self {
            left: PaneLayers {
                slide: true,
                morphology: false,
                cells: false,
                compare: false,
                patches: None,
            },
            right: PaneLayers {
                slide: true,
                morphology: false,
                cells: true,
                compare: false,
                patches: None,
            },
        }
    }
}

impl SplitView {
    /// The virtual-expression heatmap over the H&E on the left, the measured one on the right.
    pub fn virtual_vs_measured() -> Self {
        let pane = |patches| PaneLayers {
            slide: true,
            morphology: false,
            cells: false,
            compare: false,
            patches: Some(patches),
        };
        Self {
            left: pane(PatchValues::Virtual),
            right: pane(PatchValues::Measured),
        }
    }

    /// Two samples side by side: each pane the slide with its cells, the compared sample right.
    pub fn two_samples() -> Self {
        let pane = |compare| PaneLayers {
            slide: true,
            morphology: false,
            cells: true,
            compare,
            patches: None,
        };
        Self {
            left: pane(false),
            right: pane(true),
        }
    }

    /// The default panes: H&E left; DAPI (and the other stains) with the cells right when there
    /// are morphology images, else the slide with the cells.
    pub fn for_document(has_morphology: bool) -> Self {
        let mut split = Self::default();
        if has_morphology {
            split.right.slide = false;
            split.right.morphology = true;
        }
        split
    }
}

/// The two panes, each with its layer switches above it.
pub fn split_view_ui(ui: &mut egui::Ui, state: &mut ViewerState, cx: &mut ViewerContext<'_>) {
    let Some(mut split) = state.split else { return };
    // Each pane sets the cursor and the hovered cell only while the pointer is over it.
    state.cursor_in_world = None;
    state.cursor_in_slide_px = None;
    state.hovered_cell = None;
    let compare_name = cx.compare.as_ref().map(|c| c.name());
    let sample = cx.sample.map(str::to_owned);
    let has_morphology = cx.morphology.is_some();
    let virtual_gene = cx.patches.as_ref().map(|p| p.gene_name().to_owned());
    ui.columns(2, |columns| {
        for (i, column) in columns.iter_mut().enumerate() {
            let layers = if i == 0 { &mut split.left } else { &mut split.right };
            column.horizontal(|ui| {
                let side = if i == 0 { "Left" } else { "Right" };
                // Over two samples, each pane says whose it is.
                let whose = match (&compare_name, layers.compare) {
                    (Some(name), true) => Some(name.as_str()),
                    _ => sample.as_deref(),
                };
                match whose {
                    Some(whose) => ui.label(format!("{side} ({whose}):")),
                    None => ui.label(format!("{side}:")),
                };
                ui.checkbox(&mut layers.slide, "Slide");
                if has_morphology {
                    ui.checkbox(&mut layers.morphology, "Morphology");
                }
                ui.checkbox(&mut layers.cells, "Cells");
                if let Some(gene) = &virtual_gene {
                    let mut shown = layers.patches;
                    egui::ComboBox::from_id_salt(("pane-patches", i))
                        .selected_text(match shown {
                            Some(PatchValues::Virtual) => format!("virtual {gene}"),
                            Some(PatchValues::Measured) => format!("measured {gene}"),
                            None => "no heatmap".to_owned(),
                        })
                        .show_ui(ui, |ui| {
                            ui.selectable_value(&mut shown, None, "no heatmap");
                            ui.selectable_value(&mut shown, Some(PatchValues::Virtual), format!("virtual {gene}"))
                                .on_hover_text("Predicted from the H&E alone, on every tissue patch");
                            ui.selectable_value(&mut shown, Some(PatchValues::Measured), format!("measured {gene}"))
                                .on_hover_text("Mean of the Xenium cells in each patch");
                        });
                    layers.patches = shown;
                }
                if let Some(name) = &compare_name {
                    ui.checkbox(&mut layers.compare, format!("Compare: {name}"))
                        .on_hover_text(
                            "Show what is compared (a slide, or another sample with its cells) in this pane",
                        );
                }
            });
            let pane = Pane {
                primary: i == 0,
                layers: Some(*layers),
            };
            column.push_id(("viewer-pane", i), |ui| viewer_ui(ui, state, cx, pane));
        }
    });
    if state.split.is_some() {
        state.split = Some(split);
    }
}
