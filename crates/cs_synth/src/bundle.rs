//! Writing the Xenium-layout bundle: `experiment.xenium`, `cells.parquet`, the cell and nucleus
//! boundary parquets, the `cell_feature_matrix/` MEX folder, and the clusterings under
//! `analysis/clustering/`. Every file is staged (see [`crate::files`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, Float32Array, Float64Array, Int64Array, RecordBatch, UInt32Array};
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
use crate::expression::{Counts, GENES, feature_names, feature_type};
use crate::feature_h5::FeatureRow;
use crate::files::{Staged, finish};
use crate::rng::{Rng, domain};
use crate::tissue::{Niche, kind};
use crate::transcripts::{other_codeword_feature_type, other_codewords};
use crate::xoa::{XoaVersion, nuclei_of, nucleus_area_um2};
use crate::{CELL_TYPES, Difficulty, HARD_CELL_TYPES, SynthOptions};

pub(crate) const PIXEL_SIZE_UM: f64 = 0.2125;
const SEGMENTATION_METHOD: &str = "Segmented by nucleus expansion of 5.0µm";
const ROWS_PER_BATCH: usize = 65_536;
/// Xenium Explorer's cell file.
pub(crate) const CELLS_ZARR_ZIP: &str = "cells.zarr.zip";

/// The Xenium (XOA >= 1.3) style id of cell `index`: its number in base 16 written with the
/// letters a–p, then "-1".
pub(crate) fn cell_id(index: usize) -> String {
    let mut id = String::with_capacity(10);
    push_cell_id(index, &mut id);
    id
}

/// Cell `index`'s id as the layout writes it: 1-based integers before XOA 1.3, else
/// [`cell_id`]'s.
pub(crate) fn push_id(index: usize, xoa: Option<XoaVersion>, out: &mut String) {
    if xoa.is_some_and(XoaVersion::integer_ids) {
        use std::fmt::Write as _;
        let _ = write!(out, "{}", index + 1);
    } else {
        push_cell_id(index, out);
    }
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

/// The type of a `cell_id` column in the layout.
fn id_type(xoa: Option<XoaVersion>) -> DataType {
    if xoa.is_some_and(XoaVersion::integer_ids) {
        DataType::Int64
    } else {
        DataType::Utf8
    }
}

/// Cell ids of `range`, each repeated `repeat(i)` times, as the layout writes them.
fn ids_array(range: std::ops::Range<usize>, repeat: impl Fn(usize) -> usize, xoa: Option<XoaVersion>) -> ArrayRef {
    if xoa.is_some_and(XoaVersion::integer_ids) {
        let values = range.flat_map(|i| std::iter::repeat_n(i as i64 + 1, repeat(i)));
        return Arc::new(Int64Array::from_iter_values(values));
    }
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
        "analysis_sw_version": options.xoa.map_or_else(
            || format!("cellsymphony-synth {}", env!("CARGO_PKG_VERSION")),
            |v| v.analysis_sw_version().to_owned()
        ),
        "experiment_uuid": "",
        "z_step_size": 3.0,
    });
    let text = serde_json::to_string_pretty(&json).map_err(|e| encode_error(&dir.join("experiment.xenium"), e))?;
    Staged::new(&dir.join("experiment.xenium")).write_all(text.as_bytes())
}

