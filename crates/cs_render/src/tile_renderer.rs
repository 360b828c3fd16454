//! [`TileRenderer`]: draws slide tiles as textured quads, with an LRU cache of tile textures.

use std::collections::HashMap;
use std::sync::Arc;

use cs_slide::{ByteLru, RgbaImage};
use wgpu::util::DeviceExt as _;

use crate::pipeline::{PipelineSpec, TILES_WGSL, render_pipeline, sampler_entry, shader_module, texture_entry};

/// Identifies one tile texture: `source_id` distinguishes slides (a new slide gets a new id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileTextureKey {
    pub source_id: u64,
    pub level: u32,
    pub col: u32,
    pub row: u32,
}

/// Several views may draw in one egui frame (e.g. two synchronised viewports): each has an id.
pub type FrameId = u64;

/// One tile to draw: its pixels (uploaded only if not resident) and its corners in clip space.
#[derive(Clone)]
pub struct TileDraw {
    pub key: TileTextureKey,
    pub image: Arc<RgbaImage>,
    /// Clip-space position of the tile's top-left texel corner.
    pub origin_clip: [f32; 2],
    /// Clip-space vectors along the tile's top edge and left edge (full tile width / height).
    pub axis_x_clip: [f32; 2],
    pub axis_y_clip: [f32; 2],
}

/// Everything the tile layer draws in one frame, in draw order (coarse stand-ins first).
#[derive(Clone, Default)]
pub struct TileDrawList {
    pub tiles: Vec<TileDraw>,
    pub opacity: f32,
}

/// Per-instance vertex data, laid out as `TileInstance` in `shaders/tiles.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TileInstance {
    pub origin_clip: [f32; 2],
    pub axis_x_clip: [f32; 2],
    pub axis_y_clip: [f32; 2],
    pub opacity_pad: [f32; 2],
}

const _: () = assert!(std::mem::size_of::<TileInstance>() == 32);

struct GpuTile {
    bind_group: wgpu::BindGroup,
}

struct PreparedFrame {
    instances: Option<wgpu::Buffer>,
    capacity: usize,
    bind_groups: Vec<wgpu::BindGroup>,
}

/// Long-lived: owns the pipeline, the sampler and the tile texture cache.
pub struct TileRenderer {
    pipeline: wgpu::RenderPipeline,
    bind_group_layout: wgpu::BindGroupLayout,
    sampler: wgpu::Sampler,
    texture_format: wgpu::TextureFormat,
    textures: ByteLru<TileTextureKey, GpuTile>,
    frames: HashMap<FrameId, PreparedFrame>,
    uploaded_bytes_total: u64,
}

