//! [`DicomSource`]: DICOM whole-slide images (VL Whole Slide Microscopy, DICOM Supplement 145)
//! read with dicom-rs, so `.dcm` slides open where the system's OpenSlide (3.4 on Debian 12)
//! cannot. A slide is a series of instances in one folder: the opened file's series is gathered
//! from its siblings; VOLUME instances are the pyramid levels, LABEL / OVERVIEW / THUMBNAIL the
//! associated images (`label`, `macro`, `thumbnail`). Tiles are frames, in row-major order
//! (TILED_FULL) or placed by their per-frame positions (TILED_SPARSE), decoded by
//! dicom-pixeldata (JPEG baseline and extended, JPEG 2000, RLE, uncompressed). Each instance is
//! held in memory once opened.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};
use dicom_pixeldata::PixelDecoder;

use crate::SlideError;
use crate::source::{ChannelInfo, ClippedRegion, LevelInfo, RgbaImage, SlideMetadata, SlideSource, read_failed};

/// One instance of the series: a pyramid level or an associated image.
struct Instance {
    path: PathBuf,
    object: DefaultDicomObject,
    width_px: u64,
    height_px: u64,
    tile_w: u32,
    tile_h: u32,
    samples_per_pixel: u16,
    /// (column, row) of a tile -> its frame (TILED_SPARSE); None: row-major frames.
    sparse: Option<HashMap<(u32, u32), u32>>,
    frames: u32,
}

/// A DICOM WSI series. `Send + Sync`: tile loader threads share it.
pub struct DicomSource {
    path: PathBuf,
    metadata: SlideMetadata,
    levels: Vec<Instance>,
    associated: BTreeMap<String, Instance>,
}

impl std::fmt::Debug for DicomSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DicomSource")
            .field("path", &self.path)
            .field("levels", &self.levels.len())
            .finish_non_exhaustive()
    }
}

fn cannot_open(path: &Path, reason: impl Into<String>) -> SlideError {
    SlideError::CannotOpen {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn text(object: &InMemDicomObject, tag: dicom_object::Tag) -> Option<String> {
    object
        .element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim().trim_end_matches('\0').to_owned())
}

fn int(object: &InMemDicomObject, tag: dicom_object::Tag) -> Option<u64> {
    object
        .element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_int::<u64>().ok())
}

fn first_item(object: &InMemDicomObject, tag: dicom_object::Tag) -> Option<&InMemDicomObject> {
    object
        .element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.items())
        .and_then(|items| items.first())
}

/// The value 3 of ImageType (VOLUME, LABEL, OVERVIEW, THUMBNAIL), upper case.
fn image_flavour(object: &InMemDicomObject) -> String {
    object
        .element_opt(tags::IMAGE_TYPE)
        .ok()
        .flatten()
        .and_then(|e| e.to_multi_str().ok().and_then(|v| v.get(2).cloned()))
        .unwrap_or_default()
        .trim()
        .to_uppercase()
}

/// µm per pixel (x, y) from the shared functional groups' PixelSpacing (mm; rows then columns).
fn pixel_spacing_um(object: &InMemDicomObject) -> (Option<f64>, Option<f64>) {
    let spacing = first_item(object, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|shared| first_item(shared, tags::PIXEL_MEASURES_SEQUENCE))
        .and_then(|measures| measures.element_opt(tags::PIXEL_SPACING).ok().flatten())
        .and_then(|e| e.to_multi_float64().ok());
    match spacing.as_deref() {
        Some([row_mm, column_mm, ..]) if *row_mm > 0.0 && *column_mm > 0.0 => {
            (Some(column_mm * 1000.0), Some(row_mm * 1000.0))
        }
        _ => (None, None),
    }
}

impl Instance {
    fn read(path: &Path) -> Result<Self, SlideError> {
        let object =
            dicom_object::open_file(path).map_err(|e| cannot_open(path, format!("not a readable DICOM file: {e}")))?;
        let missing = |what: &str| cannot_open(path, format!("the DICOM file has no {what}"));
        let width_px = int(&object, tags::TOTAL_PIXEL_MATRIX_COLUMNS)
            .or_else(|| int(&object, tags::COLUMNS))
            .ok_or_else(|| missing("TotalPixelMatrixColumns"))?;
        let height_px = int(&object, tags::TOTAL_PIXEL_MATRIX_ROWS)
            .or_else(|| int(&object, tags::ROWS))
            .ok_or_else(|| missing("TotalPixelMatrixRows"))?;
        let tile_w = int(&object, tags::COLUMNS).ok_or_else(|| missing("Columns"))? as u32;
        let tile_h = int(&object, tags::ROWS).ok_or_else(|| missing("Rows"))? as u32;
        let frames = int(&object, tags::NUMBER_OF_FRAMES).unwrap_or(1) as u32;
        let samples_per_pixel = int(&object, tags::SAMPLES_PER_PIXEL).unwrap_or(1) as u16;
        let bits = int(&object, tags::BITS_ALLOCATED).unwrap_or(8);
        if bits != 8 {
            return Err(cannot_open(
                path,
                format!("{bits}-bit DICOM slides are not supported (8 bits are)"),
            ));
        }
        if width_px == 0 || height_px == 0 || tile_w == 0 || tile_h == 0 {
            return Err(cannot_open(path, "the DICOM image is empty"));
        }
        let sparse = (text(&object, tags::DIMENSION_ORGANIZATION_TYPE).as_deref() == Some("TILED_SPARSE"))
            .then(|| sparse_positions(&object, tile_w, tile_h));
        Ok(Self {
            path: path.to_path_buf(),
            object,
            width_px,
            height_px,
            tile_w,
            tile_h,
            samples_per_pixel,
            sparse,
            frames,
        })
    }

