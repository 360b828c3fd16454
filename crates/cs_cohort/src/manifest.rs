//! The cohort manifest: one row per sample, as CSV (a header row) or TOML (`[[sample]]` tables).
//!
//! Columns (CSV) or keys (TOML): `sample_id` (also `sample` or `id`), `xenium` (the Xenium output
//! folder or SpatialData store; also `xenium_dir` or `bundle`), optional `slide` (the H&E) and
//! `alignment` (Xenium Explorer's CSV), and any others as metadata (`group` or `condition` first
//! among them). Paths are relative to the manifest's folder. A row that cannot run (its folder
//! is missing, its id is used twice or is not a usable folder name, its slide is not a file) is
//! kept with its problem, named by its line, so that the other samples still run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// One sample of the manifest.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    pub id: String,
    /// Where it is in the file: the CSV line, or the TOML table's number (`[[sample]]` #n).
    pub row: String,
    pub xenium: PathBuf,
    pub slide: Option<PathBuf>,
    pub alignment: Option<PathBuf>,
    /// The metadata columns' values, in [`Manifest::metadata_columns`] order ("" when blank).
    pub metadata: Vec<String>,
    /// Why this sample cannot run (None: it can).
    pub problem: Option<String>,
}

impl Sample {
    /// The value of a metadata column ("" when the manifest has no such column or it is blank).
    pub fn metadata_value<'a>(&'a self, manifest: &Manifest, column: &str) -> &'a str {
        manifest
            .metadata_columns
            .iter()
            .position(|c| c == column)
            .and_then(|i| self.metadata.get(i))
            .map_or("", String::as_str)
    }
}

/// A read manifest: its samples in file order and the metadata columns.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Manifest {
    pub path: PathBuf,
    pub metadata_columns: Vec<String>,
    pub samples: Vec<Sample>,
}

const ID_NAMES: [&str; 3] = ["sample_id", "sample", "id"];
const XENIUM_NAMES: [&str; 3] = ["xenium", "xenium_dir", "bundle"];

impl Manifest {
    /// Reads a manifest: TOML when the file ends in `.toml`, else CSV.
    pub fn read(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|e| ManifestError::Unreadable {
            path: path.to_path_buf(),
            reason: format!("cannot read the cohort manifest: {e}"),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rows = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml")) {
            toml_rows(path, &text)?
        } else {
            csv_rows(path, &text)?
        };
        Self::from_rows(path, base, rows)
    }

    /// The group column: `group` or `condition` when the manifest has one.
    pub fn group_column(&self) -> Option<&str> {
        ["group", "condition"]
            .into_iter()
            .find_map(|name| self.metadata_columns.iter().find(|c| c.eq_ignore_ascii_case(name)))
            .map(String::as_str)
    }

