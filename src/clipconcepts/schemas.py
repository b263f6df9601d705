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

# One row per prune set and image (`{model}/prune/{dataset}.items.parquet`): the image's outcome
# with the set's heads zeroed; the accuracy table above is its aggregate per (strategy, seed).
PRUNE_ITEMS: dict[str, pl.DataType] = {
    "image_id": pl.String,
    "label": pl.Int32,
    "strategy": pl.String,
    "seed": pl.Int32,
    "predicted": pl.Int32,
    "correct_top1": pl.Boolean,
    "correct_top5": pl.Boolean,
    "margin": pl.Float32,  # true-class logit minus the best other class's
}

# One row per prune set, direction and query (`{model}/video/{dataset}.items.parquet`): the rank
# of the query's right answer (text-to-video: per caption; video-to-text: per video with
# captions), as the retrieval table's ranks, from which its R@K are computed.
VIDEO_ITEMS: dict[str, pl.DataType] = {
    "strategy": pl.String,
    "seed": pl.Int32,
    "direction": pl.String,
    "query": pl.Int64,  # caption index (t2v) or video index (v2t) among those kept
    "query_id": pl.String,  # the caption's video id (t2v) or the video id (v2t)
    "rank": pl.Float64,
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
