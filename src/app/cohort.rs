//! Cohorts in the app: opening a manifest, switching the sample shown (the one left is parked as
//! a captured session and comes back as it was), and the cohort tab's composition comparison.

use std::path::{Path, PathBuf};

use crate::app::{JobKey, JobOutput, ViewerApp};
use crate::document::cohort::CohortState;
use crate::io::session_file::{SessionFile, StoredAlignment, StoredPath};
use crate::ui::RightTab;
use crate::util::display_name;
use crate::work::cohort::{CompositionRequest, cohort_composition};
use crate::work::jobs::JobKind;

impl ViewerApp {
    /// Reads a manifest; its first sample that can run is shown, and the cohort tab.
    pub(super) fn open_cohort(&mut self, path: PathBuf) {
        let manifest = match cs_cohort::Manifest::read(&path) {
            Ok(manifest) => manifest,
            Err(error) => {
                self.runtime.toasts.error(format!("{error}"));
                return;
            }
        };
        let problems: Vec<String> = manifest
            .samples
            .iter()
            .filter_map(|s| s.problem.as_ref().map(|p| format!("{} ({}): {p}", s.id, s.row)))
            .collect();
        let first = manifest.runnable().next().map(|s| s.id.clone());
        let message = format!(
            "Cohort {}: {} sample(s), {} can be opened",
            display_name(&path),
            manifest.samples.len(),
            manifest.runnable().count()
        );
        if problems.is_empty() {
            self.runtime.toasts.note(message);
        } else {
            self.runtime
                .toasts
                .error(format!("{message}. Cannot open: {}", problems.join("; ")));
        }
        self.document.cohort = Some(CohortState::new(manifest));
        self.runtime.ui.right_tab = RightTab::Cohort;
        if let Some(id) = first {
            self.switch_sample(&id);
        }
    }

    /// Shows sample `id`: the sample shown now is parked as it is (view, layers, selections,
    /// annotations, model runs) and `id` comes back as it was left, or opens fresh.
    pub(super) fn switch_sample(&mut self, id: &str) {
        let Some(cohort) = &self.document.cohort else {
            return;
        };
        if cohort.active.as_deref() == Some(id) {
            return;
        }
        let sample = match cohort.sample(id) {
            None => Err(format!("No sample {id:?} in {}.", cohort.name())),
            Some(sample) => match &sample.problem {
                Some(problem) => Err(format!("Sample {id} ({}) cannot be opened: {problem}", sample.row)),
                None => Ok(sample),
            },
        };
        // A sample visited before comes back as it was left; a new one opens its files.
        let session = sample.and_then(|sample| match cohort.parked.get(id) {
            Some(parked) => Ok(parked.clone()),
            None => fresh_session(sample),
        });
        let session = match session {
            Ok(session) => session,
            Err(message) => {
                self.runtime.toasts.error(message);
                return;
            }
        };
        let left = cohort.active.clone().map(|active| (active, self.capture_session(None)));
        if let Some(cohort) = &mut self.document.cohort {
            cohort.parked.remove(id);
            cohort.parked.extend(left);
            cohort.active = Some(id.to_owned());
        }
        // Restoring replaces the document's contents, not the cohort around them.
        self.restore_session(session, None);
    }

    /// Reads every sample's labels and compares the groups, as a background job.
    pub(super) fn compare_cohort(&mut self, column: String) {
        let Some(cohort) = &self.document.cohort else {
            return;
        };
        let request = CompositionRequest {
            manifest: cohort.manifest.clone(),
            column: column.clone(),
            outputs: cohort.outputs.clone(),
        };
        self.jobs.cancel_kind(JobKind::CohortComposition);
        self.spawn(
            JobKind::CohortComposition,
            JobKey::Path(cohort.manifest.path.clone()),
            format!("Comparing the samples' {column}"),
            move |cx| JobOutput::CohortComposition(cohort_composition(request, cx)),
        );
    }

    pub(super) fn cohort_compared(&mut self, result: anyhow::Result<crate::work::cohort::CohortComposition>) {
        let Some(cohort) = &mut self.document.cohort else {
            return;
        };
        if let Ok(composition) = &result
            && !composition.failures.is_empty()
        {
            self.runtime.toasts.error(format!(
                "Left out of the comparison: {}",
                composition.failures.join("; ")
            ));
        }
        cohort.composition = Some(result.map_err(|e| format!("{e:#}")));
    }

    /// Writes the comparison's table (shares per sample and class, then the tests) as CSV.
    pub(super) fn export_cohort_table(&mut self, path: PathBuf) {
        let Some(Some(Ok(composition))) = self.document.cohort.as_ref().map(|c| c.composition.clone()) else {
            self.runtime
                .toasts
                .error("Compare the samples first: there is no table to export.");
            return;
        };
        self.start_export(move || {
            crate::util::fs::write_atomically(&path, composition.to_csv().as_bytes())?;
            Ok(format!(
                "{} rows and {} tests saved to {}",
                composition.rows.len(),
                composition.tests.len(),
                path.display()
            ))
        });
    }

    /// The document no longer shows a sample of the cohort (the user opened something else);
    /// the samples already parked stay as they were.
    pub(super) fn leave_cohort_sample(&mut self) {
        if let Some(cohort) = &mut self.document.cohort {
            cohort.active = None;
        }
    }
}

/// A sample opened for the first time: its bundle, slide and alignment.
fn fresh_session(sample: &cs_cohort::Sample) -> Result<SessionFile, String> {
    let stored = |path: &Path| StoredPath::new(path, None);
    let alignment = match &sample.alignment {
        Some(csv) => Some(
            cs_xenium::read_alignment_csv(csv)
                .map(|affine| StoredAlignment {
                    file: Some(stored(csv)),
                    xenium_px_from_slide_px: affine.rows,
                    rms_residual_um: None,
                })
                .map_err(|e| format!("Sample {} ({}): {e}", sample.id, sample.row))?,
        ),
        None => None,
    };
    Ok(SessionFile {
        bundle: Some(stored(&sample.xenium)),
        slide: sample.slide.as_deref().map(stored),
        alignment,
        ..Default::default()
    })
}
