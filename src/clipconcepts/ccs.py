"""Concept Consistency Score (CCS paper 4.1.3): per head, the number of its TEXTSPAN texts that
fit its label (0..5); CCS@K, the fraction of heads with CCS = K; high/moderate/low head groups.

Invalid answers are counted, not dropped: a text without a valid verdict (invalid answer, or a
head whose label was invalid) counts as not aligned, so a head's CCS is a lower bound, and
`n_invalid` says how many of its texts lacked a verdict. CCS@K keeps such heads (and reports how
many there are per K); `head_groups` leaves them out, since their true group is unknown.
With several judges, the `majority` verdict on a text is True when more than half of the judges
that gave a valid verdict say so, and null when none did.
"""

from __future__ import annotations

import logging

import polars as pl

from clipconcepts.labelling import head_texts, valid_labels

log = logging.getLogger(__name__)

MAJORITY = "majority"
GROUPS = {"high": pl.col("ccs") == 5, "moderate": pl.col("ccs") == 3, "low": pl.col("ccs") <= 1}
HEAD_KEYS = ["layer", "head"]
TEXT_KEYS = ["layer", "head", "rank"]


def majority_verdicts(verdicts: pl.DataFrame) -> pl.DataFrame:
    """[layer, head, rank, judge='majority', aligned] from per-judge verdicts."""
    n_true = pl.col("aligned").cast(pl.Int32).sum()
    n_valid = pl.col("aligned").is_not_null().sum()
    return (
        verdicts.group_by(TEXT_KEYS)
        .agg(pl.when(n_valid > 0).then(2 * n_true > n_valid).alias("aligned"))
        .select(*TEXT_KEYS, pl.lit(MAJORITY).alias("judge"), "aligned")
    )


def _check_verdicts(verdicts: pl.DataFrame, textspans: pl.DataFrame) -> list[str]:
    missing = [c for c in [*TEXT_KEYS, "judge", "aligned"] if c not in verdicts.columns]
    if missing:
        raise ValueError(f"verdicts table lacks columns {missing} (has {verdicts.columns})")
    judges = list(dict.fromkeys(verdicts["judge"].to_list()))
    if MAJORITY in judges:
        raise ValueError(
            f"a judge may not be named {MAJORITY!r}: that name is the judges' majority"
        )
    texts = textspans.select(pl.col(k).cast(pl.Int16) for k in TEXT_KEYS)
    for judge in judges:
        mine = verdicts.filter(pl.col("judge") == judge).select(TEXT_KEYS)
        if mine.is_duplicated().any():
            raise ValueError(f"judge {judge!r} has more than one verdict for a text")
        lacking = texts.join(mine, on=TEXT_KEYS, how="anti")
        extra = mine.join(texts, on=TEXT_KEYS, how="anti")
        if lacking.height or extra.height:
            raise ValueError(
                f"judge {judge!r}: verdicts do not match the textspans "
                f"({lacking.height} texts without a verdict, {extra.height} verdicts without a text)"
            )
    return judges


def ccs_table(
    verdicts: pl.DataFrame, labels: pl.DataFrame, textspans: pl.DataFrame
) -> pl.DataFrame:
    """One row per (judge, head), judges in order of appearance then 'majority':
    [layer, head, label, judge, ccs (int8), n_invalid (int8), verdicts list<bool>, texts list<str>]
    with verdicts and texts in rank order (a null verdict = no valid answer)."""
    verdicts = verdicts.with_columns(pl.col(k).cast(pl.Int16) for k in TEXT_KEYS)
    judges = _check_verdicts(verdicts, textspans)
    per_text = pl.concat(
        [verdicts.select(*TEXT_KEYS, "judge", "aligned"), majority_verdicts(verdicts)]
    )
    texts = (
        head_texts(textspans)
        .explode("ranks", "texts")
        .rename({"ranks": "rank", "texts": "text"})
        .with_columns(pl.col("rank").cast(pl.Int16))
    )
    order = {name: i for i, name in enumerate([*judges, MAJORITY])}
    return (
        per_text.join(texts, on=TEXT_KEYS, how="left")
        .join(valid_labels(labels), on=HEAD_KEYS, how="left")
        .with_columns(pl.col("judge").replace_strict(order, return_dtype=pl.Int32).alias("_order"))
        .sort("_order", "layer", "head", "rank")
        .group_by("_order", "judge", "layer", "head", maintain_order=True)
        .agg(
            pl.col("label").first(),
            pl.col("aligned").fill_null(False).sum().cast(pl.Int8).alias("ccs"),
            pl.col("aligned").is_null().sum().cast(pl.Int8).alias("n_invalid"),
            pl.col("aligned").alias("verdicts"),
            pl.col("text").alias("texts"),
        )
        .select("layer", "head", "label", "judge", "ccs", "n_invalid", "verdicts", "texts")
    )


def ccs_at_k(ccs: pl.DataFrame) -> pl.DataFrame:
    """[judge, k, n_heads, fraction, n_with_invalid] for k = 0..5 (0..max texts per head if
    more), every k present; fractions sum to 1 per judge."""
    k_max = max(5, int(ccs["verdicts"].list.len().max() or 0))
    judges = list(dict.fromkeys(ccs["judge"].to_list()))
    grid = pl.DataFrame(
        {
            "judge": [j for j in judges for _ in range(k_max + 1)],
            "k": list(range(k_max + 1)) * len(judges),
        },
        schema={"judge": pl.String, "k": pl.Int8},
    )
    counts = ccs.group_by("judge", pl.col("ccs").alias("k")).agg(
        pl.len().cast(pl.Int32).alias("n_heads"),
        (pl.col("n_invalid") > 0).sum().cast(pl.Int32).alias("n_with_invalid"),
    )
    totals = ccs.group_by("judge").agg(pl.len().alias("_total"))
    return (
        grid.with_row_index("_row")
        .join(counts, on=["judge", "k"], how="left")
        .join(totals, on="judge", how="left")
        .sort("_row")
        .with_columns(pl.col("n_heads", "n_with_invalid").fill_null(0))
        .with_columns((pl.col("n_heads") / pl.col("_total")).alias("fraction"))
        .select("judge", "k", "n_heads", "fraction", "n_with_invalid")
    )


def head_groups(ccs: pl.DataFrame, judge: str = MAJORITY) -> pl.DataFrame:
    """[group, layer, head, label, ccs]: 'high' (CCS = 5), 'moderate' (= 3), 'low' (<= 1) by
    `judge`'s scores; heads with an invalid verdict are left out (their CCS is only a bound)."""
    mine = ccs.filter(pl.col("judge") == judge)
    if mine.is_empty():
        raise ValueError(
            f"no CCS rows for judge {judge!r}; judges: {ccs['judge'].unique().to_list()}"
        )
    flagged = mine.filter(pl.col("n_invalid") > 0)
    if flagged.height:
        log.warning(
            "%d heads with invalid verdicts are left out of the head groups", flagged.height
        )
    scored = mine.filter(pl.col("n_invalid") == 0)
    groups = [
        scored.filter(condition).select(pl.lit(name).alias("group"), *HEAD_KEYS, "label", "ccs")
        for name, condition in GROUPS.items()
    ]
    return pl.concat(groups).sort(
        pl.col("group").replace_strict({g: i for i, g in enumerate(GROUPS)}), *HEAD_KEYS
    )
