//! One order for all edits: each edit that undo can take back gets the next number, so Ctrl+Z
//! takes back the latest edit whether it was to the selections or to the annotations.

use std::sync::atomic::{AtomicU64, Ordering};

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
