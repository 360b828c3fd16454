//! The morphology images in XOA 2.x–3.x's layout: `morphology_focus/morphology_focus_000N.ome.tif`,
//! one 16-bit OME-TIFF per stain (DAPI, boundary, interior RNA, interior protein) with its
//! pyramid in SubIFDs and OME-XML naming the stain, listing the set, and giving the pixel size.
//! Pixel (0, 0) is world (0, 0) µm, as in a Xenium run; painted band by band like the H&E, each
//! coarser level by [`crate::band_pyramid`] as rows of the finer one complete.

use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::band_pyramid::BandPyramid;
use crate::cells::Cell;
use crate::control::Control;
use crate::error::{SynthError, io_error};
use crate::geometry::Affine2;
use crate::paint::{Painter, STAINS};
use crate::slide::TILE_PX;
use crate::tiff::{Pyramid, Samples, TiffInfo, TiffWriter};
use crate::tissue::Layout;

/// The folder, inside the bundle.
pub const MORPHOLOGY_DIR: &str = "morphology_focus";
/// The stains' names as 10x writes them in the OME-XML.
pub const STAIN_NAMES: [&str; STAINS] = ["DAPI", "ATP1A1/CD45/E-Cadherin", "18S", "AlphaSMA/Vimentin"];
/// Coarsest level's longest side at most this.
const COARSEST_MAX_PX: u64 = 1024;

fn file_name(stain: usize) -> String {
    format!("morphology_focus_{stain:04}.ome.tif")
}

/// Levels (width, height), level 0 first, for an image covering the tissue at `um_per_px`.
pub(crate) fn levels(layout: &Layout, um_per_px: f64) -> Vec<(u64, u64)> {
    let margin_um = 100.0;
    let width = ((layout.origin_um[0] + layout.size_um[0] + margin_um) / um_per_px)
        .ceil()
        .max(1.0) as u64;
    let height = ((layout.origin_um[1] + layout.size_um[1] + margin_um) / um_per_px)
        .ceil()
        .max(1.0) as u64;
    let mut levels = vec![(width, height)];
    while let Some(&(w, h)) = levels.last() {
        if w.max(h) <= COARSEST_MAX_PX {
            break;
        }
        levels.push((w.div_ceil(2), h.div_ceil(2)));
    }
    levels
}

/// The OME-XML of stain `stain`: the whole set's channels, each in its own file.
fn ome_xml(stain: usize, width: u64, height: u64, um_per_px: f64) -> String {
    let mut channels = String::new();
    let mut tiff_data = String::new();
    for (c, name) in STAIN_NAMES.iter().enumerate() {
        channels += &format!(r#"<Channel ID="Channel:0:{c}" Name="{name}" SamplesPerPixel="1"/>"#);
        tiff_data += &format!(
            r#"<TiffData FirstC="{c}" FirstT="0" FirstZ="0" IFD="0" PlaneCount="1"><UUID FileName="{}">urn:uuid:cellsymphony-synth-{c}</UUID></TiffData>"#,
            file_name(c)
        );
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" Creator="cellsymphony-synth {}" UUID="urn:uuid:cellsymphony-synth-{stain}"><Image ID="Image:0" Name="morphology_focus"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint16" SizeX="{width}" SizeY="{height}" SizeC="{}" SizeZ="1" SizeT="1" PhysicalSizeX="{um_per_px}" PhysicalSizeXUnit="µm" PhysicalSizeY="{um_per_px}" PhysicalSizeYUnit="µm">{channels}{tiff_data}</Pixels></Image></OME>"#,
        env!("CARGO_PKG_VERSION"),
        STAIN_NAMES.len()
    )
}

fn deflate(path: &Path, samples: &[u16]) -> Result<Vec<u8>, SynthError> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::with_capacity(samples.len()), flate2::Compression::fast());
    let bytes: Vec<u8> = samples.iter().flat_map(|v| v.to_le_bytes()).collect();
    encoder.write_all(&bytes).map_err(|e| io_error(path, e))?;
    encoder.finish().map_err(|e| io_error(path, e))
}

/// One stain's file and its coarser levels under construction.
struct StainPyramid {
    writer: TiffWriter,
    path: PathBuf,
    pyramid: BandPyramid<u16>,
}

impl StainPyramid {
    /// Writes a finished row of level 0 and the coarser rows it completes.
    fn push(&mut self, row: u64, tiles: Vec<Vec<u16>>) -> Result<(), SynthError> {
        let coarser = self.pyramid.push(0, row, &tiles);
        for (level, row, tiles) in std::iter::once((0, row, tiles)).chain(coarser) {
            let encoded: Vec<Vec<u8>> = tiles
                .par_iter()
                .map(|t| deflate(&self.path, t))
                .collect::<Result<_, _>>()?;
            for (col, bytes) in encoded.iter().enumerate() {
                self.writer.write_tile(level, col as u64, row, bytes)?;
            }
        }
        Ok(())
    }
}

/// Paints and writes the four stains into `bundle_dir/morphology_focus/`.
pub(crate) fn render(
    seed: u64,
    bundle_dir: &Path,
    layout: &Layout,
    cells: &[Cell],
    um_per_px: f64,
    control: &Control,
) -> Result<Vec<PathBuf>, SynthError> {
    let dir = bundle_dir.join(MORPHOLOGY_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
    let levels = levels(layout, um_per_px);
    let level0 = levels[0];
    let world_from_image = Affine2::similarity(um_per_px, 0.0, [0.0, 0.0]);
    let painter = Painter::new(seed, layout, cells, world_from_image, TILE_PX, level0);
    let mut stains = (0..STAINS)
        .map(|stain| {
            let path = dir.join(file_name(stain));
            let writer = TiffWriter::create(&path, TILE_PX, &levels)?;
            Ok(StainPyramid {
                writer,
                path,
                pyramid: BandPyramid::new(&levels, 1, 0),
            })
        })
        .collect::<Result<Vec<_>, SynthError>>()?;
    let across = stains[0].writer.tiles_across(0);
    let down = level0.1.div_ceil(u64::from(TILE_PX));
    for row in 0..down {
        let painted: Vec<[Vec<u16>; STAINS]> = (0..across)
            .into_par_iter()
            .map(|col| painter.paint_fluorescence_tile(col as u32, row as u32))
            .collect();
        let mut by_stain: [Vec<Vec<u16>>; STAINS] = std::array::from_fn(|_| Vec::with_capacity(painted.len()));
        for tile in painted {
            for (stain, values) in tile.into_iter().enumerate() {
                by_stain[stain].push(values);
            }
        }
        for (stain, tiles) in by_stain.into_iter().enumerate() {
            stains[stain].push(row, tiles)?;
        }
        control.check()?;
        control.report((row + 1) as f32 / down as f32);
    }
    let mut written = Vec::with_capacity(STAINS);
    for (stain, pyramid) in stains.into_iter().enumerate() {
        let info = TiffInfo {
            description: ome_xml(stain, level0.0, level0.1, um_per_px),
            software: format!("cellsymphony-synth {}", env!("CARGO_PKG_VERSION")),
            pixels_per_cm: 10_000.0 / um_per_px,
            samples: Samples::DeflateGrey16,
            pyramid: Pyramid::SubIfds,
        };
        written.push(pyramid.writer.finish(&info)?);
    }
    Ok(written)
}
