//! Every bundle in ../shared/data/xenium loads with the right counts, ids and coordinates.
//! Expected numbers come from pyarrow/pandas/h5py: tests/reference/xenium_expected.py.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use cs_testdata::shared_file;
use cs_xenium::{CellTable, GENE_EXPRESSION, NO_CELL, XeniumBundle, read_boundaries};

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1.0)
}

/// A vertex as the reader stores it (f32) from the double pyarrow read.
fn as_stored(x: f64, y: f64) -> [f32; 2] {
    [x as f32, y as f32]
}

fn sum(v: &[f64]) -> f64 {
    v.iter().sum()
}

/// Sum of vertex x (µm) over the kept vertices (closing duplicates dropped), as stored (f32).
fn vertex_sum_x(p: &cs_xenium::Polygons) -> f64 {
    p.vertices_um.iter().map(|v| f64::from(v[0])).sum()
}

#[test]
fn sfe_toy_bundle_parquet() {
    let Some(dir) = shared_file("xenium/sfe_toy_v1") else {
        return;
    };
    let b = XeniumBundle::open(&dir).unwrap();
    let cells = &b.cells;
    assert_eq!(cells.len(), 526);
    assert_eq!(cells.ids[0], "jcccmpde-1");
    assert_eq!(cells.ids[525], "kgekblac-1");
    assert!(close(cells.x_um[0], 1303.9040466308593, 1e-12));
    assert!(close(cells.y_um[0], 1345.7049133300782, 1e-12));
    assert!(close(sum(&cells.x_um), 628480.7379882813, 1e-12));
    assert!(close(sum(&cells.y_um), 627469.0499755859, 1e-12));
    assert!(close(
        sum(cells.numeric_column("cell_area").unwrap()),
        162940.32234374998,
        1e-12
    ));
    assert!(close(
        sum(cells.numeric_column("nucleus_area").unwrap()),
        18565.947031249998,
        1e-12
    ));
    assert_eq!(sum(cells.numeric_column("total_counts").unwrap()), 45743.0);

    // Boundary parquet stores cell_id as BINARY.
    let cb = b.cell_boundaries.as_ref().unwrap();
    assert_eq!(cb.cells_with_polygon(), 526);
    assert_eq!(cb.vertices_um.len(), 6312);
    assert_eq!(cb.polygon(0).len(), 12);
    assert_eq!(cb.polygon(0)[0], as_stored(1307.512451171875, 1331.949951171875));
    assert!(close(vertex_sum_x(cb), 7541858.1072387695, 1e-9));
    let nb = b.nucleus_boundaries.as_ref().unwrap();
    assert_eq!(nb.vertices_um.len(), 6312);
    assert_eq!(nb.polygon(0)[0], as_stored(1304.75, 1342.1500244140625));
    assert!(close(vertex_sum_x(nb), 7541054.859069824, 1e-9));
    // A nucleus lies inside its cell: polygon area well below the cell's.
    assert!(nb.area_um2(0) < cb.area_um2(0));

    let m = b.counts.as_ref().unwrap();
    assert_eq!(m.features.len(), 30);
    assert_eq!(m.features_of_type(GENE_EXPRESSION).len(), 27);
    assert_eq!(m.features[0].name, "AKT1");
    assert_eq!(m.counts.len(), 7828);
    assert_eq!(m.counts.iter().map(|v| f64::from(*v)).sum::<f64>(), 45729.0);
    let (_, first) = m.cell(0);
    assert_eq!(first.iter().map(|v| f64::from(*v)).sum::<f64>(), 198.0);

    assert!(b.experiment.is_none());
    assert_eq!(b.pixel_size_um(), 0.2125);
    assert!(
        b.warnings.iter().any(|w| w.message.contains("experiment.xenium")),
        "{:?}",
        b.warnings
    );

    let t = b.load_transcripts(20.0).unwrap().unwrap();
    assert_eq!(t.len(), 5260);
    assert_eq!(t.genes.len(), 30);
    assert!(t.cell.iter().filter(|&&c| c != NO_CELL).count() > 0);
}

#[test]
fn sfe_toy_csv_files_match_parquet() {
    let (Some(csv), Some(parquet)) = (
        shared_file("xenium/sfe_toy_v1/cells.csv.gz"),
        shared_file("xenium/sfe_toy_v1/cells.parquet"),
    ) else {
        return;
    };
    let from_csv = CellTable::read(&csv).unwrap();
    let from_parquet = CellTable::read(&parquet).unwrap();
    assert_eq!(from_csv.ids, from_parquet.ids);
    assert_eq!(from_csv.len(), 526);
    for i in 0..from_csv.len() {
        assert!(close(from_csv.x_um[i], from_parquet.x_um[i], 1e-9));
        assert!(close(from_csv.y_um[i], from_parquet.y_um[i], 1e-9));
    }
    let (Some(csv), Some(parquet)) = (
        shared_file("xenium/sfe_toy_v1/cell_boundaries.csv.gz"),
        shared_file("xenium/sfe_toy_v1/cell_boundaries.parquet"),
    ) else {
        return;
    };
    let (csv_ids, csv_polygons) = read_boundaries(&csv).unwrap();
    let (parquet_ids, parquet_polygons) = read_boundaries(&parquet).unwrap();
    assert_eq!(csv_ids, parquet_ids);
    assert_eq!(csv_polygons.offsets, parquet_polygons.offsets);
}

