//! The viewer as a user sees it, rendered headless with egui_kittest on wgpu (lavapipe in CI).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly by design

use std::time::{Duration, Instant};

use cellsymphony::{StartupOptions, ViewerApp};
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
    let mut harness = open_app(
        (1280.0, 800.0),
        StartupOptions {
            slide: Some(slide),
            ..Default::default()
        },
    );
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
    let mut harness = open_app(
        (900.0, 600.0),
        StartupOptions {
            slide: Some(slide),
            ..Default::default()
        },
    );
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
    let mut harness = open_app(
        (1000.0, 700.0),
        StartupOptions {
            slide: Some(slide),
            ..Default::default()
        },
    );
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

fn cells_loaded(app: &ViewerApp) -> bool {
    app.is_opening().is_none() && app.cells.is_some()
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
    let cells = app.cells.as_ref().unwrap();
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
    assert_eq!(harness.state().hovered_cell, Some(0));
    harness.get_by_label(&first_id);
    harness.drag_at(pos);
    harness.drop_at(pos);
    harness.step();
    assert_eq!(harness.state().pinned_cell, Some(0));
    harness.step();
    harness.get_by_label("Inspector");

    // Colour by a gene from the layers panel: counts arrive from a background job.
    harness.get_by_label("Colour by gene").click();
    harness.step();
    harness.get_by_label("AKT1").click();
    step_until(&mut harness, "gene colouring", |app| {
        app.cells
            .as_ref()
            .is_some_and(|c| matches!(c.colour_by, cellsymphony::cell_layer::ColourBy::Gene(0)))
    });
    let numeric = harness.state().cells.as_ref().unwrap().numeric.clone().unwrap();
    assert!(
        numeric.label.contains("AKT1") && numeric.max > numeric.min,
        "{numeric:?}"
    );

    // Transcripts: read in the background (qv >= 20), one point each, genes listed.
    harness.get_by_label("Show transcripts").click();
    step_until(&mut harness, "transcripts shown", |app| {
        app.cells.as_ref().is_some_and(|c| c.transcripts.is_some())
    });
    let layer = harness.state().cells.as_ref().unwrap().transcripts.as_ref().unwrap();
    assert_eq!(layer.transcripts.len(), 5260);
    assert_eq!(layer.gene_counts.iter().sum::<usize>(), 5260);
    assert!(
        harness.query_all_by_label("AKT1").count() >= 2,
        "gene list of the transcripts layer"
    );
}

