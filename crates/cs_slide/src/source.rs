//! The [`SlideSource`] trait: the viewer's whole view of a slide, independent of the backend.

use std::collections::BTreeMap;
use std::path::Path;

use crate::SlideError;

/// One pyramid level as stored in the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LevelInfo {
    pub width_px: u64,
    pub height_px: u64,
    /// Level-0 pixels per pixel of this level (1.0 for level 0).
    pub downsample: f64,
}

/// One channel of an image: a colour sample of an RGB slide, or a fluorescence stain.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChannelInfo {
    /// From the file (OME-XML) when it names it, else `R`/`G`/`B` or `Channel N`.
    pub name: String,
    /// Whether the file itself named it (else `name` is a placeholder).
    pub named_by_file: bool,
    pub bits_per_sample: u8,
    /// The display colour the file suggests (OME-XML `Color`), RGBA.
    pub color_rgba: Option<[u8; 4]>,
}

/// Everything about a slide except its pixels.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SlideMetadata {
    /// Which reader opened it: `openslide` or `tiff`.
    pub backend: String,
    /// OpenSlide vendor name (`aperio`, `generic-tiff`, ...), or `ome-tiff` / `tiff`.
    pub vendor: String,
    /// Levels, finest first.
    pub levels: Vec<LevelInfo>,
    /// Micrometres per level-0 pixel, when the file records it.
    pub mpp_x: Option<f64>,
    pub mpp_y: Option<f64>,
    pub objective_power: Option<f64>,
    /// All properties the backend reports, sorted by name.
    pub properties: BTreeMap<String, String>,
    /// Names of associated images (label, macro, thumbnail, ...).
    pub associated_images: Vec<String>,
    /// The channels [`SlideSource::read_channel_region`] reads (R, G, B for a brightfield slide).
    pub channels: Vec<ChannelInfo>,
    /// Whether the image is fluorescence-like: grey channels to be composited, not an RGB picture.
    pub is_multichannel: bool,
}

impl SlideMetadata {
    pub fn level0_size_px(&self) -> (u64, u64) {
        self.levels
            .first()
            .map(|level| (level.width_px, level.height_px))
            .unwrap_or((0, 0))
    }

    /// Refuses a region of a level the slide does not have, or an empty one (every backend's
    /// first check of a read).
    pub fn check_region(
        &self,
        path: &Path,
        pos_in_slide_px: (u64, u64),
        level: usize,
        width: u32,
        height: u32,
    ) -> Result<(), SlideError> {
        if level >= self.levels.len() || width == 0 || height == 0 {
            return Err(SlideError::InvalidRequest {
                path: path.to_path_buf(),
                reason: format!(
                    "region {width}x{height} at level {level}, level-0 ({}, {}) is outside the slide's {} levels",
                    pos_in_slide_px.0,
                    pos_in_slide_px.1,
                    self.levels.len()
                ),
            });
        }
        Ok(())
    }

    /// A region's top-left corner in pixels of `level`, from level-0 pixels.
    pub fn origin_in_level_px(&self, pos_in_slide_px: (u64, u64), level: usize) -> (i64, i64) {
        let downsample = self.levels[level].downsample;
        (
            (pos_in_slide_px.0 as f64 / downsample).floor() as i64,
            (pos_in_slide_px.1 as f64 / downsample).floor() as i64,
        )
    }

    /// Whether pixel `i` (row-major) of a `width`-wide region at `origin` (level pixels) lies inside
    /// the level.
    pub fn region_inside(&self, level: usize, origin: (i64, i64), width: u32) -> impl Fn(usize) -> bool + use<> {
        let info = self.levels[level];
        move |i: usize| {
            let x = origin.0 + (i % width as usize) as i64;
            let y = origin.1 + (i / width as usize) as i64;
            x >= 0 && y >= 0 && (x as u64) < info.width_px && (y as u64) < info.height_px
        }
    }

