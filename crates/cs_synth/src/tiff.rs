//! A pyramidal tiled TIFF writer, in the two layouts the viewer reads: one top-level IFD per level
//! (level 0 first, then each reduced level flagged with NewSubfileType = 1: OpenSlide's
//! generic-tiff layout), or OME-TIFF's (level 0 in the main IFD with the OME-XML, reduced levels
//! in its SubIFDs: what 10x and Bio-Formats write). Samples are JPEG tiles as complete JFIF
//! streams with Photometric YCbCr 4:2:0 (H&E), or 16-bit grey tiles compressed with Deflate
//! (fluorescence). Tiles go to the file as they come (any order); the IFDs follow at the end, and
//! the header is written last, as classic TIFF or as BigTIFF when the file passes 4 GiB.
//!
//! Our own writer because the `tiff` crate's encoder writes neither tiles nor SubIFDs, and the
//! generator streams gigapixel pyramids tile by tile.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{SynthError, io_error};
use crate::files::{Staged, finish};

const HEADER_BYTES: u64 = 16;

struct LevelTiles {
    width: u64,
    height: u64,
    across: u64,
    offsets: Vec<u64>,
    byte_counts: Vec<u64>,
}

/// What each pixel holds and how tiles are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Samples {
    /// RGB as JPEG (YCbCr 4:2:0).
    JpegRgb,
    /// One 16-bit grey sample, Deflate (zlib).
    DeflateGrey16,
}

/// Where the reduced levels go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pyramid {
    /// Each level a page of the main chain.
    Pages,
    /// Reduced levels in level 0's SubIFDs (OME-TIFF).
    SubIfds,
}

/// Text and resolution written into the IFDs.
pub(crate) struct TiffInfo {
    /// ImageDescription of level 0.
    pub description: String,
    pub software: String,
    /// Level-0 resolution in pixels per centimetre.
    pub pixels_per_cm: f64,
    pub samples: Samples,
    pub pyramid: Pyramid,
}

pub(crate) struct TiffWriter {
    staged: Staged,
    file: BufWriter<File>,
    position: u64,
    tile_px: u32,
    levels: Vec<LevelTiles>,
}

impl TiffWriter {
    /// `levels`: (width, height) in pixels, level 0 first.
    pub fn create(path: &Path, tile_px: u32, levels: &[(u64, u64)]) -> Result<Self, SynthError> {
        let staged = Staged::new(path);
        let mut file = staged.create_buffered()?;
        file.write_all(&[0u8; HEADER_BYTES as usize])
            .map_err(|e| io_error(path, e))?;
        let levels = levels
            .iter()
            .map(|&(width, height)| {
                let across = width.div_ceil(u64::from(tile_px));
                let down = height.div_ceil(u64::from(tile_px));
                LevelTiles {
                    width,
                    height,
                    across,
                    offsets: vec![0; (across * down) as usize],
                    byte_counts: vec![0; (across * down) as usize],
                }
            })
            .collect();
        Ok(Self {
            staged,
            file,
            position: HEADER_BYTES,
            tile_px,
            levels,
        })
    }

    pub fn tiles_across(&self, level: usize) -> u64 {
        self.levels[level].across
    }

    pub fn write_tile(&mut self, level: usize, col: u64, row: u64, bytes: &[u8]) -> Result<(), SynthError> {
        let path = self.staged.path().to_path_buf();
        let lv = &mut self.levels[level];
        let index = (row * lv.across + col) as usize;
        if index >= lv.offsets.len() {
            return Err(io_error(
                &path,
                format!("tile ({col}, {row}) of level {level} is outside the grid"),
            ));
        }
        self.file.write_all(bytes).map_err(|e| io_error(&path, e))?;
        lv.offsets[index] = self.position;
        lv.byte_counts[index] = bytes.len() as u64;
        self.position += bytes.len() as u64;
        Ok(())
    }

    /// Writes the IFDs and the header, and commits the file.
    pub fn finish(mut self, info: &TiffInfo) -> Result<PathBuf, SynthError> {
        let path = self.staged.path().to_path_buf();
        if self.position % 2 == 1 {
            self.file.write_all(&[0]).map_err(|e| io_error(&path, e))?;
            self.position += 1;
        }
        let classic = build_ifds(&self.levels, self.tile_px, info, self.position, false);
        let big = self.position + classic.0.len() as u64 > u64::from(u32::MAX);
        let (ifds, first_ifd) = if big {
            build_ifds(&self.levels, self.tile_px, info, self.position, true)
        } else {
            classic
        };
        self.file.write_all(&ifds).map_err(|e| io_error(&path, e))?;
        let mut header = Vec::with_capacity(HEADER_BYTES as usize);
        if big {
            header.extend_from_slice(b"II");
            header.extend_from_slice(&43u16.to_le_bytes());
            header.extend_from_slice(&8u16.to_le_bytes());
            header.extend_from_slice(&0u16.to_le_bytes());
            header.extend_from_slice(&first_ifd.to_le_bytes());
        } else {
            header.extend_from_slice(b"II");
            header.extend_from_slice(&42u16.to_le_bytes());
            header.extend_from_slice(&(first_ifd as u32).to_le_bytes());
            header.resize(HEADER_BYTES as usize, 0);
        }
        self.file.seek(SeekFrom::Start(0)).map_err(|e| io_error(&path, e))?;
        self.file.write_all(&header).map_err(|e| io_error(&path, e))?;
        finish(self.file, &path)?;
        self.staged.commit()
    }
}

