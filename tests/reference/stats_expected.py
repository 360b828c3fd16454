"""Expected numbers for crates/cs_analysis/tests/stats_reference.rs (selection statistics), computed
on the real Xenium crop xenium/sfe_toy_v1 (526 cells) with scipy, statsmodels and scanpy itself
(versions are written into the JSON). Run from the repository root:

    pip install scipy numpy pandas scanpy h5py pyarrow statsmodels
    python3 tests/reference/stats_expected.py [DATA_DIR] > tests/reference/stats_expected.json

DATA_DIR defaults to ../shared/data. Rules that the Rust test applies the same way:
- cells in cells.parquet order; counts from cell_feature_matrix.h5 matched by barcode = cell_id;
  genes = features of type "Gene Expression", in file order;
- selection A = the floor(n/2) cells with the smallest x_centroid (ties by row);
- selection B = cells not in A among the floor(n/2) cells with the smallest y_centroid (ties by row);
- labels: argmax of the raw counts of LABEL_GENES (ties to the first); a cell with none of them is
  unlabelled; the categories are LABEL_GENES plus an "unused" class that no cell has;
- composition: group vs reference counts, fractions k/n (0 when n = 0), log2 enrichment
  log2((k_g+.5)/(n_g+.5K)) - log2((k_r+.5)/(n_r+.5K)), scipy fisher_exact two-sided p on
  [[k_g, n_g-k_g], [k_r, n_r-k_r]], BH (scipy false_discovery_control) over the tested classes
  (those with a cell on either side); untested classes have p = q = 1 and enrichment 0;
- differential expression: scanpy normalize_total(target_sum=1e4) + log1p on the float64 gene
  matrix, exact ties restored (restore_exact_ties: an ulp-level change that makes the result
  independent of numpy's SIMD log1p), then rank_genes_groups(method="wilcoxon", tie_correct=True, pts=True) for A vs rest,
  A vs B, and the cells labelled CD3E vs the rest (strong differences, tiny p-values); means are
  the mean log1p values of each side (numpy).
"""
import json
import sys
from importlib.metadata import version

import h5py
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import scipy.sparse as sp
from scipy.stats import false_discovery_control, fisher_exact, hypergeom

import anndata
import scanpy as sc
from scanpy.tools._rank_genes_groups import _RankGenes
from statsmodels.stats.multitest import fdrcorrection

LABEL_GENES = ["CD3E", "POU2AF1", "LAPTM4A", "ALDH1A2"]
CATEGORIES = LABEL_GENES + ["unused"]
FISHER_TABLES = [
    [[5000, 45000], [20000, 930000]],
    [[600, 49400], [9000, 941000]],
    [[480, 9520], [9800, 190200]],
    [[12, 488], [9988, 489512]],
    [[250100, 249900], [249900, 250100]],
    [[8, 2], [1, 5]],
    [[1, 9], [11, 3]],
    [[7, 13], [13, 7]],
    [[3, 0], [0, 3]],
    [[0, 10], [0, 7]],
    [[25, 2575], [100, 97300]],
    [[1000, 49000], [9000, 941000]],
]

data = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"
bundle = f"{data}/xenium/sfe_toy_v1"


def fisher_p(table):
    return float(fisher_exact(table, alternative="two-sided").pvalue)


def fisher_p_tolerance(table, tolerance):
    """Two-sided Fisher p by summing the hypergeometric pmf over the support (scipy's pmf), with
    a given relative tolerance: checks that R's 1e-7 and scipy's 1e-14 agree on these tables."""
    (a, b), (c, d) = table
    if min(a + b, c + d, a + c, b + d) == 0:
        return 1.0
    support = np.arange(max(0, (a + c) - (c + d)), min(a + c, a + b) + 1)
    pmf = hypergeom.pmf(support, a + b + c + d, a + b, a + c)
    p_obs = hypergeom.pmf(a, a + b + c + d, a + b, a + c)
    return float(min(1.0, pmf[pmf <= p_obs * (1 + tolerance)].sum()))


def restore_exact_ties(adata, raw):
    """Gives cells whose counts of a gene are in the same proportion to their totals bit-identical
    log1p(CP10k) values, as the Rust code ranks them, and returns how many values moved.

    normalize_total computes count / (total / 1e4): the inner rounding can put equal ratios one ulp
    apart, and numpy's SIMD log1p (machine-dependent) may or may not merge them again, so scanpy's
    tie structure depends on the machine. Each value of a tie group takes the group's first value
    (a change of at most an ulp or two); distinct ratios must stay distinct."""
    x = adata.X
    assert np.array_equal(x.indptr, raw.indptr) and np.array_equal(x.indices, raw.indices)
    totals = np.asarray(raw.sum(axis=1)).ravel()
    rows = np.repeat(np.arange(raw.shape[0]), np.diff(raw.indptr))
    key = raw.data / np.where(totals == 0, 1e4, totals)[rows]
    pairs = np.rec.fromarrays([x.indices, key])
    _, first, inverse = np.unique(pairs, return_index=True, return_inverse=True)
    canonical = x.data[first][inverse]
    moved = canonical != x.data
    assert np.all(np.abs(canonical - x.data) <= 2 * np.spacing(x.data))
    assert len(np.unique(np.rec.fromarrays([x.indices, canonical]))) == len(first), "distinct ratios merged"
    x.data = canonical
    return int(moved.sum())


