"""Probe image sets as records (image_id, path, label) read through the model's preprocess.

Kinds of source (config `probe.kind`):
- `imagefolder`: `root/<class>/<image>` (ImageNet validation in its usual layout; labels are the
  sorted class folder indices, so ImageNet's standard 0..999 order for WordNet-id folders);
- `manifest`: a folder with `manifest.parquet` (`image_id`, `path` relative to the folder,
  `label`), the format the concept world writes.
Images are decoded lazily; an image that cannot be decoded stops the job with the file named,
or, with `on_bad_image="skip"`, is dropped and counted.
"""

from __future__ import annotations

import logging
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


def _imagefolder(root: Path) -> ImageRecords:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise FileNotFoundError(f"no class sub-folders in image folder {root}")
    ids, paths, labels = [], [], []
    for label, cls in enumerate(classes):
        for path in sorted((root / cls).iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
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
