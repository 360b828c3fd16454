//! Staged output files: everything is written to `<name>.part` and renamed into place only when
//! complete, so an interrupted run never leaves a half-written file under its final name.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{SynthError, io_error};

/// A file being written under a temporary name.
pub(crate) struct Staged {
    final_path: PathBuf,
    part_path: PathBuf,
}

impl Staged {
    pub fn new(final_path: &Path) -> Self {
        let mut name = final_path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".part");
        Self {
            final_path: final_path.to_path_buf(),
            part_path: final_path.with_file_name(name),
        }
    }

    /// The final path (for error messages: errors name the file the caller asked for).
    pub fn path(&self) -> &Path {
        &self.final_path
    }

    /// The temporary path, for writers that create the file themselves.
    pub fn part_path(&self) -> &Path {
        &self.part_path
    }

    pub fn create(&self) -> Result<File, SynthError> {
        File::create(&self.part_path).map_err(|e| io_error(&self.final_path, e))
    }

    pub fn create_buffered(&self) -> Result<BufWriter<File>, SynthError> {
        Ok(BufWriter::with_capacity(1 << 20, self.create()?))
    }

    /// Renames the finished temporary file to its final name.
    pub fn commit(self) -> Result<PathBuf, SynthError> {
        std::fs::rename(&self.part_path, &self.final_path).map_err(|e| io_error(&self.final_path, e))?;
        Ok(self.final_path)
    }

    /// Writes `bytes` and commits at once.
    pub fn write_all(self, bytes: &[u8]) -> Result<PathBuf, SynthError> {
        let mut file = self.create_buffered()?;
        file.write_all(bytes).map_err(|e| io_error(&self.final_path, e))?;
        finish(file, &self.final_path)?;
        self.commit()
    }
}

/// Flushes a buffered file and syncs nothing more (the rename is the commit point).
pub(crate) fn finish(mut file: BufWriter<File>, path: &Path) -> Result<(), SynthError> {
    file.flush().map_err(|e| io_error(path, e))?;
    file.into_inner().map_err(|e| io_error(path, e.error()))?;
    Ok(())
}

/// Removes `path` if it exists (a stale output of an earlier run with other options).
pub(crate) fn remove_if_exists(path: &Path) -> Result<(), SynthError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(path, e)),
    }
}

/// Removes every `*.part` file directly inside `dir` (best effort, after a failed or cancelled run).
pub(crate) fn remove_part_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            remove_part_files(&path);
        } else if path.extension().is_some_and(|e| e == "part") {
            let _ = std::fs::remove_file(&path);
        }
    }
}
