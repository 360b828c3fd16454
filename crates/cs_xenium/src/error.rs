//! Errors and warnings of bundle loading. Each names the file, and the column and row when known.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum XeniumError {
    #[error("{dir}: not a Xenium bundle: {what} is missing")]
    MissingFile { dir: PathBuf, what: String },

    #[error("cannot read {file}: {reason}")]
    Io { file: PathBuf, reason: String },

    #[error("{file} is not a valid {format} file: {reason}")]
    Corrupt {
        file: PathBuf,
        format: &'static str,
        reason: String,
    },

    #[error("{file} has no column {column:?} (columns: {found})")]
    MissingColumn {
        file: PathBuf,
        column: String,
        found: String,
    },

    #[error("{file}, column {column:?}: expected {expected}, found {found}")]
    WrongType {
        file: PathBuf,
        column: String,
        expected: &'static str,
        found: String,
    },

    #[error("{file}, column {column:?}, row {row}: {reason}")]
    BadValue {
        file: PathBuf,
        column: String,
        /// 1-based data row (the header is not counted).
        row: usize,
        reason: String,
    },

    #[error("{file}, row {row}: cell id {id:?} appears again (first at row {first_row})")]
    DuplicateId {
        file: PathBuf,
        id: String,
        row: usize,
        first_row: usize,
    },

    #[error("{file}: {reason}")]
    Mismatch { file: PathBuf, reason: String },
}

/// A problem that does not stop loading (a missing optional file, unmatched rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadWarning {
    pub file: Option<PathBuf>,
    pub message: String,
}

impl std::fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}: {}", file.display(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

pub(crate) fn io_error(file: &std::path::Path, error: impl std::fmt::Display) -> XeniumError {
    XeniumError::Io {
        file: file.to_path_buf(),
        reason: error.to_string(),
    }
}
