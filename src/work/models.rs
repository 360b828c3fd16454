//! The CellSymphony models on an open bundle, shared by the CLI and the app: model inputs from a
//! Xenium bundle (or an AnnData reference), label sources, the classifier pipeline (features ->
//! train -> predict every cell) and the niche pipeline (contrastive projection -> k-means ->
//! cluster x cell-type enrichment and a 2-D map of the projection).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use cs_models::burn::tensor::Device;
use cs_models::classifier::{ClassifierInput, FusionClassifierConfig, Variant};
use cs_models::contrastive::{ContrastiveConfig, ContrastiveSettings, TrainedContrastive, project, train_contrastive};
use cs_models::kmeans::{KMeansSettings, kmeans};
use cs_models::labels::{
    Labels, MarkerScoring, default_marker_table, parse_marker_table, read_label_csv, score_markers,
};
use cs_models::model_file::{LoadedClassifier, LoadedContrastive, ModelKind};
use cs_models::morphology::{CellShape, SlidePxFromWorld};
use cs_models::pca::GenePca;
use cs_models::pipeline::{CellFeatures, CellInputs, FeaturePipeline, MorphologyChoice, SlideInput, fit_features};
use cs_models::train::{Prediction, TrainedClassifier, TrainingSettings, predict, train_classifier};
use cs_models::{GeneExpression, Matrix, Progress};
use cs_slide::SlideSource;
use cs_xenium::{Categorical, XeniumBundle};
use glam::DAffine2;

/// Model inputs for every cell of a bundle: log1p(CP10k) over the gene-expression features,
/// centroids, and nucleus/cell shapes from the boundaries.
pub fn cell_inputs(bundle: &XeniumBundle) -> anyhow::Result<CellInputs> {
    let counts = bundle.counts.as_ref().with_context(|| {
        format!(
            "{} has no count matrix (cell_feature_matrix.h5 or its MEX folder): the models need gene counts",
            bundle.dir.display()
        )
    })?;
    let genes: Vec<(u32, String)> = counts
        .features_of_type(cs_xenium::GENE_EXPRESSION)
        .into_iter()
        .map(|f| (f, counts.features[f as usize].name.clone()))
        .collect();
    anyhow::ensure!(
        !genes.is_empty(),
        "{}: the count matrix has no gene-expression features",
        bundle.dir.display()
    );
    let expression = GeneExpression::log1p_cp10k(&counts.row_offsets, &counts.feature_index, &counts.counts, &genes)
        .with_context(|| format!("{}: count matrix", bundle.dir.display()))?;
    let cells = &bundle.cells;
    let empty: &[[f32; 2]] = &[];
    let shapes = (0..cells.len())
        .map(|c| {
            let nucleus = bundle.nucleus_boundaries.as_ref().map_or(empty, |p| p.polygon(c));
            let cell = bundle.cell_boundaries.as_ref().map_or(empty, |p| p.polygon(c));
            CellShape::from_polygons(nucleus, cell)
        })
        .collect();
    Ok(CellInputs {
        gene_embedding: None,
        cell_ids: cells.ids.clone(),
        centres_um: cells
            .x_um
            .iter()
            .zip(&cells.y_um)
            .map(|(&x, &y)| [x as f32, y as f32])
            .collect(),
        expression,
        shapes,
    })
}