    fn tiles_across(&self) -> u32 {
        self.width_px.div_ceil(u64::from(self.tile_w)) as u32
    }

    fn frame_of(&self, col: u32, row: u32) -> Option<u32> {
        match &self.sparse {
            Some(positions) => positions.get(&(col, row)).copied(),
            None => {
                let frame = row * self.tiles_across() + col;
                (frame < self.frames).then_some(frame)
            }
        }
    }

    /// Decodes one frame as interleaved 8-bit samples.
    fn frame(&self, frame: u32) -> Result<Vec<u8>, SlideError> {
        let what = || format!("frame {frame}");
        let decoded = self
            .object
            .decode_pixel_data_frame(frame)
            .map_err(|e| read_failed(&self.path, what(), e))?;
        decoded
            .to_vec_frame::<u8>(0)
            .map_err(|e| read_failed(&self.path, what(), e))
    }

    /// Reads a region of this instance in its own pixels as RGBA (transparent where no tile is).
    fn read_rgba(&self, x0: i64, y0: i64, width: u32, height: u32) -> Result<RgbaImage, SlideError> {
        let mut pixels = vec![0u8; width as usize * height as usize * 4];
        let (tw, th) = (i64::from(self.tile_w), i64::from(self.tile_h));
        let spp = usize::from(self.samples_per_pixel.max(1));
        let Some(region) = ClippedRegion::new((x0, y0), (width, height), (self.width_px, self.height_px)) else {
            return Ok(RgbaImage { width, height, pixels });
        };
        for tile in region.tiles((tw, th)) {
            let Some(frame) = self.frame_of(tile.col as u32, tile.row as u32) else {
                continue;
            };
            let samples = self.frame(frame)?;
            let expected = (tw * th) as usize * spp;
            if samples.len() < expected {
                return Err(read_failed(
                    &self.path,
                    format!("frame {frame}"),
                    format!("decoded to {} samples, {expected} expected", samples.len()),
                ));
            }
            for y in tile.ys.clone() {
                for x in tile.xs.clone() {
                    let src = (((y - tile.row * th) * tw + (x - tile.col * tw)) as usize) * spp;
                    let dst = (((y - y0) * i64::from(width) + (x - x0)) as usize) * 4;
                    let rgb = if spp >= 3 {
                        [samples[src], samples[src + 1], samples[src + 2]]
                    } else {
                        [samples[src]; 3]
                    };
                    pixels[dst..dst + 4].copy_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
                }
            }
        }
        Ok(RgbaImage { width, height, pixels })
    }
}

/// TILED_SPARSE: each frame's tile from its position in the total pixel matrix (1-based).
fn sparse_positions(object: &InMemDicomObject, tile_w: u32, tile_h: u32) -> HashMap<(u32, u32), u32> {
    let mut positions = HashMap::new();
    let Some(frames) = object
        .element_opt(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .ok()
        .flatten()
        .and_then(|e| e.items())
    else {
        return positions;
    };
    for (frame, item) in frames.iter().enumerate() {
        let Some(position) = first_item(item, tags::PLANE_POSITION_SLIDE_SEQUENCE) else {
            continue;
        };
        let column = int(position, tags::COLUMN_POSITION_IN_TOTAL_IMAGE_PIXEL_MATRIX).unwrap_or(1);
        let row = int(position, tags::ROW_POSITION_IN_TOTAL_IMAGE_PIXEL_MATRIX).unwrap_or(1);
        let key = (
            (column.saturating_sub(1) / u64::from(tile_w)) as u32,
            (row.saturating_sub(1) / u64::from(tile_h)) as u32,
        );
        // The first frame at a position wins (further focal planes or optical paths follow).
        positions.entry(key).or_insert(frame as u32);
    }
    positions
}

/// Whether a file is DICOM Part 10 (128 bytes of preamble, then `DICM`).
pub fn is_dicom_file(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 132];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head[128..132] == b"DICM"
}

