//! The built-in demo: synthetic tissue (Xenium bundle, H&E slide, alignment) generated once by
//! `cs_synth` into the user's cache folder and reused afterwards.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Cells in the demo tissue: enough to show niches and statistics, quick to generate once.
pub const DEMO_CELLS: usize = 40_000;
pub const DEMO_SEED: u64 = 7;
/// µm per pixel of the demo's morphology images.
pub const DEMO_MORPHOLOGY_UM_PER_PX: f64 = 0.85;
/// Part of the cache folder's name (the generator also checks its version and options).
const DEMO_VERSION: u32 = 3;

/// The files the demo opens.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoFiles {
    pub bundle_dir: PathBuf,
    pub slide: Option<PathBuf>,
    pub alignment: Option<PathBuf>,
}

/// `$CELLSYMPHONY_DEMO_DIR`, else `$XDG_CACHE_HOME/cellsymphony/demo-vN`, else `~/.cache/...`,
/// else a folder in the temp dir; the hard benchmark's beside it, with `-hard` added.
pub fn demo_dir(difficulty: cs_synth::Difficulty) -> PathBuf {
    let suffix = match difficulty {
        cs_synth::Difficulty::Standard => "",
        cs_synth::Difficulty::Hard => "-hard",
    };
    if let Some(dir) = std::env::var_os("CELLSYMPHONY_DEMO_DIR") {
        let mut dir = dir;
        dir.push(suffix);
        return PathBuf::from(dir);
    }
    cache_root().join(format!("demo-v{DEMO_VERSION}-{DEMO_CELLS}-{DEMO_SEED}{suffix}"))
}

/// `$XDG_CACHE_HOME/cellsymphony`, else `~/.cache/cellsymphony`, else a folder in the temp dir.
pub fn cache_root() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("cellsymphony")
}

fn demo_options(difficulty: cs_synth::Difficulty) -> cs_synth::SynthOptions {
    cs_synth::SynthOptions {
        difficulty,
        cells: DEMO_CELLS,
        seed: DEMO_SEED,
        write_slide: true,
        write_transcripts: true,
        // 10x's layout: the H&E as an OME-TIFF with its pyramid in SubIFDs.
        slide_layout: cs_synth::SlideLayout::OmeTiff,
        write_morphology: true,
        // Four times Xenium's 0.2125 µm: the demo's stains stay quick to generate and small.
        morphology_um_per_px: DEMO_MORPHOLOGY_UM_PER_PX,
        ..Default::default()
    }
}

fn files_of(summary: cs_synth::SynthSummary) -> DemoFiles {
    DemoFiles {
        bundle_dir: summary.bundle_dir,
        slide: summary.slide_path,
        alignment: summary.alignment_csv,
    }
}

/// Generates the demo into `dir` unless a complete one made with the same options is there
/// already. Runs on a worker thread.
pub fn prepare_demo(
    dir: &Path,
    difficulty: cs_synth::Difficulty,
    progress: &dyn Fn(f32, &str),
    cancelled: &dyn Fn() -> bool,
) -> anyhow::Result<DemoFiles> {
    let options = demo_options(difficulty);
    if let Some(summary) = cs_synth::cached(&options, dir) {
        return Ok(files_of(summary));
    }
    log::info!("generating the demo tissue ({DEMO_CELLS} cells) in {}", dir.display());
    let summary = cs_synth::generate(&options, dir, progress, cancelled)
        .with_context(|| format!("generating the demo tissue in {}", dir.display()))?;
    Ok(files_of(summary))
}
