//! Session files: a versioned JSON of what a session holds (slide, bundle, alignment, view,
//! layer styles, selections, annotations, bookmarks, model runs), with paths stored relative to
//! the session file so that a moved project folder still opens, atomic writes (temp file +
//! rename), and reading that names the file and what is wrong with it. No app state here.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::io::records::{Annotation, AnnotationClass, Bookmark};
use crate::layers::morphology_layer::ChannelStyle;
use crate::util::fs::write_atomically;

pub const SESSION_FORMAT: &str = "cellsymphony-session";
pub const SESSION_VERSION: u32 = 1;
/// The extension session files are saved with.
pub const SESSION_EXTENSION: &str = "cellsymphony";

/// A path as stored: relative to the session file's folder when it has one (tried first), and
/// absolute (tried when the relative one is not there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPath {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative: Option<String>,
    pub absolute: String,
}

impl StoredPath {
    /// Stores `path` relative to `base_dir` (the session's folder) when there is one.
    pub fn new(path: &Path, base_dir: Option<&Path>) -> Self {
        let absolute = absolute(path);
        Self {
            relative: base_dir
                .and_then(|base| relative_path(&absolute, &self::absolute(base)))
                .map(|p| path_to_slashes(&p)),
            absolute: absolute.to_string_lossy().into_owned(),
        }
    }

    /// The path to open: the relative one if it exists beside the session, else the absolute.
    pub fn resolve(&self, base_dir: Option<&Path>) -> PathBuf {
        if let (Some(relative), Some(base)) = (&self.relative, base_dir) {
            // Folded first: the path checked is the path returned.
            let candidate = normalise(&base.join(relative));
            if candidate.exists() {
                return candidate;
            }
        }
        PathBuf::from(&self.absolute)
    }
}

/// `path` made absolute against the current directory, `.` and `..` folded.
pub fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| path.to_path_buf(), |cwd| cwd.join(path))
    };
    normalise(&joined)
}

