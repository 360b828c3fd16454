//! What both tile renderers do with textured quads: per view, an instance buffer (grown by
//! powers of two, rewritten each frame) and one bind group per quad, drawn as a triangle strip
//! per instance; and uploading one tile texture.

use std::collections::HashMap;

use wgpu::util::DeviceExt as _;

/// Several views may draw in one egui frame (e.g. two synchronised viewports): each has an id.
pub type FrameId = u64;

struct PreparedFrame {
    instances: Option<wgpu::Buffer>,
    capacity: usize,
    bind_groups: Vec<wgpu::BindGroup>,
}

/// The prepared quads of every view, with instances of type `I`.
pub(crate) struct QuadFrames<I> {
    label: &'static str,
    frames: HashMap<FrameId, PreparedFrame>,
    instance: std::marker::PhantomData<I>,
}

impl<I: bytemuck::Pod> QuadFrames<I> {
    pub fn new(label: &'static str) -> Self {
        Self {
            label,
            frames: HashMap::new(),
            instance: std::marker::PhantomData,
        }
    }

    /// Records what `frame` draws: `instances[i]` with `bind_groups[i]`.
    pub fn record(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        frame: FrameId,
        instances: &[I],
        bind_groups: Vec<wgpu::BindGroup>,
    ) {
        let prepared = self.frames.entry(frame).or_insert(PreparedFrame {
            instances: None,
            capacity: 0,
            bind_groups: Vec::new(),
        });
        if instances.len() > prepared.capacity || prepared.instances.is_none() {
            let capacity = instances.len().next_power_of_two().max(64);
            let mut padded = instances.to_vec();
            padded.resize(capacity, I::zeroed());
            prepared.instances = Some(device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(self.label),
                contents: bytemuck::cast_slice(&padded),
                usage: wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST,
            }));
            prepared.capacity = capacity;
        } else if let Some(buffer) = &prepared.instances
            && !instances.is_empty()
        {
            queue.write_buffer(buffer, 0, bytemuck::cast_slice(instances));
        }
        prepared.bind_groups = bind_groups;
    }

    /// Draws what [`Self::record`] recorded for `frame` with `pipeline`.
    pub fn paint(&self, pass: &mut wgpu::RenderPass<'_>, pipeline: &wgpu::RenderPipeline, frame: FrameId) {
        let Some(prepared) = self.frames.get(&frame) else {
            return;
        };
        let Some(instances) = &prepared.instances else {
            return;
        };
        if prepared.bind_groups.is_empty() {
            return;
        }
        pass.set_pipeline(pipeline);
        pass.set_vertex_buffer(0, instances.slice(..));
        for (i, bind_group) in prepared.bind_groups.iter().enumerate() {
            let i = i as u32;
            pass.set_bind_group(0, bind_group, &[]);
            pass.draw(0..4, i..i + 1);
        }
    }

    pub fn forget(&mut self, frame: FrameId) {
        self.frames.remove(&frame);
    }
}

/// Uploads one tile's texels (`bytes_per_texel` each, rows packed) as a texture.
pub(crate) fn upload_texture(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    format: wgpu::TextureFormat,
    (width, height): (u32, u32),
    bytes_per_texel: u32,
    texels: &[u8],
) -> wgpu::TextureView {
    let size = wgpu::Extent3d {
        width,
        height,
        depth_or_array_layers: 1,
    };
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("tile_texture"),
        size,
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
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
        texels,
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(bytes_per_texel * width),
            rows_per_image: Some(height),
        },
        size,
    );
    texture.create_view(&wgpu::TextureViewDescriptor::default())
}

/// Binds `sampler` and `views` in binding order (the sampler first when `sampler_first`).
pub(crate) fn textures_bind_group(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    sampler: &wgpu::Sampler,
    views: &[&wgpu::TextureView],
    sampler_first: bool,
) -> wgpu::BindGroup {
    let offset = u32::from(sampler_first);
    let mut entries: Vec<wgpu::BindGroupEntry<'_>> = views
        .iter()
        .enumerate()
        .map(|(i, view)| wgpu::BindGroupEntry {
            binding: i as u32 + offset,
            resource: wgpu::BindingResource::TextureView(view),
        })
        .collect();
    entries.push(wgpu::BindGroupEntry {
        binding: if sampler_first { 0 } else { views.len() as u32 },
        resource: wgpu::BindingResource::Sampler(sampler),
    });
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("tile_bind_group"),
        layout,
        entries: &entries,
    })
}

/// The linear, edge-clamped sampler tiles are drawn with.
pub(crate) fn tile_sampler(device: &wgpu::Device) -> wgpu::Sampler {
    device.create_sampler(&wgpu::SamplerDescriptor {
        label: Some("tile_sampler"),
        address_mode_u: wgpu::AddressMode::ClampToEdge,
        address_mode_v: wgpu::AddressMode::ClampToEdge,
        mag_filter: wgpu::FilterMode::Linear,
        min_filter: wgpu::FilterMode::Linear,
        ..Default::default()
    })
}
