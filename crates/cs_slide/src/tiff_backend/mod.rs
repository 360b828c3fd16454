//! [`TiffSource`]: TIFF and BigTIFF read with the image-rs `tiff` crate, for the files OpenSlide 3.4
//! cannot see whole: OME-TIFF pyramids in SubIFDs (10x's post-Xenium H&E, every Xenium morphology
//! image, Bio-Formats output), 16-bit grey channels as pages, samples or separate files.
//!
//! The file's structure is read once at open: the main IFD chain, each image's SubIFDs, and the
//! OME-XML when there is one (channel names, µm per pixel, which IFD of which file holds which
//! channel). A *plane* is one stored image at full resolution with its reduced levels; a
//! *channel* is one sample of one plane. Tiles are decoded by the `tiff` crate (JPEG, LZW,
//! Deflate, zstd, PackBits, uncompressed; tiled or stripped; chunky or planar); each level keeps a
//! small pool of open decoders so that tile loader threads read in parallel.

mod ifd_start;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use tiff::decoder::{ChunkType, Decoder, DecodingResult, Limits};
use tiff::tags::{IfdPointer, PlanarConfiguration, Tag};
use tiff::{ColorType, TiffError};

use crate::SlideError;
use crate::ome::{OmePixels, is_ome_xml, parse_ome_xml};
use crate::source::{
    ChannelInfo, ClippedRegion, Gray16Image, GreyChannelDisplay, LevelInfo, RgbaImage, SlideMetadata, SlideSource,
    composite_grey_channels, measure_display_windows, read_failed,
};
use ifd_start::IfdStart;

/// Decoders kept open per level (one per tile loader thread is enough).
const DECODERS_PER_LEVEL: usize = 4;
/// Main IFDs followed before the chain is judged corrupt.
const MAX_MAIN_IFDS: usize = 100_000;

type TiffDecoder = Decoder<IfdStart<BufReader<File>>>;

/// The TIFF compressions the `tiff` crate decodes with the features enabled here.
const SUPPORTED_COMPRESSIONS: [(u16, &str); 7] = [
    (1, "uncompressed"),
    (5, "LZW"),
    (7, "JPEG"),
    (8, "Deflate"),
    (32946, "Deflate"),
    (32773, "PackBits"),
    (50000, "zstd"),
];

/// How a plane's samples are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SampleKind {
    Rgb,
    Rgba,
    /// JPEG tiles left in YCbCr by the decoder: converted to RGB here (JFIF, full range).
    YCbCr,
    /// One or more grey samples per pixel.
    Grey,
}

struct Level {
    ifd_offset: u64,
    width_px: u64,
    height_px: u64,
    decoders: Mutex<Vec<TiffDecoder>>,
}

struct Plane {
    file: PathBuf,
    /// The file's first 16 bytes (TIFF header).
    header: Vec<u8>,
    levels: Vec<Level>,
    samples_per_pixel: u16,
    bits_per_sample: u8,
    kind: SampleKind,
    planar_separate: bool,
}

/// One channel: which plane, which sample of it, and the grey window used when the whole image is
/// drawn as RGBA (`read_region`).
#[derive(Debug, Clone, Copy)]
struct ChannelSlot {
    plane: usize,
    sample: u16,
    display: GreyChannelDisplay,
}

/// A TIFF or OME-TIFF opened without OpenSlide. `Send + Sync`: tile loader threads share it.
pub struct TiffSource {
    path: PathBuf,
    metadata: SlideMetadata,
    planes: Vec<Plane>,
    channels: Vec<ChannelSlot>,
}

impl std::fmt::Debug for TiffSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TiffSource")
            .field("path", &self.path)
            .field("planes", &self.planes.len())
            .finish_non_exhaustive()
    }
}

/// One IFD of the main chain, as far as opening needs it.
#[derive(Debug, Clone)]
struct MainIfd {
    offset: u64,
    width_px: u64,
    height_px: u64,
    reduced: bool,
    sub_ifds: Vec<u64>,
}

/// What opening learns of one file: its header, main chain and first description.
pub(crate) struct FileScan {
    header: Vec<u8>,
    mains: Vec<MainIfd>,
    description: Option<String>,
    resolution: (Option<f64>, Option<f64>),
    decoder: Decoder<BufReader<File>>,
}

