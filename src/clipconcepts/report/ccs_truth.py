"""Does CCS measure concept consistency here? Concept-world models only, where every head's
true family is known (`head_truth.parquet`) and every bank text has a family
(`textbank.parquet`).

Per model, over its analysed heads (majority judge, heads with an invalid verdict left out):
- Spearman's rho of CCS with the head's **truth purity** (its top family's share of the head's
  variance);
- Spearman's rho of CCS with the head's **true ablation effect** on its own family's dataset (the
  attribution stage's `true_zero`: mean drop of the true class's score with the head zeroed, on
  the dataset whose classes are the head's true family), where the attribution stage ran on it;
- Spearman's rho of CCS with the **truth count**: how many of the head's 5 TEXTSPAN texts belong
  to its true top family;
- CCS@K beside the truth count's distribution ("truth@K": the fraction of heads whose truth
  count is K), so a reader sees whether the LLM's consistency tracks the texts' real families;
- the **family dimensions** of the heads: in how many of its top family's text directions a
  head writes (`dims`, a participation ratio; median and maximum over the heads). A head that
  writes its family in one or two directions leaves TEXTSPAN's later picks to whatever else it
  writes: five texts of one family need a head that writes it in several;
- per family, in how many of those directions the **whole model** separates the family's values
  (`family_dims.parquet`: the per-value means of the L2-normalised image embedding, all heads
  together) beside its heads' `dims` (those whose top family it is): a
  head writes a family in more directions than the model only where other heads cancel them.

Spearman's rho is undefined (shown as such) with fewer than 3 heads or a constant column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path

import polars as pl

from clipconcepts.report.inputs import RunData, majority_rows
from clipconcepts.report.tables import missing, ours, table

K = range(6)


@dataclass(frozen=True)
class CCSTruth:
    """One model's heads with CCS, purity, truth count and own-family true effect."""

    model: str
    heads: pl.DataFrame  # layer, head, ccs, family, purity, dims, truth_count, true_effect
    rho_purity: tuple[float, float]  # (rho, p)
    rho_effect: tuple[float, float]
    rho_count: tuple[float, float]
    n_effect: int  # heads with an own-family true effect


def spearman(x, y) -> tuple[float, float]:
    """(rho, two-sided p) or (nan, nan) when undefined (n < 3 or a constant column)."""
    from scipy.stats import spearmanr

    pairs = [(a, b) for a, b in zip(x, y, strict=True) if a is not None and b is not None]
    if len(pairs) < 3 or len({a for a, _ in pairs}) < 2 or len({b for _, b in pairs}) < 2:
        return math.nan, math.nan
    result = spearmanr([a for a, _ in pairs], [b for _, b in pairs])
    return float(result.statistic), float(result.pvalue)


def text_families(textbank: pl.DataFrame | None) -> dict[str, str]:
    """Bank text -> family (texts without a family are left out)."""
    if textbank is None or "family" not in textbank.columns:
        return {}
    rows = textbank.select("text", "family").drop_nulls().rows()
    return {text: family for text, family in rows}


def ccs_truth(
    model: str,
    ccs: pl.DataFrame,
    head_truth: pl.DataFrame,
    families: Mapping[str, str],
    effects: Mapping[tuple[int, int, str], float],
) -> CCSTruth | None:
    """The comparison for one model; None without a majority CCS or a head truth.
    `effects`: (layer, head, family of the dataset) -> true ablation effect."""
    rows, judge = majority_rows(ccs)
    if judge is None:
        return None
    rows = rows.filter(pl.col("n_invalid") == 0)
    tops = head_truth.filter("is_top").select("layer", "head", "family", "share", "dims")
    tied = tops.group_by("layer", "head").len().filter(pl.col("len") > 1)
    tops = tops.join(tied.select("layer", "head"), on=["layer", "head"], how="anti")
    merged = rows.select("layer", "head", "ccs", "texts").join(
        tops.rename({"share": "purity"}), on=["layer", "head"], how="inner"
    )
    if merged.is_empty():
        return None
    counts = [
        sum(families.get(t) == family for t in texts)
        for texts, family in merged.select("texts", "family").rows()
    ]
    own = [
        effects.get((int(layer), int(head), family))
        for layer, head, family in merged.select("layer", "head", "family").rows()
    ]
    heads = merged.drop("texts").with_columns(
        pl.Series("truth_count", counts, dtype=pl.Int8),
        pl.Series("true_effect", own, dtype=pl.Float64),
    )
    ccs_values = heads["ccs"].to_list()
    return CCSTruth(
        model=model,
        heads=heads,
        rho_purity=spearman(ccs_values, heads["purity"].to_list()),
        rho_effect=spearman(ccs_values, own),
        rho_count=spearman(ccs_values, counts),
        n_effect=sum(e is not None for e in own),
    )


def own_family_effects(attribution_results, dataset_families: Mapping[str, str]):
    """(layer, head, family) -> `true_zero` from each attribution dataset whose classes are one
    family (`dataset_families`: dataset -> family); the first dataset of a family wins."""
    out: dict[tuple[int, int, str], float] = {}
    for result in attribution_results:
        family = dataset_families.get(result.dataset)
        if family is None or result.heads is None:
            continue
        for layer, head, effect in result.heads.select("layer", "head", "true_zero").rows():
            out.setdefault((int(layer), int(head), family), effect)
    return out


