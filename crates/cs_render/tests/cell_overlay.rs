//! The cell overlay drawn headless (lavapipe in CI): markers, polygons, hidden classes, highlight,
//! and a recolour that uploads only styles.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Arc;

use cs_render::{
    CellDrawList, CellDrawMode, CellGeometry, CellLayerStyle, CellRenderer, CellStyles, HeadlessTarget,
    PolygonsInTable, create_headless_device,
};

const SIZE: u32 = 64;

/// World 0..64 µm maps onto the 64 x 64 target, y down.
fn clip_from_world() -> [[f32; 2]; 3] {
    [[2.0 / 64.0, 0.0], [0.0, -2.0 / 64.0], [-1.0, 1.0]]
}

fn square(cx: f32, cy: f32, half: f32) -> Vec<[f32; 2]> {
    vec![
        [cx - half, cy - half],
        [cx + half, cy - half],
        [cx + half, cy + half],
        [cx - half, cy + half],
    ]
}

struct Scene {
    device: wgpu::Device,
    queue: wgpu::Queue,
    target: HeadlessTarget,
    renderer: CellRenderer,
    geometry: Arc<CellGeometry>,
}

impl Scene {
    fn new() -> Option<Self> {
        let (_, device, queue) = match create_headless_device(true) {
            Ok(d) => d,
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("{e}"),
            Err(e) => {
                eprintln!("skipping: {e}");
                return None;
            }
        };
        let target = HeadlessTarget::new(&device, SIZE, SIZE);
        let renderer = CellRenderer::new(&device, target.format);
        // Two cells: A at (16, 16), B at (48, 48), 16 µm squares. A has one 6 µm nucleus, B two
        // 4 µm nuclei side by side (binucleate, as XOA 2.0+ writes them under one cell id).
        let x = [16.0, 48.0];
        let y = [16.0, 48.0];
        let mut cells = square(16.0, 16.0, 8.0);
        cells.extend(square(48.0, 48.0, 8.0));
        let mut nuclei = square(16.0, 16.0, 3.0);
        nuclei.extend(square(44.5, 48.0, 2.0));
        nuclei.extend(square(51.5, 48.0, 2.0));
        let offsets = [0u32, 4, 8];
        let nucleus_offsets = [0u32, 4, 8, 12];
        let geometry = CellGeometry::build(
            1,
            &x,
            &y,
            Some(PolygonsInTable {
                offsets: &offsets,
                vertices_um: &cells,
                cell_polygons: &[0, 1, 2],
            }),
            Some(PolygonsInTable {
                offsets: &nucleus_offsets,
                vertices_um: &nuclei,
                cell_polygons: &[0, 1, 3],
            }),
        );
        Some(Self {
            device,
            queue,
            target,
            renderer,
            geometry: Arc::new(geometry),
        })
    }

    fn list(&self, styles_in_table_order: &[u32], palette: Vec<[f32; 4]>, mode: CellDrawMode) -> CellDrawList {
        CellDrawList {
            geometry: self.geometry.clone(),
            styles: Arc::new(CellStyles {
                id: styles_in_table_order.iter().fold(7, |h, v| h * 31 + u64::from(*v)),
                values: self.geometry.to_gpu_order(styles_in_table_order),
            }),
            palette,
            clip_from_world: clip_from_world(),
            viewport_px: [SIZE as f32, SIZE as f32],
            visible: self.geometry.visible_ranges([0.0, 0.0], [64.0, 64.0]),
            mode,
            show_cells: true,
            show_nuclei: true,
            style: CellLayerStyle {
                cell_fill_alpha: 1.0,
                nucleus_fill_alpha: 1.0,
                ..CellLayerStyle::default()
            },
            highlight: None,
            transcripts: None,
        }
    }

    fn draw(&mut self, list: &CellDrawList) -> Vec<u8> {
        self.renderer.prepare(&self.device, &self.queue, 1, list);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: None,
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &self.target.view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                        store: wgpu::StoreOp::Store,
                    },
                })],
                depth_stencil_attachment: None,
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            self.renderer.paint(&mut pass, 1);
        }
        self.queue.submit([encoder.finish()]);
        self.target.read_rgba(&self.device, &self.queue).unwrap()
    }
}