enum Value {
    Short(Vec<u16>),
    Long(Vec<u32>),
    Long8(Vec<u64>),
    Rational(Vec<(u32, u32)>),
    Ascii(Vec<u8>),
    /// IFD offsets (SubIFDs): type IFD (13) in classic TIFF, IFD8 (18) in BigTIFF.
    Ifd(Vec<u64>, bool),
}

impl Value {
    fn type_code(&self) -> u16 {
        match self {
            Value::Ascii(_) => 2,
            Value::Short(_) => 3,
            Value::Long(_) => 4,
            Value::Rational(_) => 5,
            Value::Long8(_) => 16,
            Value::Ifd(_, false) => 13,
            Value::Ifd(_, true) => 18,
        }
    }

    fn count(&self) -> u64 {
        match self {
            Value::Short(v) => v.len() as u64,
            Value::Long(v) => v.len() as u64,
            Value::Long8(v) => v.len() as u64,
            Value::Rational(v) => v.len() as u64,
            Value::Ascii(v) => v.len() as u64,
            Value::Ifd(v, _) => v.len() as u64,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Value::Short(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Value::Long(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Value::Long8(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Value::Rational(v) => v.iter().for_each(|(n, d)| {
                out.extend_from_slice(&n.to_le_bytes());
                out.extend_from_slice(&d.to_le_bytes());
            }),
            Value::Ascii(v) => out.extend_from_slice(v),
            Value::Ifd(v, true) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Value::Ifd(v, false) => v.iter().for_each(|x| out.extend_from_slice(&(*x as u32).to_le_bytes())),
        }
        out
    }
}

/// An ASCII field; UTF-8 passes through (OME-XML's `µm`, as every OME-TIFF writer does).
fn ascii(text: &str) -> Value {
    let mut bytes: Vec<u8> = text.bytes().filter(|b| *b != 0).collect();
    bytes.push(0);
    Value::Ascii(bytes)
}

fn rational(value: f64) -> (u32, u32) {
    let denominator = 1000u32;
    (
        (value * f64::from(denominator)).round().clamp(1.0, f64::from(u32::MAX)) as u32,
        denominator,
    )
}

/// The tags of one level's IFD (ascending), `sub_ifds` on level 0 of an OME-TIFF pyramid.
fn level_entries(
    level: &LevelTiles,
    index: usize,
    tile_px: u32,
    info: &TiffInfo,
    big: bool,
    sub_ifds: Option<Vec<u64>>,
) -> Vec<(u16, Value)> {
    let downsample = (1u64 << index) as f64;
    let resolution = rational(info.pixels_per_cm / downsample);
    let (bits, compression, photometric, samples_per_pixel) = match info.samples {
        Samples::JpegRgb => (vec![8, 8, 8], 7, 6, 3),
        Samples::DeflateGrey16 => (vec![16], 8, 1, 1),
    };
    let mut entries: Vec<(u16, Value)> = vec![
        (254, Value::Long(vec![u32::from(index > 0)])),
        (256, Value::Long(vec![level.width as u32])),
        (257, Value::Long(vec![level.height as u32])),
        (258, Value::Short(bits)),
        (259, Value::Short(vec![compression])),
        (262, Value::Short(vec![photometric])),
    ];
    if index == 0 {
        entries.push((270, ascii(&info.description)));
    }
    entries.extend([
        (277, Value::Short(vec![samples_per_pixel])),
        (282, Value::Rational(vec![resolution])),
        (283, Value::Rational(vec![resolution])),
        (284, Value::Short(vec![1])),
        (296, Value::Short(vec![3])),
        (305, ascii(&info.software)),
        (322, Value::Long(vec![tile_px])),
        (323, Value::Long(vec![tile_px])),
    ]);
    if big {
        entries.push((324, Value::Long8(level.offsets.clone())));
        entries.push((325, Value::Long8(level.byte_counts.clone())));
    } else {
        entries.push((324, Value::Long(level.offsets.iter().map(|&v| v as u32).collect())));
        entries.push((325, Value::Long(level.byte_counts.iter().map(|&v| v as u32).collect())));
    }
    if let Some(offsets) = sub_ifds.filter(|o| !o.is_empty()) {
        entries.push((330, Value::Ifd(offsets, big)));
    }
    if info.samples == Samples::JpegRgb {
        entries.push((530, Value::Short(vec![2, 2])));
        entries.push((
            532,
            Value::Rational(vec![(0, 1), (255, 1), (128, 1), (255, 1), (128, 1), (255, 1)]),
        ));
    }
    if info.samples == Samples::DeflateGrey16 {
        // SampleFormat: unsigned integer.
        entries.push((339, Value::Short(vec![1])));
    }
    entries
}

/// Appends one IFD (its out-of-line values first) to `out`, which starts at file offset `base`.
/// Returns the IFD's offset and where in `out` its next-IFD field is.
fn append_ifd(out: &mut Vec<u8>, entries: &[(u16, Value)], base: u64, big: bool) -> (u64, usize) {
    let inline = if big { 8 } else { 4 };
    let mut value_fields: Vec<Vec<u8>> = Vec::with_capacity(entries.len());
    for (_, value) in entries {
        let bytes = value.bytes();
        if bytes.len() > inline {
            if out.len() % 2 == 1 {
                out.push(0);
            }
            let offset = base + out.len() as u64;
            out.extend_from_slice(&bytes);
            value_fields.push(if big {
                offset.to_le_bytes().to_vec()
            } else {
                (offset as u32).to_le_bytes().to_vec()
            });
        } else {
            let mut field = bytes;
            field.resize(inline, 0);
            value_fields.push(field);
        }
    }
    if out.len() % 2 == 1 {
        out.push(0);
    }
    let ifd_offset = base + out.len() as u64;
    if big {
        out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    } else {
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    }
    for ((tag, value), field) in entries.iter().zip(&value_fields) {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&value.type_code().to_le_bytes());
        if big {
            out.extend_from_slice(&value.count().to_le_bytes());
        } else {
            out.extend_from_slice(&(value.count() as u32).to_le_bytes());
        }
        out.extend_from_slice(field);
    }
    let next_field = out.len();
    out.extend_from_slice(&vec![0u8; inline]);
    (ifd_offset, next_field)
}

/// All IFDs as one block starting at file offset `base`; returns the block and the first IFD's
/// offset.
fn build_ifds(levels: &[LevelTiles], tile_px: u32, info: &TiffInfo, base: u64, big: bool) -> (Vec<u8>, u64) {
    let mut out: Vec<u8> = Vec::new();
    match info.pyramid {
        Pyramid::Pages => {
            let mut first_ifd = 0;
            let mut previous_next_field: Option<usize> = None;
            for (index, level) in levels.iter().enumerate() {
                let entries = level_entries(level, index, tile_px, info, big, None);
                let (ifd_offset, next_field) = append_ifd(&mut out, &entries, base, big);
                match previous_next_field {
                    Some(at) if big => out[at..at + 8].copy_from_slice(&ifd_offset.to_le_bytes()),
                    Some(at) => out[at..at + 4].copy_from_slice(&(ifd_offset as u32).to_le_bytes()),
                    None => first_ifd = ifd_offset,
                }
                previous_next_field = Some(next_field);
            }
            (out, first_ifd)
        }
        Pyramid::SubIfds => {
            // The reduced levels first, so that level 0 can point at them.
            let sub_ifds: Vec<u64> = levels
                .iter()
                .enumerate()
                .skip(1)
                .map(|(index, level)| {
                    let entries = level_entries(level, index, tile_px, info, big, None);
                    append_ifd(&mut out, &entries, base, big).0
                })
                .collect();
            let entries = level_entries(&levels[0], 0, tile_px, info, big, Some(sub_ifds));
            let (first_ifd, _) = append_ifd(&mut out, &entries, base, big);
            (out, first_ifd)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifd_chain_is_well_formed() {
        let levels = vec![
            LevelTiles {
                width: 1000,
                height: 600,
                across: 2,
                offsets: vec![16, 20, 24, 28],
                byte_counts: vec![4; 4],
            },
            LevelTiles {
                width: 500,
                height: 300,
                across: 1,
                offsets: vec![32],
                byte_counts: vec![4],
            },
        ];
        let info = TiffInfo {
            description: "test".to_owned(),
            software: "test".to_owned(),
            pixels_per_cm: 20_000.0,
            samples: Samples::JpegRgb,
            pyramid: Pyramid::Pages,
        };
        for big in [false, true] {
            let base = 100;
            let (block, first) = build_ifds(&levels, 512, &info, base, big);
            let at = (first - base) as usize;
            let count = if big {
                u64::from_le_bytes(block[at..at + 8].try_into().unwrap_or([0; 8])) as usize
            } else {
                usize::from(u16::from_le_bytes([block[at], block[at + 1]]))
            };
            let entry = if big { 20 } else { 12 };
            let head = if big { 8 } else { 2 };
            let tags: Vec<u16> = (0..count)
                .map(|i| {
                    let e = at + head + i * entry;
                    u16::from_le_bytes([block[e], block[e + 1]])
                })
                .collect();
            assert!(tags.windows(2).all(|w| w[0] < w[1]), "tags must ascend: {tags:?}");
            assert!(tags.contains(&270) && tags.contains(&324) && tags.contains(&530));
            let next_at = at + head + count * entry;
            let next = if big {
                u64::from_le_bytes(block[next_at..next_at + 8].try_into().unwrap_or([0; 8]))
            } else {
                u64::from(u32::from_le_bytes(
                    block[next_at..next_at + 4].try_into().unwrap_or([0; 4]),
                ))
            };
            assert!(next > first, "level 1 follows level 0");
        }
    }
}
