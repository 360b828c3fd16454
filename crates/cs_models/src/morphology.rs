//! Per-cell morphology from the H&E: patches centred on each nucleus (read from the best pyramid
//! level in blocks, resampled through the alignment to a fixed µm/px), and the encoders that turn
//! a patch plus the cell's boundaries into an embedding. The built-in encoder needs no weights:
//! colour-deconvolution (haematoxylin/eosin) intensity statistics in rings around the nucleus,
//! texture (haematoxylin gradient energy), and nucleus and cell shape from the boundaries.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use cs_slide::SlideSource;
use rayon::prelude::*;

use crate::matrix::Matrix;
use crate::{ModelError, Progress};

/// Size and resolution of the patches an encoder takes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PatchGeometry {
    pub size_px: u32,
    pub um_per_px: f32,
}

/// The patch the paper feeds its foundation model: 224 x 224 at 0.5 µm/px.
pub const FOUNDATION_PATCH: PatchGeometry = PatchGeometry {
    size_px: 224,
    um_per_px: 0.5,
};

/// Shape of a cell from its boundaries (µm, µm²).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CellShape {
    pub nucleus_area_um2: f32,
    pub nucleus_perimeter_um: f32,
    /// 4πA/P²: 1 for a circle.
    pub nucleus_circularity: f32,
    /// Major over minor axis of the nucleus's second moments.
    pub nucleus_elongation: f32,
    pub cell_area_um2: f32,
    pub cell_elongation: f32,
}

impl CellShape {
    /// From the nucleus and cell polygons (either may be empty).
    pub fn from_polygons(nucleus_um: &[[f32; 2]], cell_um: &[[f32; 2]]) -> Self {
        let (na, np, ne) = polygon_shape(nucleus_um);
        let (ca, _, ce) = polygon_shape(cell_um);
        Self {
            nucleus_area_um2: na,
            nucleus_perimeter_um: np,
            nucleus_circularity: if np > 0.0 {
                (4.0 * std::f32::consts::PI * na / (np * np)).min(1.5)
            } else {
                0.0
            },
            nucleus_elongation: ne,
            cell_area_um2: ca,
            cell_elongation: ce,
        }
    }
}

/// (area, perimeter, elongation) of a simple polygon.
fn polygon_shape(polygon: &[[f32; 2]]) -> (f32, f32, f32) {
    let n = polygon.len();
    if n < 3 {
        return (0.0, 0.0, 1.0);
    }
    let (mut area2, mut perimeter, mut cx, mut cy) = (0f64, 0f64, 0f64, 0f64);
    for i in 0..n {
        let [x0, y0] = polygon[i].map(f64::from);
        let [x1, y1] = polygon[(i + 1) % n].map(f64::from);
        let cross = x0 * y1 - x1 * y0;
        area2 += cross;
        cx += (x0 + x1) * cross;
        cy += (y0 + y1) * cross;
        perimeter += ((x1 - x0).powi(2) + (y1 - y0).powi(2)).sqrt();
    }
    if area2.abs() < 1e-12 {
        return (0.0, perimeter as f32, 1.0);
    }
    cx /= 3.0 * area2;
    cy /= 3.0 * area2;
    // Second moments of the vertices about the centroid: enough for an elongation ratio.
    let (mut sxx, mut syy, mut sxy) = (0f64, 0f64, 0f64);
    for p in polygon {
        let dx = f64::from(p[0]) - cx;
        let dy = f64::from(p[1]) - cy;
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    let trace = sxx + syy;
    let disc = ((sxx - syy).powi(2) + 4.0 * sxy * sxy).sqrt();
    let major = (trace + disc) / 2.0;
    let minor = ((trace - disc) / 2.0).max(1e-12);
    (
        (area2.abs() / 2.0) as f32,
        perimeter as f32,
        (major / minor).sqrt().min(20.0) as f32,
    )
}

/// Turns patches (RGB, row-major, `size x size x 3` bytes each) and cell shapes into embeddings.
pub trait MorphologyEncoder: Send + Sync {
    fn name(&self) -> &str;
    fn dim(&self) -> usize;
    fn patch(&self) -> PatchGeometry;
    /// Names of the output columns (for tables and CSV headers).
    fn feature_names(&self) -> Vec<String> {
        (0..self.dim()).map(|i| format!("{}_{i}", self.name())).collect()
    }
    /// `patches` holds one patch per shape, or is empty when there is no slide.
    fn encode(&self, patches: &[u8], shapes: &[CellShape]) -> Result<Vec<f32>, ModelError>;
    /// Encodes the cells of one block of the slide. By default the patches are resampled here,
    /// on the CPU, and passed to [`MorphologyEncoder::encode`]; an encoder that runs on a GPU
    /// resamples there instead (one upload of the block, no patch bytes through the CPU).
    fn encode_block(
        &self,
        block: &BlockImage<'_>,
        sampling: &PatchSampling,
        shapes: &[CellShape],
    ) -> Result<Vec<f32>, ModelError> {
        self.encode(&sampling.resample(block), shapes)
    }
}

/// An encoder fed at another scale: its own patch size in pixels, spread over `side_um` instead of
/// its usual field (virtual expression reads 50 µm tiles through a foundation model this way).
pub struct AtPatchSide<'a> {
    inner: &'a dyn MorphologyEncoder,
    geometry: PatchGeometry,
}

