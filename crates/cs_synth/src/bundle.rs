//! Writing the Xenium-layout bundle: `experiment.xenium`, `cells.parquet`, the cell and nucleus
//! boundary parquets, the `cell_feature_matrix/` MEX folder, and the clusterings under
//! `analysis/clustering/`. Every file is staged (see [`crate::files`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, Float32Array, Float64Array, RecordBatch, UInt32Array};
use arrow_schema::{DataType, Field, Schema};
use flate2::Compression;
use flate2::write::GzEncoder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as ParquetCompression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;

use crate::cells::Cell;
use crate::control::Control;
use crate::error::{SynthError, encode_error, io_error};
use crate::expression::{CONTROLS, Counts, GENES, feature_names, feature_type};
use crate::files::{Staged, finish};
use crate::rng::{Rng, domain};
use crate::tissue::{Niche, kind};
use crate::{CELL_TYPES, SynthOptions};

pub(crate) const PIXEL_SIZE_UM: f64 = 0.2125;
const SEGMENTATION_METHOD: &str = "Segmented by nucleus expansion of 5.0µm";
const ROWS_PER_BATCH: usize = 65_536;

/// The Xenium (XOA >= 1.3) style id of cell `index`: its number in base 16 written with the
/// letters a–p, then "-1".
pub(crate) fn cell_id(index: usize) -> String {
    let mut id = String::with_capacity(10);
    push_cell_id(index, &mut id);
    id
}

fn push_cell_id(index: usize, out: &mut String) {
    let value = (index as u64 + 0x0001_0000) as u32;
    for shift in (0..8).rev() {
        out.push(char::from(b'a' + ((value >> (shift * 4)) & 0xF) as u8));
    }
    out.push_str("-1");
}

pub(crate) fn parquet_properties() -> Result<WriterProperties, SynthError> {
    let level = ZstdLevel::try_new(3).map_err(|e| SynthError::InvalidOptions { reason: e.to_string() })?;
    Ok(WriterProperties::builder()
        .set_compression(ParquetCompression::ZSTD(level))
        .set_max_row_group_row_count(Some(1 << 20))
        .build())
}

/// Streams record batches into a staged parquet file.
pub(crate) struct ParquetOut {
    staged: Staged,
    schema: Arc<Schema>,
    writer: ArrowWriter<std::fs::File>,
}

impl ParquetOut {
    pub fn create(path: &Path, schema: Arc<Schema>) -> Result<Self, SynthError> {
        let staged = Staged::new(path);
        let file = staged.create()?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(parquet_properties()?))
            .map_err(|e| encode_error(path, e))?;
        Ok(Self { staged, schema, writer })
    }

    pub fn write(&mut self, columns: Vec<ArrayRef>) -> Result<(), SynthError> {
        let batch =
            RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| encode_error(self.staged.path(), e))?;
        self.writer
            .write(&batch)
            .map_err(|e| encode_error(self.staged.path(), e))
    }

    pub fn finish(self) -> Result<PathBuf, SynthError> {
        self.writer.close().map_err(|e| encode_error(self.staged.path(), e))?;
        self.staged.commit()
    }
}

fn ids_array(range: std::ops::Range<usize>, repeat: impl Fn(usize) -> usize) -> ArrayRef {
    let mut builder = StringBuilder::new();
    let mut id = String::with_capacity(10);
    for i in range {
        id.clear();
        push_cell_id(i, &mut id);
        for _ in 0..repeat(i) {
            builder.append_value(&id);
        }
    }
    Arc::new(builder.finish())
}

