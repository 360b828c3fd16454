//! The app's structure as ARCHITECTURE.md states it: imports between `src/` folders go one way
//! (app -> ui -> viewer -> document -> work -> io -> layers -> util; cli and bench beside app),
//! and nothing but the shell's folder and `main.rs` names the shell (lib.rs does not re-export it).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::{Path, PathBuf};

/// The folders, top to bottom: each may import only the ones after it.
const LAYERS: [&str; 8] = ["app", "ui", "viewer", "document", "work", "io", "layers", "util"];
/// Beside the shell: they may import every layer but the shell.
const BESIDE_APP: [&str; 2] = ["cli", "bench"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its test module (tests may reach anywhere).
fn non_test_code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// The top-level modules of the crate a piece of code names: `crate::x::...` and the roots of
/// `use crate::{x, y::z}`.
fn crate_roots(code: &str) -> Vec<String> {
    let mut roots = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let root: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                roots.push(root);
            }
        } else {
            roots.push(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
        }
    }
    roots.retain(|r| !r.is_empty());
    roots
}

fn allowed(from: &str, to: &str) -> bool {
    if from == to {
        return true;
    }
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    match (rank(from), rank(to)) {
        (Some(a), Some(b)) => b > a,
        // cli and bench may use any layer below the shell, and each other (bench uses cli).
        (None, Some(b)) => BESIDE_APP.contains(&from) && b > 0,
        (None, None) => BESIDE_APP.contains(&from) && BESIDE_APP.contains(&to),
        (Some(_), None) => false,
    }
}

#[test]
fn imports_between_src_folders_go_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    let mut folders_seen = std::collections::BTreeSet::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let mut parts = relative.components();
        let (Some(first), Some(_)) = (parts.next(), parts.next()) else {
            continue; // lib.rs, main.rs
        };
        let folder = first.as_os_str().to_string_lossy().into_owned();
        assert!(
            LAYERS.contains(&folder.as_str()) || BESIDE_APP.contains(&folder.as_str()),
            "{folder}/ is in no layer: add it to ARCHITECTURE.md and this test"
        );
        folders_seen.insert(folder.clone());
        for root in crate_roots(&non_test_code(file)) {
            if !allowed(&folder, &root) {
                wrong.push(format!("{} imports crate::{root}", relative.display()));
            }
        }
    }
    assert_eq!(folders_seen.len(), LAYERS.len() + BESIDE_APP.len(), "{folders_seen:?}");
    assert!(
        wrong.is_empty(),
        "imports against the layer order:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn only_the_shell_and_main_name_the_shell() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let naming: Vec<String> = files
        .iter()
        .filter(|f| {
            let relative = f.strip_prefix(&src).unwrap();
            !(relative.starts_with("app") || relative == Path::new("main.rs"))
        })
        .filter(|f| std::fs::read_to_string(f).unwrap().contains("ViewerApp"))
        .map(|f| f.display().to_string())
        .collect();
    assert!(naming.is_empty(), "name the shell: {naming:?}");
}

#[test]
fn the_checks_see_a_wrong_import() {
    assert_eq!(
        crate_roots("use crate::ui::Command;\nuse crate::{layers::camera, util};"),
        ["ui", "layers", "util"]
    );
    assert!(allowed("ui", "viewer") && allowed("cli", "work") && allowed("bench", "cli"));
    assert!(!allowed("document", "viewer") && !allowed("util", "layers") && !allowed("cli", "app"));
}
