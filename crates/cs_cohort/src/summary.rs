//! The across-sample summary: one long table (sample, measure, class, count, value) gathered from
//! each sample's step outputs, and per-class tests between the manifest's groups (Mann–Whitney U,
//! Benjamini–Hochberg across the classes of a measure).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// What a summary row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// A cell type's share of the sample's cells (predicted types, or a bundle column).
    Composition,
    /// A morphology cluster's share of the sample's cells.
    Niche,
    /// Neighbourhood enrichment z-score of a pair of cell types (`A|B`: neighbours of A that are B).
    Nhood,
}

impl Measure {
    pub const ALL: [Measure; 3] = [Measure::Composition, Measure::Niche, Measure::Nhood];

    pub fn name(self) -> &'static str {
        match self {
            Measure::Composition => "composition",
            Measure::Niche => "niche",
            Measure::Nhood => "nhood",
        }
    }

    /// Whether a class a sample lacks counts as 0 (shares) rather than as missing (z-scores).
    pub fn absent_is_zero(self) -> bool {
        !matches!(self, Measure::Nhood)
    }
}

/// One row of the summary table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub sample_id: String,
    pub measure: Measure,
    pub class: String,
    /// Cells (shares) or edges (z-scores).
    pub count: u64,
    /// The share (0..1) or the z-score.
    pub value: f64,
}

/// Shares of each class among `labels` (None = unlabelled, left out) as summary rows.
pub fn share_rows<'a>(
    sample_id: &str,
    measure: Measure,
    labels: impl IntoIterator<Item = Option<&'a str>>,
) -> Vec<SummaryRow> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for label in labels.into_iter().flatten() {
        *counts.entry(label).or_default() += 1;
    }
    let total: u64 = counts.values().sum();
    counts
        .into_iter()
        .map(|(class, count)| SummaryRow {
            sample_id: sample_id.to_owned(),
            measure,
            class: class.to_owned(),
            count,
            value: count as f64 / total.max(1) as f64,
        })
        .collect()
}

/// A class compared between two groups of samples.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupTest {
    pub measure: Measure,
    pub class: String,
    pub group_a: String,
    pub group_b: String,
    pub n_a: usize,
    pub n_b: usize,
    pub median_a: f64,
    pub median_b: f64,
    /// Mann–Whitney U of group A.
    pub u: f64,
    pub p_value: f64,
    /// Benjamini–Hochberg across the classes of this measure and pair of groups.
    pub q_value: f64,
}

/// Tests every class of every measure between every pair of groups (`group_of` gives a sample's
/// group; samples without one are left out). A class a sample lacks is a share of 0 for
/// composition and niches, and missing for z-scores.
pub fn group_tests(rows: &[SummaryRow], group_of: &dyn Fn(&str) -> Option<String>) -> Vec<GroupTest> {
    let mut out = Vec::new();
    for measure in Measure::ALL {
        let of_measure: Vec<&SummaryRow> = rows.iter().filter(|r| r.measure == measure).collect();
        // Samples with this measure, by group.
        let mut samples_by_group: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
        for r in &of_measure {
            if let Some(group) = group_of(&r.sample_id) {
                samples_by_group.entry(group).or_default().insert(&r.sample_id);
            }
        }
        let classes: BTreeSet<&str> = of_measure.iter().map(|r| r.class.as_str()).collect();
        let value: BTreeMap<(&str, &str), f64> = of_measure
            .iter()
            .map(|r| ((r.sample_id.as_str(), r.class.as_str()), r.value))
            .collect();
        let groups: Vec<&String> = samples_by_group.keys().collect();
        for (i, group_a) in groups.iter().enumerate() {
            for group_b in &groups[i + 1..] {
                let values = |group: &str, class: &str| -> Vec<f64> {
                    samples_by_group[group]
                        .iter()
                        .filter_map(|s| match value.get(&(*s, class)) {
                            Some(v) => Some(*v),
                            None if measure.absent_is_zero() => Some(0.0),
                            None => None,
                        })
                        .filter(|v| v.is_finite())
                        .collect()
                };
                let first = out.len();
                for class in &classes {
                    let (a, b) = (values(group_a, class), values(group_b, class));
                    let Some(test) = cs_analysis::mann_whitney_u(&a, &b) else {
                        continue;
                    };
                    out.push(GroupTest {
                        measure,
                        class: (*class).to_owned(),
                        group_a: (*group_a).clone(),
                        group_b: (*group_b).clone(),
                        n_a: a.len(),
                        n_b: b.len(),
                        median_a: median(a),
                        median_b: median(b),
                        u: test.u,
                        p_value: test.p_value,
                        q_value: f64::NAN,
                    });
                }
                let p: Vec<f64> = out[first..].iter().map(|t| t.p_value).collect();
                for (t, q) in out[first..].iter_mut().zip(cs_analysis::benjamini_hochberg(&p)) {
                    t.q_value = q;
                }
            }
        }
    }
    out
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_tests_between_groups() {
        let mut rows = Vec::new();
        // Tumour share 0.6-0.8 in responders, 0-0.3 in the others (none in S4).
        let samples = [
            ("S1", "R", 6, 4),
            ("S2", "R", 7, 3),
            ("S3", "R", 8, 2),
            ("S4", "N", 0, 5),
            ("S5", "N", 2, 8),
            ("S6", "N", 3, 7),
        ];
        for (id, _, tumour, t) in samples {
            let labels = std::iter::repeat_n(Some("tumour"), tumour)
                .chain(std::iter::repeat_n(Some("T cell"), t))
                .chain([None]);
            rows.extend(share_rows(id, Measure::Composition, labels));
        }
        let s4: Vec<&SummaryRow> = rows.iter().filter(|r| r.sample_id == "S4").collect();
        assert_eq!(s4.len(), 1);
        assert_eq!((s4[0].class.as_str(), s4[0].count, s4[0].value), ("T cell", 5, 1.0));
        let group = |id: &str| samples.iter().find(|s| s.0 == id).map(|s| s.1.to_owned());
        let tests = group_tests(&rows, &group);
        assert_eq!(tests.len(), 2);
        let tumour = tests.iter().find(|t| t.class == "tumour").unwrap();
        // Groups in name order: N against R; every N share is below every R share, S4's absent
        // tumour counting as a share of 0.
        assert_eq!((tumour.group_a.as_str(), tumour.group_b.as_str()), ("N", "R"));
        assert_eq!((tumour.n_a, tumour.n_b, tumour.u), (3, 3, 0.0));
        assert!((tumour.p_value - 0.1).abs() < 1e-12, "{tumour:?}");
        let t = tests.iter().find(|t| t.class == "T cell").unwrap();
        assert!((t.median_a - 0.8).abs() < 1e-12, "{t:?}");
        assert!(tests.iter().all(|t| t.q_value >= t.p_value));
    }
}
