//! Opening data off the UI thread: a slide with its overview and associated images, a Xenium
//! bundle with its GPU geometry and spatial index, its morphology images as channels with their
//! histograms, its transcripts as a point layer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cs_analysis::GridIndex;
use cs_render::CellGeometry;
use cs_slide::{RgbaImage, SlideError, SlideSource, open_slide as open_image};
use cs_xenium::{MorphologyFile, TranscriptIndex, XeniumBundle, XeniumError};

use crate::layers::cell_layer::{BundleSlide, LoadedBundle, as_table};
use crate::layers::morphology_layer::{ChannelHistogram, ChannelStyle, MorphologyChannel, OpenedMorphology};
use crate::work::jobs::CancelToken;

const OVERVIEW_MAX_SIDE_PX: u32 = 512;
const ASSOCIATED_MAX_SIDE_PX: u32 = 1024;

/// A slide as read by the open job, before it reaches the UI thread.
pub struct OpenedSlide {
    pub path: PathBuf,
    pub source: Arc<dyn SlideSource>,
    pub overview: Option<RgbaImage>,
    pub associated: Vec<(String, Result<RgbaImage, SlideError>)>,
}

/// Opens a slide and reads what the panels show (overview, associated images).
pub fn open_slide(path: &Path) -> Result<OpenedSlide, SlideError> {
    let source = open_image(path)?;
    let overview = match source.overview(OVERVIEW_MAX_SIDE_PX) {
        Ok(image) => Some(image),
        Err(error) => {
            log::warn!("{error}");
            None
        }
    };
    let associated = source
        .metadata()
        .associated_images
        .iter()
        .map(|name| {
            let image = source
                .read_associated_image(name)
                .map(|image| image.downscaled_to_fit(ASSOCIATED_MAX_SIDE_PX));
            (name.clone(), image)
        })
        .collect();
    Ok(OpenedSlide {
        path: path.to_path_buf(),
        source,
        overview,
        associated,
    })
}

/// Reads a Xenium bundle folder or a SpatialData `.zarr` store (with the H&E it holds, placed by
/// its transformation).
pub fn read_bundle(path: &Path) -> anyhow::Result<(XeniumBundle, Option<BundleSlide>)> {
    if cs_spatialdata::is_spatialdata(path) {
        let read = cs_spatialdata::read_bundle(path)?;
        let slide = read.he_image.map(|image| BundleSlide {
            path: image.path,
            world_from_slide_px: image.world_from_image_px,
        });
        return Ok((read.bundle, slide));
    }
    Ok((XeniumBundle::open(path)?, None))
}

/// Reads a bundle and prepares its GPU geometry and spatial index (None: cancelled).
pub fn load_bundle(dir: &Path, geometry_id: u64, cancel: &CancelToken) -> anyhow::Result<Option<LoadedBundle>> {
    let (bundle, slide) = read_bundle(dir)?;
    if cancel.is_cancelled() {
        return Ok(None);
    }
    let geometry = CellGeometry::build(
        geometry_id,
        &bundle.cells.x_um,
        &bundle.cells.y_um,
        bundle.cell_boundaries.as_ref().map(as_table),
        bundle.nucleus_boundaries.as_ref().map(as_table),
    );
    if cancel.is_cancelled() {
        return Ok(None);
    }
    let index = GridIndex::build(&bundle.cells.x_um, &bundle.cells.y_um);
    Ok(Some(LoadedBundle {
        bundle,
        geometry,
        index,
        slide,
    }))
}

/// The bundle's transcript index from the cache, built on first open (streaming, with progress;
/// None: no transcripts file, or cancelled).
pub fn open_transcript_index(
    bundle: &XeniumBundle,
    cache_dir: &Path,
    cx: &crate::work::jobs::JobContext,
) -> Result<Option<Arc<TranscriptIndex>>, XeniumError> {
    let Some(source) = bundle.files.transcripts.as_deref() else {
        return Ok(None);
    };
    let mut progress = |fraction: f32| {
        cx.report("Indexing transcripts (first open only)", fraction);
        !cx.is_cancelled()
    };
    match cs_xenium::open_or_build_index(
        source,
        &bundle.files.transcript_layout,
        &bundle.cells,
        cache_dir,
        &mut progress,
    ) {
        Ok(index) => Ok(Some(Arc::new(index))),
        Err(_) if cx.is_cancelled() => Ok(None),
        Err(error) => Err(error),
    }
}

/// Where transcript indexes are cached.
pub fn transcript_index_dir() -> PathBuf {
    crate::work::demo::cache_root().join("transcript-index")
}

