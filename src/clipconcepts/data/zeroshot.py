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
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from clipconcepts.data.images import (
    ImageRecords,
    build_image_records,
    class_folders,
    dataset_loader,
    image_loader,
    is_image_file,
)

log = logging.getLogger(__name__)


class DatasetNotFoundError(FileNotFoundError):
    """A zero-shot dataset that is not where the config says, with how to provide it."""


@dataclass
class ZeroShotDataset:
    """A labelled image set with the class names and templates of its zero-shot classifier.

    Exactly one of `records` (image files read through `transform`) and `torch_dataset` (a
    dataset yielding `(image_tensor, label)`) is set; `loader()` batches either. `on_bad_image`
    (`fail` | `skip`) is what the loader does with an image it cannot decode.
    """

    name: str
    classnames: list[str]
    templates: list[str]
    transform: Callable | None = None
    records: ImageRecords | None = None
    torch_dataset: torch.utils.data.Dataset | None = None
    root: str = ""
    on_bad_image: str = "fail"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.records is None) == (self.torch_dataset is None):
            raise ValueError("ZeroShotDataset needs exactly one of records and torch_dataset")
        self.templates = check_templates(self.templates, where=f"dataset {self.name!r}")
        if not self.classnames:
            raise ValueError(f"dataset {self.name!r} has no class names")

    def __len__(self) -> int:
        return len(self.records) if self.records is not None else len(self.torch_dataset)

    @property
    def n_classes(self) -> int:
        return len(self.classnames)

    def loader(
        self, batch_size: int = 256, num_workers: int = 0, on_bad_image: str | None = None
    ) -> torch.utils.data.DataLoader:
        """Batches `(images, ids, labels, n_skipped)` in dataset order (the probe loader's form;
        ids are file ids for records, item indices otherwise). An undecodable image fails naming
        its file, or is skipped and counted: `on_bad_image`, else the dataset's own setting."""
        on_bad_image = on_bad_image or self.on_bad_image
        if self.records is not None:
            return image_loader(
                self.records, self.transform, batch_size, num_workers, on_bad_image=on_bad_image
            )
        return dataset_loader(self.torch_dataset, batch_size, num_workers, on_bad_image)


# ---------------------------------------------------------------------------- data files
@cache
def _data_file(name: str) -> dict:
    text = resources.files("clipconcepts.data").joinpath(name).read_text(encoding="utf-8")
    return json.loads(text)


def classnames_of(kind: str) -> list[str]:
    """Display class names of a built-in dataset, in label order."""
    if kind == "imagenet":  # OpenAI's 1,000 names, read from open_clip
        from clipconcepts.data.imagenet import imagenet_classnames

        return imagenet_classnames()
    names = _data_file("zeroshot_classnames.json")
    if kind in ("cifar10-objects", "cifar10-animals"):
        return [names["cifar10"][i] for i in CIFAR10_SUBSETS[kind]]
    if kind not in names or kind.startswith("_"):
        known = sorted(k for k in names if not k.startswith("_"))
        raise KeyError(f"no built-in class names for dataset {kind!r}; known: {', '.join(known)}")
    value = names[kind]
    return list(value.values()) if isinstance(value, dict) else list(value)


def class_keys_of(kind: str) -> list[str]:
    """The folder names (ISO codes, WordNet ids) that label a built-in dataset's classes."""
    if kind == "imagenet":
        from clipconcepts.data.imagenet import imagenet_wnids

        return list(imagenet_wnids())
    value = _data_file("zeroshot_classnames.json")[kind]
    if not isinstance(value, dict):
        raise KeyError(f"dataset {kind!r} has no class keys")
    return list(value)


def template_sets() -> dict[str, list[str]]:
    """Named template sets (`cifar18`, `food1`, `country5`, `imagenet80`, `pets1`, `mutual8`)."""
    return {k: list(v) for k, v in _data_file("zeroshot_templates.json")["sets"].items()}


def resolve_templates(kind: str, templates: str | Sequence[str] = "ccs") -> list[str]:
    """Templates for dataset `kind`: `ccs` | `openai` | a set name | an explicit list."""
    if not isinstance(templates, str):
        return check_templates(list(templates), where=f"templates for {kind!r}")
    data = _data_file("zeroshot_templates.json")
    sets = data["sets"]
    if templates in ("ccs", "openai"):
        base = "cifar10" if kind.startswith("cifar10-") else kind
        if base not in data[templates]:
            raise KeyError(
                f"no '{templates}' templates for dataset {kind!r}: give a template set "
                f"({', '.join(sets)}) or a list, or put them in the dataset's classes.json"
            )
        return list(sets[data[templates][base]])
    if templates in sets:
        return list(sets[templates])
    raise ValueError(
        f"unknown templates {templates!r} for dataset {kind!r}: use ccs, openai, "
        f"one of {', '.join(sets)}, or a list of strings with '{{}}'"
    )


