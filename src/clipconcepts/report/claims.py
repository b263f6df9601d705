"""The CCS paper's claims, each tested on this run's result files, with a computed verdict.

Every verdict is derived from the pruning (and video) Parquet files the report reads; nothing is
written by hand. A claim is judged per *case* (a model x dataset, or a model x dataset x concept
pair), then overall:

- a case is **not testable** when the data it needs is absent or degenerate (the reason is
  stated: a missing file or strategy, an empty head set and why it is empty);
- otherwise it **holds** when every comparison the claim makes goes the claimed way by more than
  `margin` percentage points (accuracy or retrieval score; `margin = 0` is a strict `<`), and it
  **does not hold** otherwise (a tie does not hold);
- overall, a claim holds when it holds on at least `quorum` of its testable cases (`quorum = 1`:
  on every one, as the paper words its claims: "consistently", "across all datasets"), does not
  hold when some cases are testable but fewer hold, and is not testable when no case is.

Claims (paper sections in brackets):

(a) `high_vs_random_low` [5.2-5.3, Tables 4-5, Figure 2]: pruning the high-CCS heads lowers
    top-1 accuracy more than pruning random heads (mean over seeds) and more than pruning the
    low-CCS heads: holds when `high < random_mean - margin` and `high < low - margin`. Cases:
    every model x dataset not flagged OOD. Not testable when the high or low set is empty (no
    head with CCS = 5, resp. CCS <= 1), or the file or a strategy is missing.
(b) `concept_specific` [5.5, Figures 3-4]: for each of a dataset's concept pairs (target,
    unrelated) from `prune.concept_pairs`, pruning the target's heads lowers that dataset's
    accuracy more than pruning as many unrelated heads: holds when
    `concept:T:vs:U < concept:U:vs:T - margin`. Not testable when the pair's sets are empty.
(c) `ood` [5.4, Table 6]: (a)'s comparison on the datasets flagged `ood: true`. Not testable
    when no dataset is flagged, or as in (a).
(d) `video` [5.6, Figure 5]: (a)'s comparison on video retrieval results
    (`{model}/video/{dataset}.parquet` in the prune schema, `top1` = the retrieval score in %).
    Not testable when the report is given no video results (this workflow has no video stage).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape

import polars as pl

from clipconcepts.report.assets import dataset_name
from clipconcepts.report.inputs import ModelInfo, RunData, StrategySummary, majority_rows
from clipconcepts.report.tables import heads, table

HOLDS = "holds"
FAILS = "does not hold"
UNTESTABLE = "not testable"
VERDICT_CLASS = {HOLDS: "holds", FAILS: "fails", UNTESTABLE: "untestable"}
OPEN_CASES = 6  # a claim's cases are shown unfolded up to this many


@dataclass(frozen=True)
class Case:
    """One test of a claim: a model on a dataset (and a concept pair for claim b)."""

    model: ModelInfo
    dataset: str
    verdict: str
    text: str  # the numbers and the comparison, or why it is not testable
    numbers: dict[str, float | int | None] = field(default_factory=dict)
    pair: tuple[str, str] | None = None

    @property
    def short(self) -> str:
        """The case's numbers in a few words (for the claims table), '' if not testable."""
        n = self.numbers
        if "high" in n:
            return f"high {_f(n['high'])} / random {_f(n['random'])} / low {_f(n['low'])}"
        if "target" in n and self.pair:
            return f"{self.pair[0]} {_f(n['target'])} / {self.pair[1]} {_f(n['unrelated'])}"
        return ""


@dataclass(frozen=True)
class Claim:
    """A claim of the paper, its verdict rule, its cases and its overall verdict."""

    key: str
    letter: str
    title: str
    statement: str  # the claim in one sentence
    source: str  # where the paper makes it
    rule: str  # the verdict rule in words
    cases: list[Case]
    verdict: str
    summary: str  # "holds on 3/4 testable ..." or why it is not testable


# ------------------------------------------------------------------------------- verdicts
def _f(x: float) -> str:
    return f"{x:.2f}"


def _ccs_range(frame: pl.DataFrame | None) -> str:
    """' (majority CCS here: 2-3 over 24 heads)' from a ccs.parquet frame, '' without one."""
    if frame is None:
        return ""
    rows, judge = majority_rows(frame)
    rows = rows.filter(pl.col("n_invalid") == 0) if judge else rows.clear()
    if rows.is_empty():
        return ""
    lo, hi = int(rows["ccs"].min()), int(rows["ccs"].max())
    span = str(lo) if lo == hi else f"{lo}–{hi}"
    return f" (CCS of the analysed heads here: {span}, over {heads(rows.height)})"


