"""Attribution patching (AtP) for every attention head: one forward and one backward per batch.

A head's activation `a_h` is its output before `out_proj`, `[B, tokens, head_dim]` (the
per-head attention output `softmax(q k^T / sqrt(d)) v`). For a scalar target `y` per image
(`targets.target_cosine`), attribution patching linearises `y` around the clean run:

    AtP_h      = sum over tokens and dims of  a_h * dy/da_h              (zero baseline)
    AtP_h^mean = sum over tokens and dims of  (a_h - mean a_h) * dy/da_h  (mean baseline)

i.e. the first-order change of `y` when the head is replaced by zeros (by its mean over the
images), through every later block. All heads of all layers get their gradient from the same
backward pass. Gradients flow to the activations only: the weights are never changed, and no
parameter takes part in the graph (`frozen`).

The forward pass here runs open_clip's own sub-modules block by block (`ln_1`, `in_proj`,
`out_proj`, `ls_1`, `mlp`, `ls_2`, `ln_post`, `proj`), as `HeadAwareCLIP`'s soft pruning does,
so the head outputs are tensors this module can read, replace (mean ablation) or scale (the
finite-difference checks in the tests). Zero ablation reuses `HeadAwareCLIP.encode_image_multi`;
`encode_patched_multi` is its twin that fills an ablated head with a given value instead of 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from clipconcepts.attribution.targets import target_cosine, wide
from clipconcepts.models.hooked import stacked_keep

Head = tuple[int, int]


@contextmanager
def frozen(module: torch.nn.Module):
    """Every parameter with `requires_grad` off inside the block, restored after: the graph
    holds activations only, and no parameter can receive a gradient."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield module
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


