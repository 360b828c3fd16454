#!/usr/bin/env bash
# The cohort workflow's Python environment: Snakemake and its Slurm executor plugin, pinned, in
# .venv-workflow at the repository root. Idempotent: does nothing when the pinned versions are
# there. `make test` and the workflow test run it; users may run it too (README, "Cohorts").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-workflow"
pins=(snakemake==9.27.1 snakemake-executor-plugin-slurm==2.8.0)
stamp="$venv/.pins"
if [ -x "$venv/bin/snakemake" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${pins[*]}" ]; then
  exit 0
fi
echo "Installing ${pins[*]} into $venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "${pins[@]}"
echo "${pins[*]}" > "$stamp"
