//! Opening data off the UI thread: a slide with its overview and associated images, a Xenium
//! bundle with its GPU geometry and spatial index, its transcripts as a point layer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cs_analysis::GridIndex;
use cs_render::CellGeometry;
use cs_slide::{OpenSlideSource, RgbaImage, SlideError, SlideSource};
use cs_xenium::{XeniumBundle, XeniumError};

use crate::layers::cell_layer::{LoadedBundle, TranscriptLayer, as_table};
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
    let source = OpenSlideSource::open(path)?;
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
        source: Arc::new(source),
        overview,
        associated,
    })
}

/// Reads a bundle and prepares its GPU geometry and spatial index (None: cancelled).
pub fn load_bundle(dir: &Path, geometry_id: u64, cancel: &CancelToken) -> Result<Option<LoadedBundle>, XeniumError> {
    let bundle = XeniumBundle::open(dir)?;
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
    }))
}

/// The bundle's transcripts (qv of 20 or more) as a point layer (None: no transcripts file, or
/// cancelled).
pub fn load_transcripts(
    bundle: &XeniumBundle,
    geometry_id: u64,
    cancel: &CancelToken,
) -> Result<Option<TranscriptLayer>, XeniumError> {
    let transcripts = bundle.load_transcripts(cs_xenium::DEFAULT_MIN_QV)?;
    if cancel.is_cancelled() {
        return Ok(None);
    }
    Ok(transcripts.map(|t| TranscriptLayer::new(t, geometry_id)))
}
