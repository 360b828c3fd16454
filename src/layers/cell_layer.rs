//! The cell layer: a Xenium bundle placed in `world`, its GPU geometry and spatial index, how cells
//! are coloured (a categorical column, a numeric column or one gene), picking under the cursor,
//! and the per-frame [`CellDrawList`]. No widgets here (colours are `egui::Color32` as plain data),
//! so benchmarks run exactly what the viewer runs.

use std::path::PathBuf;
use std::sync::Arc;

use cs_analysis::{CellSet, GridIndex, polygon_contains};
use cs_render::{
    CellDrawList, CellDrawMode, CellGeometry, CellLayerStyle, CellStyles, ChannelDrawList, PolygonsInTable,
};
use cs_xenium::{GENE_EXPRESSION, MISSING_CODE, XeniumBundle};
use egui::Color32;
use glam::{DAffine2, DVec2};

use crate::layers::camera::{Camera, Viewport, clip_from_screen};
use crate::layers::palettes::{ColourMap, MISSING_COLOUR, named_class_colour, to_rgba_f32};
use crate::layers::transcript_layer::TranscriptLayer;

/// Below this many physical pixels of cell radius, cells are drawn as markers.
pub const POLYGON_MIN_RADIUS_PX: f64 = 4.0;
/// Opacity of cells outside the active selection, relative to the rest.
const DIMMED_ALPHA: f32 = 0.2;
/// How far from the cursor (physical pixels) a marker still counts as hovered.
const PICK_RADIUS_PX: f64 = 8.0;

/// A bundle read off the UI thread, with everything the layer derives from it.
pub struct LoadedBundle {
    pub bundle: XeniumBundle,
    pub geometry: CellGeometry,
    pub index: GridIndex,
    /// The H&E the container holds (a SpatialData image), to open with the cells.
    pub slide: Option<BundleSlide>,
}

/// An H&E that came with the cells, and where it lies.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleSlide {
    pub path: PathBuf,
    pub world_from_slide_px: cs_xenium::Affine2,
}

pub(crate) fn as_table(polygons: &cs_xenium::Polygons) -> PolygonsInTable<'_> {
    PolygonsInTable {
        offsets: &polygons.offsets,
        vertices_um: &polygons.vertices_um,
        cell_polygons: &polygons.cell_polygons,
    }
}

/// What cells are coloured by.
#[derive(Debug, Clone, PartialEq)]
pub enum ColourBy {
    /// One colour for every cell.
    Uniform,
    /// A categorical column of the cell table.
    Category(String),
    /// A numeric column of the cell table.
    Numeric(String),
    /// Counts of one feature of the count matrix (by index).
    Gene(u32),
}

/// One class of a categorical column as shown in the legend.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassStyle {
    pub name: String,
    pub colour: Color32,
    pub visible: bool,
    pub cells: usize,
}

/// Numeric colouring: values per cell (table order) and the range mapped onto the colour map.
#[derive(Debug, Clone, PartialEq)]
pub struct NumericStyle {
    pub label: String,
    pub values: Arc<Vec<f64>>,
    pub min: f64,
    pub max: f64,
    pub data_min: f64,
    pub data_max: f64,
    pub colour_map: ColourMap,
}

impl NumericStyle {
    /// Range defaults to the 1st..99th percentile, so a few outliers do not wash out the map.
    pub fn new(label: String, values: Vec<f64>, colour_map: ColourMap) -> Self {
        let mut finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let (data_min, data_max, min, max) = if finite.is_empty() {
            (0.0, 1.0, 0.0, 1.0)
        } else {
            let n = finite.len();
            let pick = |finite: &mut Vec<f64>, q: f64| {
                let k = ((n - 1) as f64 * q).round() as usize;
                *finite.select_nth_unstable_by(k, f64::total_cmp).1
            };
            let lo = pick(&mut finite, 0.01);
            let hi = pick(&mut finite, 0.99);
            let data_min = finite.iter().copied().fold(f64::INFINITY, f64::min);
            let data_max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let hi = if hi > lo { hi } else { data_max.max(lo + 1e-9) };
            (data_min, data_max, lo, hi)
        };
        Self {
            label,
            values: Arc::new(values),
            min,
            max,
            data_min,
            data_max,
            colour_map,
        }
    }

    /// Palette index 1..=256 for `value` (0 for NaN).
    pub fn bin(&self, value: f64) -> u32 {
        if !value.is_finite() {
            return 0;
        }
        let span = (self.max - self.min).max(1e-12);
        let t = ((value - self.min) / span).clamp(0.0, 1.0);
        1 + (t * 255.0).round() as u32
    }
}

