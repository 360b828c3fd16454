//! OME-NGFF multiscale images in zarr, read with the `zarrs` crate: zarr v2 (OME-NGFF 0.4, the
//! `.zattrs` of ome-zarr and spatialdata's 0.1 container) and zarr v3 (OME-NGFF 0.5, attributes
//! under `ome`). Axes in any order and any subset of `t`, `c`, `z`, `y`, `x` (the first `t` and
//! `z` plane is shown); levels from the `multiscales` datasets; 8- or 16-bit unsigned samples.
//! Three or four 8-bit channels are an RGB(A) picture (an H&E); anything else is grey channels
//! named by `omero.channels[].label`, as spatialdata writes them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use zarrs::array::chunk_cache::{ChunkCache as _, ChunkCacheDecodedLruSizeLimit};
use zarrs::array::data_type::{UInt8DataType, UInt16DataType};
use zarrs::array::{Array, CodecOptions};
use zarrs::filesystem::FilesystemStore;
use zarrs::group::Group;
use zarrs::storage::ReadableStorageTraits;

use crate::error::SlideError;
use crate::source::{
    ChannelInfo, Gray16Image, GreyChannelDisplay, LevelInfo, RgbaImage, SlideMetadata, SlideSource,
    composite_grey_channels, measure_display_windows,
};
use crate::tiff_backend::default_channel_color;

type ZarrArray = Array<dyn ReadableStorageTraits>;

/// Decoded chunks kept per level. spatialdata-io writes 4096 x 4096 chunks, 32 MB decoded at 16
/// bits: without a cache every 512 px tile would decode its whole chunk again.
const CHUNK_CACHE_BYTES_PER_LEVEL: u64 = 128 << 20;

/// Whether `path` is a zarr group holding an OME-NGFF `multiscales` image.
pub fn is_ngff_image(path: &Path) -> bool {
    if !path.is_dir() {
        return false;
    }
    read_attributes(path).is_some_and(|attrs| attrs.get("multiscales").is_some())
}

