//! [`CellRenderer`]: the cell overlay (centroid markers, cell and nucleus fills and outlines) and
//! transcript points, drawn with `shaders/cells.wgsl`.
//!
//! Geometry ([`CellGeometry`]) is uploaded once per data set and kept by id; per-cell styles are
//! re-uploaded only when their id changes (4 bytes a cell); the palette and the frame parameters
//! are per view and per frame. Styles are shared by every view of one geometry.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use wgpu::util::DeviceExt as _;

use crate::cell_geometry::CellGeometry;
use crate::pipeline::{
    CELL_OVERVIEW_WGSL, CELLS_WGSL, PipelineSpec, render_pipeline, sampler_entry, shader_module, texture_entry,
    uniform_entry,
};
use crate::quads::FrameId;

mod point_tiles;
pub use point_tiles::{POINT_TILE_MAX_SIDE, PointRaster};

/// Marks "no highlighted cell" in [`FrameUniform::highlight`].
pub const NO_HIGHLIGHT: u32 = u32::MAX;
/// With at least this many cells in a zoomed-out view, the overview texture stands in for them.
pub const OVERVIEW_MIN_CELLS: usize = 20_000;
/// Longest side of the overview texture, in texels.
const OVERVIEW_MAX_SIDE: u32 = 4096;
/// Overview textures kept (one per geometry: two samples side by side); up to 64 MiB each.
const OVERVIEWS_KEPT: usize = 2;

/// Per-cell palette indices in GPU order (0 = missing value, k = palette entry k).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CellStyles {
    /// A new id whenever the values change.
    pub id: u64,
    pub values: Vec<u32>,
}

/// How cells are drawn this frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CellDrawMode {
    /// Round markers at centroids.
    Points { radius_px: f32 },
    /// Cell and nucleus polygons (fills and outlines as set in [`CellLayerStyle`]).
    Polygons,
}

/// Opacities and line widths of the cell layers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellLayerStyle {
    pub opacity: f32,
    pub cell_fill_alpha: f32,
    pub cell_line_alpha: f32,
    pub cell_line_px: f32,
    pub nucleus_fill_alpha: f32,
    pub nucleus_line_alpha: f32,
    pub nucleus_line_px: f32,
}

impl Default for CellLayerStyle {
    fn default() -> Self {
        Self {
            opacity: 1.0,
            cell_fill_alpha: 0.35,
            cell_line_alpha: 0.9,
            cell_line_px: 1.5,
            nucleus_fill_alpha: 0.0,
            nucleus_line_alpha: 0.8,
            nucleus_line_px: 1.0,
        }
    }
}

/// A point layer drawn with its own palette (transcripts), in parts (one per tile of the
/// transcript index), each uploaded once and kept on the GPU while it is drawn.
#[derive(Clone)]
pub struct PointLayerDraw {
    pub parts: Vec<PointPart>,
    /// Draw each part once into a texture at this resolution and show it as a quad (see
    /// [`PointRaster`]); None draws every marker every frame.
    pub raster: Option<PointRaster>,
    /// sRGB-encoded RGBA in 0..1; entry 0 is for missing values.
    pub palette: Vec<[f32; 4]>,
    pub radius_px: f32,
    pub opacity: f32,
}

/// One part of a [`PointLayerDraw`].
#[derive(Clone)]
pub struct PointPart {
    /// The part's box in world µm (lower, upper): its points lie inside.
    pub bounds_um: [[f32; 2]; 2],
    pub points: Arc<CellGeometry>,
    pub styles: Arc<CellStyles>,
    pub visible: Vec<Range<u32>>,
}

/// Everything the overlay draws in one frame of one view.
#[derive(Clone)]
pub struct CellDrawList {
    pub geometry: Arc<CellGeometry>,
    pub styles: Arc<CellStyles>,
    /// sRGB-encoded RGBA in 0..1; entry 0 is for missing values; alpha 0 hides.
    pub palette: Vec<[f32; 4]>,
    /// Columns of the affine from world µm to clip space: clip = x * c0 + y * c1 + c2.
    pub clip_from_world: [[f32; 2]; 3],
    /// Size of the view in physical pixels.
    pub viewport_px: [f32; 2],
    /// GPU index ranges to draw (from [`CellGeometry::visible_ranges`]).
    pub visible: Vec<Range<u32>>,
    pub mode: CellDrawMode,
    pub show_cells: bool,
    pub show_nuclei: bool,
    pub style: CellLayerStyle,
    /// GPU index of the cell to highlight.
    pub highlight: Option<u32>,
    pub transcripts: Option<PointLayerDraw>,
}

/// The uniform block `Frame` of `shaders/cells.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct FrameUniform {
    pub clip_x: [f32; 2],
    pub clip_y: [f32; 2],
    pub clip_t: [f32; 2],
    pub viewport_px: [f32; 2],
    pub point_radius_px: f32,
    pub cell_line_px: f32,
    pub nucleus_line_px: f32,
    pub opacity: f32,
    pub cell_fill_alpha: f32,
    pub cell_line_alpha: f32,
    pub nucleus_fill_alpha: f32,
    pub nucleus_line_alpha: f32,
    pub highlight: u32,
    pub target_is_srgb: u32,
    pub transcript_radius_px: f32,
    pub pad: f32,
}

