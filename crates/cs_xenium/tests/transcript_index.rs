//! The tiled transcript index gives back exactly the transcripts the file holds (positions to
//! the index's quantisation step, tile side / 65535), with the same genes, cells, qualities and
//! counts as the in-memory reader; a damaged cache file is refused with its name and rebuilt.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::atomic::AtomicBool;

use cs_testdata::shared_file;
use cs_xenium::transcript_index::{TranscriptIndex, build_index, open_or_build_index};
use cs_xenium::{TranscriptSummary, XeniumBundle};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cs_index_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// (gene name, cell, qv) and rounded position of each transcript, sorted.
type Key = (String, u32, u8, i64, i64);

fn check_bundle(name: &str) {
    let Some(dir) = shared_file(&format!("xenium/{name}")) else {
        return;
    };
    let bundle = XeniumBundle::open(&dir).unwrap();
    let Some(source) = bundle.files.transcripts.clone() else {
        return;
    };
    let layout = &bundle.files.transcript_layout;
    let out = temp_dir(&name.replace('/', "_"));
    let mut reports = Vec::new();
    let index = build_index(&source, layout, &bundle.cells, &out.join("t.cstidx"), &mut |f| {
        reports.push(f);
        true
    })
    .unwrap();
    assert!(reports.windows(2).all(|w| w[0] <= w[1]), "progress only grows");
    assert_eq!(reports.last().copied(), Some(1.0));

    let all = bundle.load_transcripts(0.0).unwrap().unwrap();
    assert_eq!(index.total as usize, all.len());
    let mut names = index.genes.clone();
    names.sort();
    let mut expected_names = all.genes.clone();
    expected_names.sort();
    assert_eq!(names, expected_names);

    // Every transcript, from every tile, against the file.
    let step_um = index.tile_um / 65535.0;
    let key = |gene: &str, cell: u32, qv: u8, x: f32, y: f32| -> Key {
        let q = |v: f32| (f64::from(v) / (4.0 * step_um)).round() as i64;
        (gene.to_owned(), cell, qv, q(x), q(y))
    };
    let shown = vec![true; index.genes.len()];
    let mut from_index: Vec<Key> = Vec::new();
    let mut max_error_um = 0.0f64;
    for tile in 0..index.tile_count() as u32 {
        let p = index.read_tile(tile, &shown, 0).unwrap();
        for i in 0..p.len() {
            from_index.push(key(
                &index.genes[p.gene[i] as usize],
                p.cell[i],
                p.qv[i],
                p.x_um[i],
                p.y_um[i],
            ));
        }
    }
    let mut from_file: Vec<Key> = (0..all.len())
        .map(|i| {
            let qv = if all.qv[i].is_finite() {
                all.qv[i].floor().clamp(0.0, 254.0) as u8
            } else {
                255
            };
            key(
                &all.genes[all.gene[i] as usize],
                all.cell[i],
                qv,
                all.x_um[i],
                all.y_um[i],
            )
        })
        .collect();
    from_index.sort();
    from_file.sort();
    // Positions agree to the quantisation step (keys are on a 4-step grid, so a point near a
    // grid line may round the other way: compare those by distance).
    let mut mismatched = 0;
    for (a, b) in from_index.iter().zip(&from_file) {
        if a != b {
            assert_eq!((&a.0, a.1, a.2), (&b.0, b.1, b.2), "{name}: gene, cell or qv differs");
            let d = ((a.3 - b.3).abs().max((a.4 - b.4).abs()) as f64) * 4.0 * step_um;
            max_error_um = max_error_um.max(d);
            mismatched += 1;
        }
    }
    assert!(max_error_um <= 4.0 * step_um + 1e-3, "{name}: {max_error_um} µm off");
    assert!(mismatched * 20 <= from_file.len(), "{name}: {mismatched} positions off");

    // Counts and the summary from the directory and histograms alone.
    let summary = TranscriptSummary::read(&source, layout, 20.0).unwrap();
    assert_eq!(index.summary(20.0), summary);
    let passing = bundle.load_transcripts(20.0).unwrap().unwrap();
    assert_eq!(index.gene_counts(20).iter().sum::<u64>() as usize, passing.len());

    // One gene over the whole tissue: the density sums to its count.
    let gene = 0u32;
    let density = index.density(&[vec![gene]], 20, 64, &AtomicBool::new(false)).unwrap();
    let in_grid: u64 = density.channels[0].iter().map(|&n| u64::from(n)).sum();
    assert_eq!(in_grid, index.gene_counts(20)[gene as usize]);

    // A cell's transcripts.
    if let Some(cell) = all.cell.iter().copied().find(|&c| c != cs_xenium::NO_CELL) {
        let mine: Vec<usize> = (0..all.len()).filter(|&i| all.cell[i] == cell).collect();
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for &i in &mine {
            lo = [lo[0].min(f64::from(all.x_um[i])), lo[1].min(f64::from(all.y_um[i]))];
            hi = [hi[0].max(f64::from(all.x_um[i])), hi[1].max(f64::from(all.y_um[i]))];
        }
        let found = index.cell_transcripts(cell, lo, hi, 0).unwrap();
        assert_eq!(found.len(), mine.len());
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn index_of_each_shared_bundle_matches_the_file() {
    for name in [
        "sfe_toy_v1",
        "speio_xenium_small",
        "moleculeexperiment_mouse_brain/sample1",
        "moleculeexperiment_mouse_brain/sample2",
    ] {
        check_bundle(name);
    }
}

#[test]
fn a_damaged_index_is_named_and_rebuilt() {
    let Some(dir) = shared_file("xenium/sfe_toy_v1") else {
        return;
    };
    let bundle = XeniumBundle::open(&dir).unwrap();
    let source = bundle.files.transcripts.clone().unwrap();
    let layout = &bundle.files.transcript_layout;
    let cache = temp_dir("damaged");
    let first = open_or_build_index(&source, layout, &bundle.cells, &cache, &mut |_| true).unwrap();
    let path = first.path().to_path_buf();
    let total = first.total;
    drop(first);

    // Truncated: refused with the file's name.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let error = TranscriptIndex::open(&path).unwrap_err().to_string();
    assert!(
        error.contains(&path.display().to_string()) && error.contains("truncated"),
        "{error}"
    );

    // Not an index at all.
    std::fs::write(&path, b"hello").unwrap();
    let error = TranscriptIndex::open(&path).unwrap_err().to_string();
    assert!(error.contains("transcript index"), "{error}");

    // Opening through the cache rebuilds it.
    let rebuilt = open_or_build_index(&source, layout, &bundle.cells, &cache, &mut |_| true).unwrap();
    assert_eq!(rebuilt.total, total);
    assert_eq!(rebuilt.path(), path);

    // A cancelled build leaves no file behind.
    std::fs::remove_file(&path).unwrap();
    let error = open_or_build_index(&source, layout, &bundle.cells, &cache, &mut |_| false).unwrap_err();
    assert!(error.to_string().contains("cancelled"), "{error}");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0, "temporary files removed");
    std::fs::remove_dir_all(&cache).unwrap();
}