impl<'a> AtPatchSide<'a> {
    pub fn new(inner: &'a dyn MorphologyEncoder, side_um: f32) -> Self {
        let size_px = inner.patch().size_px;
        Self {
            inner,
            geometry: PatchGeometry {
                size_px,
                um_per_px: side_um / size_px.max(1) as f32,
            },
        }
    }
}

impl MorphologyEncoder for AtPatchSide<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn patch(&self) -> PatchGeometry {
        self.geometry
    }
    fn feature_names(&self) -> Vec<String> {
        self.inner.feature_names()
    }
    fn encode(&self, patches: &[u8], shapes: &[CellShape]) -> Result<Vec<f32>, ModelError> {
        self.inner.encode(patches, shapes)
    }
    fn encode_block(
        &self,
        block: &BlockImage<'_>,
        sampling: &PatchSampling,
        shapes: &[CellShape],
    ) -> Result<Vec<f32>, ModelError> {
        self.inner.encode_block(block, sampling, shapes)
    }
}

/// A straight-alpha RGBA8 block read from one pyramid level, rows top to bottom.
#[derive(Clone, Copy, Debug)]
pub struct BlockImage<'a> {
    pub pixels: &'a [u8],
    pub width: usize,
    pub height: usize,
}

/// Where the pixels of each cell's patch lie in a block, in block pixels (pixel centres at
/// integer + 0.5 are at integer positions here, as bilinear sampling indexes them): pixel
/// (column `i`, row `j`) of cell `k`'s patch samples
/// `origins_px[k] + (i + 0.5) column_step_px + (j + 0.5) row_step_px`.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchSampling {
    pub size_px: usize,
    pub origins_px: Vec<[f64; 2]>,
    pub column_step_px: [f64; 2],
    pub row_step_px: [f64; 2],
}

impl PatchSampling {
    /// Position in the block of pixel (`column`, `row`) of cell `cell`'s patch.
    pub fn position(&self, cell: usize, column: usize, row: usize) -> [f64; 2] {
        let o = self.origins_px[cell];
        let (i, j) = (column as f64 + 0.5, row as f64 + 0.5);
        [
            o[0] + i * self.column_step_px[0] + j * self.row_step_px[0],
            o[1] + i * self.column_step_px[1] + j * self.row_step_px[1],
        ]
    }