const _: () = assert!(std::mem::size_of::<FrameUniform>() == 80);

/// The uniform block `Composite` of `shaders/cell_overview.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct CompositeUniform {
    pub clip_x: [f32; 2],
    pub clip_y: [f32; 2],
    pub clip_t: [f32; 2],
    pub min_um: [f32; 2],
    pub max_um: [f32; 2],
    pub opacity: f32,
    pub target_is_srgb: u32,
}

const _: () = assert!(std::mem::size_of::<CompositeUniform>() == 48);

/// Where the overview texture sits in world and how fine it is.
#[derive(Debug, Clone, Copy, PartialEq)]
struct OverviewLayout {
    min_um: [f32; 2],
    max_um: [f32; 2],
    size: [u32; 2],
    um_per_texel: f32,
}

impl OverviewLayout {
    /// The texture for a view at `screen_px_per_um`: texels a power of two of µm, between half and
    /// one screen pixel each (so it is never magnified and at most halved when shown). None when
    /// it would need more than `max_side` texels a side (then cells are drawn one by one).
    fn for_view(geometry: &CellGeometry, screen_px_per_um: f32, max_side: u32) -> Option<Self> {
        if !(screen_px_per_um.is_finite() && screen_px_per_um > 0.0) {
            return None;
        }
        let um_per_texel = 2f32.powf((1.0 / screen_px_per_um).log2().ceil());
        let margin = geometry.typical_radius_um * 2.0;
        let min_um = [geometry.min_um[0] - margin, geometry.min_um[1] - margin];
        let max_um = [geometry.max_um[0] + margin, geometry.max_um[1] + margin];
        let span = [(max_um[0] - min_um[0]).max(1e-3), (max_um[1] - min_um[1]).max(1e-3)];
        let texels = [(span[0] / um_per_texel).ceil(), (span[1] / um_per_texel).ceil()];
        if texels[0] > max_side as f32 || texels[1] > max_side as f32 {
            return None;
        }
        let size = [(texels[0] as u32).max(1), (texels[1] as u32).max(1)];
        Some(Self {
            min_um,
            max_um: [
                min_um[0] + size[0] as f32 * um_per_texel,
                min_um[1] + size[1] as f32 * um_per_texel,
            ],
            size,
            um_per_texel,
        })
    }
}

/// What the overview texture shows; it is redrawn when this changes.
#[derive(Debug, Clone, PartialEq)]
struct OverviewKey {
    geometry_id: u64,
    styles_id: u64,
    palette: Vec<[f32; 4]>,
    layout: OverviewLayout,
    radius_texels: f32,
}

struct Overview {
    key: OverviewKey,
    layout: OverviewLayout,
    view: wgpu::TextureView,
    /// Bumped when the texture is recreated, so views rebuild their bind groups.
    generation: u64,
}

struct GpuPointSet {
    styles: wgpu::Buffer,
    styles_id: Option<u64>,
    bind_group: wgpu::BindGroup,
    count: u32,
}

struct GpuPolygonSet {
    bind_group: wgpu::BindGroup,
    max_cell_vertices: u32,
    max_nucleus_vertices: u32,
    /// Instances of the cell and nucleus passes (polygons uploaded).
    cell_polygons: u32,
    nucleus_polygons: u32,
}

struct GpuData {
    points: GpuPointSet,
    polygons: Option<GpuPolygonSet>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Pass {
    /// Markers drawn into the overview texture (its own target format).
    OverviewPoints,
    /// The overview texture as one quad.
    OverviewComposite,
    CellPoints,
    CellFill,
    NucleusFill,
    CellOutline,
    NucleusOutline,
    TranscriptPoints,
    /// Transcript markers drawn into a point tile's texture.
    PointTilePoints,
    /// A point tile as one quad (the overview composite's pipeline; `data_id` is the view's
    /// composite slot).
    PointTileComposite,
}

struct PreparedDraw {
    pass: Pass,
    data_id: u64,
    vertices: u32,
    ranges: Vec<Range<u32>>,
}

struct PaletteBinding {
    buffer: wgpu::Buffer,
    capacity: usize,
    bind_group: wgpu::BindGroup,
}

struct PreparedView {
    uniform: wgpu::Buffer,
    cell_palette: PaletteBinding,
    transcript_palette: PaletteBinding,
    composite_uniform: wgpu::Buffer,
    /// The composite bind group and the overview generation it was made for.
    composite: Option<(u64, wgpu::BindGroup)>,
    /// Composite uniforms and bind groups of the point tiles this view draws, by slot.
    tile_composites: Vec<point_tiles::TileComposite>,
    draws: Vec<PreparedDraw>,
}

/// Long-lived: owns the pipelines, uploaded geometries and per-view buffers.
pub struct CellRenderer {
    pipelines: HashMap<Pass, wgpu::RenderPipeline>,
    frame_layout: wgpu::BindGroupLayout,
    points_layout: wgpu::BindGroupLayout,
    polygons_layout: wgpu::BindGroupLayout,
    data: HashMap<u64, GpuData>,
    views: HashMap<FrameId, PreparedView>,
    target_is_srgb: bool,
    composite_layout: wgpu::BindGroupLayout,
    overview_sampler: wgpu::Sampler,
    overview_frame: PaletteBinding,
    overview_uniform: wgpu::Buffer,
    /// One overview per geometry drawn lately (two samples side by side each have their own),
    /// most recently used last.
    overviews: Vec<Overview>,
    overview_generation: u64,
    overview_max_side: u32,
    overview_renders: u64,
    uploaded_bytes_total: u64,
    /// Point tiles by the id of their points.
    point_tiles: HashMap<u64, point_tiles::PointTile>,
    point_tile_clock: u64,
    point_tile_generation: u64,
    point_tile_renders: u64,
    point_tile_uniform: wgpu::Buffer,
    point_tile_frame: PaletteBinding,
}

fn storage_entries(count: u32) -> Vec<wgpu::BindGroupLayoutEntry> {
    (0..count)
        .map(|binding| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::VERTEX,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: true },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect()
}

/// A storage buffer with `contents`, or 16 zero bytes when empty (bindings cannot be empty).
fn storage_buffer(device: &wgpu::Device, label: &str, contents: &[u8]) -> wgpu::Buffer {
    let zero = [0u8; 16];
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: if contents.is_empty() { &zero } else { contents },
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
    })
}

