//! `cellsymphony evaluate`: every classifier variant and the classical baselines trained on the
//! same splits over several seeds, scored on the held-out cells as the paper's Tables 1–2 do
//! (macro-F1, accuracy, per-class F1) plus the expected calibration error of their confidences.
//!
//! Splits are stratified at random, or spatial: the labelled cells' bounding box is cut into a
//! 5 x 5 grid of blocks and whole blocks are held out (seeded) until a fifth of the cells are,
//! so a test cell's neighbours are not in training. The features (gene PCA, morphology) are
//! fitted once on all cells without their labels, the way a user's run fits them.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::baselines::{Probabilities, k_nearest_neighbours, logistic_regression, nearest_centroid};
use crate::calibration::expected_calibration_error;
use crate::classifier::{ClassifierInput, FusionClassifierConfig, Variant};
use crate::labels::Labels;
use crate::matrix::Matrix;
use crate::metrics::ClassificationReport;
use crate::rng::SeededRng;
use crate::train::{TrainingSettings, predict, stratified_split, train_classifier_on};
use crate::{ModelError, Progress};

/// Blocks a side of the spatial split's grid.
pub const SPATIAL_BLOCKS: usize = 5;
/// Share of the labelled cells held out.
pub const TEST_FRACTION: f64 = 0.2;
/// Confidence bins of the calibration error.
pub const ECE_BINS: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitKind {
    Random,
    Spatial,
}

impl std::str::FromStr for SplitKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "random" => Ok(SplitKind::Random),
            "spatial" => Ok(SplitKind::Spatial),
            other => Err(format!("--split is random or spatial, not {other:?}")),
        }
    }
}

/// Training and held-out rows of one seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// The split of `seed`: stratified at random, or by held-out tissue blocks (needs `centres_um`).
pub fn make_split(
    labels: &Labels,
    centres_um: Option<&[[f32; 2]]>,
    kind: SplitKind,
    seed: u64,
) -> Result<Split, ModelError> {
    let (train, test) = match kind {
        SplitKind::Random => stratified_split(labels, TEST_FRACTION, seed),
        SplitKind::Spatial => {
            let centres = centres_um.ok_or_else(|| {
                ModelError::Input("a spatial split needs cell positions (an h5ad has none here)".to_owned())
            })?;
            spatial_split(labels, centres, seed)
        }
    };
    if train.is_empty() || test.is_empty() {
        return Err(ModelError::Input(format!(
            "the split leaves {} training and {} held-out cells; label more cells",
            train.len(),
            test.len()
        )));
    }
    Ok(Split { train, test })
}

fn spatial_split(labels: &Labels, centres: &[[f32; 2]], seed: u64) -> (Vec<usize>, Vec<usize>) {
    let labelled: Vec<usize> = (0..labels.per_cell.len())
        .filter(|&c| labels.per_cell[c].is_some())
        .collect();
    spatial_block_split(&labelled, |c| centres[c], seed)
}

/// Holds out whole blocks of a [`SPATIAL_BLOCKS`] x [`SPATIAL_BLOCKS`] grid over the box of
/// `rows`' positions (in a seeded order) until [`TEST_FRACTION`] of the rows are, never every
/// row: (training rows, shuffled; held-out rows). Cells for `evaluate`, patches for virtual
/// expression.
pub(crate) fn spatial_block_split(
    rows: &[usize],
    position: impl Fn(usize) -> [f32; 2],
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let labelled = rows;
    let (mut lo, mut hi) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
    for &c in labelled {
        let p = position(c);
        for a in 0..2 {
            lo[a] = lo[a].min(p[a]);
            hi[a] = hi[a].max(p[a]);
        }
    }
    let block_of = |c: usize| -> usize {
        let p = position(c);
        let cell = |a: usize| {
            let span = (hi[a] - lo[a]).max(f32::MIN_POSITIVE);
            (((p[a] - lo[a]) / span * SPATIAL_BLOCKS as f32) as usize).min(SPATIAL_BLOCKS - 1)
        };
        cell(1) * SPATIAL_BLOCKS + cell(0)
    };
    let mut per_block = vec![Vec::new(); SPATIAL_BLOCKS * SPATIAL_BLOCKS];
    for &c in labelled {
        per_block[block_of(c)].push(c);
    }
    let mut order: Vec<usize> = (0..per_block.len()).filter(|&b| !per_block[b].is_empty()).collect();
    let mut rng = SeededRng::new(seed);
    rng.shuffle(&mut order);
    let wanted = (labelled.len() as f64 * TEST_FRACTION).round() as usize;
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for b in order {
        if test.len() < wanted && per_block[b].len() < labelled.len() {
            test.extend_from_slice(&per_block[b]);
        } else {
            train.extend_from_slice(&per_block[b]);
        }
    }
    rng.shuffle(&mut train);
    (train, test)
}

