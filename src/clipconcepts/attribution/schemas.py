"""Column types of the attribution stage's Parquet outputs (polars only; docs/attribution.md
says what each column means). Files live under `{model}/attribution/{dataset}/`."""

from __future__ import annotations

import polars as pl

PROMPT_TARGET = -1  # the `target` column's value when y is the cosine with a prompt

# scores.parquet: one row per sampled image x layer x head (every layer)
SCORES: dict[str, pl.DataType] = {
    "image_id": pl.String,
    "label": pl.Int32,
    "target": pl.Int32,  # class id whose text is the target; -1 for a prompt
    "y": pl.Float64,  # clean cos(image embedding, target text)
    "layer": pl.Int16,
    "head": pl.Int16,
    "atp_zero": pl.Float64,
    "atp_mean": pl.Float64,  # null without the mean baseline
    "direct": pl.Float64,
    "logit_lens": pl.Float64,
    "energy": pl.Float64,
}

# ablation.parquet: one row per sampled image x head in the ablation scope
ABLATION: dict[str, pl.DataType] = {
    "image_id": pl.String,
    "label": pl.Int32,
    "target": pl.Int32,
    "y": pl.Float64,
    "correct": pl.Boolean,  # clean top-1 prediction is the label
    "layer": pl.Int16,
    "head": pl.Int16,
    "true_zero": pl.Float64,  # y - y with the head zeroed
    "true_mean": pl.Float64,  # y - y with the head set to its mean (null without it)
    "correct_zero": pl.Boolean,
    "correct_mean": pl.Boolean,
}

# deletion.parquet: one row per method x step
DELETION: dict[str, pl.DataType] = {
    "method": pl.String,
    "step": pl.Int16,  # heads deleted (0 = the unperturbed model)
    "y100": pl.Float64,  # mean over images of 100 x y
    "y100_err": pl.Float64,  # std over interleaved subsets / sqrt(subsets)
    "area": pl.Float64,  # mean of all points of the curve (the method's score)
    "area_err": pl.Float64,
    "n_images": pl.Int64,
}

# heads.parquet: one row per head (every layer)
HEADS: dict[str, pl.DataType] = {
    "layer": pl.Int16,
    "head": pl.Int16,
    "label": pl.String,
    "ccs": pl.Int8,
    "atp_zero": pl.Float64,
    "atp_mean": pl.Float64,
    "direct": pl.Float64,
    "logit_lens": pl.Float64,
    "energy": pl.Float64,
    "true_zero": pl.Float64,
    "true_mean": pl.Float64,
    "acc_drop_zero": pl.Float64,  # percentage points
    "acc_drop_mean": pl.Float64,
    "rank_atp_zero": pl.Int32,
    "rank_atp_mean": pl.Int32,
    "rank_direct": pl.Int32,
    "rank_logit_lens": pl.Int32,
    "rank_energy": pl.Int32,
    "rank_ccs": pl.Int32,
    "rank_true_zero": pl.Int32,
    "rank_true_mean": pl.Int32,
    "n_images": pl.Int64,
}

# correlations.parquet: one row per level x pair of views
CORRELATIONS: dict[str, pl.DataType] = {
    "level": pl.String,  # head | image
    "x": pl.String,
    "y": pl.String,
    "spearman": pl.Float64,
    "kendall": pl.Float64,
    "n_heads": pl.Int64,
    "n_images": pl.Int64,
}

# reliance.parquet: per target class, its top-k labelled heads by mean AtP
RELIANCE: dict[str, pl.DataType] = {
    "target": pl.Int32,
    "classname": pl.String,
    "class_group": pl.String,
    "rank": pl.Int16,
    "layer": pl.Int16,
    "head": pl.Int16,
    "label": pl.String,
    "label_group": pl.String,
    "ccs": pl.Int8,
    "atp": pl.Float64,
    "direct": pl.Float64,
    "true_zero": pl.Float64,
    "n_images": pl.Int64,
    "relation": pl.String,  # related | unrelated | unknown
    "unexpected": pl.Boolean,
}

# truth.parquet (concept-world models): per view and k
TRUTH: dict[str, pl.DataType] = {
    "family": pl.String,
    "view": pl.String,
    "k": pl.Int16,
    "precision": pl.Float64,
    "n_truth": pl.Int16,
    "n_pool": pl.Int16,
    "spearman_true_zero": pl.Float64,
    "spearman_truth_score": pl.Float64,
    "top_heads": pl.List(pl.String),
    "truth_heads": pl.List(pl.String),
}
