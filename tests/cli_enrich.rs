//! `cellsymphony enrich` on a synthetic bundle: composition of a GeoJSON selection and
//! neighbourhood enrichment, as JSON; bad arguments give one line on stderr.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::process::Command;

fn cellsymphony(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cellsymphony"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn enrich_reports_composition_and_neighbourhood_enrichment() {
    let dir = std::env::temp_dir().join(format!("cli_enrich_{}", std::process::id()));
    let options = cs_synth::SynthOptions {
        cells: 2000,
        seed: 9,
        write_slide: false,
        ..Default::default()
    };
    let summary = cs_synth::generate(&options, &dir, &|_, _| {}, &|| false).unwrap();
    let bundle = summary.bundle_dir.to_str().unwrap().to_owned();
    // The left half of the tissue, in µm.
    let [w, h] = summary.tissue_size_um;
    let geojson = dir.join("left.geojson");
    std::fs::write(
        &geojson,
        format!(
            r#"{{"type":"Feature","geometry":{{"type":"Polygon","coordinates":[[[0,0],[{x},0],[{x},{y}],[0,{y}],[0,0]]]}},"properties":{{"name":"left"}}}}"#,
            x = 200.0 + w / 2.0,
            y = 400.0 + h
        ),
    )
    .unwrap();
    let out = cellsymphony(&[
        "enrich",
        "--xenium",
        &bundle,
        "--labels",
        "synthetic_cell_type",
        "--selection",
        geojson.to_str().unwrap(),
        "--nhood",
        "knn=6",
        "--perms",
        "100",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let selected = json["selection"]["cells"].as_u64().unwrap();
    assert!(selected > 500 && selected < 1500, "{selected}");
    let rows = json["composition"].as_array().unwrap();
    assert_eq!(rows.len(), 6);
    let in_selection: u64 = rows.iter().map(|r| r["cells_in_selection"].as_u64().unwrap()).sum();
    let in_rest: u64 = rows.iter().map(|r| r["cells_in_rest"].as_u64().unwrap()).sum();
    assert_eq!((in_selection, in_selection + in_rest), (selected, 2000));
    for r in rows {
        let (p, q) = (r["p_value"].as_f64().unwrap(), r["q_value"].as_f64().unwrap());
        assert!((0.0..=1.0).contains(&p) && q >= p - 1e-12 && q <= 1.0);
    }
    let z = json["nhood"]["zscores"].as_array().unwrap();
    assert_eq!(z.len(), 6);
    // Cells of one type cluster together in the synthetic tissue (tumour nests, aggregates).
    let epithelial = 2;
    assert!(z[epithelial][epithelial].as_f64().unwrap() > 3.0, "{z:?}");
    assert_eq!(json["nhood"]["n_perms"], 100);

    let out = cellsymphony(&[
        "enrich",
        "--xenium",
        &bundle,
        "--labels",
        "synthetic_cell_type",
        "--nhood",
        "hexagons",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("hexagons"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
