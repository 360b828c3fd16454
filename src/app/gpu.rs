//! The shell's GPU: eframe's options (a wgpu device with the adapter's full features and
//! limits, which burn shares), the long-lived renderers put in egui_wgpu's callback resources,
//! the burn device made on that same wgpu device on first use, and freeing the GPU resources of
//! closed layers at the next frame.

use cs_models::burn::tensor::Device;
use cs_models::device::ComputeDevice;
use cs_render::{CellRenderer, ChannelTileRenderer, TileRenderer};

use crate::document::Evictions;
use crate::layers::slide_layer::GPU_TILE_BUDGET_BYTES;

/// GPU memory for transcript density images (2 MB each at 1024 bins a side).
const GPU_DENSITY_BUDGET_BYTES: usize = 64 << 20;
use crate::ui::models_tab::GpuAdapter;

/// The window icon, from `assets/icon.png`.
const ICON_PNG: &[u8] = include_bytes!("../../assets/icon.png");

/// eframe options for the main window.
pub fn native_options() -> eframe::NativeOptions {
    let mut viewport = egui::ViewportBuilder::default();
    match eframe::icon_data::from_png_bytes(ICON_PNG) {
        Ok(icon) => viewport = viewport.with_icon(icon),
        Err(error) => log::warn!("window icon not decoded: {error}"),
    }
    let mut setup = eframe::egui_wgpu::WgpuSetupCreateNew::without_display_handle();
    // The adapter's full features and limits: GPU models (burn, through cubecl) read capabilities
    // from the adapter and share this device, and large cell overlays want large buffers.
    setup.device_descriptor = std::sync::Arc::new(|adapter| {
        let limits = if adapter.get_info().backend == wgpu::Backend::Gl {
            wgpu::Limits::downlevel_webgl2_defaults().using_resolution(adapter.limits())
        } else {
            adapter.limits()
        };
        wgpu::DeviceDescriptor {
            label: Some("cellsymphony device"),
            required_features: adapter.features(),
            required_limits: limits,
            ..Default::default()
        }
    });
    let wgpu_options = eframe::egui_wgpu::WgpuConfiguration {
        wgpu_setup: eframe::egui_wgpu::WgpuSetup::CreateNew(setup),
        ..Default::default()
    };
    eframe::NativeOptions {
        wgpu_options,
        viewport: viewport
            .with_title("CellSymphony Viewer")
            .with_app_id("cellsymphony")
            .with_inner_size([1400.0, 900.0])
            .with_min_inner_size([640.0, 420.0])
            .with_drag_and_drop(true),
        ..Default::default()
    }
}

/// eframe's wgpu device, for burn to share.
#[derive(Clone)]
struct GpuShare {
    instance: wgpu::Instance,
    adapter: wgpu::Adapter,
    device: wgpu::Device,
    queue: wgpu::Queue,
}

/// What the shell holds of the GPU.
pub struct GpuState {
    /// False when eframe gave no wgpu device.
    pub ready: bool,
    share: Option<GpuShare>,
    /// burn's device on eframe's wgpu device, registered once.
    burn_device: Option<Device>,
    /// The renderers still hold the last export's draw data (dropped at the next frame).
    pub forget_export_frames: bool,
}

impl GpuState {
    /// Puts the renderers in egui_wgpu's callback resources (when eframe has a wgpu device).
    pub fn new(cc: &eframe::CreationContext<'_>) -> Self {
        let Some(render_state) = &cc.wgpu_render_state else {
            return Self {
                ready: false,
                share: None,
                burn_device: None,
                forget_export_frames: false,
            };
        };
        let tiles = TileRenderer::new(&render_state.device, render_state.target_format, GPU_TILE_BUDGET_BYTES);
        let cells = CellRenderer::new(&render_state.device, render_state.target_format);
        let channels = ChannelTileRenderer::new(
            &render_state.device,
            &render_state.queue,
            render_state.target_format,
            GPU_TILE_BUDGET_BYTES / 2,
        );
        let densities = crate::viewer::paint::TranscriptDensityRenderer(ChannelTileRenderer::new(
            &render_state.device,
            &render_state.queue,
            render_state.target_format,
            GPU_DENSITY_BUDGET_BYTES,
        ));
        let mut renderer = render_state.renderer.write();
        renderer.callback_resources.insert(tiles);
        renderer.callback_resources.insert(densities);
        renderer.callback_resources.insert(channels);
        renderer.callback_resources.insert(cells);
        let info = render_state.adapter.get_info();
        log::info!(
            "rendering on {} ({:?}, {:?})",
            info.name,
            info.device_type,
            info.backend
        );
        Self {
            ready: true,
            share: Some(GpuShare {
                instance: render_state.instance.clone(),
                adapter: render_state.adapter.clone(),
                device: render_state.device.clone(),
                queue: render_state.queue.clone(),
            }),
            burn_device: None,
            forget_export_frames: false,
        }
    }

    /// The adapter as the Models tab describes it.
    pub fn adapter(&self) -> Option<GpuAdapter> {
        self.share.as_ref().map(|share| {
            let info = share.adapter.get_info();
            GpuAdapter {
                name: info.name,
                software: info.device_type == wgpu::DeviceType::Cpu,
            }
        })
    }

    /// The burn device for `kind`; the GPU one is registered on eframe's device once.
    pub fn burn_device(&mut self, kind: ComputeDevice) -> anyhow::Result<Device> {
        match kind {
            ComputeDevice::Cpu => Ok(cs_models::cpu_device()),
            ComputeDevice::Gpu => {
                if let Some(device) = &self.burn_device {
                    return Ok(device.clone());
                }
                let share = self
                    .share
                    .clone()
                    .ok_or_else(|| anyhow::anyhow!("no GPU device: choose CPU"))?;
                let device =
                    cs_models::device::shared_gpu_device(share.instance, share.adapter, share.device, share.queue)?;
                self.burn_device = Some(device.clone());
                Ok(device)
            }
        }
    }
}

/// Frees the GPU resources of layers that closed (the renderers live in egui_wgpu's callback
/// resources, reachable only through the frame).
pub fn flush_evictions(evictions: &mut Evictions, frame: &eframe::Frame) {
    if evictions.tile_sources.is_empty() && evictions.channel_sources.is_empty() && evictions.geometries.is_empty() {
        return;
    }
    let Evictions {
        tile_sources,
        channel_sources,
        geometries,
    } = std::mem::take(evictions);
    if let Some(render_state) = frame.wgpu_render_state() {
        let mut renderer = render_state.renderer.write();
        if let Some(tile_renderer) = renderer.callback_resources.get_mut::<TileRenderer>() {
            for source_id in tile_sources {
                tile_renderer.evict_source(source_id);
            }
        }
        if let Some(channel_renderer) = renderer.callback_resources.get_mut::<ChannelTileRenderer>() {
            for source_id in channel_sources {
                channel_renderer.evict_source(source_id);
            }
        }
        if let Some(cell_renderer) = renderer.callback_resources.get_mut::<CellRenderer>() {
            for id in geometries {
                cell_renderer.evict(id);
            }
        }
    }
}