def compare_high(
    summaries: Mapping[str, StrategySummary] | None,
    margin: float = 0.0,
    ccs: pl.DataFrame | None = None,
    metric: str = "accuracy",
) -> tuple[str, str, dict[str, float | int | None]]:
    """Claims a, c, d on one result file's summaries: (verdict, text, numbers)."""
    if summaries is None:
        return UNTESTABLE, f"no {'video' if metric != 'accuracy' else 'pruning'} results", {}
    absent = [s for s in ("high", "low", "random") if s not in summaries]
    if absent:
        names = ", ".join(f"'{s}'" for s in absent)
        return UNTESTABLE, f"no {names} rows in the results (prune.strategies)", {}
    high, low, rnd = summaries["high"], summaries["low"], summaries["random"]
    empty = []
    if high.is_empty:
        empty.append("the high set is empty (no head has CCS = 5)")
    if low.is_empty:
        empty.append("the low set is empty (no head has CCS ≤ 1)")
    if not empty and rnd.is_empty:
        empty.append("the random sets are empty")
    if empty:
        return UNTESTABLE, "; ".join(empty) + _ccs_range(ccs), {}
    original = summaries.get("original")
    numbers: dict[str, float | int | None] = {
        "original": original.top1_mean if original else None,
        "high": high.top1_mean,
        "random": rnd.top1_mean,
        "random_std": rnd.top1_std,
        "n_seeds": rnd.n_runs,
        "low": low.top1_mean,
        "n_high": max(high.n_heads),
        "n_low": max(low.n_heads),
    }
    vs_random = high.top1_mean < rnd.top1_mean - margin
    vs_low = high.top1_mean < low.top1_mean - margin
    verdict = HOLDS if vs_random and vs_low else FAILS
    rnd_text = _f(rnd.top1_mean) + (f" ± {_f(rnd.top1_std)}" if rnd.top1_std is not None else "")
    text = (
        f"{metric} (%): high {_f(high.top1_mean)} ({heads(max(high.n_heads))}) "
        f"{'<' if vs_random else '≮'} random {rnd_text} (mean of {rnd.n_runs} seeds) and "
        f"{'<' if vs_low else '≮'} low {_f(low.top1_mean)} ({heads(max(low.n_heads))})"
    )
    if original is not None:
        text += f"; original {_f(original.top1_mean)}"
    return verdict, text, numbers


def compare_concepts(
    summaries: Mapping[str, StrategySummary] | None,
    target: str,
    unrelated: str,
    margin: float = 0.0,
) -> tuple[str, str, dict[str, float | int | None]]:
    """Claim b on one dataset's summaries and one (target, unrelated) pair."""
    if summaries is None:
        return UNTESTABLE, "no pruning results", {}
    t_name, u_name = f"concept:{target}:vs:{unrelated}", f"concept:{unrelated}:vs:{target}"
    absent = [n for n in (t_name, u_name) if n not in summaries]
    if absent:
        names = ", ".join(f"'{n}'" for n in absent)
        return UNTESTABLE, f"no {names} rows (is 'concept' in prune.strategies?)", {}
    t, u = summaries[t_name], summaries[u_name]
    if t.is_empty or u.is_empty:
        return (
            UNTESTABLE,
            f"the concept sets are empty ({target}: {heads(max(t.n_heads))}, {unrelated}: "
            f"{heads(max(u.n_heads))}; a pair is sized to its smaller group, so '{target}' or "
            f"'{unrelated}' has no eligible head: see prune.concept_heads and the labels)",
            {},
        )
    original = summaries.get("original")
    holds = t.top1_mean < u.top1_mean - margin
    numbers: dict[str, float | int | None] = {
        "original": original.top1_mean if original else None,
        "target": t.top1_mean,
        "unrelated": u.top1_mean,
        "n_target": max(t.n_heads),
        "n_unrelated": max(u.n_heads),
    }
    text = (
        f"accuracy (%): {target} heads pruned {_f(t.top1_mean)} ({heads(max(t.n_heads))}) "
        f"{'<' if holds else '≮'} {unrelated} heads pruned {_f(u.top1_mean)} "
        f"({heads(max(u.n_heads))})"
    )
    if original is not None:
        text += f"; original {_f(original.top1_mean)}"
    return HOLDS if holds else FAILS, text, numbers


