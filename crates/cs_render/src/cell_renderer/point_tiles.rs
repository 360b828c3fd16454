//! Point tiles: each part of a point layer (one tile of the transcript index) drawn once into a
//! texture at a power-of-two µm per texel, then shown as one textured quad a frame. Panning at 40x
//! over a hundred thousand transcripts then costs a few quads, not a hundred thousand instanced
//! markers (which a software rasteriser draws at about a microsecond each); a tile is drawn again
//! only when its points, colours, texel size or marker size change. Each texture has a margin of
//! one marker so that markers at the tile's edge are whole; neighbouring quads overlap there.

use std::hash::{Hash, Hasher};

use super::{
    CellRenderer, CompositeUniform, Pass, PointLayerDraw, PreparedDraw, PreparedView, draw_markers_into,
    marker_texture, texture_frame_uniform, write_palette,
};

/// GPU memory kept for point tiles; the least recently drawn go first.
const POINT_TILE_BUDGET_BYTES: usize = 192 << 20;
/// A tile whose texture would be larger than this a side is drawn as markers.
pub const POINT_TILE_MAX_SIDE: u32 = 2048;

/// How a point layer is drawn through tiles: texels of this many µm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointRaster {
    pub um_per_texel: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PointTileKey {
    styles_id: u64,
    palette_hash: u64,
    um_per_texel_bits: u32,
    radius_bits: u32,
}

pub(super) struct PointTile {
    key: PointTileKey,
    /// Changes when the texture does (so views rebuild their bind groups).
    generation: u64,
    view: wgpu::TextureView,
    size: [u32; 2],
    min_um: [f32; 2],
    max_um: [f32; 2],
    last_used: u64,
}

impl PointTile {
    fn bytes(&self) -> usize {
        4 * self.size[0] as usize * self.size[1] as usize
    }
}

/// A view's composite uniform and bind group for one drawn tile.
pub(super) struct TileComposite {
    uniform: wgpu::Buffer,
    pub(super) bound: Option<(u64, wgpu::BindGroup)>,
}

fn palette_hash(palette: &[[f32; 4]]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for c in palette {
        for v in c {
            v.to_bits().hash(&mut hasher);
        }
    }
    hasher.finish()
}

