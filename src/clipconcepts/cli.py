"""`python -m clipconcepts <step> ...`: one sub-command per workflow rule.

Every knob is an explicit option (the Snakemake rules pass them from `params:`), so a rule's
command line states everything its output depends on. Heavy imports happen inside the steps.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable

log = logging.getLogger("clipconcepts")

def _json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON: {text!r} ({err})") from err


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", required=True, help="open_clip model name or model-config .json")
    p.add_argument("--pretrained", default=None, help="pretrained tag or checkpoint path")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32")


def _load(args):
    import torch

    from clipconcepts.models import load_clip

    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        log.warning("device %s requested but CUDA is not available: using cpu", device)
        device = "cpu"
    return load_clip(args.arch, args.pretrained or None, device=device, precision=args.precision)


# ---------------------------------------------------------------------------- extract
def _extract_args(p):
    _model_args(p)
    p.add_argument("--probe-kind", required=True)
    p.add_argument("--probe-root", required=True)
    p.add_argument("--subset", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layers", type=int, nargs="+", required=True)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--on-bad-image", choices=["fail", "skip"], default="fail")
    p.add_argument("--part-size", type=int, default=10_000)
    p.add_argument("--heads-out", required=True)
    p.add_argument("--embeddings-out", required=True)


def _extract(args):
    from clipconcepts.data import build_image_records
    from clipconcepts.extract import extract_heads

    clip = _load(args)
    records = build_image_records(args.probe_kind, args.probe_root).subset(
        args.subset or None, args.seed
    )
    log.info("%r on %d probe images from %s", clip, len(records), args.probe_root)
    extract_heads(
        clip,
        records,
        args.layers,
        args.heads_out,
        args.embeddings_out,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        on_bad_image=args.on_bad_image,
        part_size=args.part_size,
    )


# ---------------------------------------------------------------------------- entry point
# step name -> (help, add_args(parser), run(args))
STEPS: dict[str, tuple[str, Callable, Callable]] = {
    "extract": (
        "per-head direct contributions of the CLS token on the probe set",
        _extract_args,
        _extract,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clipconcepts", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="step", required=True, metavar="STEP")
    for name, (help_text, add_args, run) in STEPS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
        p.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        args.run(args)
    except (FileNotFoundError, ValueError, KeyError, IndexError, RuntimeError) as err:
        # A clear one-line reason for the log; the traceback only with --verbose.
        log.error("%s failed: %s", args.step, err, exc_info=args.verbose)
        return 1
    return 0
