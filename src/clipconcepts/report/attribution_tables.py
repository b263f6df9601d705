"""HTML fragments of the head-attribution results (docs/attribution.md; after Dreyer et al. 2025).

Per model and dataset:

- `heads_table`: every head's label, CCS, the mean over the sampled images of AtP (zero and
  mean baselines), direct effect, logit lens, energy and true effects, each with its rank;
- `ccs_statement`: the correlations of CCS with every other view across heads, and the headline
  faithfulness numbers (AtP and the direct effect against the true effect);
- `correlation_table`: the head-level correlation matrix, Spearman's rho with Kendall's tau
  under it (both also in the cell's hover text); `image_table`: the per-image correlations with
  the true effects, averaged over the images;
- `deletion_table`: each deletion method's area with its error and the curve's end points;
- `reliance_summary`, `reliance_table`: the unexpected reliance list (heads a class relies on
  whose label names another concept), and the full top-k list;
- `truth_table` (concept world): precision@k of each view's ranking against the world's truth.

Effects (AtP, direct, true) are changes of y = cos(image embedding, target text) and are shown
x100, the deletion curves' unit (100·y); `data-value` keeps the file's number. Conventions as in
`tables`: our numbers are `<span class="ours" data-...>`, every string from a file is escaped.
"""

from __future__ import annotations

import math
from html import escape

import polars as pl

from clipconcepts.report.attribution_inputs import (
    METHODS,
    VIEWS,
    AttributionResult,
    AttributionRun,
    method_name,
    ordered,
    view_name,
)
from clipconcepts.report.head_links import head_link
from clipconcepts.report.tables import Span, missing, ours, small, table

SCALED = ("atp_zero", "atp_mean", "direct", "true_zero", "true_mean")  # shown x100
HEAD_COLUMNS = (
    ("ccs", "CCS"),
    ("atp_zero", "AtP (zero) ×100"),
    ("atp_mean", "AtP (mean) ×100"),
    ("direct", "Direct effect ×100"),
    ("logit_lens", "Logit lens"),
    ("energy", "Energy"),
    ("true_zero", "True effect (zero) ×100"),
    ("true_mean", "True effect (mean) ×100"),
)
TARGETS = {
    "truth": "the zero-shot text of the image's true class",
    "predicted": "the zero-shot text of the class the unablated model predicts",
}
LEGEND = (
    "<p class=\"legend\">Every number is this run's: no paper reports these views for CLIP's "
    "attention heads (Dreyer et al. 2025 attribute SAE latents), so no paper values stand beside "
    "them. y = cos(image embedding, target text). AtP, the direct effect and the true effect are "
    "means over the sampled images of changes of y, shown ×100 (the unit of the deletion curves, "
    "100·y); energy (|c<sub>h</sub>| / |e|) and the logit lens (a cosine) are shown as they are. "
    "#n under a value: the head's rank by that view (1 = largest; ties share the smallest rank). "
    "ρ = Spearman, τ = Kendall's tau-b. A dash means the run has no such value.</p>"
)


def head_name(layer: int, head: int) -> str:
    return f"L{layer}.H{head}"


