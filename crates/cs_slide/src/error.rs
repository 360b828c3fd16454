//! Typed errors of slide access. Every failure names the file it concerns.

use std::path::PathBuf;

/// Why a slide could not be opened or read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SlideError {
    #[error("cannot open slide {path}: the file does not exist")]
    NotFound { path: PathBuf },

    #[error("cannot open slide {path}: not a whole-slide format OpenSlide recognises")]
    Unsupported { path: PathBuf },

    #[error("cannot open slide {path}: {reason}")]
    CannotOpen { path: PathBuf, reason: String },

    #[error("cannot read {what} of slide {path}: {reason}")]
    ReadFailed {
        path: PathBuf,
        what: String,
        reason: String,
    },

    #[error("slide {path} has no associated image named {name:?}")]
    NoSuchAssociatedImage { path: PathBuf, name: String },

    #[error("invalid request for slide {path}: {reason}")]
    InvalidRequest { path: PathBuf, reason: String },
}
