//! Generates a synthetic tissue and prints timings and file sizes:
//! `cargo run --release -p cs_synth --example synth -- CELLS OUT_DIR [SEED] [--no-slide] [--transcripts]`

use std::path::{Path, PathBuf};
use std::time::Instant;

fn sizes(dir: &Path, out: &mut Vec<(PathBuf, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sizes(&path, out);
        } else if let Ok(meta) = path.metadata() {
            out.push((path, meta.len()));
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cells: usize = args.first().map_or(Ok(20_000), |a| a.parse())?;
    let out = PathBuf::from(args.get(1).map_or("/tmp/synth", String::as_str));
    let seed: u64 = args
        .get(2)
        .filter(|a| !a.starts_with("--"))
        .map_or(Ok(1), |a| a.parse())?;
    let options = cs_synth::SynthOptions {
        cells,
        seed,
        write_slide: !args.iter().any(|a| a == "--no-slide"),
        write_transcripts: args.iter().any(|a| a == "--transcripts"),
        ..Default::default()
    };
    let start = Instant::now();
    let last = std::cell::Cell::new(String::new());
    let summary = cs_synth::generate(
        &options,
        &out,
        &|fraction, stage| {
            if last.replace(stage.to_owned()) != stage {
                println!(
                    "{:7.2} s  {:5.1}%  {stage}",
                    start.elapsed().as_secs_f64(),
                    fraction * 100.0
                );
            }
        },
        &|| false,
    )?;
    println!("{:7.2} s  done: {summary:#?}", start.elapsed().as_secs_f64());
    let mut files = Vec::new();
    sizes(&out, &mut files);
    let mut total = 0;
    for (path, size) in &files {
        total += size;
        println!("{:>12}  {}", size, path.strip_prefix(&out).unwrap_or(path).display());
    }
    println!("{total:>12}  total");
    Ok(())
}
