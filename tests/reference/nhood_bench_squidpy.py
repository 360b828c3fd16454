"""squidpy's side of the neighbourhood-enrichment timing comparison with
crates/cs_analysis/examples/nhood_500k.rs (same bundle, same graphs, same number of permutations).
Installs nothing; needs squidpy, pyarrow (see tests/reference/nhood_expected.py for a venv recipe).

    cellsymphony synth --cells 500000 --no-slide --seed 11 --out /tmp/synth500k
    /tmp/sqvenv/bin/python tests/reference/nhood_bench_squidpy.py /tmp/synth500k/xenium [N_PERMS] [GRAPHS] [numba]

GRAPHS: comma-separated from radius,delaunay,knn (default all). A fourth argument `numba` runs
nhood_enrichment with numba_parallel=True and n_jobs=1 (one process, numba threads) instead. Labels: the bundle's
analysis/clustering/synthetic_cell_type/clusters.csv. Positions: cells.parquet x/y_centroid (µm).
nhood_enrichment runs with squidpy's defaults (n_jobs = all cores as loky worker processes,
numba_parallel=False), seed 0, after a 2-permutation warm-up call so that numba's JIT compilation
(once per worker process) is not timed; the cold first call is timed too.
"""
import os
import sys
import time
import warnings
from pathlib import Path

import anndata as ad
import numba
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import squidpy as sq

bundle = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/synth500k/xenium")
n_perms = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
wanted = sys.argv[3].split(",") if len(sys.argv) > 3 else ["radius", "delaunay", "knn"]
parallel = dict(numba_parallel=True, n_jobs=1) if len(sys.argv) > 4 and sys.argv[4] == "numba" else {}
GRAPHS = {"radius": dict(radius=30.0), "delaunay": dict(delaunay=True), "knn": dict(n_neighs=6)}

start = time.perf_counter()
cells = pq.read_table(bundle / "cells.parquet", columns=["cell_id", "x_centroid", "y_centroid"]).to_pandas()
ids = cells["cell_id"].map(lambda v: v.decode() if isinstance(v, bytes) else str(v))
clusters = pd.read_csv(bundle / "analysis/clustering/synthetic_cell_type/clusters.csv", dtype={"Cluster": str})
label = ids.map(dict(zip(clusters["Barcode"], clusters["Cluster"])))
adata = ad.AnnData(obs=pd.DataFrame(index=ids.to_numpy()))
adata.obsm["spatial"] = cells[["x_centroid", "y_centroid"]].to_numpy(np.float64)
adata.obs["cell_type"] = pd.Categorical(label.to_numpy())
print(
    f"{adata.n_obs} cells, {len(adata.obs['cell_type'].cat.categories)} classes, read in "
    f"{time.perf_counter() - start:.2f} s; squidpy {sq.__version__}, numba {numba.__version__} "
    f"(NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS}); "
    + ("numba_parallel=True, n_jobs=1; " if parallel else f"n_jobs default = {os.cpu_count()} loky processes; ")
    + f"{n_perms} permutations",
    flush=True,
)

for name in wanted:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        sq.gr.spatial_neighbors(adata, coord_type="generic", **GRAPHS[name])
        build = time.perf_counter() - start
        nnz = adata.obsp["spatial_connectivities"].nnz
        start = time.perf_counter()
        sq.gr.nhood_enrichment(
            adata, cluster_key="cell_type", n_perms=2, seed=0, copy=True, show_progress_bar=False, **parallel
        )
        cold = time.perf_counter() - start
        start = time.perf_counter()
        zscore, count = sq.gr.nhood_enrichment(
            adata, cluster_key="cell_type", n_perms=n_perms, seed=0, copy=True, show_progress_bar=False, **parallel
        )[:2]
        enrich = time.perf_counter() - start
    print(
        f"{name:>9}: graph {build:.3f} s ({nnz} stored edges); enrichment {enrich:.3f} s "
        f"(warm-up call with JIT: {cold:.2f} s); top z {np.nanmax(zscore):.1f}",
        flush=True,
    )
