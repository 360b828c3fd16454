# Two commands on a fresh Debian/Ubuntu machine: `make run` and `make test`.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
# wgpu/winit want a private runtime dir; CI machines often have none.
export XDG_RUNTIME_DIR := $(or $(XDG_RUNTIME_DIR),$(shell d=/tmp/cellsymphony-xdg-$$(id -u); mkdir -p $$d; chmod 700 $$d; echo $$d))
CARGO ?= cargo

.PHONY: deps workflow-env run test fmt-check clippy unit bench bench-cells bench-morphology bench-transcripts bench-cohort replay release

deps:
	@scripts/install-deps.sh

## Build (debug, dependencies optimised) and open the viewer.
run: deps
	$(CARGO) run --bin cellsymphony -- --demo

## fmt check, clippy with -D warnings, every test. Debug builds only.
test: deps workflow-env fmt-check clippy unit

## The cohort workflow's Snakemake, in .venv-workflow (the workflow test runs it).
workflow-env:
	@scripts/workflow-venv.sh

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

## Benchmarks (release builds; not run in CI).
bench: deps
	$(CARGO) bench -p cs_slide --bench tiles
	$(CARGO) bench --bench frame_prepare
	$(MAKE) replay
	$(MAKE) bench-cells
	$(MAKE) bench-morphology
	$(MAKE) bench-transcripts

BENCH_CELLS_DIR := .cache/bench-synth-500k
bench-cells:
	test -f $(BENCH_CELLS_DIR)/SYNTH_OK || $(CARGO) run --release --bin cellsymphony -- synth --cells 500000 --no-slide --seed 11 --out $(BENCH_CELLS_DIR)
	$(CARGO) run --release --bin cellsymphony -- bench cells --xenium $(BENCH_CELLS_DIR)/xenium

# 500k cells over four 16-bit stains of about 40,000 x 40,000 px (Xenium's 0.2125 µm/px).
BENCH_MORPHOLOGY_DIR := .cache/bench-synth-500k-morphology
bench-morphology:
	test -f $(BENCH_MORPHOLOGY_DIR)/SYNTH_OK || $(CARGO) run --release --bin cellsymphony -- synth --cells 500000 --no-slide --morphology --seed 11 --out $(BENCH_MORPHOLOGY_DIR)
	$(CARGO) run --release --bin cellsymphony -- bench morphology --xenium $(BENCH_MORPHOLOGY_DIR)/xenium

# About 100M transcripts (580k cells, XOA 3 columns): the index build, cached open and frames.
BENCH_TRANSCRIPTS_DIR := .cache/bench-synth-100m-transcripts
bench-transcripts:
	test -f $(BENCH_TRANSCRIPTS_DIR)/SYNTH_OK || $(CARGO) run --release --bin cellsymphony -- synth --cells 580000 --no-slide --transcripts --xoa 3 --seed 17 --out $(BENCH_TRANSCRIPTS_DIR)
	$(CARGO) run --release --bin cellsymphony -- bench transcripts --xenium $(BENCH_TRANSCRIPTS_DIR)/xenium --width 1920 --height 1080 --cpu --frames 60

# 20 samples of 50,000 cells with their H&E: cohort run --step embed, fresh and resumed.
bench-cohort:
	$(CARGO) build --release --bin cellsymphony
	scripts/bench-cohort.sh

replay:
	$(CARGO) run --release --bin cellsymphony -- bench replay --slide ../shared/data/wsi/CMU-1-Small-Region.pyramid.tiff

release: deps
	$(CARGO) build --release --bin cellsymphony
