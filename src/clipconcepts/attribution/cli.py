"""The attribution stage's steps (docs/attribution.md). Each runs once per model over all the
stage's datasets (one model load, one output per dataset, in the order of `--datasets`)."""

from __future__ import annotations

import argparse
import json
import logging

from clipconcepts.steps import add_model_args, build_dataset, json_arg, load_model

log = logging.getLogger("clipconcepts")


def _lists(args, *names: str) -> None:
    """Every per-dataset list has one entry per dataset."""
    n = len(args.datasets)
    for name in names:
        value = getattr(args, name)
        if len(value) != n:
            raise ValueError(f"--{name.replace('_', '-')}: {len(value)} entries for {n} datasets")


def _write(frame, path, meta: dict) -> None:
    from clipconcepts.io import write_table

    table = frame.to_arrow()
    write_table(table.replace_schema_metadata({"clipconcepts": json.dumps(meta)}), path)


# ---------------------------------------------------------------------------- torch steps
def _sample_args(p, outputs: bool = True):

    add_model_args(p)
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--dataset-specs", type=json_arg, required=True, help="name -> datasets entry")
    p.add_argument("--templates", default="ccs")
    p.add_argument("--classifiers", nargs="+", required=True, help="one per dataset")
    p.add_argument("--n-images", type=lambda s: int(s) if s else None, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", choices=["truth", "predicted", "prompt"], default="truth")
    p.add_argument("--prompt", default="")
    p.add_argument("--baselines", nargs="+", default=["zero", "mean"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (the job's)")
    if outputs:
        p.add_argument("--out", nargs="+", required=True, help="one per dataset")


class _Run:
    """One dataset of a torch step: its sample, target and batches."""

    def __init__(self, clip, args, i: int):
        from clipconcepts.attribution.targets import batches, make_target, sample
        from clipconcepts.evaluate import load_classifier

        name = args.datasets[i]
        spec = args.dataset_specs.get(name)
        if spec is None:
            raise ValueError(f"--dataset-specs has no entry for dataset {name}")
        where = argparse.Namespace(dataset=name, dataset_spec=spec, templates=args.templates)
        dataset = build_dataset(where, clip.preprocess)
        weights, classnames, _ = load_classifier(args.classifiers[i])
        if len(classnames) != dataset.n_classes:
            raise ValueError(
                f"classifier {args.classifiers[i]} has {len(classnames)} classes, "
                f"dataset {name} has {dataset.n_classes}"
            )
        self.name = name
        self.classnames = classnames
        self.picked = sample(dataset, args.n_images, args.seed)
        self.target = make_target(clip, args.target, weights, args.prompt)
        self.batches = lambda: batches(self.picked, args.batch_size)
        self.meta = {
            "model": clip.name,
            "dataset": name,
            "target": args.target,
            "prompt": args.prompt if args.target == "prompt" else "",
            "n_images": len(self.picked),
            "seed": args.seed,
            "baselines": list(args.baselines),
        }
        log.info(
            "%s: %d of %d images, target %s", name, len(self.picked), len(dataset), args.target
        )


def _frozen_clip(args):
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    clip = load_model(args)
    clip.model.requires_grad_(False)  # gradients go to activations only
    return clip


def _scores(args):
    import polars as pl

    from clipconcepts.attribution.scores import score_images

    _lists(args, "classifiers", "out")
    clip = _frozen_clip(args)
    for i in range(len(args.datasets)):
        run = _Run(clip, args, i)
        frame = score_images(clip, run.batches, run.target, args.baselines)
        _write(frame, args.out[i], run.meta)
        top = frame.group_by("layer", "head").agg(pl.col("atp_zero", "direct", "energy").mean())
        log.info(
            "%s: mean y %.4f; heads by mean AtP:\n%s",
            run.name,
            frame["y"].mean(),
            top.sort("atp_zero", descending=True).head(8),
        )


def _ablation_args(p):
    _sample_args(p)
    p.add_argument("--layers", choices=["last4", "all"], default="last4")
    p.add_argument("--sets-per-pass", type=int, default=8)


def _ablation(args):
    import polars as pl

    from clipconcepts.attribution.ablation import scope_heads, true_effects
    from clipconcepts.attribution.scores import mean_activations

    _lists(args, "classifiers", "out")
    clip = _frozen_clip(args)
    heads = scope_heads(clip.n_layers, clip.n_heads, args.layers)
    for i in range(len(args.datasets)):
        run = _Run(clip, args, i)
        means = mean_activations(clip, run.batches, args.baselines)
        frame = true_effects(
            clip, run.batches, run.target, heads, args.baselines, means, args.sets_per_pass
        )
        _write(frame, args.out[i], {**run.meta, "layers": args.layers})
        top = frame.group_by("layer", "head").agg(pl.col("true_zero", "true_mean").mean())
        log.info(
            "%s: %d heads ablated; largest mean true effects:\n%s",
            run.name,
            len(heads),
            top.sort("true_zero", descending=True).head(8),
        )


def _deletion_args(p):
    _sample_args(p)
    p.add_argument("--scores", nargs="+", required=True, help="one per dataset")
    p.add_argument("--ablation", nargs="+", required=True, help="one per dataset")
    p.add_argument("--ccs", required=True)
    p.add_argument("--layers", choices=["last4", "all"], default="last4")
    p.add_argument("--num-steps", type=int, default=5)
    p.add_argument("--subsets", type=int, default=9)
    p.add_argument("--sets-per-pass", type=int, default=8)


def _deletion(args):
    import polars as pl

    from clipconcepts.attribution.ablation import scope_heads
    from clipconcepts.attribution.deletion import deletion_orders, deletion_points, summarise
    from clipconcepts.attribution.tables import majority_ccs

    _lists(args, "classifiers", "out", "scores", "ablation")
    if args.num_steps < 1:
        raise ValueError(f"config key attribution.num_steps must be >= 1, got {args.num_steps}")
    clip = _frozen_clip(args)
    pool = scope_heads(clip.n_layers, clip.n_heads, args.layers)
    ccs = {
        (int(a), int(b)): float(c)
        for a, b, c in majority_ccs(pl.read_parquet(args.ccs)).select("layer", "head", "ccs").rows()
        if c is not None
    }
    for i in range(len(args.datasets)):
        run = _Run(clip, args, i)
        scores, ablation = pl.read_parquet(args.scores[i]), pl.read_parquet(args.ablation[i])
        ids = scores["image_id"].unique(maintain_order=True).to_list()  # sample order
        orders = deletion_orders(ids, pool, scores, ablation, ccs, seed=args.seed)
        points = deletion_points(
            clip, run.batches, run.target, pool, orders, args.num_steps, args.sets_per_pass
        )
        table = summarise(points, ids, args.subsets)
        meta = {**run.meta, "layers": args.layers, "subsets": args.subsets}
        _write(table, args.out[i], meta)
        log.info(
            "%s deletion areas (lower = more faithful):\n%s",
            run.name,
            table.filter(pl.col("step") == 0).select("method", "area", "area_err"),
        )


# ---------------------------------------------------------------------------- table steps
def _tables_args(p, heads_in: bool = False):
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--scores", nargs="+", required=True, help="one per dataset")
    p.add_argument("--ablation", nargs="+", required=True, help="one per dataset")
    if heads_in:
        p.add_argument("--heads", nargs="+", required=True, help="one per dataset")
    p.add_argument("--out", nargs="+", required=True, help="one per dataset")


def _meta_of(path) -> dict:
    import pyarrow.parquet as pq

    raw = (pq.read_schema(path).metadata or {}).get(b"clipconcepts")
    return json.loads(raw) if raw else {}


def _heads_args(p):
    _tables_args(p)
    p.add_argument("--ccs", required=True)


def _heads(args):
    import polars as pl

    from clipconcepts.attribution.tables import head_table

    _lists(args, "scores", "ablation", "out")
    ccs = pl.read_parquet(args.ccs)
    for i, name in enumerate(args.datasets):
        table = head_table(pl.read_parquet(args.scores[i]), pl.read_parquet(args.ablation[i]), ccs)
        _write(table, args.out[i], _meta_of(args.scores[i]))
        log.info("%s: heads by mean AtP\n%s", name, table.sort("rank_atp_zero").head(10))


def _faithfulness_args(p):
    _tables_args(p, heads_in=True)
    p.add_argument("--seed", type=int, default=0)


def _faithfulness(args):
    import polars as pl

    from clipconcepts.attribution.tables import correlations

    _lists(args, "scores", "ablation", "heads", "out")
    for i, name in enumerate(args.datasets):
        frame = correlations(
            pl.read_parquet(args.scores[i]),
            pl.read_parquet(args.ablation[i]),
            pl.read_parquet(args.heads[i]),
            seed=args.seed,
        )
        _write(frame, args.out[i], _meta_of(args.scores[i]))
        log.info(
            "%s: correlation with the true effect (zero ablation)\n%s",
            name,
            frame.filter(pl.col("y") == "true_zero").drop("y"),
        )


def _reliance_args(p):

    _tables_args(p, heads_in=True)
    p.add_argument("--classifiers", nargs="+", required=True, help="one per dataset")
    p.add_argument("--concept-groups", type=json_arg, required=True, help="group -> keywords")
    p.add_argument("--lexicons", type=json_arg, default=None, help="dataset -> lexicon name")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--prompt", default="")


def _reliance(args):
    import polars as pl
    import pyarrow.parquet as pq

    from clipconcepts.attribution.reliance import unexpected_reliance
    from clipconcepts.llm.factory import resolve_lexicon

    _lists(args, "scores", "ablation", "heads", "classifiers", "out")
    for i, name in enumerate(args.datasets):
        classes = pq.read_table(args.classifiers[i], columns=["class_id", "classname"])
        classnames = [c for _, c in sorted(zip(*classes.to_pydict().values(), strict=True))]
        lexicon = resolve_lexicon((args.lexicons or {}).get(name))
        frame = unexpected_reliance(
            pl.read_parquet(args.scores[i]),
            pl.read_parquet(args.ablation[i]),
            pl.read_parquet(args.heads[i]),
            classnames,
            args.concept_groups or {},
            lexicon,
            args.top_k,
            args.prompt,
        )
        _write(frame, args.out[i], _meta_of(args.scores[i]))
        flagged = frame.filter("unexpected")
        log.info(
            "%s: %d of %d top-%d heads unexpected\n%s",
            name,
            len(flagged),
            len(frame),
            args.top_k,
            flagged.select("classname", "layer", "head", "label", "atp"),
        )


def _truth_args(p):

    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--heads", nargs="+", required=True, help="one per dataset")
    p.add_argument("--head-truth", required=True)
    p.add_argument("--families", type=json_arg, required=True, help="dataset -> family")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", nargs="+", required=True, help="one per dataset")


def _truth(args):
    import polars as pl

    from clipconcepts.attribution.truth_precision import truth_table

    _lists(args, "heads", "out")
    truth = pl.read_parquet(args.head_truth)
    for i, name in enumerate(args.datasets):
        family = (args.families or {}).get(name)
        if not family:
            raise ValueError(f"dataset {name} has no concept-world family")
        frame = truth_table(pl.read_parquet(args.heads[i]), truth, family, seed=args.seed)
        _write(frame, args.out[i], {**_meta_of(args.heads[i]), "family": family})
        log.info(
            "%s (%s): precision@k\n%s",
            name,
            family,
            frame.select("view", "k", "precision", "n_truth", "spearman_true_zero"),
        )


# step name -> (help, add_args(parser), run(args))
STEPS = {
    "attribution-scores": (
        "AtP (zero/mean baseline) and direct effect per image and head",
        _sample_args,
        _scores,
    ),
    "attribution-ablation": (
        "true effect of zero/mean-ablating each head",
        _ablation_args,
        _ablation,
    ),
    "attribution-deletion": (
        "deletion curves per method (AtP, direct, CCS, random, true)",
        _deletion_args,
        _deletion,
    ),
    "attribution-heads": ("per-head table of every view", _heads_args, _heads),
    "attribution-faithfulness": (
        "Spearman/Kendall of every view with the true effect",
        _faithfulness_args,
        _faithfulness,
    ),
    "attribution-reliance": (
        "top-attributed heads per class and unexpected reliance",
        _reliance_args,
        _reliance,
    ),
    "attribution-truth": (
        "concept world: precision@k of every view against the head truth",
        _truth_args,
        _truth,
    ),
}
