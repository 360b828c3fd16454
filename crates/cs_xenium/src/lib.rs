//! 10x Xenium bundle reader for CellSymphony.
//!
//! [`XeniumBundle::open`] reads a Xenium output folder into a columnar [`CellTable`] (centroids in
//! world micrometres), flat [`Polygons`] for cell and nucleus boundaries, sparse [`SparseCounts`],
//! and clusterings as categorical columns. Transcripts load on demand ([`XeniumBundle::load_transcripts`]).
//! Required parts that are missing or malformed give a [`XeniumError`] naming file, column and
//! row; optional parts that are missing give a [`LoadWarning`] and loading goes on.

mod alignment;
mod anndata;
mod categories;
mod cell_tables;
mod cells;
mod clusters;
mod columns;
mod error;
mod experiment;
pub mod explorer;
mod h5;
mod matrix;
pub mod morphology;
mod polygons;
pub mod transcript_index;
mod transcripts;

use std::path::{Path, PathBuf};

pub use alignment::{Affine2, AffineFit, fit_affine, read_alignment_csv, write_alignment_csv};
pub use anndata::{AnnData, AnnDataMatrix, read_h5ad};
pub use categories::FeatureCategory;
pub use cell_tables::{
    CellColumn, CellFeatureTable, npy_cell_ids_path, read_cell_features, read_table_columns, write_cell_parquet,
    write_table_parquet,
};
pub use cells::{Categorical, CellTable, MISSING_CODE};
pub use error::{LoadWarning, XeniumError};
pub use experiment::{DEFAULT_PIXEL_SIZE_UM, Experiment, parse_xoa_version};
pub use matrix::{Feature, GENE_EXPRESSION, PROTEIN_EXPRESSION, SparseCounts, read_counts};
pub use morphology::{MorphologyFile, XENIUM_STAIN_NAMES, find_morphology_images};
pub use polygons::{Polygons, SkippedPolygons, ring_area_um2};
pub use transcript_index::{TileRange, TranscriptIndex, open_or_build_index};
pub use transcripts::{DEFAULT_MIN_QV, NO_CELL, TranscriptLayout, TranscriptSummary, Transcripts};

/// Reads one boundary file on its own: cell ids in file order and their polygons in that order.
pub fn read_boundaries(path: &Path) -> Result<(Vec<String>, Polygons), XeniumError> {
    let raw = polygons::read_raw(path)?;
    Ok((raw.ids, raw.polygons))
}

/// The files a bundle was read from (None: not present).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BundleFiles {
    pub experiment: Option<PathBuf>,
    pub cells: Option<PathBuf>,
    pub cell_boundaries: Option<PathBuf>,
    pub nucleus_boundaries: Option<PathBuf>,
    pub counts: Option<PathBuf>,
    pub transcripts: Option<PathBuf>,
    /// Column names and placement of `transcripts` (Xenium's by default).
    pub transcript_layout: TranscriptLayout,
    pub clusterings: Vec<PathBuf>,
    /// Xenium Explorer's cell groups (`analysis.zarr.zip`).
    pub analysis_zarr: Option<PathBuf>,
    /// Morphology images in channel order ([`morphology::find_morphology_images`]).
    pub morphology: Vec<MorphologyFile>,
}

impl BundleFiles {
    /// Finds each part, preferring parquet over CSV, and the .h5 matrix over MEX.
    pub fn find(dir: &Path) -> Self {
        let first = |names: &[&str]| names.iter().map(|n| dir.join(n)).find(|p| p.exists());
        Self {
            experiment: first(&["experiment.xenium"]),
            cells: first(&["cells.parquet", "cells.csv.gz", "cells.csv"]),
            cell_boundaries: first(&[
                "cell_boundaries.parquet",
                "cell_boundaries.csv.gz",
                "cell_boundaries.csv",
            ]),
            nucleus_boundaries: first(&[
                "nucleus_boundaries.parquet",
                "nucleus_boundaries.csv.gz",
                "nucleus_boundaries.csv",
            ]),
            counts: first(&["cell_feature_matrix.h5", "cell_feature_matrix"]),
            transcripts: first(&["transcripts.parquet", "transcripts.csv.gz", "transcripts.csv"]),
            transcript_layout: TranscriptLayout::default(),
            clusterings: clusters::find_clusterings(dir).into_iter().map(|(_, p)| p).collect(),
            analysis_zarr: first(&[explorer::ANALYSIS_ZARR_ZIP]),
            morphology: morphology::find_morphology_images(dir),
        }
    }

