"""Writes tests/reference/xenium_xoa4_protein/: a tiny Xenium Protein (XOA 4) bundle re-run by
Xenium Ranger, in the layout 10x writes, for the reader's tests.

- experiment.xenium: analysis_sw_version "xenium-4.0.1.0" and a `xenium_ranger` block whose
  version ("xenium-4.1.0.2") takes precedence, as spatialdata-io reads it.
- cells.csv.gz: four cells with nucleus_count and segmentation_method (XOA 2.0+ columns).
- cell_feature_matrix.h5: 10x HDF5 CSC with Gene Expression, Negative Control Probe and Protein
  Expression features, and the root attribute protein_scaling_factor = 10: protein values are
  stored as integers times 10 (10x's fixed point), so a reader must divide them out.
- nucleus_boundaries.csv.gz: cell 1 binucleate (two label_ids), cell 3 anucleate.
The expected protein values (after dividing) are in expected.json.

Run: /tmp/sdvenv/bin/python tests/reference/xenium_protein_fixture.py
(venv: pip install h5py numpy pandas).
"""
import gzip, json
from pathlib import Path

import h5py
import numpy as np

OUT = Path(__file__).parent / "xenium_xoa4_protein"
OUT.mkdir(exist_ok=True)

cells = ["aaaaaaab-1", "aaaaaaac-1", "aaaaaaad-1", "aaaaaaae-1"]
features = [
    ("ENSG00000000001", "EPCAM", "Gene Expression"),
    ("ENSG00000000002", "PTPRC", "Gene Expression"),
    ("NegControlProbe_00042", "NegControlProbe_00042", "Negative Control Probe"),
    ("CD45", "CD45", "Protein Expression"),
    ("VISTA", "VISTA", "Protein Expression"),
]
# Dense features x cells: genes as counts, proteins as true intensities (one decimal).
true = np.array([
    [5, 0, 2, 1],
    [0, 7, 1, 0],
    [1, 0, 0, 0],
    [0.7, 12.3, 0.0, 3.5],
    [1.2, 0.0, 4.4, 0.1],
])
scaling = 10.0
stored = true.copy()
stored[3:] = np.round(true[3:] * scaling)

# CSC over cells (columns = barcodes), as 10x writes it.
data, indices, indptr = [], [], [0]
for c in range(len(cells)):
    for f in range(len(features)):
        if stored[f, c] != 0:
            data.append(int(stored[f, c]))
            indices.append(f)
    indptr.append(len(data))

with h5py.File(OUT / "cell_feature_matrix.h5", "w") as h5:
    h5.attrs["protein_scaling_factor"] = np.float64(scaling)
    h5.attrs["software_version"] = "xenium-4.0.1.0"
    m = h5.create_group("matrix")
    m.create_dataset("barcodes", data=np.array(cells, dtype="S"))
    m.create_dataset("data", data=np.array(data, dtype=np.int32))
    m.create_dataset("indices", data=np.array(indices, dtype=np.int64))
    m.create_dataset("indptr", data=np.array(indptr, dtype=np.int64))
    m.create_dataset("shape", data=np.array([len(features), len(cells)], dtype=np.int32))
    f = m.create_group("features")
    f.create_dataset("id", data=np.array([x[0] for x in features], dtype="S"))
    f.create_dataset("name", data=np.array([x[1] for x in features], dtype="S"))
    f.create_dataset("feature_type", data=np.array([x[2] for x in features], dtype="S"))
    f.create_dataset("genome", data=np.array(["GRCh38"] * len(features), dtype="S"))
    f.create_dataset("_all_tag_keys", data=np.array(["genome"], dtype="S"))

experiment = {
    "major_version": 6, "minor_version": 0, "patch_version": 0,
    "run_name": "CellSymphony protein fixture", "region_name": "crop",
    "pixel_size": 0.2125, "analysis_sw_version": "xenium-4.0.1.0",
    "num_cells": len(cells), "panel_name": "fixture",
    "xenium_ranger": {"version": "xenium-4.1.0.2", "command": "xeniumranger resegment"},
}
(OUT / "experiment.xenium").write_text(json.dumps(experiment, indent=4))

method = "Segmented by boundary stain (ATP1A1+CD45+E-Cadherin)"
rows = ["cell_id,x_centroid,y_centroid,transcript_counts,control_probe_counts,genomic_control_counts,"
        "control_codeword_counts,unassigned_codeword_counts,deprecated_codeword_counts,total_counts,"
        "cell_area,nucleus_area,nucleus_count,segmentation_method"]
nuclei = {0: [(10, 10, 3)], 1: [(28, 10, 2), (34, 10, 2)], 2: [], 3: [(10, 30, 3)]}
centres = [(10, 10), (31, 10), (50, 10), (10, 30)]
for i, cell in enumerate(cells):
    n = nuclei[i]
    area = sum(4 * h * h for (_, _, h) in n)
    nucleus_area = f"{area:.1f}" if n else "NaN"
    rows.append(f'{cell},{centres[i][0]},{centres[i][1]},{int(true[:2, i].sum())},{int(true[2, i])},0,0,0,0,'
                f'{int(true[:3, i].sum())},100.0,{nucleus_area},{len(n)},"{method}"')
(OUT / "cells.csv.gz").write_bytes(gzip.compress(("\n".join(rows) + "\n").encode(), mtime=0))

lines = ["cell_id,vertex_x,vertex_y,label_id"]
label = 1
for i, cell in enumerate(cells):
    for (cx, cy, h) in nuclei[i]:
        ring = [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h), (cx - h, cy - h)]
        lines += [f"{cell},{x},{y},{label}" for (x, y) in ring]
        label += 1
(OUT / "nucleus_boundaries.csv.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))

expected = {
    "xoa_version": [4, 1, 0],
    "proteins": {features[f][1]: [float(v) for v in true[f]] for f in (3, 4)},
    "genes": {features[f][1]: [float(v) for v in true[f]] for f in (0, 1)},
    "nucleus_count": [len(nuclei[i]) for i in range(len(cells))],
}
(OUT / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
print("wrote", OUT)