impl CellRenderer {
    /// Draws the tiles of `layer` that are new or changed into their textures and records one
    /// composite quad per part for `prepared`. Parts too large for a texture come back to be drawn
    /// as markers.
    pub(super) fn prepare_point_tiles(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        clip_from_world: &[[f32; 2]; 3],
        layer: &PointLayerDraw,
        raster: PointRaster,
        prepared: &mut PreparedView,
    ) -> (Vec<PreparedDraw>, Vec<usize>) {
        self.point_tile_clock += 1;
        let clock = self.point_tile_clock;
        let palette = palette_hash(&layer.palette);
        let texel = raster.um_per_texel.max(1e-6);
        let radius = layer.radius_px.max(0.5);
        // A whole number of texels, so texels line up with the part's box.
        let margin_um = (radius + 1.5).ceil() * texel;
        let mut palette_written = false;
        let (mut draws, mut as_markers) = (Vec::new(), Vec::new());
        for (i, part) in layer.parts.iter().enumerate() {
            let id = part.points.id;
            if part.points.is_empty() || part.visible.is_empty() {
                continue;
            }
            let [lo, hi] = part.bounds_um;
            let min_um = [lo[0] - margin_um, lo[1] - margin_um];
            let max_um = [hi[0] + margin_um, hi[1] + margin_um];
            let size = [
                ((max_um[0] - min_um[0]) / texel).ceil().max(1.0) as u32,
                ((max_um[1] - min_um[1]) / texel).ceil().max(1.0) as u32,
            ];
            if size[0] > POINT_TILE_MAX_SIDE || size[1] > POINT_TILE_MAX_SIDE {
                as_markers.push(i);
                continue;
            }
            let key = PointTileKey {
                styles_id: part.styles.id,
                palette_hash: palette,
                um_per_texel_bits: texel.to_bits(),
                radius_bits: radius.to_bits(),
            };
            if self.point_tiles.get(&id).is_none_or(|t| t.key != key) {
                if !palette_written {
                    write_palette(
                        device,
                        queue,
                        &self.frame_layout,
                        &self.point_tile_uniform,
                        &mut self.point_tile_frame,
                        &layer.palette,
                    );
                    palette_written = true;
                }
                if !self.render_point_tile(device, queue, id, key, size, min_um, max_um, radius) {
                    as_markers.push(i);
                    continue;
                }
            }
            let Some(tile) = self.point_tiles.get_mut(&id) else {
                continue;
            };
            tile.last_used = clock;
            let slot = draws.len();
            let composite = CompositeUniform {
                clip_x: clip_from_world[0],
                clip_y: clip_from_world[1],
                clip_t: clip_from_world[2],
                min_um: tile.min_um,
                max_um: tile.max_um,
                opacity: layer.opacity,
                target_is_srgb: u32::from(self.target_is_srgb),
            };
            if prepared.tile_composites.len() <= slot {
                prepared.tile_composites.push(TileComposite {
                    uniform: device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("point_tile_composite_uniform"),
                        size: std::mem::size_of::<CompositeUniform>() as u64,
                        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    }),
                    bound: None,
                });
            }
            let composite_slot = &mut prepared.tile_composites[slot];
            queue.write_buffer(&composite_slot.uniform, 0, bytemuck::bytes_of(&composite));
            if composite_slot.bound.as_ref().is_none_or(|(g, _)| *g != tile.generation) {
                let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("point_tile_composite_bind_group"),
                    layout: &self.composite_layout,
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: composite_slot.uniform.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: wgpu::BindingResource::TextureView(&tile.view),
                        },
                        wgpu::BindGroupEntry {
                            binding: 2,
                            resource: wgpu::BindingResource::Sampler(&self.overview_sampler),
                        },
                    ],
                });
                composite_slot.bound = Some((tile.generation, bind_group));
            }
            draws.push(PreparedDraw {
                pass: Pass::PointTileComposite,
                data_id: slot as u64,
                vertices: 4,
                ranges: std::iter::once(0..1).collect(),
            });
        }
        // Slots not used this frame let go of their textures (trimmed tiles are then freed).
        for unused in prepared.tile_composites.iter_mut().skip(draws.len()) {
            unused.bound = None;
        }
        self.trim_point_tiles();
        (draws, as_markers)
    }

    /// Draws one part's markers into its texture (a new one, or the old one when the size is the
    /// same). False when the part's points are not on the GPU.
    #[allow(clippy::too_many_arguments)]
    fn render_point_tile(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        id: u64,
        key: PointTileKey,
        size: [u32; 2],
        min_um: [f32; 2],
        max_um: [f32; 2],
        radius_texels: f32,
    ) -> bool {
        let Some(data) = self.data.get(&id) else {
            return false;
        };
        let reuse = self.point_tiles.remove(&id).filter(|t| t.size == size);
        let (view, generation) = match reuse {
            Some(t) => (t.view, t.generation),
            None => {
                let view = marker_texture(device, "point_tile", size);
                self.point_tile_generation += 1;
                (view, self.point_tile_generation)
            }
        };
        let uniform = texture_frame_uniform(min_um, max_um, size, radius_texels, radius_texels);
        queue.write_buffer(&self.point_tile_uniform, 0, bytemuck::bytes_of(&uniform));
        draw_markers_into(
            device,
            queue,
            &view,
            self.pipelines.get(&Pass::PointTilePoints),
            &self.point_tile_frame.bind_group,
            &data.points,
        );
        self.point_tile_renders += 1;
        self.point_tiles.insert(
            id,
            PointTile {
                key,
                generation,
                view,
                size,
                min_um,
                max_um,
                last_used: self.point_tile_clock,
            },
        );
        true
    }

    /// Drops the least recently drawn point tiles beyond the budget.
    fn trim_point_tiles(&mut self) {
        let mut total: usize = self.point_tiles.values().map(PointTile::bytes).sum();
        if total <= POINT_TILE_BUDGET_BYTES {
            return;
        }
        let mut by_age: Vec<(u64, u64)> = self.point_tiles.iter().map(|(id, t)| (t.last_used, *id)).collect();
        by_age.sort_unstable();
        for (last_used, id) in by_age {
            if total <= POINT_TILE_BUDGET_BYTES || last_used == self.point_tile_clock {
                break;
            }
            if let Some(tile) = self.point_tiles.remove(&id) {
                total -= tile.bytes();
            }
        }
    }

    /// Point tiles drawn into their textures since creation (for benchmarks and tests).
    pub fn point_tile_renders(&self) -> u64 {
        self.point_tile_renders
    }
}
