//! [`SlideSource`] over the OpenSlide C library (Aperio, Hamamatsu, MIRAX, Leica, Philips, Ventana,
//! generic tiled TIFF).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use openslide_rs::errors::OpenSlideError;
use openslide_rs::{Address, OpenSlide, Region, Size};

use crate::SlideError;
use crate::source::{LevelInfo, RgbaImage, SlideMetadata, SlideSource, read_failed};

/// A slide opened through OpenSlide. `Send + Sync`: tile loader threads share one handle.
pub struct OpenSlideSource {
    path: PathBuf,
    slide: OpenSlide,
    metadata: SlideMetadata,
}

impl std::fmt::Debug for OpenSlideSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenSlideSource")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn open_error(path: &Path, error: OpenSlideError) -> SlideError {
    match error {
        OpenSlideError::MissingFile(_) => SlideError::NotFound {
            path: path.to_path_buf(),
        },
        OpenSlideError::UnsupportedFile(_) => SlideError::Unsupported {
            path: path.to_path_buf(),
        },
        other => SlideError::CannotOpen {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    }
}

impl OpenSlideSource {
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SlideError> {
        let path = path.as_ref();
        if path.is_dir() {
            return Err(SlideError::CannotOpen {
                path: path.to_path_buf(),
                reason: "this is a folder, not a slide file".to_owned(),
            });
        }
        let slide = OpenSlide::new(path).map_err(|e| open_error(path, e))?;
        let metadata = read_metadata(path, &slide)?;
        if metadata.levels.is_empty() {
            return Err(SlideError::CannotOpen {
                path: path.to_path_buf(),
                reason: "the slide has no pyramid levels".to_owned(),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            slide,
            metadata,
        })
    }

    /// The OpenSlide library version, for the about box and bug reports.
    pub fn library_version() -> String {
        OpenSlide::version().unwrap_or_else(|_| "unknown".to_owned())
    }
}

fn read_metadata(path: &Path, slide: &OpenSlide) -> Result<SlideMetadata, SlideError> {
    let names = slide.property_names().map_err(|e| open_error(path, e))?;
    let properties: BTreeMap<String, String> = names
        .into_iter()
        .filter_map(|name| slide.property_value(&name).ok().map(|value| (name, value)))
        .collect();
    let number = |key: &str| {
        properties
            .get(key)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v > 0.0)
    };
    let levels = slide
        .all_level_dimensions()
        .iter()
        .zip(slide.all_level_downsamples())
        .map(|(size, downsample)| LevelInfo {
            width_px: u64::from(size.w),
            height_px: u64::from(size.h),
            downsample: *downsample,
        })
        .collect();
    let associated_images = slide.associated_image_names().map_err(|e| open_error(path, e))?;
    let channels = ["R", "G", "B"]
        .into_iter()
        .map(|name| crate::ChannelInfo {
            name: name.to_owned(),
            named_by_file: false,
            bits_per_sample: 8,
            color_rgba: None,
        })
        .collect();
    Ok(SlideMetadata {
        backend: "openslide".to_owned(),
        channels,
        is_multichannel: false,
        vendor: properties
            .get("openslide.vendor")
            .cloned()
            .unwrap_or_else(|| "unknown".to_owned()),
        levels,
        mpp_x: number("openslide.mpp-x").or_else(|| mpp_from_tiff_resolution(&properties, "tiff.XResolution")),
        mpp_y: number("openslide.mpp-y").or_else(|| mpp_from_tiff_resolution(&properties, "tiff.YResolution")),
        objective_power: number("openslide.objective-power"),
        properties,
        associated_images,
    })
}

/// µm per pixel from a TIFF's resolution tags, which OpenSlide 3.4 does not turn into
/// `openslide.mpp-*` for generic TIFFs. Only physically plausible values (0.05–50 µm/px) count, so
/// the common "72 dpi" placeholder is ignored.
fn mpp_from_tiff_resolution(properties: &BTreeMap<String, String>, key: &str) -> Option<f64> {
    let per_unit: f64 = properties.get(key)?.trim().parse().ok()?;
    let um_per_unit = match properties.get("tiff.ResolutionUnit")?.trim() {
        "centimeter" => 10_000.0,
        "inch" => 25_400.0,
        _ => return None,
    };
    let mpp = um_per_unit / per_unit;
    (mpp.is_finite() && (0.05..=50.0).contains(&mpp)).then_some(mpp)
}

