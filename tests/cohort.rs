//! `cellsymphony cohort run` / `summarise` on small synthetic samples: one folder per sample,
//! resume, shards, bad manifest rows named while the others run, the exit status counting
//! failures, the summary with the manifest's metadata and the group tests; and the Snakemake
//! workflow run locally (`snakemake --cores 2`) plus a dry run of its Slurm profile.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::{Path, PathBuf};
use std::process::Command;

fn cellsymphony(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cellsymphony"))
        .args(args)
        .output()
        .unwrap()
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Three small synthetic samples (no slide) and a manifest with a condition column; returns the
/// manifest's path.
fn three_samples(dir: &Path, extra_rows: &str) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let mut manifest = String::from("sample_id,xenium,condition,site\n");
    for (i, condition) in ["responder", "responder", "non-responder"].iter().enumerate() {
        let options = cs_synth::SynthOptions {
            cells: 1500,
            seed: 40 + i as u64,
            write_slide: false,
            ..Default::default()
        };
        let sample_dir = dir.join(format!("s{i}"));
        let summary = cs_synth::generate(&options, &sample_dir, &|_, _| {}, &|| false).unwrap();
        let relative = summary.bundle_dir.strip_prefix(dir).unwrap();
        manifest += &format!("S{},{},{condition},site{i}\n", i + 1, relative.display());
    }
    manifest += extra_rows;
    let path = dir.join("cohort.csv");
    std::fs::write(&path, manifest).unwrap();
    path
}

