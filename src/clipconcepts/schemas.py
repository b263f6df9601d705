"""Column types of the Parquet outputs that several stages read (polars only: cheap to import,
so the report's environment needs no torch). The full list of outputs is in docs/schemas.md."""

from __future__ import annotations

import polars as pl

PRUNE_RESULTS: dict[str, pl.DataType] = {
    "strategy": pl.String,
    "seed": pl.Int32,
    "heads": pl.List(pl.String),
    "n_heads": pl.Int32,
    "top1": pl.Float64,
    "top5": pl.Float64,
    "n_images": pl.Int64,
}
