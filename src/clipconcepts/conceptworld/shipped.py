"""The concept-world CLIP shipped inside the package, so the demo need not train it.

`shipped/` beside this module holds what `train_concept_clip` wrote, made small enough to commit:

- `conceptworld-vit.json`: the open_clip model config (`model.MODEL_CONFIG`);
- `weights.pt`: the trained state dict in float16 (about half the size of float32; the zero-shot
  accuracies `install` measures are those of these rounded weights);
- `metadata.json`: the recipe it was trained with, the recipe's SHA-256 (over the training knobs,
  the fixed training settings, the model config and a fingerprint of the world's images and
  captions), the weights' SHA-256, and the training run's facts (per-family accuracy, seconds,
  final loss, versions).

`install` checks that a config's recipe is the shipped one (else it names the differing knobs and
points at `conceptworld.model: train`), checks the weights' digest, writes the same files a training
run writes (`conceptworld-vit.json`, a float32 `checkpoint.pt`, `metrics.parquet`, whose
accuracies it measures again on the held-out images) and copies the training log.
`ship` makes `shipped/` from a finished training run (a maintainer's step, `clipconcepts
ship-concept-clip`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import torch

from clipconcepts.conceptworld.generator import generate
from clipconcepts.conceptworld.model import MODEL_CONFIG, MODEL_NAME, build_model
from clipconcepts.conceptworld.train import (
    CHECKPOINT_NAME,
    METRICS_NAME,
    METRICS_SCHEMA,
    TRAIN_LOG_NAME,
    evaluate_families,
)

logger = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).parent / "shipped"
WEIGHTS_NAME = "weights.pt"
METADATA_NAME = "metadata.json"
CONFIG_NAME = f"{MODEL_NAME}.json"
MAX_SHIPPED_BYTES = 20 * 1024 * 1024
# Training settings a config does not set (train_concept_clip's defaults): part of the recipe.
FIXED_SETTINGS = {
    "weight_decay": 0.1,
    "init_logit_scale": 50.0,
    "multi_positive": True,
    "warmup_steps": "min(100, steps / 10)",
    "schedule_steps": "steps",
}


class ShippedModelError(ValueError):
    """The shipped model does not fit the request (recipe, digest or files)."""


def world_fingerprint() -> str:
    """SHA-256 of a fixed sample of the world (images, attributes, captions): it changes when the
    renderer, the vocabulary or the captions change, i.e. when a model trained on the old world
    would be stale."""
    sample = generate(64, [0, 7, 7])
    digest = hashlib.sha256(sample.images.tobytes())
    for family in sorted(sample.attributes):
        digest.update(family.encode() + np.ascontiguousarray(sample.attributes[family]).tobytes())
    digest.update("\n".join(sample.captions).encode())
    return digest.hexdigest()


def recipe(steps: int, batch_size: int, lr: float, seed: int) -> dict:
    """Everything that decides the trained weights, as a JSON-able dict."""
    return {
        "steps": int(steps),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "seed": int(seed),
        **FIXED_SETTINGS,
        "model_config": MODEL_CONFIG,
        "world_sha256": world_fingerprint(),
    }


def recipe_sha256(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_metadata(shipped_dir: str | Path = SHIPPED_DIR) -> dict:
    path = Path(shipped_dir) / METADATA_NAME
    if not path.is_file():
        raise ShippedModelError(
            f"no shipped concept-world model at {path.parent} (metadata.json missing): "
            "set conceptworld.model: train to train one"
        )
    return json.loads(path.read_text())


def check_recipe(spec: dict, metadata: dict) -> None:
    """Raise naming each knob where `spec` differs from the shipped model's recipe."""
    shipped = metadata["recipe"]
    if recipe_sha256(spec) == metadata["recipe_sha256"] == recipe_sha256(shipped):
        return
    knobs = {"steps": "train_steps", "batch_size": "train_batch_size", "lr": "lr", "seed": "seed"}
    differ = [
        f"conceptworld.{knobs.get(key, key)}: {spec.get(key)!r} (shipped: {shipped.get(key)!r})"
        for key in sorted(set(spec) | set(shipped))
        if key not in ("model_config", "world_sha256") and spec.get(key) != shipped.get(key)
    ]
    if spec["model_config"] != shipped.get("model_config"):
        differ.append("the model config (conceptworld/model.py MODEL_CONFIG)")
    if spec["world_sha256"] != shipped.get("world_sha256"):
        differ.append("the world (its images or captions render differently)")
    if not differ:
        differ.append("the recipe's digest (metadata.json was edited?)")
    raise ShippedModelError(
        "the shipped concept-world model was trained with another recipe: "
        + "; ".join(differ)
        + ". Set conceptworld.model: train to train one with this config's recipe."
    )


