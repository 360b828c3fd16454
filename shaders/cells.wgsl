// Cell overlay: centroids as round markers when zoomed out; cell and nucleus polygons (fills and
// outlines) when zoomed in. Every draw is instanced: one instance per cell (per polygon for
// polygons), in the renderer's spatial (Morton) order, so that a frame draws only the instance
// ranges that meet the view.
//
// Colour is `palette[style[cell]]`: the CPU writes one u32 per cell (0 = missing, k = class k-1 or
// colour-map entry k-1) and a small palette, so recolouring never re-uploads geometry.
// A palette entry with alpha 0 hides its cells.

struct Frame {
    // clip = clip_x * x_um + clip_y * y_um + clip_t
    clip_x: vec2<f32>,
    clip_y: vec2<f32>,
    clip_t: vec2<f32>,
    viewport_px: vec2<f32>,
    point_radius_px: f32,
    cell_line_px: f32,
    nucleus_line_px: f32,
    opacity: f32,
    cell_fill_alpha: f32,
    cell_line_alpha: f32,
    nucleus_fill_alpha: f32,
    nucleus_line_alpha: f32,
    // GPU index of the highlighted cell, or 0xffffffff.
    highlight: u32,
    // 1 when the target stores sRGB (the palette is sRGB-encoded and must be linearised).
    target_is_srgb: u32,
    transcript_radius_px: f32,
    _pad: f32,
};

// Per view: the frame's parameters and the palette of the layer being drawn.
@group(0) @binding(0) var<uniform> frame: Frame;
@group(0) @binding(1) var<storage, read> palette: array<vec4<f32>>;

// Per data set: cell centroids (or transcripts) and their styles.
@group(1) @binding(0) var<storage, read> positions_um: array<vec2<f32>>;
@group(1) @binding(1) var<storage, read> styles: array<u32>;

// Polygons of cells and nuclei, one instance each: offsets (polygons + 1) into words; a polygon's
// words are its anchor's x and y (f32 bits), its cell's index (for style and highlight), then one
// packed vertex (offset from the anchor) per word. A cell may own several (a binucleate cell's
// nuclei) or none.
@group(2) @binding(0) var<storage, read> cell_offsets: array<u32>;
@group(2) @binding(1) var<storage, read> cell_words: array<u32>;
@group(2) @binding(2) var<storage, read> nucleus_offsets: array<u32>;
@group(2) @binding(3) var<storage, read> nucleus_words: array<u32>;

// Must match cs_render::cell_geometry::PACKED_RANGE_UM.
const PACKED_RANGE_UM: f32 = 512.0;
const NO_CELL: u32 = 0xffffffffu;
// A position outside the clip volume: triangles made of it are culled.
const OFF_SCREEN: vec4<f32> = vec4<f32>(4.0, 4.0, 4.0, 1.0);

fn clip_from_world(p_um: vec2<f32>) -> vec2<f32> {
    return frame.clip_x * p_um.x + frame.clip_y * p_um.y + frame.clip_t;
}

fn px_from_clip(c: vec2<f32>) -> vec2<f32> {
    return (c * 0.5 + 0.5) * frame.viewport_px;
}

fn clip_from_px(p: vec2<f32>) -> vec2<f32> {
    return p / frame.viewport_px * 2.0 - 1.0;
}

fn srgb_to_linear(c: vec3<f32>) -> vec3<f32> {
    let low = c / 12.92;
    let high = pow((c + 0.055) / 1.055, vec3<f32>(2.4));
    return select(high, low, c <= vec3<f32>(0.04045));
}

fn style_color(cell: u32) -> vec4<f32> {
    let index = min(styles[cell], arrayLength(&palette) - 1u);
    return palette[index];
}

fn output_color(c: vec4<f32>) -> vec4<f32> {
    if frame.target_is_srgb == 1u {
        return vec4<f32>(srgb_to_linear(c.rgb), c.a);
    }
    return c;
}

// ---- points ----

struct PointOut {
    @builtin(position) position: vec4<f32>,
    // Offset from the marker centre in pixels.
    @location(0) local_px: vec2<f32>,
    @location(1) radius_px: f32,
    @location(2) color: vec4<f32>,
    @location(3) ring: f32,
};

