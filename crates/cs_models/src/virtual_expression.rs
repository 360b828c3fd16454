//! Virtual expression from the H&E alone, after HEX ("AI-enabled virtual spatial proteomics from
//! histopathology", Nature Medicine 2026): the slide is cut into square patches (50 µm by
//! default) over its whole extent, each patch is described by the tile encoder (stain
//! statistics, texture and nuclear density; no weights), and a small regression head in burn
//! learns the measured expression of chosen genes (or XOA 4 proteins: any column of the
//! expression it is given), the mean over the cells whose centres fall in the patch, from the
//! patches where cells were measured. A foundation encoder (a ViT such as UNI2-h, from weights
//! the user has) can read each patch too; its embedding's leading principal components then join
//! the tile statistics. Held-out tissue blocks
//! (a spatial split, so neighbouring patches do not leak) give each gene's Pearson and Spearman r;
//! the same run on targets shuffled between training patches is the control. A head trained on
//! every measured patch then predicts every tissue patch of the slide, inside the Xenium region
//! or not.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::classifier::matrix_rows_tensor;
use crate::evaluate::spatial_block_split;
use crate::matrix::{ColumnScaling, GeneExpression, Matrix};
use crate::morphology::{
    AtPatchSide, CellShape, MorphologyEncoder, PatchGeometry, SlidePxFromWorld, encode_cells, stain_unmixing,
    unmix_stains,
};
use crate::pca::GenePca;
use crate::pipeline::SlideInput;
use crate::rng::SeededRng;
use crate::{ModelError, Progress};

/// HEX's patch side.
pub const DEFAULT_PATCH_UM: f32 = 50.0;
/// Patches with fewer measured cells than this are no training target.
pub const MIN_CELLS_PER_PATCH: u32 = 3;
/// Patches with less tissue than this (share of non-white pixels) are background: no prediction.
pub const MIN_TISSUE_FRACTION: f32 = 0.1;
/// Pixels a side of the tile the encoder reads (64 over 50 µm: 0.78 µm/px).
const TILE_PX: u32 = 64;
const HIDDEN: usize = 64;
/// Principal components kept of a foundation encoder's tile embedding (a few hundred training
/// patches cannot fit 1,536 raw dimensions).
pub const FOUNDATION_COMPONENTS: usize = 32;

const TILE_FEATURES: [&str; 18] = [
    "h_mean",
    "h_sd",
    "e_mean",
    "e_sd",
    "luminance",
    "tissue_fraction",
    "dark_fraction",
    "h_gradient",
    "h_q10",
    "h_q50",
    "h_q90",
    "e_q10",
    "e_q50",
    "e_q90",
    "h_e_correlation",
    "nuclear_peaks",
    "quadrant_h_sd",
    "quadrant_e_sd",
];
/// Column of `tissue_fraction` in the tile features.
const TISSUE_COLUMN: usize = 5;

/// The tile encoder: haematoxylin and eosin (colour deconvolution) statistics of a whole patch,
/// its texture, and how many nuclei it holds (local haematoxylin maxima).
#[derive(Clone, Copy, Debug)]
pub struct TileStatsEncoder {
    geometry: PatchGeometry,
}

impl TileStatsEncoder {
    pub fn new(patch_um: f32) -> Self {
        Self {
            geometry: PatchGeometry {
                size_px: TILE_PX,
                um_per_px: patch_um / TILE_PX as f32,
            },
        }
    }
}

impl MorphologyEncoder for TileStatsEncoder {
    fn name(&self) -> &str {
        "tile-stats"
    }

    fn dim(&self) -> usize {
        TILE_FEATURES.len()
    }

    fn patch(&self) -> PatchGeometry {
        self.geometry
    }

    fn feature_names(&self) -> Vec<String> {
        TILE_FEATURES.iter().map(|s| s.to_string()).collect()
    }

