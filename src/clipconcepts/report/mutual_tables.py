"""HTML fragments of the mutual-knowledge results (Sammani & Deligiannis, NeurIPS 2024).

- `mutual_table`: Table 3's form for one mutual set: per model the dataset's top-1, MI and AUC
  for PCA and K-means concepts, the paper's values beside (grey, in parentheses) for the models
  it reports and only on the dataset of its Table 3; which MI form ran and how many images had
  no foreground or an empty intersection (their D_v is empty, MI 0, counted in the averages),
  and how many had a single concept (a one-row transport plan: `mutual.single_concept` decides
  their D_v), with their share of the images.
- `truth_section_body`: concept world only: the precision of the mutual descriptors (D_v) and
  of those shared with the class side (D_v ∩ D_y) against the images' true attributes, per
  family, beside the random-descriptor baseline, with the verdict "precision above baseline for
  every family" computed from the file (`truth_verdicts`).
- `examples_table`: the explanation panels' images as text (descriptors, shared ones marked).

Conventions as in `tables`: our numbers are `<span class="ours" data-...>`, every string from a
file is escaped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from html import escape

import polars as pl

from clipconcepts.report.assets import dataset_name
from clipconcepts.report.mutual_inputs import MutualResult, MutualRun, method_order
from clipconcepts.report.paper import PaperValues
from clipconcepts.report.tables import Span, missing, model_cell, ours, paper, small, table
from clipconcepts.report.verdicts import (
    FAILS,
    HOLDS,
    UNTESTABLE,
    overall_of_checks,
    verdict_badge,
)

WHO = "mutual-knowledge paper"
METHOD_NAMES = {"pca": "PCA", "kmeans": "K-means"}
MI_FORMS = {
    "eq9": "Eq. 9 (Appendix B: ln(|D_v|·|D_y|·k) with k shared descriptors, the form of the "
    "paper's Table 3)",
    "eq1": "Eq. 1 (the main text's textbook MI; the paper's Table 3 values are Eq. 9)",
}
TEXT_SIDES = {
    "predicted": "the predicted class (as the paper's Table 3)",
    "truth": "the true class",
}
SINGLE_CONCEPT = {
    "logits": "their concept's top descriptors by its logits",
    "authors": "the plan's tie order, as the authors' code (the descriptors carry no meaning)",
}
DESCRIPTOR_KINDS = (("mutual", "D_v"), ("shared", "shared (D_v ∩ D_y)"))
LEGEND = (
    '<p class="legend">Numbers in black are this run\'s. <span class="paper">(Grey numbers in '
    "parentheses)</span> are the mutual-knowledge paper's Table 3 values (full ImageNet "
    "validation split), shown only for the models it reports and only on that dataset; hover one "
    "to see its source. MI and AUC are in nats.</p>"
)


def method_name(method: str) -> str:
    return METHOD_NAMES.get(method, method)


def _f2(x: float) -> str:
    return f"{x:.2f}"


def _per_method(values: list[int]) -> str:
    """'9' when every method has the same count, else '9 / 7' (PCA / K-means)."""
    return str(values[0]) if len(set(values)) == 1 else " / ".join(map(str, values))


def _meta_text(r: MutualResult, key: str, names: dict[str, str]) -> str:
    value = r.meta.get(key)
    return names.get(value, str(value)) if value is not None else "not recorded"


# ------------------------------------------------------------------------------- Table 3
def mutual_table(run: MutualRun, mutual_set: str, values: PaperValues) -> str:
    """Table 3's form for `mutual_set`: a row per model, notes under it."""
    results = run.of_set(mutual_set)
    if not any(r.summary is not None for r in results):
        paths = ", ".join(str(run.layout.mutual(m.key, mutual_set, "summary")) for m in run.models)
        return f"<p>{missing(f'no mutual-knowledge results for {mutual_set} ({paths})')}</p>"
    methods = method_order([m for r in results for m in r.dataset_rows()] or ["pca", "kmeans"])
    header = [
        "Model",
        "Top-1 %",
        *[f"MI ({method_name(m)})" for m in methods],
        *[f"AUC ({method_name(m)})" for m in methods],
        "Images",
        "No foreground"
        + (f" ({' / '.join(map(method_name, methods))})" if len(methods) > 1 else ""),
        "Empty intersection"
        + (f" ({' / '.join(map(method_name, methods))})" if len(methods) > 1 else ""),
        "Single concept",
    ]
    source = values.mutual_source
    rows: list[list[str | Span]] = []
    for r in results:
        m = replace(r.model, paper_name=r.paper_name)
        if r.summary is None:
            path = run.layout.mutual(m.key, mutual_set, "summary")
            text = f"no mutual-knowledge results for {mutual_set} for this model ({path})"
            rows.append([model_cell(m), Span(missing(text), len(header) - 1)])
            continue
        by_method = r.dataset_rows()
        published = values.mutual(r.paper_name, mutual_set)
        data = {"model": m.key, "mutual_set": mutual_set}
        top1 = r.top1
        if top1 is None or math.isnan(top1):  # no image analysed
            top1 = None
        cell = missing("—") if top1 is None else ours(_f2(top1), metric="top1", value=top1, **data)
        if published is not None and top1 is not None:
            cell += paper(_f2(published["top1"]), source, WHO)
        cells: list[str | Span] = [model_cell(m), cell]
        for metric in ("mi", "auc"):
            for method in methods:
                row = by_method.get(method)
                if row is None:
                    cells.append(missing("—"))
                    continue
                v = row[metric]
                cell = ours(_f2(v), metric=metric, method=method, value=v, **data)
                value = (published or {}).get(f"{metric}_{method}")
                if value is not None:
                    cell += paper(_f2(value), source, WHO)
                cells.append(cell)
        present = [by_method[x] for x in methods if x in by_method]
        cells.append(_per_method([x["n_images"] for x in present]))
        for column in ("n_no_foreground", "n_empty_intersection"):
            counts = [x[column] for x in present]
            cells.append(ours(_per_method(counts), metric=column, **data))
        cells.append(_single_concept(present, data))
        rows.append(cells)
    return table(header, rows, "mutual") + _notes(run, mutual_set, values)


