"""Contrastive training of the concept world's small CLIP on freshly generated image-caption pairs.

Every step draws a new batch from the generator (stream `[seed, TRAIN_STREAM, step]`), so the model
never sees an image twice; the evaluation images come from `[seed, EVAL_STREAM, family]`.
Outputs in `out_dir`: `conceptworld-vit.json` (the open_clip config), `checkpoint.pt` (a plain
state_dict), `metrics.parquet` (per-family zero-shot accuracy plus run facts) and
`train_log.parquet` (loss, logit scale and learning rate per step).

Training is resumable: every `checkpoint_every` steps the model, optimiser, schedule, step and
log so far go to `train_state.pt` (written atomically). A run that finds a state written by the
same settings continues from it (a SLURM job killed at its time limit and retried continues, not
restarts); a state from other settings is ignored with a warning. The state file is removed once
the run has finished. Batches depend only on (seed, step), so a resumed run sees the same data.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from clipconcepts.conceptworld.generator import EVAL_STREAM, TRAIN_STREAM, generate_with_mentions
from clipconcepts.conceptworld.model import (
    build_model,
    encode_text_trimmed,
    held_out_family_set,
    to_model_input,
    write_model_config,
    zero_shot_accuracy,
)
from clipconcepts.conceptworld.world import FAMILIES, n_values

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.parquet"
TRAIN_LOG_NAME = "train_log.parquet"
STATE_NAME = "train_state.pt"
METRICS_SCHEMA = {
    "family": pl.String,
    "accuracy": pl.Float64,
    "n_images": pl.Int64,
    "chance": pl.Float64,
    "steps": pl.Int64,
    "batch_size": pl.Int64,
    "seed": pl.Int64,
    "train_seconds": pl.Float64,
    "final_loss": pl.Float64,
}


def train_concept_clip(
    out_dir: str | Path,
    steps: int = 2200,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    eval_images_per_family: int = 1000,
    threads: int | None = None,
    progress: bool = True,
    weight_decay: float = 0.1,
    warmup_steps: int | None = None,
    schedule_steps: int | None = None,
    init_logit_scale: float = 50.0,
    multi_positive: bool = True,
    checkpoint_every: int = 50,
) -> pl.DataFrame:
    """Train the concept-world CLIP and return (and write) its per-family zero-shot metrics.

    Returns one row per family: `family, accuracy, n_images, chance` (chance = 1 / #values, the
    held-out sets are class-balanced) and the run's `steps, batch_size, seed, train_seconds`
    (wall time of the optimisation loop) and `final_loss` (mean loss over the last 10% of steps).

    AdamW (betas 0.9/0.98, no decay on gains, biases and embeddings), `warmup_steps` of linear
    warm-up (default: min(100, schedule_steps / 10)) then cosine decay to 0 at `schedule_steps`
    (default: `steps`; a larger value runs the first `steps` steps of that longer schedule).
    The logit scale starts at `init_logit_scale` and stays learnable, clamped to <= 100 as in
    CLIP (with CLIP's initial 1/0.07 ~ 14, shape was still at chance after 500 steps; with 50
    it reached 0.93 by step 400: a soft softmax spreads the gradient over easy negatives).
    `multi_positive`: see `clip_loss`. `threads` sets torch's intra-op threads for the run
    (default: the CPUs this process may use); the previous setting is restored afterwards.
    `checkpoint_every`: steps between resumable states (see the module docstring).
    """
    if steps < 1 or batch_size < 2:
        raise ValueError(
            f"train_concept_clip: need steps >= 1 and batch_size >= 2, got {steps=}, {batch_size=}"
        )
    if eval_images_per_family < 1 or checkpoint_every < 1:
        raise ValueError(
            "train_concept_clip: eval_images_per_family and checkpoint_every must be >= 1"
        )
    if not 1.0 <= init_logit_scale <= 100.0:
        raise ValueError(
            f"train_concept_clip: init_logit_scale must be in [1, 100], got {init_logit_scale}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    schedule_steps = steps if schedule_steps is None else schedule_steps
    if schedule_steps < steps:
        raise ValueError(f"train_concept_clip: schedule_steps ({schedule_steps}) < steps ({steps})")
    warmup = warmup_steps if warmup_steps is not None else min(100, schedule_steps // 10)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads or _available_cpus())
    try:
        torch.manual_seed(seed)
        config_path = write_model_config(out_dir)
        model, tokenizer = build_model(config_path)
        with torch.no_grad():
            model.logit_scale.fill_(math.log(init_logit_scale))
        logger.info(
            "training %s: %d steps x batch %d, lr %g, seed %d, %d threads",
            config_path.stem, steps, batch_size, lr, seed, torch.get_num_threads(),
        )  # fmt: skip
        settings = {
            "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
            "weight_decay": weight_decay, "warmup": warmup, "schedule_steps": schedule_steps,
            "init_logit_scale": init_logit_scale, "multi_positive": multi_positive,
            "model_config": json.loads(config_path.read_text()),
        }  # fmt: skip
        train_log, train_seconds = _optimise(
            model, tokenizer, settings, out_dir / STATE_NAME, checkpoint_every, progress
        )
        final_loss = float(train_log["loss"].tail(max(1, steps // 10)).mean())
        logger.info("trained in %.1f s, final loss %.4f", train_seconds, final_loss)
        torch.save(model.state_dict(), _tmp(out_dir / CHECKPOINT_NAME))
        _tmp(out_dir / CHECKPOINT_NAME).replace(out_dir / CHECKPOINT_NAME)
        _write_parquet(train_log, out_dir / TRAIN_LOG_NAME)
        (out_dir / STATE_NAME).unlink(missing_ok=True)
        metrics = evaluate_families(model, tokenizer, eval_images_per_family, seed).with_columns(
            steps=pl.lit(steps, pl.Int64),
            batch_size=pl.lit(batch_size, pl.Int64),
            seed=pl.lit(seed, pl.Int64),
            train_seconds=pl.lit(train_seconds, pl.Float64),
            final_loss=pl.lit(final_loss, pl.Float64),
        )
    finally:
        torch.set_num_threads(previous_threads)
    metrics = metrics.select(list(METRICS_SCHEMA)).cast(METRICS_SCHEMA)
    _write_parquet(metrics, out_dir / METRICS_NAME)
    return metrics


def _optimise(
    model: torch.nn.Module,
    tokenizer,
    settings: dict,
    state_path: Path,
    checkpoint_every: int,
    progress: bool,
) -> tuple[pl.DataFrame, float]:
    """The training loop, resumed from `state_path` when it holds a state of the same
    `settings`; returns the per-step log and the seconds spent optimising (over all resumes)."""
    model.train()
    optimizer = _optimizer(model, settings["lr"], settings["weight_decay"])
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _warmup_cosine(settings["warmup"], settings["schedule_steps"])
    )
    rows: list[tuple] = []
    first_step, seconds_before = 0, 0.0
    state = _load_state(state_path, settings)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        rows, first_step, seconds_before = state["rows"], state["step"], state["seconds"]
        logger.info("resuming from %s at step %d of %d", state_path, first_step, settings["steps"])
    steps, batch_size, seed = settings["steps"], settings["batch_size"], settings["seed"]
    start = time.perf_counter()
    bar = tqdm(
        range(first_step, steps),
        desc="train concept CLIP",
        disable=not progress,
        mininterval=1.0,
        initial=first_step,
        total=steps,
    )
    for step in bar:
        sample, mentions = generate_with_mentions(batch_size, [seed, TRAIN_STREAM, step])
        image_features = F.normalize(model.encode_image(to_model_input(sample.images)), dim=-1)
        text_features = F.normalize(encode_text_trimmed(model, tokenizer(sample.captions)), dim=-1)
        logit_scale = model.logit_scale.exp()
        logits = logit_scale * image_features @ text_features.T
        match = caption_match(sample.attributes, mentions) if settings["multi_positive"] else None
        loss = clip_loss(logits, match)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        rows.append((step, loss.item(), logit_scale.item(), schedule.get_last_lr()[0]))
        schedule.step()
        with torch.no_grad():  # CLIP's clamp: temperature no lower than 1/100
            model.logit_scale.clamp_(0, math.log(100))
        if step % 25 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", scale=f"{logit_scale.item():.1f}")
        if (step + 1) % checkpoint_every == 0 and step + 1 < steps:
            seconds = seconds_before + time.perf_counter() - start
            _save_state(state_path, settings, model, optimizer, schedule, rows, step + 1, seconds)
    model.eval()
    log = pl.DataFrame(
        rows,
        schema={"step": pl.Int64, "loss": pl.Float64, "logit_scale": pl.Float64, "lr": pl.Float64},
        orient="row",
    )
    return log, seconds_before + time.perf_counter() - start


def _save_state(path, settings, model, optimizer, schedule, rows, step, seconds) -> None:
    state = {
        "settings": settings,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "rows": rows,
        "step": step,
        "seconds": seconds,
    }
    torch.save(state, _tmp(path))
    _tmp(path).replace(path)


def _load_state(path: Path, settings: dict) -> dict | None:
    """The saved training state if it exists and was written with the same settings."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a state cut off mid-write by a kill: start again
        logger.warning(
            "ignoring unreadable training state %s (%s): starting from step 0", path, err
        )
        return None
    if state.get("settings") != settings:
        logger.warning(
            "ignoring training state %s written with other settings: starting from step 0", path
        )
        return None
    return state


