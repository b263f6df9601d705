"""Matplotlib figures of the mutual-knowledge results (Sammani & Deligiannis, NeurIPS 2024).

- `dynamics_figure`: Figure 3's form for one mutual set: (left) the MI dynamics, the dataset's
  averaged removal curve per model (x = descriptors removed, y = MI; PCA solid, K-means dashed);
  (right) top-1 accuracy against AUC per model, with a least-squares line `top-1 = a·AUC + b`
  per model family (ViT / ResNet / ConvNeXt from the arch name, as the paper fits its ViTs:
  11.24·AUC + 25.97) and method, where a family has >= 2 distinct AUC values; the paper's
  Table 3 values of matched models as hollow diamonds on its dataset.
- `panel_figure`: Figure 1's form for one model and set: per example image (those with a
  thumbnail) and method, the model-input image upscaled by nearest neighbour with the concept
  ellipses (one colour per concept), and beside it the mutual descriptors D_v (most important
  first; ✓ = shared with the class side), the true and predicted class and the MI.

Ellipses are OpenCV RotatedRects in pixels of the squashed model input (`image_size`): centre,
full axis lengths, angle in degrees (clockwise on screen, y down). Pixel centres are at integer
coordinates there, so a point x is drawn at (x + 0.5)·s in the display image of `s` times the
size; lengths are scaled by s = display_size / image_size.
"""

from __future__ import annotations

import io
import math
import textwrap

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse
from matplotlib.ticker import MaxNLocator
from PIL import Image

from clipconcepts.report.assets import dataset_name
from clipconcepts.report.figures import PAPER_MARKER, fit_title, new_figure
from clipconcepts.report.mutual_inputs import MutualResult, MutualRun, method_order, model_family
from clipconcepts.report.mutual_tables import example_images, method_name
from clipconcepts.report.paper import PaperValues

MODEL_COLORS = (
    "#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b2",
    "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd",
)  # fmt: skip
FAMILY_COLORS = {"ViT": "#4c72b0", "ResNet": "#55a868", "ConvNeXt": "#c44e52", "other": "#8172b2"}
LINESTYLES = {"pca": "-", "kmeans": "--"}
# One colour per concept id, distinct from each other (the visual prompts are red outlines).
CONCEPT_COLORS = (
    "#ffe119", "#3cb44b", "#42d4f4", "#f032e6", "#f58231",
    "#4363d8", "#e6194b", "#911eb4", "#bfef45", "#000075",
)  # fmt: skip
DISPLAY_PX = 224  # thumbnails are upscaled by an integer factor to at least this size
WRAP = 34  # characters per descriptor line in a panel


# ------------------------------------------------------------------------------- Figure 3
def _linestyle(method: str) -> str:
    return LINESTYLES.get(method, ":")


def least_squares(auc: list[float], top1: list[float]) -> tuple[float, float] | None:
    """(slope, intercept) of top-1 on AUC; None with fewer than 2 distinct AUC values."""
    if len(set(auc)) < 2:
        return None
    slope, intercept = np.polyfit(np.asarray(auc, float), np.asarray(top1, float), 1)
    return float(slope), float(intercept)


def line_text(slope: float, intercept: float) -> str:
    """'11.24·AUC + 25.97' (a minus sign for a negative intercept)."""
    sign = "+" if intercept >= 0 else "−"
    return f"{slope:.2f}·AUC {sign} {abs(intercept):.2f}"


