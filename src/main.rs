//! `cellsymphony`: opens the viewer, or runs a command-line subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cellsymphony",
    version,
    about = "CellSymphony Viewer: whole-slide H&E with Xenium cell overlays"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Slide, session file (`.cellsymphony`), Xenium folder or SpatialData `.zarr` store to open.
    slide: Option<PathBuf>,
    /// Slide to open (same as the positional argument).
    #[arg(long = "slide", value_name = "FILE", conflicts_with = "slide")]
    slide_flag: Option<PathBuf>,
    /// Xenium output folder (or SpatialData `.zarr` store) to overlay.
    #[arg(long, value_name = "DIR")]
    xenium: Option<PathBuf>,
    /// Xenium Explorer alignment CSV (H&E pixel -> Xenium morphology pixel).
    #[arg(long, value_name = "CSV")]
    alignment: Option<PathBuf>,
    /// Open the built-in synthetic demo tissue (generated once into the cache folder); --demo hard
    /// opens the cell-typing benchmark instead.
    #[arg(long, num_args = 0..=1, default_missing_value = "standard", value_name = "DIFFICULTY")]
    demo: Option<cs_synth::Difficulty>,
    /// Session file to open (saved from the viewer's File menu).
    #[arg(long, value_name = "FILE")]
    session: Option<PathBuf>,
    /// Cohort manifest to open (CSV or TOML; see `cohort run`): its samples in the Cohort tab.
    #[arg(long, value_name = "MANIFEST")]
    cohort: Option<PathBuf>,
    /// Do not autosave the session (nor offer to restore one after a crash).
    #[arg(long)]
    no_autosave: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Print a slide's levels, resolution, objective and associated images.
    Info(InfoArgs),
    /// Write a synthetic tissue: a Xenium-layout bundle, an H&E pyramid TIFF and its alignment.
    Synth(SynthArgs),
    /// Composition of a selection against the rest (Fisher exact, BH) and neighbourhood
    /// enrichment (squidpy-compatible permutation z-scores).
    Enrich(EnrichArgs),
    /// Per-cell features: 50 gene PCs (log1p CP10k) or imported embeddings, and morphology from
    /// the built-in encoder (from the H&E when --slide is given, else from shapes) or a ViT, as
    /// parquet keyed by cell_id.
    Embed(EmbedArgs),
    /// Train the fusion classifier (AdamW, class-weighted cross-entropy, seeded 80/20 split) and
    /// save it as a model folder (model.json + weights.bpk).
    Train(TrainArgs),
    /// Train every classifier variant and the baselines (logistic regression, nearest centroid,
    /// kNN) on the same random or spatial splits over several seeds; print the comparison.
    Evaluate(EvaluateArgs),
    /// Virtual expression (HEX-style): predict genes from the H&E alone on ~50 µm patches over the
    /// whole slide, trained where Xenium measured them; held-out Pearson / Spearman r per gene
    /// against a shuffled-patch control; one row per patch as parquet.
    Virtual(VirtualArgs),
    /// Predict every cell of a bundle with a saved classifier; writes cell_id, predicted_type,
    /// confidence as parquet.
    Predict(PredictArgs),
    /// Morphology clusters: contrastive alignment of genes and morphology, k-means on the
    /// morphology projection; writes cell_id, morphology_cluster, map_x, map_y as parquet.
    Cluster(ClusterArgs),
    /// A categorical column as Xenium Explorer cell groups: `cell_id,group` CSV (.csv) or an
    /// analysis.zarr.zip grouping (.zarr.zip).
    Groups(GroupsArgs),
    /// Cohorts: one step over every sample of a manifest (resumable, sharded), and the summary
    /// across samples.
    Cohort {
        #[command(subcommand)]
        which: CohortCommand,
    },
    /// Benchmarks that need the whole app.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
}

