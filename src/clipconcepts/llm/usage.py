"""What the LLM steps spend: the usage table each step writes beside its output, and the estimate
a dry run gives before any call.

Usage table (`schemas.LLM_USAGE`, one row per backend the step used): the job's counts from
`LLMCache.stats` (calls sent, new answers, answers reused from the cache, invalid, retries,
re-asks) and its tokens as the server reported them: those of the calls sent, and those the
reused answers used when they were first asked (recorded in their cache files). The prompts
the step asked with are in the table's schema metadata (`schemas.LLM_USAGE_PROMPTS_KEY`, JSON
task -> `prompts.prompt_texts`), so the report shows exactly what was asked.

Estimate (`--dry-run`, step `llm-estimate`): the distinct requests a step would send given its
inputs and the cache (answers already cached are counted apart; re-asks are not foreseen), and
their tokens, estimated without a tokenizer: prompt = characters of the messages / 4 + 4 per
message; completion = characters of a typical answer / 4 (`typical_answer`), at most the
backend's `max_tokens`. For English text this is within about 30% of OpenAI's tokenizers; the
structured-output schema the server adds to the prompt is not counted. The offline backend asks
no model: 0 tokens.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

from clipconcepts.judging import judge_requests
from clipconcepts.labelling import head_texts, label_requests
from clipconcepts.llm.bank import BANK_TASK
from clipconcepts.llm.cache import LLMCache, LLMStats, cache_key
from clipconcepts.llm.http import Backend
from clipconcepts.llm.prompts import (
    DESCRIBE_EXAMPLE,
    DESCRIBE_TASK,
    JUDGE_HEAD_TASK,
    JUDGE_TEXT_TASK,
    LABEL_TASK,
    LLMRequest,
    Message,
)
from clipconcepts.llm_prices import Price, cost, format_cost, parse_prices
from clipconcepts.schemas import LLM_USAGE, LLM_USAGE_PROMPTS_KEY

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
# Judging before labelling: every head is assumed labelled with a label of typical length.
ASSUMED_LABEL = "Body parts"
# A typical generated text-bank description (the bank's answers are lists of such).
TYPICAL_DESCRIPTION = "A photo of a red barn at dusk"

# One row per (subject, step, backend) of a dry run.
LLM_ESTIMATE: dict[str, pl.DataType] = {
    "subject": pl.String,  # what the requests are for: a model key, a dataset, or "run"
    "step": pl.String,
    "backend": pl.String,
    "kind": pl.String,
    "model": pl.String,
    "requests": pl.Int64,  # distinct requests it would send (not in the cache)
    "cached": pl.Int64,  # requests the cache answers already (or asked twice)
    "prompt_tokens": pl.Int64,  # estimated, of the requests it would send
    "completion_tokens": pl.Int64,  # estimated
    "exact": pl.Boolean,  # false: built on assumed labels (judging before labelling)
    "cost": pl.Float64,  # estimated at llm.prices; null when the backend has no price
}


# ---------------------------------------------------------------------------- usage tables
def usage_frame(step: str, backends: Sequence[Backend], stats: LLMStats) -> pl.DataFrame:
    """One row per backend (in the order given; a name given twice counts once)."""
    rows, seen = [], set()
    for backend in backends:
        if backend.name in seen:
            continue
        seen.add(backend.name)
        identity = {"step": step, "backend": backend.name, "kind": backend.kind}
        rows.append(identity | {"model": backend.model} | asdict(stats.get(backend.name)))
    return pl.DataFrame(rows, schema=LLM_USAGE)


def write_usage(
    path: str | Path,
    step: str,
    backends: Sequence[Backend],
    stats: LLMStats,
    prompts: Mapping[str, Any] | None = None,
) -> None:
    """Write the step's usage table (atomically), with `prompts` (task -> its prompt texts) in
    the schema metadata."""
    from clipconcepts.io import write_table

    table = usage_frame(step, backends, stats).to_arrow()
    meta = {LLM_USAGE_PROMPTS_KEY: json.dumps(dict(prompts or {}), ensure_ascii=False)}
    write_table(table.replace_schema_metadata(meta), path)


# ---------------------------------------------------------------------------- estimates
def estimate_prompt_tokens(messages: Sequence[Message]) -> int:
    """Characters / 4 (rounded up) plus 4 per message."""
    chars = sum(len(m["content"]) for m in messages)
    return math.ceil(chars / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE * len(messages)


def typical_answer(request: LLMRequest) -> str:
    """An answer of typical length to `request` (for its completion-token estimate)."""
    if request.task == LABEL_TASK:
        return json.dumps({"label": ASSUMED_LABEL})
    if request.task == JUDGE_TEXT_TASK:
        return json.dumps({"aligned": False})
    if request.task == JUDGE_HEAD_TASK:
        return json.dumps({"aligned": [False] * len(request.payload["texts"])})
    if request.task == DESCRIBE_TASK:
        return json.dumps({"descriptors": list(DESCRIBE_EXAMPLE[1])})
    if request.task == BANK_TASK:
        return json.dumps({"descriptions": [TYPICAL_DESCRIPTION] * int(request.payload["k"])})
    raise ValueError(f"no token estimate for LLM task {request.task!r}")


def estimate_completion_tokens(request: LLMRequest, max_tokens: int | None = None) -> int:
    tokens = math.ceil(len(typical_answer(request)) / CHARS_PER_TOKEN)
    return min(tokens, max_tokens) if max_tokens else tokens


@dataclass(frozen=True)
class Estimate:
    """What a step would ask one backend: distinct requests to send, requests the cache answers,
    and the estimated tokens of those sent."""

    step: str
    backend: str
    kind: str
    model: str
    requests: int
    cached: int
    prompt_tokens: int
    completion_tokens: int
    exact: bool = True


def estimate_requests(
    step: str,
    backend: Backend,
    requests: Sequence[LLMRequest],
    cache: LLMCache,
    exact: bool = True,
) -> Estimate:
    """Count, without asking, what `ask_many(backend, requests, cache)` would send. Identical
    requests are sent once; an answer stored invalid counts as sent when the cache re-asks them
    (`retry_invalid`). `exact=False` when the requests themselves are assumed."""
    identity = backend.identity()
    unique = {cache_key(identity, r): r for r in requests}
    to_send = []
    for key, request in unique.items():
        record = cache.get(key) if exact else None
        if record is None or cache.reask_stored_invalid(record):
            to_send.append(request)
    offline = backend.kind == "offline"
    max_tokens = getattr(backend, "max_tokens", None)
    return Estimate(
        step=step,
        backend=backend.name,
        kind=backend.kind,
        model=backend.model,
        requests=len(to_send),
        cached=len(requests) - len(to_send),
        prompt_tokens=0 if offline else sum(estimate_prompt_tokens(r.messages) for r in to_send),
        completion_tokens=0
        if offline
        else sum(estimate_completion_tokens(r, max_tokens) for r in to_send),
        exact=exact,
    )


def estimate_frame(
    estimates: Sequence[tuple[str, Estimate]], prices: Mapping[str, Price]
) -> pl.DataFrame:
    """The estimate table (`LLM_ESTIMATE`) of (subject, estimate) pairs, costed at `prices`."""
    rows = [
        {
            "subject": subject,
            **asdict(e),
            "cost": cost(e.prompt_tokens, e.completion_tokens, prices.get(e.backend), e.kind),
        }
        for subject, e in estimates
    ]
    return pl.DataFrame(rows, schema=LLM_ESTIMATE).select(list(LLM_ESTIMATE))


def print_estimate(
    estimates: Sequence[tuple[str, Estimate]],
    prices: Mapping[str, Any] | None = None,
    currency: str = "USD",
) -> pl.DataFrame:
    """Print a dry run's estimate (stdout; a rule's log) and return its table; `prices`: the
    config's `llm.prices`."""
    table = estimate_frame(estimates, parse_prices(prices))
    print(format_estimate(table, currency), flush=True)
    return table