    /// Mean micrometres per level-0 pixel, if both axes are known and positive.
    pub fn mpp(&self) -> Option<f64> {
        match (self.mpp_x, self.mpp_y) {
            (Some(x), Some(y)) if x > 0.0 && y > 0.0 && x.is_finite() && y.is_finite() => Some(0.5 * (x + y)),
            _ => None,
        }
    }
}

/// A straight-alpha RGBA8 image, rows top to bottom.
#[derive(Clone, PartialEq, Eq)]
pub struct RgbaImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl std::fmt::Debug for RgbaImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RgbaImage({}x{})", self.width, self.height)
    }
}

impl RgbaImage {
    pub fn size_bytes(&self) -> usize {
        self.pixels.len()
    }

    pub fn pixel(&self, x: u32, y: u32) -> [u8; 4] {
        let i = (y as usize * self.width as usize + x as usize) * 4;
        [
            self.pixels[i],
            self.pixels[i + 1],
            self.pixels[i + 2],
            self.pixels[i + 3],
        ]
    }

    /// Box-filters the image down so that its longer side is at most `max_side` pixels.
    pub fn downscaled_to_fit(&self, max_side: u32) -> RgbaImage {
        let longer = self.width.max(self.height).max(1);
        let factor = longer.div_ceil(max_side.max(1)).max(1);
        if factor == 1 {
            return self.clone();
        }
        let out_w = self.width.div_ceil(factor);
        let out_h = self.height.div_ceil(factor);
        let mut pixels = vec![0u8; out_w as usize * out_h as usize * 4];
        for oy in 0..out_h {
            for ox in 0..out_w {
                let mut sum = [0u32; 4];
                let mut n = 0u32;
                for y in oy * factor..((oy + 1) * factor).min(self.height) {
                    for x in ox * factor..((ox + 1) * factor).min(self.width) {
                        let p = self.pixel(x, y);
                        for c in 0..4 {
                            sum[c] += u32::from(p[c]);
                        }
                        n += 1;
                    }
                }
                let o = (oy as usize * out_w as usize + ox as usize) * 4;
                for c in 0..4 {
                    pixels[o + c] = (sum[c] / n.max(1)) as u8;
                }
            }
        }
        RgbaImage {
            width: out_w,
            height: out_h,
            pixels,
        }
    }
}

/// One channel of a region, one sample per pixel (8-bit channels keep their 0–255 values).
#[derive(Clone, PartialEq, Eq)]
pub struct Gray16Image {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u16>,
}

impl std::fmt::Debug for Gray16Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gray16Image({}x{})", self.width, self.height)
    }
}

impl Gray16Image {
    pub fn size_bytes(&self) -> usize {
        self.pixels.len() * 2
    }
}

/// A whole-slide image. Implementations are shared between threads (tile loaders read concurrently).
pub trait SlideSource: Send + Sync {
    fn path(&self) -> &Path;

    fn metadata(&self) -> &SlideMetadata;

    /// Reads a region of `level`: `pos_in_slide_px` is the top-left corner in level-0 pixels,
    /// `width`/`height` are in pixels of `level`. Areas outside the scanned tissue come back transparent.
    fn read_region(
        &self,
        pos_in_slide_px: (u64, u64),
        level: usize,
        width: u32,
        height: u32,
    ) -> Result<RgbaImage, SlideError>;

    /// An associated image by name (none by default: formats without label or macro images).
    fn read_associated_image(&self, name: &str) -> Result<RgbaImage, SlideError> {
        Err(SlideError::NoSuchAssociatedImage {
            path: self.path().to_path_buf(),
            name: name.to_owned(),
        })
    }

    /// Reads one channel of a region (arguments as [`SlideSource::read_region`]).
    fn read_channel_region(
        &self,
        pos_in_slide_px: (u64, u64),
        level: usize,
        width: u32,
        height: u32,
        channel: usize,
    ) -> Result<Gray16Image, SlideError> {
        let rgba = self.read_region(pos_in_slide_px, level, width, height)?;
        if channel >= 3 {
            return Err(SlideError::InvalidRequest {
                path: self.path().to_path_buf(),
                reason: format!("channel {channel} of an RGB slide (it has 3)"),
            });
        }
        Ok(Gray16Image {
            width,
            height,
            pixels: rgba.pixels.chunks_exact(4).map(|px| u16::from(px[channel])).collect(),
        })
    }

