//! What a step's output was made from, so a rerun skips samples whose inputs and parameters did
//! not change: every file under the input paths (relative name, size, modification time) and the
//! parameters, hashed with 64-bit FNV-1a into a stable hex string (the standard library's hasher
//! may change between Rust releases; the fingerprint is stored on disk).

use std::path::Path;

/// A stable hash of inputs and parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint(pub String);

/// Files looked at under one folder at most (a SpatialData store can hold many chunks).
const MAX_FILES: usize = 200_000;

/// Fingerprints `paths` (files or folders, walked recursively; a missing path counts as missing)
/// together with `parameters`.
pub fn fingerprint_paths(paths: &[&Path], parameters: &str) -> Fingerprint {
    let mut hash = Fnv::new();
    hash.write(parameters.as_bytes());
    for path in paths {
        hash.write(b"\0path\0");
        hash.write(path.to_string_lossy().as_bytes());
        let mut files = Vec::new();
        collect_files(path, path, &mut files);
        files.sort();
        for entry in files {
            hash.write(b"\0");
            hash.write(entry.as_bytes());
        }
    }
    Fingerprint(format!("{:016x}", hash.finish()))
}

/// `relative name|size|mtime` of every file under `path`.
fn collect_files(root: &Path, path: &Path, out: &mut Vec<String>) {
    let Ok(metadata) = std::fs::metadata(path) else {
        out.push(format!("{}|missing", path.display()));
        return;
    };
    if metadata.is_file() {
        let modified = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let name = path.strip_prefix(root).unwrap_or(path);
        out.push(format!("{}|{}|{modified}", name.display(), metadata.len()));
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        out.push(format!("{}|unreadable", path.display()));
        return;
    };
    for entry in entries.flatten() {
        if out.len() >= MAX_FILES {
            return;
        }
        collect_files(root, &entry.path(), out);
    }
}

struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_with_files_and_parameters() {
        let dir = std::env::temp_dir().join(format!("cs_cohort_fp_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/cells.csv"), b"1,2").unwrap();
        let a = fingerprint_paths(&[&dir], "step=embed");
        assert_eq!(a, fingerprint_paths(&[&dir], "step=embed"));
        assert_ne!(a, fingerprint_paths(&[&dir], "step=embed seed=1"));
        std::fs::write(dir.join("sub/cells.csv"), b"1,2,3").unwrap();
        assert_ne!(a, fingerprint_paths(&[&dir], "step=embed"));
        // FNV-1a of the empty input is its offset basis.
        assert_eq!(fingerprint_paths(&[], "").0, "cbf29ce484222325");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
