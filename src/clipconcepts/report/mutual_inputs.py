"""The mutual-knowledge stage's files as the report reads them (Sammani & Deligiannis 2024).

Per model and mutual set, under the run folder (`RunLayout.mutual`):

- `{model}/mutual/{set}/summary.parquet`: per method, the dataset's top-1, MI, AUC and averaged
  removal curve (`level = "dataset"`), and the same per class; its Parquet schema metadata
  (key `clipconcepts`, JSON) says which MI form ran (`mi_form`), which class the text side took
  (`text_side`) and the model's input size (`image_size`);
- `{model}/mutual/{set}/images.parquet`: one row per image and method; only the rows with a
  thumbnail (the first image of a few classes) are read, for the explanation panels;
- `{model}/mutual/{set}/truth.parquet` (concept-world models only): the mutual descriptors'
  precision against the images' true attributes;
- `{model}/mutual/{set}/faithfulness_summary.parquet` (Table 1: deletion, insertion, AccDrop,
  AccInc per method, ranked and random order), `augmented.parquet` (Table 2: Base and Ours
  top-1 per method) and `faithfulness_truth.parquet` (the concept world's true-vs-random region
  check; an empty table elsewhere, read as absent).

A missing file is not an error (the report says it is missing); a malformed one raises
`ReportInputError` naming the file and the column, as for the other inputs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from clipconcepts.report.inputs import (
    COLUMNS,
    ModelInfo,
    ReportInputError,
    RunLayout,
    check_columns,
)
from clipconcepts.report.paper import PaperValues

META_KEY = b"clipconcepts"
METHOD_ORDER = ("pca", "kmeans")


def method_order(methods: Sequence[str]) -> list[str]:
    """PCA, K-means, then any other method in the order given."""
    known = [m for m in METHOD_ORDER if m in methods]
    return known + [m for m in dict.fromkeys(methods) if m not in METHOD_ORDER]


def read_metadata(path: Path) -> dict:
    """The stage's JSON schema metadata of a Parquet file ({} when it has none)."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except Exception as err:  # any reader error: one message naming the file
        raise ReportInputError(f"{path}: cannot be read as Parquet ({err})") from err
    if META_KEY not in meta:
        return {}
    try:
        return json.loads(meta[META_KEY])
    except json.JSONDecodeError as err:
        raise ReportInputError(f"{path}: schema metadata 'clipconcepts' is not JSON") from err


def read_examples(path: Path) -> pl.DataFrame | None:
    """The rows of an images.parquet that carry a thumbnail (None when the file is absent)."""
    if not path.exists():
        return None
    try:
        schema = pl.read_parquet_schema(path)
        if "thumbnail" not in schema:
            raise ReportInputError(
                f"{path}: missing column 'thumbnail' (a mutual_images file needs "
                f"{list(COLUMNS['mutual_images'])}; it has {list(schema)})"
            )
        frame = pl.scan_parquet(path).filter(pl.col("thumbnail").is_not_null()).collect()
    except ReportInputError:
        raise
    except Exception as err:  # any reader error: one message naming the file
        raise ReportInputError(f"{path}: cannot be read as Parquet ({err})") from err
    return check_columns(frame, path, "mutual_images")


def _read(path: Path, kind: str) -> pl.DataFrame | None:
    if not path.exists():
        return None
    try:
        frame = pl.read_parquet(path)
    except Exception as err:  # any reader error: one message naming the file
        raise ReportInputError(f"{path}: cannot be read as Parquet ({err})") from err
    return check_columns(frame, path, kind)


def _nonempty(frame: pl.DataFrame | None) -> pl.DataFrame | None:
    return None if frame is None or frame.is_empty() else frame


@dataclass(frozen=True)
class MutualResult:
    """One model's mutual-knowledge results on one set (None = file missing)."""

    model: ModelInfo
    mutual_set: str
    summary: pl.DataFrame | None
    meta: dict
    examples: pl.DataFrame | None
    truth: pl.DataFrame | None
    paper_name: str | None = None  # the mutual-knowledge paper's name of the model
    faithfulness: pl.DataFrame | None = None  # Table 1 (faithfulness_summary.parquet)
    augmented: pl.DataFrame | None = None  # Table 2 (augmented.parquet)
    regions: pl.DataFrame | None = None  # concept world: faithfulness_truth.parquet

    def dataset_rows(self) -> dict[str, dict]:
        """Method -> the summary's dataset-level row, PCA first."""
        if self.summary is None:
            return {}
        rows = self.summary.filter(pl.col("level") == "dataset")
        by_method = {r["method"]: r for r in rows.iter_rows(named=True)}
        return {m: by_method[m] for m in method_order(list(by_method))}

    @property
    def top1(self) -> float | None:
        """The dataset's top-1 (%), from the first method's row (every method sees the same
        predictions)."""
        rows = self.dataset_rows()
        return next(iter(rows.values()))["top1"] if rows else None

    @property
    def image_size(self) -> int | None:
        size = self.meta.get("image_size")
        return int(size) if size else None


@dataclass
class MutualRun:
    """Every mutual-knowledge result of a run, per (model key, set)."""

    layout: RunLayout
    models: list[ModelInfo]
    sets: list[str]
    results: dict[tuple[str, str], MutualResult] = field(default_factory=dict)

    def of_set(self, mutual_set: str) -> list[MutualResult]:
        return [self.results[m.key, mutual_set] for m in self.models]


def gather_mutual(
    layout: RunLayout, models: Sequence[ModelInfo], sets: Sequence[str], values: PaperValues
) -> MutualRun:
    """Read (and check) every mutual-knowledge file of `models` x `sets`."""
    run = MutualRun(layout, list(models), list(sets))
    for s in sets:
        for m in models:
            summary_path = layout.mutual(m.key, s, "summary")
            summary = _read(summary_path, "mutual_summary")
            meta = read_metadata(summary_path) if summary is not None else {}
            run.results[m.key, s] = MutualResult(
                model=m,
                mutual_set=s,
                summary=summary,
                meta=meta,
                examples=read_examples(layout.mutual(m.key, s, "images")),
                truth=_read(layout.mutual(m.key, s, "truth"), "mutual_truth"),
                paper_name=values.mutual_model_name(m.arch, m.pretrained),
                faithfulness=_read(
                    layout.mutual(m.key, s, "faithfulness_summary"), "mutual_faithfulness_summary"
                ),
                augmented=_read(layout.mutual(m.key, s, "augmented"), "mutual_augmented"),
                regions=_nonempty(
                    _read(
                        layout.mutual(m.key, s, "faithfulness_truth"), "mutual_faithfulness_truth"
                    )
                ),
            )
    return run


def model_family(arch: str | None) -> str:
    """ViT / ResNet / ConvNeXt from an open_clip architecture name; 'other' otherwise."""
    name = (arch or "").lower()
    if "convnext" in name:
        return "ConvNeXt"
    if name.startswith(("rn", "resnet")) or "resnet" in name:
        return "ResNet"
    if "vit" in name:
        return "ViT"
    return "other"
