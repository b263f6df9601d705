"""The report's inputs: where each file lives in a run folder, reading it with a column check,
and the per-strategy summary of a pruning file.

A missing file is not an error (the report says it is missing); a file that lacks a required
column, or whose column cannot be read as the required type, raises `ReportInputError` naming
the file and the column.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from clipconcepts.attribution import schemas as attribution_schemas
from clipconcepts.mutual import schemas as mutual_schemas
from clipconcepts.report.head_images import HEAD_IMAGES
from clipconcepts.schemas import PRUNE_ITEMS, PRUNE_RESULTS, VIDEO_ITEMS, VIDEO_RETRIEVAL

log = logging.getLogger(__name__)


# Required columns per input kind, with the type each is read as (extra columns are kept).
def _pick(schema: dict, *names: str) -> dict:
    """The columns `names` of an output schema (what the report reads of it)."""
    return {name: schema[name] for name in names}


COLUMNS: dict[str, dict[str, pl.DataType]] = {
    "ccs_at_k": {
        "judge": pl.String,
        "k": pl.Int8,
        "n_heads": pl.Int32,
        "fraction": pl.Float64,
        "n_with_invalid": pl.Int32,
    },
    "ccs": {
        "layer": pl.Int16,
        "head": pl.Int16,
        "label": pl.String,
        "judge": pl.String,
        "ccs": pl.Int8,
        "n_invalid": pl.Int8,
        "verdicts": pl.List(pl.Boolean),
        "texts": pl.List(pl.String),
    },
    "prune": PRUNE_RESULTS,
    "prune_items": _pick(PRUNE_ITEMS, "image_id", "strategy", "seed", "correct_top1"),
    "video_items": _pick(VIDEO_ITEMS, "strategy", "seed", "direction", "query", "rank"),
    "agreement": {
        "model": pl.String,
        "n": pl.Int64,
        "n_blank": pl.Int64,
        "accuracy": pl.Float64,
        "kappa": pl.Float64,
        "spearman_rho": pl.Float64,
        "kendall_tau": pl.Float64,
    },
    "conceptworld_metrics": {"family": pl.String, "accuracy": pl.Float64},
    "head_truth": {
        "layer": pl.Int16,
        "head": pl.Int16,
        "family": pl.String,
        "score": pl.Float64,
        "share": pl.Float64,
        "dims": pl.Float64,
        "is_top": pl.Boolean,
    },
    "family_dims": {
        "family": pl.String,
        "n_values": pl.Int16,
        "dims": pl.Float64,
        "share": pl.Float64,
    },
    "labels": {"layer": pl.Int16, "head": pl.Int16, "label": pl.String, "valid": pl.Boolean},
    # the mutual-knowledge stage (`report.mutual_inputs` reads these columns of its outputs)
    "mutual_summary": mutual_schemas.SUMMARY_SCHEMA,
    "mutual_images": _pick(
        mutual_schemas.IMAGE_SCHEMA,
        "image_id",
        "class_id",
        "classname",
        "predicted_name",
        "correct",
        "method",
        "status",
        "ellipses",
        "dv_ids",
        "dv_texts",
        "shared_ids",
        "mi",
        "thumbnail",
    ),
    "mutual_truth": mutual_schemas.TRUTH_SCHEMA,
    "mutual_faithfulness_summary": _pick(
        mutual_schemas.FAITHFULNESS_SUMMARY_SCHEMA,
        "method",
        "order",
        "steps",
        "n_images",
        "n_no_concepts",
        "deletion",
        "insertion",
        "acc_drop",
        "acc_inc",
    ),
    "mutual_augmented": _pick(
        mutual_schemas.AUGMENTED_SCHEMA,
        "method",
        "n_images",
        "plain_top1",
        "base_top1",
        "ours_top1",
        "delta",
    ),
    "mutual_faithfulness_truth": _pick(
        mutual_schemas.REGION_TRUTH_SCHEMA,
        "level",
        "classname",
        "region",
        "n_images",
        "n_skipped",
        "area",
        "drop_true",
        "drop_random",
        "margin",
        "wins",
    ),
}

# the attribution stage (`report.attribution_inputs`) and the video stage (`report.video_inputs`)
COLUMNS.update(
    {
        f"attribution_{kind}": getattr(attribution_schemas, kind.upper())
        for kind in ("heads", "correlations", "deletion", "reliance", "truth")
    }
)
COLUMNS["video_retrieval"] = VIDEO_RETRIEVAL
# the head browser (`report.head_inputs`): TEXTSPAN texts, CCS groups, the head-images step's file
COLUMNS["textspans"] = {
    "layer": pl.Int16,
    "head": pl.Int16,
    "rank": pl.Int8,
    "text": pl.String,
    "variance_fraction": pl.Float64,
}
COLUMNS["head_groups"] = {"group": pl.String, "layer": pl.Int16, "head": pl.Int16}
COLUMNS["head_images"] = HEAD_IMAGES

MAJORITY = "majority"
BASE_STRATEGIES = ("original", "high", "low", "random")


class ReportInputError(ValueError):
    """An input file exists but does not have the expected form."""


@dataclass(frozen=True)
class RunLayout:
    """Paths of a run's result files (`run_dir` = `results/{run}`)."""

    run_dir: Path

    def ccs_at_k(self, model: str) -> Path:
        return self.run_dir / model / "ccs_at_k.parquet"

    def ccs(self, model: str) -> Path:
        return self.run_dir / model / "ccs.parquet"

    def prune(self, model: str, dataset: str) -> Path:
        return self.run_dir / model / "prune" / f"{dataset}.parquet"

    def prune_items(self, model: str, dataset: str) -> Path:
        """Every image's outcome per prune set (`schemas.PRUNE_ITEMS`)."""
        return self.run_dir / model / "prune" / f"{dataset}.items.parquet"

    def agreement(self) -> Path:
        return self.run_dir / "agreement" / "agreement.parquet"

    def conceptworld_metrics(self) -> Path:
        return self.run_dir / "conceptworld" / "model" / "metrics.parquet"

    def textbank(self) -> Path:
        """The run's text bank (`text_id, text, family`)."""
        return self.run_dir / "textbank.parquet"

    def head_truth(self, model: str) -> Path:
        return self.run_dir / model / "head_truth.parquet"

    def family_dims(self, model: str) -> Path:
        return self.run_dir / model / "family_dims.parquet"

    def labels(self, model: str) -> Path:
        return self.run_dir / model / "labels.parquet"

    def mutual(self, model: str, mutual_set: str, what: str) -> Path:
        """The mutual-knowledge stage's `what` file (images, summary, truth) of a model and set."""
        return self.run_dir / model / "mutual" / mutual_set / f"{what}.parquet"

    def video(self, model: str, dataset: str) -> Path:
        return self.run_dir / model / "video" / f"{dataset}.parquet"

    def parse_video(self, path: str | Path) -> tuple[str, str]:
        """`{run_dir}/{model}/video/{dataset}.parquet` -> (model, dataset)."""
        path = Path(path)
        expected = f"{path}: a video result must be {self.video('<model>', '<dataset>')}"
        try:
            parts = path.resolve().relative_to(self.run_dir.resolve()).parts
        except ValueError as err:
            raise ReportInputError(expected) from err
        if len(parts) != 3 or parts[1] != "video" or path.suffix != ".parquet":
            raise ReportInputError(expected)
        return parts[0], path.stem

    def attribution(self, model: str, dataset: str, kind: str) -> Path:
        """The attribution stage's `kind` table (heads, correlations, deletion, reliance,
        truth) of a model and dataset."""
        return self.run_dir / model / "attribution" / dataset / f"{kind}.parquet"

    def video_items(self, model: str, video_set: str) -> Path:
        """Every query's rank per prune set and direction (`schemas.VIDEO_ITEMS`)."""
        return self.run_dir / model / "video" / f"{video_set}.items.parquet"

    def head_file(self, model: str, kind: str) -> Path:
        """A model's file read by the head browser: kind = textspans | head_groups |
        head_images (the `head_images` rule's thumbnails)."""
        return self.run_dir / model / f"{kind}.parquet"

    def video_retrieval(self, model: str, video_set: str) -> Path:
        """Every retrieval metric per prune set and direction (`schemas.VIDEO_RETRIEVAL`)."""
        return self.run_dir / model / "video" / f"{video_set}.retrieval.parquet"


