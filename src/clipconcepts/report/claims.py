"""The CCS paper's claims, each tested on this run's result files, with a verdict and its
uncertainty.

Every verdict is computed from the pruning (and video) result files the report reads; nothing
is written by hand. A claim is judged per *case* (a model x dataset, or a model x dataset x
concept pair). Each case compares the arm the claim says hurts most with one or more other
arms on the same items (images, or retrieval queries): a paired bootstrap over the items, with
the random arms' seeds resampled too, gives every difference a confidence interval
(`report.effects`). Four verdicts per case:

- **holds**: every comparison's interval lies above 0 and its estimate is at least
  `min_effect` percentage points;
- **contradicted**: some comparison's interval lies below 0;
- **inconclusive**: anything else ("saturated" when both arms sit at 100% or 0%);
- **not testable**: an empty head set, a missing file or strategy, a NaN accuracy, no items, or
  fewer than `min_seeds` random seeds; the reason in words.

Overall, a claim gets the tally of its cases' verdicts (none dropped) and the paper's reading,
"consistently": it holds when every testable case holds, is contradicted when any case is,
inconclusive otherwise, and not testable when no case is.

Claims (paper sections in brackets), D = difference in points of the metric:

(a) `high_vs_random_low` [5.2-5.3, Tables 4-5, Figure 2]: pruning the high-CCS heads lowers
    top-1 accuracy more than pruning as many random heads and more than pruning the low-CCS
    heads: D_random = mean over seeds of acc(random) - acc(high), D_low = acc(low) - acc(high).
    Cases: every model x dataset not flagged OOD.
(b) `concept_specific` [5.5, Figures 3-4]: for each of a dataset's concept pairs (target,
    unrelated), pruning the target's heads lowers accuracy more than pruning as many unrelated
    heads and more than as many random heads outside the target's group:
    D_unrelated = acc(`concept:U:vs:T`) - acc(`concept:T:vs:U`),
    D_random = mean over seeds of acc(`concept-random:T:vs:U`) - acc(`concept:T:vs:U`).
(c) `ood` [5.4, Table 6]: (a) on the datasets flagged `ood: true`.
(d) `video` [5.6, Figure 5]: (a) on text-to-video retrieval, per query: R@1 for the verdict
    (a hit when the caption's video ranks first), R@5 shown beside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from clipconcepts.report import effects as fx
from clipconcepts.report.effects import Effect
from clipconcepts.report.inputs import (
    ModelInfo,
    Outcomes,
    RunData,
    StrategySummary,
    majority_rows,
    read_prune_outcomes,
    read_video_outcomes,
)
from clipconcepts.report.tables import heads
from clipconcepts.report.verdicts import UNTESTABLE


@dataclass(frozen=True)
class ClaimSettings:
    """How the claims are judged (config `report.claims`)."""

    bootstrap: int = 2000  # paired bootstrap resamples
    level: float = 0.95  # confidence level of the intervals
    min_effect: float = 1.0  # percentage points a difference must reach to hold
    seed: int = 0  # the bootstrap's random seed
    min_seeds: int = 3  # random seeds a random arm needs
    enabled: bool = True  # False: the report leaves the claims out

    def __post_init__(self):
        if self.bootstrap < 100:
            raise ValueError(f"report.claims.bootstrap must be >= 100, got {self.bootstrap}")
        if not 0.5 <= self.level < 1:
            raise ValueError(f"report.claims.level must be in [0.5, 1), got {self.level}")
        if self.min_effect < 0:
            raise ValueError(f"report.claims.min_effect must be >= 0, got {self.min_effect}")


@dataclass(frozen=True)
class Case:
    """One test of a claim: a model on a dataset (and a concept pair for claim b)."""

    model: ModelInfo
    dataset: str
    verdict: str
    text: str  # the numbers and the comparisons, or why it is not testable
    numbers: dict[str, float | int | None] = field(default_factory=dict)
    pair: tuple[str, str] | None = None
    effects: tuple[Effect, ...] = ()  # the verdict's comparisons
    shown: tuple[Effect, ...] = ()  # shown beside them (claim d: R@5)
    why: str = ""  # the verdict's reason in a few words

    @property
    def short(self) -> str:
        """The comparisons in a few words (for the claims table), '' if not testable."""
        return "; ".join(f"{e.arm} {e.text()}" for e in self.effects)


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
    summary: str  # the tally, and why cases are not testable
    metric: str = "top-1 accuracy"

    @property
    def tally(self) -> dict[str, int]:
        return fx.tally([c.verdict for c in self.cases])


# ------------------------------------------------------------------------------- one case
def _f(x: float) -> str:
    return f"{x:.2f}"


def _ccs_range(frame: pl.DataFrame | None) -> str:
    """' (CCS of the analysed heads here: 2-3 over 24 heads)' from a ccs.parquet frame."""
    if frame is None:
        return ""
    rows, judge = majority_rows(frame)
    rows = rows.filter(pl.col("n_invalid") == 0) if judge else rows.clear()
    if rows.is_empty():
        return ""
    lo, hi = int(rows["ccs"].min()), int(rows["ccs"].max())
    span = str(lo) if lo == hi else f"{lo}–{hi}"
    return f" (CCS of the analysed heads here: {span}, over {heads(rows.height)})"


@dataclass(frozen=True)
class Arm:
    """One arm of a comparison: its label in the text, its strategy, and why it may be empty."""

    label: str
    strategy: str
    empty_reason: str
    seeded: bool = False  # a random arm: one set per seed


# (verdict, text, numbers, the verdict's effects, effects shown beside them, why)
Judged = tuple[str, str, dict[str, float | int | None], tuple[Effect, ...], tuple[Effect, ...], str]


def _nan(x: float | None) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def compare_arms(
    summaries: Mapping[str, StrategySummary] | None,
    outcomes: Outcomes | None,
    pruned: Arm,
    others: Sequence[Arm],
    settings: ClaimSettings,
    *,
    what: str,
    items: str,
    hint: str = "",
    shown: Outcomes | None = None,
) -> Judged:
    """(verdict, text, numbers, effects, shown effects, why) of `pruned` against `others`.

    `summaries`: the result file's per-strategy summaries (None: file missing); `outcomes`: its
    per-item 0/1 outcomes (None: items file missing); `what` names the results ("pruning"),
    `items` the unit ("images"); `hint` is appended to empty-set reasons.
    """

    def untestable(reason: str):
        return UNTESTABLE, reason, {}, (), (), reason

    if summaries is None:
        return untestable(f"no {what} results")
    arms = [pruned, *others]
    absent = [a.strategy for a in arms if a.strategy not in summaries]
    if absent:
        return untestable(f"no {', '.join(repr(s) for s in absent)} rows in the {what} results")
    empty = [a.empty_reason for a in arms if not a.seeded and summaries[a.strategy].is_empty]
    if not empty:  # a random arm is sized to another set: its emptiness follows from that one's
        empty = [a.empty_reason for a in arms if summaries[a.strategy].is_empty]
    if empty:
        return untestable("; ".join(dict.fromkeys(empty)) + hint)
    few = [a for a in arms if a.seeded and summaries[a.strategy].n_runs < settings.min_seeds]
    if few:
        counts = ", ".join(f"{a.label}: {summaries[a.strategy].n_runs}" for a in few)
        return untestable(
            f"fewer than {settings.min_seeds} random seeds ({counts}): an interval needs the "
            "seed-to-seed spread (prune.random_seeds, video.random_seeds)"
        )
    nan = [a.label for a in arms if _nan(summaries[a.strategy].top1_mean)]
    if nan:
        return untestable(f"accuracy is NaN for {', '.join(nan)} (no {items} were evaluated)")
    if outcomes is None:
        return untestable(f"no per-item results for the {what} file (rerun its job)")
    rows = {a.strategy: outcomes.arm(a.strategy) for a in arms}
    lacking = [s for s, r in rows.items() if r is None]
    if lacking:
        return untestable(
            f"the per-item results ({outcomes.path.name}) lack {', '.join(map(repr, lacking))}"
        )
    if outcomes.n_items == 0:
        return untestable(f"no {items} in the per-item results")

    def bootstrap(source: Outcomes) -> dict[str, Effect]:
        return fx.bootstrap_effects(
            source.arm(pruned.strategy)[0],
            {a.label: source.arm(a.strategy) for a in others},
            n_boot=settings.bootstrap,
            level=settings.level,
            seed=settings.seed,
        )

    found = bootstrap(outcomes)
    effects = tuple(found.values())
    verdict, why = fx.verdict(effects, settings.min_effect)
    extra = tuple(bootstrap(shown).values()) if shown is not None else ()
    numbers: dict[str, float | int | None] = {
        pruned.label: found[others[0].label].pruned_value,
        f"n_{pruned.label}": max(summaries[pruned.strategy].n_heads),
        "n_items": outcomes.n_items,
    }
    for a in others:
        e = found[a.label]
        numbers[a.label] = e.arm_value
        numbers[f"n_{a.label}"] = max(summaries[a.strategy].n_heads)
        numbers[f"d_{a.label}"] = e.estimate
        numbers[f"d_{a.label}_lower"] = e.lower
        numbers[f"d_{a.label}_upper"] = e.upper
        if a.seeded:
            numbers["n_seeds"] = e.n_seeds
            numbers[f"{a.label}_std"] = summaries[a.strategy].top1_std
        if e.mcnemar_p is not None:
            numbers[f"mcnemar_p_{a.label}"] = e.mcnemar_p
    original = summaries.get("original")
    if original is not None:
        numbers["original"] = original.top1_mean
    text = _case_text(summaries, pruned, others, found, extra, original, items)
    return verdict, text, numbers, effects, extra, why


def _case_text(summaries, pruned, others, found, extra, original, items) -> str:
    first = found[others[0].label]
    parts = [
        f"{pruned.label} {_f(first.pruned_value)} ({heads(max(summaries[pruned.strategy].n_heads))})"
    ]
    for a in others:
        e, s = found[a.label], summaries[a.strategy]
        spread = f" ± {_f(s.top1_std)} over {e.n_seeds} seeds" if a.seeded and s.top1_std else ""
        parts.append(f"{a.label} {_f(e.arm_value)}{spread} ({heads(max(s.n_heads))})")
    text = "; ".join(parts)
    if original is not None:
        text += f"; original {_f(original.top1_mean)}"
    level = f"{first.level:.0%}"
    diffs = []
    for a in others:
        e = found[a.label]
        diff = f"{a.label} − {pruned.label} = {e.text()} points"
        if e.mcnemar_p is not None:
            diff += f" (McNemar p = {e.mcnemar_p:.2g})"
        diffs.append(diff)
    text += f". Paired bootstrap over {first.n_items} {items}, {level} intervals: " + "; ".join(
        diffs
    )
    if extra:
        text += ". R@5: " + "; ".join(f"{e.arm} − {pruned.label} = {e.text()}" for e in extra)
    return text + "."


# ------------------------------------------------------------------------------- claims
HIGH = Arm("high", "high", "the high set is empty (no head has CCS = 5)")
RANDOM = Arm("random", "random", "the random sets are empty", seeded=True)
LOW = Arm("low", "low", "the low set is empty (no head has CCS ≤ 1)")


def _high_case(run, model, dataset, settings, video, outcomes_of) -> Case:
    if video:
        summaries = run.video.get((model.key, dataset))
        outcomes, shown = outcomes_of("video", model.key, dataset)
    else:
        summaries = run.prune.get((model.key, dataset))
        outcomes, shown = outcomes_of("prune", model.key, dataset)
    result = compare_arms(
        summaries,
        outcomes,
        HIGH,
        [RANDOM, LOW],
        settings,
        what="video retrieval" if video else "pruning",
        items="queries" if video else "images",
        hint=_ccs_range(run.ccs.get(model.key)),
        shown=shown,
    )
    verdict, text, numbers, effects, extra, why = result
    return Case(model, dataset, verdict, text, numbers, None, effects, extra, why)


def _concept_case(run, model, dataset, pair, settings, outcomes_of) -> Case:
    target, unrelated = pair
    group_hint = (
        f" (a pair is sized to its smaller group, so '{target}' or '{unrelated}' has no "
        "eligible head: see prune.concept_heads and the labels)"
    )
    outcomes, _ = outcomes_of("prune", model.key, dataset)
    verdict, text, numbers, effects, extra, why = compare_arms(
        run.prune.get((model.key, dataset)),
        outcomes,
        Arm(target, f"concept:{target}:vs:{unrelated}", "the concept sets are empty"),
        [
            Arm(unrelated, f"concept:{unrelated}:vs:{target}", "the concept sets are empty"),
            Arm(
                "random",
                f"concept-random:{target}:vs:{unrelated}",
                "the concept sets are empty",
                seeded=True,
            ),
        ],
        settings,
        what="pruning",
        items="images",
        hint=group_hint,
    )
    return Case(model, dataset, verdict, text, numbers, (target, unrelated), effects, extra, why)


def _summary(cases: Sequence[Case], unit: str, none_reason: str) -> tuple[str, str]:
    if not cases:
        return UNTESTABLE, none_reason
    counts = fx.tally([c.verdict for c in cases])
    words = ", ".join(f"{n} {v}" for v, n in counts.items())
    summary = f"{len(cases)} {unit}: {words}"
    reasons = list(dict.fromkeys(c.text for c in cases if c.verdict == UNTESTABLE))
    if reasons:
        summary += f" (not testable: {'; '.join(reasons)})"
    return fx.overall([c.verdict for c in cases]), summary


def outcome_reader(run: RunData) -> Callable[[str, str, str], tuple[Outcomes | None, ...]]:
    """`read(kind, model, dataset)` -> (verdict outcomes, shown outcomes), each file read once:
    pruning items (top-1) or video items (text-to-video R@1, and R@5 shown)."""
    cache: dict[tuple[str, str, str], tuple[Outcomes | None, Outcomes | None]] = {}

    def read(kind: str, model: str, dataset: str):
        key = (kind, model, dataset)
        if key not in cache:
            if kind == "prune":
                cache[key] = (read_prune_outcomes(run.layout.prune_items(model, dataset)), None)
            else:
                path = run.layout.video_items(model, dataset)
                cache[key] = (read_video_outcomes(path, 1), read_video_outcomes(path, 5))
        return cache[key]

    return read


def _rule(settings: ClaimSettings, arms: str, metric: str, items: str, unit: str) -> str:
    return (
        f"Per {unit}: a paired bootstrap over the {items} ({settings.bootstrap} resamples, "
        f"random seeds resampled too) gives a {settings.level:.0%} interval for {arms}, in "
        f"points of {metric}. Holds when every interval lies above 0 and every difference is "
        f"at least {settings.min_effect:g} points; contradicted when an interval lies below "
        "0; inconclusive otherwise (saturated: both arms at 100% or 0%); not testable when a "
        f"set is empty, fewer than {settings.min_seeds} random seeds ran, an accuracy is NaN or "
        "a result file is missing. Overall (the paper's 'consistently'): holds when every "
        "testable case holds; contradicted when any case is; the tally counts every case."
    )


def evaluate_claims(
    run: RunData,
    ood_datasets: Sequence[str] = (),
    concept_pairs: Mapping[str, Sequence[Sequence[str]]] | None = None,
    settings: ClaimSettings | None = None,
) -> list[Claim]:
    """The four claims (a-d) on `run`; see the module docstring for each verdict rule."""
    settings = settings or ClaimSettings()
    outcomes_of = outcome_reader(run)
    ood = [d for d in run.datasets if d in set(ood_datasets)]
    in_domain = [d for d in run.datasets if d not in set(ood)]
    high_arms = "random − high (mean over seeds) and low − high"
    claims = []

    def high_claim(key, letter, title, statement, source, datasets, unit, none, video=False):
        cases = [
            _high_case(run, m, d, settings, video, outcomes_of)
            for m in run.models
            for d in datasets
        ]
        verdict, summary = _summary(cases, f"{unit} cases", none)
        metric = "text-to-video R@1" if video else "top-1 accuracy"
        items = "queries (captions)" if video else "images"
        rule = _rule(settings, high_arms, metric, items, unit)
        if not video and letter == "a":
            rule += " Datasets flagged OOD are left to (c)."
        return Claim(key, letter, title, statement, source, rule, cases, verdict, summary, metric)

    claims.append(
        high_claim(
            "high_vs_random_low",
            "a",
            "High vs random vs low CCS",
            "Pruning the high-CCS heads (CCS = 5) lowers zero-shot accuracy more than pruning "
            "as many random heads and more than pruning the low-CCS heads (CCS ≤ 1).",
            "sections 5.2-5.3, Tables 4-5, Figure 2",
            in_domain,
            "model × dataset",
            "no in-domain dataset in this run" + (" (every dataset is OOD: see c)" if ood else ""),
        )
    )

    pairs = concept_pairs or {}
    cases = [
        _concept_case(run, m, d, (target, unrelated), settings, outcomes_of)
        for d in run.datasets
        for target, unrelated in pairs.get(d, [])
        for m in run.models
    ]
    verdict, summary = _summary(
        cases,
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
            _rule(
                settings,
                "unrelated − target and random − target (as many random heads, drawn outside "
                "the target's group, mean over seeds)",
                "top-1 accuracy",
                "images",
                "model × dataset × (target, unrelated) pair from prune.concept_pairs",
            ),
            cases,
            verdict,
            summary,
        )
    )

    claims.append(
        high_claim(
            "ood",
            "c",
            "Out-of-domain datasets",
            "On out-of-domain datasets, pruning the high-CCS heads lowers accuracy more than "
            "pruning random heads and more than pruning the low-CCS heads.",
            "section 5.4, Table 6",
            ood,
            "model × OOD dataset",
            "no dataset of this run is flagged ood: true (config datasets.<name>.ood)",
        )
    )

    video_sets = sorted({d for _, d in run.video})
    claims.append(
        high_claim(
            "video",
            "d",
            "Video retrieval",
            "In zero-shot video retrieval, pruning the high-CCS heads lowers retrieval "
            "performance more than pruning low-CCS or random heads.",
            "section 5.6, Figure 5",
            video_sets,
            "model × video dataset",
            "no video stage: the report was given no video retrieval results "
            f"({run.layout.video('<model>', '<dataset>')})",
            video=True,
        )
    )
    return claims
