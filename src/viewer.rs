//! The slide viewer widget: pan/zoom input, the GPU tile layer through a paint callback, and the
//! overlays a pathologist expects (scale bar, minimap, loading and error notes).

use eframe::egui_wgpu;
use egui::{Color32, Pos2, Rect, Sense, Stroke, Vec2};
use glam::DVec2;

use crate::app::{TilePaintCallback, ViewerApp};
use crate::camera::{Viewport, format_length_um, nice_scale_bar_um};

/// Wheel: one notch (about 50 points) zooms by about 1.28x.
const WHEEL_ZOOM_PER_POINT: f64 = 1.0 / 200.0;
const KEY_ZOOM_FACTOR: f64 = 1.5;
const KEY_PAN_FRACTION: f64 = 0.15;
const INERTIA_DECAY_PER_S: f64 = 4.0;
const INERTIA_STOP_POINTS_PER_S: f64 = 8.0;
const MINIMAP_MAX_SIDE_POINTS: f32 = 200.0;
const MINIMAP_MARGIN_POINTS: f32 = 12.0;

fn to_dvec(v: Vec2) -> DVec2 {
    DVec2::new(f64::from(v.x), f64::from(v.y))
}

pub fn viewer_ui(ui: &mut egui::Ui, app: &mut ViewerApp) {
    let (rect, response) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
    let viewport = Viewport {
        size_in_points: to_dvec(rect.size()),
        pixels_per_point: f64::from(ui.ctx().pixels_per_point()),
    };
    app.view.last_viewport = Some(viewport);
    let Some(slide) = &mut app.slide else { return };
    let camera = &mut app.view.camera;

    if app.view.fit_requested && rect.width() > 1.0 && rect.height() > 1.0 {
        let (min, max) = slide.layer.bounds_in_world();
        camera.fit(min, max, &viewport);
        app.view.fit_requested = false;
    }

    // Minimap first, so that its clicks do not also pan the slide.
    let minimap = minimap_rect(rect, slide.overview.as_ref().map(|(_, size)| *size));
    let minimap_response = minimap.map(|r| ui.interact(r, response.id.with("minimap"), Sense::click_and_drag()));
    let on_minimap = minimap_response.as_ref().is_some_and(|r| r.hovered() || r.dragged());

    // Pointer input.
    if let Some(pos) = response.hover_pos().filter(|_| !on_minimap) {
        let pos_in_screen = to_dvec(pos - rect.min);
        let (scroll_y, pinch) = ui.input(|i| (f64::from(i.smooth_scroll_delta.y), f64::from(i.zoom_delta())));
        let factor = pinch * (scroll_y * WHEEL_ZOOM_PER_POINT).exp();
        if (factor - 1.0).abs() > 1e-6 {
            camera.zoom_about(pos_in_screen, factor, &viewport);
        }
        if response.double_clicked() {
            let shift = ui.input(|i| i.modifiers.shift);
            camera.zoom_about(pos_in_screen, if shift { 0.5 } else { 2.0 }, &viewport);
        }
    }
    let dt = f64::from(ui.input(|i| i.stable_dt)).clamp(1e-3, 0.1);
    if response.dragged_by(egui::PointerButton::Primary) || response.dragged_by(egui::PointerButton::Middle) {
        let delta = -to_dvec(response.drag_delta());
        camera.pan_by_screen(delta);
        // Smoothed release velocity, used only when inertia is on.
        app.view.pan_velocity = app.view.pan_velocity * 0.5 + (delta / dt) * 0.5;
    } else if app.view.pan_inertia && app.view.pan_velocity.length() > INERTIA_STOP_POINTS_PER_S {
        camera.pan_by_screen(app.view.pan_velocity * dt);
        app.view.pan_velocity *= (-INERTIA_DECAY_PER_S * dt).exp();
        ui.ctx().request_repaint();
    } else {
        app.view.pan_velocity = DVec2::ZERO;
    }

    // Keyboard, unless a text field has focus.
    if !ui.ctx().egui_wants_keyboard_input() {
        let center = viewport.size_in_points * 0.5;
        let pan = viewport.size_in_points * KEY_PAN_FRACTION;
        ui.input(|i| {
            if i.key_pressed(egui::Key::ArrowLeft) {
                camera.pan_by_screen(DVec2::new(-pan.x, 0.0));
            }
            if i.key_pressed(egui::Key::ArrowRight) {
                camera.pan_by_screen(DVec2::new(pan.x, 0.0));
            }
            if i.key_pressed(egui::Key::ArrowUp) {
                camera.pan_by_screen(DVec2::new(0.0, -pan.y));
            }
            if i.key_pressed(egui::Key::ArrowDown) {
                camera.pan_by_screen(DVec2::new(0.0, pan.y));
            }
            if i.key_pressed(egui::Key::Plus) || i.key_pressed(egui::Key::Equals) {
                camera.zoom_about(center, KEY_ZOOM_FACTOR, &viewport);
            }
            if i.key_pressed(egui::Key::Minus) {
                camera.zoom_about(center, 1.0 / KEY_ZOOM_FACTOR, &viewport);
            }
            if i.key_pressed(egui::Key::Num0) {
                app.view.fit_requested = true;
            }
        });
    }

    // Minimap navigation: click or drag moves the view centre there.
    if let (Some(mini), Some(mini_response)) = (minimap, &minimap_response)
        && (mini_response.clicked() || mini_response.dragged())
        && let Some(pos) = mini_response.interact_pointer_pos()
    {
        let (w, h) = slide.layer.source.metadata().level0_size_px();
        let pos_in_slide_px = DVec2::new(
            f64::from((pos.x - mini.min.x) / mini.width()) * w as f64,
            f64::from((pos.y - mini.min.y) / mini.height()) * h as f64,
        );
        camera.center_in_world = slide.layer.world_from_slide.transform_point2(pos_in_slide_px);
    }

    // Cursor readout.
    let slide_from_screen = slide.layer.slide_from_screen(camera, &viewport);
    app.view.cursor_in_slide_px = response
        .hover_pos()
        .map(|pos| slide_from_screen.transform_point2(to_dvec(pos - rect.min)));

    // The slide itself, drawn by the GPU tile renderer.
    let list = slide.layer.frame(camera, &viewport);
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, Color32::from_gray(40));
    painter.add(egui_wgpu::Callback::new_paint_callback(
        rect,
        TilePaintCallback {
            frame_id: response.id.value(),
            list,
        },
    ));

    scale_bar_ui(&painter, rect, camera.points_per_um, slide.layer.has_physical_scale);
    if let (Some(mini), Some((texture, _))) = (minimap, &slide.overview) {
        let view_corners_in_slide_px = [
            DVec2::ZERO,
            DVec2::new(viewport.size_in_points.x, 0.0),
            viewport.size_in_points,
            DVec2::new(0.0, viewport.size_in_points.y),
        ]
        .map(|c| slide_from_screen.transform_point2(c));
        let (w, h) = slide.layer.source.metadata().level0_size_px();
        minimap_ui(
            &painter,
            mini,
            texture.id(),
            &view_corners_in_slide_px,
            (w as f64, h as f64),
        );
    }

    let stats = slide.layer.last_frame;
    if stats.ready_tiles < stats.visible_tiles && slide.layer.is_loading() {
        let text = format!("loading tiles {}/{}", stats.ready_tiles, stats.visible_tiles);
        let pos = rect.left_top() + Vec2::new(10.0, 10.0);
        let galley = painter.layout_no_wrap(text, egui::FontId::proportional(13.0), Color32::WHITE);
        painter.rect_filled(
            Rect::from_min_size(pos - Vec2::splat(4.0), galley.size() + Vec2::splat(8.0)),
            4.0,
            Color32::from_black_alpha(160),
        );
        painter.galley(pos, galley, Color32::WHITE);
    }
}

