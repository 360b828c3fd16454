//! AnnData `.h5ad` files (single-cell references and labels): the expression matrix `X` or
//! `raw/X` (dense or CSR), cell and gene names, and a categorical `obs` column. Reads both the
//! current layout (obs as a group of columns, categoricals as codes + categories) and the old one
//! (obs as a compound table, categories in `uns/<column>_categories`).

use std::path::Path;

use hdf5_reader::{Datatype, Hdf5File};

use crate::XeniumError;
use crate::h5::{corrupt, numbers, strings};

const FORMAT: &str = "AnnData (.h5ad)";

/// What was read: CSR expression (`row_offsets` per cell, `gene_index`, `values`), names, and the
/// requested label column (`None` = missing value).
#[derive(Debug, Clone, PartialEq)]
pub struct AnnData {
    pub cell_names: Vec<String>,
    pub gene_names: Vec<String>,
    pub row_offsets: Vec<u64>,
    pub gene_index: Vec<u32>,
    pub values: Vec<f32>,
    pub labels: Option<Vec<Option<String>>>,
}

/// Which matrix to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnDataMatrix {
    X,
    Raw,
}

pub fn read_h5ad(path: &Path, matrix: AnnDataMatrix, label_column: Option<&str>) -> Result<AnnData, XeniumError> {
    let file = Hdf5File::open(path).map_err(|e| corrupt(path, FORMAT, format!("cannot open as HDF5: {e}")))?;
    let (x_name, var_prefix) = match matrix {
        AnnDataMatrix::X => ("X", "var"),
        AnnDataMatrix::Raw => {
            if file.group("raw").is_ok() {
                ("raw/X", "raw/var")
            } else {
                ("raw.X", "raw.var")
            }
        }
    };
    let cell_names = index_names(path, &file, "obs")?;
    let gene_names = index_names(path, &file, var_prefix)?;
    let Csr {
        row_offsets,
        gene_index,
        values,
    } = read_matrix(path, &file, x_name, cell_names.len(), gene_names.len())?;
    let labels = match label_column {
        Some(column) => Some(read_categorical(path, &file, column, cell_names.len())?),
        None => None,
    };
    Ok(AnnData {
        cell_names,
        gene_names,
        row_offsets,
        gene_index,
        values,
        labels,
    })
}

/// Row names of `obs` or `var`: the `_index` dataset of the group, or the `index` field of the
/// old compound table.
fn index_names(path: &Path, file: &Hdf5File, table: &str) -> Result<Vec<String>, XeniumError> {
    if let Ok(group) = file.group(table) {
        let index = group
            .attribute("_index")
            .ok()
            .and_then(|a| a.read_string().ok())
            .unwrap_or_else(|| "_index".to_string());
        return strings(path, file, FORMAT, &format!("{table}/{index}"));
    }
    compound_field_strings(path, file, table, "index")
}

fn compound_fields(
    path: &Path,
    file: &Hdf5File,
    table: &str,
) -> Result<(Vec<u8>, usize, Vec<hdf5_reader::CompoundField>), XeniumError> {
    let dataset = file
        .dataset(table)
        .map_err(|e| corrupt(path, FORMAT, format!("{table}: {e}")))?;
    let Datatype::Compound { size, fields } = dataset.dtype().clone() else {
        return Err(corrupt(
            path,
            FORMAT,
            format!("{table} is neither a group nor a compound table"),
        ));
    };
    let bytes = dataset
        .read_native_bytes()
        .map_err(|e| corrupt(path, FORMAT, format!("{table}: {e}")))?;
    Ok((bytes, size as usize, fields))
}

