//! Command-line subcommands that need no window: `info`, `synth`, `enrich` here, the model
//! commands (`embed`, `train`, `predict`, `cluster`) in [`models`], `evaluate`, `virtual`,
//! `groups`, and `cohort run|summarise` in [`cohort`].
//!
//! May import: `work`, `io`, `layers`, `util` and the crates; never the shell.

pub mod cohort;
pub mod evaluate;
pub mod groups;
pub mod models;
pub mod virtual_expression;

use std::path::Path;

use cs_xenium::{GENE_EXPRESSION, XeniumBundle};

/// `cellsymphony info <slide | xenium_dir | store.zarr> [--json]`: a slide's levels, resolution and
/// associated images, or a Xenium bundle's (or SpatialData store's) cells, genes, software
/// version, pixel size and files.
pub fn info(path: &Path, json: bool) -> anyhow::Result<String> {
    if path.is_dir() && !cs_slide::is_ngff_image(path) {
        return xenium_info(path, json);
    }
    let slide = cs_slide::open_slide(path)?;
    let meta = slide.metadata();
    if json {
        let levels: Vec<serde_json::Value> = meta
            .levels
            .iter()
            .map(|l| serde_json::json!({"width": l.width_px, "height": l.height_px, "downsample": l.downsample}))
            .collect();
        let value = serde_json::json!({
            "path": path.display().to_string(),
            "backend": meta.backend,
            "vendor": meta.vendor,
            "levels": levels,
            "channels": channels_json(meta),
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
    writeln!(out, "  format            {} (read by {})", meta.vendor, meta.backend)?;
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
    writeln!(out, "  channels          {}", channels_text(meta))?;
    writeln!(out, "  associated images {}", meta.associated_images.join(", "))?;
    Ok(out.trim_end().to_owned())
}

fn channels_json(meta: &cs_slide::SlideMetadata) -> Vec<serde_json::Value> {
    meta.channels
        .iter()
        .map(|c| serde_json::json!({"name": c.name, "bits": c.bits_per_sample}))
        .collect()
}

fn channels_text(meta: &cs_slide::SlideMetadata) -> String {
    meta.channels
        .iter()
        .map(|c| format!("{} ({}-bit)", c.name, c.bits_per_sample))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Each morphology image of a bundle with its channels and levels, or why it cannot be read.
fn morphology_json(bundle: &XeniumBundle) -> Vec<serde_json::Value> {
    bundle
        .files
        .morphology
        .iter()
        .map(|file| match cs_slide::open_slide(&file.path) {
            Ok(image) => serde_json::json!({
                "path": file.path.display().to_string(),
                "channels": channels_json(image.metadata()),
                "levels": image.metadata().levels.len(),
                "width": image.metadata().level0_size_px().0,
                "height": image.metadata().level0_size_px().1,
            }),
            Err(error) => serde_json::json!({
                "path": file.path.display().to_string(),
                "error": error.to_string(),
            }),
        })
        .collect()
}

/// What a SpatialData store adds to `info`: the coordinate system, its unit, which elements the
/// cells and the H&E came from, and every image with its placement.
fn spatialdata_json(read: &cs_spatialdata::SpatialDataBundle) -> serde_json::Value {
    let images: Vec<serde_json::Value> = read
        .images
        .iter()
        .map(|image| {
            let mut value = match cs_slide::open_slide(&image.path) {
                Ok(source) => serde_json::json!({
                    "backend": source.metadata().backend,
                    "levels": source.metadata().levels.len(),
                    "width": source.metadata().level0_size_px().0,
                    "height": source.metadata().level0_size_px().1,
                    "channels": channels_json(source.metadata()),
                }),
                Err(error) => serde_json::json!({ "error": error.to_string() }),
            };
            value["name"] = image.name.clone().into();
            value["path"] = image.path.display().to_string().into();
            value["world_from_image"] = image.world_from_image_px.rows.to_vec().into();
            value
        })
        .collect();
    serde_json::json!({
        "coordinate_system": read.coordinate_system,
        "um_per_unit": read.um_per_unit,
        "cell_shapes": read.cell_shapes,
        "table": read.table,
        "he_image": read.he_image.as_ref().map(|i| i.name.clone()),
        "images": images,
    })
}

fn xenium_info(dir: &Path, json: bool) -> anyhow::Result<String> {
    let (bundle, spatialdata) = if cs_spatialdata::is_spatialdata(dir) {
        let read = cs_spatialdata::read_bundle(dir)?;
        let extra = spatialdata_json(&read);
        (read.bundle, Some(extra))
    } else {
        (XeniumBundle::open(dir)?, None)
    };
    let genes = bundle
        .counts
        .as_ref()
        .map(|c| c.features_of_type(GENE_EXPRESSION).len());
    let software_version = bundle.experiment.as_ref().and_then(|e| e.software_version.clone());
    // "2.0.0" when the version reads xenium-X.Y.Z, else as written (development builds: "R&D").
    let xoa_version = bundle.experiment.as_ref().and_then(|e| match e.xoa_version() {
        Some([major, minor, patch]) => Some(format!("{major}.{minor}.{patch}")),
        None => e.analysis_version().map(str::to_owned),
    });
    let ranger_version = bundle.experiment.as_ref().and_then(|e| e.ranger_version.clone());
    let proteins: Vec<String> = bundle.counts.as_ref().map_or_else(Vec::new, |c| {
        c.features_of_type(cs_xenium::PROTEIN_EXPRESSION)
            .into_iter()
            .map(|i| c.features[i as usize].name.clone())
            .collect()
    });
    let transcripts = match &bundle.files.transcripts {
        Some(path) => Some(transcript_summary(&bundle, path)?),
        None => None,
    };
    // Groupings: clusterings, Explorer's groups, segmentation_method, ... with their group counts.
    let cell_groups: Vec<(String, usize)> = bundle
        .cells
        .categorical
        .iter()
        .map(|(name, column)| (name.clone(), column.categories.len()))
        .collect();
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
            "xoa_version": xoa_version,
            "xenium_ranger_version": ranger_version,
            "proteins": proteins,
            "transcripts": transcripts.as_ref().map(|t| serde_json::json!({
                "total": t.total,
                "features": t.features,
                "min_qv": t.min_qv,
                "below_min_qv": t.below_min_qv,
                "by_category": t.by_category.iter().map(|(c, n)| (c.key().to_owned(), serde_json::json!(n))).collect::<serde_json::Map<_, _>>(),
            })),
            "cell_groups": cell_groups.iter().map(|(n, k)| serde_json::json!({"name": n, "groups": k})).collect::<Vec<_>>(),
            "pixel_size": bundle.pixel_size_um(),
            "cell_boundaries": bundle.cell_boundaries.as_ref().map(|p| p.cells_with_polygon()),
            "nucleus_boundaries": bundle.nucleus_boundaries.as_ref().map(|p| p.cells_with_polygon()),
            "categorical_columns": bundle.cells.categorical.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
            "morphology_images": morphology_json(&bundle),
            "files": files,
            "warnings": warnings,
            "spatialdata": spatialdata,
        });
        return Ok(serde_json::to_string_pretty(&value)?);
    }
    let mut out = String::new();
    use std::fmt::Write as _;
    let kind = if spatialdata.is_some() {
        "SpatialData store"
    } else {
        "Xenium bundle"
    };
    writeln!(out, "{} ({kind})", dir.display())?;
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
    if let Some(ranger) = &ranger_version {
        writeln!(out, "  xenium ranger     {ranger} (takes precedence)")?;
    }
    writeln!(out, "  pixel size        {} um", bundle.pixel_size_um())?;
    if !proteins.is_empty() {
        writeln!(out, "  proteins          {}", proteins.len())?;
    }
    if let Some(t) = &transcripts {
        let parts: Vec<String> = t.by_category.iter().map(|(c, n)| format!("{} {n}", c.key())).collect();
        writeln!(
            out,
            "  transcripts       {} ({}; {} below qv {})",
            t.total,
            parts.join(", "),
            t.below_min_qv,
            t.min_qv
        )?;
    }
    for (name, groups) in &cell_groups {
        writeln!(out, "  cell groups       {name} ({groups} groups)")?;
    }
    for image in morphology_json(&bundle) {
        let channels: Vec<String> = image["channels"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        match image["error"].as_str() {
            Some(error) => writeln!(out, "  morphology        {error}")?,
            None => writeln!(
                out,
                "  morphology        {} ({}; {} levels)",
                image["path"].as_str().unwrap_or_default(),
                channels.join(", "),
                image["levels"]
            )?,
        }
    }
    if let Some(sd) = &spatialdata {
        writeln!(
            out,
            "  coordinates       {:?}, {} um per unit; cells from {:?}",
            sd["coordinate_system"].as_str().unwrap_or_default(),
            sd["um_per_unit"],
            sd["cell_shapes"].as_str().unwrap_or_default()
        )?;
        for image in sd["images"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "  image             {} ({} levels, {} x {} px)",
                image["name"].as_str().unwrap_or_default(),
                image["levels"],
                image["width"],
                image["height"]
            )?;
        }
    }
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

/// What `cellsymphony enrich` is asked for.
#[derive(Debug, Clone)]
pub struct EnrichOptions {
    pub xenium: std::path::PathBuf,
    pub labels: String,
    /// GeoJSON or Xenium Explorer coordinates CSV.
    pub selection: Option<std::path::PathBuf>,
    /// Alignment CSV: GeoJSON coordinates are then H&E slide pixels (as the viewer exports them
    /// with a slide open), else µm.
    pub alignment: Option<std::path::PathBuf>,
    /// `radius=30`, `knn=6` or `delaunay`.
    pub nhood: Option<String>,
    pub perms: usize,
    pub seed: u64,
}

/// Parses `radius=R`, `knn=K` or `delaunay`.
pub fn parse_graph_kind(text: &str) -> anyhow::Result<cs_analysis::GraphKind> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("delaunay") {
        return Ok(cs_analysis::GraphKind::Delaunay);
    }
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("--nhood {text:?}: expected radius=R (µm), knn=K or delaunay"))?;
    match name.trim().to_ascii_lowercase().as_str() {
        "radius" => {
            let radius_um: f64 = value.trim().parse()?;
            anyhow::ensure!(
                radius_um.is_finite() && radius_um > 0.0,
                "--nhood radius must be positive"
            );
            Ok(cs_analysis::GraphKind::Radius { radius_um })
        }
        "knn" => {
            let k: usize = value.trim().parse()?;
            anyhow::ensure!(k > 0, "--nhood knn must be at least 1");
            Ok(cs_analysis::GraphKind::Knn { k })
        }
        other => anyhow::bail!("--nhood {other:?}: expected radius, knn or delaunay"),
    }
}

