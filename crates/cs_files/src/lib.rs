//! Atomic file writes, the one helper the crates and the app write files through: the bytes go to
//! a uniquely named temp file in the target's folder, are flushed to disk (fsync), and the temp
//! file is renamed over the target. A crash, a full disk or a second writer never leaves a
//! half-written file under the target's name, and two writers of one file never share a temp
//! file. Errors are `std::io::Error`s; callers name the file in their own error types.
//!
//! (The synthetic-data generator stages its output as `.part` files without fsync: it is
//! regenerated at will, and syncing gigapixel slides would slow the demo down.)

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A file being written under a unique temp name beside its target. Write through it (or through
/// `&File` from [`AtomicFile::file`], for writers that want a handle); [`AtomicFile::commit`]
/// syncs it and renames it over the target. Dropped uncommitted, the temp file is removed.
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    file: File,
    committed: bool,
}

impl AtomicFile {
    /// Creates the temp file (and the target's folder, if it is missing).
    pub fn create(target: &Path) -> std::io::Result<Self> {
        let dir = target
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let name = target
            .file_name()
            .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
        // Unique per process and write: writes of one file may overlap (an autosave and a Save).
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let n = WRITES.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        let file = File::create(&temp)?;
        Ok(Self {
            target: target.to_path_buf(),
            temp,
            file,
            committed: false,
        })
    }

    /// The open temp file (`&File` writes too, for writers that take a handle by value).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Syncs the temp file to disk and renames it over the target.
    pub fn commit(mut self) -> std::io::Result<()> {
        self.file.flush()?;
        self.file.sync_all()?;
        std::fs::rename(&self.temp, &self.target)?;
        self.committed = true;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.file.write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Writes `bytes` to `target` atomically (see the crate's docs).
pub fn write_atomically(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = AtomicFile::create(target)?;
    file.write_all(bytes)?;
    file.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leftovers(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
                    .count()
            })
            .unwrap_or(0)
    }

    #[test]
    fn a_write_replaces_the_file_whole_and_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("cs_files_{}", std::process::id()));
        let target = dir.join("nested").join("out.csv");
        write_atomically(&target, b"first").unwrap();
        write_atomically(&target, b"second").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"second");
        assert_eq!(leftovers(target.parent().unwrap()), 0);
        // Two writers of one file at once: each has its own temp file, the last commit wins.
        let mut a = AtomicFile::create(&target).unwrap();
        let mut b = AtomicFile::create(&target).unwrap();
        a.write_all(b"from a").unwrap();
        b.write_all(b"from b").unwrap();
        a.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"from a");
        b.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"from b");
        // A write dropped before its commit (an error midway) leaves the old file and no temp.
        let mut dropped = AtomicFile::create(&target).unwrap();
        dropped.write_all(b"half").unwrap();
        drop(dropped);
        assert_eq!(std::fs::read(&target).unwrap(), b"from b");
        assert_eq!(leftovers(target.parent().unwrap()), 0);
        // A folder cannot be replaced by a file.
        assert!(write_atomically(&dir.join("nested"), b"x").is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
