"""Ground-truth checks on a head-aware CLIP trained on the concept world.

Which heads carry a family? A head's direct contributions `c_b` (one per image, in the joint
embedding space) carry family f when they vary inside the span of f's class-text directions
(the class embeddings of f centred over classes: only their differences decide a zero-shot
prediction): the score is the variance of `c_b` projected on an orthonormal basis of that span,
and its share of the head's total variance says how much of what the head writes is about f.
Pruning the top-scoring heads should hurt f's zero-shot accuracy more than pruning as many random
heads.

Works with any object with the `clipconcepts.models.HeadAwareCLIP` interface: `n_layers`,
`n_heads`, `encode_text(texts)` (L2-normalised), `encode_image(images, prune=[(layer, head)])`
and `head_contributions(images, layers) -> [B, L, H, D]`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F

from clipconcepts.conceptworld.world import FAMILIES, TEMPLATES, n_values, values_of

Head = tuple[int, int]


@torch.no_grad()
def family_classifier(clip, family: str) -> torch.Tensor:
    """Zero-shot class embeddings [K, D] of `family` (template-averaged, L2-normalised)."""
    classnames = values_of(family)
    templates = TEMPLATES[family]
    emb = clip.encode_text([t.format(c) for c in classnames for t in templates])
    emb = F.normalize(emb.float(), dim=-1).view(len(classnames), len(templates), -1).mean(1)
    return F.normalize(emb, dim=-1)


@torch.no_grad()
def family_basis(clip, family: str) -> torch.Tensor:
    """Orthonormal basis [r, D] of the span of the family's centred class-text directions (only
    differences between class embeddings decide a zero-shot prediction); r = values - 1."""
    classifier = family_classifier(clip, family).double()
    directions = classifier - classifier.mean(dim=0, keepdim=True)
    _, s, vh = torch.linalg.svd(directions, full_matrices=False)
    return vh[s > 1e-6 * s[0]].float()


@torch.no_grad()
def family_head_scores(clip, images: torch.Tensor, family: str) -> torch.Tensor:
    """[n_layers, n_heads]: variance of each head's direct contributions inside the family's
    class-text subspace (`family_basis`), summed over the subspace's directions."""
    contributions = clip.head_contributions(images, list(range(clip.n_layers))).float()
    return _subspace_variance(contributions, family_basis(clip, family))


