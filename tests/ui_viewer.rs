//! The viewer as a user sees it, rendered headless with egui_kittest on wgpu (lavapipe in CI).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly by design

use std::time::{Duration, Instant};

use cellsymphony::{StartupOptions, ViewerApp};
use cs_testdata::shared_file;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

/// Steps the app until `done` holds (background threads load tiles meanwhile).
fn step_until(harness: &mut Harness<'_, ViewerApp>, what: &str, done: impl Fn(&ViewerApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    // A few more frames so that everything that arrived is laid out and painted.
    for _ in 0..3 {
        harness.step();
    }
}

fn slide_is_sharp(app: &ViewerApp) -> bool {
    app.is_opening().is_none()
        && app.slide.as_ref().is_some_and(|s| {
            let f = s.layer.last_frame;
            f.visible_tiles > 0 && f.ready_tiles == f.visible_tiles && !s.layer.is_loading()
        })
}

#[test]
fn viewer_shows_the_cmu_slide_and_keeps_it_when_a_bad_file_is_opened() {
    let (Some(slide), Some(bad)) = (
        shared_file("wsi/CMU-1-Small-Region.svs"),
        shared_file("wsi/openslide-fixtures/unopenable.tiff"),
    ) else {
        return;
    };
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .wgpu()
        .build_eframe(|cc| ViewerApp::new(cc, StartupOptions { slide: Some(slide) }));
    step_until(&mut harness, "slide open and sharp", slide_is_sharp);
    let app = harness.state();
    assert!(app.gpu_ready);
    assert!(app.toasts.items().is_empty(), "{:?}", app.toasts.items());
    harness.snapshot("viewer_cmu_fit");

    // Zoom to 20x with the toolbar preset, as a user would.
    // The first "20x" in the tree is the toolbar preset (the properties panel also shows a 20x objective).
    harness.query_all_by_label("20x").next().unwrap().click();
    step_until(&mut harness, "20x sharp", slide_is_sharp);
    let app = harness.state();
    let viewport = app.view.last_viewport.unwrap();
    assert!((app.view.camera.magnification(&viewport) - 20.0).abs() < 1e-6);
    harness.snapshot("viewer_cmu_20x");

    // Keyboard: '-' zooms out, '0' fits again.
    harness.key_press(egui::Key::Minus);
    harness.step();
    let zoomed_out = harness.state().view.camera.magnification(&viewport);
    assert!(zoomed_out < 20.0 - 1.0, "{zoomed_out}");

    // A file that cannot be opened: an error naming it, and the open slide stays.
    harness.state_mut().open_path(bad);
    step_until(&mut harness, "the failed open is reported", |app| {
        app.is_opening().is_none()
    });
    let app = harness.state();
    let error = app
        .toasts
        .items()
        .iter()
        .map(|t| t.text.clone())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(error.contains("unopenable.tiff"), "{error}");
    assert!(error.contains("stays open"), "{error}");
    assert!(
        app.slide
            .as_ref()
            .is_some_and(|s| s.path.ends_with("CMU-1-Small-Region.svs"))
    );
}

#[test]
fn unreadable_tiles_are_reported_and_the_app_keeps_working() {
    let Some(slide) = shared_file("wsi/openslide-fixtures/unreadable.svs") else {
        return;
    };
    let mut harness = Harness::builder()
        .with_size(egui::vec2(900.0, 600.0))
        .wgpu()
        .build_eframe(|cc| ViewerApp::new(cc, StartupOptions { slide: Some(slide) }));
    step_until(&mut harness, "tile failures reported", |app| {
        app.slide
            .as_ref()
            .is_some_and(|s| s.layer.failed_tile_count() > 0 && !s.layer.is_loading())
    });
    let app = harness.state();
    let message = app
        .slide
        .as_ref()
        .and_then(|s| s.layer.first_tile_error())
        .unwrap()
        .to_string();
    assert!(message.contains("unreadable.svs"), "{message}");
    // The status bar says so, and the UI still responds.
    harness.get_by_label_contains("tiles could not be read");
    harness.get_by_label("Fit").click();
    harness.step();
}

#[test]
fn start_screen_offers_open_and_recent_files() {
    let mut harness = Harness::builder()
        .with_size(egui::vec2(900.0, 600.0))
        .wgpu()
        .build_eframe(|cc| ViewerApp::new(cc, StartupOptions::default()));
    harness.step();
    harness.get_by_label("Open slide…");
    harness.get_by_label_contains("drop a slide file");
    harness.snapshot("start_screen");
}

/// Drags the slide 150 points to the left and returns how far the view centre moved (world µm)
/// during the drag and in the 20 frames after release.
fn drag_and_release(harness: &mut Harness<'_, ViewerApp>) -> (f64, f64) {
    let start = egui::pos2(500.0, 350.0);
    let before = harness.state().view.camera.center_in_world;
    harness.hover_at(start);
    harness.step();
    harness.drag_at(start);
    harness.step();
    for i in 1..=10 {
        harness.hover_at(start - egui::vec2(15.0 * i as f32, 0.0));
        harness.step();
    }
    let end = start - egui::vec2(150.0, 0.0);
    harness.drop_at(end);
    harness.step();
    let released = harness.state().view.camera.center_in_world;
    for _ in 0..20 {
        harness.step();
    }
    let after = harness.state().view.camera.center_in_world;
    ((released - before).length(), (after - released).length())
}

#[test]
fn drag_pans_and_inertia_is_off_by_default() {
    let Some(slide) = shared_file("wsi/CMU-1-Small-Region.svs") else {
        return;
    };
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1000.0, 700.0))
        .wgpu()
        .build_eframe(|cc| ViewerApp::new(cc, StartupOptions { slide: Some(slide) }));
    step_until(&mut harness, "slide open and sharp", slide_is_sharp);
    assert!(!harness.state().view.pan_inertia);
    let points_per_um = harness.state().view.camera.points_per_um;

    let (during, after) = drag_and_release(&mut harness);
    let dragged_um = 150.0 / points_per_um;
    assert!(
        (during - dragged_um).abs() < 0.05 * dragged_um,
        "drag moved {during} µm, expected {dragged_um}"
    );
    assert_eq!(after, 0.0, "the view glided without inertia");

    // View → Pan inertia: the view keeps gliding after release.
    harness.state_mut().view.pan_inertia = true;
    let (_, after) = drag_and_release(&mut harness);
    assert!(after > 0.05 * dragged_um, "no glide with inertia on: {after} µm");
}