    fn encode(&self, patches: &[u8], shapes: &[CellShape]) -> Result<Vec<f32>, ModelError> {
        let size = self.geometry.size_px as usize;
        let patch_bytes = size * size * 3;
        if patches.len() != patch_bytes * shapes.len() {
            return Err(ModelError::Shape(format!(
                "{} patch bytes for {} tiles of {patch_bytes} bytes (the tile encoder needs the slide)",
                patches.len(),
                shapes.len()
            )));
        }
        let unmix = stain_unmixing();
        let mut out = Vec::with_capacity(shapes.len() * self.dim());
        for patch in patches.chunks_exact(patch_bytes) {
            out.extend_from_slice(&tile_statistics(patch, size, &unmix));
        }
        Ok(out)
    }
}

fn quantiles(values: &mut [f32], at: [f32; 3]) -> [f32; 3] {
    values.sort_by(f32::total_cmp);
    let n = values.len();
    at.map(|q| {
        if n == 0 {
            0.0
        } else {
            values[((q * (n - 1) as f32).round() as usize).min(n - 1)]
        }
    })
}

/// The [`TILE_FEATURES`] of one RGB tile.
fn tile_statistics(rgb: &[u8], size: usize, unmix: &[[f32; 3]; 3]) -> [f32; 18] {
    let n = size * size;
    let (mut h, mut e, mut lum) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
    unmix_stains(rgb, unmix, &mut h, &mut e, &mut lum);
    let mean = |v: &[f32]| v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len().max(1) as f64;
    let sd =
        |v: &[f32], m: f64| (v.iter().map(|&x| (f64::from(x) - m).powi(2)).sum::<f64>() / v.len().max(1) as f64).sqrt();
    let (h_mean, e_mean) = (mean(&h), mean(&e));
    let (h_sd, e_sd) = (sd(&h, h_mean), sd(&e, e_mean));
    let covariance = h
        .iter()
        .zip(&e)
        .map(|(&a, &b)| (f64::from(a) - h_mean) * (f64::from(b) - e_mean))
        .sum::<f64>()
        / n.max(1) as f64;
    let correlation = if h_sd > 1e-9 && e_sd > 1e-9 {
        covariance / (h_sd * e_sd)
    } else {
        0.0
    };
    let tissue = lum.iter().filter(|&&l| l < 0.88).count() as f64 / n.max(1) as f64;
    let dark = h.iter().filter(|&&v| v > 0.5).count() as f64 / n.max(1) as f64;
    let (mut gradient, mut peaks) = (0f64, 0usize);
    for y in 0..size.saturating_sub(1) {
        for x in 0..size.saturating_sub(1) {
            let i = y * size + x;
            let (gx, gy) = (h[i + 1] - h[i], h[i + size] - h[i]);
            gradient += f64::from((gx * gx + gy * gy).sqrt());
            if x > 0 && y > 0 && h[i] > 0.4 {
                let neighbours = [i - 1, i + 1, i - size, i + size, i - size - 1, i + size + 1];
                if neighbours.iter().all(|&j| h[i] >= h[j]) {
                    peaks += 1;
                }
            }
        }
    }
    gradient /= ((size - 1) * (size - 1)).max(1) as f64;
    let half = size / 2;
    let quadrant = |v: &[f32], qx: usize, qy: usize| {
        let mut sum = 0f64;
        for y in qy * half..(qy + 1) * half {
            for x in qx * half..(qx + 1) * half {
                sum += f64::from(v[y * size + x]);
            }
        }
        sum / (half * half).max(1) as f64
    };
    let spread = |v: &[f32]| {
        let q = [
            quadrant(v, 0, 0),
            quadrant(v, 1, 0),
            quadrant(v, 0, 1),
            quadrant(v, 1, 1),
        ];
        let m = q.iter().sum::<f64>() / 4.0;
        (q.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 4.0).sqrt()
    };
    let (quadrant_h, quadrant_e) = (spread(&h), spread(&e));
    let hq = quantiles(&mut h, [0.1, 0.5, 0.9]);
    let eq = quantiles(&mut e, [0.1, 0.5, 0.9]);
    [
        h_mean as f32,
        h_sd as f32,
        e_mean as f32,
        e_sd as f32,
        mean(&lum) as f32,
        tissue as f32,
        dark as f32,
        gradient as f32,
        hq[0],
        hq[1],
        hq[2],
        eq[0],
        eq[1],
        eq[2],
        correlation as f32,
        // Per 100 µm² at this tile's resolution (a count, scaled by the tile's area in pixels).
        (peaks as f64 * 1000.0 / n.max(1) as f64) as f32,
        quadrant_h as f32,
        quadrant_e as f32,
    ]
}

