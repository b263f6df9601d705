"""`python -m clipconcepts <step> ...`: one sub-command per workflow rule.

Every knob is an explicit option (the Snakemake rules pass them from `params:`), so a rule's
command line states everything its output depends on. Each stage defines its steps beside its
code (a `STEPS` table: name -> (help, add_args(parser), run(args))); this module only assembles
them. Heavy imports happen inside the steps.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from clipconcepts import ccs_cli, extraction_cli
from clipconcepts.attribution import cli as attribution_cli
from clipconcepts.conceptworld import cli as conceptworld_cli
from clipconcepts.evaluate import cli as evaluate_cli
from clipconcepts.llm import cli as llm_cli
from clipconcepts.mutual import cli as mutual_cli
from clipconcepts.report import cli as report_cli
from clipconcepts.video import cli as video_cli

log = logging.getLogger("clipconcepts")

# The stages in pipeline order; step names are unique across them (checked below).
STAGES = (
    extraction_cli,
    llm_cli,
    ccs_cli,
    evaluate_cli,
    conceptworld_cli,
    mutual_cli,
    attribution_cli,
    video_cli,
    report_cli,
)
STEPS: dict[str, tuple[str, Callable, Callable]] = {}
for _stage in STAGES:
    _clash = set(STEPS) & set(_stage.STEPS)
    if _clash:
        raise RuntimeError(f"{_stage.__name__} redefines steps {sorted(_clash)}")
    STEPS.update(_stage.STEPS)


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
