"""The mutual-knowledge stage's steps: the descriptor bank, the per-dataset analysis, and the
concept world's check of the mutual descriptors against the images' true attributes."""

from __future__ import annotations

import json
import logging

from clipconcepts.steps import (
    add_dataset_args,
    add_llm_policy_args,
    add_llm_usage_args,
    add_model_args,
    build_dataset,
    json_arg,
)

log = logging.getLogger("clipconcepts")


def _count(text: str) -> int | None:
    return int(text) if text else None


def _templates(text: str):
    """A template set name, or a JSON list of templates."""
    return json.loads(text) if text.lstrip().startswith(("[", '"')) else text


def _mutual_args(p):

    add_model_args(p)
    add_dataset_args(p)
    p.add_argument("--descriptors", required=True, help="the descriptor bank (mutual-descriptors)")
    p.add_argument("--descriptor-template", default="a photo showing {}")
    p.add_argument("--settings", type=json_arg, default={}, help="MutualSettings fields as JSON")
    p.add_argument(
        "--classes", type=_count, default=None, help="N whole classes (seeded); all if empty"
    )
    p.add_argument("--images-per-class", type=_count, default=None, help="all if empty")
    p.add_argument("--n-examples", type=int, default=4, help="classes whose first image is kept")
    p.add_argument("--crf", action="store_true", help="dense-CRF refinement of the regions")
    p.add_argument("--out-images", required=True)
    p.add_argument("--out-summary", required=True)
    # the evaluations (Tables 1 and 2, the concept world's region check): all four or none
    p.add_argument("--out-faithfulness", default=None, help="Table 1, per image")
    p.add_argument("--out-faithfulness-summary", default=None, help="Table 1, averaged")
    p.add_argument("--out-augmented", default=None, help="Table 2")
    p.add_argument("--out-faithfulness-truth", default=None, help="concept world: region check")
    p.add_argument("--faithfulness", type=json_arg, default={}, help="FaithfulnessSettings (JSON)")
    p.add_argument("--augmented", type=json_arg, default={}, help="AugmentedSettings (JSON)")
    p.add_argument("--manifest", default=None, help="concept world: the set's manifest.parquet")


def _mutual(args):
    import polars as pl
    import torch

    from clipconcepts.evaluate import build_classifier
    from clipconcepts.mutual.per_class import MutualSettings, TextSide
    from clipconcepts.mutual.run import run_mutual, squash_transform
    from clipconcepts.mutual.towers import load_tower

    if args.crf:
        raise ValueError(
            "config key mutual.crf: no maintained dense-CRF package installs here (the authors' "
            "SimpleCRF does not build on current Python); set mutual.crf: false"
        )
    settings = MutualSettings(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in (args.settings or {}).items()}
    )
    if "{}" not in args.descriptor_template:
        raise ValueError(
            f"config key mutual.descriptor_template needs a '{{}}': {args.descriptor_template!r}"
        )
    args.templates = _templates(args.templates)
    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        log.warning("device %s requested but CUDA is not available: using cpu", device)
        device = "cpu"
    clip = load_tower(args.arch, args.pretrained or None, device, args.precision)
    clip.check_features(settings.features)
    size = clip.image_size
    dataset = build_dataset(args, transform=squash_transform(size, settings.resize))
    bank = pl.read_parquet(args.descriptors)
    if bank.is_empty():
        raise ValueError(f"descriptor bank {args.descriptors} is empty")
    texts = bank.sort("descriptor_id")["text"].to_list()
    classifier = build_classifier(clip, dataset.classnames, dataset.templates, settings.batch_size)
    text = TextSide(
        classifier=classifier,
        descriptors=clip.encode_text([args.descriptor_template.format(t) for t in texts]),
        descriptors_plain=clip.encode_text(texts),
        top_u=settings.top_u,
    )
    meta = {
        "model": clip.name,
        "tower": clip.kind,
        "dataset": args.dataset,
        "n_descriptors": len(texts),
        "templates": dataset.templates,
        "descriptor_template": args.descriptor_template,
        "image_size": size,
    }
    evaluation = _evaluation(args, bank, dataset.classnames, settings)
    summary = run_mutual(
        clip,
        dataset,
        text,
        texts,
        settings,
        args.out_images,
        args.out_summary,
        n_classes=args.classes,
        images_per_class=args.images_per_class,
        n_examples=args.n_examples,
        metadata=meta,
        evaluation=evaluation,
    )
    log.info(
        "%s on %s:\n%s",
        clip.name,
        args.dataset,
        summary.filter(pl.col("level") == "dataset").drop(
            "level", "class_id", "classname", "curve"
        ),
    )


def _evaluation(args, bank, classnames, settings):
    """The evaluations to run inside the step (None when no output of theirs is asked)."""
    from pathlib import Path

    import polars as pl

    from clipconcepts.mutual.augmented import AugmentedSettings, class_descriptor_lists
    from clipconcepts.mutual.evaluation import Evaluation
    from clipconcepts.mutual.faithfulness import FaithfulnessSettings

    outs = [
        args.out_faithfulness,
        args.out_faithfulness_summary,
        args.out_augmented,
        args.out_faithfulness_truth,
    ]
    if not any(outs):
        return None
    if not all(outs):
        raise ValueError("the mutual step writes all four evaluation files or none")
    faithfulness = {
        "steps": settings.n_concepts,
        "seed": settings.seed,
        **(args.faithfulness or {}),
    }
    spec = args.dataset_spec or {}
    family = colors = None
    if spec.get("kind") == "conceptworld" and args.manifest:
        manifest = pl.read_parquet(args.manifest)
        family = spec.get("family")
        colors = dict(manifest.select("image_id", "color").rows())
    return Evaluation(
        *map(Path, outs),
        own_descriptors=class_descriptor_lists(bank, classnames),
        faithfulness=FaithfulnessSettings(**faithfulness),
        augmented=AugmentedSettings(**(args.augmented or {})),
        family=family,
        colors=colors,
    )