fn palette_binding(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    uniform: &wgpu::Buffer,
    capacity: usize,
) -> PaletteBinding {
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("cells_palette"),
        size: (capacity * 16) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("cells_frame_bind_group"),
        layout,
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: uniform.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: buffer.as_entire_binding(),
            },
        ],
    });
    PaletteBinding {
        buffer,
        capacity,
        bind_group,
    }
}

/// Writes `palette`, growing the buffer (and its bind group) when needed. The shader clamps
/// indices to the palette length, so the tail is padded with the missing-value colour.
fn write_palette(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    layout: &wgpu::BindGroupLayout,
    uniform: &wgpu::Buffer,
    binding: &mut PaletteBinding,
    palette: &[[f32; 4]],
) {
    let needed = palette.len().max(1);
    if needed > binding.capacity {
        *binding = palette_binding(device, layout, uniform, needed.next_power_of_two());
    }
    let mut padded: Vec<[f32; 4]> = palette.to_vec();
    let fill = palette.first().copied().unwrap_or([0.0; 4]);
    padded.resize(binding.capacity, fill);
    queue.write_buffer(&binding.buffer, 0, bytemuck::cast_slice(&padded));
}

/// Screen pixels per world µm of a clip-from-world map on a viewport of `viewport_px`.
fn screen_px_per_um(clip_from_world: &[[f32; 2]; 3], viewport_px: [f32; 2]) -> f32 {
    let [x, y, _] = clip_from_world;
    let det_clip = (x[0] * y[1] - x[1] * y[0]).abs();
    (det_clip * viewport_px[0] * viewport_px[1] / 4.0).sqrt()
}

/// The per-view layout: the frame uniform and the palette.
fn frame_layout(device: &wgpu::Device) -> wgpu::BindGroupLayout {
    let palette = wgpu::BindGroupLayoutEntry {
        binding: 1,
        ..storage_entries(1)[0]
    };
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("cells_frame_layout"),
        entries: &[
            uniform_entry(0, wgpu::ShaderStages::VERTEX | wgpu::ShaderStages::FRAGMENT),
            palette,
        ],
    })
}

/// The bind group layouts of the cell passes.
struct CellLayouts {
    frame: wgpu::BindGroupLayout,
    points: wgpu::BindGroupLayout,
    polygons: wgpu::BindGroupLayout,
}

