//! The selection statistics of the document: which categorical column they use, and the latest
//! differential expression and neighbourhood enrichment, each kept with the inputs (key) it was
//! computed for so that it is shown only while those inputs still hold.

use std::sync::Arc;

use cs_analysis::NhoodEnrichment;

use crate::document::DocumentState;
use crate::io::records::NamedDe;
use crate::layers::cell_layer::ColourBy;
use crate::work::analysis::{DeKey, NhoodKey, NhoodSettings};

/// A result (or the error that took its place) and the inputs it was computed for.
#[derive(Debug, Clone)]
pub struct KeyedResult<K, T> {
    pub key: K,
    pub result: Result<Arc<T>, String>,
}

impl<K: PartialEq, T> KeyedResult<K, T> {
    /// A job's result for the inputs `key` (its error kept as the message to show).
    pub fn new(key: K, result: anyhow::Result<T>) -> Self {
        Self {
            key,
            result: result.map(Arc::new).map_err(|e| format!("{e:#}")),
        }
    }

    /// The result, if it is for `current` inputs.
    pub fn result_for(&self, current: Option<&K>) -> Option<Arc<T>> {
        (Some(&self.key) == current)
            .then(|| self.result.as_ref().ok().cloned())
            .flatten()
    }

    /// The error, if the run for `current` inputs failed.
    pub fn error_for(&self, current: Option<&K>) -> Option<String> {
        (Some(&self.key) == current)
            .then(|| self.result.as_ref().err().cloned())
            .flatten()
    }
}

/// Statistics settings and results.
#[derive(Debug, Default)]
pub struct AnalysisResults {
    /// The categorical column chosen for the statistics (None: the one cells are coloured by).
    pub stats_column: Option<String>,
    pub de: Option<KeyedResult<DeKey, Vec<NamedDe>>>,
    pub nhood: Option<KeyedResult<NhoodKey, NhoodEnrichment>>,
}

impl DocumentState {
    /// The column the statistics use: the chosen one, else the one cells are coloured by, else
    /// the first categorical column.
    pub fn stats_column(&self) -> Option<String> {
        let cells = self.cells.as_ref()?;
        let columns = &cells.bundle.cells.categorical;
        let coloured = match &cells.colour_by {
            ColourBy::Category(name) => Some(name.clone()),
            _ => None,
        };
        self.analysis
            .stats_column
            .clone()
            .filter(|c| columns.iter().any(|(n, _)| n == c))
            .or(coloured)
            .or_else(|| columns.first().map(|(n, _)| n.clone()))
    }

    /// The inputs a differential-expression run for the active selection would have.
    pub fn de_key(&self) -> Option<DeKey> {
        Some(DeKey {
            group: self.selections.active()?.cells.clone(),
            reference: self.selections.compared().map(|s| s.cells.clone()),
        })
    }

    /// The DE result for the active selection as it is now (None when it changed since).
    pub fn current_de_result(&self) -> Option<Arc<Vec<NamedDe>>> {
        self.analysis.de.as_ref()?.result_for(self.de_key().as_ref())
    }

    /// The inputs the next neighbourhood enrichment with `settings` would have.
    pub fn nhood_key(&self, settings: &NhoodSettings) -> Option<NhoodKey> {
        let within = if settings.within_selection {
            Some(self.selections.active()?.cells.clone())
        } else {
            None
        };
        Some(NhoodKey {
            column: self.stats_column()?,
            graph: settings.graph,
            n_perms: settings.n_perms,
            seed: settings.seed,
            within,
        })
    }

    /// The enrichment for `settings` and the selection as they are now (None when they changed).
    pub fn current_nhood_result(&self, settings: &NhoodSettings) -> Option<Arc<NhoodEnrichment>> {
        self.analysis
            .nhood
            .as_ref()?
            .result_for(self.nhood_key(settings).as_ref())
    }
}
