"""Parquet helpers: atomic, streamed writers, fixed-size-list embedding columns, and sharded
outputs read as one dataset."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq


def embedding_type(dim: int) -> pa.DataType:
    return pa.list_(pa.float32(), dim)


def fixed_list(values: np.ndarray) -> pa.FixedSizeListArray:
    """`[N, D]` float array -> a `fixed_size_list<float32>[D]` column without copying twice."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    flat = pa.array(values.reshape(-1), type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])


def to_numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A fixed-size-list column -> `[N, D]` float32 array."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    dim = column.type.list_size
    return column.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class ParquetStream:
    """Write a Parquet file one row group at a time; nothing appears at `path` unless closed
    cleanly (use as a context manager)."""

    def __init__(self, path: str | Path, schema: pa.Schema, compression: str = "zstd"):
        self.path = Path(path)
        self.schema = schema
        self.compression = compression
        self.rows = 0
        self._ctx = None
        self._writer = None

    def __enter__(self) -> ParquetStream:
        self._ctx = atomic_path(self.path)
        tmp = self._ctx.__enter__()
        self._writer = pq.ParquetWriter(tmp, self.schema, compression=self.compression)
        return self

    def write(self, table: pa.Table | dict) -> None:
        if isinstance(table, dict):
            table = pa.table(table, schema=self.schema)
        self._writer.write_table(table.cast(self.schema))
        self.rows += table.num_rows

    def __exit__(self, exc_type, exc, tb):
        self._writer.close()
        return self._ctx.__exit__(exc_type, exc, tb)


def write_table(table: pa.Table, path: str | Path) -> None:
    """Write a small table atomically."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def open_dataset(paths: str | Path | Sequence[str | Path], what: str = "heads") -> ds.Dataset:
    """Extraction output (``what``: heads or embeddings) as one Parquet dataset, read lazily: one
    file, the shard files of a sharded extraction, or a folder of ``part-*.parquet`` shards."""
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            shards = sorted(path.glob("part-*.parquet"))
            if not shards:
                raise FileNotFoundError(f"{what}: no part-*.parquet shards in folder {path}")
            files += shards
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{what} file not found: {path}")
    if not files:
        raise FileNotFoundError(f"{what}: no files given")
    schema = pq.read_schema(files[0])
    for path in files[1:]:
        if not pq.read_schema(path).equals(schema, check_metadata=False):
            raise ValueError(
                f"{what} shard {path} has schema {pq.read_schema(path)}, unlike {files[0]} ({schema})"
            )
    return ds.dataset([str(f) for f in files], schema=schema, format="parquet")


def iter_row_groups(dataset: ds.Dataset, columns: list[str]) -> Iterator[pa.Table]:
    """The dataset's rows one Parquet row group at a time (extraction writes one per batch), in
    file order. Memory stays at about one decoded row group: unlike a scanner's record batches,
    nothing read earlier stays buffered, and the buffers come from the system allocator, which
    hands large freed blocks back at once (Arrow's default pools keep them cached)."""
    options = ds.ParquetFragmentScanOptions(pre_buffer=False)
    pool = pa.system_memory_pool()
    for fragment in dataset.get_fragments():
        for piece in fragment.split_by_row_group():
            yield piece.to_table(columns=columns, fragment_scan_options=options, memory_pool=pool)
