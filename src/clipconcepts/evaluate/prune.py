"""Zero-shot accuracy of every prune set in one pass over a dataset.

Per image batch, `clip.encode_image_multi` runs the layers before the first pruned layer once
and the rest once per prune set (stacked along the batch), so S strategies cost about
`1 + S * k / L` unpruned passes for k pruned layers of L, not S. Soft pruning is zero-ablation
of the heads' outputs through the full model (later layers see the change), as the CCS authors'
zeroing of the heads' `out_proj` columns.

Besides the accuracy table, every image's outcome per prune set (`schemas.PRUNE_ITEMS`:
predicted class, top-1/top-5 correct, margin = true-class logit minus the best other), so the
report can judge a difference between two sets by a paired bootstrap over images. The table is
the items' aggregate (`summarise_items`), so the two files always agree.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import torch
from tqdm.auto import tqdm

from clipconcepts.evaluate.strategies import PruneSet
from clipconcepts.io import atomic_path
from clipconcepts.schemas import PRUNE_ITEMS, PRUNE_RESULTS

log = logging.getLogger(__name__)

RESULT_SCHEMA = PRUNE_RESULTS


def _split_batch(batch) -> tuple[torch.Tensor | None, list[str] | None, torch.Tensor]:
    """`(images, ids, labels)` from a torchvision-style `(images, labels)` batch (ids None) or
    the record loader's `(images, ids, labels, n_skipped)`."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], None, torch.as_tensor(batch[1])
    if isinstance(batch, (tuple, list)) and len(batch) == 4:
        return batch[0], [str(i) for i in batch[1]], torch.as_tensor(batch[2])
    raise ValueError(
        "loader batches must be (images, labels) or (images, ids, labels, n_skipped), got "
        f"{type(batch).__name__} of length {len(batch) if hasattr(batch, '__len__') else '?'}"
    )


@dataclass
class PruneOutcomes:
    """The accuracy table (`PRUNE_RESULTS`, one row per prune set) and the per-image outcomes
    (`PRUNE_ITEMS`, one row per prune set and image, sets in order, images in loader order)."""

    summary: pl.DataFrame
    items: pl.DataFrame