/// Opens a bundle's morphology images as one set of channels (None: cancelled).
///
/// A multi-file OME-TIFF (XOA 2.x–3.x) may list every stain in its first file's OME-XML, which
/// then opens them all; otherwise each file adds its own channels. Files whose size differs from
/// the first are left out with a warning. Channels the files do not name take the 10x names
/// (the file name's, else DAPI, boundary, interior RNA, interior protein in order).
pub fn open_morphology(
    files: &[MorphologyFile],
    bundle_pixel_size_um: f64,
    cancel: &CancelToken,
) -> Result<Option<OpenedMorphology>, SlideError> {
    let Some(first_file) = files.first() else {
        return Ok(None);
    };
    let first = open_image(&first_file.path)?;
    let mut sources = vec![first.clone()];
    let mut paths = vec![first_file.path.clone()];
    let mut hints = vec![first_file.channel_name_hint.clone()];
    let mut warnings = Vec::new();
    let size = first.metadata().level0_size_px();
    let first_covers_all = files.len() > 1 && first.metadata().channels.len() >= files.len();
    if !first_covers_all {
        for file in &files[1..] {
            if cancel.is_cancelled() {
                return Ok(None);
            }
            match open_image(&file.path) {
                Ok(source) if source.metadata().level0_size_px() == size => {
                    sources.push(source);
                    paths.push(file.path.clone());
                    hints.push(file.channel_name_hint.clone());
                }
                Ok(source) => warnings.push(format!(
                    "{} is {}x{} px, not {}x{} px like {}: left out",
                    file.path.display(),
                    source.metadata().level0_size_px().0,
                    source.metadata().level0_size_px().1,
                    size.0,
                    size.1,
                    first_file.path.display()
                )),
                Err(error) => warnings.push(error.to_string()),
            }
        }
    }
    let mut channels = Vec::new();
    for (source_index, source) in sources.iter().enumerate() {
        let meta = source.metadata();
        for (channel_in_source, info) in meta.channels.iter().enumerate() {
            if cancel.is_cancelled() {
                return Ok(None);
            }
            let index = channels.len();
            let name = if info.named_by_file {
                info.name.clone()
            } else if meta.channels.len() == 1
                && let Some(hint) = &hints[source_index]
            {
                hint.clone()
            } else {
                cs_xenium::XENIUM_STAIN_NAMES
                    .get(index)
                    .map_or_else(|| info.name.clone(), |name| (*name).to_owned())
            };
            let histogram = coarsest_level_histogram(source.as_ref(), channel_in_source, info.bits_per_sample)?;
            let (lo, hi) = histogram.auto_window;
            let color = info
                .color_rgba
                .filter(|c| c[..3] != [255, 255, 255] && c[..3] != [0, 0, 0])
                .map(|c| [c[0], c[1], c[2]])
                .unwrap_or_else(|| cs_slide::default_channel_color(index));
            channels.push(MorphologyChannel {
                name,
                bits_per_sample: info.bits_per_sample,
                source: source_index,
                channel_in_source,
                style: ChannelStyle {
                    // DAPI and the boundary stain, as Xenium Explorer opens; the rest on demand.
                    visible: index < DEFAULT_VISIBLE_CHANNELS,
                    color,
                    window_min: f32::from(lo),
                    window_max: f32::from(hi.max(lo + 1)),
                    gamma: 1.0,
                },
                histogram,
            });
        }
    }
    let world_from_image = match first_file.world_from_image_px {
        Some(placed) => glam::DAffine2::from_cols_array(&placed.to_cols_array()),
        None => glam::DAffine2::from_scale(glam::DVec2::splat(
            first.metadata().mpp().unwrap_or(bundle_pixel_size_um),
        )),
    };
    Ok(Some(OpenedMorphology {
        paths,
        sources,
        channels,
        world_from_image,
        warnings,
    }))
}

/// Channels shown when the images open (DAPI and the boundary stain in a Xenium run).
const DEFAULT_VISIBLE_CHANNELS: usize = 2;

/// Most pixels a histogram is measured on (a centred crop of the coarsest level beyond it).
const HISTOGRAM_MAX_SIDE_PX: u64 = 2048;

/// A channel's histogram over its coarsest level (the whole image, at low resolution).
fn coarsest_level_histogram(
    source: &dyn SlideSource,
    channel: usize,
    bits_per_sample: u8,
) -> Result<ChannelHistogram, SlideError> {
    let meta = source.metadata();
    let level = meta.levels.len().saturating_sub(1);
    let info = meta.levels[level];
    let (w, h) = (
        info.width_px.min(HISTOGRAM_MAX_SIDE_PX),
        info.height_px.min(HISTOGRAM_MAX_SIDE_PX),
    );
    let x = ((info.width_px - w) / 2) as f64 * info.downsample;
    let y = ((info.height_px - h) / 2) as f64 * info.downsample;
    let values = source.read_channel_region((x as u64, y as u64), level, w as u32, h as u32, channel)?;
    Ok(ChannelHistogram::of(&values.pixels, bits_per_sample))
}
