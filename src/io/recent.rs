//! Recently opened files, most recent first, persisted through eframe's storage.

use std::path::{Path, PathBuf};

const MAX_RECENT: usize = 10;
const STORAGE_KEY: &str = "recent_files";

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecentFiles {
    paths: Vec<PathBuf>,
}

impl RecentFiles {
    pub fn load(storage: Option<&dyn eframe::Storage>) -> Self {
        storage
            .and_then(|s| eframe::get_value(s, STORAGE_KEY))
            .unwrap_or_default()
    }

    pub fn save(&self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, STORAGE_KEY, self);
    }

    pub fn add(&mut self, path: &Path) {
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.paths.retain(|p| p != &path);
        self.paths.insert(0, path);
        self.paths.truncate(MAX_RECENT);
    }

    pub fn remove(&mut self, path: &Path) {
        self.paths.retain(|p| p != path);
    }

    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_recent_first_without_duplicates() {
        let mut recent = RecentFiles::default();
        for i in 0..15 {
            recent.add(Path::new(&format!("/nowhere/slide{i}.svs")));
        }
        recent.add(Path::new("/nowhere/slide12.svs"));
        assert_eq!(recent.paths().len(), MAX_RECENT);
        assert_eq!(recent.paths()[0], Path::new("/nowhere/slide12.svs"));
        assert_eq!(recent.paths()[1], Path::new("/nowhere/slide14.svs"));
        assert_eq!(recent.paths().iter().filter(|p| p.ends_with("slide12.svs")).count(), 1);
    }
}
