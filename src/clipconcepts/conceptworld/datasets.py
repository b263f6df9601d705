"""Concept-world datasets on disk, in the interface real image datasets use.

A dataset is a folder with `images/*.png`, `manifest.parquet` (`image_id: str`, `path: str`
relative to the folder, `label: int32`, and one string column per family holding the value
name) and `classes.json` (`classnames`, `templates`, `family`). Sets written by `write_datasets`:

- `probe/`: uniformly random images for extraction and TEXTSPAN; `label` = the colour index
  (its `classes.json` describes the colour family).
- `{family}/` for each family: a class-balanced zero-shot set; `label` = that family's value
  index, classnames = the value names, templates = the family's prompt templates.
- `{family}-outlined/` for each family: the same classes with outlined instead of filled objects,
  a shift the model never sees in training (the demo's stand-in for ImageNet-A/R).

All images come from the stream `[seed, DATASET_STREAM, set index]`, disjoint from the training
stream, so they are held out from training whatever `seed` is.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image
from tqdm.auto import tqdm

from clipconcepts.conceptworld.generator import DATASET_STREAM, generate
from clipconcepts.conceptworld.model import held_out_family_set
from clipconcepts.conceptworld.world import FAMILIES, TEMPLATES, values_of

logger = logging.getLogger(__name__)

PROBE_NAME = "probe"
PROBE_LABEL_FAMILY = "color"
OOD_STYLE = "outlined"


def ood_dataset_name(family: str) -> str:
    """Folder of a family's out-of-domain zero-shot set."""
    return f"{family}-{OOD_STYLE}"


def write_datasets(
    out_dir: str | Path, n_probe: int, n_per_family: int, seed: int, progress: bool = True
) -> dict[str, Path]:
    """Write the probe set and one zero-shot set per family under `out_dir`.

    Returns {dataset name: folder}; names are "probe", the family names and their OOD names.
    """
    if n_probe < 1 or n_per_family < 1:
        raise ValueError(f"write_datasets: sizes must be >= 1 ({n_probe=}, {n_per_family=})")
    out_dir = Path(out_dir)
    written = {}
    probe = generate(n_probe, [seed, DATASET_STREAM, 0])
    written[PROBE_NAME] = write_dataset(
        out_dir / PROBE_NAME, probe.images, probe.attributes, PROBE_LABEL_FAMILY, progress
    )
    for index, family in enumerate(FAMILIES, start=1):
        sample = held_out_family_set(family, n_per_family, [seed, DATASET_STREAM, index])
        written[family] = write_dataset(
            out_dir / family, sample.images, sample.attributes, family, progress
        )
    for index, family in enumerate(FAMILIES, start=1 + len(FAMILIES)):
        name = ood_dataset_name(family)
        sample = held_out_family_set(
            family, n_per_family, [seed, DATASET_STREAM, index], style=OOD_STYLE
        )
        written[name] = write_dataset(
            out_dir / name, sample.images, sample.attributes, family, progress
        )
    return written


def write_dataset(
    folder: str | Path,
    images: np.ndarray,
    attributes: dict[str, np.ndarray],
    label_family: str,
    progress: bool = True,
) -> Path:
    """Write one dataset folder (built beside it, then renamed into place)."""
    folder = Path(folder)
    classnames = list(values_of(label_family))
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "images").mkdir(parents=True)
    ids = [f"{folder.name}-{i:06d}" for i in range(len(images))]
    paths = [f"images/{image_id}.png" for image_id in ids]
    for image, path in zip(
        tqdm(images, desc=f"write {folder.name}", disable=not progress, mininterval=1.0),
        paths,
        strict=True,
    ):
        Image.fromarray(image).save(tmp / path)
    columns = {
        "image_id": pl.Series(ids, dtype=pl.String),
        "path": pl.Series(paths, dtype=pl.String),
        "label": pl.Series(attributes[label_family], dtype=pl.Int32),
    }
    for family in FAMILIES:
        names = np.asarray(values_of(family), dtype=object)[attributes[family]]
        columns[family] = pl.Series(names.tolist(), dtype=pl.String)
    pl.DataFrame(columns).write_parquet(tmp / "manifest.parquet")
    classes = {
        "classnames": classnames,
        "templates": [template.format("{}") for template in TEMPLATES[label_family]],
        "family": label_family,
    }
    (tmp / "classes.json").write_text(json.dumps(classes, indent=2) + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    logger.info("wrote %d images to %s (label = %s)", len(images), folder, label_family)
    return folder
