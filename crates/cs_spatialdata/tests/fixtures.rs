//! The SpatialData fixtures written by `tests/reference/spatialdata_fixtures.py` with spatialdata-io
//! (versions in `expected.json`), read back and compared with what spatialdata computed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::{Path, PathBuf};

use cs_spatialdata::{ElementKind, SpatialData, read_bundle};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference/spatialdata")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn pair(v: &Value) -> [f64; 2] {
    [v[0].as_f64().unwrap_or(f64::NAN), v[1].as_f64().unwrap_or(f64::NAN)]
}

const STORES: [&str; 3] = ["sdata_v3.zarr", "sdata_v2.zarr", "sdata_geoarrow.zarr"];

#[test]
fn every_layout_lists_its_elements_and_transformations() {
    for store in STORES {
        let sdata = SpatialData::open(&fixtures().join(store)).expect("the fixture opens");
        let names = |kind| sdata.of_kind(kind).map(|e| e.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(ElementKind::Image), ["he_image", "morphology_focus"], "{store}");
        assert_eq!(
            names(ElementKind::Shapes),
            ["cell_boundaries", "cell_circles", "nucleus_boundaries"],
            "{store}"
        );
        assert_eq!(names(ElementKind::Points), ["transcripts"], "{store}");
        let labels: &[&str] = if store == "sdata_geoarrow.zarr" {
            &["cell_labels"]
        } else {
            &[]
        };
        assert_eq!(names(ElementKind::Labels), labels, "{store}");
        assert_eq!(names(ElementKind::Table), ["table"], "{store}");
        assert_eq!(sdata.coordinate_systems(), ["global"], "{store}");
    }
}

#[test]
fn cells_land_where_spatialdata_puts_them() {
    let expected = expected();
    let pixel_size = expected["pixel_size_um"].as_f64().unwrap_or(f64::NAN);
    for store in STORES {
        let read = read_bundle(&fixtures().join(store)).expect("the fixture reads");
        let bundle = &read.bundle;
        assert_eq!(read.coordinate_system, "global");
        assert!(
            (read.um_per_unit - pixel_size).abs() < 1e-12,
            "{store}: {} µm per unit",
            read.um_per_unit
        );
        assert_eq!(
            bundle.cells.len(),
            expected["cells"].as_u64().unwrap_or(0) as usize,
            "{store}"
        );
        // The v2 store's table annotates the polygons: centroids are theirs. The GeoArrow store's
        // annotates labels: the polygons share the table's cell ids and stand in. The v3 store's
        // annotates the circles.
        let (key, shapes) = if store == "sdata_v3.zarr" {
            ("centroids_global", "cell_circles")
        } else {
            ("polygon_centroids_global", "cell_boundaries")
        };
        assert_eq!(read.cell_shapes, shapes, "{store}");
        let centroids = expected[key].as_object().expect("centroids in expected.json");
        assert!(!centroids.is_empty());
        for (id, global) in centroids {
            let cell = bundle.cells.index_of(id).expect("the cell is read") as usize;
            let [gx, gy] = pair(global);
            let (x, y) = (bundle.cells.x_um[cell], bundle.cells.y_um[cell]);
            // World µm = global units x pixel size; f32 vertices keep polygon centroids to 1e-3 µm.
            assert!(
                (x - gx * pixel_size).abs() < 1e-3,
                "{store} {id}: x {x} vs {}",
                gx * pixel_size
            );
            assert!(
                (y - gy * pixel_size).abs() < 1e-3,
                "{store} {id}: y {y} vs {}",
                gy * pixel_size
            );
        }
        // Boundaries (polygons, closing vertex dropped) and nuclei for every cell.
        let polygons = bundle.cell_boundaries.as_ref().expect("cell boundaries");
        assert_eq!(
            polygons.vertices_um.len(),
            expected["cell_boundaries_vertices"].as_u64().unwrap_or(0) as usize,
            "{store}"
        );
        assert_eq!(polygons.cells_with_polygon(), bundle.cells.len());
        assert!(
            bundle
                .nucleus_boundaries
                .as_ref()
                .is_some_and(|n| n.cells_with_polygon() > 500)
        );
    }
}

#[test]
fn the_table_becomes_colourings_and_counts() {
    let expected = expected();
    for store in STORES {
        let read = read_bundle(&fixtures().join(store)).expect("the fixture reads");
        let cells = &read.bundle.cells;
        let (_, cell_type) = cells
            .categorical
            .iter()
            .find(|(name, _)| name == "cell_type")
            .expect("obs cell_type is a colouring");
        for (label, count) in expected["cell_type_counts"].as_object().expect("counts") {
            let code = cell_type.categories.iter().position(|c| c == label).expect("category") as u32;
            let n = cell_type.codes.iter().filter(|&&c| c == code).count();
            assert_eq!(n as u64, count.as_u64().unwrap_or(0), "{store} {label}");
        }
        assert!(cells.numeric.iter().any(|(name, _)| name == "log_counts"));
        assert!(cells.numeric.iter().any(|(name, _)| name == "cell_area"));
        let counts = read.bundle.counts.as_ref().expect("X read as counts");
        assert_eq!(counts.features.len(), expected["genes"].as_u64().unwrap_or(0) as usize);
        let total: f64 = counts.counts.iter().map(|&v| f64::from(v)).sum();
        assert_eq!(total, expected["total_counts"].as_f64().unwrap_or(f64::NAN), "{store}");
        // Points are the transcripts, placed like the cells.
        let transcripts = read.bundle.load_transcripts(0.0).expect("points read").expect("points");
        assert_eq!(transcripts.len() as u64, expected["transcripts"].as_u64().unwrap_or(0));
        let assigned = transcripts.cell.iter().filter(|&&c| c != cs_xenium::NO_CELL).count();
        assert!(
            assigned > transcripts.len() / 2,
            "{store}: {assigned} transcripts in cells"
        );
    }
}

