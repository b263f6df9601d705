"""Explanation faithfulness (the mutual-knowledge paper's Table 1, Appendix E), and the concept
world's check that deleting an image's true attribute hurts more than deleting a random region.

Per image and concept method, the concepts are ranked by the product of two cosines with the
image embedding: the concept's embedding (the mean of its 3 visual prompts' embeddings) and its
top descriptor's (its first Sinkhorn pick, embedded without a template); the mutual step stores
both per concept (`images.parquet`, column `concepts`) with each image's concept grid
(`concept_grid`), so nothing of its per-class work is redone here.

- Deletion: from the image, the concepts' regions are blurred cumulatively in that order, L
  steps (L + 1 points); insertion: from the fully blurred image, they are unblurred
  cumulatively. A concept's region is its patch mask upsampled (nearest) to the image, not its
  ellipse. The blur is a Gaussian of sigma `blur_sigma` x the image side.
- Tracked at every point: the ORIGINAL predicted class's score, `score_scale` (2.5, the paper's
  Figure 7) x the cosine of the perturbed image's embedding with that class's weight, and
  whether the perturbed image's prediction is the ground truth (AccDrop, AccInc).
- An image with fewer than L concepts keeps its last point to the end (nothing is left to
  delete or insert); an image without concepts is stored but left out of the averages.
- Areas: trapezoidal, unit steps, x = 0 .. L (the paper does not say; its values, 2.4-3.4 for
  L = 5, need an area over unit steps). The per-step curves are stored, so any other area can be
  computed from the files.
- Baseline: the same with the image's concepts in a seeded random order.

It runs inside the mutual step, class by class, on the images and rows `explain_class` has
just made (`mutual.evaluation`): every perturbed image of a class (both methods, both orders,
deletion and insertion; shared points such as the original and the fully blurred image only
once) is encoded in batches.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import polars as pl
import torch

from clipconcepts.mutual.per_class import encode_prompts
from clipconcepts.mutual.schemas import FAITHFULNESS_SUMMARY_SCHEMA
from clipconcepts.mutual.visual_prompts import upsample_mask

log = logging.getLogger(__name__)

MODES = ("deletion", "insertion")
ORDERS = ("ranked", "random")
AREAS = {  # area column -> (curve, what the curve tracks)
    "deletion": ("deletion", "score"),
    "insertion": ("insertion", "score"),
    "acc_drop": ("deletion", "correct"),
    "acc_inc": ("insertion", "correct"),
}


@dataclass(frozen=True)
class FaithfulnessSettings:
    """Knobs of Table 1 and of the concept world's check (`mutual.faithfulness`)."""

    steps: int = 5  # L (= mutual.concepts)
    blur_sigma: float = 0.1  # Gaussian sigma as a fraction of the image side
    score_scale: float = 2.5  # the paper's Figure 7
    seed: int = 0  # the random order (and the concept world's random regions)
    batch_size: int = 256
    object_tolerance: float = 60.0  # concept world: RGB distance of object pixels

    def __post_init__(self):
        if self.steps < 1 or self.blur_sigma <= 0 or self.batch_size < 1:
            raise ValueError(f"mutual.faithfulness: invalid settings {self}")


