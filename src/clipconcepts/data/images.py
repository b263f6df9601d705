"""Probe image sets as records (image_id, path, label) read through the model's preprocess.

Kinds of source (config `probe.kind`):
- `imagefolder`: `root/<class>/<image>` (ImageNet validation in its usual layout; labels are the
  sorted class folder indices, so ImageNet's standard 0..999 order for WordNet-id folders; hidden
  folders and files, such as `.ipynb_checkpoints/`, are not classes or images);
- `manifest`: a folder with `manifest.parquet` (`image_id`, `path` relative to the folder,
  `label`), the format the concept world writes.
Images are decoded lazily; an image that cannot be decoded stops the job with the file named,
or, with `on_bad_image="skip"`, is dropped and counted. `dataset_loader` does the same for an
`(image, label)` dataset such as torchvision's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import torch
from PIL import Image

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


class BadImageError(RuntimeError):
    """An image file that could not be decoded."""


@dataclass
class ImageRecords:
    """A table of images: ids, absolute paths and integer labels (class names optional)."""

    image_ids: list[str]
    paths: list[Path]
    labels: np.ndarray
    classnames: list[str] | None = None
    source: str = ""
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.image_ids)

    def subset(self, n: int | None, seed: int = 0) -> ImageRecords:
        """A seeded random subset of `n` images, kept in their original order."""
        if n is None or n >= len(self):
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))
        return ImageRecords(
            [self.image_ids[i] for i in keep],
            [self.paths[i] for i in keep],
            self.labels[keep],
            self.classnames,
            self.source,
            self.extra,
        )


def is_image_file(path: Path) -> bool:
    """An image by suffix, not hidden (macOS `._x.jpg` forks and the like are not images)."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def class_folders(root: Path) -> list[str]:
    """Sorted class sub-folder names; hidden folders (`.ipynb_checkpoints`, `.git`) are not
    classes, and counting one would shift every label after it."""
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


# The ILSVRC2012 validation tar extracts flat: ILSVRC2012_val_00000001.JPEG ... 00050000.
_IMAGENET_VAL_FILE = re.compile(r"ILSVRC2012_val_\d{8}\.JPEG", re.IGNORECASE)


def _no_class_folders(root: Path) -> FileNotFoundError:
    """Say how to arrange a folder that holds images but no class sub-folders."""
    flat = [p for p in root.iterdir() if p.is_file() and is_image_file(p)]
    if any(_IMAGENET_VAL_FILE.fullmatch(p.name) for p in flat):
        return FileNotFoundError(
            f"image folder {root} holds {len(flat)} images but no class sub-folders: it looks "
            "like ImageNet validation as ILSVRC2012_img_val.tar extracts (flat, unsorted). "
            "Sort it into one folder per WordNet id, <root>/<wnid>/ILSVRC2012_val_*.JPEG, the "
            "layout the usual valprep.sh makes (run it inside the folder: "
            "https://raw.githubusercontent.com/soumith/imagenetloader.torch/master/valprep.sh), "
            "then point the config (probe.root) at it"
        )
    if flat:
        return FileNotFoundError(
            f"image folder {root} holds {len(flat)} images but no class sub-folders: arrange "
            "them as <root>/<class>/<image> (one sub-folder per class; labels follow the sorted "
            "folder names)"
        )
    return FileNotFoundError(
        f"no class sub-folders in image folder {root} (expected <root>/<class>/<image>)"
    )


def _imagefolder(root: Path) -> ImageRecords:
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} is not a folder")
    classes = class_folders(root)
    if not classes:
        raise _no_class_folders(root)
    ids, paths, labels = [], [], []
    for label, cls in enumerate(classes):
        for path in sorted((root / cls).iterdir()):
            if is_image_file(path):
                ids.append(f"{cls}/{path.name}")
                paths.append(path)
                labels.append(label)
    if not ids:
        raise FileNotFoundError(f"no images under {root} (looked for {sorted(IMAGE_SUFFIXES)})")
    return ImageRecords(ids, paths, np.asarray(labels, np.int64), classes, str(root))


def _manifest(root: Path) -> ImageRecords:
    path = root / "manifest.parquet" if root.is_dir() else root
    if not path.is_file():
        raise FileNotFoundError(f"no manifest.parquet in {root}")
    table = pl.read_parquet(path)
    missing = {"image_id", "path", "label"} - set(table.columns)
    if missing:
        raise ValueError(f"manifest {path} lacks columns {sorted(missing)}")
    base = path.parent
    return ImageRecords(
        table["image_id"].cast(pl.Utf8).to_list(),
        [base / p for p in table["path"].to_list()],
        table["label"].to_numpy().astype(np.int64),
        None,
        str(path),
    )


