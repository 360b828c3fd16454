//! Selection statistics and files: differential expression and neighbourhood enrichment as jobs
//! (their results kept with their inputs), selections read from GeoJSON or Xenium Explorer CSV,
//! selection exports written by a job, plots saved as shown (cut from a screenshot),
//! annotations in and out of GeoJSON, and cell groups to and from Xenium Explorer.

use std::path::{Path, PathBuf};

use crate::app::ViewerApp;
use crate::app::jobs::{JobKey, JobOutput};
use crate::document::edit::Edit;
use crate::io::annotation_geojson::{AnnotationImport, import_summary, read_for_import, write_annotations_geojson};
use crate::io::cell_groups::{ImportedGroups, export_cell_groups, import_cell_groups, selections_as_groups};
use crate::io::export::{ExportInputs, ExportKind, PlotKind, export};
use crate::io::records::NamedSelection;
use crate::io::selection_io::{read_geojson, read_xenium_explorer_csv};
use crate::layers::cell_layer::ColourBy;
use crate::ui::dialogs::GroupSource;
use crate::util::display_name;
use crate::work::analysis::{NhoodSettings, differential_expression, neighbourhood_enrichment};
use crate::work::jobs::JobKind;

impl ViewerApp {
    /// Starts differential expression of the active selection against the rest (or the compared
    /// selection).
    pub(super) fn run_differential_expression(&mut self) {
        let (Some(cells), Some(key)) = (&self.document.cells, self.document.de_key()) else {
            return;
        };
        let bundle = cells.bundle.clone();
        let job_key = key.clone();
        self.jobs.cancel_kind(JobKind::DifferentialExpression);
        self.spawn(
            JobKind::DifferentialExpression,
            JobKey::De(key),
            "Differential expression",
            move |_| JobOutput::De(differential_expression(&bundle, &job_key)),
        );
    }

    /// Starts neighbourhood enrichment with `settings` (a running one is cancelled).
    pub(super) fn run_nhood(&mut self, settings: &NhoodSettings) {
        let (Some(cells), Some(key)) = (&self.document.cells, self.document.nhood_key(settings)) else {
            return;
        };
        let bundle = cells.bundle.clone();
        let job_key = key.clone();
        self.cancel_nhood();
        self.spawn(
            JobKind::NhoodEnrichment,
            JobKey::Nhood(key),
            "Neighbourhood enrichment",
            move |cx| JobOutput::Nhood(neighbourhood_enrichment(&bundle, &job_key, &cx.cancel)),
        );
    }

    /// Stops the enrichment and forgets its result.
    pub(super) fn cancel_nhood(&mut self) {
        self.jobs.cancel_kind(JobKind::NhoodEnrichment);
        self.document.analysis.nhood = None;
    }

    /// Reads selections from GeoJSON or a Xenium Explorer coordinates CSV and adds them.
    pub(super) fn import_selections(&mut self, path: &Path) {
        let Some(cells) = &self.document.cells else {
            self.runtime
                .toasts
                .error("Open a Xenium bundle before importing selections.");
            return;
        };
        let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let read = if is_csv {
            read_xenium_explorer_csv(path)
        } else {
            read_geojson(path, &self.document.selection_file_from_world().inverse())
        };
        match read {
            Ok(imported) => {
                let count = imported.len();
                self.document.selections.import(imported, &cells.index, cells.len());
                self.runtime
                    .toasts
                    .note(format!("Imported {count} selection(s) from {}", display_name(path)));
            }
            Err(error) => self.runtime.toasts.error(format!("{error:#}")),
        }
    }

    /// Runs `work` as the export job; its message or error becomes a toast.
    pub(super) fn start_export(&mut self, work: impl FnOnce() -> anyhow::Result<String> + Send + 'static) {
        self.jobs.cancel_kind(JobKind::Export);
        self.spawn(JobKind::Export, JobKey::None, "Exporting", move |_| {
            JobOutput::Written(work())
        });
    }

