//! Where tests and benchmarks find the real test data in `../shared/data` (next to the repository).
//!
//! `CELLSYMPHONY_DATA` overrides the folder. When the data is missing, tests skip with a message,
//! except under `CI=true`, where they fail loudly: CI must never pass by skipping.

use std::path::{Path, PathBuf};

/// The shared data folder: `$CELLSYMPHONY_DATA`, else `<repo>/../shared/data`.
pub fn shared_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CELLSYMPHONY_DATA") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

fn running_in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The path of `relative` inside the shared data, or `None` (with a note on stderr) when it is
/// missing outside CI.
///
/// # Panics
/// Under `CI=true` when the file is missing.
#[allow(clippy::panic)]
pub fn shared_file(relative: &str) -> Option<PathBuf> {
    let path = shared_data_dir().join(relative);
    if path.exists() {
        return Some(path);
    }
    if running_in_ci() {
        panic!(
            "test data {} is missing (CI=true, so this fails instead of skipping); \
             the shared data must sit beside the repository in ../shared/data",
            path.display()
        );
    }
    eprintln!("skipping: test data {} is missing", path.display());
    None
}