/// What the inspector and hover tooltip show about one cell.
#[derive(Debug, Clone, PartialEq)]
pub struct CellInfo {
    pub table_index: u32,
    pub id: String,
    pub class: Option<(String, String)>,
    pub cell_area_um2: Option<f64>,
    pub nucleus_area_um2: Option<f64>,
    pub total_counts: Option<f64>,
    pub top_genes: Vec<(String, f32)>,
    pub pos_in_world: DVec2,
    /// Its decoded transcripts per gene (at the layer's qv threshold), when transcripts are shown.
    pub transcripts: Option<crate::layers::transcript_layer::CellTranscripts>,
}

pub struct CellLayer {
    pub dir: PathBuf,
    pub bundle: Arc<XeniumBundle>,
    pub geometry: Arc<CellGeometry>,
    pub index: GridIndex,
    pub colour_by: ColourBy,
    /// Legend entries of each categorical column, kept so that edits survive switching columns.
    pub classes: Vec<(String, Vec<ClassStyle>)>,
    pub numeric: Option<NumericStyle>,
    pub uniform_colour: Color32,
    pub show_cells: bool,
    pub show_nuclei: bool,
    pub style: CellLayerStyle,
    pub transcripts: Option<TranscriptLayer>,
    /// Xenium Explorer group files whose columns were imported, oldest first: a session stores
    /// them and reads them again on restore.
    pub group_files: Vec<PathBuf>,
    /// The transcripts' density image of the last frame (drawn below the cells).
    transcript_density: Option<ChannelDrawList>,
    /// When set, cells outside it are drawn dimmed (the active selection).
    emphasis: Option<CellSet>,
    styles: Arc<CellStyles>,
    styles_dirty: bool,
    next_styles_id: u64,
}

impl CellLayer {
    pub fn new(dir: PathBuf, loaded: LoadedBundle) -> Self {
        let classes = loaded
            .bundle
            .cells
            .categorical
            .iter()
            .map(|(name, column)| (name.clone(), legend_for(column)))
            .collect();
        let colour_by = default_colour_by(&loaded.bundle);
        let mut layer = Self {
            dir,
            bundle: Arc::new(loaded.bundle),
            geometry: Arc::new(loaded.geometry),
            index: loaded.index,
            colour_by: ColourBy::Uniform,
            classes,
            numeric: None,
            uniform_colour: Color32::from_rgb(0, 200, 255),
            show_cells: true,
            show_nuclei: true,
            style: CellLayerStyle::default(),
            transcripts: None,
            group_files: Vec::new(),
            transcript_density: None,
            emphasis: None,
            styles: Arc::new(CellStyles::default()),
            styles_dirty: true,
            next_styles_id: 1,
        };
        layer.set_colour_by(colour_by);
        layer
    }

    pub fn len(&self) -> usize {
        self.bundle.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bundle.cells.is_empty()
    }

    /// Bounding box of the cells in world µm.
    pub fn bounds_in_world(&self) -> (DVec2, DVec2) {
        let g = &self.geometry;
        (
            DVec2::new(f64::from(g.min_um[0]), f64::from(g.min_um[1])),
            DVec2::new(f64::from(g.max_um[0]), f64::from(g.max_um[1])),
        )
    }

    /// Adds (or replaces) a categorical column made in the app (model predictions, clusters) and
    /// its legend. The bundle is shared with background jobs: it is copied only if one of them
    /// still holds it.
    pub fn put_categorical_column(&mut self, name: &str, column: cs_xenium::Categorical) {
        let styles = legend_for(&column);
        let cells = &mut std::sync::Arc::make_mut(&mut self.bundle).cells;
        match cells.categorical.iter_mut().find(|(n, _)| n == name) {
            Some((_, existing)) => *existing = column,
            None => cells.categorical.push((name.to_owned(), column)),
        }
        match self.classes.iter_mut().find(|(n, _)| n == name) {
            Some((_, existing)) => *existing = styles,
            None => self.classes.push((name.to_owned(), styles)),
        }
        self.styles_dirty = true;
    }

    /// Adds (or replaces) a numeric column made in the app.
    pub fn put_numeric_column(&mut self, name: &str, values: Vec<f64>) {
        let cells = &mut std::sync::Arc::make_mut(&mut self.bundle).cells;
        match cells.numeric.iter_mut().find(|(n, _)| n == name) {
            Some((_, existing)) => *existing = values,
            None => cells.numeric.push((name.to_owned(), values)),
        }
        self.styles_dirty = true;
    }

