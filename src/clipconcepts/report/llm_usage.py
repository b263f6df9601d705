"""The report's LLM usage section and its appendix of the prompts the LLM steps asked with.

Inputs: the usage tables the LLM steps write (`schemas.LLM_USAGE`; `{model}/llm_usage/label.parquet`,
`{model}/llm_usage/judge.parquet`, `llm_usage/textbank.parquet`,
`llm_usage/descriptors_{set}.parquet`), given explicitly, and the price table (`llm.prices`,
`clipconcepts.llm_prices`). Per step, backend and model: calls sent, answers reused from the
cache, tokens as the server reported them, and their estimated cost (unknown without a price,
never 0). The prompts come from the tables' metadata, i.e. exactly what the steps asked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from clipconcepts.llm_prices import Price, cost, format_cost, parse_prices
from clipconcepts.report.inputs import ReportInputError
from clipconcepts.report.tables import missing, table
from clipconcepts.schemas import LLM_USAGE, LLM_USAGE_PROMPTS_KEY

RUN_SUBJECT = "run"
TASK_TITLES = {
    "label": "Labelling a head (one call per head)",
    "judge_text": "Judging, per_text (one call per head and text)",
    "judge_head": "Judging, per_head (one call per head)",
    "describe_class": "Describing a class (mutual knowledge's descriptor bank)",
    "generate_bank": "Generating the text bank",
}
TASK_ORDER = tuple(TASK_TITLES)


@dataclass(frozen=True)
class UsageFile:
    path: Path
    subject: str  # the model key the file sits under, or "run"
    frame: pl.DataFrame  # schemas.LLM_USAGE
    prompts: dict[str, dict[str, Any]]  # task -> prompt texts (llm.prompts.prompt_texts form)


@dataclass(frozen=True)
class LLMUsage:
    files: list[UsageFile] = field(default_factory=list)
    absent: list[Path] = field(default_factory=list)
    prices: dict[str, Price] = field(default_factory=dict)
    currency: str = "USD"

    @property
    def sources(self) -> list[Path]:
        return [f.path for f in self.files] + self.absent


def _subject(run_dir: Path, path: Path) -> str:
    """The model key a usage table belongs to (`{model}/llm_usage/...`), else "run"."""
    try:
        parts = path.resolve().relative_to(run_dir.resolve()).parts
    except ValueError:
        return RUN_SUBJECT
    return parts[0] if len(parts) == 3 and parts[1] == "llm_usage" else RUN_SUBJECT


def read_usage(path: Path) -> tuple[pl.DataFrame, dict[str, dict[str, Any]]]:
    """A usage table with its columns cast to `LLM_USAGE`, and its recorded prompts."""
    try:
        frame = pl.read_parquet(path)
        meta = pq.read_schema(path).metadata or {}
    except Exception as err:  # any reader error: one message naming the file
        raise ReportInputError(f"{path}: cannot be read as Parquet ({err})") from err
    for column, dtype in LLM_USAGE.items():
        if column not in frame.columns:
            raise ReportInputError(
                f"{path}: missing column {column!r} (an LLM usage table needs {list(LLM_USAGE)})"
            )
        try:
            frame = frame.with_columns(pl.col(column).cast(dtype, strict=True))
        except Exception as err:
            raise ReportInputError(
                f"{path}: column {column!r} has type {frame.schema[column]}, expected {dtype}"
            ) from err
    raw = meta.get(LLM_USAGE_PROMPTS_KEY.encode())
    try:
        prompts = json.loads(raw) if raw else {}
    except json.JSONDecodeError as err:
        raise ReportInputError(f"{path}: its recorded prompts are not JSON ({err})") from err
    return frame.select(list(LLM_USAGE)), prompts


def gather_llm_usage(
    run_dir: str | Path,
    paths: Sequence[str | Path],
    prices: Mapping[str, Any] | None = None,
    currency: str = "USD",
) -> LLMUsage:
    """Read the usage tables `paths` (absent ones are listed, not an error)."""
    run_dir = Path(run_dir)
    files, absent = [], []
    for path in map(Path, paths):
        if not path.exists():
            absent.append(path)
            continue
        frame, prompts = read_usage(path)
        files.append(UsageFile(path, _subject(run_dir, path), frame, prompts))
    try:
        parsed = parse_prices(prices)
    except ValueError as err:
        raise ReportInputError(str(err)) from err
    return LLMUsage(files, absent, parsed, currency)


# ---------------------------------------------------------------------------- the section
def _n(value: int) -> str:
    return f"{value:,}"


def _cost(usage: LLMUsage, row: Mapping[str, Any], prefix: str = "") -> float | None:
    price = usage.prices.get(row["backend"])
    return cost(
        row[f"{prefix}prompt_tokens"], row[f"{prefix}completion_tokens"], price, row["kind"]
    )


def _cost_cell(usage: LLMUsage, value: float | None, backend: str | None = None) -> str:
    if value is None:
        why = f"no price for {backend} in llm.prices" if backend else "a backend has no price"
        return missing(f"unknown ({why})")
    return escape(format_cost(value, usage.currency))


def _total(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else sum(values)


def usage_table(usage: LLMUsage) -> str:
    """One row per usage file and backend, then the total."""
    header = [
        "For",
        "Step",
        "Backend (model)",
        "Calls sent",
        "New answers",
        "Reused from the cache",
        "Prompt tokens",
        "Completion tokens",
        "Estimated cost",
        "Reused answers' tokens when asked",
        "Their cost then",
        "Answers without token counts",
    ]
    rows, spent, earlier = [], [], []
    totals = dict.fromkeys(
        (
            "requests",
            "answers",
            "hits",
            "prompt_tokens",
            "completion_tokens",
            "cached_prompt_tokens",
            "cached_completion_tokens",
            "unknown_usage",
        ),
        0,
    )
    for f in usage.files:
        for r in f.frame.iter_rows(named=True):
            now, then = _cost(usage, r), _cost(usage, r, "cached_")
            spent.append(now)
            earlier.append(then)
            for key in totals:
                totals[key] += r[key]
            extra = []
            if r["retries"] or r["reasks"]:
                extra.append(f"{r['retries']} retries, {r['reasks']} re-asks")
            calls = _n(r["requests"]) + (f"<br><small>{escape(extra[0])}</small>" if extra else "")
            rows.append(
                [
                    f"<code>{escape(f.subject)}</code>",
                    escape(r["step"]),
                    f"{escape(r['backend'])} <small>({escape(r['kind'])}, "
                    f"{escape(r['model'])})</small>",
                    calls,
                    _n(r["answers"]),
                    _n(r["hits"]),
                    _n(r["prompt_tokens"]),
                    _n(r["completion_tokens"]),
                    _cost_cell(usage, now, r["backend"]),
                    f"{_n(r['cached_prompt_tokens'])} + {_n(r['cached_completion_tokens'])}",
                    _cost_cell(usage, then, r["backend"]),
                    _n(r["unknown_usage"]),
                ]
            )
    rows.append(
        [
            "<b>total</b>",
            "",
            "",
            _n(totals["requests"]),
            _n(totals["answers"]),
            _n(totals["hits"]),
            _n(totals["prompt_tokens"]),
            _n(totals["completion_tokens"]),
            _cost_cell(usage, _total(spent)),
            f"{_n(totals['cached_prompt_tokens'])} + {_n(totals['cached_completion_tokens'])}",
            _cost_cell(usage, _total(earlier)),
            _n(totals["unknown_usage"]),
        ]
    )
    return table(header, rows, "llm-usage")


def section_body(usage: LLMUsage) -> str:
    """The LLM usage section: what the steps' last jobs sent and reused, and its cost."""
    intro = (
        "<p>Per LLM step (the last job that wrote its output), backend and model: the calls it "
        "sent (retries and re-asks included), the answers it stored and those it reused from "
        "the answer cache, the tokens the server reported for its calls and their estimated "
        f"cost at <code>llm.prices</code> (in {escape(usage.currency)} per 1M tokens; a backend "
        "without a price has an unknown cost; the offline backend asks no model and costs 0). "
        "Reused answers cost nothing now: the next columns say what they used when they were "
        "first asked. Answers without token counts (a server that reports none, cache files "
        "from before tokens were recorded) count in no token column. Before a run, "
        "<code>snakemake -f llm_estimate</code> estimates what labelling and judging will "
        "ask (docs/llm.md).</p>"
    )
    if not usage.files:
        what = "no LLM usage tables"
        if usage.absent:
            what += f" ({len(usage.absent)} expected files are missing)"
        return intro + f"<p>{missing(what)}</p>"
    return intro + usage_table(usage)