/// The flags of `cellsymphony info`.
#[derive(clap::Args)]
struct InfoArgs {
    path: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// The flags of `cellsymphony synth`.
#[derive(clap::Args)]
struct SynthArgs {
    #[arg(long, default_value_t = 20_000)]
    cells: usize,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Leave out the H&E slide.
    #[arg(long)]
    no_slide: bool,
    /// Also write transcripts.parquet (one row per count).
    #[arg(long)]
    transcripts: bool,
    /// Also write morphology_focus/: four 16-bit stains (DAPI, boundary, interior RNA, interior
    /// protein) as OME-TIFFs with SubIFD pyramids, as XOA 2.x writes them.
    #[arg(long)]
    morphology: bool,
    /// Write the H&E as 10x does (he_image.ome.tif: OME-TIFF, pyramid in SubIFDs) instead of
    /// he.tiff (one page per level).
    #[arg(long)]
    he_ome_tiff: bool,
    /// µm per morphology pixel (Xenium's is 0.2125).
    #[arg(long, default_value_t = 0.2125)]
    morphology_um_per_px: f64,
    /// Imitate an XOA release's files: 1 (integer ids, no label_id, binary feature names),
    /// 2 (label_id, multinucleate and anucleate cells), 3 (codeword_category, is_gene) or 4 (also
    /// protein rows in cell_feature_matrix.h5); each also writes analysis.zarr.zip and cells.zarr.zip.
    #[arg(long, value_parser = parse_xoa)]
    xoa: Option<cs_synth::XoaVersion>,
    /// standard (types easy to tell apart) or hard (a cell-typing benchmark near real Xenium data:
    /// sparse counts with dropout, shared markers, T-cell subsets, overlapping shapes,
    /// segmentation spill-over and 4% label noise).
    #[arg(long, default_value = "standard")]
    difficulty: cs_synth::Difficulty,
    /// Only this share of the tissue's width (from its left edge, 0.1 to 1) is in the Xenium
    /// bundle, while the H&E shows the whole tissue: a section larger than its Xenium region
    /// (virtual expression then predicts past the measured cells).
    #[arg(long)]
    xenium_region: Option<f64>,
    #[arg(long)]
    json: bool,
}

fn parse_xoa(text: &str) -> Result<cs_synth::XoaVersion, String> {
    cs_synth::XoaVersion::parse(text).ok_or_else(|| format!("{text}: XOA layouts are 1, 2, 3 or 4"))
}

/// The flags of `cellsymphony groups`.
#[derive(clap::Args)]
struct GroupsArgs {
    /// A Xenium output folder or a SpatialData .zarr.
    #[arg(long)]
    xenium: PathBuf,
    /// The categorical column (a clustering, Explorer's groups, `predicted_type` with --from).
    #[arg(long)]
    column: String,
    /// Take the column from this per-cell table (parquet or CSV with cell_id), e.g. `predict`'s.
    #[arg(long)]
    from: Option<PathBuf>,
    /// FILE.csv (cell_id,group) or FILE.zarr.zip (Xenium Explorer's analysis.zarr.zip).
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    json: bool,
}

/// The flags of `cellsymphony enrich`.
#[derive(clap::Args)]
struct EnrichArgs {
    #[arg(long)]
    xenium: PathBuf,
    /// Categorical column (a clustering, or `synthetic_cell_type` in the demo).
    #[arg(long)]
    labels: String,
    /// GeoJSON (µm, or slide pixels with --alignment) or a Xenium Explorer coordinates CSV.
    #[arg(long)]
    selection: Option<PathBuf>,
    /// H&E alignment CSV for GeoJSON in slide pixels.
    #[arg(long)]
    alignment: Option<PathBuf>,
    /// Spatial graph: radius=R (µm), knn=K or delaunay.
    #[arg(long)]
    nhood: Option<String>,
    #[arg(long, default_value_t = 1000)]
    perms: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

/// The flags of `cellsymphony embed`.
#[derive(clap::Args)]
struct EmbedArgs {
    #[command(flatten)]
    bundle: BundleFlags,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where a ViT encoder runs: gpu or cpu (the built-in encoder runs on the CPU).
    #[arg(long, default_value = "gpu")]
    device: String,
    #[arg(long)]
    json: bool,
}

/// The classifier's training flags, shared by `train` and `evaluate`.
#[derive(clap::Args)]
struct TrainingFlags {
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Peak learning rate (the paper's constant one: --lr 3e-5 --schedule constant --min-steps 0
    /// --calibration-fraction 0).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// warmup-cosine (a linear warm-up over 5% of steps, then a cosine decay) or constant.
    #[arg(long, default_value = "warmup-cosine")]
    schedule: String,
    /// Epochs are added until training takes at least this many optimiser steps.
    #[arg(long, default_value_t = cs_models::train::DEFAULT_MIN_STEPS)]
    min_steps: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f32,
    #[arg(long, default_value_t = 64)]
    d_model: usize,
    #[arg(long, default_value_t = 6)]
    layers: usize,
    /// Share of the training cells held back to keep the best epoch and calibrate the
    /// confidences (temperature scaling); 0: neither.
    #[arg(long, default_value_t = cs_models::train::DEFAULT_CALIBRATION_FRACTION)]
    calibration_fraction: f64,
}

impl TrainingFlags {
    fn settings(&self, seed: u64) -> anyhow::Result<cs_models::train::TrainingSettings> {
        let schedule = match self.schedule.as_str() {
            "warmup-cosine" => cs_models::train::LrSchedule::WarmupCosine,
            "constant" => cs_models::train::LrSchedule::Constant,
            other => anyhow::bail!("--schedule is warmup-cosine or constant, not {other:?}"),
        };
        anyhow::ensure!(
            (0.0..0.5).contains(&self.calibration_fraction),
            "--calibration-fraction {}: use 0 (none) up to 0.5",
            self.calibration_fraction
        );
        Ok(cs_models::train::TrainingSettings {
            epochs: self.epochs,
            batch_size: self.batch,
            learning_rate: self.lr,
            weight_decay: self.weight_decay,
            schedule,
            min_steps: self.min_steps,
            calibration_fraction: self.calibration_fraction,
            seed,
            ..Default::default()
        })
    }
}

/// The flags of `cellsymphony train`.
#[derive(clap::Args)]
struct TrainArgs {
    #[command(flatten)]
    bundle: BundleFlags,
    /// AnnData reference (.h5ad) instead of a bundle: genes only.
    #[arg(long, conflicts_with = "xenium")]
    h5ad: Option<PathBuf>,
    /// Use raw/X of the AnnData file instead of X.
    #[arg(long)]
    raw: bool,
    /// Label source: `markers`, `markers:TABLE.tsv`, a categorical column (a clustering, or
    /// an obs column of the .h5ad) or a cell_id,label CSV.
    #[arg(long, default_value = "markers")]
    labels: String,
    /// unimodal, spatial, dual or multi.
    #[arg(long, default_value = "dual")]
    variant: String,
    #[command(flatten)]
    training: TrainingFlags,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    out: PathBuf,
    /// gpu or cpu.
    #[arg(long, default_value = "gpu")]
    device: String,
    #[arg(long)]
    json: bool,
}

/// The flags of `cellsymphony evaluate`.
#[derive(clap::Args)]
struct EvaluateArgs {
    #[command(flatten)]
    bundle: BundleFlags,
    /// AnnData reference (.h5ad) instead of a bundle: genes only.
    #[arg(long, conflicts_with = "xenium")]
    h5ad: Option<PathBuf>,
    /// Use raw/X of the AnnData file instead of X.
    #[arg(long)]
    raw: bool,
    /// Label source, as for train.
    #[arg(long, default_value = "markers")]
    labels: String,
    /// random (stratified) or spatial (held-out tissue blocks, so neighbours do not leak).
    #[arg(long, default_value = "random")]
    split: String,
    #[arg(long, default_value_t = 3)]
    seeds: usize,
    /// CellSymphony variants to train, comma-separated (unimodal, spatial, dual, multi); those
    /// the inputs cannot feed are skipped. The baselines always run.
    #[arg(long, value_delimiter = ',', default_value = "unimodal,spatial,dual,multi")]
    variants: Vec<cs_models::classifier::Variant>,
    #[command(flatten)]
    training: TrainingFlags,
    /// gpu or cpu.
    #[arg(long, default_value = "gpu")]
    device: String,
    /// Also write the evaluation as JSON here.
    #[arg(long)]
    out_json: Option<PathBuf>,
    /// Also write the Markdown table here.
    #[arg(long)]
    out_md: Option<PathBuf>,
    /// Also write each seed's held-out cell ids here (JSON), for reference scripts.
    #[arg(long)]
    out_splits: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

impl EvaluateArgs {
    fn run(self) -> anyhow::Result<String> {
        let args = cellsymphony::cli::evaluate::EvaluateArgs {
            bundle: self.bundle.try_into()?,
            h5ad: self.h5ad,
            h5ad_raw: self.raw,
            labels: self.labels,
            split: self.split.parse().map_err(anyhow::Error::msg)?,
            seeds: self.seeds,
            training: self.training.settings(0)?,
            size: cs_models::evaluate::ModelSize {
                d_model: self.training.d_model,
                n_layers: self.training.layers,
            },
            variants: self.variants,
            device: self.device,
            out_json: self.out_json,
            out_markdown: self.out_md,
            out_splits: self.out_splits,
        };
        cellsymphony::cli::evaluate::run(&args, self.json)
    }
}

/// The flags of `cellsymphony virtual`.
#[derive(clap::Args)]
struct VirtualArgs {
    #[command(flatten)]
    bundle: BundleFlags,
    /// Genes to predict, comma-separated, named as in the bundle's features; an XOA 4 bundle's
    /// proteins too (`NAME (protein)` where a gene has the same name). With --morphology a ViT
    /// (and --morphology-weights), each 50 µm tile is also read through it (class token).
    #[arg(long, value_delimiter = ',', required = true)]
    genes: Vec<String>,
    #[arg(long)]
    out: PathBuf,
    /// Patch side in µm (HEX's is about 50).
    #[arg(long, default_value_t = cs_models::virtual_expression::DEFAULT_PATCH_UM)]
    patch_um: f32,
    #[arg(long, default_value_t = 300)]
    epochs: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// gpu or cpu.
    #[arg(long, default_value = "gpu")]
    device: String,
    #[arg(long)]
    json: bool,
}

impl VirtualArgs {
    fn run(self) -> anyhow::Result<String> {
        let args = cellsymphony::cli::virtual_expression::VirtualArgs {
            bundle: self.bundle.try_into()?,
            genes: trimmed(self.genes),
            out: self.out,
            settings: cs_models::virtual_expression::VirtualSettings {
                patch_um: self.patch_um,
                epochs: self.epochs,
                seed: self.seed,
                ..Default::default()
            },
            device: self.device,
        };
        cellsymphony::cli::virtual_expression::run(&args, self.json)
    }
}

/// The flags of `cellsymphony predict`.
#[derive(clap::Args)]
struct PredictArgs {
    #[command(flatten)]
    bundle: BundleFlags,
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "gpu")]
    device: String,
    #[arg(long)]
    json: bool,
}

/// The flags of `cellsymphony cluster`.
#[derive(clap::Args)]
struct ClusterArgs {
    #[command(flatten)]
    bundle: BundleFlags,
    #[arg(long, default_value_t = 8)]
    k: usize,
    /// Label source for the cluster x cell-type enrichment table (as for `train`).
    #[arg(long)]
    labels: Option<String>,
    /// Also save the contrastive model folder.
    #[arg(long)]
    model_out: Option<PathBuf>,
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "gpu")]
    device: String,
    #[arg(long)]
    json: bool,
}