    /// Every file found, for `info` and the UI.
    pub fn list(&self) -> Vec<&Path> {
        [
            &self.experiment,
            &self.cells,
            &self.cell_boundaries,
            &self.nucleus_boundaries,
            &self.counts,
            &self.transcripts,
            &self.analysis_zarr,
        ]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .chain(self.clusterings.iter().map(PathBuf::as_path))
        .chain(self.morphology.iter().map(|m| m.path.as_path()))
        .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct XeniumBundle {
    pub dir: PathBuf,
    pub files: BundleFiles,
    pub experiment: Option<Experiment>,
    pub cells: CellTable,
    pub cell_boundaries: Option<Polygons>,
    pub nucleus_boundaries: Option<Polygons>,
    pub counts: Option<SparseCounts>,
    pub warnings: Vec<LoadWarning>,
}

impl XeniumBundle {
    /// Micrometres per morphology pixel (from experiment.xenium, else Xenium's 0.2125).
    pub fn pixel_size_um(&self) -> f64 {
        self.experiment
            .as_ref()
            .map_or(DEFAULT_PIXEL_SIZE_UM, |e| e.pixel_size_um)
    }

    pub fn open(dir: impl AsRef<Path>) -> Result<Self, XeniumError> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(XeniumError::MissingFile {
                dir: dir.to_path_buf(),
                what: "the folder itself (a Xenium bundle is a folder)".to_owned(),
            });
        }
        let files = BundleFiles::find(dir);
        let mut warnings = Vec::new();
        // Warnings are returned, not logged: the caller shows them once.
        let mut warn = |file: Option<&Path>, message: String| {
            log::debug!(
                "{}: {message}",
                file.map_or_else(|| dir.display().to_string(), |f| f.display().to_string())
            );
            warnings.push(LoadWarning {
                file: file.map(Path::to_path_buf),
                message,
            });
        };

        let experiment = match &files.experiment {
            Some(path) => Some(Experiment::read(path)?),
            None => {
                warn(
                    None,
                    format!("no experiment.xenium: assuming {DEFAULT_PIXEL_SIZE_UM} µm per morphology pixel"),
                );
                None
            }
        };

        let (cells, derived_boundaries) = match (&files.cells, &files.cell_boundaries) {
            (Some(cells_path), _) => (CellTable::read(cells_path)?, None),
            (None, Some(path)) => {
                warn(
                    Some(path),
                    "no cells.parquet/cells.csv.gz: cells, centroids and areas derived from cell boundaries".to_owned(),
                );
                derive_cells(path, polygons::read_raw(path)?)?
            }
            (None, None) => {
                return Err(XeniumError::MissingFile {
                    dir: dir.to_path_buf(),
                    what: "cells.parquet / cells.csv.gz (and no cell_boundaries to derive cells from)".to_owned(),
                });
            }
        };
        // Boundaries and counts only need the cell table: read them side by side.
        let boundaries_of = |path: &Path| Ok(polygons::assign_to_cells(polygons::read_raw(path)?, &cells));
        let (cell_boundaries, nucleus_boundaries, counts) = std::thread::scope(|scope| {
            let cell_boundaries = match (&derived_boundaries, &files.cell_boundaries) {
                (None, Some(path)) => Some(on_thread(scope, "read-cell-boundaries", path, || boundaries_of(path))),
                _ => None,
            };
            let nucleus_boundaries = files
                .nucleus_boundaries
                .as_deref()
                .map(|path| on_thread(scope, "read-nucleus-boundaries", path, || boundaries_of(path)));
            let counts = files.counts.as_deref().map(|path| matrix::read_counts(path, &cells));
            (
                cell_boundaries.map(|join| join()),
                nucleus_boundaries.map(|join| join()),
                counts,
            )
        });
        let mut note_skipped = |path: &Option<PathBuf>, read: Option<(Polygons, Option<polygons::SkippedPolygons>)>| {
            read.map(|(polygons, skipped)| {
                if let Some(skipped) = skipped {
                    warn(path.as_deref(), skipped.message());
                }
                polygons
            })
        };
        let cell_boundaries = match derived_boundaries {
            Some(derived) => Some(derived),
            None => note_skipped(&files.cell_boundaries, cell_boundaries.transpose()?),
        };
        let nucleus_boundaries = note_skipped(&files.nucleus_boundaries, nucleus_boundaries.transpose()?);
        if cell_boundaries.is_none() {
            warn(
                None,
                "no cell_boundaries file: cells are drawn as points only".to_owned(),
            );
        }
        if nucleus_boundaries.is_none() {
            warn(None, "no nucleus_boundaries file".to_owned());
        }
        let counts = match (counts.transpose()?, &files.counts) {
            (Some((counts, warning)), Some(path)) => {
                if let Some(message) = warning {
                    warn(Some(path), message);
                }
                Some(counts)
            }
            _ => {
                warn(
                    None,
                    "no cell_feature_matrix.h5 or cell_feature_matrix/ (MEX): no gene expression".to_owned(),
                );
                None
            }
        };
        let mut cells = cells;
        for (name, path) in clusters::find_clusterings(dir) {
            let (column, unknown) = clusters::read_clusters(&path, &cells)?;
            if unknown > 0 {
                warn(Some(&path), format!("{unknown} barcodes are not cells of this bundle"));
            }
            cells.categorical.push((name, column));
        }
        // Explorer's groupings; those that repeat a clusters.csv of the same name are left out.
        if let Some(path) = &files.analysis_zarr {
            match explorer::read_analysis_zarr_zip(path, &cells) {
                Ok(groupings) => {
                    for (name, column) in groupings {
                        if cells.categorical_column(&name).is_none() {
                            cells.categorical.push((name, column));
                        }
                    }
                }
                Err(error) => warn(Some(path), format!("cell groups not read: {error}")),
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            files,
            experiment,
            cells,
            cell_boundaries,
            nucleus_boundaries,
            counts,
            warnings,
        })
    }