/// The group's attributes, from `zarr.json` (v3; NGFF 0.5 nests them under `ome`) or `.zattrs` (v2).
fn read_attributes(path: &Path) -> Option<serde_json::Map<String, Value>> {
    if let Ok(text) = std::fs::read_to_string(path.join("zarr.json")) {
        let json: Value = serde_json::from_str(&text).ok()?;
        let attrs = json.get("attributes")?;
        let attrs = attrs.get("ome").unwrap_or(attrs);
        return attrs.as_object().cloned();
    }
    let text = std::fs::read_to_string(path.join(".zattrs")).ok()?;
    serde_json::from_str::<Value>(&text).ok()?.as_object().cloned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Samples {
    U8,
    U16,
}

/// One OME-NGFF multiscale image. `Send + Sync`: tile loader threads share it.
pub struct NgffSource {
    path: PathBuf,
    metadata: SlideMetadata,
    levels: Vec<Arc<ZarrArray>>,
    /// Each level's decoded chunks, shared by the tile loader threads.
    chunk_caches: Vec<ChunkCacheDecodedLruSizeLimit>,
    /// Index of each axis in the arrays' dimensions.
    axis_x: usize,
    axis_y: usize,
    axis_c: Option<usize>,
    dimensions: usize,
    samples: Samples,
    displays: Vec<GreyChannelDisplay>,
}

impl NgffSource {
    pub fn open(path: &Path) -> Result<Self, SlideError> {
        let cannot = |reason: String| SlideError::CannotOpen {
            path: path.to_path_buf(),
            reason,
        };
        let store = FilesystemStore::new(path).map_err(|e| cannot(format!("cannot open the zarr store: {e}")))?;
        let store: Arc<dyn ReadableStorageTraits> = Arc::new(store);
        // Group::open reads v3 `zarr.json` or v2 `.zgroup`/`.zattrs` and checks the group is one.
        Group::open(store.clone(), "/").map_err(|e| cannot(format!("not a zarr group: {e}")))?;
        let attrs = read_attributes(path).ok_or_else(|| cannot("the zarr group has no attributes".to_owned()))?;
        let multiscale = attrs
            .get("multiscales")
            .and_then(|m| m.get(0))
            .ok_or_else(|| cannot("no OME-NGFF `multiscales` in the group's attributes".to_owned()))?;
        let axes = axis_names(multiscale);
        let datasets = multiscale
            .get("datasets")
            .and_then(Value::as_array)
            .filter(|d| !d.is_empty())
            .ok_or_else(|| cannot("`multiscales[0].datasets` is missing or empty".to_owned()))?;
        let mut levels = Vec::with_capacity(datasets.len());
        let mut scales = Vec::with_capacity(datasets.len());
        for dataset in datasets {
            let Some(level_path) = dataset.get("path").and_then(Value::as_str) else {
                return Err(cannot("a dataset of `multiscales[0]` has no `path`".to_owned()));
            };
            let array = Array::open(store.clone(), &format!("/{}", level_path.trim_start_matches('/')))
                .map_err(|e| cannot(format!("level {level_path:?}: {e}")))?;
            scales.push(dataset_scale(dataset));
            levels.push(array);
        }
        let dimensions = levels[0].dimensionality();
        let axes = match axes {
            Some(axes) if axes.len() == dimensions => axes,
            Some(axes) => {
                return Err(cannot(format!(
                    "{} axes named ({}) for {dimensions}-dimensional arrays",
                    axes.len(),
                    axes.join(", ")
                )));
            }
            // OME-NGFF 0.1/0.2 had no axes: always (t, c, z, y, x).
            None if dimensions == 5 => ["t", "c", "z", "y", "x"].map(str::to_owned).to_vec(),
            None => return Err(cannot("`multiscales[0].axes` is missing".to_owned())),
        };
        let find = |name: &str| axes.iter().position(|a| a.eq_ignore_ascii_case(name));
        let (Some(axis_x), Some(axis_y)) = (find("x"), find("y")) else {
            return Err(cannot(format!("no x and y axes among ({})", axes.join(", "))));
        };
        let axis_c = find("c");
        let data_type = levels[0].data_type();
        let samples = if data_type.is::<UInt8DataType>() {
            Samples::U8
        } else if data_type.is::<UInt16DataType>() {
            Samples::U16
        } else {
            return Err(SlideError::CannotOpen {
                path: path.to_path_buf(),
                reason: format!("samples of type {data_type} are not supported (8- and 16-bit unsigned images are)"),
            });
        };
        let channel_count = axis_c.map_or(1, |c| levels[0].shape()[c] as usize);
        let level_infos = level_infos(&levels, &scales, axis_x, axis_y);
        for (index, level) in levels.iter().enumerate() {
            if level.dimensionality() != dimensions {
                return Err(cannot(format!(
                    "level {index} has {} dimensions, level 0 has {dimensions}",
                    level.dimensionality()
                )));
            }
        }
        let labels = channel_labels(&attrs, channel_count);
        let rgb = samples == Samples::U8 && matches!(channel_count, 3 | 4);
        let bits = if samples == Samples::U8 { 8 } else { 16 };
        let channels: Vec<ChannelInfo> = (0..channel_count)
            .map(|index| {
                let (name, named_by_file, colour) = match &labels[index] {
                    Some((name, colour)) => (name.clone(), true, *colour),
                    None if rgb => (["R", "G", "B", "A"][index].to_owned(), false, None),
                    None => (format!("Channel {}", index + 1), false, None),
                };
                ChannelInfo {
                    name,
                    named_by_file,
                    bits_per_sample: bits,
                    color_rgba: colour.map(|[r, g, b]| [r, g, b, 255]),
                }
            })
            .collect();
        let displays = channels
            .iter()
            .enumerate()
            .map(|(index, channel)| GreyChannelDisplay {
                window: (0, if bits == 8 { 255 } else { u16::MAX }),
                color: channel
                    .color_rgba
                    .map_or_else(|| default_channel_color(index), |[r, g, b, _]| [r, g, b]),
            })
            .collect();
        let levels: Vec<Arc<ZarrArray>> = levels.into_iter().map(Arc::new).collect();
        let chunk_caches = levels
            .iter()
            .map(|level| ChunkCacheDecodedLruSizeLimit::new(level.clone(), CHUNK_CACHE_BYTES_PER_LEVEL))
            .collect();
        let mut source = Self {
            path: path.to_path_buf(),
            metadata: SlideMetadata {
                backend: "zarr".to_owned(),
                vendor: "ome-ngff".to_owned(),
                levels: level_infos,
                mpp_x: physical_size_um(multiscale, &axes, &scales, "x"),
                mpp_y: physical_size_um(multiscale, &axes, &scales, "y"),
                objective_power: None,
                properties: Default::default(),
                associated_images: Vec::new(),
                channels,
                is_multichannel: !rgb,
            },
            levels,
            chunk_caches,
            axis_x,
            axis_y,
            axis_c,
            dimensions,
            samples,
            displays,
        };
        if !rgb {
            let windows = measure_display_windows(&source);
            for (display, window) in source.displays.iter_mut().zip(windows) {
                if let Some(window) = window {
                    display.window = window;
                }
            }
        }
        Ok(source)
    }

    /// Reads `channels` (None: all) of the level's region clipped to the image, as u16 samples
    /// in (channel, y, x) order, and the clipped region's origin and size in level pixels.
    fn read_block(
        &self,
        level: usize,
        origin: (i64, i64),
        width: u32,
        height: u32,
        channel: Option<usize>,
    ) -> Result<Option<Block>, SlideError> {
        let array = &self.levels[level];
        let shape = array.shape();
        let (level_w, level_h) = (shape[self.axis_x] as i64, shape[self.axis_y] as i64);
        let x0 = origin.0.clamp(0, level_w);
        let y0 = origin.1.clamp(0, level_h);
        let x1 = (origin.0 + i64::from(width)).clamp(0, level_w);
        let y1 = (origin.1 + i64::from(height)).clamp(0, level_h);
        if x1 <= x0 || y1 <= y0 {
            return Ok(None);
        }
        let channel_range = match (self.axis_c, channel) {
            (Some(_), Some(c)) => c as u64..c as u64 + 1,
            (Some(axis), None) => 0..shape[axis],
            (None, _) => 0..1,
        };
        let ranges: Vec<std::ops::Range<u64>> = (0..self.dimensions)
            .map(|d| {
                if d == self.axis_x {
                    x0 as u64..x1 as u64
                } else if d == self.axis_y {
                    y0 as u64..y1 as u64
                } else if Some(d) == self.axis_c {
                    channel_range.clone()
                } else {
                    0..1
                }
            })
            .collect();
        let read_failed = |e: zarrs::array::ArrayError| SlideError::ReadFailed {
            path: self.path.clone(),
            what: format!("level {level} region at ({x0}, {y0}) of {}x{} px", x1 - x0, y1 - y0),
            reason: e.to_string(),
        };
        let cache = &self.chunk_caches[level];
        let options = CodecOptions::default();
        let values: Vec<u16> = match self.samples {
            Samples::U8 => cache
                .retrieve_array_subset::<Vec<u8>>(&ranges, &options)
                .map_err(read_failed)?
                .into_iter()
                .map(u16::from)
                .collect(),
            Samples::U16 => cache
                .retrieve_array_subset::<Vec<u16>>(&ranges, &options)
                .map_err(read_failed)?,
        };
        // The subset comes in the arrays' axis order: reorder to (channel, y, x).
        let (w, h) = ((x1 - x0) as usize, (y1 - y0) as usize);
        let channels = (channel_range.end - channel_range.start) as usize;
        let mut strides = vec![1usize; self.dimensions];
        for d in (0..self.dimensions.saturating_sub(1)).rev() {
            strides[d] = strides[d + 1] * (ranges[d + 1].end - ranges[d + 1].start) as usize;
        }
        let (sx, sy) = (strides[self.axis_x], strides[self.axis_y]);
        let sc = self.axis_c.map_or(0, |c| strides[c]);
        let mut samples = vec![0u16; channels * w * h];
        for c in 0..channels {
            for y in 0..h {
                for x in 0..w {
                    samples[(c * h + y) * w + x] = values[c * sc + y * sy + x * sx];
                }
            }
        }
        Ok(Some(Block { x0, y0, w, h, samples }))
    }
}

/// A region of a level clipped to the image: `samples[(c * h + y) * w + x]`.
struct Block {
    x0: i64,
    y0: i64,
    w: usize,
    h: usize,
    samples: Vec<u16>,
}

impl SlideSource for NgffSource {
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
        let mut pixels = vec![0u8; width as usize * height as usize * 4];
        if self.metadata.is_multichannel {
            let inside = self.metadata.region_inside(level, origin, width);
            let composite =
                composite_grey_channels(self, &self.displays, pos_in_slide_px, level, width, height, &inside)?;
            return Ok(RgbaImage {
                width,
                height,
                pixels: composite,
            });
        }
        let Some(block) = self.read_block(level, origin, width, height, None)? else {
            return Ok(RgbaImage { width, height, pixels });
        };
        let channels = block.samples.len() / (block.w * block.h);
        let plane = block.w * block.h;
        for y in 0..block.h {
            for x in 0..block.w {
                let out_x = (block.x0 - origin.0) as usize + x;
                let out_y = (block.y0 - origin.1) as usize + y;
                let at = (out_y * width as usize + out_x) * 4;
                let i = y * block.w + x;
                let alpha = if channels == 4 {
                    block.samples[3 * plane + i] as u8
                } else {
                    255
                };
                pixels[at..at + 4].copy_from_slice(&[
                    block.samples[i] as u8,
                    block.samples[plane + i] as u8,
                    block.samples[2 * plane + i] as u8,
                    alpha,
                ]);
            }
        }
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
        if channel >= self.metadata.channels.len() {
            return Err(SlideError::InvalidRequest {
                path: self.path.clone(),
                reason: format!("channel {channel} of an image with {}", self.metadata.channels.len()),
            });
        }
        let origin = self.metadata.origin_in_level_px(pos_in_slide_px, level);
        let mut pixels = vec![0u16; width as usize * height as usize];
        if let Some(block) = self.read_block(level, origin, width, height, Some(channel))? {
            for y in 0..block.h {
                let out_y = (block.y0 - origin.1) as usize + y;
                let out_x = (block.x0 - origin.0) as usize;
                let row = out_y * width as usize + out_x;
                pixels[row..row + block.w].copy_from_slice(&block.samples[y * block.w..(y + 1) * block.w]);
            }
        }
        Ok(Gray16Image { width, height, pixels })
    }
}

