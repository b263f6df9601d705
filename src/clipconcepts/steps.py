"""What the stages' workflow steps share: option groups, model loading, dataset building, JSON
options and prune-set resolution.

Every stage's sub-commands live beside its code (`evaluate/cli.py`, `mutual/cli.py`, ...) and
use these helpers; `clipconcepts.cli` only assembles the registry, so nothing below it imports
it back. Heavy imports (torch, open_clip, polars) happen inside the functions.
"""

from __future__ import annotations

import argparse
import json
import logging

log = logging.getLogger("clipconcepts")


def json_arg(text: str):
    """An option holding JSON (empty = None); a parse error names the text."""
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON: {text!r} ({err})") from err


def flag_arg(text: str) -> bool:
    """An option holding true / false (also 1 / 0, yes / no)."""
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


# ---------------------------------------------------------------------------- models
def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", required=True, help="open_clip model name or model-config .json")
    p.add_argument("--pretrained", default=None, help="pretrained tag or checkpoint path")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32")


def load_model(args):
    """The head-aware model the options name (CUDA asked for but absent: CPU, with a warning)."""
    import torch

    from clipconcepts.models import load_clip

    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        log.warning("device %s requested but CUDA is not available: using cpu", device)
        device = "cpu"
    return load_clip(args.arch, args.pretrained or None, device=device, precision=args.precision)


# ---------------------------------------------------------------------------- datasets
def add_dataset_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="dataset name (config key under datasets)")
    p.add_argument("--dataset-spec", type=json_arg, required=True, help="datasets.<name> as JSON")
    p.add_argument("--templates", default="ccs")


def build_dataset(args, transform=None):
    """The zero-shot dataset `--dataset` / `--dataset-spec` / `--templates` name."""
    from clipconcepts.data.zeroshot import build_zeroshot_dataset, dataset_options

    options = dataset_options(args.dataset, args.dataset_spec)
    return build_zeroshot_dataset(transform=transform, templates=args.templates, **options)


# ---------------------------------------------------------------------------- prune sets
def add_prune_set_args(p: argparse.ArgumentParser) -> None:
    """The options naming the prune sets (`prune_sets` reads them): image and video steps."""
    p.add_argument("--head-groups", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--ccs", required=True)
    p.add_argument("--layers", type=int, nargs="+", required=True)
    p.add_argument("--strategies", nargs="+", required=True)
    p.add_argument("--random-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--concept-groups", type=json_arg, default=None)
    p.add_argument("--concept-pairs", type=json_arg, default=None)
    p.add_argument("--concept-heads", choices=["high", "all"], default="high")
    p.add_argument("--manual", type=json_arg, default=None)


def prune_sets(args, clip):
    """The prune sets a step's options name, each logged."""
    import polars as pl

    from clipconcepts.evaluate import resolve_prune_sets

    ccs = pl.read_parquet(args.ccs).filter(pl.col("judge") == "majority")
    sets = resolve_prune_sets(
        args.strategies,
        pl.read_parquet(args.head_groups),
        pl.read_parquet(args.labels),
        layers=[clip.layer_index(layer) for layer in args.layers],
        n_heads=clip.n_heads,
        random_seeds=args.random_seeds,
        concept_groups=args.concept_groups or {},
        concept_pairs=args.concept_pairs or [],
        manual=args.manual or {},
        ccs_df=ccs,
        concept_heads=args.concept_heads,
        arch=getattr(args, "arch", None),  # strategy published: the authors' lists of the model
        pretrained=getattr(args, "pretrained", None),
    )
    for s in sets:
        log.info("prune set %s seed %d: %d heads %s", s.strategy, s.seed, s.n_heads, s.head_names)
    return sets


# ---------------------------------------------------------------------------- LLM steps
def add_llm_policy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--retry-invalid", type=flag_arg, default=False, help="re-ask answers stored invalid"
    )
    p.add_argument(
        "--max-invalid-fraction", type=float, default=0.1, help="fail above this share invalid"
    )


def add_llm_usage_args(p: argparse.ArgumentParser) -> None:
    """What an LLM step spends: its usage table, and the dry run that estimates it."""
    p.add_argument("--usage-out", default=None, help="the step's LLM usage table (Parquet)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="ask nothing and write nothing: print the calls the step would make and their "
        "estimated tokens (and cost, with --prices)",
    )
    p.add_argument(
        "--prices", type=json_arg, default=None, help="llm.prices as JSON (dry-run cost)"
    )
    p.add_argument("--currency", default="USD", help="llm.currency (dry-run cost)")


def add_llm_args(p: argparse.ArgumentParser, what: str = "--backend") -> None:
    p.add_argument(what, type=json_arg, required=True, help="backend spec as JSON (no secrets)")
    p.add_argument("--cache-dir", required=True, help="content-addressed LLM answer store")
    p.add_argument("--max-concurrency", type=int, default=None)
    add_llm_policy_args(p)