    /// A small overview image whose longer side is at most `max_side` pixels: the slide's own
    /// thumbnail when it has one, else the coarsest level scaled down.
    fn overview(&self, max_side: u32) -> Result<RgbaImage, SlideError> {
        let meta = self.metadata();
        let Some(coarsest) = meta.levels.len().checked_sub(1) else {
            return Err(SlideError::InvalidRequest {
                path: self.path().to_path_buf(),
                reason: "the slide has no levels".to_owned(),
            });
        };
        let level = meta.levels[coarsest];
        // Reading a huge single-level slide whole would take gigabytes: refuse past 64 Mpx.
        let coarsest_px = level.width_px.saturating_mul(level.height_px);
        if coarsest_px <= 64_000_000 {
            let image = self.read_region(
                (0, 0),
                coarsest,
                u32::try_from(level.width_px).unwrap_or(u32::MAX),
                u32::try_from(level.height_px).unwrap_or(u32::MAX),
            )?;
            return Ok(image.downscaled_to_fit(max_side));
        }
        if meta.associated_images.iter().any(|name| name == "thumbnail") {
            return Ok(self.read_associated_image("thumbnail")?.downscaled_to_fit(max_side));
        }
        Err(SlideError::InvalidRequest {
            path: self.path().to_path_buf(),
            reason: format!(
                "no thumbnail and the coarsest level is {}x{} px, too large for an overview",
                level.width_px, level.height_px
            ),
        })
    }
}

/// A region of one level, clipped to the level: level pixels `xs` x `ys`, read into an image whose
/// top-left is `origin` (which may lie outside the level). The readers that assemble regions from
/// stored tiles (TIFF chunks, DICOM frames) walk it tile by tile.
pub(crate) struct ClippedRegion {
    pub origin: (i64, i64),
    pub xs: std::ops::Range<i64>,
    pub ys: std::ops::Range<i64>,
}

/// One stored tile a region overlaps: its column and row, and the level pixels of the region in it.
pub(crate) struct TileOverlap {
    pub col: i64,
    pub row: i64,
    pub xs: std::ops::Range<i64>,
    pub ys: std::ops::Range<i64>,
}

impl ClippedRegion {
    /// None when the region lies wholly outside the level.
    pub fn new(origin: (i64, i64), (width, height): (u32, u32), (level_w, level_h): (u64, u64)) -> Option<Self> {
        let xs = origin.0.max(0)..(origin.0 + i64::from(width)).min(level_w as i64);
        let ys = origin.1.max(0)..(origin.1 + i64::from(height)).min(level_h as i64);
        (!xs.is_empty() && !ys.is_empty()).then_some(Self { origin, xs, ys })
    }

    /// The tiles of a `tile_w` x `tile_h` grid it overlaps, row by row.
    pub fn tiles(&self, (tile_w, tile_h): (i64, i64)) -> Vec<TileOverlap> {
        let (tile_w, tile_h) = (tile_w.max(1), tile_h.max(1));
        let mut tiles = Vec::new();
        for row in self.ys.start / tile_h..=(self.ys.end - 1) / tile_h {
            for col in self.xs.start / tile_w..=(self.xs.end - 1) / tile_w {
                tiles.push(TileOverlap {
                    col,
                    row,
                    xs: (col * tile_w).max(self.xs.start)..((col + 1) * tile_w).min(self.xs.end),
                    ys: (row * tile_h).max(self.ys.start)..((row + 1) * tile_h).min(self.ys.end),
                });
            }
        }
        tiles
    }
}

