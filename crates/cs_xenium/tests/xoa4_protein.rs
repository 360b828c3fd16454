//! A Xenium Protein (XOA 4) bundle re-run by Xenium Ranger (tests/reference/xenium_xoa4_protein,
//! written by tests/reference/xenium_protein_fixture.py): Ranger's version wins, protein values
//! come back divided by `protein_scaling_factor`, proteins and controls stay apart from genes,
//! and a binucleate cell's nuclei are two polygons.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::PathBuf;

use cs_xenium::{GENE_EXPRESSION, PROTEIN_EXPRESSION, XeniumBundle};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference/xenium_xoa4_protein")
}

#[test]
fn proteins_are_scaled_back_and_ranger_version_wins() {
    let dir = fixture();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let bundle = XeniumBundle::open(&dir).unwrap();
    let experiment = bundle.experiment.as_ref().unwrap();
    assert_eq!(experiment.software_version.as_deref(), Some("xenium-4.0.1.0"));
    assert_eq!(experiment.analysis_version(), Some("xenium-4.1.0.2"));
    assert_eq!(experiment.xoa_version(), Some([4, 1, 0]));

    let counts = bundle.counts.as_ref().unwrap();
    assert_eq!(counts.features_of_type(GENE_EXPRESSION).len(), 2);
    let proteins = counts.features_of_type(PROTEIN_EXPRESSION);
    assert_eq!(proteins.len(), 2);
    let value = |cell: usize, feature: u32| -> f64 {
        let (features, values) = counts.cell(cell);
        features
            .iter()
            .position(|&f| f == feature)
            .map_or(0.0, |k| f64::from(values[k]))
    };
    for (kind, tolerance) in [("proteins", 1e-6), ("genes", 0.0)] {
        for (name, per_cell) in expected[kind].as_object().unwrap() {
            let feature = counts.feature_by_name(name).unwrap();
            for (cell, want) in per_cell.as_array().unwrap().iter().enumerate() {
                let want = want.as_f64().unwrap();
                let got = value(cell, feature);
                assert!((got - want).abs() <= tolerance, "{name} cell {cell}: {got} vs {want}");
            }
        }
    }
    // Totals of genes leave proteins and the control probe out.
    assert_eq!(counts.totals(GENE_EXPRESSION), [5.0, 7.0, 3.0, 1.0]);

    let nuclei = bundle.nucleus_boundaries.as_ref().unwrap();
    let want: Vec<usize> = expected["nucleus_count"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let got: Vec<usize> = (0..bundle.cells.len()).map(|c| nuclei.part_count(c)).collect();
    assert_eq!(got, want);
    assert!((nuclei.area_um2(1) - 32.0).abs() < 1e-3, "two 4x4 nuclei");
    let methods = bundle.cells.categorical_column("segmentation_method").unwrap();
    assert_eq!(
        methods.categories,
        ["Segmented by boundary stain (ATP1A1+CD45+E-Cadherin)"]
    );
}