def _batch_outcomes(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per set and image of `logits` [S, B, C]: predicted class, top-1/top-5 hit, margin."""
    n_classes = logits.shape[-1]
    top = logits.topk(min(5, n_classes), dim=-1).indices  # [S, B, k]
    hit = top == labels.view(1, -1, 1)
    true = logits.gather(-1, labels.view(1, -1, 1).expand(logits.shape[0], -1, 1)).squeeze(-1)
    others = logits.scatter(-1, labels.view(1, -1, 1).expand(logits.shape[0], -1, 1), -torch.inf)
    return {
        "predicted": top[..., 0].int().cpu(),
        "correct_top1": hit[..., 0].cpu(),
        "correct_top5": hit.any(-1).cpu(),
        "margin": (true - others.amax(-1)).float().cpu(),
    }


@torch.no_grad()
def evaluate_prune_outcomes(
    clip,
    loader: Iterable,
    classifier: torch.Tensor,
    prune_sets: Sequence[PruneSet],
    sets_per_pass: int = 8,
    progress: bool = True,
) -> PruneOutcomes:
    """Every image's outcome under each prune set over all batches of `loader`, and the
    top-1/top-5 accuracy (percent) of each set, in the order of `prune_sets`.

    `classifier` is `[C, D]` with unit-norm rows (`build_classifier`).
    """
    if classifier.dim() != 2 or classifier.shape[1] != clip.embed_dim:
        raise ValueError(
            f"classifier shape {tuple(classifier.shape)} does not match the model's embedding "
            f"width {clip.embed_dim}"
        )
    sets = list(prune_sets)
    device = clip.device
    weights = classifier.to(device=device, dtype=torch.float32)
    head_lists = [list(s.heads) for s in sets]
    ids: list[str] = []
    labels_seen: list[torch.Tensor] = []
    parts: dict[str, list[torch.Tensor]] = {}
    total = len(loader) if hasattr(loader, "__len__") else None
    bar = tqdm(loader, total=total, disable=not progress, desc="pruned zero-shot", unit="batch")
    for batch in bar:
        images, batch_ids, labels = _split_batch(batch)
        if images is None or labels.numel() == 0 or not sets:
            continue
        ids += batch_ids or [str(len(ids) + i) for i in range(labels.numel())]
        labels_seen.append(labels.cpu())
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        emb = clip.encode_image_multi(images, head_lists, sets_per_pass=sets_per_pass).float()
        emb = emb / emb.norm(dim=-1, keepdim=True)  # [S, B, D]
        for key, value in _batch_outcomes(emb @ weights.T, labels).items():  # logits [S, B, C]
            parts.setdefault(key, []).append(value)
    n_images = len(ids)
    if n_images == 0:
        log.warning("pruned evaluation saw no images: accuracies are NaN")
    items = _items_frame(sets, ids, labels_seen, parts)
    return PruneOutcomes(summarise_items(items, sets, n_images), items)


def _items_frame(sets, ids, labels_seen, parts) -> pl.DataFrame:
    n_sets, n_images = len(sets), len(ids)
    if n_images == 0 or n_sets == 0:
        return pl.DataFrame(schema=PRUNE_ITEMS)
    columns = {key: torch.cat(values, dim=1).reshape(-1).numpy() for key, values in parts.items()}
    labels = torch.cat(labels_seen).numpy()
    return pl.DataFrame(
        {
            "image_id": ids * n_sets,
            "label": [int(x) for x in labels] * n_sets,
            "strategy": [s.strategy for s in sets for _ in range(n_images)],
            "seed": [s.seed for s in sets for _ in range(n_images)],
            **columns,
        },
        schema=PRUNE_ITEMS,
    )


def summarise_items(
    items: pl.DataFrame, sets: Sequence[PruneSet], n_images: int | None = None
) -> pl.DataFrame:
    """The accuracy table (`PRUNE_RESULTS`) of per-image outcomes: one row per prune set, top-1
    and top-5 = percent of its images correct (NaN for a set with no image)."""
    counts = {
        (row["strategy"], row["seed"]): row
        for row in items.group_by("strategy", "seed")
        .agg(
            pl.len().alias("n"),
            pl.col("correct_top1").sum().alias("top1"),
            pl.col("correct_top5").sum().alias("top5"),
        )
        .iter_rows(named=True)
    }
    rows = {name: [] for name in PRUNE_RESULTS}
    for s in sets:
        found = counts.get((s.strategy, s.seed), {"n": 0, "top1": 0, "top5": 0})
        n = found["n"] if n_images is None else n_images
        rows["strategy"].append(s.strategy)
        rows["seed"].append(s.seed)
        rows["heads"].append(s.head_names)
        rows["n_heads"].append(s.n_heads)
        rows["top1"].append(_percent(found["top1"], n))
        rows["top5"].append(_percent(found["top5"], n))
        rows["n_images"].append(n)
    return pl.DataFrame(rows, schema=PRUNE_RESULTS)


def evaluate_prune_sets(
    clip,
    loader: Iterable,
    classifier: torch.Tensor,
    prune_sets: Sequence[PruneSet],
    sets_per_pass: int = 8,
    progress: bool = True,
) -> pl.DataFrame:
    """Top-1/top-5 accuracy (percent) of each prune set: `evaluate_prune_outcomes`'s table."""
    return evaluate_prune_outcomes(
        clip, loader, classifier, prune_sets, sets_per_pass, progress
    ).summary


def _percent(count: int, n: int) -> float:
    return 100.0 * count / n if n else float("nan")


def write_prune_results(frame: pl.DataFrame, path: str | Path) -> None:
    """Write the results table atomically (nothing appears at `path` if writing fails)."""
    _write(frame, RESULT_SCHEMA, path, "prune results")


def write_prune_items(frame: pl.DataFrame, path: str | Path, row_group_size: int = 100_000):
    """Write the per-image outcomes atomically, in row groups (a reader can stream them)."""
    _write(frame, PRUNE_ITEMS, path, "prune items", row_group_size=row_group_size)


def _write(frame: pl.DataFrame, schema: dict, path: str | Path, what: str, **options) -> None:
    missing = set(schema) - set(frame.columns)
    if missing:
        raise ValueError(f"{what} lack columns {sorted(missing)}")
    with atomic_path(path) as tmp:
        frame.select(list(schema)).cast(schema).write_parquet(tmp, **options)
