"""The report's step: the self-contained HTML report and its standalone assets."""

from __future__ import annotations

import logging

log = logging.getLogger("clipconcepts")


def json_arg(text: str):
    from clipconcepts.cli import _json

    return _json(text)


def _report_args(p):
    p.add_argument("--run-dir", required=True)
    p.add_argument("--models", type=json_arg, required=True, help="key -> {arch, pretrained} JSON")
    p.add_argument("--datasets", nargs="*", default=[])
    p.add_argument("--title", default="clipconcepts report")
    p.add_argument("--n-examples", type=int, default=3)
    p.add_argument("--ood-datasets", nargs="*", default=[], help="datasets flagged ood: true")
    p.add_argument("--concept-pairs", type=json_arg, default=None, help="prune.concept_pairs JSON")
    p.add_argument("--video", nargs="*", default=[], help="video retrieval result files")
    p.add_argument("--claim-margin", type=float, default=0.0, help="percentage points")
    p.add_argument("--claim-quorum", type=float, default=1.0, help="fraction of cases")
    for stage in ("mutual", "attribution", "video"):  # the sets each stage ran on
        p.add_argument(f"--{stage}-sets", nargs="*", default=[], help=f"{stage} stage sets")
    p.add_argument("--out", required=True)
    p.add_argument("--assets-dir", required=True)


def _report(args):
    from clipconcepts.report import build_report

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
        claim_margin=args.claim_margin,
        claim_quorum=args.claim_quorum,
        mutual_sets=args.mutual_sets,
        attribution_sets=args.attribution_sets,
        video_sets=args.video_sets,
    )
    log.info("report -> %s", path)


# step name -> (help, add_args(parser), run(args))
STEPS = {"report": ("the self-contained HTML report and its assets", _report_args, _report)}
