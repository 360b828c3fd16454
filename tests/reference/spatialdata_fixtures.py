"""Writes the SpatialData fixtures of crates/cs_spatialdata/tests and their expected numbers.

The Xenium run is ../shared/data/xenium/sfe_toy_v1 (526 real cells, DAPI morphology), read by
spatialdata-io's own `xenium()` reader. Two files that reader needs and the crop lacks are made
here: `experiment.xenium` (pixel size 0.2125 um, XOA 1.2, so cell ids come from the parquet) and an
empty `cells.zarr.zip` (no labels are read). An aligned H&E is added the way 10x ships one
(`*_he_image.ome.tif` + `*_he_imagealignment.csv`): a 256 px crop of CMU-1-Small-Region under a
rotated, scaled and shifted affine, so the fixture has an affine image transform.

Each store is written in a different layout:
- sdata_v3.zarr: the current formats (zarr v3, OME-NGFF 0.5), shapes as GeoParquet WKB, the table
  annotating `cell_circles` (spatialdata-io's `cells_as_circles=True`).
- sdata_v2.zarr: the 0.1 container (zarr v2, OME-NGFF 0.4), shapes as GeoParquet WKB, and the table
  re-annotated to `cell_boundaries` (polygons).
- sdata_geoarrow.zarr: current formats with shapes in native GeoArrow encoding, and the table
  annotating a labels element (`cell_labels`, by integer label) as spatialdata-io does by default
  (`cells_as_circles=False`): the shapes then carry the cell ids, the table's `cell_id` column too.
A categorical `cell_type` (each cell's most-counted gene, "none" when it has no counts) and a numeric
`log_counts` are added to the table's obs, as a user's own annotations would be.

Run: /tmp/sdvenv/bin/python tests/reference/spatialdata_fixtures.py [DATA_DIR]
(venv: pip install spatialdata-io; versions are written to expected.json).
"""
import json, shutil, sys, tempfile
from pathlib import Path
from importlib.metadata import version

import numpy as np, pandas as pd, tifffile, zarr
import spatialdata as sd
from spatialdata.models import Labels2DModel
from spatialdata.transformations import Identity, get_transformation
from spatialdata_io import xenium
from spatialdata._io.format import ContainerV01DefaultTypes, SpatialDataContainerFormatV01

data = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
out = Path(__file__).parent / "spatialdata"
bundle = data / "xenium" / "sfe_toy_v1"
PIXEL_SIZE = 0.2125

tmp = Path(tempfile.mkdtemp())
run = tmp / "xenium"
run.mkdir()
for name in ["cells.parquet", "cell_boundaries.parquet", "nucleus_boundaries.parquet", "transcripts.parquet",
             "cell_feature_matrix.h5", "morphology_focus.ome.tif", "morphology_mip.ome.tif"]:
    shutil.copy(bundle / name, run / name)
(run / "experiment.xenium").write_text(json.dumps({"pixel_size": PIXEL_SIZE, "analysis_sw_version": "xenium-1.2.0.0"}))
store = zarr.storage.ZipStore(run / "cells.zarr.zip", mode="w"); zarr.open_group(store, mode="w"); store.close()

# The aligned H&E: H&E pixel -> morphology pixel (as Xenium Explorer's alignment CSV).
he = tifffile.imread(data / "wsi" / "CMU-1-Small-Region.ome.tif")[1000:1256, 900:1156, :3]
tifffile.imwrite(run / "fixture_he_image.ome.tif", np.ascontiguousarray(he), photometric="rgb")
angle = np.deg2rad(8.0)
alignment = np.array([[0.95 * np.cos(angle), -0.95 * np.sin(angle), 4650.0],
                      [0.95 * np.sin(angle), 0.95 * np.cos(angle), 5700.0],
                      [0.0, 0.0, 1.0]])
pd.DataFrame(alignment).to_csv(run / "fixture_he_imagealignment.csv", header=False, index=False)

sdata = xenium(run, cells_as_circles=True, cells_labels=False, nucleus_labels=False, morphology_mip=False,
               image_models_kwargs={"chunks": (1, 64, 64), "scale_factors": [2, 2]})