def ranked_first(values, count):
    order = np.lexsort((np.arange(len(values)), values))
    mask = np.zeros(len(values), dtype=bool)
    mask[order[:count]] = True
    return mask


def composition(codes, k, in_group, in_reference):
    labelled = codes >= 0
    n_g = int((labelled & in_group).sum())
    n_r = int((labelled & in_reference).sum())
    classes = []
    for cls in range(k):
        k_g = int(((codes == cls) & in_group).sum())
        k_r = int(((codes == cls) & in_reference).sum())
        tested = n_g > 0 and n_r > 0 and k_g + k_r > 0
        enrichment = 0.0
        p = 1.0
        if tested:
            enrichment = float(np.log2((k_g + 0.5) / (n_g + 0.5 * k)) - np.log2((k_r + 0.5) / (n_r + 0.5 * k)))
            p = fisher_p([[k_g, n_g - k_g], [k_r, n_r - k_r]])
        classes.append({
            "count_in_group": k_g, "count_in_reference": k_r,
            "fraction_in_group": k_g / n_g if n_g else 0.0,
            "fraction_in_reference": k_r / n_r if n_r else 0.0,
            "log2_enrichment": enrichment, "p_value": p, "q_value": 1.0, "tested": tested,
        })
    tested = [i for i, c in enumerate(classes) if c["tested"]]
    if tested:
        ps = np.array([classes[i]["p_value"] for i in tested])
        qs = false_discovery_control(ps, method="bh")
        assert np.allclose(qs, fdrcorrection(ps)[1], rtol=1e-12, atol=0)
        for i, q in zip(tested, qs):
            classes[i]["q_value"] = float(q)
    for c in classes:
        del c["tested"]
    return {
        "cells_in_group": n_g, "cells_in_reference": n_r,
        "unclassified_in_group": int((~labelled & in_group).sum()),
        "unclassified_in_reference": int((~labelled & in_reference).sum()),
        "classes": classes,
    }


def rank_genes(adata, groupby, group, reference, in_group, in_reference):
    """scanpy's Wilcoxon test through the public call, and again through the class it runs
    (scanpy.tools._rank_genes_groups._RankGenes) to read scores and log fold changes before the
    public call rounds them to float32 (asserted equal after that rounding)."""
    sc.tl.rank_genes_groups(adata, groupby, groups=[group], reference=reference, method="wilcoxon",
                            tie_correct=True, pts=True, use_raw=False, key_added="de")
    uns = adata.uns["de"]
    public = {name: i for i, name in enumerate(uns["names"][group])}
    # rank_genes_groups adds the reference group to the groups it hands _RankGenes.
    groups = [group] if reference == "rest" else [group, reference]
    test = _RankGenes(adata, groups, groupby, reference=reference, use_raw=False, comp_pts=True)
    test.compute_statistics("wilcoxon", tie_correct=True)
    stats = test.stats[group]
    pts = uns["pts"]
    pts_reference = uns["pts_rest"][group] if reference == "rest" else pts[reference]
    x = adata.X.toarray()
    genes = []
    for j, name in enumerate(adata.var_names):
        i = public[name]
        row = stats.loc[name]
        assert np.float32(row["scores"]) == uns["scores"][group][i]
        assert np.float32(row["logfoldchanges"]) == uns["logfoldchanges"][group][i]
        assert row["pvals"] == uns["pvals"][group][i] and row["pvals_adj"] == uns["pvals_adj"][group][i]
        genes.append({
            "name": name,
            "score": float(row["scores"]), "pval": float(row["pvals"]), "pval_adj": float(row["pvals_adj"]),
            "logfoldchange": float(row["logfoldchanges"]),
            "pts": float(pts[group][name]), "pts_reference": float(pts_reference[name]),
            "mean_group": float(x[in_group, j].mean()),
            "mean_reference": float(x[in_reference, j].mean()),
        })
    return genes


# Cells, in cells.parquet order.
cells = pq.read_table(f"{bundle}/cells.parquet").to_pandas()
ids = cells["cell_id"].map(lambda v: v.decode() if isinstance(v, bytes) else str(v)).to_numpy()
n = len(ids)
x_um = cells["x_centroid"].to_numpy(dtype=np.float64)
y_um = cells["y_centroid"].to_numpy(dtype=np.float64)

