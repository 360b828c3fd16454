//! `cellsymphony info` on the shared slides: JSON layout, text output, and one-line failures.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly by design

use std::process::Command;

use cs_testdata::shared_file;

fn cellsymphony(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cellsymphony"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn info_json_describes_the_cmu_slide() {
    let Some(path) = shared_file("wsi/CMU-1-Small-Region.svs") else {
        return;
    };
    let out = cellsymphony(&["info", path.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["vendor"], "aperio");
    assert_eq!(json["levels"].as_array().unwrap().len(), 1);
    assert_eq!(json["levels"][0]["width"], 2220);
    assert_eq!(json["levels"][0]["height"], 2967);
    assert_eq!(json["levels"][0]["downsample"], 1.0);
    assert!((json["mpp_x"].as_f64().unwrap() - 0.499).abs() < 1e-3);
    assert!((json["mpp_y"].as_f64().unwrap() - 0.499).abs() < 1e-3);
    assert_eq!(json["objective_power"], 20.0);
    let associated: Vec<&str> = json["associated_images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(associated, ["label", "macro", "thumbnail"]);
}

#[test]
fn info_json_lists_pyramid_levels() {
    let Some(path) = shared_file("wsi/CMU-1-Small-Region.pyramid.tiff") else {
        return;
    };
    let out = cellsymphony(&["info", path.to_str().unwrap(), "--json"]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let widths: Vec<u64> = json["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["width"].as_u64().unwrap())
        .collect();
    assert_eq!(widths, [2220, 1110, 555, 277]);
    // OpenSlide 3.4 reports no mpp for generic TIFF; it comes from the TIFF resolution tags.
    let mpp_x = json["mpp_x"].as_f64().unwrap();
    assert!((mpp_x - 0.499).abs() < 1e-6, "{mpp_x}");

    let text = cellsymphony(&["info", path.to_str().unwrap()]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("generic-tiff") && text.contains("3: 277 x 370 px"),
        "{text}"
    );
}

#[test]
fn info_failure_is_one_line_naming_the_file() {
    let Some(path) = shared_file("wsi/openslide-fixtures/unopenable.tiff") else {
        return;
    };
    let out = cellsymphony(&["info", path.to_str().unwrap(), "--json"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("unopenable.tiff"), "{stderr}");

    let out = cellsymphony(&["info", "/no/such/slide.svs"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("/no/such/slide.svs") && stderr.contains("does not exist"),
        "{stderr}"
    );
}

#[test]
fn info_json_describes_a_xenium_bundle() {
    let Some(dir) = shared_file("xenium/speio_xenium_small") else {
        return;
    };
    let out = cellsymphony(&["info", dir.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["cells"], 6);
    assert_eq!(json["genes"], 4);
    assert_eq!(json["software_version"], "Xenium-1.0.1");
    assert_eq!(json["pixel_size"], 0.2125);
    let files: Vec<&str> = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        files.contains(&"cells.parquet") && files.contains(&"cell_feature_matrix.h5"),
        "{files:?}"
    );

    let Some(dir) = shared_file("xenium/sfe_toy_v1") else {
        return;
    };
    let out = cellsymphony(&["info", dir.to_str().unwrap(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((json["cells"].as_u64(), json["genes"].as_u64()), (Some(526), Some(27)));
    assert!(json["software_version"].is_null());
    // XOA 1.x layout: morphology_focus.ome.tif, real 16-bit DAPI, read by the TIFF reader.
    let morphology = json["morphology_images"].as_array().unwrap();
    assert_eq!(morphology.len(), 1, "{morphology:?}");
    assert!(
        morphology[0]["path"]
            .as_str()
            .unwrap()
            .ends_with("morphology_focus.ome.tif")
    );
    assert_eq!(morphology[0]["levels"], 1);
    assert_eq!(morphology[0]["channels"][0]["bits"], 16);
    assert_eq!(
        (morphology[0]["width"].as_u64(), morphology[0]["height"].as_u64()),
        (Some(237), Some(237))
    );
}

#[test]
fn info_json_reports_the_backend_and_channels_of_an_ome_tiff() {
    let Some(path) = shared_file("wsi/CMU-1-Small-Region.ome.tif") else {
        return;
    };
    let out = cellsymphony(&["info", path.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["backend"], "tiff");
    assert_eq!(json["vendor"], "ome-tiff");
    assert_eq!(json["levels"].as_array().unwrap().len(), 4);
    let channels: Vec<(&str, u64)> = json["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["bits"].as_u64().unwrap()))
        .collect();
    assert_eq!(channels, [("R", 8), ("G", 8), ("B", 8)]);
    assert!((json["mpp_x"].as_f64().unwrap() - 0.499).abs() < 1e-9);
    assert!((json["mpp_y"].as_f64().unwrap() - 0.499).abs() < 1e-9);
    // DICOM WSI goes to the DICOM reader (whatever OpenSlide the system has).
    if let Some(dcm) = shared_file("wsi/openslide-fixtures/boxes_0.dcm") {
        let out = cellsymphony(&["info", dcm.to_str().unwrap(), "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["backend"], "dicom");
        assert_eq!(json["associated_images"][0], "thumbnail");
    }
    // The SVS stays with OpenSlide.
    let Some(svs) = shared_file("wsi/CMU-1-Small-Region.svs") else {
        return;
    };
    let out = cellsymphony(&["info", svs.to_str().unwrap(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["backend"], "openslide");
}

#[test]
fn info_on_a_broken_bundle_is_one_line() {
    let dir = std::env::temp_dir().join(format!("cli_bad_bundle_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cells.csv"), "cell_id,x_centroid,y_centroid\na,1,NaN\n").unwrap();
    let out = cellsymphony(&["info", dir.to_str().unwrap(), "--json"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cells.csv") && stderr.contains("y_centroid") && stderr.contains("row 1"),
        "{stderr}"
    );
}

#[test]
fn info_json_describes_a_spatialdata_store_and_its_images() {
    let store = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/spatialdata/sdata_v3.zarr");
    let out = cellsymphony(&["info", store, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["cells"], 526);
    assert_eq!(json["genes"], 27);
    assert_eq!(json["pixel_size"], 0.2125);
    assert_eq!(json["cell_boundaries"], 526);
    assert!(
        json["categorical_columns"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "cell_type")
    );
    let sd = &json["spatialdata"];
    assert_eq!(sd["coordinate_system"], "global");
    assert_eq!(sd["cell_shapes"], "cell_circles");
    assert_eq!(sd["he_image"], "he_image");
    let images = sd["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    for image in images {
        assert_eq!(image["backend"], "zarr");
        assert_eq!(image["levels"], 3);
    }
    assert_eq!(json["morphology_images"][0]["channels"][0]["bits"], 16);
    // One image of the store on its own is a slide.
    let he = format!("{store}/images/he_image");
    let out = cellsymphony(&["info", &he, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["vendor"], "ome-ngff");
    let names: Vec<&str> = json["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["r", "g", "b"]);
    // A store that is not one: one line naming it.
    let out = cellsymphony(&[
        "info",
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/spatialdata"),
        "--json",
    ]);
    assert!(!out.status.success());
}
