//! Times spatial-graph building and neighbourhood enrichment on a Xenium bundle, for comparison
//! with squidpy (tests/reference/nhood_bench_squidpy.py does the same there):
//!
//! ```text
//! cellsymphony synth --cells 500000 --no-slide --seed 11 --out /tmp/synth500k
//! cargo run --release -p cs_analysis --example nhood_500k -- /tmp/synth500k/xenium [N_PERMS] [CLUSTERING]
//! ```
//!
//! Labels: the clustering named CLUSTERING (default `synthetic_cell_type`). Graphs as squidpy's
//! `spatial_neighbors(coord_type="generic")`: `radius=30`, `delaunay=True`, `n_neighs=6`.

use std::time::Instant;

use cs_analysis::{GraphKind, NhoodOptions, SpatialGraph, nhood_enrichment};
use cs_xenium::XeniumBundle;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: nhood_500k BUNDLE_DIR [N_PERMS] [CLUSTERING]")?;
    let n_perms: usize = args.next().map_or(Ok(1000), |s| s.parse())?;
    let clustering = args.next().unwrap_or_else(|| "synthetic_cell_type".to_owned());

    let start = Instant::now();
    let bundle = XeniumBundle::open(&dir)?;
    let cells = &bundle.cells;
    let labels = cells
        .categorical_column(&clustering)
        .ok_or_else(|| format!("no clustering {clustering} in {dir}"))?;
    println!(
        "{} cells, {} classes ({clustering}), bundle read in {:.2} s; {} rayon threads; {n_perms} permutations",
        cells.len(),
        labels.categories.len(),
        start.elapsed().as_secs_f64(),
        rayon::current_num_threads(),
    );

    for (name, kind) in [
        ("radius 30 µm", GraphKind::Radius { radius_um: 30.0 }),
        ("delaunay", GraphKind::Delaunay),
        ("knn 6", GraphKind::Knn { k: 6 }),
    ] {
        let start = Instant::now();
        let graph = SpatialGraph::build(&cells.x_um, &cells.y_um, kind)?;
        let build_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let result = nhood_enrichment(
            &graph,
            &labels.codes,
            labels.categories.len(),
            None,
            &NhoodOptions { n_perms, seed: 0 },
        )?;
        let enrich_s = start.elapsed().as_secs_f64();
        let (best, z) = (0..result.zscores.len())
            .filter(|&i| result.zscores[i].is_finite())
            .map(|i| (i, result.zscores[i]))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, f64::NAN));
        let (a, b) = (best / result.n_classes, best % result.n_classes);
        println!(
            "{name:>13}: graph {build_s:.3} s ({} stored edges, {:.1} per cell); enrichment {enrich_s:.3} s; \
             top z {z:.1} ({} ~ {})",
            graph.nnz(),
            graph.nnz() as f64 / cells.len() as f64,
            labels.categories[a],
            labels.categories[b],
        );
    }
    Ok(())
}
