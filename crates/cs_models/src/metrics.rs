//! Classification quality as the paper reports it: per-class precision, recall, F1 and support,
//! macro-F1, accuracy, and the confusion matrix.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassificationReport {
    pub per_class: Vec<ClassMetrics>,
    pub macro_f1: f64,
    pub accuracy: f64,
    /// `confusion[true][predicted]` cell counts.
    pub confusion: Vec<Vec<usize>>,
}

impl ClassificationReport {
    /// From (true, predicted) class pairs.
    pub fn from_pairs(class_names: &[String], pairs: impl IntoIterator<Item = (u16, u16)>) -> Self {
        let k = class_names.len();
        let mut confusion = vec![vec![0usize; k]; k];
        for (truth, predicted) in pairs {
            if (truth as usize) < k && (predicted as usize) < k {
                confusion[truth as usize][predicted as usize] += 1;
            }
        }
        let total: usize = confusion.iter().flatten().sum();
        let correct: usize = (0..k).map(|c| confusion[c][c]).sum();
        let per_class: Vec<ClassMetrics> = (0..k)
            .map(|c| {
                let tp = confusion[c][c] as f64;
                let support: usize = confusion[c].iter().sum();
                let predicted: usize = (0..k).map(|t| confusion[t][c]).sum();
                let precision = if predicted > 0 { tp / predicted as f64 } else { 0.0 };
                let recall = if support > 0 { tp / support as f64 } else { 0.0 };
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassMetrics {
                    class: class_names[c].clone(),
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect();
        let present: Vec<&ClassMetrics> = per_class.iter().filter(|m| m.support > 0).collect();
        let macro_f1 = if present.is_empty() {
            0.0
        } else {
            present.iter().map(|m| m.f1).sum::<f64>() / present.len() as f64
        };
        Self {
            per_class,
            macro_f1,
            accuracy: if total > 0 { correct as f64 / total as f64 } else { 0.0 },
            confusion,
        }
    }

    /// A plain-text table like the paper's.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{:<24} {:>9} {:>9} {:>9} {:>8}\n",
            "class", "precision", "recall", "F1", "support"
        );
        for m in &self.per_class {
            out += &format!(
                "{:<24} {:>9.3} {:>9.3} {:>9.3} {:>8}\n",
                m.class, m.precision, m.recall, m.f1, m.support
            );
        }
        out += &format!("macro-F1 {:.3}, accuracy {:.3}\n", self.macro_f1, self.accuracy);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_matches_hand_counts() {
        let names = vec!["a".to_string(), "b".to_string()];
        // truth a: 3 (2 right), truth b: 2 (1 right)
        let r = ClassificationReport::from_pairs(&names, [(0, 0), (0, 0), (0, 1), (1, 1), (1, 0)]);
        assert_eq!(r.confusion, vec![vec![2, 1], vec![1, 1]]);
        assert!((r.per_class[0].precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.per_class[0].recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.per_class[1].f1 - 0.5).abs() < 1e-12);
        assert!((r.accuracy - 0.6).abs() < 1e-12);
        assert!((r.macro_f1 - (2.0 / 3.0 + 0.5) / 2.0).abs() < 1e-12);
    }
}
