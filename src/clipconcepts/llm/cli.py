"""The LLM stage's steps: one concept label per head from its texts, the judges' verdict on
each text against the label, and the estimate of what they will ask before any call.

`label` and `judge` write, beside their output, the step's usage table (`--usage-out`: calls,
answers reused from the cache, tokens; `llm.usage`); with `--dry-run` they ask nothing and
write nothing, and print the calls they would make with their estimated tokens."""

from __future__ import annotations

import logging

from clipconcepts.llm.factory import backend_from_spec, open_cache, read_cache
from clipconcepts.steps import (
    add_llm_args,
    add_llm_policy_args,
    add_llm_usage_args,
    flag_arg,
    json_arg,
)

log = logging.getLogger("clipconcepts")


def _out(args, step: str) -> str:
    if not args.out:
        raise ValueError(f"{step} needs --out (or --dry-run to estimate without asking)")
    return args.out


def _label_args(p):
    p.add_argument("--textspans", required=True)
    add_llm_args(p)
    add_llm_usage_args(p)
    p.add_argument("--out", default=None, help="the labels table (required unless --dry-run)")


def _label(args):
    import polars as pl

    from clipconcepts.io import write_table
    from clipconcepts.labelling import label_heads, label_requests
    from clipconcepts.llm.prompts import LABEL_TASK, prompt_texts
    from clipconcepts.llm.usage import estimate_requests, print_estimate, write_usage

    textspans = pl.read_parquet(args.textspans)
    backend = backend_from_spec(args.backend)
    if args.dry_run:
        cache = read_cache(args.cache_dir, args.retry_invalid)
        estimate = estimate_requests("label", backend, label_requests(textspans), cache)
        print_estimate([("", estimate)], args.prices, args.currency)
        return
    out = _out(args, "label")
    with open_cache(args.cache_dir, args.retry_invalid) as cache:
        labels = label_heads(
            textspans, backend, cache, args.max_concurrency, args.max_invalid_fraction
        )
    write_table(labels.to_arrow(), out)
    if args.usage_out:
        prompts = {LABEL_TASK: prompt_texts(LABEL_TASK)}
        write_usage(args.usage_out, "label", [backend], cache.stats, prompts)


def _judge_args(p):
    p.add_argument("--labels", required=True)
    p.add_argument("--textspans", required=True)
    p.add_argument("--judges", type=json_arg, required=True, help="JSON list of backend specs")
    p.add_argument("--mode", choices=["per_text", "per_head"], default="per_text")
    p.add_argument("--cache-dir", required=True)
    p.add_argument("--max-concurrency", type=int, default=None)
    add_llm_policy_args(p)
    add_llm_usage_args(p)
    p.add_argument("--out", default=None, help="the verdicts table (required unless --dry-run)")


def _judge(args):
    import polars as pl

    from clipconcepts.io import write_table
    from clipconcepts.judging import judge_heads, judge_requests
    from clipconcepts.llm.prompts import JUDGE_HEAD_TASK, JUDGE_TEXT_TASK, prompt_texts
    from clipconcepts.llm.usage import estimate_requests, print_estimate, write_usage

    labels, textspans = pl.read_parquet(args.labels), pl.read_parquet(args.textspans)
    judges = [backend_from_spec(spec) for spec in args.judges]
    if args.dry_run:
        cache = read_cache(args.cache_dir, args.retry_invalid)
        requests = judge_requests(labels, textspans, args.mode)
        estimates = [("", estimate_requests("judge", j, requests, cache)) for j in judges]
        print_estimate(estimates, args.prices, args.currency)
        return
    out = _out(args, "judge")
    with open_cache(args.cache_dir, args.retry_invalid) as cache:
        verdicts = judge_heads(
            labels,
            textspans,
            judges,
            args.mode,
            cache,
            args.max_concurrency,
            args.max_invalid_fraction,
        )
    write_table(verdicts.to_arrow(), out)
    if args.usage_out:
        task = JUDGE_TEXT_TASK if args.mode == "per_text" else JUDGE_HEAD_TASK
        write_usage(args.usage_out, "judge", judges, cache.stats, {task: prompt_texts(task)})


def _estimate_args(p):
    p.add_argument("--textspans", nargs="+", required=True, help="one per model")
    p.add_argument("--models", nargs="+", required=True, help="the model key of each textspans")
    p.add_argument(
        "--labels",
        nargs="*",
        default=[],
        help="labels per model, in the order of --models (absent files: labels assumed)",
    )
    p.add_argument("--labeller", type=json_arg, required=True, help="backend spec as JSON")
    p.add_argument("--judges", type=json_arg, required=True, help="JSON list of backend specs")
    p.add_argument("--mode", choices=["per_text", "per_head"], default="per_text")
    p.add_argument("--cache-dir", required=True)
    p.add_argument("--retry-invalid", type=flag_arg, default=False)
    p.add_argument("--prices", type=json_arg, default=None, help="llm.prices as JSON")
    p.add_argument("--currency", default="USD", help="llm.currency")
    p.add_argument("--out", default=None, help="the estimate table (Parquet; optional)")


def _estimate(args):
    from pathlib import Path

    import polars as pl

    from clipconcepts.io import write_table
    from clipconcepts.llm.usage import estimate_heads, print_estimate

    if len(args.models) != len(args.textspans):
        raise ValueError(
            f"llm-estimate: {len(args.models)} --models for {len(args.textspans)} --textspans"
        )
    if args.labels and len(args.labels) != len(args.models):
        raise ValueError(f"llm-estimate: {len(args.labels)} --labels for {len(args.models)} models")
    labeller = backend_from_spec(args.labeller)
    judges = [backend_from_spec(spec) for spec in args.judges]
    cache = read_cache(args.cache_dir, args.retry_invalid)
    estimates = []
    for i, (model, path) in enumerate(zip(args.models, args.textspans, strict=True)):
        label_path = Path(args.labels[i]) if args.labels else None
        labels = pl.read_parquet(label_path) if label_path and label_path.is_file() else None
        textspans = pl.read_parquet(path)
        estimates += estimate_heads(model, textspans, labeller, judges, args.mode, cache, labels)
    table = print_estimate(estimates, args.prices, args.currency)
    if args.out:
        write_table(table.to_arrow(), args.out)


# step name -> (help, add_args(parser), run(args))
STEPS = {
    "label": ("LLM: one concept label per head from its texts", _label_args, _label),
    "judge": ("LLM: does each text fit its head's label", _judge_args, _judge),
    "llm-estimate": (
        "LLM: the calls, tokens and cost labelling and judging will make (asks nothing)",
        _estimate_args,
        _estimate,
    ),
}