/// Paths in error messages: shared by backends.
pub(crate) fn read_failed(path: &Path, what: impl Into<String>, reason: impl ToString) -> SlideError {
    SlideError::ReadFailed {
        path: path.to_path_buf(),
        what: what.into(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_is_clipped_to_the_level_and_walked_tile_by_tile() {
        assert!(
            ClippedRegion::new((300, 0), (10, 10), (300, 200)).is_none(),
            "wholly right of the level"
        );
        let region = ClippedRegion::new((-10, 90), (120, 50), (300, 120)).unwrap();
        assert_eq!((region.xs.clone(), region.ys.clone()), (0..110, 90..120));
        let tiles: Vec<(i64, i64, std::ops::Range<i64>, std::ops::Range<i64>)> = region
            .tiles((64, 64))
            .into_iter()
            .map(|t| (t.col, t.row, t.xs, t.ys))
            .collect();
        assert_eq!(tiles, [(0, 1, 0..64, 90..120), (1, 1, 64..110, 90..120)]);
    }
}

/// The display of one grey channel when a fluorescence image is drawn whole as RGBA
/// (`SlideSource::read_region`): the sample window mapped to 0..1, times the colour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GreyChannelDisplay {
    pub window: (u16, u16),
    pub color: [u8; 3],
}

/// The display window of grey channels is measured on the coarsest level up to this size.
const WINDOW_SAMPLE_MAX_PX: u64 = 4_000_000;

/// Grey channels composited as RGBA: each in its colour over its window, added; pixels where
/// `inside` is false stay transparent.
pub(crate) fn composite_grey_channels(
    source: &dyn SlideSource,
    displays: &[GreyChannelDisplay],
    pos_in_slide_px: (u64, u64),
    level: usize,
    width: u32,
    height: u32,
    inside: &dyn Fn(usize) -> bool,
) -> Result<Vec<u8>, SlideError> {
    let pixel_count = width as usize * height as usize;
    let mut sums = vec![[0f32; 3]; pixel_count];
    for (c, display) in displays.iter().enumerate() {
        let image = source.read_channel_region(pos_in_slide_px, level, width, height, c)?;
        let (lo, hi) = (f32::from(display.window.0), f32::from(display.window.1));
        let span = (hi - lo).max(1.0);
        for (sum, &v) in sums.iter_mut().zip(&image.pixels) {
            let t = ((f32::from(v) - lo) / span).clamp(0.0, 1.0);
            for (channel_sum, colour) in sum.iter_mut().zip(display.color) {
                *channel_sum += t * f32::from(colour);
            }
        }
    }
    let mut pixels = vec![0u8; pixel_count * 4];
    for (i, sum) in sums.iter().enumerate() {
        if inside(i) {
            let [r, g, b] = sum.map(|v| v.round().clamp(0.0, 255.0) as u8);
            pixels[i * 4..i * 4 + 4].copy_from_slice(&[r, g, b, 255]);
        }
    }
    Ok(pixels)
}

/// Each grey channel's display window from the coarsest level (0.1 and 99.9 percentiles), so that
/// a 16-bit stain with values in the low thousands is visible at all; None where the level is too
/// big to sample or cannot be read (logged).
pub(crate) fn measure_display_windows(source: &dyn SlideSource) -> Vec<Option<(u16, u16)>> {
    let meta = source.metadata();
    let Some(coarsest) = meta.levels.len().checked_sub(1) else {
        return vec![None; meta.channels.len()];
    };
    let level = meta.levels[coarsest];
    if level.width_px * level.height_px > WINDOW_SAMPLE_MAX_PX {
        return vec![None; meta.channels.len()];
    }
    (0..meta.channels.len())
        .map(
            |c| match source.read_channel_region((0, 0), coarsest, level.width_px as u32, level.height_px as u32, c) {
                Ok(image) => {
                    let (lo, hi) = crate::tiff_backend::percentile_window(&image.pixels, 0.001, 0.999);
                    Some((lo, hi.max(lo + 1)))
                }
                Err(error) => {
                    log::warn!("{error}");
                    None
                }
            },
        )
        .collect()
}
