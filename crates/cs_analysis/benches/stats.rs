//! Selection statistics at slide scale: composition + Fisher over 1M cells with 8 classes, and
//! Wilcoxon differential expression of 10k selected cells against 490k others over 60 genes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benches fail loudly by design

use criterion::{Criterion, criterion_group, criterion_main};
use cs_analysis::{
    CsrCounts, DeReference, cell_totals, composition_vs_rest, fisher_exact_two_sided, rank_genes_wilcoxon,
};
use std::hint::black_box;

/// splitmix64: a small seeded generator, good enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn composition(c: &mut Criterion) {
    const CELLS: usize = 1_000_000;
    let mut rng = Rng(7);
    let codes: Vec<u32> = (0..CELLS).map(|_| (rng.next_u64() % 8) as u32).collect();
    // A 5% selection that over-represents class 3.
    let selected: Vec<bool> = codes
        .iter()
        .map(|&code| rng.uniform() < if code == 3 { 0.08 } else { 0.05 })
        .collect();
    c.bench_function("composition_fisher_1M_cells_8_classes", |b| {
        b.iter(|| black_box(composition_vs_rest(&codes, 8, &selected).unwrap()))
    });
    c.bench_function("fisher_exact_5000_45000_20000_930000", |b| {
        b.iter(|| black_box(fisher_exact_two_sided(black_box(5000), 45_000, 20_000, 930_000)))
    });
    c.bench_function("fisher_exact_near_mode_1M", |b| {
        b.iter(|| black_box(fisher_exact_two_sided(black_box(250_100), 249_900, 249_900, 250_100)))
    });
}

fn wilcoxon(c: &mut Criterion) {
    const CELLS: usize = 500_000;
    const GROUP: usize = 10_000;
    const GENES: usize = 60;
    let mut rng = Rng(11);
    // Each gene is detected in 5-60% of cells with small counts; the group expresses the first
    // ten genes more often.
    let detection: Vec<f64> = (0..GENES).map(|_| 0.05 + 0.55 * rng.uniform()).collect();
    let mut group = vec![false; CELLS];
    let mut chosen = 0;
    while chosen < GROUP {
        let cell = (rng.next_u64() % CELLS as u64) as usize;
        if !group[cell] {
            group[cell] = true;
            chosen += 1;
        }
    }
    let (mut row_offsets, mut feature_index, mut counts) = (vec![0u64], Vec::new(), Vec::new());
    for &in_group in &group {
        for (gene, &p) in detection.iter().enumerate() {
            let p = if in_group && gene < 10 { (p * 1.5).min(0.95) } else { p };
            if rng.uniform() < p {
                feature_index.push(gene as u32);
                counts.push(1.0 + (-rng.uniform().ln() * 2.0).floor() as f32);
            }
        }
        row_offsets.push(feature_index.len() as u64);
    }
    let matrix = CsrCounts::new(&row_offsets, &feature_index, &counts, GENES).unwrap();
    let genes: Vec<u32> = (0..GENES as u32).collect();
    let totals = cell_totals(matrix, &genes).unwrap();
    println!(
        "synthetic matrix: {CELLS} cells x {GENES} genes, {} non-zeros",
        counts.len()
    );
    let mut group_bench = c.benchmark_group("wilcoxon");
    group_bench.sample_size(10);
    group_bench.bench_function("cell_totals_500k_cells_60_genes", |b| {
        b.iter(|| black_box(cell_totals(matrix, &genes).unwrap()))
    });
    group_bench.bench_function("rank_genes_10k_vs_490k_60_genes", |b| {
        b.iter(|| black_box(rank_genes_wilcoxon(matrix, &totals, &genes, &group, DeReference::Rest).unwrap()))
    });
    group_bench.finish();
}

criterion_group!(benches, composition, wilcoxon);
criterion_main!(benches);
