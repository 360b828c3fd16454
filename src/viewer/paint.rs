//! How the layers reach the GPU inside egui: the long-lived renderers (`cs_render`'s tile and cell
//! renderers) live in egui_wgpu's callback resources, and each view hands its draw list to them
//! through a paint callback.

use cs_render::{CellRenderer, ChannelTileRenderer, TileRenderer};
use eframe::egui_wgpu;

/// A long-lived renderer in egui_wgpu's callback resources that prepares one view's draw list
/// and paints it (the slide tiles, the cells).
pub trait ViewRenderer: Send + Sync + 'static {
    type DrawList: Send + Sync + 'static;
    fn prepare_view(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        view: cs_render::FrameId,
        list: &Self::DrawList,
    );
    fn paint_view(&self, pass: &mut wgpu::RenderPass<'static>, view: cs_render::FrameId);
}

/// A renderer's own `prepare` and `paint` (or those of the renderer it wraps, `$inner`), as a
/// [`ViewRenderer`].
macro_rules! view_renderer {
    ($renderer:ty, $list:ty $(, $inner:tt)?) => {
        impl ViewRenderer for $renderer {
            type DrawList = $list;
            fn prepare_view(
                &mut self,
                device: &wgpu::Device,
                queue: &wgpu::Queue,
                view: cs_render::FrameId,
                list: &Self::DrawList,
            ) {
                self$(.$inner)?.prepare(device, queue, view, list);
            }
            fn paint_view(&self, pass: &mut wgpu::RenderPass<'static>, view: cs_render::FrameId) {
                self$(.$inner)?.paint(pass, view);
            }
        }
    };
}

view_renderer!(TileRenderer, cs_render::TileDrawList);
view_renderer!(ChannelTileRenderer, cs_render::ChannelDrawList);
view_renderer!(CellRenderer, cs_render::CellDrawList);

/// The transcripts' density images: a channel renderer of their own, so that they and the
/// morphology channels, both drawn in one view, keep separate per-view draw data.
pub struct TranscriptDensityRenderer(pub ChannelTileRenderer);

view_renderer!(TranscriptDensityRenderer, cs_render::ChannelDrawList, 0);

/// eframe's wgpu paint callback handing one view's draw list to renderer `R`.
pub struct RendererCallback<R: ViewRenderer> {
    pub frame_id: cs_render::FrameId,
    pub list: R::DrawList,
    renderer: std::marker::PhantomData<fn() -> R>,
}

impl<R: ViewRenderer> RendererCallback<R> {
    pub fn new(frame_id: cs_render::FrameId, list: R::DrawList) -> Self {
        Self {
            frame_id,
            list,
            renderer: std::marker::PhantomData,
        }
    }
}

impl<R: ViewRenderer> egui_wgpu::CallbackTrait for RendererCallback<R> {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen_descriptor: &egui_wgpu::ScreenDescriptor,
        _egui_encoder: &mut wgpu::CommandEncoder,
        callback_resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if let Some(renderer) = callback_resources.get_mut::<R>() {
            renderer.prepare_view(device, queue, self.frame_id, &self.list);
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        callback_resources: &egui_wgpu::CallbackResources,
    ) {
        if let Some(renderer) = callback_resources.get::<R>() {
            renderer.paint_view(render_pass, self.frame_id);
        }
    }
}
