//! The session's cell selections: named, coloured, each a list of shapes combined in order, with
//! the cells they hold (recomputed when their shapes change) and undo/redo over all of them.
//! No widgets and no file formats here (the session file's are `document::session`'s).

use cs_analysis::{CellSet, Combine, GridIndex, Shape, Step, cells_in_steps, region_area_um2};
use egui::Color32;

use crate::document::history::EditHistory;
use crate::io::records::NamedSelection;
use crate::io::selection_io::ImportedSelection;
use crate::layers::palettes::class_colour;

/// How many edits undo can take back.
const HISTORY_LIMIT: usize = 100;

/// What undo restores: everything but the derived cell sets.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedSelections {
    items: Vec<(String, Color32, bool, Vec<Step>)>,
    active: Option<usize>,
}

impl SavedSelections {
    fn of(items: &[NamedSelection], active: Option<usize>) -> Self {
        Self {
            items: items
                .iter()
                .map(|s| (s.name.clone(), s.colour, s.visible, s.steps.clone()))
                .collect(),
            active,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Selections {
    pub items: Vec<NamedSelection>,
    /// The selection the tools edit and the panel describes.
    pub active: Option<usize>,
    /// A second selection to compare the active one with (else: the rest of the cells).
    pub compare: Option<usize>,
    history: EditHistory<SavedSelections, HISTORY_LIMIT>,
    next_number: usize,
}

impl Selections {
    pub fn active(&self) -> Option<&NamedSelection> {
        self.active.and_then(|i| self.items.get(i))
    }

    pub fn compared(&self) -> Option<&NamedSelection> {
        self.compare
            .filter(|c| Some(*c) != self.active)
            .and_then(|i| self.items.get(i))
    }

    /// Call before an edit, so that undo can take it back.
    pub fn remember(&mut self) {
        self.history.remember(SavedSelections::of(&self.items, self.active));
    }

    fn restore(&mut self, saved: SavedSelections, index: &GridIndex, cell_count: usize) {
        self.items = saved
            .items
            .into_iter()
            .map(|(name, colour, visible, steps)| make_selection(name, colour, visible, steps, index, cell_count))
            .collect();
        self.active = saved.active.filter(|&a| a < self.items.len());
        self.compare = self.compare.filter(|&c| c < self.items.len());
    }

    /// The undo and redo stacks (their edit numbers order Ctrl+Z with the annotations').
    pub fn history(&self) -> &EditHistory<SavedSelections, HISTORY_LIMIT> {
        &self.history
    }

    /// Forgets what redo could make again (an edit elsewhere came after it).
    pub fn clear_redo(&mut self) {
        self.history.clear_redo();
    }

    pub fn undo(&mut self, index: &GridIndex, cell_count: usize) {
        if let Some(saved) = self.history.undo(|| SavedSelections::of(&self.items, self.active)) {
            self.restore(saved, index, cell_count);
        }
    }

    pub fn redo(&mut self, index: &GridIndex, cell_count: usize) {
        if let Some(saved) = self.history.redo(|| SavedSelections::of(&self.items, self.active)) {
            self.restore(saved, index, cell_count);
        }
    }

    /// Starts a new, empty selection and makes it active.
    pub fn create(&mut self, cell_count: usize) -> usize {
        self.remember();
        self.next_number += 1;
        let number = self.next_number;
        self.items.push(NamedSelection {
            name: format!("Selection {number}"),
            colour: class_colour(number + 2),
            visible: true,
            steps: Vec::new(),
            cells: CellSet::new(cell_count),
            area_um2: 0.0,
        });
        let i = self.items.len() - 1;
        self.active = Some(i);
        i
    }

    /// Adds a drawn shape to the active selection (a new one if none is active).
    pub fn apply(&mut self, combine: Combine, shape: Shape, index: &GridIndex, cell_count: usize) {
        let target = match self.active.filter(|&a| a < self.items.len()) {
            Some(a) => {
                self.remember();
                a
            }
            None => self.create(cell_count),
        };
        let selection = &mut self.items[target];
        if combine == Combine::Replace {
            selection.steps.clear();
        }
        selection.steps.push(Step { combine, shape });
        refresh(selection, index, cell_count);
    }

    /// Replaces one vertex of a polygon step (editing); the caller calls [`Self::remember`] once
    /// when the drag starts and [`Self::refresh_active`] when it ends.
    pub fn move_vertex(&mut self, step: usize, vertex: usize, to_um: [f32; 2]) {
        let Some(selection) = self.active.and_then(|a| self.items.get_mut(a)) else {
            return;
        };
        if let Some(Step {
            shape: Shape::Polygon(points),
            ..
        }) = selection.steps.get_mut(step)
            && let Some(p) = points.get_mut(vertex)
        {
            *p = to_um;
        }
    }

    pub fn refresh_active(&mut self, index: &GridIndex, cell_count: usize) {
        if let Some(selection) = self.active.and_then(|a| self.items.get_mut(a)) {
            refresh(selection, index, cell_count);
        }
    }

    pub fn delete(&mut self, i: usize) {
        if i >= self.items.len() {
            return;
        }
        self.remember();
        self.items.remove(i);
        let shift = |v: Option<usize>| match v {
            Some(x) if x == i => None,
            Some(x) if x > i => Some(x - 1),
            other => other,
        };
        self.active = shift(self.active);
        self.compare = shift(self.compare);
    }

    /// Adds selections read from a file (each a new selection; the last becomes active).
    pub fn import(&mut self, imported: Vec<ImportedSelection>, index: &GridIndex, cell_count: usize) {
        if imported.is_empty() {
            return;
        }
        self.remember();
        for selection in imported {
            self.next_number += 1;
            let colour = selection.colour.unwrap_or_else(|| class_colour(self.next_number + 2));
            self.items.push(make_selection(
                selection.name,
                colour,
                true,
                selection.steps,
                index,
                cell_count,
            ));
        }
        self.active = Some(self.items.len() - 1);
    }

    /// Replaces every selection with `items` (name, colour, visibility, shapes), their cells
    /// found among `cell_count` cells; the undo history starts afresh.
    pub fn replace_all(
        &mut self,
        items: Vec<(String, Color32, bool, Vec<Step>)>,
        active: Option<usize>,
        compare: Option<usize>,
        index: &GridIndex,
        cell_count: usize,
    ) {
        *self = Selections::default();
        self.items = items
            .into_iter()
            .map(|(name, colour, visible, steps)| make_selection(name, colour, visible, steps, index, cell_count))
            .collect();
        self.active = active.filter(|&a| a < self.items.len());
        self.compare = compare.filter(|&c| c < self.items.len());
        self.next_number = self.items.len();
    }

    /// Recomputes every selection's cells (e.g. after the bundle changed).
    pub fn refresh_all(&mut self, index: &GridIndex, cell_count: usize) {
        for selection in &mut self.items {
            refresh(selection, index, cell_count);
        }
    }
}

fn refresh(selection: &mut NamedSelection, index: &GridIndex, cell_count: usize) {
    selection.cells = cells_in_steps(index, cell_count, &selection.steps);
    selection.area_um2 = region_area_um2(&selection.steps);
}

fn make_selection(
    name: String,
    colour: Color32,
    visible: bool,
    steps: Vec<Step>,
    index: &GridIndex,
    cell_count: usize,
) -> NamedSelection {
    let mut selection = NamedSelection {
        name,
        colour,
        visible,
        steps,
        cells: CellSet::new(cell_count),
        area_um2: 0.0,
    };
    refresh(&mut selection, index, cell_count);
    selection
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> (GridIndex, usize) {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..400 {
            x.push((i % 20) as f64 + 0.5);
            y.push((i / 20) as f64 + 0.5);
        }
        (GridIndex::build(&x, &y), 400)
    }

    fn rect(x0: f32, y0: f32, x1: f32, y1: f32) -> Shape {
        Shape::Polygon(vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    }

    #[test]
    fn shapes_edit_the_active_selection_and_undo_takes_them_back() {
        let (index, n) = grid();
        let mut selections = Selections::default();
        selections.apply(Combine::Replace, rect(0.0, 0.0, 10.0, 10.0), &index, n);
        assert_eq!(selections.items.len(), 1, "a first shape creates a selection");
        assert_eq!(selections.active().map(|s| s.cell_count()), Some(100));
        selections.apply(Combine::Add, rect(10.0, 0.0, 20.0, 10.0), &index, n);
        assert_eq!(selections.active().map(|s| s.cell_count()), Some(200));
        selections.apply(Combine::Subtract, rect(0.0, 0.0, 5.0, 5.0), &index, n);
        let active = selections.active().unwrap();
        assert_eq!(active.cell_count(), 175);
        assert!((active.area_um2 - 175.0).abs() < 2.0);
        assert!((active.density_per_mm2().unwrap() - 1e6).abs() < 2e4);

        selections.undo(&index, n);
        assert_eq!(selections.active().map(|s| s.cell_count()), Some(200));
        selections.redo(&index, n);
        assert_eq!(selections.active().map(|s| s.cell_count()), Some(175));

        // A second selection, compared with the first; deleting the first keeps indices right.
        let second = selections.create(n);
        selections.apply(Combine::Replace, rect(0.0, 10.0, 20.0, 20.0), &index, n);
        selections.compare = Some(0);
        assert_eq!(selections.compared().map(|s| s.cell_count()), Some(175));
        assert_eq!(selections.items[second].cell_count(), 200);
        selections.delete(0);
        assert_eq!((selections.active, selections.compare), (Some(0), None));
        selections.undo(&index, n);
        assert_eq!(selections.items.len(), 2);
    }

    #[test]
    fn moving_a_vertex_changes_the_cells() {
        let (index, n) = grid();
        let mut selections = Selections::default();
        selections.apply(Combine::Replace, rect(0.0, 0.0, 10.0, 10.0), &index, n);
        selections.remember();
        selections.move_vertex(0, 2, [20.0, 10.0]);
        selections.refresh_active(&index, n);
        // (0,0) (10,0) (20,10) (0,10): a trapezoid of about 150 cells.
        let count = selections.active().unwrap().cell_count();
        assert!((145..=155).contains(&count), "{count}");
        selections.undo(&index, n);
        assert_eq!(selections.active().unwrap().cell_count(), 100);
    }
}
