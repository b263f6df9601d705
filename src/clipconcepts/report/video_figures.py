"""Figure 5's form (CCS paper section 5.6): text-to-video R@1/5/10 per pruning strategy.

One panel per model with results on the video set: a group of bars per metric (R@1, R@5,
R@10), a bar per strategy (original, high, low, random: mean over seeds with the sample std as
error bar, then concept and manual strategies); the chance R@K of a random ranking as a dashed
black line across each group. A strategy that pruned no head is marked "0 heads".
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from clipconcepts.report.assets import dataset_name
from clipconcepts.report.figures import COLORS, CONCEPT_COLORS, LABELS, fit_title, new_figure
from clipconcepts.report.video_inputs import CHANCE, VideoResult, VideoRun
from clipconcepts.report.video_tables import METRIC_NAMES, strategy_name

DIRECTION = "t2v"


def _label(r: VideoResult, strategy: str) -> str:
    if strategy == "random":
        s = r.get(strategy, DIRECTION)
        n = s.n_runs if s is not None else 0
        return f"random pruned (mean ± std, {n} seeds)"
    return LABELS.get(strategy, strategy_name(strategy))


def _colors(strategies: list[str]) -> dict[str, str]:
    out, k = {}, 0
    for s in strategies:
        if s in COLORS:
            out[s] = COLORS[s]
        else:
            out[s] = CONCEPT_COLORS[k % len(CONCEPT_COLORS)]
            k += 1
    return out


def _panel(ax, r: VideoResult) -> None:
    strategies = [s for s in r.strategies() if r.get(s, DIRECTION) is not None]
    colors = _colors(strategies)
    width = 0.84 / max(len(strategies), 1)
    for j, strategy in enumerate(strategies):
        s = r.get(strategy, DIRECTION)
        assert s is not None
        xs = np.arange(len(CHANCE)) - 0.42 + width * (j + 0.5)
        means = [s.mean[m] for m in CHANCE]
        stds = [s.std[m] for m in CHANCE]
        err = [v or 0.0 for v in stds] if s.n_runs > 1 else None
        ax.bar(
            xs, means, width, yerr=err, capsize=2, color=colors[strategy],
            label=_label(r, strategy),
        )  # fmt: skip
        if s.is_empty and strategy != "original":
            for x, y in zip(xs, means, strict=True):
                ax.annotate(
                    "0 heads", (x, y), xytext=(0, -4), textcoords="offset points",
                    ha="center", va="top", fontsize=6, rotation=90, color="white",
                )  # fmt: skip
    first = r.get(strategies[0], DIRECTION) if strategies else None
    if first is not None:
        for i, m in enumerate(CHANCE):
            v = first.chance[m]
            if v is not None:
                ax.hlines(v, i - 0.46, i + 0.46, colors="black", linestyles="--", linewidth=1.2)
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], color="black", linestyle="--", label="chance (random ranking)"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              frameon=False)  # fmt: skip
    ax.set_xticks(range(len(CHANCE)), [f"{METRIC_NAMES[m]}" for m in CHANCE])
    ax.set_ylabel("text-to-video recall (%)")
    ax.set_ylim(0, 105)
    ax.set_title(fit_title(r.model.display, 6.0, 10), fontsize=10)


def retrieval_figure(run: VideoRun, video_set: str) -> Figure | None:
    """Figure 5's form for one video set; None when no model has t2v results for it."""
    results = [r for r in run.of_set(video_set) if any(d == DIRECTION for _, d in r.summary)]
    if not results:
        return None
    n_strategies = max(len(r.strategies()) for r in results)
    fig = new_figure(max(9.0, 5.5 + 0.35 * n_strategies), 3.8 * len(results))
    axes = np.atleast_1d(fig.subplots(len(results), 1, squeeze=False).ravel())
    for ax, r in zip(axes, results, strict=True):
        _panel(ax, r)
    title = f"{dataset_name(video_set)}: zero-shot text-to-video retrieval under head pruning"
    fig.suptitle(fit_title(title, 9.0, 11), fontsize=11)
    return fig
