"""Checks a config before anything runs or is submitted (rules/common.smk calls them at parse
time, so a dry run fails too): a typo must not wait for its cluster job to surface.

- every open_clip model name and pretrained tag (models/registry.py: the closest valid names, as
  `load_clip` gives them, in ~30 ms and without importing open_clip or torch);
- every data root (probe.root, datasets.*.root, mutual.datasets.*.root) that exists on this
  machine: a file where a folder is expected, an empty folder, an image folder without class
  sub-folders, an ImageNet root with neither its tars nor val/<wnid>/ folders. A root that
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
_IMAGENET_ARCHIVES = ("ILSVRC2012_img_val.tar", "ILSVRC2012_devkit_t12.tar.gz")


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
    if kind == "imagenet":
        return _check_imagenet(where, path)
    return None


def _wnid_names(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return [p.name for p in _subfolders(folder) if p.name[:1] == "n" and p.name[1:].isdigit()]


def _check_imagenet(where: str, root: Path) -> str | None:
    """ImageNet-1k val (data/imagenet.py): the release tars, or val/<wnid>/ or <wnid>/ folders
    whose WordNet ids are all among the 1,000."""
    found = _wnid_names(root / "val") or _wnid_names(root)
    if not found:
        tars = [name for name in _IMAGENET_ARCHIVES if (root / name).is_file()]
        if len(tars) == len(_IMAGENET_ARCHIVES):
            return None  # sorted into val/<wnid>/ by torchvision on first use
        if tars:
            missing = sorted(set(_IMAGENET_ARCHIVES) - set(tars))
            return f"{where}: {root} has {tars[0]} but not {missing[0]} (both are needed)"
        return (
            f"{where}: {root} holds neither {' + '.join(_IMAGENET_ARCHIVES)} nor val/<wnid>/ or "
            "<wnid>/ folders (e.g. n01440764/)"
        )
    wnids = set((_HERE / "data" / "imagenet_wnids.txt").read_text().split())  # stdlib only
    foreign = sorted(set(found) - wnids)
    if foreign:
        return (
            f"{where}: {root} is not ImageNet-1k val: {len(foreign)} WordNet-id folder(s) are "
            f"not among its 1,000 classes (e.g. {', '.join(foreign[:3])})"
        )
    return None


def check_roots(config: dict) -> tuple[list[str], list[str]]:
    """(problems, notes) for the probe and dataset roots."""
    roots = []
    probe = config.get("probe") or {}
    if probe.get("kind") not in (None, "conceptworld") and probe.get("root"):
        roots.append(("probe.root", probe["kind"], probe["root"], False))
    sections = [("datasets", config.get("datasets"))]
    mutual = config.get("mutual")
    sections.append(
        ("mutual.datasets", mutual.get("datasets") if isinstance(mutual, dict) else None)
    )
    for section, datasets in sections:
        for name, spec in (datasets if isinstance(datasets, dict) else {}).items():
            if isinstance(spec, dict) and spec.get("kind") != "conceptworld" and spec.get("root"):
                where, download = f"{section}.{name}.root", bool(spec.get("download"))
                roots.append((where, spec.get("kind"), spec["root"], download))
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
