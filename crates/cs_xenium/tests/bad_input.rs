//! Bad bundles give errors that name the file, column and row; optional parts only warn.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::{Path, PathBuf};

use cs_xenium::{XeniumBundle, XeniumError};

fn temp_bundle(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cs_xenium_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

const CELLS: &str = "cell_id,x_centroid,y_centroid,cell_area\na-1,10.5,20.0,30\nb-1,11.5,21.0,31\nc-1,12.5,22.0,32\n";
const BOUNDARIES: &str = "cell_id,vertex_x,vertex_y\na-1,0,0\na-1,1,0\na-1,1,1\na-1,0,0\nb-1,5,5\nb-1,6,5\nb-1,6,6\n";

#[test]
fn minimal_csv_bundle_loads_with_warnings_for_missing_parts() {
    let dir = temp_bundle("minimal");
    write(&dir, "cells.csv", CELLS);
    write(&dir, "cell_boundaries.csv", BOUNDARIES);
    let b = XeniumBundle::open(&dir).unwrap();
    assert_eq!(b.cells.ids, ["a-1", "b-1", "c-1"]);
    let cb = b.cell_boundaries.as_ref().unwrap();
    assert_eq!(cb.polygon(0).len(), 3, "closing vertex dropped");
    assert_eq!(cb.polygon(1).len(), 3);
    assert!(cb.polygon(2).is_empty(), "c-1 has no polygon");
    assert!((cb.area_um2(0) - 0.5).abs() < 1e-9);
    let messages: Vec<String> = b.warnings.iter().map(ToString::to_string).collect();
    for expected in ["experiment.xenium", "nucleus_boundaries", "cell_feature_matrix"] {
        assert!(
            messages.iter().any(|m| m.contains(expected)),
            "{expected}: {messages:?}"
        );
    }
}

#[test]
fn nan_coordinate_names_file_column_and_row() {
    let dir = temp_bundle("nan");
    write(&dir, "cells.csv", "cell_id,x_centroid,y_centroid\na-1,1,2\nb-1,NaN,3\n");
    let err = XeniumBundle::open(&dir).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, XeniumError::BadValue { row: 2, .. }), "{err:?}");
    assert!(
        message.contains("cells.csv") && message.contains("x_centroid") && message.contains("row 2"),
        "{message}"
    );
}

#[test]
fn text_in_a_number_column_is_reported() {
    let dir = temp_bundle("text");
    write(
        &dir,
        "cells.csv",
        "cell_id,x_centroid,y_centroid\na-1,1,2\nb-1,3,oops\n",
    );
    let message = XeniumBundle::open(&dir).unwrap_err().to_string();
    assert!(
        message.contains("y_centroid") && message.contains("row 2") && message.contains("oops"),
        "{message}"
    );
}

#[test]
fn missing_column_lists_what_is_there() {
    let dir = temp_bundle("column");
    write(&dir, "cells.csv", "cell_id,x,y_centroid\na-1,1,2\n");
    let err = XeniumBundle::open(&dir).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, XeniumError::MissingColumn { .. }));
    assert!(
        message.contains("x_centroid") && message.contains("cell_id, x, y_centroid"),
        "{message}"
    );
}

