"""A head-aware view of an unmodified open_clip CLIP.

The wrapper owns everything head-level, so that later stages never recompute attention:

- `decompose` / `head_contributions`: the direct contribution of every attention head (and of the
  embedding and every MLP) to the CLS token's image embedding, following Gandelsman et al.
  (ICLR 2024): `ln_post` is linearised per image with the mean and std of the full CLS residual
  held constant, and the mean and `ln_post` bias are shared evenly over the 2L+1 residual terms
  (a layer's attention share further evenly over its H heads, each head also carrying 1/H of the
  layer's `out_proj` bias). All terms sum exactly to `encode_image`.
- `encode_image(prune=...)`: soft pruning (a head's output zeroed at every token), identical to
  zeroing the head's columns of `out_proj.weight`, without touching the weights.
- `residual_before` / `encode_from_residual` / `encode_image_multi`: run the layers before the
  first pruned layer once and reuse that residual stream for several prune sets.

Weights are read from open_clip's own modules; the blocks before any pruned layer run through
open_clip itself, and activations are captured with forward hooks (no forked library).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from open_clip.transformer import ResidualAttentionBlock, VisionTransformer

log = logging.getLogger(__name__)

Head = tuple[int, int]


class UnsupportedModelError(ValueError):
    """A vision tower whose structure the decomposition does not cover."""


@dataclass
class Decomposition:
    """Direct contributions to the (unnormalised) image embedding, all `[B, ..., D]`.

    `embedding + mlps.sum(1) + heads.sum((1, 2))` equals `encode_image` when `layers` covers all
    layers and `mlps` is present.
    """

    layers: list[int]
    heads: torch.Tensor  # [B, len(layers), H, D]
    embedding: torch.Tensor | None = None  # [B, D]: the ln_pre output (CLS) term
    mlps: torch.Tensor | None = None  # [B, L, D]: every MLP, all layers
    image_embedding: torch.Tensor | None = None  # [B, D]: the model's own output, same pass

    def total(self) -> torch.Tensor:
        out = self.heads.sum((1, 2))
        if self.embedding is not None:
            out = out + self.embedding
        if self.mlps is not None:
            out = out + self.mlps.sum(1)
        return out


class HeadAwareCLIP:
    """An open_clip CLIP plus a head-level API for its vision tower."""

    def __init__(self, model: torch.nn.Module, preprocess, tokenizer, spec=None):
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.spec = spec
        self.visual: VisionTransformer = model.visual
        self._check_supported()
        self.blocks: list[ResidualAttentionBlock] = list(self.visual.transformer.resblocks)
        attn = self.blocks[0].attn
        self.n_layers = len(self.blocks)
        self.n_heads = attn.num_heads
        self.width = attn.embed_dim
        self.head_dim = self.width // self.n_heads
        self.embed_dim = self.visual.proj.shape[1]
        self.name = spec.arch if spec is not None else type(model).__name__

    # ------------------------------------------------------------------ structure
    def _check_supported(self) -> None:
        v = self.visual
        why = None
        if not isinstance(v, VisionTransformer):
            why = f"vision tower is {type(v).__name__}, not an open_clip VisionTransformer"
        elif v.attn_pool is not None:
            why = "attention pooling"
        elif getattr(v, "pool_type", "tok") != "tok":
            why = f"pool_type {v.pool_type!r} (only CLS-token pooling is decomposed)"
        elif getattr(v, "final_ln_after_pool", False):
            why = "final_ln_after_pool"
        elif v.proj is None:
            why = "no projection"
        elif not all(isinstance(b, ResidualAttentionBlock) for b in v.transformer.resblocks):
            why = "custom attention blocks"
        elif not all(b.attn.batch_first for b in v.transformer.resblocks):
            why = "sequence-first attention"
        if why:
            name = self.spec.arch if self.spec is not None else type(self.model).__name__
            raise UnsupportedModelError(f"model {name}: cannot decompose ({why})")

    @property
    def device(self) -> torch.device:
        return self.visual.proj.device

    @property
    def dtype(self) -> torch.dtype:
        return self.visual.proj.dtype

    def layer_index(self, layer: int) -> int:
        """Normalise a (possibly negative) layer index, with a clear error when out of range."""
        idx = layer + self.n_layers if layer < 0 else layer
        if not 0 <= idx < self.n_layers:
            raise IndexError(f"layer {layer} out of range for {self.n_layers} layers ({self.name})")
        return idx

    def _check_heads(self, heads: Iterable[Head]) -> list[Head]:
        out = []
        for layer, head in heads:
            if not 0 <= head < self.n_heads:
                raise IndexError(f"head {head} out of range for {self.n_heads} heads ({self.name})")
            out.append((self.layer_index(layer), int(head)))
        return out

    def _to_device(self, images: torch.Tensor) -> torch.Tensor:
        return images.to(device=self.device, dtype=self.dtype, non_blocking=True)

    # ------------------------------------------------------------------ plain encoding
    @torch.no_grad()
    def encode_text(
        self, texts: Sequence[str], normalize: bool = True, batch_size: int = 256
    ) -> torch.Tensor:
        """Text embeddings `[T, D]` (no template added), L2-normalised by default."""
        chunks = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(list(texts[start : start + batch_size])).to(self.device)
            chunks.append(self.model.encode_text(tokens, normalize=normalize).float())
        if not chunks:
            return torch.empty(0, self.embed_dim, device=self.device)
        return torch.cat(chunks)

    @torch.no_grad()
    def encode_image(
        self, images: torch.Tensor, prune: Iterable[Head] | None = None
    ) -> torch.Tensor:
        """Unnormalised image embeddings `[B, D]`; `prune` zeroes those heads' outputs."""
        images = self._to_device(images)
        prune = self._check_heads(prune or [])
        if not prune:
            return self.visual(images)
        start = min(layer for layer, _ in prune)
        residual = self.residual_before(images, start)
        return self.encode_from_residual(residual, start, prune)

    # ------------------------------------------------------------------ prefix reuse
    @torch.no_grad()
    def residual_before(self, images: torch.Tensor, layer: int) -> torch.Tensor:
        """Residual stream `[B, N, W]` entering block `layer` (open_clip's own blocks run)."""
        stop = self.n_layers if layer == self.n_layers else self.layer_index(layer)
        x = self.visual._embeds(self._to_device(images))
        for block in self.blocks[:stop]:
            x = block(x)
        return x

    @torch.no_grad()
    def encode_from_residual(
        self,
        residual: torch.Tensor,
        start: int,
        prune: Iterable[Head] | None = None,
        keep: dict[int, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Finish the forward pass from the residual entering block `start`.

        `prune` lists heads to zero for every row; `keep` (advanced) maps layer -> `[B, H]`
        multiplier per row, used to run several prune sets stacked along the batch.
        """
        start = self.n_layers if start == self.n_layers else self.layer_index(start)
        masks = dict(keep or {})
        for layer, head in self._check_heads(prune or []):
            if layer < start:
                raise ValueError(
                    f"head L{layer}.H{head} lies before the reused residual (L{start})"
                )
            mask = masks.get(layer)
            if mask is None:
                mask = torch.ones(residual.shape[0], self.n_heads, device=residual.device)
            mask = mask.clone()
            mask[:, head] = 0
            masks[layer] = mask
        x = residual
        for idx in range(start, self.n_layers):
            block = self.blocks[idx]
            x = block(x) if idx not in masks else _block_with_head_mask(block, x, masks[idx])
        pooled, _ = self.visual._pool(x)
        return pooled @ self.visual.proj

    @torch.no_grad()
    def encode_image_multi(
        self,
        images: torch.Tensor,
        prune_sets: Sequence[Iterable[Head]],
        sets_per_pass: int = 8,
    ) -> torch.Tensor:
        """Embeddings `[S, B, D]` for S prune sets, sharing the layers before the first pruned one.

        An empty set gives the unpruned embedding. The suffix runs for up to `sets_per_pass`
        sets at once, stacked along the batch, so the GPU sees large batches.
        """
        sets = [self._check_heads(s) for s in prune_sets]
        if not sets:
            return torch.empty(0, images.shape[0], self.embed_dim, device=self.device)
        layers = [layer for s in sets for layer, _ in s]
        start = min(layers) if layers else self.n_layers
        residual = self.residual_before(images, start)
        batch = residual.shape[0]
        outs = []
        for first in range(0, len(sets), sets_per_pass):
            group = sets[first : first + sets_per_pass]
            keep = stacked_keep(group, batch, self.n_heads, residual.device)
            stacked = residual.repeat(len(group), 1, 1)
            out = self.encode_from_residual(stacked, start, keep=keep)
            outs.append(out.view(len(group), batch, -1))
        return torch.cat(outs)

    # ------------------------------------------------------------------ decomposition
    @contextmanager
    def _capture(self, layers: Sequence[int], with_mlp: bool):
        """Hooks that record the embedding term, attention inputs and MLP outputs of one forward."""
        store: dict = {"attn_in": {}, "mlp": {}}
        handles = [
            self.visual.ln_pre.register_forward_hook(
                lambda _m, _i, out: store.__setitem__("embed", out[:, 0])
            ),
            self.visual.ln_post.register_forward_pre_hook(
                lambda _m, args: store.__setitem__("final", args[0][:, 0])
            ),
        ]
        for idx in layers:
            block = self.blocks[idx]
            handles.append(
                block.attn.register_forward_pre_hook(
                    lambda _m, args, idx=idx: store["attn_in"].__setitem__(idx, args[0])
                )
            )
        if with_mlp:
            for idx, block in enumerate(self.blocks):
                handles.append(
                    block.ls_2.register_forward_hook(
                        lambda _m, _i, out, idx=idx: store["mlp"].__setitem__(idx, out[:, 0])
                    )
                )
        try:
            yield store
        finally:
            for handle in handles:
                handle.remove()

    def _cls_head_outputs(self, idx: int, attn_in: torch.Tensor) -> torch.Tensor:
        """Each head's output at the CLS position in the residual space, `[B, H, W]`.

        Includes 1/H of `out_proj.bias` per head and the block's layer scale, so the heads of a
        layer sum to that layer's attention output at the CLS token.
        """
        block = self.blocks[idx]
        attn = block.attn
        B, N, W = attn_in.shape
        H, d = self.n_heads, self.head_dim
        w_q, w_k, w_v = attn.in_proj_weight.split(W)
        b_q, b_k, b_v = attn.in_proj_bias.split(W)
        q = F.linear(attn_in[:, :1], w_q, b_q).view(B, 1, H, d).transpose(1, 2)
        k = F.linear(attn_in, w_k, b_k).view(B, N, H, d).transpose(1, 2)
        v = F.linear(attn_in, w_v, b_v).view(B, N, H, d).transpose(1, 2)
        z = F.scaled_dot_product_attention(q, k, v)[:, :, 0]  # [B, H, d]
        w_o = attn.out_proj.weight.view(W, H, d)  # out_proj columns grouped by head
        out = torch.einsum("bhd,whd->bhw", z, w_o)
        if attn.out_proj.bias is not None:
            out = out + attn.out_proj.bias / H
        return block.ls_1(out)

    @torch.no_grad()
    def decompose(
        self,
        images: torch.Tensor,
        layers: Iterable[int] | None = None,
        with_embedding: bool = True,
        with_mlps: bool = False,
    ) -> Decomposition:
        """Direct contributions of heads in `layers` (default: all), and optionally the rest."""
        layer_ids = (
            list(range(self.n_layers))
            if layers is None
            else [self.layer_index(layer) for layer in layers]
        )
        with self._capture(layer_ids, with_mlps) as store:
            image_embedding = self.visual(self._to_device(images))
        final = store["final"]  # CLS residual entering ln_post, [B, W]
        ln = self.visual.ln_post
        mean = final.mean(-1, keepdim=True)
        std = (final.var(-1, keepdim=True, unbiased=False) + ln.eps).sqrt()
        n_terms = 2 * self.n_layers + 1
        gamma = ln.weight if ln.weight is not None else torch.ones_like(final[0])
        beta = ln.bias if ln.bias is not None else torch.zeros_like(final[0])
        proj = self.visual.proj

        def to_joint(term: torch.Tensor, share: float) -> torch.Tensor:
            # term: [B, ..., W]; mean/std broadcast over the middle dims
            extra = term.dim() - 2
            m = mean.view(mean.shape[0], *([1] * extra), 1)
            s = std.view(std.shape[0], *([1] * extra), 1)
            return ((term - m * share) / s * gamma + beta * share) @ proj

        heads = torch.stack(
            [self._cls_head_outputs(i, store["attn_in"][i]) for i in layer_ids], dim=1
        )  # [B, len(layers), H, W]
        result = Decomposition(
            layers=layer_ids,
            heads=to_joint(heads, 1.0 / (n_terms * self.n_heads)),
            image_embedding=image_embedding,
        )
        if with_embedding:
            result.embedding = to_joint(store["embed"], 1.0 / n_terms)
        if with_mlps:
            mlps = torch.stack([store["mlp"][i] for i in range(self.n_layers)], dim=1)
            result.mlps = to_joint(mlps, 1.0 / n_terms)
        return result

    def head_contributions(
        self, images: torch.Tensor, layers: Iterable[int] | None = None
    ) -> torch.Tensor:
        """`[B, len(layers), H, D]`: each head's direct contribution to the image embedding."""
        return self.decompose(images, layers, with_embedding=False).heads

    def __repr__(self) -> str:
        return (
            f"HeadAwareCLIP({self.name}, layers={self.n_layers}, heads={self.n_heads}, "
            f"width={self.width}, embed_dim={self.embed_dim}, device={self.device})"
        )


def stacked_keep(
    sets: Sequence[Sequence[Head]], batch: int, n_heads: int, device
) -> dict[int, torch.Tensor]:
    """layer -> `[S * batch, H]` multipliers for S prune sets stacked along the batch (set i
    fills rows i * batch .. (i + 1) * batch - 1; 0 = head pruned, 1 = kept)."""
    keep: dict[int, torch.Tensor] = {}
    for i, heads in enumerate(sets):
        for layer, head in heads:
            if layer not in keep:
                keep[layer] = torch.ones(len(sets) * batch, n_heads, device=device)
            keep[layer][i * batch : (i + 1) * batch, head] = 0
    return keep


def _block_with_head_mask(
    block: ResidualAttentionBlock, x: torch.Tensor, keep: torch.Tensor
) -> torch.Tensor:
    """open_clip's ResidualAttentionBlock with head outputs scaled by `keep` `[B, H]` per row.

    Zeroing a head's output at every token before `out_proj` is the same as zeroing that head's
    columns of `out_proj.weight` (the CCS authors' soft pruning); the bias stays.
    """
    attn = block.attn
    h = block.ln_1(x)
    B, N, W = h.shape
    H = attn.num_heads
    d = W // H
    qkv = F.linear(h, attn.in_proj_weight, attn.in_proj_bias).view(B, N, 3, H, d)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    z = F.scaled_dot_product_attention(q, k, v)  # [B, H, N, d]
    z = z * keep.to(z.dtype)[:, :, None, None]
    out = F.linear(z.transpose(1, 2).reshape(B, N, W), attn.out_proj.weight, attn.out_proj.bias)
    x = x + block.ls_1(out)
    return x + block.ls_2(block.mlp(block.ln_2(x)))
