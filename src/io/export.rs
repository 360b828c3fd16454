//! Exports of a selection and its statistics, written on a worker: its cells as CSV in Xenium
//! Explorer's cell-export layout, the composition table, the differential-expression table, and
//! the panel's plots as standalone SVG drawn from the numbers (composition bars, volcano,
//! neighbourhood heatmap). Every file goes through [`write_atomically`].

use std::path::Path;

use glam::DAffine2;

use crate::io::records::{NamedDe, NamedSelection};
use crate::io::selection_io::selections_to_geojson;
use crate::layers::palettes::zscore_colour;
use crate::util::format::significance_stars;
use crate::util::fs::write_atomically;

/// The plots of the selections panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlotKind {
    Composition,
    Volcano,
    Heatmap,
}

impl PlotKind {
    pub fn file_stem(self) -> &'static str {
        match self {
            PlotKind::Composition => "selection_composition",
            PlotKind::Volcano => "selection_volcano",
            PlotKind::Heatmap => "neighbourhood_enrichment",
        }
    }
}

/// What an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// The shown selections as GeoJSON (QuPath).
    SelectionsGeoJson,
    /// The active selection's cells (Xenium Explorer CSV).
    CellsCsv,
    /// The composition table.
    StatsCsv,
    /// The differential-expression table.
    DeCsv,
    /// One of the panel's plots as SVG.
    PlotSvg(PlotKind),
}

/// The cells of a selection in Xenium Explorer's cell-export layout: `#` lines with the name and
/// area, then `Cell ID,Cluster,Transcripts,Area (µm^2)`.
pub fn cells_csv(
    selection: &NamedSelection,
    ids: &[String],
    cluster: Option<(&[u32], &[String])>,
    transcripts: Option<&[f64]>,
    cell_area_um2: Option<&[f64]>,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "#Selection name: {}", selection.name);
    let _ = writeln!(out, "#Area (µm^2): {:.2}", selection.area_um2);
    out.push_str("Cell ID,Cluster,Transcripts,Area (µm^2)\n");
    for cell in selection.cells.iter() {
        let id = ids.get(cell).map_or("", String::as_str);
        let cluster_name = cluster
            .and_then(|(codes, names)| codes.get(cell).and_then(|&c| names.get(c as usize)))
            .map_or("", String::as_str);
        let count = transcripts
            .and_then(|t| t.get(cell))
            .map_or(String::new(), |v| format!("{v:.0}"));
        let area = cell_area_um2
            .and_then(|a| a.get(cell))
            .map_or(String::new(), |v| format!("{v:.2}"));
        let _ = writeln!(out, "{id},{},{count},{area}", csv_field(cluster_name));
    }
    out
}

/// What an export needs, gathered on the UI thread and written on a worker.
pub struct ExportInputs<'a> {
    pub bundle: &'a cs_xenium::XeniumBundle,
    pub active: &'a NamedSelection,
    pub visible: &'a [NamedSelection],
    pub file_from_world: DAffine2,
    pub composition: Option<&'a cs_analysis::Composition>,
    pub column: Option<&'a str>,
    pub reference: &'a str,
    pub de: Option<&'a [NamedDe]>,
    pub nhood: Option<&'a cs_analysis::NhoodEnrichment>,
}

