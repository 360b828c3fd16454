//! The viewer as a user sees it, rendered headless with egui_kittest on wgpu (lavapipe in CI).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly by design

use std::time::{Duration, Instant};

use cellsymphony::app::{StartupOptions, ViewerApp};
use cellsymphony::ui::dialogs::DialogPurpose;
use cellsymphony::ui::{Command, Window};
use cellsymphony::work::jobs::JobKind;
use cs_testdata::shared_file;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

/// The app in a headless window of `size` points (wgpu on lavapipe when there is no GPU).
fn open_app(size: (f32, f32), startup: StartupOptions) -> Harness<'static, ViewerApp> {
    Harness::builder()
        .with_size(egui::vec2(size.0, size.1))
        .wgpu()
        .build_eframe(|cc| ViewerApp::new(cc, startup))
}

/// Steps the app until `done` holds (background threads load tiles meanwhile).
fn step_until(harness: &mut Harness<'_, ViewerApp>, what: &str, done: impl Fn(&ViewerApp) -> bool) {
    step_until_within(harness, what, Duration::from_secs(60), done);
}

/// [`step_until`] for work that takes longer than a minute.
fn step_until_within(
    harness: &mut Harness<'_, ViewerApp>,
    what: &str,
    limit: Duration,
    done: impl Fn(&ViewerApp) -> bool,
) {
    let deadline = Instant::now() + limit;
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
        && app.document().slide.as_ref().is_some_and(|s| {
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
    let mut harness = open_app(
        (1280.0, 800.0),
        StartupOptions {
            slide: Some(slide),
            ..Default::default()
        },
    );
    step_until(&mut harness, "slide open and sharp", slide_is_sharp);
    let app = harness.state();
    assert!(app.gpu_ready());
    assert!(app.toasts().items().is_empty(), "{:?}", app.toasts().items());
    harness.snapshot("viewer_cmu_fit");

    // Zoom to 20x with the toolbar preset, as a user would.
    // The first "20x" in the tree is the toolbar preset (the properties panel also shows a 20x objective).
    harness.query_all_by_label("20x").next().unwrap().click();
    step_until(&mut harness, "20x sharp", slide_is_sharp);
    let app = harness.state();
    let viewport = app.viewer().last_viewport.unwrap();
    assert!((app.viewer().camera.magnification(&viewport) - 20.0).abs() < 1e-6);
    harness.snapshot("viewer_cmu_20x");

    // Keyboard: '-' zooms out, '0' fits again.
    harness.key_press(egui::Key::Minus);
    harness.step();
    let zoomed_out = harness.state().viewer().camera.magnification(&viewport);
    assert!(zoomed_out < 20.0 - 1.0, "{zoomed_out}");

    // A file that cannot be opened: an error naming it, and the open slide stays.
    harness.state_mut().run_command(Command::OpenPath(bad));
    step_until(&mut harness, "the failed open is reported", |app| {
        app.is_opening().is_none()
    });
    let app = harness.state();
    let error = app
        .toasts()
        .items()
        .iter()
        .map(|t| t.text.clone())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(error.contains("unopenable.tiff"), "{error}");
    assert!(error.contains("stays open"), "{error}");
    assert!(
        app.document()
            .slide
            .as_ref()
            .is_some_and(|s| s.path.ends_with("CMU-1-Small-Region.svs"))
    );
}

#[test]
fn unreadable_tiles_are_reported_and_the_app_keeps_working() {
    let Some(slide) = shared_file("wsi/openslide-fixtures/unreadable.svs") else {
        return;
    };
    let mut harness = open_app(
        (900.0, 600.0),
        StartupOptions {
            slide: Some(slide),
            ..Default::default()
        },
    );
    step_until(&mut harness, "tile failures reported", |app| {
        app.document()
            .slide
            .as_ref()
            .is_some_and(|s| s.layer.failed_tile_count() > 0 && !s.layer.is_loading())
    });
    let app = harness.state();
    let message = app
        .document()
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
    let mut harness = open_app((900.0, 600.0), StartupOptions::default());
    harness.step();
    harness.get_by_label("Open slide…");
    harness.get_by_label_contains("drop a slide file");
    harness.snapshot("start_screen");
}

/// Drags the slide 150 points to the left and returns how far the view centre moved (world µm)
/// during the drag and in the 20 frames after release.
fn drag_and_release(harness: &mut Harness<'_, ViewerApp>) -> (f64, f64) {
    let start = egui::pos2(500.0, 350.0);
    let before = harness.state().viewer().camera.center_in_world;
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
    let released = harness.state().viewer().camera.center_in_world;
    for _ in 0..20 {
        harness.step();
    }
    let after = harness.state().viewer().camera.center_in_world;
    ((released - before).length(), (after - released).length())
}

#[test]
fn drag_pans_and_inertia_is_off_by_default() {
    let Some(slide) = shared_file("wsi/CMU-1-Small-Region.svs") else {
        return;
    };
    let mut harness = open_app(
        (1000.0, 700.0),
        StartupOptions {
            slide: Some(slide),
            ..Default::default()
        },
    );
    step_until(&mut harness, "slide open and sharp", slide_is_sharp);
    assert!(!harness.state().viewer().pan_inertia);
    let points_per_um = harness.state().viewer().camera.points_per_um;

    let (during, after) = drag_and_release(&mut harness);
    let dragged_um = 150.0 / points_per_um;
    assert!(
        (during - dragged_um).abs() < 0.05 * dragged_um,
        "drag moved {during} µm, expected {dragged_um}"
    );
    assert_eq!(after, 0.0, "the view glided without inertia");

    // View → Pan inertia: the view keeps gliding after release.
    harness.state_mut().viewer_mut().pan_inertia = true;
    let (_, after) = drag_and_release(&mut harness);
    assert!(after > 0.05 * dragged_um, "no glide with inertia on: {after} µm");
}

fn cells_loaded(app: &ViewerApp) -> bool {
    app.is_opening().is_none() && app.document().cells.is_some()
}

#[test]
fn xenium_cells_open_hover_and_pin_and_recolour_by_gene() {
    let Some(dir) = shared_file("xenium/sfe_toy_v1") else {
        return;
    };
    let mut harness = open_app(
        (1200.0, 800.0),
        StartupOptions {
            xenium: Some(dir),
            ..Default::default()
        },
    );
    step_until(&mut harness, "bundle open", cells_loaded);
    let app = harness.state();
    let cells = app.document().cells.as_ref().unwrap();
    assert_eq!(cells.len(), 526);
    assert!(harness.query_all_by_label_contains("526 cells").count() >= 1);

    // Hover the first cell's centroid: it is picked (its boundary contains the point) and its
    // id shows in the tooltip; a click pins it in the inspector.
    let first_id = cells.bundle.cells.ids[0].clone();
    let pos = world_to_window(app, cells.bundle.cells.x_um[0], cells.bundle.cells.y_um[0]);
    harness.hover_at(pos);
    for _ in 0..3 {
        harness.step();
    }
    assert_eq!(harness.state().viewer().hovered_cell, Some(0));
    harness.get_by_label(&first_id);
    harness.drag_at(pos);
    harness.drop_at(pos);
    harness.step();
    assert_eq!(harness.state().viewer().pinned_cell, Some(0));
    harness.step();
    harness.get_by_label("Inspector");

    // Colour by a gene from the layers panel: counts arrive from a background job.
    harness.get_by_label("Colour by gene").click();
    harness.step();
    harness.get_by_label("AKT1").click();
    step_until(&mut harness, "gene colouring", |app| {
        app.document()
            .cells
            .as_ref()
            .is_some_and(|c| matches!(c.colour_by, cellsymphony::layers::cell_layer::ColourBy::Gene(0)))
    });
    let numeric = harness
        .state()
        .document()
        .cells
        .as_ref()
        .unwrap()
        .numeric
        .clone()
        .unwrap();
    assert!(
        numeric.label.contains("AKT1") && numeric.max > numeric.min,
        "{numeric:?}"
    );

    // Transcripts: indexed in the background on first open, then read tile by tile (qv >= 20),
    // genes listed, the pinned cell's transcripts in the inspector.
    harness.get_by_label("Show transcripts").click();
    step_until(&mut harness, "transcripts drawn", |app| {
        app.document()
            .cells
            .as_ref()
            .and_then(|c| c.transcripts.as_ref())
            .is_some_and(|t| t.drawn_tiles() > 0 || t.has_current_density())
    });
    let layer = transcript_layer(harness.state());
    assert_eq!(layer.len(), 5260);
    assert_eq!(layer.index.total, 5260, "every transcript of this crop has qv >= 20");
    // The gene list is ordered by count; its search box finds a gene.
    harness
        .ctx
        .data_mut(|d| d.insert_temp(egui::Id::unique("transcript_gene_search"), "AKT1".to_owned()));
    harness.step();
    assert!(
        harness.query_all_by_label("AKT1").count() >= 2,
        "gene list of the transcripts layer"
    );
    let inspector_line = harness.query_all_by_label_contains("Transcripts: ").count();
    assert_eq!(inspector_line, 1, "the pinned cell's transcripts in the inspector");

    // A stricter quality threshold shows fewer.
    let mut style = {
        let t = transcript_layer(harness.state());
        cellsymphony::document::edit::TranscriptStyle {
            visible: t.visible,
            opacity: t.opacity,
            radius_px: t.radius_px,
            min_qv: t.min_qv,
        }
    };
    style.min_qv = 35;
    harness
        .state_mut()
        .run_command(Command::Edit(cellsymphony::document::edit::Edit::TranscriptStyle(
            style,
        )));
    harness.step();
    let t = transcript_layer(harness.state());
    assert!(t.len() < 5260 && !t.is_empty(), "{}", t.len());
}

/// The open bundle's transcript layer (the test has shown it).
fn transcript_layer(app: &ViewerApp) -> &cellsymphony::layers::transcript_layer::TranscriptLayer {
    app.document()
        .cells
        .as_ref()
        .and_then(|c| c.transcripts.as_ref())
        .expect("transcripts shown")
}

/// Window position of a world point (µm) in the viewer.
fn world_to_window(app: &ViewerApp, x_um: f64, y_um: f64) -> egui::Pos2 {
    let viewport = app.viewer().last_viewport.unwrap();
    let rect = app.viewer().viewer_rect.unwrap();
    let p = app
        .viewer()
        .camera
        .screen_from_world(&viewport)
        .transform_point2(glam::DVec2::new(x_um, y_um));
    rect.min + egui::vec2(p.x as f32, p.y as f32)
}

#[test]
fn demo_tissue_is_coloured_by_cell_type_on_the_aligned_slide() {
    let dir = std::env::temp_dir().join(format!("ui_demo_tissue_{}", std::process::id()));
    let options = cs_synth::SynthOptions {
        cells: 3000,
        seed: 3,
        ..Default::default()
    };
    let summary = cs_synth::generate(&options, &dir, &|_, _| {}, &|| false).unwrap();
    let startup = StartupOptions {
        xenium: Some(summary.bundle_dir.clone()),
        slide: summary.slide_path.clone(),
        alignment: summary.alignment_csv.clone(),
        demo: None,
        ..Default::default()
    };
    let mut harness = open_app((1280.0, 800.0), startup);
    step_until(&mut harness, "demo open and sharp", |app| {
        cells_loaded(app) && slide_is_sharp(app) && app.document().alignment.is_some()
    });
    let app = harness.state();
    let cells = app.document().cells.as_ref().unwrap();
    assert_eq!(
        cells.colour_by,
        cellsymphony::layers::cell_layer::ColourBy::Category("synthetic_cell_type".into())
    );
    let legend: Vec<&str> = cells
        .active_classes()
        .unwrap()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(legend, cs_synth::CELL_TYPES);
    harness.get_by_label("T cells");
    // The note about the alignment fades after a while: dismiss it so the snapshot is stable.
    harness.get_by_label("Dismiss").click();
    for _ in 0..3 {
        harness.step();
    }
    assert!(harness.state().toasts().items().is_empty());
    harness.snapshot("demo_cell_types_fit");

    // 40x on the first B cell: polygons over the H&E, the nucleus under the cell's outline.
    let cells = harness.state().document().cells.as_ref().unwrap();
    let column = cells.bundle.cells.categorical_column("synthetic_cell_type").unwrap();
    let b_cell = column
        .codes
        .iter()
        .position(|&c| column.categories[c as usize] == "B cells")
        .unwrap();
    let center = glam::DVec2::new(cells.bundle.cells.x_um[b_cell], cells.bundle.cells.y_um[b_cell]);
    let app = harness.state_mut();
    let viewport = app.viewer().last_viewport.unwrap();
    app.viewer_mut().camera.set_magnification(40.0, &viewport);
    app.viewer_mut().camera.center_in_world = center;
    // One frame plans the new view; then wait for its tiles.
    harness.step();
    step_until(&mut harness, "40x sharp", slide_is_sharp);
    harness.snapshot("demo_cell_types_40x");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn landmark_alignment_recovers_the_slide_placement() {
    let dir = std::env::temp_dir().join(format!("ui_landmarks_{}", std::process::id()));
    let options = cs_synth::SynthOptions {
        cells: 2000,
        seed: 5,
        ..Default::default()
    };
    let summary = cs_synth::generate(&options, &dir, &|_, _| {}, &|| false).unwrap();
    // The truth, which the user will not load: H&E pixel -> Xenium pixel.
    let truth = cs_xenium::read_alignment_csv(summary.alignment_csv.as_ref().unwrap()).unwrap();
    let pixel_size = 0.2125;
    let world_from_slide = |p: glam::DVec2| {
        let q = truth.scaled(pixel_size).apply(p.to_array());
        glam::DVec2::new(q[0], q[1])
    };
    let startup = StartupOptions {
        xenium: Some(summary.bundle_dir.clone()),
        slide: summary.slide_path.clone(),
        ..Default::default()
    };
    let mut harness = open_app((1280.0, 800.0), startup);
    step_until(&mut harness, "slide and cells open", |app| {
        cells_loaded(app) && slide_is_sharp(app)
    });
    assert!(harness.state().document().alignment.is_none());

    harness.get_by_label("Align by landmarks…").click();
    harness.step();
    // Three cells far apart; the matching slide pixel is where the truth puts each centroid.
    let cells = &harness.state().document().cells.as_ref().unwrap().bundle.cells;
    let n = cells.len();
    let by = |key: &dyn Fn(usize) -> f64| (0..n).min_by(|&a, &b| key(a).total_cmp(&key(b))).unwrap();
    let picks = [by(&|i| cells.x_um[i]), by(&|i| -cells.x_um[i]), by(&|i| -cells.y_um[i])];
    let points: Vec<(glam::DVec2, glam::DVec2)> = picks
        .iter()
        .map(|&i| {
            let world = glam::DVec2::new(cells.x_um[i], cells.y_um[i]);
            let slide_px = {
                let inverse = glam::DAffine2::from_cols_array(&truth.scaled(pixel_size).to_cols_array()).inverse();
                inverse.transform_point2(world)
            };
            (slide_px, world)
        })
        .collect();
    let click = |harness: &mut Harness<'_, ViewerApp>, pos: egui::Pos2| {
        harness.hover_at(pos);
        harness.step();
        harness.drag_at(pos);
        harness.drop_at(pos);
        harness.step();
    };
    for (slide_px, world) in &points {
        // Where the slide feature is drawn now (placed by its µm per pixel, not aligned).
        let app = harness.state();
        let shown_at = app
            .document()
            .slide
            .as_ref()
            .unwrap()
            .layer
            .world_from_slide
            .transform_point2(*slide_px);
        let a = world_to_window(app, shown_at.x, shown_at.y);
        let b = world_to_window(app, world.x, world.y);
        click(&mut harness, a);
        click(&mut harness, b);
    }
    let tool = harness.state().viewer().landmarks.clone().unwrap();
    assert_eq!(tool.pairs.len(), 3, "{tool:?}");
    harness.get_by_label("Apply").click();
    for _ in 0..3 {
        harness.step();
    }
    let app = harness.state();
    let alignment = app.document().alignment.as_ref().expect("applied");
    assert!(alignment.path.is_none() && app.viewer().landmarks.is_none());
    // Clicks land on whole screen points (about 1.6 µm each at this zoom): the map agrees with
    // the truth to a few µm across the slide.
    let placed = app.document().slide.as_ref().unwrap().layer.world_from_slide;
    for probe in [glam::DVec2::new(100.0, 100.0), glam::DVec2::new(2000.0, 1500.0)] {
        let error = (placed.transform_point2(probe) - world_from_slide(probe)).length();
        assert!(error < 8.0, "{probe}: {error} µm off");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Drags through `points` (window positions) with the primary button, holding `modifiers`.
fn drag_path(harness: &mut Harness<'_, ViewerApp>, points: &[egui::Pos2], modifiers: egui::Modifiers) {
    harness.event(egui::Event::ModifiersChanged(modifiers));
    harness.hover_at(points[0]);
    harness.step();
    harness.drag_at(points[0]);
    harness.step();
    for p in &points[1..] {
        harness.hover_at(*p);
        harness.step();
    }
    harness.drop_at(*points.last().unwrap());
    harness.step();
    harness.event(egui::Event::ModifiersChanged(egui::Modifiers::NONE));
    harness.step();
}

#[test]
fn lasso_and_rectangle_select_cells_and_undo_takes_them_back() {
    let Some(dir) = shared_file("xenium/sfe_toy_v1") else {
        return;
    };
    let mut harness = open_app(
        (1200.0, 800.0),
        StartupOptions {
            xenium: Some(dir),
            ..Default::default()
        },
    );
    step_until(&mut harness, "bundle open", cells_loaded);

    // L arms the lasso; a drag around the middle of the tissue selects the cells inside.
    harness.key_press(egui::Key::L);
    harness.step();
    assert_eq!(
        harness.state().viewer().tools.tool,
        cellsymphony::viewer::tools::Tool::Lasso
    );
    let (min, max) = harness.state().document().cells.as_ref().unwrap().bounds_in_world();
    let center = (min + max) * 0.5;
    let r = (max - min).min_element() * 0.3;
    let lasso_world: Vec<glam::DVec2> = (0..=24)
        .map(|k| {
            let t = k as f64 / 24.0 * std::f64::consts::TAU;
            center + glam::DVec2::new(r * t.cos(), 0.7 * r * t.sin())
        })
        .collect();
    let lasso: Vec<egui::Pos2> = lasso_world
        .iter()
        .map(|p| world_to_window(harness.state(), p.x, p.y))
        .collect();
    drag_path(&mut harness, &lasso, egui::Modifiers::NONE);
    let app = harness.state();
    let selection = app.document().selections.active().expect("a selection");
    let cells = &app.document().cells.as_ref().unwrap().bundle.cells;
    // The same cells by an independent test on the path the lasso recorded.
    let cs_analysis::Shape::Polygon(recorded) = &selection.steps[0].shape else {
        panic!("lasso gives a polygon")
    };
    let expected = (0..cells.len())
        .filter(|&i| cs_analysis::polygon_contains(recorded, [cells.x_um[i], cells.y_um[i]]))
        .count();
    let lassoed = selection.cell_count();
    assert!(lassoed > 50 && lassoed == expected, "{lassoed} vs {expected}");
    assert!(harness.query_all_by_label(&lassoed.to_string()).count() >= 1);

    // Shift + rectangle adds a box in a corner; Ctrl+Z takes it back.
    harness.key_press(egui::Key::R);
    harness.step();
    let a = world_to_window(harness.state(), min.x, min.y);
    let b = world_to_window(
        harness.state(),
        min.x + 0.2 * (max.x - min.x),
        min.y + 0.2 * (max.y - min.y),
    );
    drag_path(&mut harness, &[a, a.lerp(b, 0.5), b], egui::Modifiers::SHIFT);
    let added = harness.state().document().selections.active().unwrap().cell_count();
    assert!(added > lassoed, "{added} after adding a rectangle to {lassoed}");
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    harness.step();
    assert_eq!(
        harness.state().document().selections.active().unwrap().cell_count(),
        lassoed
    );
}

#[test]
fn a_selection_shows_its_composition_against_the_rest() {
    let dir = std::env::temp_dir().join(format!("ui_composition_{}", std::process::id()));
    let options = cs_synth::SynthOptions {
        cells: 3000,
        seed: 3,
        write_slide: false,
        ..Default::default()
    };
    let summary = cs_synth::generate(&options, &dir, &|_, _| {}, &|| false).unwrap();
    let mut harness = open_app(
        (1400.0, 900.0),
        StartupOptions {
            xenium: Some(summary.bundle_dir.clone()),
            ..Default::default()
        },
    );
    step_until(&mut harness, "bundle open", cells_loaded);
    harness.key_press(egui::Key::R);
    harness.step();
    let (min, max) = harness.state().document().cells.as_ref().unwrap().bounds_in_world();
    let a = world_to_window(harness.state(), min.x, min.y);
    let b = world_to_window(harness.state(), (min.x + max.x) / 2.0, (min.y + max.y) / 2.0);
    drag_path(&mut harness, &[a, a.lerp(b, 0.5), b], egui::Modifiers::NONE);
    harness.step();
    let app = harness.state();
    let selection = app.document().selections.active().unwrap();
    let composition = app.runtime().ui.selections.composition.result.clone().unwrap().unwrap();
    // Counts agree with counting the types of the selected cells directly.
    let column = app
        .document()
        .cells
        .as_ref()
        .unwrap()
        .bundle
        .cells
        .categorical_column("synthetic_cell_type")
        .unwrap();
    for (class, entry) in composition.classes.iter().enumerate() {
        let direct = selection
            .cells
            .iter()
            .filter(|&c| column.codes[c] == class as u32)
            .count() as u64;
        assert_eq!(entry.count_in_group, direct);
        assert!(entry.q_value >= entry.p_value - 1e-12 && entry.q_value <= 1.0);
    }
    assert_eq!(composition.cells_in_group as usize, selection.cell_count());
    assert_eq!(composition.cells_in_reference as usize, 3000 - selection.cell_count());
    harness.get_by_label("% rest");
    harness.get_by_label("composition of");
    let selected = selection.cell_count();

    // Exports run in the background; the GeoJSON comes back in as the same cells.
    use cellsymphony::io::export::{ExportKind, PlotKind};
    let exports = [
        (ExportKind::StatsCsv, dir.join("stats.csv")),
        (ExportKind::PlotSvg(PlotKind::Composition), dir.join("chart.svg")),
        (ExportKind::CellsCsv, dir.join("cells.csv")),
        (ExportKind::SelectionsGeoJson, dir.join("selections.geojson")),
    ];
    for (kind, path) in &exports {
        harness
            .state_mut()
            .file_chosen(DialogPurpose::Export(*kind), path.clone());
        step_until(&mut harness, "export written", |app| app.is_opening().is_none());
        assert!(
            path.exists(),
            "{} not written: {:?}",
            path.display(),
            harness.state().toasts().items()
        );
    }
    let stats = std::fs::read_to_string(dir.join("stats.csv")).unwrap();
    assert!(
        stats.contains("#Column: synthetic_cell_type") && stats.lines().count() == 5 + 1 + 6,
        "{stats}"
    );
    let svg = std::fs::read_to_string(dir.join("chart.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("T cells") && svg.trim_end().ends_with("</svg>"));
    let cells_csv = std::fs::read_to_string(dir.join("cells.csv")).unwrap();
    assert_eq!(cells_csv.lines().count(), 3 + selected);
    // The chart as shown, cut from a screenshot of the window.
    harness.state_mut().file_chosen(
        DialogPurpose::ExportPlotPng(PlotKind::Composition),
        dir.join("chart.png"),
    );
    for _ in 0..3 {
        harness.step();
    }
    let png = image::open(dir.join("chart.png"))
        .expect("chart.png written")
        .to_rgba8();
    let shown = harness.state().runtime().ui.selections.plot_rects[&PlotKind::Composition];
    assert_eq!(png.width(), shown.width().round() as u32, "{shown:?}");

    // Differential expression in the background, then its CSV.
    harness.get_by_label("Compute").click();
    step_until(&mut harness, "differential expression", |app| {
        app.document().current_de_result().is_some()
    });
    let de = harness.state().document().current_de_result().unwrap();
    assert_eq!(de.len(), 63, "every gene of the panel is tested");
    assert!(de.windows(2).all(|w| w[0].result.score >= w[1].result.score));
    harness
        .state_mut()
        .file_chosen(DialogPurpose::Export(ExportKind::DeCsv), dir.join("de.csv"));
    step_until(&mut harness, "DE CSV written", |app| app.is_opening().is_none());
    let de_csv = std::fs::read_to_string(dir.join("de.csv")).unwrap();
    assert_eq!(de_csv.lines().count(), 4 + 63);

    // Neighbourhood enrichment over all cells (radius 30 µm), in the background.
    harness.state_mut().runtime_mut().ui.selections.nhood_settings.n_perms = 100;
    harness.get_by_label("Run");
    // (The button sits below the fold of the panel's scroll area; start it as the click would.)
    let settings = harness.state().runtime().ui.selections.nhood_settings.clone();
    harness.state_mut().run_command(Command::RunNhood(settings));
    step_until(&mut harness, "neighbourhood enrichment", |app| {
        app.current_nhood_result().is_some()
    });
    let nhood = harness.state().current_nhood_result().unwrap();
    assert_eq!((nhood.n_classes, nhood.n_cells, nhood.n_perms), (6, 3000, 100));
    let epithelial = 2;
    assert!(nhood.zscore(epithelial, epithelial) > 3.0, "{:?}", nhood.zscores);

    for (plot, name) in [(PlotKind::Volcano, "volcano.svg"), (PlotKind::Heatmap, "heatmap.svg")] {
        harness
            .state_mut()
            .file_chosen(DialogPurpose::Export(ExportKind::PlotSvg(plot)), dir.join(name));
        step_until(&mut harness, "plot written", |app| app.is_opening().is_none());
        let svg = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{name}");
    }

    harness
        .state_mut()
        .file_chosen(DialogPurpose::ImportSelections, dir.join("selections.geojson"));
    harness.step();
    let app = harness.state();
    assert_eq!(app.document().selections.items.len(), 2);
    assert_eq!(app.document().selections.active().unwrap().cell_count(), selected);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn models_tab_trains_a_classifier_and_finds_niches_in_the_background() {
    let dir = std::env::temp_dir().join(format!("ui_models_{}", std::process::id()));
    let options = cs_synth::SynthOptions {
        cells: 2000,
        seed: 17,
        ..Default::default()
    };
    let summary = cs_synth::generate(&options, &dir, &|_, _| {}, &|| false).unwrap();
    let startup = StartupOptions {
        xenium: Some(summary.bundle_dir.clone()),
        slide: summary.slide_path.clone(),
        alignment: summary.alignment_csv.clone(),
        demo: None,
        ..Default::default()
    };
    let mut harness = open_app((1280.0, 900.0), startup);
    step_until(&mut harness, "bundle and slide open", |app| {
        cells_loaded(app) && app.document().alignment.is_some()
    });
    harness.get_by_label("Models").click();
    harness.run_steps(2);
    harness.get_by_label("Train and predict");
    harness.get_by_label("Find niches");
    {
        let app = harness.state_mut();
        // Lavapipe is the GPU here; the CPU backend is the one the tab picks for it.
        let models = &mut app.runtime_mut().ui.models;
        assert_eq!(models.settings.device, cs_models::ComputeDevice::Cpu);
        models.cache_dir = Some(dir.join("run-cache"));
        models.settings.epochs = 4;
        models.settings.learning_rate = 1e-3;
        models.settings.labels = cellsymphony::work::model_runs::LabelChoice::Column("synthetic_cell_type".into());
        app.run_command(Command::RunClassifier);
    }
    harness.run_steps(2);
    harness.get_by_label("Cancel");
    step_until(&mut harness, "classifier finished", |app| {
        app.document().models.classifier.is_some() || app.runtime().ui.models.error.is_some()
    });
    let app = harness.state();
    assert!(
        app.runtime().ui.models.error.is_none(),
        "{:?}",
        app.runtime().ui.models.error
    );
    let result = app.document().models.classifier.as_ref().unwrap();
    assert_eq!(result.rows.len(), 2000);
    assert!(result.report.macro_f1 > 0.7, "macro-F1 {}", result.report.macro_f1);
    let cells = app.document().cells.as_ref().unwrap();
    assert_eq!(
        cells.colour_by,
        cellsymphony::layers::cell_layer::ColourBy::Category(cellsymphony::document::models::PREDICTED_COLUMN.into())
    );
    let predicted = cells
        .bundle
        .cells
        .categorical_column(cellsymphony::document::models::PREDICTED_COLUMN)
        .unwrap();
    assert!(
        predicted
            .codes
            .iter()
            .all(|&c| (c as usize) < predicted.categories.len())
    );
    harness.get_by_label("macro");
    harness.get_by_label_contains("confidences calibrated: temperature");
    // Predictions less confident than the slider's threshold show as "uncertain" (grey), and
    // back when it is 0.
    let confidences = harness
        .state()
        .document()
        .models
        .classifier
        .as_ref()
        .unwrap()
        .confidence
        .clone();
    let below = confidences.iter().filter(|&&c| c < 0.9).count();
    harness.state_mut().run_command(Command::SetUncertainBelow(0.9));
    let predicted_column = |app: &ViewerApp| {
        app.document()
            .cells
            .as_ref()
            .unwrap()
            .bundle
            .cells
            .categorical_column(cellsymphony::document::models::PREDICTED_COLUMN)
            .unwrap()
            .clone()
    };
    let column = predicted_column(harness.state());
    let uncertain = column.categories.iter().position(|c| c == "uncertain").unwrap() as u32;
    assert_eq!(column.codes.iter().filter(|&&c| c == uncertain).count(), below);
    assert!(below > 0 && below < 2000, "{below} uncertain");
    harness.run_steps(2);
    harness.get_by_label_contains(&format!("{below} of 2000 cells ("));
    harness.state_mut().run_command(Command::SetUncertainBelow(0.0));
    assert!(
        !predicted_column(harness.state())
            .categories
            .iter()
            .any(|c| c == "uncertain")
    );

    // The trained model is kept beside the cached run; Save model copies it to a folder that
    // loads as a model.
    harness.get_by_label("Save model...");
    let saved = dir.join("saved-model");
    let kept = harness
        .state()
        .document()
        .models
        .classifier
        .as_ref()
        .unwrap()
        .model_dir
        .clone()
        .unwrap();
    harness.state_mut().run_command(Command::SaveModel {
        from: kept,
        to: saved.clone(),
    });
    let loaded = cs_models::model_file::load_classifier(&saved, &cs_models::cpu_device()).unwrap();
    assert_eq!(loaded.class_names, result_class_names(harness.state()));
    // Applying the saved folder predicts every cell again, with the model's training report.
    let trained_predictions = harness
        .state()
        .document()
        .models
        .classifier
        .as_ref()
        .unwrap()
        .predicted
        .clone();
    harness.get_by_label("Apply a saved model...");
    harness
        .state_mut()
        .file_chosen(DialogPurpose::ApplyModel, saved.clone());
    step_until(&mut harness, "saved model applied", |app| {
        app.runtime().ui.models.error.is_some()
            || app
                .document()
                .models
                .classifier
                .as_ref()
                .is_some_and(|r| r.label_source.starts_with("saved model saved-model"))
    });
    let app = harness.state();
    assert!(
        app.runtime().ui.models.error.is_none(),
        "{:?}",
        app.runtime().ui.models.error
    );
    let applied = app.document().models.classifier.as_ref().unwrap();
    assert_eq!(applied.rows.len(), 2000);
    assert_eq!(applied.class_names, loaded.class_names);
    let same = applied
        .predicted
        .iter()
        .zip(&trained_predictions)
        .filter(|(a, b)| a == b)
        .count();
    assert!(
        same >= 1990,
        "{same} of 2000 predictions agree with the run that trained the model"
    );

    // Niches on a selection only: cells outside it stay unassigned.
    {
        let app = harness.state_mut();
        let cells = app.document().cells.as_ref().unwrap();
        let (lo, hi) = cells.bounds_in_world();
        let index = cells.index.clone();
        let n = cells.len();
        let (x0, y0, xm, y1) = (lo.x as f32, lo.y as f32, ((lo.x + hi.x) / 2.0) as f32, hi.y as f32);
        let shape = cs_analysis::Shape::Polygon(vec![[x0, y0], [xm, y0], [xm, y1], [x0, y1]]);
        app.document_mut().selections.create(n);
        app.document_mut()
            .selections
            .apply(cs_analysis::Combine::Replace, shape, &index, n);
        let settings = &mut app.runtime_mut().ui.models.settings;
        settings.selection_only = true;
        settings.k = 4;
        settings.niche_epochs = 3;
        app.run_command(Command::RunNiches);
    }
    step_until(&mut harness, "niches finished", |app| {
        app.document().models.niches.is_some() || app.runtime().ui.models.error.is_some()
    });
    let app = harness.state();
    assert!(
        app.runtime().ui.models.error.is_none(),
        "{:?}",
        app.runtime().ui.models.error
    );
    let niches = app.document().models.niches.as_ref().unwrap();
    let selected = app.document().selections.active().unwrap().cells.count();
    assert_eq!(niches.rows.len(), selected);
    assert!(selected > 0 && selected < 2000);
    let column = app
        .document()
        .cells
        .as_ref()
        .unwrap()
        .bundle
        .cells
        .categorical_column(cellsymphony::document::models::CLUSTER_COLUMN)
        .unwrap();
    assert_eq!(
        column.codes.iter().filter(|&&c| c != cs_xenium::MISSING_CODE).count(),
        selected
    );
    harness.get_by_label_contains("matched-pair retrieval");

    // A ViT encoder from the Morphology row: without weights a run is refused with the reason; a
    // weights file of another architecture switches the choice to the one it holds.
    harness.get_by_value("built-in (no weights)").click();
    harness.run_steps(2);
    harness.get_by_label("ViT-B/16").click();
    harness.run_steps(2);
    harness.get_by_label("no weights file");
    harness.state_mut().run_command(Command::RunNiches);
    let last_toast = |app: &ViewerApp| app.toasts().items().last().map(|t| t.text.clone()).unwrap_or_default();
    assert!(last_toast(harness.state()).contains("needs its weights"));
    let weights = dir.join("vit_s16.safetensors");
    cs_models::vit::VitPreset::VitS16
        .config()
        .write_seeded_weights(&weights, 1)
        .unwrap();
    harness
        .state_mut()
        .file_chosen(DialogPurpose::VitWeights, weights.clone());
    let app = harness.state();
    assert_eq!(
        app.runtime().ui.models.settings.vit_preset,
        Some(cs_models::vit::VitPreset::VitS16)
    );
    assert_eq!(
        app.runtime().ui.models.settings.vit_weights.as_deref(),
        Some(weights.as_path())
    );
    assert!(last_toast(app).contains("ViT-S/16"), "{}", last_toast(app));
    let not_weights = summary.slide_path.clone().unwrap();
    harness.state_mut().file_chosen(DialogPurpose::VitWeights, not_weights);
    let app = harness.state();
    assert!(last_toast(app).contains("he.tiff"), "{}", last_toast(app));
    assert_eq!(
        app.runtime().ui.models.settings.vit_weights.as_deref(),
        Some(weights.as_path())
    );
    harness.run_steps(2);
    harness.get_by_label("vit_s16.safetensors");

    // Virtual expression from the H&E: scores per gene, a heatmap layer, and the split view with
    // the virtual heatmap beside the measured one.
    {
        let app = harness.state_mut();
        app.runtime_mut().ui.models.settings.selection_only = false;
        app.runtime_mut().ui.models.virtual_genes = "EPCAM, KRT8, PTPRC".into();
        app.run_command(Command::RunVirtualExpression);
    }
    step_until(&mut harness, "virtual expression", |app| {
        app.document().models.virtual_result.is_some() || app.runtime().ui.models.error.is_some()
    });
    assert!(
        harness.state().runtime().ui.models.error.is_none(),
        "{:?}",
        harness.state().runtime().ui.models.error
    );
    let result = harness.state().document().models.virtual_result.clone().unwrap();
    let genes: Vec<&str> = result.scores.iter().map(|s| s.gene.as_str()).collect();
    assert_eq!(genes, ["EPCAM", "KRT8", "PTPRC"]);
    assert!(
        result.scores[0].pearson > result.scores[0].control_pearson,
        "{:?}",
        result.scores[0]
    );
    let layer = harness.state().document().models.virtual_layer.as_ref().unwrap();
    assert!(layer.visible);
    assert_eq!(layer.result.predicted.len(), result.grid.columns * result.grid.rows * 3);
    harness.run_steps(2);
    harness.get_by_label("Show heatmap");
    harness
        .state_mut()
        .run_command(Command::ShowVirtualGene { gene: 2, visible: true });
    assert_eq!(
        harness
            .state()
            .document()
            .models
            .virtual_layer
            .as_ref()
            .unwrap()
            .gene_name(),
        "PTPRC"
    );
    harness.state_mut().run_command(Command::SplitVirtualMeasured);
    let split = harness.state().runtime().viewer.split.unwrap();
    assert_eq!(
        (split.left.patches, split.right.patches),
        (
            Some(cellsymphony::layers::patch_layer::PatchValues::Virtual),
            Some(cellsymphony::layers::patch_layer::PatchValues::Measured)
        )
    );
    harness.run_steps(3);
    harness.get_by_value("virtual PTPRC");
    harness.get_by_value("measured PTPRC");
    harness.state_mut().runtime_mut().viewer.split = None;

    // Compare models: every variant and the baselines on the same split, shown as a table.
    {
        let app = harness.state_mut();
        let models = &mut app.runtime_mut().ui.models;
        // Back to the built-in encoder (the ViT above was for its weights checks).
        models.settings.vit_preset = None;
        models.settings.selection_only = false;
        models.comparison.seeds = 1;
        models.comparison.split = cs_models::evaluate::SplitKind::Random;
        app.run_command(Command::CompareModels);
    }
    // Four variants of the default size (6 layers, at least 400 steps each) and four baselines.
    step_until_within(&mut harness, "models compared", Duration::from_secs(400), |app| {
        app.document().models.comparison.is_some() || app.runtime().ui.models.error.is_some()
    });
    assert!(
        harness.state().runtime().ui.models.error.is_none(),
        "{:?}",
        harness.state().runtime().ui.models.error
    );
    let comparison = harness.state().document().models.comparison.clone().unwrap();
    let methods: Vec<(String, String)> = comparison
        .evaluation
        .methods
        .iter()
        .map(|m| (m.method.clone(), m.inputs.clone()))
        .collect();
    assert_eq!(methods.len(), 8, "{methods:?}");
    assert!(comparison.evaluation.methods.iter().all(|m| m.macro_f1.len() == 1));
    harness.run_steps(2);
    harness.get_by_label("dual-modality");
    harness.get_by_label("nearest centroid");
    let _ = std::fs::remove_dir_all(&dir);
}

fn result_class_names(app: &ViewerApp) -> Vec<String> {
    app.document()
        .models
        .classifier
        .as_ref()
        .map(|r| r.class_names.clone())
        .unwrap_or_default()
}

#[test]
fn sessions_round_trip_through_a_moved_folder_and_a_corrupt_file_offers_the_autosave() {
    use cs_analysis::{Combine, Shape};
    let root = std::env::temp_dir().join(format!("ui_sessions_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let project = root.join("project");
    let options = cs_synth::SynthOptions {
        cells: 600,
        seed: 8,
        ..Default::default()
    };
    let summary = cs_synth::generate(&options, &project.join("data"), &|_, _| {}, &|| false).unwrap();
    let autosave_dir = root.join("autosave");
    let startup = StartupOptions {
        xenium: Some(summary.bundle_dir.clone()),
        slide: summary.slide_path.clone(),
        alignment: summary.alignment_csv.clone(),
        autosave_dir: Some(autosave_dir.clone()),
        ..Default::default()
    };
    let mut harness = open_app((1280.0, 800.0), startup);
    step_until(&mut harness, "tissue open", |app| {
        cells_loaded(app) && app.document().slide.is_some() && app.document().alignment.is_some()
    });
    assert!(harness.state().session().offer.is_none(), "nothing crashed before");

    // What a user makes: a selection, a recoloured class, a fainter slide, a view.
    let app = harness.state_mut();
    let cells = app.document_mut().cells.as_mut().unwrap();
    let (min, max) = cells.bounds_in_world();
    let mid = (min + max) / 2.0;
    let square: Vec<[f32; 2]> = [[min.x, min.y], [mid.x, min.y], [mid.x, mid.y], [min.x, mid.y]]
        .iter()
        .map(|p| [p[0] as f32, p[1] as f32])
        .collect();
    let classes = cells.active_classes_mut().unwrap();
    classes[0].colour = egui::Color32::from_rgb(1, 2, 3);
    classes[1].visible = false;
    let first_class = classes[0].name.clone();
    let (index, n) = (cells.index.clone(), cells.len());
    let doc = app.document_mut();
    doc.selections
        .apply(Combine::Replace, Shape::Polygon(square), &index, n);
    doc.selections.items[0].name = "lower left".into();
    doc.annotations.add(cellsymphony::io::records::AnnotationShape::Line {
        points_um: vec![[min.x, min.y], [mid.x, mid.y]],
    });
    let selected = doc.selections.items[0].cell_count();
    assert!(selected > 0);
    doc.slide.as_mut().unwrap().layer.opacity = 0.4;
    app.viewer_mut().camera.center_in_world = mid;
    app.viewer_mut().camera.points_per_um = 2.5;
    // Cells coloured by a gene, with magma and a chosen range.
    app.run_command(Command::ColourByGene(0));
    step_until(&mut harness, "gene counts", |app| {
        app.busy_jobs().is_empty() && app.document().cells.as_ref().unwrap().numeric.is_some()
    });
    let app = harness.state_mut();
    let cells = app.document_mut().cells.as_mut().unwrap();
    let numeric = cells.numeric.as_mut().unwrap();
    numeric.colour_map = cellsymphony::layers::palettes::ColourMap::Magma;
    (numeric.min, numeric.max) = (1.0, 5.0);
    cells.numeric_changed();
    let session_path = project.join("study.cellsymphony");
    app.file_chosen(DialogPurpose::SaveSession, session_path.clone());
    step_until(&mut harness, "session saved", |app| {
        !app.is_running(JobKind::SessionWrite) && app.session().path.is_some()
    });
    assert!(!harness.state().has_unsaved_changes());
    let text = std::fs::read_to_string(&session_path).unwrap();
    assert!(text.contains("\"relative\": \"data/xenium\""), "{text}");
    drop(harness);

    // The project folder moves; the session still opens everything from its new place.
    let moved = root.join("moved");
    std::fs::rename(&project, &moved).unwrap();
    let moved_session = moved.join("study.cellsymphony");
    let startup = StartupOptions {
        session: Some(moved_session.clone()),
        autosave_dir: Some(autosave_dir.clone()),
        ..Default::default()
    };
    let mut harness = open_app((1280.0, 800.0), startup);
    step_until(&mut harness, "session restored", |app| {
        !app.session().is_restoring()
            && cells_loaded(app)
            && app.document().slide.is_some()
            && app.busy_jobs().is_empty()
    });
    let numeric = harness
        .state()
        .document()
        .cells
        .as_ref()
        .unwrap()
        .numeric
        .clone()
        .unwrap();
    assert!(matches!(
        harness.state().document().cells.as_ref().unwrap().colour_by,
        cellsymphony::layers::cell_layer::ColourBy::Gene(0)
    ));
    assert_eq!(numeric.colour_map, cellsymphony::layers::palettes::ColourMap::Magma);
    assert_eq!((numeric.min, numeric.max), (1.0, 5.0));

    let app = harness.state();
    assert!(app.document().cells.as_ref().unwrap().dir.starts_with(&moved));
    assert!(app.document().slide.as_ref().unwrap().path.starts_with(&moved));
    assert_eq!(app.document().selections.items.len(), 1);
    assert_eq!(app.document().selections.items[0].name, "lower left");
    assert_eq!(app.document().selections.items[0].cell_count(), selected);
    let cells = app.document().cells.as_ref().unwrap();
    let (_, classes) = cells.classes.iter().find(|(c, _)| c == "synthetic_cell_type").unwrap();
    assert_eq!(classes[0].name, first_class);
    assert_eq!(classes[0].colour, egui::Color32::from_rgb(1, 2, 3));
    assert!(!classes[1].visible);
    assert!((app.document().slide.as_ref().unwrap().layer.opacity - 0.4).abs() < 1e-6);
    assert!((app.viewer().camera.points_per_um - 2.5).abs() < 1e-9);
    assert!((app.viewer().camera.center_in_world - mid).length() < 1e-6);
    assert!(app.document().alignment.is_some());
    assert_eq!(app.document().annotations.items.len(), 1);
    assert!((app.document().annotations.items[0].shape.length_um().unwrap() - min.distance(mid)).abs() < 1e-9);

    // An edit, autosaved; then the session file is truncated: opening it names the problem and
    // offers the autosave, which holds the edit.
    let app = harness.state_mut();
    app.document_mut().selections.items[0].name = "edited".into();
    app.session_mut().autosave_soon();
    step_until(&mut harness, "autosaved", |app| {
        !app.is_running(JobKind::SessionWrite)
            && std::fs::read_to_string(&app.session().autosave.as_ref().unwrap().file)
                .is_ok_and(|t| t.contains("edited"))
    });
    let bytes = std::fs::read(&moved_session).unwrap();
    std::fs::write(&moved_session, &bytes[..bytes.len() / 2]).unwrap();
    // Opening it over the unsaved edit asks first; discarding the edit opens it.
    harness
        .state_mut()
        .file_chosen(DialogPurpose::OpenSession, moved_session.clone());
    harness.step();
    harness.step();
    harness.get_by_label("Discard changes and open").click();
    harness.step();
    harness.step();
    let offer = harness
        .state()
        .session()
        .offer
        .clone()
        .expect("the autosave is offered");
    assert!(
        offer.reason.contains("study.cellsymphony") && offer.reason.contains("truncated"),
        "{}",
        offer.reason
    );
    harness.step();
    harness.get_by_label("Restore").click();
    step_until(&mut harness, "autosave restored", |app| {
        !app.session().is_restoring() && cells_loaded(app) && app.session().offer.is_none()
    });
    assert_eq!(harness.state().document().selections.items[0].name, "edited");
    drop(harness);

    // A session that did not close cleanly (its lock is stale) is offered at the next start.
    let crashed = autosave_dir.join("session-999999999.json");
    std::fs::copy(
        autosave_dir.join(format!("session-{}.json", std::process::id())),
        &crashed,
    )
    .unwrap();
    let lock = autosave_dir.join("session-999999999.lock");
    std::fs::write(&lock, "999999999").unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(600);
    std::fs::File::options()
        .write(true)
        .open(&lock)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let startup = StartupOptions {
        autosave_dir: Some(autosave_dir.clone()),
        ..Default::default()
    };
    let mut harness = open_app((1280.0, 800.0), startup);
    harness.step();
    let offer = harness
        .state()
        .session()
        .offer
        .clone()
        .expect("the crashed session is offered");
    assert!(offer.reason.contains("did not close cleanly"), "{}", offer.reason);
    assert!(offer.summary.contains("1 selection"), "{}", offer.summary);
    harness.get_by_label("Not now").click();
    harness.step();
    assert!(harness.state().session().offer.is_none());
    assert!(!lock.exists(), "the stale lock is cleared once answered");
    drop(harness);
    std::fs::remove_dir_all(&root).ok();
}

/// A press and release at `pos` (a click).
fn click_at(harness: &mut Harness<'_, ViewerApp>, pos: egui::Pos2) {
    harness.hover_at(pos);
    harness.step();
    harness.drag_at(pos);
    harness.step();
    harness.drop_at(pos);
    harness.step();
    harness.step();
}

/// A synthetic tissue (`cells`, `seed`) with its aligned H&E, generated into a fresh temp folder
/// named after `name`, open in the app with its slide sharp and the alignment note dismissed (so
/// snapshots do not depend on when it fades).
fn open_synthetic_tissue(name: &str, cells: usize, seed: u64) -> (std::path::PathBuf, Harness<'static, ViewerApp>) {
    let dir = std::env::temp_dir().join(format!("{name}_{}", std::process::id()));
    let options = cs_synth::SynthOptions {
        cells,
        seed,
        ..Default::default()
    };
    let summary = cs_synth::generate(&options, &dir, &|_, _| {}, &|| false).unwrap();
    let startup = StartupOptions {
        xenium: Some(summary.bundle_dir.clone()),
        slide: summary.slide_path.clone(),
        alignment: summary.alignment_csv.clone(),
        ..Default::default()
    };
    let mut harness = open_app((1280.0, 800.0), startup);
    step_until(&mut harness, "tissue open and sharp", |app| {
        cells_loaded(app) && slide_is_sharp(app) && app.document().alignment.is_some()
    });
    harness.get_by_label("Dismiss").click();
    harness.step();
    (dir, harness)
}

#[test]
fn annotation_tools_draw_measure_undo_and_round_trip_through_qupath_geojson() {
    use cellsymphony::io::records::AnnotationShape;
    use cellsymphony::viewer::tools::Tool;
    let (dir, mut harness) = open_synthetic_tissue("ui_annotations", 800, 9);
    harness.get_by_label("Annotations").click();
    harness.step();
    let (min, max) = harness.state().document().cells.as_ref().unwrap().bounds_in_world();
    let at = |fx: f64, fy: f64| glam::DVec2::new(min.x + fx * (max.x - min.x), min.y + fy * (max.y - min.y));

    // M arms the ruler: a drag measures the distance between its ends, in µm.
    harness.key_press(egui::Key::M);
    harness.step();
    assert_eq!(harness.state().viewer().tools.tool, Tool::AnnotateLine);
    let (a, b) = (at(0.2, 0.3), at(0.6, 0.3));
    let (pa, pb) = (
        world_to_window(harness.state(), a.x, a.y),
        world_to_window(harness.state(), b.x, b.y),
    );
    drag_path(&mut harness, &[pa, pa.lerp(pb, 0.5), pb], egui::Modifiers::NONE);
    let app = harness.state();
    assert_eq!(app.document().annotations.items.len(), 1);
    let AnnotationShape::Line { points_um } = app.document().annotations.items[0].shape.clone() else {
        panic!("the ruler gives a line")
    };
    let measured = app.document().annotations.items[0].shape.length_um().unwrap();
    let expected = glam::DVec2::from_array(points_um[0]).distance(glam::DVec2::from_array(points_um[1]));
    assert!((measured - expected).abs() < 1e-9);
    // The screen is about a point per pixel: the ends land within a couple of points of the drag.
    let um_per_point = 1.0 / app.viewer().camera.points_per_um;
    assert!(
        (measured - a.distance(b)).abs() < 3.0 * um_per_point,
        "{measured} vs {}",
        a.distance(b)
    );
    // The measurement is listed in the tab.
    harness.get_by_label_contains(&cellsymphony::util::format::format_length(
        measured,
        cellsymphony::util::format::LengthUnits::Automatic,
    ));

    // X arms the box: its area is width x height.
    harness.key_press(egui::Key::X);
    harness.step();
    let (c, d) = (at(0.1, 0.6), at(0.4, 0.9));
    let (pc, pd) = (
        world_to_window(harness.state(), c.x, c.y),
        world_to_window(harness.state(), d.x, d.y),
    );
    drag_path(&mut harness, &[pc, pc.lerp(pd, 0.5), pd], egui::Modifiers::NONE);
    let app = harness.state();
    let AnnotationShape::Rectangle { min_um, max_um } = app.document().annotations.items[1].shape else {
        panic!("the box gives a rectangle")
    };
    let area = app.document().annotations.items[1].shape.area_um2().unwrap();
    assert!((area - (max_um[0] - min_um[0]) * (max_um[1] - min_um[1])).abs() < 1e-6);

    // O places a point; T a label with the text typed in the tab.
    harness.key_press(egui::Key::O);
    harness.step();
    let p = at(0.5, 0.5);
    harness.get_by_label("Point"); // the armed tool's button is in the tab
    let pp = world_to_window(harness.state(), p.x, p.y);
    click_at(&mut harness, pp);
    harness.state_mut().viewer_mut().tools.annotation.label_text = "tumour front".into();
    harness.key_press(egui::Key::T);
    harness.step();
    click_at(&mut harness, pp + egui::vec2(40.0, 0.0));
    let app = harness.state();
    assert_eq!(app.document().annotations.items.len(), 4);
    assert!(
        matches!(&app.document().annotations.items[3].shape, AnnotationShape::Text { text, .. } if text == "tumour front")
    );

    // A selection after the annotations: Ctrl+Z takes back the latest edit first (the selection),
    // then the label; Ctrl+Shift+Z brings back the label.
    let app = harness.state_mut();
    let cells = app.document().cells.as_ref().unwrap();
    let (index, n) = (cells.index.clone(), cells.len());
    let square = vec![
        [c.x as f32, c.y as f32],
        [d.x as f32, c.y as f32],
        [d.x as f32, d.y as f32],
    ];
    app.document_mut().selections.apply(
        cs_analysis::Combine::Replace,
        cs_analysis::Shape::Polygon(square),
        &index,
        n,
    );
    harness.key_press(egui::Key::Escape); // back to Navigate, so keys reach the viewer
    harness.step();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    harness.step();
    assert!(harness.state().document().selections.items.is_empty());
    assert_eq!(harness.state().document().annotations.items.len(), 4);
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    harness.step();
    assert_eq!(harness.state().document().annotations.items.len(), 3);
    harness.key_press_modifiers(egui::Modifiers::COMMAND | egui::Modifiers::SHIFT, egui::Key::Z);
    harness.step();
    assert_eq!(harness.state().document().annotations.items.len(), 4);
    for _ in 0..3 {
        harness.step();
    }
    harness.snapshot("annotations_tab");

    // GeoJSON in slide pixels (as QuPath works on the H&E), and back.
    let path = dir.join("annotations.geojson");
    harness
        .state_mut()
        .file_chosen(DialogPurpose::ExportAnnotations, path.clone());
    step_until(&mut harness, "exported", |_| path.exists());
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let first = &json["features"][0];
    assert_eq!(first["geometry"]["type"], "LineString");
    assert_eq!(first["properties"]["objectType"], "annotation");
    let app = harness.state();
    let slide_from_world = app.document().slide.as_ref().unwrap().layer.world_from_slide.inverse();
    let end_in_slide_px = slide_from_world.transform_point2(glam::DVec2::from_array(points_um[0]));
    let written = &first["geometry"]["coordinates"][0];
    assert!((written[0].as_f64().unwrap() - end_in_slide_px.x).abs() < 0.01);
    let before = app.document().annotations.items.clone();
    harness
        .state_mut()
        .file_chosen(DialogPurpose::ImportAnnotations, path.clone());
    step_until(&mut harness, "imported", |app| !app.is_importing_annotations());
    let app = harness.state();
    assert_eq!(app.document().annotations.items.len(), 8);
    for (x, y) in before.iter().zip(&app.document().annotations.items[4..]) {
        assert_eq!(x.shape.kind(), y.shape.kind());
        assert_eq!(
            app.document().annotations.class_name(x),
            app.document().annotations.class_name(y)
        );
        for (p, q) in x.shape.vertices_um().iter().zip(y.shape.vertices_um()) {
            assert!(glam::DVec2::from_array(*p).distance(glam::DVec2::from_array(q)) < 0.01);
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_tour_of_bookmarks_is_presented_full_screen_with_captions() {
    let (dir, mut harness) = open_synthetic_tissue("ui_tour", 800, 4);

    // Two views bookmarked with Ctrl+B, named and captioned as a teacher would.
    let (min, max) = harness.state().document().cells.as_ref().unwrap().bounds_in_world();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::B);
    harness.step();
    let app = harness.state_mut();
    assert!(app.runtime().ui.windows.bookmarks);
    let bookmarks = &mut app.document_mut().bookmarks;
    bookmarks.items[0].name = "Overview".into();
    bookmarks.items[0].caption = "The whole section: tumour, stroma and a lymphoid aggregate".into();
    app.viewer_mut().camera.center_in_world = min + (max - min) * 0.3;
    app.viewer_mut().camera.points_per_um *= 4.0;
    harness.step();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::B);
    harness.step();
    let bookmarks = &mut harness.state_mut().document_mut().bookmarks;
    assert_eq!(bookmarks.items.len(), 2);
    bookmarks.items[1].name = "Tumour front".into();
    bookmarks.items[1].caption = "Epithelial cells meet fibroblasts here".into();
    harness.step();
    harness.get_by_label("Bookmarks and tour");

    // F5 presents from the current bookmark; the panels go, the caption shows in large type.
    harness.state_mut().document_mut().bookmarks.current = Some(0);
    harness.key_press(egui::Key::F5);
    step_until(&mut harness, "at the first bookmark", |app| {
        app.viewer().presentation.is_some() && app.viewer().transition.is_none()
    });
    assert!(harness.query_by_label("File").is_none(), "the menu bar is hidden");
    harness.get_by_label("Overview");
    harness.get_by_label("The whole section: tumour, stroma and a lymphoid aggregate");
    let app = harness.state();
    let viewport = app.viewer().last_viewport.unwrap();
    let expected = app.document().bookmarks.items[0].camera_for(&viewport);
    assert!((app.viewer().camera.center_in_world - expected.center_in_world).length() < 1e-6);
    assert!((app.viewer().camera.points_per_um / expected.points_per_um - 1.0).abs() < 1e-9);

    // → moves (animated) to the next bookmark; the step count follows.
    harness.key_press(egui::Key::ArrowRight);
    harness.step();
    assert!(harness.state().viewer().transition.is_some(), "the move is animated");
    step_until(&mut harness, "at the second bookmark", |app| {
        app.viewer().transition.is_none()
    });
    let app = harness.state();
    assert_eq!(app.viewer().presentation.map(|p| p.step), Some(1));
    let expected = app.document().bookmarks.items[1].camera_for(&app.viewer().last_viewport.unwrap());
    assert!((app.viewer().camera.center_in_world - expected.center_in_world).length() < 1e-6);
    harness.get_by_label("Epithelial cells meet fibroblasts here");
    harness.get_by_label_contains("2 / 2");
    step_until(&mut harness, "tiles sharp", slide_is_sharp);
    harness.snapshot("presentation_mode");

    // Esc ends it: the panels are back, and the bookmarks go into the session.
    harness.key_press(egui::Key::Escape);
    harness.step();
    harness.step();
    assert!(harness.state().viewer().presentation.is_none());
    harness.get_by_label("File");
    assert_eq!(harness.state().capture_session(None).bookmarks.len(), 2);

    // The view as PNG at twice its size on screen, with the legend; then the tour as PNGs and
    // an index page.
    let png = dir.join("view.png");
    harness
        .state_mut()
        .file_chosen(DialogPurpose::ExportViewPng { scale: 2, legend: true }, png.clone());
    step_until(&mut harness, "view exported", |app| {
        app.runtime().view_export.is_none() && png.exists()
    });
    let app = harness.state();
    let viewport = app.viewer().last_viewport.unwrap();
    let image = image::open(&png).unwrap().to_rgba8();
    let expected = viewport.size_in_points * viewport.pixels_per_point * 2.0;
    assert_eq!(
        (image.width(), image.height()),
        (expected.x.round() as u32, expected.y.round() as u32)
    );
    // Tissue (pink H&E, coloured cells) fills much of it; the legend box sits top right.
    let coloured = image
        .pixels()
        .filter(|p| p[0].abs_diff(p[2]) > 30 || p[1].abs_diff(p[2]) > 30)
        .count();
    assert!(
        coloured * 4 > (image.width() * image.height()) as usize,
        "{coloured} coloured pixels"
    );
    let corner = image.get_pixel(image.width() - 30, 40);
    assert!(corner[0] < 90 && corner[1] < 90, "the legend's dark box: {corner:?}");
    let tour = dir.join("tour");
    harness.state_mut().file_chosen(
        DialogPurpose::ExportTour {
            scale: 1,
            legend: false,
        },
        tour.clone(),
    );
    step_until(&mut harness, "tour exported", |app| {
        app.runtime().view_export.is_none() && tour.join("index.html").exists()
    });
    let index = std::fs::read_to_string(tour.join("index.html")).unwrap();
    assert!(index.contains("Tumour front") && index.contains("Epithelial cells meet fibroblasts here"));
    assert!(index.contains("src=\"01-overview.png\"") && index.contains("src=\"02-tumour-front.png\""));
    let first = image::open(tour.join("01-overview.png")).unwrap();
    assert_eq!(first.width() * 2, image.width());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn split_view_links_the_panes_and_help_and_preferences_open() {
    let (dir, mut harness) = open_synthetic_tissue("ui_split", 600, 6);

    // View > Split view: H&E on the left, cell types on the right, one camera.
    harness.state_mut().run_command(Command::SetSplitView(true));
    harness.step();
    harness.get_by_label("Left:");
    harness.get_by_label("Right:");
    step_until(&mut harness, "both panes sharp", slide_is_sharp);
    let before = harness.state().viewer().camera;
    // A drag in the right pane pans both.
    let rect = harness.state().viewer().viewer_rect.unwrap();
    let start = rect.center();
    drag_path(
        &mut harness,
        &[start, start + egui::vec2(-60.0, 0.0), start + egui::vec2(-120.0, 0.0)],
        egui::Modifiers::NONE,
    );
    let after = harness.state().viewer().camera;
    assert!(
        after.center_in_world.x > before.center_in_world.x,
        "dragging left moves the view right"
    );
    harness.state_mut().viewer_mut().camera = before;
    harness.step();
    step_until(&mut harness, "both panes sharp again", slide_is_sharp);
    harness.snapshot("split_view");

    // Two samples: a second section's slide beside the first, same camera in micrometres.
    let other = cs_synth::generate(
        &cs_synth::SynthOptions {
            cells: 300,
            seed: 17,
            ..Default::default()
        },
        &dir.join("other"),
        &|_, _| {},
        &|| false,
    )
    .unwrap();
    harness
        .state_mut()
        .file_chosen(DialogPurpose::CompareSlide, other.slide_path.clone().unwrap());
    step_until(&mut harness, "comparison slide open and sharp", |app| {
        !app.is_opening_compare_slide()
            && app
                .document()
                .compare
                .as_ref()
                .and_then(|c| c.slide.as_ref())
                .is_some_and(|c| {
                    let f = c.layer.last_frame;
                    f.visible_tiles > 0 && f.ready_tiles == f.visible_tiles && !c.layer.is_loading()
                })
    });
    let app = harness.state();
    assert!(app.viewer().split.unwrap().right.compare);
    assert!(app.capture_session(None).compare_slide.is_some());
    assert_eq!(
        harness.query_all_by_label_contains("Compare: he.tiff").count(),
        2,
        "a switch in each pane"
    );
    step_until(&mut harness, "first slide sharp", slide_is_sharp);
    harness.snapshot("split_view_two_samples");
    harness.state_mut().run_command(Command::CloseCompareSlide);
    harness.step();
    assert!(!harness.state().viewer().split.unwrap().right.compare);

    // F1 shows every shortcut; F1 again hides them.
    harness.key_press(egui::Key::F1);
    harness.step();
    harness.get_by_label("Keyboard shortcuts");
    harness.get_by_label_contains("Undo the latest edit");
    harness.key_press(egui::Key::F1);
    harness.step();
    assert!(!harness.state().runtime().ui.windows.shortcuts);

    // Preferences take effect at once: a smaller tile cache for the open slide, a light theme.
    let ctx = harness.ctx.clone();
    let app = harness.state_mut();
    app.run_command(Command::ShowWindow(Window::Preferences, true));
    let mut preferences = app.runtime().preferences.clone();
    preferences.tile_cache_mib = 64;
    preferences.theme = cellsymphony::ui::preferences::Theme::Light;
    app.run_command(Command::SetPreferences(preferences));
    harness.step();
    harness.step();
    harness.get_by_label("Slide tile cache");
    let app = harness.state();
    assert_eq!(
        app.document().slide.as_ref().unwrap().layer.ram_budget_bytes(),
        64 * 1024 * 1024
    );
    assert_eq!(ctx.options(|o| o.theme_preference), egui::ThemePreference::Light);

    // Closing the window with work never saved asks first; Cancel keeps the app open.
    harness
        .input_mut()
        .viewports
        .entry(egui::ViewportId::ROOT)
        .or_default()
        .events
        .push(egui::ViewportEvent::Close);
    harness.step();
    harness.step();
    assert!(harness.state().session().confirm_quit);
    harness.get_by_label("Quit without saving");
    harness.get_by_label("Cancel").click();
    harness.step();
    assert!(!harness.state().session().confirm_quit);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn opening_a_session_drops_the_results_of_an_import_and_a_model_run_still_in_flight() {
    use cellsymphony::io::records::{Annotation, AnnotationShape};
    let (dir, mut harness) = open_synthetic_tissue("ui_replaced", 1500, 21);
    // The session to open: the same bundle and slide (so a stale model result would still match
    // its cells) with one annotation of its own.
    let session_path = dir.join("other.cellsymphony");
    let mut other = harness.state().capture_session(Some(&dir));
    other.annotations.push(Annotation {
        shape: AnnotationShape::Point { at_um: [10.0, 10.0] },
        class: 0,
        name: "the other session's".into(),
    });
    cellsymphony::io::session_file::write_session(&session_path, &other).unwrap();
    // QuPath annotations to import, and a classifier to train, in this session.
    let geojson = dir.join("import.geojson");
    std::fs::write(
        &geojson,
        r#"{"type":"FeatureCollection","features":[
          {"type":"Feature","geometry":{"type":"Point","coordinates":[5,5]},"properties":{"objectType":"annotation"}},
          {"type":"Feature","geometry":{"type":"Point","coordinates":[9,9]},"properties":{"objectType":"annotation"}}]}"#,
    )
    .unwrap();
    let app = harness.state_mut();
    let models = &mut app.runtime_mut().ui.models;
    models.cache_dir = Some(dir.join("run-cache"));
    models.settings.device = cs_models::ComputeDevice::Cpu;
    models.settings.epochs = 30;
    models.settings.labels = cellsymphony::work::model_runs::LabelChoice::Column("synthetic_cell_type".into());
    app.file_chosen(DialogPurpose::ImportAnnotations, geojson);
    app.run_command(Command::RunClassifier);
    assert!(app.is_importing_annotations() && app.is_running(JobKind::Classifier));

    // Another session is opened before either result is applied (discarding this one's changes).
    app.file_chosen(DialogPurpose::OpenSession, session_path);
    assert!(
        app.session().confirm_open.is_some(),
        "unsaved changes: the user is asked first"
    );
    app.run_command(Command::AnswerOpenSession(Some(false)));
    assert!(!app.is_importing_annotations() && !app.is_running(JobKind::Classifier));
    step_until(&mut harness, "the other session restored", |app| {
        !app.session().is_restoring() && cells_loaded(app) && slide_is_sharp(app)
    });
    // Time for the old threads to have ended, had they not been cancelled.
    for _ in 0..40 {
        harness.step();
        std::thread::sleep(Duration::from_millis(25));
    }
    let app = harness.state();
    let annotations = &app.document().annotations.items;
    assert_eq!(annotations.len(), 1, "only the other session's annotation");
    assert_eq!(annotations[0].name, "the other session's");
    assert!(app.document().models.classifier.is_none());
    let cells = app.document().cells.as_ref().unwrap();
    assert!(
        cells
            .bundle
            .cells
            .categorical_column(cellsymphony::document::models::PREDICTED_COLUMN)
            .is_none()
    );
    let toasts: Vec<&str> = app.toasts().items().iter().map(|t| t.text.as_str()).collect();
    assert!(
        !toasts
            .iter()
            .any(|t| t.starts_with("Imported") || t.starts_with("Predicted")),
        "{toasts:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_bundles_real_dapi_opens_as_a_morphology_layer_with_contrast_from_the_panel() {
    let Some(dir) = shared_file("xenium/sfe_toy_v1") else {
        return;
    };
    let mut harness = open_app(
        (1200.0, 900.0),
        StartupOptions {
            xenium: Some(dir),
            ..Default::default()
        },
    );
    step_until(&mut harness, "morphology open", |app| {
        app.document().morphology.is_some()
    });
    let morphology = harness.state().document().morphology.as_ref().unwrap();
    assert_eq!(morphology.channels.len(), 1);
    let dapi = &morphology.channels[0];
    // The file names no channel: the 10x name is used.
    assert_eq!(dapi.name, "DAPI");
    assert_eq!(dapi.bits_per_sample, 16);
    assert!(morphology.visible, "with no H&E open, the stains show");
    // Placed by the bundle's pixel size: 237 px of 0.2125 µm.
    let (min, max) = morphology.bounds_in_world();
    assert!(
        (max.x - min.x - 237.0 * 0.2125).abs() < 1e-9 && min.x.abs() < 1e-9,
        "{min:?} {max:?}"
    );
    let auto = dapi.histogram.auto_window;
    assert!(
        auto.0 < auto.1 && auto.1 <= 255,
        "window {auto:?} within the 8-bit range this crop uses"
    );
    assert_eq!(dapi.style.window_max, f32::from(auto.1));

    // The panel shows the channel; switching it off is an edit the document takes.
    harness.get_by_label("DAPI");
    harness.get_by_label("Morphology").click();
    harness.step();
    harness.step();
    assert!(!harness.state().document().morphology.as_ref().unwrap().visible);
}

#[test]
fn a_spatialdata_store_opens_its_cells_h_and_e_and_stains_where_spatialdata_puts_them() {
    let store = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/spatialdata/sdata_v2.zarr");
    // Given as the positional argument, as `cellsymphony STORE.zarr` does.
    let mut harness = open_app(
        (1200.0, 900.0),
        StartupOptions {
            slide: Some(store.clone()),
            ..Default::default()
        },
    );
    step_until(&mut harness, "cells, H&E and stains open", |app| {
        let doc = app.document();
        doc.cells.is_some() && doc.slide.is_some() && doc.morphology.is_some() && slide_is_sharp(app)
    });
    let doc = harness.state().document();
    let cells = doc.cells.as_ref().unwrap();
    assert_eq!(cells.len(), 526);
    let slide = doc.slide.as_ref().unwrap();
    assert!(slide.path.ends_with("images/he_image"));
    // The H&E's affine (rotation, scale, shift) times the pixel size, as spatialdata has it.
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(store.with_file_name("expected.json")).unwrap()).unwrap();
    let m = &expected["images"]["he_image"]["global_from_image"];
    let at = |r: usize, c: usize| m[r][c].as_f64().unwrap();
    let world = slide
        .layer
        .world_from_slide
        .transform_point2(glam::DVec2::new(10.0, 20.0));
    assert!((world.x - 0.2125 * (at(0, 0) * 10.0 + at(0, 1) * 20.0 + at(0, 2))).abs() < 1e-6);
    assert!((world.y - 0.2125 * (at(1, 0) * 10.0 + at(1, 1) * 20.0 + at(1, 2))).abs() < 1e-6);
    // The stains start hidden under the H&E; the table's cell types colour the cells.
    assert!(!doc.morphology.as_ref().unwrap().visible);
    assert!(matches!(&cells.colour_by, cellsymphony::layers::cell_layer::ColourBy::Category(c) if c == "cell_type"));
    harness.get_by_label("LEF1");
    harness.get_by_label("placed by the SpatialData transformation of he_image");
}

#[test]
fn explorer_cell_groups_export_and_import_through_the_app() {
    let Some(dir) = shared_file("xenium/sfe_toy_v1") else {
        return;
    };
    let out = std::env::temp_dir().join(format!("ui_explorer_groups_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let mut harness = open_app(
        (1200.0, 800.0),
        StartupOptions {
            xenium: Some(dir),
            ..Default::default()
        },
    );
    step_until(&mut harness, "bundle open", cells_loaded);
    // A column of the user's own: two lasso-free groups by x (left and right halves).
    let cells = harness.state().document().cells.as_ref().unwrap();
    let xs = cells.bundle.cells.x_um.clone();
    let middle = xs.iter().sum::<f64>() / xs.len() as f64;
    let codes: Vec<u32> = xs.iter().map(|&x| u32::from(x > middle)).collect();
    let column = cs_xenium::Categorical::from_codes(vec!["left".into(), "right, east".into()], codes);
    harness
        .state_mut()
        .document_mut()
        .cells
        .as_mut()
        .unwrap()
        .put_categorical_column("halves", column.clone());
    use cellsymphony::ui::dialogs::GroupSource;
    for name in ["halves.csv", "halves.zarr.zip"] {
        let path = out.join(name);
        harness.state_mut().file_chosen(
            DialogPurpose::ExportCellGroups(GroupSource::Column("halves".into())),
            path.clone(),
        );
        step_until(&mut harness, "groups written", |app| {
            app.is_opening().is_none() && path.exists()
        });
        // Read back through the app (the CSV's column is named after the file, the zip's after
        // its grouping: "halves" both times), equal cell for cell, and the cells coloured by it.
        let back_name = "halves";
        harness
            .state_mut()
            .document_mut()
            .cells
            .as_mut()
            .unwrap()
            .put_categorical_column(
                back_name,
                cs_xenium::Categorical::from_codes(Vec::new(), vec![cs_xenium::MISSING_CODE; xs.len()]),
            );
        harness
            .state_mut()
            .file_chosen(DialogPurpose::ImportCellGroups, path.clone());
        step_until(&mut harness, "groups read", |app| {
            app.document()
                .cells
                .as_ref()
                .and_then(|c| c.bundle.cells.categorical_column(back_name))
                .is_some_and(|c| !c.categories.is_empty())
        });
        let cells = harness.state().document().cells.as_ref().unwrap();
        let back = cells.bundle.cells.categorical_column(back_name).unwrap();
        for (a, b) in column.codes.iter().zip(&back.codes) {
            assert_eq!(column.categories[*a as usize], back.categories[*b as usize], "{name}");
        }
        assert_eq!(
            cells.colour_by,
            cellsymphony::layers::cell_layer::ColourBy::Category(back_name.to_owned())
        );
    }
    // A session keeps the imported column: saved, then opened in a fresh window, the groups are
    // read again from their file and the cells are coloured by them as before.
    let session_path = out.join("groups.cellsymphony");
    harness
        .state_mut()
        .file_chosen(DialogPurpose::SaveSession, session_path.clone());
    step_until(&mut harness, "session saved", |app| {
        !app.is_running(JobKind::SessionWrite) && app.session().path.is_some()
    });
    let text = std::fs::read_to_string(&session_path).unwrap();
    assert!(
        text.contains("\"group_files\"") && text.contains("halves.zarr.zip"),
        "{text}"
    );
    drop(harness);
    let mut harness = open_app((1200.0, 800.0), StartupOptions::default());
    harness
        .state_mut()
        .file_chosen(DialogPurpose::OpenSession, session_path);
    step_until(&mut harness, "session restored", |app| {
        !app.session().is_restoring() && cells_loaded(app)
    });
    let cells = harness.state().document().cells.as_ref().unwrap();
    let back = cells
        .bundle
        .cells
        .categorical_column("halves")
        .expect("halves read again");
    for (a, b) in column.codes.iter().zip(&back.codes) {
        assert_eq!(column.categories[*a as usize], back.categories[*b as usize]);
    }
    assert_eq!(
        cells.colour_by,
        cellsymphony::layers::cell_layer::ColourBy::Category("halves".to_owned())
    );
    assert_eq!(
        cells.group_files,
        vec![out.join("halves.csv"), out.join("halves.zarr.zip")]
    );
    assert!(!harness.state().has_unsaved_changes());
}
