"""`python -m clipconcepts <step> ...`: one sub-command per workflow rule.

Every knob is an explicit option (the Snakemake rules pass them from `params:`), so a rule's
command line states everything its output depends on. Heavy imports happen inside the steps.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Callable

from clipconcepts.attribution import cli as attribution_cli
from clipconcepts.conceptworld import cli as conceptworld_cli
from clipconcepts.mutual import cli as mutual_cli
from clipconcepts.report import cli as report_cli
from clipconcepts.video import cli as video_cli

log = logging.getLogger("clipconcepts")


def _json(text: str):
    if not text:
        return None
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
    p.add_argument("--shard", type=int, default=0, help="this job's image range (0-based)")
    p.add_argument("--shards", type=int, default=1, help="image ranges the probe set is split in")
    p.add_argument("--heads-out", required=True)
    p.add_argument("--embeddings-out", required=True)


def _extract(args):
    from clipconcepts.data import build_image_records
    from clipconcepts.extract import extract_heads, shard_records

    clip = _load(args)
    records = build_image_records(args.probe_kind, args.probe_root).subset(
        args.subset or None, args.seed
    )
    records = shard_records(records, args.shard, args.shards)
    log.info("%r on %d probe images from %s", clip, len(records), args.probe_root)
    if args.shards > 1:
        log.info("shard %d of %d (0-based)", args.shard, args.shards)
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


# ---------------------------------------------------------------------------- text bank, TEXTSPAN
def _llm_args(p, what="--backend"):
    p.add_argument(what, type=_json, required=True, help="backend spec as JSON (no secrets)")
    p.add_argument("--cache-dir", required=True, help="content-addressed LLM answer store")
    p.add_argument("--max-concurrency", type=int, default=None)
    _llm_policy_args(p)


def _flag(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _llm_policy_args(p):
    p.add_argument(
        "--retry-invalid", type=_flag, default=False, help="re-ask answers stored invalid"
    )
    p.add_argument(
        "--max-invalid-fraction", type=float, default=0.1, help="fail above this share invalid"
    )


@contextlib.contextmanager
def _llm_cache(args):
    """The step's LLM answer cache; its call statistics are logged however the step ends."""
    from clipconcepts.llm import LLMCache

    cache = LLMCache(args.cache_dir, retry_invalid=args.retry_invalid)
    try:
        yield cache
    finally:
        log.info("LLM calls: %s", cache.stats.summary())


def _resolve_lexicon(name: str | None) -> dict[str, str] | None:
    """Offline backend lexicon: `default`, `conceptworld` or a JSON file of word -> family."""
    if name in (None, "", "default"):
        from clipconcepts.textbank import default_lexicon

        return default_lexicon()
    if name == "conceptworld":
        from clipconcepts.conceptworld.lexicon import conceptworld_lexicon

        return conceptworld_lexicon()
    from pathlib import Path

    path = Path(name)
    if not path.is_file():
        raise FileNotFoundError(f"lexicon file not found: {path} (llm backend key 'lexicon')")
    return json.loads(path.read_text())


def _backend(spec: dict):
    from clipconcepts.llm import make_backend
    from clipconcepts.mutual.descriptors import offline_descriptors

    spec = dict(spec)
    if spec.get("backend") != "offline":
        return make_backend(spec)
    name = spec.pop("lexicon", None)
    return make_backend(spec, _resolve_lexicon(name), offline_descriptors(name))


def _textbank_args(p):
    p.add_argument(
        "--source", choices=["default", "file", "generate", "conceptworld"], required=True
    )
    p.add_argument("--path", default=None, help="source=file: one description per line")
    p.add_argument("--generate-n", type=int, default=3000)
    p.add_argument("--generate-batch", type=int, default=50)
    p.add_argument("--backend", type=_json, default=None, help="source=generate: LLM spec (JSON)")
    p.add_argument("--cache-dir", default=None)
    _llm_policy_args(p)
    p.add_argument("--out", required=True)


def _textbank(args):
    from clipconcepts import textbank

    if args.source == "default":
        entries = textbank.default_textbank()
    elif args.source == "file":
        if not args.path:
            raise ValueError("textbank.source=file needs the config key textbank.path")
        entries = textbank.read_textbank_file(args.path)
    elif args.source == "conceptworld":
        from clipconcepts.conceptworld.textbank import conceptworld_textbank

        entries = [textbank.TextBankEntry(t, f) for t, f in conceptworld_textbank()]
    else:
        from clipconcepts.llm.bank import generate_bank

        if args.backend is None or not args.cache_dir:
            raise ValueError("textbank.source=generate needs an LLM backend and a cache dir")
        with _llm_cache(args) as cache:
            texts = generate_bank(
                _backend(args.backend),
                cache,
                args.generate_n,
                args.generate_batch,
                max_invalid_fraction=args.max_invalid_fraction,
            )
        entries = [textbank.TextBankEntry(t, None) for t in texts]
    textbank.write_textbank(entries, args.out)
    log.info("text bank (%s): %d descriptions -> %s", args.source, len(entries), args.out)