fn cannot_open(path: &Path, reason: impl Into<String>) -> SlideError {
    SlideError::CannotOpen {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    // Tile offset arrays of gigapixel levels pass the default 1 MiB.
    limits.ifd_value_size = 512 * 1024 * 1024;
    limits
}

/// Whether a file starts like a TIFF or BigTIFF.
pub fn is_tiff_file(path: &Path) -> bool {
    let mut head = [0u8; 4];
    File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok()
        && matches!(&head, b"II*\0" | b"MM\0*" | b"II+\0" | b"MM\0+")
}

/// Why OpenSlide 3.4 would show this TIFF wrongly or not at all: OME-XML, a SubIFD pyramid, or
/// samples deeper than 8 bits. `None` when it is a plain (vendor or generic) TIFF.
pub(crate) fn needs_tiff_backend(path: &Path, scan: &mut FileScan) -> Result<Option<&'static str>, SlideError> {
    let first = scan
        .mains
        .first()
        .ok_or_else(|| cannot_open(path, "the TIFF has no images"))?;
    if scan.description.as_deref().is_some_and(is_ome_xml) {
        return Ok(Some("OME-TIFF"));
    }
    if !first.sub_ifds.is_empty() {
        return Ok(Some("pyramid in SubIFDs"));
    }
    let bits = scan.decoder.colortype().map(|c| c.bit_depth()).unwrap_or(8);
    Ok((bits > 8).then_some("samples deeper than 8 bits"))
}

fn tiff_error(path: &Path, what: &str, error: TiffError) -> SlideError {
    cannot_open(path, format!("{what}: {error}"))
}

