// Cell overview composite: all cells pre-drawn as markers into one texture (redrawn only when the
// colouring changes), shown as a single quad while zoomed out, so a frame of a million cells costs
// one textured quad. The texture holds premultiplied, sRGB-encoded colour.

struct Composite {
    // clip = clip_x * x_um + clip_y * y_um + clip_t
    clip_x: vec2<f32>,
    clip_y: vec2<f32>,
    clip_t: vec2<f32>,
    // World box the texture covers: texel row 0 is min_um.y.
    min_um: vec2<f32>,
    max_um: vec2<f32>,
    opacity: f32,
    // 1 when the target stores sRGB (the texture is sRGB-encoded and must be linearised).
    target_is_srgb: u32,
};

@group(0) @binding(0) var<uniform> composite: Composite;
@group(0) @binding(1) var overview_texture: texture_2d<f32>;
@group(0) @binding(2) var overview_sampler: sampler;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

@vertex
fn vs_overview(@builtin(vertex_index) vertex_index: u32) -> VertexOut {
    // Triangle strip: (0,0) (1,0) (0,1) (1,1).
    let corner = vec2<f32>(f32(vertex_index & 1u), f32(vertex_index >> 1u));
    let p_um = mix(composite.min_um, composite.max_um, corner);
    var out: VertexOut;
    out.position = vec4<f32>(composite.clip_x * p_um.x + composite.clip_y * p_um.y + composite.clip_t, 0.0, 1.0);
    out.uv = corner;
    return out;
}

fn srgb_to_linear(c: vec3<f32>) -> vec3<f32> {
    let low = c / 12.92;
    let high = pow((c + 0.055) / 1.055, vec3<f32>(2.4));
    return select(high, low, c <= vec3<f32>(0.04045));
}

@fragment
fn fs_overview(in: VertexOut) -> @location(0) vec4<f32> {
    let texel = textureSample(overview_texture, overview_sampler, in.uv);
    if texel.a <= 0.0 {
        discard;
    }
    var rgb = texel.rgb;
    if composite.target_is_srgb == 1u {
        // Un-premultiply to linearise, then premultiply again.
        rgb = srgb_to_linear(rgb / texel.a) * texel.a;
    }
    // Premultiplied output, blended with PREMULTIPLIED_ALPHA_BLENDING.
    return vec4<f32>(rgb, texel.a) * composite.opacity;
}