/// Square patches over a box of world µm, row after row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PatchGrid {
    pub patch_um: f32,
    pub origin_um: [f32; 2],
    pub columns: usize,
    pub rows: usize,
}

impl PatchGrid {
    /// The patches covering `min_um`..`max_um`.
    pub fn covering(min_um: [f32; 2], max_um: [f32; 2], patch_um: f32) -> Result<Self, ModelError> {
        if !(patch_um.is_finite() && patch_um >= 5.0) {
            return Err(ModelError::Input(format!("patches of {patch_um} µm: use 5 µm or more")));
        }
        if !(min_um.iter().chain(&max_um).all(|v| v.is_finite()) && max_um[0] > min_um[0] && max_um[1] > min_um[1]) {
            return Err(ModelError::Input(format!(
                "the slide's extent {min_um:?}..{max_um:?} µm is empty or not finite"
            )));
        }
        let columns = ((max_um[0] - min_um[0]) / patch_um).ceil() as usize;
        let rows = ((max_um[1] - min_um[1]) / patch_um).ceil() as usize;
        if columns * rows > 4_000_000 {
            return Err(ModelError::Input(format!(
                "{columns} x {rows} patches of {patch_um} µm: too many, use larger patches"
            )));
        }
        Ok(Self {
            patch_um,
            origin_um: min_um,
            columns,
            rows,
        })
    }