/// The flags of `cellsymphony bench models`.
#[derive(clap::Args)]
struct ModelsBenchArgs {
    #[command(flatten)]
    bundle: BundleFlags,
    /// Cells of the synthetic tissue when no --xenium is given.
    #[arg(long, default_value_t = 100_000)]
    cells: usize,
    #[arg(long, default_value_t = 500_000)]
    kmeans_points: usize,
    /// Also time a ViT encoder with seeded random weights of this architecture (vit-s16,
    /// vit-b16, vit-l16, uni2-h), written once to the cache; --morphology with
    /// --morphology-weights times your own file instead.
    #[arg(long)]
    vit_seeded: Option<String>,
    /// Cells the ViT encodes.
    #[arg(long, default_value_t = 512)]
    vit_cells: usize,
    #[arg(long, default_value = "gpu")]
    device: String,
    #[arg(long)]
    json: bool,
}

/// The flags of `cellsymphony bench cells`.
#[derive(clap::Args)]
struct CellsBenchArgs {
    #[arg(long)]
    xenium: PathBuf,
    #[arg(long, default_value_t = 120)]
    frames: usize,
    /// Save the overview frame as PNG.
    #[arg(long)]
    png: Option<PathBuf>,
    #[command(flatten)]
    render: HeadlessFlags,
}