/// The files of `path`'s folder in the same series (by SeriesInstanceUID), `path` included.
fn series_files(path: &Path, series: &str) -> Vec<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && p != path && is_dicom_file(p))
                .filter(|p| {
                    OpenFileOptions::new()
                        .read_until(tags::PIXEL_DATA)
                        .open_file(p)
                        .ok()
                        .and_then(|o| text(&o, tags::SERIES_INSTANCE_UID))
                        .is_some_and(|s| s == series)
                })
                .collect()
        })
        .unwrap_or_default();
    files.push(path.to_path_buf());
    files.sort();
    files
}

impl DicomSource {
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SlideError> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(SlideError::NotFound {
                path: path.to_path_buf(),
            });
        }
        let header = OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .open_file(path)
            .map_err(|e| cannot_open(path, format!("not a readable DICOM file: {e}")))?;
        let series = text(&header, tags::SERIES_INSTANCE_UID).unwrap_or_default();
        let files = if series.is_empty() {
            vec![path.to_path_buf()]
        } else {
            series_files(path, &series)
        };
        let mut volumes = Vec::new();
        let mut associated = BTreeMap::new();
        for file in &files {
            let instance = match Instance::read(file) {
                Ok(instance) => instance,
                // A sibling that cannot be read does not stop the one asked for.
                Err(error) if file != path => {
                    log::warn!("{error}");
                    continue;
                }
                Err(error) => return Err(error),
            };
            match image_flavour(&instance.object).as_str() {
                "LABEL" => {
                    associated.insert("label".to_owned(), instance);
                }
                "OVERVIEW" => {
                    associated.insert("macro".to_owned(), instance);
                }
                "THUMBNAIL" => {
                    associated.insert("thumbnail".to_owned(), instance);
                }
                _ => volumes.push(instance),
            }
        }
        // A series of only a thumbnail (or the file asked for is one) still shows as an image.
        if volumes.is_empty()
            && let Some(name) = associated.keys().find(|k| *k == "thumbnail").cloned()
            && let Some(instance) = associated.remove(&name)
        {
            volumes.push(instance);
        }
        if volumes.is_empty() {
            return Err(cannot_open(path, "the DICOM series has no image to show"));
        }
        volumes.sort_by_key(|v| std::cmp::Reverse(v.width_px));
        volumes.dedup_by_key(|v| v.width_px);
        let level0_width = volumes[0].width_px as f64;
        let levels = volumes
            .iter()
            .map(|v| LevelInfo {
                width_px: v.width_px,
                height_px: v.height_px,
                downsample: level0_width / v.width_px as f64,
            })
            .collect();
        let (mpp_x, mpp_y) = pixel_spacing_um(&volumes[0].object);
        let grey = volumes[0].samples_per_pixel == 1;
        let channels = if grey { vec!["Grey"] } else { vec!["R", "G", "B"] }
            .into_iter()
            .map(|name| ChannelInfo {
                name: name.to_owned(),
                named_by_file: false,
                bits_per_sample: 8,
                color_rgba: None,
            })
            .collect();
        let mut properties = BTreeMap::new();
        for (key, tag) in [
            ("dicom.Manufacturer", tags::MANUFACTURER),
            ("dicom.ManufacturerModelName", tags::MANUFACTURER_MODEL_NAME),
            ("dicom.SeriesInstanceUID", tags::SERIES_INSTANCE_UID),
            ("dicom.TransferSyntaxUID", tags::TRANSFER_SYNTAX_UID),
        ] {
            let value = text(&volumes[0].object, tag).or_else(|| {
                (tag == tags::TRANSFER_SYNTAX_UID).then(|| volumes[0].object.meta().transfer_syntax().to_owned())
            });
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                properties.insert(key.to_owned(), value.trim_end_matches('\0').to_owned());
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            metadata: SlideMetadata {
                backend: "dicom".to_owned(),
                vendor: "dicom".to_owned(),
                levels,
                mpp_x,
                mpp_y,
                objective_power: None,
                properties,
                associated_images: associated.keys().cloned().collect(),
                channels,
                is_multichannel: false,
            },
            levels: volumes,
            associated,
        })
    }
}

impl SlideSource for DicomSource {
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
        let (x0, y0) = self.metadata.origin_in_level_px(pos_in_slide_px, level);
        self.levels[level].read_rgba(x0, y0, width, height)
    }

    fn read_associated_image(&self, name: &str) -> Result<RgbaImage, SlideError> {
        let Some(instance) = self.associated.get(name) else {
            return Err(SlideError::NoSuchAssociatedImage {
                path: self.path.clone(),
                name: name.to_owned(),
            });
        };
        instance.read_rgba(0, 0, instance.width_px as u32, instance.height_px as u32)
    }
}
