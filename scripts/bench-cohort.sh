#!/usr/bin/env bash
# Cohort benchmark: N synthetic samples of CELLS cells, each with its H&E and alignment;
# `cohort run --step embed` over all of them (fresh), then again (every sample skipped by its
# fingerprint: the resume). Prints the total wall time of each and the per-sample seconds.
#   scripts/bench-cohort.sh            # 20 x 50,000 cells with target/release/cellsymphony
#   N=3 CELLS=2000 scripts/bench-cohort.sh
set -euo pipefail
bin="${BIN:-target/release/cellsymphony}"
n="${N:-20}"
cells="${CELLS:-50000}"
dir="${DIR:-.cache/bench-cohort-${n}x${cells}}"
device="${DEVICE:-cpu}"
mkdir -p "$dir"
manifest="$dir/cohort.csv"
echo "sample_id,xenium,slide,alignment,condition" > "$manifest.tmp"
for i in $(seq 1 "$n"); do
  sample="$dir/s$i"
  if [ ! -f "$sample/synth.json" ]; then
    "$bin" synth --cells "$cells" --seed $((100 + i)) --out "$sample" --json > "$sample.json.tmp"
    mv "$sample.json.tmp" "$sample/synth.json"
  fi
  python3 - "$sample/synth.json" "$dir" "S$i" $((i % 2)) >> "$manifest.tmp" <<'PY'
import json, os, sys
summary = json.load(open(sys.argv[1]))
rel = lambda p: os.path.relpath(p, sys.argv[2])
print(f"{sys.argv[3]},{rel(summary['bundle'])},{rel(summary['slide'])},{rel(summary['alignment'])},"
      + ("A" if sys.argv[4] == "0" else "B"))
PY
done
mv "$manifest.tmp" "$manifest"
rm -rf "$dir/out"
run() {
  local start end
  start=$(date +%s.%N)
  "$bin" cohort run "$manifest" --step embed --out "$dir/out" --device "$device" --json > "$dir/$1.json" 2> "$dir/$1.log"
  end=$(date +%s.%N)
  python3 - "$dir/$1.json" "$start" "$end" "$1" <<'PY'
import json, statistics, sys
report = json.load(open(sys.argv[1]))
wall = float(sys.argv[3]) - float(sys.argv[2])
seconds = [s["seconds"] for s in report["samples"]]
print(f"{sys.argv[4]}: {len(seconds)} samples, ran {report['ran']}, skipped {report['skipped']}, failed {report['failed']}; "
      f"total {wall:.1f} s wall; per sample median {statistics.median(seconds):.2f} s, "
      f"min {min(seconds):.2f}, max {max(seconds):.2f}")
PY
}
nproc | xargs echo "cores:"
run fresh
run resume
