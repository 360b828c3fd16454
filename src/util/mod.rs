//! Small leaves the rest of the app shares, with no knowledge of it: how numbers and units are
//! written ([`format`]), atomic file writes ([`fs`]) and file names in messages
//! ([`display_name`]).
//!
//! May import: std and external crates only. Everything in `src/` may import it.

pub mod format;
pub mod fs;

use std::path::Path;

/// A file's name for messages and labels (the whole path when it has no name).
pub fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
