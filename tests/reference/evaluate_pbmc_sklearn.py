"""scikit-learn's logistic regression on the same held-out cells as `cellsymphony evaluate` (the
reference for "the default CellSymphony run reaches at least the logistic-regression baseline").

Reads pbmc68k_reduced.h5ad (X: 765 genes as stored, standardised on the training cells) and the
splits `evaluate --out-splits` wrote; fits LogisticRegression (lbfgs, C = 1, max_iter 5000) per
seed and writes macro-F1 and accuracy per seed with the versions used.

Usage: python3 evaluate_pbmc_sklearn.py H5AD SPLITS.json OUT.json
"""

import json
import sys
from importlib.metadata import version

import anndata
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.preprocessing import StandardScaler

h5ad, splits_path, out_path = sys.argv[1:4]
adata = anndata.read_h5ad(h5ad)
x = np.asarray(adata.X.todense() if hasattr(adata.X, "todense") else adata.X, dtype=np.float64)
y = adata.obs["bulk_labels"].astype(str).to_numpy()
ids = adata.obs_names.to_numpy()
splits = json.load(open(splits_path))
results = []
for split in splits["seeds"]:
    held_out = np.isin(ids, split["test_cell_ids"])
    scaler = StandardScaler().fit(x[~held_out])
    model = LogisticRegression(C=1.0, max_iter=5000)
    model.fit(scaler.transform(x[~held_out]), y[~held_out])
    predicted = model.predict(scaler.transform(x[held_out]))
    results.append(
        {
            "seed": split["seed"],
            "n_test": int(held_out.sum()),
            "macro_f1": float(f1_score(y[held_out], predicted, average="macro")),
            "accuracy": float(accuracy_score(y[held_out], predicted)),
        }
    )
f1 = [r["macro_f1"] for r in results]
json.dump(
    {
        "method": "sklearn LogisticRegression(C=1, lbfgs) on X (765 genes, standardised)",
        "versions": {p: version(p) for p in ("scikit-learn", "anndata", "numpy")},
        "per_seed": results,
        "macro_f1_mean": float(np.mean(f1)),
        "macro_f1_sd": float(np.std(f1, ddof=1)) if len(f1) > 1 else 0.0,
    },
    open(out_path, "w"),
    indent=2,
)
print(json.dumps({"macro_f1_mean": float(np.mean(f1)), "per_seed": f1}))
