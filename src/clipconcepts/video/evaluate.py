"""Zero-shot text-video retrieval of every prune set, from one decode of the dataset.

Two tables per model x dataset:
- the prune schema (`schemas.PRUNE_RESULTS`, read by the report's claim (d)): one row per prune
  set, `top1` = text-to-video R@1 and `top5` = text-to-video R@5 (percent), `n_images` = videos
  retrieved over;
- the retrieval schema (`schemas.VIDEO_RETRIEVAL`): one row per prune set and direction
  (`t2v`, `v2t`) with R@1/5/10/50, median and mean rank, query and candidate counts, and the
  chance R@1/5/10 of a random ranking.

A third table (`schemas.VIDEO_ITEMS`) keeps every query's rank, and the candidates above and
tied with its right answer, per prune set and direction, so the report can judge a difference
of recalls by a paired bootstrap over queries (and any R@K can be recomputed under any tie rule).

The protocol (`PROTOCOLS`, config key `video.protocol`) decides three things: whether a video's
mean frame embedding is renormalised, which captions are queries (each video's first, or all),
and the video-to-text rule (`metrics.V2T_RULES`). `ccs` is the CCS authors' code, `clip4clip`
CLIP4Clip's evaluation (docs/video.md states both exactly).

Captions are embedded once (no template, L2-normalised; texts longer than the model's context
are truncated by its tokenizer); pruning acts on the vision tower only, as the CCS authors'.
Videos skipped (`on_bad_video: skip`) leave the candidate set with their captions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import torch

from clipconcepts.evaluate.strategies import PruneSet
from clipconcepts.io import atomic_path
from clipconcepts.schemas import PRUNE_RESULTS, VIDEO_ITEMS, VIDEO_RETRIEVAL
from clipconcepts.video.datasets import VideoDataset
from clipconcepts.video.encode import encode_videos
from clipconcepts.video.metrics import retrieval_metrics_and_ranks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoProtocol:
    """How embeddings and queries are formed: see the module docstring."""

    renormalise: bool  # the mean of the L2-normalised frame embeddings is L2-normalised again
    captions: str  # "first": each video's first caption only; "all": every caption
    v2t: str  # video-to-text rule (metrics.V2T_RULES)


PROTOCOLS = {
    "ccs": VideoProtocol(renormalise=False, captions="first", v2t="caption"),
    "clip4clip": VideoProtocol(renormalise=True, captions="all", v2t="video"),
}


def video_protocol(name: str) -> VideoProtocol:
    if name not in PROTOCOLS:
        raise ValueError(
            f"config key video.protocol is {name!r}; use one of {', '.join(PROTOCOLS)}"
        )
    return PROTOCOLS[name]


def first_captions(caption_video: Sequence[int]) -> list[int]:
    """Indices of each video's first caption, in caption order."""
    seen: set[int] = set()
    out = []
    for t, v in enumerate(caption_video):
        if int(v) not in seen:
            seen.add(int(v))
            out.append(t)
    return out


@dataclass
class VideoResults:
    prune: pl.DataFrame  # PRUNE_RESULTS
    retrieval: pl.DataFrame  # VIDEO_RETRIEVAL
    items: pl.DataFrame  # VIDEO_ITEMS
    n_decoded: int
    n_frames: int
    skipped: list[tuple[str, str]]  # (video id, reason)


