//! The split view: two panes side by side with one camera, so their pan and zoom stay linked in
//! micrometres (H&E on the left, cell types on the right by default; a comparison slide in a
//! pane when one is open).

use crate::util::display_name;
use crate::viewer::ViewerState;
use crate::viewer::widget::{ViewerContext, viewer_ui};

/// Which layers a pane of the split view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaneLayers {
    pub slide: bool,
    /// The bundle's morphology images (DAPI and the other stains).
    pub morphology: bool,
    pub cells: bool,
    /// The comparison slide instead of the first one (File > Open slide to compare).
    pub compare: bool,
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
            },
            right: PaneLayers {
                slide: true,
                morphology: false,
                cells: true,
                compare: false,
            },
        }
    }
}

impl SplitView {
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
    let compare_name = cx.compare.as_ref().map(|c| display_name(&c.path));
    let has_morphology = cx.morphology.is_some();
    ui.columns(2, |columns| {
        for (i, column) in columns.iter_mut().enumerate() {
            let layers = if i == 0 { &mut split.left } else { &mut split.right };
            column.horizontal(|ui| {
                ui.label(if i == 0 { "Left:" } else { "Right:" });
                ui.checkbox(&mut layers.slide, "Slide");
                if has_morphology {
                    ui.checkbox(&mut layers.morphology, "Morphology");
                }
                ui.checkbox(&mut layers.cells, "Cells");
                if let Some(name) = &compare_name {
                    ui.checkbox(&mut layers.compare, format!("Compare: {name}"))
                        .on_hover_text("Show the comparison slide in this pane instead of the first one");
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
