//! File dialogs: what a dialog is for ([`DialogPurpose`]) and the native dialog itself, with the
//! title, filters and default name that purpose wants. The dialog blocks, so the shell runs it as
//! a `file-dialog` job; panels only ask for one.

use std::path::PathBuf;

use crate::io::export::{ExportKind, PlotKind};
use crate::io::session_file::SESSION_EXTENSION;

/// Whole-slide image extensions the file dialogs offer (`.ome.tif` is a `.tif`; DICOM WSI is
/// read by the built-in DICOM reader, whatever OpenSlide the system has).
pub const SLIDE_EXTENSIONS: [&str; 12] = [
    "svs", "tif", "tiff", "ndpi", "vms", "vmu", "scn", "mrxs", "svslide", "bif", "btf", "dcm",
];

/// What a file dialog was opened for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialogPurpose {
    OpenSession,
    SaveSession,
    Slide,
    Bundle,
    Alignment,
    SaveAlignment,
    /// A second slide, compared with the first in the split view.
    CompareSlide,
    /// GeoJSON (QuPath) or a Xenium Explorer coordinates CSV.
    ImportSelections,
    /// Annotations as GeoJSON (QuPath).
    ImportAnnotations,
    ExportAnnotations,
    /// A cell_id,label CSV for training the classifier.
    ModelLabels,
    VitWeights,
    GeneEmbeddings,
    ApplyModel,
    /// Save the model folder `from` (the classifier shown when the button was pressed).
    SaveModel {
        from: PathBuf,
    },
    /// The view as PNG at `scale` times its size on screen.
    ExportViewPng {
        scale: u32,
        legend: bool,
    },
    /// Every bookmark as PNG, with an HTML index, into a folder.
    ExportTour {
        scale: u32,
        legend: bool,
    },
    /// A selection export (GeoJSON, CSV, a plot as SVG).
    Export(ExportKind),
    /// One of the panel's plots as shown, as PNG.
    ExportPlotPng(PlotKind),
    /// Cell groups from Xenium Explorer (CSV or analysis.zarr.zip) as columns.
    ImportCellGroups,
    /// A column, or the selections, as Xenium Explorer cell groups.
    ExportCellGroups(GroupSource),
    /// A cohort manifest (CSV or TOML).
    Cohort,
    /// The folder `cohort run --out` wrote (for predicted types).
    CohortOutputs,
    /// The cohort tab's composition table as CSV.
    ExportCohortTable,
    /// A saved classifier folder to apply to the cohort's samples.
    CohortModel,
}

/// What becomes Xenium Explorer cell groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupSource {
    /// A categorical column of the cell table, by name.
    Column(String),
    /// The visible selections, one group each.
    Selections,
}