/// The pipelines of `cells.wgsl`: markers, transcripts, fills and outlines on `target_format`,
/// and markers into the overview texture.
fn cell_pipelines(
    device: &wgpu::Device,
    layouts: &CellLayouts,
    target_format: wgpu::TextureFormat,
) -> HashMap<Pass, wgpu::RenderPipeline> {
    let shader = shader_module(device, "cells.wgsl", CELLS_WGSL);
    let points_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("cells_points_pipeline_layout"),
        bind_group_layouts: &[Some(&layouts.frame), Some(&layouts.points)],
        immediate_size: 0,
    });
    let polygons_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("cells_polygons_pipeline_layout"),
        bind_group_layouts: &[Some(&layouts.frame), Some(&layouts.points), Some(&layouts.polygons)],
        immediate_size: 0,
    });
    let strip = wgpu::PrimitiveTopology::TriangleStrip;
    let list = wgpu::PrimitiveTopology::TriangleList;
    let spec = |layout, vertex, fragment, topology, format| PipelineSpec {
        label: vertex,
        layout,
        shader: &shader,
        vertex,
        buffers: &[],
        fragment,
        topology,
        format,
        blend: wgpu::BlendState::ALPHA_BLENDING,
    };
    let mut pipelines = HashMap::new();
    let points = [
        (Pass::CellPoints, "vs_cell_point", target_format),
        (Pass::TranscriptPoints, "vs_transcript_point", target_format),
        // Markers into the overview texture: the points pipeline on its own target format.
        (Pass::OverviewPoints, "vs_cell_point", wgpu::TextureFormat::Rgba8Unorm),
        (
            Pass::PointTilePoints,
            "vs_transcript_point",
            wgpu::TextureFormat::Rgba8Unorm,
        ),
    ];
    for (pass, vertex, format) in points {
        let pipeline = render_pipeline(device, &spec(&points_layout, vertex, "fs_point", strip, format));
        pipelines.insert(pass, pipeline);
    }
    for (pass, vertex) in [
        (Pass::CellFill, "vs_cell_fill"),
        (Pass::NucleusFill, "vs_nucleus_fill"),
        (Pass::CellOutline, "vs_cell_outline"),
        (Pass::NucleusOutline, "vs_nucleus_outline"),
    ] {
        let pipeline = render_pipeline(
            device,
            &spec(&polygons_layout, vertex, "fs_polygon", list, target_format),
        );
        pipelines.insert(pass, pipeline);
    }
    pipelines
}

/// The overview composite (`cell_overview.wgsl`): its bind group layout (uniform, texture,
/// sampler) and its pipeline on `target_format`.
fn overview_composite(
    device: &wgpu::Device,
    target_format: wgpu::TextureFormat,
) -> (wgpu::BindGroupLayout, wgpu::RenderPipeline) {
    let shader = shader_module(device, "cell_overview.wgsl", CELL_OVERVIEW_WGSL);
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("cell_overview_layout"),
        entries: &[
            uniform_entry(0, wgpu::ShaderStages::VERTEX | wgpu::ShaderStages::FRAGMENT),
            texture_entry(1),
            sampler_entry(2),
        ],
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("cell_overview_pipeline_layout"),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = render_pipeline(
        device,
        &PipelineSpec {
            label: "overview_composite",
            layout: &pipeline_layout,
            shader: &shader,
            vertex: "vs_overview",
            buffers: &[],
            fragment: "fs_overview",
            topology: wgpu::PrimitiveTopology::TriangleStrip,
            format: target_format,
            blend: wgpu::BlendState::PREMULTIPLIED_ALPHA_BLENDING,
        },
    );
    (layout, pipeline)
}

/// The frame uniform for a draw list (`target_is_srgb`: the target encodes sRGB itself).
fn frame_uniform(list: &CellDrawList, target_is_srgb: bool) -> FrameUniform {
    FrameUniform {
        clip_x: list.clip_from_world[0],
        clip_y: list.clip_from_world[1],
        clip_t: list.clip_from_world[2],
        viewport_px: list.viewport_px,
        point_radius_px: match list.mode {
            CellDrawMode::Points { radius_px } => radius_px,
            CellDrawMode::Polygons => 3.0,
        },
        cell_line_px: list.style.cell_line_px,
        nucleus_line_px: list.style.nucleus_line_px,
        opacity: list.style.opacity,
        cell_fill_alpha: list.style.cell_fill_alpha,
        cell_line_alpha: list.style.cell_line_alpha,
        nucleus_fill_alpha: list.style.nucleus_fill_alpha,
        nucleus_line_alpha: list.style.nucleus_line_alpha,
        highlight: list.highlight.unwrap_or(NO_HIGHLIGHT),
        target_is_srgb: u32::from(target_is_srgb),
        transcript_radius_px: list.transcripts.as_ref().map_or(1.5, |t| t.radius_px),
        pad: 0.0,
    }
}

/// The draws of the cells in polygon mode: fills and outlines as the style asks, the
/// highlighted cell's outline (its marker when there are no outlines) on top.
fn polygon_draws(
    list: &CellDrawList,
    polygons: &GpuPolygonSet,
    highlight: Option<Vec<Range<u32>>>,
    draws: &mut Vec<PreparedDraw>,
) {
    let data_id = list.geometry.id;
    let mut push = |pass: Pass, vertices: u32, ranges: Vec<Range<u32>>| {
        if vertices > 0 && !ranges.is_empty() {
            draws.push(PreparedDraw {
                pass,
                data_id,
                vertices,
                ranges,
            });
        }
    };
    let (cv, nv) = (polygons.max_cell_vertices, polygons.max_nucleus_vertices);
    let style = &list.style;
    // Draws are instanced per polygon: the visible cell ranges become polygon ranges.
    let polygon_ranges = |set: &Option<crate::cell_geometry::GpuPolygons>, cells: &[Range<u32>]| {
        set.as_ref().map_or_else(Vec::new, |p| p.polygon_ranges(cells))
    };
    let (geometry, visible) = (&list.geometry, &list.visible);
    if list.show_cells && style.cell_fill_alpha > 0.0 {
        push(Pass::CellFill, 3 * cv, polygon_ranges(&geometry.cells, visible));
    }
    if list.show_nuclei && style.nucleus_fill_alpha > 0.0 {
        push(Pass::NucleusFill, 3 * nv, polygon_ranges(&geometry.nuclei, visible));
    }
    if list.show_cells && style.cell_line_alpha > 0.0 {
        push(Pass::CellOutline, 6 * cv, polygon_ranges(&geometry.cells, visible));
    }
    if list.show_nuclei && style.nucleus_line_alpha > 0.0 {
        push(Pass::NucleusOutline, 6 * nv, polygon_ranges(&geometry.nuclei, visible));
    }
    if let Some(range) = highlight {
        let outline = polygon_ranges(&geometry.cells, &range);
        if cv > 0 && !outline.is_empty() {
            push(Pass::CellOutline, 6 * cv, outline);
        } else {
            push(Pass::CellPoints, 4, range);
        }
    }
}