table = sdata["table"]
X = table.X.tocsr() if hasattr(table.X, "tocsr") else np.asarray(table.X)
top = np.asarray(X.argmax(axis=1)).ravel()
totals = np.asarray(X.sum(axis=1)).ravel()
names = np.where(totals > 0, np.asarray(table.var_names)[top], "none")
table.obs["cell_type"] = pd.Categorical(names)
table.obs["log_counts"] = np.log1p(totals)

for path in out.glob("*.zarr"):
    shutil.rmtree(path)
sdata.write(out / "sdata_v3.zarr")
# As spatialdata-io writes Xenium by default (cells_as_circles=False): the table annotates a
# labels element by its integer label; the shapes carry the cell ids.
ga = sd.read_zarr(out / "sdata_v3.zarr")
n = ga["table"].n_obs
ga.labels["cell_labels"] = Labels2DModel.parse(np.zeros((237, 237), dtype=np.uint32), dims=("y", "x"),
                                               transformations={"global": Identity()})
ga["table"].obs["cell_labels"] = np.arange(1, n + 1)
ga["table"].obs["region"] = pd.Categorical(["cell_labels"] * n)
ga.set_table_annotates_spatialelement("table", region="cell_labels", region_key="region", instance_key="cell_labels")
sd.settings.shapes_geometry_encoding = "geoarrow"
ga.write(out / "sdata_geoarrow.zarr")
sd.settings.shapes_geometry_encoding = "WKB"
v2 = sd.read_zarr(out / "sdata_v3.zarr")
v2["table"].obs["region"] = pd.Categorical(["cell_boundaries"] * v2["table"].n_obs)
v2.set_table_annotates_spatialelement("table", region="cell_boundaries", region_key="region", instance_key="cell_id")
v2.write(out / "sdata_v2.zarr", sdata_formats=[SpatialDataContainerFormatV01(), *ContainerV01DefaultTypes.values()])

# Expected numbers, all in the "global" coordinate system (morphology pixels).
def matrix(element):
    t = get_transformation(element, to_coordinate_system="global")
    return t.to_affine_matrix(input_axes=("x", "y"), output_axes=("x", "y")).tolist()

circles = sdata["cell_circles"]
centres = sd.transform(circles, to_coordinate_system="global")
first = [0, 1, len(circles) // 2, len(circles) - 1]
polygons = sd.transform(sdata["cell_boundaries"], to_coordinate_system="global")
he_image = sdata["he_image"]
expected = {
    "versions": {p: version(p) for p in ["spatialdata", "spatialdata-io", "zarr", "anndata", "geopandas", "pyarrow"]},
    "pixel_size_um": PIXEL_SIZE,
    "cells": int(table.n_obs),
    "genes": int(table.n_vars),
    "total_counts": float(totals.sum()),
    "cell_type_counts": {k: int(v) for k, v in table.obs["cell_type"].value_counts().items()},
    "centroids_global": {str(circles.index[i]): [float(centres.geometry.x.iloc[i]), float(centres.geometry.y.iloc[i])] for i in first},
    "polygon_centroids_global": {str(polygons.index[i]): [float(polygons.geometry.centroid.x.iloc[i]), float(polygons.geometry.centroid.y.iloc[i])] for i in range(3)},
    "radius_of_first": float(circles["radius"].iloc[0]),
    "cell_boundaries_vertices": int(sum(len(g.exterior.coords) - 1 for g in sdata["cell_boundaries"].geometry)),
    "transcripts": int(len(sdata["transcripts"])),
    "images": {
        name: {"levels": len(sdata[name].children), "shape": list(sdata[name]["scale0"]["image"].shape),
               "channels": [str(c) for c in sdata[name]["scale0"]["image"].coords["c"].values],
               "global_from_image": matrix(sdata[name])}
        for name in sdata.images
    },
    "he_pixel_10_20_value": [int(v) for v in np.asarray(he_image["scale0"]["image"][:, 20, 10])],
    "points_global_from_element": matrix(sdata["transcripts"]),
    "shapes_global_from_element": matrix(sdata["cell_boundaries"]),
}
(out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
shutil.rmtree(tmp)
print(json.dumps(expected["versions"]), expected["cells"], "cells")