def read_input(path: Path, kind: str) -> pl.DataFrame | None:
    """The file as a DataFrame with its required columns cast to their types; None if absent."""
    path = Path(path)
    if not path.exists():
        log.info("report input missing: %s", path)
        return None
    try:
        frame = pl.read_parquet(path)
    except Exception as err:  # any reader error: one message naming the file
        raise ReportInputError(f"{path}: cannot be read as Parquet ({err})") from err
    return check_columns(frame, path, kind)


def check_columns(frame: pl.DataFrame, path: Path, kind: str) -> pl.DataFrame:
    """`frame` with the required columns of `kind` cast to their types (`ReportInputError`
    naming the file and the column when one is absent or of another type)."""
    required = COLUMNS[kind]
    for column, dtype in required.items():
        if column not in frame.columns:
            raise ReportInputError(
                f"{path}: missing column {column!r} (a {kind} file needs {list(required)}; "
                f"it has {frame.columns})"
            )
        try:
            frame = frame.with_columns(pl.col(column).cast(dtype, strict=True))
        except Exception as err:  # a failed cast: name the column and both types
            raise ReportInputError(
                f"{path}: column {column!r} has type {frame.schema[column]}, expected {dtype}"
            ) from err
    return frame


def majority_rows(frame: pl.DataFrame) -> tuple[pl.DataFrame, str | None]:
    """The rows of the 'majority' judge, or of the only judge if there is no majority;
    returns (rows, judge name) and (empty, None) when neither exists."""
    judges = list(dict.fromkeys(frame["judge"].to_list()))
    if MAJORITY in judges:
        return frame.filter(pl.col("judge") == MAJORITY), MAJORITY
    if len(judges) == 1:
        return frame, judges[0]
    return frame.clear(), None