pub(crate) fn write_experiment(
    dir: &Path,
    options: &SynthOptions,
    cells: usize,
    transcripts: u64,
) -> Result<PathBuf, SynthError> {
    let json = serde_json::json!({
        "major_version": 5,
        "minor_version": 0,
        "run_name": format!("CellSymphony synthetic tissue (seed {})", options.seed),
        "run_start_time": "",
        "region_name": "Synthetic region 1",
        "preservation_method": "ffpe",
        "num_cells": cells,
        "transcripts_per_cell": if cells > 0 { (transcripts as f64 / cells as f64).round() } else { 0.0 },
        "cassette_name": "synthetic",
        "slide_id": format!("synthetic-{}", options.seed),
        "panel_design_id": "cellsymphony-synth",
        "panel_name": "CellSymphony synthetic tumour microenvironment panel",
        "panel_organism": "Human",
        "panel_tissue_type": "Breast",
        "panel_num_targets_predesigned": GENES.len(),
        "panel_num_targets_custom": 0,
        "pixel_size": PIXEL_SIZE_UM,
        "instrument_sn": "synthetic",
        "instrument_sw_version": "synthetic",
        "analysis_sw_version": format!("cellsymphony-synth {}", env!("CARGO_PKG_VERSION")),
        "experiment_uuid": "",
        "z_step_size": 3.0,
    });
    let text = serde_json::to_string_pretty(&json).map_err(|e| encode_error(&dir.join("experiment.xenium"), e))?;
    Staged::new(&dir.join("experiment.xenium")).write_all(text.as_bytes())
}

pub(crate) fn write_cells(dir: &Path, cells: &[Cell], counts: &Counts) -> Result<PathBuf, SynthError> {
    let path = dir.join("cells.parquet");
    let u32_field = |name: &str| Field::new(name, DataType::UInt32, false);
    let schema = Arc::new(Schema::new(vec![
        Field::new("cell_id", DataType::Utf8, false),
        Field::new("x_centroid", DataType::Float64, false),
        Field::new("y_centroid", DataType::Float64, false),
        u32_field("transcript_counts"),
        u32_field("control_probe_counts"),
        u32_field("control_codeword_counts"),
        u32_field("unassigned_codeword_counts"),
        u32_field("deprecated_codeword_counts"),
        u32_field("total_counts"),
        Field::new("cell_area", DataType::Float64, false),
        Field::new("nucleus_area", DataType::Float64, false),
        u32_field("nucleus_count"),
        Field::new("segmentation_method", DataType::Utf8, false),
    ]));
    let mut out = ParquetOut::create(&path, schema)?;
    for start in (0..cells.len()).step_by(ROWS_PER_BATCH) {
        let end = (start + ROWS_PER_BATCH).min(cells.len());
        let part = &cells[start..end];
        let u32s =
            |f: &dyn Fn(usize) -> u32| -> ArrayRef { Arc::new(UInt32Array::from_iter_values((start..end).map(f))) };
        let f64s =
            |f: &dyn Fn(&Cell) -> f64| -> ArrayRef { Arc::new(Float64Array::from_iter_values(part.iter().map(f))) };
        let mut methods = StringBuilder::new();
        for _ in start..end {
            methods.append_value(SEGMENTATION_METHOD);
        }
        out.write(vec![
            ids_array(start..end, |_| 1),
            f64s(&|c| c.centroid_in_world[0]),
            f64s(&|c| c.centroid_in_world[1]),
            u32s(&|i| counts.gene_total[i]),
            u32s(&|i| counts.control_probe_total[i]),
            u32s(&|i| counts.control_codeword_total[i]),
            u32s(&|_| 0),
            u32s(&|_| 0),
            u32s(&|i| counts.gene_total[i] + counts.control_probe_total[i] + counts.control_codeword_total[i]),
            f64s(&|c| c.cell_area_um2),
            f64s(&|c| c.nucleus_area_um2),
            u32s(&|_| 1),
            Arc::new(methods.finish()),
        ])?;
    }
    out.finish()
}

/// Which polygon of a cell a boundary file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Boundary {
    Cell,
    Nucleus,
}