/// The flags of `cellsymphony bench replay`.
#[derive(clap::Args)]
struct ReplayBenchArgs {
    #[arg(long)]
    slide: PathBuf,
    #[arg(long, default_value_t = 300)]
    frames: usize,
    /// Save the last frame as PNG.
    #[arg(long)]
    png: Option<PathBuf>,
    #[command(flatten)]
    render: HeadlessFlags,
}

/// The flags of `cellsymphony bench morphology`.
#[derive(clap::Args)]
struct MorphologyBenchArgs {
    /// Xenium output folder (or SpatialData store) with morphology images.
    #[arg(long)]
    xenium: PathBuf,
    #[arg(long, default_value_t = 120)]
    frames: usize,
    /// Save the last frame as PNG.
    #[arg(long)]
    png: Option<PathBuf>,
    #[command(flatten)]
    render: HeadlessFlags,
}

/// The flags of `cellsymphony bench transcripts`.
#[derive(clap::Args)]
struct TranscriptsBenchArgs {
    /// Xenium output folder with transcripts.parquet.
    #[arg(long)]
    xenium: PathBuf,
    #[arg(long, default_value_t = 120)]
    frames: usize,
    /// Build the index here (kept) instead of a temporary folder (removed).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Save the whole tissue with one gene as PNG.
    #[arg(long)]
    png_overview: Option<PathBuf>,
    /// Save the 40x frame with all genes as PNG.
    #[arg(long)]
    png_40x: Option<PathBuf>,
    #[command(flatten)]
    render: HeadlessFlags,
}