pub(crate) fn write_cells(
    dir: &Path,
    seed: u64,
    cells: &[Cell],
    counts: &Counts,
    xoa: Option<XoaVersion>,
) -> Result<PathBuf, SynthError> {
    let path = dir.join("cells.parquet");
    let u32_field = |name: &str| Field::new(name, DataType::UInt32, false);
    // Columns by layout: XOA 1.0 has nine; 2.0 adds nucleus_count and segmentation_method (and
    // unassigned/deprecated codeword counts); 3.0 genomic_control_counts.
    let v1 = xoa == Some(XoaVersion::V1);
    let genomic = xoa.is_some_and(|v| v >= XoaVersion::V3);
    let mut fields = vec![
        Field::new("cell_id", id_type(xoa), false),
        Field::new("x_centroid", DataType::Float64, false),
        Field::new("y_centroid", DataType::Float64, false),
        u32_field("transcript_counts"),
        u32_field("control_probe_counts"),
    ];
    if genomic {
        fields.push(u32_field("genomic_control_counts"));
    }
    fields.push(u32_field("control_codeword_counts"));
    if !v1 {
        fields.push(u32_field("unassigned_codeword_counts"));
        fields.push(u32_field("deprecated_codeword_counts"));
    }
    fields.push(u32_field("total_counts"));
    fields.push(Field::new("cell_area", DataType::Float64, false));
    fields.push(Field::new("nucleus_area", DataType::Float64, true));
    if !v1 {
        fields.push(u32_field("nucleus_count"));
        fields.push(Field::new("segmentation_method", DataType::Utf8, false));
    }
    let mut out = ParquetOut::create(&path, Arc::new(Schema::new(fields)))?;
    for start in (0..cells.len()).step_by(ROWS_PER_BATCH) {
        let end = (start + ROWS_PER_BATCH).min(cells.len());
        let part = &cells[start..end];
        let u32s =
            |f: &dyn Fn(usize) -> u32| -> ArrayRef { Arc::new(UInt32Array::from_iter_values((start..end).map(f))) };
        let f64s =
            |f: &dyn Fn(&Cell) -> f64| -> ArrayRef { Arc::new(Float64Array::from_iter_values(part.iter().map(f))) };
        // Nucleus area and count from the nuclei the boundary file holds (none: NaN area).
        let (mut nucleus_area, mut nucleus_count) = (Vec::with_capacity(part.len()), Vec::with_capacity(part.len()));
        for (k, c) in part.iter().enumerate() {
            let nuclei = nuclei_of(seed, start + k, c, xoa);
            nucleus_area.push(nucleus_area_um2(c, &nuclei));
            nucleus_count.push(nuclei.len() as u32);
        }
        let mut columns = vec![
            ids_array(start..end, |_| 1, xoa),
            f64s(&|c| c.centroid_in_world[0]),
            f64s(&|c| c.centroid_in_world[1]),
            u32s(&|i| counts.gene_total[i]),
            u32s(&|i| counts.control_probe_total[i]),
        ];
        if genomic {
            columns.push(u32s(&|_| 0));
        }
        columns.push(u32s(&|i| counts.control_codeword_total[i]));
        if !v1 {
            columns.push(u32s(&|_| 0));
            columns.push(u32s(&|_| 0));
        }
        columns.push(u32s(&|i| {
            counts.gene_total[i] + counts.control_probe_total[i] + counts.control_codeword_total[i]
        }));
        columns.push(f64s(&|c| c.cell_area_um2));
        columns.push(Arc::new(Float64Array::from(nucleus_area)));
        if !v1 {
            columns.push(Arc::new(UInt32Array::from(nucleus_count)));
            let mut methods = StringBuilder::new();
            for _ in start..end {
                methods.append_value(SEGMENTATION_METHOD);
            }
            columns.push(Arc::new(methods.finish()));
        }
        out.write(columns)?;
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
    seed: u64,
    cells: &[Cell],
    which: Boundary,
    xoa: Option<XoaVersion>,
    control: &Control,
) -> Result<PathBuf, SynthError> {
    let path = dir.join(match which {
        Boundary::Cell => "cell_boundaries.parquet",
        Boundary::Nucleus => "nucleus_boundaries.parquet",
    });
    // label_id from XOA 2.0 (and in the generator's own layout): a cell's row + 1 for cells, a
    // nucleus polygon's position + 1 for nuclei (so a binucleate cell has two).
    let with_labels = xoa.is_none_or(XoaVersion::has_label_ids);
    let mut fields = vec![
        Field::new("cell_id", id_type(xoa), false),
        Field::new("vertex_x", DataType::Float32, false),
        Field::new("vertex_y", DataType::Float32, false),
    ];
    if with_labels {
        fields.push(Field::new("label_id", DataType::UInt32, false));
    }
    let mut out = ParquetOut::create(&path, Arc::new(Schema::new(fields)))?;
    let batch_cells = (ROWS_PER_BATCH / 16).max(1) * 4;
    let mut next_nucleus_label = 1u32;
    for start in (0..cells.len()).step_by(batch_cells) {
        let end = (start + batch_cells).min(cells.len());
        let part = &cells[start..end];
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        let mut labels = Vec::new();
        let mut rows_of_cell = Vec::with_capacity(part.len());
        for (k, c) in part.iter().enumerate() {
            let rings = match which {
                Boundary::Cell => vec![c.cell_vertices.to_vec()],
                Boundary::Nucleus => nuclei_of(seed, start + k, c, xoa),
            };
            let mut rows = 0;
            // One row per vertex, closed like 10x's: the first vertex repeats at the end.
            for ring in &rings {
                let label = match which {
                    Boundary::Cell => (start + k + 1) as u32,
                    Boundary::Nucleus => {
                        next_nucleus_label += 1;
                        next_nucleus_label - 1
                    }
                };
                for p in ring.iter().chain(ring.first()) {
                    xs.push(p[0]);
                    ys.push(p[1]);
                    labels.push(label);
                    rows += 1;
                }
            }
            rows_of_cell.push(rows);
        }
        let mut columns = vec![
            ids_array(start..end, |i| rows_of_cell[i - start], xoa),
            Arc::new(Float32Array::from(xs)) as ArrayRef,
            Arc::new(Float32Array::from(ys)),
        ];
        if with_labels {
            columns.push(Arc::new(UInt32Array::from(labels)));
        }
        out.write(columns)?;
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

/// The count matrix's features (id, name, 10x feature type): the genes, the negative controls
/// and, from XOA 2.0, the other codewords the transcripts hold (in no cell here, so their
/// counts are zero).
pub(crate) fn matrix_features(xoa: Option<XoaVersion>) -> Vec<FeatureRow> {
    let mut features: Vec<FeatureRow> = feature_names()
        .enumerate()
        .map(|(i, name)| {
            let id = if i < GENES.len() {
                format!("SYNTH{:05}", i + 1)
            } else {
                name.to_owned()
            };
            (id, name.to_owned(), feature_type(i))
        })
        .collect();
    features.extend(
        other_codewords(xoa)
            .into_iter()
            .map(|(name, category)| (name.clone(), name, other_codeword_feature_type(category))),
    );
    features
}

/// The barcodes (cell ids) of the count matrix, in cell order.
pub(crate) fn barcodes(n: usize, xoa: Option<XoaVersion>) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mut id = String::with_capacity(11);
            push_id(i, xoa, &mut id);
            id
        })
        .collect()
}

