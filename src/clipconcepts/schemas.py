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

# One row per prune set and direction ("t2v" | "v2t"); recalls and chance in percent, ranks
# from 1 (ties resolved as `ties` says). Written beside `{model}/video/{dataset}.parquet`.
VIDEO_RETRIEVAL: dict[str, pl.DataType] = {
    "strategy": pl.String,
    "seed": pl.Int32,
    "heads": pl.List(pl.String),
    "n_heads": pl.Int32,
    "direction": pl.String,
    "r1": pl.Float64,
    "r5": pl.Float64,
    "r10": pl.Float64,
    "r50": pl.Float64,
    "median_rank": pl.Float64,
    "mean_rank": pl.Float64,
    "n_queries": pl.Int64,
    "n_candidates": pl.Int64,
    "chance_r1": pl.Float64,
    "chance_r5": pl.Float64,
    "chance_r10": pl.Float64,
    "ties": pl.String,
}