    /// Every patch resampled bilinearly on the CPU: RGB bytes, row-major, patch after patch.
    /// Outside the block and transparent pixels read as white.
    pub fn resample(&self, block: &BlockImage<'_>) -> Vec<u8> {
        let size = self.size_px;
        let mut patches = vec![255u8; self.origins_px.len() * size * size * 3];
        for (cell, patch) in patches.chunks_exact_mut(size * size * 3).enumerate() {
            for row in 0..size {
                for column in 0..size {
                    let [x, y] = self.position(cell, column, row);
                    let rgb = bilinear_rgb(block.pixels, block.width, block.height, x, y);
                    let at = (row * size + column) * 3;
                    patch[at..at + 3].copy_from_slice(&rgb);
                }
            }
        }
        patches
    }
}

/// The built-in encoder: no weights, 64 x 64 patches at 0.5 µm/px (32 µm across).
#[derive(Clone, Copy, Debug, Default)]
pub struct BuiltinMorphologyEncoder;

const BUILTIN_PATCH: PatchGeometry = PatchGeometry {
    size_px: 64,
    um_per_px: 0.5,
};
/// Ring boundaries (µm from the nucleus centre): nucleus core, cell body, neighbourhood.
const RINGS_UM: [f32; 3] = [4.0, 9.0, 16.0];
const BUILTIN_FEATURES: [&str; 20] = [
    "h_mean_core",
    "e_mean_core",
    "h_sd_core",
    "h_mean_body",
    "e_mean_body",
    "h_sd_body",
    "h_mean_context",
    "e_mean_context",
    "h_sd_context",
    "h_gradient_core",
    "h_gradient_body",
    "dark_fraction_core",
    "luminance_core",
    "h_core_minus_body",
    "nucleus_area_um2",
    "nucleus_perimeter_um",
    "nucleus_circularity",
    "nucleus_elongation",
    "cell_area_um2",
    "nucleus_to_cell_area",
];

/// Ruifrok & Johnston's H&E stain vectors (optical density per RGB channel), inverted once.
pub(crate) fn stain_unmixing() -> [[f32; 3]; 3] {
    let normalise = |v: [f32; 3]| {
        let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
        v.map(|x| x / n)
    };
    let h = normalise([0.650, 0.704, 0.286]);
    let e = normalise([0.072, 0.990, 0.105]);
    let r = normalise([
        h[1] * e[2] - h[2] * e[1],
        h[2] * e[0] - h[0] * e[2],
        h[0] * e[1] - h[1] * e[0],
    ]);
    // Rows are stains: od = c · M; c = od · M⁻¹.
    let m = [h, e, r];
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let mut inv = [[0f32; 3]; 3];
    for (i, row) in inv.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            let (a, b) = ((j + 1) % 3, (j + 2) % 3);
            let (c, d) = ((i + 1) % 3, (i + 2) % 3);
            *v = (m[a][c] * m[b][d] - m[a][d] * m[b][c]) / det;
        }
    }
    inv
}

/// Per pixel of an RGB patch: haematoxylin and eosin optical densities (through `unmix`, from
/// [`stain_unmixing`]) and luminance in 0..1, into the three slices.
pub(crate) fn unmix_stains(rgb: &[u8], unmix: &[[f32; 3]; 3], h: &mut [f32], e: &mut [f32], lum: &mut [f32]) {
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        let od = [0, 1, 2].map(|c| -((f32::from(px[c]) + 1.0) / 256.0).ln());
        h[i] = od[0] * unmix[0][0] + od[1] * unmix[1][0] + od[2] * unmix[2][0];
        e[i] = od[0] * unmix[0][1] + od[1] * unmix[1][1] + od[2] * unmix[2][1];
        lum[i] = (0.299 * f32::from(px[0]) + 0.587 * f32::from(px[1]) + 0.114 * f32::from(px[2])) / 255.0;
    }
}

impl MorphologyEncoder for BuiltinMorphologyEncoder {
    fn name(&self) -> &str {
        "builtin"
    }

