//! Command-line subcommands that need no window: `info`.

use std::path::Path;

use cs_slide::{OpenSlideSource, SlideSource};

/// `cellsymphony info <slide> [--json]`: prints the slide's levels, resolution and associated images.
pub fn info(path: &Path, json: bool) -> anyhow::Result<String> {
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
