"""The video-retrieval stage's files as the report reads them (CCS paper section 5.6, Figure 5).

Per model and video set, under the run folder (`RunLayout.video_retrieval`):
`{model}/video/{set}.retrieval.parquet`, one row per prune set (strategy, seed) and direction
(`t2v` text-to-video, `v2t` video-to-text) with R@1/5/10/50 (%), median and mean rank, the
query and candidate counts, the chance R@1/5/10 of a random ranking, the tie rule and the
protocol (`schemas.VIDEO_RETRIEVAL`, docs/video.md). The claims section reads the stage's other file,
`{set}.parquet` (the prune schema), for claim (d).

A missing file is not an error (the report says it is missing); a malformed one raises
`ReportInputError` naming the file and the column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from clipconcepts.report.inputs import BASE_STRATEGIES, ModelInfo, RunLayout, read_input

METRICS = ("r1", "r5", "r10", "r50", "median_rank", "mean_rank")
CHANCE = ("r1", "r5", "r10")
DIRECTIONS = ("t2v", "v2t")


@dataclass(frozen=True)
class RetrievalSummary:
    """One strategy and direction over its rows (one row per seed for `random`)."""

    strategy: str
    direction: str
    n_runs: int
    mean: dict[str, float]
    std: dict[str, float | None]  # sample std (ddof = 1) over runs; None for a single run
    n_heads: tuple[int, ...]
    n_queries: int
    n_candidates: int
    chance: dict[str, float]  # chance R@1/5/10 (%)
    ties: str
    protocol: str | None = None  # ccs | clip4clip (None: not recorded)

    @property
    def is_empty(self) -> bool:
        """The strategy pruned no heads (an empty group)."""
        return self.n_heads == (0,)


def summarise_retrieval(frame: pl.DataFrame) -> dict[tuple[str, str], RetrievalSummary]:
    """Per (strategy, direction), in file order: mean and sample std of every metric."""
    out: dict[tuple[str, str], RetrievalSummary] = {}
    grouped = frame.group_by("strategy", "direction", maintain_order=True).agg(
        pl.len().alias("n_runs"),
        *[pl.col(m).mean().alias(f"{m}_mean") for m in METRICS],
        *[pl.col(m).std(ddof=1).alias(f"{m}_std") for m in METRICS],
        *[pl.col(f"chance_{k}").first() for k in CHANCE],
        pl.col("n_heads").unique().sort().alias("n_heads"),
        pl.col("n_queries").first(),
        pl.col("n_candidates").first(),
        pl.col("ties").first(),
        pl.col("protocol").first(),
    )
    for row in grouped.iter_rows(named=True):
        single = row["n_runs"] < 2
        out[row["strategy"], row["direction"]] = RetrievalSummary(
            strategy=row["strategy"],
            direction=row["direction"],
            n_runs=row["n_runs"],
            mean={m: row[f"{m}_mean"] for m in METRICS},
            std={m: None if single else row[f"{m}_std"] for m in METRICS},
            n_heads=tuple(row["n_heads"]),
            n_queries=row["n_queries"],
            n_candidates=row["n_candidates"],
            chance={k: row[f"chance_{k}"] for k in CHANCE},
            ties=row["ties"],
            protocol=row["protocol"],
        )
    return out


def strategy_order(strategies: Sequence[str]) -> list[str]:
    """original, high, low, random, then the others (concept, manual) in the order given."""
    present = list(dict.fromkeys(strategies))
    return [s for s in BASE_STRATEGIES if s in present] + [
        s for s in present if s not in BASE_STRATEGIES
    ]


@dataclass(frozen=True)
class VideoResult:
    """One model's retrieval results on one video set (`summary` empty = file missing)."""

    model: ModelInfo
    video_set: str
    frame: pl.DataFrame | None
    summary: dict[tuple[str, str], RetrievalSummary] = field(default_factory=dict)

    def strategies(self) -> list[str]:
        return strategy_order([s for s, _ in self.summary])

    def directions(self) -> list[str]:
        present = [d for _, d in self.summary]
        return [d for d in DIRECTIONS if d in present] + [
            d for d in dict.fromkeys(present) if d not in DIRECTIONS
        ]

    def get(self, strategy: str, direction: str) -> RetrievalSummary | None:
        return self.summary.get((strategy, direction))


@dataclass
class VideoRun:
    """Every retrieval result of a run, per (model key, video set)."""

    layout: RunLayout
    models: list[ModelInfo]
    sets: list[str]
    results: dict[tuple[str, str], VideoResult] = field(default_factory=dict)

    def of_set(self, video_set: str) -> list[VideoResult]:
        """The models with a retrieval file for `video_set`."""
        return [r for m in self.models if (r := self.results[m.key, video_set]).frame is not None]

    def absent(self, video_set: str) -> list[ModelInfo]:
        return [m for m in self.models if self.results[m.key, video_set].frame is None]


def gather_video(layout: RunLayout, models: Sequence[ModelInfo], sets: Sequence[str]) -> VideoRun:
    """Read (and check) the retrieval file of every model x video set."""
    run = VideoRun(layout, list(models), list(sets))
    for s in sets:
        for m in models:
            frame = read_input(layout.video_retrieval(m.key, s), "video_retrieval")
            summary = summarise_retrieval(frame) if frame is not None else {}
            run.results[m.key, s] = VideoResult(m, s, frame, summary)
    return run