def _single_concept(present: list[dict], data: dict) -> str:
    """'9 (22%)' or '9 / 7 (22% / 18%)': images whose D_v came from one concept, and their
    share of the images; '—' for a summary written before the column existed."""
    counts = [x.get("n_single_concept") for x in present]
    if not present or any(c is None for c in counts):
        return missing("—")
    shares = [
        f"{100 * c / x['n_images']:.0f}%" if x["n_images"] else "—"
        for c, x in zip(counts, present, strict=True)
    ]
    text = f"{_per_method(counts)} ({_per_method(shares)})"
    return ours(text, metric="n_single_concept", **data)


def _notes(run: MutualRun, mutual_set: str, values: PaperValues) -> str:
    results = [r for r in run.of_set(mutual_set) if r.summary is not None]
    notes = []
    for key, names, what in (
        ("mi_form", MI_FORMS, "MI form"),
        ("text_side", TEXT_SIDES, "Class side D_y taken from"),
    ):
        texts = {r.model.display: _meta_text(r, key, names) for r in results}
        if len(set(texts.values())) == 1:
            notes.append(f"{what}: {next(iter(texts.values()))}, for every model.")
        else:
            notes.append(f"{what}: " + "; ".join(f"{k}: {v}" for k, v in texts.items()) + ".")
    total = {"no foreground": 0, "an empty intersection": 0}
    for r in results:
        rows = list(r.dataset_rows().values())
        if rows:
            total["no foreground"] += max(x["n_no_foreground"] for x in rows)
            total["an empty intersection"] += max(x["n_empty_intersection"] for x in rows)
    counted = ", ".join(f"{n} with {what}" for what, n in total.items())
    notes.append(
        f"Images without a result, over the models (the larger count of the methods): {counted}. "
        "Such an image has an empty D_v and MI 0 and is counted in the averages (the authors' "
        "code crashes on it)."
    )
    rules = {_meta_text(r, "single_concept", SINGLE_CONCEPT) for r in results}
    notes.append(
        "Single concept: images whose concepts reduce to one, so their transport plan is one "
        "row, all ones after the column step, and its top descriptors tie; their D_v is taken "
        f"from {'; '.join(sorted(rules))}."
    )
    notes.append(
        "MI = the first point of the dataset's averaged removal curve; AUC = the mean of that "
        "curve (each image's curve zero-padded to the longest); top-1 = zero-shot accuracy on "
        "the images analysed."
    )
    if values.mutual_data:
        shown = mutual_set in values.mutual_data.get("datasets", [])
        matched = [r.model.display for r in results if r.paper_name]
        if not shown:
            notes.append(
                f"No paper values beside: the paper's {values.mutual_source} is on ImageNet val "
                f"(set keys {', '.join(values.mutual_data.get('datasets', []))}), not "
                f"{dataset_name(mutual_set)}."
            )
        elif not matched:
            notes.append("No model of this run is one of the paper's (matched by arch + tag).")
        unmatched = values.mutual_unmatched()
        if shown and unmatched:
            notes.append(
                "Paper models matched to no open_clip spec: "
                + "; ".join(f"{k} ({v.strip()})" for k, v in unmatched.items())
                + "."
            )
    return '<p class="note">' + " ".join(escape(n) for n in notes) + "</p>"


