"""Deletion curves: how fast `y` falls when heads are deleted in each method's order.

Per image, a method orders the heads of the pool (the ablation scope) by its signed score for
that image, highest first; step `s` zeroes the top `s` heads and re-runs the model, for
`s = 0 .. num_steps` (0 = unperturbed), tracking `100 y`. A method's area is the mean of all
points of all images' curves (the unperturbed one included): the lower, the more faithfully its
order finds the heads `y` relies on (Dreyer et al.'s faithfulness evaluation).

Methods: `atp` (AtP, zero baseline), `direct` (direct effect), `ccs` (CCS, highest first; the
same for every image, ties broken by a seeded random order per image), `random` (a seeded
random order per image), and `true` (the heads' single-head true effect: the greedy order the
other methods try to approximate, a reference rather than a method).

Error bars: the images are dealt into `subsets` interleaved subsets (image i of the sample into
subset i mod subsets); a number's error is the standard deviation (ddof 0) of its value over
the subsets divided by sqrt(subsets) (the reference's 9 subsets and / 3).

Per image the deleted sets differ, so every (method, step) runs as rows of one stacked batch
with per-row head masks (`HeadAwareCLIP.encode_from_residual(keep=...)`), sharing the layers
before the pool's first layer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import polars as pl
import torch

from clipconcepts.attribution.schemas import DELETION
from clipconcepts.attribution.targets import Target, target_cosine, wide

log = logging.getLogger(__name__)

Head = tuple[int, int]
METHODS = ("atp", "direct", "ccs", "random", "true")
_SCORE_OF = {"atp": ("scores", "atp_zero"), "direct": ("scores", "direct")}


def _matrix(frame: pl.DataFrame, column: str, ids: list[str], pool: list[Head]) -> np.ndarray:
    """`[len(ids), len(pool)]` values of `column` (NaN where missing)."""
    index = pl.DataFrame(
        {
            "layer": [h[0] for h in pool],
            "head": [h[1] for h in pool],
            "_col": list(range(len(pool))),
        },
        schema={"layer": pl.Int16, "head": pl.Int16, "_col": pl.Int64},
    )
    rows = pl.DataFrame({"image_id": ids, "_row": list(range(len(ids)))})
    cells = (
        frame.select(
            "image_id", pl.col("layer").cast(pl.Int16), pl.col("head").cast(pl.Int16), column
        )
        .join(index, on=["layer", "head"])
        .join(rows, on="image_id")
    )
    out = np.full((len(ids), len(pool)), np.nan)
    out[cells["_row"].to_numpy(), cells["_col"].to_numpy()] = cells[column].to_numpy()
    return out


def _descending(values: np.ndarray) -> np.ndarray:
    """Per row, column indices by value, highest first (NaN last, ties by column order)."""
    keyed = np.where(np.isnan(values), -np.inf, values)
    return np.argsort(-keyed, axis=1, kind="stable")


def deletion_orders(
    ids: list[str],
    pool: list[Head],
    scores: pl.DataFrame,
    ablation: pl.DataFrame,
    ccs: dict[Head, float],
    methods: Sequence[str] = METHODS,
    seed: int = 0,
) -> dict[str, dict[str, np.ndarray]]:
    """Per method and image id, the pool's indices in deletion order."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown deletion methods {unknown}; choose from {', '.join(METHODS)}")
    orders = {}
    n, k = len(ids), len(pool)
    for method in methods:
        if method in _SCORE_OF:
            values = _matrix(scores, _SCORE_OF[method][1], ids, pool)
            missing = np.isnan(values).all(axis=1)
            if missing.any():
                raise ValueError(
                    f"deletion ({method}): no scores for image {ids[int(np.argmax(missing))]}"
                )
            orders[method] = _descending(values)
        elif method == "true":
            orders[method] = _descending(_matrix(ablation, "true_zero", ids, pool))
        elif method == "random":
            rng = np.random.default_rng([seed, 0])
            orders[method] = np.stack([rng.permutation(k) for _ in range(n)])
        elif method == "ccs":
            values = np.array([ccs.get(h, np.nan) for h in pool], dtype=float)
            if np.isnan(values).any():
                log.warning(
                    "deletion (ccs): %d of %d heads have no CCS and come last",
                    int(np.isnan(values).sum()),
                    k,
                )
            rng = np.random.default_rng([seed, 1])
            rows = []
            for _ in range(n):
                shuffle = rng.permutation(k)
                rows.append(shuffle[_descending(values[shuffle][None])[0]])
            orders[method] = np.stack(rows)
    return {m: dict(zip(ids, arr, strict=True)) for m, arr in orders.items()}