    fn dim(&self) -> usize {
        BUILTIN_FEATURES.len()
    }

    fn patch(&self) -> PatchGeometry {
        BUILTIN_PATCH
    }

    fn feature_names(&self) -> Vec<String> {
        BUILTIN_FEATURES.iter().map(|s| s.to_string()).collect()
    }

    fn encode(&self, patches: &[u8], shapes: &[CellShape]) -> Result<Vec<f32>, ModelError> {
        let size = BUILTIN_PATCH.size_px as usize;
        let patch_bytes = size * size * 3;
        if !patches.is_empty() && patches.len() != patch_bytes * shapes.len() {
            return Err(ModelError::Shape(format!(
                "{} patch bytes for {} cells of {patch_bytes} bytes",
                patches.len(),
                shapes.len()
            )));
        }
        let unmix = stain_unmixing();
        let mut out = Vec::with_capacity(shapes.len() * self.dim());
        let mut h = vec![0f32; size * size];
        let mut e = vec![0f32; size * size];
        let mut lum = vec![0f32; size * size];
        for (cell, shape) in shapes.iter().enumerate() {
            let mut image = [0f32; 14];
            if !patches.is_empty() {
                let patch = &patches[cell * patch_bytes..(cell + 1) * patch_bytes];
                unmix_stains(patch, &unmix, &mut h, &mut e, &mut lum);
                image = ring_statistics(&h, &e, &lum, size);
            }
            out.extend_from_slice(&image);
            out.extend_from_slice(&[
                shape.nucleus_area_um2,
                shape.nucleus_perimeter_um,
                shape.nucleus_circularity,
                shape.nucleus_elongation,
                shape.cell_area_um2,
                if shape.cell_area_um2 > 0.0 {
                    (shape.nucleus_area_um2 / shape.cell_area_um2).min(2.0)
                } else {
                    0.0
                },
            ]);
        }
        Ok(out)
    }
}

/// The 14 image features of [`BUILTIN_FEATURES`] from per-pixel H, E and luminance.
fn ring_statistics(h: &[f32], e: &[f32], lum: &[f32], size: usize) -> [f32; 14] {
    let um = BUILTIN_PATCH.um_per_px;
    let centre = size as f32 / 2.0;
    let mut sum = [[0f64; 4]; 3]; // per ring: h, h², e, count
    let mut gradient = [0f64; 2];
    let mut gradient_n = [0f64; 2];
    let (mut dark, mut lum_core) = (0f64, 0f64);
    for y in 0..size {
        for x in 0..size {
            let dx = (x as f32 + 0.5 - centre) * um;
            let dy = (y as f32 + 0.5 - centre) * um;
            let r = (dx * dx + dy * dy).sqrt();
            let Some(ring) = RINGS_UM.iter().position(|&limit| r < limit) else {
                continue;
            };
            let i = y * size + x;
            let hv = f64::from(h[i]);
            sum[ring][0] += hv;
            sum[ring][1] += hv * hv;
            sum[ring][2] += f64::from(e[i]);
            sum[ring][3] += 1.0;
            if ring < 2 && x + 1 < size && y + 1 < size {
                let gx = h[i + 1] - h[i];
                let gy = h[i + size] - h[i];
                gradient[ring] += f64::from((gx * gx + gy * gy).sqrt());
                gradient_n[ring] += 1.0;
            }
            if ring == 0 {
                dark += f64::from(u8::from(h[i] > 0.5));
                lum_core += f64::from(lum[i]);
            }
        }
    }
    let mut out = [0f32; 14];
    for ring in 0..3 {
        let n = sum[ring][3].max(1.0);
        let mean_h = sum[ring][0] / n;
        out[ring * 3] = mean_h as f32;
        out[ring * 3 + 1] = (sum[ring][2] / n) as f32;
        out[ring * 3 + 2] = (sum[ring][1] / n - mean_h * mean_h).max(0.0).sqrt() as f32;
    }
    out[9] = (gradient[0] / gradient_n[0].max(1.0)) as f32;
    out[10] = (gradient[1] / gradient_n[1].max(1.0)) as f32;
    let core_n = sum[0][3].max(1.0);
    out[11] = (dark / core_n) as f32;
    out[12] = (lum_core / core_n) as f32;
    out[13] = out[0] - out[3];
    out
}