# ------------------------------------------------------------------------------- concept world
@dataclass(frozen=True)
class TruthVerdict:
    """'Precision above baseline for every family' for one method and descriptor kind."""

    method: str
    kind: str
    verdict: str
    text: str


def truth_verdicts(frame: pl.DataFrame) -> list[TruthVerdict]:
    """Per (method, descriptors): holds when precision > baseline on every family that has
    descriptors (the `all` row is not a family), does not hold when one family is at or below
    its baseline, not testable when no family has descriptors. Families without descriptors
    are named, not counted."""
    out = []
    for method in method_order(frame["method"].unique(maintain_order=True).to_list()):
        for kind, _ in DESCRIPTOR_KINDS:
            rows = frame.filter(
                (pl.col("method") == method)
                & (pl.col("descriptors") == kind)
                & (pl.col("family") != "all")
            )
            tested = [
                r
                for r in rows.iter_rows(named=True)
                if r["precision"] is not None and r["baseline"] is not None
            ]
            untested = [r["family"] for r in rows.iter_rows(named=True) if r not in tested]
            below = [r["family"] for r in tested if not r["precision"] > r["baseline"]]
            if not tested:
                verdict, text = UNTESTABLE, "no family has descriptors"
            elif below:
                verdict = FAILS
                text = f"at or below baseline: {', '.join(below)}"
            else:
                verdict = HOLDS
                text = f"above baseline on {len(tested)}/{len(tested)} families"
            if untested and tested:
                text += f"; no descriptor of {', '.join(untested)} (not tested)"
            out.append(TruthVerdict(method, kind, verdict, text))
    return out


def truth_table(r: MutualResult) -> str:
    """Rows = families (`all` first), a column per method x descriptor kind: precision, the
    random-descriptor baseline beside, the number of descriptors; the verdicts under it."""
    frame = r.truth
    assert frame is not None
    methods = method_order(frame["method"].unique(maintain_order=True).to_list())
    families = list(dict.fromkeys(["all", *frame["family"].to_list()]))
    lookup = {(x["method"], x["descriptors"], x["family"]): x for x in frame.iter_rows(named=True)}
    columns = [(m, k) for m in methods for k, _ in DESCRIPTOR_KINDS]
    header = [
        "Family",
        *[
            f"{method_name(m)}, {dict(DESCRIPTOR_KINDS)[k]}: precision (vs baseline)"
            for m, k in columns
        ],
    ]
    rows: list[list[str | Span]] = []
    for family in families:
        cells: list[str | Span] = [f"<b>{escape(family)}</b>"]
        for method, kind in columns:
            x = lookup.get((method, kind, family))
            if x is None:
                cells.append(missing("—"))
                continue
            data = {
                "model": r.model.key,
                "mutual_set": r.mutual_set,
                "method": method,
                "descriptors": kind,
                "family": family,
            }
            p, b = x["precision"], x["baseline"]
            cell = (
                missing("no descriptor")
                if p is None
                else ours(f"{p:.3f}", metric="precision", value=p, **data)
            )
            if b is not None:
                cell += (
                    f' <span class="baseline" title="random-descriptor baseline" '
                    f'data-baseline="{b}">(baseline {b:.3f})</span>'
                )
            cell += small(f"{x['n_descriptors']} descriptors, {x['n_images']} images")
            cells.append(cell)
        rows.append(cells)
    verdicts = {(v.method, v.kind): v for v in truth_verdicts(frame)}
    row: list[str | Span] = ["<b>precision above baseline for every family</b>"]
    for method, kind in columns:
        v = verdicts[method, kind]
        badge = verdict_badge(
            "mutual-truth", v.verdict, model=r.model.key, method=method, descriptors=kind
        )
        row.append(badge + small(v.text))
    rows.append(row)
    return table(header, rows, "mutual-truth")


