//! An open cohort: its manifest, the sample shown, each visited sample's state as it was left
//! (a captured session record: view, layers, selections, annotations, model runs), and the last
//! comparison of the samples' compositions. Switching samples parks the open one here and
//! restores the other, so each keeps its own view, selections and results.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::io::session_file::{SessionFile, StoredCohort, StoredCohortModel, StoredPath};
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
    /// The niche model (contrastive projection and k-means centroids) the tab applies, so that
    /// every sample's niches are the same ones.
    pub niche_model: Option<CohortModel>,
}

/// `cohort-out` beside the manifest: where the README's layout puts `cohort run --out`.
fn outputs_beside(manifest: &cs_cohort::Manifest) -> PathBuf {
    manifest
        .path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("cohort-out")
}

/// A model the Cohort tab can apply to the samples: the last classifier (or niche model) found
/// on a sample, or a saved classifier folder.
#[derive(Debug, Clone, PartialEq)]
pub struct CohortModel {
    pub dir: PathBuf,
    /// What it is, for the tab ("dual-modality, trained on P01").
    pub description: String,
    /// The sample it was trained on.
    pub trained_on: Option<String>,
}

impl CohortModel {
    fn stored(&self, base_dir: Option<&Path>) -> StoredCohortModel {
        StoredCohortModel {
            dir: StoredPath::new(&self.dir, base_dir),
            description: self.description.clone(),
            trained_on: self.trained_on.clone(),
        }
    }

    fn from_stored(stored: &StoredCohortModel, base_dir: Option<&Path>) -> Self {
        Self {
            dir: stored.dir.resolve(base_dir),
            description: stored.description.clone(),
            trained_on: stored.trained_on.clone(),
        }
    }
}

impl CohortState {
    pub fn new(manifest: cs_cohort::Manifest) -> Self {
        // `cohort run --out` beside the manifest is found without asking (the README's layout).
        let outputs = Some(outputs_beside(&manifest)).filter(|dir| dir.is_dir());
        Self {
            manifest,
            active: None,
            parked: HashMap::new(),
            composition: None,
            outputs,
            model: None,
            niche_model: None,
        }
    }

    pub fn sample(&self, id: &str) -> Option<&cs_cohort::Sample> {
        self.manifest.samples.iter().find(|s| s.id == id)
    }

    /// Sample `id` when it can be opened; else what to tell the user (not in the manifest, or
    /// its row's problem).
    pub fn openable(&self, id: &str) -> Result<&cs_cohort::Sample, String> {
        let sample = self
            .sample(id)
            .ok_or_else(|| format!("No sample {id:?} in {}.", self.name()))?;
        match &sample.problem {
            Some(problem) => Err(format!("Sample {id} ({}) cannot be opened: {problem}", sample.row)),
            None => Ok(sample),
        }
    }

    /// Where the tab's *Apply* writes predictions: the cohort run folder, else `cohort-out`
    /// beside the manifest (where the tab looks for it).
    pub fn outputs_or_default(&self) -> PathBuf {
        self.outputs.clone().unwrap_or_else(|| outputs_beside(&self.manifest))
    }

    /// The cohort as a session stores it (paths relative to `base_dir`), with the sample
    /// compared beside the one shown.
    pub fn stored(&self, base_dir: Option<&Path>, compared: Option<&str>) -> StoredCohort {
        StoredCohort {
            manifest: StoredPath::new(&self.manifest.path, base_dir),
            active: self.active.clone(),
            parked: self.parked.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            compared: compared.map(str::to_owned),
            outputs: self.outputs.as_deref().map(|p| StoredPath::new(p, base_dir)),
            model: self.model.as_ref().map(|m| m.stored(base_dir)),
            niche_model: self.niche_model.as_ref().map(|m| m.stored(base_dir)),
        }
    }

    /// A stored cohort, its manifest read again (it may have changed since: samples no longer
    /// in it are dropped from the visited ones).
    pub fn from_stored(stored: &StoredCohort, base_dir: Option<&Path>) -> Result<Self, cs_cohort::ManifestError> {
        let manifest = cs_cohort::Manifest::read(&stored.manifest.resolve(base_dir))?;
        let ids: std::collections::HashSet<String> = manifest.samples.iter().map(|s| s.id.clone()).collect();
        let known = |id: &String| ids.contains(id);
        let mut cohort = Self::new(manifest);
        cohort.active = stored.active.clone().filter(known);
        cohort.parked = stored
            .parked
            .iter()
            .filter(|(id, _)| known(id))
            .map(|(id, session)| (id.clone(), session.clone()))
            .collect();
        if let Some(outputs) = &stored.outputs {
            cohort.outputs = Some(outputs.resolve(base_dir));
        }
        cohort.model = stored.model.as_ref().map(|m| CohortModel::from_stored(m, base_dir));
        cohort.niche_model = stored
            .niche_model
            .as_ref()
            .map(|m| CohortModel::from_stored(m, base_dir));
        Ok(cohort)
    }

    /// The manifest's file name, for headings.
    pub fn name(&self) -> String {
        crate::util::display_name(&self.manifest.path)
    }
}
