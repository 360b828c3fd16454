//! An on-disk, tiled index of a transcript file (a `transcripts.parquet` of 100M+ rows, or a
//! SpatialData points element), so that a run is browsed without holding its transcripts in
//! memory.
//!
//! Organised as Xenium Explorer's `transcripts.zarr.zip` is: the tissue is cut into square tiles;
//! each tile's transcripts are grouped by gene; a directory gives each tile's count per gene, so
//! counts answer coarse questions (how many of the shown genes a view holds, totals by category)
//! without reading a transcript, and one gene over the whole tissue is one small read per tile.
//! Qualities are kept (as whole Phred values), so the qv threshold changes without a rebuild.
//!
//! The format is our own (one file: fixed-size records, the tile and gene directory, a JSON
//! header) rather than zarr: the per-gene runs are ragged, so a zarr array would still need this
//! directory on top; and one file is written under a temporary name and renamed, so a half-built
//! cache is never read.
//!
//! Built in three streaming passes with bounded memory: the source into a temporary file of
//! fixed-size rows (bounds, genes and quality histograms counted on the way); those rows into one
//! bucket file per row of tiles; each bucket sorted by (tile, gene) in memory and appended.

use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustc_hash::FxHashMap as HashMap;

use crate::categories::FeatureCategory;
use crate::cells::CellTable;
use crate::error::{XeniumError, io_error};
use crate::transcripts::{Columns, TranscriptLayout, TranscriptSummary, for_each_row, row_count, sum_by_category};

const MAGIC: &[u8; 8] = b"CSTRIDX1";
/// Bumped when the file layout changes (older caches are then rebuilt).
pub const INDEX_FORMAT_VERSION: u32 = 1;
/// Qualities are binned by whole Phred value; the last bin holds 63 and above (and "no qv").
pub const QV_BINS: usize = 64;
/// Quality stored for a file without a qv column.
const NO_QV: u8 = u8::MAX;
const PREFIX_BYTES: u64 = 24;
/// x u16, y u16 (in the tile, in 1/65535 of its side), cell u32, qv u8, 3 bytes unused.
const RECORD_BYTES: usize = 12;
/// x f32, y f32, gene u32, cell u32, qv u8: the temporary rows of pass 1.
const RAW_BYTES: usize = 17;
const MAX_TILES_PER_SIDE: f64 = 64.0;
/// Bucket files of the build's second pass (each sorted in memory in the third).
const BUCKETS: usize = 64;
const MIN_TILE_UM: f64 = 20.0;
const QUANT: f64 = 65535.0;

/// Transcripts read from one tile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TilePoints {
    pub x_um: Vec<f32>,
    pub y_um: Vec<f32>,
    pub gene: Vec<u32>,
    /// Index into the cell table the index was built with, or [`crate::NO_CELL`].
    pub cell: Vec<u32>,
    /// Whole Phred value (255: the file has no qv).
    pub qv: Vec<u8>,
}

impl TilePoints {
    pub fn len(&self) -> usize {
        self.gene.len()
    }

    pub fn is_empty(&self) -> bool {
        self.gene.is_empty()
    }

    fn push(&mut self, x_um: f32, y_um: f32, gene: u32, cell: u32, qv: u8) {
        self.x_um.push(x_um);
        self.y_um.push(y_um);
        self.gene.push(gene);
        self.cell.push(cell);
        self.qv.push(qv);
    }
}

/// Transcript counts on a grid of square bins over the index's bounds, one grid per channel.
#[derive(Debug, Clone, PartialEq)]
pub struct DensityGrid {
    pub min_um: [f64; 2],
    pub bin_um: f64,
    pub cols: u32,
    pub rows: u32,
    /// Per channel, row-major counts.
    pub channels: Vec<Vec<u32>>,
}

/// A block of tiles: `cols` x `rows` from column `col0`, row `row0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileRange {
    pub col0: u32,
    pub row0: u32,
    pub cols: u32,
    pub rows: u32,
}

impl TileRange {
    /// The block's tiles that lie in a grid of `grid_cols` x `grid_rows`, row by row.
    pub fn tiles(self, grid_cols: u32, grid_rows: u32) -> impl Iterator<Item = u32> {
        let cols = self.col0..(self.col0 + self.cols).min(grid_cols);
        (self.row0..(self.row0 + self.rows).min(grid_rows))
            .flat_map(move |r| cols.clone().map(move |c| r * grid_cols + c))
    }
}

