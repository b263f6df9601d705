"""Turn a model name (open_clip name, registered config or config file) into a HeadAwareCLIP.

One factory, as in open_clip: `load_clip(arch, pretrained)` accepts
- any open_clip model name (`ViT-B-32`, names added with `open_clip.add_model_config`),
- or a path to an open_clip model-config JSON (registered under its file stem),
and `pretrained` as None (random init), a pretrained tag (`openai`, `laion2b_s34b_b88k`, ...)
or a path to a local checkpoint.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch

from clipconcepts.models.hooked import HeadAwareCLIP

log = logging.getLogger(__name__)


class UnknownModelError(ValueError):
    """An architecture or pretrained tag that open_clip does not know."""


@dataclass(frozen=True)
class ModelSpec:
    """What open_clip is asked to build: resolved name, weights and activation."""

    arch: str
    pretrained: str | None
    force_quick_gelu: bool
    config_path: str | None = None

    @property
    def is_local_checkpoint(self) -> bool:
        return self.pretrained is not None and Path(self.pretrained).is_file()


def _register_config(path: Path) -> str:
    if not path.is_file():
        raise UnknownModelError(f"model config file not found: {path}")
    open_clip.add_model_config(path)
    return path.stem


def _needs_quick_gelu(arch: str, pretrained: str | None) -> bool:
    """OpenAI weights were trained with QuickGELU; open_clip's plain names build GELU and only warn."""
    if pretrained is None or "quickgelu" in arch.lower():
        return False
    if pretrained == "openai":
        return True
    try:
        cfg = open_clip.get_pretrained_cfg(arch, pretrained)
    except Exception:  # noqa: BLE001 - unknown tags are reported by the caller
        return False
    return bool(cfg and cfg.get("quick_gelu", False))


def resolve_model_spec(arch: str, pretrained: str | None = None) -> ModelSpec:
    """Validate `arch`/`pretrained` and decide how open_clip must build the model.

    Raises UnknownModelError naming the closest valid model names or tags.
    """
    config_path = None
    if arch.endswith(".json"):
        config_path = str(Path(arch).resolve())
        arch = _register_config(Path(arch))
    known = open_clip.list_models()
    if arch not in known:
        close = difflib.get_close_matches(arch, known, n=5, cutoff=0.5)
        hint = f" Closest valid names: {', '.join(close)}." if close else ""
        raise UnknownModelError(
            f"unknown open_clip model '{arch}'.{hint} "
            "(A path to an open_clip model-config .json is accepted too.)"
        )
    if pretrained in ("", "none", "None"):
        pretrained = None
    if pretrained is not None and not Path(pretrained).is_file():
        looks_like_path = "/" in pretrained or pretrained.endswith((".pt", ".bin", ".safetensors"))
        if looks_like_path:
            raise UnknownModelError(f"checkpoint file not found for model '{arch}': {pretrained}")
        tags = open_clip.list_pretrained_tags_by_model(arch)
        if pretrained not in tags:
            close = difflib.get_close_matches(pretrained, tags, n=5, cutoff=0.3) or tags[:8]
            raise UnknownModelError(
                f"unknown pretrained tag '{pretrained}' for model '{arch}'. "
                f"Valid tags include: {', '.join(close)}."
            )
    return ModelSpec(
        arch=arch,
        pretrained=pretrained,
        force_quick_gelu=_needs_quick_gelu(arch, pretrained),
        config_path=config_path,
    )


def load_clip(
    arch: str,
    pretrained: str | None = None,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    cache_dir: str | None = None,
) -> HeadAwareCLIP:
    """Build an open_clip model (unmodified) and wrap it for head-level analysis."""
    spec = resolve_model_spec(arch, pretrained)
    if spec.force_quick_gelu:
        log.info("model %s with %s weights: using QuickGELU", spec.arch, spec.pretrained)
    model, _, preprocess = open_clip.create_model_and_transforms(
        spec.arch,
        pretrained=spec.pretrained,
        precision=precision,
        device=device,
        force_quick_gelu=spec.force_quick_gelu,
        cache_dir=cache_dir,
    )
    model.eval()
    tokenizer = open_clip.get_tokenizer(spec.arch)
    return HeadAwareCLIP(model, preprocess, tokenizer, spec=spec)