@torch.no_grad()
def deletion_points(
    clip,
    batches: Callable[[], Iterable],
    target: Target,
    pool: list[Head],
    orders: dict[str, dict[str, np.ndarray]],
    num_steps: int = 5,
    sets_per_pass: int = 8,
) -> pl.DataFrame:
    """`image_id, method, step, y100` for steps 0 .. num_steps (capped at the pool size).

    `orders[method][image_id]` is that image's pool indices in deletion order.
    """
    if not pool:
        raise ValueError("deletion: no heads in the pool")
    steps = min(num_steps, len(pool))
    start = min(layer for layer, _ in pool)
    groups = [(m, s) for m in orders for s in range(1, steps + 1)]
    out: dict[str, list] = {"image_id": [], "method": [], "step": [], "y100": []}
    for images, ids, labels in batches():
        unknown = [i for i in ids if i not in orders[next(iter(orders))]]
        if unknown:
            raise ValueError(
                f"deletion: image {unknown[0]} has no scores (the scores were computed on "
                "another sample: n_images, seed)"
            )
        residual = clip.residual_before(images, start)
        clean = wide(clip.encode_from_residual(residual, start))
        rows = target.resolve(clean, labels.to(clip.device))
        y0 = target_cosine(clean, target.text, rows).cpu().double().numpy()
        B = len(ids)
        for method in orders:
            _emit(out, ids, method, 0, y0)
        for first in range(0, len(groups), sets_per_pass):
            chunk = groups[first : first + sets_per_pass]
            keep: dict[int, torch.Tensor] = {}
            for g, (method, step) in enumerate(chunk):
                for b, image_id in enumerate(ids):
                    for idx in orders[method][image_id][:step]:
                        layer, head = pool[int(idx)]
                        if layer not in keep:
                            keep[layer] = torch.ones(
                                len(chunk) * B, clip.n_heads, device=clip.device
                            )
                        keep[layer][g * B + b, head] = 0
            stacked = residual.repeat(len(chunk), 1, 1)
            emb = wide(clip.encode_from_residual(stacked, start, keep=keep))
            y = target_cosine(emb.view(len(chunk), B, -1), target.text, rows)
            for g, (method, step) in enumerate(chunk):
                _emit(out, ids, method, step, y[g].cpu().double().numpy())
    return pl.DataFrame(
        out,
        schema={"image_id": pl.String, "method": pl.String, "step": pl.Int16, "y100": pl.Float64},
    )


def _emit(out: dict, ids: list[str], method: str, step: int, y: np.ndarray) -> None:
    out["image_id"] += ids
    out["method"] += [method] * len(ids)
    out["step"] += [step] * len(ids)
    out["y100"] += (100.0 * y).tolist()


def summarise(points: pl.DataFrame, ids: list[str], subsets: int = 9) -> pl.DataFrame:
    """The `DELETION` table from `deletion_points`; `ids` in sample order (for the subsets)."""
    if subsets < 1:
        raise ValueError(f"config key attribution.subsets must be >= 1, got {subsets}")
    position = {image_id: i for i, image_id in enumerate(ids)}
    rows = []
    for method in dict.fromkeys(points["method"].to_list()):
        part = points.filter(pl.col("method") == method)
        steps = sorted(set(part["step"].to_list()))
        curves = np.full((len(ids), len(steps)), np.nan)
        col = {s: j for j, s in enumerate(steps)}
        for image_id, step, value in part.select("image_id", "step", "y100").iter_rows():
            curves[position[image_id], col[step]] = value
        areas = curves.mean(axis=1)
        area, area_err = _mean_and_error(areas, subsets)
        for j, step in enumerate(steps):
            y100, y100_err = _mean_and_error(curves[:, j], subsets)
            rows.append((method, step, y100, y100_err, area, area_err, len(ids)))
    return pl.DataFrame(rows, schema=DELETION, orient="row")


def _mean_and_error(values: np.ndarray, subsets: int) -> tuple[float, float]:
    """Mean over images, and std over the interleaved subsets' means / sqrt(subsets)
    (NaN with fewer than two non-empty subsets)."""
    means = [values[i::subsets].mean() for i in range(subsets) if len(values[i::subsets])]
    err = float(np.std(means) / np.sqrt(subsets)) if len(means) > 1 else float("nan")
    return float(values.mean()), err
