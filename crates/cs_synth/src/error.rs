//! The one error type of the generator. Every variant that concerns a file names it.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// `cancelled()` turned true; no `SYNTH_OK` was written.
    #[error("synthetic data generation was cancelled")]
    Cancelled,

    #[error("invalid synthetic data options: {reason}")]
    InvalidOptions { reason: String },

    #[error("cannot write {path}: {reason}")]
    Io { path: PathBuf, reason: String },

    #[error("cannot encode {path}: {reason}")]
    Encode { path: PathBuf, reason: String },
}

pub(crate) fn io_error(path: &Path, error: impl std::fmt::Display) -> SynthError {
    SynthError::Io {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}

pub(crate) fn encode_error(path: &Path, error: impl std::fmt::Display) -> SynthError {
    SynthError::Encode {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}
