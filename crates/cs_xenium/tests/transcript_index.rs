//! The tiled transcript index gives back exactly the transcripts the file holds (positions to
//! the index's quantisation step, tile side / 65535), with the same genes, cells, qualities and
//! counts as the in-memory reader; a damaged cache file is refused with its name and rebuilt.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::HashMap;
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

/// Transcripts alike but for their position: (gene name, cell, qv).
type Group = (String, u32, u8);

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

    // Every transcript, from every tile, against the file: the same (gene, cell, qv) groups of
    // the same sizes, and each file transcript has one in its group within half the quantisation
    // step (tile side / 131,070) per axis, plus the f32 rounding of the stored coordinate.
    let half_step_um = index.tile_um / 65535.0 / 2.0;
    let shown = vec![true; index.genes.len()];
    let mut from_index: HashMap<Group, Vec<[f32; 2]>> = HashMap::new();
    for tile in 0..index.tile_count() as u32 {
        let p = index.read_tile(tile, &shown, 0).unwrap();
        for i in 0..p.len() {
            let group = (index.genes[p.gene[i] as usize].clone(), p.cell[i], p.qv[i]);
            from_index.entry(group).or_default().push([p.x_um[i], p.y_um[i]]);
        }
    }
    let mut from_file: HashMap<Group, Vec<[f32; 2]>> = HashMap::new();
    for i in 0..all.len() {
        let qv = if all.qv[i].is_finite() {
            all.qv[i].floor().clamp(0.0, 254.0) as u8
        } else {
            255
        };
        let group = (all.genes[all.gene[i] as usize].clone(), all.cell[i], qv);
        from_file.entry(group).or_default().push([all.x_um[i], all.y_um[i]]);
    }
    assert_eq!(from_index.len(), from_file.len(), "{name}: groups");
    for (group, points) in &from_file {
        let indexed = from_index.get(group).map_or(&[][..], Vec::as_slice);
        assert_eq!(indexed.len(), points.len(), "{name}: {group:?}");
        for p in points {
            let rounding = 2.0 * f64::from(f32::EPSILON) * f64::from(p[0].abs().max(p[1].abs()));
            let nearest = indexed
                .iter()
                .map(|q| {
                    (f64::from(p[0]) - f64::from(q[0]))
                        .abs()
                        .max((f64::from(p[1]) - f64::from(q[1])).abs())
                })
                .fold(f64::INFINITY, f64::min);
            assert!(
                nearest <= half_step_um + rounding,
                "{name}: {group:?} at {p:?} is {nearest} µm from the index"
            );
        }
    }

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

    // A finer density of a block of tiles: every transcript of those tiles in the bin its
    // position falls in (bins of 2 µm from the block's corner), all genes in two channels.
    let (half, rest): (Vec<u32>, Vec<u32>) = (0..index.genes.len() as u32).partition(|g| g % 2 == 0);
    let block = cs_xenium::TileRange {
        col0: index.cols / 2,
        row0: index.rows / 2,
        cols: index.cols.div_ceil(2),
        rows: index.rows.div_ceil(2),
    };
    let fine = index.density_in(&[half, rest], 0, block, 2.0, &|| false).unwrap();
    let corner = [
        index.min_um[0] + index.tile_um * f64::from(block.col0),
        index.min_um[1] + index.tile_um * f64::from(block.row0),
    ];
    assert_eq!(fine.min_um, corner);
    assert_eq!(fine.cols, (index.tile_um * f64::from(block.cols) / 2.0).ceil() as u32);
    let mut expected = vec![vec![0u32; fine.channels[0].len()]; 2];
    let all_genes = vec![true; index.genes.len()];
    for row in block.row0..block.row0 + block.rows {
        for col in block.col0..block.col0 + block.cols {
            // Tiles by hand here, not through TileRange::tiles, which density_in itself uses.
            let p = index.read_tile(row * index.cols + col, &all_genes, 0).unwrap();
            for i in 0..p.len() {
                let bx = ((f64::from(p.x_um[i]) - corner[0]) / 2.0).max(0.0) as u32;
                let by = ((f64::from(p.y_um[i]) - corner[1]) / 2.0).max(0.0) as u32;
                let bin = (by.min(fine.rows - 1) * fine.cols + bx.min(fine.cols - 1)) as usize;
                expected[(p.gene[i] % 2) as usize][bin] += 1;
            }
        }
    }
    assert_eq!(fine.channels, expected, "{name}: finer density");
    let block_total: u64 = (block.row0..block.row0 + block.rows)
        .flat_map(|r| (block.col0..block.col0 + block.cols).map(move |c| (r, c)))
        .map(|(r, c)| {
            index
                .tile_gene_counts(r * index.cols + c)
                .iter()
                .map(|(_, n)| u64::from(*n))
                .sum::<u64>()
        })
        .sum();
    let in_fine: u64 = fine.channels.iter().flatten().map(|&n| u64::from(n)).sum();
    assert_eq!(in_fine, block_total, "{name}: the block's transcripts, all qualities");
    // The tiles meeting a rectangle, as a block.
    let (lo, hi) = index.tile_rect(index.rows / 2 * index.cols + index.cols / 2);
    let one = index
        .tile_range([lo[0] + 1e-3, lo[1] + 1e-3], [hi[0] - 1e-3, hi[1] - 1e-3])
        .unwrap();
    assert_eq!(
        (one.col0, one.row0, one.cols, one.rows),
        (index.cols / 2, index.rows / 2, 1, 1)
    );
    assert!(index.tile_range([-1e9, -1e9], [-1e8, -1e8]).is_none());

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