def dynamics_figure(run: MutualRun, mutual_set: str, values: PaperValues):
    """Figure 3's form for `mutual_set`; None when no model has a summary for it."""
    results = [r for r in run.of_set(mutual_set) if r.summary is not None]
    if not results:
        return None
    fig = new_figure(12.0, 4.6)
    left, right = fig.subplots(1, 2, width_ratios=[1.15, 1])
    points: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for i, r in enumerate(results):
        color = MODEL_COLORS[i % len(MODEL_COLORS)]
        family = model_family(r.model.arch)
        for method, row in r.dataset_rows().items():
            curve = np.asarray(row["curve"] or [], float)
            if curve.size:
                left.plot(
                    np.arange(curve.size),
                    curve,
                    _linestyle(method),
                    color=color,
                    label=f"{r.model.display}, {method_name(method)} (AUC {row['auc']:.2f})",
                )
            if row["top1"] is not None and not math.isnan(row["top1"]):
                points.setdefault((family, method), []).append((row["auc"], row["top1"]))
                right.plot(
                    [row["auc"]],
                    [row["top1"]],
                    "o",
                    color=FAMILY_COLORS[family],
                    markerfacecolor=FAMILY_COLORS[family] if method == "pca" else "white",
                    linestyle="none",
                )
        last = next(iter(r.dataset_rows().values()), None)
        if last is not None:
            right.annotate(
                r.model.display,
                (last["auc"], last["top1"]),
                xytext=(4, 4),
                textcoords="offset points",
                fontsize=7,
            )
        published = values.mutual(r.paper_name, mutual_set)
        if published is not None:
            for method in ("pca", "kmeans"):
                right.plot(
                    [published[f"auc_{method}"]],
                    [published["top1"]],
                    linestyle="none",
                    **PAPER_MARKER,
                )
    left.set_xlabel("descriptors of D_v removed (most important first)")
    left.set_ylabel("MI (nats), averaged over images")
    left.set_ylim(bottom=0)
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_title("MI dynamics (solid: PCA, dashed: K-means)", fontsize=10)
    left.legend(fontsize=7, loc="upper right")

    handles = []
    for (family, method), pts in sorted(
        points.items(), key=lambda kv: (kv[0][0], kv[0][1] != "pca")
    ):
        fit = least_squares([p[0] for p in pts], [p[1] for p in pts])
        if fit is None:
            continue
        xs = np.linspace(min(p[0] for p in pts), max(p[0] for p in pts), 2)
        label = f"{family}, {method_name(method)}: top-1 = {line_text(*fit)}"
        (line,) = right.plot(
            xs, fit[0] * xs + fit[1], _linestyle(method), color=FAMILY_COLORS[family], label=label
        )
        handles.append(line)
    families = sorted({f for f, _ in points})
    for family in families:
        handles.append(
            Line2D([], [], marker="o", linestyle="none", color=FAMILY_COLORS[family], label=family)
        )
    handles.append(
        Line2D([], [], marker="o", linestyle="none", color="black", markerfacecolor="white",
               label="hollow: K-means, filled: PCA")
    )  # fmt: skip
    if any(values.mutual(r.paper_name, mutual_set) for r in results):
        handles.append(Line2D([], [], linestyle="none", label="paper", **PAPER_MARKER))
    right.legend(handles=handles, fontsize=7, loc="best")
    right.set_xlabel("AUC of the MI dynamics")
    right.set_ylabel("top-1 accuracy (%)")
    right.set_title("Accuracy vs AUC, least-squares line per family (≥ 2 models)", fontsize=10)
    title = f"{dataset_name(mutual_set)}: mutual knowledge of the image and text encoders"
    fig.suptitle(fit_title(title, 11.5, 12), fontsize=12)
    return fig


