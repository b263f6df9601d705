"""The true effect of each head: ablate it through the whole model and measure the change.

    true_zero_h = y - y(head h zeroed)          true_mean_h = y - y(head h set to its mean)

per image, with `y` the target cosine (`targets`), plus whether the top-1 prediction stays
right. Zero ablation is the workflow's soft pruning (`HeadAwareCLIP.encode_image_multi`, one
single-head prune set per head, the layers before the first ablated one run once per batch);
mean ablation replaces the head's output by its mean over the sampled images, per token
(`patching.encode_patched_multi`). This is the reference the other views are judged against.

The scope is the last 4 layers (`last4`, the CCS paper's analysed layers) or every layer
(`all`): each head costs a forward pass of the layers from the first ablated one on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F

from clipconcepts.attribution.patching import encode_patched_multi
from clipconcepts.attribution.schemas import ABLATION
from clipconcepts.attribution.scores import check_baselines
from clipconcepts.attribution.targets import Target, target_cosine, wide

Head = tuple[int, int]
SCOPES = ("last4", "all")


def scope_heads(n_layers: int, n_heads: int, scope: str = "last4") -> list[Head]:
    """The heads whose true effect is measured, in (layer, head) order."""
    if scope not in SCOPES:
        raise ValueError(
            f"config key attribution.layers must be one of {', '.join(SCOPES)}, got {scope!r}"
        )
    first = max(0, n_layers - 4) if scope == "last4" else 0
    return [(layer, head) for layer in range(first, n_layers) for head in range(n_heads)]


@torch.no_grad()
def true_effects(
    clip,
    batches: Callable[[], Iterable],
    target: Target,
    heads: list[Head],
    baselines: Iterable[str] = ("zero", "mean"),
    means: torch.Tensor | None = None,
    sets_per_pass: int = 8,
) -> pl.DataFrame:
    """The `ABLATION` table: one row per image x head of `heads`.

    `batches()` yields `(images, image_ids, labels)`; `means` `[L, H, N, d]` is needed for the
    mean baseline (`patching.head_means` on the same images).
    """
    baselines = check_baselines(baselines)
    if "mean" in baselines and means is None:
        raise ValueError("mean ablation needs the head means of the sampled images")
    if not heads:
        raise ValueError("true effect: no heads to ablate")
    sets = [[]] + [[h] for h in heads]
    columns: dict[str, list] = {k: [] for k in ABLATION}
    for images, ids, labels in batches():
        labels = labels.to(clip.device)
        emb = wide(clip.encode_image_multi(images, sets, sets_per_pass=sets_per_pass))
        clean = emb[0]
        rows = target.resolve(clean, labels)
        y = target_cosine(emb, target.text, rows)  # [S + 1, B]
        correct = _correct(emb, target.classifier, labels)
        y_mean = correct_mean = None
        if "mean" in baselines:
            mean_emb = wide(
                encode_patched_multi(
                    clip, images, sets[1:], fill=means, sets_per_pass=sets_per_pass
                )
            )
            y_mean = target_cosine(mean_emb, target.text, rows)
            correct_mean = _correct(mean_emb, target.classifier, labels)
        B, S = len(ids), len(heads)
        columns["image_id"] += [i for i in ids for _ in range(S)]
        columns["label"].append(np.repeat(labels.cpu().numpy(), S))
        columns["target"].append(np.repeat(target.stored(rows), S))
        columns["y"].append(np.repeat(y[0].cpu().double().numpy(), S))
        columns["correct"].append(np.repeat(correct[0].cpu().numpy(), S))
        columns["layer"].append(np.tile([h[0] for h in heads], B))
        columns["head"].append(np.tile([h[1] for h in heads], B))
        columns["true_zero"].append((y[0] - y[1:]).T.reshape(-1).cpu().double().numpy())
        columns["correct_zero"].append(correct[1:].T.reshape(-1).cpu().numpy())
        if y_mean is not None:
            columns["true_mean"].append((y[0] - y_mean).T.reshape(-1).cpu().double().numpy())
            columns["correct_mean"].append(correct_mean.T.reshape(-1).cpu().numpy())
    if not columns["image_id"]:
        raise ValueError("true effect: the sample holds no images")
    n = len(columns["image_id"])
    data = {
        k: (v if k == "image_id" else np.concatenate(v) if v else [None] * n)
        for k, v in columns.items()
    }
    return pl.DataFrame(data).select(list(ABLATION)).cast(ABLATION)


def _correct(emb: torch.Tensor, classifier: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Top-1 right, `[S, B]` bool, for embeddings `[S, B, D]`."""
    return (F.normalize(emb, dim=-1) @ classifier.to(emb.dtype).T).argmax(-1) == labels