/// Shows the native dialog for `purpose`, starting in `start_dir`; blocks until it is answered
/// (None: cancelled). Runs on the `file-dialog` thread.
pub fn show_file_dialog(purpose: &DialogPurpose, start_dir: Option<PathBuf>) -> Option<PathBuf> {
    let mut dialog = rfd::FileDialog::new();
    if let Some(dir) = start_dir {
        dialog = dialog.set_directory(dir);
    }
    let session_filter = ("CellSymphony session", [SESSION_EXTENSION]);
    match purpose {
        DialogPurpose::Cohort => dialog
            .set_title("Open a cohort manifest (CSV or TOML: sample_id, xenium, slide, alignment, metadata)")
            .add_filter("Cohort manifest", &["csv", "toml"])
            .pick_file(),
        DialogPurpose::CohortOutputs => dialog
            .set_title("The folder `cellsymphony cohort run --out` wrote")
            .pick_folder(),
        DialogPurpose::CohortModel => dialog
            .set_title("A saved classifier folder (Save model… or cellsymphony train) to apply to the samples")
            .pick_folder(),
        DialogPurpose::ExportCohortTable => dialog
            .set_title("Export the cohort composition table as CSV")
            .add_filter("CSV", &["csv"])
            .set_file_name("cohort_composition.csv")
            .save_file(),
        DialogPurpose::OpenSession => dialog
            .set_title("Open session")
            .add_filter(session_filter.0, &session_filter.1)
            .pick_file(),
        DialogPurpose::SaveSession => dialog
            .set_title("Save session as")
            .add_filter(session_filter.0, &session_filter.1)
            .set_file_name("session.cellsymphony")
            .save_file(),
        DialogPurpose::Slide => dialog
            .set_title("Open whole-slide image")
            .add_filter("Whole-slide images", &SLIDE_EXTENSIONS)
            .add_filter("All files", &["*"])
            .pick_file(),
        DialogPurpose::Bundle => dialog
            .set_title("Open a Xenium output folder or a SpatialData .zarr")
            .pick_folder(),
        DialogPurpose::Alignment => dialog
            .set_title("Open H&E alignment (Xenium Explorer CSV)")
            .add_filter("Alignment CSV", &["csv"])
            .pick_file(),
        DialogPurpose::SaveAlignment => dialog
            .set_title("Save H&E alignment (Xenium Explorer CSV)")
            .add_filter("Alignment CSV", &["csv"])
            .set_file_name("he_alignment.csv")
            .save_file(),
        DialogPurpose::ImportSelections => dialog
            .set_title("Import selections (GeoJSON, Xenium Explorer CSV)")
            .add_filter("Selections", &["geojson", "json", "csv"])
            .pick_file(),
        DialogPurpose::CompareSlide => dialog
            .set_title("Open a slide to compare (shown beside the first)")
            .add_filter("Whole-slide images", &SLIDE_EXTENSIONS)
            .add_filter("All files", &["*"])
            .pick_file(),
        DialogPurpose::ImportAnnotations => dialog
            .set_title("Import annotations (GeoJSON, e.g. from QuPath)")
            .add_filter("GeoJSON", &["geojson", "json"])
            .pick_file(),
        DialogPurpose::ExportAnnotations => dialog
            .set_title("Export annotations as GeoJSON (QuPath)")
            .add_filter("GeoJSON", &["geojson"])
            .set_file_name("annotations.geojson")
            .save_file(),
        DialogPurpose::ModelLabels => dialog
            .set_title("Training labels (CSV with cell_id and label columns)")
            .add_filter("CSV", &["csv"])
            .pick_file(),
        DialogPurpose::GeneEmbeddings => dialog
            .set_title("Per-cell gene embeddings (cell_id + numeric columns, or .npy + NAME.cell_ids.txt)")
            .add_filter("embeddings", &["parquet", "csv", "gz", "npy"])
            .pick_file(),
        DialogPurpose::ApplyModel => dialog
            .set_title("A saved classifier (the folder with model.json and weights.bpk)")
            .pick_folder(),
        DialogPurpose::SaveModel { .. } => dialog
            .set_title("Save the classifier as a model folder")
            .set_file_name("cellsymphony-model")
            .save_file(),
        DialogPurpose::VitWeights => dialog
            .set_title("ViT weights (.safetensors saved from timm)")
            .add_filter("safetensors", &["safetensors"])
            .pick_file(),
        DialogPurpose::ExportViewPng { .. } => dialog
            .set_title("Export the view as PNG")
            .add_filter("PNG", &["png"])
            .set_file_name("view.png")
            .save_file(),
        DialogPurpose::ExportTour { .. } => dialog
            .set_title("Export the tour into a folder (PNGs and index.html)")
            .pick_folder(),
        DialogPurpose::Export(ExportKind::SelectionsGeoJson) => dialog
            .set_title("Export selections as GeoJSON (QuPath)")
            .add_filter("GeoJSON", &["geojson"])
            .set_file_name("selections.geojson")
            .save_file(),
        DialogPurpose::Export(ExportKind::CellsCsv) => dialog
            .set_title("Export the selection's cells (Xenium Explorer CSV)")
            .add_filter("CSV", &["csv"])
            .set_file_name("selection_cells.csv")
            .save_file(),
        DialogPurpose::Export(ExportKind::StatsCsv) => dialog
            .set_title("Export the selection's statistics (CSV)")
            .add_filter("CSV", &["csv"])
            .set_file_name("selection_composition.csv")
            .save_file(),
        DialogPurpose::Export(ExportKind::PlotSvg(plot)) | DialogPurpose::ExportPlotPng(plot) => {
            let extension = if matches!(purpose, DialogPurpose::ExportPlotPng(_)) {
                "png"
            } else {
                "svg"
            };
            dialog
                .set_title(format!("Export the plot ({})", extension.to_uppercase()))
                .add_filter(extension.to_uppercase(), &[extension])
                .set_file_name(format!("{}.{extension}", plot.file_stem()))
                .save_file()
        }
        DialogPurpose::ImportCellGroups => dialog
            .set_title("Import cell groups (Xenium Explorer cell_id,group CSV or analysis.zarr.zip)")
            .add_filter("Cell groups", &["csv", "zip"])
            .pick_file(),
        DialogPurpose::ExportCellGroups(source) => {
            let stem = match source {
                GroupSource::Column(name) => name.replace(|c: char| !c.is_alphanumeric(), "_"),
                GroupSource::Selections => "selections".to_owned(),
            };
            dialog
                .set_title("Export cell groups for Xenium Explorer (.csv, or .zarr.zip for analysis.zarr.zip)")
                .add_filter("Xenium Explorer cell groups CSV", &["csv"])
                .add_filter("Xenium Explorer analysis.zarr.zip", &["zip"])
                .set_file_name(format!("{stem}_cell_groups.csv"))
                .save_file()
        }
        DialogPurpose::Export(ExportKind::DeCsv) => dialog
            .set_title("Export differential expression (CSV)")
            .add_filter("CSV", &["csv"])
            .set_file_name("selection_differential_expression.csv")
            .save_file(),
    }
}