fn point_vertex(vertex_index: u32, index: u32, base_radius_px: f32, can_highlight: bool) -> PointOut {
    var out: PointOut;
    var color = style_color(index);
    // The highlight is a cell's index: it never applies to transcripts.
    let highlighted = can_highlight && index == frame.highlight;
    if color.a <= 0.0 && !highlighted {
        out.position = OFF_SCREEN;
        return out;
    }
    var radius = base_radius_px;
    out.ring = 0.0;
    if highlighted {
        radius = max(radius * 2.0, 5.0);
        out.ring = 1.0;
        color.a = 1.0;
    }
    // Triangle strip (-1,-1) (1,-1) (-1,1) (1,1), grown by a pixel for anti-aliasing.
    let corner = vec2<f32>(f32(vertex_index & 1u), f32(vertex_index >> 1u)) * 2.0 - 1.0;
    let extent = radius + 1.0;
    let center_px = px_from_clip(clip_from_world(positions_um[index]));
    out.position = vec4<f32>(clip_from_px(center_px + corner * extent), 0.0, 1.0);
    out.local_px = corner * extent;
    out.radius_px = radius;
    out.color = vec4<f32>(color.rgb, color.a * frame.opacity);
    return out;
}

@vertex
fn vs_cell_point(@builtin(vertex_index) vertex_index: u32, @builtin(instance_index) cell: u32) -> PointOut {
    return point_vertex(vertex_index, cell, frame.point_radius_px, true);
}

@vertex
fn vs_transcript_point(@builtin(vertex_index) vertex_index: u32, @builtin(instance_index) index: u32) -> PointOut {
    return point_vertex(vertex_index, index, frame.transcript_radius_px, false);
}

@fragment
fn fs_point(in: PointOut) -> @location(0) vec4<f32> {
    let d = length(in.local_px);
    let coverage = clamp(in.radius_px + 0.5 - d, 0.0, 1.0);
    if coverage <= 0.0 {
        discard;
    }
    var color = in.color;
    if in.ring > 0.5 {
        // Highlight: the class colour inside a white ring.
        let ring = clamp(d - (in.radius_px - 2.0), 0.0, 1.0);
        color = vec4<f32>(mix(color.rgb, vec3<f32>(1.0), ring), 1.0);
    }
    return output_color(vec4<f32>(color.rgb, color.a * coverage));
}

// ---- polygons ----

struct PolygonOut {
    @builtin(position) position: vec4<f32>,
    @location(0) color: vec4<f32>,
};

struct PolygonVertexInfo {
    count: u32,
    first: u32,
    cell: u32,
    anchor_um: vec2<f32>,
};

fn polygon_word(nucleus: bool, index: u32) -> u32 {
    if nucleus {
        return nucleus_words[index];
    }
    return cell_words[index];
}

fn polygon_info(nucleus: bool, polygon: u32) -> PolygonVertexInfo {
    var info: PolygonVertexInfo;
    var start: u32;
    var end: u32;
    if nucleus {
        start = nucleus_offsets[polygon];
        end = nucleus_offsets[polygon + 1u];
    } else {
        start = cell_offsets[polygon];
        end = cell_offsets[polygon + 1u];
    }
    if end < start + 3u {
        info.count = 0u;
        info.cell = NO_CELL;
        return info;
    }
    info.anchor_um = vec2<f32>(
        bitcast<f32>(polygon_word(nucleus, start)),
        bitcast<f32>(polygon_word(nucleus, start + 1u)),
    );
    info.cell = polygon_word(nucleus, start + 2u);
    info.first = start + 3u;
    info.count = end - info.first;
    return info;
}

fn polygon_vertex_um(nucleus: bool, info: PolygonVertexInfo, k: u32) -> vec2<f32> {
    let packed = polygon_word(nucleus, info.first + (k % info.count));
    return info.anchor_um + unpack2x16snorm(packed) * PACKED_RANGE_UM;
}