/// Where the slide sits: level-0 slide pixels from world µm, as `[a, b, c, d, e, f]` with
/// `x' = a x + b y + c`, `y' = d x + e y + f`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlidePxFromWorld(pub [f64; 6]);

impl SlidePxFromWorld {
    fn apply(&self, [x, y]: [f64; 2]) -> [f64; 2] {
        let m = &self.0;
        [m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]]
    }

    /// Slide pixels per µm (the geometric mean of the two axes).
    fn px_per_um(&self) -> f64 {
        let m = &self.0;
        (m[0] * m[4] - m[1] * m[3]).abs().sqrt()
    }
}

/// The cells of one block and their features, row after row.
type EncodedBlock = (Vec<usize>, Vec<f32>);

/// Block edge in pixels of the level patches are read from.
const BLOCK_PX: u32 = 1024;

/// Encodes every cell: reads the slide in blocks (in parallel), resamples a patch per nucleus at
/// the encoder's resolution, and runs the encoder on each block's patches. Without a slide the
/// encoder sees shapes only. Returns one row per cell.
pub fn encode_cells(
    slide: Option<(&dyn SlideSource, SlidePxFromWorld)>,
    centres_um: &[[f32; 2]],
    shapes: &[CellShape],
    encoder: &dyn MorphologyEncoder,
    progress: &Progress,
) -> Result<Matrix, ModelError> {
    if centres_um.len() != shapes.len() {
        return Err(ModelError::Shape(format!(
            "{} centres for {} shapes",
            centres_um.len(),
            shapes.len()
        )));
    }
    let dim = encoder.dim();
    let n = centres_um.len();
    let Some((slide, slide_px_from_world)) = slide else {
        let mut values = Vec::with_capacity(n * dim);
        for (i, chunk) in shapes.chunks(4096).enumerate() {
            progress.check()?;
            values.extend(encoder.encode(&[], chunk)?);
            progress.report("Encoding morphology", ((i + 1) * 4096) as f32 / n.max(1) as f32);
        }
        return Matrix::new(n, dim, values);
    };
    let geometry = encoder.patch();
    let metadata = slide.metadata();
    // Level-0 pixels per patch pixel; read from the coarsest level that is still at least as fine.
    let l0_per_patch_px = f64::from(geometry.um_per_px) * slide_px_from_world.px_per_um();
    let (level, downsample) = metadata
        .levels
        .iter()
        .enumerate()
        .filter(|(_, l)| l.downsample <= l0_per_patch_px * 1.01)
        .map(|(i, l)| (i, l.downsample))
        .next_back()
        .unwrap_or((0, 1.0));
    let block_l0 = f64::from(BLOCK_PX) * downsample;
    let mut blocks: BTreeMap<(i64, i64), Vec<usize>> = BTreeMap::new();
    let mut centres_px = Vec::with_capacity(n);
    for (cell, c) in centres_um.iter().enumerate() {
        let p = slide_px_from_world.apply([f64::from(c[0]), f64::from(c[1])]);
        if !p[0].is_finite() || !p[1].is_finite() {
            return Err(ModelError::Input(format!("cell {cell} has a non-finite position")));
        }
        centres_px.push(p);
        blocks
            .entry(((p[0] / block_l0).floor() as i64, (p[1] / block_l0).floor() as i64))
            .or_default()
            .push(cell);
    }
    let size = geometry.size_px as usize;
    let half_extent_l0 = (size as f64 / 2.0) * l0_per_patch_px * std::f64::consts::SQRT_2 + 2.0 * downsample;
    let margin_px = (half_extent_l0 / downsample).ceil() as i64 + 1;
    let done = AtomicUsize::new(0);
    let blocks: Vec<((i64, i64), Vec<usize>)> = blocks.into_iter().collect();
    let encoded: Vec<Result<EncodedBlock, ModelError>> = blocks
        .par_iter()
        .map(|((bx, by), cells)| {
            progress.check()?;
            // The block plus a margin, in pixels of `level`, clipped at the slide's origin.
            let x0 = (((*bx as f64) * block_l0 / downsample).floor() as i64 - margin_px).max(0);
            let y0 = (((*by as f64) * block_l0 / downsample).floor() as i64 - margin_px).max(0);
            let w = (i64::from(BLOCK_PX) + 2 * margin_px) as u32;
            let region = slide
                .read_region(
                    ((x0 as f64 * downsample) as u64, (y0 as f64 * downsample) as u64),
                    level,
                    w,
                    w,
                )
                .map_err(|e| ModelError::File {
                    path: slide.path().to_path_buf(),
                    reason: e.to_string(),
                })?;
            // Patch pixel (i, j) of a cell centred at c (µm) lies at world c + (i + 0.5 - size/2) u
            // (x) and likewise in y, u = µm per patch pixel; in block pixels that is an affine map.
            let u = f64::from(geometry.um_per_px);
            let m = &slide_px_from_world.0;
            let column_step_px = [u * m[0] / downsample, u * m[3] / downsample];
            let row_step_px = [u * m[1] / downsample, u * m[4] / downsample];
            let half = size as f64 / 2.0;
            let origins_px = cells
                .iter()
                .map(|&cell| {
                    let [cx, cy] = centres_px[cell];
                    [
                        cx / downsample - x0 as f64 - 0.5 - half * (column_step_px[0] + row_step_px[0]),
                        cy / downsample - y0 as f64 - 0.5 - half * (column_step_px[1] + row_step_px[1]),
                    ]
                })
                .collect();
            let sampling = PatchSampling {
                size_px: size,
                origins_px,
                column_step_px,
                row_step_px,
            };
            let block = BlockImage {
                pixels: &region.pixels,
                width: region.width as usize,
                height: region.height as usize,
            };
            let shapes_here: Vec<CellShape> = cells.iter().map(|&c| shapes[c]).collect();
            let features = encoder.encode_block(&block, &sampling, &shapes_here)?;
            let finished = done.fetch_add(cells.len(), Ordering::Relaxed) + cells.len();
            progress.report("Encoding morphology", finished as f32 / n.max(1) as f32);
            Ok((cells.clone(), features))
        })
        .collect();
    let mut out = Matrix::zeros(n, dim);
    for block in encoded {
        let (cells, features) = block?;
        for (k, &cell) in cells.iter().enumerate() {
            out.row_mut(cell).copy_from_slice(&features[k * dim..(k + 1) * dim]);
        }
    }
    Ok(out)
}