fn compound_field_strings(path: &Path, file: &Hdf5File, table: &str, field: &str) -> Result<Vec<String>, XeniumError> {
    let (bytes, size, fields) = compound_fields(path, file, table)?;
    let f = fields
        .iter()
        .find(|f| f.name == field)
        .ok_or_else(|| corrupt(path, FORMAT, format!("{table} has no field {field:?}")))?;
    let Datatype::String {
        size: hdf5_reader::StringSize::Fixed(len),
        ..
    } = f.datatype
    else {
        return Err(corrupt(
            path,
            FORMAT,
            format!("{table}/{field} is not a fixed-length string"),
        ));
    };
    let (offset, len) = (f.byte_offset as usize, len as usize);
    Ok(bytes
        .chunks_exact(size)
        .map(|row| {
            String::from_utf8_lossy(&row[offset..offset + len])
                .trim_end_matches('\0')
                .to_string()
        })
        .collect())
}

/// A CSR matrix: row offsets, column indices, values.
struct Csr {
    row_offsets: Vec<u64>,
    gene_index: Vec<u32>,
    values: Vec<f32>,
}

fn read_matrix(path: &Path, file: &Hdf5File, name: &str, n_cells: usize, n_genes: usize) -> Result<Csr, XeniumError> {
    if file.group(name).is_ok() {
        let format_attr = file
            .group(name)
            .ok()
            .and_then(|g| {
                g.attribute("encoding-type")
                    .or_else(|_| g.attribute("h5sparse_format"))
                    .ok()
            })
            .and_then(|a| a.read_string().ok())
            .unwrap_or_default();
        if format_attr.contains("csc") {
            return Err(corrupt(
                path,
                FORMAT,
                format!("{name} is CSC; only CSR and dense matrices are read"),
            ));
        }
        let data = numbers(path, file, FORMAT, &format!("{name}/data"))?;
        let indices = numbers(path, file, FORMAT, &format!("{name}/indices"))?;
        let indptr = numbers(path, file, FORMAT, &format!("{name}/indptr"))?;
        if indptr.len() != n_cells + 1 || indices.len() != data.len() {
            return Err(corrupt(
                path,
                FORMAT,
                format!(
                    "{name}: {} row pointers for {n_cells} cells, {} indices for {} values",
                    indptr.len(),
                    indices.len(),
                    data.len()
                ),
            ));
        }
        let row_offsets: Vec<u64> = indptr.iter().map(|&v| v as u64).collect();
        if row_offsets.windows(2).any(|w| w[1] < w[0])
            || row_offsets.last().copied().unwrap_or(0) as usize != data.len()
        {
            return Err(corrupt(
                path,
                FORMAT,
                format!("{name}/indptr is not a valid CSR row pointer"),
            ));
        }
        if indices.iter().any(|&i| i < 0.0 || i as usize >= n_genes) {
            return Err(corrupt(
                path,
                FORMAT,
                format!("{name}/indices has a gene index outside 0..{n_genes}"),
            ));
        }
        return Ok(Csr {
            row_offsets,
            gene_index: indices.iter().map(|&i| i as u32).collect(),
            values: data.iter().map(|&v| v as f32).collect(),
        });
    }
    let dense = numbers(path, file, FORMAT, name)?;
    if dense.len() != n_cells * n_genes {
        return Err(corrupt(
            path,
            FORMAT,
            format!("{name} has {} values for {n_cells} x {n_genes}", dense.len()),
        ));
    }
    let mut row_offsets = vec![0u64];
    let (mut gene_index, mut values) = (Vec::new(), Vec::new());
    for row in dense.chunks(n_genes.max(1)) {
        for (g, &v) in row.iter().enumerate() {
            if v != 0.0 {
                gene_index.push(g as u32);
                values.push(v as f32);
            }
        }
        row_offsets.push(values.len() as u64);
    }
    Ok(Csr {
        row_offsets,
        gene_index,
        values,
    })
}

