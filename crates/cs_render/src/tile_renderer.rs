//! [`TileRenderer`]: draws slide tiles as textured quads, with an LRU cache of tile textures.

use std::sync::Arc;

use cs_slide::{ByteLru, RgbaImage};

use crate::pipeline::{PipelineSpec, TILES_WGSL, render_pipeline, sampler_entry, shader_module, texture_entry};
use crate::quads::{FrameId, QuadFrames, textures_bind_group, tile_sampler, upload_texture};

/// Identifies one tile texture: `source_id` distinguishes slides (a new slide gets a new id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileTextureKey {
    pub source_id: u64,
    pub level: u32,
    pub col: u32,
    pub row: u32,
}

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

/// Long-lived: owns the pipeline, the sampler and the tile texture cache.
pub struct TileRenderer {
    pipeline: wgpu::RenderPipeline,
    bind_group_layout: wgpu::BindGroupLayout,
    sampler: wgpu::Sampler,
    texture_format: wgpu::TextureFormat,
    textures: ByteLru<TileTextureKey, wgpu::BindGroup>,
    frames: QuadFrames<TileInstance>,
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
        let sampler = tile_sampler(device);
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
            frames: QuadFrames::new("tile_instances"),
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
        self.frames.forget(frame);
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
                Some(bind_group) => bind_group.clone(),
                None => {
                    let view = upload_texture(
                        device,
                        queue,
                        self.texture_format,
                        (tile.image.width, tile.image.height),
                        4,
                        &tile.image.pixels,
                    );
                    let bind_group =
                        textures_bind_group(device, &self.bind_group_layout, &self.sampler, &[&view], false);
                    self.uploaded_bytes_total += tile.image.size_bytes() as u64;
                    self.textures
                        .insert(tile.key, bind_group.clone(), tile.image.size_bytes());
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
        self.frames.record(device, queue, frame, &instances, bind_groups);
    }

    /// Draws what [`Self::prepare`] recorded for `frame`.
    pub fn paint(&self, pass: &mut wgpu::RenderPass<'_>, frame: FrameId) {
        self.frames.paint(pass, &self.pipeline, frame);
    }
}
