//! Synthetic demo tissue for CellSymphony: a real Xenium-layout output bundle plus a pyramidal
//! tiled TIFF "H&E" image of the same cells and the H&E-to-Xenium alignment CSV, deterministic
//! by seed.
//!
//! [`generate`] writes into one folder:
//! - `xenium/`: `experiment.xenium`, `cells.parquet`, `cell_boundaries.parquet`,
//!   `nucleus_boundaries.parquet`, `cell_feature_matrix/` (MEX), `analysis/clustering/
//!   {gene_expression_graphclust, synthetic_cell_type}/clusters.csv`, and `transcripts.parquet`
//!   when asked for;
//! - `he.tiff` (JPEG-tiled pyramid, OpenSlide "generic-tiff") and `he_alignment.csv`;
//! - `SYNTH_OK` last: JSON of the options and summary, so callers can tell a complete cache.
//!
//! The tissue has tumour nests (epithelial, dense, large pleomorphic nuclei), stroma (spindle
//! fibroblasts along a flow field, macrophages), lymphoid aggregates (B-cell centres, T-cell
//! mantles), vessels lined by flat endothelial cells with red cells in their lumens, and immune
//! cells at tumour fronts; expression and H&E appearance both follow the type, so models can
//! learn type from either.
//!
//! Modules: `tissue` lays out niches and places cells, `cells` shapes them,
//! `expression` samples counts, `bundle`/`transcripts` write the Xenium files, `slide`/`paint`/
//! `tiff` render and write the H&E, `rng`/`noise`/`geometry` are the shared maths.

mod band_pyramid;
mod bundle;
mod cells;
mod control;
mod error;
mod expression;
mod feature_h5;
mod files;
mod geometry;
mod morphology;
mod noise;
mod paint;
mod rng;
mod slide;
mod tiff;
mod tissue;
mod transcripts;
mod xoa;

use std::path::{Path, PathBuf};

pub use error::SynthError;
pub use xoa::XoaVersion;

use control::Control;

/// Ground-truth cell types, in the order used everywhere (codes are indices into this).
pub const CELL_TYPES: [&str; 6] = [
    "B cells",
    "Endothelial",
    "Epithelial",
    "Fibroblasts",
    "Macrophages",
    "T cells",
];

/// Ground-truth labels of a [`Difficulty::Hard`] tissue: T cells split into CD4 (helper and
/// regulatory) and CD8 (cytotoxic) subsets, which share all but a few sparse markers.
pub const HARD_CELL_TYPES: [&str; 7] = [
    "B cells",
    "Endothelial",
    "Epithelial",
    "Fibroblasts",
    "Macrophages",
    "CD4 T cells",
    "CD8 T cells",
];

/// How hard the tissue makes cell typing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Difficulty {
    /// Every type has strong markers of its own and a shape of its own: easy by construction.
    #[default]
    Standard,
    /// A benchmark near real Xenium data: sparse counts with dropout, types of one lineage
    /// sharing most of their markers (T-cell subsets; B cells, T cells and macrophages; stromal
    /// cells), shapes that vary more and overlap between types (activated fibroblasts, small
    /// monocyte-like macrophages, plump endothelium), more segmentation spill-over and 4% of
    /// labels wrong. Labels are [`HARD_CELL_TYPES`].
    Hard,
}

impl Difficulty {
    pub fn name(self) -> &'static str {
        match self {
            Difficulty::Standard => "standard",
            Difficulty::Hard => "hard",
        }
    }

    /// The label names of `synthetic_cell_type`, in code order.
    pub fn cell_types(self) -> &'static [&'static str] {
        match self {
            Difficulty::Standard => &CELL_TYPES,
            Difficulty::Hard => &HARD_CELL_TYPES,
        }
    }
}

impl std::str::FromStr for Difficulty {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "standard" => Ok(Difficulty::Standard),
            "hard" => Ok(Difficulty::Hard),
            other => Err(format!("difficulty {other:?}: use standard or hard")),
        }
    }
}

/// Name of the bundle folder inside the output folder.
pub const BUNDLE_DIR: &str = "xenium";
/// Names of the slide and its alignment inside the output folder.
pub const SLIDE_FILE: &str = "he.tiff";
/// The H&E in 10x's post-Xenium layout (`*_he_image.ome.tif`): OME-TIFF, pyramid in SubIFDs.
pub const OME_SLIDE_FILE: &str = "he_image.ome.tif";

