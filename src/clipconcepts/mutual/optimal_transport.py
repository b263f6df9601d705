"""From visual concepts to descriptors: top-k, relevance filter, optimal transport, top-3.

Per image, each of its L concepts (the averaged embedding of its visual prompts) is scored
against every descriptor. The authors' rule, which decides the numbers:

1. each concept's top-k descriptors, intersected over the image's concepts (an empty
   intersection is reported, never a crash);
2. keep those whose cosine with the whole image exceeds mean - offset (strictly);
3. Sinkhorn over concept x descriptor with kernel exp(scale * cosine) (scale 2.5, lambda 1)
   and uniform marginals; the top 3 descriptors of each concept's row, de-duplicated;
4. D_v = their union ordered by cosine with the whole image, most relevant first.

An image with ONE concept has a one-row plan, which the column normalisation turns into all
ones: its top 3 are then decided by tie order (Python set order in the authors' code), and
mean nothing. `single_concept="logits"` (default) takes that concept's top 3 by its logits
(its cosines with the descriptors, the kernel's exponent before normalisation);
`single_concept="authors"` keeps the plan's tie order.

The Sinkhorn here is batched over the images of a class (padded, masked); its plan equals
POT's `ot.sinkhorn(uniform, uniform, -scale * cosine, reg=1)` up to a constant factor (tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

EMPTY_INTERSECTION = "empty_intersection"
SINGLE_CONCEPT = ("logits", "authors")


def sinkhorn(
    scores: torch.Tensor,
    row_mask: torch.Tensor | None = None,
    col_mask: torch.Tensor | None = None,
    scale: float = 2.5,
    iterations: int = 1000,
) -> torch.Tensor:
    """Transport plans `[B, m, n]` for kernels exp(scale * scores) with uniform marginals.

    Alternating row and column normalisation (rows to 1, then columns to 1), as the authors'
    code does; the fixed point is the entropic OT plan with uniform marginals, scaled. Masked
    rows and columns (padding) carry no mass.
    """
    if scores.dim() == 2:
        return sinkhorn(
            scores[None],
            None if row_mask is None else row_mask[None],
            None if col_mask is None else col_mask[None],
            scale,
            iterations,
        )[0]
    dtype = torch.promote_types(scores.dtype, torch.float32)
    kernel = torch.exp(scale * (scores - scores.amax(dim=(1, 2), keepdim=True)).to(dtype))
    if row_mask is not None:
        kernel = kernel * row_mask[:, :, None]
    if col_mask is not None:
        kernel = kernel * col_mask[:, None, :]
    tiny = torch.finfo(kernel.dtype).tiny
    tol = 10 * torch.finfo(kernel.dtype).eps
    plan = kernel
    for step in range(iterations):
        plan = plan / plan.sum(dim=2, keepdim=True).clamp_min(tiny)
        plan = plan / plan.sum(dim=1, keepdim=True).clamp_min(tiny)
        # stop at the fixed point (rows no longer change: more iterations give the same plan)
        if step % 25 == 24:
            rows = plan.sum(dim=2)
            spread = rows.amax(dim=1) - torch.where(
                rows > 0, rows, rows.amax(dim=1, keepdim=True)
            ).amin(dim=1)
            if bool((spread <= tol * rows.amax(dim=1)).all()):
                break
    return plan.to(scores.dtype)


@dataclass
class Selection:
    """One image's mutual descriptors: ids ordered by importance, their relevance (cosine with
    the image) and a status (`ok` or `empty_intersection`); `concept_top`: each concept's first
    Sinkhorn pick (its row's largest entry), in the order the concepts were given."""

    ids: list[int]
    relevance: list[float]
    status: str = "ok"
    concept_top: list[int] = field(default_factory=list)


@torch.no_grad()
def select_descriptors(
    concepts: list[torch.Tensor],
    images: torch.Tensor,
    descriptors: torch.Tensor,
    descriptors_plain: torch.Tensor,
    top_k: int = 500,
    relevance_offset: float = 0.02,
    scale: float = 2.5,
    per_concept: int = 3,
    iterations: int = 1000,
    single_concept: str = "logits",
) -> list[Selection]:
    """Mutual descriptors D_v for a batch of images.

    `concepts[i]` is `[L_i, D]` (image i's concept embeddings, L_i >= 1), `images` `[B, D]`
    unit-norm image embeddings, `descriptors` `[T, D]` unit-norm descriptor embeddings with the
    template (the concept classifier), `descriptors_plain` the same without a template (the
    relevance to the image). `single_concept`: how a one-concept image picks (module docstring).
    """
    if single_concept not in SINGLE_CONCEPT:
        raise ValueError(
            f"config key mutual.single_concept is {single_concept!r}; use one of {SINGLE_CONCEPT}"
        )
    k = min(top_k, descriptors.shape[0])
    common_ids: list[torch.Tensor] = []
    out: list[Selection | None] = []
    for concept, image in zip(concepts, images, strict=True):
        logits = concept @ descriptors.T
        top = logits.topk(k, dim=1).indices
        common = top[0]
        for row in top[1:]:
            common = common[torch.isin(common, row)]
        common = common.sort().values
        if common.numel():
            relevance = descriptors_plain[common] @ image
            common = common[relevance > relevance.mean() - relevance_offset]
        common_ids.append(common)
        out.append(None if common.numel() else Selection([], [], EMPTY_INTERSECTION))

    todo = [i for i, sel in enumerate(out) if sel is None]
    if todo:
        rows = max(concepts[i].shape[0] for i in todo)
        cols = max(common_ids[i].numel() for i in todo)
        device = descriptors.device
        scores = torch.zeros(len(todo), rows, cols, device=device)
        row_mask = torch.zeros(len(todo), rows, device=device)
        col_mask = torch.zeros(len(todo), cols, device=device)
        for b, i in enumerate(todo):
            ids = common_ids[i]
            scores[b, : concepts[i].shape[0], : ids.numel()] = concepts[i] @ descriptors[ids].T
            row_mask[b, : concepts[i].shape[0]] = 1
            col_mask[b, : ids.numel()] = 1
        plans = sinkhorn(scores, row_mask, col_mask, scale, iterations)
        for b, i in enumerate(todo):
            ids = common_ids[i]
            n_rows, n_cols = concepts[i].shape[0], ids.numel()
            # one concept: its plan row is all ones, so rank by its logits instead
            rank_by = scores if n_rows == 1 and single_concept == "logits" else plans
            picks = rank_by[b, :n_rows, :n_cols].topk(min(per_concept, n_cols), dim=1).indices
            chosen = ids[picks.flatten().unique()]
            relevance = descriptors_plain[chosen] @ images[i]
            order = relevance.argsort(descending=True, stable=True)
            top = ids[picks[:, 0]].tolist()
            out[i] = Selection(chosen[order].tolist(), relevance[order].tolist(), concept_top=top)
    return out  # type: ignore[return-value]
