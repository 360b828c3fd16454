//! One order for all edits: each edit that undo can take back gets the next number, so Ctrl+Z
//! takes back the latest edit whether it was to the selections or to the annotations, and redo
//! never reorders them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::document::DocumentState;

static NEXT_EDIT: AtomicU64 = AtomicU64::new(1);

/// A number larger than every earlier edit's.
pub fn next_edit_number() -> u64 {
    NEXT_EDIT.fetch_add(1, Ordering::Relaxed)
}

/// The undo and redo stacks of one part of the document: the state before each edit (`S`, a
/// snapshot), numbered in the one order above; undo keeps at most `LIMIT` edits.
#[derive(Debug, Clone)]
pub struct EditHistory<S, const LIMIT: usize> {
    undo: VecDeque<(u64, S)>,
    redo: Vec<(u64, S)>,
}

impl<S, const LIMIT: usize> Default for EditHistory<S, LIMIT> {
    fn default() -> Self {
        Self {
            undo: VecDeque::new(),
            redo: Vec::new(),
        }
    }
}

impl<S, const LIMIT: usize> EditHistory<S, LIMIT> {
    /// Call with the state before an edit, so that undo can bring it back. Drops the redo steps.
    pub fn remember(&mut self, before: S) {
        self.undo.push_back((next_edit_number(), before));
        if self.undo.len() > LIMIT {
            self.undo.pop_front();
        }
        self.redo.clear();
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    /// When the edit undo would take back was made (None: nothing to undo).
    pub fn last_undo_edit(&self) -> Option<u64> {
        self.undo.back().map(|(edit, _)| *edit)
    }

    /// When the edit redo would make again was made (None: nothing to redo).
    pub fn last_redo_edit(&self) -> Option<u64> {
        self.redo.last().map(|(edit, _)| *edit)
    }

    /// Forgets what redo could make again (an edit elsewhere came after it).
    pub fn clear_redo(&mut self) {
        self.redo.clear();
    }

    /// Takes the latest edit back: the state to restore, with `current()` kept for redo under
    /// the same edit number.
    pub fn undo(&mut self, current: impl FnOnce() -> S) -> Option<S> {
        let (edit, before) = self.undo.pop_back()?;
        self.redo.push((edit, current()));
        Some(before)
    }

    /// Makes the last undone edit again: the state to restore, with `current()` kept for undo.
    pub fn redo(&mut self, current: impl FnOnce() -> S) -> Option<S> {
        let (edit, after) = self.redo.pop()?;
        self.undo.push_back((edit, current()));
        Some(after)
    }
}

/// Which history Ctrl+Z (or Ctrl+Shift+Z) should step: the one whose next edit is the latest
/// (undo) or the earliest (redo). `selections` and `annotations` are their next edit numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditTarget {
    Selections,
    Annotations,
}

/// The history whose edit number `selections_first` prefers (None: neither has one).
fn target(
    selections: Option<u64>,
    annotations: Option<u64>,
    selections_first: impl Fn(u64, u64) -> bool,
) -> Option<EditTarget> {
    match (selections, annotations) {
        (Some(s), Some(a)) => Some(if selections_first(s, a) {
            EditTarget::Selections
        } else {
            EditTarget::Annotations
        }),
        (Some(_), None) => Some(EditTarget::Selections),
        (None, Some(_)) => Some(EditTarget::Annotations),
        (None, None) => None,
    }
}

/// Undo steps the history whose latest edit is the newer.
pub fn undo_target(selections: Option<u64>, annotations: Option<u64>) -> Option<EditTarget> {
    target(selections, annotations, |s, a| s > a)
}

/// Redo steps the edit that was undone last, which is the one with the lowest number among the
/// two redo stacks' tops.
pub fn redo_target(selections: Option<u64>, annotations: Option<u64>) -> Option<EditTarget> {
    target(selections, annotations, |s, a| s < a)
}

impl DocumentState {
    /// Ctrl+Z: takes back the latest edit, to the selections or to the annotations.
    pub fn undo_edit(&mut self) {
        match undo_target(
            self.selections.history().last_undo_edit(),
            self.annotations.history().last_undo_edit(),
        ) {
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
        let newest_undo = self
            .selections
            .history()
            .last_undo_edit()
            .max(self.annotations.history().last_undo_edit());
        if newest_undo.is_some() {
            if self.selections.history().last_redo_edit() < newest_undo {
                self.selections.clear_redo();
            }
            if self.annotations.history().last_redo_edit() < newest_undo {
                self.annotations.clear_redo();
            }
        }
        match redo_target(
            self.selections.history().last_redo_edit(),
            self.annotations.history().last_redo_edit(),
        ) {
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

    #[test]
    fn history_keeps_the_last_limit_edits_and_swaps_states_with_redo() {
        let mut history = EditHistory::<u32, 3>::default();
        for state in 0..5 {
            history.remember(state);
        }
        let mut current = 5;
        let mut undone = Vec::new();
        while let Some(before) = history.undo(|| current) {
            undone.push(before);
            current = before;
        }
        assert_eq!(undone, [4, 3, 2], "only the last three edits are kept");
        assert_eq!(history.redo(|| current), Some(3));
        assert_eq!(history.undo(|| 3), Some(2));
        history.remember(2);
        assert!(!history.can_redo(), "a new edit drops the redo steps");
    }
}
