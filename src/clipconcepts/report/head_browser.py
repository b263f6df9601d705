"""The report's head browser (`#heads`): every analysed head on one page.

First a head index, one row per head (model, head, label, CCS per judge and majority, CCS and
concept groups, best AtP and true-effect ranks over the attribution sets, the concept world's
true family and its share), sortable by any column and filterable by label, group, model and
true family (`head_browser.js`, inlined: no network, works from `file://`). Then one card per
head, shown one at a time when its link is followed (from the index or from any table that names
the head): the 5 TEXTSPAN texts with their variance fractions and every judge's verdict, the
label, its effects (AtP, direct, true ablation per attribution set), the accuracy of every prune
set that zeroed it, and the probe images it writes most and least along its first TEXTSPAN
direction (`head_images.parquet`). A card's HTML waits in a `<template>` until it is opened and
the thumbnails sit once each in one JSON map, so the page renders the index only.

Size budget (docs/report.md): at most 15 MB of report for 96 heads; the thumbnails dominate
(16 per head of at most 64 px, JPEG ~3 KB for photographs, PNG ~1-2 KB for the concept world,
base64 x 4/3, each distinct image stored once).
"""

from __future__ import annotations

import json
import logging
from html import escape
from importlib import resources

from clipconcepts.report.head_inputs import HeadBrowserData, HeadRecord
from clipconcepts.report.head_links import head_link
from clipconcepts.report.tables import missing, ours, small, table

log = logging.getLogger(__name__)

BUDGET_MB_PER_96_HEADS = 15.0
EFFECT_COLUMNS = (
    ("atp_zero", "AtP (zero) ×100"),
    ("atp_mean", "AtP (mean) ×100"),
    ("direct", "Direct effect ×100"),
    ("true_zero", "True effect (zero) ×100"),
    ("true_mean", "True effect (mean) ×100"),
    ("acc_drop_zero", "Top-1 drop (zero), pp"),
)
MARKS = {True: ("✓", "yes"), False: ("✗", "no"), None: ("?", "unknown")}
SIDE_TITLES = {
    "top": "the {n} probe images it writes most along “{text}”",
    "bottom": "the {n} it writes least along it",
}


def _script() -> str:
    return resources.files("clipconcepts.report").joinpath("head_browser.js").read_text()


def _num(v) -> bool:
    return v is not None and v == v  # not None, not NaN


def _judge_title(judge: str) -> str:
    return "CCS (majority)" if judge == "majority" else f"CCS ({judge})"


# ------------------------------------------------------------------------------- index
def _th(title: str, kind: str | None = None, first: str = "ascending") -> str:
    """A header cell; sortable (a button) when `kind` is number or text."""
    if kind is None:
        return f"<th>{escape(title)}</th>"
    return (
        f'<th data-type="{kind}" data-first="{first}" aria-sort="none">'
        f'<button type="button" class="sort">{escape(title)}</button></th>'
    )


def _td(html: str, sort: object = None) -> str:
    value = "" if sort is None else escape(str(sort), quote=True)
    return f'<td data-sort="{value}">{html}</td>'


