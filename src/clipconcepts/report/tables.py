"""HTML table fragments of a run's results, with the paper's values beside ours.

Our numbers are plain (`<span class="ours" data-...>`, the data attributes say what each number
is); the paper's are grey and in parentheses (`<span class="paper">`). Every string from an
input file is HTML-escaped (labels and texts come from an LLM).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import polars as pl

from clipconcepts.report.head_links import head_link
from clipconcepts.report.inputs import (
    BASE_STRATEGIES,
    ModelInfo,
    RunData,
    StrategySummary,
    concept_group,
    majority_rows,
    manual_name,
)
from clipconcepts.report.paper import PaperValues

STRATEGY_TITLES = {
    "original": "Original (unpruned)",
    "high": "High CCS pruned (CCS = 5)",
    "low": "Low CCS pruned (CCS ≤ 1)",
    "random": "Random pruned (mean ± std)",
}
# Table 1's buckets: name, column title, rule on the CCS score.
BUCKETS = (
    ("high", "High CCS (CCS = 5)", lambda s: s == 5),
    ("moderate", "Moderate CCS (CCS = 3)", lambda s: s == 3),
    ("low", "Low CCS (CCS ≤ 1)", lambda s: s <= 1),
)
LEGEND = (
    '<p class="legend">Numbers in black are this run\'s. '
    '<span class="paper">(Grey numbers in parentheses)</span> are the CCS paper\'s values for '
    "the same model and dataset, shown only where the paper reports that model; hover one to "
    "see its source. A dash means the run has no such result.</p>"
)


# ------------------------------------------------------------------------------- cells
def ours(text: str, **data: object) -> str:
    """One of our numbers; `data` becomes `data-*` attributes saying what it is."""
    attrs = "".join(f' data-{k.replace("_", "-")}="{escape(str(v))}"' for k, v in data.items())
    return f'<span class="ours"{attrs}>{escape(text)}</span>'


def paper(text: str, source: str, who: str = "CCS paper") -> str:
    return f' <span class="paper" title="{escape(who)}, {escape(source)}">({escape(text)})</span>'


def missing(text: str) -> str:
    return f'<span class="missing">{escape(text)}</span>'


def small(text: str, cls: str = "") -> str:
    return (
        f'<br><small class="{cls}">{escape(text)}</small>'
        if cls
        else f"<br><small>{escape(text)}</small>"
    )


@dataclass(frozen=True)
class Span:
    """A cell spanning several columns."""

    html: str
    n: int


def table(header: Sequence[str], rows: Sequence[Sequence[str | Span]], cls: str = "") -> str:
    """A table from pre-rendered cell HTML (header cells are escaped)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            if isinstance(cell, Span):
                cells.append(f'<td colspan="{cell.n}">{cell.html}</td>')
            else:
                cells.append(f"<td>{cell}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    klass = f' class="{cls}"' if cls else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def model_cell(m: ModelInfo) -> str:
    spec = " / ".join(x for x in (m.arch, m.pretrained) if x)
    out = f"<b>{escape(m.display)}</b>"
    if spec:
        out += small(spec)
    if m.paper_name:
        out += small(f"paper: {m.paper_name}", "paper")
    return out


def heads(n: int) -> str:
    return f"{n} head" if n == 1 else f"{n} heads"


def _pct(value: float) -> str:
    return f"{value:.2f}"


# ------------------------------------------------------------------------------- CCS@K
def ccs_at_k_table(run: RunData, values: PaperValues) -> str:
    """Table 3's form: a row per model, CCS@0..K (fraction of heads), the paper's beside."""
    ks = set(range(6))
    for frame in run.ccs_at_k.values():
        if frame is not None:
            ks |= set(frame["k"].to_list())
    ks_sorted = sorted(ks)
    header = ["Model", "Judge", "Heads", *[f"CCS@{k}" for k in ks_sorted], "Heads w/ invalid"]
    rows: list[list[str | Span]] = []
    for m in run.models:
        frame = run.ccs_at_k[m.key]
        if frame is None:
            path = run.layout.ccs_at_k(m.key)
            rows.append([model_cell(m), Span(missing(f"no CCS@K file ({path})"), len(header) - 1)])
            continue
        mine, judge = majority_rows(frame)
        if judge is None or mine.is_empty():
            judges = sorted(set(frame["judge"].to_list()))
            text = f"no 'majority' rows in {run.layout.ccs_at_k(m.key)} (judges: {judges})"
            rows.append([model_cell(m), Span(missing(text), len(header) - 1)])
            continue
        by_k = {int(r["k"]): r for r in mine.iter_rows(named=True)}
        published = values.ccs_at_k(m.paper_name)
        cells: list[str | Span] = [model_cell(m), escape(judge), str(int(mine["n_heads"].sum()))]
        for k in ks_sorted:
            if k not in by_k:
                cells.append(missing("—"))
                continue
            r = by_k[k]
            cell = ours(f"{r['fraction']:.3f}", model=m.key, k=k, fraction=r["fraction"])
            if published is not None and k < len(published):
                cell += paper(f"{published[k]:.3f}", values.ccs_at_k_source)
            cell += small(heads(r["n_heads"]))
            cells.append(cell)
        cells.append(str(int(mine["n_with_invalid"].sum())))
        rows.append(cells)
    return table(header, rows, "ccs-at-k")


# ------------------------------------------------------------------------------- examples
def _head_block(row: dict, model: str | None = None) -> str:
    label = row["label"] if row["label"] is not None else "(no valid label)"
    title = escape(f"L{row['layer']}.H{row['head']} (“{label}”) · CCS {row['ccs']}")
    if model is not None:  # the head's name links to its card in the head browser
        name = f"L{row['layer']}.H{row['head']}"
        title = head_link(model, row["layer"], row["head"]) + title[len(name) :]
    items = []
    for text, verdict in zip(row["texts"], row["verdicts"], strict=False):
        mark, cls = {True: ("✓", "yes"), False: ("✗", "no")}.get(verdict, ("?", "unknown"))
        items.append(
            f'<li class="{cls}">{escape(text or "")} <span class="mark">{mark}</span></li>'
        )
    head = f'<div class="head" data-head="L{row["layer"]}.H{row["head"]}">{title}</div>'
    return head + "<ol>" + "".join(items) + "</ol>"


def ccs_examples_table(m: ModelInfo, frame: pl.DataFrame | None, n_examples: int = 3) -> str:
    """Table 1's form for one model: a column per CCS bucket, `n_examples` heads each (last
    layers first), each with its label and 5 texts (✓ = the judge says the text fits)."""
    title = f"<h3>{escape(m.display)}</h3>"
    if frame is None:
        return title + f"<p>{missing('no CCS file for this model')}</p>"
    mine, judge = majority_rows(frame)
    if judge is None or mine.is_empty():
        return title + f"<p>{missing('no majority verdicts in the CCS file')}</p>"
    scored = mine.filter(pl.col("n_invalid") == 0).sort(["layer", "head"], descending=[True, False])
    n_unscored = mine.height - scored.height
    columns, header = [], []
    for _name, column_title, rule in BUCKETS:
        chosen = [r for r in scored.iter_rows(named=True) if rule(r["ccs"])]
        header.append(f"{column_title}: {heads(len(chosen))}")
        columns.append(chosen[:n_examples])
    cells = [
        [_head_block(r, m.key) for r in c] or [missing("no heads in this bucket")] for c in columns
    ]
    depth = max(len(c) for c in cells)
    rows: list[list[str | Span]] = [
        [c[i] if i < len(c) else "" for c in cells] for i in range(depth)
    ]
    note = f'<p class="note">Judge: {escape(judge)}.'
    if n_unscored:
        note += f" {n_unscored} heads with invalid verdicts are left out (their CCS is a bound)."
    return title + table(header, rows, "examples") + note + "</p>"


# ------------------------------------------------------------------------------- pruning
def _heads_text(s: StrategySummary) -> str:
    counts = s.n_heads
    if len(counts) == 1:
        return f"{heads(counts[0])} pruned"
    return f"{min(counts)}–{max(counts)} heads pruned"


def strategy_cell(
    m: ModelInfo,
    dataset: str,
    s: StrategySummary | None,
    metric: str = "top1",
    published: float | None = None,
    source: str = "",
) -> str:
    """Mean (± sample std over runs when there are several) of `metric`, heads pruned, and
    the paper's value beside when given."""
    if s is None:
        return missing("—")
    mean = s.top1_mean if metric == "top1" else s.top5_mean
    std = s.top1_std if metric == "top1" else s.top5_std
    data = {"model": m.key, "dataset": dataset, "strategy": s.strategy, "metric": metric}
    if s.n_runs > 1:
        text = f"{_pct(mean)} ± {_pct(std)}" if std is not None else _pct(mean)
        cell = ours(text, mean=mean, std=std, n_runs=s.n_runs, **data)
    else:
        cell = ours(_pct(mean), mean=mean, **data)
    if published is not None:
        cell += paper(_pct(published), source)
    if s.n_runs > 1:
        cell += small(f"{s.n_runs} seeds")
    if s.strategy != "original":
        if s.is_empty:
            cell += small("0 heads: empty group, so equal to original", "warn")
        else:
            cell += small(_heads_text(s))
    return cell


def _extra_strategies(run: RunData, dataset: str) -> list[str]:
    """Manual strategies present for `dataset` in any model, in order of appearance."""
    names: dict[str, None] = {}
    for m in run.models:
        for s in run.prune.get((m.key, dataset)) or {}:
            if manual_name(s) is not None:
                names[s] = None
    return list(names)


def has_pruning(run: RunData, dataset: str) -> bool:
    return any(run.prune.get((m.key, dataset)) is not None for m in run.models)


def pruning_table(run: RunData, dataset: str, values: PaperValues, metric: str = "top1") -> str:
    """Tables 4-6's form for one dataset: a row per model; original, high, low, random (mean ±
    std over seeds) and manual strategies; accuracy in %. Paper values (top-1) beside ours."""
    if not has_pruning(run, dataset):
        return f"<p>{missing(f'no pruning results for {dataset}')}</p>"
    extras = _extra_strategies(run, dataset)
    unit = "top-1" if metric == "top1" else "top-5"
    header = [
        "Model",
        *[f"{STRATEGY_TITLES[s]}, {unit} %" for s in BASE_STRATEGIES],
        *[f"manual: {manual_name(s)}, {unit} %" for s in extras],
        "Images",
    ]
    source = values.pruning_source(dataset) or ""
    rows: list[list[str | Span]] = []
    for m in run.models:
        summaries = run.prune.get((m.key, dataset))
        if summaries is None:
            path = run.layout.prune(m.key, dataset)
            text = f"no pruning results for {dataset} for this model ({path})"
            rows.append([model_cell(m), Span(missing(text), len(header) - 1)])
            continue
        published = values.pruning(m.paper_name, dataset) if metric == "top1" else None
        cells: list[str | Span] = [model_cell(m)]
        for s in (*BASE_STRATEGIES, *extras):
            value = (published or {}).get(s)
            cells.append(strategy_cell(m, dataset, summaries.get(s), metric, value, source))
        images = sorted({n for s in summaries.values() for n in s.n_images})
        cells.append(escape(", ".join(str(n) for n in images)))
        rows.append(cells)
    return table(header, rows, "pruning")


# ------------------------------------------------------------------------------- concepts
def concept_strategies(run: RunData, dataset: str) -> list[str]:
    """Concept strategies present for `dataset` in any model, in order of appearance."""
    names: dict[str, None] = {}
    for m in run.models:
        for s in run.prune.get((m.key, dataset)) or {}:
            if concept_group(s) is not None:
                names[s] = None
    return list(names)


def concept_random_strategies(run: RunData, dataset: str) -> list[str]:
    """The concept pairs' random strategies (`concept-random:T:vs:U`) present for `dataset`."""
    names: dict[str, None] = {}
    for m in run.models:
        for s in run.prune.get((m.key, dataset)) or {}:
            if s.startswith("concept-random:"):
                names[s] = None
    return list(names)


def concept_title(strategy: str) -> str:
    if strategy.startswith("concept-random:"):
        target = strategy.removeprefix("concept-random:").split(":vs:")[0]
        return f"random heads pruned (as many as {target}'s, mean ± std over seeds)"
    group, other = concept_group(strategy)  # type: ignore[misc]
    return f"{group} heads pruned" + (f" (vs {other})" if other else "")


def concept_table(run: RunData, dataset: str, values: PaperValues) -> str | None:
    """Figures 3-4's numbers for one dataset: original vs pruning each concept group's heads
    (top-1 %); None if no model has a concept strategy for it. Paper values from section 5.5."""
    strategies = concept_strategies(run, dataset)
    if not strategies:
        return None
    chance = concept_random_strategies(run, dataset)
    header = [
        "Model",
        "Original, top-1 %",
        *[f"{concept_title(s)}, top-1 %" for s in (*strategies, *chance)],
    ]
    rows: list[list[str | Span]] = []
    notes: list[str] = []
    for m in run.models:
        summaries = run.prune.get((m.key, dataset))
        if summaries is None:
            text = f"no pruning results for {dataset} for this model"
            rows.append([model_cell(m), Span(missing(text), len(header) - 1)])
            continue
        published = values.concept(m.paper_name, dataset)
        src = published.source if published else ""
        cells: list[str | Span] = [model_cell(m)]
        cells.append(
            strategy_cell(
                m,
                dataset,
                summaries.get("original"),
                "top1",
                published.original if published else None,
                src,
            )
        )
        for s in strategies:
            group = concept_group(s)[0]  # type: ignore[index]
            value = published.pruned.get(group) if published else None
            cells.append(strategy_cell(m, dataset, summaries.get(s), "top1", value, src))
        for s in chance:
            cells.append(strategy_cell(m, dataset, summaries.get(s), "top1", None, src))
        rows.append(cells)
        if published:
            notes.append(f"{m.display}: paper values from {published.source}.")
            if published.note:
                notes.append(published.note)
    out = table(header, rows, "concept")
    if notes:
        out += '<p class="note">' + " ".join(escape(n) for n in notes) + "</p>"
    return out


# ------------------------------------------------------------------------------- agreement
AGREEMENT_METRICS = (
    ("kappa", "Cohen's κ"),
    ("spearman_rho", "Spearman ρ"),
    ("kendall_tau", "Kendall τ"),
)


def agreement_table(run: RunData, values: PaperValues) -> str:
    """Table 2's form: human vs LLM agreement per model (and pooled), paper values beside."""
    frame = run.agreement
    if frame is None:
        return f"<p>{missing(f'no agreement file ({run.layout.agreement()})')}</p>"
    by_key = {m.key: m for m in run.models}
    header = ["Model", "Pairs (n)", "Blank", "Accuracy", *[t for _, t in AGREEMENT_METRICS]]
    rows: list[list[str | Span]] = []
    for r in frame.iter_rows(named=True):
        m = by_key.get(r["model"])
        if m is not None:
            name = model_cell(m)
        elif r["model"] == "all":
            name = "<b>all models (pooled)</b>"
        else:
            name = f"<b>{escape(r['model'])}</b>"
        published = values.agreement(m.paper_name if m else None)
        cells: list[str | Span] = [name, str(r["n"]), str(r["n_blank"])]
        cells.append(ours(f"{r['accuracy']:.3f}", model=r["model"], metric="accuracy"))
        for column, _ in AGREEMENT_METRICS:
            v = r[column]
            cell = ours("n/a" if v is None else f"{v:.3f}", model=r["model"], metric=column)
            if published:
                cell += paper(f"{published[column]:.3f}", values.agreement_source)
            cells.append(cell)
        rows.append(cells)
    return table(header, rows, "agreement")


# ------------------------------------------------------------------------------- metrics
def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(str(value))


def frame_table(frame: pl.DataFrame) -> str:
    """Every column of a small table as it is (the concept world's training metrics)."""
    rows = [[_format(v) for v in row] for row in frame.iter_rows()]
    return table(frame.columns, rows, "metrics")
