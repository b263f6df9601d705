"""Human vs LLM agreement on text-label verdicts (CCS paper 4.2, Table 2).

`annotation_sheet` samples text-label pairs (50 per model by default) with the LLM verdict and a
blank `human_aligned` column; a person fills it with true/false (also accepted: 1/0, yes/no, y/n,
t/f). `agreement_stats` then computes Cohen's kappa, Spearman's rho and Kendall's tau between the
two columns. Blank human values raise an error naming the rows, unless `allow_blank=True`: then
they are skipped and counted (`n_blank`). Hide `llm_aligned` while annotating, so the person is
not swayed by it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import polars as pl
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from clipconcepts.ccs import MAJORITY

log = logging.getLogger(__name__)

SHEET_COLUMNS = ["model", "layer", "head", "label", "rank", "text", "llm_aligned", "human_aligned"]
TRUE_VALUES = {"true", "1", "yes", "y", "t"}
FALSE_VALUES = {"false", "0", "no", "n", "f"}
ALL_MODELS = "all"


def annotation_sheet(
    ccs: pl.DataFrame, n: int = 50, seed: int = 0, judge: str = MAJORITY, model: str | None = None
) -> pl.DataFrame:
    """`n` sampled (text, label) pairs per model with `judge`'s verdicts, for a CSV sheet.

    Models come from a `model` column of `ccs` if there is one, else from `model`. Pairs without a
    valid label or verdict are not sampled. `rank` is the text's 0-based position in the head's
    TEXTSPAN order. Deterministic for a given `seed`."""
    if "model" not in ccs.columns:
        if model is None:
            raise ValueError("the CCS table has no 'model' column: pass model=...")
        ccs = ccs.with_columns(pl.lit(model).alias("model"))
    mine = ccs.filter(pl.col("judge") == judge)
    if mine.is_empty():
        raise ValueError(f"no CCS rows for judge {judge!r}")
    pairs = (
        mine.select("model", "layer", "head", "label", "texts", "verdicts")
        .with_columns(pl.int_ranges(0, pl.col("texts").list.len()).alias("rank"))
        .explode("texts", "verdicts", "rank")
        .rename({"texts": "text", "verdicts": "llm_aligned"})
        .filter(pl.col("label").is_not_null() & pl.col("llm_aligned").is_not_null())
        .sort("model", "layer", "head", "rank")
    )
    sheets = []
    for (name,), group in pairs.group_by("model", maintain_order=True):
        if group.height < n:
            log.warning(
                "model %s has only %d text-label pairs to sample (%d asked)", name, group.height, n
            )
        sheets.append(group.sample(min(n, group.height), seed=seed, shuffle=True))
    return (
        pl.concat(sheets)
        .with_columns(
            pl.col("rank").cast(pl.Int16), pl.lit(None, dtype=pl.String).alias("human_aligned")
        )
        .select(SHEET_COLUMNS)
    )


def read_sheet(path: str | Path) -> pl.DataFrame:
    """A filled annotation sheet (CSV) with every column read as text."""
    return pl.read_csv(path, infer_schema=False)


def _parse_bools(values: pl.Series, column: str, source: str) -> list[bool | None]:
    out: list[bool | None] = []
    for i, value in enumerate(values.cast(pl.String).to_list()):
        v = (value or "").strip().lower()
        if v in TRUE_VALUES:
            out.append(True)
        elif v in FALSE_VALUES:
            out.append(False)
        elif v == "":
            out.append(None)
        else:
            raise ValueError(
                f"{source}: column {column!r}, data row {i + 1}: {value!r} is not true/false "
                f"(accepted: {sorted(TRUE_VALUES | FALSE_VALUES)})"
            )
    return out


def _scores(human: np.ndarray, llm: np.ndarray) -> dict[str, float]:
    with warnings.catch_warnings():
        # Constant columns make these undefined: they come out as NaN, which is the honest value.
        warnings.simplefilter("ignore")
        kappa = float(cohen_kappa_score(human, llm, labels=[False, True]))
        rho = float(stats.spearmanr(human, llm).statistic)
        tau = float(stats.kendalltau(human, llm).statistic)
    return {"kappa": kappa, "spearman_rho": rho, "kendall_tau": tau}


def agreement_stats(
    sheet: pl.DataFrame, source: str = "annotation sheet", allow_blank: bool = False
) -> pl.DataFrame:
    """[model, n, n_blank, accuracy, kappa, spearman_rho, kendall_tau], one row per model plus
    'all' when there are several. `source` names the sheet (its file) in error messages."""
    missing = [c for c in ("model", "llm_aligned", "human_aligned") if c not in sheet.columns]
    if missing:
        raise ValueError(f"{source}: missing columns {missing}")
    human = _parse_bools(sheet["human_aligned"], "human_aligned", source)
    llm = _parse_bools(sheet["llm_aligned"], "llm_aligned", source)
    if None in llm:
        raise ValueError(f"{source}: column 'llm_aligned' has blank values; regenerate the sheet")
    blank = [i + 1 for i, h in enumerate(human) if h is None]
    if blank and not allow_blank:
        raise ValueError(
            f"{source}: column 'human_aligned' is blank in {len(blank)} of {len(human)} data rows "
            f"(first: {blank[:10]}); fill them with true/false, or allow blanks to skip them"
        )
    table = pl.DataFrame(
        {"model": sheet["model"].cast(pl.String), "human": human, "llm": llm},
        schema={"model": pl.String, "human": pl.Boolean, "llm": pl.Boolean},
    )
    groups = [(m, g) for (m,), g in table.group_by("model", maintain_order=True)]
    if len(groups) > 1:
        groups.append((ALL_MODELS, table))
    rows = []
    for model, group in groups:
        filled = group.filter(pl.col("human").is_not_null())
        if filled.is_empty():
            raise ValueError(f"{source}: model {model!r} has no filled 'human_aligned' values")
        h, m = filled["human"].to_numpy(), filled["llm"].to_numpy()
        rows.append(
            {
                "model": model,
                "n": filled.height,
                "n_blank": group.height - filled.height,
                "accuracy": float(np.mean(h == m)),
                **_scores(h, m),
            }
        )
    return pl.DataFrame(rows)