/// How the H&E pyramid is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlideLayout {
    /// `he.tiff`: one page per level (OpenSlide's generic-tiff).
    #[default]
    GenericTiff,
    /// `he_image.ome.tif`: OME-XML, reduced levels in SubIFDs, as 10x writes its H&E.
    OmeTiff,
}

impl SlideLayout {
    pub fn file_name(self) -> &'static str {
        match self {
            SlideLayout::GenericTiff => SLIDE_FILE,
            SlideLayout::OmeTiff => OME_SLIDE_FILE,
        }
    }

    fn name(self) -> &'static str {
        match self {
            SlideLayout::GenericTiff => "generic-tiff",
            SlideLayout::OmeTiff => "ome-tiff",
        }
    }
}
pub const ALIGNMENT_FILE: &str = "he_alignment.csv";
/// Written last; its presence means the folder is complete.
pub const DONE_FILE: &str = "SYNTH_OK";

#[derive(Debug, Clone, PartialEq)]
pub struct SynthOptions {
    /// Number of cells (exactly this many are written).
    pub cells: usize,
    pub seed: u64,
    /// Write `he.tiff` and `he_alignment.csv`.
    pub write_slide: bool,
    /// Write `xenium/transcripts.parquet` (one row per count; large).
    pub write_transcripts: bool,
    /// Micrometres per level-0 pixel of the H&E slide.
    pub slide_um_per_px: f64,
    pub slide_layout: SlideLayout,
    /// Write `xenium/morphology_focus/` (four 16-bit stains, XOA 2.x layout).
    pub write_morphology: bool,
    /// Micrometres per morphology pixel (a Xenium run's is 0.2125; coarser keeps the demo small).
    pub morphology_um_per_px: f64,
    /// Imitate this XOA release's file layout ([`XoaVersion`]); None: the generator's own.
    pub xoa: Option<XoaVersion>,
    pub difficulty: Difficulty,
    /// The share of the tissue's width (from its left edge, 0.1 to 1) that the Xenium run
    /// measured: only the cells there are in the bundle (cells, boundaries, counts, transcripts,
    /// morphology images), while the H&E shows the whole tissue, as on a real slide whose
    /// section is larger than the Xenium region. None: every cell is measured.
    pub xenium_region: Option<f64>,
}

