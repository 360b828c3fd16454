//! Atomic file writes: the bytes go to a uniquely named temp file in the same folder, are
//! flushed to disk (fsync), then renamed over the target, so a crash or a second writer never
//! leaves a half-written file under the target's name. Every file the app writes goes through
//! [`write_atomically`].

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, bail};

/// Writes `bytes` to `path` atomically; the folder is created if needed. The error names `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file_name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    // Unique per write and process: an autosave and a Save of the same file may overlap.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!(".{file_name}.{}.{n}.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temp);
        bail!("cannot write {}: {error}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_the_file_whole_and_leave_no_temp_files() {
        let dir = std::env::temp_dir().join(format!("cs_atomic_{}", std::process::id()));
        let path = dir.join("nested").join("out.json");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let leftovers = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .count();
        assert_eq!(leftovers, 0);
        // A folder cannot be replaced by a file: the error names the target.
        let error = write_atomically(&dir.join("nested"), b"x").unwrap_err();
        assert!(format!("{error:#}").contains("nested"), "{error:#}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
