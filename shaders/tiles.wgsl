// Slide tiles: one textured quad per tile instance.
// Each instance gives the tile's corners in clip space as an origin and two edge vectors, computed on
// the CPU in f64 (so a rotated or flipped slide, and deep zoom on a 100k px slide, stay exact).

struct TileInstance {
    @location(0) origin_clip: vec2<f32>,
    @location(1) axis_x_clip: vec2<f32>,
    @location(2) axis_y_clip: vec2<f32>,
    // x: layer opacity; y: unused.
    @location(3) opacity_pad: vec2<f32>,
};

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
    @location(1) opacity: f32,
};

@group(0) @binding(0) var tile_texture: texture_2d<f32>;
@group(0) @binding(1) var tile_sampler: sampler;

@vertex
fn vs_main(@builtin(vertex_index) vertex_index: u32, tile: TileInstance) -> VertexOut {
    // Triangle strip: (0,0) (1,0) (0,1) (1,1).
    let corner = vec2<f32>(f32(vertex_index & 1u), f32(vertex_index >> 1u));
    let pos_clip = tile.origin_clip + corner.x * tile.axis_x_clip + corner.y * tile.axis_y_clip;
    var out: VertexOut;
    out.position = vec4<f32>(pos_clip, 0.0, 1.0);
    out.uv = corner;
    out.opacity = tile.opacity_pad.x;
    return out;
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    let texel = textureSample(tile_texture, tile_sampler, in.uv);
    // Unscanned (transparent) areas of a slide show as bright glass, as in a scanner's viewer.
    let rgb = mix(vec3<f32>(1.0, 1.0, 1.0), texel.rgb, texel.a);
    return vec4<f32>(rgb, in.opacity);
}