#[test]
fn images_are_placed_by_their_transformations_and_read() {
    let expected = expected();
    let pixel_size = expected["pixel_size_um"].as_f64().unwrap_or(f64::NAN);
    for store in STORES {
        let read = read_bundle(&fixtures().join(store)).expect("the fixture reads");
        let he = read.he_image.as_ref().expect("the H&E is found");
        assert_eq!(he.name, "he_image");
        let m = &expected["images"]["he_image"]["global_from_image"];
        for p in [[0.0, 0.0], [10.0, 20.0], [256.0, 256.0]] {
            let global = [
                m[0][0].as_f64().unwrap_or(0.0) * p[0]
                    + m[0][1].as_f64().unwrap_or(0.0) * p[1]
                    + m[0][2].as_f64().unwrap_or(0.0),
                m[1][0].as_f64().unwrap_or(0.0) * p[0]
                    + m[1][1].as_f64().unwrap_or(0.0) * p[1]
                    + m[1][2].as_f64().unwrap_or(0.0),
            ];
            let world = he.world_from_image_px.apply(p);
            assert!((world[0] - global[0] * pixel_size).abs() < 1e-9, "{store}");
            assert!((world[1] - global[1] * pixel_size).abs() < 1e-9, "{store}");
        }
        let slide = cs_slide::open_slide(&he.path).expect("the H&E opens as a slide");
        let meta = slide.metadata();
        assert_eq!(meta.levels.len(), 3);
        assert!(!meta.is_multichannel);
        assert_eq!(meta.level0_size_px(), (256, 256));
        let pixel = slide.read_region((10, 20), 0, 1, 1).expect("a pixel");
        let want: Vec<u8> = expected["he_pixel_10_20_value"]
            .as_array()
            .map(|v| v.iter().map(|x| x.as_u64().unwrap_or(0) as u8).collect())
            .unwrap_or_default();
        assert_eq!(&pixel.pixels[..3], want.as_slice(), "{store}");

        let morphology = &read.bundle.files.morphology;
        assert_eq!(morphology.len(), 1);
        let dapi = cs_slide::open_slide(&morphology[0].path).expect("the morphology opens");
        assert!(dapi.metadata().is_multichannel);
        assert_eq!(dapi.metadata().level0_size_px(), (237, 237));
        assert_eq!(dapi.metadata().channels[0].bits_per_sample, 16);
        let world = morphology[0].world_from_image_px.expect("placed").apply([100.0, 50.0]);
        assert!((world[0] - 100.0 * pixel_size).abs() < 1e-12 && (world[1] - 50.0 * pixel_size).abs() < 1e-12);
    }
}

#[test]
fn the_morphology_matches_the_ome_tiff_it_came_from() {
    let Some(path) = cs_testdata::shared_file("xenium/sfe_toy_v1/morphology_focus.ome.tif") else {
        return;
    };
    let tiff = cs_slide::open_slide(path).expect("the OME-TIFF");
    let zarr = cs_slide::open_slide(fixtures().join("sdata_v3.zarr/images/morphology_focus")).expect("the zarr image");
    let a = tiff.read_channel_region((0, 0), 0, 237, 237, 0).expect("tiff pixels");
    let b = zarr.read_channel_region((0, 0), 0, 237, 237, 0).expect("zarr pixels");
    assert_eq!(a.pixels, b.pixels);
    // A region hanging off the image: the outside is 0.
    let edge = zarr.read_channel_region((230, 230), 0, 16, 16, 0).expect("edge pixels");
    assert_eq!(edge.pixels[15 * 16 + 15], 0);
    assert_eq!(edge.pixels[0], a.pixels[230 * 237 + 230]);
}

#[test]
fn a_store_with_a_missing_array_names_it() {
    let dir = std::env::temp_dir().join(format!("cs_spatialdata_broken_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&fixtures().join("sdata_v3.zarr"), &dir);
    std::fs::remove_dir_all(dir.join("tables/table/obs/cell_type/codes")).expect("remove an array");
    let error = read_bundle(&dir).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("cell_type/codes"), "{error}");
    std::fs::remove_dir_all(dir.join("images/he_image/s0")).expect("remove a level");
    let error = cs_slide::open_slide(dir.join("images/he_image"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("he_image") && error.contains("s0"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create");
    for entry in std::fs::read_dir(from).expect("read").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
