//! Xenium Explorer cell groups: the `cell_id,group` CSV and `analysis.zarr.zip`, written and read
//! back equal; files that are not Explorer's are refused by name.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::{Path, PathBuf};

use cs_xenium::explorer::{read_analysis_zarr_zip, read_group_csv, write_analysis_zarr_zip, write_group_csv};
use cs_xenium::{Categorical, CellTable, MISSING_CODE, XeniumBundle};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cs_xenium_explorer_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn cells(n: usize) -> CellTable {
    let ids = (0..n).map(|i| format!("cell{i:04}-1")).collect();
    let x = (0..n).map(|i| i as f64).collect();
    CellTable::from_parts(Path::new("cells.csv"), ids, x, vec![0.0; n]).unwrap()
}

fn column(n: usize) -> Categorical {
    // Three groups, a name with a comma, and every seventh cell in none.
    let labels = vec!["T cells".to_owned(), "Tumour, invasive".to_owned(), "B".to_owned()];
    let codes = (0..n)
        .map(|i| if i % 7 == 0 { MISSING_CODE } else { (i % 3) as u32 })
        .collect();
    Categorical::from_codes(labels, codes)
}

fn same_groups(a: &Categorical, b: &Categorical) {
    assert_eq!(a.codes.len(), b.codes.len());
    for (x, y) in a.codes.iter().zip(&b.codes) {
        let name = |c: &Categorical, code: u32| c.categories.get(code as usize).cloned();
        assert_eq!(name(a, *x), name(b, *y));
    }
}

#[test]
fn group_csv_is_written_and_read_back_equal() {
    let dir = temp("csv");
    let (table, groups) = (cells(50), column(50));
    let path = dir.join("groups.csv");
    let rows = write_group_csv(&path, &table, &groups).unwrap();
    assert_eq!(rows, 50 - 8);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("cell_id,group\n"), "{text}");
    assert!(text.contains("\"Tumour, invasive\""), "{text}");
    let (back, unknown) = read_group_csv(&path, &table).unwrap();
    assert_eq!(unknown, 0);
    same_groups(&groups, &back);
}

#[test]
fn explorer_csv_with_colours_and_foreign_cells() {
    let dir = temp("colour");
    let path = dir.join("cell_groups.csv");
    std::fs::write(
        &path,
        "cell_id,group,color\ncell0001-1,Cluster 1,#cb81da\nnot-a-cell,Cluster 2,#000000\ncell0003-1,Cluster 2,#ffffff\n",
    )
    .unwrap();
    let (back, unknown) = read_group_csv(&path, &cells(5)).unwrap();
    assert_eq!(unknown, 1);
    assert_eq!(back.categories, ["Cluster 1", "Cluster 2"]);
    assert_eq!(back.codes, [MISSING_CODE, 0, MISSING_CODE, 1, MISSING_CODE]);
}

#[test]
fn analysis_zarr_zip_is_written_and_read_back_equal() {
    let dir = temp("zarr");
    let table = cells(300);
    let groups = column(300);
    let other = Categorical::from_codes(vec!["a".to_owned()], vec![0; 300]);
    let path = dir.join("analysis.zarr.zip");
    write_analysis_zarr_zip(&path, &[("predicted type", &groups), ("all", &other)]).unwrap();
    let back = read_analysis_zarr_zip(&path, &table).unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].0, "predicted type");
    same_groups(&groups, &back[0].1);
    assert_eq!(back[1].0, "all");
    same_groups(&other, &back[1].1);
}

#[test]
fn a_bundle_reads_its_analysis_zarr_zip_as_columns() {
    let dir = temp("bundle");
    std::fs::write(
        dir.join("cells.csv"),
        "cell_id,x_centroid,y_centroid\ncell0000-1,0,0\ncell0001-1,1,0\ncell0002-1,2,0\n",
    )
    .unwrap();
    let groups = Categorical::from_codes(vec!["x".to_owned(), "y".to_owned()], vec![1, 0, 1]);
    write_analysis_zarr_zip(&dir.join("analysis.zarr.zip"), &[("explorer groups", &groups)]).unwrap();
    let bundle = XeniumBundle::open(&dir).unwrap();
    let column = bundle.cells.categorical_column("explorer groups").unwrap();
    same_groups(&groups, column);
}

#[test]
fn a_zip_that_is_not_explorers_is_refused_by_name() {
    let dir = temp("foreign");
    let path = dir.join("analysis.zarr.zip");
    std::fs::write(&path, b"PK\x03\x04 not really a zip").unwrap();
    let message = read_analysis_zarr_zip(&path, &cells(3)).unwrap_err().to_string();
    assert!(message.contains("analysis.zarr.zip"), "{message}");
    // A real zip without cell_groups.
    let other = dir.join("other.zip");
    {
        let file = std::fs::File::create(&other).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        zip.start_file("hello.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut zip, b"hello").unwrap();
        zip.finish().unwrap();
    }
    let message = read_analysis_zarr_zip(&other, &cells(3)).unwrap_err().to_string();
    assert!(
        message.contains("other.zip") && message.contains("cell_groups"),
        "{message}"
    );
    // In a bundle, a broken analysis.zarr.zip is a warning, not a refusal.
    std::fs::write(&path, b"garbage").unwrap();
    std::fs::write(dir.join("cells.csv"), "cell_id,x_centroid,y_centroid\na,0,0\n").unwrap();
    let bundle = XeniumBundle::open(&dir).unwrap();
    assert!(
        bundle
            .warnings
            .iter()
            .any(|w| w.message.contains("cell groups not read")),
        "{:?}",
        bundle.warnings
    );
}
