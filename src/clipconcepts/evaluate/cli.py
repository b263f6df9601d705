"""The pruning stage's steps: zero-shot classifiers per dataset, and zero-shot accuracy with head
sets pruned."""

from __future__ import annotations

import logging

from clipconcepts.steps import (
    add_dataset_args,
    add_model_args,
    add_prune_set_args,
    build_dataset,
    load_model,
    prune_sets,
)

log = logging.getLogger("clipconcepts")


def _classifier_args(p):
    add_model_args(p)
    add_dataset_args(p)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--out", required=True)


def _classifier(args):
    from clipconcepts.data.zeroshot import dataset_options, resolve_templates
    from clipconcepts.evaluate import build_classifier, save_classifier

    # checked here too, so a typo in datasets.<name> stops the run before any image is read
    kind = dataset_options(args.dataset, args.dataset_spec)["kind"]
    clip = load_model(args)
    if kind in ("imagefolder", "manifest", "conceptworld"):
        # class names and templates live with the data: read them from there
        dataset = build_dataset(args)
        classnames, templates = dataset.classnames, dataset.templates
    else:
        from clipconcepts.data.zeroshot import classnames_of

        classnames, templates = classnames_of(kind), resolve_templates(kind, args.templates)
    weights = build_classifier(clip, classnames, templates, args.batch_size)
    meta = {"dataset": args.dataset, "model": clip.name, "templates": templates}
    save_classifier(args.out, weights, classnames, meta)
    log.info(
        "%s: %d classes x %d templates -> %s",
        args.dataset,
        len(classnames),
        len(templates),
        args.out,
    )


def _prune_args(p):
    add_model_args(p)
    add_dataset_args(p)
    p.add_argument("--classifier", required=True)
    add_prune_set_args(p)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--sets-per-pass", type=int, default=8)
    p.add_argument("--out", required=True)
    p.add_argument("--items-out", default=None, help="per-image outcomes (PRUNE_ITEMS)")


def _prune(args):
    from clipconcepts.evaluate import (
        evaluate_prune_outcomes,
        load_classifier,
        write_prune_items,
        write_prune_results,
    )

    clip = load_model(args)
    sets = prune_sets(args, clip)
    dataset = build_dataset(args, clip.preprocess)
    weights, classnames, _ = load_classifier(args.classifier)
    if len(classnames) != dataset.n_classes:
        raise ValueError(
            f"classifier {args.classifier} has {len(classnames)} classes, "
            f"dataset {args.dataset} has {dataset.n_classes}"
        )
    loader = dataset.loader(args.batch_size, args.num_workers)  # its on_bad_image applies
    log.info("%r on %s: %d images, %d prune sets", clip, args.dataset, len(dataset), len(sets))
    outcomes = evaluate_prune_outcomes(
        clip, loader, weights.to(clip.device), sets, sets_per_pass=args.sets_per_pass
    )
    frame = outcomes.summary
    n_skipped = len(dataset) - frame["n_images"][0] if len(frame) else 0
    if n_skipped:
        log.warning(
            "%s: skipped %d undecodable images (datasets.%s.on_bad_image: skip)",
            args.dataset,
            n_skipped,
            args.dataset,
        )
    if args.items_out:  # first: the table's existence marks a finished job
        write_prune_items(outcomes.items, args.items_out)
    write_prune_results(frame, args.out)
    log.info("results:\n%s", frame.select("strategy", "seed", "n_heads", "top1", "top5"))


# step name -> (help, add_args(parser), run(args))
STEPS = {
    "classifier": ("zero-shot class embeddings of a dataset", _classifier_args, _classifier),
    "prune-eval": ("zero-shot accuracy with head sets pruned", _prune_args, _prune),
}
