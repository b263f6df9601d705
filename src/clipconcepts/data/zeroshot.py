"""Zero-shot classification sets: images, class names and prompt templates per dataset.

`build_zeroshot_dataset(kind, root, transform, download=False, templates="ccs")` returns a
`ZeroShotDataset` for one of `ZEROSHOT_KINDS`:

- `cifar10`, `cifar100`, `food101`, `country211`, `pets` through torchvision's own builders (the
  test split; torchvision downloads when `download` is true and the files are missing);
- `cifar10-objects` / `cifar10-animals`: CIFAR-10's vehicle (4) / animal (6) classes only, the
  subsets the CCS authors used for their concept-specific runs;
- `imagenet-a`, `imagenet-r`: the released folders over their 200 classes, as the tars extract
  (`root/imagenet-a/<wnid>/<image>`) or that inner folder itself (`root/<wnid>/<image>`);
- `imagenet`: ImageNet-1k val, from the release tars or `root/[val/]<wnid>/` folders, standard
  0..999 labels (`clipconcepts.data.imagenet`);
- `imagefolder`: `root/<class>/<image>`, class names from a `classes.json` or the folder names;
- `manifest` / `conceptworld`: a folder with `manifest.parquet` (`image_id`, `path`, `label`) and
  `classes.json` (`{"classnames": [...], "templates": [...]}`), the concept world's format.

With `backend="clip_benchmark"` the images come from `clip_benchmark.datasets.builder.build_dataset`
(optional package) while class names and templates stay ours, so results do not depend on it; its
label order is checked against ours like torchvision's.

Class names and templates are data (`zeroshot_classnames.json`, `zeroshot_templates.json`, with
their provenance inside): `templates="ccs"` gives the CCS authors' sets, `"openai"` OpenAI's
per-dataset ensembles, a set name (`cifar18`, `imagenet80`, ...) or an explicit list also work.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from clipconcepts.data.images import (
    ImageRecords,
    build_image_records,
    class_folders,
    is_image_file,
)
from clipconcepts.data.zeroshot_common import (  # the loaders' shared vocabulary, re-exported
    _TV_LAYOUT,
    not_found,
)
from clipconcepts.data.zeroshot_common import CIFAR10_SUBSETS as CIFAR10_SUBSETS
from clipconcepts.data.zeroshot_common import HOW_TO as HOW_TO
from clipconcepts.data.zeroshot_common import DatasetNotFoundError as DatasetNotFoundError
from clipconcepts.data.zeroshot_common import ZeroShotDataset as ZeroShotDataset
from clipconcepts.data.zeroshot_common import check_templates as check_templates
from clipconcepts.data.zeroshot_common import class_keys_of as class_keys_of
from clipconcepts.data.zeroshot_common import classnames_of as classnames_of
from clipconcepts.data.zeroshot_common import resolve_templates as resolve_templates
from clipconcepts.data.zeroshot_common import template_sets as template_sets

log = logging.getLogger(__name__)


def _torchvision(kind: str, root: Path, transform, download: bool, split: str | None):
    import torchvision.datasets as tvd

    # CIFAR-10's subsets read CIFAR-10; "cifar100" also starts with "cifar10", so match exactly
    base = "cifar10" if kind in CIFAR10_SUBSETS else kind
    split = split or "test"
    try:
        if base == "cifar10":
            ds = tvd.CIFAR10(
                str(root), train=split == "train", transform=transform, download=download
            )
        elif base == "cifar100":
            ds = tvd.CIFAR100(
                str(root), train=split == "train", transform=transform, download=download
            )
        elif base == "food101":
            ds = tvd.Food101(str(root), split=split, transform=transform, download=download)
        elif base == "country211":
            ds = tvd.Country211(str(root), split=split, transform=transform, download=download)
        elif base == "pets":
            ds = tvd.OxfordIIITPet(str(root), split=split, transform=transform, download=download)
        else:  # pragma: no cover - guarded by the registry
            raise KeyError(kind)
    except (RuntimeError, FileNotFoundError, OSError) as err:
        raise not_found(kind, root, _TV_LAYOUT[base], str(err).splitlines()[0]) from err
    _check_label_order(base, list(ds.classes), f"torchvision {base}", root)
    return ds


def _check_label_order(base: str, raw: list[str], source: str, root) -> None:
    """Make sure a reader's label order (its raw class names or folder names, by label) is the
    one our class names follow, so a label can never point at the wrong name."""
    if base in ("country211", "imagenet-a", "imagenet-r"):
        expected = class_keys_of(base)  # ISO codes / WordNet ids: the folder names
    elif base == "pets":
        expected = classnames_of("pets")
    else:
        expected = [c.replace(" ", "_") for c in classnames_of(base)]
    if base == "cifar100":
        raw = [c.replace(" ", "_") for c in raw]
    if raw != expected:
        diff = sorted(set(raw) ^ set(expected))[:5]
        raise ValueError(
            f"{source} classes read from {root} do not match the shipped {base} class names "
            f"({len(raw)} vs {len(expected)}; e.g. {diff or 'same names, different order'})"
        )


class _RelabelledSubset(torch.utils.data.Dataset):
    """The images of some classes only, relabelled 0..k-1 in the given class order."""

    def __init__(self, dataset, targets: Sequence[int], keep: Sequence[int]):
        remap = {old: new for new, old in enumerate(keep)}
        self.dataset = dataset
        self.indices = [i for i, t in enumerate(targets) if t in remap]
        self.labels = [remap[targets[i]] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        image, _ = self.dataset[self.indices[i]]
        return image, self.labels[i]


def _build_torchvision(
    kind, root, transform, *, download, templates, split, family
) -> ZeroShotDataset:
    ds = _torchvision(kind, root, transform, download, split)
    if kind in CIFAR10_SUBSETS:
        ds = _RelabelledSubset(ds, list(ds.targets), CIFAR10_SUBSETS[kind])
    return ZeroShotDataset(
        name=kind,
        classnames=classnames_of(kind),
        templates=resolve_templates(kind, templates),
        transform=transform,
        torch_dataset=ds,
        root=str(root),
    )


# ---------------------------------------------------------------------------- folder sets
def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if is_image_file(p))


_WNID = re.compile(r"n\d{8}")


def wnid_folder(kind: str, root: Path) -> Path:
    """The folder that holds ImageNet-A/R's `<wnid>/` class folders: `root/imagenet-a/` as the
    tar extracts into `root`, or `root` itself. A folder with WordNet ids outside the set's 200
    (ImageNet val's 1,000, the other of A/R) is refused: its images would be scored against the
    wrong classes or silently dropped."""
    inner = root / kind  # imagenet-a.tar / imagenet-r.tar extract to imagenet-a/ / imagenet-r/
    folders = class_folders(root) if root.is_dir() else []
    if not any(_WNID.fullmatch(f) for f in folders) and inner.is_dir():
        root, folders = inner, class_folders(inner)
    wnids = set(class_keys_of(kind))
    found = [f for f in folders if _WNID.fullmatch(f)]
    if not found:
        raise not_found(kind, root, f"{kind}/ or its 200 <wnid> folders (e.g. n01498041/)")
    foreign = [f for f in found if f not in wnids]
    if foreign:
        raise ValueError(
            f"{root} is not {kind}: {len(foreign)} of its {len(found)} WordNet-id folders are "
            f"not among the set's 200 classes (e.g. {', '.join(foreign[:3])}); point the "
            f"config's datasets.<name>.root at the extracted {kind}.tar (ImageNet val, for one, "
            "has 1,000 class folders)"
        )
    return root


def _build_wnid_folders(
    kind, root, transform, *, download, templates, split, family
) -> ZeroShotDataset:
    """ImageNet-A / -R: `root/[imagenet-a/]<wnid>/<image>`; labels follow the shipped 200-wnid
    order."""
    wnids = class_keys_of(kind)
    root = wnid_folder(kind, root)
    present = [w for w in wnids if (root / w).is_dir()]
    if len(present) < len(wnids):
        log.warning(
            "%s: %d of %d class folders present under %s; the classifier keeps all %d classes",
            kind,
            len(present),
            len(wnids),
            root,
            len(wnids),
        )
    ids, paths, labels = [], [], []
    for label, wnid in enumerate(wnids):
        if wnid not in present:
            continue
        for path in _images_in(root / wnid):
            ids.append(f"{wnid}/{path.name}")
            paths.append(path)
            labels.append(label)
    records = ImageRecords(ids, paths, np.asarray(labels, np.int64), classnames_of(kind), str(root))
    return ZeroShotDataset(
        name=kind,
        classnames=classnames_of(kind),
        templates=resolve_templates(kind, templates),
        transform=transform,
        records=records,
        root=str(root),
    )


def _read_classes_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read {path}: {err}") from err
    if not isinstance(data, dict) or "classnames" not in data:
        raise ValueError(f"{path} must be a JSON object with 'classnames' (and 'templates')")
    return data


def _templates_for_folder(kind, meta: dict, templates, where: Path) -> list[str]:
    """A folder's own templates win unless the caller gave an explicit list or set name."""
    explicit = not isinstance(templates, str) or templates not in ("ccs", "openai")
    if not explicit and meta.get("templates"):
        return check_templates(meta["templates"], where=str(where))
    if not explicit:
        return list(template_sets()["imagenet80"])
    return resolve_templates(kind, templates)


def _build_imagefolder(
    kind, root, transform, *, download, templates, split, family
) -> ZeroShotDataset:
    if not root.is_dir():
        raise not_found(kind, root, "<class>/<image> folders")
    records = build_image_records("imagefolder", root)
    meta: dict = {}
    if (root / "classes.json").is_file():
        meta = _read_classes_json(root / "classes.json")
        if len(meta["classnames"]) != len(records.classnames):
            raise ValueError(
                f"{root / 'classes.json'} lists {len(meta['classnames'])} class names but "
                f"{root} has {len(records.classnames)} class folders"
            )
        classnames = [str(c) for c in meta["classnames"]]
    else:
        classnames = [c.replace("_", " ") for c in records.classnames]
    return ZeroShotDataset(
        name=kind,
        classnames=classnames,
        templates=_templates_for_folder(kind, meta, templates, root / "classes.json"),
        transform=transform,
        records=records,
        root=str(root),
    )


def _build_manifest(
    kind, root, transform, *, download, templates, split, family
) -> ZeroShotDataset:
    folder = root
    if family and (root / family / "manifest.parquet").is_file():
        folder = root / family
    if not (folder / "manifest.parquet").is_file():
        raise not_found(kind, folder, "manifest.parquet and classes.json")
    if not (folder / "classes.json").is_file():
        raise not_found(kind, folder, "classes.json next to manifest.parquet")
    meta = _read_classes_json(folder / "classes.json")
    records = build_image_records("manifest", folder)
    classnames = [str(c) for c in meta["classnames"]]
    if len(records) and (records.labels.min() < 0 or records.labels.max() >= len(classnames)):
        raise ValueError(
            f"{folder / 'manifest.parquet'} has labels outside 0..{len(classnames) - 1} "
            f"(classes.json lists {len(classnames)} classes)"
        )
    missing = [p for p in records.paths[:50] if not p.is_file()]
    if missing:
        raise not_found(kind, folder, f"the images the manifest lists (e.g. {missing[0]})")
    return ZeroShotDataset(
        name=kind,
        classnames=classnames,
        templates=_templates_for_folder(kind, meta, templates, folder / "classes.json"),
        transform=transform,
        records=records,
        root=str(folder),
    )


# ---------------------------------------------------------------------------- clip_benchmark
_CB_NAMES = {"pets": "pets", "imagenet-a": "imagenet-a", "imagenet-r": "imagenet-r"}


def _build_clip_benchmark(
    kind, root, transform, *, download, templates, split, family
) -> ZeroShotDataset:
    # a kind it cannot build is refused whether or not the optional package is installed
    if kind in CIFAR10_SUBSETS or kind not in HOW_TO or kind == "imagenet":
        raise ValueError(f"backend 'clip_benchmark' does not build dataset {kind!r}")
    try:
        from clip_benchmark.datasets.builder import build_dataset
    except ImportError as err:
        raise ImportError(
            "backend 'clip_benchmark' needs the optional package: pip install clip-benchmark"
        ) from err
    if kind in ("imagenet-a", "imagenet-r"):
        # clip_benchmark reads ImageNet-A/R with an ImageFolder on `root` (and downloads with
        # wget when `root` is missing): hand it the checked <wnid>/ folder itself
        root = wnid_folder(kind, root)
    try:
        ds = build_dataset(
            _CB_NAMES.get(kind, kind),
            root=str(root),
            transform=transform,
            split=split or "test",
            download=download,
        )
    except (RuntimeError, FileNotFoundError, OSError, AssertionError) as err:
        raise not_found(kind, root, "the clip_benchmark layout", str(err)) from err
    _check_label_order(kind, _labelled_folders(ds, kind), f"clip_benchmark {kind}", root)
    classnames = classnames_of(kind)
    return ZeroShotDataset(
        kind,
        classnames,
        resolve_templates(kind, templates),
        transform,
        torch_dataset=ds,
        root=str(root),
    )


def _labelled_folders(ds, kind: str) -> list[str]:
    """The raw class (folder) names of a clip_benchmark dataset in label order. Its `classes`
    are display names it overwrites (ImageNet-A/R get 200 names whatever the folders hold, so a
    root one folder too high labels every image 0); `class_to_idx` is what labels follow."""
    class_to_idx = getattr(ds, "class_to_idx", None)
    if not isinstance(class_to_idx, dict) or not class_to_idx:
        raise ValueError(
            f"clip_benchmark {kind}: the dataset has no class_to_idx, so its labels cannot be "
            "checked against the shipped class names; use backend: auto"
        )
    return sorted(class_to_idx, key=class_to_idx.__getitem__)


# ---------------------------------------------------------------------------- registry
def _build_imagenet(kind, root, transform, **options) -> ZeroShotDataset:
    from clipconcepts.data.imagenet import build_imagenet  # heavy: only for kind imagenet

    return build_imagenet(kind, root, transform, **options)


Builder = Callable[..., ZeroShotDataset]
ZEROSHOT_KINDS: dict[str, Builder] = {
    "cifar10": _build_torchvision,
    "cifar100": _build_torchvision,
    "cifar10-objects": _build_torchvision,
    "cifar10-animals": _build_torchvision,
    "food101": _build_torchvision,
    "country211": _build_torchvision,
    "pets": _build_torchvision,
    "imagenet-a": _build_wnid_folders,
    "imagenet-r": _build_wnid_folders,
    "imagenet": _build_imagenet,
    "imagefolder": _build_imagefolder,
    "manifest": _build_manifest,
    "conceptworld": _build_manifest,
}


_SPEC_CHOICES = {"backend": ("auto", "clip_benchmark"), "on_bad_image": ("fail", "skip")}
_BUILD_KEYS = ("kind", "root", "download", "split", "family", *_SPEC_CHOICES)


def dataset_options(name: str, spec: dict) -> dict:
    """The config's `datasets.<name>` entry as `build_zeroshot_dataset` keywords; a bad choice
    fails naming the config key. Keys for other steps (the concept world's `style`, which the
    workflow turns into `root`; the report's `ood`) are left out: config/schema.yaml is what
    rejects unknown keys."""
    where = f"config key datasets.{name}"
    if "kind" not in spec:
        raise ValueError(f"{where}.kind is missing")
    options = {"root": None, "download": False}
    options.update((key, value) for key, value in spec.items() if key in _BUILD_KEYS)
    for key, choices in _SPEC_CHOICES.items():
        options.setdefault(key, choices[0])
        if options[key] not in choices:
            raise ValueError(f"{where}.{key} must be one of {choices}, got {options[key]!r}")
    return options


def build_zeroshot_dataset(
    kind: str,
    root: str | Path | None,
    transform: Callable | None = None,
    *,
    download: bool = False,
    templates: str | Sequence[str] = "ccs",
    split: str | None = None,
    family: str | None = None,
    backend: str = "auto",
    on_bad_image: str = "fail",
) -> ZeroShotDataset:
    """Build a zero-shot dataset from the config's `datasets.<name>` entry.

    `kind` picks the builder; `root` is where its files are (or go, with `download`); `family`
    names the concept-world sub-folder; `backend="clip_benchmark"` reads the images through
    clip_benchmark instead of torchvision / our folder readers; `on_bad_image` (`fail` | `skip`)
    is what the dataset's loader does with an image it cannot decode.
    """
    if on_bad_image not in ("fail", "skip"):
        raise ValueError(
            f"zero-shot dataset '{kind}': on_bad_image must be 'fail' or 'skip', "
            f"got {on_bad_image!r}"
        )
    if kind not in ZEROSHOT_KINDS:
        raise ValueError(
            f"unknown zero-shot dataset kind {kind!r}; choose from "
            f"{', '.join(sorted(ZEROSHOT_KINDS))}"
        )
    if not root:
        raise ValueError(f"zero-shot dataset '{kind}' needs a root folder (datasets.<name>.root)")
    root = Path(root).expanduser()
    if not download and not root.exists():
        base = "cifar10" if kind in CIFAR10_SUBSETS else kind
        looked_for = _TV_LAYOUT.get(base, "the dataset folder")
        raise not_found(kind, root, looked_for, "the folder does not exist")
    options = dict(download=download, templates=templates, split=split, family=family)
    if backend not in ("auto", "clip_benchmark"):
        raise ValueError(f"unknown dataset backend {backend!r} (auto | clip_benchmark)")
    build = _build_clip_benchmark if backend == "clip_benchmark" else ZEROSHOT_KINDS[kind]
    dataset = build(kind, root, transform, **options)
    dataset.on_bad_image = on_bad_image
    return dataset