def _subspace_variance(contributions: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Variance over images [B, ...] of contributions [B, ..., D] projected on `basis` [r, D]."""
    return (contributions @ basis.T).double().var(dim=0).sum(dim=-1)


_ROUNDING = 1e-10


def _subspace_dims(
    contributions: torch.Tensor, basis: torch.Tensor, head_total: torch.Tensor | None = None
) -> torch.Tensor:
    """In how many of the subspace's directions a head writes: the participation ratio
    (sum ev)^2 / sum ev^2 of the covariance over images [B, ...] of contributions [B, ..., D]
    projected on `basis` [r, D]; 1 for one direction, r for equal variance in all r, 0 for
    none (a head writing its family in one or two directions leaves TEXTSPAN's later picks to
    whatever else it writes).
    Variances below 1e-10 of the head's total variance (`head_total` [...], computed when not
    given) are rounding, not writing: left out."""
    projected = (contributions @ basis.T).double()
    centred = projected - projected.mean(dim=0, keepdim=True)
    cov = torch.einsum("b...r,b...s->...rs", centred, centred) / max(len(centred) - 1, 1)
    ev = torch.linalg.eigvalsh(cov)
    if head_total is None:
        head_total = contributions.double().var(dim=0).sum(dim=-1)
    return _participation_ratio(torch.where(ev > _ROUNDING * head_total.unsqueeze(-1), ev, 0.0))


def _participation_ratio(ev: torch.Tensor) -> torch.Tensor:
    """(sum ev)^2 / sum ev^2 over the last dim of non-negative eigenvalues; 0 where all are 0."""
    total, squares = ev.sum(dim=-1), (ev**2).sum(dim=-1)
    return torch.where(squares > 0, total**2 / squares.clamp_min(1e-300), 0.0)


@torch.no_grad()
def head_truth(clip, images: torch.Tensor, batch_size: int = 500) -> pl.DataFrame:
    """Per head and family: the variance the head writes inside the family's subspace (`score`),
    its share of the head's total contribution variance (`share`, in [0, 1]) and in how many of
    the subspace's directions it writes (`dims`, `_subspace_dims`); `is_top` marks each head's
    one family of largest share. Columns: layer, head, family, score, share, dims, is_top."""
    layers = list(range(clip.n_layers))
    parts = [
        clip.head_contributions(images[i : i + batch_size], layers).float().cpu()
        for i in range(0, len(images), batch_size)
    ]
    return _head_truth_table(torch.cat(parts), _family_bases(clip))


@torch.no_grad()
def model_family_dims(
    clip, images: torch.Tensor, attributes: Mapping[str, Sequence], batch_size: int = 500
) -> pl.DataFrame:
    """Per family: in how many of its class-text directions the model separates the family's
    values. `dims` is the participation ratio of the between-value covariance (the per-value
    means of the L2-normalised image embedding, as zero-shot sees it, weighted by how often
    each value occurs) projected on the family's class-text subspace: 1 when the values lie on
    a line, values - 1 when they are spread evenly. `share` is that covariance's trace over the
    embedding's total variance. `attributes[family]` holds each image's value (name or index).

    Value means, not the total covariance as in `head_truth`'s `dims`: inside a family's
    subspace the embedding's total covariance also holds every other family's and the
    rendering jitter's leakage, spread evenly over its directions, which would count as
    directions. A head writes a family in more directions than the model separates only
    where other heads cancel them, so a CCS-5 head (5 texts of one family from TEXTSPAN) needs
    a family the model spreads over about five. Columns: family, n_values, dims, share."""
    embedding = torch.cat(
        [
            clip.encode_image(images[i : i + batch_size]).float().cpu()
            for i in range(0, len(images), batch_size)
        ]
    )
    return _family_dims_table(embedding, _family_bases(clip), attributes)


@torch.no_grad()
def ground_truth(
    clip, images: torch.Tensor, attributes: Mapping[str, Sequence], batch_size: int = 500
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`head_truth` and `model_family_dims` from one forward pass per batch (a
    `HeadAwareCLIP`'s `decompose` gives every head's contribution and the image embedding)."""
    heads, embeddings = [], []
    for i in range(0, len(images), batch_size):
        parts = clip.decompose(images[i : i + batch_size], with_embedding=False)
        heads.append(parts.heads.float().cpu())
        embeddings.append(parts.image_embedding.float().cpu())
    bases = _family_bases(clip)
    return (
        _head_truth_table(torch.cat(heads), bases),
        _family_dims_table(torch.cat(embeddings), bases, attributes),
    )


def _family_bases(clip) -> dict[str, torch.Tensor]:
    return {family: family_basis(clip, family).cpu() for family in FAMILIES}


def _head_truth_table(contributions: torch.Tensor, bases: Mapping[str, torch.Tensor]):
    """`head_truth`'s table from every head's contributions [B, L, H, D]."""
    _, n_layers, n_heads, _ = contributions.shape
    total = contributions.double().var(dim=0).sum(dim=-1)  # [L, H]
    rows = []
    for family, basis in bases.items():
        score = _subspace_variance(contributions, basis)
        share = torch.where(total > 0, score / total.clamp_min(1e-300), 0.0)
        dims = _subspace_dims(contributions, basis, head_total=total)
        for layer in range(n_layers):
            for head in range(n_heads):
                rows.append(
                    (
                        layer,
                        head,
                        family,
                        score[layer, head].item(),
                        share[layer, head].item(),
                        dims[layer, head].item(),
                    )
                )
    frame = pl.DataFrame(
        rows,
        schema={
            "layer": pl.Int16,
            "head": pl.Int16,
            "family": pl.String,
            "score": pl.Float64,
            "share": pl.Float64,
            "dims": pl.Float64,
        },
        orient="row",
    )
    frame = frame.sort("layer", "head", "family")
    # one top family per head (ties, which need identical shares, go to the first family)
    top = pl.col("share").rank("ordinal", descending=True).over("layer", "head") == 1
    return frame.with_columns(is_top=top)


