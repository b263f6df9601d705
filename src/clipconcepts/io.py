"""Parquet helpers: atomic, streamed writers and fixed-size-list embedding columns."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
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
