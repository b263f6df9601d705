"""HTML fragments of the mutual step's evaluations (Sammani & Deligiannis, NeurIPS 2024).

- `faithfulness_table`: Table 1's form for one mutual set: per model and concept method the
  areas of deletion, insertion, AccDrop and AccInc for the ranked concepts, the random-order
  baseline beside, and the paper's Table 1 values (grey) on the dataset of its tables only;
  a verdict row per model: ranked beats random on each metric (lower deletion / AccDrop,
  higher insertion / AccInc), computed from the file.
- `augmented_table`: Table 2's form: per model the template classifier's top-1, Base
  (descriptor prompts) and Ours (plus the nearest classes' explanations) per method, the
  paper's Base / Ours beside for the models it reports.
- `regions_section_body`: concept world only: blurring the region of the true attribute vs a
  random region of the same area, the mean score drops and the margin, with the verdict
  "the true region's deletion hurts more" (margin > 0).

Conventions as in `tables`: our numbers are `<span class="ours" data-...>`, every string from a
file is escaped.
"""

from __future__ import annotations

from html import escape

import polars as pl

from clipconcepts.report.mutual_inputs import MutualResult, MutualRun, method_order
from clipconcepts.report.mutual_tables import WHO, method_name
from clipconcepts.report.paper import PaperValues
from clipconcepts.report.tables import Span, missing, model_cell, ours, paper, small, table
from clipconcepts.report.verdicts import FAILS, HOLDS, UNTESTABLE, verdict_badge

# metric -> (title, True when higher is better)
METRICS = {
    "deletion": ("Deletion ↓", False),
    "insertion": ("Insertion ↑", True),
    "acc_drop": ("AccDrop ↓", False),
    "acc_inc": ("AccInc ↑", True),
}
NOTE = (
    "Per image, its concepts are ranked by (cosine of the image with the concept's prompt "
    "embedding) x (cosine of the image with the concept's top descriptor); their regions (patch "
    "masks) are blurred one by one from the image (deletion) or unblurred one by one from the "
    "blurred image (insertion), L steps. Score = 2.5 x cosine with the originally predicted class "
    "(the paper's Figure 7); AccDrop / AccInc follow the accuracy instead. Areas: trapezoidal over "
    "unit steps (0..L). In brackets: the same with the concepts in a random order. Images without "
    "concepts are left out (counted)."
)


def _on_paper_dataset(values: PaperValues, mutual_set: str) -> bool:
    return mutual_set in values.mutual_data.get("datasets", [])


