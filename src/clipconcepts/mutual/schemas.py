"""Column types of the mutual-knowledge stage's Parquet outputs (polars only: the report reads
them without torch). docs/mutual.md describes every column."""

from __future__ import annotations

import polars as pl

ELLIPSE = pl.Struct(
    {
        "concept": pl.Int32,
        "cx": pl.Float32,
        "cy": pl.Float32,
        "width": pl.Float32,
        "height": pl.Float32,
        "angle": pl.Float32,
    }
)

CONCEPT = pl.Struct(
    {
        "concept": pl.Int32,
        "visual": pl.Float32,
        "descriptor_id": pl.Int32,
        "textual": pl.Float32,
    }
)

IMAGE_SCHEMA = {
    "image_id": pl.String,
    "class_id": pl.Int32,
    "classname": pl.String,
    "predicted_id": pl.Int32,
    "predicted_name": pl.String,
    "correct": pl.Boolean,
    "method": pl.String,
    "status": pl.String,
    "n_foreground": pl.Int32,
    "ellipses": pl.List(ELLIPSE),
    "dv_ids": pl.List(pl.Int32),
    "dv_texts": pl.List(pl.String),
    "dv_relevance": pl.List(pl.Float32),
    "dy_ids": pl.List(pl.Int32),
    "shared_ids": pl.List(pl.Int32),
    "mi": pl.Float64,
    "curve": pl.List(pl.Float64),
    "concept_grid": pl.List(pl.List(pl.Int16)),
    "concepts": pl.List(CONCEPT),
    "thumbnail": pl.Binary,
}

SUMMARY_SCHEMA = {
    "level": pl.String,
    "class_id": pl.Int32,
    "classname": pl.String,
    "method": pl.String,
    "n_images": pl.Int32,
    "n_no_foreground": pl.Int32,
    "n_empty_intersection": pl.Int32,
    "n_single_concept": pl.Int32,  # images whose D_v came from one concept
    "top1": pl.Float64,
    "mi": pl.Float64,
    "auc": pl.Float64,
    "curve": pl.List(pl.Float64),
}

TRUTH_SCHEMA = {
    "method": pl.String,
    "descriptors": pl.String,
    "family": pl.String,
    "precision": pl.Float64,
    "baseline": pl.Float64,
    "n_descriptors": pl.Int64,
    "n_images": pl.Int64,
}

FAITHFULNESS_SCHEMA = {
    "image_id": pl.String,
    "class_id": pl.Int32,
    "predicted_id": pl.Int32,
    "method": pl.String,
    "order": pl.String,
    "n_concepts": pl.Int32,
    "concept_order": pl.List(pl.Int32),
    "deletion": pl.List(pl.Float64),
    "insertion": pl.List(pl.Float64),
    "deletion_correct": pl.List(pl.Boolean),
    "insertion_correct": pl.List(pl.Boolean),
    "deletion_area": pl.Float64,
    "insertion_area": pl.Float64,
    "acc_drop": pl.Float64,
    "acc_inc": pl.Float64,
}

FAITHFULNESS_SUMMARY_SCHEMA = {
    "method": pl.String,
    "order": pl.String,
    "steps": pl.Int32,
    "n_images": pl.Int32,
    "n_no_concepts": pl.Int32,
    "deletion": pl.Float64,
    "insertion": pl.Float64,
    "acc_drop": pl.Float64,
    "acc_inc": pl.Float64,
    "deletion_curve": pl.List(pl.Float64),
    "insertion_curve": pl.List(pl.Float64),
    "acc_drop_curve": pl.List(pl.Float64),
    "acc_inc_curve": pl.List(pl.Float64),
}

AUGMENTED_SCHEMA = {
    "method": pl.String,
    "n_images": pl.Int32,
    "n_classes": pl.Int32,
    "plain_top1": pl.Float64,
    "base_top1": pl.Float64,
    "ours_top1": pl.Float64,
    "delta": pl.Float64,
    "n_fixed": pl.Int32,
    "n_broken": pl.Int32,
    "n_classes_without_descriptors": pl.Int32,
    "mean_descriptors": pl.Float64,
    "mean_added": pl.Float64,
}

REGION_TRUTH_SCHEMA = {
    "level": pl.String,
    "class_id": pl.Int32,
    "classname": pl.String,
    "region": pl.String,
    "n_images": pl.Int32,
    "n_skipped": pl.Int32,
    "area": pl.Float64,
    "score": pl.Float64,
    "drop_true": pl.Float64,
    "drop_random": pl.Float64,
    "margin": pl.Float64,
    "wins": pl.Float64,
    "accuracy": pl.Float64,
    "acc_true": pl.Float64,
    "acc_random": pl.Float64,
}

# `class_truth`'s rows (one per image; a skipped image has only the first three)
REGION_SCHEMA = {
    "image_id": pl.String,
    "class_id": pl.Int32,
    "skipped": pl.Boolean,
    **{k: pl.Float64 for k in ("area", "score", "score_true", "score_random")},
    **{k: pl.Boolean for k in ("correct", "correct_true", "correct_random")},
}