    /// Reads transcripts with qv >= `min_qv` (None when the bundle has no transcripts file).
    pub fn load_transcripts(&self, min_qv: f64) -> Result<Option<Transcripts>, XeniumError> {
        self.files
            .transcripts
            .as_deref()
            .map(|path| Transcripts::read_with(path, &self.cells, min_qv, &self.files.transcript_layout))
            .transpose()
    }
}

/// Reads `file` with `work` on a named scoped thread; the returned function waits for it.
fn on_thread<'scope, 'env, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    name: &str,
    file: &Path,
    work: impl FnOnce() -> Result<T, XeniumError> + Send + 'scope,
) -> impl FnOnce() -> Result<T, XeniumError> + 'scope {
    let handle = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn_scoped(scope, work);
    let file = file.to_path_buf();
    move || match handle {
        Ok(handle) => handle.join().unwrap_or_else(|_| {
            Err(XeniumError::Io {
                file,
                reason: "the reading thread panicked".to_owned(),
            })
        }),
        Err(error) => Err(XeniumError::Io {
            file,
            reason: format!("cannot start a reading thread: {error}"),
        }),
    }
}

/// Cells from boundaries alone: ids in file order, centroid and area from each polygon.
fn derive_cells(path: &Path, raw: polygons::RawPolygons) -> Result<(CellTable, Option<Polygons>), XeniumError> {
    let n = raw.ids.len();
    let mut x = Vec::with_capacity(n);
    let mut y = Vec::with_capacity(n);
    let mut area = Vec::with_capacity(n);
    for i in 0..n {
        let c = raw.polygons.centroid_um(i).unwrap_or([f64::NAN, f64::NAN]);
        x.push(c[0]);
        y.push(c[1]);
        area.push(raw.polygons.area_um2(i));
    }
    let mut cells = CellTable::from_parts(path, raw.ids, x, y)?;
    cells.numeric.push(("cell_area".to_owned(), area));
    Ok((cells, Some(raw.polygons)))
}
