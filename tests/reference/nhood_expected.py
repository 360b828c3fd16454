"""Expected spatial graphs and neighbourhood enrichment for crates/cs_analysis/tests/nhood_reference.rs,
computed with squidpy itself (squidpy.gr.spatial_neighbors + squidpy.gr.nhood_enrichment), not a
reimplementation. This script installs nothing; it needs squidpy (tested with squidpy 1.8.2, scipy 1.17,
scikit-learn 1.9, numba 0.68 on Python 3.11), h5py and pyarrow, e.g. in a virtual environment:
    python3 -m venv /tmp/sqvenv && /tmp/sqvenv/bin/pip install squidpy h5py pyarrow
Run from the repository root:
    /tmp/sqvenv/bin/python tests/reference/nhood_expected.py [DATA_DIR]
DATA_DIR defaults to ../shared/data beside the repository. Writes tests/reference/nhood_expected.json.

Data: xenium/sfe_toy_v1 (526 cells). Positions: cells.parquet x_centroid, y_centroid (µm).
Labels (a rule the Rust test reproduces through cs_xenium): the argmax of the counts of
CD3E, POU2AF1, SPIB, ALDH1A2 in cell_feature_matrix.h5, ties going to the gene listed first;
cells with none of the four genes are labelled "none". Categories in that order (5 classes).

Graphs (coord_type="generic"): delaunay=True; radius=30.0; n_neighs=6. For each: the number of stored
entries of the connectivity matrix (nnz: directed entries, so a symmetric graph's undirected edges
count twice), the count matrix and the z-scores of nhood_enrichment(n_perms=1000, seed=42).
NaN z-scores (permutation std 0) are written as null.
"""
import json
import sys
import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import scipy.sparse as sp
import squidpy as sq

GENES = ["CD3E", "POU2AF1", "SPIB", "ALDH1A2"]
CLASSES = GENES + ["none"]
N_PERMS = 1000
SEED = 42
GRAPHS = {
    "delaunay": dict(delaunay=True),
    "radius_30": dict(radius=30.0),
    "knn_6": dict(n_neighs=6),
}

repo = Path(__file__).resolve().parents[2]
data = Path(sys.argv[1]) if len(sys.argv) > 1 else repo / ".." / "shared" / "data"
bundle = data / "xenium" / "sfe_toy_v1"

cells = pq.read_table(bundle / "cells.parquet").to_pandas()
ids = cells["cell_id"].map(lambda v: v.decode() if isinstance(v, bytes) else str(v)).to_numpy()
coords = np.column_stack([cells["x_centroid"].to_numpy(np.float64), cells["y_centroid"].to_numpy(np.float64)])

with h5py.File(bundle / "cell_feature_matrix.h5") as h:
    m = h["matrix"]
    shape = tuple(int(v) for v in m["shape"][:])
    by_barcode = sp.csc_matrix((m["data"][:], m["indices"][:], m["indptr"][:]), shape=shape)
    names = [v.decode() for v in m["features/name"][:]]
    barcodes = [v.decode() for v in m["barcodes"][:]]
column_of = {b: i for i, b in enumerate(barcodes)}
genes_by_barcode = by_barcode[[names.index(g) for g in GENES], :].toarray().T  # barcodes x genes
gene_counts = np.zeros((len(ids), len(GENES)))
for row, cell in enumerate(ids):
    if cell in column_of:
        gene_counts[row] = genes_by_barcode[column_of[cell]]
labels = np.argmax(gene_counts, axis=1)  # first maximum: ties go to the gene listed first
labels[gene_counts.max(axis=1) <= 0] = len(GENES)

adata = ad.AnnData(obs=pd.DataFrame(index=ids))
adata.obsm["spatial"] = coords
adata.obs["label"] = pd.Categorical.from_codes(labels, categories=CLASSES)

out = {
    "source": "squidpy",
    "squidpy_version": sq.__version__,
    "bundle": "xenium/sfe_toy_v1",
    "cells": len(ids),
    "genes": GENES,
    "classes": CLASSES,
    "class_sizes": np.bincount(labels, minlength=len(CLASSES)).tolist(),
    "n_perms": N_PERMS,
    "seed": SEED,
    "graphs": {},
}
for name, params in GRAPHS.items():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sq.gr.spatial_neighbors(adata, coord_type="generic", **params)
        result = sq.gr.nhood_enrichment(adata, cluster_key="label", n_perms=N_PERMS, seed=SEED,
                                        copy=True, show_progress_bar=False)
    zscore, count = result[0], result[1]
    conn = adata.obsp["spatial_connectivities"].tocsr()
    conn.eliminate_zeros()
    out["graphs"][name] = {
        "params": params,
        "nnz": int(conn.nnz),
        "symmetric": bool((conn != conn.T).nnz == 0),
        "count": np.asarray(count).astype(np.int64).tolist(),
        "zscore": [[None if not np.isfinite(z) else round(float(z), 4) for z in row] for row in np.asarray(zscore)],
    }
    print(name, "nnz", conn.nnz, "symmetric", out["graphs"][name]["symmetric"])

path = Path(__file__).with_name("nhood_expected.json")
path.write_text(json.dumps(out, indent=1) + "\n")
print("wrote", path)
