// Fluorescence channel tiles (16-bit stains stored as normalised R16Float): one quad per tile
// composites up to four channels, each in its colour over its contrast window (min, max as
// fractions of 65535) and gamma, added together. The quad is alpha-blended over what is below
// with the layer's opacity, so the stains show on black, or over the H&E when the opacity is
// below 1; quads of a fifth and later channels are added on top (the blend state says which).

struct ChannelInstance {
    @location(0) origin_clip: vec2<f32>,
    @location(1) axis_x_clip: vec2<f32>,
    @location(2) axis_y_clip: vec2<f32>,
    // x: layer opacity; y: 1 to take coverage from intensity (dark is transparent), else 0.
    @location(3) opacity_pad: vec2<f32>,
    // Per channel: rgb colour (0..1; black for an unused slot), a unused.
    @location(4) color0: vec4<f32>,
    @location(5) color1: vec4<f32>,
    @location(6) color2: vec4<f32>,
    @location(7) color3: vec4<f32>,
    // Per channel: x window min, y window max, z gamma, w unused.
    @location(8) window0: vec4<f32>,
    @location(9) window1: vec4<f32>,
    @location(10) window2: vec4<f32>,
    @location(11) window3: vec4<f32>,
};

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
    @location(1) @interpolate(flat) opacity: f32,
    @location(10) @interpolate(flat) alpha_from_intensity: f32,
    @location(2) @interpolate(flat) color0: vec3<f32>,
    @location(3) @interpolate(flat) color1: vec3<f32>,
    @location(4) @interpolate(flat) color2: vec3<f32>,
    @location(5) @interpolate(flat) color3: vec3<f32>,
    @location(6) @interpolate(flat) window0: vec3<f32>,
    @location(7) @interpolate(flat) window1: vec3<f32>,
    @location(8) @interpolate(flat) window2: vec3<f32>,
    @location(9) @interpolate(flat) window3: vec3<f32>,
};

@group(0) @binding(0) var channel_sampler: sampler;
@group(0) @binding(1) var channel0: texture_2d<f32>;
@group(0) @binding(2) var channel1: texture_2d<f32>;
@group(0) @binding(3) var channel2: texture_2d<f32>;
@group(0) @binding(4) var channel3: texture_2d<f32>;

@vertex
fn vs_main(@builtin(vertex_index) vertex_index: u32, tile: ChannelInstance) -> VertexOut {
    let corner = vec2<f32>(f32(vertex_index & 1u), f32(vertex_index >> 1u));
    let pos_clip = tile.origin_clip + corner.x * tile.axis_x_clip + corner.y * tile.axis_y_clip;
    var out: VertexOut;
    out.position = vec4<f32>(pos_clip, 0.0, 1.0);
    out.uv = corner;
    out.opacity = tile.opacity_pad.x;
    out.alpha_from_intensity = tile.opacity_pad.y;
    out.color0 = tile.color0.rgb;
    out.color1 = tile.color1.rgb;
    out.color2 = tile.color2.rgb;
    out.color3 = tile.color3.rgb;
    out.window0 = tile.window0.xyz;
    out.window1 = tile.window1.xyz;
    out.window2 = tile.window2.xyz;
    out.window3 = tile.window3.xyz;
    return out;
}

// A sample through its window and gamma, 0..1.
fn shaped(value: f32, window: vec3<f32>) -> f32 {
    let t = clamp((value - window.x) / max(window.y - window.x, 1e-7), 0.0, 1.0);
    return pow(t, max(window.z, 0.01));
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    var rgb = in.color0 * shaped(textureSample(channel0, channel_sampler, in.uv).r, in.window0);
    rgb += in.color1 * shaped(textureSample(channel1, channel_sampler, in.uv).r, in.window1);
    rgb += in.color2 * shaped(textureSample(channel2, channel_sampler, in.uv).r, in.window2);
    rgb += in.color3 * shaped(textureSample(channel3, channel_sampler, in.uv).r, in.window3);
    let shown = min(rgb, vec3<f32>(1.0));
    if (in.alpha_from_intensity > 0.5) {
        // The brightest component is the coverage; the colour keeps its hue at full strength.
        let coverage = max(shown.r, max(shown.g, shown.b));
        return vec4<f32>(shown / max(coverage, 1e-6), in.opacity * coverage);
    }
    return vec4<f32>(shown, in.opacity);
}