/// Writes one export; returns the note to show.
pub fn export(kind: ExportKind, path: &Path, inputs: &ExportInputs<'_>) -> anyhow::Result<String> {
    let cells = &inputs.bundle.cells;
    let categories = inputs
        .column
        .and_then(|c| cells.categorical_column(c))
        .map(|c| (c.codes.as_slice(), c.categories.as_slice()));
    let contents = match kind {
        ExportKind::SelectionsGeoJson => {
            let shown: Vec<&NamedSelection> = inputs.visible.iter().collect();
            serde_json::to_string_pretty(&selections_to_geojson(&shown, &inputs.file_from_world))?
        }
        ExportKind::CellsCsv => cells_csv(
            inputs.active,
            &cells.ids,
            categories,
            cells
                .numeric_column("transcript_counts")
                .or_else(|| cells.numeric_column("total_counts")),
            cells.numeric_column("cell_area"),
        ),
        ExportKind::StatsCsv | ExportKind::PlotSvg(PlotKind::Composition) => {
            let (Some(composition), Some((_, names))) = (inputs.composition, categories) else {
                anyhow::bail!("There is no composition to export: the bundle has no categorical column.");
            };
            if kind == ExportKind::StatsCsv {
                composition_csv(
                    inputs.active,
                    inputs.reference,
                    inputs.column.unwrap_or(""),
                    names,
                    composition,
                )
            } else {
                composition_svg(inputs.active, inputs.reference, names, composition)
            }
        }
        ExportKind::PlotSvg(PlotKind::Volcano) => {
            let Some(de) = inputs.de else {
                anyhow::bail!("Compute the differential expression first.");
            };
            volcano_svg(&inputs.active.name, inputs.reference, de)
        }
        ExportKind::PlotSvg(PlotKind::Heatmap) => {
            let (Some(nhood), Some((_, names))) = (inputs.nhood, categories) else {
                anyhow::bail!("Run the neighbourhood enrichment first.");
            };
            heatmap_svg(inputs.column.unwrap_or(""), names, nhood)
        }
        ExportKind::DeCsv => {
            let Some(de) = inputs.de else {
                anyhow::bail!("Compute the differential expression first (it is for the selection as it is now).");
            };
            de_csv(&inputs.active.name, inputs.reference, de)
        }
    };
    write_atomically(path, contents.as_bytes())?;
    Ok(format!("Saved {}", path.display()))
}

/// The composition table as CSV, with the comparison described in `#` lines.
pub fn composition_csv(
    selection: &NamedSelection,
    reference: &str,
    column: &str,
    names: &[String],
    composition: &cs_analysis::Composition,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "#Selection: {}", selection.name);
    let _ = writeln!(out, "#Compared with: {reference}");
    let _ = writeln!(out, "#Column: {column}");
    let _ = writeln!(
        out,
        "#Cells: {} in the selection, {} in the reference (cells without a class left out)",
        composition.cells_in_group, composition.cells_in_reference
    );
    let _ = writeln!(
        out,
        "#log2 enrichment uses a pseudocount of {} cell per class; p: two-sided Fisher exact; q: Benjamini-Hochberg",
        cs_analysis::ENRICHMENT_PSEUDOCOUNT
    );
    out.push_str("class,cells_in_selection,cells_in_reference,fraction_in_selection,fraction_in_reference,log2_enrichment,p_value,q_value\n");
    for (i, c) in composition.classes.iter().enumerate() {
        let _ = writeln!(
            out,
            "{},{},{},{:.6},{:.6},{:.6},{:.6e},{:.6e}",
            csv_field(names.get(i).map_or("", String::as_str)),
            c.count_in_group,
            c.count_in_reference,
            c.fraction_in_group,
            c.fraction_in_reference,
            c.log2_enrichment,
            c.p_value,
            c.q_value
        );
    }
    out
}