    pub fn len(&self) -> usize {
        self.columns * self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Column and row of patch `index`.
    pub fn cell(&self, index: usize) -> (usize, usize) {
        (index % self.columns.max(1), index / self.columns.max(1))
    }

    pub fn centre_um(&self, index: usize) -> [f32; 2] {
        let (c, r) = self.cell(index);
        [
            self.origin_um[0] + (c as f32 + 0.5) * self.patch_um,
            self.origin_um[1] + (r as f32 + 0.5) * self.patch_um,
        ]
    }

    /// The patch holding `pos_um`, if inside the grid.
    pub fn index_of(&self, pos_um: [f32; 2]) -> Option<usize> {
        let x = (pos_um[0] - self.origin_um[0]) / self.patch_um;
        let y = (pos_um[1] - self.origin_um[1]) / self.patch_um;
        if !(x >= 0.0 && y >= 0.0) {
            return None;
        }
        let (c, r) = (x as usize, y as usize);
        (c < self.columns && r < self.rows).then_some(r * self.columns + c)
    }
}

/// The world box (µm) the slide's level 0 covers.
pub fn slide_extent_um(slide: &SlideInput<'_>) -> Result<([f32; 2], [f32; 2]), ModelError> {
    let level = slide
        .slide
        .metadata()
        .levels
        .first()
        .ok_or_else(|| ModelError::Input(format!("{} has no levels", slide.slide.path().display())))?;
    let [a, b, c, d, e, f] = slide.slide_px_from_world.0;
    let det = a * e - b * d;
    if !(det.is_finite() && det.abs() > 1e-12) {
        return Err(ModelError::Input("the slide's alignment cannot be inverted".into()));
    }
    let world = |px: f64, py: f64| {
        let (x, y) = (px - c, py - f);
        [(e * x - b * y) / det, (-d * x + a * y) / det]
    };
    let (w, h) = (level.width_px as f64, level.height_px as f64);
    let corners = [world(0.0, 0.0), world(w, 0.0), world(0.0, h), world(w, h)];
    let min = [0, 1].map(|k| corners.iter().map(|p| p[k]).fold(f64::INFINITY, f64::min) as f32);
    let max = [0, 1].map(|k| corners.iter().map(|p| p[k]).fold(f64::NEG_INFINITY, f64::max) as f32);
    Ok((min, max))
}

/// Measured expression per patch: the mean log1p(CP10k) of each gene over the cells whose
/// centres fall in it, and how many cells that is.
pub struct PatchTargets {
    pub values: Matrix,
    pub cells: Vec<u32>,
}

pub fn patch_targets(
    grid: &PatchGrid,
    centres_um: &[[f32; 2]],
    expression: &GeneExpression,
    gene_columns: &[usize],
) -> Result<PatchTargets, ModelError> {
    if centres_um.len() != expression.n_cells() {
        return Err(ModelError::Shape(format!(
            "{} centres for {} expression rows",
            centres_um.len(),
            expression.n_cells()
        )));
    }
    let k = gene_columns.len();
    let mut sums = vec![0f64; grid.len() * k];
    let mut cells = vec![0u32; grid.len()];
    for (cell, &pos) in centres_um.iter().enumerate() {
        let Some(patch) = grid.index_of(pos) else { continue };
        cells[patch] += 1;
        let (a, b) = (
            expression.row_offsets[cell] as usize,
            expression.row_offsets[cell + 1] as usize,
        );
        for (g, v) in expression.gene_index[a..b].iter().zip(&expression.values[a..b]) {
            if let Some(j) = gene_columns.iter().position(|&c| c == *g as usize) {
                sums[patch * k + j] += f64::from(*v);
            }
        }
    }
    let values = sums
        .chunks(k.max(1))
        .zip(&cells)
        .flat_map(|(row, &n)| {
            row.iter()
                .map(move |s| if n > 0 { (s / f64::from(n)) as f32 } else { f32::NAN })
        })
        .collect();
    Ok(PatchTargets {
        values: Matrix::new(grid.len(), k, values)?,
        cells,
    })
}

/// Settings of a virtual-expression run.
#[derive(Clone, Debug, PartialEq)]
pub struct VirtualSettings {
    pub patch_um: f32,
    pub epochs: usize,
    pub learning_rate: f64,
    pub weight_decay: f32,
    pub seed: u64,
}

impl Default for VirtualSettings {
    fn default() -> Self {
        Self {
            patch_um: DEFAULT_PATCH_UM,
            epochs: 300,
            learning_rate: 3e-3,
            weight_decay: 1e-2,
            seed: 0,
        }
    }
}

/// A gene's agreement with the measurement on held-out tissue blocks, and the shuffled control's.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GeneScore {
    pub gene: String,
    pub pearson: f64,
    pub spearman: f64,
    pub control_pearson: f64,
    pub control_spearman: f64,
}

/// The outcome: the grid, predictions for every tissue patch (NaN on background), the measured
/// targets, and the held-out scores.
pub struct VirtualExpression {
    pub grid: PatchGrid,
    pub genes: Vec<String>,
    /// Patches x genes, in the targets' units (mean log1p CP10k per cell).
    pub predicted: Matrix,
    pub measured: PatchTargets,
    pub tissue_fraction: Vec<f32>,
    pub scores: Vec<GeneScore>,
    pub n_train: usize,
    pub n_test: usize,
    /// What the head read: the tile statistics, and the foundation encoder's components if any.
    pub feature_source: String,
}

#[derive(Module, Debug)]
struct RegressionHead {
    hidden: Linear,
    out: Linear,
}