/// An opened index: the header and directory in memory, transcripts read from disk on demand.
#[derive(Debug)]
pub struct TranscriptIndex {
    path: PathBuf,
    file: File,
    pub genes: Vec<String>,
    pub categories: Vec<FeatureCategory>,
    /// Per gene, transcripts per whole qv (see [`QV_BINS`]).
    pub qv_histograms: Vec<[u64; QV_BINS]>,
    /// Lower corner of tile (0, 0), world µm.
    pub min_um: [f64; 2],
    pub tile_um: f64,
    pub cols: u32,
    pub rows: u32,
    pub total: u64,
    /// Record index of each tile's first transcript (tiles + 1 entries).
    tile_records: Vec<u64>,
    /// Directory index of each tile's first gene run (tiles + 1 entries).
    tile_entries: Vec<u64>,
    /// (gene, count) runs, by tile then gene.
    directory: Vec<(u32, u32)>,
}

/// What identifies the index of one source read with one cell table: a changed file, another
/// layout or another set of cells gives another index.
pub fn index_file_name(source: &Path, layout: &TranscriptLayout, cells: &CellTable) -> Result<String, XeniumError> {
    let mut hasher = rustc_hash::FxHasher::default();
    INDEX_FORMAT_VERSION.hash(&mut hasher);
    source_fingerprint(source)?.hash(&mut hasher);
    cells_fingerprint(cells).hash(&mut hasher);
    format!("{layout:?}").hash(&mut hasher);
    Ok(format!("{:016x}.cstidx", hasher.finish()))
}

/// Opens the index of `source` in `cache_dir`, building it first when it is missing or unreadable.
/// `progress` gets 0..1 while building and stops the build when it returns false.
pub fn open_or_build_index(
    source: &Path,
    layout: &TranscriptLayout,
    cells: &CellTable,
    cache_dir: &Path,
    progress: &mut dyn FnMut(f32) -> bool,
) -> Result<TranscriptIndex, XeniumError> {
    let path = cache_dir.join(index_file_name(source, layout, cells)?);
    if path.is_file() {
        match TranscriptIndex::open(&path) {
            Ok(index) => return Ok(index),
            Err(error) => log::warn!("rebuilding the transcript index: {error}"),
        }
    }
    std::fs::create_dir_all(cache_dir).map_err(|e| io_error(cache_dir, e))?;
    build_index(source, layout, cells, &path, progress)
}

/// Size and modification time of a file, or summed and latest over a folder's files.
fn source_fingerprint(source: &Path) -> Result<(String, u64, u128), XeniumError> {
    let canonical = source.canonicalize().map_err(|e| io_error(source, e))?;
    let files: Vec<PathBuf> = if canonical.is_dir() {
        std::fs::read_dir(&canonical)
            .map_err(|e| io_error(source, e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect()
    } else {
        vec![canonical.clone()]
    };
    let (mut bytes, mut modified) = (0u64, 0u128);
    for file in files {
        let meta = std::fs::metadata(&file).map_err(|e| io_error(&file, e))?;
        bytes += meta.len();
        let time = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        modified = modified.max(time);
    }
    Ok((canonical.to_string_lossy().into_owned(), bytes, modified))
}

fn cells_fingerprint(cells: &CellTable) -> u64 {
    let mut hasher = rustc_hash::FxHasher::default();
    cells.ids.hash(&mut hasher);
    hasher.finish()
}

/// The tile grid over the bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Grid {
    min_um: [f64; 2],
    tile_um: f64,
    cols: u32,
    rows: u32,
}

impl Grid {
    fn over(min_um: [f64; 2], max_um: [f64; 2]) -> Self {
        let span = (max_um[0] - min_um[0]).max(max_um[1] - min_um[1]).max(0.0);
        let tile_um = (span / MAX_TILES_PER_SIDE).max(MIN_TILE_UM);
        let side = |extent: f64| ((extent / tile_um).floor() as u32 + 1).min(MAX_TILES_PER_SIDE as u32 + 1);
        Grid {
            min_um,
            tile_um,
            cols: side(max_um[0] - min_um[0]),
            rows: side(max_um[1] - min_um[1]),
        }
    }

    fn col_row(&self, x_um: f64, y_um: f64) -> (u32, u32) {
        let cell = |v: f64, min: f64, n: u32| (((v - min) / self.tile_um).floor().max(0.0) as u32).min(n - 1);
        (
            cell(x_um, self.min_um[0], self.cols),
            cell(y_um, self.min_um[1], self.rows),
        )
    }

    /// Row-major tile index.
    fn tile_of(&self, x_um: f64, y_um: f64) -> usize {
        let (col, row) = self.col_row(x_um, y_um);
        row as usize * self.cols as usize + col as usize
    }

    fn origin(&self, col: u32, row: u32) -> [f64; 2] {
        [
            self.min_um[0] + f64::from(col) * self.tile_um,
            self.min_um[1] + f64::from(row) * self.tile_um,
        ]
    }
}

/// A pass-1 row.
#[derive(Debug, Clone, Copy)]
struct Raw {
    x_um: f32,
    y_um: f32,
    gene: u32,
    cell: u32,
    qv: u8,
}

impl Raw {
    fn encode(&self) -> [u8; RAW_BYTES] {
        let mut out = [0u8; RAW_BYTES];
        out[0..4].copy_from_slice(&self.x_um.to_le_bytes());
        out[4..8].copy_from_slice(&self.y_um.to_le_bytes());
        out[8..12].copy_from_slice(&self.gene.to_le_bytes());
        out[12..16].copy_from_slice(&self.cell.to_le_bytes());
        out[16] = self.qv;
        out
    }

    fn decode(bytes: &[u8]) -> Self {
        let word = |i: usize| [bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]];
        Raw {
            x_um: f32::from_le_bytes(word(0)),
            y_um: f32::from_le_bytes(word(4)),
            gene: u32::from_le_bytes(word(8)),
            cell: u32::from_le_bytes(word(12)),
            qv: bytes[16],
        }
    }
}