/// Axis names of `multiscales[0].axes`: objects with `name` (0.4+) or plain strings (0.3).
fn axis_names(multiscale: &Value) -> Option<Vec<String>> {
    let axes = multiscale.get("axes")?.as_array()?;
    axes.iter()
        .map(|axis| match axis {
            Value::String(name) => Some(name.clone()),
            Value::Object(object) => object.get("name")?.as_str().map(str::to_owned),
            _ => None,
        })
        .collect()
}

/// The dataset's `scale` coordinate transformation, if it has one.
fn dataset_scale(dataset: &Value) -> Option<Vec<f64>> {
    dataset
        .get("coordinateTransformations")?
        .as_array()?
        .iter()
        .find(|t| t.get("type").and_then(Value::as_str) == Some("scale"))?
        .get("scale")?
        .as_array()?
        .iter()
        .map(Value::as_f64)
        .collect()
}

/// Level sizes, and downsamples from the datasets' scales (relative to level 0) where given,
/// else from the sizes.
fn level_infos(levels: &[ZarrArray], scales: &[Option<Vec<f64>>], axis_x: usize, axis_y: usize) -> Vec<LevelInfo> {
    let base_scale = scales[0]
        .as_ref()
        .and_then(|s| s.get(axis_x).copied())
        .filter(|s| *s > 0.0);
    let base_width = levels[0].shape()[axis_x].max(1) as f64;
    levels
        .iter()
        .zip(scales)
        .map(|(array, scale)| {
            let shape = array.shape();
            let width_px = shape[axis_x];
            let by_scale = match (base_scale, scale.as_ref().and_then(|s| s.get(axis_x).copied())) {
                (Some(base), Some(this)) if this > 0.0 => Some(this / base),
                _ => None,
            };
            LevelInfo {
                width_px,
                height_px: shape[axis_y],
                downsample: by_scale.unwrap_or(base_width / width_px.max(1) as f64),
            }
        })
        .collect()
}