@dataclass(frozen=True)
class StrategySummary:
    """One strategy's results over its rows (one row per seed for `random`)."""

    strategy: str
    n_runs: int
    top1_mean: float
    top1_std: float | None  # sample std (ddof = 1) over runs; None for a single run
    top5_mean: float
    top5_std: float | None
    n_heads: tuple[int, ...]  # distinct head counts over runs
    n_images: tuple[int, ...]

    @property
    def is_empty(self) -> bool:
        """The strategy pruned no heads (an empty group)."""
        return self.n_heads == (0,)


def summarise_prune(frame: pl.DataFrame) -> dict[str, StrategySummary]:
    """Per strategy (in file order): mean and sample std of top-1/top-5 over its rows."""
    out: dict[str, StrategySummary] = {}
    grouped = frame.group_by("strategy", maintain_order=True).agg(
        pl.len().alias("n_runs"),
        pl.col("top1").mean().alias("top1_mean"),
        pl.col("top1").std(ddof=1).alias("top1_std"),
        pl.col("top5").mean().alias("top5_mean"),
        pl.col("top5").std(ddof=1).alias("top5_std"),
        pl.col("n_heads").unique().sort().alias("n_heads"),
        pl.col("n_images").unique().sort().alias("n_images"),
    )
    for row in grouped.iter_rows(named=True):
        single = row["n_runs"] < 2
        out[row["strategy"]] = StrategySummary(
            strategy=row["strategy"],
            n_runs=row["n_runs"],
            top1_mean=row["top1_mean"],
            top1_std=None if single else row["top1_std"],
            top5_mean=row["top5_mean"],
            top5_std=None if single else row["top5_std"],
            n_heads=tuple(row["n_heads"]),
            n_images=tuple(row["n_images"]),
        )
    return out


@dataclass(frozen=True)
class Outcomes:
    """Per-item 0/1 outcomes of every prune set of one result file, aligned on the same items:
    `rows[(strategy, seed)]` is a bool array [items] (top-1 correct, or a query's R@K hit)."""

    path: Path
    n_items: int
    rows: dict[tuple[str, int], np.ndarray]

    def arm(self, strategy: str) -> np.ndarray | None:
        """[seeds, items] of `strategy` (seeds in increasing order), None if absent."""
        seeds = sorted(seed for name, seed in self.rows if name == strategy)
        if not seeds:
            return None
        return np.stack([self.rows[strategy, seed] for seed in seeds])


def _aligned(frame: pl.DataFrame, key: str, value: pl.Expr, path: Path) -> Outcomes:
    """Outcomes from a long frame [strategy, seed, key, ...] whose sets list their items in
    the same order (one pass over the data evaluates every set): `ReportInputError` naming the
    file and the set when a set's items differ from the first set's."""
    frame = frame.select("strategy", "seed", key, value.alias("outcome"))
    rows: dict[tuple[str, int], np.ndarray] = {}
    reference: pl.Series | None = None
    for (strategy, seed), part in frame.partition_by(
        "strategy", "seed", as_dict=True, maintain_order=True
    ).items():
        ids = part[key]
        if reference is None:
            reference = ids
        elif len(ids) != len(reference) or not ids.equals(reference):
            raise ReportInputError(
                f"{path}: set {strategy} (seed {seed}) lists other items than the first set "
                f"({len(ids)} vs {len(reference)}): every set must be evaluated on the same items"
            )
        rows[str(strategy), int(seed)] = part["outcome"].to_numpy().astype(bool)
    return Outcomes(path, 0 if reference is None else len(reference), rows)


