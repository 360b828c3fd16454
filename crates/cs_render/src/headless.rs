//! A wgpu device and an offscreen colour target without any window, for benchmarks and tests
//! (lavapipe in CI, or a real GPU when one is present).

/// Creates an instance, adapter and device with no surface. `prefer_cpu` picks a software adapter
/// (lavapipe) when several are present.
pub fn create_headless_device(prefer_cpu: bool) -> Result<(wgpu::Adapter, wgpu::Device, wgpu::Queue), String> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    // Vulkan/Metal/DX12 first; GL only when none of those has an adapter (it probes noisily).
    let mut adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
    if adapters.is_empty() {
        adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    }
    if adapters.is_empty() {
        return Err("no wgpu adapter found (install mesa-vulkan-drivers for lavapipe)".to_owned());
    }
    adapters.sort_by_key(|a| {
        let info = a.get_info();
        let device_rank = match (info.device_type, prefer_cpu) {
            (wgpu::DeviceType::Cpu, true) => 0,
            (wgpu::DeviceType::DiscreteGpu, _) => 1,
            (wgpu::DeviceType::IntegratedGpu, _) => 2,
            (wgpu::DeviceType::Cpu, false) => 4,
            _ => 3,
        };
        let backend_rank = match info.backend {
            wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
            _ => 1,
        };
        (backend_rank, device_rank)
    });
    let adapter = adapters.swap_remove(0);
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("cellsymphony_headless"),
        required_features: wgpu::Features::empty(),
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .map_err(|e| format!("cannot create a device on {}: {e}", adapter.get_info().name))?;
    Ok((adapter, device, queue))
}

/// An offscreen colour target that can be read back as RGBA8.
pub struct HeadlessTarget {
    pub texture: wgpu::Texture,
    pub view: wgpu::TextureView,
    pub width: u32,
    pub height: u32,
    pub format: wgpu::TextureFormat,
}

impl HeadlessTarget {
    pub fn new(device: &wgpu::Device, width: u32, height: u32) -> Self {
        Self::with_format(device, width, height, wgpu::TextureFormat::Rgba8Unorm)
    }

    /// A target in `format` (the format of the pipelines that will draw into it: RGBA8 or BGRA8,
    /// plain or sRGB); read back as RGBA8 all the same.
    pub fn with_format(device: &wgpu::Device, width: u32, height: u32, format: wgpu::TextureFormat) -> Self {
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("headless_target"),
            size: wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        });
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        Self {
            texture,
            view,
            width,
            height,
            format,
        }
    }

    /// Copies the target to the CPU as tightly packed RGBA8 rows. Blocks until the GPU is done.
    pub fn read_rgba(&self, device: &wgpu::Device, queue: &wgpu::Queue) -> Result<Vec<u8>, String> {
        let unpadded = 4 * self.width;
        let padded = unpadded.div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("headless_readback"),
            size: u64::from(padded) * u64::from(self.height),
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("readback"),
        });
        encoder.copy_texture_to_buffer(
            wgpu::TexelCopyTextureInfo {
                texture: &self.texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::TexelCopyBufferInfo {
                buffer: &buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(padded),
                    rows_per_image: Some(self.height),
                },
            },
            wgpu::Extent3d {
                width: self.width,
                height: self.height,
                depth_or_array_layers: 1,
            },
        );
        queue.submit([encoder.finish()]);
        let slice = buffer.slice(..);
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        slice.map_async(wgpu::MapMode::Read, move |result| {
            let _ = sender.send(result);
        });
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| format!("GPU did not finish: {e}"))?;
        receiver
            .recv()
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot map readback buffer: {e}"))?;
        let data = slice
            .get_mapped_range()
            .map_err(|e| format!("cannot read mapped buffer: {e}"))?;
        let mut out = Vec::with_capacity((unpadded * self.height) as usize);
        for row in data.chunks(padded as usize) {
            out.extend_from_slice(&row[..unpadded as usize]);
        }
        drop(data);
        buffer.unmap();
        if matches!(
            self.format,
            wgpu::TextureFormat::Bgra8Unorm | wgpu::TextureFormat::Bgra8UnormSrgb
        ) {
            for pixel in out.chunks_exact_mut(4) {
                pixel.swap(0, 2);
            }
        }
        Ok(out)
    }
}
