//! The H&E slide: where it sits relative to the Xenium frame (`xenium_px_from_he_px`, a small
//! rotation plus scale and offset), its pyramid, and rendering it band by band — one row of
//! level-0 tiles at a time, tiles painted and JPEG-encoded in parallel, each coarser level built
//! by [`crate::band_pyramid`] as rows of the finer level complete — so memory stays bounded for
//! gigapixel slides. Also writes `he_alignment.csv` (Xenium Explorer's headerless 3x3 matrix).

use std::path::{Path, PathBuf};

use jpeg_encoder::{ChromaSubsamplingMethod, ColorType, Encoder, SamplingFactor};
use rayon::prelude::*;

use crate::band_pyramid::BandPyramid;
use crate::bundle::PIXEL_SIZE_UM;
use crate::cells::Cell;
use crate::control::Control;
use crate::error::{SynthError, encode_error};
use crate::files::Staged;
use crate::geometry::Affine2;
use crate::paint::Painter;
use crate::rng::{Rng, domain};
use crate::tiff::{Pyramid as TiffPyramid, Samples, TiffInfo, TiffWriter};
use crate::tissue::Layout;

pub(crate) const TILE_PX: u32 = 512;
const JPEG_QUALITY: u8 = 85;
/// Coarsest level's longest side at most this.
const COARSEST_MAX_PX: u64 = 1024;
/// Glass white used to pad tiles beyond the image.
const PAD: u8 = 245;

pub(crate) struct SlidePlan {
    /// Micrometres per level-0 pixel.
    pub um_per_px: f64,
    pub xenium_px_from_he_px: Affine2,
    pub world_from_slide: Affine2,
    pub levels: Vec<(u64, u64)>,
    pub rotation_deg: f64,
}

/// Places the slide frame: rotated by a seeded 1.5–3°, `um_per_px` µm per pixel, the tissue box
/// inside with a margin.
pub(crate) fn plan(seed: u64, layout: &Layout, um_per_px: f64) -> SlidePlan {
    let mut rng = Rng::new(seed, domain::LAYOUT, 77);
    let magnitude = rng.range(1.5, 3.0);
    let rotation_deg = if rng.chance(0.5) { magnitude } else { -magnitude };
    let angle = rotation_deg.to_radians();
    let margin_um = (0.04 * layout.size_um[0].max(layout.size_um[1])).max(120.0);
    let (o, s) = (layout.origin_um, layout.size_um);
    let corners = [
        [o[0] - margin_um, o[1] - margin_um],
        [o[0] + s[0] + margin_um, o[1] - margin_um],
        [o[0] - margin_um, o[1] + s[1] + margin_um],
        [o[0] + s[0] + margin_um, o[1] + s[1] + margin_um],
    ];
    // Slide pixels of a world point, before translation: R(-angle) · world / um_per_px.
    let unrotate = Affine2::similarity(1.0 / um_per_px, -angle, [0.0, 0.0]);
    let mut min = [f64::MAX; 2];
    let mut max = [f64::MIN; 2];
    for c in corners {
        let p = unrotate.apply(c);
        for k in 0..2 {
            min[k] = min[k].min(p[k]);
            max[k] = max[k].max(p[k]);
        }
    }
    // world = um_per_px · R(angle) · (slide + min).
    let rotate = Affine2::similarity(um_per_px, angle, [0.0, 0.0]);
    let shift = rotate.apply_vector(min);
    let world_from_slide = Affine2::similarity(um_per_px, angle, shift);
    let xenium_px_from_he_px = world_from_slide.scaled(1.0 / PIXEL_SIZE_UM);

    let width = (max[0] - min[0]).ceil().max(1.0) as u64;
    let height = (max[1] - min[1]).ceil().max(1.0) as u64;
    let mut count = 1;
    while (width.max(height) >> (count - 1)) > COARSEST_MAX_PX {
        count += 1;
    }
    let multiple = 1u64 << (count - 1);
    let width = width.div_ceil(multiple) * multiple;
    let height = height.div_ceil(multiple) * multiple;
    let levels = (0..count).map(|l| (width >> l, height >> l)).collect();
    SlidePlan {
        um_per_px,
        xenium_px_from_he_px,
        world_from_slide,
        levels,
        rotation_deg,
    }
}