#[test]
fn duplicate_ids_are_refused() {
    let dir = temp_bundle("duplicate");
    write(
        &dir,
        "cells.csv",
        "cell_id,x_centroid,y_centroid\na-1,1,2\nb-1,1,2\na-1,3,4\n",
    );
    let err = XeniumBundle::open(&dir).unwrap_err();
    assert!(
        matches!(
            err,
            XeniumError::DuplicateId {
                row: 3,
                first_row: 1,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn polygons_of_unknown_cells_are_skipped_and_counted() {
    // A subset run: the boundary files still hold cells that cells.csv no longer has.
    let dir = temp_bundle("unknown");
    write(&dir, "cells.csv", CELLS);
    write(
        &dir,
        "cell_boundaries.csv",
        "cell_id,vertex_x,vertex_y\na-1,0,0\na-1,1,1\na-1,0,1\nzzz-1,5,5\nzzz-1,6,6\nzzz-1,5,6\nyyy-1,9,9\n",
    );
    let bundle = XeniumBundle::open(&dir).unwrap();
    let boundaries = bundle.cell_boundaries.as_ref().unwrap();
    assert_eq!(boundaries.cells_with_polygon(), 1);
    assert_eq!(boundaries.polygon(0).len(), 3);
    let warning = bundle
        .warnings
        .iter()
        .find(|w| w.message.contains("not in the cell table"))
        .expect("a warning for the skipped boundaries");
    assert!(
        warning.message.contains("2 cells") && warning.message.contains("zzz-1") && warning.message.contains("row 4"),
        "{}",
        warning.message
    );
    assert!(
        warning
            .file
            .as_ref()
            .is_some_and(|f| f.ends_with("cell_boundaries.csv"))
    );
}

#[test]
fn split_polygons_are_refused() {
    let dir = temp_bundle("split");
    write(&dir, "cells.csv", CELLS);
    write(
        &dir,
        "cell_boundaries.csv",
        "cell_id,vertex_x,vertex_y\na-1,0,0\nb-1,1,1\na-1,5,5\n",
    );
    let message = XeniumBundle::open(&dir).unwrap_err().to_string();
    assert!(
        message.contains("not contiguous") && message.contains("row 3"),
        "{message}"
    );
}

#[test]
fn truncated_parquet_is_reported_with_its_name() {
    let Some(source) = cs_testdata::shared_file("xenium/sfe_toy_v1/cells.parquet") else {
        return;
    };
    let dir = temp_bundle("truncated");
    let bytes = std::fs::read(source).unwrap();
    std::fs::write(dir.join("cells.parquet"), &bytes[..bytes.len() / 2]).unwrap();
    let err = XeniumBundle::open(&dir).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, XeniumError::Corrupt { .. }), "{err:?}");
    assert!(
        message.contains("cells.parquet") && message.contains("parquet"),
        "{message}"
    );
}

#[test]
fn mex_matrix_is_read_and_mismatched_barcodes_refused() {
    let dir = temp_bundle("mex");
    write(&dir, "cells.csv", CELLS);
    let mex = dir.join("cell_feature_matrix");
    std::fs::create_dir_all(&mex).unwrap();
    write(
        &mex,
        "features.tsv",
        "G1\tCD3E\tGene Expression\nG2\tMS4A1\tGene Expression\nN1\tNegControlProbe_1\tNegative Control Probe\n",
    );
    write(&mex, "barcodes.tsv", "c-1\na-1\n");
    write(
        &mex,
        "matrix.mtx",
        "%%MatrixMarket matrix coordinate integer general\n%\n3 2 3\n1 1 4\n3 1 1\n2 2 7\n",
    );
    let b = XeniumBundle::open(&dir).unwrap();
    let m = b.counts.as_ref().unwrap();
    assert_eq!(m.features_of_type("Gene Expression"), [0, 1]);
    // Reordered to the cell table: a-1 (barcode 2), b-1 (no column), c-1 (barcode 1).
    assert_eq!(m.cell(0), (&[1u32][..], &[7.0f32][..]));
    assert_eq!(m.cell(1).0.len(), 0);
    assert_eq!(m.cell(2), (&[0u32, 2][..], &[4.0f32, 1.0][..]));
    assert_eq!(m.totals("Gene Expression"), [7.0, 0.0, 4.0]);
    assert!(
        b.warnings
            .iter()
            .any(|w| w.message.contains("1 of 3 cells have no column"))
    );

    write(&mex, "barcodes.tsv", "c-1\nnot-a-cell\n");
    let err = XeniumBundle::open(&dir).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, XeniumError::Mismatch { .. }), "{err:?}");
    assert!(
        message.contains("not-a-cell") && message.contains("1 of 2"),
        "{message}"
    );
}

