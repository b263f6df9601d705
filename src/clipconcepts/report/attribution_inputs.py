"""The head-attribution stage's files as the report reads them (after Dreyer et al. 2025).

Per model and attribution dataset, under the run folder (`RunLayout.attribution`; schemas in
`clipconcepts.attribution.schemas`, meanings in docs/attribution.md):

- `{model}/attribution/{dataset}/heads.parquet`: one row per head, its label and CCS, the mean
  of every view over the sampled images (AtP with zero and mean baselines, direct effect, logit
  lens, energy, true effects) and each view's rank;
- `correlations.parquet`: Spearman and Kendall correlations of every ordered pair of views,
  across heads (`level = head`) and per image against the true effects (`level = image`);
- `deletion.parquet`: the deletion curves (mean 100·y per step and method, error over
  interleaved subsets, the area);
- `reliance.parquet`: per target class its top heads by AtP, with how each head's label
  relates to the class (`unexpected` = unrelated);
- `truth.parquet` (concept-world models and sets; elsewhere absent or empty, read as absent):
  precision@k of each view's ranking against the heads the world's ground truth names.

The Parquet schema metadata (key `clipconcepts`, JSON) says what y was (`target`), how many
images were sampled, the baselines, and for the deletion curves the scope and the subsets.

A missing file is not an error (the report says it is missing); a malformed one raises
`ReportInputError` naming the file and the column, as for the other inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from clipconcepts.report.inputs import ModelInfo, ReportInputError, RunLayout, check_columns
from clipconcepts.report.mutual_inputs import read_metadata

KINDS = ("heads", "correlations", "deletion", "reliance", "truth")
# View keys of the heads and correlations files, in display order, and their names.
VIEWS = {
    "atp_zero": "AtP (zero)",
    "atp_mean": "AtP (mean)",
    "direct": "direct effect",
    "logit_lens": "logit lens",
    "energy": "energy",
    "ccs": "CCS",
    "random": "random",
    "true_zero": "true effect (zero)",
    "true_mean": "true effect (mean)",
}
# Deletion-curve methods, in display order, and their names.
METHODS = {
    "atp": "AtP (zero)",
    "direct": "direct effect",
    "ccs": "CCS order",
    "random": "random order",
    "true": "true effect (greedy reference)",
}


def view_name(view: str) -> str:
    return VIEWS.get(view, view)


def method_name(method: str) -> str:
    return METHODS.get(method, method)


def ordered(keys: Sequence[str], known: Sequence[str]) -> list[str]:
    """`keys` in the order of `known`, unknown ones after them in the order given."""
    present = list(dict.fromkeys(keys))
    return [k for k in known if k in present] + [k for k in present if k not in known]


def read_table(path: Path, kind: str) -> pl.DataFrame | None:
    """An attribution table with its columns checked (None when absent or, for the concept
    world's truth file, empty)."""
    if not path.exists():
        return None
    try:
        frame = pl.read_parquet(path)
    except Exception as err:  # any reader error: one message naming the file
        raise ReportInputError(f"{path}: cannot be read as Parquet ({err})") from err
    frame = check_columns(frame, path, f"attribution_{kind}")
    return None if kind == "truth" and frame.is_empty() else frame


@dataclass(frozen=True)
class AttributionResult:
    """One model's attribution tables on one dataset (None = file missing)."""

    model: ModelInfo
    dataset: str
    heads: pl.DataFrame | None
    correlations: pl.DataFrame | None
    deletion: pl.DataFrame | None
    reliance: pl.DataFrame | None
    truth: pl.DataFrame | None
    meta: dict = field(default_factory=dict)  # heads.parquet's (target, n_images, baselines)
    deletion_meta: dict = field(default_factory=dict)  # deletion.parquet's (layers, subsets)

    @property
    def has_any(self) -> bool:
        return any(getattr(self, kind) is not None for kind in KINDS)

    def correlation(self, level: str, x: str, y: str) -> dict | None:
        """The row of (level, x, y), or None."""
        if self.correlations is None:
            return None
        rows = self.correlations.filter(
            (pl.col("level") == level) & (pl.col("x") == x) & (pl.col("y") == y)
        )
        return rows.row(0, named=True) if rows.height else None

    def head_views(self) -> list[str]:
        """The views of the head-level correlation matrix, in display order."""
        if self.correlations is None:
            return []
        rows = self.correlations.filter(pl.col("level") == "head")
        return ordered([*rows["x"].to_list(), *rows["y"].to_list()], list(VIEWS))


@dataclass
class AttributionRun:
    """Every attribution result of a run, per (model key, dataset)."""

    layout: RunLayout
    models: list[ModelInfo]
    datasets: list[str]
    results: dict[tuple[str, str], AttributionResult] = field(default_factory=dict)

    def of_dataset(self, dataset: str) -> list[AttributionResult]:
        """The models with at least one attribution file for `dataset`."""
        return [r for m in self.models if (r := self.results[m.key, dataset]).has_any]

    def absent(self, dataset: str) -> list[ModelInfo]:
        """The models without any attribution file for `dataset`."""
        return [m for m in self.models if not self.results[m.key, dataset].has_any]


def gather_attribution(
    layout: RunLayout, models: Sequence[ModelInfo], datasets: Sequence[str]
) -> AttributionRun:
    """Read (and check) every attribution table of `models` x `datasets`."""
    run = AttributionRun(layout, list(models), list(datasets))
    for d in datasets:
        for m in models:
            tables = {k: read_table(layout.attribution(m.key, d, k), k) for k in KINDS}
            heads_path = layout.attribution(m.key, d, "heads")
            deletion_path = layout.attribution(m.key, d, "deletion")
            run.results[m.key, d] = AttributionResult(
                model=m,
                dataset=d,
                meta=read_metadata(heads_path) if tables["heads"] is not None else {},
                deletion_meta=(
                    read_metadata(deletion_path) if tables["deletion"] is not None else {}
                ),
                **tables,
            )
    return run