/// What virtual expression can learn, one row per cell of `bundle`: the genes of `expression`
/// (log1p CP10k, from [`cell_inputs`]) and, for an XOA 4 bundle with Xenium Protein, each protein
/// as log1p of its intensity, named by [`cs_xenium::SparseCounts::protein_target_names`].
/// Without proteins that is `expression` itself.
pub fn virtual_targets<'a>(
    bundle: &XeniumBundle,
    expression: &'a GeneExpression,
) -> anyhow::Result<std::borrow::Cow<'a, GeneExpression>> {
    let Some(counts) = bundle.counts.as_ref() else {
        return Ok(std::borrow::Cow::Borrowed(expression));
    };
    let proteins = counts.protein_target_names();
    if proteins.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(expression));
    }
    let n_cells = expression.n_cells();
    anyhow::ensure!(
        counts.row_offsets.len() == n_cells + 1,
        "{}: the count matrix has {} cells, the expression {n_cells}",
        bundle.dir.display(),
        counts.row_offsets.len().saturating_sub(1)
    );
    let n_genes = expression.n_genes() as u32;
    let mut column_of_feature = vec![u32::MAX; counts.features.len()];
    for (k, (feature, _)) in proteins.iter().enumerate() {
        column_of_feature[*feature as usize] = n_genes + k as u32;
    }
    let mut targets = GeneExpression {
        gene_names: expression.gene_names.clone(),
        row_offsets: Vec::with_capacity(n_cells + 1),
        gene_index: Vec::with_capacity(expression.gene_index.len()),
        values: Vec::with_capacity(expression.values.len()),
    };
    targets.gene_names.extend(proteins.into_iter().map(|(_, name)| name));
    targets.row_offsets.push(0);
    for cell in 0..n_cells {
        let (genes, values) = expression.cell(cell);
        targets.gene_index.extend_from_slice(genes);
        targets.values.extend_from_slice(values);
        let (features, intensities) = counts.cell(cell);
        for (&feature, &intensity) in features.iter().zip(intensities) {
            let column = column_of_feature[feature as usize];
            if column != u32::MAX && intensity.is_finite() && intensity > 0.0 {
                targets.gene_index.push(column);
                targets.values.push(intensity.ln_1p());
            }
        }
        targets.row_offsets.push(targets.values.len() as u64);
    }
    Ok(std::borrow::Cow::Owned(targets))
}

/// The foundation encoder virtual expression reads its tiles through: the Models tab's or the
/// command line's ViT, with the class token as readout (a tile has no nucleus at its centre);
/// None for the built-in encoder (tile statistics only).
pub fn open_tile_encoder(
    morphology: &MorphologyChoice,
    device: &Device,
) -> anyhow::Result<Option<Box<dyn cs_models::morphology::MorphologyEncoder>>> {
    let Some(spec) = morphology.vit() else {
        return Ok(None);
    };
    let mut spec = spec.clone();
    spec.readout = cs_models::vit::TokenReadout::ClassToken;
    Ok(Some(MorphologyChoice::Vit(spec).open(device)?))
}

/// Per-cell gene embeddings computed elsewhere (scGPT and the like): a parquet or CSV table with
/// a `cell_id` column and numeric columns, or a `.npy` matrix with `NAME.cell_ids.txt`, matched
/// to the bundle's cells by id. Every cell must have a row.
pub fn read_gene_embedding(path: &Path, cell_ids: &[String]) -> anyhow::Result<cs_models::pipeline::ImportedEmbedding> {
    let table = cs_xenium::read_cell_features(path)?;
    let width = table.columns.len();
    let row_of: std::collections::HashMap<&str, usize> = table
        .cell_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut values = Vec::with_capacity(cell_ids.len() * width);
    let mut missing = 0usize;
    for id in cell_ids {
        match row_of.get(id.as_str()) {
            Some(&r) => values.extend_from_slice(&table.values[r * width..(r + 1) * width]),
            None => missing += 1,
        }
    }
    anyhow::ensure!(
        missing == 0,
        "{}: {missing} of the bundle's {} cells have no row (matched by cell_id)",
        path.display(),
        cell_ids.len()
    );
    Ok(cs_models::pipeline::ImportedEmbedding {
        source: crate::util::display_name(path),
        columns: table.columns,
        values: Matrix::new(cell_ids.len(), width, values)?,
    })
}

/// Writes a classifier's predictions as the `predict` table (`cell_id`, `predicted_type`,
/// `confidence`; parquet, atomically) that `cohort summarise`, the Cohort tab and a sample's
/// opening read. Returns each cell's class name.
pub fn write_predictions(
    path: &Path,
    cell_ids: &[String],
    class_names: &[String],
    predictions: &[Prediction],
) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = predictions
        .iter()
        .map(|p| class_names.get(p.class as usize).cloned().unwrap_or_default())
        .collect();
    let confidence = predictions.iter().map(|p| p.confidence).collect();
    cs_xenium::write_cell_parquet(
        path,
        cell_ids,
        &[
            ("predicted_type".into(), cs_xenium::CellColumn::Text(names.clone())),
            ("confidence".into(), cs_xenium::CellColumn::Number(confidence)),
        ],
    )?;
    Ok(names)
}

