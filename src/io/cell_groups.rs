//! Cell groups to and from Xenium Explorer: a categorical column as Explorer's `cell_id,group`
//! CSV or as an `analysis.zarr.zip` grouping, and either read back as columns. The file's name
//! picks the format (`.csv`, `.zarr.zip`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use cs_xenium::explorer::{read_analysis_zarr_zip, read_group_csv, write_analysis_zarr_zip, write_group_csv};
use cs_xenium::{Categorical, CellTable};

use crate::io::records::NamedSelection;
use crate::util::display_name;

/// The two files Explorer exchanges cell groups through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupFormat {
    Csv,
    AnalysisZarrZip,
}

impl GroupFormat {
    /// From the file name: `*.csv`, or `*.zip` (Explorer's `analysis.zarr.zip`).
    pub fn of(path: &Path) -> anyhow::Result<Self> {
        let name = display_name(path).to_lowercase();
        if name.ends_with(".csv") {
            Ok(GroupFormat::Csv)
        } else if name.ends_with(".zip") {
            Ok(GroupFormat::AnalysisZarrZip)
        } else {
            bail!(
                "{name}: cell groups are written as .csv (cell_id,group) or .zarr.zip (Xenium Explorer's analysis.zarr.zip)"
            )
        }
    }
}

/// Writes column `name` of `cells`; returns what to tell the user.
pub fn export_cell_groups(path: &Path, cells: &CellTable, name: &str, column: &Categorical) -> anyhow::Result<String> {
    let assigned = column
        .codes
        .iter()
        .filter(|&&c| (c as usize) < column.categories.len())
        .count();
    match GroupFormat::of(path)? {
        GroupFormat::Csv => {
            write_group_csv(path, cells, column).with_context(|| format!("writing {}", path.display()))?;
        }
        GroupFormat::AnalysisZarrZip => {
            write_analysis_zarr_zip(path, &[(name, column)]).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(format!(
        "Wrote {name} ({} groups, {assigned} of {} cells) to {}",
        column.categories.len(),
        cells.len(),
        display_name(path)
    ))
}

/// Selections as one grouping: each cell in the group of the first selection (in list order)
/// that holds it; cells in none are left out.
pub fn selections_as_groups(selections: &[&NamedSelection], cell_count: usize) -> Categorical {
    let mut codes = vec![cs_xenium::MISSING_CODE; cell_count];
    for (k, selection) in selections.iter().enumerate().rev() {
        for cell in selection.cells.iter() {
            if let Some(code) = codes.get_mut(cell) {
                *code = k as u32;
            }
        }
    }
    // Names must be distinct to be groups: a repeated name gets its position.
    let mut names: Vec<String> = Vec::with_capacity(selections.len());
    for (k, s) in selections.iter().enumerate() {
        let name = if names.contains(&s.name) {
            format!("{} ({})", s.name, k + 1)
        } else {
            s.name.clone()
        };
        names.push(name);
    }
    Categorical::from_codes(names, codes)
}

/// Columns read from a group file, and what to tell the user.
#[derive(Debug, Clone)]
pub struct ImportedGroups {
    pub path: PathBuf,
    pub columns: Vec<(String, Categorical)>,
    pub note: String,
}

/// Reads a `cell_id,group` CSV (one column, named after the file) or every grouping of an
/// `analysis.zarr.zip`.
pub fn import_cell_groups(path: &Path, cells: &CellTable) -> anyhow::Result<ImportedGroups> {
    let columns = match GroupFormat::of(path)? {
        GroupFormat::Csv => {
            let (column, unknown) = read_group_csv(path, cells)?;
            if column.categories.is_empty() {
                bail!(
                    "{}: no row names a cell of this bundle ({unknown} ids not found)",
                    path.display()
                );
            }
            let stem = display_name(path);
            let name = stem.strip_suffix(".csv").or(stem.strip_suffix(".CSV")).unwrap_or(&stem);
            vec![(name.to_owned(), column)]
        }
        GroupFormat::AnalysisZarrZip => read_analysis_zarr_zip(path, cells)?,
    };
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let note = format!("Imported {} from {}", names.join(", "), display_name(path));
    Ok(ImportedGroups {
        path: path.to_path_buf(),
        columns,
        note,
    })
}