# Counts: the CSC (features x barcodes) matrix, reordered to the cells, genes only.
h5 = h5py.File(f"{bundle}/cell_feature_matrix.h5")
shape = tuple(int(v) for v in h5["matrix/shape"][:])
by_barcode = sp.csc_matrix((h5["matrix/data"][:].astype(np.float64), h5["matrix/indices"][:],
                            h5["matrix/indptr"][:]), shape=shape)
barcodes = [b.decode() for b in h5["matrix/barcodes"][:]]
names = [b.decode() for b in h5["matrix/features/name"][:]]
types = [b.decode() for b in h5["matrix/features/feature_type"][:]]
column = {b: i for i, b in enumerate(barcodes)}
cell_by_feature = by_barcode[:, [column[i] for i in ids]].T.tocsr()
gene_cols = [i for i, t in enumerate(types) if t == "Gene Expression"]
genes = cell_by_feature[:, gene_cols].tocsr()
gene_names = [names[i] for i in gene_cols]

in_a = ranked_first(x_um, n // 2)
in_b = ranked_first(y_um, n // 2) & ~in_a

dense = cell_by_feature.toarray()
label_counts = dense[:, [names.index(g) for g in LABEL_GENES]]
codes = np.where(label_counts.max(axis=1) > 0, label_counts.argmax(axis=1), -1)

fisher = []
for table in FISHER_TABLES:
    p = fisher_p(table)
    # This crate compares table probabilities with R's 1e-7 relative tolerance: make sure it
    # gives scipy's answer on every table here.
    assert np.isclose(fisher_p_tolerance(table, 1e-7), p, rtol=1e-9, atol=1e-300), table
    fisher.append({"table": table, "p": p})

bh_input = [0.01, 0.04, None, 0.03, 0.2, 0.0001, 0.5, None, 0.04, 1.0]
finite = [p for p in bh_input if p is not None]
finite_q = iter(false_discovery_control(np.array(finite), method="bh").tolist())
bh_expected = [None if p is None else next(finite_q) for p in bh_input]

adata = anndata.AnnData(X=genes.copy())
adata.var_names = gene_names
adata.obs_names = ids
adata.obs["sel"] = pd.Categorical(np.where(in_a, "in", "out"), categories=["in", "out"])
adata.obs["label0"] = pd.Categorical(np.where(codes == 0, "yes", "no"), categories=["yes", "no"])
adata.obs["ab"] = pd.Categorical(np.where(in_a, "A", np.where(in_b, "B", "other")), categories=["A", "B", "other"])
sc.pp.normalize_total(adata, target_sum=1e4)
sc.pp.log1p(adata)
ties_restored = restore_exact_ties(adata, genes)

out = {
    "versions": {name: version(name) for name in ["scipy", "scanpy", "anndata", "statsmodels", "numpy"]},
    "dataset": "xenium/sfe_toy_v1",
    "selection": {
        "n_cells": n,
        "a_count": int(in_a.sum()), "a_index_sum": int(np.flatnonzero(in_a).sum()),
        "b_count": int(in_b.sum()), "b_index_sum": int(np.flatnonzero(in_b).sum()),
    },
    "labels": {
        "genes": LABEL_GENES, "categories": CATEGORIES,
        "counts": [int((codes == k).sum()) for k in range(len(CATEGORIES))],
        "unlabelled": int((codes < 0).sum()),
    },
    "fisher": fisher,
    "log1p_values_moved_to_restore_exact_ties": ties_restored,
    "bh": {"p": bh_input, "q": bh_expected},
    "composition_a_vs_rest": composition(codes, len(CATEGORIES), in_a, ~in_a),
    "composition_a_vs_b": composition(codes, len(CATEGORIES), in_a, in_b),
    "genes": gene_names,
    "de_a_vs_rest": rank_genes(adata, "sel", "in", "rest", in_a, ~in_a),
    "de_a_vs_b": rank_genes(adata, "ab", "A", "B", in_a, in_b),
    "de_label0_vs_rest": rank_genes(adata, "label0", "yes", "rest", codes == 0, codes != 0),
}


def dump(value, indent=""):
    """JSON with one line per leaf record (compact and diff-friendly)."""
    inner = indent + " "
    if isinstance(value, dict) and any(isinstance(v, (dict, list)) and v and isinstance(
            v if isinstance(v, dict) else v[0], dict) or isinstance(v, dict) for v in value.values()):
        items = [f"{inner}{json.dumps(k)}: {dump(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return "[\n" + ",\n".join(inner + dump(v, inner) for v in value) + "\n" + indent + "]"
    return json.dumps(value)


sys.stdout.write(dump(out) + "\n")