/// A method's scores over the seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodScores {
    pub method: String,
    /// What it reads: "genes", "genes + morphology", ...
    pub inputs: String,
    pub macro_f1: Vec<f64>,
    pub accuracy: Vec<f64>,
    pub ece: Vec<f64>,
    /// Per seed, per class (in the evaluation's class order).
    pub per_class_f1: Vec<Vec<f64>>,
    pub seconds: f64,
}

impl MethodScores {
    pub fn macro_f1_mean_sd(&self) -> (f64, f64) {
        mean_sd(&self.macro_f1)
    }
}

/// Mean and sample standard deviation (0 for one value).
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let var = if n > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// Everything `evaluate` reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub split: SplitKind,
    pub seeds: Vec<u64>,
    pub n_labelled: usize,
    pub n_test: Vec<usize>,
    pub class_names: Vec<String>,
    pub training: TrainingSettings,
    pub methods: Vec<MethodScores>,
    /// Each seed's held-out rows (cell indices in input order), for reference scripts.
    #[serde(skip)]
    pub test_rows: Vec<Vec<usize>>,
}

impl Evaluation {
    /// The comparison as a Markdown table, then per-class F1 (means over the seeds).
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "{} split, {} seeds, {} labelled cells ({} held out per seed on average)\n\n",
            match self.split {
                SplitKind::Random => "Stratified random",
                SplitKind::Spatial => "Spatial (held-out tissue blocks)",
            },
            self.seeds.len(),
            self.n_labelled,
            self.n_test.iter().sum::<usize>() / self.n_test.len().max(1)
        );
        out += "| method | inputs | macro-F1 (mean ± sd) | accuracy | ECE | time |\n|---|---|---|---|---|---|\n";
        for m in &self.methods {
            let (f1, sd) = m.macro_f1_mean_sd();
            out += &format!(
                "| {} | {} | {:.3} ± {:.3} | {:.3} | {:.3} | {:.1} s |\n",
                m.method,
                m.inputs,
                f1,
                sd,
                mean_sd(&m.accuracy).0,
                mean_sd(&m.ece).0,
                m.seconds
            );
        }
        out += "\nPer-class F1 (mean over seeds)\n\n| method |";
        for c in &self.class_names {
            out += &format!(" {c} |");
        }
        out += "\n|---|";
        out += &"---|".repeat(self.class_names.len());
        out += "\n";
        for m in &self.methods {
            out += &format!("| {} ({}) |", m.method, m.inputs);
            for c in 0..self.class_names.len() {
                let values: Vec<f64> = m.per_class_f1.iter().filter_map(|seed| seed.get(c).copied()).collect();
                out += &format!(" {:.3} |", mean_sd(&values).0);
            }
            out += "\n";
        }
        out
    }

    pub fn method(&self, name: &str) -> Option<&MethodScores> {
        self.methods.iter().find(|m| m.method == name)
    }
}

/// What `evaluate` trains on: features fitted once, the cells' positions, the labels.
pub struct EvaluationInputs<'a> {
    pub genes: &'a Matrix,
    pub morphology: Option<&'a Matrix>,
    pub centres_um: Option<&'a [[f32; 2]]>,
    pub labels: &'a Labels,
}

/// Model size of the fusion classifier variants evaluated.
#[derive(Clone, Copy, Debug)]
pub struct ModelSize {
    pub d_model: usize,
    pub n_layers: usize,
}

/// What `evaluate` runs: the split, its seeds, the variants and how they train.
#[derive(Clone, Debug)]
pub struct EvaluationPlan {
    pub split: SplitKind,
    pub seeds: Vec<u64>,
    pub training: TrainingSettings,
    pub size: ModelSize,
    /// CellSymphony variants to train; those the inputs cannot feed are left out. The
    /// baselines always run (they take seconds).
    pub variants: Vec<Variant>,
}

