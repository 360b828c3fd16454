//! Selection statistics against scipy, statsmodels and scanpy on real data: xenium/sfe_toy_v1 read
//! through cs_xenium, compared with tests/reference/stats_expected.json (written by
//! tests/reference/stats_expected.py; the versions used are in the JSON).
//!
//! Both sides apply the same rules (see the script's docstring): selection A = the first half of
//! the cells by x, B = cells outside A in the first half by y, labels = argmax of four genes.
//! Tolerances: Fisher p and BH q 1e-9 relative (1e-12 absolute for tiny p); Wilcoxon scores and
//! log fold changes 1e-6 absolute; DE p-values 1e-6 relative; counts exactly.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use cs_analysis::{
    CsrCounts, DeReference, GeneDifferentialExpression, MISSING_LABEL, benjamini_hochberg, cell_totals,
    composition_between, composition_vs_rest, fisher_exact_two_sided, rank_genes_wilcoxon,
};
use cs_xenium::{GENE_EXPRESSION, XeniumBundle};
use serde_json::Value;

fn expected() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/reference/stats_expected.json");
    let text = std::fs::read_to_string(path).expect("tests/reference/stats_expected.json");
    serde_json::from_str(&text).expect("valid JSON")
}

fn bundle() -> Option<XeniumBundle> {
    let dir = cs_testdata::shared_file("xenium/sfe_toy_v1")?;
    Some(XeniumBundle::open(dir).expect("sfe_toy_v1 opens"))
}

fn f(value: &Value) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("{value} is not a number"))
}

fn u(value: &Value) -> u64 {
    value.as_u64().unwrap_or_else(|| panic!("{value} is not a count"))
}

/// `actual` within `rel` of `expected` relative, or within `abs` absolute.
#[track_caller]
fn assert_close(what: &str, actual: f64, expected: f64, rel: f64, abs: f64) {
    let ok = (actual - expected).abs() <= abs.max(rel * expected.abs());
    assert!(ok, "{what}: got {actual:e}, expected {expected:e}");
}

/// The first `count` cells by `values` ascending, ties by row.
fn ranked_first(values: &[f64], count: usize) -> Vec<bool> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]).then(a.cmp(&b)));
    let mut mask = vec![false; values.len()];
    for &cell in &order[..count] {
        mask[cell] = true;
    }
    mask
}

struct Setup {
    in_a: Vec<bool>,
    in_b: Vec<bool>,
    codes: Vec<u32>,
    n_categories: usize,
}