    /// Writes a selection export in the background; a note or an error says how it went.
    pub(super) fn export(&mut self, kind: ExportKind, path: PathBuf) {
        let doc = &self.document;
        let Some(cells) = &doc.cells else { return };
        let Some(active) = doc.selections.active().cloned() else {
            self.runtime
                .toasts
                .error("Select cells first: there is no active selection to export.");
            return;
        };
        let bundle = cells.bundle.clone();
        let file_from_world = doc.selection_file_from_world();
        let visible: Vec<NamedSelection> = doc.selections.items.iter().filter(|s| s.visible).cloned().collect();
        let composition = self
            .runtime
            .ui
            .selections
            .composition
            .result
            .clone()
            .and_then(Result::ok);
        let column = doc.stats_column();
        let de = doc.current_de_result();
        let nhood = doc.current_nhood_result(&self.runtime.ui.selections.nhood_settings);
        let reference = doc
            .selections
            .compared()
            .map_or("rest of the cells".to_owned(), |s| s.name.clone());
        self.start_export(move || {
            export(
                kind,
                &path,
                &ExportInputs {
                    bundle: &bundle,
                    active: &active,
                    visible: &visible,
                    file_from_world,
                    composition: composition.as_ref(),
                    column: column.as_deref(),
                    reference: &reference,
                    de: de.as_deref().map(Vec::as_slice),
                    nhood: nhood.as_deref(),
                },
            )
        });
    }