impl RegressionHead {
    fn new(inputs: usize, outputs: usize, device: &Device) -> Self {
        Self {
            hidden: LinearConfig::new(inputs, HIDDEN).init(device),
            out: LinearConfig::new(HIDDEN, outputs).init(device),
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.out.forward(relu(self.hidden.forward(x)))
    }
}

/// Trains a head on `rows` of (`x`, `y`), both standardised, full batch.
fn train_head(
    x: &Matrix,
    y: &Matrix,
    rows: &[usize],
    settings: &VirtualSettings,
    seed: u64,
    device: &Device,
    progress: &Progress,
) -> Result<RegressionHead, ModelError> {
    let ad = device.clone().autodiff();
    ad.seed(seed);
    let mut head = RegressionHead::new(x.cols, y.cols, &ad);
    let mut optimizer = AdamWConfig::new().with_weight_decay(settings.weight_decay).init();
    let inputs = matrix_rows_tensor(x, rows, &ad);
    let targets = matrix_rows_tensor(y, rows, &ad);
    for epoch in 0..settings.epochs {
        progress.check()?;
        let error = head.forward(inputs.clone()) - targets.clone();
        let loss = (error.clone() * error).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &head);
        head = optimizer.step(settings.learning_rate, head, grads);
        if epoch % 20 == 0 {
            progress.report(
                "Training the regression head",
                epoch as f32 / settings.epochs.max(1) as f32,
            );
        }
    }
    Ok(head.valid())
}

fn predict_rows(head: &RegressionHead, x: &Matrix, rows: &[usize], device: &Device) -> Result<Vec<f32>, ModelError> {
    head.forward(matrix_rows_tensor(x, rows, device))
        .into_data()
        .try_to_vec()
        .map_err(|e| ModelError::Input(format!("reading predictions back: {e:?}")))
}

/// Pearson correlation (NaN when either side is constant).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    sab / (saa * sbb).sqrt()
}

/// Ranks (1-based, ties averaged).
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut out = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            out[k] = rank;
        }
        i = j + 1;
    }
    out
}

/// Spearman's rank correlation.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    pearson(&ranks(a), &ranks(b))
}

