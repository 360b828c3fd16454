//! The app with a cohort open (egui_kittest on wgpu/lavapipe): three synthetic samples and a
//! bad row; the Cohort tab lists them, clicking a sample shows it and the one left keeps its
//! view and selections, and *Compare the samples* reads every sample (composition, or the
//! neighbourhood z-scores `cohort run --step enrich` wrote) and tests the groups; a
//! model trained on one sample is applied to the others, and two samples show side by side.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::Path;
use std::time::{Duration, Instant};

use cellsymphony::app::{StartupOptions, ViewerApp};
use cellsymphony::document::models::{CONFIDENCE_COLUMN, PREDICTED_COLUMN};
use cellsymphony::layers::cell_layer::ColourBy;
use cellsymphony::ui::Command;
use cellsymphony::ui::dialogs::DialogPurpose;
use cellsymphony::work::jobs::JobKind;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

fn step_until(harness: &mut Harness<'_, ViewerApp>, what: &str, done: impl Fn(&ViewerApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    for _ in 0..3 {
        harness.step();
    }
}

/// The app in a 1500 x 950 window on wgpu (lavapipe in CI).
fn open_app(startup: StartupOptions) -> Harness<'static, ViewerApp> {
    Harness::builder()
        .with_size(egui::vec2(1500.0, 950.0))
        .wgpu()
        .build_eframe(move |cc| ViewerApp::new(cc, startup))
}

/// The app on `manifest`, once its first sample's cells (`s0`, beside it) and slide are in.
fn open_cohort(manifest: &Path) -> Harness<'static, ViewerApp> {
    let mut harness = open_app(StartupOptions {
        cohort: Some(manifest.to_path_buf()),
        ..Default::default()
    });
    let s1 = manifest.with_file_name("s0");
    step_until(&mut harness, "S1's cells", |app| {
        shown_bundle(app).is_some_and(|b| b.starts_with(&s1)) && app.document().slide.is_some()
    });
    harness
}

/// Dismisses every note (they fade after a while: snapshots are taken without them).
fn dismiss_notes(harness: &mut Harness<'_, ViewerApp>) {
    while harness.query_all_by_label("Dismiss").next().is_some() {
        if let Some(dismiss) = harness.query_all_by_label("Dismiss").next() {
            dismiss.click();
        }
        harness.run_steps(3);
    }
}

/// The sample shown, once its cells are in.
fn shown_bundle(app: &ViewerApp) -> Option<std::path::PathBuf> {
    app.document().cells.as_ref().map(|c| c.bundle.dir.clone())
}

fn write_cohort(dir: &Path) -> std::path::PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let mut manifest = String::from("sample_id,xenium,slide,alignment,condition\n");
    for (i, condition) in ["responder", "responder", "non-responder"].iter().enumerate() {
        let options = cs_synth::SynthOptions {
            cells: 1200,
            seed: 60 + i as u64,
            ..Default::default()
        };
        let sample = dir.join(format!("s{i}"));
        let summary = cs_synth::generate(&options, &sample, &|_, _| {}, &|| false).unwrap();
        let rel = |p: &Path| p.strip_prefix(dir).unwrap().display().to_string();
        manifest += &format!(
            "S{},{},{},{},{condition}\n",
            i + 1,
            rel(&summary.bundle_dir),
            rel(summary.slide_path.as_ref().unwrap()),
            rel(summary.alignment_csv.as_ref().unwrap())
        );
    }
    manifest += "S4,missing,,,responder\n";
    let path = dir.join("cohort.csv");
    std::fs::write(&path, manifest).unwrap();
    path
}

