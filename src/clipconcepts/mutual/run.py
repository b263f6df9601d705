"""The mutual-knowledge step of one model on one dataset: classes in turn, resumable, Parquet out.

Images are read squashed to the model's input size (no centre crop, bilinear by default: as the
authors do) and kept as uint8, since the visual prompts are drawn on them. Each finished class
is written to `<out>.parts/class-<id>.parquet` at once; a rerun after a crash or a preemption
skips the classes already there. At the end the parts become `images.parquet` (one row per
image and method) and `summary.parquet` (per dataset and per class: top-1, MI, AUC, the averaged
curve, the images without foreground, with an empty intersection or with a single concept).
"""

from __future__ import annotations

import io
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import torch
from PIL import Image
from tqdm.auto import tqdm

from clipconcepts.io import atomic_path
from clipconcepts.mutual.information import area_under_curve, average_curves
from clipconcepts.mutual.per_class import RESIZE_MODES, MutualSettings, TextSide, explain_class
from clipconcepts.mutual.schemas import IMAGE_SCHEMA, SUMMARY_SCHEMA
from clipconcepts.mutual.towers import wrap_tower

log = logging.getLogger(__name__)


def squash_transform(size: int, resize: str = "bilinear"):
    """PIL image -> uint8 `[3, size, size]`: resized to a square, no crop; `resize` bilinear
    (torchvision's default, as the authors' `transforms.Resize((size, size))`) or bicubic."""
    from torchvision import transforms

    if resize not in RESIZE_MODES:
        raise ValueError(f"config key mutual.resize is {resize!r}; use one of {RESIZE_MODES}")
    mode = transforms.InterpolationMode[resize.upper()]  # BILINEAR or BICUBIC
    return transforms.Compose(
        [
            transforms.Lambda(lambda im: im.convert("RGB")),
            transforms.Resize((size, size), interpolation=mode),
            transforms.PILToTensor(),
        ]
    )


def class_members(dataset) -> dict[int, list[int]]:
    """Item indices of each class, in dataset order."""
    if dataset.records is not None:
        labels = np.asarray(dataset.records.labels)
    else:
        ds = dataset.torch_dataset
        labels = next(
            (
                np.asarray(getattr(ds, a))
                for a in ("targets", "_labels", "labels")
                if hasattr(ds, a)
            ),
            None,
        )
        if labels is None:  # read them once (small torchvision sets)
            labels = np.asarray([int(ds[i][1]) for i in range(len(ds))])
    members: dict[int, list[int]] = {}
    for i, label in enumerate(labels.tolist()):
        members.setdefault(int(label), []).append(i)
    return members


def choose_classes(members: dict, n_classes: int | None, per_class: int | None, seed: int):
    """Whole classes sampled (seeded; all when None), and up to `per_class` images of each."""
    classes = sorted(members)
    rng = np.random.default_rng(seed)
    if n_classes is not None and n_classes < len(classes):
        classes = sorted(rng.choice(classes, size=n_classes, replace=False).tolist())
    chosen = {}
    for c in classes:
        items = members[c]
        if per_class is not None and per_class < len(items):
            items = sorted(rng.choice(items, size=per_class, replace=False).tolist())
        chosen[c] = items
    return chosen


def _load_class(dataset, items: list[int], batch_size: int):
    """uint8 `[n, S, S, 3]`, ids and labels of some items (bad images per the dataset's rule)."""
    subset_loader = _subset(dataset, items).loader(batch_size=batch_size)
    images, ids, labels = [], [], []
    for batch, batch_ids, batch_labels, _ in subset_loader:
        images.append(batch.permute(0, 2, 3, 1).numpy())
        ids += [str(i) for i in batch_ids]
        labels += [int(x) for x in batch_labels]
    return np.concatenate(images) if images else np.zeros((0,)), ids, labels