def evaluate_families(model, tokenizer, n_per_family: int, seed: int) -> pl.DataFrame:
    """Zero-shot accuracy per family on class-balanced held-out images."""
    rows = []
    for family_index, family in enumerate(FAMILIES):
        held_out = held_out_family_set(family, n_per_family, [seed, EVAL_STREAM, family_index])
        accuracy = zero_shot_accuracy(
            model, tokenizer, family, held_out.images, held_out.attributes[family]
        )
        logger.info("zero-shot accuracy %-10s %.4f", family, accuracy)
        rows.append((family, accuracy, n_per_family, 1.0 / n_values(family)))
    return pl.DataFrame(
        rows,
        schema={
            "family": pl.String,
            "accuracy": pl.Float64,
            "n_images": pl.Int64,
            "chance": pl.Float64,
        },
        orient="row",
    )


def caption_match(attributes: dict[str, np.ndarray], mentions: np.ndarray) -> torch.Tensor:
    """match[i, j] = caption j is true of image i (agrees on every family caption j mentions)."""
    n = len(mentions)
    match = np.ones((n, n), dtype=bool)
    for f, family in enumerate(FAMILIES):
        values = attributes[family]
        match &= (values[:, None] == values[None, :]) | ~mentions[None, :, f]
    return torch.from_numpy(match)


