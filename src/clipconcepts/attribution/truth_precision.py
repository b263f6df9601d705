"""Concept world: do the views rank the dataset's family heads first?

The world's head truth (`conceptworld.groundtruth.head_truth`) gives each head the family it
writes most (`is_top`). For a family's classification set, the truth heads are the heads of the
ablation scope whose top family is that family; a view ranks the scope's heads by their mean
over the sampled images (highest first; ties in a seeded random order), and its precision@k is
the fraction of truth heads among its first k, for k = 1, 3, 5 and k = the number of truth
heads (R-precision), as far as the scope allows. Beside it: the view's Spearman correlation
with the true effect (`true_zero`) and with the truth's continuous score for the family.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import polars as pl

from clipconcepts.attribution.schemas import TRUTH
from clipconcepts.attribution.tables import correlation

log = logging.getLogger(__name__)

VIEWS = (
    "atp_zero",
    "atp_mean",
    "direct",
    "logit_lens",
    "energy",
    "ccs",
    "random",
    "true_zero",
    "true_mean",
)


def _name(layer: int, head: int) -> str:
    return f"L{layer}.H{head}"


def truth_table(
    heads: pl.DataFrame,
    truth: pl.DataFrame,
    family: str,
    ks: Sequence[int] = (1, 3, 5),
    seed: int = 0,
) -> pl.DataFrame:
    """The `TRUTH` table for one dataset's `HEADS` table and the model's head truth."""
    if family not in set(truth["family"].to_list()):
        raise ValueError(
            f"head truth has no family {family!r} (it has {sorted(set(truth['family']))})"
        )
    pool = heads.filter(pl.col("true_zero").is_not_null()).sort("layer", "head")
    if pool.is_empty():
        raise ValueError("precision@k: no heads with a true effect (the ablation scope)")
    fam = truth.filter(pl.col("family") == family).select(
        pl.col("layer").cast(pl.Int16), pl.col("head").cast(pl.Int16), "score", "is_top"
    )
    pool = pool.join(fam, on=["layer", "head"], how="left")
    rng = np.random.default_rng(seed)
    pool = pool.with_columns(random=pl.Series(rng.standard_normal(len(pool))))
    names = [_name(a, b) for a, b in pool.select("layer", "head").iter_rows()]
    is_truth = pool["is_top"].fill_null(False).to_numpy()
    truth_names = [n for n, t in zip(names, is_truth, strict=True) if t]
    n_truth, n_pool = len(truth_names), len(pool)
    if n_truth == 0:
        log.warning("family %s: no head of the scope writes it most; precision is null", family)
    wanted = sorted({k for k in (*ks, n_truth) if 1 <= k <= n_pool})
    true_zero = _values(pool, "true_zero")
    score = _values(pool, "score")
    rows = []
    for view in VIEWS:
        values = _values(pool, view)
        if np.isnan(values).all():
            continue
        shuffle = rng.permutation(n_pool)
        keyed = np.where(np.isnan(values), -np.inf, values)[shuffle]
        order = shuffle[np.argsort(-keyed, kind="stable")]
        top = [names[i] for i in order[: max(wanted, default=0)]]
        rho_true = correlation(values, true_zero)[0] if view != "true_zero" else None
        rho_score = correlation(values, score)[0]
        for k in wanted:
            hits = int(is_truth[order[:k]].sum())
            rows.append(
                {
                    "family": family,
                    "view": view,
                    "k": k,
                    "precision": hits / k if n_truth else None,
                    "n_truth": n_truth,
                    "n_pool": n_pool,
                    "spearman_true_zero": rho_true,
                    "spearman_truth_score": rho_score,
                    "top_heads": top[:k],
                    "truth_heads": truth_names,
                }
            )
    frame = pl.DataFrame(rows, schema=TRUTH)
    return frame.with_columns(pl.col("spearman_true_zero", "spearman_truth_score").fill_nan(None))


def _values(frame: pl.DataFrame, column: str) -> np.ndarray:
    return frame[column].cast(pl.Float64).fill_null(np.nan).to_numpy()