    /// `sample`'s group (its `group`/`condition` value), when the manifest has the column and
    /// the value is not blank.
    pub fn group_of<'a>(&self, sample: &'a Sample) -> Option<&'a str> {
        self.group_column()
            .map(|column| sample.metadata_value(self, column))
            .filter(|group| !group.is_empty())
    }

    /// The samples that can run.
    pub fn runnable(&self) -> impl Iterator<Item = &Sample> {
        self.samples.iter().filter(|s| s.problem.is_none())
    }

    /// Builds the samples from rows of (key, value) pairs, checking each.
    fn from_rows(path: &Path, base: &Path, rows: Vec<Row>) -> Result<Self, ManifestError> {
        let invalid = |reason: String| ManifestError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        if rows.is_empty() {
            return Err(invalid("the manifest lists no samples".into()));
        }
        // Metadata columns: every key that is not an id, path or alignment, in first-seen order,
        // with group/condition first.
        let reserved = |k: &str| {
            let k = k.to_ascii_lowercase();
            ID_NAMES.contains(&k.as_str()) || XENIUM_NAMES.contains(&k.as_str()) || k == "slide" || k == "alignment"
        };
        let mut metadata_columns: Vec<String> = Vec::new();
        for row in &rows {
            for (key, _) in &row.values {
                if !reserved(key) && !metadata_columns.contains(key) {
                    metadata_columns.push(key.clone());
                }
            }
        }
        metadata_columns.sort_by_key(|c| !matches!(c.to_ascii_lowercase().as_str(), "group" | "condition"));
        let has = |names: &[&str]| rows.iter().any(|r| r.get(names).is_some());
        if !has(&ID_NAMES) {
            return Err(invalid(format!(
                "no sample id column: name one of {}",
                ID_NAMES.join(", ")
            )));
        }
        if !has(&XENIUM_NAMES) {
            return Err(invalid(format!(
                "no Xenium folder column: name one of {}",
                XENIUM_NAMES.join(", ")
            )));
        }
        let resolve = |value: &str| {
            let p = PathBuf::from(value);
            if p.is_absolute() { p } else { base.join(p) }
        };
        let mut samples: Vec<Sample> = rows
            .iter()
            .map(|row| {
                let id = row.get(&ID_NAMES).unwrap_or("").to_owned();
                let xenium = row.get(&XENIUM_NAMES).map(resolve).unwrap_or_default();
                let slide = row.get(&["slide"]).map(resolve);
                let alignment = row.get(&["alignment"]).map(resolve);
                let problem = check_sample(
                    &id,
                    row.get(&XENIUM_NAMES),
                    &xenium,
                    slide.as_deref(),
                    alignment.as_deref(),
                );
                Sample {
                    id,
                    row: row.place.clone(),
                    xenium,
                    slide,
                    alignment,
                    metadata: metadata_columns
                        .iter()
                        .map(|c| row.get(&[c.as_str()]).unwrap_or("").to_owned())
                        .collect(),
                    problem,
                }
            })
            .collect();
        // An id used twice: every row with it is a problem (whose outputs would they be?).
        let mut places: HashMap<String, Vec<String>> = HashMap::new();
        for s in &samples {
            if !s.id.is_empty() {
                places.entry(s.id.clone()).or_default().push(s.row.clone());
            }
        }
        for s in &mut samples {
            if let Some(rows) = places.get(&s.id).filter(|rows| rows.len() > 1) {
                let duplicate = format!(
                    "sample id {:?} is used by {} rows ({})",
                    s.id,
                    rows.len(),
                    rows.join(", ")
                );
                s.problem = Some(match s.problem.take() {
                    Some(p) => format!("{duplicate}; {p}"),
                    None => duplicate,
                });
            }
        }
        Ok(Manifest {
            path: path.to_path_buf(),
            metadata_columns,
            samples,
        })
    }
}

/// Why a sample cannot run, if it cannot.
fn check_sample(
    id: &str,
    xenium_value: Option<&str>,
    xenium: &Path,
    slide: Option<&Path>,
    alignment: Option<&Path>,
) -> Option<String> {
    if id.is_empty() {
        return Some("no sample id".into());
    }
    if id == "." || id == ".." || id.chars().any(|c| matches!(c, '/' | '\\' | ':') || c.is_control()) {
        return Some(format!(
            "sample id {id:?} cannot name an output folder (no /, \\, : or control characters)"
        ));
    }
    if xenium_value.is_none() {
        return Some("no Xenium folder given".into());
    }
    if !xenium.exists() {
        return Some(format!("the Xenium folder {} does not exist", xenium.display()));
    }
    if let Some(slide) = slide
        && !slide.is_file()
    {
        return Some(format!("the slide {} is not a file", slide.display()));
    }
    if let Some(alignment) = alignment {
        if slide.is_none() {
            return Some("an alignment is given without a slide".into());
        }
        if !alignment.is_file() {
            return Some(format!("the alignment {} is not a file", alignment.display()));
        }
    }
    None
}

/// A manifest row: where it is, and its non-blank values by key.
struct Row {
    place: String,
    values: Vec<(String, String)>,
}

impl Row {
    /// The first non-blank value under any of `names` (case-insensitive).
    fn get(&self, names: &[&str]) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, v)| !v.is_empty() && names.iter().any(|n| k.eq_ignore_ascii_case(n)))
            .map(|(_, v)| v.as_str())
    }
}

fn csv_rows(path: &Path, text: &str) -> Result<Vec<Row>, ManifestError> {
    let invalid = |reason: String| ManifestError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| invalid(format!("the header row cannot be read: {e}")))?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = headers.iter().find(|h| !seen.insert(h.to_ascii_lowercase())) {
        return Err(invalid(format!("the column {twice:?} appears twice in the header")));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(String::new(), |p| format!("line {}: ", p.line()));
            invalid(format!("{line}{e}"))
        })?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        let line = record.position().map_or(0, |p| p.line());
        rows.push(Row {
            place: format!("line {line}"),
            values: headers.iter().cloned().zip(record.iter().map(str::to_owned)).collect(),
        });
    }
    Ok(rows)
}