SOURCES: dict[str, Callable[[Path], ImageRecords]] = {
    "imagefolder": _imagefolder,
    "manifest": _manifest,
}


def build_image_records(kind: str, root: str | Path) -> ImageRecords:
    """Resolve a probe-set source; a missing path or unknown kind fails with what was looked for."""
    if kind not in SOURCES:
        raise ValueError(f"unknown image source kind '{kind}' (choose from {sorted(SOURCES)})")
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(
            f"image source '{kind}' not found at {root}: set its path in the config "
            "(e.g. probe.root) to a folder that holds the images"
        )
    return SOURCES[kind](root)


class _RecordDataset(torch.utils.data.Dataset):
    def __init__(self, records: ImageRecords, transform, skip_bad: bool):
        self.records = records
        self.transform = transform
        self.skip_bad = skip_bad

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int):
        path = self.records.paths[i]
        try:
            with Image.open(path) as im:
                image = self.transform(im.convert("RGB"))
        except Exception as err:  # noqa: BLE001 - any decoder failure is a bad image
            if self.skip_bad:
                log.warning("skipping undecodable image %s: %s", path, err)
                return None
            raise BadImageError(f"cannot decode image {path}: {err}") from err
        return image, self.records.image_ids[i], int(self.records.labels[i])


def _collate(items):
    kept = [item for item in items if item is not None]
    skipped = len(items) - len(kept)
    if not kept:
        return None, [], torch.empty(0, dtype=torch.long), skipped
    images, ids, labels = zip(*kept, strict=True)
    return torch.stack(images), list(ids), torch.tensor(labels), skipped


def image_loader(
    records: ImageRecords,
    transform,
    batch_size: int = 256,
    num_workers: int = 0,
    on_bad_image: str = "fail",
) -> torch.utils.data.DataLoader:
    """Batches `(images, image_ids, labels, n_skipped)` in record order."""
    if on_bad_image not in ("fail", "skip"):
        raise ValueError(f"on_bad_image must be 'fail' or 'skip', got {on_bad_image!r}")
    dataset = _RecordDataset(records, transform, skip_bad=on_bad_image == "skip")
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=torch.cuda.is_available(),
    )


def _item_path(dataset, i: int) -> str:
    """The file behind item `i` of a torchvision-style dataset, for error messages."""
    for attr in ("samples", "_image_files", "_images"):  # ImageFolder, Food101, OxfordIIITPet
        items = getattr(dataset, attr, None)
        if items is not None and i < len(items):
            item = items[i]
            return str(item[0] if isinstance(item, tuple) else item)
    inner, indices = getattr(dataset, "dataset", None), getattr(dataset, "indices", None)
    if inner is not None and indices is not None:  # a subset of another dataset
        return _item_path(inner, indices[i])
    return f"item {i} of {type(dataset).__name__}"


class _GuardedDataset(torch.utils.data.Dataset):
    """An `(image, label)` dataset in the record loader's form; an item that cannot be read
    fails naming its file, or with `skip_bad` is dropped and counted."""

    def __init__(self, dataset, skip_bad: bool):
        self.dataset = dataset
        self.skip_bad = skip_bad

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        try:
            image, label = self.dataset[i]
        except Exception as err:  # noqa: BLE001 - any decoder failure is a bad image
            path = _item_path(self.dataset, i)
            if self.skip_bad:
                log.warning("skipping undecodable image %s: %s", path, err)
                return None
            raise BadImageError(f"cannot decode image {path}: {err}") from err
        return image, str(i), int(label)


def dataset_loader(
    dataset: torch.utils.data.Dataset,
    batch_size: int = 256,
    num_workers: int = 0,
    on_bad_image: str = "fail",
) -> torch.utils.data.DataLoader:
    """Batches `(images, item_ids, labels, n_skipped)` of an `(image, label)` dataset (e.g. a
    torchvision one) in order, with `on_bad_image` as for `image_loader`."""
    if on_bad_image not in ("fail", "skip"):
        raise ValueError(f"on_bad_image must be 'fail' or 'skip', got {on_bad_image!r}")
    return torch.utils.data.DataLoader(
        _GuardedDataset(dataset, skip_bad=on_bad_image == "skip"),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=torch.cuda.is_available(),
    )