def _subset(dataset, items):
    from dataclasses import replace

    if dataset.records is not None:
        r = dataset.records
        from clipconcepts.data.images import ImageRecords

        records = ImageRecords(
            [r.image_ids[i] for i in items],
            [r.paths[i] for i in items],
            np.asarray(r.labels)[items],
            r.classnames,
            r.source,
            r.extra,
        )
        return replace(dataset, records=records)
    return replace(dataset, torch_dataset=torch.utils.data.Subset(dataset.torch_dataset, items))


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def run_mutual(
    clip,
    dataset,
    text: TextSide,
    descriptor_texts: list[str],
    settings: MutualSettings,
    out_images: str | Path,
    out_summary: str | Path,
    n_classes: int | None = None,
    images_per_class: int | None = None,
    n_examples: int = 4,
    metadata: dict | None = None,
    evaluation=None,
) -> pl.DataFrame:
    """Explain every chosen class of `dataset` (built with `squash_transform`); returns the
    summary. `evaluation` (an `evaluation.Evaluation`): Tables 1 and 2 (and the concept world's
    region check) on the same classes, their parts written before each class's own."""
    out_images = Path(out_images)
    parts = out_images.with_name(out_images.name + ".parts")
    parts.mkdir(parents=True, exist_ok=True)
    extra = {} if evaluation is None else {"evaluation": evaluation.stamp()}
    stamp = json.dumps(
        {"settings": vars(settings), **(metadata or {}), **extra}, sort_keys=True, default=str
    )
    stamp_file = parts / "settings.json"
    if stamp_file.exists() and stamp_file.read_text() != stamp:
        log.info("settings changed since the partial run: starting over")
        shutil.rmtree(parts)
        parts.mkdir(parents=True)
    stamp_file.write_text(stamp)

    chosen = choose_classes(class_members(dataset), n_classes, images_per_class, settings.seed)
    names = dataset.classnames
    example_classes = set(sorted(chosen)[:n_examples])
    done = 0
    for class_id, items in tqdm(chosen.items(), desc="classes", unit="class"):
        part = parts / f"class-{class_id:05d}.parquet"
        if part.exists():
            done += 1
            continue
        images, ids, labels = _load_class(dataset, items, settings.batch_size)
        rows = explain_class(clip, images, ids, labels, text, settings) if ids else []
        for row in rows:
            row["classname"] = names[row["class_id"]]
            row["predicted_name"] = names[row["predicted_id"]]
            row["correct"] = row["class_id"] == row["predicted_id"]
            row["dv_texts"] = [descriptor_texts[d] for d in row["dv_ids"]]
            first = row["image_id"] == ids[0] and class_id in example_classes
            row["thumbnail"] = _png(images[0]) if first else None
        if evaluation is not None and rows:
            tower = wrap_tower(clip)
            evaluation.per_class(tower, text.classifier, images, ids, rows, parts, class_id)
        with atomic_path(part) as tmp:
            pl.DataFrame(rows, schema=IMAGE_SCHEMA).write_parquet(tmp)
    if done:
        log.info("resumed: %d of %d classes were already done", done, len(chosen))

    table = (
        pl.concat(
            [pl.read_parquet(p) for p in sorted(parts.glob("class-*.parquet"))], how="vertical"
        )
        if chosen
        else pl.DataFrame(schema=IMAGE_SCHEMA)
    )
    summary = summarise(table, settings)
    meta = {
        "clipconcepts": json.dumps(
            {
                "mi_form": settings.mi_form,
                "text_side": settings.text_side,
                "resize": settings.resize,
                "single_concept": settings.single_concept,
                **(metadata or {}),
            },
            sort_keys=True,
        )
    }
    for frame, path in ((table, out_images), (summary, out_summary)):
        arrow = frame.to_arrow().replace_schema_metadata(meta)
        with atomic_path(path) as tmp:
            import pyarrow.parquet as pq

            pq.write_table(arrow, tmp, compression="zstd")
    if evaluation is not None:
        evaluation.finish(wrap_tower(clip), text.classifier, table, parts, names, metadata or {})
    shutil.rmtree(parts)
    return summary


def write_with_metadata(frame: pl.DataFrame, path: str | Path, meta: dict) -> None:
    """`frame` to Parquet (zstd, atomically) with `meta` as JSON under the schema key
    `clipconcepts`."""
    import pyarrow.parquet as pq

    arrow = frame.to_arrow().replace_schema_metadata(
        {"clipconcepts": json.dumps(meta, sort_keys=True, default=str)}
    )
    with atomic_path(path) as tmp:
        pq.write_table(arrow, tmp, compression="zstd")


def _summary_row(group: pl.DataFrame, level, class_id, classname, method) -> dict:
    curve = average_curves(group["curve"].to_list())
    n = group.height
    return {
        "level": level,
        "class_id": class_id,
        "classname": classname,
        "method": method,
        "n_images": n,
        "n_no_foreground": int((group["status"] == "no_foreground").sum()),
        "n_empty_intersection": int((group["status"] == "empty_intersection").sum()),
        # D_v from a one-row transport plan (mutual.single_concept decides its picks)
        "n_single_concept": int(
            ((group["status"] == "ok") & (group["ellipses"].list.len() == 1)).sum()
        ),
        "top1": 100.0 * float(group["correct"].mean()) if n else float("nan"),
        "mi": float(curve[0]) if len(curve) else 0.0,
        "auc": area_under_curve(curve),
        "curve": curve.tolist(),
    }


def summarise(table: pl.DataFrame, settings: MutualSettings) -> pl.DataFrame:
    """Per method: the dataset's averaged curve, MI (its first point), AUC and top-1; the same
    per class."""
    rows = []
    for method in settings.methods:
        sub = table.filter(pl.col("method") == method)
        rows.append(_summary_row(sub, "dataset", None, None, method))
        for (class_id, classname), group in sorted(
            sub.group_by(["class_id", "classname"]), key=lambda kv: kv[0][0]
        ):
            rows.append(_summary_row(group, "class", class_id, classname, method))
    return pl.DataFrame(rows, schema=SUMMARY_SCHEMA)