pub(crate) fn write_boundaries(
    dir: &Path,
    cells: &[Cell],
    which: Boundary,
    control: &Control,
) -> Result<PathBuf, SynthError> {
    let path = dir.join(match which {
        Boundary::Cell => "cell_boundaries.parquet",
        Boundary::Nucleus => "nucleus_boundaries.parquet",
    });
    let schema = Arc::new(Schema::new(vec![
        Field::new("cell_id", DataType::Utf8, false),
        Field::new("vertex_x", DataType::Float32, false),
        Field::new("vertex_y", DataType::Float32, false),
        Field::new("label_id", DataType::UInt32, false),
    ]));
    let mut out = ParquetOut::create(&path, schema)?;
    fn vertices(c: &Cell, which: Boundary) -> &[[f32; 2]] {
        match which {
            Boundary::Cell => &c.cell_vertices,
            Boundary::Nucleus => &c.nucleus_vertices,
        }
    }
    // One row per vertex, closed like 10x's: the first vertex repeats at the end.
    let per_cell = cells.first().map_or(0, |c| vertices(c, which).len() + 1);
    let batch_cells = (ROWS_PER_BATCH / per_cell.max(1)).max(1) * 4;
    for start in (0..cells.len()).step_by(batch_cells) {
        let end = (start + batch_cells).min(cells.len());
        let part = &cells[start..end];
        let mut xs = Vec::with_capacity(part.len() * per_cell);
        let mut ys = Vec::with_capacity(part.len() * per_cell);
        let mut labels = Vec::with_capacity(part.len() * per_cell);
        for (k, c) in part.iter().enumerate() {
            let v = vertices(c, which);
            for p in v.iter().chain(v.first()) {
                xs.push(p[0]);
                ys.push(p[1]);
                labels.push((start + k + 1) as u32);
            }
        }
        out.write(vec![
            ids_array(start..end, |_| per_cell),
            Arc::new(Float32Array::from(xs)),
            Arc::new(Float32Array::from(ys)),
            Arc::new(UInt32Array::from(labels)),
        ])?;
        control.check()?;
    }
    out.finish()
}

fn gzip(path: &Path, text: &[u8]) -> Result<Vec<u8>, SynthError> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(text.len() / 3), Compression::new(6));
    encoder.write_all(text).map_err(|e| io_error(path, e))?;
    encoder.finish().map_err(|e| io_error(path, e))
}

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut n = 0;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend(digits[..n].iter().rev());
}

/// The MEX folder: features x barcodes MatrixMarket, 1-based, gzipped in independent members
/// (compressed in parallel; readers decode multi-member gzip as one stream).
pub(crate) fn write_mex(dir: &Path, cells: &[Cell], counts: &Counts, control: &Control) -> Result<PathBuf, SynthError> {
    let mex = dir.join("cell_feature_matrix");
    std::fs::create_dir_all(&mex).map_err(|e| io_error(&mex, e))?;

    let features_path = mex.join("features.tsv.gz");
    let mut text = String::new();
    for (i, name) in feature_names().enumerate() {
        let id = if i < GENES.len() {
            format!("SYNTH{:05}", i + 1)
        } else {
            name.to_owned()
        };
        text.push_str(&format!("{id}\t{name}\t{}\n", feature_type(i)));
    }
    Staged::new(&features_path).write_all(&gzip(&features_path, text.as_bytes())?)?;

    let barcodes_path = mex.join("barcodes.tsv.gz");
    let chunks: Vec<Vec<u8>> = (0..cells.len())
        .collect::<Vec<_>>()
        .par_chunks(65_536)
        .map(|chunk| {
            let mut text = String::with_capacity(chunk.len() * 11);
            for &i in chunk {
                push_cell_id(i, &mut text);
                text.push('\n');
            }
            gzip(&barcodes_path, text.as_bytes())
        })
        .collect::<Result<_, _>>()?;
    let staged = Staged::new(&barcodes_path);
    let mut file = staged.create_buffered()?;
    for chunk in &chunks {
        file.write_all(chunk).map_err(|e| io_error(&barcodes_path, e))?;
    }
    finish(file, &barcodes_path)?;
    staged.commit()?;
    control.check()?;

    let matrix_path = mex.join("matrix.mtx.gz");
    let staged = Staged::new(&matrix_path);
    let mut file = staged.create_buffered()?;
    let nnz = counts.feature.len();
    let header = format!(
        "%%MatrixMarket matrix coordinate integer general\n%metadata_json: {{\"software_version\": \"cellsymphony-synth {}\", \"format_version\": 2}}\n{} {} {}\n",
        env!("CARGO_PKG_VERSION"),
        GENES.len() + CONTROLS.len(),
        cells.len(),
        nnz
    );
    file.write_all(&gzip(&matrix_path, header.as_bytes())?)
        .map_err(|e| io_error(&matrix_path, e))?;
    let cells_per_chunk = 8_192;
    let group = cells_per_chunk * 8;
    for group_start in (0..cells.len()).step_by(group) {
        let group_end = (group_start + group).min(cells.len());
        let members: Vec<Vec<u8>> = (group_start..group_end)
            .step_by(cells_per_chunk)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|start| {
                let end = (start + cells_per_chunk).min(group_end);
                let mut text = Vec::with_capacity((end - start) * 40 * 10);
                for cell in start..end {
                    let (features, values) = counts.cell(cell);
                    for (f, v) in features.iter().zip(values) {
                        push_u64(&mut text, u64::from(*f) + 1);
                        text.push(b' ');
                        push_u64(&mut text, cell as u64 + 1);
                        text.push(b' ');
                        push_u64(&mut text, u64::from(*v));
                        text.push(b'\n');
                    }
                }
                gzip(&matrix_path, &text)
            })
            .collect::<Result<_, _>>()?;
        for member in &members {
            file.write_all(member).map_err(|e| io_error(&matrix_path, e))?;
        }
        control.check()?;
    }
    finish(file, &matrix_path)?;
    staged.commit()?;
    Ok(mex)
}

