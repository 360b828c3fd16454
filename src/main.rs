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
    /// Slide (or session file, `.cellsymphony`) to open in the viewer.
    slide: Option<PathBuf>,
    /// Slide to open (same as the positional argument).
    #[arg(long = "slide", value_name = "FILE", conflicts_with = "slide")]
    slide_flag: Option<PathBuf>,
    /// Xenium output folder to overlay.
    #[arg(long, value_name = "DIR")]
    xenium: Option<PathBuf>,
    /// Xenium Explorer alignment CSV (H&E pixel -> Xenium morphology pixel).
    #[arg(long, value_name = "CSV")]
    alignment: Option<PathBuf>,
    /// Open the built-in synthetic demo tissue (generated once into the cache folder).
    #[arg(long)]
    demo: bool,
    /// Session file to open (saved from the viewer's File menu).
    #[arg(long, value_name = "FILE")]
    session: Option<PathBuf>,
    /// Do not autosave the session (nor offer to restore one after a crash).
    #[arg(long)]
    no_autosave: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Print a slide's levels, resolution, objective and associated images.
    Info {
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write a synthetic tissue: a Xenium-layout bundle, an H&E pyramid TIFF and its alignment.
    Synth {
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
        #[arg(long)]
        json: bool,
    },
    /// Composition of a selection against the rest (Fisher exact, BH) and neighbourhood
    /// enrichment (squidpy-compatible permutation z-scores).
    Enrich {
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
    },
    /// Per-cell features: 50 gene PCs (log1p CP10k) or imported embeddings, and morphology from
    /// the built-in encoder (from the H&E when --slide is given, else from shapes) or a ViT, as
    /// parquet keyed by cell_id.
    Embed {
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
    },
    /// Train the fusion classifier (AdamW, class-weighted cross-entropy, seeded 80/20 split) and
    /// save it as a model folder (model.json + weights.bpk).
    Train {
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
        #[arg(long, default_value_t = 20)]
        epochs: usize,
        #[arg(long, default_value_t = 3e-5)]
        lr: f64,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        #[arg(long, default_value_t = 0.01)]
        weight_decay: f32,
        #[arg(long, default_value_t = 64)]
        d_model: usize,
        #[arg(long, default_value_t = 6)]
        layers: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        /// gpu or cpu.
        #[arg(long, default_value = "gpu")]
        device: String,
        #[arg(long)]
        json: bool,
    },
    /// Predict every cell of a bundle with a saved classifier; writes cell_id, predicted_type,
    /// confidence as parquet.
    Predict {
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
    },
    /// Morphology clusters: contrastive alignment of genes and morphology, k-means on the
    /// morphology projection; writes cell_id, morphology_cluster, map_x, map_y as parquet.
    Cluster {
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
    },
    /// Benchmarks that need the whole app.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
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

impl TryFrom<BundleFlags> for cellsymphony::cli::models::BundleArgs {
    type Error = anyhow::Error;
    fn try_from(f: BundleFlags) -> anyhow::Result<Self> {
        let readout = f
            .readout
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--readout: {e}"))?;
        Ok(Self {
            xenium: f.xenium,
            slide: f.slide,
            alignment: f.alignment,
            gene_embeddings: f.gene_embeddings,
            morphology: cs_models::pipeline::MorphologyChoice::parse(&f.morphology, f.morphology_weights, readout)?,
        })
    }
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Model throughput: patch extraction + morphology encoder (cells/s), gene PCA, one
    /// dual-modality training epoch, prediction, and k-means on N x 128 points.
    Models {
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
    },
    /// Load a Xenium bundle (timed) and render its cell overlay headless: zoomed out, panning with
    /// markers, panning at 40x with polygons; recolour cost and memory.
    Cells {
        #[arg(long)]
        xenium: PathBuf,
        #[arg(long, default_value_t = 120)]
        frames: usize,
        #[arg(long, default_value_t = 3840)]
        width: u32,
        #[arg(long, default_value_t = 2160)]
        height: u32,
        /// Prefer a software adapter (lavapipe) over a GPU.
        #[arg(long)]
        cpu: bool,
        /// Save the overview frame as PNG.
        #[arg(long)]
        png: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Scripted pan/zoom replay rendered headless; reports median and p95 frame times.
    Replay {
        #[arg(long)]
        slide: PathBuf,
        #[arg(long, default_value_t = 300)]
        frames: usize,
        #[arg(long, default_value_t = 3840)]
        width: u32,
        #[arg(long, default_value_t = 2160)]
        height: u32,
        /// Prefer a software adapter (lavapipe) over a GPU.
        #[arg(long)]
        cpu: bool,
        /// Save the last frame as PNG.
        #[arg(long)]
        png: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Info { path, json }) => {
            println!("{}", cellsymphony::cli::info(&path, json)?);
            Ok(())
        }
        Some(Command::Bench {
            which:
                BenchCommand::Replay {
                    slide,
                    frames,
                    width,
                    height,
                    cpu,
                    png,
                    json,
                },
        }) => {
            let options = cellsymphony::bench::replay::ReplayOptions {
                slide,
                frames: frames.max(3),
                width: width.max(16),
                height: height.max(16),
                prefer_cpu: cpu,
                png,
            };
            let report = cellsymphony::bench::replay::replay(&options)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{}", cellsymphony::bench::replay::format_report(&report));
            }
            Ok(())
        }
        Some(Command::Bench {
            which:
                BenchCommand::Cells {
                    xenium,
                    frames,
                    width,
                    height,
                    cpu,
                    png,
                    json,
                },
        }) => {
            let options = cellsymphony::bench::cells::CellBenchOptions {
                xenium,
                frames,
                width: width.max(16),
                height: height.max(16),
                prefer_cpu: cpu,
                png,
            };
            let report = cellsymphony::bench::cells::cells(&options)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{}", cellsymphony::bench::cells::format_report(&report));
            }
            Ok(())
        }
        Some(Command::Bench {
            which:
                BenchCommand::Models {
                    bundle,
                    cells,
                    kmeans_points,
                    vit_seeded,
                    vit_cells,
                    device,
                    json,
                },
        }) => {
            let options = cellsymphony::bench::models::ModelBenchOptions {
                bundle: bundle.try_into()?,
                cells,
                kmeans_points,
                device,
                vit_seeded: vit_seeded
                    .map(|v| v.parse())
                    .transpose()
                    .map_err(|e: String| anyhow::anyhow!("--vit-seeded: {e}"))?,
                vit_cells,
            };
            let report = cellsymphony::bench::models::models(&options)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{}", cellsymphony::bench::models::format_report(&report));
            }
            Ok(())
        }
        Some(Command::Enrich {
            xenium,
            labels,
            selection,
            alignment,
            nhood,
            perms,
            seed,
            json,
        }) => {
            let options = cellsymphony::cli::EnrichOptions {
                xenium,
                labels,
                selection,
                alignment,
                nhood,
                perms,
                seed,
            };
            println!("{}", cellsymphony::cli::enrich(&options, json)?);
            Ok(())
        }
        Some(Command::Embed {
            bundle,
            out,
            seed,
            device,
            json,
        }) => {
            println!(
                "{}",
                cellsymphony::cli::models::embed(&bundle.try_into()?, &out, seed, &device, json)?
            );
            Ok(())
        }
        Some(Command::Train {
            bundle,
            h5ad,
            raw,
            labels,
            variant,
            epochs,
            lr,
            batch,
            weight_decay,
            d_model,
            layers,
            seed,
            out,
            device,
            json,
        }) => {
            let args = cellsymphony::cli::models::TrainArgs {
                bundle: bundle.try_into()?,
                h5ad,
                h5ad_raw: raw,
                labels,
                variant: variant.parse().map_err(anyhow::Error::msg)?,
                training: cs_models::train::TrainingSettings {
                    epochs,
                    batch_size: batch,
                    learning_rate: lr,
                    weight_decay,
                    seed,
                    ..Default::default()
                },
                d_model,
                n_layers: layers,
                out,
                device,
            };
            println!("{}", cellsymphony::cli::models::train(&args, json)?);
            Ok(())
        }
        Some(Command::Predict {
            bundle,
            model,
            out,
            device,
            json,
        }) => {
            println!(
                "{}",
                cellsymphony::cli::models::predict_cmd(&bundle.try_into()?, &model, &out, &device, json)?
            );
            Ok(())
        }
        Some(Command::Cluster {
            bundle,
            k,
            labels,
            model_out,
            epochs,
            seed,
            out,
            device,
            json,
        }) => {
            let args = cellsymphony::cli::models::ClusterArgs {
                bundle: bundle.try_into()?,
                k,
                labels,
                model_out,
                out,
                epochs,
                seed,
                device,
            };
            let text = cellsymphony::cli::models::cluster(&args, json)?;
            println!("{text}");
            Ok(())
        }
        Some(Command::Synth {
            cells,
            out,
            seed,
            no_slide,
            transcripts,
            json,
        }) => {
            let options = cs_synth::SynthOptions {
                cells,
                seed,
                write_slide: !no_slide,
                write_transcripts: transcripts,
                ..Default::default()
            };
            println!("{}", cellsymphony::cli::synth(&options, &out, json)?);
            Ok(())
        }
        None => {
            let positional = cli.slide.or(cli.slide_flag);
            let is_session = |p: &PathBuf| {
                p.extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case(cellsymphony::io::session_file::SESSION_EXTENSION))
            };
            let (session, slide) = match positional {
                Some(p) if is_session(&p) => (Some(p), None),
                other => (cli.session, other),
            };
            let startup = cellsymphony::StartupOptions {
                slide,
                xenium: cli.xenium,
                alignment: cli.alignment,
                demo: cli.demo,
                session,
                autosave_dir: if cli.no_autosave {
                    None
                } else {
                    eframe::storage_dir("cellsymphony").map(|dir| dir.join("autosave"))
                },
            };
            eframe::run_native(
                "CellSymphony Viewer",
                cellsymphony::native_options(),
                Box::new(move |cc| Ok(Box::new(cellsymphony::ViewerApp::new(cc, startup)))),
            )
            .map_err(|e| anyhow::anyhow!("the viewer window could not start: {e}"))
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,wgpu_core=warn,wgpu_hal=warn,naga=warn"),
    )
    .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: the whole cause chain, newlines flattened.
            let message = format!("{error:#}").replace('\n', " ");
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