fn read_categorical(
    path: &Path,
    file: &Hdf5File,
    column: &str,
    n_cells: usize,
) -> Result<Vec<Option<String>>, XeniumError> {
    let to_labels = |codes: Vec<f64>, categories: Vec<String>| -> Result<Vec<Option<String>>, XeniumError> {
        if codes.len() != n_cells {
            return Err(corrupt(
                path,
                FORMAT,
                format!("obs/{column} has {} values for {n_cells} cells", codes.len()),
            ));
        }
        Ok(codes
            .into_iter()
            .map(|c| {
                if c < 0.0 {
                    None
                } else {
                    categories.get(c as usize).cloned()
                }
            })
            .collect())
    };
    if let Ok(obs) = file.group("obs") {
        if obs.group(column).is_ok() {
            let codes = numbers(path, file, FORMAT, &format!("obs/{column}/codes"))?;
            let categories = strings(path, file, FORMAT, &format!("obs/{column}/categories"))?;
            return to_labels(codes, categories);
        }
        if obs.dataset(column).is_ok() {
            if let Ok(categories) = strings(path, file, FORMAT, &format!("uns/{column}_categories")) {
                return to_labels(numbers(path, file, FORMAT, &format!("obs/{column}"))?, categories);
            }
            return Ok(strings(path, file, FORMAT, &format!("obs/{column}"))?
                .into_iter()
                .map(Some)
                .collect());
        }
        return Err(XeniumError::MissingColumn {
            file: path.to_path_buf(),
            column: format!("obs/{column}"),
            found: String::new(),
        });
    }
    let (bytes, size, fields) = compound_fields(path, file, "obs")?;
    let Some(f) = fields.iter().find(|f| f.name == column) else {
        let found = fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ");
        return Err(XeniumError::MissingColumn {
            file: path.to_path_buf(),
            column: format!("obs/{column}"),
            found,
        });
    };
    let offset = f.byte_offset as usize;
    let codes: Vec<f64> = match &f.datatype {
        Datatype::FixedPoint { size: 1, signed, .. } => bytes
            .chunks_exact(size)
            .map(|r| {
                if *signed {
                    f64::from(r[offset] as i8)
                } else {
                    f64::from(r[offset])
                }
            })
            .collect(),
        Datatype::FixedPoint {
            size: 2, signed: true, ..
        } => bytes
            .chunks_exact(size)
            .map(|r| f64::from(i16::from_ne_bytes([r[offset], r[offset + 1]])))
            .collect(),
        Datatype::String { .. } => {
            return Ok(compound_field_strings(path, file, "obs", column)?
                .into_iter()
                .map(Some)
                .collect());
        }
        other => {
            return Err(corrupt(
                path,
                FORMAT,
                format!("obs/{column} has unsupported type {other:?}"),
            ));
        }
    };
    let categories = strings(path, file, FORMAT, &format!("uns/{column}_categories"))?;
    to_labels(codes, categories)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_pbmc_reference() {
        let Some(path) = cs_testdata::shared_file("singlecell/10x_pbmc68k_reduced.h5ad") else {
            return;
        };
        let Some(not_h5_path) = cs_testdata::shared_file("xenium/sfe_toy_v1/cells.csv.gz") else {
            return;
        };
        let adata = read_h5ad(&path, AnnDataMatrix::X, Some("bulk_labels")).unwrap();
        assert_eq!((adata.cell_names.len(), adata.gene_names.len()), (700, 765));
        assert_eq!(adata.row_offsets.len(), 701);
        let labels = adata.labels.unwrap();
        assert!(labels.iter().all(|l| l.is_some()));
        let mut distinct: Vec<&String> = labels.iter().flatten().collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 10);
        assert!(distinct.iter().any(|l| l.as_str() == "CD14+ Monocyte"));
        let raw = read_h5ad(&path, AnnDataMatrix::Raw, None).unwrap();
        assert_eq!(raw.values.len(), 174_400);
        let missing = read_h5ad(&path, AnnDataMatrix::X, Some("no_such_column"))
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("no_such_column") && missing.contains("pbmc68k"),
            "{missing}"
        );
        let not_h5 = read_h5ad(&not_h5_path, AnnDataMatrix::X, None).unwrap_err().to_string();
        assert!(not_h5.contains("cells.csv.gz"), "{not_h5}");
    }
}
