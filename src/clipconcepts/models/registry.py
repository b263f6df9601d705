"""open_clip's model names and pretrained tags, read without importing open_clip (or torch).

Snakemake parses the workflow at every start (and again inside every cluster job); importing
open_clip there costs seconds. This module reads the same registries from open_clip's installed
files instead: the model-config JSONs (`list_models()`) and the `_PRETRAINED` table of
`pretrained.py` (`list_pretrained_tags_by_model()`), executing only that table's definitions.
If open_clip's layout ever changes, it falls back to importing open_clip.

Stdlib only: rules/common.smk loads this file on its own (no package import) to check a config's
models before anything is submitted, with the closest valid names, as `load_clip` does.
"""

from __future__ import annotations

import ast
import copy
import difflib
import importlib.util
import json
import re
from functools import lru_cache
from pathlib import Path

_PATH_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


class UnknownModelError(ValueError):
    """An architecture or pretrained tag that open_clip does not know."""


def _natural_key(name: str):
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", name.lower())]


@lru_cache(maxsize=1)
def open_clip_dir() -> Path | None:
    """The installed open_clip package folder (found without importing it), or None."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _models_from_files(root: Path) -> list[str]:
    names = []
    for path in (root / "model_configs").glob("*.json"):
        cfg = json.loads(path.read_text())
        if all(key in cfg for key in ("embed_dim", "vision_cfg", "text_cfg")):
            names.append(path.stem)
    return sorted(names, key=_natural_key)


def _pretrained_from_file(root: Path) -> dict[str, list[str]]:
    """Execute the table definitions of open_clip/pretrained.py (no imports, no downloads)."""
    tree = ast.parse((root / "pretrained.py").read_text())
    body = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom | ast.Try):
            continue  # torch, safetensors, huggingface_hub, tqdm: not needed for the table
        body.append(node)
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and ast.unparse(node.value.func) == "_PRETRAINED.update"
        ):
            break  # the table is complete (the -quickgelu aliases are added last)
    namespace: dict = {"copy": copy}
    exec(
        compile((root / "constants.py").read_text(), str(root / "constants.py"), "exec"), namespace
    )
    namespace["__version__"] = ""
    exec(
        compile(ast.Module(body=body, type_ignores=[]), str(root / "pretrained.py"), "exec"),
        namespace,
    )
    table = namespace["_PRETRAINED"]
    return {model: list(tags) for model, tags in table.items()}


@lru_cache(maxsize=1)
def registry() -> tuple[list[str], dict[str, list[str]]]:
    """(model names, model -> pretrained tags), as open_clip.list_models() and
    open_clip.list_pretrained_tags_by_model() give them."""
    root = open_clip_dir()
    if root is None:
        raise ModuleNotFoundError("open_clip is not installed")
    try:
        models, tags = _models_from_files(root), _pretrained_from_file(root)
        if models and tags:
            return models, tags
    except Exception:  # noqa: BLE001 - a changed layout: ask open_clip itself
        pass
    import open_clip

    tags: dict[str, list[str]] = {}
    for model, tag in open_clip.list_pretrained():
        tags.setdefault(model, []).append(tag)
    return open_clip.list_models(), tags


def looks_like_path(pretrained: str) -> bool:
    return "/" in pretrained or pretrained.endswith(_PATH_SUFFIXES)


def check_model(arch: str, pretrained: str | None = None) -> None:
    """Raise UnknownModelError, naming the closest valid names, for an open_clip model name or
    pretrained tag that `load_clip` would reject. Paths (model-config JSONs, checkpoints) are
    left to the workflow, which tracks them as input files."""
    models, tags_by_model = registry()
    name = Path(arch).stem if arch.endswith(".json") else arch
    if not arch.endswith(".json") and name not in models:
        close = difflib.get_close_matches(name, models, n=5, cutoff=0.5)
        hint = f" Closest valid names: {', '.join(close)}." if close else ""
        raise UnknownModelError(
            f"unknown open_clip model '{arch}'.{hint} "
            "(A path to an open_clip model-config .json is accepted too.)"
        )
    if pretrained in (None, "", "none", "None") or looks_like_path(pretrained):
        return
    tags = tags_by_model.get(name, [])
    if pretrained not in tags:
        close = difflib.get_close_matches(pretrained, tags, n=5, cutoff=0.3) or tags[:8]
        valid = (
            f"Valid tags include: {', '.join(close)}." if close else "It has no pretrained tags."
        )
        raise UnknownModelError(
            f"unknown pretrained tag '{pretrained}' for model '{arch}'. {valid}"
        )


def check_models(models: dict[str, dict]) -> list[str]:
    """Every problem with a config's `models:` section (concept-world models are skipped)."""
    problems = []
    for key, spec in models.items():
        if spec.get("arch") == "conceptworld":
            continue
        try:
            check_model(spec["arch"], spec.get("pretrained"))
        except UnknownModelError as err:
            problems.append(f"models.{key}: {err}")
    return problems