def install(
    out_dir: str | Path,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    eval_images_per_family: int = 1000,
    shipped_dir: str | Path = SHIPPED_DIR,
) -> pl.DataFrame:
    """Write the shipped model to `out_dir` as a training run would; returns its metrics."""
    shipped_dir, out_dir = Path(shipped_dir), Path(out_dir)
    metadata = read_metadata(shipped_dir)
    check_recipe(recipe(steps, batch_size, lr, seed), metadata)
    weights = shipped_dir / WEIGHTS_NAME
    if not weights.is_file() or file_sha256(weights) != metadata["weights_sha256"]:
        raise ShippedModelError(
            f"{weights}: missing or its SHA-256 differs from metadata.json's weights_sha256 "
            "(a Git LFS pointer or a damaged file?)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    config_path = out_dir / CONFIG_NAME
    shutil.copyfile(shipped_dir / CONFIG_NAME, config_path)
    model, tokenizer = build_model(config_path)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    tmp = out_dir / f"{CHECKPOINT_NAME}.tmp"
    torch.save(model.state_dict(), tmp)
    tmp.replace(out_dir / CHECKPOINT_NAME)
    log_rows = metadata.get("train_log")
    if log_rows:
        pl.DataFrame(log_rows).write_parquet(out_dir / TRAIN_LOG_NAME)
    run = metadata["training"]
    metrics = evaluate_families(model, tokenizer, eval_images_per_family, seed).with_columns(
        steps=pl.lit(steps, pl.Int64),
        batch_size=pl.lit(batch_size, pl.Int64),
        seed=pl.lit(seed, pl.Int64),
        train_seconds=pl.lit(run["train_seconds"], pl.Float64),
        final_loss=pl.lit(run["final_loss"], pl.Float64),
    )
    metrics = metrics.select(list(METRICS_SCHEMA)).cast(METRICS_SCHEMA)
    tmp = out_dir / f"{METRICS_NAME}.tmp"
    metrics.write_parquet(tmp)
    tmp.replace(out_dir / METRICS_NAME)
    logger.info("installed the shipped concept-world model (recipe %s)", metadata["recipe_sha256"])
    return metrics


def ship(
    train_dir: str | Path,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    shipped_dir: str | Path = SHIPPED_DIR,
) -> dict:
    """Make `shipped_dir` from a finished `train_concept_clip` run in `train_dir` trained with
    this recipe; returns the metadata written."""
    train_dir, shipped_dir = Path(train_dir), Path(shipped_dir)
    config = json.loads((train_dir / CONFIG_NAME).read_text())
    if config != MODEL_CONFIG:
        raise ShippedModelError(f"{train_dir / CONFIG_NAME} is not the current MODEL_CONFIG")
    metrics = pl.read_parquet(train_dir / METRICS_NAME)
    facts = metrics.row(0, named=True)
    ran = (facts["steps"], facts["batch_size"], facts["seed"])
    if ran != (steps, batch_size, seed):
        raise ShippedModelError(f"{train_dir} ran (steps, batch, seed) = {ran}, not the recipe's")
    spec = recipe(steps, batch_size, lr, seed)
    state = torch.load(train_dir / CHECKPOINT_NAME, map_location="cpu", weights_only=True)
    shipped_dir.mkdir(parents=True, exist_ok=True)
    weights = shipped_dir / WEIGHTS_NAME
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, weights)
    shutil.copyfile(train_dir / CONFIG_NAME, shipped_dir / CONFIG_NAME)
    train_log = pl.read_parquet(train_dir / TRAIN_LOG_NAME)
    import open_clip

    metadata = {
        "recipe": spec,
        "recipe_sha256": recipe_sha256(spec),
        "weights_sha256": file_sha256(weights),
        "weights_dtype": "float16",
        "training": {
            "train_seconds": facts["train_seconds"],
            "final_loss": facts["final_loss"],
            "accuracy": dict(zip(metrics["family"], metrics["accuracy"], strict=True)),
            "eval_images_per_family": int(metrics["n_images"][0]),
        },
        "versions": {"torch": torch.__version__, "open_clip": open_clip.__version__},
        # Every 10th step of the log (the loss curve for the report; the full log stays small).
        "train_log": train_log.gather_every(10).to_dict(as_series=False),
    }
    (shipped_dir / METADATA_NAME).write_text(json.dumps(metadata, indent=1) + "\n")
    total = sum(p.stat().st_size for p in shipped_dir.iterdir() if p.is_file())
    if total > MAX_SHIPPED_BYTES:
        raise ShippedModelError(f"{shipped_dir} holds {total} bytes, over {MAX_SHIPPED_BYTES}")
    return metadata