/// A sample's cells as model inputs and its slide placed in world µm: what the CLI's commands
/// and the Cohort tab's *Apply the model* read.
pub struct OpenedInputs {
    pub bundle: XeniumBundle,
    pub inputs: CellInputs,
    pub slide: Option<(Arc<dyn SlideSource>, DAffine2)>,
}

impl OpenedInputs {
    pub fn slide_input(&self) -> Option<SlideInput<'_>> {
        self.slide.as_ref().map(|(slide, world_from_slide)| SlideInput {
            slide: slide.as_ref(),
            slide_px_from_world: slide_px_from_world(*world_from_slide),
        })
    }
}

/// Reads a bundle (with imported gene embeddings, when given) and opens its slide, placed by
/// the alignment CSV (H&E px -> Xenium px, times the bundle's pixel size) or else by the slide's
/// own µm per pixel.
pub fn open_sample_inputs(
    xenium: &Path,
    slide: Option<&Path>,
    alignment: Option<&Path>,
    gene_embeddings: Option<&Path>,
) -> anyhow::Result<OpenedInputs> {
    let (bundle, _) = crate::work::open::read_bundle(xenium)?;
    let mut inputs = cell_inputs(&bundle)?;
    if let Some(path) = gene_embeddings {
        inputs.gene_embedding = Some(read_gene_embedding(path, &inputs.cell_ids)?);
    }
    let slide = match slide {
        Some(path) => {
            let source: Arc<dyn SlideSource> = cs_slide::open_slide(path)?;
            let world_from_slide = match alignment {
                Some(csv) => DAffine2::from_cols_array(
                    &cs_xenium::read_alignment_csv(csv)?
                        .scaled(bundle.pixel_size_um())
                        .to_cols_array(),
                ),
                None => {
                    let meta = source.metadata();
                    let x = meta
                        .mpp_x
                        .with_context(|| format!("{} records no µm per pixel: give an alignment", path.display()))?;
                    DAffine2::from_scale(glam::DVec2::new(x, meta.mpp_y.unwrap_or(x)))
                }
            };
            Some((source, world_from_slide))
        }
        None => None,
    };
    Ok(OpenedInputs { bundle, inputs, slide })
}

/// The slide placement the patch extractor wants (level-0 px from world µm).
pub fn slide_px_from_world(world_from_slide: DAffine2) -> SlidePxFromWorld {
    let m = world_from_slide.inverse();
    SlidePxFromWorld([
        m.matrix2.x_axis.x,
        m.matrix2.y_axis.x,
        m.translation.x,
        m.matrix2.x_axis.y,
        m.matrix2.y_axis.y,
        m.translation.y,
    ])
}

/// Where training labels come from.
#[derive(Clone, Debug, PartialEq)]
pub enum LabelSource {
    /// Marker-gene scoring with the shipped table, or a table file.
    Markers(Option<PathBuf>),
    /// A categorical column of the bundle (a Xenium clustering, an imported column).
    Column(String),
    /// A `cell_id,label` CSV.
    Csv(PathBuf),
}

impl LabelSource {
    /// `markers`, `markers:TABLE.tsv`, a `.csv` path, or a column name.
    pub fn parse(text: &str) -> Self {
        if text == "markers" {
            LabelSource::Markers(None)
        } else if let Some(table) = text.strip_prefix("markers:") {
            LabelSource::Markers(Some(PathBuf::from(table)))
        } else if text.to_ascii_lowercase().ends_with(".csv") {
            LabelSource::Csv(PathBuf::from(text))
        } else {
            LabelSource::Column(text.to_string())
        }
    }

    pub fn describe(&self) -> String {
        match self {
            LabelSource::Markers(None) => "marker genes (assets/markers/cell_types.tsv)".into(),
            LabelSource::Markers(Some(p)) => format!("marker genes ({})", p.display()),
            LabelSource::Column(c) => format!("column {c:?}"),
            LabelSource::Csv(p) => format!("labels from {}", p.display()),
        }
    }