impl Default for SynthOptions {
    fn default() -> Self {
        Self {
            cells: 20_000,
            seed: 1,
            write_slide: true,
            write_transcripts: false,
            slide_um_per_px: 0.5,
            slide_layout: SlideLayout::GenericTiff,
            write_morphology: false,
            morphology_um_per_px: 0.2125,
            xoa: None,
            difficulty: Difficulty::Standard,
            xenium_region: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SynthSummary {
    pub cells: usize,
    /// Gene features (controls not counted).
    pub genes: usize,
    pub bundle_dir: PathBuf,
    pub slide_path: Option<PathBuf>,
    pub alignment_csv: Option<PathBuf>,
    /// Width and height of the tissue box in world micrometres.
    pub tissue_size_um: [f64; 2],
    /// Level-0 width and height of the slide.
    pub slide_size_px: Option<[u64; 2]>,
}

fn validate(options: &SynthOptions) -> Result<(), SynthError> {
    let invalid = |reason: String| Err(SynthError::InvalidOptions { reason });
    if options.cells < 10 {
        return invalid(format!("{} cells: at least 10 are needed", options.cells));
    }
    if options.cells > 20_000_000 {
        return invalid(format!("{} cells: at most 20,000,000 are supported", options.cells));
    }
    if !(options.morphology_um_per_px.is_finite() && (0.1..=10.0).contains(&options.morphology_um_per_px)) {
        return invalid(format!(
            "{} µm per morphology pixel: must be between 0.1 and 10",
            options.morphology_um_per_px
        ));
    }
    if let Some(share) = options.xenium_region
        && !(share.is_finite() && (0.1..=1.0).contains(&share))
    {
        return invalid(format!(
            "a Xenium region of {share} of the tissue's width: must be between 0.1 and 1"
        ));
    }
    if !(options.slide_um_per_px.is_finite() && (0.1..=10.0).contains(&options.slide_um_per_px)) {
        return invalid(format!(
            "{} µm per slide pixel: must be between 0.1 and 10",
            options.slide_um_per_px
        ));
    }
    Ok(())
}

/// Generates the synthetic tissue into `out_dir` (created if needed). `progress` gets the
/// fraction done (0..1) and the current stage; `cancelled` is polled between steps, and when it
/// turns true the run stops with [`SynthError::Cancelled`] leaving no `SYNTH_OK`. Both are only
/// called from the calling thread.
pub fn generate(
    options: &SynthOptions,
    out_dir: &Path,
    progress: &dyn Fn(f32, &str),
    cancelled: &dyn Fn() -> bool,
) -> Result<SynthSummary, SynthError> {
    validate(options)?;
    let control = Control::new(progress, cancelled);
    let result = run(options, out_dir, &control);
    if result.is_err() {
        files::remove_part_files(out_dir);
    }
    result
}

fn run(options: &SynthOptions, out_dir: &Path, control: &Control) -> Result<SynthSummary, SynthError> {
    let seed = options.seed;
    let bundle_dir = out_dir.join(BUNDLE_DIR);
    std::fs::create_dir_all(&bundle_dir).map_err(|e| error::io_error(&bundle_dir, e))?;
    // Whatever was here is incomplete from now on.
    files::remove_if_exists(&out_dir.join(DONE_FILE))?;
    let (slide_share, transcript_share, morphology_share) = (
        if options.write_slide { 0.45 } else { 0.0 },
        if options.write_transcripts { 0.15 } else { 0.0 },
        if options.write_morphology { 0.2 } else { 0.0 },
    );
    let bundle_share = 1.0 - slide_share - transcript_share - morphology_share;
    let at = |f: f32| f * bundle_share;

    control.stage(0.0, at(0.25), "Laying out tissue");
    let (layout, cells) = build_model(options, control, at(0.25), at(0.4))?;

    control.stage(at(0.4), at(0.55), "Sampling gene expression");
    let counts = expression::sample_counts(seed, &cells, options.difficulty, control)?;
    // The Xenium run measured only its region; the H&E below shows every cell.
    let (measured_cells, counts) = match options.xenium_region.filter(|&share| share < 1.0) {
        Some(share) => {
            let right_edge_um = layout.origin_um[0] + share * layout.size_um[0];
            let rows: Vec<usize> = (0..cells.len())
                .filter(|&i| cells[i].centroid_in_world[0] < right_edge_um)
                .collect();
            if rows.len() < 10 {
                return Err(SynthError::InvalidOptions {
                    reason: format!(
                        "a Xenium region of {share} of the tissue's width holds {} cells: at least 10 are needed",
                        rows.len()
                    ),
                });
            }
            let subset: Vec<cells::Cell> = rows.iter().map(|&i| cells[i].clone()).collect();
            (Some(subset), counts.subset(&rows))
        }
        None => (None, counts),
    };
    let measured: &[cells::Cell] = measured_cells.as_deref().unwrap_or(&cells);

    control.stage(at(0.55), at(1.0), "Writing the Xenium bundle");
    let transcripts_total: u64 = counts.count.iter().map(|&c| u64::from(c)).sum();
    let xoa = options.xoa;
    bundle::write_cells(&bundle_dir, seed, measured, &counts, xoa)?;
    control.check()?;
    control.report(0.1);
    bundle::write_boundaries(&bundle_dir, seed, measured, bundle::Boundary::Cell, xoa, control)?;
    control.report(0.35);
    bundle::write_boundaries(&bundle_dir, seed, measured, bundle::Boundary::Nucleus, xoa, control)?;
    control.report(0.55);
    bundle::write_mex(&bundle_dir, measured, &counts, xoa, control)?;
    let protein_h5 = bundle_dir.join("cell_feature_matrix.h5");
    if xoa == Some(XoaVersion::V4) {
        // The protein assay's rows live in the HDF5 matrix (with the MEX folder's features).
        let barcodes = bundle::barcodes(measured.len(), xoa);
        let features = bundle::matrix_features(xoa);
        feature_h5::write_protein_h5(&bundle_dir, seed, measured, &barcodes, &features, &counts)?;
    } else {
        files::remove_if_exists(&protein_h5)?;
    }
    control.report(0.9);
    let graph = bundle::graph_clusters(seed, measured);
    bundle::write_clusters(
        &bundle_dir,
        "gene_expression_graphclust",
        graph.iter().map(|c| c.to_string()),
        xoa,
    )?;
    bundle::write_clusters(
        &bundle_dir,
        "synthetic_cell_type",
        bundle::type_names(seed, measured, options.difficulty),
        xoa,
    )?;
    let analysis_zarr = bundle_dir.join(cs_xenium::explorer::ANALYSIS_ZARR_ZIP);
    let cells_zarr = bundle_dir.join(bundle::CELLS_ZARR_ZIP);
    if let Some(xoa) = xoa {
        // A real run's Explorer files: its clustering as analysis.zarr.zip cell groups, and
        // cells.zarr.zip (which spatialdata-io opens before anything else).
        bundle::write_analysis_zarr(&analysis_zarr, &graph)?;
        bundle::write_cells_zarr(&cells_zarr, seed, measured, xoa)?;
    } else {
        files::remove_if_exists(&analysis_zarr)?;
        files::remove_if_exists(&cells_zarr)?;
    }
    bundle::write_experiment(&bundle_dir, options, measured.len(), transcripts_total)?;
    control.check()?;

    let transcripts_path = bundle_dir.join("transcripts.parquet");
    if options.write_transcripts {
        control.stage(bundle_share, bundle_share + transcript_share, "Writing transcripts");
        transcripts::write_transcripts(seed, &bundle_dir, measured, &counts, xoa, control)?;
    } else {
        files::remove_if_exists(&transcripts_path)?;
    }
    drop(counts);

    let morphology_dir = bundle_dir.join(morphology::MORPHOLOGY_DIR);
    if options.write_morphology {
        let start = bundle_share + transcript_share;
        control.stage(start, start + morphology_share, "Rendering the morphology images");
        morphology::render(
            seed,
            &bundle_dir,
            &layout,
            measured,
            options.morphology_um_per_px,
            control,
        )?;
    } else if morphology_dir.is_dir() {
        std::fs::remove_dir_all(&morphology_dir).map_err(|e| error::io_error(&morphology_dir, e))?;
    }

    let slide_path = out_dir.join(options.slide_layout.file_name());
    for layout in [SlideLayout::GenericTiff, SlideLayout::OmeTiff] {
        if layout != options.slide_layout || !options.write_slide {
            files::remove_if_exists(&out_dir.join(layout.file_name()))?;
        }
    }
    let alignment_path = out_dir.join(ALIGNMENT_FILE);
    let (slide, alignment, slide_size_px) = if options.write_slide {
        control.stage(1.0 - slide_share, 1.0, "Rendering the H&E slide");
        let plan = slide::plan(seed, &layout, options.slide_um_per_px);
        let written = slide::render(seed, &slide_path, &layout, &cells, &plan, options.slide_layout, control)?;
        let csv = slide::write_alignment(&alignment_path, &plan)?;
        (Some(written), Some(csv), Some([plan.levels[0].0, plan.levels[0].1]))
    } else {
        files::remove_if_exists(&slide_path)?;
        files::remove_if_exists(&alignment_path)?;
        (None, None, None)
    };

    let summary = SynthSummary {
        cells: measured.len(),
        genes: expression::GENES.len(),
        bundle_dir,
        slide_path: slide,
        alignment_csv: alignment,
        tissue_size_um: layout.size_um,
        slide_size_px,
    };
    write_done(out_dir, options, &summary)?;
    control.report(1.0);
    Ok(summary)
}

/// The tissue layout and the shaped cells (stages "Laying out tissue" up to `shape_start`, then
/// "Shaping cells" up to `shape_end`).
fn build_model(
    options: &SynthOptions,
    control: &Control,
    shape_start: f32,
    shape_end: f32,
) -> Result<(tissue::Layout, Vec<cells::Cell>), SynthError> {
    let seed = options.seed;
    let mut area_per_cell = tissue::AREA_PER_CELL_UM2;
    let origin = {
        let mut rng = rng::Rng::new(seed, rng::domain::LAYOUT, 0);
        [rng.range(180.0, 240.0), rng.range(180.0, 240.0)]
    };
    let (mut layout, placed) = loop {
        let size = tissue::box_size_for(options.cells, area_per_cell);
        let layout = tissue::build_layout(seed, origin, size);
        control.check()?;
        let placed = tissue::place_cells(seed, &layout, control)?;
        if placed.len() >= options.cells {
            break (layout, placed);
        }
        log::debug!(
            "synthetic tissue of {:.0} x {:.0} µm holds {} cells, {} wanted: growing it",
            size[0],
            size[1],
            placed.len(),
            options.cells
        );
        area_per_cell *= (options.cells as f64 / placed.len().max(1) as f64) * 1.06;
    };
    log::debug!(
        "synthetic tissue: {} of {} placed cells kept, {} lymphoid aggregates, {} vessel segments, {} red cells",
        options.cells,
        placed.len(),
        layout.aggregate_count,
        layout.segments.len(),
        layout.red_cells.len()
    );
    let placed = tissue::trim_to(&mut layout, placed, options.cells);
    control.stage(shape_start, shape_end, "Shaping cells");
    let cells = cells::build_cells(
        seed,
        &placed,
        layout.origin_um,
        layout.size_um,
        options.difficulty,
        control,
    )?;
    Ok((layout, cells))
}

fn options_json(options: &SynthOptions) -> serde_json::Value {
    let mut json = serde_json::json!({
        "cells": options.cells,
        "seed": options.seed,
        "write_slide": options.write_slide,
        "write_transcripts": options.write_transcripts,
        "slide_um_per_px": options.slide_um_per_px,
        "slide_layout": options.slide_layout.name(),
        "write_morphology": options.write_morphology,
        "morphology_um_per_px": options.morphology_um_per_px,
        "xoa": options.xoa.map(XoaVersion::number),
    });
    // Only a partial region says so: caches made before stay valid.
    if let Some(share) = options.xenium_region {
        json["xenium_region"] = share.into();
    }
    // Only a hard tissue says so: caches of standard ones made before stay valid.
    if options.difficulty != Difficulty::Standard {
        json["difficulty"] = options.difficulty.name().into();
    }
    json
}

/// Paths in `SYNTH_OK` are relative to the output folder, so a moved cache stays valid and two
/// runs write the same bytes.
fn write_done(out_dir: &Path, options: &SynthOptions, summary: &SynthSummary) -> Result<(), SynthError> {
    let relative = |p: &Option<PathBuf>| {
        p.as_ref()
            .map(|p| p.strip_prefix(out_dir).unwrap_or(p).to_string_lossy().into_owned())
    };
    let json = serde_json::json!({
        "generator": format!("cellsymphony-synth {}", env!("CARGO_PKG_VERSION")),
        "options": options_json(options),
        "summary": {
            "cells": summary.cells,
            "genes": summary.genes,
            "bundle_dir": BUNDLE_DIR,
            "slide_path": relative(&summary.slide_path),
            "alignment_csv": relative(&summary.alignment_csv),
            "tissue_size_um": summary.tissue_size_um,
            "slide_size_px": summary.slide_size_px,
        },
    });
    let path = out_dir.join(DONE_FILE);
    let text = serde_json::to_string_pretty(&json).map_err(|e| error::encode_error(&path, e))?;
    files::Staged::new(&path).write_all(text.as_bytes())?;
    Ok(())
}

/// The summary of a complete earlier run in `out_dir` made with exactly `options` (its
/// `SYNTH_OK` exists, matches, and the files it names are there); None otherwise.
pub fn cached(options: &SynthOptions, out_dir: &Path) -> Option<SynthSummary> {
    let text = std::fs::read_to_string(out_dir.join(DONE_FILE)).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    if json.get("generator")?.as_str()? != format!("cellsymphony-synth {}", env!("CARGO_PKG_VERSION"))
        || json.get("options")? != &options_json(options)
    {
        return None;
    }
    let s = json.get("summary")?;
    let path = |key: &str| s.get(key).and_then(|v| v.as_str()).map(|p| out_dir.join(p));
    let pair_f64 = |v: &serde_json::Value| Some([v.get(0)?.as_f64()?, v.get(1)?.as_f64()?]);
    let pair_u64 = |v: &serde_json::Value| Some([v.get(0)?.as_u64()?, v.get(1)?.as_u64()?]);
    let summary = SynthSummary {
        cells: usize::try_from(s.get("cells")?.as_u64()?).ok()?,
        genes: usize::try_from(s.get("genes")?.as_u64()?).ok()?,
        bundle_dir: out_dir.join(BUNDLE_DIR),
        slide_path: path("slide_path"),
        alignment_csv: path("alignment_csv"),
        tissue_size_um: pair_f64(s.get("tissue_size_um")?)?,
        slide_size_px: s.get("slide_size_px").and_then(pair_u64),
    };
    let present = summary.bundle_dir.join("cells.parquet").is_file()
        && summary.slide_path.as_ref().is_none_or(|p| p.is_file())
        && summary.alignment_csv.as_ref().is_none_or(|p| p.is_file());
    present.then_some(summary)
}