/// Bilinear RGB at fractional pixel (x, y) of an RGBA image; transparent or outside = white.
fn bilinear_rgb(pixels: &[u8], width: usize, height: usize, x: f64, y: f64) -> [u8; 3] {
    let x = x.clamp(0.0, width.saturating_sub(1) as f64);
    let y = y.clamp(0.0, height.saturating_sub(1) as f64);
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = (
        (x0 + 1).min(width.saturating_sub(1)),
        (y0 + 1).min(height.saturating_sub(1)),
    );
    let (fx, fy) = (x - x0 as f64, y - y0 as f64);
    let sample = |xx: usize, yy: usize| -> [f64; 3] {
        let i = (yy * width + xx) * 4;
        match pixels.get(i..i + 4) {
            Some(p) if p[3] > 0 => [f64::from(p[0]), f64::from(p[1]), f64::from(p[2])],
            _ => [255.0; 3],
        }
    };
    let (a, b, c, d) = (sample(x0, y0), sample(x1, y0), sample(x0, y1), sample(x1, y1));
    [0, 1, 2].map(|ch| {
        let top = a[ch] * (1.0 - fx) + b[ch] * fx;
        let bottom = c[ch] * (1.0 - fx) + d[ch] * fx;
        (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_of_a_square_and_a_rectangle() {
        let square = [[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]];
        let rect = [[0.0, 0.0], [8.0, 0.0], [8.0, 2.0], [0.0, 2.0]];
        let s = CellShape::from_polygons(&square, &rect);
        assert!((s.nucleus_area_um2 - 4.0).abs() < 1e-5);
        assert!((s.nucleus_perimeter_um - 8.0).abs() < 1e-5);
        assert!((s.nucleus_circularity - std::f32::consts::PI / 4.0).abs() < 1e-5);
        assert!((s.nucleus_elongation - 1.0).abs() < 1e-5);
        assert!((s.cell_elongation - 4.0).abs() < 1e-4);
        assert_eq!(CellShape::from_polygons(&[], &[]).nucleus_area_um2, 0.0);
    }

    #[test]
    fn deconvolution_separates_haematoxylin_from_eosin() {
        let size = BUILTIN_PATCH.size_px as usize;
        let patch_of = |rgb: [u8; 3]| -> Vec<u8> { (0..size * size).flat_map(|_| rgb).collect() };
        let purple = patch_of([70, 50, 150]); // haematoxylin-rich
        let pink = patch_of([240, 150, 200]); // eosin-rich
        let mut both = purple.clone();
        both.extend(pink);
        let shapes = [CellShape::default(); 2];
        let f = BuiltinMorphologyEncoder.encode(&both, &shapes).unwrap();
        let dim = BuiltinMorphologyEncoder.dim();
        let (h_purple, e_purple) = (f[0], f[1]);
        let (h_pink, e_pink) = (f[dim], f[dim + 1]);
        assert!(h_purple > h_pink, "H {h_purple} vs {h_pink}");
        assert!(
            e_pink / h_pink > e_purple / h_purple,
            "E/H ratio pink {} purple {}",
            e_pink / h_pink,
            e_purple / h_purple
        );
        assert!(f.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn patch_sampling_steps_through_the_block_along_the_affine() {
        // 4x4 block whose red channel is 10 x column and green 10 x row, opaque.
        let mut pixels = Vec::new();
        for row in 0..4u8 {
            for column in 0..4u8 {
                pixels.extend_from_slice(&[10 * column, 10 * row, 0, 255]);
            }
        }
        let block = BlockImage {
            pixels: &pixels,
            width: 4,
            height: 4,
        };
        // A 2x2 patch, a quarter turn: patch columns run down the block, rows run left.
        let sampling = PatchSampling {
            size_px: 2,
            origins_px: vec![[2.5, 0.5]],
            column_step_px: [0.0, 1.0],
            row_step_px: [-1.0, 0.0],
        };
        assert_eq!(sampling.position(0, 1, 0), [2.0, 2.0]);
        let patch = sampling.resample(&block);
        // (col 0,row 0) at (2,1); (1,0) at (2,2); (0,1) at (1,1); (1,1) at (1,2).
        assert_eq!(patch, [20, 10, 0, 20, 20, 0, 10, 10, 0, 10, 20, 0]);
    }

    #[test]
    fn bilinear_reads_white_outside_and_blends_inside() {
        // 2x1 image: black, white (opaque).
        let pixels = [0, 0, 0, 255, 255, 255, 255, 255];
        assert_eq!(bilinear_rgb(&pixels, 2, 1, 0.5, 0.0), [128, 128, 128]);
        let transparent = [0u8; 8];
        assert_eq!(bilinear_rgb(&transparent, 2, 1, 0.0, 0.0), [255, 255, 255]);
    }
}
