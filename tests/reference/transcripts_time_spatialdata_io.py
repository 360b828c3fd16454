"""Time from opening a Xenium bundle to having its transcripts ready to draw, the usual Python way:
spatialdata-io's Xenium reader, then the transcripts points element computed into memory (what a
viewer such as napari-spatialdata needs before its first frame of transcripts).

Usage: python3 transcripts_time_spatialdata_io.py XENIUM_DIR
Prints one JSON line: seconds to read the SpatialData object, to compute the points, the total,
the transcript count, peak resident memory (MB), and the package versions. Used for the README's
ratio against `cellsymphony bench transcripts` (first frame) on the same bundle.
"""

import json
import resource
import sys
import time

import spatialdata_io

path = sys.argv[1]
started = time.perf_counter()
# Only what transcripts need: no images or labels (a synthetic bundle has no morphology images).
sdata = spatialdata_io.xenium(
    path,
    cells_boundaries=False,
    nucleus_boundaries=False,
    cells_as_circles=False,
    cells_labels=False,
    nucleus_labels=False,
    transcripts=True,
    morphology_mip=False,
    morphology_focus=False,
    aligned_images=False,
    cells_table=False,
)
read_s = time.perf_counter() - started
points = next(iter(sdata.points.values()))
frame = points.compute()
total_s = time.perf_counter() - started
print(
    json.dumps(
        {
            "read_s": round(read_s, 2),
            "compute_points_s": round(total_s - read_s, 2),
            "total_s": round(total_s, 2),
            "transcripts": len(frame),
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "spatialdata_io": spatialdata_io.__version__,
        }
    )
)