pub(crate) fn scan_file(path: &Path) -> Result<FileScan, SlideError> {
    if !path.exists() {
        return Err(SlideError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let mut file = File::open(path).map_err(|e| cannot_open(path, e.to_string()))?;
    let mut header = vec![0u8; 16];
    let n = file.read(&mut header).map_err(|e| cannot_open(path, e.to_string()))?;
    header.truncate(n);
    let file = File::open(path).map_err(|e| cannot_open(path, e.to_string()))?;
    let mut decoder = Decoder::new(BufReader::new(file))
        .map_err(|e| tiff_error(path, "not a readable TIFF", e))?
        .with_limits(limits());
    let first = decoder
        .ifd_pointer()
        .ok_or_else(|| cannot_open(path, "the TIFF has no first IFD"))?;
    let description = decoder.get_tag_ascii_string(Tag::ImageDescription).ok();
    let resolution = (
        resolution_um(&mut decoder, Tag::XResolution),
        resolution_um(&mut decoder, Tag::YResolution),
    );
    let mut mains = Vec::new();
    let mut next = Some(first);
    let mut seen = std::collections::HashSet::new();
    while let Some(pointer) = next {
        if !seen.insert(pointer.0) || mains.len() >= MAX_MAIN_IFDS {
            return Err(cannot_open(path, "the TIFF's IFD chain loops back on itself"));
        }
        let directory = decoder
            .read_directory(pointer)
            .map_err(|e| tiff_error(path, &format!("IFD at byte {}", pointer.0), e))?;
        next = directory.next();
        let mut tags = decoder.read_directory_tags(&directory);
        let width_px: u64 = tags.find_tag_unsigned(Tag::ImageWidth).ok().flatten().unwrap_or(0);
        let height_px: u64 = tags.find_tag_unsigned(Tag::ImageLength).ok().flatten().unwrap_or(0);
        let subfile: u32 = tags.find_tag_unsigned(Tag::NewSubfileType).ok().flatten().unwrap_or(0);
        let sub_ifds = match tags.find_tag(Tag::SubIfd) {
            Ok(Some(value)) => value
                .into_ifd_vec()
                .map(|v| v.into_iter().map(|p| p.0).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        mains.push(MainIfd {
            offset: pointer.0,
            width_px,
            height_px,
            reduced: subfile & 1 == 1,
            sub_ifds,
        });
    }
    Ok(FileScan {
        header,
        mains,
        description,
        resolution,
        decoder,
    })
}

/// µm per pixel from XResolution/YResolution and ResolutionUnit, when physically plausible.
fn resolution_um(decoder: &mut Decoder<BufReader<File>>, tag: Tag) -> Option<f64> {
    let per_unit = match decoder.find_tag(tag).ok()?? {
        tiff::decoder::ifd::Value::Rational(n, d) if d != 0 => f64::from(n) / f64::from(d),
        other => other.into_f64().ok()?,
    };
    let um_per_unit = match decoder.find_tag_unsigned::<u16>(Tag::ResolutionUnit).ok().flatten() {
        Some(3) => 10_000.0,
        // 2 (inch) is also the default when the tag is absent.
        Some(2) | None => 25_400.0,
        _ => return None,
    };
    let mpp = um_per_unit / per_unit;
    (mpp.is_finite() && (0.05..=50.0).contains(&mpp)).then_some(mpp)
}

/// The dimensions of an IFD anywhere in the file.
fn ifd_size(scan: &mut FileScan, path: &Path, offset: u64) -> Result<(u64, u64), SlideError> {
    let directory = scan
        .decoder
        .read_directory(IfdPointer(offset))
        .map_err(|e| tiff_error(path, &format!("SubIFD at byte {offset}"), e))?;
    let mut tags = scan.decoder.read_directory_tags(&directory);
    let width: u64 = tags.find_tag_unsigned(Tag::ImageWidth).ok().flatten().unwrap_or(0);
    let height: u64 = tags.find_tag_unsigned(Tag::ImageLength).ok().flatten().unwrap_or(0);
    Ok((width, height))
}

/// The levels of the plane stored in main IFD `index`: itself and its SubIFDs, finest first, or
/// (no SubIFDs) the reduced pages that follow it in the main chain.
fn plane_levels(scan: &mut FileScan, path: &Path, index: usize) -> Result<Vec<(u64, u64, u64)>, SlideError> {
    let main = scan.mains[index].clone();
    let mut levels = vec![(main.offset, main.width_px, main.height_px)];
    if !main.sub_ifds.is_empty() {
        for offset in &main.sub_ifds {
            let (w, h) = ifd_size(scan, path, *offset)?;
            levels.push((*offset, w, h));
        }
    } else {
        for next in scan.mains.iter().skip(index + 1) {
            let &(_, last_w, last_h) = levels.last().unwrap_or(&(0, 0, 0));
            let same_aspect = next.width_px > 0
                && ((next.height_px as f64 / next.width_px as f64)
                    - (main.height_px as f64 / main.width_px.max(1) as f64))
                    .abs()
                    < 0.02 * (main.height_px as f64 / main.width_px.max(1) as f64).max(1e-9)
                        + 2.0 / next.width_px as f64;
            if next.width_px < last_w && next.height_px < last_h && same_aspect {
                levels.push((next.offset, next.width_px, next.height_px));
            } else if !next.reduced {
                break;
            }
        }
    }
    // Finest first, each strictly smaller than the one before; others (thumbnails) dropped.
    levels.sort_by_key(|level| std::cmp::Reverse(level.1));
    levels.dedup_by(|b, a| b.1 >= a.1);
    Ok(levels)
}

impl TiffSource {
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SlideError> {
        let path = path.as_ref();
        if path.is_dir() {
            return Err(cannot_open(path, "this is a folder, not an image file"));
        }
        Self::from_scan(path, scan_file(path)?)
    }

    /// Opens a file whose structure [`scan_file`] has read already.
    pub(crate) fn from_scan(path: &Path, mut scan: FileScan) -> Result<Self, SlideError> {
        if scan.mains.is_empty() {
            return Err(cannot_open(path, "the TIFF has no images"));
        }
        let ome = match scan.description.as_deref().filter(|d| is_ome_xml(d)) {
            Some(xml) => Some(parse_ome_xml(xml).map_err(|reason| cannot_open(path, reason))?),
            None => None,
        };
        let (planes, names) = match &ome {
            Some(pixels) => ome_planes(path, &mut scan, pixels)?,
            None => generic_planes(path, &mut scan)?,
        };
        let (mpp_x, mpp_y) = match &ome {
            Some(pixels) if pixels.physical_size_x_um.is_some() => {
                (pixels.physical_size_x_um, pixels.physical_size_y_um)
            }
            _ => scan.resolution,
        };
        Self::assemble(path, planes, names, ome.as_ref(), mpp_x, mpp_y)
    }

    fn assemble(
        path: &Path,
        mut planes: Vec<Plane>,
        names: Vec<Option<String>>,
        ome: Option<&OmePixels>,
        mpp_x: Option<f64>,
        mpp_y: Option<f64>,
    ) -> Result<Self, SlideError> {
        // Every plane must share level 0's size; keep the levels all planes have.
        let level0 = (planes[0].levels[0].width_px, planes[0].levels[0].height_px);
        for plane in &planes {
            let size = (plane.levels[0].width_px, plane.levels[0].height_px);
            if size != level0 {
                return Err(cannot_open(
                    path,
                    format!(
                        "its images differ in size: {}x{} px in {} against {}x{} px",
                        size.0,
                        size.1,
                        plane.file.display(),
                        level0.0,
                        level0.1
                    ),
                ));
            }
        }
        let level_count = planes.iter().map(|p| p.levels.len()).min().unwrap_or(1);
        for plane in &mut planes {
            plane.levels.truncate(level_count);
        }
        let levels: Vec<LevelInfo> = planes[0]
            .levels
            .iter()
            .map(|level| LevelInfo {
                width_px: level.width_px,
                height_px: level.height_px,
                downsample: level0.0 as f64 / level.width_px.max(1) as f64,
            })
            .collect();

        let rgb = planes.len() == 1 && matches!(planes[0].kind, SampleKind::Rgb | SampleKind::Rgba | SampleKind::YCbCr);
        let mut channel_infos = Vec::new();
        let mut slots = Vec::new();
        for (p, plane) in planes.iter().enumerate() {
            let colour_samples = match plane.kind {
                SampleKind::Rgb | SampleKind::YCbCr => 3,
                SampleKind::Rgba => 3,
                SampleKind::Grey => plane.samples_per_pixel,
            };
            for sample in 0..colour_samples {
                let index = slots.len();
                let file_name = names.get(index).cloned().flatten().filter(|_| !rgb);
                let named_by_file = file_name.is_some();
                let name = if rgb {
                    ["R", "G", "B"][usize::from(sample).min(2)].to_owned()
                } else {
                    file_name.unwrap_or_else(|| default_channel_name(index))
                };
                let ome_color = ome.and_then(|o| o.channels.get(index)).and_then(|c| c.color_rgba);
                channel_infos.push(ChannelInfo {
                    name,
                    named_by_file,
                    bits_per_sample: plane.bits_per_sample,
                    color_rgba: ome_color,
                });
                slots.push(ChannelSlot {
                    plane: p,
                    sample,
                    display: GreyChannelDisplay {
                        window: (0, if plane.bits_per_sample > 8 { u16::MAX } else { 255 }),
                        color: ome_color
                            .map(|c| [c[0], c[1], c[2]])
                            .unwrap_or_else(|| default_channel_color(index)),
                    },
                });
            }
        }
        let vendor = if ome.is_some() { "ome-tiff" } else { "generic-tiff" };
        let mut properties = BTreeMap::new();
        properties.insert("tiff.planes".to_owned(), planes.len().to_string());
        if let Some(pixels) = ome {
            properties.insert("ome.SizeC".to_owned(), pixels.size_c.to_string());
            properties.insert("ome.SizeZ".to_owned(), pixels.size_z.to_string());
            properties.insert("ome.SizeT".to_owned(), pixels.size_t.to_string());
            properties.insert("ome.Type".to_owned(), pixels.pixel_type.clone());
            properties.insert("ome.DimensionOrder".to_owned(), pixels.dimension_order.clone());
        }
        let mut source = Self {
            path: path.to_path_buf(),
            metadata: SlideMetadata {
                backend: "tiff".to_owned(),
                vendor: vendor.to_owned(),
                levels,
                mpp_x,
                mpp_y: mpp_y.or(mpp_x),
                objective_power: None,
                properties,
                associated_images: Vec::new(),
                channels: channel_infos,
                is_multichannel: !rgb,
            },
            planes,
            channels: slots,
        };
        if !rgb {
            source.measure_display_windows();
        }
        Ok(source)
    }

    /// Sets each grey channel's window for `read_region` ([`measure_display_windows`]).
    fn measure_display_windows(&mut self) {
        let windows = measure_display_windows(&*self);
        for (slot, window) in self.channels.iter_mut().zip(windows) {
            if let Some(window) = window {
                slot.display.window = window;
            }
        }
    }

    fn decoder(&self, plane: usize, level: usize) -> Result<TiffDecoder, SlideError> {
        let plane_ref = &self.planes[plane];
        let level_ref = &plane_ref.levels[level];
        if let Some(decoder) = level_ref.decoders.lock().unwrap_or_else(PoisonError::into_inner).pop() {
            return Ok(decoder);
        }
        let what = || format!("level {level}");
        let file = File::open(&plane_ref.file).map_err(|e| read_failed(&plane_ref.file, what(), e))?;
        let reader = IfdStart::new(
            BufReader::with_capacity(64 * 1024, file),
            &plane_ref.header,
            level_ref.ifd_offset,
        )
        .map_err(|e| read_failed(&plane_ref.file, what(), e))?;
        Decoder::new(reader)
            .map(|d| d.with_limits(limits()))
            .map_err(|e| read_failed(&plane_ref.file, what(), e))
    }

    fn give_back(&self, plane: usize, level: usize, decoder: TiffDecoder) {
        let mut pool = self.planes[plane].levels[level]
            .decoders
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if pool.len() < DECODERS_PER_LEVEL {
            pool.push(decoder);
        }
    }

    /// Reads a region of one plane at one level as interleaved samples widened to u16 (8-bit
    /// samples keep their values). Pixels outside the image stay 0.
    fn read_plane_region(
        &self,
        plane: usize,
        level: usize,
        origin_in_level_px: (i64, i64),
        width: u32,
        height: u32,
    ) -> Result<(Vec<u16>, usize), SlideError> {
        let plane_ref = &self.planes[plane];
        let spp = usize::from(plane_ref.samples_per_pixel.max(1));
        let mut out = vec![0u16; width as usize * height as usize * spp];
        let level_ref = &plane_ref.levels[level];
        let level_size = (level_ref.width_px, level_ref.height_px);
        let Some(region) = ClippedRegion::new(origin_in_level_px, (width, height), level_size) else {
            return Ok((out, spp));
        };
        let mut decoder = self.decoder(plane, level)?;
        let result = self.copy_chunks(&mut decoder, plane, level, &region, width, &mut out);
        if result.is_ok() {
            self.give_back(plane, level, decoder);
        }
        result.map(|()| (out, spp))
    }

    fn copy_chunks(
        &self,
        decoder: &mut TiffDecoder,
        plane: usize,
        level: usize,
        region: &ClippedRegion,
        out_width: u32,
        out: &mut [u16],
    ) -> Result<(), SlideError> {
        let (x0, y0) = region.origin;
        let plane_ref = &self.planes[plane];
        let level_ref = &plane_ref.levels[level];
        let spp = usize::from(plane_ref.samples_per_pixel.max(1));
        let file = &plane_ref.file;
        let (chunk_w, chunk_h) = match decoder.get_chunk_type() {
            ChunkType::Tile => decoder.chunk_dimensions(),
            ChunkType::Strip => (level_ref.width_px as u32, decoder.chunk_dimensions().1),
        };
        let (chunk_w, chunk_h) = (i64::from(chunk_w.max(1)), i64::from(chunk_h.max(1)));
        let across = (level_ref.width_px as i64 + chunk_w - 1) / chunk_w;
        let down = (level_ref.height_px as i64 + chunk_h - 1) / chunk_h;
        let per_plane = (across * down) as u32;
        // Planar files store each sample in its own run of chunks.
        let sample_runs: Vec<(u32, usize, usize)> = if plane_ref.planar_separate && spp > 1 {
            (0..spp).map(|s| (s as u32 * per_plane, s, 1)).collect()
        } else {
            vec![(0, 0, spp)]
        };
        for tile in region.tiles((chunk_w, chunk_h)) {
            let (col, row) = (tile.col, tile.row);
            for &(run_start, first_sample, samples_in_chunk) in &sample_runs {
                let index = run_start + (row * across + col) as u32;
                let what = || format!("tile {index} (column {col}, row {row}) of level {level}");
                let decoded = decoder.read_chunk(index).map_err(|e| read_failed(file, what(), e))?;
                let (data_w, data_h) = decoder.chunk_data_dimensions(index);
                let (data_w, data_h) = (i64::from(data_w), i64::from(data_h));
                let chunk_x = col * chunk_w;
                let chunk_y = row * chunk_h;
                let expected = (data_w * data_h) as usize * samples_in_chunk;
                let samples: Vec<u16> = match decoded {
                    DecodingResult::U8(v) => v.into_iter().map(u16::from).collect(),
                    DecodingResult::U16(v) => v,
                    DecodingResult::I8(v) => v.into_iter().map(|s| s.max(0) as u16).collect(),
                    DecodingResult::I16(v) => v.into_iter().map(|s| s.max(0) as u16).collect(),
                    _ => {
                        return Err(read_failed(
                            file,
                            what(),
                            "samples wider than 16 bits or floating point are not supported",
                        ));
                    }
                };
                if samples.len() < expected {
                    return Err(read_failed(
                        file,
                        what(),
                        format!(
                            "the tile decoded to {} samples, {} expected (truncated?)",
                            samples.len(),
                            expected
                        ),
                    ));
                }
                let ys = tile.ys.start..tile.ys.end.min(chunk_y + data_h);
                let xs = tile.xs.start..tile.xs.end.min(chunk_x + data_w);
                for y in ys {
                    let src_row = ((y - chunk_y) * data_w) as usize;
                    let dst_row = ((y - y0) * i64::from(out_width)) as usize;
                    for x in xs.clone() {
                        let src = (src_row + (x - chunk_x) as usize) * samples_in_chunk;
                        let dst = (dst_row + (x - x0) as usize) * spp + first_sample;
                        out[dst..dst + samples_in_chunk].copy_from_slice(&samples[src..src + samples_in_chunk]);
                    }
                }
            }
        }
        Ok(())
    }
}

fn default_channel_name(index: usize) -> String {
    format!("Channel {index}")
}

/// Fluorescence defaults: blue, green, yellow, red, magenta, cyan, then grey.
pub fn default_channel_color(index: usize) -> [u8; 3] {
    const COLORS: [[u8; 3]; 6] = [
        [40, 110, 255],
        [40, 230, 60],
        [255, 210, 40],
        [255, 50, 50],
        [230, 60, 230],
        [40, 220, 230],
    ];
    COLORS.get(index).copied().unwrap_or([200, 200, 200])
}

/// The values at two quantiles of a channel (ignoring zeros, which are usually padding).
pub fn percentile_window(values: &[u16], low: f64, high: f64) -> (u16, u16) {
    let mut histogram = vec![0u64; 65_536];
    let mut count = 0u64;
    for &v in values {
        if v > 0 {
            histogram[usize::from(v)] += 1;
            count += 1;
        }
    }
    if count == 0 {
        return (0, 1);
    }
    let at = |q: f64| {
        let target = (q * count as f64).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (value, n) in histogram.iter().enumerate() {
            seen += n;
            if seen >= target {
                return value as u16;
            }
        }
        u16::MAX
    };
    (at(low), at(high))
}

fn sample_kind(path: &Path, color: ColorType) -> Result<(SampleKind, u16, u8), SlideError> {
    Ok(match color {
        ColorType::RGB(b) => (SampleKind::Rgb, 3, b),
        ColorType::RGBA(b) => (SampleKind::Rgba, 4, b),
        ColorType::YCbCr(b) => (SampleKind::YCbCr, 3, b),
        ColorType::Gray(b) => (SampleKind::Grey, 1, b),
        ColorType::GrayA(b) => (SampleKind::Grey, 2, b),
        ColorType::Multiband { bit_depth, num_samples } => (SampleKind::Grey, num_samples, bit_depth),
        other => {
            return Err(cannot_open(
                path,
                format!("its pixels are {other:?}; only RGB(A), YCbCr and grey are supported"),
            ));
        }
    })
}

/// Builds a plane from the main IFD `index` of a scanned file: its levels and sample layout.
fn build_plane(path: &Path, scan: &mut FileScan, index: usize) -> Result<Plane, SlideError> {
    let levels = plane_levels(scan, path, index)?;
    let (offset, width, height) = levels[0];
    if width == 0 || height == 0 {
        return Err(cannot_open(path, format!("IFD {index} has no width or height")));
    }
    let file = File::open(path).map_err(|e| cannot_open(path, e.to_string()))?;
    let reader =
        IfdStart::new(BufReader::new(file), &scan.header, offset).map_err(|e| cannot_open(path, e.to_string()))?;
    let mut decoder = Decoder::new(reader)
        .map_err(|e| tiff_error(path, &format!("IFD {index}"), e))?
        .with_limits(limits());
    let color = decoder
        .colortype()
        .map_err(|e| tiff_error(path, &format!("IFD {index}"), e))?;
    let (kind, samples_per_pixel, bits_per_sample) = sample_kind(path, color)?;
    if bits_per_sample != 8 && bits_per_sample != 16 {
        return Err(cannot_open(
            path,
            format!("IFD {index} has {bits_per_sample}-bit samples; 8 and 16 bits are supported"),
        ));
    }
    let compression: u16 = decoder.find_tag_unsigned(Tag::Compression).ok().flatten().unwrap_or(1);
    if !SUPPORTED_COMPRESSIONS.iter().any(|(code, _)| *code == compression) {
        let known: Vec<&str> = SUPPORTED_COMPRESSIONS.iter().map(|(_, name)| *name).collect();
        return Err(cannot_open(
            path,
            format!(
                "IFD {index} uses TIFF compression {compression}, which this reader does not decode (it reads {})",
                known.join(", ")
            ),
        ));
    }
    let planar_separate = decoder
        .find_tag_unsigned::<u16>(Tag::PlanarConfiguration)
        .ok()
        .flatten()
        .is_some_and(|v| v == PlanarConfiguration::Planar.to_u16());
    let mut first_pool = Vec::new();
    first_pool.push(decoder);
    let levels = levels
        .into_iter()
        .enumerate()
        .map(|(i, (ifd_offset, width_px, height_px))| Level {
            ifd_offset,
            width_px,
            height_px,
            decoders: Mutex::new(if i == 0 {
                std::mem::take(&mut first_pool)
            } else {
                Vec::new()
            }),
        })
        .collect();
    Ok(Plane {
        file: path.to_path_buf(),
        header: scan.header.clone(),
        levels,
        samples_per_pixel,
        bits_per_sample,
        kind,
        planar_separate,
    })
}

/// Planes of a plain TIFF: the first image and every later full-size page (channels as pages).
fn generic_planes(path: &Path, scan: &mut FileScan) -> Result<(Vec<Plane>, Vec<Option<String>>), SlideError> {
    let size0 = (scan.mains[0].width_px, scan.mains[0].height_px);
    let full: Vec<usize> = (0..scan.mains.len())
        .filter(|&i| (scan.mains[i].width_px, scan.mains[i].height_px) == size0 && !scan.mains[i].reduced)
        .collect();
    let first = build_plane(path, scan, full[0])?;
    let mut planes = vec![first];
    // Further full-size grey pages are channels; an RGB slide's extra pages are not.
    if planes[0].kind == SampleKind::Grey {
        for &index in &full[1..] {
            let plane = build_plane(path, scan, index)?;
            if plane.kind == SampleKind::Grey && plane.bits_per_sample == planes[0].bits_per_sample {
                planes.push(plane);
            }
        }
    }
    Ok((planes, Vec::new()))
}

/// Planes of an OME-TIFF: one per channel (or one RGB plane), found through the OME-XML's
/// TiffData, in this file or in sibling files of a multi-file set.
fn ome_planes(
    path: &Path,
    scan: &mut FileScan,
    pixels: &OmePixels,
) -> Result<(Vec<Plane>, Vec<Option<String>>), SlideError> {
    let own_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let dir = path.parent().unwrap_or(Path::new("."));
    let first_samples = pixels.channels.first().map(|c| c.samples_per_pixel).unwrap_or(1);
    // An interleaved RGB image is one channel of 3 samples.
    let channel_count = if first_samples >= 3 { 1 } else { pixels.size_c.max(1) };
    let mut planes = Vec::new();
    let mut names = Vec::new();
    let mut sibling_scans: BTreeMap<PathBuf, FileScan> = BTreeMap::new();
    // A single-file OME-TIFF that was renamed still names its old self: it is this file.
    let referenced: std::collections::BTreeSet<&str> =
        pixels.tiff_data.iter().filter_map(|d| d.file_name.as_deref()).collect();
    let renamed = referenced.len() == 1
        && referenced
            .iter()
            .all(|n| Some((*n).to_owned()) != own_name && !dir.join(n).exists());
    for c in 0..channel_count {
        let (file_name, ifd) = pixels.locate_channel(c);
        let name = pixels.channels.get(c as usize).and_then(|ch| ch.name.clone());
        let in_this_file = renamed || file_name.is_none() || file_name.map(str::to_owned) == own_name;
        let ifd = usize::try_from(ifd).unwrap_or(usize::MAX);
        if in_this_file {
            if ifd >= scan.mains.len() {
                return Err(cannot_open(
                    path,
                    format!(
                        "the OME-XML puts channel {c} in IFD {ifd}, but the file has {} images",
                        scan.mains.len()
                    ),
                ));
            }
            planes.push(build_plane(path, scan, ifd)?);
        } else {
            let Some(file_name) = file_name else { continue };
            let sibling = dir.join(file_name);
            if !sibling.exists() {
                log::warn!(
                    "{}: channel {c} ({}) is in {}, which is missing; showing the others",
                    path.display(),
                    name.as_deref().unwrap_or("unnamed"),
                    sibling.display()
                );
                continue;
            }
            if !sibling_scans.contains_key(&sibling) {
                let sibling_scan = scan_file(&sibling)?;
                sibling_scans.insert(sibling.clone(), sibling_scan);
            }
            let Some(sibling_scan) = sibling_scans.get_mut(&sibling) else {
                continue;
            };
            if ifd >= sibling_scan.mains.len() {
                return Err(cannot_open(
                    &sibling,
                    format!(
                        "the OME-XML of {} puts channel {c} in IFD {ifd} of this file, which has {} images",
                        path.display(),
                        sibling_scan.mains.len()
                    ),
                ));
            }
            planes.push(build_plane(&sibling, sibling_scan, ifd)?);
        }
        names.push(name);
    }
    if planes.is_empty() {
        return Err(cannot_open(
            path,
            "the OME-XML names no channel stored in an existing file",
        ));
    }
    let (w, h) = (planes[0].levels[0].width_px, planes[0].levels[0].height_px);
    if (w, h) != (pixels.size_x, pixels.size_y) {
        return Err(cannot_open(
            path,
            format!(
                "the OME-XML says the image is {}x{} px, but its first page is {w}x{h} px",
                pixels.size_x, pixels.size_y
            ),
        ));
    }
    let ome_bits = match pixels.pixel_type.as_str() {
        "uint8" | "int8" => Some(8),
        "uint16" | "int16" => Some(16),
        _ => None,
    };
    if let Some(bits) = ome_bits
        && planes[0].bits_per_sample != bits
    {
        return Err(cannot_open(
            path,
            format!(
                "the OME-XML says {} samples, but the pages hold {}-bit samples",
                pixels.pixel_type, planes[0].bits_per_sample
            ),
        ));
    }
    Ok((planes, names))
}

/// JFIF YCbCr (full range) to RGB.
fn ycbcr_to_rgb(y: u16, cb: u16, cr: u16) -> [u8; 3] {
    let (y, cb, cr) = (f32::from(y), f32::from(cb) - 128.0, f32::from(cr) - 128.0);
    let r = y + 1.402 * cr;
    let g = y - 0.344_136 * cb - 0.714_136 * cr;
    let b = y + 1.772 * cb;
    [r, g, b].map(|v| v.round().clamp(0.0, 255.0) as u8)
}

impl SlideSource for TiffSource {
    fn path(&self) -> &Path {
        &self.path
    }

    fn metadata(&self) -> &SlideMetadata {
        &self.metadata
    }

    fn read_region(
        &self,
        pos_in_slide_px: (u64, u64),
        level: usize,
        width: u32,
        height: u32,
    ) -> Result<RgbaImage, SlideError> {
        self.metadata
            .check_region(&self.path, pos_in_slide_px, level, width, height)?;
        let origin = self.metadata.origin_in_level_px(pos_in_slide_px, level);
        let pixel_count = width as usize * height as usize;
        let inside = self.metadata.region_inside(level, origin, width);
        let mut pixels = vec![0u8; pixel_count * 4];
        if !self.metadata.is_multichannel {
            let plane = &self.planes[0];
            let (samples, spp) = self.read_plane_region(0, level, origin, width, height)?;
            let shift = if plane.bits_per_sample > 8 { 8 } else { 0 };
            for i in 0..pixel_count {
                if !inside(i) {
                    continue;
                }
                let s = &samples[i * spp..i * spp + spp];
                let rgba = match plane.kind {
                    SampleKind::Rgb => [s[0] >> shift, s[1] >> shift, s[2] >> shift, 255].map(|v| v as u8),
                    SampleKind::Rgba => [s[0] >> shift, s[1] >> shift, s[2] >> shift, s[3] >> shift].map(|v| v as u8),
                    SampleKind::YCbCr => {
                        let [r, g, b] = ycbcr_to_rgb(s[0], s[1], s[2]);
                        [r, g, b, 255]
                    }
                    SampleKind::Grey => {
                        let v = (s[0] >> shift) as u8;
                        [v, v, v, 255]
                    }
                };
                pixels[i * 4..i * 4 + 4].copy_from_slice(&rgba);
            }
            return Ok(RgbaImage { width, height, pixels });
        }
        let displays: Vec<GreyChannelDisplay> = self.channels.iter().map(|slot| slot.display).collect();
        let pixels = composite_grey_channels(self, &displays, pos_in_slide_px, level, width, height, &inside)?;
        Ok(RgbaImage { width, height, pixels })
    }

    fn read_channel_region(
        &self,
        pos_in_slide_px: (u64, u64),
        level: usize,
        width: u32,
        height: u32,
        channel: usize,
    ) -> Result<Gray16Image, SlideError> {
        self.metadata
            .check_region(&self.path, pos_in_slide_px, level, width, height)?;
        let Some(slot) = self.channels.get(channel).copied() else {
            return Err(SlideError::InvalidRequest {
                path: self.path.clone(),
                reason: format!("channel {channel} of an image with {}", self.channels.len()),
            });
        };
        let origin = self.metadata.origin_in_level_px(pos_in_slide_px, level);
        let (samples, spp) = self.read_plane_region(slot.plane, level, origin, width, height)?;
        let plane = &self.planes[slot.plane];
        let sample = usize::from(slot.sample);
        let pixels = if plane.kind == SampleKind::YCbCr {
            samples
                .chunks_exact(spp)
                .map(|s| u16::from(ycbcr_to_rgb(s[0], s[1], s[2])[sample]))
                .collect()
        } else {
            samples.chunks_exact(spp).map(|s| s[sample]).collect()
        };
        Ok(Gray16Image { width, height, pixels })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_window_ignores_zero_padding() {
        let mut values = vec![0u16; 1000];
        values.extend(1..=1000u16);
        assert_eq!(percentile_window(&values, 0.0, 1.0), (1, 1000));
        assert_eq!(percentile_window(&values, 0.1, 0.9), (100, 900));
        assert_eq!(percentile_window(&[0, 0], 0.1, 0.9), (0, 1));
    }

    #[test]
    fn ycbcr_grey_and_primaries() {
        assert_eq!(ycbcr_to_rgb(128, 128, 128), [128, 128, 128]);
        assert_eq!(ycbcr_to_rgb(76, 85, 255), [254, 0, 0]);
    }
}