// A fan around the anchor: triangle k is (anchor, v[k], v[k + 1]). Instances draw 3 * max_vertices
// vertices; triangles past the polygon's own count are culled.
fn fill_vertex(nucleus: bool, vertex_index: u32, polygon: u32) -> PolygonOut {
    var out: PolygonOut;
    let info = polygon_info(nucleus, polygon);
    let triangle = vertex_index / 3u;
    let corner = vertex_index % 3u;
    if info.count < 3u {
        out.position = OFF_SCREEN;
        return out;
    }
    var color = style_color(info.cell);
    if triangle >= info.count || color.a <= 0.0 {
        out.position = OFF_SCREEN;
        return out;
    }
    var p = info.anchor_um;
    if corner != 0u {
        p = polygon_vertex_um(nucleus, info, triangle + corner - 1u);
    }
    var alpha = frame.cell_fill_alpha;
    if nucleus {
        alpha = frame.nucleus_fill_alpha;
        color = vec4<f32>(color.rgb * 0.55, color.a);
    }
    out.position = vec4<f32>(clip_from_world(p), 0.0, 1.0);
    out.color = vec4<f32>(color.rgb, color.a * alpha * frame.opacity);
    return out;
}

// A quad per edge, `line_px` wide and extended by half a width at both ends so joints close.
fn outline_vertex(nucleus: bool, vertex_index: u32, polygon: u32) -> PolygonOut {
    var out: PolygonOut;
    let info = polygon_info(nucleus, polygon);
    let edge = vertex_index / 6u;
    let corner = vertex_index % 6u;
    if info.count < 2u {
        out.position = OFF_SCREEN;
        return out;
    }
    var color = style_color(info.cell);
    let highlighted = info.cell == frame.highlight && !nucleus;
    if edge >= info.count || (color.a <= 0.0 && !highlighted) {
        out.position = OFF_SCREEN;
        return out;
    }
    var width = frame.cell_line_px;
    var alpha = frame.cell_line_alpha;
    if nucleus {
        width = frame.nucleus_line_px;
        alpha = frame.nucleus_line_alpha;
    }
    if highlighted {
        width = max(width * 2.5, 3.0);
        alpha = 1.0;
        color = vec4<f32>(1.0, 1.0, 1.0, 1.0);
    }
    let a = px_from_clip(clip_from_world(polygon_vertex_um(nucleus, info, edge)));
    let b = px_from_clip(clip_from_world(polygon_vertex_um(nucleus, info, edge + 1u)));
    var along = b - a;
    let length_px = length(along);
    if length_px < 1e-4 {
        along = vec2<f32>(1.0, 0.0);
    } else {
        along = along / length_px;
    }
    let half = 0.5 * width;
    let normal = vec2<f32>(-along.y, along.x) * half;
    let start = a - along * half;
    let end = b + along * half;
    // Two triangles: (s-n, s+n, e-n), (e-n, s+n, e+n).
    var p: vec2<f32>;
    switch corner {
        case 0u: { p = start - normal; }
        case 1u, 4u: { p = start + normal; }
        case 2u, 3u: { p = end - normal; }
        default: { p = end + normal; }
    }
    out.position = vec4<f32>(clip_from_px(p), 0.0, 1.0);
    out.color = vec4<f32>(color.rgb, color.a * alpha * frame.opacity);
    return out;
}

@vertex
fn vs_cell_fill(@builtin(vertex_index) vertex_index: u32, @builtin(instance_index) polygon: u32) -> PolygonOut {
    return fill_vertex(false, vertex_index, polygon);
}

@vertex
fn vs_nucleus_fill(@builtin(vertex_index) vertex_index: u32, @builtin(instance_index) polygon: u32) -> PolygonOut {
    return fill_vertex(true, vertex_index, polygon);
}

@vertex
fn vs_cell_outline(@builtin(vertex_index) vertex_index: u32, @builtin(instance_index) polygon: u32) -> PolygonOut {
    return outline_vertex(false, vertex_index, polygon);
}

@vertex
fn vs_nucleus_outline(@builtin(vertex_index) vertex_index: u32, @builtin(instance_index) polygon: u32) -> PolygonOut {
    return outline_vertex(true, vertex_index, polygon);
}

@fragment
fn fs_polygon(in: PolygonOut) -> @location(0) vec4<f32> {
    if in.color.a <= 0.0 {
        discard;
    }
    return output_color(in.color);
}