#[test]
fn a_cohort_switches_samples_keeping_each_view_and_compares_groups() {
    // A fixed name: the bad row's message (its absolute path) is in the snapshot.
    let dir = std::env::temp_dir().join("ui_cohort_snapshot");
    let manifest = write_cohort(&dir);
    // Neighbourhood enrichment per sample, where the Cohort tab finds it (`cohort-out`).
    let enrich = std::process::Command::new(env!("CARGO_BIN_EXE_cellsymphony"))
        .args(["cohort", "run", manifest.to_str().unwrap(), "--step", "enrich"])
        .args(["--labels", "synthetic_cell_type", "--perms", "20", "--out"])
        .arg(dir.join("cohort-out"))
        .output()
        .unwrap();
    assert_eq!(enrich.status.code(), Some(1), "S4 cannot run, the others do");
    let mut harness = open_cohort(&manifest);
    let s1 = dir.join("s0");
    {
        let app = harness.state();
        let cohort = app.document().cohort.as_ref().unwrap();
        assert_eq!(cohort.active.as_deref(), Some("S1"));
        assert_eq!(cohort.manifest.samples.len(), 4);
        // The bad row is named (line 5) and the app carries on.
        let errors: Vec<String> = app.toasts().items().iter().map(|t| t.text.clone()).collect();
        assert!(
            errors
                .iter()
                .any(|e| e.contains("S4 (line 5)") && e.contains("missing")),
            "{errors:?}"
        );
    }
    // The notes fade after a while: dismiss them so that the snapshot is stable.
    dismiss_notes(&mut harness);
    harness.get_by_label("Cohort").click();
    for _ in 0..3 {
        harness.step();
    }
    // Move S1's view, then show S2 from the sample list.
    let moved = {
        let viewer = harness.state_mut().viewer_mut();
        viewer.camera.center_in_world += glam::DVec2::new(40.0, -25.0);
        viewer.camera.center_in_world
    };
    harness.get_by_label("S2").click();
    let s2 = dir.join("s1");
    step_until(&mut harness, "S2's cells", |app| {
        shown_bundle(app).is_some_and(|b| b.starts_with(&s2))
    });
    assert_eq!(
        harness.state().document().cohort.as_ref().unwrap().active.as_deref(),
        Some("S2")
    );
    // Back to S1: its view is as it was left.
    harness.get_by_label("S1").click();
    step_until(&mut harness, "S1's cells again", |app| {
        shown_bundle(app).is_some_and(|b| b.starts_with(&s1)) && app.is_opening().is_none()
    });
    step_until(&mut harness, "S1's view restored", |app| {
        (app.viewer().camera.center_in_world - moved).length() < 1e-3
    });

    // Compare the samples' cell types between the conditions.
    harness.get_by_label("Compare the samples").click();
    step_until(&mut harness, "the comparison", |app| {
        app.document().cohort.as_ref().is_some_and(|c| c.composition.is_some())
    });
    let app = harness.state();
    let composition = app
        .document()
        .cohort
        .as_ref()
        .unwrap()
        .composition
        .clone()
        .unwrap()
        .unwrap();
    assert_eq!(composition.column, "synthetic_cell_type");
    assert_eq!(composition.groups.len(), 3);
    assert_eq!(composition.classes().len(), 6);
    assert_eq!(
        composition.tests.len(),
        6,
        "one test per class between the two conditions"
    );
    for sample in ["S1", "S2", "S3"] {
        let total: f64 = composition.classes().iter().map(|c| composition.share(sample, c)).sum();
        assert!((total - 1.0).abs() < 1e-9, "{sample}: {total}");
    }
    harness.get_by_label("Export table…");
    harness.snapshot("cohort_tab");

    // The neighbourhood z-scores: 6 x 6 class pairs per sample, tested between the conditions.
    harness.state_mut().runtime_mut().ui.cohort.column = "nhood".into();
    harness.get_by_label("Compare the samples").click();
    step_until(&mut harness, "the z-score comparison", |app| {
        app.document()
            .cohort
            .as_ref()
            .and_then(|c| c.composition.as_ref())
            .is_some_and(|c| c.as_ref().is_ok_and(|c| c.column == "nhood"))
    });
    let composition = harness
        .state()
        .document()
        .cohort
        .as_ref()
        .unwrap()
        .composition
        .clone()
        .unwrap()
        .unwrap();
    assert_eq!(composition.measure, cs_cohort::Measure::Nhood);
    assert_eq!(composition.rows.len(), 3 * 36);
    assert_eq!(composition.tests.len(), 36);
    harness.get_by_label("median z");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A classifier trained on S1 in the Models tab is applied to S2 and S3 from the Cohort tab;
/// S3 is then shown beside S1 (slides and cells, coloured alike, its predictions on it), stays
/// there when S2 is shown, and S2 opens with its predictions.
#[test]
fn a_model_from_one_sample_is_applied_to_the_others_and_two_samples_show_side_by_side() {
    let dir = std::env::temp_dir().join("ui_cohort_side_by_side");
    let manifest = write_cohort(&dir);
    let mut harness = open_cohort(&manifest);
    {
        let app = harness.state_mut();
        let models = &mut app.runtime_mut().ui.models;
        models.cache_dir = Some(dir.join("run-cache"));
        models.settings.epochs = 4;
        models.settings.learning_rate = 1e-3;
        models.settings.labels = cellsymphony::work::model_runs::LabelChoice::Column("synthetic_cell_type".into());
        app.run_command(Command::RunClassifier);
    }
    step_until(&mut harness, "the classifier on S1", |app| {
        app.document().models.classifier.is_some() || app.runtime().ui.models.error.is_some()
    });
    assert!(harness.state().runtime().ui.models.error.is_none());
    let model = harness
        .state()
        .document()
        .cohort
        .as_ref()
        .unwrap()
        .model
        .clone()
        .unwrap();
    assert_eq!(model.trained_on.as_deref(), Some("S1"));
    // Niches on S1 too: their model goes to the Cohort tab as well.
    {
        let app = harness.state_mut();
        let settings = &mut app.runtime_mut().ui.models.settings;
        (settings.k, settings.niche_epochs) = (4, 3);
        app.run_command(Command::RunNiches);
    }
    step_until(&mut harness, "the niches on S1", |app| {
        app.document().models.niches.is_some() || app.runtime().ui.models.error.is_some()
    });
    assert!(harness.state().runtime().ui.models.error.is_none());
    let cohort = harness.state().document().cohort.as_ref().unwrap();
    assert_eq!(
        cohort.niche_model.as_ref().and_then(|m| m.trained_on.as_deref()),
        Some("S1")
    );
    dismiss_notes(&mut harness);
    harness.get_by_label("Cohort").click();
    harness.run_steps(3);
    // S1 (it trained it), S2 and S3 are ticked (S4 cannot be opened).
    harness.get_by_label("S1 (trained on)");
    harness.get_by_label("Apply cell types to 3 sample(s)").click();
    harness.run_steps(2);
    step_until(&mut harness, "the model applied", |app| {
        !app.is_running(JobKind::CohortApplyModel)
    });
    let outputs = dir.join("cohort-out");
    {
        let app = harness.state();
        assert_eq!(
            app.document().cohort.as_ref().unwrap().outputs.as_deref(),
            Some(outputs.as_path())
        );
        let notes: Vec<String> = app.toasts().items().iter().map(|t| t.text.clone()).collect();
        assert!(
            notes
                .iter()
                .any(|n| n.contains("S1 (1200 cells), S2 (1200 cells), S3 (1200 cells)")),
            "{notes:?}"
        );
    }
    for id in ["S1", "S2", "S3"] {
        assert!(outputs.join(id).join("predict.parquet").is_file(), "{id}");
    }
    // On the sample it was trained on, the model gives back what the Models tab showed.
    let shown: Vec<Option<String>> = {
        let cells = &harness.state().document().cells.as_ref().unwrap().bundle.cells;
        let column = cells.categorical_column(PREDICTED_COLUMN).unwrap();
        column
            .codes
            .iter()
            .map(|&c| column.categories.get(c as usize).cloned())
            .collect()
    };
    let written =
        cellsymphony::work::cohort::read_predicted_types(&outputs.join("S1").join("predict.parquet")).unwrap();
    assert_eq!(written, shown);

    // The niches, applied to the three samples, then compared between the conditions.
    harness.get_by_label("Apply niches to 3 sample(s)").click();
    harness.run_steps(2);
    step_until(&mut harness, "the niches applied", |app| {
        !app.is_running(JobKind::CohortApplyModel)
    });
    harness.state_mut().runtime_mut().ui.cohort.column = "niches".into();
    harness.get_by_label("Compare the samples").click();
    step_until(&mut harness, "the niche comparison", |app| {
        app.document()
            .cohort
            .as_ref()
            .and_then(|c| c.composition.as_ref())
            .is_some_and(|c| c.is_ok())
    });
    let niches = harness
        .state()
        .document()
        .cohort
        .as_ref()
        .unwrap()
        .composition
        .clone()
        .unwrap()
        .unwrap();
    assert_eq!(niches.measure, cs_cohort::Measure::Niche);
    assert!(niches.failures.is_empty(), "{:?}", niches.failures);
    assert!(!niches.classes().is_empty() && niches.classes().len() <= 4);
    for sample in ["S1", "S2", "S3"] {
        let total: f64 = niches.classes().iter().map(|c| niches.share(sample, c)).sum();
        assert!((total - 1.0).abs() < 1e-9, "{sample}: {total}");
    }
    // On S1, its own niche model gives back the clusters the Models tab found.
    let found = harness.state().document().models.niches.clone().unwrap();
    let assigned = cellsymphony::work::cohort::read_shared_niches(&outputs.join("S1"))
        .unwrap()
        .unwrap();
    let same = found
        .rows
        .iter()
        .zip(&found.clusters)
        .filter(|(row, c)| assigned[**row as usize].as_deref() == Some(format!("M{}", **c + 1).as_str()))
        .count();
    assert!(
        same * 100 >= found.rows.len() * 99,
        "{same} of {} cells keep their niche",
        found.rows.len()
    );

    // S1 coloured by its predicted types again (the niches recoloured it).
    harness
        .state_mut()
        .run_command(Command::Edit(cellsymphony::document::Edit::ColourBy(
            ColourBy::Category(PREDICTED_COLUMN.into()),
        )));
    harness.run_steps(2);
    // S3 beside S1: the row's *compare* button (S1's own is disabled).
    harness.query_all_by_label("compare").nth(2).unwrap().click();
    step_until(&mut harness, "S3 beside S1, its tiles in", |app| {
        app.document()
            .compare
            .as_ref()
            .and_then(|c| c.slide.as_ref())
            .is_some_and(|s| {
                let f = s.layer.last_frame;
                f.visible_tiles > 0 && f.ready_tiles == f.visible_tiles && !s.layer.is_loading()
            })
    });
    {
        let app = harness.state();
        let split = app.viewer().split.unwrap();
        assert!(split.right.compare && split.right.cells && !split.left.compare && split.left.cells);
        let compare = app.document().compare.as_ref().unwrap();
        assert_eq!(compare.sample.as_deref(), Some("S3"));
        let theirs = compare.cells.as_ref().unwrap();
        let ours = app.document().cells.as_ref().unwrap();
        assert_eq!(theirs.len(), 1200);
        // Coloured as S1 is: by the predicted type, one colour per class name.
        assert_eq!(theirs.colour_by, ours.colour_by);
        assert_eq!(theirs.colour_by, ColourBy::Category(PREDICTED_COLUMN.into()));
        let classes = |layer: &cellsymphony::layers::cell_layer::CellLayer| {
            layer
                .active_classes()
                .unwrap()
                .iter()
                .map(|c| (c.name.clone(), c.colour))
                .collect::<Vec<_>>()
        };
        let ours_classes = classes(ours);
        for (name, colour) in classes(theirs) {
            if let Some((_, c)) = ours_classes.iter().find(|(n, _)| *n == name) {
                assert_eq!(colour, *c, "{name}");
            }
        }
        // The model trained on S1 types S3's cells: against the generator's truth.
        let cells = &theirs.bundle.cells;
        let predicted = cells.categorical_column(PREDICTED_COLUMN).unwrap();
        let truth = cells.categorical_column("synthetic_cell_type").unwrap();
        let agree = (0..cells.len())
            .filter(|&i| {
                predicted.categories.get(predicted.codes[i] as usize) == truth.categories.get(truth.codes[i] as usize)
            })
            .count();
        assert!(agree as f64 / cells.len() as f64 > 0.7, "{agree} of 1200 agree");
    }
    dismiss_notes(&mut harness);
    harness.get_by_label("Left (S1):");
    harness.get_by_label("Right (S3):");
    harness.snapshot("cohort_two_samples");

    // S2 shown (its row's button; its *Apply* tick box has the same name): S3 stays beside it,
    // and S2 opens with its predictions.
    harness.query_all_by_label("S2").next().unwrap().click();
    let s2 = dir.join("s1");
    step_until(&mut harness, "S2's cells", |app| {
        shown_bundle(app).is_some_and(|b| b.starts_with(&s2)) && app.is_opening().is_none()
    });
    {
        let app = harness.state();
        assert_eq!(
            app.document().compare.as_ref().and_then(|c| c.sample.as_deref()),
            Some("S3")
        );
        assert!(app.viewer().split.unwrap().right.compare);
        let cells = app.document().cells.as_ref().unwrap();
        assert_eq!(cells.colour_by, ColourBy::Category(PREDICTED_COLUMN.into()));
        assert!(cells.bundle.cells.numeric_column(CONFIDENCE_COLUMN).is_some());
    }
    // The session keeps the cohort: a fresh app shows S2 with S3 beside it, S1 as it was left
    // (its classifier run with it) and the Cohort tab's model.
    let session_path = dir.join("study.cellsymphony");
    harness
        .state_mut()
        .file_chosen(DialogPurpose::SaveSession, session_path.clone());
    step_until(&mut harness, "session saved", |app| {
        !app.is_running(JobKind::SessionWrite) && app.session().path.is_some()
    });
    assert!(!harness.state().has_unsaved_changes());
    // The row's *compared* button closes it.
    harness.get_by_label("compared").click();
    harness.run_steps(3);
    assert!(harness.state().document().compare.is_none());
    drop(harness);
    let mut harness = open_app(StartupOptions {
        session: Some(session_path.clone()),
        ..Default::default()
    });
    step_until(&mut harness, "the cohort session restored, S3 beside S2", |app| {
        !app.session().is_restoring()
            && shown_bundle(app).is_some_and(|b| b.starts_with(&s2))
            && app.document().compare.as_ref().is_some_and(|c| c.cells.is_some())
    });
    let app = harness.state();
    let cohort = app.document().cohort.as_ref().unwrap();
    assert_eq!(cohort.active.as_deref(), Some("S2"));
    assert!(cohort.parked.contains_key("S1"));
    assert!(
        !cohort.parked["S1"].model_runs.is_empty(),
        "S1 keeps its classifier run"
    );
    assert_eq!(cohort.model.as_ref().map(|m| m.dir.clone()), Some(model.dir.clone()));
    assert_eq!(cohort.outputs.as_deref(), Some(outputs.as_path()));
    assert_eq!(
        app.document().compare.as_ref().and_then(|c| c.sample.as_deref()),
        Some("S3")
    );
    assert!(app.viewer().split.unwrap().right.compare);
    let _ = std::fs::remove_dir_all(&dir);
}
