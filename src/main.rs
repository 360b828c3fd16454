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
    /// Slide to open in the viewer.
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
    /// Benchmarks that need the whole app.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
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
            let options = cellsymphony::bench::ReplayOptions {
                slide,
                frames: frames.max(3),
                width: width.max(16),
                height: height.max(16),
                prefer_cpu: cpu,
                png,
            };
            let report = cellsymphony::bench::replay(&options)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{}", cellsymphony::bench::format_report(&report));
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
            let options = cellsymphony::bench_cells::CellBenchOptions {
                xenium,
                frames,
                width: width.max(16),
                height: height.max(16),
                prefer_cpu: cpu,
                png,
            };
            let report = cellsymphony::bench_cells::cells(&options)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{}", cellsymphony::bench_cells::format_report(&report));
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
            let startup = cellsymphony::StartupOptions {
                slide: cli.slide.or(cli.slide_flag),
                xenium: cli.xenium,
                alignment: cli.alignment,
                demo: cli.demo,
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
