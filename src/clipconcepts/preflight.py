"""Checks a config before anything runs or is submitted (rules/common.smk calls them at parse
time, so a dry run fails too): a typo must not wait for its cluster job to surface.

- every open_clip model name and pretrained tag (models/registry.py: the closest valid names, as
  `load_clip` gives them, in ~30 ms and without importing open_clip or torch);
- every data root (probe.root, datasets.*.root) that exists on this machine: a file where a
  folder is expected, an empty folder, an image folder without class sub-folders. A root that
  does not exist here is only reported: compute nodes may mount paths the submitting machine
  lacks.

Stdlib only: loaded on its own by the workflow (load_light_module), with its sibling
models/registry.py loaded from its path.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# kinds read as <root>/<class>/<image>
_CLASS_FOLDER_KINDS = {"imagefolder"}
_WNID_KINDS = {"imagenet-a", "imagenet-r"}


def _registry():
    name = "_clipconcepts_registry"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _HERE / "models" / "registry.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def check_models(models: dict) -> tuple[list[str], list[str]]:
    """(problems, notes) for a config's `models:` section."""
    registry = _registry()
    try:
        return registry.check_models(models), []
    except ModuleNotFoundError:
        return [], [
            "open_clip is not installed where Snakemake runs: model names and pretrained "
            "tags are checked when their jobs start"
        ]


def _subfolders(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]


def check_root(where: str, kind: str, root: str, download: bool = False) -> str | None:
    """A problem with a data root that exists on this machine, or None."""
    path = Path(root).expanduser()
    if kind == "manifest":
        if path.is_file():
            return None if path.suffix == ".parquet" else f"{where}: {root} is not a .parquet file"
        if not (path / "manifest.parquet").is_file() and not any(path.glob("*/manifest.parquet")):
            return f"{where}: no manifest.parquet in {root}"
        return None
    if not path.is_dir():
        return f"{where}: {root} is a file, not a folder"
    entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    if not entries:
        return None if download else f"{where}: {root} is an empty folder"
    if kind in _CLASS_FOLDER_KINDS and not _subfolders(path):
        return (
            f"{where}: {root} has no class sub-folders (expected <root>/<class>/<image>; "
            "ImageNet val must be sorted into one folder per WordNet id)"
        )
    if kind in _WNID_KINDS and not download:
        inner = path / kind if (path / kind).is_dir() else path
        if not any(p.name.startswith("n") and p.name[1:].isdigit() for p in _subfolders(inner)):
            return f"{where}: {root} holds neither {kind}/ nor <wnid>/ folders (e.g. n01498041/)"
    return None


def check_roots(config: dict) -> tuple[list[str], list[str]]:
    """(problems, notes) for the probe and dataset roots."""
    roots = []
    probe = config.get("probe") or {}
    if probe.get("kind") not in (None, "conceptworld") and probe.get("root"):
        roots.append(("probe.root", probe["kind"], probe["root"], False))
    for name, spec in (config.get("datasets") or {}).items():
        if spec.get("kind") != "conceptworld" and spec.get("root"):
            roots.append(
                (f"datasets.{name}.root", spec["kind"], spec["root"], bool(spec.get("download")))
            )
    problems, missing = [], []
    for where, kind, root, download in roots:
        if not Path(root).expanduser().exists():
            if not download:
                missing.append(f"{where} {root}")
            continue
        problem = check_root(where, kind, root, download)
        if problem:
            problems.append(problem)
    notes = []
    if missing:
        notes.append(
            f"{len(missing)} data root(s) not found on this machine ({'; '.join(missing)}): "
            "fine where the compute nodes mount them, their jobs fail otherwise"
        )
    return problems, notes


def check_config(config: dict) -> tuple[list[str], list[str]]:
    """(problems, notes): problems must stop the run; notes are for the user to read."""
    model_problems, model_notes = check_models(config.get("models") or {})
    root_problems, root_notes = check_roots(config)
    return model_problems + root_problems, model_notes + root_notes


def format_problems(problems: list[str]) -> str:
    lines = "\n".join(f"  - {p}" for p in problems)
    return f"the config has {len(problems)} problem(s), found before any job ran:\n{lines}"
