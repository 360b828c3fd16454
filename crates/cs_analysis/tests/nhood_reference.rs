//! Spatial graphs and neighbourhood enrichment against squidpy on real data: xenium/sfe_toy_v1
//! read through cs_xenium, compared with tests/reference/nhood_expected.json (written by
//! tests/reference/nhood_expected.py with squidpy 1.8.2).
//!
//! Edge counts and count matrices must agree exactly. z-scores come from independent random
//! permutations on both sides (1000 each), so they agree within permutation noise: a z-score
//! estimated from N permutations has a standard error of about sqrt((1 + z²/2) / N) (the error
//! of the permutation mean, 1/sqrt(N) in z units, plus that of the standard deviation,
//! |z|/sqrt(2N)); the difference of two independent estimates has sqrt(2) times that. We allow
//! four such standard errors plus 0.05 for counts far from normal (classes of 2 cells).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use cs_analysis::{GraphKind, MISSING_LABEL, NhoodOptions, SpatialGraph, nhood_enrichment};
use cs_xenium::XeniumBundle;
use serde_json::Value;

fn expected() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/reference/nhood_expected.json");
    let text = std::fs::read_to_string(path).expect("tests/reference/nhood_expected.json");
    serde_json::from_str(&text).expect("valid JSON")
}

/// The labels of the reference script: argmax of the listed genes' counts (ties to the first
/// listed), "none" (the last class) without any of them.
fn labels(bundle: &XeniumBundle, genes: &[String]) -> Vec<u32> {
    let counts = bundle.counts.as_ref().expect("sfe_toy_v1 has a count matrix");
    let features: Vec<u32> = genes
        .iter()
        .map(|g| counts.feature_by_name(g).unwrap_or_else(|| panic!("gene {g}")))
        .collect();
    (0..bundle.cells.len())
        .map(|cell| {
            let (idx, values) = counts.cell(cell);
            let value_of = |f: u32| idx.iter().position(|&i| i == f).map_or(0.0, |p| values[p]);
            let mut best = (genes.len() as u32, 0.0f32);
            for (class, &f) in features.iter().enumerate() {
                let v = value_of(f);
                if v > best.1 {
                    best = (class as u32, v);
                }
            }
            best.0
        })
        .collect()
}

fn kind_of(name: &str) -> GraphKind {
    match name {
        "delaunay" => GraphKind::Delaunay,
        "radius_30" => GraphKind::Radius { radius_um: 30.0 },
        "knn_6" => GraphKind::Knn { k: 6 },
        other => panic!("unknown graph {other} in the reference"),
    }
}

#[test]
fn graphs_and_enrichment_match_squidpy_on_sfe_toy() {
    let Some(dir) = cs_testdata::shared_file("xenium/sfe_toy_v1") else {
        return;
    };
    let expected = expected();
    let bundle = XeniumBundle::open(&dir).expect("open sfe_toy_v1");
    assert_eq!(bundle.cells.len() as u64, expected["cells"].as_u64().unwrap());
    let genes: Vec<String> = expected["genes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_owned())
        .collect();
    let n_classes = expected["classes"].as_array().unwrap().len();
    let labels = labels(&bundle, &genes);
    assert!(labels.iter().all(|&l| l != MISSING_LABEL));
    let mut sizes = vec![0u64; n_classes];
    for &l in &labels {
        sizes[l as usize] += 1;
    }
    let expected_sizes: Vec<u64> = expected["class_sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(sizes, expected_sizes, "labels differ from the reference's");

    let n_perms = expected["n_perms"].as_u64().unwrap() as usize;
    let mut worst = 0.0f64;
    for (name, reference) in expected["graphs"].as_object().unwrap() {
        let graph = SpatialGraph::build(&bundle.cells.x_um, &bundle.cells.y_um, kind_of(name)).unwrap();
        assert_eq!(
            graph.nnz() as u64,
            reference["nnz"].as_u64().unwrap(),
            "{name}: stored edges"
        );
        assert_eq!(
            graph.is_symmetric(),
            reference["symmetric"].as_bool().unwrap(),
            "{name}"
        );
        let result = nhood_enrichment(&graph, &labels, n_classes, None, &NhoodOptions { n_perms, seed: 42 }).unwrap();
        for a in 0..n_classes {
            for b in 0..n_classes {
                let count = reference["count"][a][b].as_u64().unwrap();
                assert_eq!(result.count(a, b), count, "{name}: count[{a}][{b}]");
                let ours = result.zscore(a, b);
                match reference["zscore"][a][b].as_f64() {
                    None => assert!(ours.is_nan(), "{name}: z[{a}][{b}] = {ours}, squidpy NaN"),
                    Some(theirs) => {
                        let z = theirs.abs().max(ours.abs());
                        let tolerance = 4.0 * (2.0 * (1.0 + z * z / 2.0) / n_perms as f64).sqrt() + 0.05;
                        let delta = (ours - theirs).abs();
                        worst = worst.max(delta / tolerance);
                        eprintln!(
                            "{name} z[{a}][{b}]: ours {ours:.4} squidpy {theirs:.4} |Δ| {delta:.4} (tolerance {tolerance:.3})"
                        );
                        assert!(delta <= tolerance, "{name}: z[{a}][{b}] = {ours}, squidpy {theirs}");
                    }
                }
            }
        }
    }
    eprintln!("largest |Δz| / tolerance: {worst:.3}");
}
