"""Matplotlib figures of a run's results (object API on the Agg canvas: no pyplot state, no
display), saved as SVG (text kept as text, reproducible ids) or PNG.

- `ccs_at_k_figure`: CCS@K distribution per model, ours beside the paper's (Table 3).
- `pruning_figure`: Figure 2's form for one dataset: original / high / low / random (mean over
  seeds, error bar = sample std) per model; the paper's Tables 4-6 values as hollow diamonds.
- `concept_figure`: Figures 3-4's form: original vs pruning each concept group, per dataset.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from clipconcepts.report.assets import dataset_name
from clipconcepts.report.inputs import (
    BASE_STRATEGIES,
    RunData,
    StrategySummary,
    concept_group,
    majority_rows,
)
from clipconcepts.report.paper import PaperValues
from clipconcepts.report.tables import concept_strategies, concept_title

COLORS = {"original": "#4c72b0", "high": "#c44e52", "low": "#55a868", "random": "#8172b2"}
LABELS = {"original": "original", "high": "high CCS pruned", "low": "low CCS pruned"}
CONCEPT_COLORS = ("#dd8452", "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd")
PAPER_MARKER = {"marker": "D", "markerfacecolor": "none", "markeredgecolor": "black", "ms": 6}
SAVE_RC = {"svg.hashsalt": "clipconcepts", "svg.fonttype": "none"}
# Average glyph width as a fraction of the font size, on the wide side: SVG text is drawn by the
# browser, possibly in a wider fallback font than the DejaVu Sans matplotlib measured with.
CHAR_WIDTH_EM = 0.62


def fit_title(text: str, width_in: float, fontsize: float) -> str:
    """`text` wrapped into lines that fit `width_in` inches at `fontsize` points (a title that
    is wider than its figure is clipped at the canvas edge)."""
    chars = max(10, int(width_in * 72 / (CHAR_WIDTH_EM * fontsize)))
    return "\n".join(textwrap.wrap(text, chars)) or text


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_svg(fig: Figure) -> str:
    """The figure as an SVG document (deterministic: fixed id salt, no date)."""
    buf = io.StringIO()
    with matplotlib.rc_context(SAVE_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def to_png(fig: Figure, dpi: int = 120) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def message_figure(text: str) -> Figure:
    """A placeholder saying why there is no figure (so every report asset exists)."""
    fig = new_figure(6, 1.2)
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=11)
    return fig


# ------------------------------------------------------------------------------- CCS@K
def ccs_at_k_figure(run: RunData, values: PaperValues) -> Figure | None:
    """Bars of CCS@K (fraction of heads) per model: ours, and the paper's (grey, hatched)."""
    data = []
    for m in run.models:
        frame = run.ccs_at_k[m.key]
        if frame is None:
            continue
        mine, judge = majority_rows(frame)
        if judge is None or mine.is_empty():
            continue
        mine = mine.sort("k")
        data.append((m, mine["k"].to_numpy(), mine["fraction"].to_numpy(), judge))
    if not data:
        return None
    ncols = min(3, len(data))
    nrows = -(-len(data) // ncols)
    fig_width = 4.2 * ncols
    fig = new_figure(fig_width, 3.2 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax, (m, ks, fractions, judge) in zip(axes, data, strict=False):
        published = values.ccs_at_k(m.paper_name)
        width = 0.4 if published else 0.7
        offset = -width / 2 if published else 0.0
        ax.bar(ks + offset, fractions, width, color=COLORS["original"], label=f"this run ({judge})")
        if published:
            pk = np.arange(len(published))
            ax.bar(
                pk + width / 2,
                published,
                width,
                color="#bbbbbb",
                hatch="//",
                edgecolor="#777777",
                label=f"paper ({values.ccs_at_k_source})",
            )
        top = max([*fractions, *(published or [])], default=0.0)
        ax.set_ylim(0, 1.3 * top if top > 0 else 1.0)  # headroom for the legend
        ax.set_xticks(ks)
        ax.set_xlabel("CCS = K (texts of 5 that fit the head's label)")
        ax.set_ylabel("CCS@K (fraction of heads)")
        ax.set_title(fit_title(m.display, 0.9 * fig_width / ncols, 10), fontsize=10)
        ax.legend(fontsize=8)
    for ax in axes[len(data) :]:
        ax.set_visible(False)
    title = "CCS@K: distribution of concept consistency over heads"
    fig.suptitle(fit_title(title, 0.95 * fig_width, 12), fontsize=12)
    return fig


# ------------------------------------------------------------------------------- pruning
def _bar(ax, x: float, s: StrategySummary | None, width: float, color: str, label: str | None):
    if s is None:
        return
    err = s.top1_std if s.n_runs > 1 else None
    ax.bar(x, s.top1_mean, width, yerr=err, capsize=3, color=color, label=label)
    if s.is_empty and s.strategy != "original":
        ax.annotate(
            "0 heads",
            (x, s.top1_mean),
            xytext=(0, -4),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=7,
            rotation=90,
            color="white",
        )


def random_seed_counts(run: RunData, dataset: str) -> list[int]:
    """Number of random-pruning runs per model that has any."""
    counts = []
    for m in run.models:
        s = (run.prune.get((m.key, dataset)) or {}).get("random")
        if s is not None:
            counts.append(s.n_runs)
    return counts


def _grouped_bars(
    ax,
    run: RunData,
    dataset: str,
    strategies: Sequence[str],
    labels: Sequence[str],
    colors: Sequence[str],
    paper_of,
) -> int | None:
    """Bars per model (x) and strategy; `paper_of(model, strategy)` gives a paper value or None.
    Returns the number of paper markers drawn, None when no model has results for `dataset`."""
    models = [m for m in run.models if run.prune.get((m.key, dataset)) is not None]
    if not models:
        return None
    width = 0.8 / len(strategies)
    seen_labels: set[str] = set()
    n_paper = 0
    for i, m in enumerate(models):
        summaries = run.prune[(m.key, dataset)] or {}
        for j, (s, label, color) in enumerate(zip(strategies, labels, colors, strict=True)):
            x = i - 0.4 + width * (j + 0.5)
            first = label not in seen_labels and s in summaries
            if first:
                seen_labels.add(label)
            _bar(ax, x, summaries.get(s), width, color, label if first else None)
            value = paper_of(m, s)
            if value is not None:
                ax.plot(
                    [x],
                    [value],
                    linestyle="none",
                    **PAPER_MARKER,
                    label=None if n_paper else "paper",
                )
                n_paper += 1
    ax.set_xticks(range(len(models)), [m.display for m in models], fontsize=8)
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return n_paper


def pruning_figure(run: RunData, dataset: str, values: PaperValues) -> Figure | None:
    """Figure 2's form for one dataset; None when no model has results for it."""
    seeds = sorted(set(random_seed_counts(run, dataset)))
    seed_text = "/".join(str(n) for n in seeds) if seeds else "0"
    labels = [
        LABELS["original"],
        LABELS["high"],
        LABELS["low"],
        f"random (mean ± std, {seed_text} seeds)",
    ]
    n_models = sum(run.prune.get((m.key, dataset)) is not None for m in run.models)
    fig = new_figure(max(6.5, 1.6 * n_models + 4), 3.6)
    ax = fig.subplots()

    def paper_of(m, s):
        return (values.pruning(m.paper_name, dataset) or {}).get(s)

    colors = [COLORS[s] for s in BASE_STRATEGIES]
    n_paper = _grouped_bars(ax, run, dataset, BASE_STRATEGIES, labels, colors, paper_of)
    if n_paper is None:
        return None
    source = values.pruning_source(dataset)
    ax.set_title(
        f"{dataset_name(dataset)}: zero-shot top-1 under pruning"
        + (f" (◇ = paper, {source})" if n_paper else ""),
        fontsize=10,
    )
    return fig


def concept_figure(run: RunData, datasets: Sequence[str], values: PaperValues) -> Figure | None:
    """Figures 3-4's form: a panel per dataset with concept strategies; None if there are none."""
    panels = [(d, concept_strategies(run, d)) for d in datasets]
    panels = [(d, s) for d, s in panels if s]
    if not panels:
        return None
    fig = new_figure(9.0, 3.4 * len(panels))
    axes = np.atleast_1d(fig.subplots(len(panels), 1, squeeze=False).ravel())
    for ax, (dataset, strategies) in zip(axes, panels, strict=True):
        names = ["original", *strategies]
        labels = [LABELS["original"], *[concept_title(s) for s in strategies]]
        colors = [
            COLORS["original"],
            *[CONCEPT_COLORS[i % len(CONCEPT_COLORS)] for i in range(len(strategies))],
        ]

        def paper_of(m, s, dataset=dataset):
            published = values.concept(m.paper_name, dataset)
            if published is None:
                return None
            if s == "original":
                return published.original
            return published.pruned.get(concept_group(s)[0])

        n_paper = _grouped_bars(ax, run, dataset, names, labels, colors, paper_of)
        ax.set_title(
            f"{dataset_name(dataset)}: concept-specific pruning"
            + (" (◇ = paper, section 5.5)" if n_paper else ""),
            fontsize=10,
        )
    return fig