def _rho(value: tuple[float, float], model: str, metric: str, n: int) -> str:
    rho, p = value
    if math.isnan(rho):
        return missing("undefined")
    return ours(f"{rho:+.2f}", model=model, metric=metric, n=n) + f"<br><small>p = {p:.2g}</small>"


def _dims(dims: pl.Series, model: str, n: int) -> str:
    values = dims.drop_nulls()
    if values.is_empty():
        return missing("no family dims")
    median = ours(f"{values.median():.1f}", model=model, metric="family_dims_median", n=n)
    return median + f" <small>(max {values.max():.1f})</small>"


def _family_dims_rows(
    display: str, key: str, model_dims: pl.DataFrame, heads: pl.DataFrame
) -> list[list[str]]:
    """Per family: its values and text directions, the whole model's dims and share, and the
    analysed heads whose top family it is (count, median and maximum dims)."""
    rows = []
    for family, n_values, dims, share in model_dims.select(
        "family", "n_values", "dims", "share"
    ).rows():
        own = heads.filter(pl.col("family") == family)["dims"].drop_nulls()
        head_dims = (
            f"{own.median():.1f} <small>(max {own.max():.1f})</small>"
            if not own.is_empty()
            else missing("no analysed head")
        )
        rows.append(
            [
                escape(display),
                escape(family),
                str(n_values),
                str(n_values - 1),
                ours(f"{dims:.1f}", model=key, metric="model_family_dims", family=family),
                f"{share:.2f}",
                str(own.len()),
                head_dims,
            ]
        )
    return rows


def ccs_truth_section_body(
    run: RunData,
    textbank_path: Path,
    attribution_results: Mapping[str, list] | None = None,
    dataset_families: Mapping[str, str] | None = None,
) -> str:
    """The section: per concept-world model, the three correlations and CCS@K vs truth@K."""
    intro = (
        "<p>Concept-world models only. Does a high CCS mean the head writes one concept? Per "
        "model, Spearman's ρ over the analysed heads of CCS with the head's truth purity (its "
        "top family's share of its variance), with its true ablation effect on its own family's "
        "dataset (attribution stage, zero ablation), and with its truth count (how many of its "
        "5 TEXTSPAN texts belong to its true family); then CCS@K beside truth@K (the fraction of "
        "heads whose truth count is K). Family dims: in how many of its true family's text "
        "directions a head writes (participation ratio; median and maximum over the heads): "
        "a head that writes its family in one or two directions leaves TEXTSPAN's later picks "
        "to whatever else it writes. Last, per family, in how many of its text directions the "
        "whole model separates its values (participation ratio of the per-value means of its "
        "L2-normalised image embedding, all heads together; at most values - 1) beside its "
        "heads' family dims: a head writes a family in more directions "
        "than the model does only where other heads cancel them.</p>"
    )
    if all(frame is None for frame in run.head_truth.values()):
        return intro + f"<p>{missing('no head_truth.parquet for any model')}</p>"
    textbank = pl.read_parquet(textbank_path) if Path(textbank_path).exists() else None
    families = text_families(textbank)
    if not families:
        return intro + f"<p>{missing(f'no text families in {textbank_path}')}</p>"
    rows, dist_rows, dims_rows = [], [], []
    for m in run.models:
        truth, ccs = run.head_truth.get(m.key), run.ccs.get(m.key)
        if truth is None or ccs is None:
            continue
        effects = own_family_effects(
            (attribution_results or {}).get(m.key, []), dataset_families or {}
        )
        result = ccs_truth(m.key, ccs, truth, families, effects)
        if result is None:
            rows.append([escape(m.display), missing("no majority CCS or no head truth")] + [""] * 4)
            continue
        n = result.heads.height
        model_dims = run.family_dims.get(m.key)
        if model_dims is not None:
            dims_rows += _family_dims_rows(m.display, m.key, model_dims, result.heads)
        rows.append(
            [
                f"<b>{escape(m.display)}</b>",
                str(n),
                _rho(result.rho_purity, m.key, "rho_ccs_purity", n),
                _rho(result.rho_effect, m.key, "rho_ccs_true_effect", result.n_effect)
                + f"<br><small>{result.n_effect} heads with an effect</small>",
                _rho(result.rho_count, m.key, "rho_ccs_truth_count", n),
                _dims(result.heads["dims"], m.key, n),
            ]
        )
        for name, column in (("CCS@K", "ccs"), ("truth@K", "truth_count")):
            values = result.heads[column].to_list()
            dist_rows.append(
                [escape(m.display), name]
                + [
                    ours(
                        f"{sum(v == k for v in values) / n:.2f}",
                        model=m.key,
                        metric=column,
                        k=k,
                    )
                    for k in K
                ]
            )
    if not rows:
        return intro + f"<p>{missing('no concept-world model with CCS and head truth')}</p>"
    out = intro + table(
        [
            "Model",
            "Heads",
            "ρ(CCS, purity)",
            "ρ(CCS, true effect)",
            "ρ(CCS, truth count)",
            "Family dims",
        ],
        rows,
        "ccs-truth",
    )
    out += table(["Model", "", *[f"K = {k}" for k in K]], dist_rows, "ccs-truth-k")
    if dims_rows:
        header = [
            "Model",
            "Family",
            "Values",
            "Text directions",
            "Model dims",
            "Model share",
            "Heads",
            "Heads' dims",
        ]
        out += table(header, dims_rows, "ccs-truth-dims")
    return out