/// Trains the planned variants the inputs allow and the baselines on the plan's splits.
pub fn evaluate(
    inputs: &EvaluationInputs<'_>,
    plan: &EvaluationPlan,
    device: &Device,
    progress: &Progress,
) -> Result<Evaluation, ModelError> {
    let EvaluationPlan {
        split: kind,
        seeds,
        training,
        size,
        variants,
    } = plan;
    let (kind, size) = (*kind, *size);
    let labels = inputs.labels;
    let k = labels.class_names.len();
    let variants: Vec<Variant> = Variant::ALL
        .into_iter()
        .filter(|v| variants.contains(v))
        .filter(|v| {
            (!v.uses_morphology() || inputs.morphology.is_some()) && (!v.uses_position() || inputs.centres_um.is_some())
        })
        .collect();
    let genes_and_morphology = inputs.morphology.map(|m| concat_columns(inputs.genes, m)).transpose()?;
    let mut methods: Vec<MethodScores> = Vec::new();
    let mut n_test = Vec::new();
    let mut test_rows = Vec::new();
    let steps = (seeds.len() * (variants.len() + 4)).max(1);
    let mut done = 0usize;
    for &seed in seeds.iter() {
        let split = make_split(labels, inputs.centres_um, kind, seed)?;
        n_test.push(split.test.len());
        test_rows.push(split.test.clone());
        let truth: Vec<u16> = split.test.iter().map(|&r| labels.per_cell[r].unwrap_or(0)).collect();
        let targets: Vec<u16> = split.train.iter().map(|&r| labels.per_cell[r].unwrap_or(0)).collect();
        let mut record = |method: &str, inputs_text: &str, predicted: &[(u16, f32)], seconds: f64| {
            let report = ClassificationReport::from_pairs(
                &labels.class_names,
                truth.iter().zip(predicted).map(|(&t, &(p, _))| (t, p)),
            );
            let calibration: Vec<(f32, bool)> = truth.iter().zip(predicted).map(|(&t, &(p, c))| (c, p == t)).collect();
            let ece = expected_calibration_error(&calibration, ECE_BINS);
            let at = match methods
                .iter()
                .position(|m| m.method == method && m.inputs == inputs_text)
            {
                Some(i) => i,
                None => {
                    methods.push(MethodScores {
                        method: method.to_owned(),
                        inputs: inputs_text.to_owned(),
                        macro_f1: Vec::new(),
                        accuracy: Vec::new(),
                        ece: Vec::new(),
                        per_class_f1: Vec::new(),
                        seconds: 0.0,
                    });
                    methods.len() - 1
                }
            };
            let entry = &mut methods[at];
            entry.macro_f1.push(report.macro_f1);
            entry.accuracy.push(report.accuracy);
            entry.ece.push(ece);
            entry.per_class_f1.push(report.per_class.iter().map(|c| c.f1).collect());
            entry.seconds += seconds;
        };
        for &variant in &variants {
            progress.check()?;
            let started = std::time::Instant::now();
            let mut config =
                FusionClassifierConfig::new(variant, inputs.genes.cols, inputs.morphology.map_or(0, |m| m.cols), k);
            config.d_model = size.d_model;
            config.n_layers = size.n_layers;
            config.d_ff = size.d_model * 2;
            let input = ClassifierInput::new(
                inputs.genes,
                variant.uses_morphology().then_some(inputs.morphology).flatten(),
                variant.uses_position().then_some(inputs.centres_um).flatten(),
            );
            let settings = TrainingSettings {
                seed,
                ..training.clone()
            };
            let part = progress.part(
                format!(
                    "Training {}, seed {seed}",
                    variant_name(variant).trim_start_matches("CellSymphony ")
                ),
                done as f32 / steps as f32,
                (done + 1) as f32 / steps as f32,
            );
            let trained = train_classifier_on(
                &config,
                &input,
                labels,
                &split.train,
                &split.test,
                &settings,
                device,
                &part,
            )?;
            let predictions = predict(&trained.model, &input, &split.test, device, 1024, &part)?;
            let predicted: Vec<(u16, f32)> = predictions.iter().map(|p| (p.class, p.confidence)).collect();
            record(
                variant_name(variant),
                variant_inputs(variant),
                &predicted,
                started.elapsed().as_secs_f64(),
            );
            done += 1;
            progress.report("Evaluating", done as f32 / steps as f32);
        }
        let mut baseline = |name: &str, what: &str, run: &dyn Fn() -> Probabilities| -> Result<(), ModelError> {
            progress.check()?;
            let started = std::time::Instant::now();
            let predicted = run().argmax();
            record(name, what, &predicted, started.elapsed().as_secs_f64());
            done += 1;
            progress.report("Evaluating", done as f32 / steps as f32);
            Ok(())
        };
        let g = inputs.genes;
        baseline("logistic regression", "genes", &|| {
            logistic_regression(g, &split.train, &targets, &split.test, k)
        })?;
        if let Some(both) = &genes_and_morphology {
            baseline("logistic regression", "genes + morphology", &|| {
                logistic_regression(both, &split.train, &targets, &split.test, k)
            })?;
        }
        baseline("nearest centroid", "genes", &|| {
            nearest_centroid(g, &split.train, &targets, &split.test, k)
        })?;
        baseline("kNN (k = 15)", "genes", &|| {
            k_nearest_neighbours(g, &split.train, &targets, &split.test, k, seed)
        })?;
    }
    Ok(Evaluation {
        split: kind,
        seeds: seeds.clone(),
        n_labelled: labels.n_labelled(),
        n_test,
        class_names: labels.class_names.clone(),
        training: training.clone(),
        methods,
        test_rows,
    })
}

