"""Zero-shot accuracy of every prune set in one pass over a dataset.

Per image batch, `clip.encode_image_multi` runs the layers before the first pruned layer once
and the rest once per prune set (stacked along the batch), so S strategies cost about
`1 + S * k / L` unpruned passes for k pruned layers of L, not S. Soft pruning is zero-ablation
of the heads' outputs through the full model (later layers see the change), as the CCS authors'
zeroing of the heads' `out_proj` columns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import polars as pl
import torch
from tqdm.auto import tqdm

from clipconcepts.evaluate.classifier import topk_correct
from clipconcepts.evaluate.strategies import PruneSet
from clipconcepts.io import atomic_path
from clipconcepts.schemas import PRUNE_RESULTS

log = logging.getLogger(__name__)

RESULT_SCHEMA = PRUNE_RESULTS


def _split_batch(batch) -> tuple[torch.Tensor | None, torch.Tensor]:
    """`(images, labels)` from a torchvision-style `(images, labels)` batch or the record
    loader's `(images, ids, labels, n_skipped)`."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], torch.as_tensor(batch[1])
    if isinstance(batch, (tuple, list)) and len(batch) == 4:
        return batch[0], torch.as_tensor(batch[2])
    raise ValueError(
        "loader batches must be (images, labels) or (images, ids, labels, n_skipped), got "
        f"{type(batch).__name__} of length {len(batch) if hasattr(batch, '__len__') else '?'}"
    )


@torch.no_grad()
def evaluate_prune_sets(
    clip,
    loader: Iterable,
    classifier: torch.Tensor,
    prune_sets: Sequence[PruneSet],
    sets_per_pass: int = 8,
    progress: bool = True,
) -> pl.DataFrame:
    """Top-1/top-5 accuracy (percent) of each prune set over all batches of `loader`.

    `classifier` is `[C, D]` with unit-norm rows (`build_classifier`). Returns one row per prune
    set with the columns of `RESULT_SCHEMA`, in the order of `prune_sets`.
    """
    if classifier.dim() != 2 or classifier.shape[1] != clip.embed_dim:
        raise ValueError(
            f"classifier shape {tuple(classifier.shape)} does not match the model's embedding "
            f"width {clip.embed_dim}"
        )
    sets = list(prune_sets)
    device = clip.device
    weights = classifier.to(device=device, dtype=torch.float32)
    correct = torch.zeros(2, len(sets), dtype=torch.long, device=device)
    n_images = 0
    head_lists = [list(s.heads) for s in sets]
    total = len(loader) if hasattr(loader, "__len__") else None
    bar = tqdm(loader, total=total, disable=not progress, desc="pruned zero-shot", unit="batch")
    for batch in bar:
        images, labels = _split_batch(batch)
        if images is None or labels.numel() == 0 or not sets:
            continue
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        emb = clip.encode_image_multi(images, head_lists, sets_per_pass=sets_per_pass).float()
        emb = emb / emb.norm(dim=-1, keepdim=True)  # [S, B, D]
        logits = emb @ weights.T  # [S, B, C]
        correct += topk_correct(logits, labels, ks=(1, 5))
        n_images += labels.numel()
    counts = correct.cpu()
    if n_images == 0:
        log.warning("pruned evaluation saw no images: accuracies are NaN")
    rows = {
        "strategy": [s.strategy for s in sets],
        "seed": [s.seed for s in sets],
        "heads": [s.head_names for s in sets],
        "n_heads": [s.n_heads for s in sets],
        "top1": [_percent(counts[0, i].item(), n_images) for i in range(len(sets))],
        "top5": [_percent(counts[1, i].item(), n_images) for i in range(len(sets))],
        "n_images": [n_images] * len(sets),
    }
    return pl.DataFrame(rows, schema=RESULT_SCHEMA)


def _percent(count: int, n: int) -> float:
    return 100.0 * count / n if n else float("nan")


def write_prune_results(frame: pl.DataFrame, path: str | Path) -> None:
    """Write the results table atomically (nothing appears at `path` if writing fails)."""
    missing = set(RESULT_SCHEMA) - set(frame.columns)
    if missing:
        raise ValueError(f"prune results lack columns {sorted(missing)}")
    with atomic_path(path) as tmp:
        frame.select(list(RESULT_SCHEMA)).cast(RESULT_SCHEMA).write_parquet(tmp)
