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
use crate::tile_renderer::FrameId;

/// Marks "no highlighted cell" in [`FrameUniform::highlight`].
pub const NO_HIGHLIGHT: u32 = u32::MAX;

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

/// A point layer drawn with its own palette (transcripts).
#[derive(Clone)]
pub struct PointLayerDraw {
    pub points: Arc<CellGeometry>,
    pub styles: Arc<CellStyles>,
    /// sRGB-encoded RGBA in 0..1; entry 0 is for missing values.
    pub palette: Vec<[f32; 4]>,
    pub visible: Vec<Range<u32>>,
    pub radius_px: f32,
    pub opacity: f32,
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
}

struct GpuData {
    points: GpuPointSet,
    polygons: Option<GpuPolygonSet>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Pass {
    CellPoints,
    CellFill,
    NucleusFill,
    CellOutline,
    NucleusOutline,
    TranscriptPoints,
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
    uploaded_bytes_total: u64,
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

impl CellRenderer {
    pub fn new(device: &wgpu::Device, target_format: wgpu::TextureFormat) -> Self {
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("cells.wgsl"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../../shaders/cells.wgsl").into()),
        });
        let frame_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("cells_frame_layout"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::VERTEX | wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::VERTEX,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: true },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
            ],
        });
        let points_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("cells_points_layout"),
            entries: &storage_entries(2),
        });
        let polygons_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("cells_polygons_layout"),
            entries: &storage_entries(4),
        });
        let points_pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("cells_points_pipeline_layout"),
            bind_group_layouts: &[Some(&frame_layout), Some(&points_layout)],
            immediate_size: 0,
        });
        let polygons_pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("cells_polygons_pipeline_layout"),
            bind_group_layouts: &[Some(&frame_layout), Some(&points_layout), Some(&polygons_layout)],
            immediate_size: 0,
        });
        let make = |layout: &wgpu::PipelineLayout, vertex: &str, fragment: &str, topology: wgpu::PrimitiveTopology| {
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some(vertex),
                layout: Some(layout),
                vertex: wgpu::VertexState {
                    module: &shader,
                    entry_point: Some(vertex),
                    compilation_options: Default::default(),
                    buffers: &[],
                },
                primitive: wgpu::PrimitiveState {
                    topology,
                    cull_mode: None,
                    ..Default::default()
                },
                depth_stencil: None,
                multisample: wgpu::MultisampleState::default(),
                fragment: Some(wgpu::FragmentState {
                    module: &shader,
                    entry_point: Some(fragment),
                    compilation_options: Default::default(),
                    targets: &[Some(wgpu::ColorTargetState {
                        format: target_format,
                        blend: Some(wgpu::BlendState::ALPHA_BLENDING),
                        write_mask: wgpu::ColorWrites::ALL,
                    })],
                }),
                multiview_mask: None,
                cache: None,
            })
        };
        let strip = wgpu::PrimitiveTopology::TriangleStrip;
        let list = wgpu::PrimitiveTopology::TriangleList;
        let mut pipelines = HashMap::new();
        pipelines.insert(
            Pass::CellPoints,
            make(&points_pipeline_layout, "vs_cell_point", "fs_point", strip),
        );
        pipelines.insert(
            Pass::TranscriptPoints,
            make(&points_pipeline_layout, "vs_transcript_point", "fs_point", strip),
        );
        for (pass, vertex) in [
            (Pass::CellFill, "vs_cell_fill"),
            (Pass::NucleusFill, "vs_nucleus_fill"),
            (Pass::CellOutline, "vs_cell_outline"),
            (Pass::NucleusOutline, "vs_nucleus_outline"),
        ] {
            pipelines.insert(pass, make(&polygons_pipeline_layout, vertex, "fs_polygon", list));
        }
        Self {
            pipelines,
            frame_layout,
            points_layout,
            polygons_layout,
            data: HashMap::new(),
            views: HashMap::new(),
            target_is_srgb: target_format.is_srgb(),
            uploaded_bytes_total: 0,
        }
    }

    /// Bytes uploaded since creation (geometry and styles), for benchmarks.
    pub fn uploaded_bytes_total(&self) -> u64 {
        self.uploaded_bytes_total
    }

    /// Forgets an uploaded geometry (e.g. when its bundle is closed).
    pub fn evict(&mut self, geometry_id: u64) {
        self.data.remove(&geometry_id);
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

    fn palette_binding(&self, device: &wgpu::Device, uniform: &wgpu::Buffer, capacity: usize) -> PaletteBinding {
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("cells_palette"),
            size: (capacity * 16) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("cells_frame_bind_group"),
            layout: &self.frame_layout,
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

    fn write_palette(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        uniform: &wgpu::Buffer,
        binding: &mut PaletteBinding,
        palette: &[[f32; 4]],
    ) {
        // The shader clamps indices to the palette length: pad with the missing-value colour.
        let needed = palette.len().max(1);
        if needed > binding.capacity {
            *binding = self.palette_binding(device, uniform, needed.next_power_of_two());
        }
        let mut padded: Vec<[f32; 4]> = palette.to_vec();
        let fill = palette.first().copied().unwrap_or([0.0; 4]);
        padded.resize(binding.capacity, fill);
        queue.write_buffer(&binding.buffer, 0, bytemuck::cast_slice(&padded));
    }

    /// Uploads what is new and records the view's draws. Call once per frame per view.
    pub fn prepare(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, view: FrameId, list: &CellDrawList) {
        self.ensure_data(device, queue, &list.geometry, &list.styles, true);
        if let Some(t) = &list.transcripts {
            self.ensure_data(device, queue, &t.points, &t.styles, false);
        }
        let uniform_value = FrameUniform {
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
            target_is_srgb: u32::from(self.target_is_srgb),
            transcript_radius_px: list.transcripts.as_ref().map_or(1.5, |t| t.radius_px),
            pad: 0.0,
        };
        let mut prepared = match self.views.remove(&view) {
            Some(p) => p,
            None => {
                let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("cells_frame_uniform"),
                    contents: bytemuck::bytes_of(&uniform_value),
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                });
                let cell_palette = self.palette_binding(device, &uniform, 64);
                let transcript_palette = self.palette_binding(device, &uniform, 64);
                PreparedView {
                    uniform,
                    cell_palette,
                    transcript_palette,
                    draws: Vec::new(),
                }
            }
        };
        queue.write_buffer(&prepared.uniform, 0, bytemuck::bytes_of(&uniform_value));
        self.write_palette(
            device,
            queue,
            &prepared.uniform,
            &mut prepared.cell_palette,
            &list.palette,
        );
        let mut draws = Vec::new();
        let geometry_id = list.geometry.id;
        let polygons = self.data.get(&geometry_id).and_then(|d| d.polygons.as_ref());
        let highlight_range = list
            .highlight
            .filter(|&h| h < list.geometry.len() as u32)
            .map(|h| std::iter::once(h..h + 1).collect::<Vec<_>>());
        match (list.mode, polygons) {
            (CellDrawMode::Polygons, Some(polygons)) => {
                let mut push = |pass: Pass, vertices: u32, ranges: Vec<Range<u32>>| {
                    if vertices > 0 && !ranges.is_empty() {
                        draws.push(PreparedDraw {
                            pass,
                            data_id: geometry_id,
                            vertices,
                            ranges,
                        });
                    }
                };
                let (cv, nv) = (polygons.max_cell_vertices, polygons.max_nucleus_vertices);
                if list.show_cells && list.style.cell_fill_alpha > 0.0 {
                    push(Pass::CellFill, 3 * cv, list.visible.clone());
                }
                if list.show_nuclei && list.style.nucleus_fill_alpha > 0.0 {
                    push(Pass::NucleusFill, 3 * nv, list.visible.clone());
                }
                if list.show_cells && list.style.cell_line_alpha > 0.0 {
                    push(Pass::CellOutline, 6 * cv, list.visible.clone());
                }
                if list.show_nuclei && list.style.nucleus_line_alpha > 0.0 {
                    push(Pass::NucleusOutline, 6 * nv, list.visible.clone());
                }
                if let Some(range) = highlight_range {
                    if cv > 0 {
                        push(Pass::CellOutline, 6 * cv, range);
                    } else {
                        push(Pass::CellPoints, 4, range);
                    }
                }
            }
            _ => {
                if list.show_cells || list.show_nuclei {
                    draws.push(PreparedDraw {
                        pass: Pass::CellPoints,
                        data_id: geometry_id,
                        vertices: 4,
                        ranges: list.visible.clone(),
                    });
                }
                if let Some(range) = highlight_range {
                    draws.push(PreparedDraw {
                        pass: Pass::CellPoints,
                        data_id: geometry_id,
                        vertices: 4,
                        ranges: range,
                    });
                }
            }
        }
        if let Some(t) = &list.transcripts {
            self.write_palette(
                device,
                queue,
                &prepared.uniform,
                &mut prepared.transcript_palette,
                &t.palette,
            );
            if !t.visible.is_empty() {
                draws.push(PreparedDraw {
                    pass: Pass::TranscriptPoints,
                    data_id: t.points.id,
                    vertices: 4,
                    ranges: t.visible.clone(),
                });
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
            let is_polygon_pass = !matches!(draw.pass, Pass::CellPoints | Pass::TranscriptPoints);
            if is_polygon_pass {
                let Some(polygons) = &data.polygons else { continue };
                pass.set_bind_group(2, &polygons.bind_group, &[]);
            }
            for range in &draw.ranges {
                let end = range.end.min(data.points.count);
                if range.start < end {
                    pass.draw(0..draw.vertices, range.start..end);
                }
            }
        }
    }
}
