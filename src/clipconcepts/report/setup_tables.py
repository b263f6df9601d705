"""What a run was set up with, and the CCS authors' head lists beside ours.

- `setup_section`: the text bank (source, URL, file, lines, SHA-256 from the provenance the
  `textbank` step stores in `textbank.parquet`) and the datasets that ran (config kind, classes
  from the run's classifier files), so a reader sees e.g. that the concept pairs ran on the
  authors' objects subset of CIFAR-10.
- `published_table`: per dataset, each model's accuracy with our high / low CCS heads pruned and
  with the authors' published lists pruned (strategy `published`: `published:high`,
  `published:low`), and the overlap of the two lists (Jaccard = shared / either).

Reads files only (polars, pyarrow; no torch). Every string from a file is HTML-escaped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

import polars as pl

from clipconcepts.published_heads import (
    PUBLISHED_KINDS,
    find_published,
    published_models,
    published_strategy,
)
from clipconcepts.report import tables
from clipconcepts.report.assets import dataset_name
from clipconcepts.report.inputs import ModelInfo, RunData, read_input
from clipconcepts.textbank import read_textbank_provenance

log = logging.getLogger(__name__)

SOURCES = {
    "authors": "the TEXTSPAN authors' image descriptions (Gandelsman et al.)",
    "default": "this project's default bank (hand-written vocabulary; not the papers')",
    "file": "a file given in the config (textbank.path)",
    "generate": "written by the LLM (textbank.source: generate)",
    "conceptworld": "the concept world's bank",
}
_MAX_CLASSES_LISTED = 12


def textbank_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / "textbank.parquet"


# ------------------------------------------------------------------------------- text bank
def textbank_block(run_dir: str | Path) -> str:
    """One paragraph naming the run's text bank: source, where from, lines, digests."""
    path = textbank_path(run_dir)
    if not path.exists():
        return f"<p>{tables.missing(f'no text bank file ({path})')}</p>"
    info = read_textbank_provenance(path)
    if info is None:
        text = (
            f"{path} records no provenance (written before it was stored): rerun the textbank rule"
        )
        return f"<p>{tables.missing(text)}</p>"
    source = str(info.get("source", "?"))
    parts = [
        f"Source <b>{escape(source)}</b>: {escape(SOURCES.get(source, source))}.",
    ]
    if info.get("url"):
        # as text, not a link: the page refers to nothing outside itself
        parts.append(f"Downloaded from <code>{escape(str(info['url']))}</code>.")
    if info.get("path"):
        parts.append(f"File <code>{escape(str(info['path']))}</code>")
        if "lines" in info:
            lines = tables.ours(f"{info['lines']:,}", metric="textbank_lines")
            parts[-1] += f": {lines} lines"
        if info.get("file_sha256"):
            parts[-1] += f", SHA-256 <code>{escape(str(info['file_sha256']))}</code>"
        parts[-1] += "."
    n_texts = info.get("n_texts")
    if n_texts is not None:
        dropped = ""
        if isinstance(info.get("lines"), int) and info["lines"] > n_texts:
            k = info["lines"] - n_texts
            dropped = (
                f" ({k} duplicate {'line' if k == 1 else 'lines'} dropped, ignoring case and "
                "spaces: CLIP's tokenizer encodes them identically)"
            )
        texts = tables.ours(f"{n_texts:,}", metric="textbank_texts")
        parts.append(
            f"{texts} descriptions embedded{dropped}; digest of the texts in order "
            f"<code>{escape(str(info.get('texts_sha256', '')))}</code>."
        )
    if source != "authors":
        parts.append(
            "The CCS paper's TEXTSPAN texts come from the authors' bank "
            "(<code>textbank.source: authors</code>); labels and CCS depend on the bank."
        )
    return '<p class="textbank">' + " ".join(parts) + "</p>"


# ------------------------------------------------------------------------------- datasets
def _classnames(run: RunData, dataset: str) -> list[str] | None:
    """Class names of `dataset` as the run's classifier file lists them (first model having one)."""
    for m in run.models:
        path = run.layout.run_dir / m.key / "classifiers" / f"{dataset}.parquet"
        if path.exists():
            frame = pl.read_parquet(path, columns=["class_id", "classname"])
            return frame.sort("class_id")["classname"].to_list()
    return None


def datasets_table(run: RunData, dataset_kinds: Mapping[str, str] | None = None) -> str:
    """A row per dataset: key, name, kind (config), classes (from the classifier files)."""
    rows = []
    for d in run.datasets:
        kind = (dataset_kinds or {}).get(d)
        names = _classnames(run, d)
        if names is None:
            classes = tables.missing("no classifier file")
        elif len(names) <= _MAX_CLASSES_LISTED:
            classes = f"{len(names)}: " + escape(", ".join(names))
        else:
            classes = f"{len(names):,}"
        rows.append(
            [
                f"<code>{escape(d)}</code>",
                escape(dataset_name(d)),
                f"<code>{escape(kind)}</code>" if kind else tables.missing("—"),
                f'<span class="classes" data-dataset="{escape(d)}">{classes}</span>',
            ]
        )
    return tables.table(["Key", "Dataset", "Kind (config)", "Classes"], rows, "datasets")