def _embed_texts_args(p):
    _model_args(p)
    p.add_argument("--textbank", required=True)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--out", required=True)


def _embed_texts(args):
    import pyarrow as pa

    from clipconcepts.io import fixed_list, write_table
    from clipconcepts.textbank import read_textbank_parquet

    clip = _load(args)
    entries = read_textbank_parquet(args.textbank)
    emb = clip.encode_text([e.text for e in entries], normalize=True, batch_size=args.batch_size)
    table = pa.table(
        {
            "text_id": pa.array(range(len(entries)), pa.int32()),
            "text": [e.text for e in entries],
            "family": pa.array([e.family for e in entries], pa.string()),
            "embedding": fixed_list(emb.cpu().numpy()),
        }
    )
    write_table(table, args.out)
    log.info("embedded %d texts with %r -> %s", len(entries), clip, args.out)


def _textspan_args(p):
    p.add_argument("--heads", nargs="+", required=True, help="heads file, or every shard")
    p.add_argument("--embeddings", nargs="+", default=None, help="embeddings file or shards")
    p.add_argument("--texts", required=True)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--rank", type=int, default=80)
    p.add_argument(
        "--normalize",
        choices=["embedding_norm", "none"],
        default="embedding_norm",
        help="divide each image's contributions by its embedding norm (the reference's), or not",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True)


def _textspan(args):
    from clipconcepts.textspan_step import run_textspan

    run_textspan(
        args.heads,
        args.embeddings,
        args.texts,
        args.out,
        iters=args.iters,
        rank=args.rank,
        normalize=args.normalize,
        device=args.device,
    )


# ---------------------------------------------------------------------------- labelling, judging, CCS
def _label_args(p):
    p.add_argument("--textspans", required=True)
    _llm_args(p)
    p.add_argument("--out", required=True)


def _label(args):
    import polars as pl

    from clipconcepts.io import write_table
    from clipconcepts.labelling import label_heads

    with _llm_cache(args) as cache:
        labels = label_heads(
            pl.read_parquet(args.textspans),
            _backend(args.backend),
            cache,
            args.max_concurrency,
            args.max_invalid_fraction,
        )
    write_table(labels.to_arrow(), args.out)


def _judge_args(p):
    p.add_argument("--labels", required=True)
    p.add_argument("--textspans", required=True)
    p.add_argument("--judges", type=_json, required=True, help="JSON list of backend specs")
    p.add_argument("--mode", choices=["per_text", "per_head"], default="per_text")
    p.add_argument("--cache-dir", required=True)
    p.add_argument("--max-concurrency", type=int, default=None)
    _llm_policy_args(p)
    p.add_argument("--out", required=True)


def _judge(args):
    import polars as pl

    from clipconcepts.io import write_table
    from clipconcepts.judging import judge_heads

    with _llm_cache(args) as cache:
        verdicts = judge_heads(
            pl.read_parquet(args.labels),
            pl.read_parquet(args.textspans),
            [_backend(spec) for spec in args.judges],
            args.mode,
            cache,
            args.max_concurrency,
            args.max_invalid_fraction,
        )
    write_table(verdicts.to_arrow(), args.out)


def _ccs_args(p):
    p.add_argument("--verdicts", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--textspans", required=True)
    p.add_argument("--ccs-out", required=True)
    p.add_argument("--ccs-at-k-out", required=True)
    p.add_argument("--groups-out", required=True)


def _ccs(args):
    import polars as pl

    from clipconcepts.ccs import ccs_at_k, ccs_table, head_groups
    from clipconcepts.io import write_table

    ccs = ccs_table(
        pl.read_parquet(args.verdicts),
        pl.read_parquet(args.labels),
        pl.read_parquet(args.textspans),
    )
    at_k = ccs_at_k(ccs)
    write_table(ccs.to_arrow(), args.ccs_out)
    write_table(at_k.to_arrow(), args.ccs_at_k_out)
    write_table(head_groups(ccs).to_arrow(), args.groups_out)
    log.info("CCS@K:\n%s", at_k)


def _sheet_args(p):
    p.add_argument("--ccs", nargs="+", required=True, help="ccs.parquet per model")
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)


def _sheet(args):
    import polars as pl

    from clipconcepts.agreement import annotation_sheet
    from clipconcepts.io import atomic_path

    sheets = [
        annotation_sheet(pl.read_parquet(path), n=args.n, seed=args.seed, model=model)
        for path, model in zip(args.ccs, args.models, strict=True)
    ]
    with atomic_path(args.out) as tmp:
        pl.concat(sheets).write_csv(tmp)
    log.info("annotation sheet: %d rows -> %s", sum(len(s) for s in sheets), args.out)


