//! `transcripts.parquet`: one row per count, located inside its cell (inside the nucleus when it
//! overlaps it), plus ~5% unassigned background transcripts just outside cells. From XOA 2.0 the
//! file also lists decoded codewords that are not genes, at rates like a real run's: unassigned
//! codewords (1.5% of transcripts), deprecated codewords (0.02%) and, from XOA 3.0 (5K panels),
//! genomic control probes (0.2%), near the transcripts around them and in no cell.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, StringBuilder};
use arrow_array::{ArrayRef, BooleanArray, Float32Array, Int32Array, Int64Array, UInt8Array, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use rayon::prelude::*;

use crate::bundle::{ParquetOut, cell_id};
use crate::cells::Cell;
use crate::control::Control;
use crate::error::SynthError;
use crate::expression::{Counts, GENES, feature_names, feature_type};
use crate::rng::{Rng, domain};
use crate::xoa::XoaVersion;

/// Xenium's transcript ids are large integers; start where real runs do.
const FIRST_TRANSCRIPT_ID: u64 = 281_474_976_710_656;
const CELLS_PER_CHUNK: usize = 2_048;
/// Unassigned transcripts per assigned one (5% of all).
const BACKGROUND_RATIO: f64 = 0.05 / 0.95;

/// Codewords that are not genes, in transcripts.parquet (in no cell) and as zero-count features
/// of the count matrix: name prefix, how many codewords, `codeword_category`,
/// rows per transcript, and the first release that writes them.
const OTHER_CODEWORDS: &[(&str, usize, &str, f64, XoaVersion)] = &[
    ("UnassignedCodeword_", 24, "unassigned_codeword", 0.015, XoaVersion::V2),
    ("DeprecatedCodeword_", 3, "deprecated_codeword", 0.0002, XoaVersion::V2),
    ("Intergenic_Region_", 12, "genomic_control_probe", 0.002, XoaVersion::V3),
];

/// The other codewords a release writes: their names and categories, in feature order after the
/// count matrix's features.
pub(crate) fn other_codewords(xoa: Option<XoaVersion>) -> Vec<(String, &'static str)> {
    let Some(xoa) = xoa else { return Vec::new() };
    OTHER_CODEWORDS
        .iter()
        .filter(|(.., since)| xoa >= *since)
        .flat_map(|&(prefix, n, category, ..)| (1..=n).map(move |i| (format!("{prefix}{i:04}"), category)))
        .collect()
}

/// The count matrix's `feature_type` of an other codeword's `codeword_category`.
pub(crate) fn other_codeword_feature_type(category: &str) -> &'static str {
    match category {
        "unassigned_codeword" => "Unassigned Codeword",
        "deprecated_codeword" => "Deprecated Codeword",
        _ => "Genomic Control",
    }
}

/// Adds the other codewords' rows to a chunk: each near a random row of it, in no cell,
/// deterministic by chunk. `first_feature` is the index of the first other codeword.
fn add_other_codewords(rows: &mut Rows, seed: u64, chunk: usize, xoa: XoaVersion, first_feature: usize) {
    let n = rows.cell.len();
    if n == 0 {
        return;
    }
    let mut rng = Rng::new(seed, domain::OTHER_CODEWORDS, chunk as u64);
    let mut feature = first_feature;
    for &(_, codewords, _, rate, since) in OTHER_CODEWORDS {
        if xoa < since {
            continue;
        }
        // Whole rows at the rate, the remainder by chance (so small chunks get some too).
        let expected = n as f64 * rate;
        let count = expected.floor() as usize + usize::from(rng.chance(expected.fract()));
        for _ in 0..count {
            let near = rng.below(n as u64) as usize;
            rows.cell.push(u32::MAX);
            rows.nucleus.push(0);
            rows.feature
                .push((feature + rng.below(codewords as u64) as usize) as u16);
            rows.x.push(rows.x[near] + rng.range32(-3.0, 3.0));
            rows.y.push(rows.y[near] + rng.range32(-3.0, 3.0));
            rows.z.push(rows.z[near]);
            // Codewords that match no gene decode with lower confidence.
            rows.qv.push(rng.range32(5.0, 30.0));
        }
        feature += codewords;
    }
}

fn inside(polygon: &[[f32; 2]], p: [f32; 2]) -> bool {
    let mut inside = false;
    let n = polygon.len();
    let mut j = n - 1;
    for i in 0..n {
        let (a, b) = (polygon[i], polygon[j]);
        if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0] {
            inside = !inside;
        }
        j = i;
    }
    inside
}

fn bounds(polygon: &[[f32; 2]]) -> ([f32; 2], [f32; 2]) {
    let mut min = [f32::MAX; 2];
    let mut max = [f32::MIN; 2];
    for v in polygon {
        for k in 0..2 {
            min[k] = min[k].min(v[k]);
            max[k] = max[k].max(v[k]);
        }
    }
    (min, max)
}