def setup_section(run: RunData, dataset_kinds: Mapping[str, str] | None = None) -> str:
    """The `#setup` section: text bank and datasets."""
    body = (
        "<h3>Text bank</h3>"
        + textbank_block(run.layout.run_dir)
        + "<h3>Datasets</h3><p>The sets that ran: the config's kind and the classes of the "
        "zero-shot classifier (a subset such as <code>cifar10-objects</code>, the authors' "
        "CIFAR-10 objects, reads the full set's files and keeps its classes).</p>"
        + (datasets_table(run, dataset_kinds) if run.datasets else tables.missing("none"))
    )
    return f'<section id="setup"><h2>Setup: text bank and datasets</h2>{body}</section>'


# ------------------------------------------------------------------------------- published
def jaccard(ours: Sequence[str], theirs: Sequence[str]) -> float | None:
    """|A ∩ B| / |A ∪ B| of two head lists; None when both are empty."""
    a, b = set(ours), set(theirs)
    return len(a & b) / len(a | b) if a | b else None


def _heads(run: RunData, m: ModelInfo, dataset: str) -> dict[str, list[str]] | None:
    """Heads of the seed-0 row of each strategy in the prune file (None if absent)."""
    frame = read_input(run.layout.prune(m.key, dataset), "prune")
    if frame is None:
        return None
    rows = frame.filter(pl.col("seed") == 0).select("strategy", "heads").rows()
    return {strategy: list(heads or []) for strategy, heads in rows}


def _jaccard_cell(m: ModelInfo, dataset: str, kind: str, ours: list[str] | None, theirs) -> str:
    if ours is None or theirs is None:
        return tables.missing("—")
    value = jaccard(ours, theirs)
    shared = sorted(set(ours) & set(theirs))
    data = {"model": m.key, "dataset": dataset, "metric": f"jaccard_{kind}"}
    if value is None:
        return tables.ours("n/a", **data) + tables.small("both lists empty")
    cell = tables.ours(f"{value:.2f}", value=value, **data)
    cell += tables.small(f"{len(shared)} shared of {len(set(ours) | set(theirs))}")
    if shared:
        cell += tables.small(", ".join(shared))
    return cell


def published_table(run: RunData, dataset: str, strategies: Sequence[str] = ()) -> str | None:
    """Ours vs the authors' high and low lists on `dataset`: accuracies and Jaccard overlaps.

    Shown when `strategies` (prune.strategies) has `published`, or, when it is not given, when
    some model's prune file has `published:` rows; otherwise None.
    """
    names = [published_strategy(kind) for kind in PUBLISHED_KINDS]
    ran = {
        m.key: any(n in (run.prune.get((m.key, dataset)) or {}) for n in names) for m in run.models
    }
    if "published" not in strategies and not any(ran.values()):
        return None
    header = ["Model", "Original, top-1 %"]
    for kind in PUBLISHED_KINDS:
        title = kind.capitalize()
        header += [
            f"{title} CCS pruned: ours, top-1 %",
            f"{title} CCS pruned: the authors' list, top-1 %",
            f"{title}: Jaccard (ours, theirs)",
        ]
    rows: list[list[str | tables.Span]] = []
    for m in run.models:
        summaries = run.prune.get((m.key, dataset))
        if find_published(m.arch, m.pretrained) is None:
            text = (
                f"no published head lists for this model ({m.arch}/{m.pretrained or ''}); the "
                f"authors published lists for {', '.join(published_models())}"
            )
            rows.append([tables.model_cell(m), tables.Span(tables.missing(text), len(header) - 1)])
            continue
        if summaries is None or not ran[m.key]:
            text = (
                f"no pruning results for {dataset}"
                if summaries is None
                else "the strategy published did not run for this model (prune.strategies)"
            )
            rows.append([tables.model_cell(m), tables.Span(tables.missing(text), len(header) - 1)])
            continue
        heads = _heads(run, m, dataset) or {}
        cells: list[str | tables.Span] = [
            tables.model_cell(m),
            tables.strategy_cell(m, dataset, summaries.get("original")),
        ]
        for kind in PUBLISHED_KINDS:
            theirs = published_strategy(kind)
            cells.append(tables.strategy_cell(m, dataset, summaries.get(kind)))
            cells.append(tables.strategy_cell(m, dataset, summaries.get(theirs)))
            cells.append(_jaccard_cell(m, dataset, kind, heads.get(kind), heads.get(theirs)))
        rows.append(cells)
    note = (
        '<p class="note">The authors\' lists: avinashsai/CCS-CLIP <code>src/association.py</code> '
        "(high: CCS = 5, low: CCS ≤ 1, their last 4 layers), replayed on this run's images as "
        "<code>published:high</code> and <code>published:low</code>. Jaccard = heads in both "
        "lists / heads in either (1 = the same heads); ours are this run's CCS groups.</p>"
    )
    return tables.table(header, rows, "published") + note