    /// Labels for every cell of the bundle.
    pub fn resolve(&self, bundle: &XeniumBundle, expression: &GeneExpression) -> anyhow::Result<Labels> {
        match self {
            LabelSource::Markers(table) => {
                let markers = match table {
                    Some(path) => {
                        let text =
                            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
                        parse_marker_table(&text, path)?
                    }
                    None => default_marker_table(),
                };
                Ok(score_markers(expression, &markers, MarkerScoring::default())?.labels)
            }
            LabelSource::Column(name) => {
                let column = categorical_column(bundle, name)?;
                Ok(labels_from_codes(&column.categories, &column.codes))
            }
            LabelSource::Csv(path) => Ok(read_label_csv(path, &bundle.cells.ids)?),
        }
    }
}

/// Labels from a categorical column's codes (codes past the categories are unlabelled).
pub fn labels_from_codes(categories: &[String], codes: &[u32]) -> Labels {
    Labels {
        class_names: categories.to_vec(),
        per_cell: codes
            .iter()
            .map(|&c| ((c as usize) < categories.len() && categories.len() <= u16::MAX as usize).then_some(c as u16))
            .collect(),
    }
}

/// Gene expression and labels of an AnnData reference (`--h5ad`).
pub fn h5ad_inputs(
    path: &Path,
    raw: bool,
    label_column: &str,
) -> anyhow::Result<(Vec<String>, GeneExpression, Labels)> {
    let matrix = if raw {
        cs_xenium::AnnDataMatrix::Raw
    } else {
        cs_xenium::AnnDataMatrix::X
    };
    let adata = cs_xenium::read_h5ad(path, matrix, Some(label_column))?;
    let labels = Labels::from_names(adata.labels.iter().flatten().map(|l| l.as_deref()));
    let expression = GeneExpression {
        gene_names: adata.gene_names,
        row_offsets: adata.row_offsets,
        gene_index: adata.gene_index,
        values: adata.values,
    };
    Ok((adata.cell_names, expression, labels))
}

/// Settings of a classifier run.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassifierRun {
    pub variant: Variant,
    pub training: TrainingSettings,
    pub d_model: usize,
    pub n_layers: usize,
    /// The morphology encoder, for the variants that use morphology.
    pub morphology: MorphologyChoice,
}

impl Default for ClassifierRun {
    fn default() -> Self {
        Self {
            variant: Variant::DualModality,
            training: TrainingSettings::default(),
            d_model: 64,
            n_layers: 6,
            morphology: MorphologyChoice::Builtin,
        }
    }
}

pub struct ClassifierOutcome {
    pub trained: TrainedClassifier,
    pub pipeline: FeaturePipeline,
    /// One per input cell.
    pub predictions: Vec<Prediction>,
    pub n_labelled: usize,
}

/// Features, training on the labelled cells, and predictions for every cell of `inputs`.
pub fn run_classifier(
    inputs: &CellInputs,
    slide: Option<SlideInput<'_>>,
    labels: &Labels,
    run: &ClassifierRun,
    device: &Device,
    progress: &Progress,
) -> anyhow::Result<ClassifierOutcome> {
    let (pipeline, features) = fit_features(
        inputs,
        slide,
        run.variant.uses_morphology().then_some(&run.morphology),
        device,
        run.training.seed,
        progress,
    )?;
    classify_features(&features, &inputs.centres_um, pipeline, labels, run, device, progress)
}

/// As [`run_classifier`], from features already made (the h5ad path).
pub fn classify_features(
    features: &CellFeatures,
    centres_um: &[[f32; 2]],
    pipeline: FeaturePipeline,
    labels: &Labels,
    run: &ClassifierRun,
    device: &Device,
    progress: &Progress,
) -> anyhow::Result<ClassifierOutcome> {
    let mut config = FusionClassifierConfig::new(
        run.variant,
        features.genes.cols,
        features.morphology.as_ref().map_or(0, |m| m.cols),
        labels.class_names.len(),
    );
    config.d_model = run.d_model;
    config.n_layers = run.n_layers;
    config.d_ff = run.d_model * 2;
    let input = ClassifierInput::new(
        &features.genes,
        features.morphology.as_ref(),
        run.variant.uses_position().then_some(centres_um),
    );
    let trained = train_classifier(&config, &input, labels, &run.training, device, progress)?;
    let rows: Vec<usize> = (0..features.genes.rows).collect();
    let predictions = predict(&trained.model, &input, &rows, device, 1024, progress)?;
    Ok(ClassifierOutcome {
        trained,
        pipeline,
        predictions,
        n_labelled: labels.n_labelled(),
    })
}