/// A point drawn uniformly in the polygon (rejection sampling), `fallback` if that fails.
fn point_in(rng: &mut Rng, polygon: &[[f32; 2]], exclude: Option<&[[f32; 2]]>, fallback: [f32; 2]) -> [f32; 2] {
    let (min, max) = bounds(polygon);
    for _ in 0..40 {
        let p = [rng.range32(min[0], max[0]), rng.range32(min[1], max[1])];
        if inside(polygon, p) && exclude.is_none_or(|e| !inside(e, p)) {
            return p;
        }
    }
    fallback
}

struct Rows {
    cell: Vec<u32>,
    nucleus: Vec<u8>,
    feature: Vec<u16>,
    x: Vec<f32>,
    y: Vec<f32>,
    z: Vec<f32>,
    qv: Vec<f32>,
}

fn chunk_rows(seed: u64, chunk: usize, cells: &[Cell], counts: &Counts) -> Rows {
    let start = chunk * CELLS_PER_CHUNK;
    let end = (start + CELLS_PER_CHUNK).min(cells.len());
    let assigned = (counts.row_offsets[start]..counts.row_offsets[end])
        .map(|i| u64::from(counts.count[i as usize]))
        .sum::<u64>();
    let background = (assigned as f64 * BACKGROUND_RATIO).round() as usize;
    let total = assigned as usize + background;
    let mut rows = Rows {
        cell: Vec::with_capacity(total),
        nucleus: Vec::with_capacity(total),
        feature: Vec::with_capacity(total),
        x: Vec::with_capacity(total),
        y: Vec::with_capacity(total),
        z: Vec::with_capacity(total),
        qv: Vec::with_capacity(total),
    };
    let mut rng = Rng::new(seed, domain::TRANSCRIPTS, chunk as u64);
    let quality = |rng: &mut Rng| -> f32 {
        if rng.chance(0.1) {
            rng.range32(5.0, 20.0)
        } else {
            rng.range32(20.0, 40.0)
        }
    };
    for (i, cell) in cells.iter().enumerate().take(end).skip(start) {
        let share = (cell.nucleus_area_um2 / cell.cell_area_um2.max(1e-9) * 1.25).clamp(0.05, 0.92);
        let nucleus_centre = [
            cell.nucleus_center_in_world[0] as f32,
            cell.nucleus_center_in_world[1] as f32,
        ];
        let (features, values) = counts.cell(i);
        for (f, v) in features.iter().zip(values) {
            for _ in 0..*v {
                let in_nucleus = rng.chance(share);
                let p = if in_nucleus {
                    point_in(&mut rng, &cell.nucleus_vertices, None, nucleus_centre)
                } else {
                    point_in(
                        &mut rng,
                        &cell.cell_vertices,
                        Some(&cell.nucleus_vertices),
                        nucleus_centre,
                    )
                };
                let in_nucleus = in_nucleus || inside(&cell.nucleus_vertices, p);
                rows.cell.push(i as u32);
                rows.nucleus.push(u8::from(in_nucleus));
                rows.feature.push(*f);
                rows.x.push(p[0]);
                rows.y.push(p[1]);
                rows.z.push(rng.range32(12.0, 18.0));
                rows.qv.push(quality(&mut rng));
            }
        }
    }
    // Background: just outside a random cell of the chunk, with the feature of one of its counts.
    for _ in 0..background {
        let i = start + rng.below((end - start) as u64) as usize;
        let cell = &cells[i];
        let (features, _) = counts.cell(i);
        let feature = if features.is_empty() {
            0
        } else {
            features[rng.below(features.len() as u64) as usize]
        };
        let theta = rng.range(0.0, std::f64::consts::TAU);
        let rel: Vec<[f64; 2]> = cell
            .cell_vertices
            .iter()
            .map(|v| {
                [
                    f64::from(v[0]) - cell.center_in_world[0],
                    f64::from(v[1]) - cell.center_in_world[1],
                ]
            })
            .collect();
        let r = crate::cells::radial_extent(&rel, f64::from(cell.cell_phase), theta) + rng.range(0.4, 6.0);
        let (s, c) = theta.sin_cos();
        rows.cell.push(u32::MAX);
        rows.nucleus.push(0);
        rows.feature.push(feature);
        rows.x.push((cell.center_in_world[0] + c * r) as f32);
        rows.y.push((cell.center_in_world[1] + s * r) as f32);
        rows.z.push(rng.range32(12.0, 18.0));
        rows.qv.push(quality(&mut rng));
    }
    rows
}

