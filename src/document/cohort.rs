//! An open cohort: its manifest, the sample shown, each visited sample's state as it was left
//! (a captured session record: view, layers, selections, annotations, model runs), and the last
//! comparison of the samples' compositions. Switching samples parks the open one here and
//! restores the other, so each keeps its own view, selections and results.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::io::session_file::SessionFile;
use crate::work::cohort::CohortComposition;

pub struct CohortState {
    pub manifest: cs_cohort::Manifest,
    /// The sample open in the viewer (None: what is open is not one of the cohort's).
    pub active: Option<String>,
    /// Samples visited and left, as they were.
    pub parked: HashMap<String, SessionFile>,
    /// The last composition comparison (or why it failed).
    pub composition: Option<Result<CohortComposition, String>>,
    /// Where `cohort run` wrote its outputs (for predicted types), if the user named it, or where
    /// the tab's *Apply* wrote them.
    pub outputs: Option<PathBuf>,
    /// The classifier the tab applies to other samples.
    pub model: Option<CohortModel>,
}

/// A classifier the Cohort tab can apply to the samples: the last one trained on a sample, or a
/// saved model folder.
#[derive(Debug, Clone, PartialEq)]
pub struct CohortModel {
    pub dir: PathBuf,
    /// What it is, for the tab ("dual-modality, trained on P01").
    pub description: String,
    /// The sample it was trained on (not applied to it again by default).
    pub trained_on: Option<String>,
}

impl CohortState {
    pub fn new(manifest: cs_cohort::Manifest) -> Self {
        // `cohort run --out` beside the manifest is found without asking (the README's layout).
        let outputs = manifest
            .path
            .parent()
            .map(|dir| dir.join("cohort-out"))
            .filter(|dir| dir.is_dir());
        Self {
            manifest,
            active: None,
            parked: HashMap::new(),
            composition: None,
            outputs,
            model: None,
        }
    }

    pub fn sample(&self, id: &str) -> Option<&cs_cohort::Sample> {
        self.manifest.samples.iter().find(|s| s.id == id)
    }

    /// Where the tab's *Apply* writes predictions: the cohort run folder, else `cohort-out`
    /// beside the manifest (where the tab looks for it).
    pub fn outputs_or_default(&self) -> PathBuf {
        self.outputs.clone().unwrap_or_else(|| {
            self.manifest
                .path
                .parent()
                .unwrap_or_else(|| std::path::Path::new("."))
                .join("cohort-out")
        })
    }

    /// The manifest's file name, for headings.
    pub fn name(&self) -> String {
        crate::util::display_name(&self.manifest.path)
    }
}