/// OpenSlide gives premultiplied ARGB as native-endian u32; convert in place to straight RGBA8.
fn argb_premultiplied_to_rgba(buffer: &mut [u8]) {
    for px in buffer.chunks_exact_mut(4) {
        let argb = u32::from_ne_bytes([px[0], px[1], px[2], px[3]]);
        let a = (argb >> 24) as u8;
        let mut r = (argb >> 16) as u8;
        let mut g = (argb >> 8) as u8;
        let mut b = argb as u8;
        if a != 0 && a != 255 {
            let unpremultiply = |c: u8| ((u32::from(c) * 255 + u32::from(a) / 2) / u32::from(a)).min(255) as u8;
            r = unpremultiply(r);
            g = unpremultiply(g);
            b = unpremultiply(b);
        }
        px.copy_from_slice(&[r, g, b, a]);
    }
}

impl SlideSource for OpenSlideSource {
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
        let what = || {
            format!(
                "region {width}x{height} at level {level}, level-0 ({}, {})",
                pos_in_slide_px.0, pos_in_slide_px.1
            )
        };
        self.metadata
            .check_region(&self.path, pos_in_slide_px, level, width, height)?;
        let (Ok(x), Ok(y), Ok(level_u32)) = (
            u32::try_from(pos_in_slide_px.0),
            u32::try_from(pos_in_slide_px.1),
            u32::try_from(level),
        ) else {
            return Err(SlideError::InvalidRequest {
                path: self.path.clone(),
                reason: format!("{} is beyond 32-bit coordinates", what()),
            });
        };
        let region = Region {
            size: Size { w: width, h: height },
            level: level_u32,
            address: Address { x, y },
        };
        let mut pixels = self
            .slide
            .read_region(&region)
            .map_err(|e| read_failed(&self.path, what(), e))?;
        argb_premultiplied_to_rgba(&mut pixels);
        Ok(RgbaImage { width, height, pixels })
    }

    fn read_associated_image(&self, name: &str) -> Result<RgbaImage, SlideError> {
        if !self.metadata.associated_images.iter().any(|n| n == name) {
            return Err(SlideError::NoSuchAssociatedImage {
                path: self.path.clone(),
                name: name.to_owned(),
            });
        }
        let (size, mut pixels) = self
            .slide
            .read_associated_buffer(name)
            .map_err(|e| read_failed(&self.path, format!("associated image {name:?}"), e))?;
        argb_premultiplied_to_rgba(&mut pixels);
        Ok(RgbaImage {
            width: size.w,
            height: size.h,
            pixels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_tags_give_mpp_when_plausible() {
        let props = |x: &str, unit: &str| {
            [("tiff.XResolution", x), ("tiff.ResolutionUnit", unit)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<BTreeMap<_, _>>()
        };
        let mpp = |x: &str, unit: &str| mpp_from_tiff_resolution(&props(x, unit), "tiff.XResolution");
        assert_eq!(mpp("20000", "centimeter"), Some(0.5));
        assert_eq!(mpp("50800", "inch"), Some(0.5));
        assert_eq!(mpp("72", "inch"), None, "72 dpi is a placeholder, not a microscope");
        assert_eq!(mpp("20000", "none"), None);
        assert_eq!(mpp("abc", "centimeter"), None);
    }

    #[test]
    fn premultiplied_argb_becomes_straight_rgba() {
        // Half-transparent pure red, premultiplied: a=128, r=128.
        let argb: u32 = (128 << 24) | (128 << 16);
        let mut buffer = argb.to_ne_bytes().to_vec();
        argb_premultiplied_to_rgba(&mut buffer);
        assert_eq!(buffer, vec![255, 0, 0, 128]);

        let opaque: u32 = (255 << 24) | (10 << 16) | (20 << 8) | 30;
        let mut buffer = opaque.to_ne_bytes().to_vec();
        argb_premultiplied_to_rgba(&mut buffer);
        assert_eq!(buffer, vec![10, 20, 30, 255]);
    }

    #[test]
    fn missing_file_is_not_found() {
        let err = OpenSlideSource::open("/definitely/not/here.svs").unwrap_err();
        assert!(matches!(err, SlideError::NotFound { .. }), "{err}");
        assert!(err.to_string().contains("/definitely/not/here.svs"));
    }
}
