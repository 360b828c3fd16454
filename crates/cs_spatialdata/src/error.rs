//! Typed errors of SpatialData reading. Every error names the store, element or file it concerns.

use std::path::PathBuf;

#[derive(Debug, Clone, thiserror::Error)]
pub enum SpatialDataError {
    #[error("{path}: {reason}")]
    NotSpatialData { path: PathBuf, reason: String },

    #[error("{path}: missing {what}")]
    Missing { path: PathBuf, what: String },

    #[error("{path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },

    #[error("{path}: {reason}")]
    Unsupported { path: PathBuf, reason: String },
}

pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> SpatialDataError {
    SpatialDataError::Corrupt {
        path: path.into(),
        reason: reason.to_string(),
    }
}

pub(crate) fn missing(path: impl Into<PathBuf>, what: impl Into<String>) -> SpatialDataError {
    SpatialDataError::Missing {
        path: path.into(),
        what: what.into(),
    }
}