fn qv_byte(qv: f64) -> u8 {
    if qv.is_finite() {
        qv.floor().clamp(0.0, 254.0) as u8
    } else {
        NO_QV
    }
}

fn cancelled(path: &Path) -> XeniumError {
    XeniumError::Io {
        file: path.to_path_buf(),
        reason: "building the transcript index was cancelled".to_owned(),
    }
}

/// Removes the build's temporary files however the build ends.
struct TempFiles(Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Builds the index of `source` into `out` (written as `out.partial`, then renamed).
pub fn build_index(
    source: &Path,
    layout: &TranscriptLayout,
    cells: &CellTable,
    out: &Path,
    progress: &mut dyn FnMut(f32) -> bool,
) -> Result<TranscriptIndex, XeniumError> {
    // Names of this build's own (two builds of one index, in two processes or after a cancel,
    // must not share temporary files).
    static BUILDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let build = format!(
        ".{}-{}",
        std::process::id(),
        BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let with_suffix = |suffix: &str| {
        let mut name = out.as_os_str().to_owned();
        name.push(&build);
        name.push(suffix);
        PathBuf::from(name)
    };
    let raw_path = with_suffix(".rows");
    let partial = with_suffix(".partial");
    let mut temp = TempFiles(vec![raw_path.clone(), partial.clone()]);

    // Pass 1: the source into fixed-size rows; genes, qualities and bounds on the way.
    let expected_rows = row_count(source);
    let mut genes: Vec<String> = Vec::new();
    let mut categories: Vec<FeatureCategory> = Vec::new();
    let mut qv_histograms: Vec<[u64; QV_BINS]> = Vec::new();
    let mut gene_index: HashMap<Vec<u8>, u32> = HashMap::default();
    let (mut min_um, mut max_um) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    let mut total = 0u64;
    {
        let file = File::create(&raw_path).map_err(|e| io_error(&raw_path, e))?;
        let mut rows = BufWriter::with_capacity(1 << 20, file);
        let mut write_error = None;
        for_each_row(
            source,
            layout,
            Columns::All,
            |row| {
                row.check_position()?;
                let gene = match gene_index.get(row.feature) {
                    Some(&g) => g,
                    None => {
                        let g = genes.len() as u32;
                        genes.push(String::from_utf8_lossy(row.feature).into_owned());
                        categories.push(row.category());
                        qv_histograms.push([0; QV_BINS]);
                        gene_index.insert(row.feature.to_vec(), g);
                        g
                    }
                };
                let qv = qv_byte(row.qv);
                qv_histograms[gene as usize][usize::from(qv).min(QV_BINS - 1)] += 1;
                for axis in 0..2 {
                    let v = if axis == 0 { row.x_um } else { row.y_um };
                    min_um[axis] = min_um[axis].min(v);
                    max_um[axis] = max_um[axis].max(v);
                }
                total += 1;
                let raw = Raw {
                    x_um: row.x_um as f32,
                    y_um: row.y_um as f32,
                    gene,
                    cell: row.cell(cells),
                    qv,
                };
                if let Err(error) = rows.write_all(&raw.encode()) {
                    write_error.get_or_insert(error);
                }
                Ok(())
            },
            |done| {
                let fraction = expected_rows.map_or(0.0, |n| done as f32 / n.max(1) as f32);
                if progress(0.8 * fraction.min(1.0)) {
                    Ok(())
                } else {
                    Err(cancelled(source))
                }
            },
        )?;
        if let Some(error) = write_error {
            return Err(io_error(&raw_path, error));
        }
        rows.flush().map_err(|e| io_error(&raw_path, e))?;
    }
    if total == 0 {
        min_um = [0.0; 2];
        max_um = [0.0; 2];
    }
    let grid = Grid::over(min_um, max_um);

    // Pass 2: one bucket file per run of consecutive tiles (about a row of tiles each, so a wide
    // and short tissue still spreads over many buckets).
    let tiles = (grid.cols * grid.rows) as usize;
    let tiles_per_bucket = tiles.div_ceil(BUCKETS).max(1);
    let bucket_paths: Vec<PathBuf> = (0..tiles.div_ceil(tiles_per_bucket))
        .map(|b| with_suffix(&format!(".bucket{b}")))
        .collect();
    temp.0.extend(bucket_paths.iter().cloned());
    {
        let mut buckets = Vec::with_capacity(bucket_paths.len());
        for path in &bucket_paths {
            let file = File::create(path).map_err(|e| io_error(path, e))?;
            buckets.push(BufWriter::with_capacity(1 << 18, file));
        }
        let file = File::open(&raw_path).map_err(|e| io_error(&raw_path, e))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut buf = vec![0u8; RAW_BYTES * 65_536];
        let mut done = 0u64;
        loop {
            let n = read_full(&mut reader, &mut buf).map_err(|e| io_error(&raw_path, e))?;
            if n == 0 {
                break;
            }
            for bytes in buf[..n - n % RAW_BYTES].chunks_exact(RAW_BYTES) {
                let raw = Raw::decode(bytes);
                let b = grid.tile_of(f64::from(raw.x_um), f64::from(raw.y_um)) / tiles_per_bucket;
                buckets[b].write_all(bytes).map_err(|e| io_error(&bucket_paths[b], e))?;
            }
            done += (n / RAW_BYTES) as u64;
            if !progress(0.8 + 0.1 * done as f32 / total.max(1) as f32) {
                return Err(cancelled(source));
            }
        }
        for (bucket, path) in buckets.iter_mut().zip(&bucket_paths) {
            bucket.flush().map_err(|e| io_error(path, e))?;
        }
    }
    let _ = std::fs::remove_file(&raw_path);

    // Pass 3: each bucket sorted by (tile, gene) and appended.
    let mut tile_records = vec![0u64; tiles + 1];
    let mut tile_entries = vec![0u64; tiles + 1];
    let mut directory: Vec<(u32, u32)> = Vec::new();
    let file = File::create(&partial).map_err(|e| io_error(&partial, e))?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let write_err = |e: std::io::Error| io_error(&partial, e);
    writer.write_all(&[0u8; PREFIX_BYTES as usize]).map_err(write_err)?;
    let mut written = 0u64;
    for (b, path) in bucket_paths.iter().enumerate() {
        let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
        let _ = std::fs::remove_file(path);
        let mut raws: Vec<(usize, Raw)> = bytes
            .chunks_exact(RAW_BYTES)
            .map(|b| {
                let raw = Raw::decode(b);
                (grid.tile_of(f64::from(raw.x_um), f64::from(raw.y_um)), raw)
            })
            .collect();
        drop(bytes);
        raws.sort_unstable_by_key(|(tile, raw)| (*tile, raw.gene));
        let mut at = 0;
        for tile in b * tiles_per_bucket..((b + 1) * tiles_per_bucket).min(tiles) {
            tile_records[tile] = written;
            tile_entries[tile] = directory.len() as u64;
            let origin = grid.origin(tile as u32 % grid.cols, tile as u32 / grid.cols);
            while at < raws.len() && raws[at].0 == tile {
                let (_, raw) = raws[at];
                let in_this_tile = directory.len() as u64 > tile_entries[tile];
                match directory.last_mut() {
                    // A run holds at most u32::MAX transcripts; a longer one continues in a
                    // second run of the same gene.
                    Some((gene, count)) if in_this_tile && *gene == raw.gene && *count < u32::MAX => *count += 1,
                    _ => directory.push((raw.gene, 1)),
                }
                let quantise =
                    |v: f32, o: f64| ((f64::from(v) - o) / grid.tile_um * QUANT).round().clamp(0.0, QUANT) as u16;
                let mut record = [0u8; RECORD_BYTES];
                record[0..2].copy_from_slice(&quantise(raw.x_um, origin[0]).to_le_bytes());
                record[2..4].copy_from_slice(&quantise(raw.y_um, origin[1]).to_le_bytes());
                record[4..8].copy_from_slice(&raw.cell.to_le_bytes());
                record[8] = raw.qv;
                writer.write_all(&record).map_err(write_err)?;
                written += 1;
                at += 1;
            }
        }
        if !progress(0.9 + 0.1 * (b + 1) as f32 / bucket_paths.len() as f32) {
            return Err(cancelled(source));
        }
    }
    tile_records[tiles] = written;
    tile_entries[tiles] = directory.len() as u64;

    let tile_records_offset = PREFIX_BYTES + written * RECORD_BYTES as u64;
    for v in tile_records.iter().chain(&tile_entries) {
        writer.write_all(&v.to_le_bytes()).map_err(write_err)?;
    }
    for (gene, count) in &directory {
        writer.write_all(&gene.to_le_bytes()).map_err(write_err)?;
        writer.write_all(&count.to_le_bytes()).map_err(write_err)?;
    }
    let header_offset = tile_records_offset + (2 * (tiles + 1) * 8 + directory.len() * 8) as u64;
    let header = serde_json::json!({
        "format_version": INDEX_FORMAT_VERSION,
        "source": source.to_string_lossy(),
        "min_um": grid.min_um,
        "tile_um": grid.tile_um,
        "cols": grid.cols,
        "rows": grid.rows,
        "total": written,
        "directory_entries": directory.len(),
        "genes": genes,
        "categories": categories.iter().map(|c| c.key()).collect::<Vec<_>>(),
        "qv_histograms": qv_histograms.iter().map(|h| h.to_vec()).collect::<Vec<_>>(),
    });
    let header = serde_json::to_vec(&header).map_err(|e| io_error(&partial, e))?;
    writer.write_all(&header).map_err(write_err)?;
    let mut file = writer.into_inner().map_err(|e| io_error(&partial, e.error()))?;
    file.seek(SeekFrom::Start(0)).map_err(write_err)?;
    let mut prefix = Vec::with_capacity(PREFIX_BYTES as usize);
    prefix.extend_from_slice(MAGIC);
    prefix.extend_from_slice(&header_offset.to_le_bytes());
    prefix.extend_from_slice(&(header.len() as u64).to_le_bytes());
    file.write_all(&prefix).map_err(write_err)?;
    file.sync_all().map_err(write_err)?;
    drop(file);
    std::fs::rename(&partial, out).map_err(|e| io_error(out, e))?;
    temp.0.clear();
    let _ = progress(1.0);
    TranscriptIndex::open(out)
}

/// Reads until `buf` is full or the file ends; the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

impl TranscriptIndex {
    /// Opens an index file: reads its header and directory, checking that they fit the file.
    pub fn open(path: &Path) -> Result<Self, XeniumError> {
        let corrupt = |reason: String| XeniumError::Corrupt {
            file: path.to_path_buf(),
            format: "transcript index",
            reason,
        };
        let file = File::open(path).map_err(|e| io_error(path, e))?;
        let file_len = file.metadata().map_err(|e| io_error(path, e))?.len();
        let mut prefix = [0u8; PREFIX_BYTES as usize];
        read_exact_at(&file, &mut prefix, 0).map_err(|e| corrupt(format!("no header ({e})")))?;
        if &prefix[0..8] != MAGIC {
            return Err(corrupt("not a CellSymphony transcript index".to_owned()));
        }
        let word = |i: usize| u64::from_le_bytes(prefix[i..i + 8].try_into().unwrap_or_default());
        let (header_offset, header_len) = (word(8), word(16));
        if header_offset.checked_add(header_len) != Some(file_len) {
            return Err(corrupt("the file is truncated".to_owned()));
        }
        let mut header = vec![0u8; header_len as usize];
        read_exact_at(&file, &mut header, header_offset).map_err(|e| corrupt(e.to_string()))?;
        let header: serde_json::Value = serde_json::from_slice(&header).map_err(|e| corrupt(e.to_string()))?;
        if header["format_version"].as_u64() != Some(u64::from(INDEX_FORMAT_VERSION)) {
            return Err(corrupt(format!(
                "format version {} is not {INDEX_FORMAT_VERSION}",
                header["format_version"]
            )));
        }
        let number = |key: &str| {
            header[key]
                .as_f64()
                .ok_or_else(|| corrupt(format!("header has no {key}")))
        };
        let count = |key: &str| {
            header[key]
                .as_u64()
                .ok_or_else(|| corrupt(format!("header has no {key}")))
        };
        let pair = |key: &str| -> Result<[f64; 2], XeniumError> {
            let v = &header[key];
            match (v[0].as_f64(), v[1].as_f64()) {
                (Some(a), Some(b)) => Ok([a, b]),
                _ => Err(corrupt(format!("header has no {key}"))),
            }
        };
        let (cols, rows) = (count("cols")?, count("rows")?);
        let tile_um = number("tile_um")?;
        let grid_ok = (1..=1024).contains(&cols) && (1..=1024).contains(&rows) && tile_um.is_finite() && tile_um > 0.0;
        if !grid_ok {
            return Err(corrupt(format!(
                "impossible grid: {cols} x {rows} tiles of {tile_um} µm"
            )));
        }
        let (cols, rows) = (cols as u32, rows as u32);
        let (total, entries) = (count("total")?, count("directory_entries")?);
        let genes: Vec<String> = header["genes"]
            .as_array()
            .map(|a| a.iter().filter_map(|g| g.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let categories: Vec<FeatureCategory> = header["categories"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        c.as_str()
                            .and_then(FeatureCategory::from_key)
                            .unwrap_or(FeatureCategory::Gene)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let qv_histograms: Vec<[u64; QV_BINS]> = header["qv_histograms"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|h| {
                        let mut bins = [0u64; QV_BINS];
                        for (bin, v) in bins.iter_mut().zip(h.as_array().into_iter().flatten()) {
                            *bin = v.as_u64().unwrap_or(0);
                        }
                        bins
                    })
                    .collect()
            })
            .unwrap_or_default();
        if categories.len() != genes.len() || qv_histograms.len() != genes.len() {
            return Err(corrupt("genes, categories and histograms differ in length".to_owned()));
        }
        let tiles = (cols as usize) * (rows as usize);
        let tables_offset = total
            .checked_mul(RECORD_BYTES as u64)
            .and_then(|n| n.checked_add(PREFIX_BYTES));
        let tables_len = entries
            .checked_mul(8)
            .and_then(|n| n.checked_add((2 * (tiles + 1) * 8) as u64));
        let (Some(tables_offset), Some(tables_len)) = (tables_offset, tables_len) else {
            return Err(corrupt("the sections do not add up to the file".to_owned()));
        };
        if tables_offset.checked_add(tables_len) != Some(header_offset) {
            return Err(corrupt("the sections do not add up to the file".to_owned()));
        }
        let mut tables = vec![0u8; tables_len as usize];
        read_exact_at(&file, &mut tables, tables_offset).map_err(|e| corrupt(e.to_string()))?;
        let u64_at = |i: usize| u64::from_le_bytes(tables[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        let tile_records: Vec<u64> = (0..=tiles).map(u64_at).collect();
        let tile_entries: Vec<u64> = (tiles + 1..=2 * tiles + 1).map(u64_at).collect();
        let base = 2 * (tiles + 1) * 8;
        let directory: Vec<(u32, u32)> = tables[base..]
            .chunks_exact(8)
            .map(|b| {
                (
                    u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                    u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
                )
            })
            .collect();
        let monotone = |v: &[u64], end: u64| v.windows(2).all(|w| w[0] <= w[1]) && v.last() == Some(&end);
        if !monotone(&tile_records, total) || !monotone(&tile_entries, entries) {
            return Err(corrupt("the tile directory is inconsistent".to_owned()));
        }
        // Each tile's runs add up to its records.
        let runs_fit = (0..tiles).all(|t| {
            let runs = &directory[tile_entries[t] as usize..tile_entries[t + 1] as usize];
            runs.iter().map(|(_, n)| u64::from(*n)).sum::<u64>() == tile_records[t + 1] - tile_records[t]
        });
        let histograms_fit = qv_histograms.iter().flatten().sum::<u64>() == total;
        if directory.iter().any(|(g, _)| *g as usize >= genes.len()) || !runs_fit || !histograms_fit {
            return Err(corrupt("the tile directory is inconsistent".to_owned()));
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            genes,
            categories,
            qv_histograms,
            min_um: pair("min_um")?,
            tile_um,
            cols,
            rows,
            total,
            tile_records,
            tile_entries,
            directory,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn tile_count(&self) -> usize {
        (self.cols as usize) * (self.rows as usize)
    }

    /// World rectangle of a tile (lower and upper corner).
    pub fn tile_rect(&self, tile: u32) -> ([f64; 2], [f64; 2]) {
        let grid = Grid {
            min_um: self.min_um,
            tile_um: self.tile_um,
            cols: self.cols,
            rows: self.rows,
        };
        let lo = grid.origin(tile % self.cols, tile / self.cols);
        (lo, [lo[0] + self.tile_um, lo[1] + self.tile_um])
    }

    /// Tiles that meet the world rectangle `lo`..`hi`, row by row.
    pub fn tiles_in(&self, lo: [f64; 2], hi: [f64; 2]) -> Vec<u32> {
        self.tile_range(lo, hi)
            .map_or_else(Vec::new, |range| range.tiles(self.cols, self.rows).collect())
    }

    /// A tile's (gene, count) runs, all qualities.
    pub fn tile_gene_counts(&self, tile: u32) -> &[(u32, u32)] {
        let t = tile as usize;
        match (self.tile_entries.get(t), self.tile_entries.get(t + 1)) {
            (Some(&a), Some(&b)) => &self.directory[a as usize..b as usize],
            _ => &[],
        }
    }

    /// Transcripts per gene with qv >= `min_qv`.
    pub fn gene_counts(&self, min_qv: u8) -> Vec<u64> {
        let from = usize::from(min_qv).min(QV_BINS - 1);
        self.qv_histograms.iter().map(|h| h[from..].iter().sum()).collect()
    }

    /// The counts `info` reports, from the histograms (no transcript is read).
    pub fn summary(&self, min_qv: f64) -> TranscriptSummary {
        let passing = self.gene_counts(qv_byte(min_qv.max(0.0).ceil()));
        let all: Vec<u64> = self.qv_histograms.iter().map(|h| h.iter().sum()).collect();
        TranscriptSummary {
            total: self.total,
            below_min_qv: self.total.saturating_sub(passing.iter().sum::<u64>()),
            min_qv,
            by_category: sum_by_category(self.categories.iter().copied().zip(all)),
            features: self.genes.len(),
        }
    }

    /// One tile's transcripts of the genes `shown` marks, with qv >= `min_qv`.
    pub fn read_tile(&self, tile: u32, shown: &[bool], min_qv: u8) -> Result<TilePoints, XeniumError> {
        let mut out = TilePoints::default();
        let t = tile as usize;
        if t + 1 >= self.tile_records.len() {
            return Ok(out);
        }
        let runs = self.tile_gene_counts(tile);
        let wanted: u64 = runs
            .iter()
            .filter(|(g, _)| shown.get(*g as usize).copied().unwrap_or(false))
            .map(|(_, n)| u64::from(*n))
            .sum();
        if wanted == 0 {
            return Ok(out);
        }
        let (origin, _) = self.tile_rect(tile);
        let scale = self.tile_um / QUANT;
        let mut decode = |gene: u32, bytes: &[u8]| {
            for r in bytes.chunks_exact(RECORD_BYTES) {
                if r[8] < min_qv {
                    continue;
                }
                let x = origin[0] + f64::from(u16::from_le_bytes([r[0], r[1]])) * scale;
                let y = origin[1] + f64::from(u16::from_le_bytes([r[2], r[3]])) * scale;
                let cell = u32::from_le_bytes([r[4], r[5], r[6], r[7]]);
                out.push(x as f32, y as f32, gene, cell, r[8]);
            }
        };
        let tile_start = self.tile_records[t];
        let tile_len = self.tile_records[t + 1] - tile_start;
        let offset_of = |record: u64| PREFIX_BYTES + record * RECORD_BYTES as u64;
        let read = |record: u64, n: u64| -> Result<Vec<u8>, XeniumError> {
            let mut buf = vec![0u8; (n as usize) * RECORD_BYTES];
            read_exact_at(&self.file, &mut buf, offset_of(record)).map_err(|e| io_error(&self.path, e))?;
            Ok(buf)
        };
        if wanted * 2 >= tile_len {
            // Most of the tile is wanted: one read.
            let bytes = read(tile_start, tile_len)?;
            let mut at = 0usize;
            for &(gene, n) in runs {
                let len = n as usize * RECORD_BYTES;
                if shown.get(gene as usize).copied().unwrap_or(false) {
                    decode(gene, &bytes[at..at + len]);
                }
                at += len;
            }
        } else {
            let mut start = tile_start;
            for &(gene, n) in runs {
                if shown.get(gene as usize).copied().unwrap_or(false) {
                    decode(gene, &read(start, u64::from(n))?);
                }
                start += u64::from(n);
            }
        }
        Ok(out)
    }

    /// Counts on a grid of at most `bins_per_side` bins a side over the whole index: one grid per
    /// channel, a channel summing the genes listed for it (qv >= `min_qv`).
    pub fn density(
        &self,
        channels: &[Vec<u32>],
        min_qv: u8,
        bins_per_side: u32,
        cancel: &AtomicBool,
    ) -> Result<DensityGrid, XeniumError> {
        let span_um = self.tile_um * f64::from(self.cols.max(self.rows));
        let bin_um = span_um / f64::from(bins_per_side.max(1));
        let all = TileRange {
            col0: 0,
            row0: 0,
            cols: self.cols,
            rows: self.rows,
        };
        self.density_in(channels, min_qv, all, bin_um, &|| cancel.load(Ordering::Relaxed))
    }

    /// The tiles that meet the rectangle `lo`..`hi`, as a block of columns and rows (None: it
    /// misses the index).
    pub fn tile_range(&self, lo: [f64; 2], hi: [f64; 2]) -> Option<TileRange> {
        let span = |lo: f64, hi: f64, min: f64, n: u32| -> Option<(u32, u32)> {
            let a = ((lo - min) / self.tile_um).floor();
            let b = ((hi - min) / self.tile_um).floor();
            if !(a.is_finite() && b.is_finite()) || n == 0 {
                return None;
            }
            let (a, b) = (a.max(0.0), b.min(f64::from(n) - 1.0));
            (a <= b).then_some((a as u32, b as u32 - a as u32 + 1))
        };
        let (col0, cols) = span(lo[0], hi[0], self.min_um[0], self.cols)?;
        let (row0, rows) = span(lo[1], hi[1], self.min_um[1], self.rows)?;
        Some(TileRange { col0, row0, cols, rows })
    }

    /// Counts in bins of `bin_um` over the block of tiles `range` (the grid starts at its first
    /// tile's corner): one grid per channel, as [`Self::density`]. `cancelled` is asked
    /// between tiles.
    pub fn density_in(
        &self,
        channels: &[Vec<u32>],
        min_qv: u8,
        range: TileRange,
        bin_um: f64,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<DensityGrid, XeniumError> {
        let bin_um = if bin_um.is_finite() && bin_um > 0.0 {
            bin_um
        } else {
            self.tile_um
        };
        let min_um = [
            self.min_um[0] + self.tile_um * f64::from(range.col0),
            self.min_um[1] + self.tile_um * f64::from(range.row0),
        ];
        let cols = ((self.tile_um * f64::from(range.cols)) / bin_um).ceil().max(1.0) as u32;
        let rows = ((self.tile_um * f64::from(range.rows)) / bin_um).ceil().max(1.0) as u32;
        let mut channel_of = vec![u32::MAX; self.genes.len()];
        for (c, genes) in channels.iter().enumerate() {
            for &g in genes {
                if let Some(slot) = channel_of.get_mut(g as usize) {
                    *slot = c as u32;
                }
            }
        }
        let shown: Vec<bool> = channel_of.iter().map(|&c| c != u32::MAX).collect();
        let mut grids = vec![vec![0u32; (cols as usize) * (rows as usize)]; channels.len()];
        for tile in range.tiles(self.cols, self.rows) {
            if cancelled() {
                return Err(self::cancelled(&self.path));
            }
            let points = self.read_tile(tile, &shown, min_qv)?;
            for i in 0..points.len() {
                let bx = ((f64::from(points.x_um[i]) - min_um[0]) / bin_um).max(0.0) as u32;
                let by = ((f64::from(points.y_um[i]) - min_um[1]) / bin_um).max(0.0) as u32;
                let channel = channel_of[points.gene[i] as usize] as usize;
                let bin = (by.min(rows - 1) as usize) * (cols as usize) + bx.min(cols - 1) as usize;
                grids[channel][bin] += 1;
            }
        }
        Ok(DensityGrid {
            min_um,
            bin_um,
            cols,
            rows,
            channels: grids,
        })
    }

    /// The transcripts of one cell (qv >= `min_qv`), looked for in the tiles that meet the
    /// rectangle `lo`..`hi` (the cell's bounds).
    pub fn cell_transcripts(
        &self,
        cell: u32,
        lo: [f64; 2],
        hi: [f64; 2],
        min_qv: u8,
    ) -> Result<TilePoints, XeniumError> {
        let all = vec![true; self.genes.len()];
        let mut out = TilePoints::default();
        for tile in self.tiles_in(lo, hi) {
            let points = self.read_tile(tile, &all, min_qv)?;
            for i in (0..points.len()).filter(|&i| points.cell[i] == cell) {
                out.push(points.x_um[i], points.y_um[i], points.gene[i], cell, points.qv[i]);
            }
        }
        Ok(out)
    }
}