/// Channel labels and colours from `omero.channels` (a label may be a number, as spatialdata
/// writes unnamed channels: those count as unnamed).
fn channel_labels(attrs: &serde_json::Map<String, Value>, count: usize) -> Vec<Option<(String, Option<[u8; 3]>)>> {
    let listed = attrs
        .get("omero")
        .and_then(|o| o.get("channels"))
        .and_then(Value::as_array);
    (0..count)
        .map(|index| {
            let channel = listed?.get(index)?;
            let label = match channel.get("label")? {
                Value::String(text) if !text.is_empty() && text.parse::<u64>().is_err() => text.clone(),
                _ => return None,
            };
            let colour = channel
                .get("color")
                .and_then(Value::as_str)
                .filter(|hex| hex.len() == 6)
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .map(|rgb| [(rgb >> 16) as u8, (rgb >> 8) as u8, rgb as u8]);
            Some((label, colour))
        })
        .collect()
}

/// Micrometres per level-0 pixel along `axis`, when the axis carries a length unit and level 0
/// a scale.
fn physical_size_um(multiscale: &Value, axes: &[String], scales: &[Option<Vec<f64>>], axis: &str) -> Option<f64> {
    let index = axes.iter().position(|a| a.eq_ignore_ascii_case(axis))?;
    let unit = multiscale.get("axes")?.get(index)?.get("unit")?.as_str()?;
    let per_unit = match unit {
        "micrometer" | "micron" | "um" | "µm" => 1.0,
        "nanometer" | "nm" => 1e-3,
        "millimeter" | "mm" => 1e3,
        "centimeter" | "cm" => 1e4,
        "meter" | "m" => 1e6,
        _ => return None,
    };
    let scale = scales.first()?.as_ref()?.get(index).copied().unwrap_or(1.0);
    (scale > 0.0).then_some(scale * per_unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_labels_skip_numbers_and_read_colours() {
        let attrs: serde_json::Map<String, Value> = serde_json::from_str(
            r#"{"omero": {"channels": [{"label": 0}, {"label": "DAPI", "color": "0000FF"}, {"label": "3"}]}}"#,
        )
        .unwrap_or_default();
        let labels = channel_labels(&attrs, 4);
        assert_eq!(labels[0], None);
        assert_eq!(labels[1], Some(("DAPI".to_owned(), Some([0, 0, 255]))));
        assert_eq!(labels[2], None);
        assert_eq!(labels[3], None);
    }

    #[test]
    fn axis_names_read_objects_and_strings() {
        let v: Value = serde_json::from_str(r#"{"axes": [{"name": "c"}, "y", {"name": "x", "unit": "micrometer"}]}"#)
            .unwrap_or_default();
        assert_eq!(
            axis_names(&v),
            Some(vec!["c".to_owned(), "y".to_owned(), "x".to_owned()])
        );
        let scales = vec![Some(vec![1.0, 0.5, 0.25])];
        assert_eq!(
            physical_size_um(&v, &["c".into(), "y".into(), "x".into()], &scales, "x"),
            Some(0.25)
        );
    }
}
