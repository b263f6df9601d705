"""Paired effects of pruning with bootstrap intervals, and the four-level verdict of a case.

A claim about accuracies is a claim about samples: every comparison here is a difference of
two accuracies measured on the *same* items (images, or retrieval queries), so it is judged
by a paired bootstrap over those items, never by comparing two means.

`bootstrap_effects(pruned, arms)` takes the per-item outcomes (0/1: top-1 correct, or R@1 hit)
of the arm the claim says hurts most (`pruned`, e.g. high-CCS heads pruned) and of each arm it
is compared with (`arms`, each `[seeds, items]`: one row for a deterministic set such as the
low-CCS heads, one row per seed for random sets). For arm `A` with seeds `s = 1..S`:

    D_A = mean_s acc(A_s) - acc(pruned)      (percentage points; > 0: pruning `pruned` hurts more)

Two-stage bootstrap, `n_boot` replicates from one seeded generator:
1. images: one multinomial resample of the items per replicate, shared by every arm (paired);
2. seeds: for an arm with S > 1 rows, S seeds drawn with replacement per replicate, so the
   seed-to-seed spread of random sets widens the interval as it should.
The interval is the percentile interval at `level`. Outcomes are 0/1, so an item is one of
at most 2^R patterns over the R rows; resampling items equals drawing pattern counts from a
multinomial with the patterns' frequencies (`_patterns`), which makes 2,000 replicates over
50,000 items cost microseconds per pattern instead of 10^8 index draws. Beside each difference
of two single rows, an exact two-sided McNemar test on the discordant pairs.

Verdict of one case over its comparisons (`verdict`), with `min_effect` in points:
- holds: every interval lies above 0 and every estimate is at least `min_effect`;
- contradicted: some interval lies below 0 (the claimed arm hurts significantly less);
- inconclusive: anything else ("saturated" when both arms of a comparison sit at 100% or 0%).
Not testable (an empty set, a missing file, too few seeds) is decided by the caller, which
knows why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from clipconcepts.report.verdicts import CONTRADICTED, HOLDS, INCONCLUSIVE, UNTESTABLE

VERDICTS = (HOLDS, CONTRADICTED, INCONCLUSIVE, UNTESTABLE)


@dataclass(frozen=True)
class Effect:
    """One paired comparison: `arm` (mean over its seeds) minus `pruned`, in points."""

    arm: str
    estimate: float  # D, percentage points
    lower: float  # percentile interval at `level`
    upper: float
    level: float
    arm_value: float  # accuracy (%) of the arm, mean over its seeds
    pruned_value: float  # accuracy (%) of the pruned arm
    n_items: int
    n_seeds: int  # rows of the arm (1 for a deterministic set)
    mcnemar_p: float | None = None  # exact two-sided, single-row arms only
    discordant: tuple[int, int] | None = (
        None  # (arm right & pruned wrong, arm wrong & pruned right)
    )

    @property
    def saturated(self) -> bool:
        """Both arms at 100% (or both at 0%): no room for a difference."""
        both = (self.arm_value, self.pruned_value)
        return all(v >= 100.0 - 1e-9 for v in both) or all(v <= 1e-9 for v in both)

    def text(self) -> str:
        """'+11.00 [8.10, 13.90]' (points)."""
        return f"{self.estimate:+.2f} [{self.lower:+.2f}, {self.upper:+.2f}]"


def _patterns(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct 0/1 columns of `rows` [R, n] as `bits` [P, R] and their counts [P]."""
    packed = np.packbits(rows.astype(bool), axis=0)  # [ceil(R/8), n] uint8
    keys, counts = np.unique(packed.T, axis=0, return_counts=True)
    bits = np.unpackbits(keys, axis=1, count=rows.shape[0])  # [P, R]
    return bits.astype(np.float64), counts


def _as_rows(outcomes, name: str) -> np.ndarray:
    rows = np.asarray(outcomes)
    if rows.ndim == 1:
        rows = rows[None, :]
    if rows.ndim != 2:
        raise ValueError(
            f"outcomes of {name!r} must be [items] or [seeds, items], got {rows.shape}"
        )
    if rows.size and not np.isin(rows, (0, 1)).all():
        raise ValueError(f"outcomes of {name!r} must be 0/1 (correct or not) per item")
    return rows.astype(bool)