fn pixel(rgba: &[u8], x: u32, y: u32) -> [u8; 4] {
    let i = ((y * SIZE + x) * 4) as usize;
    [rgba[i], rgba[i + 1], rgba[i + 2], rgba[i + 3]]
}

const MISSING: [f32; 4] = [0.5, 0.5, 0.5, 1.0];
const RED: [f32; 4] = [1.0, 0.0, 0.0, 1.0];
const BLUE: [f32; 4] = [0.0, 0.0, 1.0, 1.0];

#[test]
fn polygons_are_filled_with_their_class_colour_and_nuclei_darker() {
    let Some(mut scene) = Scene::new() else { return };
    let list = scene.list(&[1, 2], vec![MISSING, RED, BLUE], CellDrawMode::Polygons);
    let rgba = scene.draw(&list);
    // Inside A's cytoplasm (not the nucleus): red. Inside B: blue. Between cells: background.
    let a = pixel(&rgba, 10, 10);
    assert!(a[0] > 200 && a[2] < 50, "{a:?}");
    let b = pixel(&rgba, 54, 54);
    assert!(b[2] > 200 && b[0] < 50, "{b:?}");
    assert_eq!(pixel(&rgba, 32, 32)[..3], [0, 0, 0]);
    // Nucleus centre: the class colour darkened.
    let nucleus = pixel(&rgba, 16, 16);
    assert!(nucleus[0] > 60 && nucleus[0] < 200, "{nucleus:?}");
}

#[test]
fn a_binucleate_cell_draws_two_nuclei() {
    let Some(mut scene) = Scene::new() else { return };
    let list = scene.list(&[1, 2], vec![MISSING, RED, BLUE], CellDrawMode::Polygons);
    let rgba = scene.draw(&list);
    let darker = |p: [u8; 4]| p[2] > 60 && p[2] < 200 && p[0] < 50;
    // B's two nuclei: darkened blue at each centre ...
    for x in [44, 51] {
        let p = pixel(&rgba, x, 48);
        assert!(darker(p), "nucleus at x {x}: {p:?}");
    }
    // ... and B's own full blue between them: one polygon through both would have filled it.
    let gap = pixel(&rgba, 48, 48);
    assert!(gap[2] > 200 && gap[0] < 50, "between the nuclei: {gap:?}");
}

#[test]
fn hidden_classes_vanish_and_recolouring_uploads_only_styles() {
    let Some(mut scene) = Scene::new() else { return };
    let hidden = [1.0, 0.0, 0.0, 0.0];
    let rgba = scene.draw(&scene.list(&[1, 2], vec![MISSING, hidden, BLUE], CellDrawMode::Polygons));
    assert_eq!(pixel(&rgba, 10, 10)[..3], [0, 0, 0], "hidden class drawn");
    assert!(pixel(&rgba, 54, 54)[2] > 200);

    let before = scene.renderer.uploaded_bytes_total();
    // Swap classes: A becomes blue, B missing (grey).
    let rgba = scene.draw(&scene.list(&[2, 0], vec![MISSING, RED, BLUE], CellDrawMode::Polygons));
    assert!(pixel(&rgba, 10, 10)[2] > 200);
    let grey = pixel(&rgba, 54, 54);
    assert!(grey[0] > 100 && grey[0] < 160 && grey[0] == grey[2], "{grey:?}");
    assert_eq!(
        scene.renderer.uploaded_bytes_total() - before,
        8,
        "a recolour uploads one u32 per cell and nothing else"
    );
}

