"""The concept world's workflow steps: its CLIP (the shipped one, or trained), its datasets, its
heads' truth; and the maintainer's step that ships a trained CLIP with the package."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("clipconcepts")


def _train_args(p):
    p.add_argument("--out-dir", required=True)
    p.add_argument("--steps", type=int, default=2200)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-images-per-family", type=int, default=1000)
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--threads", type=int, default=None)


def _recipe(args) -> dict:
    """The training recipe a step's options name (what the shipped model is checked against)."""
    return {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed}


def _concept_clip_args(p):
    _train_args(p)
    p.add_argument(
        "--source",
        choices=["shipped", "train"],
        default="shipped",
        help="shipped: install the package's trained model (its recipe must be this one); "
        "train: train one from scratch",
    )


def _concept_clip(args):
    if args.source == "train":
        return _train(args)
    from clipconcepts.conceptworld.shipped import install

    metrics = install(
        args.out_dir, **_recipe(args), eval_images_per_family=args.eval_images_per_family
    )
    log.info("shipped concept-world CLIP, zero-shot accuracy per family:\n%s", metrics)


def _ship_args(p):
    p.add_argument("--train-dir", required=True, help="a finished train-concept-clip run")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--seed", type=int, required=True)


def _ship(args):
    from clipconcepts.conceptworld.shipped import SHIPPED_DIR, ship

    metadata = ship(args.train_dir, **_recipe(args))
    log.info("shipped to %s: recipe %s", SHIPPED_DIR, metadata["recipe_sha256"])


def _train(args):
    from clipconcepts.conceptworld.train import train_concept_clip

    metrics = train_concept_clip(
        args.out_dir,
        **_recipe(args),
        eval_images_per_family=args.eval_images_per_family,
        threads=args.threads,
        checkpoint_every=args.checkpoint_every,
    )
    log.info("concept-world CLIP zero-shot accuracy per family:\n%s", metrics)


def _data_args(p):
    p.add_argument("--out-dir", required=True)
    p.add_argument("--n-probe", type=int, default=2000)
    p.add_argument("--n-per-family", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)


def _data(args):
    from clipconcepts.conceptworld.datasets import write_datasets

    written = write_datasets(args.out_dir, args.n_probe, args.n_per_family, args.seed)
    for name, folder in written.items():
        log.info("concept-world dataset %s -> %s", name, folder)


def _head_truth_args(p):
    p.add_argument("--arch", required=True, help="the concept-world model config (.json)")
    p.add_argument("--pretrained", required=True, help="its trained checkpoint")
    p.add_argument("--probe", required=True, help="a concept-world dataset folder (manifest)")
    p.add_argument("--n-images", type=int, default=2000, help="first N images of the probe set")
    p.add_argument("--out", required=True)
    p.add_argument(
        "--family-dims",
        default=None,
        help="also write, per family, in how many directions the whole model writes it",
    )


def _head_truth(args):
    import numpy as np
    import polars as pl
    from PIL import Image

    from clipconcepts.conceptworld.groundtruth import ground_truth, head_truth
    from clipconcepts.conceptworld.model import to_model_input
    from clipconcepts.conceptworld.world import FAMILIES
    from clipconcepts.io import atomic_path
    from clipconcepts.models import load_clip

    folder = Path(args.probe)
    manifest = pl.read_parquet(folder / "manifest.parquet").head(args.n_images)
    absent = [f for f in FAMILIES if f not in manifest.columns]
    if args.family_dims and absent:
        raise ValueError(
            f"{folder / 'manifest.parquet'}: no value column for {absent}: --family-dims "
            "needs each probe image's value of every family"
        )
    clip = load_clip(args.arch, args.pretrained)
    paths = manifest["path"].to_list()
    images = np.stack([np.asarray(Image.open(folder / p).convert("RGB")) for p in paths])
    images = to_model_input(images)
    if args.family_dims:
        values = {family: manifest[family].to_numpy() for family in FAMILIES}
        truth, dims = ground_truth(clip, images, values)
        with atomic_path(args.family_dims) as tmp:
            dims.write_parquet(tmp)
        log.info("directions the model separates per family:\n%s", dims)
    else:
        truth = head_truth(clip, images)
    with atomic_path(args.out) as tmp:
        truth.write_parquet(tmp)
    top = truth.filter("is_top").group_by("family").len().sort("family")
    log.info("heads per top family (%d images):\n%s", len(images), top)


# step name -> (help, add_args(parser), run(args))
STEPS = {
    "concept-clip": (
        "the concept-world CLIP: the shipped one or a trained one",
        _concept_clip_args,
        _concept_clip,
    ),
    "train-concept-clip": ("train the concept-world CLIP", _train_args, _train),
    "ship-concept-clip": ("ship a trained concept-world CLIP", _ship_args, _ship),
    "conceptworld-data": ("write the concept-world datasets", _data_args, _data),
    "head-truth": ("per head: the family it writes (concept world)", _head_truth_args, _head_truth),
}
