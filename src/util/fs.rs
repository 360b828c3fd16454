//! Atomic file writes for the app: `cs_files` (a unique temp file beside the target, fsync, then
//! rename), with errors that name the file. Every file the app writes goes through
//! [`write_atomically`].

use std::path::Path;

use anyhow::Context as _;

/// Writes `bytes` to `path` atomically (through `cs_files`); the folder is created if needed.
/// The error names `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    cs_files::write_atomically(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_names_the_file() {
        let dir = std::env::temp_dir().join(format!("cs_util_fs_{}", std::process::id()));
        write_atomically(&dir.join("a").join("out.txt"), b"ok").unwrap();
        // A folder cannot be replaced by a file: the error names the target.
        let error = write_atomically(&dir.join("a"), b"x").unwrap_err();
        assert!(
            format!("{error:#}").contains(&dir.join("a").display().to_string()),
            "{error:#}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