pub(crate) fn write_alignment(path: &Path, plan: &SlidePlan) -> Result<PathBuf, SynthError> {
    let m = plan.xenium_px_from_he_px.m;
    let text = format!(
        "{:.10},{:.10},{:.10}\n{:.10},{:.10},{:.10}\n0,0,1\n",
        m[0][0], m[0][1], m[0][2], m[1][0], m[1][1], m[1][2]
    );
    Staged::new(path).write_all(text.as_bytes())
}

fn encode_jpeg(path: &Path, rgb: &[u8]) -> Result<Vec<u8>, SynthError> {
    let mut out = Vec::with_capacity(rgb.len() / 8);
    let mut encoder = Encoder::new(&mut out, JPEG_QUALITY);
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    encoder.set_chroma_subsampling_method(ChromaSubsamplingMethod::Average);
    encoder
        .encode(rgb, TILE_PX as u16, TILE_PX as u16, ColorType::Rgb)
        .map_err(|e| encode_error(path, e))?;
    Ok(out)
}

/// OME-XML of an interleaved RGB H&E, as 10x's `*_he_image.ome.tif` has it (`about` goes in the
/// image's description).
fn he_ome_xml((width, height): (u64, u64), um_per_px: f64, about: &str) -> String {
    let about = about.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" Creator="cellsymphony-synth {}"><Image ID="Image:0" Name="he_image"><Description>{about}</Description><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8" SizeX="{width}" SizeY="{height}" SizeC="3" SizeZ="1" SizeT="1" Interleaved="true" PhysicalSizeX="{um_per_px}" PhysicalSizeXUnit="µm" PhysicalSizeY="{um_per_px}" PhysicalSizeYUnit="µm"><Channel ID="Channel:0:0" SamplesPerPixel="3"/><TiffData IFD="0" PlaneCount="1"/></Pixels></Image></OME>"#,
        env!("CARGO_PKG_VERSION")
    )
}

