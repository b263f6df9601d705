"""The claims section of the report: a table of the claims with their tally and overall
verdict, each claim's cases with both differences and their intervals, and a forest plot per
claim (every comparison's difference and interval per case, a zero line and the min-effect
line)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np
from matplotlib.figure import Figure

from clipconcepts.report.assets import dataset_name
from clipconcepts.report.claims import Case, Claim, ClaimSettings
from clipconcepts.report.figures import fit_title, new_figure
from clipconcepts.report.tables import table
from clipconcepts.report.verdicts import (
    CONTRADICTED,
    HOLDS,
    INCONCLUSIVE,
    UNTESTABLE,
    verdict_badge,
)

OPEN_CASES = 6  # a claim's cases are shown unfolded up to this many
VERDICT_COLORS = {HOLDS: "#1d7a1d", CONTRADICTED: "#b22222", INCONCLUSIVE: "#b8860b"}
FOREST_ASSETS = {"a": "claims_a.svg", "b": "claims_b.svg", "c": "claims_c.svg", "d": "claims_d.svg"}


def case_where(case: Case) -> str:
    where = f"{case.model.display}, {dataset_name(case.dataset)}"
    if case.pair:
        where += f" ({case.pair[0]} vs {case.pair[1]})"
    return where


def tally_text(claim: Claim) -> str:
    """'2 holds · 1 inconclusive · 3 not testable' (zeros left out), or 'no case'."""
    parts = [f"{n} {v}" for v, n in claim.tally.items() if n]
    return " · ".join(parts) or "no case"


def _case_rows(claim: Claim) -> list[list[str]]:
    rows = []
    for c in claim.cases:
        where = escape(dataset_name(c.dataset))
        if c.pair:
            where += f"<br><small>{escape(c.pair[0])} vs {escape(c.pair[1])}</small>"
        data = {"model": c.model.key, "dataset": c.dataset}
        if c.pair:
            data["pair"] = f"{c.pair[0]}:vs:{c.pair[1]}"
        n_items = c.numbers.get("n_items")
        n_seeds = c.numbers.get("n_seeds")
        counts = (
            ""
            if n_items is None
            else f"{n_items} items" + (f", {n_seeds} seeds" if n_seeds else "")
        )
        why = "" if c.verdict == UNTESTABLE else f"<br><small>{escape(c.why)}</small>"
        rows.append(
            [
                f"<b>{escape(c.model.display)}</b>",
                where,
                escape(c.text),
                escape(counts),
                verdict_badge(claim.letter, c.verdict, **data) + why,
            ]
        )
    return rows


def claims_section_body(claims: Sequence[Claim], settings: ClaimSettings) -> str:
    """The claims table (one row per claim: its tally and overall verdict) and each claim's
    cases (figures are added by the caller, see `forest_figure`)."""
    rows = []
    for c in claims:
        tested = [x for x in c.cases if x.verdict != UNTESTABLE]
        lines = [f"{case_where(x)}: {x.short} ({x.verdict})" for x in tested[:OPEN_CASES]]
        if len(tested) > OPEN_CASES:
            lines.append(f"… {len(tested) - OPEN_CASES} more below")
        numbers = "".join(f"<br><small>{escape(line)}</small>" for line in lines)
        rows.append(
            [
                f"<b>({c.letter}) {escape(c.title)}</b><br><small>{escape(c.source)}</small>",
                escape(c.statement),
                f"<b>{escape(tally_text(c))}</b><br><small>{escape(c.summary)}</small>" + numbers,
                verdict_badge(c.letter, c.verdict, overall="true"),
            ]
        )
    intro = (
        f'<p class="note">Differences are in percentage points, with {settings.level:.0%} '
        f"paired-bootstrap intervals ({settings.bootstrap} resamples over the items, random "
        f"seeds resampled too; seed {settings.seed}). A case holds when every interval lies "
        f"above 0 and every difference is at least {settings.min_effect:g} points.</p>"
    )
    out = intro + table(["Claim", "The paper says", "This run", "Verdict"], rows, "claims")
    for c in claims:
        is_open = " open" if 0 < len(c.cases) <= OPEN_CASES else ""
        out += (
            f'<details id="claim-{c.letter}"{is_open}><summary>({c.letter}) {escape(c.title)}: '
            f"{len(c.cases)} cases ({escape(tally_text(c))})</summary>"
            f'<p class="note">Verdict rule: {escape(c.rule)}</p>'
        )
        if c.cases:
            out += table(
                ["Model", "Dataset", "This run's numbers", "Items", "Verdict"], _case_rows(c)
            )
        out += "</details>"
    return out


def forest_figure(claim: Claim, settings: ClaimSettings) -> Figure | None:
    """Every testable case's differences with their intervals (one row per comparison), a zero
    line and the min-effect line; None when no case is testable."""
    rows = []
    for case in claim.cases:
        for e in case.effects:
            pruned = case.pair[0] if case.pair else "high"
            rows.append((f"{case_where(case)}: {e.arm} − {pruned}", e, case.verdict))
    if not rows:
        return None
    height = 1.2 + 0.32 * len(rows)
    fig = new_figure(10.0, height)
    ax = fig.subplots()
    y = np.arange(len(rows))[::-1]
    for yi, (_, e, verdict) in zip(y, rows, strict=True):
        color = VERDICT_COLORS.get(verdict, "#555555")
        ax.plot([e.lower, e.upper], [yi, yi], color=color, lw=2)
        ax.plot([e.estimate], [yi], "o", color=color, ms=5)
    ax.axvline(0.0, color="black", lw=1)
    ax.axvline(settings.min_effect, color="grey", lw=1, ls="--")
    ax.set_yticks(y, [label for label, _, _ in rows], fontsize=8)
    ax.set_xlabel(f"difference, points of {claim.metric} ({settings.level:.0%} interval)")
    n_untestable = sum(c.verdict == UNTESTABLE for c in claim.cases)
    title = f"({claim.letter}) {claim.title}: {claim.verdict}"
    if n_untestable:
        title += f" ({n_untestable} cases not testable, not shown)"
    ax.set_title(fit_title(title, 6.0, 10), fontsize=10)
    handles = [
        ax.plot([], [], "o-", color=col, label=v)[0]
        for v, col in VERDICT_COLORS.items()
        if any(r[2] == v for r in rows)
    ]
    handles.append(ax.axvline(np.nan, color="grey", ls="--", label="min effect"))
    ax.legend(handles=handles, fontsize=8, loc="best")
    return fig
