//! `cell_feature_matrix.h5` of an XOA 4 run with the protein assay: the 10x HDF5 matrix (CSC,
//! one column per cell) holding the genes, controls and other codewords of the MEX folder plus
//! one row per protein. Xenium stores protein intensities as integers times the root attribute
//! `protein_scaling_factor` (10: one decimal), which readers divide out.
//!
//! A protein's intensity follows its gene's expression profile across the cell types (CD45
//! with PTPRC, PanCK with the keratins, ...) over a background, with per-cell lognormal noise,
//! so protein and RNA agree as they do in a real run but not exactly. The MEX folder keeps the
//! RNA features only: 10x documents the protein encoding for the HDF5 matrix, which both
//! spatialdata-io and cs_xenium read first.

use std::path::{Path, PathBuf};

use hdf5_pure::{AttrValue, FileBuilder};

use crate::cells::Cell;
use crate::error::{SynthError, io_error};
use crate::expression::{Counts, GENES};
use crate::files::Staged;
use crate::rng::{Rng, domain};

/// Proteins of the synthetic panel and the gene each follows.
pub(crate) const PROTEINS: &[(&str, &str)] = &[
    ("CD45", "PTPRC"),
    ("CD3E", "CD3E"),
    ("CD8A", "CD8A"),
    ("CD4", "CD4"),
    ("CD20", "MS4A1"),
    ("CD68", "CD68"),
    ("CD163", "CD163"),
    ("PanCK", "KRT8"),
    ("E-Cadherin", "CDH1"),
    ("CD31", "PECAM1"),
    ("alphaSMA", "ACTA2"),
    ("Vimentin", "VIM"),
    ("HLA-DR", "HLA-DRA"),
    ("Ki67", "MKI67"),
    ("FOXP3", "FOXP3"),
];

pub(crate) const PROTEIN_EXPRESSION: &str = "Protein Expression";
/// Intensities are stored times this (one decimal), as XOA 4 does.
pub(crate) const PROTEIN_SCALING_FACTOR: f64 = 10.0;
/// Mean intensity of a protein its cell does not express, and of the brightest type.
const BACKGROUND: f64 = 1.5;
const PEAK: f64 = 30.0;
/// Lognormal spread of a cell's intensity around its type's.
const NOISE_SIGMA: f64 = 0.35;

/// A feature of the matrix: id, name, 10x feature type.
pub(crate) type FeatureRow = (String, String, &'static str);

/// The intensities of every protein in `cell` (index `i`), as Xenium reports them.
pub(crate) fn protein_intensities(seed: u64, i: usize, cell: &Cell) -> Vec<f64> {
    let mut rng = Rng::new(seed, domain::PROTEINS, i as u64);
    PROTEINS
        .iter()
        .map(|(_, gene)| {
            let profile = GENES.iter().find(|g| g.0 == *gene).map_or([0.0; 6], |g| g.1);
            let peak = profile.iter().copied().fold(0.0, f64::max).max(f64::MIN_POSITIVE);
            let mean = BACKGROUND + PEAK * profile[cell.kind as usize] / peak;
            let value = mean * (NOISE_SIGMA * rng.normal()).exp();
            (value * PROTEIN_SCALING_FACTOR).round() / PROTEIN_SCALING_FACTOR
        })
        .collect()
}

/// Writes `cell_feature_matrix.h5`: `features` (the MEX folder's rows, whose counts `counts`
/// holds) then the proteins, one column per barcode.
pub(crate) fn write_protein_h5(
    dir: &Path,
    seed: u64,
    cells: &[Cell],
    barcodes: &[String],
    features: &[FeatureRow],
    counts: &Counts,
) -> Result<PathBuf, SynthError> {
    let path = dir.join("cell_feature_matrix.h5");
    let first_protein = features.len();
    let mut data: Vec<i32> = Vec::with_capacity(counts.count.len() + cells.len() * PROTEINS.len());
    let mut indices: Vec<i64> = Vec::with_capacity(data.capacity());
    let mut indptr: Vec<i64> = Vec::with_capacity(cells.len() + 1);
    indptr.push(0);
    for (i, cell) in cells.iter().enumerate() {
        let (rows, values) = counts.cell(i);
        for (&row, &value) in rows.iter().zip(values) {
            indices.push(i64::from(row));
            data.push(value.min(i32::MAX as u32) as i32);
        }
        for (p, intensity) in protein_intensities(seed, i, cell).into_iter().enumerate() {
            let stored = (intensity * PROTEIN_SCALING_FACTOR).round() as i32;
            if stored != 0 {
                indices.push((first_protein + p) as i64);
                data.push(stored);
            }
        }
        indptr.push(data.len() as i64);
    }
    let mut all: Vec<(&str, &str, &str)> = features
        .iter()
        .map(|(id, name, kind)| (id.as_str(), name.as_str(), *kind))
        .collect();
    all.extend(PROTEINS.iter().map(|(name, _)| (*name, *name, PROTEIN_EXPRESSION)));
    let ids: Vec<&str> = all.iter().map(|f| f.0).collect();
    let names: Vec<&str> = all.iter().map(|f| f.1).collect();
    let kinds: Vec<&str> = all.iter().map(|f| f.2).collect();
    let barcode_refs: Vec<&str> = barcodes.iter().map(String::as_str).collect();

    let failed = |e: hdf5_pure::Error| io_error(&path, e);
    let failed_format = |e: hdf5_pure::FormatError| io_error(&path, e);
    let mut file = FileBuilder::new();
    file.set_attr("filetype", AttrValue::AsciiString("matrix".into()));
    file.set_attr("version", AttrValue::I64(2));
    file.set_attr(
        "software_version",
        AttrValue::AsciiString(format!("cellsymphony-synth {}", env!("CARGO_PKG_VERSION"))),
    );
    file.set_attr("protein_scaling_factor", AttrValue::F64(PROTEIN_SCALING_FACTOR));
    let mut matrix = file.create_group("matrix");
    matrix
        .create_dataset("barcodes")
        .with_ascii_strings(&barcode_refs)
        .map_err(failed_format)?;
    matrix.create_dataset("data").with_i32_data(&data);
    matrix.create_dataset("indices").with_i64_data(&indices);
    matrix.create_dataset("indptr").with_i64_data(&indptr);
    matrix
        .create_dataset("shape")
        .with_i32_data(&[all.len() as i32, cells.len() as i32]);
    let mut group = matrix.create_group("features");
    group
        .create_dataset("id")
        .with_ascii_strings(&ids)
        .map_err(failed_format)?;
    group
        .create_dataset("name")
        .with_ascii_strings(&names)
        .map_err(failed_format)?;
    group
        .create_dataset("feature_type")
        .with_ascii_strings(&kinds)
        .map_err(failed_format)?;
    group
        .create_dataset("genome")
        .with_ascii_strings(&vec!["synthetic"; all.len()])
        .map_err(failed_format)?;
    group
        .create_dataset("_all_tag_keys")
        .with_ascii_strings(&["genome"])
        .map_err(failed_format)?;
    matrix.add_group(group.finish());
    file.add_group(matrix.finish());
    let bytes = file.finish().map_err(failed)?;
    Staged::new(&path).write_all(&bytes)
}