/// `cellsymphony enrich`: composition of a selection against the rest (with Fisher exact p and
/// BH q) and neighbourhood enrichment (squidpy-compatible z-scores), as JSON or text.
pub fn enrich(options: &EnrichOptions, json: bool) -> anyhow::Result<String> {
    let (bundle, _) = crate::work::open::read_bundle(&options.xenium)?;
    let cells = &bundle.cells;
    let column = crate::work::models::categorical_column(&bundle, &options.labels)?;
    let n_classes = column.categories.len();
    let mut out = serde_json::json!({
        "bundle": options.xenium.display().to_string(),
        "labels": options.labels,
        "classes": column.categories,
        "cells": cells.len(),
    });
    let mut text = format!(
        "{} cells, column {:?} with {n_classes} classes\n",
        cells.len(),
        options.labels
    );
    let mut selected: Option<cs_analysis::CellSet> = None;
    if let Some(path) = &options.selection {
        let world_from_file = match &options.alignment {
            Some(alignment) => glam::DAffine2::from_cols_array(
                &cs_xenium::read_alignment_csv(alignment)?
                    .scaled(bundle.pixel_size_um())
                    .to_cols_array(),
            ),
            None => glam::DAffine2::IDENTITY,
        };
        let imported = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
            crate::io::selection_io::read_xenium_explorer_csv(path)?
        } else {
            crate::io::selection_io::read_geojson(path, &world_from_file)?
        };
        // Every polygon of the file together makes the selection.
        let mut steps: Vec<cs_analysis::Step> = imported.into_iter().flat_map(|s| s.steps).collect();
        for step in steps.iter_mut().skip(1) {
            if step.combine == cs_analysis::Combine::Replace {
                step.combine = cs_analysis::Combine::Add;
            }
        }
        let index = cs_analysis::GridIndex::build(&cells.x_um, &cells.y_um);
        let set = cs_analysis::cells_in_steps(&index, cells.len(), &steps);
        let area_um2 = cs_analysis::region_area_um2(&steps);
        let composition = cs_analysis::composition_vs_rest(&column.codes, n_classes, &set)?;
        text.push_str(&format!(
            "selection {}: {} cells, {:.0} µm²\n{:<24} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}\n",
            path.display(),
            set.count(),
            area_um2,
            "class",
            "n_sel",
            "n_rest",
            "%sel",
            "%rest",
            "log2enr",
            "q"
        ));
        let rows: Vec<serde_json::Value> = composition
            .classes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                text.push_str(&format!(
                    "{:<24} {:>8} {:>8} {:>8.2} {:>8.2} {:>+10.3} {:>10.2e}\n",
                    column.categories[i],
                    c.count_in_group,
                    c.count_in_reference,
                    100.0 * c.fraction_in_group,
                    100.0 * c.fraction_in_reference,
                    c.log2_enrichment,
                    c.q_value
                ));
                serde_json::json!({
                    "class": column.categories[i],
                    "cells_in_selection": c.count_in_group,
                    "cells_in_rest": c.count_in_reference,
                    "fraction_in_selection": c.fraction_in_group,
                    "fraction_in_rest": c.fraction_in_reference,
                    "log2_enrichment": c.log2_enrichment,
                    "p_value": c.p_value,
                    "q_value": c.q_value,
                })
            })
            .collect();
        out["selection"] = serde_json::json!({
            "file": path.display().to_string(),
            "cells": set.count(),
            "area_um2": area_um2,
        });
        out["composition"] = serde_json::Value::Array(rows);
        selected = Some(set);
    }
    if let Some(spec) = &options.nhood {
        let kind = parse_graph_kind(spec)?;
        let graph = cs_analysis::SpatialGraph::build(&cells.x_um, &cells.y_um, kind)?;
        let selection: Option<Vec<u32>> = selected.as_ref().map(|s| s.iter().map(|c| c as u32).collect());
        let result = cs_analysis::nhood_enrichment(
            &graph,
            &column.codes,
            n_classes,
            selection.as_deref(),
            &cs_analysis::NhoodOptions {
                n_perms: options.perms,
                seed: options.seed,
            },
        )?;
        let matrix = |values: &dyn Fn(usize, usize) -> serde_json::Value| -> serde_json::Value {
            (0..n_classes)
                .map(|a| (0..n_classes).map(|b| values(a, b)).collect::<serde_json::Value>())
                .collect()
        };
        out["nhood"] = serde_json::json!({
            "graph": spec,
            "edges": graph.nnz(),
            "cells": result.n_cells,
            "n_perms": result.n_perms,
            "seed": options.seed,
            "counts": matrix(&|a, b| serde_json::json!(result.count(a, b))),
            // NaN (no variation under permutation) becomes null.
            "zscores": matrix(&|a, b| {
                let z = result.zscore(a, b);
                if z.is_finite() { serde_json::json!(z) } else { serde_json::Value::Null }
            }),
        });
        let scope = if selected.is_some() {
            format!("inside the selection ({} labelled cells)", result.n_cells)
        } else {
            format!("over all {} labelled cells", result.n_cells)
        };
        text.push_str(&format!(
            "neighbourhood enrichment {scope} ({spec}, {} edges in the whole graph, {} permutations): z-scores, row = cell's class\n",
            graph.nnz(),
            result.n_perms
        ));
        for a in 0..n_classes {
            text.push_str(&format!("{:<24}", column.categories[a]));
            for b in 0..n_classes {
                text.push_str(&format!(" {:>8.2}", result.zscore(a, b)));
            }
            text.push('\n');
        }
    }
    if json {
        return Ok(serde_json::to_string_pretty(&out)?);
    }
    Ok(text.trim_end().to_owned())
}

/// Transcript counts for `info`: from the viewer's cached index of the file when there is one (no
/// transcript is read), else by streaming the file.
fn transcript_summary(bundle: &XeniumBundle, path: &Path) -> anyhow::Result<cs_xenium::TranscriptSummary> {
    let layout = &bundle.files.transcript_layout;
    let cached = cs_xenium::transcript_index::index_file_name(path, layout, &bundle.cells)
        .ok()
        .map(|name| crate::work::open::transcript_index_dir().join(name))
        .filter(|p| p.is_file())
        .and_then(|p| cs_xenium::TranscriptIndex::open(&p).ok());
    Ok(match cached {
        Some(index) => index.summary(cs_xenium::DEFAULT_MIN_QV),
        None => cs_xenium::TranscriptSummary::read(path, layout, cs_xenium::DEFAULT_MIN_QV)?,
    })
}