#[test]
fn clusters_become_categorical_columns() {
    let dir = temp_bundle("clusters");
    write(&dir, "cells.csv", CELLS);
    let graph = dir.join("analysis/clustering/gene_expression_graphclust");
    std::fs::create_dir_all(&graph).unwrap();
    write(&graph, "clusters.csv", "Barcode,Cluster\na-1,10\nb-1,2\nghost-1,3\n");
    let b = XeniumBundle::open(&dir).unwrap();
    let column = b.cells.categorical_column("gene_expression_graphclust").unwrap();
    assert_eq!(column.categories, ["2", "10"], "numeric labels sort by value");
    assert_eq!(column.codes[..2], [1, 0]);
    assert_eq!(column.codes[2], cs_xenium::MISSING_CODE);
    assert!(
        b.warnings
            .iter()
            .any(|w| w.message.contains("1 barcodes are not cells"))
    );
}

#[test]
fn not_a_bundle() {
    let dir = temp_bundle("empty");
    let message = XeniumBundle::open(&dir).unwrap_err().to_string();
    assert!(message.contains("cells.parquet"), "{message}");
    let message = XeniumBundle::open(dir.join("nope")).unwrap_err().to_string();
    assert!(message.contains("nope"), "{message}");
}

#[test]
fn transcript_index_names_bad_rows_and_handles_degenerate_tissue() {
    use cs_xenium::transcript_index::build_index;
    let dir = temp_bundle("index_bad");
    write(&dir, "cells.csv", CELLS);
    let cells = cs_xenium::CellTable::read(&dir.join("cells.csv")).unwrap();
    let layout = cs_xenium::TranscriptLayout::default();
    let header = "cell_id,feature_name,x_location,y_location,z_location,qv\n";
    // Indexes `name.csv` (written first) into `name.cstidx`.
    let build = |name: &str, text: &str| {
        write(&dir, &format!("{name}.csv"), text);
        build_index(
            &dir.join(format!("{name}.csv")),
            &layout,
            &cells,
            &dir.join(format!("{name}.cstidx")),
            &mut |_| true,
        )
    };

    // A NaN x, even on a low-quality row (every row is indexed): file, column and row named.
    let error = build("nan", &format!("{header}a-1,GENE1,1,2,0,30\nb-1,GENE2,NaN,3,0,5\n"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("nan.csv") && error.contains("x_location") && error.contains("row 2"),
        "{error}"
    );

    // No feature column.
    let error = build("nofeature", "cell_id,x_location,y_location\na-1,1,2\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("feature_name"), "{error}");

    // No transcripts at all: an empty index that reads back.
    let index = build("empty", header).unwrap();
    assert_eq!(index.total, 0);
    assert!(index.read_tile(0, &[], 0).unwrap().is_empty());

    // All at one point, and a long thin strip (one row of tiles): every transcript comes back.
    let mut strip = String::from(header);
    for i in 0..500 {
        strip.push_str(&format!(
            "a-1,G{},{},{},0,25\n",
            i % 7,
            f64::from(i) * 40.0,
            1.0 + f64::from(i % 3)
        ));
    }
    strip.push_str("UNASSIGNED,G0,0,1,0,25\nUNASSIGNED,G0,0,1,0,25\n");
    let index = build("strip", &strip).unwrap();
    assert_eq!(index.rows, 1);
    let all = vec![true; index.genes.len()];
    let read: usize = (0..index.tile_count() as u32)
        .map(|t| index.read_tile(t, &all, 0).unwrap().len())
        .sum();
    assert_eq!(read, 502);
    assert_eq!(index.gene_counts(20).iter().sum::<u64>(), 502);
    assert_eq!(index.gene_counts(26).iter().sum::<u64>(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