def _agreement_args(p):
    p.add_argument("--sheet", required=True)
    p.add_argument("--out", required=True)


def _agreement(args):
    from clipconcepts.agreement import agreement_stats, read_sheet
    from clipconcepts.io import write_table

    stats = agreement_stats(read_sheet(args.sheet), source=args.sheet)
    write_table(stats.to_arrow(), args.out)
    log.info("agreement:\n%s", stats)


# ---------------------------------------------------------------------------- zero-shot pruning
def _dataset_args(p):
    p.add_argument("--dataset", required=True, help="dataset name (config key under datasets)")
    p.add_argument("--dataset-spec", type=_json, required=True, help="datasets.<name> as JSON")
    p.add_argument("--templates", default="ccs")


def _build_dataset(args, transform=None):
    from clipconcepts.data.zeroshot import build_zeroshot_dataset, dataset_options

    options = dataset_options(args.dataset, args.dataset_spec)
    return build_zeroshot_dataset(transform=transform, templates=args.templates, **options)


def _classifier_args(p):
    _model_args(p)
    _dataset_args(p)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--out", required=True)


def _classifier(args):
    from clipconcepts.data.zeroshot import dataset_options, resolve_templates
    from clipconcepts.evaluate import build_classifier, save_classifier

    # checked here too, so a typo in datasets.<name> stops the run before any image is read
    kind = dataset_options(args.dataset, args.dataset_spec)["kind"]
    clip = _load(args)
    if kind in ("imagefolder", "manifest", "conceptworld"):
        # class names and templates live with the data: read them from there
        dataset = _build_dataset(args)
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


def prune_set_args(p):
    """The options naming the prune sets (`prune_sets` reads them; also the video step's)."""
    p.add_argument("--head-groups", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--ccs", required=True)
    p.add_argument("--layers", type=int, nargs="+", required=True)
    p.add_argument("--strategies", nargs="+", required=True)
    p.add_argument("--random-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--concept-groups", type=_json, default=None)
    p.add_argument("--concept-pairs", type=_json, default=None)
    p.add_argument("--concept-heads", choices=["high", "all"], default="high")
    p.add_argument("--manual", type=_json, default=None)


def _prune_args(p):
    _model_args(p)
    _dataset_args(p)
    p.add_argument("--classifier", required=True)
    prune_set_args(p)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--sets-per-pass", type=int, default=8)
    p.add_argument("--out", required=True)
    p.add_argument("--items-out", default=None, help="per-image outcomes (PRUNE_ITEMS)")


def prune_sets(args, clip):
    """The prune sets a prune step's options name (also the video step's), each logged."""
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
    )
    for s in sets:
        log.info("prune set %s seed %d: %d heads %s", s.strategy, s.seed, s.n_heads, s.head_names)
    return sets


def _prune(args):
    from clipconcepts.evaluate import (
        evaluate_prune_outcomes,
        load_classifier,
        write_prune_items,
        write_prune_results,
    )

    clip = _load(args)
    sets = prune_sets(args, clip)
    dataset = _build_dataset(args, clip.preprocess)
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


# ---------------------------------------------------------------------------- report
# ---------------------------------------------------------------------------- entry point
# step name -> (help, add_args(parser), run(args))
STEPS: dict[str, tuple[str, Callable, Callable]] = {
    "extract": (
        "per-head direct contributions of the CLS token on the probe set",
        _extract_args,
        _extract,
    ),
    "textbank": ("resolve the text bank (default, file, LLM-generated)", _textbank_args, _textbank),
    "embed-texts": (
        "embed the text bank (no template, L2-normalised)",
        _embed_texts_args,
        _embed_texts,
    ),
    "textspan": ("TEXTSPAN: the texts that span each head's output", _textspan_args, _textspan),
    "label": ("LLM: one concept label per head from its texts", _label_args, _label),
    "judge": ("LLM: does each text fit its head's label", _judge_args, _judge),
    "ccs": ("CCS per head, CCS@K, high/moderate/low head groups", _ccs_args, _ccs),
    "annotation-sheet": ("sample text-label pairs for human annotation", _sheet_args, _sheet),
    "agreement": ("human vs LLM agreement (kappa, rho, tau)", _agreement_args, _agreement),
    "classifier": ("zero-shot class embeddings of a dataset", _classifier_args, _classifier),
    "prune-eval": ("zero-shot accuracy with head sets pruned", _prune_args, _prune),
}


# Stages that own their sub-commands beside their code.
STEPS.update(conceptworld_cli.STEPS)
STEPS.update(mutual_cli.STEPS)
STEPS.update(attribution_cli.STEPS)
STEPS.update(video_cli.STEPS)
STEPS.update(report_cli.STEPS)


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