/// Graph-clustering stand-in: clusters from the true type (tumour split by niche into core and
/// front), numbered 1.. by size like 10x's, with ~3% of cells put into a wrong cluster.
pub(crate) fn graph_clusters(seed: u64, cells: &[Cell]) -> Vec<u32> {
    let key = |c: &Cell| -> usize {
        match c.kind {
            kind::EPI if c.niche == Niche::TumourCore => kind::COUNT,
            k => k as usize,
        }
    };
    let groups = kind::COUNT + 1;
    let mut sizes = vec![0usize; groups];
    for c in cells {
        sizes[key(c)] += 1;
    }
    let mut order: Vec<usize> = (0..groups).collect();
    order.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
    let mut number = vec![0u32; groups];
    for (rank, &g) in order.iter().enumerate() {
        number[g] = rank as u32 + 1;
    }
    let used: Vec<u32> = order.iter().filter(|&&g| sizes[g] > 0).map(|&g| number[g]).collect();
    cells
        .par_iter()
        .enumerate()
        .map(|(i, c)| {
            let truth = number[key(c)];
            let mut rng = Rng::new(seed, domain::CLUSTERS, i as u64);
            if used.len() > 1 && rng.chance(0.03) {
                let others: Vec<u32> = used.iter().copied().filter(|&n| n != truth).collect();
                others[rng.below(others.len() as u64) as usize]
            } else {
                truth
            }
        })
        .collect()
}

pub(crate) fn write_clusters(
    dir: &Path,
    name: &str,
    labels: impl Iterator<Item = String>,
) -> Result<PathBuf, SynthError> {
    let folder = dir.join("analysis").join("clustering").join(name);
    std::fs::create_dir_all(&folder).map_err(|e| io_error(&folder, e))?;
    let path = folder.join("clusters.csv");
    let mut text = String::from("Barcode,Cluster\n");
    for (i, label) in labels.enumerate() {
        push_cell_id(i, &mut text);
        text.push(',');
        text.push_str(&label);
        text.push('\n');
    }
    Staged::new(&path).write_all(text.as_bytes())
}

/// The ground-truth type names, one per cell.
pub(crate) fn type_names(cells: &[Cell]) -> impl Iterator<Item = String> + '_ {
    cells.iter().map(|c| CELL_TYPES[c.kind as usize].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_ids_look_like_xenium_and_are_ordered() {
        assert_eq!(cell_id(0), "aaabaaaa-1");
        assert_eq!(cell_id(1), "aaabaaab-1");
        assert_eq!(cell_id(15), "aaabaaap-1");
        assert_eq!(cell_id(16), "aaabaaba-1");
        assert!(cell_id(1_000_000) > cell_id(999_999));
    }

    #[test]
    fn integers_format_like_display() {
        for v in [0u64, 7, 10, 99, 123_456_789, u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, v);
            assert_eq!(String::from_utf8_lossy(&out), v.to_string());
        }
    }
}
