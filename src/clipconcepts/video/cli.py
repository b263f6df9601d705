"""The video stage's workflow steps: concept-world clips, and pruned zero-shot video retrieval."""

from __future__ import annotations

import logging

from clipconcepts.steps import add_model_args, add_prune_set_args, json_arg, load_model, prune_sets

log = logging.getLogger("clipconcepts")


def _clips_args(p):
    p.add_argument("--out-dir", required=True)
    p.add_argument("--n-videos", type=int, default=200)
    p.add_argument("--n-frames", type=int, default=16, help="frames per clip")
    p.add_argument("--fps", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)


def _clips(args):
    from clipconcepts.video.conceptworld import write_clips

    write_clips(args.out_dir, args.n_videos, args.n_frames, args.fps, args.seed)


def _eval_args(p):
    add_model_args(p)
    p.add_argument("--dataset", required=True, help="config key under video.datasets")
    p.add_argument("--dataset-spec", type=json_arg, required=True, help="its entry as JSON")
    add_prune_set_args(p)
    p.add_argument("--batch-size", type=int, default=16, help="videos per batch")
    p.add_argument("--frame-batch-size", type=int, default=256, help="frames per forward")
    p.add_argument("--num-workers", type=int, default=0, help="decoding processes")
    p.add_argument("--sets-per-pass", type=int, default=8)
    p.add_argument(
        "--ties",
        choices=["pessimistic", "optimistic", "average"],
        default="pessimistic",
        help="tie rule of the ranks (average: the expected recall under random tie-breaking)",
    )
    p.add_argument(
        "--protocol",
        choices=["ccs", "clip4clip"],
        default="ccs",
        help="renormalisation, captions used and video-to-text rule (docs/video.md)",
    )
    p.add_argument("--out", required=True, help="prune-schema table (t2v R@1, R@5)")
    p.add_argument("--retrieval-out", required=True, help="full retrieval metrics table")
    p.add_argument("--items-out", default=None, help="per-query ranks (VIDEO_ITEMS)")


def _eval(args):
    from clipconcepts.video.datasets import video_dataset_from_spec
    from clipconcepts.video.evaluate import evaluate_video_retrieval, write_video_results

    # read the annotations first: a missing file stops the job before the model loads
    dataset = video_dataset_from_spec(args.dataset, args.dataset_spec)
    clip = load_model(args)
    sets = prune_sets(args, clip)
    log.info("%r on %r", clip, dataset)
    results = evaluate_video_retrieval(
        clip,
        dataset,
        sets,
        batch_size=args.batch_size,
        frame_batch_size=args.frame_batch_size,
        num_workers=args.num_workers,
        sets_per_pass=args.sets_per_pass,
        ties=args.ties,
        protocol=args.protocol,
    )
    if results.skipped or dataset.missing:
        log.warning(
            "%s: skipped %d undecodable and %d missing videos (on_bad_video: skip)",
            args.dataset,
            len(results.skipped),
            len(dataset.missing),
        )
    write_video_results(results, args.out, args.retrieval_out, args.items_out)
    log.info(
        "decode count: %d videos decoded once each for %d prune sets",
        results.n_decoded,
        len(sets),
    )
    log.info(
        "results:\n%s",
        results.retrieval.select(
            "strategy", "seed", "n_heads", "direction", "r1", "r5", "r10", "median_rank"
        ),
    )


# step name -> (help, add_args(parser), run(args))
STEPS = {
    "conceptworld-videos": ("write the concept-world video clips (mp4)", _clips_args, _clips),
    "video-eval": ("zero-shot video retrieval with head sets pruned", _eval_args, _eval),
}
