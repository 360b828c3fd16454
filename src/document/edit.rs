//! Edits to the document, as the viewer's tools and the panels send them: one enum, applied once
//! per frame by [`DocumentState::apply`]. Edits that undo can take back remember the state first
//! (selections and annotations share one order, see [`crate::document::history`]).

use cs_analysis::{Combine, Shape};
use cs_render::CellLayerStyle;
use egui::Color32;

use crate::document::{DocumentState, SlideAlignment};
use crate::io::records::AnnotationShape;
use crate::layers::camera::{Camera, Viewport};
use crate::layers::cell_layer::ColourBy;
use crate::layers::morphology_layer::ChannelStyle;
use crate::layers::palettes::ColourMap;

/// How the slide is shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlideStyle {
    pub visible: bool,
    pub opacity: f32,
}

/// How the cells are shown (everything but their colouring).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellDisplay {
    pub show_cells: bool,
    pub show_nuclei: bool,
    pub style: CellLayerStyle,
    pub uniform_colour: Color32,
}

/// How the transcripts are shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TranscriptStyle {
    pub visible: bool,
    pub opacity: f32,
    pub radius_px: f32,
    /// Whole Phred quality below which transcripts are not shown.
    pub min_qv: u8,
}

/// One change to the document.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// Ctrl+Z: the latest edit, to the selections or to the annotations.
    Undo,
    /// Ctrl+Shift+Z: the last undone edit.
    Redo,

    // Selections.
    CreateSelection,
    /// Combines a drawn shape with the active selection (a new one when there is none).
    ApplyShape(Combine, Shape),
    /// A vertex drag starts (one undo step for the whole drag).
    BeginVertexDrag,
    MoveVertex {
        step: usize,
        vertex: usize,
        to_um: [f32; 2],
    },
    /// The drag ended: the cells follow the moved vertices.
    EndVertexDrag,
    DeleteSelection(usize),
    /// Typing into a selection's name starts (one undo step per visit to the field).
    RememberSelections,
    RenameSelection(usize, String),
    SetSelectionColour(usize, Color32),
    SetSelectionVisible(usize, bool),
    SetActiveSelection(usize),
    /// The selection the active one is compared with (None: the rest of the cells).
    SetComparedSelection(Option<usize>),
    UndoSelections,
    RedoSelections,

    // Annotations.
    AddAnnotation(AnnotationShape),
    DeleteAnnotation(usize),
    SelectAnnotation(usize),
    /// Typing into an annotation's name or text, or a colour drag, starts (one undo step).
    RememberAnnotations,
    /// The annotation's name (its text, for a text label).
    SetAnnotationText(usize, String),
    /// New annotations get this class; so does the selected one.
    ChooseAnnotationClass(usize),
    SetAnnotationClassColour(usize, Color32),
    AddAnnotationClass(String),
    ShowMeasurements(bool),
    UndoAnnotations,
    RedoAnnotations,

    // Bookmarks.
    AddBookmark {
        camera: Camera,
        viewport: Viewport,
    },
    RemoveBookmark(usize),
    /// Moves a bookmark one place earlier (`up`) or later in the tour.
    ShiftBookmark {
        index: usize,
        up: bool,
    },
    RenameBookmark(usize, String),
    SetBookmarkCaption(usize, String),
    SetCurrentBookmark(usize),

    // Layers.
    SlideStyle(SlideStyle),
    /// The morphology layer as a whole (its visibility and opacity; SlideStyle's fields).
    MorphologyStyle(SlideStyle),
    /// One morphology channel's display.
    MorphologyChannel(usize, ChannelStyle),
    CellDisplay(CellDisplay),
    /// Colouring by a column (colouring by a gene reads its counts first: a job).
    ColourBy(ColourBy),
    /// A class of the column cells are coloured by.
    ClassStyle {
        class: usize,
        colour: Color32,
        visible: bool,
    },
    AllClassesVisible(bool),
    NumericStyle {
        min: f64,
        max: f64,
        colour_map: ColourMap,
    },
    TranscriptStyle(TranscriptStyle),
    GeneStyle {
        gene: usize,
        colour: Color32,
        visible: bool,
    },
    AllGenesVisible(bool),
    /// Shows these genes (e.g. a search's matches) and hides every other feature.
    OnlyGenesVisible(Vec<usize>),
    /// Shows or hides the control probes and codewords among the transcripts.
    ControlsVisible(bool),

    // Alignment and statistics.
    SetAlignment(SlideAlignment),
    /// Back to placing the slide by its µm per pixel.
    ResetAlignment,
    /// The categorical column the statistics use.
    SetStatsColumn(String),
}