/// An RGBA texture that markers are drawn into and quads then show (the overview, point tiles).
fn marker_texture(device: &wgpu::Device, label: &'static str, size: [u32; 2]) -> wgpu::TextureView {
    device
        .create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size: wgpu::Extent3d {
                width: size[0],
                height: size[1],
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba8Unorm,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::TEXTURE_BINDING,
            view_formats: &[],
        })
        .create_view(&wgpu::TextureViewDescriptor::default())
}

/// The frame uniform that maps the world box `min_um`..`max_um` onto a texture of `size` texels
/// (texel row 0 at `min_um.y`), markers of the given radii in texels.
fn texture_frame_uniform(
    min_um: [f32; 2],
    max_um: [f32; 2],
    size: [u32; 2],
    point_radius_texels: f32,
    transcript_radius_texels: f32,
) -> FrameUniform {
    let w = max_um[0] - min_um[0];
    let h = max_um[1] - min_um[1];
    FrameUniform {
        clip_x: [2.0 / w, 0.0],
        clip_y: [0.0, -2.0 / h],
        clip_t: [-1.0 - 2.0 * min_um[0] / w, 1.0 + 2.0 * min_um[1] / h],
        viewport_px: [size[0] as f32, size[1] as f32],
        point_radius_px: point_radius_texels,
        cell_line_px: 1.0,
        nucleus_line_px: 1.0,
        opacity: 1.0,
        cell_fill_alpha: 1.0,
        cell_line_alpha: 1.0,
        nucleus_fill_alpha: 1.0,
        nucleus_line_alpha: 1.0,
        highlight: NO_HIGHLIGHT,
        // The texture keeps sRGB-encoded values; the composite linearises when needed.
        target_is_srgb: 0,
        transcript_radius_px: transcript_radius_texels,
        pad: 0.0,
    }
}

/// Clears `view` and draws every point of `points` into it as a marker, with `pipeline` and the
/// frame bind group `frame` (uniform and palette already written), then submits.
fn draw_markers_into(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    view: &wgpu::TextureView,
    pipeline: Option<&wgpu::RenderPipeline>,
    frame: &wgpu::BindGroup,
    points: &GpuPointSet,
) {
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("markers_into_texture"),
    });
    if let Some(pipeline) = pipeline {
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("markers_into_texture"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color::TRANSPARENT),
                    store: wgpu::StoreOp::Store,
                },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, frame, &[]);
        pass.set_bind_group(1, &points.bind_group, &[]);
        pass.draw(0..4, 0..points.count);
    }
    queue.submit([encoder.finish()]);
}