/// How a headless benchmark renders and reports.
#[derive(clap::Args)]
struct HeadlessFlags {
    #[arg(long, default_value_t = 3840)]
    width: u32,
    #[arg(long, default_value_t = 2160)]
    height: u32,
    /// Prefer a software adapter (lavapipe) over a GPU.
    #[arg(long)]
    cpu: bool,
    #[arg(long)]
    json: bool,
}

/// A bundle and, optionally, its H&E slide and alignment.
#[derive(clap::Args)]
struct BundleFlags {
    /// Xenium output folder.
    #[arg(long)]
    xenium: Option<PathBuf>,
    /// H&E slide for morphology.
    #[arg(long)]
    slide: Option<PathBuf>,
    /// Xenium Explorer alignment CSV for the slide.
    #[arg(long)]
    alignment: Option<PathBuf>,
    /// Per-cell gene embeddings (e.g. scGPT; parquet or CSV with cell_id, or a .npy matrix with its
    /// ids one per line in NAME.cell_ids.txt) instead of the gene PCA.
    #[arg(long)]
    gene_embeddings: Option<PathBuf>,
    #[command(flatten)]
    morphology: MorphologyFlags,
}

/// The morphology encoder's flags, shared by the bundle commands and `cohort run`.
#[derive(clap::Args)]
struct MorphologyFlags {
    /// Morphology encoder: builtin (needs no weights) or a ViT on the H&E: vit-s16, vit-b16,
    /// vit-l16 (also UNI) or uni2-h, with --morphology-weights.
    #[arg(long, default_value = "builtin")]
    morphology: String,
    /// The ViT's weights: a .safetensors file saved from timm (for predict: where the model's
    /// weights file is now, if it moved).
    #[arg(long)]
    morphology_weights: Option<PathBuf>,
    /// A ViT's per-cell readout: nucleus:K (mean of the K patch tokens nearest the nucleus, as in
    /// the paper) or cls (the class token). predict keeps the model's own.
    #[arg(long, default_value = "nucleus:4")]
    readout: String,
}

impl MorphologyFlags {
    fn choice(self) -> anyhow::Result<cs_models::pipeline::MorphologyChoice> {
        let readout = self
            .readout
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--readout: {e}"))?;
        Ok(cs_models::pipeline::MorphologyChoice::parse(
            &self.morphology,
            self.morphology_weights,
            readout,
        )?)
    }
}