/// Predictions of a saved classifier for every cell of `inputs`, through the model's own feature
/// pipeline (`cellsymphony predict` and the app's *Apply a saved model…*).
pub fn predict_with_saved(
    loaded: &LoadedClassifier,
    inputs: &CellInputs,
    slide: Option<SlideInput<'_>>,
    device: &Device,
    progress: &Progress,
) -> anyhow::Result<Vec<Prediction>> {
    let features = loaded.manifest.features.apply(inputs, slide, device, progress)?;
    let input = ClassifierInput::new(
        &features.genes,
        features.morphology.as_ref(),
        loaded
            .config
            .variant
            .uses_position()
            .then_some(inputs.centres_um.as_slice()),
    );
    let rows: Vec<usize> = (0..inputs.n_cells()).collect();
    Ok(predict(&loaded.model, &input, &rows, device, 1024, progress)?)
}

/// Settings of a niche (morphology cluster) run.
#[derive(Clone, Debug, PartialEq)]
pub struct NicheRun {
    pub k: usize,
    pub contrastive: ContrastiveSettings,
    pub morphology: MorphologyChoice,
}

impl Default for NicheRun {
    fn default() -> Self {
        Self {
            k: 8,
            contrastive: ContrastiveSettings::default(),
            morphology: MorphologyChoice::Builtin,
        }
    }
}

pub struct NicheOutcome {
    pub trained: TrainedContrastive,
    pub pipeline: FeaturePipeline,
    /// Morphology cluster per input cell.
    pub clusters: Vec<u32>,
    pub k: usize,
    /// The k-means centroids (k x 128), saved with the model to assign other samples' cells.
    pub centroids: Matrix,
    /// Morphology projection of every cell (128-d, unit length).
    pub projection: Matrix,
    /// The projection's first two principal axes, per cell (for the embedding scatter).
    pub map_2d: Vec<[f32; 2]>,
    pub kmeans_inertia: f64,
}

/// Contrastive alignment of genes and morphology, the morphology projection of every cell,
/// k-means on it (on the device), and a 2-D map.
pub fn run_niches(
    inputs: &CellInputs,
    slide: Option<SlideInput<'_>>,
    run: &NicheRun,
    device: &Device,
    progress: &Progress,
) -> anyhow::Result<NicheOutcome> {
    let (pipeline, features) = fit_features(
        inputs,
        slide,
        Some(&run.morphology),
        device,
        run.contrastive.seed,
        progress,
    )?;
    let morphology = features
        .morphology
        .as_ref()
        .context("morphology features are missing")?;
    let config = ContrastiveConfig::new(features.genes.cols, morphology.cols);
    let trained = train_contrastive(&config, &features.genes, morphology, &run.contrastive, device, progress)?;
    let projection = project(&trained.model.morphology, morphology, device, progress)?;
    let settings = KMeansSettings {
        k: run.k,
        seed: run.contrastive.seed,
        ..Default::default()
    };
    let clustered = kmeans(&projection, &settings, device, progress)?;
    let map_2d = map_2d(&projection)?;
    Ok(NicheOutcome {
        trained,
        pipeline,
        clusters: clustered.assignments,
        k: run.k,
        centroids: clustered.centroids,
        projection,
        map_2d,
        kmeans_inertia: clustered.inertia,
    })
}

/// The niche column of the cluster tables (`cluster`, `cohort run --step cluster`, the app's
/// runs): `M1` to `Mk` per cell.
pub const NICHE_TABLE_COLUMN: &str = "morphology_cluster";

/// Each cell's niche (0-based) as the tables' [`NICHE_TABLE_COLUMN`].
pub fn niche_column(clusters: &[u32]) -> (String, cs_xenium::CellColumn) {
    let names = clusters.iter().map(|c| format!("M{}", c + 1)).collect();
    (NICHE_TABLE_COLUMN.to_owned(), cs_xenium::CellColumn::Text(names))
}

