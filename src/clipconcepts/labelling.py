"""Head labels: one LLM call per head names the concept its TEXTSPAN texts share (CCS paper 4.1.2)."""

from __future__ import annotations

import logging

import polars as pl

from clipconcepts.llm.backends import Backend, ask_many, check_invalid_share
from clipconcepts.llm.cache import LLMCache
from clipconcepts.llm.prompts import LLMRequest, label_request

log = logging.getLogger(__name__)

TEXTSPAN_COLUMNS = ("layer", "head", "rank", "text")
LABELS_SCHEMA = {
    "layer": pl.Int16,
    "head": pl.Int16,
    "label": pl.String,
    "valid": pl.Boolean,
    "backend": pl.String,
    "model": pl.String,
    "cache_key": pl.String,
}


def head_texts(textspans: pl.DataFrame) -> pl.DataFrame:
    """One row per head (sorted by layer, head), texts in rank order: [layer, head, ranks, texts]."""
    missing = [c for c in TEXTSPAN_COLUMNS if c not in textspans.columns]
    if missing:
        raise ValueError(f"textspans table lacks columns {missing} (has {textspans.columns})")
    if textspans.is_empty():
        raise ValueError("textspans table is empty: there are no heads to label")
    if textspans["text"].null_count():
        raise ValueError("textspans table has null texts")
    dup = textspans.select("layer", "head", "rank").is_duplicated()
    if dup.any():
        first = textspans.filter(dup).row(0, named=True)
        raise ValueError(
            f"textspans table repeats rank {first['rank']} of head L{first['layer']}.H{first['head']}"
        )
    return (
        textspans.sort("layer", "head", "rank")
        .group_by("layer", "head", maintain_order=True)
        .agg(pl.col("rank").alias("ranks"), pl.col("text").alias("texts"))
        .with_columns(pl.col("layer").cast(pl.Int16), pl.col("head").cast(pl.Int16))
    )


def valid_labels(labels: pl.DataFrame) -> pl.DataFrame:
    """[layer i16, head i16, label] from a labels table, label null where the answer was invalid."""
    missing = [c for c in ("layer", "head", "label", "valid") if c not in labels.columns]
    if missing:
        raise ValueError(f"labels table lacks columns {missing} (has {labels.columns})")
    if labels.select("layer", "head").is_duplicated().any():
        raise ValueError("labels table has more than one row for a head")
    return labels.select(
        pl.col("layer").cast(pl.Int16),
        pl.col("head").cast(pl.Int16),
        pl.when(pl.col("valid")).then(pl.col("label")).alias("label"),
    )


def _requests(heads: pl.DataFrame) -> list[LLMRequest]:
    return [label_request(texts) for texts in heads["texts"]]


def label_requests(textspans: pl.DataFrame) -> list[LLMRequest]:
    """The requests `label_heads` sends (one per head), e.g. for a dry-run estimate."""
    return _requests(head_texts(textspans))


def label_heads(
    textspans: pl.DataFrame,
    backend: Backend,
    cache: LLMCache,
    max_concurrency: int | None = None,
    max_invalid_fraction: float | None = None,
) -> pl.DataFrame:
    """Label every head of `textspans` [layer, head, rank, text] with one call per head.

    Returns [layer, head, label, valid, backend, model, cache_key]; a head whose answer stayed
    unusable has `valid=False` and a null label (its raw reply is in the cache file). More than
    `max_invalid_fraction` of the heads invalid raises TooManyInvalidError (answers stay cached)."""
    heads = head_texts(textspans)
    requests = _requests(heads)
    answers = ask_many(backend, requests, cache, max_concurrency, desc="labelling heads")
    labels = pl.DataFrame(
        {
            "layer": heads["layer"],
            "head": heads["head"],
            "label": [a.data["label"].strip() if a.valid else None for a in answers],
            "valid": [a.valid for a in answers],
            "backend": [backend.name] * len(answers),
            "model": [backend.model] * len(answers),
            "cache_key": [a.cache_key for a in answers],
        },
        schema=LABELS_SCHEMA,
    )
    n_invalid = labels.height - int(labels["valid"].sum())
    log.info(
        "labelled %d heads with %s (%d invalid answers)", labels.height, backend.name, n_invalid
    )
    check_invalid_share(backend, n_invalid, labels.height, "labels", max_invalid_fraction)
    return labels