impl DocumentState {
    /// Applies one edit. Edits that refer to something gone (a deleted selection, cells closed
    /// meanwhile) do nothing.
    pub fn apply(&mut self, edit: Edit) {
        let cells_index = self.cells.as_ref().map(|c| (&c.index, c.len()));
        match edit {
            Edit::Undo => self.undo_edit(),
            Edit::Redo => self.redo_edit(),
            Edit::CreateSelection => {
                if let Some((_, n)) = cells_index {
                    self.selections.create(n);
                }
            }
            Edit::ApplyShape(combine, shape) => {
                if let Some((index, n)) = cells_index {
                    self.selections.apply(combine, shape, index, n);
                }
            }
            Edit::BeginVertexDrag | Edit::RememberSelections => self.selections.remember(),
            Edit::MoveVertex { step, vertex, to_um } => self.selections.move_vertex(step, vertex, to_um),
            Edit::EndVertexDrag => {
                if let Some((index, n)) = cells_index {
                    self.selections.refresh_active(index, n);
                }
            }
            Edit::DeleteSelection(i) => self.selections.delete(i),
            Edit::RenameSelection(i, name) => {
                if let Some(s) = self.selections.items.get_mut(i) {
                    s.name = name;
                }
            }
            Edit::SetSelectionColour(i, colour) => {
                if let Some(s) = self.selections.items.get_mut(i) {
                    s.colour = colour;
                }
            }
            Edit::SetSelectionVisible(i, visible) => {
                if let Some(s) = self.selections.items.get_mut(i) {
                    s.visible = visible;
                }
            }
            Edit::SetActiveSelection(i) => {
                if i < self.selections.items.len() {
                    self.selections.active = Some(i);
                }
            }
            Edit::SetComparedSelection(compare) => {
                self.selections.compare = compare.filter(|&c| c < self.selections.items.len());
            }
            Edit::UndoSelections => {
                if let Some((index, n)) = cells_index {
                    self.selections.undo(index, n);
                }
            }
            Edit::RedoSelections => {
                if let Some((index, n)) = cells_index {
                    self.selections.redo(index, n);
                }
            }
            Edit::AddAnnotation(shape) => {
                self.annotations.add(shape);
            }
            Edit::DeleteAnnotation(i) => self.annotations.delete(i),
            Edit::SelectAnnotation(i) => {
                if i < self.annotations.items.len() {
                    self.annotations.selected = Some(i);
                }
            }
            Edit::RememberAnnotations => self.annotations.remember(),
            Edit::SetAnnotationText(i, text) => self.annotations.set_text(i, text),
            Edit::ChooseAnnotationClass(i) => self.annotations.choose_class(i),
            Edit::SetAnnotationClassColour(i, colour) => {
                if let Some(class) = self.annotations.classes.get_mut(i) {
                    class.colour = colour.to_srgba_unmultiplied();
                }
            }
            Edit::AddAnnotationClass(name) => {
                self.annotations.remember();
                self.annotations.current_class = self.annotations.class_named(name.trim(), None);
            }
            Edit::ShowMeasurements(show) => self.annotations.show_measurements = show,
            Edit::UndoAnnotations => self.annotations.undo(),
            Edit::RedoAnnotations => self.annotations.redo(),
            Edit::AddBookmark { camera, viewport } => {
                self.bookmarks.add(&camera, &viewport);
            }
            Edit::RemoveBookmark(i) => self.bookmarks.remove(i),
            Edit::ShiftBookmark { index, up } => self.bookmarks.shift(index, up),
            Edit::RenameBookmark(i, name) => {
                if let Some(b) = self.bookmarks.items.get_mut(i) {
                    b.name = name;
                }
            }
            Edit::SetBookmarkCaption(i, caption) => {
                if let Some(b) = self.bookmarks.items.get_mut(i) {
                    b.caption = caption;
                }
            }
            Edit::SetCurrentBookmark(i) => {
                if i < self.bookmarks.items.len() {
                    self.bookmarks.current = Some(i);
                }
            }
            Edit::SlideStyle(style) => {
                if let Some(slide) = &mut self.slide {
                    slide.layer.visible = style.visible;
                    slide.layer.opacity = style.opacity;
                }
            }
            Edit::MorphologyStyle(style) => {
                if let Some(morphology) = &mut self.morphology {
                    morphology.visible = style.visible;
                    morphology.opacity = style.opacity;
                }
            }
            Edit::MorphologyChannel(index, style) => {
                if let Some(channel) = self.morphology.as_mut().and_then(|m| m.channels.get_mut(index)) {
                    channel.style = style;
                }
            }
            Edit::CellDisplay(display) => {
                if let Some(cells) = &mut self.cells {
                    cells.show_cells = display.show_cells;
                    cells.show_nuclei = display.show_nuclei;
                    cells.style = display.style;
                    cells.uniform_colour = display.uniform_colour;
                }
            }
            Edit::ColourBy(colour_by) => {
                if let Some(cells) = &mut self.cells {
                    cells.set_colour_by(colour_by);
                }
            }
            Edit::ClassStyle { class, colour, visible } => {
                if let Some(c) = self
                    .cells
                    .as_mut()
                    .and_then(|cells| cells.active_classes_mut())
                    .and_then(|classes| classes.get_mut(class))
                {
                    c.colour = colour;
                    c.visible = visible;
                }
            }
            Edit::AllClassesVisible(visible) => {
                if let Some(classes) = self.cells.as_mut().and_then(|cells| cells.active_classes_mut()) {
                    classes.iter_mut().for_each(|c| c.visible = visible);
                }
            }
            Edit::NumericStyle { min, max, colour_map } => {
                if let Some(cells) = &mut self.cells
                    && let Some(numeric) = &mut cells.numeric
                {
                    numeric.min = min;
                    numeric.max = if max <= min { min + 1e-6 } else { max };
                    numeric.colour_map = colour_map;
                    cells.numeric_changed();
                }
            }
            Edit::TranscriptStyle(style) => {
                if let Some(t) = self.cells.as_mut().and_then(|c| c.transcripts.as_mut()) {
                    t.visible = style.visible;
                    t.opacity = style.opacity;
                    t.radius_px = style.radius_px;
                    t.min_qv = style.min_qv;
                }
            }
            Edit::GeneStyle { gene, colour, visible } => {
                if let Some(t) = self.cells.as_mut().and_then(|c| c.transcripts.as_mut())
                    && gene < t.gene_colours.len()
                {
                    t.gene_colours[gene] = colour;
                    t.gene_visible[gene] = visible;
                }
            }
            Edit::AllGenesVisible(visible) => {
                if let Some(t) = self.cells.as_mut().and_then(|c| c.transcripts.as_mut()) {
                    t.set_visible_where(visible, |category| !category.is_control());
                }
            }
            Edit::OnlyGenesVisible(genes) => {
                if let Some(t) = self.cells.as_mut().and_then(|c| c.transcripts.as_mut()) {
                    t.gene_visible.iter_mut().for_each(|v| *v = false);
                    for g in genes {
                        if let Some(v) = t.gene_visible.get_mut(g) {
                            *v = true;
                        }
                    }
                }
            }
            Edit::ControlsVisible(visible) => {
                if let Some(t) = self.cells.as_mut().and_then(|c| c.transcripts.as_mut()) {
                    t.set_visible_where(visible, cs_xenium::FeatureCategory::is_control);
                }
            }
            Edit::SetAlignment(alignment) => {
                self.alignment = Some(alignment);
                self.place_slide();
            }
            Edit::ResetAlignment => {
                self.alignment = None;
                self.place_slide();
            }
            Edit::SetStatsColumn(name) => self.analysis.stats_column = Some(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::records::AnnotationShape;

    #[test]
    fn edits_change_the_document_and_undo_takes_them_back_in_order() {
        let mut doc = DocumentState::default();
        doc.apply(Edit::AddAnnotation(AnnotationShape::Point { at_um: [1.0, 2.0] }));
        doc.apply(Edit::RememberAnnotations);
        doc.apply(Edit::SetAnnotationText(0, "nucleus".into()));
        doc.apply(Edit::AddBookmark {
            camera: Camera::default(),
            viewport: Viewport {
                size_in_points: glam::DVec2::new(100.0, 100.0),
                pixels_per_point: 1.0,
            },
        });
        doc.apply(Edit::RenameBookmark(0, "Overview".into()));
        assert_eq!(doc.annotations.items[0].name, "nucleus");
        assert_eq!(doc.bookmarks.items[0].name, "Overview");
        doc.apply(Edit::Undo);
        assert_eq!(doc.annotations.items[0].name, "", "the rename is taken back first");
        doc.apply(Edit::Undo);
        assert!(doc.annotations.items.is_empty());
        doc.apply(Edit::Redo);
        assert_eq!(doc.annotations.items.len(), 1);
        // Selections need cells: without them, selection edits change nothing.
        doc.apply(Edit::CreateSelection);
        doc.apply(Edit::DeleteSelection(3));
        assert!(doc.selections.items.is_empty());
    }
}