/// Paints and writes the whole pyramid to `path`.
pub(crate) fn render(
    seed: u64,
    path: &Path,
    layout: &Layout,
    cells: &[Cell],
    plan: &SlidePlan,
    layout_on_disk: crate::SlideLayout,
    control: &Control,
) -> Result<PathBuf, SynthError> {
    let um_per_px = plan.um_per_px;
    let level0 = plan.levels[0];
    let painter = Painter::new(seed, layout, cells, plan.world_from_slide, TILE_PX, level0);
    let mut writer = TiffWriter::create(path, TILE_PX, &plan.levels)?;
    let mut pyramid = BandPyramid::new(&plan.levels, 3, PAD);
    let across = writer.tiles_across(0);
    let down = level0.1.div_ceil(u64::from(TILE_PX));
    for row in 0..down {
        let painted: Vec<(Vec<u8>, Vec<u8>)> = (0..across)
            .into_par_iter()
            .map(|col| {
                let rgb = painter.paint_tile(col as u32, row as u32);
                let jpeg = encode_jpeg(path, &rgb)?;
                Ok((rgb, jpeg))
            })
            .collect::<Result<_, SynthError>>()?;
        let mut tiles = Vec::with_capacity(painted.len());
        for (col, (rgb, jpeg)) in painted.into_iter().enumerate() {
            writer.write_tile(0, col as u64, row, &jpeg)?;
            tiles.push(rgb);
        }
        for (level, coarse_row, coarse_tiles) in pyramid.push(0, row, &tiles) {
            let encoded: Vec<Vec<u8>> = coarse_tiles
                .par_iter()
                .map(|t| encode_jpeg(path, t))
                .collect::<Result<_, _>>()?;
            for (col, bytes) in encoded.iter().enumerate() {
                writer.write_tile(level, col as u64, coarse_row, bytes)?;
            }
        }
        control.check()?;
        control.report((row + 1) as f32 / down as f32);
    }
    let m = plan.xenium_px_from_he_px.m;
    let about = format!(
        "CellSymphony synthetic H&E|seed = {seed}|MPP = {um_per_px}|xenium_px_from_he_px = [[{}, {}, {}], [{}, {}, {}], [0, 0, 1]]|rotation_deg = {:.4}",
        m[0][0], m[0][1], m[0][2], m[1][0], m[1][1], m[1][2], plan.rotation_deg
    );
    let (description, pyramid) = match layout_on_disk {
        crate::SlideLayout::GenericTiff => (about, TiffPyramid::Pages),
        crate::SlideLayout::OmeTiff => (he_ome_xml(level0, um_per_px, &about), TiffPyramid::SubIfds),
    };
    let info = TiffInfo {
        description,
        software: format!("cellsymphony-synth {}", env!("CARGO_PKG_VERSION")),
        pixels_per_cm: 10_000.0 / um_per_px,
        samples: Samples::JpegRgb,
        pyramid,
    };
    writer.finish(&info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cs_slide::{OpenSlideSource, SlideSource};

    /// The slide as OpenSlide decodes it matches the painted pixels within JPEG error.
    #[test]
    fn openslide_reads_back_what_was_painted() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("cs_synth_pixels_{}", std::process::id()));
        let options = crate::SynthOptions {
            cells: 1500,
            seed: 5,
            ..Default::default()
        };
        crate::generate(&options, &dir, &|_, _| {}, &|| false)?;
        let progress = |_: f32, _: &str| {};
        let cancelled = || false;
        let control = Control::new(&progress, &cancelled);
        let (layout, cells) = crate::build_model(&options, &control, 0.0, 0.0)?;
        let plan = plan(options.seed, &layout, options.slide_um_per_px);
        let painter = Painter::new(
            options.seed,
            &layout,
            &cells,
            plan.world_from_slide,
            TILE_PX,
            plan.levels[0],
        );
        let slide = OpenSlideSource::open(dir.join(crate::SLIDE_FILE))?;
        assert_eq!(slide.metadata().levels.len(), plan.levels.len());
        for (col, row) in [(0u32, 0u32), (1, 1), (2, 1)] {
            let painted = painter.paint_tile(col, row);
            let read = slide.read_region(
                (u64::from(col * TILE_PX), u64::from(row * TILE_PX)),
                0,
                TILE_PX,
                TILE_PX,
            )?;
            let mut total = 0u64;
            let mut big = 0usize;
            for i in 0..(TILE_PX * TILE_PX) as usize {
                assert_eq!(read.pixels[i * 4 + 3], 255, "opaque");
                for c in 0..3 {
                    let d = (i32::from(painted[i * 3 + c]) - i32::from(read.pixels[i * 4 + c])).unsigned_abs();
                    total += u64::from(d);
                    big += usize::from(d > 40);
                }
            }
            let mean = total as f64 / f64::from(TILE_PX * TILE_PX * 3);
            // JPEG error averages out over 8x8 blocks; a misplaced or miscoloured tile would not.
            let t = TILE_PX as usize;
            let mut block_total = 0.0;
            for by in 0..t / 8 {
                for bx in 0..t / 8 {
                    for c in 0..3 {
                        let (mut a, mut b) = (0i64, 0i64);
                        for y in by * 8..by * 8 + 8 {
                            for x in bx * 8..bx * 8 + 8 {
                                a += i64::from(painted[(y * t + x) * 3 + c]);
                                b += i64::from(read.pixels[(y * t + x) * 4 + c]);
                            }
                        }
                        block_total += (a - b).abs() as f64 / 64.0;
                    }
                }
            }
            let block_mean = block_total / ((t / 8) * (t / 8) * 3) as f64;
            eprintln!("tile ({col}, {row}): mean {mean:.2} block mean {block_mean:.2} big {big}");
            assert!(
                block_mean < 1.5,
                "tile ({col}, {row}): 8x8 block means differ by {block_mean:.2}"
            );
            assert!(mean < 8.0, "tile ({col}, {row}): mean difference {mean:.2}");
            assert!(
                big < (TILE_PX * TILE_PX) as usize / 100,
                "tile ({col}, {row}): {big} large differences"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
