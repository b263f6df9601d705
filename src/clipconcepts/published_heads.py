"""The CCS authors' published head lists (Madasu et al. 2025; avinashsai/CCS-CLIP
`src/association.py`, MIT): high (CCS = 5), low (CCS <= 1) and concept lists for their six models.

Standard library only: the pruning stage (`evaluate.strategies`, strategy `published`) and the
report (which says whether a model has lists, and compares them with ours) both read it, and the
report's environment has no torch. The lists live in `data/zeroshot_ccs_published_heads.json`
(with their provenance); names are 0-based `L{layer}.H{head}`.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

# The lists the `published` strategy replays, each as the prune set `published:{kind}`.
PUBLISHED_KINDS = ("high", "low")
_FILE = ("data", "zeroshot_ccs_published_heads.json")


@cache
def _published() -> dict:
    path = resources.files("clipconcepts").joinpath(*_FILE)
    return json.loads(path.read_text(encoding="utf-8"))


def published_strategy(kind: str) -> str:
    """The prune set replaying the authors' `kind` list: `published:high`, `published:low`."""
    return f"published:{kind}"


def canonical_arch(arch: str | None) -> str:
    """open_clip name without the `-quickgelu` suffix (the same weights, as the paper's models)."""
    return (arch or "").removesuffix("-quickgelu")


def published_models() -> list[str]:
    """`arch/pretrained` of every model with published lists."""
    return [f"{a}/{p}" for a, tags in _published()["models"].items() for p in tags]


def find_published(arch: str | None, pretrained: str | None) -> dict[str, list[str]] | None:
    """The published lists (`high`, `low`, concept lists) of a model, None when it has none."""
    tags = _published()["models"].get(canonical_arch(arch))
    if not tags or (pretrained or "") not in tags:
        return None
    return {kind: list(heads) for kind, heads in tags[pretrained].items()}


def published_head_lists(arch: str, pretrained: str | None) -> dict[str, list[str]]:
    """The CCS authors' published head lists (`high`, `low`, concept lists) for a model,
    ready to pass as `manual`; raises KeyError listing the models they published."""
    lists = find_published(arch, pretrained)
    if lists is None:
        raise KeyError(
            f"no published CCS head lists for {arch}/{pretrained}; known: {published_models()}"
        )
    return lists
