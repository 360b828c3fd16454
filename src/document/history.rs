//! One order for all edits: each edit that undo can take back gets the next number, so Ctrl+Z
//! takes back the latest edit whether it was to the selections or to the annotations, and redo
//! never reorders them.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::document::DocumentState;

static NEXT_EDIT: AtomicU64 = AtomicU64::new(1);

/// A number larger than every earlier edit's.
pub fn next_edit_number() -> u64 {
    NEXT_EDIT.fetch_add(1, Ordering::Relaxed)
}

/// Which history Ctrl+Z (or Ctrl+Shift+Z) should step: the one whose next edit is the latest
/// (undo) or the earliest (redo). `selections` and `annotations` are their next edit numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditTarget {
    Selections,
    Annotations,
}

pub fn undo_target(selections: Option<u64>, annotations: Option<u64>) -> Option<EditTarget> {
    match (selections, annotations) {
        (Some(s), Some(a)) => Some(if s > a {
            EditTarget::Selections
        } else {
            EditTarget::Annotations
        }),
        (Some(_), None) => Some(EditTarget::Selections),
        (None, Some(_)) => Some(EditTarget::Annotations),
        (None, None) => None,
    }
}

/// Redo steps the edit that was undone last, which is the one with the lowest number among the
/// two redo stacks' tops.
pub fn redo_target(selections: Option<u64>, annotations: Option<u64>) -> Option<EditTarget> {
    match (selections, annotations) {
        (Some(s), Some(a)) => Some(if s < a {
            EditTarget::Selections
        } else {
            EditTarget::Annotations
        }),
        (Some(_), None) => Some(EditTarget::Selections),
        (None, Some(_)) => Some(EditTarget::Annotations),
        (None, None) => None,
    }
}

impl DocumentState {
    /// Ctrl+Z: takes back the latest edit, to the selections or to the annotations.
    pub fn undo_edit(&mut self) {
        match undo_target(self.selections.last_undo_edit(), self.annotations.last_undo_edit()) {
            Some(EditTarget::Selections) => match &self.cells {
                Some(cells) => self.selections.undo(&cells.index, cells.len()),
                // Selections need their cells to be undone; annotations do not.
                None => self.annotations.undo(),
            },
            Some(EditTarget::Annotations) => self.annotations.undo(),
            None => {}
        }
    }

    /// Ctrl+Shift+Z / Ctrl+Y: makes the last undone edit again. An undone edit older than a
    /// later edit (to either) is not redone: redo never reorders the edits.
    pub fn redo_edit(&mut self) {
        let newest_undo = self.selections.last_undo_edit().max(self.annotations.last_undo_edit());
        if newest_undo.is_some() {
            if self.selections.last_redo_edit() < newest_undo {
                self.selections.clear_redo();
            }
            if self.annotations.last_redo_edit() < newest_undo {
                self.annotations.clear_redo();
            }
        }
        match redo_target(self.selections.last_redo_edit(), self.annotations.last_redo_edit()) {
            Some(EditTarget::Selections) => {
                if let Some(cells) = &self.cells {
                    self.selections.redo(&cells.index, cells.len());
                }
            }
            Some(EditTarget::Annotations) => self.annotations.redo(),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_edit_is_undone_first_and_redone_in_order() {
        assert_eq!(undo_target(Some(3), Some(5)), Some(EditTarget::Annotations));
        assert_eq!(undo_target(Some(7), Some(5)), Some(EditTarget::Selections));
        assert_eq!(undo_target(None, None), None);
        assert_eq!(redo_target(Some(3), Some(5)), Some(EditTarget::Selections));
        assert_eq!(redo_target(None, Some(5)), Some(EditTarget::Annotations));
        assert!(next_edit_number() < next_edit_number());
    }
}