# ---------------------------------------------------------------------------- the prompts
def _pre(text: str) -> str:
    return f'<pre class="prompt">{escape(text)}</pre>'


def _examples(task: str, examples: Any) -> str:
    if not examples:
        return ""
    if task == "label":
        rows = [
            ["<br>".join(escape(t) for t in texts), f"<code>{escape(label)}</code>"]
            for texts, label in examples
        ]
        body = table(["Texts (in-context user turn)", "Answer (assistant turn)"], rows)
    elif task == "describe_class":
        category, descriptors = examples
        body = table(
            ["Category (in-context user turn)", "Descriptors (assistant turn)"],
            [[escape(category), "<br>".join(escape(d) for d in descriptors)]],
        )
    else:
        body = _pre(json.dumps(examples, indent=1, ensure_ascii=False))
    return f"<h5>In-context examples</h5>{body}"


def _task_block(task: str, texts: Mapping[str, Any], subjects: Sequence[str]) -> str:
    title = TASK_TITLES.get(task, task)
    fingerprint = texts.get("fingerprint")
    meta = (
        f"prompt fingerprint <code>{escape(str(fingerprint)[:12])}</code>; " if fingerprint else ""
    )
    meta += "used for " + ", ".join(f"<code>{escape(s)}</code>" for s in subjects)
    parts = [f"<h4>{escape(title)}</h4><p><small>{meta}</small></p>"]
    if "system" in texts:
        parts.append(f"<h5>System</h5>{_pre(texts['system'])}")
    if "user" in texts:
        parts.append(f"<h5>User (template)</h5>{_pre(texts['user'])}")
    parts.append(_examples(task, texts.get("examples")))
    if "schema" in texts:
        schema = json.dumps(texts["schema"], indent=1, ensure_ascii=False)
        parts.append(f"<h5>Answer schema (JSON)</h5>{_pre(schema)}")
    if "reask" in texts:
        parts.append(f"<h5>Re-ask after an unusable answer</h5>{_pre(texts['reask'])}")
    return "".join(parts)


