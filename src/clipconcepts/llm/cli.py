"""The LLM stage's steps: one concept label per head from its texts, and the judges' verdict on
each text against the label."""

from __future__ import annotations

import logging

from clipconcepts.llm.factory import backend_from_spec, open_cache
from clipconcepts.steps import add_llm_args, add_llm_policy_args, json_arg

log = logging.getLogger("clipconcepts")


def _label_args(p):
    p.add_argument("--textspans", required=True)
    add_llm_args(p)
    p.add_argument("--out", required=True)


def _label(args):
    import polars as pl

    from clipconcepts.io import write_table
    from clipconcepts.labelling import label_heads

    with open_cache(args.cache_dir, args.retry_invalid) as cache:
        labels = label_heads(
            pl.read_parquet(args.textspans),
            backend_from_spec(args.backend),
            cache,
            args.max_concurrency,
            args.max_invalid_fraction,
        )
    write_table(labels.to_arrow(), args.out)


def _judge_args(p):
    p.add_argument("--labels", required=True)
    p.add_argument("--textspans", required=True)
    p.add_argument("--judges", type=json_arg, required=True, help="JSON list of backend specs")
    p.add_argument("--mode", choices=["per_text", "per_head"], default="per_text")
    p.add_argument("--cache-dir", required=True)
    p.add_argument("--max-concurrency", type=int, default=None)
    add_llm_policy_args(p)
    p.add_argument("--out", required=True)


def _judge(args):
    import polars as pl

    from clipconcepts.io import write_table
    from clipconcepts.judging import judge_heads

    with open_cache(args.cache_dir, args.retry_invalid) as cache:
        verdicts = judge_heads(
            pl.read_parquet(args.labels),
            pl.read_parquet(args.textspans),
            [backend_from_spec(spec) for spec in args.judges],
            args.mode,
            cache,
            args.max_concurrency,
            args.max_invalid_fraction,
        )
    write_table(verdicts.to_arrow(), args.out)


# step name -> (help, add_args(parser), run(args))
STEPS = {
    "label": ("LLM: one concept label per head from its texts", _label_args, _label),
    "judge": ("LLM: does each text fit its head's label", _judge_args, _judge),
}