def _truth_args(p):
    p.add_argument("--images", required=True, help="the mutual step's images.parquet")
    p.add_argument("--descriptors", required=True, help="the (concept-world) descriptor bank")
    p.add_argument("--manifest", required=True, help="the dataset's manifest.parquet")
    p.add_argument("--out", required=True)


def _truth(args):
    import polars as pl

    from clipconcepts.io import atomic_path
    from clipconcepts.mutual.descriptor_truth import descriptor_precision

    images = pl.read_parquet(args.images)
    bank = pl.read_parquet(args.descriptors)
    manifest = pl.read_parquet(args.manifest)
    table = descriptor_precision(images, bank, manifest)
    with atomic_path(args.out) as tmp:
        table.write_parquet(tmp)
    log.info("mutual descriptors vs true attributes:\n%s", table)


def _descriptor_args(p) -> None:
    from clipconcepts.mutual.descriptors import SOURCES

    p.add_argument("--source", choices=SOURCES, required=True)
    p.add_argument("--path", default=None, help="source=file: .txt (one per line), .csv, .parquet")
    p.add_argument("--backend", type=json_arg, default=None, help="source=llm: LLM spec (JSON)")
    p.add_argument("--cache-dir", default=None, help="source=llm: the LLM answer store")
    p.add_argument("--max-concurrency", type=int, default=None)
    add_llm_policy_args(p)
    p.add_argument("--dataset", default=None, help="dataset name (config key under datasets)")
    p.add_argument("--dataset-spec", type=json_arg, default=None, help="datasets.<name> as JSON")
    add_llm_usage_args(p)  # source=llm: the usage table, the dry run
    p.add_argument("--out", required=True)


def _descriptors(args) -> None:
    from clipconcepts.mutual.descriptors import (  # pyarrow: only when this step runs
        build_descriptor_bank,
        dataset_classnames,
        write_descriptor_bank,
    )

    spec = args.dataset_spec or {}
    concept_world = spec.get("kind") == "conceptworld"
    if args.source == "llm":
        from clipconcepts.llm.factory import backend_from_spec, open_cache

        if args.backend is None or not args.cache_dir:
            raise ValueError("mutual.descriptors.source=llm needs an LLM backend and a cache dir")
        if not args.dataset or not spec:
            raise ValueError("mutual.descriptors.source=llm needs the dataset (its class names)")
        classnames = dataset_classnames(args.dataset, spec)
        backend = backend_from_spec(args.backend)
        if args.dry_run:
            _descriptors_estimate(args, backend, classnames)
            return
        with open_cache(args.cache_dir, args.retry_invalid) as cache:
            pool, meta = build_descriptor_bank(
                "llm",
                classnames=classnames,
                backend=backend,
                cache=cache,
                concept_world=concept_world,
                max_concurrency=args.max_concurrency,
                max_invalid_fraction=args.max_invalid_fraction,
            )
        if args.usage_out:
            from clipconcepts.llm.prompts import DESCRIBE_TASK, prompt_texts
            from clipconcepts.llm.usage import write_usage

            prompts = {DESCRIBE_TASK: prompt_texts(DESCRIBE_TASK)}
            write_usage(args.usage_out, "mutual-descriptors", [backend], cache.stats, prompts)
    elif args.dry_run:
        print(f"LLM estimate (dry run): descriptor source {args.source} asks no LLM", flush=True)
        return
    else:  # class-agnostic: every class of the dataset (when it is named)
        classnames = dataset_classnames(args.dataset, spec) if args.dataset and spec else None
        pool, meta = build_descriptor_bank(
            args.source, classnames=classnames, path=args.path, concept_world=concept_world
        )
    meta["dataset"] = args.dataset
    write_descriptor_bank(pool, args.out, meta)
    log.info(
        "descriptor bank (%s, %s): %d descriptors -> %s",
        args.source,
        args.dataset,
        len(pool),
        args.out,
    )


def _descriptors_estimate(args, backend, classnames) -> None:
    """`mutual-descriptors --source llm --dry-run`: the calls the bank would make."""
    from clipconcepts.llm.factory import read_cache
    from clipconcepts.llm.usage import estimate_requests, print_estimate
    from clipconcepts.mutual.descriptors import describe_request

    requests = [describe_request(c) for c in classnames]
    cache = read_cache(args.cache_dir, args.retry_invalid)
    estimate = estimate_requests("mutual-descriptors", backend, requests, cache)
    print_estimate([(args.dataset or "", estimate)], args.prices, args.currency)


# step name -> (help, add_args(parser), run(args))
STEPS = {
    "mutual-descriptors": (
        "mutual knowledge: the class-agnostic descriptor bank of a dataset",
        _descriptor_args,
        _descriptors,
    ),
    "mutual": (
        "mutual knowledge of the vision and text encoders on one dataset",
        _mutual_args,
        _mutual,
    ),
    "mutual-truth": (
        "concept world: precision of the mutual descriptors against the true attributes",
        _truth_args,
        _truth,
    ),
}