def _is_num(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def fmt_view(view: str, v) -> str:
    """A view's value as shown: effects x100 (3 decimals), CCS as an integer, others 3 decimals."""
    if view == "ccs":
        return str(int(v))
    return f"{v * 100:.3f}" if view in SCALED else f"{v:.3f}"


def _corr(v) -> str:
    return f"{v:.2f}" if _is_num(v) else "n/a"


def _data(r: AttributionResult, **more: object) -> dict[str, object]:
    return {"model": r.model.key, "dataset": r.dataset, **more}


def _absent(r: AttributionResult, kind: str, what: str) -> str:
    return f"<p>{missing(f'no {what} for this model ({_path(r, kind)})')}</p>"


def _path(r: AttributionResult, kind: str) -> str:
    return f"{r.model.key}/attribution/{r.dataset}/{kind}.parquet"


# ------------------------------------------------------------------------------- setup note
def meta_note(r: AttributionResult) -> str:
    """What y was, how many images, the baselines, the deletion scope (from the metadata)."""
    meta = {**r.meta, **r.deletion_meta}
    if not meta:
        return ""
    target = meta.get("target")
    if target == "prompt":
        target_text = f"the prompt “{meta.get('prompt', '')}”"
    else:
        target_text = TARGETS.get(target, str(target))
    parts = [f"y = cos(image, {target_text})"]
    if meta.get("n_images") is not None:
        parts.append(f"{meta['n_images']} images sampled per dataset (seed {meta.get('seed')})")
    if meta.get("baselines"):
        parts.append("baselines: " + ", ".join(meta["baselines"]))
    if meta.get("layers"):
        parts.append(f"ablation and deletion scope: {meta['layers']}")
    if meta.get("subsets"):
        parts.append(f"error bars over {meta['subsets']} interleaved image subsets")
    return '<p class="note">' + escape("; ".join(parts)) + ".</p>"


# ------------------------------------------------------------------------------- per head
def heads_table(r: AttributionResult) -> str:
    """A row per head (layer, head order): label, CCS and each view's mean with its rank."""
    if r.heads is None:
        return _absent(r, "heads", "per-head table")
    header = ["Head", "Label", *[title for _, title in HEAD_COLUMNS], "Top-1 drop, pp"]
    rows: list[list[str | Span]] = []
    frame = r.heads.sort(["layer", "head"])
    for x in frame.iter_rows(named=True):
        name = head_name(x["layer"], x["head"])
        label = escape(x["label"]) if x["label"] is not None else missing("no label")
        cells: list[str | Span] = [f"<b>{head_link(r.model.key, name)}</b>", label]
        for view, _ in HEAD_COLUMNS:
            v = x[view]
            if not _is_num(v):
                cells.append(missing("—"))
                continue
            cell = ours(fmt_view(view, v), **_data(r, head=name, metric=view, value=v))
            rank = x.get(f"rank_{view}")
            if rank is not None:
                cell += small(f"#{rank}")
            cells.append(cell)
        drops = [x["acc_drop_zero"], x["acc_drop_mean"]]
        if any(_is_num(v) for v in drops):
            text = " / ".join(f"{v:.1f}" if _is_num(v) else "—" for v in drops)
            cells.append(ours(text, **_data(r, head=name, metric="acc_drop")))
        else:
            cells.append(missing("—"))
        rows.append(cells)
    n_scope = frame.filter(pl.col("true_zero").is_not_null()).height
    n_ccs = frame.filter(pl.col("ccs").is_not_null()).height
    note = (
        f'<p class="note">{frame.height} heads; CCS for the {n_ccs} heads of the analysed layers, '
        f"true effects for the {n_scope} heads of the ablation scope (each ablated alone through "
        "the whole model). Top-1 drop: percentage points of top-1 accuracy lost on the sampled "
        "images when the head is zeroed / set to its mean.</p>"
    )
    return table(header, rows, "attribution-heads") + note


# ------------------------------------------------------------------------------- correlations
def ccs_statement(r: AttributionResult) -> str:
    """CCS against every other view across heads; AtP and the direct effect against the true
    effect (across heads and per image)."""
    if r.correlations is None:
        return _absent(r, "correlations", "correlations file")
    items = []
    for view in r.head_views():
        if view == "ccs":
            continue
        row = r.correlation("head", "ccs", view)
        if row is None:
            continue
        items.append(
            f"<li>{escape(view_name(view))}: ρ = "
            + ours(
                _corr(row["spearman"]), **_data(r, x="ccs", y=view, metric="spearman", part="ccs")
            )
            + ", τ = "
            + ours(_corr(row["kendall"]), **_data(r, x="ccs", y=view, metric="kendall", part="ccs"))
            + f" ({row['n_heads']} heads)</li>"
        )
    if items:
        ccs = (
            "<p>Correlation of CCS with the other views, across the heads that have both:</p>"
            f"<ul>{''.join(items)}</ul>"
        )
    else:
        ccs = (
            f"<p>{missing('no correlation of CCS with another view (no CCS in heads.parquet)')}</p>"
        )
    facts = []
    for view in ("atp_zero", "direct", "ccs"):
        head = r.correlation("head", view, "true_zero")
        image = r.correlation("image", view, "true_zero")
        if head is None and image is None:
            continue
        pieces = []
        for level, row in (("head", head), ("image", image)):
            if row is None:
                continue
            rho = ours(
                _corr(row["spearman"]),
                **_data(r, x=view, y="true_zero", level=level, part="faithfulness"),
            )
            where = (
                f"across {row['n_heads']} heads"
                if level == "head"
                else f"per image (mean over {row['n_images']} images)"
            )
            pieces.append(f"ρ = {rho} {where}")
        facts.append(f"<li>{escape(view_name(view))}: {'; '.join(pieces)}</li>")
    faithful = (
        "<p>Faithfulness: how well a view orders heads like ablating them (the true effect, "
        f"zero) does:</p><ul>{''.join(facts)}</ul>"
        if facts
        else ""
    )
    return ccs + faithful


def correlation_table(r: AttributionResult) -> str:
    """The head-level matrix: rows x, columns y; Spearman with Kendall under it."""
    if r.correlations is None:
        return _absent(r, "correlations", "correlations file")
    views = r.head_views()
    header = ["", *[view_name(v) for v in views]]
    rows: list[list[str | Span]] = []
    for x in views:
        cells: list[str | Span] = [f"<b>{escape(view_name(x))}</b>"]
        for y in views:
            row = None if x == y else r.correlation("head", x, y)
            if row is None:
                cells.append(missing("—"))
                continue
            rho, tau = row["spearman"], row["kendall"]
            hover = (
                f"{view_name(x)} vs {view_name(y)}: Spearman ρ {_corr(rho)}, Kendall τ "
                f"{_corr(tau)}, {row['n_heads']} heads"
            )
            cell = ours(_corr(rho), **_data(r, x=x, y=y, metric="spearman", value=rho))
            cell += small(f"τ {_corr(tau)}")
            cells.append(f'<span title="{escape(hover)}">{cell}</span>')
        rows.append(cells)
    return table(header, rows, "attribution-correlations")


def image_table(r: AttributionResult) -> str:
    """Per image, each view against the true effects across the scope's heads; mean over the
    images where the correlation exists."""
    if r.correlations is None:
        return _absent(r, "correlations", "correlations file")
    frame = r.correlations.filter(pl.col("level") == "image")
    if frame.is_empty():
        return f"<p>{missing('no per-image correlations in the file')}</p>"
    targets = ordered(frame["y"].to_list(), ["true_zero", "true_mean"])
    views = ordered(frame["x"].to_list(), list(VIEWS))
    header = ["View", *[f"vs {view_name(t)}: ρ (τ)" for t in targets], "Images"]
    rows: list[list[str | Span]] = []
    for x in views:
        cells: list[str | Span] = [f"<b>{escape(view_name(x))}</b>"]
        n_images = set()
        for t in targets:
            row = r.correlation("image", x, t)
            if row is None:
                cells.append(missing("—"))
                continue
            n_images.add(row["n_images"])
            rho = row["spearman"]
            data = _data(r, x=x, y=t, level="image", metric="spearman", value=rho)
            cells.append(ours(_corr(rho), **data) + f" ({_corr(row['kendall'])})")
        cells.append(" / ".join(map(str, sorted(n_images))) or "—")
        rows.append(cells)
    return table(header, rows, "attribution-image")


# ------------------------------------------------------------------------------- deletion
def deletion_table(r: AttributionResult) -> str:
    """Per method: the area (mean 100·y over all points, lower = better), 100·y before and
    after the last deletion step."""
    if r.deletion is None:
        return _absent(r, "deletion", "deletion curves")
    frame = r.deletion
    methods = ordered(frame["method"].to_list(), list(METHODS))
    last = int(frame["step"].max())
    header = ["Method", "Area (mean 100·y) ± error", "100·y, unperturbed", f"100·y, {last} deleted"]
    rows: list[list[str | Span]] = []
    for method in methods:
        sub = frame.filter(pl.col("method") == method).sort("step")
        first, end = sub.row(0, named=True), sub.row(sub.height - 1, named=True)
        area, err = first["area"], first["area_err"]
        text = f"{area:.2f}" + (f" ± {err:.2f}" if _is_num(err) else "")
        cells: list[str | Span] = [
            escape(method_name(method)),
            ours(text, **_data(r, method=method, metric="area", value=area)),
            ours(f"{first['y100']:.2f}", **_data(r, method=method, step=0, value=first["y100"])),
            ours(
                f"{end['y100']:.2f}",
                **_data(r, method=method, step=int(end["step"]), value=end["y100"]),
            ),
        ]
        rows.append(cells)
    n = sorted(set(frame["n_images"].to_list()))
    note = (
        '<p class="note">Per image, each method deletes (zeroes) the scope\'s heads in its own '
        "order, one more per step, and the model is re-run; the area is the mean of all points of "
        "all images' curves, the unperturbed one included: the lower, the better the method finds "
        f"what y relies on. {'/'.join(map(str, n))} images. The true effect's greedy order is a "
        "reference, not a method.</p>"
    )
    return table(header, rows, "attribution-deletion") + note


# ------------------------------------------------------------------------------- reliance
def reliance_summary(r: AttributionResult) -> str:
    if r.reliance is None:
        return _absent(r, "reliance", "reliance list")
    frame = r.reliance
    counts = {k: frame.filter(pl.col("relation") == k).height for k in ("related", "unrelated")}
    unknown = frame.height - sum(counts.values())
    classes = frame["target"].n_unique()
    n_unexpected = int(frame["unexpected"].sum())
    return (
        f"<p>{classes} classes, their top {frame['rank'].max() or 0} heads by AtP: "
        + ours(str(n_unexpected), **_data(r, metric="n_unexpected"))
        + f" of {frame.height} (class, head) pairs are unexpected (the head's label names a "
        f"concept unrelated to the class), {counts['related']} related, {unknown} of unknown "
        "relation (no concept group for the label or the class).</p>"
    )


def _reliance_rows(r: AttributionResult, frame: pl.DataFrame, relation: bool) -> str:
    header = ["Class (group)", "Rank", "Head", "Label (group)", "CCS"]
    header += ["AtP ×100", "Direct ×100", "True effect (zero) ×100", "Images"]
    if relation:
        header.append("Relation")
    rows: list[list[str | Span]] = []
    for x in frame.iter_rows(named=True):
        name = head_name(x["layer"], x["head"])
        data = _data(r, target=x["target"], head=name)
        group = escape(x["class_group"]) if x["class_group"] else "no group"
        label = escape(x["label"]) if x["label"] is not None else missing("no label")
        label_group = escape(x["label_group"]) if x["label_group"] else "no group"
        cells: list[str | Span] = [
            f"{escape(x['classname'])}<br><small>{group}</small>",
            str(x["rank"]),
            head_link(r.model.key, name),
            f"{label}<br><small>{label_group}</small>",
            str(x["ccs"]) if x["ccs"] is not None else missing("—"),
        ]
        for column in ("atp", "direct", "true_zero"):
            v = x[column]
            cells.append(
                ours(f"{v * 100:.3f}", metric=column, value=v, **data)
                if _is_num(v)
                else missing("—")
            )
        cells.append(str(x["n_images"]))
        if relation:
            cells.append(escape(x["relation"]) + (" (unexpected)" if x["unexpected"] else ""))
        rows.append(cells)
    return table(header, rows, "attribution-reliance")


def unexpected_table(r: AttributionResult, limit: int | None = None) -> str:
    """The unexpected rows, strongest AtP first; the first `limit` (all when None)."""
    if r.reliance is None:
        return ""
    frame = r.reliance.filter(pl.col("unexpected")).sort("atp", descending=True, nulls_last=True)
    if frame.is_empty():
        return (
            f"<p>{missing('no unexpected reliance: every listed head is related or unknown')}</p>"
        )
    shown = frame if limit is None else frame.head(limit)
    more = ""
    if shown.height < frame.height:
        more = (
            f'<p class="note">The {shown.height} strongest of {frame.height}; the reliance asset '
            f"(attribution_{escape(r.dataset)}_reliance.html) lists them all.</p>"
        )
    return _reliance_rows(r, shown, relation=False) + more


def reliance_table(r: AttributionResult) -> str:
    """Every listed (class, head) pair, by class and rank."""
    if r.reliance is None:
        return ""
    return _reliance_rows(r, r.reliance.sort(["target", "rank"]), relation=True)


# ------------------------------------------------------------------------------- truth
def truth_table(r: AttributionResult) -> str:
    """Per family: a row per view, precision@k (R-precision marked), the view's Spearman with
    the true effect and with the truth score, and its first heads."""
    if r.truth is None:
        return ""
    parts = []
    for family in r.truth["family"].unique(maintain_order=True).to_list():
        frame = r.truth.filter(pl.col("family") == family)
        first = frame.row(0, named=True)
        n_truth, n_pool = first["n_truth"], first["n_pool"]
        ks = sorted(set(frame["k"].to_list()))
        header = [
            "View",
            *[f"p@{k}" + (" = R-precision" if k == n_truth else "") for k in ks],
            "ρ with true effect (zero)",
            "ρ with truth score",
            f"First {max(ks)} heads",
        ]
        rows: list[list[str | Span]] = []
        for view in ordered(frame["view"].to_list(), list(VIEWS)):
            sub = frame.filter(pl.col("view") == view)
            by_k = {x["k"]: x for x in sub.iter_rows(named=True)}
            cells: list[str | Span] = [f"<b>{escape(view_name(view))}</b>"]
            for k in ks:
                x = by_k.get(k)
                if x is None or not _is_num(x["precision"]):
                    cells.append(missing("—"))
                    continue
                data = _data(r, family=family, view=view, k=k, metric="precision")
                cells.append(ours(f"{x['precision']:.2f}", value=x["precision"], **data))
            x = sub.row(0, named=True)
            for column in ("spearman_true_zero", "spearman_truth_score"):
                v = x[column]
                cells.append(
                    ours(_corr(v), **_data(r, family=family, view=view, metric=column))
                    if _is_num(v)
                    else missing("—")
                )
            top = by_k[max(ks)]["top_heads"] if max(ks) in by_k else []
            truth = set(first["truth_heads"] or [])
            cells.append(
                ", ".join(
                    f"<b>{head_link(r.model.key, h)}</b>"
                    if h in truth
                    else head_link(r.model.key, h)
                    for h in top or []
                )
            )
            rows.append(cells)
        truth_heads = ", ".join(head_link(r.model.key, h) for h in first["truth_heads"] or [])
        parts.append(
            f"<p>Family <b>{escape(family)}</b>: {n_truth} truth {'head' if n_truth == 1 else 'heads'}"
            f" of the {n_pool} in the scope ({truth_heads or 'none'}: the heads whose top family in "
            "the world's head "
            "truth is this set's family). Truth heads are bold in the last column.</p>"
            + table(header, rows, "attribution-truth")
        )
    return "".join(parts)


# ------------------------------------------------------------------------------- dataset bodies
def _absent_models(run: AttributionRun, dataset: str) -> str:
    absent = run.absent(dataset)
    if not absent:
        return ""
    names = ", ".join(
        f"{m.display} ({run.layout.attribution(m.key, dataset, 'heads')})" for m in absent
    )
    return f"<p>{missing(f'no attribution results for {dataset}: {names}')}</p>"


def overview_body(run: AttributionRun, dataset: str, collapsed: bool) -> str:
    """Per model: setup, CCS statement, per-image faithfulness, deletion areas, the correlation
    matrix and the per-head table (in `<details>` when `collapsed`)."""
    parts = []
    for r in run.of_dataset(dataset):
        heads = heads_table(r)
        matrix = correlation_table(r)
        if collapsed:
            n = r.heads.height if r.heads is not None else 0
            heads = f"<details><summary>per-head table ({n} heads)</summary>{heads}</details>"
            matrix = (
                "<details><summary>correlation matrix across heads (ρ, τ under it)</summary>"
                f"{matrix}</details>"
            )
        else:
            heads = f"<h5>Per head</h5>{heads}"
            matrix = f"<h5>Correlations across heads</h5>{matrix}"
        parts.append(
            f"<h4>{escape(r.model.display)}</h4>"
            + meta_note(r)
            + ccs_statement(r)
            + matrix
            + "<h5>Per image: each view against the true effects</h5>"
            + image_table(r)
            + "<h5>Deletion curves</h5>"
            + deletion_table(r)
            + heads
        )
    return "".join(parts) + _absent_models(run, dataset)


def reliance_body(run: AttributionRun, dataset: str, limit: int | None) -> str:
    """Per model: the counts, the unexpected list (the first `limit`) and, in the standalone
    file (`limit` None), the full top-k list."""
    intro = (
        "<p>Per target class, its images' mean AtP ranks the labelled heads; the top ones with "
        "positive AtP are listed. A head is <i>unexpected</i> when its label's concept group "
        "differs from the class's (e.g. a class relying on a head labelled with a colour).</p>"
    )
    parts = []
    for r in run.of_dataset(dataset):
        body = reliance_summary(r) + unexpected_table(r, limit)
        if limit is None and r.reliance is not None:
            body += f"<details><summary>every listed pair</summary>{reliance_table(r)}</details>"
        parts.append(f"<h4>{escape(r.model.display)}</h4>{body}")
    return intro + "".join(parts) + _absent_models(run, dataset)


def truth_body(run: AttributionRun, dataset: str) -> str:
    """Per model with a truth file: its tables; a line when none has one."""
    intro = (
        "<p>Concept world only: a view ranks the scope's heads by its mean (highest first); "
        "precision@k is the fraction of the family's truth heads among its first k (k = the "
        "number of truth heads: R-precision).</p>"
    )
    parts = [
        f"<h4>{escape(r.model.display)}</h4>{truth_table(r)}"
        for r in run.of_dataset(dataset)
        if r.truth is not None
    ]
    if not parts:
        path = run.layout.attribution("<model>", dataset, "truth")
        text = f"no ground-truth check for {dataset} ({path}): only concept-world models and sets"
        return intro + f"<p>{missing(text)}</p>"
    return intro + "".join(parts)
