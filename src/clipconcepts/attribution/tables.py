"""Three views of each head side by side, and how faithful each is to the true effect.

`head_table` averages every view over the sampled images (one row per head, with ranks);
`correlations` compares the views with Spearman's rho and Kendall's tau-b (scipy):

- level `head`: across heads, of the per-head means; every ordered pair of views, on the heads
  where both exist (CCS: the analysed layers; true effects: the ablation scope);
- level `image`: per image, across the ablation scope's heads, each view against the true
  effects (`true_zero`, `true_mean`), then the mean over images (images where a view is
  constant give no value and are left out of the mean; `fast_correlation`, scipy's values
  without its per-call cost).

The `random` view draws one standard normal score per head (level head) or per image and head
(level image) from `numpy.random.default_rng(seed)`: the chance baseline.
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
from scipy import stats

from clipconcepts.attribution.schemas import CORRELATIONS, HEADS

IMAGE_VIEWS = ("atp_zero", "atp_mean", "direct", "logit_lens", "energy")
HEAD_VIEWS = (*IMAGE_VIEWS, "ccs", "random", "true_zero", "true_mean")
TRUE_VIEWS = ("true_zero", "true_mean")
RANKED = (*IMAGE_VIEWS, "ccs", *TRUE_VIEWS)


def majority_ccs(ccs: pl.DataFrame | None) -> pl.DataFrame:
    """`layer, head, label, ccs` of the majority judge (empty without a CCS table)."""
    schema = {"layer": pl.Int16, "head": pl.Int16, "label": pl.String, "ccs": pl.Int8}
    if ccs is None:
        return pl.DataFrame(schema=schema)
    if "judge" in ccs.columns:
        ccs = ccs.filter(pl.col("judge") == "majority")
    return ccs.select(list(schema)).cast(schema)


def head_table(
    scores: pl.DataFrame, ablation: pl.DataFrame, ccs: pl.DataFrame | None
) -> pl.DataFrame:
    """The `HEADS` table: per head, the mean of every view over the sampled images, the
    accuracy drops (percentage points) of ablating it, its label and CCS, and ranks (1 = the
    largest value; ties share the smallest rank; null where the view has no value)."""
    means = scores.group_by("layer", "head").agg(
        *[pl.col(v).mean() for v in IMAGE_VIEWS], n_images=pl.col("image_id").n_unique()
    )
    ablated = ablation.group_by("layer", "head").agg(
        pl.col("true_zero").mean(),
        pl.col("true_mean").mean(),
        acc_drop_zero=100 * (pl.col("correct").mean() - pl.col("correct_zero").mean()),
        acc_drop_mean=100 * (pl.col("correct").mean() - pl.col("correct_mean").mean()),
    )
    table = (
        means.join(ablated, on=["layer", "head"], how="left")
        .join(majority_ccs(ccs), on=["layer", "head"], how="left")
        .sort("layer", "head")
    )
    table = table.with_columns(
        pl.col(v).rank("min", descending=True).cast(pl.Int32).alias(f"rank_{v}") for v in RANKED
    )
    return table.select(list(HEADS)).cast(HEADS)


def _spearman_kendall(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: NaN, reported as null
        rho = stats.spearmanr(x, y).statistic
        tau = stats.kendalltau(x, y).statistic
    return float(rho), float(tau)


def correlation(x, y) -> tuple[float, float, int]:
    """Spearman and Kendall (tau-b) of two vectors on the positions where both are finite;
    NaN with fewer than 2 such positions or a constant vector."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 2:
        return float("nan"), float("nan"), int(keep.sum())
    rho, tau = _spearman_kendall(x[keep], y[keep])
    return rho, tau, int(keep.sum())


def fast_correlation(x: np.ndarray, y: np.ndarray) -> tuple[float, float, int]:
    """`correlation` without scipy's per-call overhead (thousands of calls at the image
    level): Spearman as the Pearson correlation of average ranks, Kendall's tau-b from the signs
    of all pairs. Equal to scipy's (tested)."""
    keep = np.isfinite(x) & np.isfinite(y)
    n = int(keep.sum())
    if n < 2:
        return float("nan"), float("nan"), n
    x, y = x[keep], y[keep]
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = np.sqrt((rx @ rx) * (ry @ ry))
    rho = float(rx @ ry / denom) if denom > 0 else float("nan")
    upper = np.triu_indices(n, 1)
    sx = np.sign(x[:, None] - x[None, :])[upper]
    sy = np.sign(y[:, None] - y[None, :])[upper]
    pairs = len(sx)
    denom = np.sqrt(float(pairs - (sx == 0).sum()) * float(pairs - (sy == 0).sum()))
    tau = float((sx * sy).sum() / denom) if denom > 0 else float("nan")
    return rho, tau, n


def correlations(
    scores: pl.DataFrame, ablation: pl.DataFrame, heads: pl.DataFrame, seed: int = 0
) -> pl.DataFrame:
    """The `CORRELATIONS` table (levels `head` and `image`, see the module docstring)."""
    n_images = scores["image_id"].n_unique()
    rng = np.random.default_rng(seed)
    table = heads.with_columns(random=pl.Series(rng.standard_normal(len(heads))))
    rows = []
    for x in HEAD_VIEWS:
        for y in HEAD_VIEWS:
            if x == y:
                continue
            rho, tau, n = correlation(
                table[x].cast(pl.Float64).fill_null(np.nan).to_numpy(),
                table[y].cast(pl.Float64).fill_null(np.nan).to_numpy(),
            )
            rows.append(("head", x, y, rho, tau, n, n_images))
    rows += _image_level(scores, ablation, heads, rng)
    frame = pl.DataFrame(rows, schema=list(CORRELATIONS), orient="row")
    return frame.with_columns(pl.col("spearman", "kendall").fill_nan(None)).cast(CORRELATIONS)


def _image_level(scores, ablation, heads, rng) -> list[tuple]:
    """Per image across the scope's heads, each view against each true effect; means."""
    joined = ablation.select("image_id", "layer", "head", *TRUE_VIEWS).join(
        scores.select("image_id", "layer", "head", *IMAGE_VIEWS),
        on=["image_id", "layer", "head"],
        how="left",
    )
    joined = joined.join(heads.select("layer", "head", "ccs"), on=["layer", "head"], how="left")
    joined = joined.sort("image_id", "layer", "head")
    ids = joined["image_id"].unique(maintain_order=True).to_list()
    n_heads = len(joined) // max(len(ids), 1)
    if n_heads * len(ids) != len(joined):
        raise ValueError("true-effect table: images do not all have the same heads")

    def grid(column: str) -> np.ndarray:
        values = joined[column].cast(pl.Float64).fill_null(np.nan).to_numpy()
        return values.reshape(len(ids), n_heads)

    refs = {r: grid(r) for r in TRUE_VIEWS}
    views = {v: grid(v) for v in (*IMAGE_VIEWS, "ccs")}
    views["random"] = rng.standard_normal((len(ids), n_heads))
    rows = []
    for name, values in views.items():
        for ref, truth in refs.items():
            per_image = [fast_correlation(values[i], truth[i]) for i in range(len(ids))]
            rho = np.array([p[0] for p in per_image])
            tau = np.array([p[1] for p in per_image])
            n = max((p[2] for p in per_image), default=0)
            used = int(np.isfinite(rho).sum())
            mean_rho = float(np.nanmean(rho)) if used else float("nan")
            mean_tau = float(np.nanmean(tau)) if used else float("nan")
            rows.append(("image", name, ref, mean_rho, mean_tau, n, used))
    return rows
