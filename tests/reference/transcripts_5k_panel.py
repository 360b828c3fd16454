"""A Xenium Prime 5K-sized panel from a synthetic bundle (for `cellsymphony bench transcripts`):
each gene becomes 80 (`GENE_k`, k drawn by a Zipf-like law, exponent 0.8), about 5,000 genes at
the original's positions, cells and qualities; controls and other codewords are kept. The other
files of the bundle are linked, not copied.

Usage: python3 transcripts_5k_panel.py SOURCE_XENIUM_DIR OUT_XENIUM_DIR
(needs pyarrow and numpy; used for the README's 5K-panel figures)
"""

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SPLIT = 80

source, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
for item in source.iterdir():
    if item.name != "transcripts.parquet" and not (out / item.name).exists():
        (out / item.name).symlink_to(item.resolve())

rng = np.random.default_rng(5)
weights = 1.0 / np.arange(1, SPLIT + 1) ** 0.8
weights /= weights.sum()
parquet = pq.ParquetFile(source / "transcripts.parquet")
writer = None
for group in range(parquet.metadata.num_row_groups):
    table = parquet.read_row_group(group)
    encoded = pc.dictionary_encode(table.column("feature_name").combine_chunks())
    names = encoded.dictionary.to_pylist()
    index = encoded.indices.to_numpy()
    k = rng.choice(SPLIT, size=len(index), p=weights)
    split_names = np.array([f"{n}_{j}" for n in names for j in range(SPLIT)], dtype=object)
    is_gene = pc.equal(table.column("codeword_category").combine_chunks(), "predesigned_gene")
    is_gene = is_gene.to_numpy(zero_copy_only=False)
    feature = np.where(is_gene, split_names[index * SPLIT + k], np.array(names, dtype=object)[index])
    table = table.set_column(
        table.schema.get_field_index("feature_name"), "feature_name", pa.array(feature, type=pa.string())
    )
    codeword = table.column("codeword_index").to_numpy()
    table = table.set_column(
        table.schema.get_field_index("codeword_index"),
        "codeword_index",
        pa.array(np.where(is_gene, codeword * SPLIT + k, codeword).astype(np.int32)),
    )
    if writer is None:
        writer = pq.ParquetWriter(out / "transcripts.parquet", table.schema, compression="zstd")
    writer.write_table(table)
if writer is not None:
    writer.close()
print(pq.ParquetFile(out / "transcripts.parquet").metadata.num_rows, "transcripts written")
