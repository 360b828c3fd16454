//! What the renderers' pipelines have in common: the compiled-in shaders, bind group layout
//! entries, and one render pipeline per [`PipelineSpec`] (no depth, one colour target).

/// `tiles.wgsl`: slide tiles as instanced, textured quads.
pub(crate) const TILES_WGSL: &str = include_str!("../../../shaders/tiles.wgsl");
/// `channels.wgsl`: fluorescence channel tiles, composited additively.
pub(crate) const CHANNELS_WGSL: &str = include_str!("../../../shaders/channels.wgsl");
/// `cells.wgsl`: cell markers, transcripts, fills and outlines.
pub(crate) const CELLS_WGSL: &str = include_str!("../../../shaders/cells.wgsl");
/// `cell_overview.wgsl`: the zoomed-out overview texture composited onto the view.
pub(crate) const CELL_OVERVIEW_WGSL: &str = include_str!("../../../shaders/cell_overview.wgsl");

/// The shader module of one WGSL source, labelled with its file name.
pub(crate) fn shader_module(device: &wgpu::Device, file_name: &str, source: &str) -> wgpu::ShaderModule {
    device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(file_name),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    })
}

/// A uniform buffer binding visible to `visibility`.
pub(crate) fn uniform_entry(binding: u32, visibility: wgpu::ShaderStages) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

/// A filterable 2D float texture, sampled by the fragment shader.
pub(crate) fn texture_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty: wgpu::BindingType::Texture {
            sample_type: wgpu::TextureSampleType::Float { filterable: true },
            view_dimension: wgpu::TextureViewDimension::D2,
            multisampled: false,
        },
        count: None,
    }
}

/// A filtering sampler for the fragment shader.
pub(crate) fn sampler_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
        count: None,
    }
}

/// One render pipeline: a full-screen, instanced or vertex-buffer pass with no depth and one
/// colour target.
pub(crate) struct PipelineSpec<'a> {
    pub label: &'a str,
    pub layout: &'a wgpu::PipelineLayout,
    pub shader: &'a wgpu::ShaderModule,
    pub vertex: &'a str,
    /// The vertex buffers (none: positions come from the vertex index and storage buffers).
    pub buffers: &'a [Option<wgpu::VertexBufferLayout<'a>>],
    pub fragment: &'a str,
    pub topology: wgpu::PrimitiveTopology,
    pub format: wgpu::TextureFormat,
    pub blend: wgpu::BlendState,
}

pub(crate) fn render_pipeline(device: &wgpu::Device, spec: &PipelineSpec<'_>) -> wgpu::RenderPipeline {
    device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some(spec.label),
        layout: Some(spec.layout),
        vertex: wgpu::VertexState {
            module: spec.shader,
            entry_point: Some(spec.vertex),
            compilation_options: Default::default(),
            buffers: spec.buffers,
        },
        primitive: wgpu::PrimitiveState {
            topology: spec.topology,
            cull_mode: None,
            ..Default::default()
        },
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        fragment: Some(wgpu::FragmentState {
            module: spec.shader,
            entry_point: Some(spec.fragment),
            compilation_options: Default::default(),
            targets: &[Some(wgpu::ColorTargetState {
                format: spec.format,
                blend: Some(spec.blend),
                write_mask: wgpu::ColorWrites::ALL,
            })],
        }),
        multiview_mask: None,
        cache: None,
    })
}
