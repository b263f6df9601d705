"""LLM labels against the concept world's ground truth (`{model}/head_truth.parquet`).

A head's true family is its `is_top` row in head_truth: the family whose centred class-text
directions its direct contributions vary along most (largest `share` of its contribution
variance). A label *names* a family when the concept world's lexicon finds the family in it
(`clipconcepts.conceptworld.lexicon.families_in_text`: "red", "colour", "backdrop", ...) or the
label has the family's name as a word, also in a simple plural ("shape", "colors"). A head
*agrees* when its label names its true family (a label naming several families agrees when one
of them is the true one). Heads without a valid label name nothing.

The confusion table counts heads by true family (rows) and labelled family (columns): the one
family the label names, `several` when it names more than one, `none` when it names none.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html import escape
from pathlib import Path

import polars as pl

from clipconcepts.report.head_links import head_link
from clipconcepts.report.inputs import ModelInfo, ReportInputError
from clipconcepts.report.tables import missing, ours, table

log = logging.getLogger(__name__)

SEVERAL = "several"
NONE = "none"
_WORD = re.compile(r"[a-z]+")


def _lexicon() -> tuple[Callable[[str], set[str]] | None, str]:
    """The concept world's `families_in_text`, and a note on how labels are matched.

    Imported lazily: `clipconcepts.conceptworld` loads torch, which the report's own conda env
    does not have; without it, labels are matched on family names only (and the page says so)."""
    try:
        from clipconcepts.conceptworld.lexicon import CONCEPTS, families_in_text
    except ImportError as err:
        log.warning("concept-world lexicon unavailable (%s): matching family names only", err)
        return None, f"family names only (the concept-world lexicon could not be loaded: {err})"

    def named(text: str) -> set[str]:
        # A declared coarse concept ("backdrop") names every family it covers.
        words = set(_WORD.findall(text.lower()))
        coarse = {f for concept, fams in CONCEPTS.items() if concept in words for f in fams}
        return families_in_text(text) | coarse

    return named, (
        "the concept-world lexicon (families_in_text), its declared coarse concepts and "
        "family names"
    )


def families_named(
    label: str | None,
    families: Iterable[str],
    lexicon: Callable[[str], set[str]] | None = None,
) -> set[str]:
    """Families a label names: lexicon hits, and family names as words (also + 's' / 'es')."""
    if not label:
        return set()
    named = set(lexicon(label)) if lexicon is not None else set()
    words = set(_WORD.findall(label.lower()))
    for family in families:
        f = family.lower()
        if {f, f + "s", f + "es"} & words:
            named.add(family)
    return named


@dataclass(frozen=True)
class LabelTruth:
    """Agreement of one model's labels with its heads' true families."""

    model: ModelInfo
    heads: pl.DataFrame  # layer, head, label, family (true), share, named (list), labelled, agrees
    families: list[str]  # true families in head_truth order
    n_without_truth: int  # labelled heads absent from head_truth (left out)
    matcher: str
    n_tied: int = 0  # labelled heads whose top family is tied in head_truth (left out)

    @property
    def n_heads(self) -> int:
        return self.heads.height

    @property
    def n_agree(self) -> int:
        return int(self.heads["agrees"].sum())

    @property
    def fraction(self) -> float | None:
        return self.n_agree / self.n_heads if self.n_heads else None

    def confusion(self) -> pl.DataFrame:
        """Heads per (true family, labelled family): rows = true families, one column per
        labelled family (families, then `several`, `none`), zeros included."""
        named = {str(x) for x in self.heads["labelled"].to_list()}
        columns = [*self.families, *sorted(named - {*self.families, SEVERAL, NONE}), SEVERAL, NONE]
        counts = self.heads.group_by("family", "labelled").len()
        lookup = {(r["family"], r["labelled"]): r["len"] for r in counts.iter_rows(named=True)}
        return pl.DataFrame(
            {
                "family": self.families,
                **{c: [lookup.get((f, c), 0) for f in self.families] for c in columns},
            },
            schema={"family": pl.String, **dict.fromkeys(columns, pl.Int64)},
        )


def true_families(
    truth: pl.DataFrame, path: Path | str = "head_truth"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(`layer, head, family, share` of each head's single `is_top` row, `layer, head` of the
    heads with several `is_top` rows: a tie, so no single true family). A head without an
    `is_top` row raises `ReportInputError`."""
    per_head = truth.group_by("layer", "head").agg(pl.col("is_top").sum().alias("n_top"))
    bad = per_head.filter(pl.col("n_top") == 0).sort("layer", "head")
    if bad.height:
        r = bad.row(0, named=True)
        raise ReportInputError(
            f"{path}: head L{r['layer']}.H{r['head']} has 0 is_top rows, expected 1 "
            f"({bad.height} such heads)"
        )
    single = per_head.filter(pl.col("n_top") == 1).select("layer", "head")
    top = truth.filter(pl.col("is_top")).join(single, on=["layer", "head"], how="semi")
    tied = per_head.filter(pl.col("n_top") > 1).select("layer", "head")
    return top.select("layer", "head", "family", "share"), tied