fn setup(bundle: &XeniumBundle, expected: &Value) -> Setup {
    let n = bundle.cells.len();
    let selection = &expected["selection"];
    assert_eq!(n as u64, u(&selection["n_cells"]));
    let in_a = ranked_first(&bundle.cells.x_um, n / 2);
    let by_y = ranked_first(&bundle.cells.y_um, n / 2);
    let in_b: Vec<bool> = (0..n).map(|c| by_y[c] && !in_a[c]).collect();
    let summary = |mask: &[bool]| {
        let cells: Vec<usize> = (0..n).filter(|&c| mask[c]).collect();
        (cells.len() as u64, cells.iter().sum::<usize>() as u64)
    };
    assert_eq!(summary(&in_a), (u(&selection["a_count"]), u(&selection["a_index_sum"])));
    assert_eq!(summary(&in_b), (u(&selection["b_count"]), u(&selection["b_index_sum"])));

    let counts = bundle.counts.as_ref().expect("sfe_toy_v1 has a count matrix");
    let labels = &expected["labels"];
    let features: Vec<u32> = labels["genes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| counts.feature_by_name(g.as_str().unwrap()).unwrap())
        .collect();
    let codes: Vec<u32> = (0..n)
        .map(|cell| {
            let (index, values) = counts.cell(cell);
            let value_of = |f: u32| index.iter().position(|&i| i == f).map_or(0.0, |p| values[p]);
            let mut best = (MISSING_LABEL, 0.0_f32);
            for (class, &feature) in features.iter().enumerate() {
                if value_of(feature) > best.1 {
                    best = (class as u32, value_of(feature));
                }
            }
            best.0
        })
        .collect();
    let n_categories = labels["categories"].as_array().unwrap().len();
    let per_class: Vec<u64> = (0..n_categories as u32)
        .map(|k| codes.iter().filter(|&&c| c == k).count() as u64)
        .collect();
    let expected_counts: Vec<u64> = labels["counts"].as_array().unwrap().iter().map(u).collect();
    assert_eq!(per_class, expected_counts);
    let unlabelled = codes.iter().filter(|&&c| c == MISSING_LABEL).count() as u64;
    assert_eq!(unlabelled, u(&labels["unlabelled"]));
    Setup {
        in_a,
        in_b,
        codes,
        n_categories,
    }
}

#[test]
fn fisher_exact_matches_scipy_on_large_and_small_tables() {
    let mut worst_relative = 0.0_f64;
    for case in expected()["fisher"].as_array().unwrap() {
        let t = &case["table"];
        let (a, b, c, d) = (u(&t[0][0]), u(&t[0][1]), u(&t[1][0]), u(&t[1][1]));
        let p = fisher_exact_two_sided(a, b, c, d);
        let want = f(&case["p"]);
        assert_close(&format!("fisher {t}"), p, want, 1e-9, 1e-12);
        if want > 0.0 {
            worst_relative = worst_relative.max((p - want).abs() / want);
        }
    }
    eprintln!("fisher: worst relative difference from scipy {worst_relative:.1e}");
}

#[test]
fn benjamini_hochberg_matches_scipy_with_nan_left_out() {
    let bh = &expected()["bh"];
    let p: Vec<f64> = bh["p"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap_or(f64::NAN))
        .collect();
    let q = benjamini_hochberg(&p);
    for (actual, want) in q.iter().zip(bh["q"].as_array().unwrap()) {
        match want.as_f64() {
            Some(want) => assert_close("bh q", *actual, want, 1e-9, 1e-12),
            None => assert!(actual.is_nan(), "NaN p must give NaN q, got {actual}"),
        }
    }
}

fn check_composition(what: &str, actual: &cs_analysis::Composition, expected: &Value) {
    assert_eq!(actual.cells_in_group, u(&expected["cells_in_group"]), "{what}");
    assert_eq!(actual.cells_in_reference, u(&expected["cells_in_reference"]), "{what}");
    assert_eq!(
        actual.unclassified_in_group,
        u(&expected["unclassified_in_group"]),
        "{what}"
    );
    assert_eq!(
        actual.unclassified_in_reference,
        u(&expected["unclassified_in_reference"]),
        "{what}"
    );
    let classes = expected["classes"].as_array().unwrap();
    assert_eq!(actual.classes.len(), classes.len());
    for (k, (got, want)) in actual.classes.iter().zip(classes).enumerate() {
        let what = format!("{what} class {k}");
        assert_eq!(got.count_in_group, u(&want["count_in_group"]), "{what}");
        assert_eq!(got.count_in_reference, u(&want["count_in_reference"]), "{what}");
        assert_close(&what, got.fraction_in_group, f(&want["fraction_in_group"]), 1e-12, 0.0);
        assert_close(
            &what,
            got.fraction_in_reference,
            f(&want["fraction_in_reference"]),
            1e-12,
            0.0,
        );
        assert_close(&what, got.log2_enrichment, f(&want["log2_enrichment"]), 1e-9, 1e-12);
        assert_close(&what, got.p_value, f(&want["p_value"]), 1e-9, 1e-12);
        assert_close(&what, got.q_value, f(&want["q_value"]), 1e-9, 1e-12);
    }
}

#[test]
fn composition_matches_scipy_on_sfe_toy() {
    let Some(bundle) = bundle() else { return };
    let expected = expected();
    let s = setup(&bundle, &expected);
    let vs_rest = composition_vs_rest(&s.codes, s.n_categories, &s.in_a).unwrap();
    check_composition("A vs rest", &vs_rest, &expected["composition_a_vs_rest"]);
    let a_vs_b = composition_between(&s.codes, s.n_categories, &s.in_a, &s.in_b).unwrap();
    check_composition("A vs B", &a_vs_b, &expected["composition_a_vs_b"]);
}

fn check_de(what: &str, actual: &[GeneDifferentialExpression], expected: &Value) {
    let genes = expected.as_array().unwrap();
    assert_eq!(actual.len(), genes.len());
    let mut worst = [0.0_f64; 4];
    for (got, want) in actual.iter().zip(genes) {
        let what = format!("{what} {}", want["name"]);
        assert_close(&format!("{what} score"), got.score, f(&want["score"]), 0.0, 1e-6);
        assert_close(&format!("{what} p"), got.p_value, f(&want["pval"]), 1e-6, 0.0);
        assert_close(
            &format!("{what} p_adj"),
            got.p_adjusted,
            f(&want["pval_adj"]),
            1e-6,
            0.0,
        );
        assert_close(
            &format!("{what} lfc"),
            got.log2_fold_change,
            f(&want["logfoldchange"]),
            0.0,
            1e-6,
        );
        assert_close(
            &format!("{what} pts"),
            got.fraction_expressing_group,
            f(&want["pts"]),
            1e-12,
            0.0,
        );
        assert_close(
            &format!("{what} pts_reference"),
            got.fraction_expressing_reference,
            f(&want["pts_reference"]),
            1e-12,
            0.0,
        );
        assert_close(
            &format!("{what} mean"),
            got.mean_log1p_cp10k_group,
            f(&want["mean_group"]),
            1e-12,
            0.0,
        );
        assert_close(
            &format!("{what} mean_reference"),
            got.mean_log1p_cp10k_reference,
            f(&want["mean_reference"]),
            1e-12,
            0.0,
        );
        let rel = |a: f64, e: f64| (a - e).abs() / e.abs().max(f64::MIN_POSITIVE);
        worst[0] = worst[0].max((got.score - f(&want["score"])).abs());
        worst[1] = worst[1].max(rel(got.p_value, f(&want["pval"])));
        worst[2] = worst[2].max(rel(got.p_adjusted, f(&want["pval_adj"])));
        worst[3] = worst[3].max((got.log2_fold_change - f(&want["logfoldchange"])).abs());
    }
    eprintln!(
        "{what}: worst |score diff| {:.1e}, p rel {:.1e}, p_adj rel {:.1e}, |lfc diff| {:.1e}",
        worst[0], worst[1], worst[2], worst[3]
    );
}

#[test]
fn wilcoxon_matches_scanpy_on_sfe_toy() {
    let Some(bundle) = bundle() else { return };
    let expected = expected();
    let s = setup(&bundle, &expected);
    let counts = bundle.counts.as_ref().unwrap();
    let genes = counts.features_of_type(GENE_EXPRESSION);
    let names: Vec<&str> = genes
        .iter()
        .map(|&g| counts.features[g as usize].name.as_str())
        .collect();
    let expected_names: Vec<&str> = expected["genes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert_eq!(names, expected_names);
    let matrix = CsrCounts::new(
        &counts.row_offsets,
        &counts.feature_index,
        &counts.counts,
        counts.features.len(),
    )
    .unwrap();
    let totals = cell_totals(matrix, &genes).unwrap();

    let a_vs_rest = rank_genes_wilcoxon(matrix, &totals, &genes, &s.in_a, DeReference::Rest).unwrap();
    check_de("A vs rest", &a_vs_rest, &expected["de_a_vs_rest"]);
    let a_vs_b = rank_genes_wilcoxon(matrix, &totals, &genes, &s.in_a, DeReference::Cells(&s.in_b)).unwrap();
    check_de("A vs B", &a_vs_b, &expected["de_a_vs_b"]);
    let label0: Vec<bool> = s.codes.iter().map(|&c| c == 0).collect();
    let label0_vs_rest = rank_genes_wilcoxon(matrix, &totals, &genes, &label0, DeReference::Rest).unwrap();
    check_de("CD3E-labelled vs rest", &label0_vs_rest, &expected["de_label0_vs_rest"]);
}
