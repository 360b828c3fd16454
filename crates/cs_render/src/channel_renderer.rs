//! [`ChannelTileRenderer`]: fluorescence channels (Xenium morphology stains, 16-bit) composited on
//! the GPU. Each tile of each channel is a normalised `R16Float` texture (2 bytes a texel,
//! filterable everywhere). One quad per tile composites up to four channels (colour, contrast
//! window and gamma are per-instance data, so dragging a slider re-uploads nothing) and is
//! alpha-blended over what is below with the layer's opacity: stains on black at opacity 1,
//! over the H&E below it. A fifth and later channels come in further quads added on top. A quad
//! may instead take its coverage from its intensity (transcript densities over any background).

use std::sync::Arc;

use cs_slide::{ByteLru, Gray16Image};

use crate::pipeline::{CHANNELS_WGSL, PipelineSpec, render_pipeline, sampler_entry, shader_module, texture_entry};
use crate::quads::{FrameId, QuadFrames, textures_bind_group, tile_sampler, upload_texture};

/// Channels one quad composites.
pub const CHANNELS_PER_QUAD: usize = 4;

/// Identifies one channel tile texture (`source_id` changes when another image opens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelTileKey {
    pub source_id: u64,
    pub channel: u32,
    pub level: u32,
    pub col: u32,
    pub row: u32,
}

/// How one channel is drawn. `window_min`/`window_max` are raw sample values (0..65535).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelDisplay {
    pub color_rgb: [f32; 3],
    pub window_min: f32,
    pub window_max: f32,
    pub gamma: f32,
}

/// One channel's tile in a quad.
#[derive(Clone)]
pub struct ChannelTile {
    pub key: ChannelTileKey,
    pub image: Arc<Gray16Image>,
    pub display: ChannelDisplay,
}

/// One tile's quad, in clip space (as [`crate::TileDraw`]), with up to [`CHANNELS_PER_QUAD`]
/// channels.
#[derive(Clone)]
pub struct ChannelQuad {
    pub origin_clip: [f32; 2],
    pub axis_x_clip: [f32; 2],
    pub axis_y_clip: [f32; 2],
    pub channels: Vec<ChannelTile>,
    /// Added onto the quads drawn before (channels past the first four), not blended over them.
    pub additive: bool,
    /// Coverage from intensity: where the channels are dark the quad is transparent, so what is
    /// below shows through (a transcript density over the H&E), rather than black.
    pub alpha_from_intensity: bool,
}

/// Everything the channel layer draws in one frame (coarse stand-ins first).
#[derive(Clone, Default)]
pub struct ChannelDrawList {
    pub quads: Vec<ChannelQuad>,
    pub opacity: f32,
}

/// Per-instance vertex data, laid out as `ChannelInstance` in `shaders/channels.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ChannelInstance {
    pub origin_clip: [f32; 2],
    pub axis_x_clip: [f32; 2],
    pub axis_y_clip: [f32; 2],
    pub opacity_pad: [f32; 2],
    pub colors: [[f32; 4]; CHANNELS_PER_QUAD],
    pub windows: [[f32; 4]; CHANNELS_PER_QUAD],
}

const _: () = assert!(std::mem::size_of::<ChannelInstance>() == 160);

/// Long-lived: the pipelines, the sampler and the channel tile textures.
pub struct ChannelTileRenderer {
    blended: wgpu::RenderPipeline,
    added: wgpu::RenderPipeline,
    bind_group_layout: wgpu::BindGroupLayout,
    sampler: wgpu::Sampler,
    /// Bound in unused slots.
    empty: wgpu::TextureView,
    textures: ByteLru<ChannelTileKey, wgpu::TextureView>,
    blended_frames: QuadFrames<ChannelInstance>,
    added_frames: QuadFrames<ChannelInstance>,
}

/// Samples as the texture stores them: value / 65535 as f16 (relative precision 2^-11 at every
/// intensity, so dim stains keep their detail).
pub fn normalised_f16_texels(image: &Gray16Image) -> Vec<u8> {
    let mut texels = Vec::with_capacity(image.pixels.len() * 2);
    for &v in &image.pixels {
        let h = half::f16::from_f32(f32::from(v) / 65535.0);
        texels.extend_from_slice(&h.to_le_bytes());
    }
    texels
}

