"""The CCS stage's steps: CCS per head, CCS@K and head groups; the human annotation sheet and
the agreement of its answers with the LLM judges."""

from __future__ import annotations

import logging

log = logging.getLogger("clipconcepts")


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


# step name -> (help, add_args(parser), run(args))
STEPS = {
    "ccs": ("CCS per head, CCS@K, high/moderate/low head groups", _ccs_args, _ccs),
    "annotation-sheet": ("sample text-label pairs for human annotation", _sheet_args, _sheet),
    "agreement": ("human vs LLM agreement (kappa, rho, tau)", _agreement_args, _agreement),
}
