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
    /// Benchmarks that need the whole app.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
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
        None => {
            let startup = cellsymphony::StartupOptions { slide: cli.slide };
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