def overall(cases: Sequence[Case], quorum: float, unit: str, none_reason: str) -> tuple[str, str]:
    """A claim's verdict over its cases, and a one-line summary with the counts."""
    if not cases:
        return UNTESTABLE, none_reason
    testable = [c for c in cases if c.verdict != UNTESTABLE]
    untestable = [c for c in cases if c.verdict == UNTESTABLE]
    reasons = "; ".join(dict.fromkeys(c.text for c in untestable))
    if not testable:
        return UNTESTABLE, f"not testable on any of {len(cases)} {unit}: {reasons}"
    n_hold = sum(c.verdict == HOLDS for c in testable)
    verdict = HOLDS if n_hold >= quorum * len(testable) - 1e-9 else FAILS
    summary = f"holds on {n_hold}/{len(testable)} testable {unit}"
    if untestable:
        summary += f"; {len(untestable)} not testable ({reasons})"
    return verdict, summary


# ------------------------------------------------------------------------------- claims
def _high_cases(
    run: RunData, datasets: Sequence[str], margin: float, *, video: bool = False
) -> list[Case]:
    cases = []
    for m in run.models:
        for d in datasets:
            summaries = run.video.get((m.key, d)) if video else run.prune.get((m.key, d))
            metric = "retrieval score" if video else "accuracy"
            verdict, text, numbers = compare_high(summaries, margin, run.ccs.get(m.key), metric)
            cases.append(Case(m, d, verdict, text, numbers))
    return cases


def evaluate_claims(
    run: RunData,
    ood_datasets: Sequence[str] = (),
    concept_pairs: Mapping[str, Sequence[Sequence[str]]] | None = None,
    margin: float = 0.0,
    quorum: float = 1.0,
) -> list[Claim]:
    """The four claims (a-d) on `run`; see the module docstring for each verdict rule."""
    if margin < 0:
        raise ValueError(f"claim margin must be >= 0 percentage points, got {margin}")
    if not 0 < quorum <= 1:
        raise ValueError(f"claim quorum must be in (0, 1], got {quorum}")
    ood = [d for d in run.datasets if d in set(ood_datasets)]
    in_domain = [d for d in run.datasets if d not in set(ood)]
    beyond = f" by more than {margin:g} points" if margin else ""
    how = "every" if quorum >= 1 else f"at least {quorum:.0%} of the"
    quorum_text = f"Overall: holds when it holds on {how} testable case."
    high_rule = (
        f"Holds on a model × dataset when top-1 accuracy with the high-CCS heads pruned is "
        f"below both the mean over random seeds and the low-CCS value{beyond}; not testable "
        f"when the high or low set is empty or a result is missing. {quorum_text}"
    )
    claims = []

    cases = _high_cases(run, in_domain, margin)
    verdict, summary = overall(
        cases,
        quorum,
        "model × dataset cases",
        "no in-domain dataset in this run" + (" (every dataset is OOD: see c)" if ood else ""),
    )
    claims.append(
        Claim(
            "high_vs_random_low",
            "a",
            "High vs random vs low CCS",
            "Pruning the high-CCS heads (CCS = 5) lowers zero-shot accuracy more than pruning "
            "as many random heads and more than pruning the low-CCS heads (CCS ≤ 1).",
            "sections 5.2-5.3, Tables 4-5, Figure 2",
            high_rule + " Datasets flagged OOD are left to (c).",
            cases,
            verdict,
            summary,
        )
    )

    pairs = concept_pairs or {}
    cases = []
    for d in run.datasets:
        for target, unrelated in pairs.get(d, []):
            for m in run.models:
                verdict, text, numbers = compare_concepts(
                    run.prune.get((m.key, d)), target, unrelated, margin
                )
                cases.append(Case(m, d, verdict, text, numbers, (target, unrelated)))
    verdict, summary = overall(
        cases,
        quorum,
        "model × dataset × concept-pair cases",
        "no dataset of this run has concept pairs (prune.concept_pairs)",
    )
    claims.append(
        Claim(
            "concept_specific",
            "b",
            "Concept-specific pruning",
            "Pruning the heads of a dataset's target concept (e.g. locations for Country-211) "
            "lowers its accuracy more than pruning as many heads of an unrelated concept.",
            "section 5.5, Figures 3-4",
            "Holds on a model × dataset × (target, unrelated) pair from prune.concept_pairs when "
            f"top-1 accuracy with the target's heads pruned is below that with the unrelated "
            f"concept's heads pruned{beyond} (both sets have the same size); not testable when "
            f"the sets are empty or missing. {quorum_text}",
            cases,
            verdict,
            summary,
        )
    )

    cases = _high_cases(run, ood, margin)
    verdict, summary = overall(
        cases,
        quorum,
        "model × OOD dataset cases",
        "no dataset of this run is flagged ood: true (config datasets.<name>.ood)",
    )
    claims.append(
        Claim(
            "ood",
            "c",
            "Out-of-domain datasets",
            "On out-of-domain datasets, pruning the high-CCS heads lowers accuracy more than "
            "pruning random heads and more than pruning the low-CCS heads.",
            "section 5.4, Table 6",
            high_rule.replace("a model × dataset", "a model × OOD dataset (ood: true)"),
            cases,
            verdict,
            summary,
        )
    )

    video_sets = sorted({d for _, d in run.video})
    cases = _high_cases(run, video_sets, margin, video=True)
    verdict, summary = overall(
        cases,
        quorum,
        "model × video dataset cases",
        "no video stage: the report was given no video retrieval results "
        f"({run.layout.video('<model>', '<dataset>')})",
    )
    claims.append(
        Claim(
            "video",
            "d",
            "Video retrieval",
            "In zero-shot video retrieval, pruning the high-CCS heads lowers retrieval "
            "performance more than pruning low-CCS or random heads.",
            "section 5.6, Figure 5",
            high_rule.replace("top-1 accuracy", "the retrieval score (top1 column)").replace(
                "a model × dataset", "a model × video dataset"
            ),
            cases,
            verdict,
            summary,
        )
    )
    return claims


