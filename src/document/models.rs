//! Model results in the document: the latest cell-type classifier and morphology niches, the run
//! each came from (saved with a session, read back from the cache), and how they are put on the
//! cells (a predicted-type column with its confidence, a morphology-cluster column).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::document::DocumentState;
use crate::layers::cell_layer::ColourBy;
use crate::layers::palettes::UNCERTAIN_CLASS;
use crate::layers::patch_layer::PatchLayer;
use crate::work::model_runs::{
    ClassifierResult, ComparisonResult, NicheResult, RunKey, VirtualResult, column_for_rows,
};

pub use crate::work::model_runs::{CONFIDENCE_COLUMN, PREDICTED_COLUMN};
pub const CLUSTER_COLUMN: &str = "morphology cluster";

/// The models' results on the open cells.
#[derive(Default)]
pub struct ModelResults {
    pub classifier: Option<Arc<ClassifierResult>>,
    pub niches: Option<Arc<NicheResult>>,
    /// The last *Compare models* run on the open cells.
    pub comparison: Option<Arc<ComparisonResult>>,
    /// Predictions less confident than this show as "uncertain" (0: none do).
    pub uncertain_below: f32,
    /// The last virtual-expression run on the open slide and bundle, and its heatmap layer.
    pub virtual_result: Option<Arc<VirtualResult>>,
    pub virtual_layer: Option<PatchLayer>,
    /// The runs whose results are on the slide (saved with a session, read back from the cache).
    pub classifier_key: Option<RunKey>,
    pub niches_key: Option<RunKey>,
    /// Row of each cell in `niches` (u32::MAX: not in the run), built when a result arrives.
    pub niche_row_of_cell: Vec<u32>,
    /// Changes whenever a result arrives, never repeating: what is computed from the results
    /// (the niche heatmap) is kept with the version it was computed from.
    pub version: u64,
}

/// A number larger than every version handed out before.
fn next_version() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl DocumentState {
    /// Whether the open bundle is the one a run was started for.
    pub fn bundle_matches(&self, key: &RunKey) -> bool {
        self.cells
            .as_ref()
            .is_some_and(|c| c.bundle.dir == key.bundle && c.bundle.cells.len() == key.n_cells)
    }

    /// Puts a classifier's predictions on the cells and colours them by it. Returns the note to
    /// show, or the error; None when the bundle changed while the model ran (the result is dropped).
    pub fn apply_classifier(&mut self, key: &RunKey, mut result: ClassifierResult) -> Option<Result<String, String>> {
        if !self.bundle_matches(key) {
            return None;
        }
        // Checked once here, not every frame: a cached run's model folder may have been removed.
        result.model_dir = result.model_dir.filter(|dir| dir.is_dir());
        let cells = self.cells.as_mut()?;
        let n = cells.len();
        let column = match predicted_column(n, &result, self.models.uncertain_below) {
            Ok(column) => column,
            Err(e) => return Some(Err(format!("Predictions could not be applied: {e:#}"))),
        };
        cells.put_categorical_column(PREDICTED_COLUMN, column);
        let mut confidence = vec![f64::NAN; n];
        for (&row, &c) in result.rows.iter().zip(&result.confidence) {
            confidence[row as usize] = f64::from(c);
        }
        cells.put_numeric_column(CONFIDENCE_COLUMN, confidence);
        cells.set_colour_by(ColourBy::Category(PREDICTED_COLUMN.into()));
        let note = format!(
            "Predicted {} cells ({}), macro-F1 {:.2} on held-out cells{}",
            result.rows.len(),
            result.variant.label(),
            result.report.macro_f1,
            if result.from_cache { " (from the cache)" } else { "" }
        );
        self.models.classifier = Some(Arc::new(result));
        self.models.classifier_key = Some(key.clone());
        self.models.version = next_version();
        Some(Ok(note))
    }

    /// Shows predictions less confident than `threshold` as "uncertain" (0: none), rebuilding the
    /// predicted-type column when a classifier's result is on the cells.
    pub fn set_uncertain_below(&mut self, threshold: f32) {
        let threshold = if threshold.is_finite() {
            threshold.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.models.uncertain_below = threshold;
        let (Some(result), Some(cells)) = (self.models.classifier.clone(), self.cells.as_mut()) else {
            return;
        };
        if let Ok(column) = predicted_column(cells.len(), &result, threshold) {
            cells.put_categorical_column(PREDICTED_COLUMN, column);
        }
    }

    /// Puts the morphology clusters on the cells and colours them by it (as for the classifier).
    pub fn apply_niches(&mut self, key: &RunKey, mut result: NicheResult) -> Option<Result<String, String>> {
        if !self.bundle_matches(key) {
            return None;
        }
        // As for the classifier: a cached run's model folder may have been removed.
        result.model_dir = result.model_dir.filter(|dir| dir.is_dir());
        let cells = self.cells.as_mut()?;
        let n = cells.len();
        let names: Vec<String> = (1..=result.k).map(|c| format!("M{c}")).collect();
        let clusters: Vec<u16> = result.clusters.iter().map(|&c| c as u16).collect();
        let column = match column_for_rows(n, &result.rows, &clusters, &names) {
            Ok(column) => column,
            Err(e) => return Some(Err(format!("Clusters could not be applied: {e:#}"))),
        };
        cells.put_categorical_column(CLUSTER_COLUMN, column);
        cells.set_colour_by(ColourBy::Category(CLUSTER_COLUMN.into()));
        let mut row_of_cell = vec![u32::MAX; n];
        for (i, &row) in result.rows.iter().enumerate() {
            row_of_cell[row as usize] = i as u32;
        }
        self.models.niche_row_of_cell = row_of_cell;
        let note = format!(
            "{} cells in {} morphology clusters{}",
            result.rows.len(),
            result.k,
            if result.from_cache { " (from the cache)" } else { "" }
        );
        self.models.niches = Some(Arc::new(result));
        self.models.niches_key = Some(key.clone());
        self.models.version = next_version();
        Some(Ok(note))
    }
}

/// The predicted-type column: each run row's class, or "uncertain" below `uncertain_below`.
fn predicted_column(
    n_cells: usize,
    result: &ClassifierResult,
    uncertain_below: f32,
) -> anyhow::Result<cs_xenium::Categorical> {
    if uncertain_below <= 0.0 {
        return column_for_rows(n_cells, &result.rows, &result.predicted, &result.class_names);
    }
    let uncertain = result.class_names.len() as u16;
    let classes: Vec<u16> = result
        .predicted
        .iter()
        .zip(&result.confidence)
        .map(|(&class, &confidence)| if confidence < uncertain_below { uncertain } else { class })
        .collect();
    let mut names = result.class_names.clone();
    names.push(UNCERTAIN_CLASS.to_owned());
    column_for_rows(n_cells, &result.rows, &classes, &names)
}