/// Folds `.` and `..` components without touching the file system.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// `path` relative to `base` (both absolute and normalised), with `..` where needed; None when
/// they share no root (another drive).
pub fn relative_path(path: &Path, base: &Path) -> Option<PathBuf> {
    let path_parts: Vec<Component> = path.components().collect();
    let base_parts: Vec<Component> = base.components().collect();
    if path_parts.first() != base_parts.first() {
        return None;
    }
    let common = path_parts.iter().zip(&base_parts).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..base_parts.len() {
        out.push("..");
    }
    for part in &path_parts[common..] {
        out.push(part);
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    Some(out)
}

fn path_to_slashes(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// The H&E alignment: the matrix itself (it may have been made from landmarks and never saved)
/// and the CSV it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAlignment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<StoredPath>,
    /// Rows of the 3 x 3 affine mapping H&E pixels to Xenium morphology pixels.
    pub xenium_px_from_slide_px: [[f64; 3]; 3],
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rms_residual_um: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StoredView {
    pub center_in_world_um: [f64; 2],
    pub points_per_um: f64,
}

/// RGBA, 0–255, unmultiplied.
pub type StoredColour = [u8; 4];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum StoredColourBy {
    Uniform,
    Category(String),
    Numeric(String),
    Gene(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredClass {
    pub name: String,
    pub colour: StoredColour,
    pub visible: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredClassColumn {
    pub column: String,
    pub classes: Vec<StoredClass>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCellStyle {
    pub opacity: f32,
    pub cell_fill_alpha: f32,
    pub cell_line_alpha: f32,
    pub cell_line_px: f32,
    pub nucleus_fill_alpha: f32,
    pub nucleus_line_alpha: f32,
    pub nucleus_line_px: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTranscripts {
    pub visible: bool,
    pub opacity: f32,
    pub radius_px: f32,
    /// Sessions from before the threshold was adjustable used Xenium's default.
    #[serde(default = "default_min_qv")]
    pub min_qv: u8,
    /// Each feature's colour and whether it is shown, matched by name on restore.
    #[serde(default)]
    pub genes: Vec<StoredGene>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredGene {
    pub name: String,
    /// sRGB with alpha.
    pub colour: [u8; 4],
    pub visible: bool,
}

fn default_min_qv() -> u8 {
    cs_xenium::DEFAULT_MIN_QV as u8
}

/// How the slide is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StoredSlideLayer {
    pub visible: bool,
    pub opacity: f32,
}

/// How the morphology images are drawn: the layer and each channel, matched by name on restore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMorphologyLayer {
    pub visible: bool,
    pub opacity: f32,
    pub channels: Vec<StoredChannel>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredChannel {
    pub name: String,
    pub style: ChannelStyle,
}

/// How the cells are drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCellLayer {
    pub show_cells: bool,
    pub show_nuclei: bool,
    pub colour_by: StoredColourBy,
    pub uniform_colour: StoredColour,
    #[serde(default)]
    pub class_styles: Vec<StoredClassColumn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric_colour_map: Option<String>,
    /// The colour scale's range of a numeric column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric_range: Option<[f64; 2]>,
    pub cell_style: StoredCellStyle,
    /// Present when transcripts were shown: they are read again on restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcripts: Option<StoredTranscripts>,
    /// Xenium Explorer group files (CSV or analysis.zarr.zip) whose columns were imported: read
    /// again on restore, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_files: Vec<StoredPath>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StoredShape {
    Polygon { points_um: Vec<[f32; 2]> },
    Brush { centers_um: Vec<[f32; 2]>, radius_um: f32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredCombine {
    Replace,
    Add,
    Subtract,
    Intersect,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredStep {
    pub combine: StoredCombine,
    pub shape: StoredShape,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSelection {
    pub name: String,
    pub colour: StoredColour,
    pub visible: bool,
    pub steps: Vec<StoredStep>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredSelections {
    pub items: Vec<StoredSelection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<usize>,
}

/// A model run whose results were on the slide: its cache key (the bundle is the session's),
/// read back from the run cache on restore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredModelRun {
    /// "classifier" or "niches".
    pub kind: String,
    pub n_cells: usize,
    pub with_slide: bool,
    pub parameters: String,
    /// Hash of the cells it covered (0: all).
    pub scope: u64,
    /// The bundle folder the run was cached under (its cache key names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_bundle: Option<String>,
}

/// An open cohort as a session stores it: the manifest, the sample shown, every sample visited
/// as it was left (a session record of its own, without a cohort), the sample compared beside,
/// where predictions are read and written, and the classifier the Cohort tab applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCohort {
    pub manifest: StoredPath,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub parked: std::collections::BTreeMap<String, SessionFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compared: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<StoredPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<StoredCohortModel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub niche_model: Option<StoredCohortModel>,
}

/// A model the Cohort tab applies (a classifier, or a niche model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCohortModel {
    pub dir: StoredPath,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained_on: Option<String>,
}

/// Everything a session file holds. Sections an older file lacks read as empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionFile {
    pub format: String,
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slide: Option<StoredPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<StoredPath>,
    /// A second slide shown beside the first in the split view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare_slide: Option<StoredPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alignment: Option<StoredAlignment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<StoredView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slide_layer: Option<StoredSlideLayer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub morphology_layer: Option<StoredMorphologyLayer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell_layer: Option<StoredCellLayer>,
    #[serde(default)]
    pub selections: StoredSelections,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<Annotation>,
    /// The annotation classes, when they differ from the defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotation_classes: Vec<AnnotationClass>,
    /// Named views in tour order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bookmarks: Vec<Bookmark>,
    #[serde(default)]
    pub model_runs: Vec<StoredModelRun>,
    /// Set in autosaves: the session file they belong to (None: an unsaved session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autosave_of: Option<String>,
    /// The open cohort, of which this session shows one sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<StoredCohort>,
}

impl Default for SessionFile {
    fn default() -> Self {
        Self {
            format: SESSION_FORMAT.to_owned(),
            version: SESSION_VERSION,
            slide: None,
            bundle: None,
            compare_slide: None,
            alignment: None,
            view: None,
            slide_layer: None,
            morphology_layer: None,
            cell_layer: None,
            selections: StoredSelections::default(),
            annotations: Vec::new(),
            annotation_classes: Vec::new(),
            bookmarks: Vec::new(),
            model_runs: Vec::new(),
            autosave_of: None,
            cohort: None,
        }
    }
}

impl SessionFile {
    /// A one-line summary for prompts: what it opens and holds.
    pub fn summary(&self) -> String {
        let name = |p: &Option<StoredPath>| {
            p.as_ref().map(|p| {
                Path::new(&p.absolute)
                    .file_name()
                    .map_or_else(|| p.absolute.clone(), |n| n.to_string_lossy().into_owned())
            })
        };
        let mut parts = Vec::new();
        if let Some(cohort) = &self.cohort {
            let manifest = name(&Some(cohort.manifest.clone())).unwrap_or_default();
            match &cohort.active {
                Some(id) => parts.push(format!("cohort {manifest} (sample {id})")),
                None => parts.push(format!("cohort {manifest}")),
            }
        }
        if let Some(slide) = name(&self.slide) {
            parts.push(format!("slide {slide}"));
        }
        if let Some(bundle) = name(&self.bundle) {
            parts.push(format!("bundle {bundle}"));
        }
        let selections = self.selections.items.len();
        if selections > 0 {
            parts.push(format!("{selections} selection(s)"));
        }
        if !self.annotations.is_empty() {
            parts.push(format!("{} annotation(s)", self.annotations.len()));
        }
        if !self.bookmarks.is_empty() {
            parts.push(format!("{} bookmark(s)", self.bookmarks.len()));
        }
        if parts.is_empty() {
            "nothing open".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// Writes `session` to `path` atomically: a temp file in the same folder, flushed, then renamed
/// over the old file, so a crash mid-write leaves the old file whole.
pub fn write_session(path: &Path, session: &SessionFile) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(session).context("encoding the session")?;
    write_atomically(path, &json)
}

/// Reads a session file; the error names the file and says what is wrong (missing, not JSON,
/// truncated, another format, a newer version, a field of the wrong kind).
pub fn read_session(path: &Path) -> anyhow::Result<SessionFile> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read the session file {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        let what = if e.is_eof() {
            "is truncated: it ends in the middle of the JSON".to_owned()
        } else {
            format!("is not valid JSON ({e})")
        };
        anyhow::anyhow!("the session file {} {what}", path.display())
    })?;
    let format = value.get("format").and_then(|f| f.as_str()).unwrap_or_default();
    if format != SESSION_FORMAT {
        bail!(
            "{} is not a CellSymphony session file (format {:?}, expected {SESSION_FORMAT:?})",
            path.display(),
            format
        );
    }
    let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
    if version > u64::from(SESSION_VERSION) {
        bail!(
            "{} was written by a newer CellSymphony (session version {version}; this build reads up to {SESSION_VERSION})",
            path.display()
        );
    }
    serde_json::from_value(value)
        .map_err(|e| anyhow::anyhow!("the session file {} has a bad entry: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_stored_relative_and_survive_a_moved_folder() {
        let base = Path::new("/data/project");
        assert_eq!(
            relative_path(Path::new("/data/project/slides/a.svs"), base),
            Some(PathBuf::from("slides/a.svs"))
        );
        assert_eq!(
            relative_path(Path::new("/data/other/b"), base),
            Some(PathBuf::from("../other/b"))
        );
        assert_eq!(normalise(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));

        let root = std::env::temp_dir().join(format!("cs_session_paths_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let project = root.join("project");
        std::fs::create_dir_all(project.join("slides")).unwrap();
        std::fs::write(project.join("slides/a.svs"), b"x").unwrap();
        let stored = StoredPath::new(&project.join("slides/a.svs"), Some(&project));
        assert_eq!(stored.relative.as_deref(), Some("slides/a.svs"));
        let moved = root.join("moved");
        std::fs::rename(&project, &moved).unwrap();
        assert_eq!(stored.resolve(Some(&moved)), moved.join("slides/a.svs"));
        // Not beside the session any more: the absolute path is what is left.
        assert_eq!(stored.resolve(Some(&root)), PathBuf::from(&stored.absolute));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn bad_session_files_are_named_with_what_is_wrong() {
        let dir = std::env::temp_dir().join(format!("cs_session_bad_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.cellsymphony");
        let session = SessionFile {
            view: Some(StoredView {
                center_in_world_um: [1.0, 2.0],
                points_per_um: 0.5,
            }),
            ..Default::default()
        };
        write_session(&path, &session).unwrap();
        assert_eq!(read_session(&path).unwrap(), session);
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = |contents: &str, needle: &str| {
            std::fs::write(&path, contents).unwrap();
            let message = format!("{:#}", read_session(&path).unwrap_err());
            assert!(
                message.contains("s.cellsymphony") && message.contains(needle),
                "{message}"
            );
        };
        expect(&text[..text.len() / 2], "truncated");
        expect("not json", "not valid JSON");
        expect(
            r#"{"format": "something-else", "version": 1}"#,
            "not a CellSymphony session",
        );
        expect(r#"{"format": "cellsymphony-session", "version": 7}"#, "newer");
        expect(
            r#"{"format": "cellsymphony-session", "version": 1, "view": {"center_in_world_um": "x"}}"#,
            "bad entry",
        );
        // No temp files left behind.
        let leftovers = std::fs::read_dir(&dir).unwrap().filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        });
        assert_eq!(leftovers.count(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