    /// Switches colouring. Numeric columns get their values here; genes come through
    /// [`Self::set_gene_values`] (counted off the UI thread by [`gene_values`]).
    pub fn set_colour_by(&mut self, colour_by: ColourBy) {
        let colour_map = self.numeric.as_ref().map_or(ColourMap::Viridis, |n| n.colour_map);
        match &colour_by {
            ColourBy::Numeric(name) => {
                let values = self.bundle.cells.numeric_column(name).map(<[f64]>::to_vec);
                self.numeric = values.map(|v| NumericStyle::new(name.clone(), v, colour_map));
            }
            ColourBy::Gene(_) | ColourBy::Uniform | ColourBy::Category(_) => {}
        }
        self.colour_by = colour_by;
        self.styles_dirty = true;
    }

    /// Installs one gene's values (table order) and colours by it.
    pub fn set_gene_values(&mut self, feature: u32, values: Vec<f64>) {
        let colour_map = self.numeric.as_ref().map_or(ColourMap::Viridis, |n| n.colour_map);
        let name = self.feature_name(feature);
        self.numeric = Some(NumericStyle::new(format!("{name} (counts)"), values, colour_map));
        self.colour_by = ColourBy::Gene(feature);
        self.styles_dirty = true;
    }

    pub fn feature_name(&self, feature: u32) -> String {
        self.bundle
            .counts
            .as_ref()
            .and_then(|c| c.features.get(feature as usize))
            .map_or_else(|| format!("feature {feature}"), |f| f.name.clone())
    }

    /// Call after editing [`Self::numeric`]'s range or colour map.
    pub fn numeric_changed(&mut self) {
        self.styles_dirty = true;
    }

