"""Per image and head: attribution patching and the direct effect (the Logit Lens for heads).

For an image with embedding `e` (unnormalised) and target text `t` (`targets`), with `c_h` the
head's direct contribution to `e` (`HeadAwareCLIP.decompose`, the CLS path through `ln_post`
linearised per image):

- `atp_zero`, `atp_mean`: attribution patching (`patching.attribution_patching`);
- `direct`: `c_h . t / |e|`, the head's share of `y = e . t / |e|` along the direct path (all
  terms of the decomposition add up to `y`);
- `logit_lens`: `cos(mean_b c_h, t)`, the image-independent variant: the head's mean direction
  over the sampled images against the image's target text, whatever the image (as the
  reference's `normalize(ln_post(W_dec) @ proj) . text`);
- `energy`: `|c_h| / |e|`, how much the head writes, in the direction of nothing in particular.

Everything runs on a seeded sample of images (`targets.sample`); the mean baseline's means
come from a first pass over the same images.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F

from clipconcepts.attribution.patching import attribution_patching, head_means
from clipconcepts.attribution.schemas import SCORES
from clipconcepts.attribution.targets import Target, target_cosine, wide

log = logging.getLogger(__name__)

BASELINES = ("zero", "mean")


def check_baselines(baselines: Iterable[str]) -> list[str]:
    out = list(dict.fromkeys(baselines))
    bad = [b for b in out if b not in BASELINES]
    if bad or not out:
        raise ValueError(
            f"config key attribution.baselines: choose from {', '.join(BASELINES)}, got {out}"
        )
    return out


def mean_activations(
    clip, batches: Callable[[], Iterable], baselines: Iterable[str]
) -> torch.Tensor | None:
    """The mean baseline's head means over the sample (a first pass), or None without it."""
    if "mean" not in baselines:
        return None
    return head_means(clip, (images for images, _, _ in batches()))


def score_images(
    clip,
    batches: Callable[[], Iterable],
    target: Target,
    baselines: Iterable[str] = BASELINES,
    means: torch.Tensor | None = None,
) -> pl.DataFrame:
    """The `SCORES` table: one row per image x layer x head, every layer.

    `batches()` yields `(images, image_ids, labels)` and is called once more for the means when
    the mean baseline is asked for and `means` is not given.
    """
    baselines = check_baselines(baselines)
    if "mean" in baselines and means is None:
        means = mean_activations(clip, batches, baselines)
    if "mean" not in baselines:
        means = None
    L, H = clip.n_layers, clip.n_heads
    parts: dict[str, list] = {k: [] for k in ("ids", "label", "target", "y", "zero", "mean")}
    parts.update(direct=[], energy=[], tgt_rows=[])
    contribution_sum = 0.0
    worst = 0.0
    for images, ids, labels in batches():
        atp = attribution_patching(clip, images, target.text, target.ids(labels), means)
        dec = clip.decompose(images, with_embedding=False)
        heads = wide(dec.heads)  # [B, L, H, D]
        emb = wide(dec.image_embedding)
        norm = emb.norm(dim=-1)  # [B]
        t = target.text[atp.target].to(heads.dtype)  # [B, D]
        y_direct = target_cosine(emb, target.text, atp.target)
        worst = max(worst, (y_direct - atp.y).abs().max().item())
        parts["direct"].append((torch.einsum("blhd,bd->blh", heads, t) / norm[:, None, None]).cpu())
        parts["energy"].append((heads.norm(dim=-1) / norm[:, None, None]).cpu())
        contribution_sum += heads.sum(0)
        parts["ids"] += ids
        parts["label"].append(labels.numpy().astype(np.int32))
        parts["target"].append(target.stored(atp.target))
        parts["tgt_rows"].append(atp.target.cpu())
        parts["y"].append(atp.y.cpu())
        parts["zero"].append(atp.zero.cpu())
        if atp.mean is not None:
            parts["mean"].append(atp.mean.cpu())
    n = len(parts["ids"])
    if n == 0:
        raise ValueError("attribution: the sample holds no images")
    if worst > 1e-3:
        log.warning("AtP's forward and the decomposition disagree on y by up to %.2e", worst)
    # the image-independent Logit Lens: each head's mean direction against the image's text
    direction = F.normalize(contribution_sum / n, dim=-1)  # [L, H, D]
    rows = torch.cat(parts["tgt_rows"]).to(clip.device)
    logit_lens = torch.einsum("lhd,bd->blh", direction, target.text[rows].to(direction.dtype)).cpu()
    return _frame(
        parts["ids"],
        np.concatenate(parts["label"]),
        np.concatenate(parts["target"]),
        torch.cat(parts["y"]).double().numpy(),
        {
            "atp_zero": torch.cat(parts["zero"]),
            "atp_mean": torch.cat(parts["mean"]) if parts["mean"] else None,
            "direct": torch.cat(parts["direct"]),
            "logit_lens": logit_lens,
            "energy": torch.cat(parts["energy"]),
        },
        L,
        H,
    )


def _frame(ids, label, target, y, views: dict, L: int, H: int) -> pl.DataFrame:
    """Long table: per-image columns repeated over the L x H heads (layer-major)."""
    n = len(ids)
    per_head = L * H
    data = {
        "image_id": np.repeat(np.asarray(ids, dtype=object), per_head),
        "label": np.repeat(label, per_head),
        "target": np.repeat(target, per_head),
        "y": np.repeat(y, per_head),
        "layer": np.tile(np.repeat(np.arange(L), H), n),
        "head": np.tile(np.tile(np.arange(H), L), n),
    }
    for name, values in views.items():
        data[name] = (
            np.full(n * per_head, np.nan) if values is None else values.double().numpy().reshape(-1)
        )
    frame = pl.DataFrame(data).with_columns(
        pl.col("atp_mean").fill_nan(None) if views["atp_mean"] is None else pl.col("atp_mean")
    )
    return frame.select(list(SCORES)).cast(SCORES)
