"""What every zero-shot dataset loader shares: the dataset record (`ZeroShotDataset`), class
names and class keys per built-in kind, prompt templates, and the not-found error that says how
to provide a dataset. `data.zeroshot` (torchvision, folders, manifests, clip_benchmark) and
`data.imagenet` (ImageNet-1k val) both build on it, so neither imports the other back."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import torch

from clipconcepts.data.images import ImageRecords, dataset_loader, image_loader

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


def not_found(kind: str, root: Path, looked_for: str, why: str = "") -> DatasetNotFoundError:
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


# ---------------------------------------------------------------------------- ImageNet classes
@cache
def imagenet_wnids() -> tuple[str, ...]:
    """The 1,000 ILSVRC-2012 WordNet ids, sorted: label i is `imagenet_wnids()[i]`."""
    text = resources.files("clipconcepts.data").joinpath("imagenet_wnids.txt").read_text()
    wnids = tuple(text.split())
    if len(wnids) != 1000 or list(wnids) != sorted(set(wnids)):
        raise RuntimeError("imagenet_wnids.txt must hold the 1,000 ImageNet wnids, sorted")
    return wnids


def imagenet_classnames() -> list[str]:
    """OpenAI's 1,000 ImageNet class names in label (sorted wnid) order, from open_clip."""
    try:
        from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES
    except ImportError as err:  # pragma: no cover - open_clip is a dependency
        raise ImportError("kind 'imagenet' takes its class names from open_clip") from err
    names = [str(n) for n in IMAGENET_CLASSNAMES]
    if len(names) != 1000:
        raise RuntimeError(f"open_clip lists {len(names)} ImageNet class names, not 1,000")
    return names