# ------------------------------------------------------------------------------- pieces
def blur_images(images: np.ndarray, sigma_fraction: float) -> np.ndarray:
    """Each uint8 image `[B, S, S, 3]` under a Gaussian blur of sigma `sigma_fraction` x side."""
    sigma = float(sigma_fraction) * images.shape[1]
    out = np.empty_like(images)
    for i, image in enumerate(images):
        out[i] = cv2.GaussianBlur(
            np.ascontiguousarray(image), (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101
        )
    return out


def region_masks(concept_grid, size: int) -> dict[int, np.ndarray]:
    """Concept id -> its patch mask upsampled (nearest) to the image, boolean `[S, S]`."""
    grid = np.asarray(concept_grid, dtype=np.int64)
    return {int(c): upsample_mask(grid == c, size).astype(bool) for c in np.unique(grid) if c >= 0}


def rank_concepts(concepts: Sequence[dict]) -> list[int]:
    """Concept ids by visual x textual cosine, largest first (ties: concept id)."""
    scored = sorted(concepts, key=lambda c: (-c["visual"] * c["textual"], c["concept"]))
    return [int(c["concept"]) for c in scored]


def compose(image: np.ndarray, blurred: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """Deletion: the image with `mask` blurred; insertion: the blurred image with `mask` sharp."""
    inside = mask[:, :, None]
    if mode == "deletion":
        return np.where(inside, blurred, image)
    if mode == "insertion":
        return np.where(inside, image, blurred)
    raise ValueError(f"unknown mode {mode!r}")


def pad_curve(values: Sequence, length: int) -> list:
    """`values` cut or extended with its last value to `length` points."""
    values = list(values)[:length]
    return values + [values[-1]] * (length - len(values))


def curve_area(curve: Sequence[float]) -> float:
    """Trapezoidal area over unit steps (x = 0, 1, ..., len - 1)."""
    y = np.asarray(curve, dtype=np.float64)
    return float(((y[1:] + y[:-1]) / 2).sum()) if len(y) > 1 else 0.0


@torch.no_grad()
def score_images(
    tower, classifier: torch.Tensor, batch: np.ndarray, targets: Sequence[int], scale: float
):
    """(scale x cosine with each image's target class, argmax class, unit embeddings) of uint8
    images."""
    emb = encode_prompts(tower, batch, len(batch)).to(classifier.device)
    logits = emb @ classifier.T
    target = torch.as_tensor(list(targets), device=logits.device)[:, None]
    scores = scale * logits.gather(1, target)[:, 0]
    return scores.cpu().numpy().astype(np.float64), logits.argmax(dim=1).cpu().numpy(), emb


# ------------------------------------------------------------------------------- one class
def class_faithfulness(
    tower,
    classifier: torch.Tensor,
    images: np.ndarray,
    rows: Sequence[dict],
    settings: FaithfulnessSettings,
    rng: np.random.Generator,
    originals: dict | None = None,
) -> list[dict]:
    """Table 1's rows (image x method x order) for one class's images `[B, S, S, 3]`.

    `rows`: the mutual step's rows of these images, each with `index` (its position in
    `images`), `image_id`, `class_id`, `predicted_id`, `method`, `concept_grid`, `concepts`.
    `originals`, when given, receives index -> (embedding, score, predicted class) of each
    unperturbed image (deletion's first point), for the evaluations that need them too."""
    size = images.shape[1]
    blurred = blur_images(images, settings.blur_sigma)
    masks: dict[tuple[int, str], dict[int, np.ndarray]] = {}
    variants: dict[tuple, int] = {}  # (image, mode, method | None, concepts) -> index

    def variant(i: int, method: str, mode: str, subset: Sequence[int]) -> int:
        key = (i, mode, method if subset else None, frozenset(subset))
        return variants.setdefault(key, len(variants))

    plans = []
    for row in rows:
        i, method = row["index"], row["method"]
        masks[i, method] = region_masks(row["concept_grid"], size)
        present = [c for c in (row["concepts"] or []) if c["concept"] in masks[i, method]]
        ranked = rank_concepts(present)[: settings.steps]
        shuffled = [ranked[j] for j in rng.permutation(len(ranked))] if ranked else []
        for order_name, order in zip(ORDERS, (ranked, shuffled), strict=True):
            ids = {
                mode: [variant(i, method, mode, order[:k]) for k in range(len(order) + 1)]
                for mode in MODES
            }
            plans.append((row, order_name, order, ids))

    keys = list(variants)
    targets = {row["index"]: row["predicted_id"] for row in rows}
    scores = np.empty(len(keys))
    preds = np.empty(len(keys), dtype=np.int64)
    for start in range(0, len(keys), settings.batch_size):
        chunk = keys[start : start + settings.batch_size]
        batch = []
        for i, mode, method, subset in chunk:
            if not subset:
                batch.append(images[i] if mode == "deletion" else blurred[i])
                continue
            mask = np.logical_or.reduce([masks[i, method][c] for c in subset])
            batch.append(compose(images[i], blurred[i], mask, mode))
        s, p, emb = score_images(
            tower, classifier, np.stack(batch), [targets[k[0]] for k in chunk], settings.score_scale
        )
        scores[start : start + len(chunk)], preds[start : start + len(chunk)] = s, p
        if originals is not None:
            for j, (i, mode, _, subset) in enumerate(chunk):
                if mode == "deletion" and not subset:
                    originals[i] = (emb[j].cpu(), float(s[j]), int(p[j]))

    out = []
    points = settings.steps + 1
    for row, order_name, order, ids in plans:
        record = {
            "image_id": row["image_id"],
            "class_id": row["class_id"],
            "predicted_id": row["predicted_id"],
            "method": row["method"],
            "order": order_name,
            "n_concepts": len(order),
            "concept_order": order,
        }
        for mode in MODES:
            record[mode] = pad_curve(scores[ids[mode]].tolist(), points)
            correct = (preds[ids[mode]] == row["class_id"]).tolist()
            record[f"{mode}_correct"] = pad_curve(correct, points)
        record["deletion_area"] = curve_area(record["deletion"])
        record["insertion_area"] = curve_area(record["insertion"])
        record["acc_drop"] = curve_area(np.asarray(record["deletion_correct"], dtype=float))
        record["acc_inc"] = curve_area(np.asarray(record["insertion_correct"], dtype=float))
        out.append(record)
    return out


def summarise_faithfulness(table: pl.DataFrame, steps: int) -> pl.DataFrame:
    """Per method and order: the mean curves over the images with concepts and their areas
    (the area of the mean curve = the mean of the areas: the rule is linear)."""
    rows = []
    methods = table["method"].unique(maintain_order=True).to_list() if table.height else []
    for method in methods:
        for order in ORDERS:
            sub = table.filter((pl.col("method") == method) & (pl.col("order") == order))
            kept = sub.filter(pl.col("n_concepts") > 0)
            row = {
                "method": method,
                "order": order,
                "steps": steps,
                "n_images": kept.height,
                "n_no_concepts": sub.height - kept.height,
            }
            for area, (mode, what) in AREAS.items():
                column = mode if what == "score" else f"{mode}_correct"
                if kept.height:
                    values = np.asarray(kept[column].to_list(), dtype=np.float64)
                    curve = values.mean(axis=0)
                    row[area], row[f"{area}_curve"] = curve_area(curve), curve.tolist()
                else:
                    row[area], row[f"{area}_curve"] = None, []
            rows.append(row)
    return pl.DataFrame(rows, schema=FAITHFULNESS_SUMMARY_SCHEMA)