/// Saves a niche run's contrastive model with its k-means centroids (a niche model folder that
/// [`assign_niches`] applies to other samples).
pub fn save_niche_model(dir: &Path, outcome: &NicheOutcome) -> anyhow::Result<()> {
    let t = &outcome.trained;
    cs_models::model_file::save_contrastive(
        dir,
        &t.model,
        &t.config,
        &outcome.pipeline,
        cs_models::model_file::ContrastiveSummary {
            epoch_losses: t.epoch_losses.clone(),
            retrieval_top1: t.retrieval_top1,
            retrieval_chance: t.retrieval_chance,
            retrieval_pool: t.retrieval_pool,
            niche_centroids: (0..outcome.centroids.rows)
                .map(|r| outcome.centroids.row(r).to_vec())
                .collect(),
        },
    )?;
    Ok(())
}

/// Assigns cells to the niches of a saved niche model (`cluster --model-out`): the model's own
/// feature pipeline, its morphology projection, then the nearest of its k-means centroids. Every
/// sample's cells land in the same niches, so their frequencies compare across a cohort.
pub fn assign_niches(
    loaded: &LoadedContrastive,
    model_dir: &Path,
    inputs: &CellInputs,
    slide: Option<SlideInput<'_>>,
    device: &Device,
    progress: &Progress,
) -> anyhow::Result<Vec<u32>> {
    let ModelKind::Contrastive { training, .. } = &loaded.manifest.kind else {
        anyhow::bail!("{}: not a niche (contrastive) model", model_dir.display());
    };
    let centroids = &training.niche_centroids;
    anyhow::ensure!(
        !centroids.is_empty(),
        "{}: saved without its niche centroids (by an older version): run `cellsymphony cluster --model-out` again",
        model_dir.display()
    );
    let features = loaded.manifest.features.apply(inputs, slide, device, progress)?;
    let morphology = features
        .morphology
        .as_ref()
        .with_context(|| format!("{}: the model reads no morphology", model_dir.display()))?;
    let projection = project(&loaded.model.morphology, morphology, device, progress)?;
    anyhow::ensure!(
        centroids.iter().all(|c| c.len() == projection.cols),
        "{}: centroids of width {} for a {}-d projection",
        model_dir.display(),
        centroids.first().map_or(0, Vec::len),
        projection.cols
    );
    Ok((0..projection.rows)
        .map(|r| nearest_centroid(projection.row(r), centroids))
        .collect())
}

/// The index of the centroid nearest to `point` (squared Euclidean, as k-means assigns).
fn nearest_centroid(point: &[f32], centroids: &[Vec<f32>]) -> u32 {
    let distance = |c: &[f32]| -> f32 { point.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum() };
    let mut best = (0u32, f32::INFINITY);
    for (i, centroid) in centroids.iter().enumerate() {
        let d = distance(centroid);
        if d < best.1 {
            best = (i as u32, d);
        }
    }
    best.0
}

/// The first two principal axes of a projection, per row.
pub fn map_2d(projection: &Matrix) -> anyhow::Result<Vec<[f32; 2]>> {
    let names = (0..projection.cols).map(|i| format!("p{i}")).collect();
    let as_expression = GeneExpression::from_dense(projection, names)?;
    let pca = GenePca::fit(&as_expression, 2, 0)?;
    let scores = pca.transform(&as_expression)?;
    Ok((0..scores.rows)
        .map(|r| [scores.row(r)[0], scores.row(r).get(1).copied().unwrap_or(0.0)])
        .collect())
}

/// Cluster x class counts and log2 enrichment ((n_ct / n_c) / (n_t / n)) for the paper's
/// Figure 2 heatmap.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ClusterEnrichment {
    pub class_names: Vec<String>,
    pub counts: Vec<Vec<usize>>,
    pub log2_enrichment: Vec<Vec<f64>>,
}

pub fn cluster_enrichment(clusters: &[u32], k: usize, labels: &Labels) -> ClusterEnrichment {
    let n_classes = labels.class_names.len();
    let mut counts = vec![vec![0usize; n_classes]; k];
    for (&cluster, label) in clusters.iter().zip(&labels.per_cell) {
        if let (Some(row), Some(class)) = (counts.get_mut(cluster as usize), label) {
            row[*class as usize] += 1;
        }
    }
    let total: usize = counts.iter().flatten().sum();
    let class_totals: Vec<usize> = (0..n_classes).map(|t| counts.iter().map(|r| r[t]).sum()).collect();
    let log2_enrichment = counts
        .iter()
        .map(|row| {
            let cluster_total: usize = row.iter().sum();
            row.iter()
                .zip(&class_totals)
                .map(|(&n, &class_total)| {
                    // A pseudo-count of 0.5 keeps empty cells finite.
                    let observed = (n as f64 + 0.5) / (cluster_total as f64 + 0.5 * n_classes as f64);
                    let expected = (class_total as f64 + 0.5) / (total as f64 + 0.5 * n_classes as f64);
                    (observed / expected).log2()
                })
                .collect()
        })
        .collect();
    ClusterEnrichment {
        class_names: labels.class_names.clone(),
        counts,
        log2_enrichment,
    }
}