# ------------------------------------------------------------------------------- HTML
def verdict_badge(claim: str, verdict: str, **data: object) -> str:
    attrs = "".join(f' data-{k.replace("_", "-")}="{escape(str(v))}"' for k, v in data.items())
    return (
        f'<span class="verdict {VERDICT_CLASS[verdict]}" data-claim="{escape(claim)}" '
        f'data-verdict="{escape(verdict)}"{attrs}>{escape(verdict)}</span>'
    )


def _case_rows(claim: Claim) -> list[list[str]]:
    rows = []
    for c in claim.cases:
        where = escape(dataset_name(c.dataset))
        if c.pair:
            where += f"<br><small>{escape(c.pair[0])} vs {escape(c.pair[1])}</small>"
        data = {"model": c.model.key, "dataset": c.dataset}
        if c.pair:
            data["pair"] = f"{c.pair[0]}:vs:{c.pair[1]}"
        rows.append(
            [
                f"<b>{escape(c.model.display)}</b>",
                where,
                escape(c.text),
                verdict_badge(claim.letter, c.verdict, **data),
            ]
        )
    return rows


def claims_section_body(claims: Sequence[Claim]) -> str:
    """The claims table (one row per claim, its overall verdict) and each claim's cases."""
    rows = []
    for c in claims:
        tested = [x for x in c.cases if x.verdict != UNTESTABLE]
        lines = [
            f"{x.model.display}, {dataset_name(x.dataset)}: {x.short} ({x.verdict})"
            for x in tested[:OPEN_CASES]
        ]
        if len(tested) > OPEN_CASES:
            lines.append(f"… {len(tested) - OPEN_CASES} more below")
        numbers = "".join(f"<br><small>{escape(line)}</small>" for line in lines)
        rows.append(
            [
                f"<b>({c.letter}) {escape(c.title)}</b><br><small>{escape(c.source)}</small>",
                escape(c.statement),
                escape(c.summary) + numbers,
                verdict_badge(c.letter, c.verdict, overall="true"),
            ]
        )
    out = table(["Claim", "The paper says", "This run", "Verdict"], rows, "claims")
    for c in claims:
        is_open = " open" if 0 < len(c.cases) <= OPEN_CASES else ""
        out += (
            f'<details id="claim-{c.letter}"{is_open}><summary>({c.letter}) {escape(c.title)}: '
            f"{len(c.cases)} cases</summary>"
            f'<p class="note">Verdict rule: {escape(c.rule)}</p>'
        )
        if c.cases:
            out += table(["Model", "Dataset", "This run's numbers", "Verdict"], _case_rows(c))
        out += "</details>"
    return out