def clip_loss(logits: torch.Tensor, match: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric CLIP (InfoNCE) loss on image-to-text `logits` [n, n].

    With `match` (bool [n, n], true on the diagonal), every caption true of an image is a positive:
    the targets are uniform over the matches of each row (image -> text) and of each column
    (text -> image) instead of the diagonal alone, so a caption that also describes another image
    in the batch is not pushed away from it.
    """
    if match is None:
        targets = torch.arange(len(logits))
        return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
    match = match.float()
    image_to_text = match / match.sum(dim=1, keepdim=True)
    text_to_image = match.T / match.T.sum(dim=1, keepdim=True)
    return (F.cross_entropy(logits, image_to_text) + F.cross_entropy(logits.T, text_to_image)) / 2


def _optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    # open_clip's convention: no weight decay on gains, biases, embeddings and the logit scale.
    def exempt(name: str, p: torch.nn.Parameter) -> bool:
        return p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in named if exempt(n, p)], "weight_decay": 0.0},
        {"params": [p for n, p in named if not exempt(n, p)], "weight_decay": weight_decay},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98), eps=1e-6, fused=True)


def _warmup_cosine(warmup_steps: int, steps: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _available_cpus() -> int:
    """CPUs this process may run on (the affinity mask, as set by SLURM or taskset)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _tmp(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """Write to a temporary file beside `path`, then rename (no partial outputs)."""
    frame.write_parquet(_tmp(path))
    _tmp(path).replace(path)
