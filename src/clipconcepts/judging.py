"""Verdicts: does each of a head's TEXTSPAN texts fit the head's label? (CCS paper 4.1.3)

Modes: `per_text` asks one call per (head, text), the paper's way; `per_head` asks one call per
head for all its texts. Several judges may be given; each judges every text."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import polars as pl

from clipconcepts.labelling import head_texts, valid_labels
from clipconcepts.llm.backends import Backend, ask_many, check_invalid_share
from clipconcepts.llm.cache import LLMCache
from clipconcepts.llm.prompts import LLMRequest, judge_head_request, judge_text_request

log = logging.getLogger(__name__)

JUDGE_MODES = ("per_text", "per_head")
VERDICTS_SCHEMA = {
    "layer": pl.Int16,
    "head": pl.Int16,
    "rank": pl.Int16,
    "judge": pl.String,
    "label": pl.String,
    "text": pl.String,
    "aligned": pl.Boolean,  # null when the judge's answer was invalid or the head has no label
    "valid": pl.Boolean,
    "cache_key": pl.String,  # null when no call was made (head without a valid label)
}


def _labelled_heads(labels: pl.DataFrame, textspans: pl.DataFrame) -> pl.DataFrame:
    """[layer, head, ranks, texts, label] with label null where labelling failed."""
    labels = valid_labels(labels)
    heads = head_texts(textspans)
    one_sided = pl.concat(
        [
            heads.join(labels, on=["layer", "head"], how="anti").select("layer", "head"),
            labels.join(heads, on=["layer", "head"], how="anti").select("layer", "head"),
        ]
    )
    if one_sided.height:
        names = [f"L{layer}.H{head}" for layer, head in one_sided.iter_rows()]
        raise ValueError(
            f"labels and textspans disagree on the heads: {names[:10]} are in only one"
        )
    joined = heads.join(labels, on=["layer", "head"], how="left")
    return joined.sort("layer", "head")


def judge_heads(
    labels: pl.DataFrame,
    textspans: pl.DataFrame,
    judges: Sequence[Backend],
    mode: str,
    cache: LLMCache,
    max_concurrency: int | None = None,
    max_invalid_fraction: float | None = None,
) -> pl.DataFrame:
    """Per-(head, judge, text) verdicts: [layer, head, rank, judge, label, text, aligned, valid,
    cache_key]. `aligned` is null for an invalid answer and for a head without a valid label
    (no call is made for it); such rows have `valid=False`. When more than `max_invalid_fraction`
    of a judge's verdicts (those it was asked for) are invalid, TooManyInvalidError is raised
    once every judge has answered (the answers stay cached)."""
    if mode not in JUDGE_MODES:
        raise ValueError(f"unknown judging mode {mode!r}; use one of {JUDGE_MODES}")
    if not judges:
        raise ValueError("judging needs at least one judge backend")
    names = [j.name for j in judges]
    if len(set(names)) != len(names):
        raise ValueError(f"judge names must be unique (config key 'name'), got {names}")
    heads = _labelled_heads(labels, textspans)
    frames = [_judge(heads, judge, mode, cache, max_concurrency) for judge in judges]
    verdicts = pl.concat(frames)
    n_invalid = verdicts.height - int(verdicts["valid"].sum())
    log.info(
        "%d verdicts from %d judges (%s), %d invalid", verdicts.height, len(judges), mode, n_invalid
    )
    for judge, frame in zip(judges, frames, strict=True):
        asked = frame.filter(pl.col("cache_key").is_not_null())  # heads without a label: no call
        n_bad = asked.height - int(asked["valid"].sum())
        check_invalid_share(judge, n_bad, asked.height, "verdicts", max_invalid_fraction)
    return verdicts


def _labelled(heads: pl.DataFrame) -> list[dict]:
    return [h for h in heads.iter_rows(named=True) if h["label"] is not None]


def _requests(labelled: list[dict], mode: str) -> list[LLMRequest]:
    """Each judge's requests: per text, or per head, in head and rank order."""
    if mode == "per_text":
        return [judge_text_request(h["label"], t) for h in labelled for t in h["texts"]]
    return [judge_head_request(h["label"], h["texts"]) for h in labelled]


def judge_requests(labels: pl.DataFrame, textspans: pl.DataFrame, mode: str) -> list[LLMRequest]:
    """The requests `judge_heads` sends each judge (none for a head without a valid label),
    e.g. for a dry-run estimate."""
    if mode not in JUDGE_MODES:
        raise ValueError(f"unknown judging mode {mode!r}; use one of {JUDGE_MODES}")
    return _requests(_labelled(_labelled_heads(labels, textspans)), mode)


def _judge(
    heads: pl.DataFrame, judge: Backend, mode: str, cache: LLMCache, max_concurrency: int | None
) -> pl.DataFrame:
    rows: list[tuple] = []  # in VERDICTS_SCHEMA's column order

    def add(head: dict, rank: int, text: str, aligned: bool | None, key: str | None) -> None:
        row = (head["layer"], head["head"], rank, judge.name, head["label"], text, aligned)
        rows.append((*row, aligned is not None, key))

    labelled = _labelled(heads)
    requests = _requests(labelled, mode)
    if mode == "per_text":
        pairs = [(h, r, t) for h in labelled for r, t in zip(h["ranks"], h["texts"], strict=True)]
        answers = ask_many(judge, requests, cache, max_concurrency, desc="judging texts")
        for (h, r, t), a in zip(pairs, answers, strict=True):
            add(h, r, t, a.data["aligned"] if a.valid else None, a.cache_key)
    else:
        answers = ask_many(judge, requests, cache, max_concurrency, desc="judging heads")
        for h, a in zip(labelled, answers, strict=True):
            flags = a.data["aligned"] if a.valid else [None] * len(h["texts"])
            for r, t, flag in zip(h["ranks"], h["texts"], flags, strict=True):
                add(h, r, t, flag, a.cache_key)
    for h in heads.iter_rows(named=True):
        if h["label"] is None:
            for r, t in zip(h["ranks"], h["texts"], strict=True):
                add(h, r, t, None, None)
    return pl.DataFrame(rows, schema=VERDICTS_SCHEMA, orient="row").sort("layer", "head", "rank")