impl ChannelTileRenderer {
    pub fn new(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        target_format: wgpu::TextureFormat,
        gpu_budget_bytes: usize,
    ) -> Self {
        let shader = shader_module(device, "channels.wgsl", CHANNELS_WGSL);
        let bind_group_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("channel_bind_group_layout"),
            entries: &[
                sampler_entry(0),
                texture_entry(1),
                texture_entry(2),
                texture_entry(3),
                texture_entry(4),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("channel_pipeline_layout"),
            bind_group_layouts: &[Some(&bind_group_layout)],
            immediate_size: 0,
        });
        let buffers = [Some(wgpu::VertexBufferLayout {
            array_stride: std::mem::size_of::<ChannelInstance>() as u64,
            step_mode: wgpu::VertexStepMode::Instance,
            attributes: &wgpu::vertex_attr_array![
                0 => Float32x2, 1 => Float32x2, 2 => Float32x2, 3 => Float32x2,
                4 => Float32x4, 5 => Float32x4, 6 => Float32x4, 7 => Float32x4,
                8 => Float32x4, 9 => Float32x4, 10 => Float32x4, 11 => Float32x4
            ],
        })];
        let pipeline = |label: &'static str, blend: wgpu::BlendState| {
            render_pipeline(
                device,
                &PipelineSpec {
                    label,
                    layout: &pipeline_layout,
                    shader: &shader,
                    vertex: "vs_main",
                    buffers: &buffers,
                    fragment: "fs_main",
                    topology: wgpu::PrimitiveTopology::TriangleStrip,
                    format: target_format,
                    blend,
                },
            )
        };
        let additive = wgpu::BlendState {
            color: wgpu::BlendComponent {
                src_factor: wgpu::BlendFactor::SrcAlpha,
                dst_factor: wgpu::BlendFactor::One,
                operation: wgpu::BlendOperation::Add,
            },
            alpha: wgpu::BlendComponent {
                src_factor: wgpu::BlendFactor::Zero,
                dst_factor: wgpu::BlendFactor::One,
                operation: wgpu::BlendOperation::Add,
            },
        };
        let empty = upload_texture(device, queue, wgpu::TextureFormat::R16Float, (1, 1), 2, &[0, 0]);
        Self {
            blended: pipeline("channel_pipeline", wgpu::BlendState::ALPHA_BLENDING),
            added: pipeline("channel_pipeline_added", additive),
            bind_group_layout,
            sampler: tile_sampler(device),
            empty,
            textures: ByteLru::new(gpu_budget_bytes),
            blended_frames: QuadFrames::new("channel_instances"),
            added_frames: QuadFrames::new("channel_instances_added"),
        }
    }

    pub fn forget_frame(&mut self, frame: FrameId) {
        self.blended_frames.forget(frame);
        self.added_frames.forget(frame);
    }

    /// Forgets every texture of `source_id` (its image closed).
    pub fn evict_source(&mut self, source_id: u64) {
        self.textures.retain(|key| key.source_id != source_id);
    }

    fn texture(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, tile: &ChannelTile) -> wgpu::TextureView {
        if let Some(view) = self.textures.get(&tile.key) {
            return view.clone();
        }
        let texels = normalised_f16_texels(&tile.image);
        let view = upload_texture(
            device,
            queue,
            wgpu::TextureFormat::R16Float,
            (tile.image.width, tile.image.height),
            2,
            &texels,
        );
        self.textures.insert(tile.key, view.clone(), texels.len());
        view
    }

    /// Uploads missing tiles and records the frame's quads. Call once per frame per view.
    pub fn prepare(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, frame: FrameId, list: &ChannelDrawList) {
        let mut blended = (Vec::new(), Vec::new());
        let mut added = (Vec::new(), Vec::new());
        for quad in &list.quads {
            let channels = &quad.channels[..quad.channels.len().min(CHANNELS_PER_QUAD)];
            if channels.is_empty() || channels.iter().any(|c| c.image.width == 0 || c.image.height == 0) {
                continue;
            }
            let views: Vec<wgpu::TextureView> = channels.iter().map(|c| self.texture(device, queue, c)).collect();
            let mut bound: Vec<&wgpu::TextureView> = views.iter().collect();
            bound.resize(CHANNELS_PER_QUAD, &self.empty);
            let bind_group = textures_bind_group(device, &self.bind_group_layout, &self.sampler, &bound, true);
            let mut instance = ChannelInstance {
                origin_clip: quad.origin_clip,
                axis_x_clip: quad.axis_x_clip,
                axis_y_clip: quad.axis_y_clip,
                opacity_pad: [list.opacity, if quad.alpha_from_intensity { 1.0 } else { 0.0 }],
                colors: [[0.0; 4]; CHANNELS_PER_QUAD],
                windows: [[0.0, 1.0, 1.0, 0.0]; CHANNELS_PER_QUAD],
            };
            for (slot, channel) in channels.iter().enumerate() {
                let d = channel.display;
                instance.colors[slot] = [d.color_rgb[0], d.color_rgb[1], d.color_rgb[2], 1.0];
                instance.windows[slot] = [d.window_min / 65535.0, d.window_max / 65535.0, d.gamma, 0.0];
            }
            let target = if quad.additive { &mut added } else { &mut blended };
            target.0.push(instance);
            target.1.push(bind_group);
        }
        self.blended_frames.record(device, queue, frame, &blended.0, blended.1);
        self.added_frames.record(device, queue, frame, &added.0, added.1);
    }

    /// Draws what [`Self::prepare`] recorded for `frame`.
    pub fn paint(&self, pass: &mut wgpu::RenderPass<'_>, frame: FrameId) {
        self.blended_frames.paint(pass, &self.blended, frame);
        self.added_frames.paint(pass, &self.added, frame);
    }
}
