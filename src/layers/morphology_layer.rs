//! The morphology layer: a Xenium bundle's fluorescence images (DAPI, the boundary and interior
//! stains, proteins) placed in `world` by their pixel size, each channel's tiles loaded off the
//! UI thread into a RAM cache, each channel's display (visible, colour, contrast window, gamma)
//! and histogram, and the per-frame plan turned into a [`ChannelDrawList`] that the GPU
//! composites. No egui here.

use std::path::PathBuf;
use std::sync::Arc;

use cs_render::{CHANNELS_PER_QUAD, ChannelDisplay, ChannelDrawList, ChannelQuad, ChannelTile, ChannelTileKey};
use cs_slide::{Gray16Image, SlideError, SlideSource, TileKey, TileLoader, TilePyramid, plan_tiles};
use glam::{DAffine2, DVec2};

use crate::layers::camera::{Camera, Viewport};
use crate::layers::slide_layer::{FrameStats, RAM_CACHE_BYTES, TILE_SIZE_PX, ViewOfImage, tile_quad_in_clip};
use crate::layers::tile_store::TileStore;

const LOADER_THREADS: usize = 2;
/// Bins of a channel's histogram, over 0..=`ChannelHistogram::top_value`.
pub const HISTOGRAM_BINS: usize = 256;

/// One channel's tile: which channel, which tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelKey {
    pub channel: u16,
    pub tile: TileKey,
}

/// How one channel is shown. `window_min`/`window_max` are raw sample values.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChannelStyle {
    pub visible: bool,
    pub color: [u8; 3],
    pub window_min: f32,
    pub window_max: f32,
    pub gamma: f32,
}

/// A channel's intensity histogram (of the coarsest level, i.e. the whole image) and the window
/// it suggests (0.1 and 99.9 percentiles, zeros ignored).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelHistogram {
    pub bins: Vec<u32>,
    /// The value the last bin ends at.
    pub top_value: u16,
    pub auto_window: (u16, u16),
}

impl ChannelHistogram {
    pub fn of(values: &[u16], bits_per_sample: u8) -> Self {
        let auto_window = cs_slide::percentile_window(values, 0.001, 0.999);
        // The bins span the data (up to 1.5x its 99.9 percentile), not the 16-bit range: most
        // stains use the lowest few thousand values.
        let full_range = if bits_per_sample > 8 { u16::MAX } else { 255 };
        let top_value = ((f32::from(auto_window.1) * 1.5) as u32).clamp(16, u32::from(full_range)) as u16;
        let mut bins = vec![0u32; HISTOGRAM_BINS];
        for &v in values {
            if v > 0 {
                let bin = (usize::from(v) * HISTOGRAM_BINS / (usize::from(top_value) + 1)).min(HISTOGRAM_BINS - 1);
                bins[bin] += 1;
            }
        }
        Self {
            bins,
            top_value,
            auto_window,
        }
    }
}

/// One channel of the layer.
#[derive(Debug, Clone)]
pub struct MorphologyChannel {
    pub name: String,
    pub bits_per_sample: u8,
    /// Which file, and which channel of it.
    pub source: usize,
    pub channel_in_source: usize,
    pub style: ChannelStyle,
    pub histogram: ChannelHistogram,
}

/// The morphology images as opened off the UI thread, before the layer (with its loader threads)
/// is made on the UI thread.
pub struct OpenedMorphology {
    pub paths: Vec<PathBuf>,
    pub sources: Vec<Arc<dyn SlideSource>>,
    pub channels: Vec<MorphologyChannel>,
    /// Where level-0 pixels lie in world µm (the bundle's pixel size, or the container's
    /// transformation).
    pub world_from_image: DAffine2,
    /// Files left out, and why (a different size, unreadable).
    pub warnings: Vec<String>,
}

pub struct MorphologyLayer {
    /// Distinguishes this layer's GPU textures from those of layers opened before.
    pub source_id: u64,
    pub paths: Vec<PathBuf>,
    pub sources: Vec<Arc<dyn SlideSource>>,
    pub channels: Vec<MorphologyChannel>,
    pub pyramid: TilePyramid,
    /// Level-0 image pixels to world micrometres (the pixel size; Xenium images need no alignment).
    pub world_from_image: DAffine2,
    pub visible: bool,
    pub opacity: f32,
    tiles: TileStore<ChannelKey, Gray16Image>,
    /// The tiles the last frame drew at its target level (for contrast from the view).
    last_drawn: Vec<TileKey>,
    pub last_frame: FrameStats,
}

impl MorphologyLayer {
    pub fn new(opened: OpenedMorphology, source_id: u64, notify: Arc<dyn Fn() + Send + Sync>) -> std::io::Result<Self> {
        let pyramid = TilePyramid::new(opened.sources[0].metadata().levels.clone(), TILE_SIZE_PX);
        let sources = opened.sources.clone();
        let slots: Vec<(usize, usize)> = opened
            .channels
            .iter()
            .map(|c| (c.source, c.channel_in_source))
            .collect();
        let read_pyramid = pyramid.clone();
        let read: cs_slide::TileReader<ChannelKey, Gray16Image> = Arc::new(move |key: ChannelKey| {
            let (source, channel) = slots[usize::from(key.channel)];
            let (pos_in_slide_px, level, width, height) = read_pyramid.read_args(key.tile);
            sources[source].read_channel_region(pos_in_slide_px, level, width, height, channel)
        });
        let loader = TileLoader::with_reader(read, "morphology-tiles", LOADER_THREADS, notify)?;
        Ok(Self {
            source_id,
            paths: opened.paths,
            sources: opened.sources,
            channels: opened.channels,
            pyramid,
            world_from_image: opened.world_from_image,
            visible: true,
            opacity: 1.0,
            tiles: TileStore::new(loader, RAM_CACHE_BYTES / 2),
            last_drawn: Vec::new(),
            last_frame: FrameStats::default(),
        })
    }