/// A categorical column of the bundle's cells, or an error naming the bundle and the columns it has.
pub(crate) fn categorical_column<'a>(bundle: &'a XeniumBundle, name: &str) -> anyhow::Result<&'a Categorical> {
    bundle.cells.categorical_column(name).with_context(|| {
        format!(
            "{} has no categorical column {name:?} (it has: {})",
            bundle.dir.display(),
            bundle
                .cells
                .categorical
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// A virtual-expression run as a per-patch table (`cell_id` = `patch_COLUMN_ROW`): centre, tissue
/// share, measured cells, then `virtual_GENE` and `measured_GENE` for each gene (NaN where none).
pub fn patch_table(
    result: &cs_models::virtual_expression::VirtualExpression,
) -> (Vec<String>, Vec<(String, cs_xenium::CellColumn)>) {
    use cs_xenium::CellColumn;
    let grid = result.grid;
    let n = grid.len();
    let ids = (0..n)
        .map(|i| {
            let (c, r) = grid.cell(i);
            format!("patch_{c}_{r}")
        })
        .collect();
    let mut columns = vec![
        (
            "x_um".to_owned(),
            CellColumn::Number((0..n).map(|i| grid.centre_um(i)[0]).collect()),
        ),
        (
            "y_um".to_owned(),
            CellColumn::Number((0..n).map(|i| grid.centre_um(i)[1]).collect()),
        ),
        (
            "tissue_fraction".to_owned(),
            CellColumn::Number(result.tissue_fraction.clone()),
        ),
        (
            "measured_cells".to_owned(),
            CellColumn::Number(result.measured.cells.iter().map(|&c| c as f32).collect()),
        ),
    ];
    for (g, gene) in result.genes.iter().enumerate() {
        let of = |m: &cs_models::matrix::Matrix| (0..n).map(|i| m.row(i)[g]).collect::<Vec<f32>>();
        columns.push((format!("virtual_{gene}"), CellColumn::Number(of(&result.predicted))));
        columns.push((
            format!("measured_{gene}"),
            CellColumn::Number(of(&result.measured.values)),
        ));
    }
    (ids, columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_sources_parse() {
        assert_eq!(LabelSource::parse("markers"), LabelSource::Markers(None));
        assert_eq!(
            LabelSource::parse("markers:m.tsv"),
            LabelSource::Markers(Some("m.tsv".into()))
        );
        assert_eq!(LabelSource::parse("labels.CSV"), LabelSource::Csv("labels.CSV".into()));
        assert_eq!(
            LabelSource::parse("graphclust"),
            LabelSource::Column("graphclust".into())
        );
    }

    #[test]
    fn enrichment_is_positive_where_a_class_concentrates() {
        let labels = Labels::from_names([Some("a"), Some("a"), Some("b"), Some("b"), Some("a"), Some("b")]);
        let clusters = [0, 0, 1, 1, 0, 1];
        let e = cluster_enrichment(&clusters, 2, &labels);
        assert_eq!(e.counts, vec![vec![3, 0], vec![0, 3]]);
        assert!(e.log2_enrichment[0][0] > 0.5 && e.log2_enrichment[0][1] < -0.5);
    }

    #[test]
    fn slide_placement_inverts() {
        let world_from_slide =
            DAffine2::from_scale_angle_translation(glam::DVec2::splat(0.25), 0.3, glam::DVec2::new(5.0, -2.0));
        let m = slide_px_from_world(world_from_slide).0;
        let world = world_from_slide.transform_point2(glam::DVec2::new(100.0, 40.0));
        let back = [
            m[0] * world.x + m[1] * world.y + m[2],
            m[3] * world.x + m[4] * world.y + m[5],
        ];
        assert!((back[0] - 100.0).abs() < 1e-9 && (back[1] - 40.0).abs() < 1e-9);
    }
}