pub(crate) fn write_transcripts(
    seed: u64,
    dir: &Path,
    cells: &[Cell],
    counts: &Counts,
    xoa: Option<XoaVersion>,
    control: &Control,
) -> Result<(PathBuf, u64), SynthError> {
    let path = dir.join("transcripts.parquet");
    // XOA 1.0: integer cell ids (-1: none) and binary feature names; 2.0 adds codeword_index;
    // 3.0 codeword_category and is_gene.
    let integer_ids = xoa.is_some_and(XoaVersion::integer_ids);
    let binary_names = xoa == Some(XoaVersion::V1);
    let codeword_index = xoa.is_some_and(|v| v >= XoaVersion::V2);
    let categories = xoa.is_some_and(XoaVersion::has_codeword_category);
    let mut fields = vec![
        Field::new("transcript_id", DataType::UInt64, false),
        Field::new(
            "cell_id",
            if integer_ids { DataType::Int64 } else { DataType::Utf8 },
            false,
        ),
        Field::new("overlaps_nucleus", DataType::UInt8, false),
        Field::new(
            "feature_name",
            if binary_names { DataType::Binary } else { DataType::Utf8 },
            false,
        ),
        Field::new("x_location", DataType::Float32, false),
        Field::new("y_location", DataType::Float32, false),
        Field::new("z_location", DataType::Float32, false),
        Field::new("qv", DataType::Float32, false),
    ];
    if codeword_index {
        fields.push(Field::new("codeword_index", DataType::Int32, false));
    }
    if categories {
        fields.push(Field::new("codeword_category", DataType::Utf8, false));
        fields.push(Field::new("is_gene", DataType::Boolean, false));
    }
    let schema = Arc::new(Schema::new(fields));
    let others = other_codewords(xoa);
    let mut names: Vec<&str> = Vec::new();
    for name in feature_names() {
        names.push(name);
    }
    names.extend(others.iter().map(|(n, _)| n.as_str()));
    let first_other = names.len() - others.len();
    let category_of = |feature: usize| match feature.checked_sub(first_other) {
        Some(other) => others[other].1,
        None => match feature_type(feature) {
            "Negative Control Probe" => "negative_control_probe",
            "Negative Control Codeword" => "negative_control_codeword",
            _ => "predesigned_gene",
        },
    };
    let ids: Vec<String> = (0..cells.len()).map(cell_id).collect();
    let mut out = ParquetOut::create(&path, schema)?;
    let chunks = cells.len().div_ceil(CELLS_PER_CHUNK);
    let mut next_id = FIRST_TRANSCRIPT_ID;
    let group = 8;
    for group_start in (0..chunks).step_by(group) {
        let group_end = (group_start + group).min(chunks);
        let parts: Vec<Rows> = (group_start..group_end)
            .into_par_iter()
            .map(|chunk| {
                let mut rows = chunk_rows(seed, chunk, cells, counts);
                if let Some(xoa) = xoa {
                    add_other_codewords(&mut rows, seed, chunk, xoa, first_other);
                }
                rows
            })
            .collect();
        for rows in parts {
            let n = rows.cell.len() as u64;
            let cell_ids: ArrayRef = if integer_ids {
                Arc::new(Int64Array::from_iter_values(
                    rows.cell
                        .iter()
                        .map(|&c| if c == u32::MAX { -1 } else { i64::from(c) + 1 }),
                ))
            } else {
                let mut builder = StringBuilder::new();
                for &c in &rows.cell {
                    builder.append_value(if c == u32::MAX {
                        "UNASSIGNED"
                    } else {
                        ids[c as usize].as_str()
                    });
                }
                Arc::new(builder.finish())
            };
            let features: ArrayRef = if binary_names {
                let mut builder = BinaryBuilder::new();
                for &f in &rows.feature {
                    builder.append_value(names[f as usize].as_bytes());
                }
                Arc::new(builder.finish())
            } else {
                let mut builder = StringBuilder::new();
                for &f in &rows.feature {
                    builder.append_value(names[f as usize]);
                }
                Arc::new(builder.finish())
            };
            let mut extra: Vec<ArrayRef> = Vec::new();
            if codeword_index {
                extra.push(Arc::new(Int32Array::from_iter_values(
                    rows.feature.iter().map(|&f| i32::from(f)),
                )));
            }
            if categories {
                let mut builder = StringBuilder::new();
                for &f in &rows.feature {
                    builder.append_value(category_of(f as usize));
                }
                extra.push(Arc::new(builder.finish()));
                extra.push(Arc::new(BooleanArray::from_iter(
                    rows.feature.iter().map(|&f| Some((f as usize) < GENES.len())),
                )));
            }
            let mut columns: Vec<ArrayRef> = vec![
                Arc::new(UInt64Array::from_iter_values(next_id..next_id + n)),
                cell_ids,
                Arc::new(UInt8Array::from(rows.nucleus)),
                features,
                Arc::new(Float32Array::from(rows.x)),
                Arc::new(Float32Array::from(rows.y)),
                Arc::new(Float32Array::from(rows.z)),
                Arc::new(Float32Array::from(rows.qv)),
            ];
            columns.extend(extra);
            out.write(columns)?;
            next_id += n;
        }
        control.check()?;
        control.report(group_end as f32 / chunks.max(1) as f32);
    }
    Ok((out.finish()?, next_id - FIRST_TRANSCRIPT_ID))
}