def truth_section_body(run: MutualRun, mutual_set: str) -> str:
    """Per model with a truth file: its table; a line for the others."""
    intro = (
        "<p>Concept world only: every descriptor of the bank names one attribute value of one "
        "family, every image's true values are in its manifest. Precision = the share of the "
        "mutual descriptors (D_v) or of those shared with the class side (D_v ∩ D_y) that name "
        "one of the image's own values, pooled over images; baseline = the same share for "
        "descriptors drawn uniformly from the bank (within the family's descriptors for a "
        "family row). The verdict row is computed from these numbers.</p>"
    )
    parts = []
    for r in run.of_set(mutual_set):
        if r.truth is None:
            continue
        verdicts = truth_verdicts(r.truth)
        verdict, summary = overall_of_checks(
            verdicts, 1.0, "method × descriptor columns", "the truth file has no rows"
        )
        badge = verdict_badge("mutual-truth", verdict, model=r.model.key, overall="true")
        parts.append(
            f"<h4>{escape(r.model.display)}</h4>"
            f"<p>Precision above baseline for every family: {badge} ({escape(summary)}).</p>"
            + truth_table(r)
        )
    if not parts:
        path = run.layout.mutual("<model>", mutual_set, "truth")
        text = f"no truth file for {mutual_set} ({path}): only concept-world models have one"
        return intro + f"<p>{missing(text)}</p>"
    return intro + "".join(parts)


# ------------------------------------------------------------------------------- examples
def example_images(r: MutualResult, n_examples: int) -> list[str]:
    """The first `n_examples` image ids with a thumbnail, in file order."""
    if r.examples is None or r.examples.is_empty():
        return []
    return r.examples["image_id"].unique(maintain_order=True).to_list()[:n_examples]


def descriptor_list(texts: list[str], ids: list[int], shared: set[int]) -> str:
    """An ordered list of D_v, most important first, shared descriptors marked."""
    items = []
    for text, i in zip(texts, ids, strict=False):
        if i in shared:
            items.append(f'<li class="yes">{escape(text)} <span class="mark">✓ shared</span></li>')
        else:
            items.append(f"<li>{escape(text)}</li>")
    return "<ol>" + "".join(items) + "</ol>" if items else missing("D_v is empty")


def examples_table(r: MutualResult, n_examples: int) -> str:
    """The panels' images as text: true and predicted class, MI, D_v (shared marked)."""
    ids = example_images(r, n_examples)
    if not ids:
        return f"<p>{missing('no image with a thumbnail in images.parquet')}</p>"
    frame = r.examples.filter(pl.col("image_id").is_in(ids))  # type: ignore[union-attr]
    rows: list[list[str | Span]] = []
    for image_id in ids:
        sub = {
            x["method"]: x
            for x in frame.filter(pl.col("image_id") == image_id).iter_rows(named=True)
        }
        for method in method_order(list(sub)):
            x = sub[method]
            mark = "✓" if x["correct"] else "✗"
            status = "" if x["status"] == "ok" else small(x["status"].replace("_", " "), "warn")
            rows.append(
                [
                    escape(image_id),
                    escape(method_name(method)),
                    escape(x["classname"]),
                    f"{escape(x['predicted_name'])} {mark}",
                    ours(f"{x['mi']:.2f}", model=r.model.key, image=image_id, method=method)
                    + status,
                    descriptor_list(x["dv_texts"], x["dv_ids"], set(x["shared_ids"])),
                ]
            )
    header = ["Image", "Concepts", "True class", "Predicted", "MI", "Mutual descriptors D_v"]
    return table(header, rows, "mutual-examples")