    /// Saves a plot as shown on screen: the next frame is captured and the plot's rectangle cut
    /// out and written as PNG.
    pub(super) fn export_plot_png(&mut self, plot: PlotKind, path: PathBuf) {
        let Some(rect) = self.runtime.ui.selections.plot_rects.get(&plot).copied() else {
            self.runtime
                .toasts
                .error("That plot is not on screen: show it, then export it.");
            return;
        };
        let sender = self.runtime.screenshot_reports.0.clone();
        let ctx = self.ctx.clone();
        let pixels_per_point = self.ctx.pixels_per_point();
        self.ctx.request_screenshot(move |image| {
            let region = image.region(&rect, Some(pixels_per_point));
            let [w, h] = region.size;
            let rgba: Vec<u8> = region.pixels.iter().flat_map(|c| c.to_srgba_unmultiplied()).collect();
            let result = image::RgbaImage::from_raw(w as u32, h as u32, rgba)
                .ok_or_else(|| "the screenshot has the wrong size".to_owned())
                .and_then(|png| {
                    png.save(&path)
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))
                })
                .map(|()| format!("Saved {}", path.display()));
            let _ = sender.try_send(result);
            ctx.request_repaint();
        });
    }

    /// The reports of plot PNGs written from screenshots (once per frame).
    pub(super) fn apply_screenshot_reports(&mut self) {
        while let Ok(result) = self.runtime.screenshot_reports.1.try_recv() {
            match result {
                Ok(message) => self.runtime.toasts.note(message),
                Err(error) => self.runtime.toasts.error(error),
            }
        }
    }

    /// Reads annotations from GeoJSON (QuPath's) as a job; they are added when read.
    pub(super) fn import_annotations(&mut self, path: &Path) {
        let world_from_file = self.document.selection_file_from_world().inverse();
        let job_path = path.to_path_buf();
        let label = format!("Reading annotations from {}", display_name(path));
        self.jobs.cancel_kind(JobKind::AnnotationImport);
        self.spawn(
            JobKind::AnnotationImport,
            JobKey::Path(path.to_path_buf()),
            label,
            move |_| JobOutput::AnnotationsRead(read_for_import(&job_path, &world_from_file)),
        );
    }

    pub(super) fn annotations_read(&mut self, path: &Path, result: anyhow::Result<AnnotationImport>) {
        match result {
            Ok(import) => {
                let summary = import_summary(path, &import);
                self.document.annotations.import(import.annotations);
                self.runtime.toasts.note(summary);
            }
            Err(error) => self.runtime.toasts.error(format!("{error:#}")),
        }
    }

    /// Reads Xenium Explorer cell groups (CSV or analysis.zarr.zip) as columns, in the background.
    pub(super) fn import_cell_groups(&mut self, path: &Path) {
        self.read_cell_groups(vec![path.to_path_buf()], false);
    }

    /// Reads group files in one job, in order. `restoring`: a session's files, whose colouring
    /// the session itself restores.
    pub(super) fn read_cell_groups(&mut self, paths: Vec<PathBuf>, restoring: bool) {
        let Some(cells) = &self.document.cells else {
            self.runtime
                .toasts
                .error("Open a Xenium bundle before importing cell groups.");
            return;
        };
        let Some(first) = paths.first().cloned() else { return };
        let bundle = cells.bundle.clone();
        let label = match paths.len() {
            1 => format!("Reading cell groups from {}", display_name(&first)),
            n => format!("Reading {n} cell-group files"),
        };
        if !restoring {
            self.jobs.cancel_kind(JobKind::GroupImport);
        }
        self.spawn(JobKind::GroupImport, JobKey::Path(first), label, move |_| {
            let results = paths.iter().map(|p| import_cell_groups(p, &bundle.cells)).collect();
            JobOutput::GroupsRead { results, restoring }
        });
    }

    pub(super) fn groups_read(&mut self, results: Vec<anyhow::Result<ImportedGroups>>, restoring: bool) {
        for result in results {
            match result {
                Ok(imported) => {
                    let Some(cells) = self.document.cells.as_mut() else {
                        return;
                    };
                    let last = imported.columns.last().map(|(name, _)| name.clone());
                    for (name, column) in imported.columns {
                        cells.put_categorical_column(&name, column);
                    }
                    // Read again on restore: the latest import of a file comes last.
                    cells.group_files.retain(|p| *p != imported.path);
                    cells.group_files.push(imported.path);
                    if restoring {
                        continue;
                    }
                    if let Some(name) = last {
                        self.document.apply(Edit::ColourBy(ColourBy::Category(name)));
                    }
                    self.runtime.toasts.note(imported.note);
                }
                Err(error) if restoring => self
                    .runtime
                    .toasts
                    .error(format!("The session's cell groups could not be read again: {error:#}")),
                Err(error) => self.runtime.toasts.error(format!("{error:#}")),
            }
        }
    }

    /// Writes a categorical column, or the visible selections as groups, for Xenium Explorer.
    pub(super) fn export_cell_groups(&mut self, source: GroupSource, path: PathBuf) {
        let Some(cells) = &self.document.cells else { return };
        let bundle = cells.bundle.clone();
        let (name, column) = match source {
            GroupSource::Column(name) => match bundle.cells.categorical_column(&name) {
                Some(column) => (name, column.clone()),
                None => {
                    self.runtime
                        .toasts
                        .error(format!("There is no column {name} to export."));
                    return;
                }
            },
            GroupSource::Selections => {
                let visible: Vec<&NamedSelection> =
                    self.document.selections.items.iter().filter(|s| s.visible).collect();
                if visible.is_empty() {
                    self.runtime
                        .toasts
                        .error("There are no visible selections to export as groups.");
                    return;
                }
                (
                    "selections".to_owned(),
                    selections_as_groups(&visible, bundle.cells.len()),
                )
            }
        };
        self.start_export(move || export_cell_groups(&path, &bundle.cells, &name, &column));
    }

    /// Writes every annotation as GeoJSON (QuPath's layout) as the export job.
    pub(super) fn export_annotations(&mut self, path: PathBuf) {
        let items = self.document.annotations.items.clone();
        let classes = self.document.annotations.classes.clone();
        let file_from_world = self.document.selection_file_from_world();
        self.start_export(move || {
            write_annotations_geojson(&path, &items, &classes, &file_from_world)?;
            Ok(format!("{} annotation(s) saved to {}", items.len(), path.display()))
        });
    }
}