def _index(data: HeadBrowserData, several_models: bool) -> str:
    truth, effects = data.has("truth"), data.has("effects")
    header = [_th("Model", "text")] if several_models else []
    header += [_th("Head", "number"), _th("Label", "text")]
    header += [_th(_judge_title(j), "number", "descending") for j in data.judges]
    header.append(_th("Groups", "text"))
    if effects:
        header += [_th("AtP rank (best)", "number"), _th("True-effect rank (best)", "number")]
    if truth:
        header += [_th("True family", "text"), _th("Share", "number", "descending")]
    rows = []
    for h in data.heads:
        cells = [_td(escape(h.model.display), h.model.display)] if several_models else []
        cells.append(_td(head_link(h.model.key, h.name), h.layer * 10_000 + h.head))
        label = escape(h.label) if h.label is not None else missing("no valid label")
        cells.append(_td(label, h.label))
        for j in data.judges:
            v = h.ccs.get(j)
            shown = ours(str(v), model=h.model.key, head=h.name, judge=j, metric="ccs")
            cells.append(_td(shown if v is not None else missing("—"), v))
        cells.append(_td(escape(", ".join(h.groups)) or "—", " ".join(h.groups)))
        if effects:
            for view in ("atp_zero", "true_zero"):
                best = h.best_rank(view)
                if best is None:
                    cells.append(_td(missing("—")))
                    continue
                rank, dataset = best
                text = ours(f"#{rank}", model=h.model.key, head=h.name, metric=f"rank_{view}")
                cells.append(_td(text + small(dataset), rank))
        if truth:
            family = h.family or ("tie" if h.shares else None)
            cells.append(_td(escape(family or "—"), h.family))
            share = h.share
            cells.append(_td(f"{share:.2f}" if share is not None else "—", share))
        attrs = {
            "data-model": h.model.key,
            "data-anchor": h.anchor,
            "data-label": (h.label or "").lower(),
            "data-groups": " ".join(h.groups),
            "data-family": h.family or "",
        }
        attr = "".join(f' {k}="{escape(v, quote=True)}"' for k, v in attrs.items())
        rows.append(f"<tr{attr}>{''.join(cells)}</tr>")
    return (
        f'<table id="head-index" class="head-index"><thead><tr>{"".join(header)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _select(id_: str, title: str, options: list[tuple[str, str]]) -> str:
    items = '<option value="">any</option>' + "".join(
        f'<option value="{escape(v, quote=True)}">{escape(t)}</option>' for v, t in options
    )
    return f'<label>{escape(title)} <select id="{id_}">{items}</select></label>'


def _controls(data: HeadBrowserData, several_models: bool) -> str:
    groups = list(dict.fromkeys(g for h in data.heads for g in h.groups))
    order = {"high": 0, "moderate": 1, "low": 2}
    groups.sort(key=lambda g: (order.get(g, 3), g))
    parts = [
        '<label>Label contains <input type="search" id="head-filter-label" '
        'placeholder="e.g. color" autocomplete="off"></label>',
        _select("head-filter-group", "Group", [(g, g) for g in groups]),
    ]
    if several_models:
        models = list(dict.fromkeys((h.model.key, h.model.display) for h in data.heads))
        parts.append(_select("head-filter-model", "Model", models))
    if data.has("truth"):
        families = sorted({h.family for h in data.heads if h.family})
        parts.append(_select("head-filter-family", "True family", [(f, f) for f in families]))
    n = len(data.heads)
    parts.append(f'<span id="head-count">{n} of {n} heads</span>')
    return '<div class="hb-controls">' + " ".join(parts) + "</div>"


# ------------------------------------------------------------------------------- cards
def _summary(h: HeadRecord) -> str:
    ccs = ", ".join(
        f"{escape(j)} {ours(str(v), model=h.model.key, head=h.name, judge=j, metric='ccs')}"
        if v is not None
        else f"{escape(j)} —"
        for j, v in h.ccs.items()
    )
    invalid = sum(h.n_invalid.values())
    items = [f"<li>CCS: {ccs}" + (" (a verdict is invalid: a bound)" if invalid else "") + "</li>"]
    items.append(f"<li>Groups: {escape(', '.join(h.groups)) or 'none'}</li>")
    if h.shares:
        shares = sorted(h.shares.items(), key=lambda kv: -kv[1])
        text = ", ".join(
            (f"<b>{escape(f)} {s:.2f}</b>" if f == h.family else f"{escape(f)} {s:.2f}")
            for f, s in shares
        )
        head = f"true family {escape(h.family)}" if h.family else "no single true family (a tie)"
        items.append(f"<li>Ground truth: {head}; share of its variance per family: {text}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def _texts(h: HeadRecord, judges: list[str]) -> str:
    if not h.texts:
        return f"<p>{missing('no TEXTSPAN texts for this head')}</p>"
    shown = [j for j in judges if j in h.ccs]
    header = ["Rank", "Text", "Variance fraction", *[f"{j} verdict" for j in shown]]
    rows = []
    for t in h.texts:
        vf = (
            ours(f"{t.variance_fraction:.3f}", head=h.name, rank=t.rank, metric="variance_fraction")
            if _num(t.variance_fraction)
            else missing("—")
        )
        cells = [str(t.rank + 1), escape(t.text), vf]
        for j in shown:
            mark, cls = MARKS.get(t.verdicts.get(j), MARKS[None])
            cells.append(f'<span class="mark {cls}" data-judge="{escape(j)}">{mark}</span>')
        rows.append(cells)
    return table(header, rows, "hb-texts")


def _effects(h: HeadRecord, sets: list[str]) -> str:
    if not sets:
        return f"<p>{missing('the head-attribution stage did not run')}</p>"
    if not h.effects:
        return f"<p>{missing('no attribution results for this head')}</p>"
    header = ["Dataset", *[title for _, title in EFFECT_COLUMNS]]
    rows = []
    for e in h.effects:
        cells = [escape(e.dataset)]
        for view, _ in EFFECT_COLUMNS:
            v = e.values.get(view)
            if not _num(v):
                cells.append(missing("—"))
                continue
            text = f"{v:.2f}" if view == "acc_drop_zero" else f"{v * 100:.3f}"
            cell = ours(text, model=h.model.key, head=h.name, dataset=e.dataset, metric=view)
            rank = e.ranks.get(view)
            cells.append(cell + (small(f"#{rank}") if rank is not None else ""))
        rows.append(cells)
    return table(header, rows, "hb-effects")


def _pruned(h: HeadRecord) -> str:
    if not h.pruned:
        return f"<p>{missing('no prune set of this run zeroed this head')}</p>"
    header = ["Dataset", "Strategy", "Seed", "Heads zeroed", "Top-1 %", "Unpruned %", "Change, pp"]
    # video sets (the video stage's prune-schema files): the score is text-to-video R@1 in %
    rows = []
    for p in h.pruned:
        data = {"model": h.model.key, "head": h.name, "dataset": p.dataset}
        change = (
            ours(f"{p.top1 - p.original:+.2f}", metric="change", **data)
            if p.original is not None
            else missing("—")
        )
        rows.append(
            [
                escape(p.dataset),
                escape(p.strategy),
                str(p.seed),
                str(p.n_heads),
                ours(f"{p.top1:.2f}", strategy=p.strategy, seed=p.seed, metric="top1", **data),
                f"{p.original:.2f}" if p.original is not None else missing("—"),
                change,
            ]
        )
    return table(header, rows, "hb-pruned")


def _images(h: HeadRecord) -> str:
    if not h.images:
        return f"<p>{missing('no head images for this head (head_images.parquet)')}</p>"
    parts = []
    for side in ("top", "bottom"):
        chosen = [i for i in h.images if i.side == side]
        title = SIDE_TITLES[side].format(n=len(chosen), text=h.direction or "")
        figures = "".join(
            f'<figure><img data-thumb="{i.thumb}"'
            + (' class="lossless"' if i.mime == "image/png" else "")
            + f' alt="{escape(i.image_id, quote=True)}" '
            f'width="{i.width}" height="{i.height}" '
            f'title="{escape(i.image_id, quote=True)} (label {i.label}): {i.projection:.4f}">'
            f"<figcaption>{i.projection:.3f}</figcaption></figure>"
            for i in chosen
        )
        parts.append(
            f'<p class="note">{escape(title[0].upper() + title[1:])} (projection under each):</p>'
            f'<div class="hb-thumbs" data-side="{side}">{figures}</div>'
        )
    return "".join(parts)


def _card(
    h: HeadRecord, data: HeadBrowserData, prev: HeadRecord | None, nxt: HeadRecord | None
) -> str:
    label = f"“{h.label}”" if h.label is not None else "(no valid label)"
    nav = ['<a href="#head-index">back to the index</a>']
    if prev is not None:
        nav.append("← " + head_link(prev.model.key, prev.name))
    if nxt is not None:
        nav.append(head_link(nxt.model.key, nxt.name) + " →")
    body = (
        f"<h3>{escape(h.model.display)} · {escape(h.name)} {escape(label)}</h3>"
        f'<p class="hb-nav">{" · ".join(nav)}</p>'
        + _summary(h)
        + "<h4>What it writes: TEXTSPAN texts</h4>"
        + _texts(h, data.judges)
        + "<h4>What removing it costs: effects (attribution)</h4>"
        + _effects(h, data.attribution_sets)
        + "<h4>Accuracy with it pruned</h4>"
        + _pruned(h)
        + "<h4>Images it writes most and least for</h4>"
        + _images(h)
    )
    return (
        f'<article class="head-card" id="{escape(h.anchor, quote=True)}" '
        f'data-model="{escape(h.model.key, quote=True)}" data-head="{h.name}" hidden>'
        f"<template>{body}</template></article>"
    )


# ------------------------------------------------------------------------------- section
def section_body(data: HeadBrowserData) -> str:
    """The browser's HTML (controls, index, cards, thumbnails, script), or a line saying why
    there is none."""
    if not data.heads:
        return f"<p>{missing('no analysed heads: no model has a ccs.parquet')}</p>"
    several = len({h.model.key for h in data.heads}) > 1
    notes = []
    for key, paths in data.missing.items():
        if paths:
            names = ", ".join(str(p) for p in paths)
            notes.append(
                f"<p>{missing(f'{key}: absent {names} (the cards say what it lacks)')}</p>"
            )
    cards = "".join(
        _card(
            h,
            data,
            data.heads[i - 1] if i else None,
            data.heads[i + 1] if i + 1 < len(data.heads) else None,
        )
        for i, h in enumerate(data.heads)
    )
    thumbs = json.dumps(data.thumbs, separators=(",", ":")).replace("</", "<\\/")
    intro = (
        "<p>Every analysed head on one page. The index joins, per head, what an LLM calls it "
        "(label, CCS per judge), the groups it belongs to (CCS groups; concept groups: a concept "
        "strategy pruned it), its best rank by attribution patching (AtP, zero baseline) and by "
        "the true effect of ablating it over the attribution sets (1 = largest) and, in the "
        "concept world, the family it writes most and that family's share of its variance. "
        "Sort by a column with its header (again to reverse), filter with the fields above the index, "
        "and open a head's card with its link: its TEXTSPAN texts with their variance fractions "
        "and each judge's verdict, its effects, the accuracy of every prune set that zeroed it, "
        "and the probe images whose contribution from the head projects most and least on its "
        "first TEXTSPAN text.</p>"
        "<noscript><p>The sorting, filtering and head cards need JavaScript.</p></noscript>"
    )
    return (
        intro
        + "".join(notes)
        + _controls(data, several)
        + '<div class="hb-index">'
        + _index(data, several)
        + "</div>"
        + f'<div id="head-cards">{cards}</div>'
        + f'<script type="application/json" id="head-thumbs">{thumbs}</script>'
        + f"<script>{_script()}</script>"
    )


def section(data: HeadBrowserData) -> str:
    body = section_body(data)
    size = len(body.encode("utf-8"))
    n = max(1, len(data.heads))
    budget = BUDGET_MB_PER_96_HEADS * 1e6 * n / 96
    log.info(
        "head browser: %d heads, %.2f MB (budget %.2f MB)",
        len(data.heads),
        size / 1e6,
        budget / 1e6,
    )
    if size > budget:
        log.warning(
            "head browser is %.1f MB for %d heads, over its budget of %.1f MB "
            "(15 MB per 96 heads): lower report.head_images.thumbnail_px",
            size / 1e6,
            len(data.heads),
            budget / 1e6,
        )
    return f'<section id="heads"><h2>Head browser</h2>{body}</section>'