def _family_dims_table(
    embedding: torch.Tensor, bases: Mapping[str, torch.Tensor], attributes: Mapping[str, Sequence]
) -> pl.DataFrame:
    """`model_family_dims`' table from the unnormalised image embeddings [B, D]."""
    normalised = F.normalize(embedding.double(), dim=-1)
    centred = normalised - normalised.mean(dim=0, keepdim=True)
    total = centred.var(dim=0).sum()
    rows = []
    for family, basis in bases.items():
        values = np.asarray(attributes[family])
        if len(values) != len(centred):
            raise ValueError(
                f"model_family_dims: {len(values)} {family} values for {len(centred)} images"
            )
        projected = centred @ basis.double().T  # [B, r]
        kinds = np.unique(values)
        means = torch.stack([projected[torch.as_tensor(values == v)].mean(dim=0) for v in kinds])
        weights = torch.tensor([(values == v).mean() for v in kinds], dtype=torch.float64)
        between = (means * weights[:, None]).T @ means
        ev = torch.linalg.eigvalsh(between).clamp_min(0.0)
        share = (ev.sum() / total).item() if total > 0 else 0.0
        rows.append((family, n_values(family), _participation_ratio(ev).item(), share))
    schema = {"family": pl.String, "n_values": pl.Int16, "dims": pl.Float64, "share": pl.Float64}
    return pl.DataFrame(rows, schema=schema, orient="row")


def top_heads(scores: torch.Tensor, k: int) -> list[Head]:
    """The k (layer, head) pairs with the largest scores, best first."""
    order = torch.argsort(scores.flatten(), descending=True)[:k]
    n_heads = scores.shape[1]
    return [(int(i) // n_heads, int(i) % n_heads) for i in order]


@torch.no_grad()
def zero_shot_scores(
    clip, images: torch.Tensor, labels: np.ndarray, family: str, prune: list[Head] | None = None
) -> tuple[float, float]:
    """(accuracy, mean margin) of the family's zero-shot classifier with the heads in `prune`
    zeroed; the margin is cos(true class) - max cos(other class), per image."""
    classifier = family_classifier(clip, family)
    embedding = F.normalize(clip.encode_image(images, prune=prune or []).float(), dim=-1)
    cosines = embedding @ classifier.T
    labels_t = torch.as_tensor(np.asarray(labels), device=cosines.device)
    true = cosines.gather(1, labels_t[:, None])[:, 0]
    others = cosines.scatter(1, labels_t[:, None], float("-inf")).max(dim=1).values
    accuracy = (cosines.argmax(dim=1) == labels_t).float().mean().item()
    return accuracy, (true - others).mean().item()


def zero_shot_accuracy(
    clip, images: torch.Tensor, labels: np.ndarray, family: str, prune: list[Head] | None = None
) -> float:
    """Family zero-shot accuracy of `clip` on `images`, with the heads in `prune` zeroed."""
    return zero_shot_scores(clip, images, labels, family, prune)[0]


@dataclass(frozen=True)
class PruningCheck:
    """Drops in a family's zero-shot accuracy and mean margin when its top-k heads, or k random
    heads (one entry per seed), are pruned."""

    family: str
    k: int
    accuracy: float
    margin: float
    family_heads: list[Head]
    family_heads_drop: float
    random_drops: list[float]
    family_heads_margin_drop: float
    random_margin_drops: list[float]

    @property
    def random_drop(self) -> float:
        return float(np.mean(self.random_drops))

    @property
    def random_margin_drop(self) -> float:
        return float(np.mean(self.random_margin_drops))


def pruning_check(
    clip,
    images: torch.Tensor,
    labels: np.ndarray,
    family: str,
    k: int,
    seeds: tuple[int, ...] = (0, 1, 2),
    score_images: torch.Tensor | None = None,
) -> PruningCheck:
    """Prune the family's top-k heads (scored on `score_images`, default `images`) and, per seed,
    k random heads drawn from the other heads; report the drops in accuracy and margin."""
    scores = family_head_scores(clip, images if score_images is None else score_images, family)
    chosen = top_heads(scores, k)
    accuracy, margin = zero_shot_scores(clip, images, labels, family)
    pruned_accuracy, pruned_margin = zero_shot_scores(clip, images, labels, family, chosen)
    others = [
        (layer, head)
        for layer in range(clip.n_layers)
        for head in range(clip.n_heads)
        if (layer, head) not in chosen
    ]
    random_scores = [
        zero_shot_scores(clip, images, labels, family, random.Random(seed).sample(others, k))
        for seed in seeds
    ]
    return PruningCheck(
        family=family,
        k=k,
        accuracy=accuracy,
        margin=margin,
        family_heads=chosen,
        family_heads_drop=accuracy - pruned_accuracy,
        random_drops=[accuracy - a for a, _ in random_scores],
        family_heads_margin_drop=margin - pruned_margin,
        random_margin_drops=[margin - m for _, m in random_scores],
    )