fn minimap_rect(viewer: Rect, overview_size: Option<[usize; 2]>) -> Option<Rect> {
    let [w, h] = overview_size?;
    if w == 0
        || h == 0
        || viewer.width() < 3.0 * MINIMAP_MAX_SIDE_POINTS
        || viewer.height() < 2.0 * MINIMAP_MAX_SIDE_POINTS
    {
        return None;
    }
    let scale = MINIMAP_MAX_SIDE_POINTS / (w.max(h) as f32);
    let size = Vec2::new(w as f32 * scale, h as f32 * scale);
    let max = viewer.right_bottom() - Vec2::splat(MINIMAP_MARGIN_POINTS);
    Some(Rect::from_min_max(max - size, max))
}

fn minimap_ui(
    painter: &egui::Painter,
    mini: Rect,
    texture: egui::TextureId,
    view_corners_in_slide_px: &[DVec2; 4],
    level0_size_px: (f64, f64),
) {
    painter.rect_filled(mini.expand(3.0), 3.0, Color32::from_black_alpha(180));
    painter.image(
        texture,
        mini,
        Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
        Color32::WHITE,
    );
    let to_mini = |p: &DVec2| {
        Pos2::new(
            mini.min.x + (p.x / level0_size_px.0) as f32 * mini.width(),
            mini.min.y + (p.y / level0_size_px.1) as f32 * mini.height(),
        )
    };
    let points: Vec<Pos2> = view_corners_in_slide_px.iter().map(to_mini).collect();
    let clip = painter.with_clip_rect(mini.expand(1.0));
    clip.add(egui::Shape::closed_line(
        points,
        Stroke::new(2.0, Color32::from_rgb(255, 210, 0)),
    ));
}

fn scale_bar_ui(painter: &egui::Painter, viewer: Rect, points_per_um: f64, physical: bool) {
    const MAX_BAR_POINTS: f64 = 160.0;
    let length_um = nice_scale_bar_um(MAX_BAR_POINTS / points_per_um);
    if length_um <= 0.0 {
        return;
    }
    let length_points = (length_um * points_per_um) as f32;
    let label = if physical {
        format_length_um(length_um)
    } else {
        format!("{length_um} px")
    };
    let base = viewer.left_bottom() + Vec2::new(16.0, -18.0);
    let galley = painter.layout_no_wrap(label, egui::FontId::proportional(13.0), Color32::WHITE);
    let background = Rect::from_min_max(
        base + Vec2::new(-8.0, -galley.size().y - 14.0),
        base + Vec2::new(length_points.max(galley.size().x) + 8.0, 8.0),
    );
    painter.rect_filled(background, 4.0, Color32::from_black_alpha(160));
    let stroke = Stroke::new(3.0, Color32::WHITE);
    painter.line_segment([base, base + Vec2::new(length_points, 0.0)], stroke);
    painter.line_segment([base + Vec2::new(0.0, -5.0), base + Vec2::new(0.0, 3.0)], stroke);
    painter.line_segment(
        [
            base + Vec2::new(length_points, -5.0),
            base + Vec2::new(length_points, 3.0),
        ],
        stroke,
    );
    painter.galley(base + Vec2::new(0.0, -galley.size().y - 8.0), galley, Color32::WHITE);
}
