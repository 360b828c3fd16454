//! The app with a cohort open (egui_kittest on wgpu/lavapipe): three synthetic samples and a
//! bad row; the Cohort tab lists them, clicking a sample shows it and the one left keeps its
//! view and selections, and *Compare composition* reads every sample and tests the groups.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::Path;
use std::time::{Duration, Instant};

use cellsymphony::app::{StartupOptions, ViewerApp};
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
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1500.0, 950.0))
        .wgpu()
        .build_eframe(|cc| {
            ViewerApp::new(
                cc,
                StartupOptions {
                    cohort: Some(manifest.clone()),
                    ..Default::default()
                },
            )
        });
    let s1 = dir.join("s0");
    step_until(&mut harness, "S1's cells", |app| {
        shown_bundle(app).is_some_and(|b| b.starts_with(&s1)) && app.document().slide.is_some()
    });
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
    while harness.query_by_label("Dismiss").is_some() {
        harness.get_by_label("Dismiss").click();
        for _ in 0..3 {
            harness.step();
        }
    }
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
    harness.get_by_label("Compare composition").click();
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
    let _ = std::fs::remove_dir_all(&dir);
}
