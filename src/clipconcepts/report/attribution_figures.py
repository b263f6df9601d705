"""Matplotlib figures of the head-attribution results (docs/attribution.md).

- `correlation_figure`: per model, the head-level Spearman correlation of every pair of views
  as a heat map (views x views, -1 blue to +1 red, the value written in each cell; the
  diagonal, absent from the file, grey).
- `deletion_figure`: per model, the deletion curves: mean 100·y against the number of heads
  deleted in each method's order, error bars over the interleaved subsets, the method's area
  (± its error) in the legend; the true effect's greedy order dashed, as a reference.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from clipconcepts.report.assets import dataset_name
from clipconcepts.report.attribution_inputs import (
    METHODS,
    AttributionResult,
    AttributionRun,
    method_name,
    ordered,
    view_name,
)
from clipconcepts.report.figures import fit_title, new_figure

METHOD_STYLE = {
    "atp": {"color": "#c44e52", "marker": "o"},
    "direct": {"color": "#dd8452", "marker": "s"},
    "ccs": {"color": "#4c72b0", "marker": "^"},
    "random": {"color": "#8172b2", "marker": "v"},
    "true": {"color": "#555555", "marker": "D", "linestyle": "--"},
}
OTHER_STYLE = {"color": "#937860", "marker": "x"}


def _grid(n: int, max_cols: int = 2) -> tuple[int, int]:
    ncols = min(max_cols, n)
    return -(-n // ncols), ncols


def correlation_matrix(r: AttributionResult) -> tuple[list[str], np.ndarray]:
    """(views, matrix of Spearman rho) of the head level; NaN where the file has no value."""
    views = r.head_views()
    matrix = np.full((len(views), len(views)), np.nan)
    for i, x in enumerate(views):
        for j, y in enumerate(views):
            row = None if x == y else r.correlation("head", x, y)
            if row is not None and row["spearman"] is not None:
                matrix[i, j] = row["spearman"]
    return views, matrix


def correlation_figure(run: AttributionRun, dataset: str) -> Figure | None:
    """A heat map per model with a correlations file; None when no model has one."""
    results = [r for r in run.of_dataset(dataset) if r.correlations is not None]
    results = [r for r in results if r.head_views()]
    if not results:
        return None
    nrows, ncols = _grid(len(results))
    size = max(len(r.head_views()) for r in results)
    panel = max(4.5, 0.62 * size + 1.6)
    fig = new_figure(panel * ncols + 0.8, (panel - 0.5) * nrows + 0.6)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    norm = Normalize(-1.0, 1.0)
    image = None
    for ax, r in zip(axes, results, strict=False):
        views, matrix = correlation_matrix(r)
        names = [view_name(v) for v in views]
        masked = np.ma.masked_invalid(matrix)
        cmap = _cmap()
        image = ax.imshow(masked, cmap=cmap, norm=norm, aspect="equal")
        for i in range(len(views)):
            for j in range(len(views)):
                v = matrix[i, j]
                if math.isnan(v):
                    continue
                ax.text(
                    j,
                    i,
                    f"{v:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if abs(v) > 0.6 else "black",
                )
        ax.set_xticks(range(len(views)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(views)), names, fontsize=8)
        ax.set_title(fit_title(r.model.display, 0.9 * panel, 10), fontsize=10)
    for ax in axes[len(results) :]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=axes[: len(results)].tolist(), shrink=0.8, label="Spearman ρ")
    title = f"{dataset_name(dataset)}: Spearman correlation of the head views across heads"
    fig.suptitle(fit_title(title, panel * ncols, 11), fontsize=11)
    return fig


def _cmap():
    return colormaps["RdBu_r"].with_extremes(bad="#dddddd")


def deletion_figure(run: AttributionRun, dataset: str) -> Figure | None:
    """Deletion curves per model with a deletion file; None when no model has one."""
    results = [r for r in run.of_dataset(dataset) if r.deletion is not None]
    if not results:
        return None
    nrows, ncols = _grid(len(results))
    width = 9.0
    fig = new_figure(width * ncols, 4.0 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax, r in zip(axes, results, strict=False):
        frame = r.deletion
        assert frame is not None
        for method in ordered(frame["method"].to_list(), list(METHODS)):
            sub = frame.filter(frame["method"] == method).sort("step")
            steps = sub["step"].to_numpy()
            y = sub["y100"].to_numpy().astype(float)
            err = sub["y100_err"].fill_null(float("nan")).to_numpy().astype(float)
            area, area_err = sub["area"][0], sub["area_err"][0]
            label = f"{method_name(method)}: area {area:.2f}"
            if area_err is not None and not math.isnan(area_err):
                label += f" ± {area_err:.2f}"
            style = {**OTHER_STYLE, **METHOD_STYLE.get(method, {})}
            ax.errorbar(
                steps,
                y,
                yerr=None if np.isnan(err).all() else err,
                capsize=3,
                markersize=4,
                linewidth=1.4,
                label=label,
                **style,
            )
        ax.set_xlabel("heads deleted (zeroed), each method's order per image")
        ax.set_ylabel("100 · y, mean over images")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(
            fontsize=7,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            frameon=False,
            title="method: area (lower = better)",
            title_fontsize=7,
        )
        ax.set_title(fit_title(r.model.display, 0.9 * width, 10), fontsize=10)
    for ax in axes[len(results) :]:
        ax.set_visible(False)
    title = f"{dataset_name(dataset)}: deletion curves of the head views"
    fig.suptitle(fit_title(title, width * ncols, 11), fontsize=11)
    return fig