impl TileRenderer {
    /// `target_format`: the colour attachment drawn into. `gpu_budget_bytes`: texture cache size.
    pub fn new(device: &wgpu::Device, target_format: wgpu::TextureFormat, gpu_budget_bytes: usize) -> Self {
        let shader = shader_module(device, "tiles.wgsl", TILES_WGSL);
        let bind_group_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("tile_bind_group_layout"),
            entries: &[texture_entry(0), sampler_entry(1)],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("tile_pipeline_layout"),
            bind_group_layouts: &[Some(&bind_group_layout)],
            immediate_size: 0,
        });
        let pipeline = render_pipeline(
            device,
            &PipelineSpec {
                label: "tile_pipeline",
                layout: &pipeline_layout,
                shader: &shader,
                vertex: "vs_main",
                buffers: &[Some(wgpu::VertexBufferLayout {
                    array_stride: std::mem::size_of::<TileInstance>() as u64,
                    step_mode: wgpu::VertexStepMode::Instance,
                    attributes: &wgpu::vertex_attr_array![0 => Float32x2, 1 => Float32x2, 2 => Float32x2, 3 => Float32x2],
                })],
                fragment: "fs_main",
                topology: wgpu::PrimitiveTopology::TriangleStrip,
                format: target_format,
                blend: wgpu::BlendState::ALPHA_BLENDING,
            },
        );
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("tile_sampler"),
            address_mode_u: wgpu::AddressMode::ClampToEdge,
            address_mode_v: wgpu::AddressMode::ClampToEdge,
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        // The target stores what egui would show; match its gamma handling.
        let texture_format = if target_format.is_srgb() {
            wgpu::TextureFormat::Rgba8UnormSrgb
        } else {
            wgpu::TextureFormat::Rgba8Unorm
        };
        Self {
            pipeline,
            bind_group_layout,
            sampler,
            texture_format,
            textures: ByteLru::new(gpu_budget_bytes),
            frames: HashMap::new(),
            uploaded_bytes_total: 0,
        }
    }

    pub fn resident_tile_count(&self) -> usize {
        self.textures.len()
    }

    pub fn resident_bytes(&self) -> usize {
        self.textures.used_bytes()
    }

    /// Bytes uploaded since creation (for benchmarks and the stats overlay).
    pub fn uploaded_bytes_total(&self) -> u64 {
        self.uploaded_bytes_total
    }

    /// Forgets every texture of `source_id` (e.g. when its slide is closed).
    /// Drops a view's prepared draw data (its bind groups and instance buffer), e.g. after a
    /// one-off offscreen render.
    pub fn forget_frame(&mut self, frame: FrameId) {
        self.frames.remove(&frame);
    }

    pub fn evict_source(&mut self, source_id: u64) {
        self.textures.retain(|key| key.source_id != source_id);
    }

    /// Uploads missing tiles and records the frame's instances. Call once per frame per view.
    pub fn prepare(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, frame: FrameId, list: &TileDrawList) {
        let mut instances = Vec::with_capacity(list.tiles.len());
        let mut bind_groups = Vec::with_capacity(list.tiles.len());
        for tile in &list.tiles {
            if tile.image.width == 0 || tile.image.height == 0 {
                continue;
            }
            let bind_group = match self.textures.get(&tile.key) {
                Some(gpu) => gpu.bind_group.clone(),
                None => {
                    let gpu = self.upload(device, queue, &tile.image);
                    let bind_group = gpu.bind_group.clone();
                    self.uploaded_bytes_total += tile.image.size_bytes() as u64;
                    self.textures.insert(tile.key, gpu, tile.image.size_bytes());
                    bind_group
                }
            };
            bind_groups.push(bind_group);
            instances.push(TileInstance {
                origin_clip: tile.origin_clip,
                axis_x_clip: tile.axis_x_clip,
                axis_y_clip: tile.axis_y_clip,
                opacity_pad: [list.opacity, 0.0],
            });
        }
        let prepared = self.frames.entry(frame).or_insert(PreparedFrame {
            instances: None,
            capacity: 0,
            bind_groups: Vec::new(),
        });
        if instances.len() > prepared.capacity || prepared.instances.is_none() {
            let capacity = instances.len().next_power_of_two().max(64);
            let mut padded = instances.clone();
            padded.resize(capacity, TileInstance::zeroed_instance());
            prepared.instances = Some(device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("tile_instances"),
                contents: bytemuck::cast_slice(&padded),
                usage: wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST,
            }));
            prepared.capacity = capacity;
        } else if let Some(buffer) = &prepared.instances
            && !instances.is_empty()
        {
            queue.write_buffer(buffer, 0, bytemuck::cast_slice(&instances));
        }
        prepared.bind_groups = bind_groups;
    }

    /// Draws what [`Self::prepare`] recorded for `frame`.
    pub fn paint(&self, pass: &mut wgpu::RenderPass<'_>, frame: FrameId) {
        let Some(prepared) = self.frames.get(&frame) else {
            return;
        };
        let Some(instances) = &prepared.instances else {
            return;
        };
        if prepared.bind_groups.is_empty() {
            return;
        }
        pass.set_pipeline(&self.pipeline);
        pass.set_vertex_buffer(0, instances.slice(..));
        for (i, bind_group) in prepared.bind_groups.iter().enumerate() {
            let i = i as u32;
            pass.set_bind_group(0, bind_group, &[]);
            pass.draw(0..4, i..i + 1);
        }
    }

    fn upload(&self, device: &wgpu::Device, queue: &wgpu::Queue, image: &RgbaImage) -> GpuTile {
        let size = wgpu::Extent3d {
            width: image.width,
            height: image.height,
            depth_or_array_layers: 1,
        };
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("slide_tile"),
            size,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: self.texture_format,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            &image.pixels,
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(4 * image.width),
                rows_per_image: Some(image.height),
            },
            size,
        );
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("slide_tile_bind_group"),
            layout: &self.bind_group_layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::TextureView(&view),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::Sampler(&self.sampler),
                },
            ],
        });
        GpuTile { bind_group }
    }
}

impl TileInstance {
    fn zeroed_instance() -> Self {
        bytemuck::Zeroable::zeroed()
    }
}