    /// Legend of the active categorical column.
    pub fn active_classes_mut(&mut self) -> Option<&mut Vec<ClassStyle>> {
        let ColourBy::Category(name) = &self.colour_by else {
            return None;
        };
        self.classes.iter_mut().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    pub fn active_classes(&self) -> Option<&[ClassStyle]> {
        let ColourBy::Category(name) = &self.colour_by else {
            return None;
        };
        self.classes.iter().find(|(n, _)| n == name).map(|(_, c)| c.as_slice())
    }

    /// Colours these cells as `shown` is coloured, so that two samples side by side read alike:
    /// the same column where this one has it, the same colour and visibility for each class of
    /// the same name, the same opacities. Returns whether anything changed (called every frame).
    pub fn follow_colouring(&mut self, shown: &CellLayer) -> bool {
        let mut changed = false;
        for (column, styles) in &mut self.classes {
            let Some((_, theirs)) = shown.classes.iter().find(|(name, _)| name == column) else {
                continue;
            };
            for style in styles.iter_mut() {
                if let Some(their) = theirs.iter().find(|t| t.name == style.name)
                    && (style.colour, style.visible) != (their.colour, their.visible)
                {
                    (style.colour, style.visible) = (their.colour, their.visible);
                    changed = true;
                }
            }
        }
        let cells = &self.bundle.cells;
        let available = match &shown.colour_by {
            ColourBy::Category(name) => cells.categorical_column(name).is_some(),
            ColourBy::Numeric(name) => cells.numeric_column(name).is_some(),
            ColourBy::Uniform => true,
            // Gene counts are read per bundle: the compared cells keep their colouring.
            ColourBy::Gene(_) => false,
        };
        if available && self.colour_by != shown.colour_by {
            self.set_colour_by(shown.colour_by.clone());
            changed = true;
        }
        let looks = (shown.uniform_colour, shown.style, shown.show_cells, shown.show_nuclei);
        if (self.uniform_colour, self.style, self.show_cells, self.show_nuclei) != looks {
            (self.uniform_colour, self.style, self.show_cells, self.show_nuclei) = looks;
            changed = true;
        }
        if changed {
            self.styles_dirty = true;
        }
        changed
    }

    /// Dims the cells outside `cells` (None: no dimming). Restyles only when it changed.
    pub fn set_emphasis(&mut self, cells: Option<&CellSet>) {
        if self.emphasis.as_ref() != cells {
            self.emphasis = cells.cloned();
            self.styles_dirty = true;
        }
    }

    /// Palette entries of the current colouring, missing-value entry included.
    fn base_palette_len(&self) -> u32 {
        match &self.colour_by {
            ColourBy::Category(_) => 1 + self.active_classes().map_or(0, |c| c.len() as u32),
            ColourBy::Numeric(_) | ColourBy::Gene(_) => 1 + 256,
            ColourBy::Uniform => 2,
        }
    }

    /// Per-cell palette indices in GPU order for the current colouring (cells outside the
    /// emphasis point into the dimmed copy of the palette). Only this runs on a recolour;
    /// geometry stays on the GPU.
    fn compute_styles(&self) -> Vec<u32> {
        let mut styles = self.compute_base_styles();
        if let Some(emphasis) = &self.emphasis {
            let dim_offset = self.base_palette_len();
            for (style, &table) in styles.iter_mut().zip(&self.geometry.table_from_gpu) {
                if !emphasis.contains(table as usize) {
                    *style += dim_offset;
                }
            }
        }
        styles
    }

    fn compute_base_styles(&self) -> Vec<u32> {
        let order = &self.geometry.table_from_gpu;
        match &self.colour_by {
            ColourBy::Category(name) => match self.bundle.cells.categorical_column(name) {
                Some(column) => order
                    .iter()
                    .map(|&t| match column.codes.get(t as usize) {
                        Some(&code) if code != MISSING_CODE => code + 1,
                        _ => 0,
                    })
                    .collect(),
                None => vec![0; order.len()],
            },
            ColourBy::Numeric(_) | ColourBy::Gene(_) => match &self.numeric {
                Some(numeric) => order
                    .iter()
                    .map(|&t| numeric.bin(numeric.values.get(t as usize).copied().unwrap_or(f64::NAN)))
                    .collect(),
                None => vec![0; order.len()],
            },
            ColourBy::Uniform => vec![1; order.len()],
        }
    }

    /// The palette for the current colouring: entry 0 for missing values.
    pub fn palette(&self) -> Vec<[f32; 4]> {
        let missing = to_rgba_f32(MISSING_COLOUR);
        let mut palette = vec![missing];
        match &self.colour_by {
            ColourBy::Category(_) => {
                for class in self.active_classes().unwrap_or(&[]) {
                    palette.push(if class.visible {
                        to_rgba_f32(class.colour)
                    } else {
                        [0.0; 4]
                    });
                }
            }
            ColourBy::Numeric(_) | ColourBy::Gene(_) => {
                let map = self.numeric.as_ref().map_or(ColourMap::Viridis, |n| n.colour_map);
                palette.extend(map.colours().iter().map(|c| to_rgba_f32(*c)));
            }
            ColourBy::Uniform => palette.push(to_rgba_f32(self.uniform_colour)),
        }
        if self.emphasis.is_some() {
            let dimmed: Vec<[f32; 4]> = palette
                .iter()
                .map(|c| [c[0], c[1], c[2], c[3] * DIMMED_ALPHA])
                .collect();
            palette.extend(dimmed);
        }
        palette
    }

    /// Recomputes per-cell styles if the colouring changed. Returns true when it did.
    pub fn refresh_styles(&mut self) -> bool {
        if !self.styles_dirty {
            return false;
        }
        let values = self.compute_styles();
        self.styles = Arc::new(CellStyles {
            id: self.next_styles_id,
            values,
        });
        self.next_styles_id += 1;
        self.styles_dirty = false;
        true
    }

    /// The cells' draw list for this frame, or None when nothing is to be drawn.
    pub fn frame(&mut self, camera: &Camera, viewport: &Viewport, highlight: Option<u32>) -> Option<CellDrawList> {
        self.refresh_styles();
        let (transcripts, density) = match self.transcripts.as_mut() {
            Some(t) => t.frame(camera, viewport),
            None => (None, None),
        };
        self.transcript_density = density;
        if (!self.show_cells && !self.show_nuclei && transcripts.is_none()) || self.geometry.is_empty() {
            return None;
        }
        let screen_from_world = camera.screen_from_world(viewport);
        let clip_from_world = clip_from_screen(viewport) * screen_from_world;
        let (min, max) = view_box_in_world(&screen_from_world.inverse(), viewport);
        let px_per_um = camera.points_per_um * viewport.pixels_per_point;
        let radius_px = f64::from(self.geometry.typical_radius_um) * px_per_um;
        let has_polygons = self.geometry.cells.is_some() || self.geometry.nuclei.is_some();
        let mode = if radius_px >= POLYGON_MIN_RADIUS_PX && has_polygons {
            CellDrawMode::Polygons
        } else {
            CellDrawMode::Points {
                radius_px: radius_px.clamp(1.5, if has_polygons { 3.5 } else { 12.0 }) as f32,
            }
        };
        let lo = [min.x as f32, min.y as f32];
        let hi = [max.x as f32, max.y as f32];
        let visible = if self.show_cells || self.show_nuclei {
            self.geometry.visible_ranges(lo, hi)
        } else {
            Vec::new()
        };
        Some(CellDrawList {
            geometry: self.geometry.clone(),
            styles: self.styles.clone(),
            palette: self.palette(),
            clip_from_world: [
                clip_from_world.matrix2.x_axis.as_vec2().to_array(),
                clip_from_world.matrix2.y_axis.as_vec2().to_array(),
                clip_from_world.translation.as_vec2().to_array(),
            ],
            viewport_px: (viewport.size_in_points * viewport.pixels_per_point)
                .as_vec2()
                .to_array(),
            visible,
            mode,
            show_cells: self.show_cells,
            show_nuclei: self.show_nuclei && self.geometry.nuclei.is_some(),
            style: self.style,
            highlight: highlight.and_then(|t| self.geometry.gpu_from_table.get(t as usize).copied()),
            transcripts,
        })
    }

    /// The transcripts' density image made by the last [`Self::frame`] (zoomed out), drawn
    /// below the cells.
    pub fn take_transcript_density(&mut self) -> Option<ChannelDrawList> {
        self.transcript_density.take()
    }

    /// Whether a cell is drawn now (its class is not hidden).
    fn is_shown(&self, table_index: u32) -> bool {
        let Some(classes) = self.active_classes() else {
            return true;
        };
        let ColourBy::Category(name) = &self.colour_by else {
            return true;
        };
        match self.bundle.cells.categorical_column(name) {
            Some(column) => match column.codes.get(table_index as usize) {
                Some(&code) if code != MISSING_CODE => classes.get(code as usize).is_none_or(|c| c.visible),
                _ => true,
            },
            None => true,
        }
    }

    /// The cell under `pos_in_world`: the one whose boundary contains it, else the nearest
    /// centroid within a few pixels. Hidden classes are skipped.
    pub fn pick(&self, pos_in_world: DVec2, um_per_screen_px: f64) -> Option<u32> {
        if !(self.show_cells || self.show_nuclei) {
            return None;
        }
        let pos = [pos_in_world.x, pos_in_world.y];
        if let Some(boundaries) = &self.bundle.cell_boundaries {
            let reach = f64::from(self.geometry.typical_radius_um) * 4.0;
            let mut candidates: Vec<(f64, u32)> = Vec::new();
            self.index.for_each_in_rect(
                [pos[0] - reach, pos[1] - reach],
                [pos[0] + reach, pos[1] + reach],
                |id, p| {
                    candidates.push(((p[0] - pos[0]).powi(2) + (p[1] - pos[1]).powi(2), id));
                },
            );
            candidates.sort_by(|a, b| a.0.total_cmp(&b.0));
            if let Some(&(_, id)) = candidates
                .iter()
                .find(|(_, id)| self.is_shown(*id) && polygon_contains(boundaries.polygon(*id as usize), pos))
            {
                return Some(id);
            }
        }
        let radius_um = PICK_RADIUS_PX * um_per_screen_px;
        let mut best: Option<(f64, u32)> = None;
        self.index.for_each_in_rect(
            [pos[0] - radius_um, pos[1] - radius_um],
            [pos[0] + radius_um, pos[1] + radius_um],
            |id, p| {
                let d = (p[0] - pos[0]).powi(2) + (p[1] - pos[1]).powi(2);
                if d <= radius_um * radius_um && self.is_shown(id) && best.is_none_or(|(bd, _)| d < bd) {
                    best = Some((d, id));
                }
            },
        );
        best.map(|(_, id)| id)
    }

    /// Everything the tooltip and inspector show about `table_index`.
    pub fn cell_info(&self, table_index: u32) -> Option<CellInfo> {
        let cells = &self.bundle.cells;
        let i = table_index as usize;
        let id = cells.ids.get(i)?.clone();
        let class_in = |name: &str| {
            cells.categorical_column(name).map(|column| {
                let class = column
                    .codes
                    .get(i)
                    .and_then(|&c| column.categories.get(c as usize))
                    .cloned()
                    .unwrap_or_else(|| "(none)".to_owned());
                (name.to_owned(), class)
            })
        };
        // The column cells are coloured by, else the first categorical column.
        let class = match &self.colour_by {
            ColourBy::Category(name) => class_in(name),
            _ => cells.categorical.first().and_then(|(name, _)| class_in(name)),
        };
        let numeric = |name: &str| cells.numeric_column(name).and_then(|v| v.get(i).copied());
        let mut top_genes = Vec::new();
        let mut total = None;
        if let Some(counts) = &self.bundle.counts {
            let (features, values) = counts.cell(i);
            let mut genes: Vec<(String, f32)> = features
                .iter()
                .zip(values)
                .filter_map(|(&f, &v)| {
                    let feature = counts.features.get(f as usize)?;
                    (feature.feature_type == GENE_EXPRESSION).then(|| (feature.name.clone(), v))
                })
                .collect();
            total = Some(genes.iter().map(|(_, v)| f64::from(*v)).sum());
            genes.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            genes.truncate(5);
            top_genes = genes;
        }
        Some(CellInfo {
            table_index,
            id,
            class,
            cell_area_um2: numeric("cell_area").or_else(|| {
                self.bundle
                    .cell_boundaries
                    .as_ref()
                    .map(|p| p.area_um2(i))
                    .filter(|a| *a > 0.0)
            }),
            nucleus_area_um2: numeric("nucleus_area").or_else(|| {
                self.bundle
                    .nucleus_boundaries
                    .as_ref()
                    .map(|p| p.area_um2(i))
                    .filter(|a| *a > 0.0)
            }),
            total_counts: numeric("total_counts")
                .or_else(|| numeric("transcript_counts"))
                .or(total),
            top_genes,
            pos_in_world: DVec2::new(cells.x_um[i], cells.y_um[i]),
            transcripts: self.transcripts.as_ref().map(|t| {
                // A cell's transcripts lie inside its boundary, well within this square.
                let reach_um = (4.0 * f64::from(self.geometry.typical_radius_um)).max(30.0);
                let (x, y) = (cells.x_um[i], cells.y_um[i]);
                t.cell_gene_counts(table_index, [x - reach_um, y - reach_um], [x + reach_um, y + reach_um])
            }),
        })
    }
}

/// Counts of `feature` for every cell (table order). Scans the sparse matrix once; runs off the UI thread.
pub fn gene_values(bundle: &XeniumBundle, feature: u32) -> Vec<f64> {
    let Some(counts) = &bundle.counts else {
        return vec![f64::NAN; bundle.cells.len()];
    };
    (0..bundle.cells.len())
        .map(|c| {
            let (features, values) = counts.cell(c);
            features
                .iter()
                .position(|&f| f == feature)
                .map_or(0.0, |k| f64::from(values[k]))
        })
        .collect()
}

/// Legend entries of a categorical column: one per class, palette colours, cell counts.
fn legend_for(column: &cs_xenium::Categorical) -> Vec<ClassStyle> {
    let mut counts = vec![0usize; column.categories.len()];
    for &code in &column.codes {
        if let Some(c) = counts.get_mut(code as usize) {
            *c += 1;
        }
    }
    column
        .categories
        .iter()
        .enumerate()
        .map(|(i, class)| ClassStyle {
            name: class.clone(),
            colour: named_class_colour(i, class),
            visible: true,
            cells: counts[i],
        })
        .collect()
}

/// The first categorical column that looks like a cell type, else the first one, else uniform.
fn default_colour_by(bundle: &XeniumBundle) -> ColourBy {
    let columns = &bundle.cells.categorical;
    let typed = columns.iter().find(|(name, _)| name.to_lowercase().contains("type"));
    match typed.or(columns.first()) {
        Some((name, _)) => ColourBy::Category(name.clone()),
        None => ColourBy::Uniform,
    }
}

/// The world box seen by the viewport.
pub fn view_box_in_world(world_from_screen: &DAffine2, viewport: &Viewport) -> (DVec2, DVec2) {
    let size = viewport.size_in_points;
    let corners = [DVec2::ZERO, DVec2::new(size.x, 0.0), size, DVec2::new(0.0, size.y)]
        .map(|c| world_from_screen.transform_point2(c));
    let min = corners.iter().fold(DVec2::splat(f64::INFINITY), |a, b| a.min(*b));
    let max = corners.iter().fold(DVec2::splat(f64::NEG_INFINITY), |a, b| a.max(*b));
    (min, max)
}