def check_templates(templates: Sequence[str], where: str = "templates") -> list[str]:
    """Each template must hold exactly one `{}` (clip_benchmark's `{c}` is accepted)."""
    out = []
    for t in templates:
        if not isinstance(t, str):
            raise ValueError(f"{where}: template {t!r} is not a string")
        t = t.replace("{c}", "{}")
        if t.count("{}") != 1 or t.count("{") != 1 or t.count("}") != 1:
            raise ValueError(f"{where}: template {t!r} must contain '{{}}' exactly once")
        out.append(t)
    if not out:
        raise ValueError(f"{where}: no templates")
    return out


# ---------------------------------------------------------------------------- errors
HOW_TO = {
    "cifar10": "the 'cifar-10-batches-py' folder from https://www.cs.toronto.edu/~kriz/cifar.html",
    "cifar100": "the 'cifar-100-python' folder from https://www.cs.toronto.edu/~kriz/cifar.html",
    "food101": "the 'food-101' folder (images/, meta/) from the ETH Food-101 release",
    "country211": "the 'country211' folder (test/<ISO code>/...) from OpenAI's country211.tgz",
    "pets": "the 'oxford-iiit-pet' folder (images/, annotations/) from the Oxford-IIIT Pet release",
    "imagenet-a": "the extracted imagenet-a.tar (200 <wnid> folders) from Hendrycks et al.",
    "imagenet-r": "the extracted imagenet-r.tar (200 <wnid> folders) from Hendrycks et al.",
    "imagenet": "ImageNet-1k val: ILSVRC2012_img_val.tar + ILSVRC2012_devkit_t12.tar.gz (sorted "
    "into val/<wnid>/ on first use; the folder must be writable), or the images already sorted "
    "into val/<wnid>/ or <wnid>/ folders (as valprep.sh leaves them)",
}


def _not_found(kind: str, root: Path, looked_for: str, why: str = "") -> DatasetNotFoundError:
    how = HOW_TO.get(kind, "the images")
    downloadable = kind in _TV_LAYOUT or kind in CIFAR10_SUBSETS
    auto = (
        ", or set download: true where the cluster can reach the internet" if downloadable else ""
    )
    reason = f" ({why[:300]})" if why else ""
    return DatasetNotFoundError(
        f"zero-shot dataset '{kind}' not found: looked for {looked_for} under {root}{reason}. "
        f"Provide {how} in that folder (the config's datasets.<name>.root){auto}."
    )


# ---------------------------------------------------------------------------- torchvision sets
CIFAR10_SUBSETS = {
    # CCS authors' cifar10objects / cifar10animals (src/labels.py): CIFAR-10 label indices
    "cifar10-objects": (0, 1, 8, 9),  # airplane, automobile, ship, truck
    "cifar10-animals": (2, 3, 4, 5, 6, 7),  # bird, cat, deer, dog, frog, horse
}

_TV_LAYOUT = {  # what torchvision looks for under root
    "cifar10": "cifar-10-batches-py/",
    "cifar100": "cifar-100-python/",
    "food101": "food-101/{images,meta}/",
    "country211": "country211/test/<ISO code>/",
    "pets": "oxford-iiit-pet/{images,annotations}/",
}


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
        raise _not_found(kind, root, _TV_LAYOUT[base], str(err).splitlines()[0]) from err
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
        raise _not_found(kind, root, f"{kind}/ or its 200 <wnid> folders (e.g. n01498041/)")
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
        raise _not_found(kind, root, "<class>/<image> folders")
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
        raise _not_found(kind, folder, "manifest.parquet and classes.json")
    if not (folder / "classes.json").is_file():
        raise _not_found(kind, folder, "classes.json next to manifest.parquet")
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
        raise _not_found(kind, folder, f"the images the manifest lists (e.g. {missing[0]})")
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
        raise _not_found(kind, root, "the clip_benchmark layout", str(err)) from err
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
    from clipconcepts.data.imagenet import build_imagenet  # imports this module

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
        raise _not_found(kind, root, looked_for, "the folder does not exist")
    options = dict(download=download, templates=templates, split=split, family=family)
    if backend not in ("auto", "clip_benchmark"):
        raise ValueError(f"unknown dataset backend {backend!r} (auto | clip_benchmark)")
    build = _build_clip_benchmark if backend == "clip_benchmark" else ZEROSHOT_KINDS[kind]
    dataset = build(kind, root, transform, **options)
    dataset.on_bad_image = on_bad_image
    return dataset