def label_truth(
    model: ModelInfo,
    truth: pl.DataFrame,
    labels: pl.DataFrame,
    truth_path: Path | str = "head_truth",
    lexicon: Callable[[str], set[str]] | None = None,
    matcher: str = "family names only",
) -> LabelTruth:
    """Compare a model's labels (`labels.parquet`) with its head_truth; heads = labelled heads."""
    families = list(dict.fromkeys(truth["family"].to_list()))
    top, tied = true_families(truth, truth_path)
    dup = labels.group_by("layer", "head").len().filter(pl.col("len") > 1)
    if dup.height:
        r = dup.row(0, named=True)
        raise ReportInputError(f"labels of {model.key}: head L{r['layer']}.H{r['head']} twice")
    labels = labels.with_columns(
        pl.when(pl.col("valid")).then(pl.col("label")).otherwise(None).alias("label")
    ).select("layer", "head", "label")
    joined = labels.join(top, on=["layer", "head"], how="inner").sort("layer", "head")
    n_tied = labels.join(tied, on=["layer", "head"], how="semi").height
    n_without = labels.height - joined.height - n_tied
    named, labelled, agrees = [], [], []
    for label, family in joined.select("label", "family").rows():
        found = families_named(label, families, lexicon)
        named.append(sorted(found))
        labelled.append(found.pop() if len(found) == 1 else SEVERAL if found else NONE)
        agrees.append(family in named[-1])
    heads = joined.with_columns(
        pl.Series("named", named, dtype=pl.List(pl.String)),
        pl.Series("labelled", labelled, dtype=pl.String),
        pl.Series("agrees", agrees, dtype=pl.Boolean),
    )
    return LabelTruth(model, heads, families, n_without, matcher, n_tied)


def compare_run(run) -> dict[str, LabelTruth]:
    """LabelTruth per model of a `RunData` with both head_truth and labels files."""
    lexicon, matcher = None, ""
    out = {}
    for m in run.models:
        truth, labels = run.head_truth.get(m.key), run.labels.get(m.key)
        if truth is None or labels is None:
            continue
        if not matcher:
            lexicon, matcher = _lexicon()
        out[m.key] = label_truth(m, truth, labels, run.layout.head_truth(m.key), lexicon, matcher)
    return out


# ------------------------------------------------------------------------------- HTML
def _confusion_table(result: LabelTruth) -> str:
    frame = result.confusion()
    header = ["True family ↓ / label names →", *frame.columns[1:], "Heads"]
    rows = []
    for r in frame.iter_rows(named=True):
        cells = [f"<b>{escape(r['family'])}</b>"]
        for c in frame.columns[1:]:
            cell = ours(str(r[c]), model=result.model.key, true=r["family"], labelled=c)
            cells.append(f"<u>{cell}</u>" if c == r["family"] else cell)
        cells.append(str(sum(r[c] for c in frame.columns[1:])))
        rows.append(cells)
    return table(header, rows, "confusion")


def _heads_table(result: LabelTruth) -> str:
    rows = []
    for r in result.heads.iter_rows(named=True):
        label = missing("no valid label") if r["label"] is None else escape(f"“{r['label']}”")
        rows.append(
            [
                head_link(result.model.key, r["layer"], r["head"]),
                label,
                escape(", ".join(r["named"]) or "—"),
                escape(r["family"]),
                f"{r['share']:.2f}",
                "✓" if r["agrees"] else "✗",
            ]
        )
    header = ["Head", "Label", "Label names", "True family", "Its share", "Agrees"]
    return table(header, rows, "label-truth-heads")


def label_truth_section_body(run, results: dict[str, LabelTruth]) -> str:
    """Per model: agreement fraction, confusion table, and the heads (folded)."""
    parts = [
        "<p>Concept-world models only: each head's true family is the family it writes most "
        "(largest share of its direct-contribution variance along the family's class-text "
        "directions, <code>head_truth.parquet</code>). A head agrees when its LLM label names "
        "that family. Confusion: true family (rows) × the family the label names (columns; "
        f"<i>{SEVERAL}</i>: more than one, <i>{NONE}</i>: none); the diagonal is underlined.</p>"
    ]
    if all(frame is None for frame in run.head_truth.values()):
        text = "no head_truth.parquet for any model (only concept-world models have a ground truth)"
        return parts[0] + f"<p>{missing(text)}</p>"
    for m in run.models:
        parts.append(f"<h3>{escape(m.display)}</h3>")
        result = results.get(m.key)
        if result is None:
            path = run.layout.head_truth(m.key)
            why = "no labels file" if run.head_truth.get(m.key) is not None else "no head_truth"
            parts.append(f"<p>{missing(f'{why} ({path}): only concept-world models have one')}</p>")
            continue
        if result.fraction is None:
            parts.append(f"<p>{missing('no labelled head has a ground truth')}</p>")
            continue
        frac = ours(
            f"{result.fraction:.3f}",
            model=m.key,
            metric="label_truth_agreement",
            n_agree=result.n_agree,
            n_heads=result.n_heads,
        )
        note = f"Agreement: {frac} ({result.n_agree} of {result.n_heads} labelled heads"
        n_several = int(
            result.heads.filter(pl.col("agrees") & (pl.col("labelled") == SEVERAL)).height
        )
        note += f"; {n_several} of them by a label naming several families)." if n_several else ")."
        if result.n_without_truth:
            note += f" {result.n_without_truth} labelled heads have no ground truth (left out)."
        if result.n_tied:
            note += f" {result.n_tied} labelled heads have tied top families (left out)."
        note += f" Labels matched with {escape(result.matcher)}."
        parts.append(f"<p>{note}</p>" + _confusion_table(result))
        parts.append(f"<details><summary>every head</summary>{_heads_table(result)}</details>")
    return "".join(parts)
