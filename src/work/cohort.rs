//! The cohort tab's comparison: each runnable sample's cell-type composition (a categorical
//! column every bundle has, or the predicted types of a `cohort run --step predict` folder),
//! and the per-class tests between the manifest's groups. Runs as one background job; a sample
//! that cannot be read is reported and the others go on.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use cs_cohort::summary::share_rows;
use cs_cohort::{GroupTest, Manifest, Measure, SummaryRow, group_tests};

use crate::io::export::csv_field;
use crate::work::jobs::JobContext;

/// What to compare: the column, and where `cohort run` wrote predictions (for `predicted`).
#[derive(Clone, Debug, PartialEq)]
pub struct CompositionRequest {
    pub manifest: Manifest,
    /// A categorical column of every bundle, or `predicted` (with `outputs`).
    pub column: String,
    /// The `cohort run --out` folder whose `<sample>/predict.parquet` hold predicted types.
    pub outputs: Option<PathBuf>,
}

/// Per-sample shares and the group tests.
#[derive(Clone, Debug, PartialEq)]
pub struct CohortComposition {
    pub column: String,
    pub rows: Vec<SummaryRow>,
    /// (sample id, group) for every sample with rows ("" when the manifest has no group column).
    pub groups: Vec<(String, String)>,
    pub tests: Vec<GroupTest>,
    /// Samples that could not be read, with why.
    pub failures: Vec<String>,
}

impl CohortComposition {
    /// The classes in first-seen order.
    pub fn classes(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.rows {
            if !out.contains(&r.class.as_str()) {
                out.push(&r.class);
            }
        }
        out
    }

    /// The share of `class` in `sample` (0 when absent).
    pub fn share(&self, sample: &str, class: &str) -> f64 {
        self.rows
            .iter()
            .find(|r| r.sample_id == sample && r.class == class)
            .map_or(0.0, |r| r.value)
    }

    /// The table as CSV: one row per sample and class (share, cells), then the tests.
    pub fn to_csv(&self) -> String {
        let mut text = String::from("sample_id,group,class,cells,share\n");
        for r in &self.rows {
            let group = self
                .groups
                .iter()
                .find(|(s, _)| *s == r.sample_id)
                .map_or("", |(_, g)| g.as_str());
            text += &format!(
                "{},{},{},{},{}\n",
                csv_field(&r.sample_id),
                csv_field(group),
                csv_field(&r.class),
                r.count,
                r.value
            );
        }
        if !self.tests.is_empty() {
            text += "\nclass,group_a,group_b,n_a,n_b,median_a,median_b,u,p_value,q_value\n";
            for t in &self.tests {
                text += &format!(
                    "{},{},{},{},{},{},{},{},{},{}\n",
                    csv_field(&t.class),
                    csv_field(&t.group_a),
                    csv_field(&t.group_b),
                    t.n_a,
                    t.n_b,
                    t.median_a,
                    t.median_b,
                    t.u,
                    t.p_value,
                    t.q_value
                );
            }
        }
        text
    }
}

/// `predicted`: the types in a `cohort run` folder's predictions.
pub const PREDICTED: &str = "predicted";

/// Reads every runnable sample's labels and compares the groups.
pub fn cohort_composition(request: CompositionRequest, cx: &JobContext) -> anyhow::Result<CohortComposition> {
    let manifest = &request.manifest;
    let runnable: Vec<_> = manifest.runnable().collect();
    let mut rows = Vec::new();
    let mut groups = Vec::new();
    let mut failures = Vec::new();
    for (i, sample) in runnable.iter().enumerate() {
        if cx.is_cancelled() {
            anyhow::bail!("cancelled");
        }
        cx.report(
            &format!("Reading {}", sample.id),
            i as f32 / runnable.len().max(1) as f32,
        );
        let labels = sample_labels(&request, sample);
        match labels {
            Ok(labels) => {
                rows.extend(share_rows(
                    &sample.id,
                    Measure::Composition,
                    labels.iter().map(|l| l.as_deref()),
                ));
                let group = manifest.group_of(sample).unwrap_or_default().to_owned();
                groups.push((sample.id.clone(), group));
            }
            Err(e) => failures.push(format!("{} ({}): {e:#}", sample.id, sample.row)),
        }
    }
    anyhow::ensure!(
        !rows.is_empty(),
        "no sample could be read: {}",
        failures.first().map_or("", String::as_str)
    );
    let tests = if manifest.group_column().is_some() {
        let group_of = |id: &str| {
            groups
                .iter()
                .find(|(s, _)| s == id)
                .map(|(_, g)| g.clone())
                .filter(|g| !g.is_empty())
        };
        group_tests(&rows, &group_of)
    } else {
        Vec::new()
    };
    Ok(CohortComposition {
        column: request.column.clone(),
        rows,
        groups,
        tests,
        failures,
    })
}

/// The `predicted_type` of every row of a `predict` table (None where blank).
pub fn read_predicted_types(path: &Path) -> anyhow::Result<Vec<Option<String>>> {
    let columns = cs_xenium::read_table_columns(path, &["predicted_type"], &[])?;
    let Some(cs_xenium::CellColumn::Text(types)) = columns.into_iter().next() else {
        anyhow::bail!("{}: no predicted_type column", path.display());
    };
    Ok(types.into_iter().map(|t| Some(t).filter(|t| !t.is_empty())).collect())
}

/// One sample's label per cell (None: unlabelled).
fn sample_labels(request: &CompositionRequest, sample: &cs_cohort::Sample) -> anyhow::Result<Vec<Option<String>>> {
    if request.column == PREDICTED {
        let outputs = request
            .outputs
            .as_ref()
            .context("predicted types need the folder `cohort run --step predict` wrote")?;
        return read_predicted_types(&outputs.join(&sample.id).join("predict.parquet"));
    }
    let (bundle, _) = crate::work::open::read_bundle(&sample.xenium)?;
    let column = bundle
        .cells
        .categorical_column(&request.column)
        .with_context(|| format!("{} has no column {:?}", sample.xenium.display(), request.column))?;
    Ok(column
        .codes
        .iter()
        .map(|&code| column.categories.get(code as usize).cloned())
        .collect())
}
