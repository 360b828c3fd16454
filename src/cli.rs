//! Command-line subcommands that need no window: `info`.

use std::path::Path;

use cs_slide::{OpenSlideSource, SlideSource};
use cs_xenium::{GENE_EXPRESSION, XeniumBundle};

/// `cellsymphony info <slide | xenium_dir> [--json]`: a slide's levels, resolution and associated
/// images, or a Xenium bundle's cells, genes, software version, pixel size and files.
pub fn info(path: &Path, json: bool) -> anyhow::Result<String> {
    if path.is_dir() {
        return xenium_info(path, json);
    }
    let slide = OpenSlideSource::open(path)?;
    let meta = slide.metadata();
    if json {
        let levels: Vec<serde_json::Value> = meta
            .levels
            .iter()
            .map(|l| serde_json::json!({"width": l.width_px, "height": l.height_px, "downsample": l.downsample}))
            .collect();
        let value = serde_json::json!({
            "path": path.display().to_string(),
            "vendor": meta.vendor,
            "levels": levels,
            "mpp_x": meta.mpp_x,
            "mpp_y": meta.mpp_y,
            "objective_power": meta.objective_power,
            "associated_images": meta.associated_images,
        });
        return Ok(serde_json::to_string_pretty(&value)?);
    }
    let mut out = String::new();
    use std::fmt::Write as _;
    let (w, h) = meta.level0_size_px();
    writeln!(out, "{}", path.display())?;
    writeln!(out, "  format            {}", meta.vendor)?;
    writeln!(out, "  size              {w} x {h} px")?;
    match (meta.mpp_x, meta.mpp_y) {
        (Some(x), Some(y)) => writeln!(out, "  resolution        {x:.4} x {y:.4} um/px")?,
        _ => writeln!(out, "  resolution        unknown")?,
    }
    match meta.objective_power {
        Some(p) => writeln!(out, "  objective         {p}x")?,
        None => writeln!(out, "  objective         unknown")?,
    }
    writeln!(out, "  levels            {}", meta.levels.len())?;
    for (i, l) in meta.levels.iter().enumerate() {
        writeln!(
            out,
            "    {i}: {} x {} px, downsample {:.3}",
            l.width_px, l.height_px, l.downsample
        )?;
    }
    writeln!(out, "  associated images {}", meta.associated_images.join(", "))?;
    Ok(out.trim_end().to_owned())
}

fn xenium_info(dir: &Path, json: bool) -> anyhow::Result<String> {
    let bundle = XeniumBundle::open(dir)?;
    let genes = bundle
        .counts
        .as_ref()
        .map(|c| c.features_of_type(GENE_EXPRESSION).len());
    let software_version = bundle.experiment.as_ref().and_then(|e| e.software_version.clone());
    let files: Vec<String> = bundle
        .files
        .list()
        .iter()
        .map(|f| f.strip_prefix(dir).unwrap_or(f).display().to_string())
        .collect();
    let warnings: Vec<String> = bundle.warnings.iter().map(|w| w.message.clone()).collect();
    if json {
        let value = serde_json::json!({
            "path": dir.display().to_string(),
            "cells": bundle.cells.len(),
            "genes": genes,
            "software_version": software_version,
            "pixel_size": bundle.pixel_size_um(),
            "cell_boundaries": bundle.cell_boundaries.as_ref().map(|p| p.cells_with_polygon()),
            "nucleus_boundaries": bundle.nucleus_boundaries.as_ref().map(|p| p.cells_with_polygon()),
            "categorical_columns": bundle.cells.categorical.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
            "files": files,
            "warnings": warnings,
        });
        return Ok(serde_json::to_string_pretty(&value)?);
    }
    let mut out = String::new();
    use std::fmt::Write as _;
    writeln!(out, "{} (Xenium bundle)", dir.display())?;
    writeln!(out, "  cells             {}", bundle.cells.len())?;
    writeln!(
        out,
        "  genes             {}",
        genes.map_or("no count matrix".to_owned(), |g| g.to_string())
    )?;
    writeln!(
        out,
        "  software          {}",
        software_version.as_deref().unwrap_or("unknown")
    )?;
    writeln!(out, "  pixel size        {} um", bundle.pixel_size_um())?;
    writeln!(out, "  files             {}", files.join(", "))?;
    for warning in &warnings {
        writeln!(out, "  warning           {warning}")?;
    }
    Ok(out.trim_end().to_owned())
}

/// `cellsymphony synth`: writes a synthetic tissue and describes what was written.
pub fn synth(options: &cs_synth::SynthOptions, out: &Path, json: bool) -> anyhow::Result<String> {
    let started = std::time::Instant::now();
    let last_stage = std::cell::RefCell::new(String::new());
    let progress = |_: f32, stage: &str| {
        let mut last = last_stage.borrow_mut();
        if *last != stage {
            eprintln!("{stage}…");
            *last = stage.to_owned();
        }
    };
    let summary = cs_synth::generate(options, out, &progress, &|| false)?;
    let seconds = started.elapsed().as_secs_f64();
    if json {
        let value = serde_json::json!({
            "cells": summary.cells,
            "genes": summary.genes,
            "bundle": summary.bundle_dir.display().to_string(),
            "slide": summary.slide_path.as_ref().map(|p| p.display().to_string()),
            "alignment": summary.alignment_csv.as_ref().map(|p| p.display().to_string()),
            "tissue_size_um": summary.tissue_size_um,
            "slide_size_px": summary.slide_size_px,
            "seconds": seconds,
        });
        return Ok(serde_json::to_string_pretty(&value)?);
    }
    let mut out_text = format!(
        "{} cells, {} genes in {} ({:.0} × {:.0} µm) in {seconds:.1} s",
        summary.cells,
        summary.genes,
        summary.bundle_dir.display(),
        summary.tissue_size_um[0],
        summary.tissue_size_um[1]
    );
    if let (Some(slide), Some(alignment)) = (&summary.slide_path, &summary.alignment_csv) {
        out_text.push_str(&format!(
            "\nslide {} with alignment {}\nopen with: cellsymphony --xenium {} --slide {} --alignment {}",
            slide.display(),
            alignment.display(),
            summary.bundle_dir.display(),
            slide.display(),
            alignment.display()
        ));
    }
    Ok(out_text)
}