fn variant_name(variant: Variant) -> &'static str {
    match variant {
        Variant::Unimodal => "CellSymphony unimodal",
        Variant::Spatial => "CellSymphony spatial",
        Variant::DualModality => "CellSymphony dual-modality",
        Variant::MultiInput => "CellSymphony multi-input",
    }
}

fn variant_inputs(variant: Variant) -> &'static str {
    match variant {
        Variant::Unimodal => "genes",
        Variant::Spatial => "genes + x,y",
        Variant::DualModality => "genes + morphology",
        Variant::MultiInput => "genes + morphology + x,y + neighbours",
    }
}

/// `a` and `b` side by side (same rows).
fn concat_columns(a: &Matrix, b: &Matrix) -> Result<Matrix, ModelError> {
    if a.rows != b.rows {
        return Err(ModelError::Shape(format!(
            "{} gene rows, {} morphology rows",
            a.rows, b.rows
        )));
    }
    let mut values = Vec::with_capacity(a.rows * (a.cols + b.cols));
    for r in 0..a.rows {
        values.extend_from_slice(a.row(r));
        values.extend_from_slice(b.row(r));
    }
    Matrix::new(a.rows, a.cols + b.cols, values)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_spatial_split_holds_out_whole_blocks() {
        // A 40 x 40 lattice of cells, 10 µm apart, two classes.
        let centres: Vec<[f32; 2]> = (0..1600)
            .map(|i| [(i % 40) as f32 * 10.0, (i / 40) as f32 * 10.0])
            .collect();
        let names: Vec<Option<&str>> = (0..1600).map(|i| Some(if i % 3 == 0 { "a" } else { "b" })).collect();
        let labels = Labels::from_names(names);
        let split = make_split(&labels, Some(&centres), SplitKind::Spatial, 3).unwrap();
        assert_eq!(split.train.len() + split.test.len(), 1600);
        let share = split.test.len() as f64 / 1600.0;
        assert!((0.15..0.3).contains(&share), "{share}");
        // No held-out cell shares a block with a training cell.
        let block = |c: usize| {
            let b = |v: f32| ((v / 390.0 * 5.0) as usize).min(4);
            (b(centres[c][0]), b(centres[c][1]))
        };
        let test_blocks: std::collections::HashSet<_> = split.test.iter().map(|&c| block(c)).collect();
        assert!(split.train.iter().all(|&c| !test_blocks.contains(&block(c))));
        // Another seed holds out other blocks; the same seed the same ones.
        assert_eq!(
            make_split(&labels, Some(&centres), SplitKind::Spatial, 3).unwrap(),
            split
        );
        assert_ne!(
            make_split(&labels, Some(&centres), SplitKind::Spatial, 4).unwrap(),
            split
        );
        assert!(make_split(&labels, None, SplitKind::Spatial, 3).is_err());
    }

    #[test]
    fn mean_and_sample_sd() {
        let (m, sd) = mean_sd(&[1.0, 2.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12 && (sd - 1.0).abs() < 1e-12);
    }
}