#[test]
fn speio_small_bundle_with_integer_ids_and_float_matrix_indices() {
    let Some(dir) = shared_file("xenium/speio_xenium_small") else {
        return;
    };
    let b = XeniumBundle::open(&dir).unwrap();
    let e = b.experiment.as_ref().unwrap();
    assert_eq!(e.pixel_size_um, 0.2125);
    assert_eq!(e.software_version.as_deref(), Some("Xenium-1.0.1"));
    assert_eq!(e.panel_name.as_deref(), Some("Breast Cancer Tumor Microenvironment"));
    assert_eq!(e.num_cells, Some(167780));
    let cells = &b.cells;
    assert_eq!(cells.ids, ["1", "2", "3", "4", "5", "6"]);
    assert!(close(cells.x_um[0], 847.259912109375, 1e-12));
    assert!(close(cells.y_um[0], 326.19136505126954, 1e-12));
    assert!(close(sum(&cells.x_um), 5035.97700805664, 1e-12));
    assert!(close(
        sum(cells.numeric_column("cell_area").unwrap()),
        449.25953125,
        1e-12
    ));
    let cb = b.cell_boundaries.as_ref().unwrap();
    assert_eq!(cb.vertices_um.len(), 72);
    assert_eq!(cb.polygon(0)[0], as_stored(849.7874755859375, 322.36248779296875));
    assert!(close(vertex_sum_x(cb), 60414.174743652344, 1e-9));
    let m = b.counts.as_ref().unwrap();
    assert_eq!(m.features.len(), 4);
    assert_eq!(m.features[0].name, "ABCC11");
    assert_eq!(m.counts.len(), 15);
    assert_eq!(m.counts.iter().map(|v| f64::from(*v)).sum::<f64>(), 21.0);
    assert_eq!(m.cell(0).1.iter().map(|v| f64::from(*v)).sum::<f64>(), 6.0);
    let t = b.load_transcripts(20.0).unwrap().unwrap();
    assert_eq!((t.len(), t.dropped_low_qv, t.genes.len()), (1, 2, 1));
    let all = b.load_transcripts(0.0).unwrap().unwrap();
    assert_eq!(all.len(), 3);
}

#[test]
fn mouse_brain_bundles_derive_cells_from_boundaries() {
    for (sample, cells, nuclei, first_id, sum_x, nucleus_sum_x) in [
        ("sample1", 5, 5, "67500", 294696.48779296875, 294774.47509765625),
        ("sample2", 9, 5, "65043", 530444.4111328125, 294631.8857421875),
    ] {
        let Some(dir) = shared_file(&format!("xenium/moleculeexperiment_mouse_brain/{sample}")) else {
            return;
        };
        let b = XeniumBundle::open(&dir).unwrap();
        assert_eq!(b.cells.len(), cells, "{sample}");
        assert_eq!(b.cells.ids[0], first_id);
        assert_eq!(
            b.experiment.as_ref().unwrap().software_version.as_deref(),
            Some("xenium-1.0.2")
        );
        let cb = b.cell_boundaries.as_ref().unwrap();
        assert_eq!(cb.vertices_um.len(), cells * 12);
        assert!(close(vertex_sum_x(cb), sum_x, 1e-9));
        let nb = b.nucleus_boundaries.as_ref().unwrap();
        assert_eq!(nb.cells_with_polygon(), nuclei);
        assert!(close(vertex_sum_x(nb), nucleus_sum_x, 1e-9));
        // Derived centroids sit inside the 20 µm patch the data was cut from (4900..4920, 6400..6420).
        for i in 0..b.cells.len() {
            assert!(b.cells.x_um[i].is_finite() && b.cells.y_um[i].is_finite());
            assert!(b.cells.numeric_column("cell_area").unwrap()[i] > 0.0);
        }
        assert!(b.counts.is_none());
        assert!(
            b.warnings
                .iter()
                .any(|w| w.message.contains("derived from cell boundaries"))
        );
        if sample == "sample1" {
            let t = b.load_transcripts(20.0).unwrap().unwrap();
            assert_eq!(t.len(), 777);
            assert_eq!(t.genes.len(), 125);
            assert_eq!(t.dropped_low_qv, 962 - 777);
        }
    }
}