# ------------------------------------------------------------------------------- Figure 1
def decode_png(data: bytes) -> np.ndarray:
    """RGB uint8 [H, W, 3] of a PNG."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def upscale(image: np.ndarray, size: int) -> np.ndarray:
    """`image` resized to size x size by nearest neighbour."""
    h, w = image.shape[:2]
    rows = np.arange(size) * h // size
    cols = np.arange(size) * w // size
    return image[rows][:, cols]


def display_size(image_size: int) -> int:
    """The smallest integer multiple of `image_size` that is at least DISPLAY_PX."""
    return image_size * max(1, math.ceil(DISPLAY_PX / image_size))


def _concept_color(concept: int) -> str:
    return CONCEPT_COLORS[concept % len(CONCEPT_COLORS)]


def draw_ellipses(ax, ellipses: list[dict], scale: float) -> list[int]:
    """The concept ellipses on `ax` (display pixels, y down); returns the concept ids drawn."""
    drawn = []
    for e in ellipses:
        color = _concept_color(e["concept"])
        ax.add_patch(
            Ellipse(
                ((e["cx"] + 0.5) * scale, (e["cy"] + 0.5) * scale),
                e["width"] * scale,
                e["height"] * scale,
                angle=e["angle"],
                fill=False,
                edgecolor=color,
                linewidth=2.0,
            )
        )
        drawn.append(e["concept"])
    return drawn


def _text_panel(ax, row: dict, method: str) -> None:
    ax.set_axis_off()
    mark = "✓" if row["correct"] else "✗"
    lines = [
        (f"true: {row['classname']}", "black", "normal"),
        (f"predicted: {row['predicted_name']} {mark}", "black", "normal"),
        (f"{method_name(method)} concepts · MI {row['mi']:.2f}", "#444444", "normal"),
    ]
    if row["status"] != "ok":
        lines.append((row["status"].replace("_", " ") + ": D_v empty", "#b36b00", "normal"))
    lines.append(
        ("mutual descriptors D_v:" + ("" if row["dv_ids"] else " (none)"), "black", "bold")
    )
    shared = set(row["shared_ids"] or [])
    for n, (text, i) in enumerate(zip(row["dv_texts"], row["dv_ids"], strict=False), start=1):
        is_shared = i in shared
        wrapped = textwrap.wrap(f"{n}. {text}" + ("  ✓ shared" if is_shared else ""), WRAP)
        for j, piece in enumerate(wrapped):
            lines.append(
                (piece if j == 0 else "    " + piece, "#1d5e1d" if is_shared else "black",
                 "bold" if is_shared else "normal")
            )  # fmt: skip
    step = min(0.085, 1.0 / max(len(lines), 1))
    for k, (text, color, weight) in enumerate(lines):
        ax.text(0.0, 1.0 - k * step, text, fontsize=8, color=color, weight=weight, va="top")


def panel_figure(r: MutualResult, n_examples: int):
    """Figure 1's form for one model and set; None without a thumbnail."""
    ids = example_images(r, n_examples)
    if not ids:
        return None
    frame = r.examples
    assert frame is not None
    per_image = []
    for image_id in ids:
        rows = {x["method"]: x for x in frame.iter_rows(named=True) if x["image_id"] == image_id}
        per_image.append((image_id, [(m, rows[m]) for m in method_order(list(rows))]))
    n_methods = max(len(p[1]) for p in per_image)
    fig = new_figure(5.6 * n_methods, 2.9 * len(per_image))
    axes = fig.subplots(
        len(per_image), 2 * n_methods, squeeze=False, width_ratios=[1, 1.5] * n_methods
    )
    for (image_id, methods), ax_row in zip(per_image, axes, strict=True):
        for j, (method, row) in enumerate(methods):
            image = decode_png(row["thumbnail"])
            size = r.image_size or image.shape[1]
            shown = display_size(size)
            scale = shown / size
            ax = ax_row[2 * j]
            ax.imshow(upscale(image, shown), extent=(0, shown, shown, 0), interpolation="none")
            concepts = draw_ellipses(ax, row["ellipses"] or [], scale)
            ax.set_xlim(0, shown)
            ax.set_ylim(shown, 0)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{image_id} ({method_name(method)})", fontsize=8)
            if concepts:
                handles = [
                    Line2D([], [], marker="o", linestyle="none", markerfacecolor="none",
                           markeredgewidth=2, markeredgecolor=_concept_color(c),
                           label=f"concept {c}")
                    for c in dict.fromkeys(concepts)
                ]  # fmt: skip
                ax.legend(
                    handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                    ncol=3, fontsize=6, frameon=False, handletextpad=0.2, columnspacing=0.8,
                )  # fmt: skip
            _text_panel(ax_row[2 * j + 1], row, method)
        for ax in ax_row[2 * len(methods) :]:
            ax.set_visible(False)
    title = f"{r.model.display} on {dataset_name(r.mutual_set)}: mutual concepts"
    fig.suptitle(fit_title(title, 5.4 * n_methods, 11), fontsize=11)
    return fig
