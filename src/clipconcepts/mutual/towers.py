"""Image towers as the mutual-knowledge stage sees them: a grid of patch features and the image
embedding from one pass, plus plain image and text encoding.

The stage needs only spatial features, so it runs on towers the head-level stages cannot:
- ViT (open_clip `VisionTransformer`, through the head-aware wrapper): the last residual block's
  output tokens before `ln_post` (CLS dropped), or the last attention layer's keys;
- ModifiedResNet (RN50, RN101, RN50x4, ...): the last stage's feature map, before attention
  pooling;
- ConvNeXt (open_clip's timm towers): the trunk's last-stage feature map, before its head.
One loader, `load_tower`, picks the adapter from the model it built.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import open_clip
import torch

from clipconcepts.models.hooked import HeadAwareCLIP, UnsupportedModelError
from clipconcepts.models.loading import resolve_model_spec

log = logging.getLogger(__name__)


class Tower:
    """Common part: open_clip model, tokenizer, input size, normalisation, text encoding."""

    kind = "?"
    features = ("tokens",)

    def __init__(self, model, tokenizer, name: str):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        cfg = model.visual.preprocess_cfg
        size = cfg["size"]
        self.image_size = int(size if isinstance(size, int) else size[0])
        self.mean = torch.tensor(cfg["mean"]).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg["std"]).view(1, 3, 1, 1)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def embed_dim(self) -> int:
        return int(self.model.text_projection.shape[1])

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.visual.parameters()).dtype

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8-range floats in [0, 1] `[B, 3, S, S]` -> normalised input on the tower's device."""
        x = (images - self.mean) / self.std
        return x.to(device=self.device, dtype=self.dtype)

    @torch.no_grad()
    def encode_text(
        self, texts: Sequence[str], normalize: bool = True, batch_size: int = 256
    ) -> torch.Tensor:
        """Text embeddings `[T, D]` (no template added), unit-norm by default."""
        chunks = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(list(texts[start : start + batch_size])).to(self.device)
            chunks.append(self.model.encode_text(tokens, normalize=normalize).float())
        return torch.cat(chunks)

    @torch.no_grad()
    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.visual(x)

    def check_features(self, features: str) -> None:
        if features not in self.features:
            raise ValueError(
                f"config key mutual.features: {features!r} is not available for {self.kind} "
                f"model {self.name} (available: {', '.join(self.features)})"
            )

    def grid(self) -> tuple[int, int]:
        raise NotImplementedError

    def tokens_and_embeddings(self, x: torch.Tensor, features: str):
        """Patch features `[B, h*w, C]` (row-major grid) and image embeddings `[B, D]`."""
        raise NotImplementedError


class ViTTower(Tower):
    kind = "ViT"
    features = ("tokens", "keys")

    def __init__(self, clip: HeadAwareCLIP):
        super().__init__(clip.model, clip.tokenizer, clip.name)
        self.clip = clip

    def grid(self):
        return tuple(self.clip.visual.grid_size)

    @torch.no_grad()
    def tokens_and_embeddings(self, x, features):
        clip = self.clip
        if features == "tokens":  # the last block's output, before ln_post
            tokens = clip.residual_before(x, clip.n_layers)
            emb = clip.encode_from_residual(tokens, clip.n_layers)
        else:  # keys of the last attention layer: ln_1(x) W_k^T, no in_proj bias
            last = clip.n_layers - 1
            x_in = clip.residual_before(x, last)
            block = clip.blocks[last]
            w_k = block.attn.in_proj_weight[clip.width : 2 * clip.width]
            tokens = block.ln_1(x_in) @ w_k.T
            emb = clip.encode_from_residual(x_in, last)
        return tokens[:, 1:], emb


def _as_tokens(fmap: torch.Tensor) -> torch.Tensor:
    """`[B, C, h, w]` -> `[B, h*w, C]`, row-major like a ViT's patch order."""
    return fmap.flatten(2).transpose(1, 2)


class _FeatureMapTower(Tower):
    """Towers whose spatial features are a CNN feature map; its size is read off one pass."""

    _grid: tuple[int, int] | None = None

    def grid(self):
        if self._grid is None:
            x = torch.zeros(1, 3, self.image_size, self.image_size)
            self.tokens_and_embeddings(self.prepare(x), "tokens")
        return self._grid

    def _tokens(self, fmap: torch.Tensor) -> torch.Tensor:
        self._grid = (int(fmap.shape[2]), int(fmap.shape[3]))
        return _as_tokens(fmap)


class ResNetTower(_FeatureMapTower):
    kind = "ResNet"

    @torch.no_grad()
    def tokens_and_embeddings(self, x, features):
        v = self.model.visual
        fmap = v.layer4(v.layer3(v.layer2(v.layer1(v.stem(x)))))
        return self._tokens(fmap), v.attnpool(fmap)


class ConvNeXtTower(_FeatureMapTower):
    kind = "ConvNeXt"

    @torch.no_grad()
    def tokens_and_embeddings(self, x, features):
        v = self.model.visual
        fmap = v.trunk.forward_features(x)
        return self._tokens(fmap), v.head(v.trunk.forward_head(fmap))


def wrap_tower(clip_or_model, tokenizer=None, name: str = "model") -> Tower:
    """The adapter for a built model (a Tower, a HeadAwareCLIP or an open_clip CLIP)."""
    if isinstance(clip_or_model, Tower):
        return clip_or_model
    if isinstance(clip_or_model, HeadAwareCLIP):
        return ViTTower(clip_or_model)
    visual = clip_or_model.visual
    if isinstance(visual, open_clip.model.VisionTransformer):
        return ViTTower(HeadAwareCLIP(clip_or_model, None, tokenizer))
    if isinstance(visual, open_clip.modified_resnet.ModifiedResNet):
        return ResNetTower(clip_or_model, tokenizer, name)
    if (
        isinstance(visual, open_clip.timm_model.TimmModel)
        and "convnext" in type(visual.trunk).__name__.lower()
    ):
        return ConvNeXtTower(clip_or_model, tokenizer, name)
    raise UnsupportedModelError(
        f"model {name}: the mutual stage reads ViT, ModifiedResNet and ConvNeXt towers, "
        f"not {type(visual).__name__}"
    )


def load_tower(
    arch: str, pretrained: str | None = None, device: str = "cpu", precision: str = "fp32"
) -> Tower:
    """Build an open_clip model (unmodified) and wrap its image tower for the mutual stage."""
    spec = resolve_model_spec(arch, pretrained)
    model, _, _ = open_clip.create_model_and_transforms(
        spec.arch,
        pretrained=spec.pretrained,
        precision=precision,
        device=device,
        force_quick_gelu=spec.force_quick_gelu,
    )
    model.eval()
    tokenizer = open_clip.get_tokenizer(spec.arch)
    if isinstance(model.visual, open_clip.model.VisionTransformer):
        return ViTTower(HeadAwareCLIP(model, None, tokenizer, spec=spec))
    return wrap_tower(model, tokenizer, spec.arch)