/// A comma-separated list's entries, trimmed, blanks left out.
fn trimmed(list: Vec<String>) -> Vec<String> {
    list.iter()
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

impl TryFrom<BundleFlags> for cellsymphony::cli::models::BundleArgs {
    type Error = anyhow::Error;
    fn try_from(f: BundleFlags) -> anyhow::Result<Self> {
        Ok(Self {
            xenium: f.xenium,
            slide: f.slide,
            alignment: f.alignment,
            gene_embeddings: f.gene_embeddings,
            morphology: f.morphology.choice()?,
        })
    }
}

#[derive(Subcommand)]
enum CohortCommand {
    /// Runs a step on each sample: OUT/<sample_id>/<step>.parquet, <step>.json (done mark, with
    /// the inputs' fingerprint) and <step>.log. Samples done before with the same inputs are
    /// skipped; a failing sample is logged and the rest go on; the exit status is the number of
    /// samples that failed or could not run (at most 100).
    Run(Box<CohortRunArgs>),
    /// Gathers the samples' outputs into OUT/summary.parquet and .csv (per-sample composition,
    /// niche frequencies of a shared niche model and neighbourhood z-scores with the manifest's
    /// metadata) and, with a group or condition
    /// column, OUT/group_tests.parquet and .csv (Mann-Whitney U per class, BH).
    Summarise(CohortSummariseArgs),
}

/// The flags of `cellsymphony cohort run`.
#[derive(clap::Args)]
struct CohortRunArgs {
    /// The cohort manifest: CSV (sample_id, xenium, slide, alignment, then metadata columns such
    /// as group or condition) or TOML ([[sample]] tables with the same keys); paths relative to it.
    manifest: PathBuf,
    #[arg(long, value_parser = parse_step)]
    step: cellsymphony::cli::cohort::Step,
    #[arg(long)]
    out: PathBuf,
    /// The classifier folder (from `train`), for --step predict; for --step cluster, a niche model
    /// (from `cluster --model-out`) that assigns every sample's cells to the same niches, so their
    /// frequencies compare across samples (without it each sample is clustered on its own).
    #[arg(long)]
    model: Option<PathBuf>,
    /// I/N: every N-th sample from the I-th (0-based), e.g. a Slurm array task's share.
    #[arg(long, default_value = "0/1", value_parser = parse_shard)]
    shard: cs_cohort::Shard,
    /// Only these samples (comma-separated ids); the workflow runs one job per sample this way.
    #[arg(long, value_delimiter = ',')]
    sample: Vec<String>,
    /// gpu or cpu.
    #[arg(long, default_value = "gpu")]
    device: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    morphology: MorphologyFlags,
    /// Morphology clusters (--step cluster).
    #[arg(long, default_value_t = 8)]
    k: usize,
    /// Contrastive training epochs (--step cluster).
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Genes (and XOA 4 proteins) to predict from the H&E (--step virtual), comma-separated.
    #[arg(long, value_delimiter = ',')]
    genes: Vec<String>,
    /// Cell types for --step enrich: `predicted` (this cohort's predict outputs) or a categorical
    /// column of each bundle.
    #[arg(long, default_value = cellsymphony::work::cohort::PREDICTED)]
    labels: String,
    /// Spatial graph for --step enrich: radius=R (µm), knn=K or delaunay.
    #[arg(long, default_value = "radius=30")]
    nhood: String,
    #[arg(long, default_value_t = 1000)]
    perms: usize,
    #[arg(long)]
    json: bool,
}

fn parse_step(text: &str) -> Result<cellsymphony::cli::cohort::Step, String> {
    text.parse()
}

fn parse_shard(text: &str) -> Result<cs_cohort::Shard, String> {
    text.parse()
}

/// The flags of `cellsymphony cohort summarise`.
#[derive(clap::Args)]
struct CohortSummariseArgs {
    manifest: PathBuf,
    /// The folder `cohort run` wrote to; the summary is written there too.
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    json: bool,
}

impl CohortRunArgs {
    fn run(self) -> anyhow::Result<String> {
        let options = cellsymphony::cli::cohort::RunOptions {
            manifest: self.manifest,
            step: self.step,
            out: self.out,
            model: self.model,
            shard: self.shard,
            samples: trimmed(self.sample),
            device: self.device,
            seed: self.seed,
            morphology: self.morphology.choice()?,
            k: self.k,
            epochs: self.epochs,
            genes: trimmed(self.genes),
            labels: self.labels,
            nhood: self.nhood,
            perms: self.perms,
        };
        cellsymphony::cli::cohort::run(&options, self.json)
    }
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Model throughput: patch extraction + morphology encoder (cells/s), gene PCA, one
    /// dual-modality training epoch, prediction, and k-means on N x 128 points.
    Models(ModelsBenchArgs),
    /// Load a Xenium bundle (timed) and render its cell overlay headless: zoomed out, panning with
    /// markers, panning at 40x with polygons; recolour cost and memory.
    Cells(CellsBenchArgs),
    /// Scripted pan/zoom replay rendered headless; reports median and p95 frame times.
    Replay(ReplayBenchArgs),
    /// The same replay over a bundle's morphology stains (every channel) with its cells on top.
    Morphology(MorphologyBenchArgs),
    /// Build a bundle's transcript index (time, peak memory), open it cached, and render one gene
    /// over the whole tissue and all genes at 40x: first complete frames, frame times, memory.
    Transcripts(TranscriptsBenchArgs),
}

/// A report as JSON, or as `text` writes it.
fn report<T: serde::Serialize>(report: &T, json: bool, text: fn(&T) -> String) -> anyhow::Result<String> {
    Ok(if json {
        serde_json::to_string_pretty(report)?
    } else {
        text(report)
    })
}

impl Command {
    /// Runs the subcommand; returns what to print.
    fn run(self) -> anyhow::Result<String> {
        match self {
            Command::Info(args) => cellsymphony::cli::info(&args.path, args.json),
            Command::Synth(args) => args.run(),
            Command::Enrich(args) => args.run(),
            Command::Embed(args) => args.run(),
            Command::Train(args) => args.run(),
            Command::Evaluate(args) => args.run(),
            Command::Virtual(args) => args.run(),
            Command::Predict(args) => args.run(),
            Command::Cluster(args) => args.run(),
            Command::Groups(args) => cellsymphony::cli::groups::groups(
                &cellsymphony::cli::groups::GroupsOptions {
                    xenium: args.xenium,
                    column: args.column,
                    from: args.from,
                    out: args.out,
                },
                args.json,
            ),
            Command::Cohort {
                which: CohortCommand::Run(args),
            } => args.run(),
            Command::Cohort {
                which: CohortCommand::Summarise(args),
            } => cellsymphony::cli::cohort::summarise(&args.manifest, &args.out, args.json),
            Command::Bench {
                which: BenchCommand::Models(args),
            } => args.run(),
            Command::Bench {
                which: BenchCommand::Cells(args),
            } => args.run(),
            Command::Bench {
                which: BenchCommand::Replay(args),
            } => args.run(),
            Command::Bench {
                which: BenchCommand::Morphology(args),
            } => args.run(),
            Command::Bench {
                which: BenchCommand::Transcripts(args),
            } => args.run(),
        }
    }
}

impl SynthArgs {
    fn run(self) -> anyhow::Result<String> {
        let options = cs_synth::SynthOptions {
            cells: self.cells,
            seed: self.seed,
            write_slide: !self.no_slide,
            write_transcripts: self.transcripts,
            slide_layout: if self.he_ome_tiff {
                cs_synth::SlideLayout::OmeTiff
            } else {
                cs_synth::SlideLayout::GenericTiff
            },
            write_morphology: self.morphology,
            morphology_um_per_px: self.morphology_um_per_px,
            xoa: self.xoa,
            difficulty: self.difficulty,
            xenium_region: self.xenium_region,
            ..Default::default()
        };
        cellsymphony::cli::synth(&options, &self.out, self.json)
    }
}

impl EnrichArgs {
    fn run(self) -> anyhow::Result<String> {
        let options = cellsymphony::cli::EnrichOptions {
            xenium: self.xenium,
            labels: self.labels,
            selection: self.selection,
            alignment: self.alignment,
            nhood: self.nhood,
            perms: self.perms,
            seed: self.seed,
        };
        cellsymphony::cli::enrich(&options, self.json)
    }
}

impl EmbedArgs {
    fn run(self) -> anyhow::Result<String> {
        let bundle = self.bundle.try_into()?;
        cellsymphony::cli::models::embed(&bundle, &self.out, self.seed, &self.device, self.json)
    }
}

impl TrainArgs {
    fn run(self) -> anyhow::Result<String> {
        let args = cellsymphony::cli::models::TrainArgs {
            bundle: self.bundle.try_into()?,
            h5ad: self.h5ad,
            h5ad_raw: self.raw,
            labels: self.labels,
            variant: self.variant.parse().map_err(anyhow::Error::msg)?,
            training: self.training.settings(self.seed)?,
            d_model: self.training.d_model,
            n_layers: self.training.layers,
            out: self.out,
            device: self.device,
        };
        cellsymphony::cli::models::train(&args, self.json)
    }
}

impl PredictArgs {
    fn run(self) -> anyhow::Result<String> {
        let bundle = self.bundle.try_into()?;
        cellsymphony::cli::models::predict_cmd(&bundle, &self.model, &self.out, &self.device, self.json)
    }
}

impl ClusterArgs {
    fn run(self) -> anyhow::Result<String> {
        let args = cellsymphony::cli::models::ClusterArgs {
            bundle: self.bundle.try_into()?,
            k: self.k,
            labels: self.labels,
            model_out: self.model_out,
            out: self.out,
            epochs: self.epochs,
            seed: self.seed,
            device: self.device,
        };
        cellsymphony::cli::models::cluster(&args, self.json)
    }
}

impl ModelsBenchArgs {
    fn run(self) -> anyhow::Result<String> {
        use cellsymphony::bench::models::{ModelBenchOptions, format_report, models};
        let options = ModelBenchOptions {
            bundle: self.bundle.try_into()?,
            cells: self.cells,
            kmeans_points: self.kmeans_points,
            device: self.device,
            vit_seeded: self
                .vit_seeded
                .map(|v| v.parse())
                .transpose()
                .map_err(|e: String| anyhow::anyhow!("--vit-seeded: {e}"))?,
            vit_cells: self.vit_cells,
        };
        report(&models(&options)?, self.json, format_report)
    }
}

impl CellsBenchArgs {
    fn run(self) -> anyhow::Result<String> {
        use cellsymphony::bench::cells::{CellBenchOptions, cells, format_report};
        let options = CellBenchOptions {
            xenium: self.xenium,
            frames: self.frames,
            width: self.render.width.max(16),
            height: self.render.height.max(16),
            prefer_cpu: self.render.cpu,
            png: self.png,
        };
        report(&cells(&options)?, self.render.json, format_report)
    }
}

impl ReplayBenchArgs {
    fn run(self) -> anyhow::Result<String> {
        use cellsymphony::bench::replay::{ReplayOptions, format_report, replay};
        let options = ReplayOptions {
            slide: self.slide,
            frames: self.frames.max(3),
            width: self.render.width.max(16),
            height: self.render.height.max(16),
            prefer_cpu: self.render.cpu,
            png: self.png,
        };
        report(&replay(&options)?, self.render.json, format_report)
    }
}

impl TranscriptsBenchArgs {
    fn run(self) -> anyhow::Result<String> {
        use cellsymphony::bench::transcripts::{TranscriptBenchOptions, format_report, transcripts};
        let options = TranscriptBenchOptions {
            xenium: self.xenium,
            frames: self.frames.max(3),
            width: self.render.width.max(16),
            height: self.render.height.max(16),
            prefer_cpu: self.render.cpu,
            cache_dir: self.cache_dir,
            png_overview: self.png_overview,
            png_40x: self.png_40x,
        };
        report(&transcripts(&options)?, self.render.json, format_report)
    }
}

impl MorphologyBenchArgs {
    fn run(self) -> anyhow::Result<String> {
        use cellsymphony::bench::morphology::{MorphologyBenchOptions, format_report, morphology};
        let options = MorphologyBenchOptions {
            xenium: self.xenium,
            frames: self.frames.max(3),
            width: self.render.width.max(16),
            height: self.render.height.max(16),
            prefer_cpu: self.render.cpu,
            png: self.png,
        };
        report(&morphology(&options)?, self.render.json, format_report)
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(command) = cli.command {
        println!("{}", command.run()?);
        return Ok(());
    }
    let positional = cli.slide.or(cli.slide_flag);
    let is_session = |p: &PathBuf| {
        p.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case(cellsymphony::io::session_file::SESSION_EXTENSION))
    };
    let (session, slide) = match positional {
        Some(p) if is_session(&p) => (Some(p), None),
        other => (cli.session, other),
    };
    let startup = cellsymphony::app::StartupOptions {
        slide,
        xenium: cli.xenium,
        alignment: cli.alignment,
        demo: cli.demo,
        session,
        cohort: cli.cohort,
        autosave_dir: if cli.no_autosave {
            None
        } else {
            eframe::storage_dir("cellsymphony").map(|dir| dir.join("autosave"))
        },
    };
    eframe::run_native(
        "CellSymphony Viewer",
        cellsymphony::app::native_options(),
        Box::new(move |cc| Ok(Box::new(cellsymphony::app::ViewerApp::new(cc, startup)))),
    )
    .map_err(|e| anyhow::anyhow!("the viewer window could not start: {e}"))
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,wgpu_core=warn,wgpu_hal=warn,naga=warn"),
    )
    .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error)
            if error
                .downcast_ref::<cellsymphony::cli::cohort::SamplesFailed>()
                .is_some() =>
        {
            // cohort run: the table, then the number of samples that failed as the exit status.
            let failed = error.downcast_ref::<cellsymphony::cli::cohort::SamplesFailed>();
            let (report, n) = failed.map_or((String::new(), 1), |f| (f.report.clone(), f.failed));
            println!("{report}");
            eprintln!("error: {error}");
            ExitCode::from(n.clamp(1, 100) as u8)
        }
        Err(error) => {
            // One line: the whole cause chain, newlines flattened.
            let message = format!("{error:#}").replace('\n', " ");
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
