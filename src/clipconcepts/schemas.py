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
# captions) under the run's tie rule, as the retrieval table's ranks, and the candidates scored
# above and tied with it, from which the table's R@K are computed (`video.metrics.QueryRanks`:
# with `average` ties a query's hit at K is clip((K - n_higher) / (n_tied + 1), 0, 1)).
VIDEO_ITEMS: dict[str, pl.DataType] = {
    "strategy": pl.String,
    "seed": pl.Int32,
    "direction": pl.String,
    "query": pl.Int64,  # caption index (t2v) or video index (v2t) among those kept
    "query_id": pl.String,  # the caption's video id (t2v) or the video id (v2t)
    "rank": pl.Float64,
    "n_higher": pl.Int64,  # candidates scored strictly above the right answer
    "n_tied": pl.Int64,  # other candidates scored exactly as the right answer
}

# One row per prune set and direction ("t2v" | "v2t"); recalls and chance in percent, ranks
# from 1 (ties resolved as `ties` says; `protocol`: ccs | clip4clip, docs/video.md). Written
# beside `{model}/video/{dataset}.parquet`.
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
    "protocol": pl.String,
}

# One row per LLM backend a step used (`{model}/llm_usage/{label,judge}.parquet`,
# `llm_usage/textbank.parquet`, `llm_usage/descriptors_{set}.parquet`): the job's counts
# (`llm.cache.BackendCounts`) and tokens; the prompts it asked with are in the schema metadata
# (`LLM_USAGE_PROMPTS_KEY`, JSON). Written by `llm.usage`, read by the report.
LLM_USAGE: dict[str, pl.DataType] = {
    "step": pl.String,  # label | judge | textbank | mutual-descriptors
    "backend": pl.String,  # the backend's name (its llm.backends key)
    "kind": pl.String,  # openai | openai_compatible | offline
    "model": pl.String,  # the model the backend asks
    "requests": pl.Int64,  # API calls sent (retries and re-asks included)
    "answers": pl.Int64,  # new answers stored in the cache
    "hits": pl.Int64,  # answers reused: read from the cache, or asked twice in the job
    "invalid": pl.Int64,
    "retries": pl.Int64,
    "reasks": pl.Int64,
    "retried_invalid": pl.Int64,
    "prompt_tokens": pl.Int64,  # of the calls sent, as the server reported them
    "completion_tokens": pl.Int64,
    "cached_prompt_tokens": pl.Int64,  # what the reused answers used when they were asked
    "cached_completion_tokens": pl.Int64,
    "unknown_usage": pl.Int64,  # answers (new or reused) without reported tokens
}
LLM_USAGE_PROMPTS_KEY = "clipconcepts.prompts"