def read_prune_outcomes(path: Path) -> Outcomes | None:
    """Top-1 correctness per image and prune set from a `.items.parquet`; None if absent."""
    frame = read_input(path, "prune_items")
    if frame is None:
        return None
    return _aligned(frame, "image_id", pl.col("correct_top1"), path)


def read_video_outcomes(path: Path, k: int = 1, direction: str = "t2v") -> Outcomes | None:
    """R@`k` hits (rank <= k) per `direction` query and prune set; None if absent."""
    frame = read_input(path, "video_items")
    if frame is None:
        return None
    frame = frame.filter(pl.col("direction") == direction)
    return _aligned(frame, "query", pl.col("rank") <= k, path)


def concept_group(strategy: str) -> tuple[str, str | None] | None:
    """'concept:objects:vs:colors' -> ('objects', 'colors'); 'concept:locations' ->
    ('locations', None); anything else -> None."""
    if not strategy.startswith("concept:"):
        return None
    parts = strategy.split(":")
    if len(parts) == 4 and parts[2] == "vs":
        return parts[1], parts[3]
    return strategy.removeprefix("concept:"), None


def manual_name(strategy: str) -> str | None:
    return strategy.removeprefix("manual:") if strategy.startswith("manual:") else None


@dataclass(frozen=True)
class ModelInfo:
    """A run's model: its key (folder name), open_clip spec, display name and paper name."""

    key: str
    arch: str | None
    pretrained: str | None
    display: str
    paper_name: str | None = None


@dataclass
class RunData:
    """Everything the report shows, read from a run folder. `None` = file missing."""

    layout: RunLayout
    models: list[ModelInfo]
    datasets: list[str]
    ccs_at_k: dict[str, pl.DataFrame | None]
    ccs: dict[str, pl.DataFrame | None]
    prune: dict[tuple[str, str], dict[str, StrategySummary] | None]
    agreement: pl.DataFrame | None
    conceptworld_metrics: pl.DataFrame | None
    # concept-world ground truth: per model, head_truth and labels (None where absent)
    head_truth: dict[str, pl.DataFrame | None] = field(default_factory=dict)
    # per model: in how many directions the whole model writes each family (concept world)
    family_dims: dict[str, pl.DataFrame | None] = field(default_factory=dict)
    labels: dict[str, pl.DataFrame | None] = field(default_factory=dict)
    # video retrieval results in the prune schema, per (model, video dataset) given
    video: dict[tuple[str, str], dict[str, StrategySummary]] = field(default_factory=dict)


def gather_run(
    run_dir: str | Path,
    models: list[ModelInfo],
    datasets: list[str],
    video: list[str | Path] | tuple[str | Path, ...] = (),
) -> RunData:
    """Read (and check) every input the report uses. Labels and family dims are read only for
    models with a `head_truth.parquet` (the concept world's); `video` lists video result files, if any."""
    layout = RunLayout(Path(run_dir))
    prune: dict[tuple[str, str], dict[str, StrategySummary] | None] = {}
    for m in models:
        for dataset in datasets:
            frame = read_input(layout.prune(m.key, dataset), "prune")
            prune[m.key, dataset] = None if frame is None else summarise_prune(frame)
    head_truth = {m.key: read_input(layout.head_truth(m.key), "head_truth") for m in models}
    labels = {
        key: read_input(layout.labels(key), "labels") if truth is not None else None
        for key, truth in head_truth.items()
    }
    family_dims = {
        key: read_input(layout.family_dims(key), "family_dims") if truth is not None else None
        for key, truth in head_truth.items()
    }
    video_runs: dict[tuple[str, str], dict[str, StrategySummary]] = {}
    for path in video:
        frame = read_input(Path(path), "prune")
        if frame is None:
            raise ReportInputError(f"{path}: video result file given but absent")
        video_runs[layout.parse_video(path)] = summarise_prune(frame)
    return RunData(
        layout=layout,
        models=models,
        datasets=list(datasets),
        ccs_at_k={m.key: read_input(layout.ccs_at_k(m.key), "ccs_at_k") for m in models},
        ccs={m.key: read_input(layout.ccs(m.key), "ccs") for m in models},
        prune=prune,
        agreement=read_input(layout.agreement(), "agreement"),
        conceptworld_metrics=read_input(layout.conceptworld_metrics(), "conceptworld_metrics"),
        head_truth=head_truth,
        family_dims=family_dims,
        labels=labels,
        video=video_runs,
    )