# ---------------------------------------------------------------------------- one block
def head_outputs(block, x: torch.Tensor) -> torch.Tensor:
    """Every head's output before `out_proj`, `[B, H, N, d]`, for the residual `x` `[B, N, W]`."""
    attn = block.attn
    h = block.ln_1(x)
    B, N, W = h.shape
    H = attn.num_heads
    qkv = F.linear(h, attn.in_proj_weight, attn.in_proj_bias).view(B, N, 3, H, W // H)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    return F.scaled_dot_product_attention(q, k, v)


def finish_block(block, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The rest of the block from the head outputs `z` `[B, H, N, d]`: `out_proj`, layer scale,
    residual, MLP (open_clip's `ResidualAttentionBlock.forward`)."""
    attn = block.attn
    B, H, N, d = z.shape
    out = F.linear(z.transpose(1, 2).reshape(B, N, H * d), attn.out_proj.weight, attn.out_proj.bias)
    x = x + block.ls_1(out)
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def patch_heads(
    z: torch.Tensor, keep: torch.Tensor, fill: torch.Tensor | None = None
) -> torch.Tensor:
    """`keep * z + (1 - keep) * fill` per row and head: `keep` `[B, H]` (1 = clean, 0 = ablated,
    fractions scale), `fill` `[H, N, d]` (None: zeros, i.e. soft pruning)."""
    k = keep.to(z.dtype)[:, :, None, None]
    out = z * k
    if fill is not None:
        out = out + (1 - k) * fill.to(z.dtype)
    return out


# ---------------------------------------------------------------------------- whole tower
def _embed(clip, images: torch.Tensor) -> torch.Tensor:
    return clip.visual._embeds(clip._to_device(images))


def _project(clip, x: torch.Tensor) -> torch.Tensor:
    pooled, _ = clip.visual._pool(x)
    return pooled @ clip.visual.proj


@torch.no_grad()
def head_activations(clip, images: torch.Tensor) -> list[torch.Tensor]:
    """Every layer's head outputs `[B, H, N, d]` on a clean forward pass."""
    x = _embed(clip, images)
    out = []
    for block in clip.blocks:
        z = head_outputs(block, x)
        out.append(z)
        x = finish_block(block, x, z)
    return out


@torch.no_grad()
def head_means(clip, batches: Iterable[torch.Tensor]) -> torch.Tensor:
    """Mean head output over all images of `batches`, `[L, H, N, d]` (float32, or float64 for a
    float64 model): the mean
    baseline, per token position. Raises on no images."""
    total, count = None, 0
    for images in batches:
        if images is None or len(images) == 0:
            continue
        z = torch.stack([wide(a).sum(0) for a in head_activations(clip, images)])
        total = z if total is None else total + z
        count += len(images)
    if total is None:
        raise ValueError("mean head outputs: no images")
    return total / count


@torch.no_grad()
def encode_patched(
    clip,
    residual: torch.Tensor,
    start: int,
    keep: dict[int, torch.Tensor],
    fill: torch.Tensor | None = None,
) -> torch.Tensor:
    """Finish the forward pass from the residual entering block `start`, with each layer in
    `keep` patched row by row (`patch_heads`; `fill` `[L, H, N, d]` or None for zeros)."""
    x = residual
    for idx in range(start, clip.n_layers):
        block = clip.blocks[idx]
        if idx in keep:
            z = patch_heads(head_outputs(block, x), keep[idx], None if fill is None else fill[idx])
            x = finish_block(block, x, z)
        else:
            x = block(x)
    return _project(clip, x)


@torch.no_grad()
def encode_patched_multi(
    clip,
    images: torch.Tensor,
    prune_sets: Sequence[Iterable[Head]],
    fill: torch.Tensor | None = None,
    sets_per_pass: int = 8,
) -> torch.Tensor:
    """`[S, B, D]` embeddings with each set's heads replaced by `fill` (mean ablation; None:
    zeros, as `HeadAwareCLIP.encode_image_multi`), sharing the layers before the first one."""
    sets = [clip._check_heads(s) for s in prune_sets]
    if not sets:
        return torch.empty(0, images.shape[0], clip.embed_dim, device=clip.device)
    layers = [layer for s in sets for layer, _ in s]
    start = min(layers) if layers else clip.n_layers
    residual = clip.residual_before(images, start)
    batch = residual.shape[0]
    outs = []
    for first in range(0, len(sets), sets_per_pass):
        group = sets[first : first + sets_per_pass]
        keep = stacked_keep(group, batch, clip.n_heads, clip.device)
        stacked = residual.repeat(len(group), 1, 1)
        out = encode_patched(clip, stacked, start, keep, fill)
        outs.append(out.view(len(group), batch, -1))
    return torch.cat(outs)


# ---------------------------------------------------------------------------- AtP
@dataclass
class Attribution:
    """AtP of one batch: `y` `[B]` the clean target cosine, `target` `[B]` the row of `text`
    it used, `zero` / `mean` `[B, L, H]` the two baselines (`mean` None without means) and
    `embedding` `[B, D]` the clean, unnormalised image embedding."""

    y: torch.Tensor
    target: torch.Tensor
    zero: torch.Tensor
    mean: torch.Tensor | None
    embedding: torch.Tensor


def attribution_patching(
    clip,
    images: torch.Tensor,
    text: torch.Tensor,
    target_ids: torch.Tensor | None = None,
    means: torch.Tensor | None = None,
) -> Attribution:
    """AtP of every head of every layer for `y = cos(image embedding, text[target])`.

    `text` `[T, D]` holds unit-norm target embeddings (a classifier, or one prompt); a row per
    image comes from `target_ids` `[B]`, or, when None, the row with the largest cosine (the
    predicted class). `means` `[L, H, N, d]` (`head_means`) adds the mean baseline. One forward
    and one backward pass; the model is left unchanged.
    """
    text = text.to(device=clip.device)
    with frozen(clip.model), torch.enable_grad():
        x = _embed(clip, images)
        acts = []
        for block in clip.blocks:
            z = head_outputs(block, x)
            if not z.requires_grad:  # the first layer: a leaf of the graph
                z.requires_grad_(True)
            acts.append(z)
            x = finish_block(block, x, z)
        embedding = wide(_project(clip, x))
        text = text.to(embedding.dtype)
        if target_ids is None:
            target_ids = (F.normalize(embedding.detach(), dim=-1) @ text.T).argmax(-1)
        target_ids = torch.as_tensor(target_ids, device=clip.device).long()
        y = target_cosine(embedding, text, target_ids)
        grads = torch.autograd.grad(y.sum(), acts)  # rows are independent images
    zero = torch.stack([wide(a * g).sum((-2, -1)) for a, g in zip(acts, grads, strict=True)])
    mean = None
    if means is not None:
        means = means.to(device=clip.device)
        mean = torch.stack(
            [
                ((wide(a) - m.to(wide(a).dtype)) * wide(g)).sum((-2, -1))
                for a, g, m in zip(acts, grads, means, strict=True)
            ]
        )
    return Attribution(
        y=y.detach(),
        target=target_ids,
        zero=zero.detach().transpose(0, 1),
        mean=None if mean is None else mean.detach().transpose(0, 1),
        embedding=embedding.detach(),
    )
