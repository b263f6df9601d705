"""The concept world's check of the faithfulness test: blurring the region that carries an
image's true attribute must lower the predicted class's score more than blurring a random region
of the same area.

- True region: for the color and position sets, the object: the pixels within
  `object_tolerance` (60, Euclidean, 0-255) of the object's colour (`OBJECT_RGB` of the colour
  the manifest names); for the texture set, the backdrop: the complement (fixed places
  excluded); for the fixed-place families (frame, ground, tag, dial, stamp), their place.
- Random region: the same mask rolled (wrapping around) by a seeded random offset of a quarter
  to three quarters of the image side along each axis: the same area and shape, elsewhere.
- Both are blurred as in Table 1 (Gaussian, sigma `blur_sigma` x side) and the score is the
  same (`score_scale` x cosine with the ORIGINAL predicted class). Per image, drop = original
  score - score after the deletion; margin = mean drop (true) - mean drop (random); wins = the
  share of images whose true drop exceeds the random one. Images whose object colour is found
  nowhere are skipped and counted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import torch

from clipconcepts.mutual.faithfulness import (
    FaithfulnessSettings,
    blur_images,
    compose,
    score_images,
)
from clipconcepts.mutual.schemas import REGION_SCHEMA
from clipconcepts.mutual.schemas import REGION_TRUTH_SCHEMA as TRUTH_SCHEMA

REGION_OF_FAMILY = {
    "color": "object",
    "position": "object",
    "texture": "background",
    "frame": "frame",
    "ground": "ground",
    "tag": "tag",
    "dial": "dial",
    "stamp": "stamp",
}


def object_rgb(color: str) -> tuple[int, int, int]:
    from clipconcepts.conceptworld.world import OBJECT_RGB, VALUES

    return OBJECT_RGB[VALUES["color"].index(color)]


def object_mask(image: np.ndarray, rgb: Sequence[int], tolerance: float) -> np.ndarray:
    """Pixels within `tolerance` (Euclidean, 0-255) of `rgb`, boolean `[S, S]`."""
    diff = image.astype(np.float32) - np.asarray(rgb, dtype=np.float32)
    return np.sqrt((diff**2).sum(axis=-1)) <= tolerance


def true_region(image: np.ndarray, color: str, family: str, tolerance: float) -> np.ndarray:
    """The region carrying the set's attribute: the object, or the background around it."""
    if family not in REGION_OF_FAMILY:
        raise ValueError(f"no true region for family {family!r}: use {sorted(REGION_OF_FAMILY)}")
    from clipconcepts.conceptworld.generator import IMAGE_SIZE, fixed_regions

    # the fixed places exist at the world's own size (other images: none)
    world_size = image.shape[:2] == (IMAGE_SIZE, IMAGE_SIZE)
    places = fixed_regions() if world_size else {}
    fixed = (
        np.logical_or.reduce(list(places.values()))
        if places
        else np.zeros(image.shape[:2], dtype=bool)
    )
    obj = object_mask(image, object_rgb(color), tolerance) & ~fixed
    region = REGION_OF_FAMILY[family]
    if region == "object":
        return obj
    if region == "background":
        return ~obj & ~fixed
    if region not in places:
        raise ValueError(f"no {region} in a {image.shape[0]}x{image.shape[1]} image")
    return places[region] & ~obj


def random_region(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`mask` rolled by a random offset of side/4 .. 3 side/4 along each axis."""
    h, w = mask.shape
    dy = int(rng.integers(h // 4, h - h // 4 + 1))
    dx = int(rng.integers(w // 4, w - w // 4 + 1))
    return np.roll(mask, (dy, dx), axis=(0, 1))


@torch.no_grad()
def class_truth(
    tower,
    classifier: torch.Tensor,
    images: np.ndarray,
    rows: Sequence[dict],
    family: str,
    settings: FaithfulnessSettings,
    rng: np.random.Generator,
    originals: dict | None = None,
) -> list[dict]:
    """Per image (`rows`: `index`, `image_id`, `class_id`, `predicted_id`, `color`): the
    original score, the scores after blurring the true and the random region, correctness.
    `originals`: index -> (embedding, score, predicted class) already known (not re-encoded)."""
    originals = originals or {}
    blurred = blur_images(images, settings.blur_sigma)
    batch, targets, out = [], [], []
    for row in rows:
        i = row["index"]
        mask = true_region(images[i], row["color"], family, settings.object_tolerance)
        record = {"image_id": row["image_id"], "class_id": row["class_id"]}
        if not mask.any() or mask.all():
            out.append({**record, "skipped": True})
            continue
        rolled = random_region(mask, rng)
        known = i in originals
        batch += [] if known else [images[i]]
        batch += [
            compose(images[i], blurred[i], mask, "deletion"),
            compose(images[i], blurred[i], rolled, "deletion"),
        ]
        targets += [row["predicted_id"]] * (2 if known else 3)
        out.append({**record, "skipped": False, "area": float(mask.mean()), "_index": i})
    scores, preds = np.empty(0), np.empty(0, dtype=np.int64)
    if batch:
        parts = [
            score_images(
                tower,
                classifier,
                np.stack(batch[start : start + settings.batch_size]),
                targets[start : start + settings.batch_size],
                settings.score_scale,
            )[:2]
            for start in range(0, len(batch), settings.batch_size)
        ]
        scores = np.concatenate([s for s, _ in parts])
        preds = np.concatenate([p for _, p in parts])
    at = 0
    for r in out:
        i = r.pop("_index", None)
        if r["skipped"]:
            continue
        if i in originals:
            (_, score, pred), n = originals[i], 2
            s3, p3 = [score, *scores[at : at + 2]], [pred, *preds[at : at + 2]]
        else:
            n = 3
            s3, p3 = scores[at : at + 3].tolist(), preds[at : at + 3].tolist()
        at += n
        r.update(score=float(s3[0]), score_true=float(s3[1]), score_random=float(s3[2]))
        for k, name in enumerate(("correct", "correct_true", "correct_random")):
            r[name] = bool(p3[k] == r["class_id"])
    return out


def _truth_row(group: pl.DataFrame, level, class_id, classname, region) -> dict:
    kept = group.filter(~pl.col("skipped"))
    row = {
        "level": level,
        "class_id": class_id,
        "classname": classname,
        "region": region,
        "n_images": kept.height,
        "n_skipped": group.height - kept.height,
    }
    if kept.is_empty():
        return row
    drop_true = kept["score"] - kept["score_true"]
    drop_random = kept["score"] - kept["score_random"]
    row.update(
        area=kept["area"].mean(),
        score=kept["score"].mean(),
        drop_true=drop_true.mean(),
        drop_random=drop_random.mean(),
        margin=drop_true.mean() - drop_random.mean(),
        wins=(drop_true > drop_random).mean(),
        accuracy=kept["correct"].mean(),
        acc_true=kept["correct_true"].mean(),
        acc_random=kept["correct_random"].mean(),
    )
    return row


def summarise_truth(per_image: Sequence[dict], family: str, classnames: Sequence[str]):
    """The dataset's row, then one per class (`TRUTH_SCHEMA`), from `class_truth`'s rows."""
    region = REGION_OF_FAMILY[family]
    frame = pl.DataFrame(list(per_image), schema=REGION_SCHEMA)
    rows = [_truth_row(frame, "dataset", None, None, region)]
    for (class_id,), group in sorted(frame.group_by(["class_id"]), key=lambda kv: kv[0][0]):
        rows.append(_truth_row(group, "class", class_id, classnames[class_id], region))
    return pl.DataFrame(rows, schema=TRUTH_SCHEMA)