def prompts_body(usage: LLMUsage) -> str:
    """Every prompt version the usage tables recorded, label and judge first."""
    versions: dict[tuple[str, str], tuple[dict[str, Any], list[str]]] = {}
    for f in usage.files:
        for task, texts in f.prompts.items():
            version = json.dumps(texts, sort_keys=True)
            entry = versions.setdefault((task, version), (texts, []))
            if f.subject not in entry[1]:
                entry[1].append(f.subject)
    if not versions:
        return f"<p>{missing('no prompts recorded (no LLM usage tables)')}</p>"

    def order(key: tuple[str, str]) -> tuple[int, str]:
        task = key[0]
        return (TASK_ORDER.index(task) if task in TASK_ORDER else len(TASK_ORDER), task)

    intro = (
        "<p>The prompts exactly as the LLM steps recorded them. A request is the system "
        "prompt, the in-context examples as prior user and assistant turns, then the user "
        "template with its fields in braces filled in (<code>{numbered_texts}</code>: the "
        "head's texts, numbered; <code>{label}</code>, <code>{text}</code>: the label and the "
        "text judged). The answer must fit the schema; an unusable one is re-asked once.</p>"
    )
    blocks = [
        _task_block(task, *versions[(task, version)])
        for task, version in sorted(versions, key=order)
    ]
    return intro + "".join(blocks)