@torch.no_grad()
def evaluate_video_retrieval(
    clip,
    dataset: VideoDataset,
    prune_sets: Sequence[PruneSet],
    *,
    batch_size: int = 16,
    frame_batch_size: int = 256,
    num_workers: int = 0,
    sets_per_pass: int = 8,
    ties: str = "pessimistic",
    protocol: str = "ccs",
    text_batch_size: int = 256,
    progress: bool = True,
) -> VideoResults:
    """Retrieval metrics of each prune set (rows in the order of `prune_sets`) under
    `protocol` (`PROTOCOLS`) and the tie rule `ties` (`metrics.TIES`)."""
    rules = video_protocol(protocol)
    sets = list(prune_sets)
    if not sets:
        raise ValueError("no prune sets to evaluate (video.strategies)")
    videos = encode_videos(
        clip,
        dataset,
        [list(s.heads) for s in sets],
        batch_size=batch_size,
        frame_batch_size=frame_batch_size,
        num_workers=num_workers,
        sets_per_pass=sets_per_pass,
        progress=progress,
        renormalise=rules.renormalise,
    )
    log.info(
        "%s: decoded %d videos once each (%d frames embedded) for %d prune sets",
        dataset.name,
        videos.n_decoded,
        videos.n_frames,
        len(sets),
    )
    position = {index: k for k, index in enumerate(videos.kept)}
    keep = [t for t, v in enumerate(dataset.caption_video.tolist()) if v in position]
    if rules.captions == "first":
        keep = [keep[t] for t in first_captions(dataset.caption_video[keep])]
        log.info("protocol %s: %d queries, each video's first caption", protocol, len(keep))
    if not videos.kept or not keep:
        raise ValueError(f"{dataset.name}: no video could be embedded (all skipped)")
    captions = [dataset.captions[t] for t in keep]
    owners = torch.tensor([position[int(dataset.caption_video[t])] for t in keep])
    texts = clip.encode_text(captions, normalize=True, batch_size=text_batch_size).float()
    kept_ids = [dataset.video_ids[i] for i in videos.kept]
    query_ids = {
        "t2v": [kept_ids[int(v)] for v in owners],
        "v2t": [kept_ids[int(v)] for v in torch.unique(owners)],  # videos with captions
    }
    prune_rows, retrieval_rows, item_parts = [], [], []
    for s, prune_set in enumerate(sets):
        sim = texts @ videos.embeddings[s].to(texts.device).T  # [T, V]
        metrics, queries = retrieval_metrics_and_ranks(
            sim, owners.to(sim.device), ties=ties, v2t=rules.v2t
        )
        for direction, counts in queries.items():
            item_parts.append(
                pl.DataFrame(
                    {
                        "strategy": prune_set.strategy,
                        "seed": prune_set.seed,
                        "direction": direction,
                        "query": range(len(counts)),
                        "query_id": query_ids[direction],
                        "rank": counts.rank(ties),
                        "n_higher": counts.higher,
                        "n_tied": counts.tied,
                    },
                    schema=VIDEO_ITEMS,
                )
            )
        base = {
            "strategy": prune_set.strategy,
            "seed": prune_set.seed,
            "heads": prune_set.head_names,
            "n_heads": prune_set.n_heads,
        }
        t2v = metrics["t2v"]
        prune_rows.append(
            {**base, "top1": t2v["r1"], "top5": t2v["r5"], "n_images": len(videos.kept)}
        )
        for direction, row in metrics.items():
            retrieval_rows.append(
                {**base, "direction": direction, **row, "ties": ties, "protocol": protocol}
            )
    skipped = [(dataset.video_ids[i], why) for i, why in videos.skipped]
    return VideoResults(
        prune=pl.DataFrame(prune_rows, schema=PRUNE_RESULTS),
        retrieval=pl.DataFrame(retrieval_rows, schema=VIDEO_RETRIEVAL),
        items=pl.concat(item_parts) if item_parts else pl.DataFrame(schema=VIDEO_ITEMS),
        n_decoded=videos.n_decoded,
        n_frames=videos.n_frames,
        skipped=skipped,
    )


def write_video_results(
    results: VideoResults,
    prune_path: str | Path,
    retrieval_path: str | Path,
    items_path: str | Path | None = None,
):
    """The tables, each written atomically (the per-query ranks first, when asked for: the
    prune table's existence marks a finished job)."""
    tables = [
        (results.prune, PRUNE_RESULTS, prune_path),
        (results.retrieval, VIDEO_RETRIEVAL, retrieval_path),
    ]
    if items_path is not None:
        tables.insert(0, (results.items, VIDEO_ITEMS, items_path))
    for frame, schema, path in tables:
        with atomic_path(path) as tmp:
            frame.select(list(schema)).cast(schema).write_parquet(tmp)