fn read_csv(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

#[test]
fn cohort_run_resumes_shards_names_bad_rows_and_summarises() {
    let dir = std::env::temp_dir().join(format!("cohort_cli_{}", std::process::id()));
    // A missing folder and a duplicated id: named by their lines, the three others still run.
    let manifest = three_samples(&dir, "S4,nowhere,responder,x\nS5,s0,responder,y\nS5,s1,responder,z\n");
    let (m, out) = (manifest.to_str().unwrap(), dir.join("out"));
    let out_s = out.to_str().unwrap();
    let enrich = |extra: &[&str]| {
        let mut args = vec![
            "cohort",
            "run",
            m,
            "--step",
            "enrich",
            "--labels",
            "synthetic_cell_type",
            "--perms",
            "50",
            "--out",
            out_s,
            "--json",
        ];
        args.extend_from_slice(extra);
        cellsymphony(&args)
    };
    let first = enrich(&[]);
    // Exit status: the 3 rows that cannot run.
    assert_eq!(
        first.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!((report["ran"].as_u64(), report["failed"].as_u64()), (Some(3), Some(3)));
    let samples = report["samples"].as_array().unwrap();
    let s4 = samples.iter().find(|s| s["sample_id"] == "S4").unwrap();
    let message = s4["message"].as_str().unwrap();
    assert!(
        message.contains("line 5") && message.contains("nowhere") && message.contains("cohort.csv"),
        "{message}"
    );
    let s5: Vec<&serde_json::Value> = samples.iter().filter(|s| s["sample_id"] == "S5").collect();
    assert_eq!(s5.len(), 2);
    assert!(
        s5[0]["message"]
            .as_str()
            .unwrap()
            .contains("used by 2 rows (line 6, line 7)"),
        "{}",
        s5[0]
    );
    for id in ["S1", "S2", "S3"] {
        for file in ["enrich.parquet", "enrich.json", "enrich.log"] {
            assert!(out.join(id).join(file).is_file(), "{id}/{file}");
        }
    }
    assert!(!out.join("S4").exists());

    // Run again: the three are skipped; a changed input reruns that sample only.
    let again: serde_json::Value = serde_json::from_slice(&enrich(&["--sample", "S1,S2,S3"]).stdout).unwrap();
    assert_eq!(
        (again["ran"].as_u64(), again["skipped"].as_u64()),
        (Some(0), Some(3)),
        "{again}"
    );
    let cells = dir.join("s1/xenium/cells.csv.gz");
    let cells = if cells.is_file() {
        cells
    } else {
        dir.join("s1").join(first_bundle_file(&dir.join("s1")))
    };
    let bytes = std::fs::read(&cells).unwrap();
    std::fs::write(&cells, bytes).unwrap();
    let again = json_of(&enrich(&["--sample", "S1,S2,S3"]));
    let ran: Vec<&str> = again["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "ran")
        .map(|s| s["sample_id"].as_str().unwrap())
        .collect();
    assert_eq!(ran, ["S2"], "{again}");
    // A slide that does not open: that sample fails, named with its row, and the others run.
    let bad_dir = dir.join("bad");
    std::fs::create_dir_all(&bad_dir).unwrap();
    std::fs::write(bad_dir.join("he.tif"), b"not a TIFF").unwrap();
    let bad_manifest = dir.join("bad_slide.csv");
    let rows = std::fs::read_to_string(&manifest).unwrap();
    let folder = |line: usize| rows.lines().nth(line).unwrap().split(',').nth(1).unwrap().to_owned();
    std::fs::write(
        &bad_manifest,
        format!(
            "sample_id,xenium,slide,condition\nS1,{},,responder\nS2,{},,responder\nS9,{},bad/he.tif,responder\n",
            folder(1),
            folder(2),
            folder(1)
        ),
    )
    .unwrap();
    let embed = cellsymphony(&[
        "cohort",
        "run",
        bad_manifest.to_str().unwrap(),
        "--step",
        "embed",
        "--device",
        "cpu",
        "--out",
        dir.join("out_bad").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        embed.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&embed.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&embed.stdout).unwrap();
    assert_eq!(report["ran"].as_u64(), Some(2), "{report}");
    let s9 = report["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sample_id"] == "S9")
        .unwrap();
    let message = s9["message"].as_str().unwrap();
    assert!(
        s9["status"] == "failed" && message.contains("line 4") && message.contains("he.tif"),
        "{message}"
    );
    assert!(dir.join("out_bad/S9/embed.log").is_file() && !dir.join("out_bad/S9/embed.json").exists());

    // Different parameters are a new run.
    let again = json_of(&enrich(&["--sample", "S1,S2,S3", "--nhood", "knn=6"]));
    assert_eq!(again["ran"].as_u64(), Some(3));

    // Shards split the manifest's rows: 0/2 takes rows 1, 3, 5 (S1, S3, S5).
    let shard: serde_json::Value =
        serde_json::from_slice(&enrich(&["--shard", "0/2", "--nhood", "knn=6"]).stdout).unwrap();
    let ids: Vec<&str> = shard["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sample_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["S1", "S3", "S5"]);

    // The summary: composition and z-scores per sample with the metadata; group tests.
    let summary = json_of(&cellsymphony(&["cohort", "summarise", m, "--out", out_s, "--json"]));
    assert_eq!(summary["samples"].as_u64(), Some(3), "{summary}");
    assert_eq!(summary["group_column"], "condition");
    assert_eq!(summary["missing"].as_array().unwrap().len(), 3);
    let table = read_csv(&out.join("summary.csv"));
    assert_eq!(
        table[0],
        ["sample_id", "condition", "site", "measure", "class", "count", "value"]
    );
    assert!(out.join("summary.parquet").is_file());
    for id in ["S1", "S2", "S3"] {
        let shares: f64 = table
            .iter()
            .filter(|r| r[0] == id && r[3] == "composition")
            .map(|r| r[6].parse::<f64>().unwrap())
            .sum();
        assert!((shares - 1.0).abs() < 1e-9, "{id}: composition sums to {shares}");
        let z_rows = table.iter().filter(|r| r[0] == id && r[3] == "nhood").count();
        assert_eq!(z_rows, 36, "{id}: 6 x 6 class pairs");
    }
    let s3 = table.iter().find(|r| r[0] == "S3").unwrap();
    assert_eq!((s3[1].as_str(), s3[2].as_str()), ("non-responder", "site2"));
    let tests = read_csv(&out.join("group_tests.csv"));
    assert_eq!(tests[0][..4], ["measure", "class", "group_a", "group_b"]);
    let composition_tests = tests.iter().filter(|r| r[0] == "composition").count();
    assert_eq!(composition_tests, 6, "one test per cell type");
    // 1 against 2 samples: the exact two-sided p is at least 2/3.
    for row in tests.iter().skip(1).filter(|r| r[0] == "composition") {
        let p: f64 = row[9].parse().unwrap();
        assert!(p >= 2.0 / 3.0 - 1e-9, "{row:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The first file of a bundle folder under `dir` that the cell table is read from.
fn first_bundle_file(dir: &Path) -> PathBuf {
    for entry in walk(dir) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("cells.") {
            return entry.strip_prefix(dir).unwrap().to_path_buf();
        }
    }
    panic!("no cells table under {}", dir.display());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The workflow's Python environment (Snakemake and the Slurm executor plugin), made by
/// `scripts/workflow-venv.sh` as `make test` makes it.
fn snakemake() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new(root.join("scripts/workflow-venv.sh")).status().unwrap();
    assert!(status.success(), "scripts/workflow-venv.sh failed");
    let exe = root.join(".venv-workflow/bin/snakemake");
    assert!(exe.is_file(), "{} is missing", exe.display());
    exe
}

#[test]
fn snakemake_workflow_runs_each_sample_then_the_summary() {
    let snakemake = snakemake();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("cohort_workflow_{}", std::process::id()));
    let manifest = three_samples(&dir, "");
    let out = dir.join("out");
    let config = |extra: &[String]| {
        let mut args: Vec<String> = vec![
            "--snakefile".into(),
            root.join("workflow/Snakefile").display().to_string(),
            "--directory".into(),
            dir.display().to_string(),
            "--config".into(),
            format!("manifest={}", manifest.display()),
            format!("out={}", out.display()),
            format!("cellsymphony={}", env!("CARGO_BIN_EXE_cellsymphony")),
            "device=cpu".into(),
            "steps=[embed,enrich]".into(),
            "labels=synthetic_cell_type".into(),
            "perms=50".into(),
        ];
        args.extend(extra.iter().cloned());
        args
    };
    let run = Command::new(&snakemake)
        .args(config(&["--cores".into(), "2".into()]))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "snakemake failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    for id in ["S1", "S2", "S3"] {
        for step in ["embed", "enrich"] {
            assert!(out.join(id).join(format!("{step}.json")).is_file(), "{id} {step}");
        }
    }
    let table = read_csv(&out.join("summary.csv"));
    let samples: std::collections::BTreeSet<&str> = table.iter().skip(1).map(|r| r[0].as_str()).collect();
    assert_eq!(samples.into_iter().collect::<Vec<_>>(), ["S1", "S2", "S3"]);
    assert!(out.join("group_tests.csv").is_file());

    // The Slurm profile, dry: one job per sample and step, and the summary; GPUs asked for the
    // model steps.
    std::fs::remove_dir_all(&out).unwrap();
    let dry = Command::new(&snakemake)
        .args(config(&[
            "device=gpu".into(),
            "-n".into(),
            "--profile".into(),
            root.join("workflow/profiles/slurm").display().to_string(),
        ]))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&dry.stdout),
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(dry.status.success(), "dry run failed:\n{text}");
    let jobs = |rule: &str| {
        text.lines()
            .filter(|l| l.split_whitespace().next() == Some(rule))
            .find_map(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
    };
    assert_eq!(jobs("step"), Some(6), "{text}");
    assert_eq!(jobs("summary"), Some(1), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A niche model trained on one sample (`cluster --model-out`) puts every sample's cells in the
/// same niches: on the sample it was trained on it gives back its own clusters, and the summary
/// gains each sample's niche frequencies and their group tests. A sample clustered on its own is
/// left out of the niche rows, with a note.
#[test]
fn a_shared_niche_model_gives_every_sample_the_same_niches_in_the_summary() {
    let dir = std::env::temp_dir().join(format!("cohort_niches_{}", std::process::id()));
    let manifest = three_samples(&dir, "");
    let (m, out) = (manifest.to_str().unwrap(), dir.join("out"));
    let out_s = out.to_str().unwrap();
    let first_bundle = read_csv(&manifest)[1][1].clone();
    let s1 = dir.join(first_bundle);
    let (model, s1_clusters) = (dir.join("niche_model"), dir.join("s1_clusters.parquet"));
    json_of(&cellsymphony(&[
        "cluster",
        "--xenium",
        s1.to_str().unwrap(),
        "--k",
        "4",
        "--epochs",
        "5",
        "--device",
        "cpu",
        "--out",
        s1_clusters.to_str().unwrap(),
        "--model-out",
        model.to_str().unwrap(),
        "--json",
    ]));
    let run = json_of(&cellsymphony(&[
        "cohort",
        "run",
        m,
        "--step",
        "cluster",
        "--model",
        model.to_str().unwrap(),
        "--device",
        "cpu",
        "--out",
        out_s,
        "--json",
    ]));
    assert_eq!(run["ran"].as_u64(), Some(3), "{run}");
    let niches = |path: &Path| {
        let columns = cs_xenium::read_table_columns(path, &["cell_id", "morphology_cluster"], &[]).unwrap();
        match &columns[..] {
            [cs_xenium::CellColumn::Text(ids), cs_xenium::CellColumn::Text(n)] => (ids.clone(), n.clone()),
            _ => panic!("{}: not text columns", path.display()),
        }
    };
    let (trained_ids, trained) = niches(&s1_clusters);
    let (assigned_ids, assigned) = niches(&out.join("S1").join("cluster.parquet"));
    assert_eq!(trained_ids, assigned_ids);
    let same = trained.iter().zip(&assigned).filter(|(a, b)| a == b).count();
    assert!(
        same as f64 >= 0.99 * trained.len() as f64,
        "{same} of {} cells keep their k-means cluster",
        trained.len()
    );

    let summary = json_of(&cellsymphony(&["cohort", "summarise", m, "--out", out_s, "--json"]));
    assert_eq!(summary["samples"].as_u64(), Some(3), "{summary}");
    let table = read_csv(&out.join("summary.csv"));
    for id in ["S1", "S2", "S3"] {
        let shares: Vec<f64> = table
            .iter()
            .filter(|r| r[0] == id && r[3] == "niche")
            .map(|r| r[6].parse::<f64>().unwrap())
            .collect();
        assert!(!shares.is_empty() && shares.len() <= 4, "{id}: {shares:?}");
        assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{id}: {shares:?}");
    }
    let tests = read_csv(&out.join("group_tests.csv"));
    assert!(
        tests.iter().any(|r| r[0] == "niche"),
        "niche frequencies tested between groups"
    );

    // S3 clustered on its own: its niches are not the others', so the summary leaves them out.
    json_of(&cellsymphony(&[
        "cohort", "run", m, "--step", "cluster", "--sample", "S3", "--k", "4", "--epochs", "2", "--device", "cpu",
        "--out", out_s, "--json",
    ]));
    let summary = json_of(&cellsymphony(&["cohort", "summarise", m, "--out", out_s, "--json"]));
    let notes: Vec<&str> = summary["missing"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("S3 niches") && n.contains("clustered on its own")),
        "{notes:?}"
    );
    let table = read_csv(&out.join("summary.csv"));
    assert!(!table.iter().any(|r| r[0] == "S3" && r[3] == "niche"));
    let _ = std::fs::remove_dir_all(&dir);
}