def format_estimate(table: pl.DataFrame, currency: str = "USD") -> str:
    """The estimate for people: one line per row, then the total."""
    lines = ["LLM estimate (dry run: nothing was asked)"]
    for r in table.iter_rows(named=True):
        subject = f"{r['subject']}: " if r["subject"] else ""
        assumed = "" if r["exact"] else " (assumed labels)"
        lines.append(
            f"  {subject}{r['step']} with {r['backend']} ({r['kind']}, {r['model']}): "
            f"{r['requests']} calls to make{assumed}, {r['cached']} answered by the cache; "
            f"~{r['prompt_tokens']:,} prompt + ~{r['completion_tokens']:,} completion tokens, "
            f"cost ~{format_cost(r['cost'], currency)}"
        )
    costs = table["cost"].to_list()
    total = None if any(c is None for c in costs) else sum(costs)
    lines.append(
        f"  total: {int(table['requests'].sum()):,} calls, "
        f"~{int(table['prompt_tokens'].sum()):,} prompt + "
        f"~{int(table['completion_tokens'].sum()):,} completion tokens, cost ~"
        + (
            format_cost(total, currency)
            if total is not None
            else "unknown (a backend has no price in llm.prices)"
        )
    )
    return "\n".join(lines)


def estimate_heads(
    subject: str,
    textspans: pl.DataFrame,
    labeller: Backend,
    judges: Sequence[Backend],
    mode: str,
    cache: LLMCache,
    labels: pl.DataFrame | None = None,
) -> list[tuple[str, Estimate]]:
    """The label and judge steps' estimates for one model's heads. Without `labels` (judging
    before labelling), every head is assumed labelled `ASSUMED_LABEL` and every verdict request
    counted as sent (`exact=False`)."""
    out = [(subject, estimate_requests("label", labeller, label_requests(textspans), cache))]
    exact = labels is not None
    if labels is None:
        labels = (
            head_texts(textspans)
            .select("layer", "head")
            .with_columns(label=pl.lit(ASSUMED_LABEL), valid=pl.lit(True))
        )
    requests = judge_requests(labels, textspans, mode)
    out += [(subject, estimate_requests("judge", j, requests, cache, exact)) for j in judges]
    return out