fn svg_text(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The composition chart as a standalone SVG: grouped bars (selection, reference) per class with
/// significance stars and labelled axes.
pub fn composition_svg(
    selection: &NamedSelection,
    reference: &str,
    names: &[String],
    composition: &cs_analysis::Composition,
) -> String {
    use std::fmt::Write as _;
    let n = composition.classes.len().max(1);
    let (left, top, plot_h, group_w) = (60.0, 40.0, 240.0, 70.0);
    let width = left + group_w * n as f64 + 20.0;
    let height = top + plot_h + 90.0;
    let max_pct = composition
        .classes
        .iter()
        .map(|c| 100.0 * c.fraction_in_group.max(c.fraction_in_reference))
        .fold(1.0, f64::max);
    let y_max = (max_pct / 10.0).ceil() * 10.0;
    let y = |pct: f64| top + plot_h * (1.0 - pct / y_max);
    let [r, g, b, _] = selection.colour.to_srgba_unmultiplied();
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{left}" y="20" font-size="14">{} vs {}: % of cells per class</text>"#,
        svg_text(&selection.name),
        svg_text(reference)
    );
    for tick in 0..=((y_max / 10.0) as usize) {
        let pct = tick as f64 * 10.0;
        let ty = y(pct);
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{ty:.1}" y2="{ty:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{pct}</text>"##,
            width - 20.0,
            left - 6.0,
            ty + 4.0
        );
    }
    for (i, c) in composition.classes.iter().enumerate() {
        let x0 = left + group_w * i as f64 + 10.0;
        let (a, bar) = (100.0 * c.fraction_in_group, 100.0 * c.fraction_in_reference);
        let _ = writeln!(
            svg,
            r#"<rect x="{x0:.1}" y="{:.1}" width="24" height="{:.1}" fill="rgb({r},{g},{b})"/>"#,
            y(a),
            top + plot_h - y(a)
        );
        let _ = writeln!(
            svg,
            r##"<rect x="{:.1}" y="{:.1}" width="24" height="{:.1}" fill="#999"/>"##,
            x0 + 26.0,
            y(bar),
            top + plot_h - y(bar)
        );
        let mark = significance_stars(c.q_value);
        if !mark.is_empty() {
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{mark}</text>"#,
                x0 + 25.0,
                y(a.max(bar)) - 4.0
            );
        }
        let _ = writeln!(
            svg,
            r#"<text transform="translate({:.1},{:.1}) rotate(35)">{}</text>"#,
            x0 + 10.0,
            top + plot_h + 14.0,
            svg_text(names.get(i).map_or("", String::as_str))
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{left}" y="{:.1}">coloured: {}; grey: {}; * q &lt; 0.05, ** &lt; 0.01, *** &lt; 0.001 (Fisher exact, BH)</text>"#,
        height - 8.0,
        svg_text(&selection.name),
        svg_text(reference)
    );
    svg.push_str("</svg>\n");
    svg
}

/// The volcano plot as SVG: log2 fold change against −log10 adjusted p, significant genes named.
pub fn volcano_svg(selection: &str, reference: &str, results: &[NamedDe]) -> String {
    use std::fmt::Write as _;
    let (left, top, w, h) = (60.0, 40.0, 420.0, 300.0);
    let point = |r: &NamedDe| {
        (
            r.result.log2_fold_change.clamp(-20.0, 20.0),
            -r.result.p_adjusted.max(1e-300).log10(),
        )
    };
    let x_max = results.iter().map(|r| point(r).0.abs()).fold(1.0, f64::max).ceil();
    let y_max = results.iter().map(|r| point(r).1).fold(1.0, f64::max).ceil();
    let sx = |x: f64| left + (x + x_max) / (2.0 * x_max) * w;
    let sy = |y: f64| top + h * (1.0 - y / y_max);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="12">"#,
        left + w + 30.0,
        top + h + 60.0
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{left}" y="20" font-size="14">{} vs {}: differential expression (Wilcoxon, BH)</text>"#,
        svg_text(selection),
        svg_text(reference)
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#888"/>"##
    );
    let _ = writeln!(
        svg,
        r##"<line x1="{:.1}" x2="{:.1}" y1="{top}" y2="{}" stroke="#ccc"/>"##,
        sx(0.0),
        sx(0.0),
        top + h
    );
    for r in results {
        let (x, y) = point(r);
        let hit = r.result.p_adjusted < 0.05 && r.result.log2_fold_change.abs() > 1.0;
        let _ = writeln!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="{}" fill="{}"/>"#,
            sx(x),
            sy(y),
            if hit { 3 } else { 2 },
            if hit { "#e6503c" } else { "#a0a0a0" }
        );
        if hit {
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" font-size="10">{}</text>"#,
                sx(x) + 4.0,
                sy(y) - 4.0,
                svg_text(&r.gene)
            );
        }
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">log2 fold change (±{x_max})</text>"#,
        left + w / 2.0,
        top + h + 30.0
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(20,{:.1}) rotate(-90)" text-anchor="middle">-log10 q (0 to {y_max})</text>"#,
        top + h / 2.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// The neighbourhood-enrichment heatmap as SVG (the panel's blue–white–red z-score scale).