    /// The image's level-0 rectangle in world coordinates (min, max).
    pub fn bounds_in_world(&self) -> (DVec2, DVec2) {
        let (w, h) = self.sources[0].metadata().level0_size_px();
        let a = self.world_from_image.transform_point2(DVec2::ZERO);
        let b = self.world_from_image.transform_point2(DVec2::new(w as f64, h as f64));
        (a.min(b), a.max(b))
    }

    /// Moves finished tiles into the RAM cache. Returns how many arrived.
    pub fn receive_tiles(&mut self) -> usize {
        self.tiles.receive()
    }

    pub fn is_loading(&self) -> bool {
        self.tiles.is_loading()
    }

    pub fn failed_tile_count(&self) -> usize {
        self.tiles.failed_count()
    }

    /// One representative tile error, for the panel.
    pub fn first_tile_error(&self) -> Option<&SlideError> {
        self.tiles.first_error()
    }

    fn visible_channels(&self) -> Vec<u16> {
        self.channels
            .iter()
            .enumerate()
            .filter(|(_, c)| c.style.visible)
            .map(|(i, _)| i as u16)
            .collect()
    }

    /// Plans the frame for every visible channel, updates the loader's wanted list, and returns
    /// what to draw: one quad per tile compositing its channels (coarser stand-ins first). A tile
    /// counts as ready once every visible channel of it is loaded, so none is drawn half done.
    pub fn frame(&mut self, camera: &Camera, viewport: &Viewport) -> ChannelDrawList {
        let ViewOfImage {
            clip_from_slide,
            view,
            slide_px_per_screen_px,
        } = ViewOfImage::new(camera, viewport, self.world_from_image);
        let visible = self.visible_channels();
        let key = |channel: u16, tile: TileKey| ChannelKey { channel, tile };
        let plan = plan_tiles(
            &self.pyramid,
            &view,
            slide_px_per_screen_px,
            |tile| visible.iter().all(|&c| self.tiles.is_ready(&key(c, *tile))),
            |tile| visible.iter().any(|&c| self.tiles.has_failed(&key(c, *tile))),
        );
        let fetch: Vec<ChannelKey> = plan
            .fetch
            .iter()
            .flat_map(|tile| visible.iter().map(move |&c| key(c, *tile)))
            .filter(|k| !self.tiles.is_ready(k) && !self.tiles.has_failed(k))
            .collect();
        self.tiles.want(fetch);
        let mut quads = Vec::with_capacity(plan.draw.len());
        let mut drawn_tiles = 0;
        self.last_drawn.clear();
        for tile in &plan.draw {
            if tile.level == plan.target_level {
                self.last_drawn.push(*tile);
            }
            let [origin_clip, axis_x_clip, axis_y_clip] = tile_quad_in_clip(&self.pyramid, *tile, clip_from_slide);
            let channels: Vec<ChannelTile> = visible
                .iter()
                .filter_map(|&c| {
                    let image = self.tiles.get(&key(c, *tile))?;
                    let style = self.channels[usize::from(c)].style;
                    Some(ChannelTile {
                        key: ChannelTileKey {
                            source_id: self.source_id,
                            channel: u32::from(c),
                            level: tile.level,
                            col: tile.col,
                            row: tile.row,
                        },
                        image,
                        display: ChannelDisplay {
                            color_rgb: style.color.map(|v| f32::from(v) / 255.0),
                            window_min: style.window_min,
                            window_max: style.window_max,
                            gamma: style.gamma,
                        },
                    })
                })
                .collect();
            if channels.is_empty() {
                continue;
            }
            drawn_tiles += 1;
            for (group, chunk) in channels.chunks(CHANNELS_PER_QUAD).enumerate() {
                quads.push(ChannelQuad {
                    origin_clip,
                    axis_x_clip,
                    axis_y_clip,
                    channels: chunk.to_vec(),
                    additive: group > 0,
                    alpha_from_intensity: false,
                });
            }
        }
        self.last_frame = FrameStats {
            target_level: plan.target_level,
            visible_tiles: plan.visible_count,
            ready_tiles: plan.ready_count,
            drawn_tiles,
            slide_px_per_screen_px,
        };
        ChannelDrawList {
            quads,
            opacity: self.opacity,
        }
    }

    /// A contrast window for `channel` from what the view shows now (0.1 and 99.9 percentiles of
    /// its loaded tiles at the view's level), or None when none is loaded.
    pub fn window_from_view(&self, channel: usize) -> Option<(u16, u16)> {
        let mut values = Vec::new();
        for tile in &self.last_drawn {
            if let Some(image) = self.tiles.peek(&ChannelKey {
                channel: channel as u16,
                tile: *tile,
            }) {
                values.extend_from_slice(&image.pixels);
            }
        }
        (!values.is_empty()).then(|| cs_slide::percentile_window(&values, 0.001, 0.999))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_spans_the_data_and_suggests_a_window() {
        let mut values: Vec<u16> = (1..=1000).collect();
        values.extend([0; 500]);
        let histogram = ChannelHistogram::of(&values, 16);
        assert_eq!(histogram.auto_window, (1, 999));
        assert_eq!(histogram.top_value, 1498);
        assert_eq!(
            histogram.bins.iter().sum::<u32>(),
            1000,
            "zeros (padding) are not counted"
        );
        let eight_bit = ChannelHistogram::of(&[200; 10], 8);
        assert_eq!(eight_bit.top_value, 255);
    }
}