/// The MEX folder: features x barcodes MatrixMarket, 1-based, gzipped in independent members
/// (compressed in parallel; readers decode multi-member gzip as one stream).
pub(crate) fn write_mex(
    dir: &Path,
    cells: &[Cell],
    counts: &Counts,
    xoa: Option<XoaVersion>,
    control: &Control,
) -> Result<PathBuf, SynthError> {
    let mex = dir.join("cell_feature_matrix");
    std::fs::create_dir_all(&mex).map_err(|e| io_error(&mex, e))?;

    let features_path = mex.join("features.tsv.gz");
    let features = matrix_features(xoa);
    let mut text = String::new();
    for (id, name, kind) in &features {
        text.push_str(&format!("{id}\t{name}\t{kind}\n"));
    }
    Staged::new(&features_path).write_all(&gzip(&features_path, text.as_bytes())?)?;

    let barcodes_path = mex.join("barcodes.tsv.gz");
    let chunks: Vec<Vec<u8>> = (0..cells.len())
        .collect::<Vec<_>>()
        .par_chunks(65_536)
        .map(|chunk| {
            let mut text = String::with_capacity(chunk.len() * 11);
            for &i in chunk {
                push_id(i, xoa, &mut text);
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
        features.len(),
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
    xoa: Option<XoaVersion>,
) -> Result<PathBuf, SynthError> {
    let folder = dir.join("analysis").join("clustering").join(name);
    std::fs::create_dir_all(&folder).map_err(|e| io_error(&folder, e))?;
    let path = folder.join("clusters.csv");
    let mut text = String::from("Barcode,Cluster\n");
    for (i, label) in labels.enumerate() {
        push_id(i, xoa, &mut text);
        text.push(',');
        text.push_str(&label);
        text.push('\n');
    }
    Staged::new(&path).write_all(text.as_bytes())
}

/// The graph clustering as Xenium Explorer cell groups (`analysis.zarr.zip`), as a run has it.
pub(crate) fn write_analysis_zarr(path: &Path, clusters: &[u32]) -> Result<PathBuf, SynthError> {
    // Cluster numbers start at 1, as in clusters.csv; Explorer names them "Cluster N".
    let groups = clusters.iter().max().map_or(0, |&m| m as usize);
    let labels = (1..=groups).map(|k| format!("Cluster {k}")).collect();
    let codes = clusters.iter().map(|&c| c.wrapping_sub(1)).collect();
    let column = cs_xenium::Categorical::from_codes(labels, codes);
    let staged = Staged::new(path);
    cs_xenium::explorer::write_analysis_zarr_zip(staged.part_path(), &[("gene_expression_graphclust", &column)])
        .map_err(|e| io_error(path, e))?;
    staged.commit()
}

/// `cells.zarr.zip` as Xenium writes it (what spatialdata-io opens before anything else): the
/// cell ids as (prefix, suffix) pairs (1-D integers for XOA 1.0), the cell summary with its
/// column names, and the nucleus and cell polygons: from XOA 2.0 as polygon sets with each
/// polygon's cell, before as one dense `polygon_vertices` array with a row per cell.
/// The segmentation masks (rasters) are not written.
pub(crate) fn write_cells_zarr(path: &Path, seed: u64, cells: &[Cell], xoa: XoaVersion) -> Result<PathBuf, SynthError> {
    use cs_xenium::explorer::ZarrZipWriter;
    let n = cells.len();
    let staged = Staged::new(path);
    let failed = |e: cs_xenium::XeniumError| io_error(path, e);
    let mut zip = ZarrZipWriter::create(staged.part_path()).map_err(failed)?;
    const CHUNK_ROWS: usize = 65_536;
    let rows = CHUNK_ROWS.min(n.max(1));
    let v2 = xoa.has_label_ids();
    let attrs = serde_json::json!({
        "major_version": if v2 { 6 } else { 5 },
        "minor_version": 0,
        "name": "CellSegmentationDataset",
        "polygon_set_names": ["nucleus", "cell"],
        "polygon_set_display_names": ["Nucleus", "Cell"],
        "polygon_set_descriptions": ["DAPI-based nuclear segmentation", "Expansion of nuclear boundaries"],
        "spatial_units": "microns",
        "number_cells": n,
        "segmentation_methods": [SEGMENTATION_METHOD],
    });
    zip.group("", Some(&attrs)).map_err(failed)?;
    if xoa.integer_ids() {
        let ids: Vec<u32> = (1..=n as u32).collect();
        zip.array("cell_id", &[n], rows, &ids, None).map_err(failed)?;
    } else {
        // The id's letters are the prefix's hex digits (a = 0 ... p = 15), then "-" and the suffix.
        let ids: Vec<u32> = (0..n).flat_map(|i| [(i as u64 + 0x0001_0000) as u32, 1]).collect();
        zip.array("cell_id", &[n, 2], rows, &ids, None).map_err(failed)?;
    }
    let mut names = vec![
        "cell_centroid_x",
        "cell_centroid_y",
        "cell_area",
        "nucleus_centroid_x",
        "nucleus_centroid_y",
        "nucleus_area",
        "z_level",
    ];
    if v2 {
        names.push("nucleus_count");
    }
    let mut summary = Vec::with_capacity(n * names.len());
    let mut nucleus_cells: Vec<u32> = Vec::new();
    let mut nucleus_rings: Vec<Vec<[f32; 2]>> = Vec::new();
    for (i, c) in cells.iter().enumerate() {
        let nuclei = nuclei_of(seed, i, c, Some(xoa));
        summary.extend([
            c.centroid_in_world[0],
            c.centroid_in_world[1],
            c.cell_area_um2,
            c.nucleus_center_in_world[0],
            c.nucleus_center_in_world[1],
            nucleus_area_um2(c, &nuclei).unwrap_or(f64::NAN),
            0.0,
        ]);
        if v2 {
            summary.push(nuclei.len() as f64);
        }
        for ring in nuclei {
            nucleus_cells.push(i as u32);
            nucleus_rings.push(ring);
        }
    }
    let column_attrs = serde_json::json!({ "column_names": names });
    zip.array("cell_summary", &[n, names.len()], rows, &summary, Some(&column_attrs))
        .map_err(failed)?;
    drop(summary);
    if v2 {
        zip.group("polygon_sets", None).map_err(failed)?;
        let cell_rings: Vec<Vec<[f32; 2]>> = cells.iter().map(|c| c.cell_vertices.to_vec()).collect();
        let cell_index: Vec<u32> = (0..n as u32).collect();
        for (set, (owners, rings)) in [(&nucleus_cells, &nucleus_rings), (&cell_index, &cell_rings)]
            .into_iter()
            .enumerate()
        {
            let node = format!("polygon_sets/{set}");
            zip.group(&node, None).map_err(failed)?;
            let p = rings.len();
            let max_vertices = rings.iter().map(Vec::len).max().unwrap_or(0).max(1);
            let mut vertices = vec![0f32; p * 2 * max_vertices];
            for (k, ring) in rings.iter().enumerate() {
                for (j, v) in ring.iter().enumerate() {
                    vertices[k * 2 * max_vertices + 2 * j] = v[0];
                    vertices[k * 2 * max_vertices + 2 * j + 1] = v[1];
                }
            }
            let num_vertices: Vec<i32> = rings.iter().map(|r| r.len() as i32).collect();
            let method = vec![0u32; p];
            let rows = CHUNK_ROWS.min(p.max(1));
            zip.array(&format!("{node}/cell_index"), &[p], rows, owners, None)
                .map_err(failed)?;
            zip.array(&format!("{node}/num_vertices"), &[p], rows, &num_vertices, None)
                .map_err(failed)?;
            zip.array(&format!("{node}/method"), &[p], rows, &method, None)
                .map_err(failed)?;
            zip.array(
                &format!("{node}/vertices"),
                &[p, 2 * max_vertices],
                rows,
                &vertices,
                None,
            )
            .map_err(failed)?;
        }
    } else {
        // XOA 1.x: one dense array of both sets, nuclei first, (2, cells, 2 * max vertices),
        // and each polygon's vertex count, (2, cells). Every cell has one nucleus here.
        let mut nucleus_of_cell: Vec<&[[f32; 2]]> = vec![&[]; n];
        for (owner, ring) in nucleus_cells.iter().zip(&nucleus_rings) {
            nucleus_of_cell[*owner as usize] = ring;
        }
        let sets: [Vec<&[[f32; 2]]>; 2] = [nucleus_of_cell, cells.iter().map(|c| &c.cell_vertices[..]).collect()];
        let max_vertices = sets.iter().flatten().map(|r| r.len()).max().unwrap_or(0).max(1);
        let mut vertices = vec![0f32; 2 * n * 2 * max_vertices];
        let mut num_vertices = vec![0i32; 2 * n];
        for (set, rings) in sets.iter().enumerate() {
            for (i, ring) in rings.iter().enumerate() {
                num_vertices[set * n + i] = ring.len() as i32;
                let start = (set * n + i) * 2 * max_vertices;
                for (j, v) in ring.iter().enumerate() {
                    vertices[start + 2 * j] = v[0];
                    vertices[start + 2 * j + 1] = v[1];
                }
            }
        }
        zip.array("polygon_num_vertices", &[2, n], 1, &num_vertices, None)
            .map_err(failed)?;
        zip.array("polygon_vertices", &[2, n, 2 * max_vertices], 1, &vertices, None)
            .map_err(failed)?;
    }
    zip.finish().map_err(failed)?;
    staged.commit()
}

/// Share of a hard tissue's labels that name another type (annotation noise).
const HARD_LABEL_NOISE: f64 = 0.04;

/// The ground-truth type names, one per cell. A hard tissue names the T-cell subsets and gets
/// some labels wrong, as a real annotation does.
pub(crate) fn type_names(seed: u64, cells: &[Cell], difficulty: Difficulty) -> impl Iterator<Item = String> + '_ {
    cells.iter().enumerate().map(move |(i, c)| match difficulty {
        Difficulty::Standard => CELL_TYPES[c.kind as usize].to_owned(),
        Difficulty::Hard => {
            let truth = match c.kind {
                // CD4 helper and regulatory T cells are CD4 T cells; cytotoxic ones CD8.
                kind::T if crate::expression::cell_state(seed, i, c.kind) == 1 => 6,
                kind::T => 5,
                k => usize::from(k),
            };
            let mut rng = Rng::new(seed, domain::LABELS, i as u64);
            let label = if rng.chance(HARD_LABEL_NOISE) {
                let other = rng.below(HARD_CELL_TYPES.len() as u64 - 1) as usize;
                other + usize::from(other >= truth)
            } else {
                truth
            };
            HARD_CELL_TYPES[label].to_owned()
        }
    })
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