/// Window position of a world point (µm) in the viewer.
fn world_to_window(app: &ViewerApp, x_um: f64, y_um: f64) -> egui::Pos2 {
    let viewport = app.view.last_viewport.unwrap();
    let rect = app.view.viewer_rect.unwrap();
    let p = app
        .view
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
        demo: false,
    };
    let mut harness = open_app((1280.0, 800.0), startup);
    step_until(&mut harness, "demo open and sharp", |app| {
        cells_loaded(app) && slide_is_sharp(app) && app.alignment.is_some()
    });
    let app = harness.state();
    let cells = app.cells.as_ref().unwrap();
    assert_eq!(
        cells.colour_by,
        cellsymphony::cell_layer::ColourBy::Category("synthetic_cell_type".into())
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
    assert!(harness.state().toasts.items().is_empty());
    harness.snapshot("demo_cell_types_fit");

    // 40x on the first B cell: polygons over the H&E, the nucleus under the cell's outline.
    let cells = harness.state().cells.as_ref().unwrap();
    let column = cells.bundle.cells.categorical_column("synthetic_cell_type").unwrap();
    let b_cell = column
        .codes
        .iter()
        .position(|&c| column.categories[c as usize] == "B cells")
        .unwrap();
    let center = glam::DVec2::new(cells.bundle.cells.x_um[b_cell], cells.bundle.cells.y_um[b_cell]);
    let app = harness.state_mut();
    let viewport = app.view.last_viewport.unwrap();
    app.view.camera.set_magnification(40.0, &viewport);
    app.view.camera.center_in_world = center;
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
    assert!(harness.state().alignment.is_none());

    harness.get_by_label("Align by landmarks…").click();
    harness.step();
    // Three cells far apart; the matching slide pixel is where the truth puts each centroid.
    let cells = &harness.state().cells.as_ref().unwrap().bundle.cells;
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
    let tool = harness.state().landmarks.clone().unwrap();
    assert_eq!(tool.pairs.len(), 3, "{tool:?}");
    harness.get_by_label("Apply").click();
    for _ in 0..3 {
        harness.step();
    }
    let app = harness.state();
    let alignment = app.alignment.as_ref().expect("applied");
    assert!(alignment.path.is_none() && app.landmarks.is_none());
    // Clicks land on whole screen points (about 1.6 µm each at this zoom): the map agrees with
    // the truth to a few µm across the slide.
    let placed = app.slide.as_ref().unwrap().layer.world_from_slide;
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
    assert_eq!(harness.state().tools.tool, cellsymphony::tools::Tool::Lasso);
    let (min, max) = harness.state().cells.as_ref().unwrap().bounds_in_world();
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
    let selection = app.selections.active().expect("a selection");
    let cells = &app.cells.as_ref().unwrap().bundle.cells;
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
    let added = harness.state().selections.active().unwrap().cell_count();
    assert!(added > lassoed, "{added} after adding a rectangle to {lassoed}");
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    harness.step();
    assert_eq!(harness.state().selections.active().unwrap().cell_count(), lassoed);
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
    let (min, max) = harness.state().cells.as_ref().unwrap().bounds_in_world();
    let a = world_to_window(harness.state(), min.x, min.y);
    let b = world_to_window(harness.state(), (min.x + max.x) / 2.0, (min.y + max.y) / 2.0);
    drag_path(&mut harness, &[a, a.lerp(b, 0.5), b], egui::Modifiers::NONE);
    harness.step();
    let app = harness.state();
    let selection = app.selections.active().unwrap();
    let composition = app.composition.result.clone().unwrap().unwrap();
    // Counts agree with counting the types of the selected cells directly.
    let column = app
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
    use cellsymphony::app::{DialogPurpose, PlotKind};
    let exports = [
        (DialogPurpose::ExportStatsCsv, dir.join("stats.csv")),
        (
            DialogPurpose::ExportPlot {
                plot: PlotKind::Composition,
                png: false,
            },
            dir.join("chart.svg"),
        ),
        (DialogPurpose::ExportCellsCsv, dir.join("cells.csv")),
        (DialogPurpose::ExportGeoJson, dir.join("selections.geojson")),
    ];
    for (purpose, path) in &exports {
        harness.state_mut().export(purpose.clone(), path.clone());
        step_until(&mut harness, "export written", |app| app.is_opening().is_none());
        assert!(
            path.exists(),
            "{} not written: {:?}",
            path.display(),
            harness.state().toasts.items()
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
    harness
        .state_mut()
        .export_plot_png(PlotKind::Composition, dir.join("chart.png"));
    for _ in 0..3 {
        harness.step();
    }
    let png = image::open(dir.join("chart.png"))
        .expect("chart.png written")
        .to_rgba8();
    let shown = harness.state().plot_rects[&PlotKind::Composition];
    assert_eq!(png.width(), shown.width().round() as u32, "{shown:?}");

    // Differential expression in the background, then its CSV.
    harness.get_by_label("Compute").click();
    step_until(&mut harness, "differential expression", |app| {
        app.current_de_result().is_some()
    });
    let de = harness.state().current_de_result().unwrap();
    assert_eq!(de.len(), 63, "every gene of the panel is tested");
    assert!(de.windows(2).all(|w| w[0].result.score >= w[1].result.score));
    harness
        .state_mut()
        .export(DialogPurpose::ExportDeCsv, dir.join("de.csv"));
    step_until(&mut harness, "DE CSV written", |app| app.is_opening().is_none());
    let de_csv = std::fs::read_to_string(dir.join("de.csv")).unwrap();
    assert_eq!(de_csv.lines().count(), 4 + 63);

    // Neighbourhood enrichment over all cells (radius 30 µm), in the background.
    harness.state_mut().nhood_settings.n_perms = 100;
    harness.get_by_label("Run");
    // (The button sits below the fold of the panel's scroll area; start it as the click would.)
    harness.state_mut().run_nhood();
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
            .export(DialogPurpose::ExportPlot { plot, png: false }, dir.join(name));
        step_until(&mut harness, "plot written", |app| app.is_opening().is_none());
        let svg = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{name}");
    }

    harness.state_mut().import_selections(&dir.join("selections.geojson"));
    harness.step();
    let app = harness.state();
    assert_eq!(app.selections.items.len(), 2);
    assert_eq!(app.selections.active().unwrap().cell_count(), selected);
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
        demo: false,
    };
    let mut harness = open_app((1280.0, 900.0), startup);
    step_until(&mut harness, "bundle and slide open", |app| {
        cells_loaded(app) && app.alignment.is_some()
    });
    harness.get_by_label("Models").click();
    harness.run_steps(2);
    harness.get_by_label("Train and predict");
    harness.get_by_label("Find niches");
    {
        let app = harness.state_mut();
        // Lavapipe is the GPU here; the CPU backend is the one the tab picks for it.
        assert_eq!(app.models.settings.device, cs_models::ComputeDevice::Cpu);
        app.models.cache_dir = Some(dir.join("run-cache"));
        app.models.settings.epochs = 4;
        app.models.settings.learning_rate = 1e-3;
        app.models.settings.labels = cellsymphony::model_runs::LabelChoice::Column("synthetic_cell_type".into());
        app.run_classifier();
    }
    harness.run_steps(2);
    harness.get_by_label("Cancel");
    step_until(&mut harness, "classifier finished", |app| {
        app.models.classifier.is_some() || app.models.error.is_some()
    });
    let app = harness.state();
    assert!(app.models.error.is_none(), "{:?}", app.models.error);
    let result = app.models.classifier.as_ref().unwrap();
    assert_eq!(result.rows.len(), 2000);
    assert!(result.report.macro_f1 > 0.7, "macro-F1 {}", result.report.macro_f1);
    let cells = app.cells.as_ref().unwrap();
    assert_eq!(
        cells.colour_by,
        cellsymphony::cell_layer::ColourBy::Category(cellsymphony::models_panel::PREDICTED_COLUMN.into())
    );
    let predicted = cells
        .bundle
        .cells
        .categorical_column(cellsymphony::models_panel::PREDICTED_COLUMN)
        .unwrap();
    assert!(
        predicted
            .codes
            .iter()
            .all(|&c| (c as usize) < predicted.categories.len())
    );
    harness.get_by_label("macro");
    // The trained model is kept beside the cached run; Save model copies it to a folder that
    // loads as a model.
    harness.get_by_label("Save model...");
    let saved = dir.join("saved-model");
    let kept = harness
        .state()
        .models
        .classifier
        .as_ref()
        .unwrap()
        .model_dir
        .clone()
        .unwrap();
    harness.state_mut().save_model(&kept, saved.clone());
    let loaded = cs_models::model_file::load_classifier(&saved, &cs_models::cpu_device()).unwrap();
    assert_eq!(loaded.class_names, result_class_names(harness.state()));
    // Applying the saved folder predicts every cell again, with the model's training report.
    let trained_predictions = harness.state().models.classifier.as_ref().unwrap().predicted.clone();
    harness.get_by_label("Apply a saved model...");
    harness.state_mut().apply_saved_model(saved.clone());
    step_until(&mut harness, "saved model applied", |app| {
        app.models.error.is_some()
            || app
                .models
                .classifier
                .as_ref()
                .is_some_and(|r| r.label_source.starts_with("saved model saved-model"))
    });
    let app = harness.state();
    assert!(app.models.error.is_none(), "{:?}", app.models.error);
    let applied = app.models.classifier.as_ref().unwrap();
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
        let cells = app.cells.as_ref().unwrap();
        let (lo, hi) = cells.bounds_in_world();
        let index = &cells.index;
        let n = cells.len();
        let (x0, y0, xm, y1) = (lo.x as f32, lo.y as f32, ((lo.x + hi.x) / 2.0) as f32, hi.y as f32);
        let shape = cs_analysis::Shape::Polygon(vec![[x0, y0], [xm, y0], [xm, y1], [x0, y1]]);
        app.selections.create(n);
        app.selections.apply(cs_analysis::Combine::Replace, shape, index, n);
        app.models.settings.selection_only = true;
        app.models.settings.k = 4;
        app.models.settings.niche_epochs = 3;
        app.run_niches();
    }
    step_until(&mut harness, "niches finished", |app| {
        app.models.niches.is_some() || app.models.error.is_some()
    });
    let app = harness.state();
    assert!(app.models.error.is_none(), "{:?}", app.models.error);
    let niches = app.models.niches.as_ref().unwrap();
    let selected = app.selections.active().unwrap().cells.count();
    assert_eq!(niches.rows.len(), selected);
    assert!(selected > 0 && selected < 2000);
    let column = app
        .cells
        .as_ref()
        .unwrap()
        .bundle
        .cells
        .categorical_column(cellsymphony::models_panel::CLUSTER_COLUMN)
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
    harness.state_mut().run_niches();
    let last_toast = |app: &ViewerApp| app.toasts.items().last().map(|t| t.text.clone()).unwrap_or_default();
    assert!(last_toast(harness.state()).contains("needs its weights"));
    let weights = dir.join("vit_s16.safetensors");
    cs_models::vit::VitPreset::VitS16
        .config()
        .write_seeded_weights(&weights, 1)
        .unwrap();
    harness.state_mut().choose_vit_weights(weights.clone());
    let app = harness.state();
    assert_eq!(app.models.settings.vit_preset, Some(cs_models::vit::VitPreset::VitS16));
    assert_eq!(app.models.settings.vit_weights.as_deref(), Some(weights.as_path()));
    assert!(last_toast(app).contains("ViT-S/16"), "{}", last_toast(app));
    let not_weights = summary.slide_path.clone().unwrap();
    harness.state_mut().choose_vit_weights(not_weights);
    let app = harness.state();
    assert!(last_toast(app).contains("he.tiff"), "{}", last_toast(app));
    assert_eq!(app.models.settings.vit_weights.as_deref(), Some(weights.as_path()));
    harness.run_steps(2);
    harness.get_by_label("vit_s16.safetensors");
    let _ = std::fs::remove_dir_all(&dir);
}

fn result_class_names(app: &ViewerApp) -> Vec<String> {
    app.models
        .classifier
        .as_ref()
        .map(|r| r.class_names.clone())
        .unwrap_or_default()
}