fn toml_rows(path: &Path, text: &str) -> Result<Vec<Row>, ManifestError> {
    let invalid = |reason: String| ManifestError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| invalid(e.to_string()))?;
    let samples = table
        .get("sample")
        .and_then(toml::Value::as_array)
        .ok_or_else(|| invalid("no [[sample]] tables".into()))?;
    samples
        .iter()
        .enumerate()
        .map(|(i, sample)| {
            let place = format!("[[sample]] #{}", i + 1);
            let table = sample
                .as_table()
                .ok_or_else(|| invalid(format!("{place} is not a table")))?;
            let values = table
                .iter()
                .map(|(k, v)| {
                    let value = match v {
                        toml::Value::String(s) => s.trim().to_owned(),
                        toml::Value::Integer(n) => n.to_string(),
                        toml::Value::Float(x) => x.to_string(),
                        toml::Value::Boolean(b) => b.to_string(),
                        other => {
                            return Err(invalid(format!("{place}: {k} = {other} is not a single value")));
                        }
                    };
                    Ok((k.clone(), value))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Row { place, values })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cs_cohort_manifest_{name}_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::create_dir_all(dir.join("b")).unwrap();
        std::fs::write(dir.join("a.tif"), b"x").unwrap();
        dir
    }

    #[test]
    fn csv_rows_resolve_paths_and_name_their_problems() {
        let dir = folder("csv");
        let manifest = dir.join("cohort.csv");
        std::fs::write(
            &manifest,
            "sample_id,xenium,slide,alignment,condition,site\n\
             S1,a,a.tif,,responder,kidney\n\
             S2,b,,,non-responder,\n\
             S3,missing,,,responder,lung\n\
             S2,a,,,responder,\n\
             S/5,a,,,responder,\n\
             S6,b,nope.tif,,responder,\n",
        )
        .unwrap();
        let m = Manifest::read(&manifest).unwrap();
        assert_eq!(m.metadata_columns, ["condition", "site"]);
        assert_eq!(m.group_column(), Some("condition"));
        assert_eq!(m.samples.len(), 6);
        let s1 = &m.samples[0];
        assert_eq!(
            (s1.xenium.clone(), s1.slide.clone()),
            (dir.join("a"), Some(dir.join("a.tif")))
        );
        assert_eq!(s1.problem, None);
        assert_eq!(s1.metadata_value(&m, "site"), "kidney");
        assert_eq!(m.group_of(s1), Some("responder"));
        let problem = |i: usize| m.samples[i].problem.clone().unwrap_or_default();
        assert!(
            problem(1).contains("\"S2\" is used by 2 rows (line 3, line 5)"),
            "{}",
            problem(1)
        );
        assert!(problem(2).contains("missing") && problem(2).contains("does not exist"));
        assert_eq!(m.samples[2].row, "line 4");
        assert!(problem(4).contains("output folder"));
        assert!(problem(5).contains("nope.tif"));
        assert_eq!(m.runnable().count(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn toml_samples_and_file_level_errors() {
        let dir = folder("toml");
        let manifest = dir.join("cohort.toml");
        std::fs::write(
            &manifest,
            "[[sample]]\nid = \"S1\"\nxenium = \"a\"\ngroup = \"A\"\nage = 61\n\n\
             [[sample]]\nid = \"S2\"\nxenium = \"b\"\ngroup = \"B\"\n",
        )
        .unwrap();
        let m = Manifest::read(&manifest).unwrap();
        assert_eq!(m.metadata_columns, ["group", "age"]);
        assert_eq!(m.samples[1].row, "[[sample]] #2");
        assert_eq!(m.samples[0].metadata, ["A", "61"]);
        assert_eq!(m.samples[1].metadata, ["B", ""]);
        assert_eq!(m.runnable().count(), 2);
        // No id column, no rows, a missing file: each named.
        let bad = dir.join("bad.csv");
        std::fs::write(&bad, "name,xenium\nS1,a\n").unwrap();
        let e = Manifest::read(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.csv") && e.contains("sample id"), "{e}");
        std::fs::write(&bad, "sample_id,xenium\n").unwrap();
        assert!(Manifest::read(&bad).unwrap_err().to_string().contains("no samples"));
        let e = Manifest::read(&dir.join("none.csv")).unwrap_err().to_string();
        assert!(e.contains("none.csv"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
