"""The report's step: the self-contained HTML report and its standalone assets."""

from __future__ import annotations

import logging

from clipconcepts.steps import json_arg

log = logging.getLogger("clipconcepts")


def _report_args(p):
    p.add_argument("--run-dir", required=True)
    p.add_argument("--models", type=json_arg, required=True, help="key -> {arch, pretrained} JSON")
    p.add_argument("--datasets", nargs="*", default=[])
    p.add_argument("--title", default="clipconcepts report")
    p.add_argument("--n-examples", type=int, default=3)
    p.add_argument("--ood-datasets", nargs="*", default=[], help="datasets flagged ood: true")
    p.add_argument("--concept-pairs", type=json_arg, default=None, help="prune.concept_pairs JSON")
    p.add_argument("--video", nargs="*", default=[], help="video retrieval result files")
    p.add_argument("--claims-bootstrap", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--claims-level", type=float, default=0.95, help="confidence level")
    p.add_argument("--claims-min-effect", type=float, default=1.0, help="percentage points")
    p.add_argument("--claims-seed", type=int, default=0, help="the bootstrap's seed")
    p.add_argument("--no-claims", action="store_true", help="leave the claims section out")
    p.add_argument("--dataset-kinds", type=json_arg, default=None, help="dataset -> kind JSON")
    p.add_argument("--prune-strategies", nargs="*", default=[], help="prune.strategies")
    for stage in ("mutual", "attribution", "video"):  # the sets each stage ran on
        p.add_argument(f"--{stage}-sets", nargs="*", default=[], help=f"{stage} stage sets")
    p.add_argument("--llm-usage", nargs="*", default=[], help="the LLM steps' usage tables")
    p.add_argument("--llm-prices", type=json_arg, default=None, help="llm.prices as JSON")
    p.add_argument("--llm-currency", default="USD", help="llm.currency")
    p.add_argument(
        "--dataset-families",
        type=json_arg,
        default=None,
        help="concept world: in-domain dataset -> its family (JSON)",
    )
    p.add_argument("--out", required=True)
    p.add_argument("--assets-dir", required=True)


def _report(args):
    from clipconcepts.report import build_report
    from clipconcepts.report.claims import ClaimSettings

    path = build_report(
        args.run_dir,
        args.models,
        args.datasets,
        args.out,
        args.assets_dir,
        title=args.title,
        n_examples=args.n_examples,
        ood_datasets=args.ood_datasets,
        concept_pairs=args.concept_pairs,
        video=args.video,
        claims=ClaimSettings(
            bootstrap=args.claims_bootstrap,
            level=args.claims_level,
            min_effect=args.claims_min_effect,
            seed=args.claims_seed,
            enabled=not args.no_claims,
        ),
        mutual_sets=args.mutual_sets,
        attribution_sets=args.attribution_sets,
        video_sets=args.video_sets,
        dataset_families=args.dataset_families,
        llm_usage=args.llm_usage,
        llm_prices=args.llm_prices,
        llm_currency=args.llm_currency,
        dataset_kinds=args.dataset_kinds,
        prune_strategies=args.prune_strategies,
    )
    log.info("report -> %s", path)


def _head_images_args(p):
    p.add_argument("--heads", nargs="+", required=True, help="heads.parquet or its shards")
    p.add_argument("--embeddings", nargs="*", default=[], help="for normalize=embedding_norm")
    p.add_argument("--textspans", required=True)
    p.add_argument("--texts", required=True, help="the text bank embedded by the model")
    p.add_argument("--probe-kind", required=True)
    p.add_argument("--probe-root", required=True)
    p.add_argument("--n-images", type=int, default=8, help="images per head and side")
    p.add_argument("--thumbnail-px", type=int, default=64, help="longer side of a thumbnail")
    p.add_argument("--thumbnail-format", choices=["auto", "png", "jpeg"], default="auto")
    p.add_argument("--normalize", choices=["embedding_norm", "none"], default="embedding_norm")
    p.add_argument("--out", required=True)


def _head_images(args):
    from clipconcepts.report.head_images import run_head_images

    run_head_images(
        args.heads,
        args.textspans,
        args.texts,
        args.probe_kind,
        args.probe_root,
        args.out,
        embeddings=args.embeddings or None,
        n_images=args.n_images,
        thumbnail_px=args.thumbnail_px,
        thumbnail_format=args.thumbnail_format,
        normalize=args.normalize,
    )


# step name -> (help, add_args(parser), run(args))
STEPS = {"report": ("the self-contained HTML report and its assets", _report_args, _report)}
STEPS["head-images"] = (
    "per head, the probe images it writes most and least along its first TEXTSPAN direction",
    _head_images_args,
    _head_images,
)
