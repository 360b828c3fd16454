//! `cellsymphony groups`: a categorical column of a bundle (a clustering, Explorer's groups, or
//! a text column of a per-cell table such as `predict`'s output) as Xenium Explorer cell groups.

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::io::cell_groups::export_cell_groups;
use crate::work::open::read_bundle;

#[derive(Debug, Clone)]
pub struct GroupsOptions {
    /// A Xenium output folder or a SpatialData store.
    pub xenium: PathBuf,
    pub column: String,
    /// A per-cell table (parquet or CSV with `cell_id`) to take `column` from instead.
    pub from: Option<PathBuf>,
    /// `.csv` (cell_id,group) or `.zarr.zip` (analysis.zarr.zip).
    pub out: PathBuf,
}

pub fn groups(options: &GroupsOptions, json: bool) -> anyhow::Result<String> {
    let (bundle, _) = read_bundle(&options.xenium)?;
    let cells = &bundle.cells;
    let (column, unknown) = match &options.from {
        Some(table) => cs_xenium::explorer::read_cell_labels(table, cells, &options.column)
            .with_context(|| format!("reading column {} of {}", options.column, table.display()))?,
        None => match cells.categorical_column(&options.column) {
            Some(column) => (column.clone(), 0),
            None => {
                let names: Vec<&str> = cells.categorical.iter().map(|(n, _)| n.as_str()).collect();
                bail!(
                    "{} has no categorical column {:?}; it has: {}",
                    options.xenium.display(),
                    options.column,
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                );
            }
        },
    };
    let note = export_cell_groups(&options.out, cells, &options.column, &column)?;
    if json {
        let assigned = column
            .codes
            .iter()
            .filter(|&&c| (c as usize) < column.categories.len())
            .count();
        return Ok(serde_json::to_string_pretty(&serde_json::json!({
            "out": options.out.display().to_string(),
            "column": options.column,
            "groups": column.categories,
            "cells": cells.len(),
            "assigned": assigned,
            "unknown_ids": unknown,
        }))?);
    }
    Ok(if unknown > 0 {
        format!("{note}\n{unknown} ids of the table are not cells of the bundle")
    } else {
        note
    })
}