#[test]
fn zoomed_out_cells_are_markers_and_the_highlight_stands_out() {
    let Some(mut scene) = Scene::new() else { return };
    let mut list = scene.list(
        &[1, 2],
        vec![MISSING, RED, BLUE],
        CellDrawMode::Points { radius_px: 3.0 },
    );
    let rgba = scene.draw(&list);
    assert!(pixel(&rgba, 16, 16)[0] > 200, "marker at A's centroid");
    assert_eq!(pixel(&rgba, 10, 10)[..3], [0, 0, 0], "no polygon when zoomed out");
    assert!(pixel(&rgba, 48, 48)[2] > 200);
    // Highlight B (its GPU index): a white ring appears around its marker.
    list.highlight = Some(scene.geometry.gpu_from_table[1]);
    let rgba = scene.draw(&list);
    let ring = (40..56)
        .map(|x| pixel(&rgba, x, 48))
        .filter(|p| p[0] > 200 && p[1] > 200 && p[2] > 200)
        .count();
    assert!(ring >= 2, "no white ring around the highlighted marker");
}

/// 160 x 160 cells 10 µm apart (more than OVERVIEW_MIN_CELLS), as geometry `id`.
fn dense_grid(id: u64) -> Arc<CellGeometry> {
    let side = 160usize;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..side * side {
        x.push((i % side) as f64 * 10.0 + 5.0);
        y.push((i / side) as f64 * 10.0 + 5.0);
    }
    Arc::new(CellGeometry::build(id, &x, &y, None, None))
}

/// The whole 1600 µm square of [`dense_grid`] on the 64 px target, zoomed out to markers, every
/// cell of palette entry `class` (styles `styles_id`).
fn dense_grid_list(geometry: &Arc<CellGeometry>, styles_id: u64, class: u32) -> CellDrawList {
    let scale = 2.0 / 1600.0;
    CellDrawList {
        geometry: geometry.clone(),
        styles: Arc::new(CellStyles {
            id: styles_id,
            values: vec![class; geometry.len()],
        }),
        palette: vec![MISSING, RED, BLUE],
        clip_from_world: [[scale, 0.0], [0.0, -scale], [-1.0, 1.0]],
        viewport_px: [SIZE as f32, SIZE as f32],
        visible: geometry.visible_ranges([0.0, 0.0], [1600.0, 1600.0]),
        mode: CellDrawMode::Points { radius_px: 1.5 },
        show_cells: true,
        show_nuclei: false,
        style: CellLayerStyle::default(),
        highlight: None,
        transcripts: None,
    }
}

#[test]
fn many_cells_zoomed_out_come_from_the_overview_texture_drawn_once_per_colouring() {
    let Some(mut scene) = Scene::new() else { return };
    let geometry = dense_grid(9);
    assert!(geometry.len() >= cs_render::OVERVIEW_MIN_CELLS);
    let list = |id: u64, class: u32| dense_grid_list(&geometry, id, class);
    let mut draw = |list: &CellDrawList| {
        let rgba = scene.draw(list);
        (rgba, scene.renderer.overview_renders())
    };
    let (red, renders) = draw(&list(1, 1));
    assert_eq!(renders, 1);
    let p = pixel(&red, 32, 32);
    assert!(p[0] > 150 && p[2] < 60, "dense red cells: {p:?}");
    // Panning or redrawing with the same colouring does not redraw the texture.
    let (_, renders) = draw(&list(1, 1));
    assert_eq!(renders, 1);
    // A recolour redraws it once.
    let (blue, renders) = draw(&list(2, 2));
    assert_eq!(renders, 2);
    let p = pixel(&blue, 32, 32);
    assert!(p[2] > 150 && p[0] < 60, "dense blue cells: {p:?}");
}