def mcnemar_exact(arm: np.ndarray, pruned: np.ndarray) -> tuple[float, tuple[int, int]]:
    """Exact two-sided McNemar p-value of paired 0/1 outcomes, and the discordant counts
    (arm right & pruned wrong, arm wrong & pruned right)."""
    arm, pruned = np.asarray(arm, bool), np.asarray(pruned, bool)
    b, c = int(np.sum(arm & ~pruned)), int(np.sum(~arm & pruned))
    m, k = b + c, min(b, c)
    if m == 0:
        return 1.0, (b, c)
    # log C(m, i) for i = 0..k by cumulated log ratios; P(X <= k) for X ~ Bin(m, 1/2)
    i = np.arange(1, k + 1, dtype=np.float64)
    log_comb = np.concatenate([[0.0], np.cumsum(np.log((m - i + 1) / i))])
    log_terms = log_comb - m * np.log(2.0)
    top = log_terms.max()
    tail = float(np.exp(top) * np.sum(np.exp(log_terms - top)))
    return min(1.0, 2.0 * tail), (b, c)


def bootstrap_effects(
    pruned,
    arms: Mapping[str, np.ndarray],
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Effect]:
    """`Effect` of each arm against `pruned` (see the module docstring), paired over items."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    base = _as_rows(pruned, "pruned")
    if base.shape[0] != 1:
        raise ValueError("the pruned arm must be one row of outcomes")
    n = base.shape[1]
    if n == 0:
        raise ValueError("no items: a paired bootstrap needs at least one")
    blocks = {name: _as_rows(rows, name) for name, rows in arms.items()}
    for name, rows in blocks.items():
        if rows.shape[1] != n or rows.shape[0] == 0:
            raise ValueError(
                f"arm {name!r} has outcomes {rows.shape} but the pruned arm has {n} items"
            )
    stacked = np.concatenate([base, *blocks.values()], axis=0)  # [R, n]
    bits, counts = _patterns(stacked)
    rng = np.random.default_rng(seed)
    resampled = rng.multinomial(n, counts / n, size=n_boot)  # [B, P] pattern counts
    acc = 100.0 * (resampled @ bits) / n  # [B, R] accuracy of every row per replicate
    observed = 100.0 * stacked.mean(axis=1)
    q = ((1 - level) / 2, 1 - (1 - level) / 2)
    out: dict[str, Effect] = {}
    start = 1
    for name, rows in blocks.items():
        s = rows.shape[0]
        cols = np.arange(start, start + s)
        start += s
        if s > 1:
            picks = cols[rng.integers(0, s, size=(n_boot, s))]  # seeds with replacement
            arm_boot = np.take_along_axis(acc, picks, axis=1).mean(axis=1)
        else:
            arm_boot = acc[:, cols[0]]
        diffs = arm_boot - acc[:, 0]
        lower, upper = np.quantile(diffs, q)
        arm_value = float(observed[cols].mean())
        p, discordant = (None, None)
        if s == 1:
            p, discordant = mcnemar_exact(rows[0], base[0])
        out[name] = Effect(
            arm=name,
            estimate=arm_value - float(observed[0]),
            lower=float(lower),
            upper=float(upper),
            level=level,
            arm_value=arm_value,
            pruned_value=float(observed[0]),
            n_items=n,
            n_seeds=s,
            mcnemar_p=p,
            discordant=discordant,
        )
    return out


def verdict(effects: Sequence[Effect], min_effect: float = 1.0) -> tuple[str, str]:
    """(holds | contradicted | inconclusive, a few words why) over a case's comparisons."""
    if not effects:
        raise ValueError("a verdict needs at least one comparison")
    below = [e for e in effects if e.upper < 0]
    if below:
        names = ", ".join(e.arm for e in below)
        return CONTRADICTED, f"interval below 0 against {names}"
    if all(e.lower > 0 and e.estimate >= min_effect for e in effects):
        return HOLDS, f"every interval above 0 and every effect ≥ {min_effect:g} points"
    saturated = [e.arm for e in effects if e.saturated]
    if saturated:
        return INCONCLUSIVE, "saturated: both arms at the same bound against " + ", ".join(
            saturated
        )
    weak = [e.arm for e in effects if e.lower <= 0]
    if weak:
        return INCONCLUSIVE, "interval includes 0 against " + ", ".join(weak)
    small = ", ".join(e.arm for e in effects if e.estimate < min_effect)
    return INCONCLUSIVE, f"effect below {min_effect:g} points against {small}"


def tally(verdicts: Sequence[str]) -> dict[str, int]:
    """Count of each of the four verdicts (all four keys, in `VERDICTS` order)."""
    return {v: sum(x == v for x in verdicts) for v in VERDICTS}


def overall(verdicts: Sequence[str]) -> str:
    """The paper's reading of a claim over its cases ("consistently"): holds when it holds on
    every testable case (none contradicted or inconclusive); contradicted when any case is;
    not testable when none is testable; inconclusive otherwise."""
    counts = tally(verdicts)
    if counts[CONTRADICTED]:
        return CONTRADICTED
    testable = len(verdicts) - counts[UNTESTABLE]
    if testable == 0:
        return UNTESTABLE
    return HOLDS if counts[HOLDS] == testable else INCONCLUSIVE
