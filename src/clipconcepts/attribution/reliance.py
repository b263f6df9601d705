"""Unexpected reliance: heads a class's prediction relies on whose label has nothing to do with
the class (Dreyer et al. combine attributions with semantic alignment the same way).

Per target class, its images' mean AtP (zero baseline) ranks the labelled heads; the `top_k`
with positive AtP are listed with how their label relates to the class name:

- every text (a head's label, a class name) gets a concept group (the workflow's
  `concept_groups`, keyword lists as for concept pruning): the group of the earliest keyword in
  it (`evaluate.concept_of_label`); failing that, the groups of the lexicon families its words
  name (the default bank's lexicon, or the concept world's), when they agree on one group;
- `related`: both have the same group, or the label contains a word of the class name;
  `unrelated`: both have a group and they differ; `unknown`: either has none.

`unexpected` marks the `unrelated` rows: the class relies on a head that encodes something
else. A head's label and group are the same for every class; whether it is unexpected is not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import polars as pl

from clipconcepts.attribution.schemas import PROMPT_TARGET, RELIANCE
from clipconcepts.evaluate.strategies import concept_of_label
from clipconcepts.lexicons import families_in_text

_WORD = re.compile(r"[a-z]+")


def group_of(
    text: str | None, groups: dict[str, Sequence[str]], lexicon: dict[str, str] | None = None
) -> str | None:
    """The concept group of a label or class name (see the module docstring), or None."""
    if not text:
        return None
    group = concept_of_label(text, groups)
    if group is not None or not lexicon:
        return group
    found = {concept_of_label(family, groups) for family in families_in_text(text, lexicon)}
    found.discard(None)
    return found.pop() if len(found) == 1 else None


def relation(
    label: str | None, label_group: str | None, classname: str, class_group: str | None
) -> str:
    """`related`, `unrelated` or `unknown` (see the module docstring)."""
    words = {w for w in _WORD.findall(classname.lower()) if len(w) > 2}
    if label and words & set(_WORD.findall(label.lower())):
        return "related"
    if label_group is None or class_group is None:
        return "unknown"
    return "related" if label_group == class_group else "unrelated"


def unexpected_reliance(
    scores: pl.DataFrame,
    ablation: pl.DataFrame,
    heads: pl.DataFrame,
    classnames: Sequence[str],
    groups: dict[str, Sequence[str]],
    lexicon: dict[str, str] | None = None,
    top_k: int = 5,
    prompt: str = "",
) -> pl.DataFrame:
    """The `RELIANCE` table: per target class, its top-k labelled heads by mean AtP (> 0)."""
    if top_k < 1:
        raise ValueError(f"config key attribution.top_k must be >= 1, got {top_k}")
    labelled = heads.filter(pl.col("label").is_not_null()).select("layer", "head", "label", "ccs")
    if labelled.is_empty():
        return pl.DataFrame(schema=RELIANCE)
    per_class = (
        scores.group_by("target", "layer", "head")
        .agg(
            atp=pl.col("atp_zero").mean(),
            direct=pl.col("direct").mean(),
            n_images=pl.col("image_id").n_unique(),
        )
        .join(
            ablation.group_by("target", "layer", "head").agg(pl.col("true_zero").mean()),
            on=["target", "layer", "head"],
            how="left",
        )
        .join(labelled, on=["layer", "head"])
        .filter(pl.col("atp") > 0)
        .sort(["target", "atp", "layer", "head"], descending=[False, True, False, False])
        .with_columns(rank=pl.int_range(1, pl.len() + 1).over("target"))
        .filter(pl.col("rank") <= top_k)
    )
    label_groups = {
        label: group_of(label, groups, lexicon) for label in labelled["label"].unique().to_list()
    }
    rows = []
    for row in per_class.iter_rows(named=True):
        target = row["target"]
        name = prompt if target == PROMPT_TARGET else classnames[target]
        class_group = group_of(name, groups, lexicon)
        label_group = label_groups[row["label"]]
        kind = relation(row["label"], label_group, name, class_group)
        rows.append(
            {
                **row,
                "classname": name,
                "class_group": class_group,
                "label_group": label_group,
                "relation": kind,
                "unexpected": kind == "unrelated",
            }
        )
    if not rows:
        return pl.DataFrame(schema=RELIANCE)
    return pl.DataFrame(rows).select(list(RELIANCE)).cast(RELIANCE)
