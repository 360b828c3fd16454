"""Expected numbers for crates/cs_xenium/tests/shared_bundles.rs, computed with pyarrow, pandas
and h5py (independent of our reader). Run: python3 tests/reference/xenium_expected.py [DATA_DIR]
Boundary vertex counts drop a closing vertex equal to the first, as the reader does."""
import sys, json
import h5py, numpy as np, pandas as pd, pyarrow.parquet as pq

data = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"
X = f"{data}/xenium"

def table(path):
    if path.endswith(".parquet"):
        df = pq.read_table(path).to_pandas()
        if "cell_id" in df and df["cell_id"].dtype == object:
            df["cell_id"] = df["cell_id"].map(lambda v: v.decode() if isinstance(v, bytes) else str(v))
        return df
    return pd.read_csv(path)

def boundaries(path):
    df = table(path)
    ids = df["cell_id"].astype(str).str.replace(r"\.0$", "", regex=True).to_numpy()
    x = df["vertex_x"].to_numpy(); y = df["vertex_y"].to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)]
    verts = 0
    kept_sum_x = 0.0
    for s, e in zip(starts, ends):
        n = e - s
        if n > 1 and x[s] == x[e - 1] and y[s] == y[e - 1]:
            n -= 1
        verts += n
        kept_sum_x += float(x[s:s + n].astype(np.float32).astype(np.float64).sum())
    first = (starts[0], ends[0])
    n0 = first[1] - first[0] - (1 if x[first[0]] == x[first[1]-1] and y[first[0]] == y[first[1]-1] else 0)
    return {"cells": int(len(starts)), "vertices": int(verts), "first_id": str(ids[0]), "first_vertices": int(n0),
            "first_vertex": [float(x[0]), float(y[0])], "sum_x": kept_sum_x}

def cells(path):
    df = table(path)
    ids = df["cell_id"].astype(str).str.replace(r"\.0$", "", regex=True)
    return {"n": int(len(df)), "first_id": ids.iloc[0], "last_id": ids.iloc[-1],
            "first_xy": [float(df.x_centroid.iloc[0]), float(df.y_centroid.iloc[0])],
            "sum_x": float(df.x_centroid.sum()), "sum_y": float(df.y_centroid.sum()),
            "sum_cell_area": float(df.cell_area.sum()), "sum_nucleus_area": float(df.nucleus_area.sum()),
            "sum_total_counts": float(df.total_counts.sum())}

def matrix(path):
    h = h5py.File(path)
    data = h["matrix/data"][:]; indptr = h["matrix/indptr"][:].astype(int)
    types = [t.decode() for t in h["matrix/features/feature_type"][:]]
    return {"features": len(types), "gene_expression": types.count("Gene Expression"), "nnz": int(len(data)),
            "sum": float(data.sum()), "first_barcode": h["matrix/barcodes"][0].decode(),
            "first_barcode_sum": float(data[indptr[0]:indptr[1]].sum()),
            "first_feature_name": h["matrix/features/name"][0].decode()}

def transcripts(path):
    df = table(path)
    return {"rows": int(len(df)), "qv20": int((df.qv >= 20).sum()), "genes_qv20": int(df[df.qv >= 20].feature_name.nunique())}

out = {
  "sfe_cells_parquet": cells(f"{X}/sfe_toy_v1/cells.parquet"),
  "sfe_cells_csv": cells(f"{X}/sfe_toy_v1/cells.csv.gz"),
  "sfe_cell_boundaries": boundaries(f"{X}/sfe_toy_v1/cell_boundaries.parquet"),
  "sfe_nucleus_boundaries": boundaries(f"{X}/sfe_toy_v1/nucleus_boundaries.parquet"),
  "sfe_matrix": matrix(f"{X}/sfe_toy_v1/cell_feature_matrix.h5"),
  "sfe_transcripts": transcripts(f"{X}/sfe_toy_v1/transcripts.parquet"),
  "speio_cells": cells(f"{X}/speio_xenium_small/cells.parquet"),
  "speio_cell_boundaries": boundaries(f"{X}/speio_xenium_small/cell_boundaries.parquet"),
  "speio_matrix": matrix(f"{X}/speio_xenium_small/cell_feature_matrix.h5"),
  "speio_transcripts": transcripts(f"{X}/speio_xenium_small/transcripts.parquet"),
  "mouse1_cell_boundaries": boundaries(f"{X}/moleculeexperiment_mouse_brain/sample1/cell_boundaries.csv"),
  "mouse1_nucleus_boundaries": boundaries(f"{X}/moleculeexperiment_mouse_brain/sample1/nucleus_boundaries.csv"),
  "mouse1_transcripts": transcripts(f"{X}/moleculeexperiment_mouse_brain/sample1/transcripts.csv"),
  "mouse2_cell_boundaries": boundaries(f"{X}/moleculeexperiment_mouse_brain/sample2/cell_boundaries.csv"),
  "mouse2_nucleus_boundaries": boundaries(f"{X}/moleculeexperiment_mouse_brain/sample2/nucleus_boundaries.csv"),
}
print(json.dumps(out, indent=1))