def _f(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


# ------------------------------------------------------------------------------- Table 1
def faithfulness_verdicts(frame: pl.DataFrame) -> dict[str, tuple[str, str]]:
    """Per method: 'ranked beats random on every metric' (holds / does not hold / not
    testable) and the metrics where it does not."""
    out = {}
    rows = {(r["method"], r["order"]): r for r in frame.iter_rows(named=True)}
    for method in method_order(frame["method"].unique(maintain_order=True).to_list()):
        ranked, rand = rows.get((method, "ranked")), rows.get((method, "random"))
        if ranked is None or rand is None or not ranked["n_images"]:
            out[method] = (UNTESTABLE, "no image with concepts")
            continue
        worse = [
            METRICS[m][0]
            for m, (_, higher) in METRICS.items()
            if not (ranked[m] > rand[m] if higher else ranked[m] < rand[m])
        ]
        if worse:
            out[method] = (FAILS, "not better than random on " + ", ".join(worse))
        else:
            out[method] = (HOLDS, "better than random on all 4 metrics")
    return out


def faithfulness_table(run: MutualRun, mutual_set: str, values: PaperValues) -> str:
    """Table 1's form: a row per model and method."""
    results = run.of_set(mutual_set)
    if not any(r.faithfulness is not None for r in results):
        paths = ", ".join(
            str(run.layout.mutual(m.key, mutual_set, "faithfulness_summary")) for m in run.models
        )
        return f"<p>{missing(f'no faithfulness results for {mutual_set} ({paths})')}</p>"
    section = values.mutual_data.get("faithfulness") or {}
    published = section.get("rows", {}) if _on_paper_dataset(values, mutual_set) else {}
    columns = section.get("columns", list(METRICS))
    header = ["Model", "Concepts", *[t for t, _ in METRICS.values()], "Images", "Ranked vs random"]
    rows: list[list[str | Span]] = []
    for r in results:
        if r.faithfulness is None:
            path = run.layout.mutual(r.model.key, mutual_set, "faithfulness_summary")
            text = f"no faithfulness results for this model ({path})"
            rows.append([model_cell(r.model), Span(missing(text), len(header) - 1)])
            continue
        frame = r.faithfulness
        lookup = {(x["method"], x["order"]): x for x in frame.iter_rows(named=True)}
        verdicts = faithfulness_verdicts(frame)
        for method in method_order(frame["method"].unique(maintain_order=True).to_list()):
            ranked, rand = lookup.get((method, "ranked")), lookup.get((method, "random"))
            cells: list[str | Span] = [model_cell(r.model), escape(method_name(method))]
            data = {"model": r.model.key, "mutual_set": mutual_set, "method": method}
            for metric in METRICS:
                v = None if ranked is None else ranked[metric]
                cell = missing("—") if v is None else ours(_f(v), metric=metric, value=v, **data)
                if rand is not None and rand[metric] is not None:
                    cell += (
                        f' <span class="baseline" title="random concept order" '
                        f'data-baseline="{rand[metric]}">[{_f(rand[metric])}]</span>'
                    )
                row = published.get(method)
                if row is not None and metric in columns:
                    cell += paper(_f(row[columns.index(metric)]), section.get("source", ""), WHO)
                cells.append(cell)
            n = 0 if ranked is None else ranked["n_images"]
            skipped = 0 if ranked is None else ranked["n_no_concepts"]
            cells.append(f"{n}" + (small(f"{skipped} without concepts") if skipped else ""))
            verdict, text = verdicts[method]
            badge = verdict_badge(
                "mutual-faithfulness", verdict, model=r.model.key, mutual_set=mutual_set,
                method=method,
            )  # fmt: skip
            cells.append(badge + small(text))
            rows.append(cells)
    notes = [NOTE]
    if published:
        baselines = section.get("baselines", {})
        notes.append(
            f"Grey: the paper's {section.get('source', 'Table 1')} (ImageNet val, model not named)"
            + (
                "; its trained baselines: "
                + "; ".join(f"{k} " + " / ".join(_f(x) for x in v) for k, v in baselines.items())
                + " (deletion / insertion / AccDrop / AccInc)."
                if baselines
                else "."
            )
        )
    elif section:
        notes.append(
            f"No paper values beside: the paper's {section.get('source', 'Table 1')} is on "
            f"ImageNet val, not {mutual_set}."
        )
    return table(header, rows, "mutual-faithfulness") + (
        '<p class="note">' + " ".join(escape(n) for n in notes) + "</p>"
    )


# ------------------------------------------------------------------------------- Table 2
def augmented_table(run: MutualRun, mutual_set: str, values: PaperValues) -> str:
    """Table 2's form: a row per model; Ours per concept method."""
    results = run.of_set(mutual_set)
    if not any(r.augmented is not None for r in results):
        paths = ", ".join(
            str(run.layout.mutual(m.key, mutual_set, "augmented")) for m in run.models
        )
        return f"<p>{missing(f'no descriptor zero-shot results for {mutual_set} ({paths})')}</p>"
    section = values.mutual_data.get("augmented") or {}
    on_paper = _on_paper_dataset(values, mutual_set)
    methods = method_order(
        [m for r in results if r.augmented is not None for m in r.augmented["method"].to_list()]
    )
    header = [
        "Model",
        "Templates top-1 %",
        "Base top-1 %",
        *[f"Ours ({method_name(m)}) top-1 %" for m in methods],
        *[f"Δ ({method_name(m)})" for m in methods],
        "Images",
    ]
    rows: list[list[str | Span]] = []
    for r in results:
        if r.augmented is None:
            path = run.layout.mutual(r.model.key, mutual_set, "augmented")
            text = f"no descriptor zero-shot results for this model ({path})"
            rows.append([model_cell(r.model), Span(missing(text), len(header) - 1)])
            continue
        by_method = {x["method"]: x for x in r.augmented.iter_rows(named=True)}
        first = next(iter(by_method.values()), None)
        data = {"model": r.model.key, "mutual_set": mutual_set}
        published = section.get("rows", {}).get(r.paper_name) if on_paper else None
        source = section.get("source", "")
        cells: list[str | Span] = [model_cell(r.model)]
        for metric in ("plain_top1", "base_top1"):
            v = None if first is None else first[metric]
            cell = missing("—") if v is None else ours(_f(v, 2), metric=metric, value=v, **data)
            if metric == "base_top1" and published:
                cell += paper(_f(published[0], 2), source, WHO)
            cells.append(cell)
        for metric in ("ours_top1", "delta"):
            for method in methods:
                x = by_method.get(method)
                if x is None:
                    cells.append(missing("—"))
                    continue
                v = x[metric]
                cell = ours(
                    (f"{v:+.2f}" if metric == "delta" else _f(v, 2)),
                    metric=metric,
                    method=method,
                    value=v,
                    **data,
                )
                if published:
                    ref = published[1] if metric == "ours_top1" else published[1] - published[0]
                    cell += paper(f"{ref:+.2f}" if metric == "delta" else _f(ref, 2), source, WHO)
                cells.append(cell)
        cells.append(str(first["n_images"]) if first else "0")
        rows.append(cells)
    note = (
        "Templates: the mutual step's class classifier. Base: each class embedded with its own "
        "descriptors in the paper's prompt (\"how can you identify a {class}. Distinctive and "
        'physical features describing it is {descriptor}"), prompt embeddings averaged. Ours: '
        "for an image predicted p, the classes nearest to p also get the mutual descriptors "
        "(D_v) of their own images' explanations (the image itself left out), and the image is "
        "classified again."
    )
    if section and not on_paper:
        note += f" No paper values beside: its {section.get('source')} is on ImageNet val."
    elif section:
        note += f" Grey: the paper's {section.get('source')} (ImageNet val)."
    return table(header, rows, "mutual-augmented") + f'<p class="note">{escape(note)}</p>'


# ------------------------------------------------------------------------------- regions
def region_verdict(frame: pl.DataFrame) -> tuple[str, str]:
    """'Blurring the true region hurts more than a random one' from the dataset row."""
    rows = frame.filter(pl.col("level") == "dataset")
    if rows.is_empty() or rows["margin"][0] is None:
        return UNTESTABLE, "no image with a true region"
    margin = rows["margin"][0]
    text = f"margin {margin:+.3f} (score drop, true minus random)"
    return (HOLDS if margin > 0 else FAILS), text


def _regions_table(r: MutualResult) -> str:
    frame = r.regions
    assert frame is not None
    header = [
        "Class",
        "Region",
        "Images",
        "Area",
        "Drop (true)",
        "Drop (random)",
        "Margin",
        "True drop larger",
        "Accuracy after (true / random)",
    ]
    rows: list[list[str | Span]] = []
    for x in frame.iter_rows(named=True):
        name = "<b>all</b>" if x["level"] == "dataset" else escape(str(x["classname"]))
        data = {"model": r.model.key, "mutual_set": r.mutual_set, "level": x["level"]}
        if x["classname"] is not None:
            data["classname"] = x["classname"]
        acc = (
            f"{_f(x.get('acc_true'), 2)} / {_f(x.get('acc_random'), 2)}"
            if x.get("acc_true") is not None
            else "—"
        )
        margin = x["margin"]
        rows.append(
            [
                name,
                escape(x["region"]),
                str(x["n_images"]) + (small(f"{x['n_skipped']} skipped") if x["n_skipped"] else ""),
                _f(x["area"], 2),
                _f(x["drop_true"]),
                _f(x["drop_random"]),
                missing("—")
                if margin is None
                else ours(f"{margin:+.3f}", metric="margin", value=margin, **data),
                "—" if x["wins"] is None else f"{100 * x['wins']:.0f}%",
                acc,
            ]
        )
    return table(header, rows, "mutual-regions")


def regions_section_body(run: MutualRun, mutual_set: str) -> str:
    """Per concept-world model: the verdict and the table; a line when none has the file."""
    intro = (
        "<p>Concept world only: the region that carries the set's attribute (the object for "
        "colour and position, the background for background colour and texture) is blurred as in "
        "the faithfulness test, and so is the same region rolled by a random offset (same area, "
        "elsewhere). Drop = the score of the originally predicted class (2.5 x cosine) before "
        "minus after; margin = mean drop (true) - mean drop (random). The verdict holds when the "
        "margin is positive.</p>"
    )
    parts = []
    for r in run.of_set(mutual_set):
        if r.regions is None:
            continue
        verdict, text = region_verdict(r.regions)
        badge = verdict_badge("mutual-regions", verdict, model=r.model.key, mutual_set=mutual_set)
        parts.append(
            f"<h4>{escape(r.model.display)}</h4>"
            f"<p>Blurring the true region hurts more than a random one: {badge} "
            f"({escape(text)}).</p>" + _regions_table(r)
        )
    if not parts:
        path = run.layout.mutual("<model>", mutual_set, "faithfulness_truth")
        text = f"no region check for {mutual_set} ({path}): concept-world sets only"
        return intro + f"<p>{missing(text)}</p>"
    return intro + "".join(parts)