impl CellRenderer {
    pub fn new(device: &wgpu::Device, target_format: wgpu::TextureFormat) -> Self {
        let layouts = CellLayouts {
            frame: frame_layout(device),
            points: device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("cells_points_layout"),
                entries: &storage_entries(2),
            }),
            polygons: device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("cells_polygons_layout"),
                entries: &storage_entries(4),
            }),
        };
        let mut pipelines = cell_pipelines(device, &layouts, target_format);
        let (composite_layout, composite) = overview_composite(device, target_format);
        pipelines.insert(Pass::OverviewComposite, composite);
        let overview_sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("cell_overview_sampler"),
            address_mode_u: wgpu::AddressMode::ClampToEdge,
            address_mode_v: wgpu::AddressMode::ClampToEdge,
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        let overview_uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("cell_overview_frame_uniform"),
            size: std::mem::size_of::<FrameUniform>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let overview_frame = palette_binding(device, &layouts.frame, &overview_uniform, 64);
        let point_tile_uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("point_tile_frame_uniform"),
            size: std::mem::size_of::<FrameUniform>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let point_tile_frame = palette_binding(device, &layouts.frame, &point_tile_uniform, 64);
        let CellLayouts {
            frame: frame_layout,
            points: points_layout,
            polygons: polygons_layout,
        } = layouts;
        Self {
            composite_layout,
            overview_sampler,
            overview_frame,
            overview_uniform,
            overviews: Vec::new(),
            overview_generation: 0,
            overview_max_side: OVERVIEW_MAX_SIDE.min(device.limits().max_texture_dimension_2d),
            overview_renders: 0,
            pipelines,
            frame_layout,
            points_layout,
            polygons_layout,
            data: HashMap::new(),
            views: HashMap::new(),
            target_is_srgb: target_format.is_srgb(),
            uploaded_bytes_total: 0,
            point_tiles: HashMap::new(),
            point_tile_clock: 0,
            point_tile_generation: 0,
            point_tile_renders: 0,
            point_tile_uniform,
            point_tile_frame,
        }
    }

    /// Bytes uploaded since creation (geometry and styles), for benchmarks.
    pub fn uploaded_bytes_total(&self) -> u64 {
        self.uploaded_bytes_total
    }

    /// How many times the overview texture was drawn (once per colouring while zoomed out).
    pub fn overview_renders(&self) -> u64 {
        self.overview_renders
    }

    /// Draws every cell as a marker into the overview texture, unless it already shows this
    /// geometry with these styles and this palette.
    fn ensure_overview(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        list: &CellDrawList,
        layout: OverviewLayout,
        radius_texels: f32,
    ) {
        let key = OverviewKey {
            geometry_id: list.geometry.id,
            styles_id: list.styles.id,
            palette: list.palette.clone(),
            layout,
            radius_texels,
        };
        // This geometry's overview, taken out: it goes back last (most recently used).
        let existing = self
            .overviews
            .iter()
            .position(|o| o.key.geometry_id == key.geometry_id)
            .map(|i| self.overviews.remove(i));
        let Some(data) = self
            .data
            .get(&list.geometry.id)
            .filter(|_| existing.as_ref().is_none_or(|o| o.key != key))
        else {
            self.overviews.extend(existing);
            return;
        };
        // The geometry's own texture is redrawn in place when its size holds; another geometry's
        // never is (a view drawn this frame may still sample it).
        let reuse = existing.filter(|o| o.layout.size == layout.size);
        let (view, generation) = match reuse {
            Some(o) => (o.view, o.generation),
            None => {
                let view = marker_texture(device, "cell_overview", layout.size);
                self.overview_generation += 1;
                (view, self.overview_generation)
            }
        };
        let uniform = texture_frame_uniform(layout.min_um, layout.max_um, layout.size, radius_texels.max(0.75), 1.0);
        queue.write_buffer(&self.overview_uniform, 0, bytemuck::bytes_of(&uniform));
        write_palette(
            device,
            queue,
            &self.frame_layout,
            &self.overview_uniform,
            &mut self.overview_frame,
            &list.palette,
        );
        draw_markers_into(
            device,
            queue,
            &view,
            self.pipelines.get(&Pass::OverviewPoints),
            &self.overview_frame.bind_group,
            &data.points,
        );
        self.overview_renders += 1;
        if self.overviews.len() >= OVERVIEWS_KEPT {
            self.overviews.remove(0);
        }
        self.overviews.push(Overview {
            key,
            layout,
            view,
            generation,
        });
    }

    /// Forgets an uploaded geometry (e.g. when its bundle is closed).
    pub fn evict(&mut self, geometry_id: u64) {
        self.data.remove(&geometry_id);
        self.point_tiles.remove(&geometry_id);
        self.overviews.retain(|o| o.key.geometry_id != geometry_id);
    }

    fn upload_points(&mut self, device: &wgpu::Device, geometry: &CellGeometry) -> GpuPointSet {
        let positions = storage_buffer(device, "cell_positions", bytemuck::cast_slice(&geometry.centroids_um));
        let zero_styles = vec![0u32; geometry.len().max(1)];
        let styles = storage_buffer(device, "cell_styles", bytemuck::cast_slice(&zero_styles));
        self.uploaded_bytes_total += 12 * geometry.len() as u64;
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("cells_points_bind_group"),
            layout: &self.points_layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: positions.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: styles.as_entire_binding(),
                },
            ],
        });
        // The bind group keeps the positions buffer alive.
        GpuPointSet {
            styles,
            styles_id: None,
            bind_group,
            count: geometry.len() as u32,
        }
    }

    fn upload_polygons(&mut self, device: &wgpu::Device, geometry: &CellGeometry) -> Option<GpuPolygonSet> {
        if geometry.cells.is_none() && geometry.nuclei.is_none() {
            return None;
        }
        let mut buffers = Vec::with_capacity(4);
        for (name, set) in [("cell", &geometry.cells), ("nucleus", &geometry.nuclei)] {
            let (offsets, words): (&[u32], &[u32]) = match set {
                Some(p) => (&p.offsets, &p.words),
                None => (&[], &[]),
            };
            self.uploaded_bytes_total += (4 * offsets.len() + 4 * words.len()) as u64;
            buffers.push(storage_buffer(
                device,
                &format!("{name}_offsets"),
                bytemuck::cast_slice(offsets),
            ));
            buffers.push(storage_buffer(
                device,
                &format!("{name}_polygon_words"),
                bytemuck::cast_slice(words),
            ));
        }
        let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("cells_polygons_bind_group"),
            layout: &self.polygons_layout,
            entries: &entries,
        });
        Some(GpuPolygonSet {
            bind_group,
            max_cell_vertices: geometry.cells.as_ref().map_or(0, |p| p.max_vertices),
            max_nucleus_vertices: geometry.nuclei.as_ref().map_or(0, |p| p.max_vertices),
            cell_polygons: geometry.cells.as_ref().map_or(0, |p| p.polygon_count() as u32),
            nucleus_polygons: geometry.nuclei.as_ref().map_or(0, |p| p.polygon_count() as u32),
        })
    }

    /// Uploads `geometry` if new and `styles` if changed.
    fn ensure_data(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        geometry: &CellGeometry,
        styles: &CellStyles,
        with_polygons: bool,
    ) {
        if !self.data.contains_key(&geometry.id) {
            let points = self.upload_points(device, geometry);
            let polygons = if with_polygons {
                self.upload_polygons(device, geometry)
            } else {
                None
            };
            self.data.insert(geometry.id, GpuData { points, polygons });
        }
        let Some(data) = self.data.get_mut(&geometry.id) else {
            return;
        };
        if data.points.styles_id != Some(styles.id) && styles.values.len() == data.points.count as usize {
            if !styles.values.is_empty() {
                queue.write_buffer(&data.points.styles, 0, bytemuck::cast_slice(&styles.values));
                self.uploaded_bytes_total += 4 * styles.values.len() as u64;
            }
            data.points.styles_id = Some(styles.id);
        }
    }

    /// Drops a view's prepared draw data, e.g. after a one-off offscreen render.
    pub fn forget_view(&mut self, view: FrameId) {
        self.views.remove(&view);
    }

    /// The buffers of `view` (made on its first frame).
    fn take_view(&mut self, device: &wgpu::Device, view: FrameId, uniform_value: &FrameUniform) -> PreparedView {
        if let Some(prepared) = self.views.remove(&view) {
            return prepared;
        }
        let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("cells_frame_uniform"),
            contents: bytemuck::bytes_of(uniform_value),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });
        let cell_palette = palette_binding(device, &self.frame_layout, &uniform, 64);
        let transcript_palette = palette_binding(device, &self.frame_layout, &uniform, 64);
        let composite_uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("cell_overview_composite_uniform"),
            size: std::mem::size_of::<CompositeUniform>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        PreparedView {
            uniform,
            cell_palette,
            transcript_palette,
            composite_uniform,
            composite: None,
            tile_composites: Vec::new(),
            draws: Vec::new(),
        }
    }

    /// Zoomed out over many cells, the markers are drawn once into the overview texture and the
    /// view composites it: renders the overview when needed and binds it for `prepared`. Returns
    /// whether the view uses it.
    fn prepare_overview(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        list: &CellDrawList,
        prepared: &mut PreparedView,
    ) -> bool {
        let visible_cells: usize = list.visible.iter().map(|r| r.len()).sum();
        let px_per_um = screen_px_per_um(&list.clip_from_world, list.viewport_px);
        let overview_layout = match list.mode {
            CellDrawMode::Points { radius_px }
                if (list.show_cells || list.show_nuclei) && visible_cells >= OVERVIEW_MIN_CELLS =>
            {
                OverviewLayout::for_view(&list.geometry, px_per_um, self.overview_max_side)
                    .map(|layout| (layout, radius_px * px_per_um * layout.um_per_texel))
            }
            _ => None,
        };
        let Some((layout, radius_texels)) = overview_layout else {
            return false;
        };
        self.ensure_overview(device, queue, list, layout, radius_texels);
        if let Some(overview) = self.overviews.iter().find(|o| o.key.geometry_id == list.geometry.id) {
            let composite = CompositeUniform {
                clip_x: list.clip_from_world[0],
                clip_y: list.clip_from_world[1],
                clip_t: list.clip_from_world[2],
                min_um: overview.layout.min_um,
                max_um: overview.layout.max_um,
                opacity: list.style.opacity,
                target_is_srgb: u32::from(self.target_is_srgb),
            };
            queue.write_buffer(&prepared.composite_uniform, 0, bytemuck::bytes_of(&composite));
            if prepared
                .composite
                .as_ref()
                .is_none_or(|(g, _)| *g != overview.generation)
            {
                let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("cell_overview_bind_group"),
                    layout: &self.composite_layout,
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: prepared.composite_uniform.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: wgpu::BindingResource::TextureView(&overview.view),
                        },
                        wgpu::BindGroupEntry {
                            binding: 2,
                            resource: wgpu::BindingResource::Sampler(&self.overview_sampler),
                        },
                    ],
                });
                prepared.composite = Some((overview.generation, bind_group));
            }
        }
        true
    }

    /// The draws of the cells: polygons when zoomed in, else the overview composite or markers;
    /// the highlighted cell on top.
    fn cell_draws(&self, list: &CellDrawList, use_overview: bool, has_composite: bool) -> Vec<PreparedDraw> {
        let mut draws = Vec::new();
        let geometry_id = list.geometry.id;
        let polygons = self.data.get(&geometry_id).and_then(|d| d.polygons.as_ref());
        let highlight_range = list
            .highlight
            .filter(|&h| h < list.geometry.len() as u32)
            .map(|h| std::iter::once(h..h + 1).collect::<Vec<_>>());
        let marker = |ranges| PreparedDraw {
            pass: Pass::CellPoints,
            data_id: geometry_id,
            vertices: 4,
            ranges,
        };
        match (list.mode, polygons) {
            (CellDrawMode::Polygons, Some(polygons)) => polygon_draws(list, polygons, highlight_range, &mut draws),
            _ => {
                if use_overview && has_composite {
                    draws.push(PreparedDraw {
                        pass: Pass::OverviewComposite,
                        data_id: geometry_id,
                        vertices: 4,
                        ranges: std::iter::once(0..1).collect(),
                    });
                } else if list.show_cells || list.show_nuclei {
                    draws.push(marker(list.visible.clone()));
                }
                if let Some(range) = highlight_range {
                    draws.push(marker(range));
                }
            }
        }
        draws
    }

    /// Uploads what is new and records the view's draws. Call once per frame per view.
    pub fn prepare(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, view: FrameId, list: &CellDrawList) {
        self.ensure_data(device, queue, &list.geometry, &list.styles, true);
        if let Some(t) = &list.transcripts {
            for part in &t.parts {
                self.ensure_data(device, queue, &part.points, &part.styles, false);
            }
        }
        let uniform_value = frame_uniform(list, self.target_is_srgb);
        let mut prepared = self.take_view(device, view, &uniform_value);
        queue.write_buffer(&prepared.uniform, 0, bytemuck::bytes_of(&uniform_value));
        write_palette(
            device,
            queue,
            &self.frame_layout,
            &prepared.uniform,
            &mut prepared.cell_palette,
            &list.palette,
        );
        let use_overview = self.prepare_overview(device, queue, list, &mut prepared);
        let mut draws = self.cell_draws(list, use_overview, prepared.composite.is_some());
        if let Some(t) = &list.transcripts {
            write_palette(
                device,
                queue,
                &self.frame_layout,
                &prepared.uniform,
                &mut prepared.transcript_palette,
                &t.palette,
            );
            let as_markers: Vec<usize> = match t.raster {
                Some(raster) => {
                    let (tile_draws, rest) =
                        self.prepare_point_tiles(device, queue, &list.clip_from_world, t, raster, &mut prepared);
                    draws.extend(tile_draws);
                    rest
                }
                None => (0..t.parts.len()).collect(),
            };
            for part in as_markers.iter().filter_map(|&i| t.parts.get(i)) {
                if !part.visible.is_empty() {
                    draws.push(PreparedDraw {
                        pass: Pass::TranscriptPoints,
                        data_id: part.points.id,
                        vertices: 4,
                        ranges: part.visible.clone(),
                    });
                }
            }
        }
        prepared.draws = draws;
        self.views.insert(view, prepared);
    }

    /// Draws what [`Self::prepare`] recorded for `view`.
    pub fn paint(&self, pass: &mut wgpu::RenderPass<'_>, view: FrameId) {
        let Some(prepared) = self.views.get(&view) else {
            return;
        };
        for draw in &prepared.draws {
            if draw.pass == Pass::OverviewComposite {
                if let (Some(pipeline), Some((_, bind_group))) =
                    (self.pipelines.get(&Pass::OverviewComposite), &prepared.composite)
                {
                    pass.set_pipeline(pipeline);
                    pass.set_bind_group(0, bind_group, &[]);
                    pass.draw(0..4, 0..1);
                }
                continue;
            }
            if draw.pass == Pass::PointTileComposite {
                let bound = prepared
                    .tile_composites
                    .get(draw.data_id as usize)
                    .and_then(|c| c.bound.as_ref());
                if let (Some(pipeline), Some((_, bind_group))) = (self.pipelines.get(&Pass::OverviewComposite), bound) {
                    pass.set_pipeline(pipeline);
                    pass.set_bind_group(0, bind_group, &[]);
                    pass.draw(0..4, 0..1);
                }
                continue;
            }
            let (Some(pipeline), Some(data)) = (self.pipelines.get(&draw.pass), self.data.get(&draw.data_id)) else {
                continue;
            };
            pass.set_pipeline(pipeline);
            let frame_group = if draw.pass == Pass::TranscriptPoints {
                &prepared.transcript_palette.bind_group
            } else {
                &prepared.cell_palette.bind_group
            };
            pass.set_bind_group(0, frame_group, &[]);
            pass.set_bind_group(1, &data.points.bind_group, &[]);
            let instances = match draw.pass {
                Pass::CellPoints | Pass::TranscriptPoints => data.points.count,
                _ => {
                    let Some(polygons) = &data.polygons else { continue };
                    pass.set_bind_group(2, &polygons.bind_group, &[]);
                    match draw.pass {
                        Pass::NucleusFill | Pass::NucleusOutline => polygons.nucleus_polygons,
                        _ => polygons.cell_polygons,
                    }
                }
            };
            for range in &draw.ranges {
                let end = range.end.min(instances);
                if range.start < end {
                    pass.draw(0..draw.vertices, range.start..end);
                }
            }
        }
    }
}
