"""Verdict words and badges the report's checks share.

The CCS paper's claims use four verdicts (`report.effects`): holds, contradicted,
inconclusive, not testable. The concept world's ground-truth checks (mutual knowledge, its
regions) compare numbers computed on the world's known truth and use holds / does not hold /
not testable, with `overall_of_checks` over their rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

HOLDS = "holds"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"
UNTESTABLE = "not testable"
FAILS = "does not hold"  # the ground-truth checks' negative verdict
VERDICT_CLASS = {
    HOLDS: "holds",
    CONTRADICTED: "fails",
    FAILS: "fails",
    INCONCLUSIVE: "inconclusive",
    UNTESTABLE: "untestable",
}


def verdict_badge(claim: str, verdict: str, **data: object) -> str:
    """The verdict as a coloured span, with `data-*` attributes naming what it is about."""
    attrs = "".join(f' data-{k.replace("_", "-")}="{escape(str(v))}"' for k, v in data.items())
    return (
        f'<span class="verdict {VERDICT_CLASS[verdict]}" data-claim="{escape(claim)}" '
        f'data-verdict="{escape(verdict)}"{attrs}>{escape(verdict)}</span>'
    )


def overall_of_checks(
    checks: Sequence, quorum: float, unit: str, none_reason: str
) -> tuple[str, str]:
    """A ground-truth check's verdict over its rows (each with `.verdict` and `.text`): holds
    when at least `quorum` of its testable rows hold, with a one-line summary of the counts."""
    if not checks:
        return UNTESTABLE, none_reason
    testable = [c for c in checks if c.verdict != UNTESTABLE]
    untestable = [c for c in checks if c.verdict == UNTESTABLE]
    reasons = "; ".join(dict.fromkeys(c.text for c in untestable))
    if not testable:
        return UNTESTABLE, f"not testable on any of {len(checks)} {unit}: {reasons}"
    n_hold = sum(c.verdict == HOLDS for c in testable)
    verdict = HOLDS if n_hold >= quorum * len(testable) - 1e-9 else FAILS
    summary = f"holds on {n_hold}/{len(testable)} testable {unit}"
    if untestable:
        summary += f"; {len(untestable)} not testable ({reasons})"
    return verdict, summary