pub fn heatmap_svg(column: &str, names: &[String], nhood: &cs_analysis::NhoodEnrichment) -> String {
    use std::fmt::Write as _;
    let n = nhood.n_classes.min(names.len());
    let (left, top, side) = (140.0, 150.0, 36.0);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="12">"#,
        left + side * n as f64 + 20.0,
        top + side * n as f64 + 50.0
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="10" y="20" font-size="14">Neighbourhood enrichment z-scores of {} ({} cells, {} permutations)</text>"#,
        svg_text(column),
        nhood.n_cells,
        nhood.n_perms
    );
    for (a, name) in names.iter().enumerate().take(n) {
        let y = top + side * a as f64;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 6.0,
            y + side / 2.0 + 4.0,
            svg_text(name)
        );
        let _ = writeln!(
            svg,
            r#"<text transform="translate({:.1},{:.1}) rotate(-60)">{}</text>"#,
            left + side * a as f64 + side / 2.0,
            top - 6.0,
            svg_text(name)
        );
        for b in 0..n {
            let z = nhood.zscore(a, b);
            let [r, g, bl, _] = zscore_colour(z).to_srgba_unmultiplied();
            let _ = writeln!(
                svg,
                r#"<rect x="{:.1}" y="{y:.1}" width="{}" height="{}" fill="rgb({r},{g},{bl})"><title>{:.2}</title></rect>"#,
                left + side * b as f64,
                side - 1.0,
                side - 1.0,
                z
            );
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"#,
                left + side * b as f64 + side / 2.0,
                y + side / 2.0 + 3.0,
                if z.is_finite() {
                    format!("{z:.1}")
                } else {
                    "–".to_owned()
                }
            );
        }
    }
    let _ = writeln!(
        svg,
        r#"<text x="10" y="{:.1}">row: a cell's class; column: its neighbours'; blue depleted, red enriched (saturating at |z| = 10)</text>"#,
        top + side * n as f64 + 30.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// Quotes a CSV field when it needs it.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// The DE results as CSV (scanpy's column meanings).
pub fn de_csv(selection: &str, reference: &str, results: &[NamedDe]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "#Selection: {selection}");
    let _ = writeln!(out, "#Compared with: {reference}");
    let _ = writeln!(
        out,
        "#Wilcoxon rank-sum (tie-corrected, two-sided) on log1p(CP10k); p_adjusted: Benjamini-Hochberg"
    );
    out.push_str("gene,score,log2_fold_change,p_value,p_adjusted,mean_log1p_cp10k_selection,mean_log1p_cp10k_reference,fraction_expressing_selection,fraction_expressing_reference\n");
    for r in results {
        let d = &r.result;
        let _ = writeln!(
            out,
            "{},{:.6},{:.6},{:.6e},{:.6e},{:.6},{:.6},{:.6},{:.6}",
            csv_field(&r.gene),
            d.score,
            d.log2_fold_change,
            d.p_value,
            d.p_adjusted,
            d.mean_log1p_cp10k_group,
            d.mean_log1p_cp10k_reference,
            d.fraction_expressing_group,
            d.fraction_expressing_reference
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cs_analysis::{Combine, Shape, Step};

    #[test]
    fn a_selection_s_cells_in_xenium_explorer_s_layout() {
        let steps = vec![Step {
            combine: Combine::Replace,
            shape: Shape::Polygon(vec![[0.0, 0.0], [40.0, 0.0], [40.0, 40.0], [0.0, 40.0]]),
        }];
        let niche = crate::io::selection_io::tests::selection("Niche A", steps);
        assert_eq!(niche.cell_count(), 16);
        let ids: Vec<String> = (0..100).map(|i| format!("cell-{i}")).collect();
        let codes: Vec<u32> = (0..100).map(|i| i % 2).collect();
        let names = vec!["T cells".to_owned(), "B, plasma".to_owned()];
        let csv = cells_csv(&niche, &ids, Some((&codes, &names)), None, None);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "#Selection name: Niche A");
        assert_eq!(lines[2], "Cell ID,Cluster,Transcripts,Area (µm^2)");
        assert_eq!(lines.len(), 3 + 16);
        assert_eq!(lines[3], "cell-0,T cells,,");
        assert_eq!(lines[4], "cell-1,\"B, plasma\",,");
    }
}