/// Two samples side by side: each geometry keeps its own overview texture, so drawing one view
/// and then the other neither redraws them nor shows one sample's cells in the other's view.
#[test]
fn two_geometries_zoomed_out_keep_an_overview_each() {
    let Some(mut scene) = Scene::new() else { return };
    let left = dense_grid(21);
    let right = dense_grid(22);
    let list = |geometry: &Arc<CellGeometry>, class: u32| dense_grid_list(geometry, geometry.id, class);
    let red = scene.draw(&list(&left, 1));
    let blue = scene.draw(&list(&right, 2));
    let red_again = scene.draw(&list(&left, 1));
    assert_eq!(
        scene.renderer.overview_renders(),
        2,
        "each geometry's overview is drawn once"
    );
    for (rgba, red_expected) in [(&red, true), (&blue, false), (&red_again, true)] {
        let p = pixel(rgba, 32, 32);
        let (strong, weak) = if red_expected { (p[0], p[2]) } else { (p[2], p[0]) };
        assert!(strong > 150 && weak < 60, "{p:?} (red expected: {red_expected})");
    }
}

/// Two tiles of transcripts (left and right halves of the target), with the cells hidden.
fn transcript_list(scene: &Scene, raster: Option<cs_render::PointRaster>, parts: &[Arc<CellGeometry>]) -> CellDrawList {
    let mut list = scene.list(
        &[1, 2],
        vec![MISSING, RED, BLUE],
        CellDrawMode::Points { radius_px: 2.0 },
    );
    list.show_cells = false;
    list.show_nuclei = false;
    // The highlight is a cell's index: it must not pick out a transcript with the same index.
    list.highlight = Some(0);
    list.transcripts = Some(cs_render::PointLayerDraw {
        parts: parts
            .iter()
            .enumerate()
            .map(|(i, points)| cs_render::PointPart {
                bounds_um: [[32.0 * i as f32, 0.0], [32.0 * (i + 1) as f32, 64.0]],
                points: points.clone(),
                styles: Arc::new(CellStyles {
                    id: 100 + points.id,
                    values: vec![1 + i as u32; points.len()],
                }),
                visible: points.visible_ranges([0.0, 0.0], [64.0, 64.0]),
            })
            .collect(),
        palette: vec![[0.0; 4], RED, BLUE],
        raster,
        radius_px: 2.0,
        opacity: 1.0,
    });
    list
}

#[test]
fn transcript_tiles_drawn_once_into_textures_look_like_markers() {
    let Some(mut scene) = Scene::new() else { return };
    // A grid of points in each half; some sit on the tiles' shared edge (x = 32).
    let half = |id: u64, x0: f64| {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..4 {
            for j in 0..8 {
                x.push(x0 + 2.0 + 10.0 * f64::from(i));
                y.push(4.0 + 8.0 * f64::from(j));
            }
        }
        Arc::new(CellGeometry::build(id, &x, &y, None, None))
    };
    let parts = [half(20, 0.0), half(21, 32.0)];
    let direct = scene.draw(&transcript_list(&scene, None, &parts));
    let raster = Some(cs_render::PointRaster { um_per_texel: 1.0 });
    let tiled = scene.draw(&transcript_list(&scene, raster, &parts));
    assert_eq!(scene.renderer.point_tile_renders(), 2, "one texture per tile");
    // Red markers on the left, blue on the right, in both ways of drawing.
    for rgba in [&direct, &tiled] {
        let left = pixel(rgba, 2, 4);
        assert!(left[0] > 150 && left[2] < 60, "{left:?}");
        let right = pixel(rgba, 34, 4);
        assert!(right[2] > 150 && right[0] < 60, "{right:?}");
        // No transcript is drawn with the highlight's white ring or doubled size.
        let beside_first = pixel(rgba, 6, 4);
        assert!(beside_first[..3] == [0, 0, 0], "{beside_first:?}");
    }
    // The textures match the markers to within anti-aliasing.
    let differing = direct
        .chunks_exact(4)
        .zip(tiled.chunks_exact(4))
        .filter(|(a, b)| a.iter().zip(b.iter()).any(|(p, q)| p.abs_diff(*q) > 48))
        .count();
    assert!(differing * 50 <= (SIZE * SIZE) as usize, "{differing} pixels differ");
    // Drawing again (a pan, the same colours) draws no texture again.
    scene.draw(&transcript_list(&scene, raster, &parts));
    assert_eq!(scene.renderer.point_tile_renders(), 2);
}