/// Runs the whole pipeline (see the module docs) for `genes` (names in `expression`). With a
/// `foundation` encoder (a ViT such as UNI2-h), each tissue patch is also read through it, its
/// whole input spread over the patch, and the embedding's leading
/// [`FOUNDATION_COMPONENTS`] principal components join the tile statistics.
#[allow(clippy::too_many_arguments)]
pub fn virtual_expression(
    slide: &SlideInput<'_>,
    centres_um: &[[f32; 2]],
    expression: &GeneExpression,
    genes: &[String],
    settings: &VirtualSettings,
    foundation: Option<&dyn MorphologyEncoder>,
    device: &Device,
    progress: &Progress,
) -> Result<VirtualExpression, ModelError> {
    if genes.is_empty() {
        return Err(ModelError::Input("no genes asked for".into()));
    }
    let mut gene_columns = Vec::with_capacity(genes.len());
    let mut missing = Vec::new();
    for gene in genes {
        match expression.gene(gene) {
            Some(c) => gene_columns.push(c),
            None => missing.push(gene.as_str()),
        }
    }
    if !missing.is_empty() {
        return Err(ModelError::Input(format!(
            "not in the panel: {} (genes are named as in the bundle's features, e.g. {})",
            missing.join(", "),
            expression
                .gene_names
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let (min_um, max_um) = slide_extent_um(slide)?;
    let grid = PatchGrid::covering(min_um, max_um, settings.patch_um)?;
    progress.report("Reading the H&E patches", 0.0);
    let centres: Vec<[f32; 2]> = (0..grid.len()).map(|i| grid.centre_um(i)).collect();
    let shapes = vec![CellShape::default(); grid.len()];
    let encoder = TileStatsEncoder::new(settings.patch_um);
    let px_from_world = SlidePxFromWorld(slide.slide_px_from_world.0);
    let read_tiles = if foundation.is_some() { 0.25 } else { 0.5 };
    let mut features = encode_cells(
        Some((slide.slide, px_from_world)),
        &centres,
        &shapes,
        &encoder,
        &progress.part("Reading the H&E patches".to_owned(), 0.0, read_tiles),
    )?;
    let tissue_fraction: Vec<f32> = (0..grid.len()).map(|i| features.row(i)[TISSUE_COLUMN]).collect();
    let measured = patch_targets(&grid, centres_um, expression, &gene_columns)?;
    let tissue: Vec<usize> = (0..grid.len())
        .filter(|&i| tissue_fraction[i] >= MIN_TISSUE_FRACTION)
        .collect();
    let mut feature_source = format!("tile statistics ({} features)", encoder.dim());
    if let Some(foundation) = foundation {
        let components = foundation_components(
            slide,
            &grid,
            &tissue,
            foundation,
            settings,
            &progress.part(format!("Reading the tiles through {}", foundation.name()), 0.25, 0.5),
        )?;
        feature_source = format!(
            "{feature_source} + {} ({} principal components of {})",
            foundation.name(),
            components.cols,
            foundation.dim()
        );
        features = append_columns(&features, &tissue, &components)?;
    }
    let targets: Vec<usize> = tissue
        .iter()
        .copied()
        .filter(|&i| measured.cells[i] >= MIN_CELLS_PER_PATCH)
        .collect();
    if targets.len() < 20 {
        return Err(ModelError::Input(format!(
            "only {} patches of {} µm hold {MIN_CELLS_PER_PATCH}+ measured cells on tissue: too few to learn from \
             (is the alignment right?)",
            targets.len(),
            settings.patch_um
        )));
    }
    let (train, test) = spatial_block_split(&targets, |i| grid.centre_um(i), settings.seed);
    // Features and targets standardised on the training patches.
    let scaling = ColumnScaling::fit(&features.select_rows(&train));
    scaling.apply(&mut features)?;
    let mut y = measured.values.clone();
    let target_scaling = ColumnScaling::fit(&y.select_rows(&train));
    for &i in &targets {
        for ((v, m), s) in y
            .row_mut(i)
            .iter_mut()
            .zip(&target_scaling.mean)
            .zip(&target_scaling.std)
        {
            *v = (*v - m) / s;
        }
    }
    let score = |head: &RegressionHead| -> Result<Vec<(f64, f64)>, ModelError> {
        let predicted = predict_rows(head, &features, &test, device)?;
        Ok((0..genes.len())
            .map(|g| {
                let p: Vec<f64> = (0..test.len())
                    .map(|t| f64::from(predicted[t * genes.len() + g]))
                    .collect();
                let m: Vec<f64> = test.iter().map(|&i| f64::from(y.row(i)[g])).collect();
                (pearson(&p, &m), spearman(&p, &m))
            })
            .collect())
    };
    let sub = |from: f32, to: f32| progress.part("Training the regression head".to_owned(), from, to);
    let held_out = score(&train_head(
        &features,
        &y,
        &train,
        settings,
        settings.seed,
        device,
        &sub(0.5, 0.65),
    )?)?;
    // The control: the same head on targets shuffled between the training patches.
    let mut shuffled = y.clone();
    let mut order = train.clone();
    SeededRng::new(settings.seed.wrapping_add(7)).shuffle(&mut order);
    for (&to, &from) in train.iter().zip(&order) {
        let row = y.row(from).to_vec();
        shuffled.row_mut(to).copy_from_slice(&row);
    }
    let control = score(&train_head(
        &features,
        &shuffled,
        &train,
        settings,
        settings.seed,
        device,
        &sub(0.65, 0.8),
    )?)?;
    // The head that predicts the slide learns from every measured patch.
    let head = train_head(
        &features,
        &y,
        &targets,
        settings,
        settings.seed,
        device,
        &sub(0.8, 0.95),
    )?;
    let predicted_tissue = predict_rows(&head, &features, &tissue, device)?;
    let mut predicted = vec![f32::NAN; grid.len() * genes.len()];
    for (t, &i) in tissue.iter().enumerate() {
        for g in 0..genes.len() {
            predicted[i * genes.len() + g] =
                predicted_tissue[t * genes.len() + g] * target_scaling.std[g] + target_scaling.mean[g];
        }
    }
    let scores = genes
        .iter()
        .zip(held_out.iter().zip(&control))
        .map(
            |(gene, (&(pearson, spearman), &(control_pearson, control_spearman)))| GeneScore {
                gene: gene.clone(),
                pearson,
                spearman,
                control_pearson,
                control_spearman,
            },
        )
        .collect();
    progress.report("Virtual expression", 1.0);
    Ok(VirtualExpression {
        grid,
        genes: genes.to_vec(),
        predicted: Matrix::new(grid.len(), genes.len(), predicted)?,
        measured,
        tissue_fraction,
        scores,
        n_train: train.len(),
        n_test: test.len(),
        feature_source,
    })
}

/// The foundation encoder's embedding of every tissue patch, reduced to its leading principal
/// components (fitted on the tissue patches: no target is seen).
fn foundation_components(
    slide: &SlideInput<'_>,
    grid: &PatchGrid,
    tissue: &[usize],
    foundation: &dyn MorphologyEncoder,
    settings: &VirtualSettings,
    progress: &Progress,
) -> Result<Matrix, ModelError> {
    let at_patch = AtPatchSide::new(foundation, settings.patch_um);
    let centres: Vec<[f32; 2]> = tissue.iter().map(|&i| grid.centre_um(i)).collect();
    let shapes = vec![CellShape::default(); tissue.len()];
    let embedding = encode_cells(
        Some((slide.slide, SlidePxFromWorld(slide.slide_px_from_world.0))),
        &centres,
        &shapes,
        &at_patch,
        progress,
    )?;
    if embedding.has_non_finite() {
        return Err(ModelError::Input(format!(
            "{} gave non-finite embeddings: are these the right weights?",
            foundation.name()
        )));
    }
    let names = at_patch.feature_names();
    let as_expression = GeneExpression::from_dense(&embedding, names)?;
    let pca = GenePca::fit(&as_expression, FOUNDATION_COMPONENTS, settings.seed)?;
    pca.transform(&as_expression)
}

/// `base` with `extra`'s columns appended on `rows` (zeros elsewhere: those rows are not used).
fn append_columns(base: &Matrix, rows: &[usize], extra: &Matrix) -> Result<Matrix, ModelError> {
    let cols = base.cols + extra.cols;
    let mut out = Matrix::zeros(base.rows, cols);
    for i in 0..base.rows {
        out.row_mut(i)[..base.cols].copy_from_slice(base.row(i));
    }
    for (k, &i) in rows.iter().enumerate() {
        out.row_mut(i)[base.cols..].copy_from_slice(extra.row(k));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlations_match_hand_values() {
        let a = [1.0, 2.0, 3.0, 4.0];
        assert!((pearson(&a, &[2.0, 4.0, 6.0, 8.0]) - 1.0).abs() < 1e-12);
        assert!((pearson(&a, &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // Monotone but not linear: Spearman 1, Pearson below.
        let b = [1.0, 8.0, 27.0, 64.0];
        assert!((spearman(&a, &b) - 1.0).abs() < 1e-12);
        assert!(pearson(&a, &b) < 0.99);
        assert_eq!(ranks(&[3.0, 1.0, 3.0]), vec![2.5, 1.0, 2.5]);
    }

    #[test]
    fn the_grid_finds_its_patches() {
        let grid = PatchGrid::covering([10.0, 20.0], [110.0, 70.0], 50.0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((grid.columns, grid.rows), (2, 1));
        assert_eq!(grid.index_of([60.0, 30.0]), Some(1));
        assert_eq!(grid.index_of([5.0, 30.0]), None);
        assert_eq!(grid.index_of([f32::NAN, 30.0]), None);
        assert_eq!(grid.centre_um(1), [85.0, 45.0]);
        assert!(PatchGrid::covering([0.0, 0.0], [f32::NAN, 1.0], 50.0).is_err());
    }
}
