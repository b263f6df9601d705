"""Benchmark: the claims' paired bootstrap on one large dataset, against a plain index bootstrap.

One dataset of N images (default 50,000, ImageNet val's size) with 12 prune sets, as the report
reads them from `{dataset}.items.parquet`: original, high, low, 3 random seeds, a concept pair
(target, unrelated) and its 3 random seeds, and one manual set. The report's work for this
dataset is two cases: claim (a) (high vs random and low) and claim (b) (target vs unrelated and
random), 2,000 resamples each, seeds resampled too. Timed: `bootstrap_effects` for both cases
(pattern counts drawn from a multinomial), and the plain method (2,000 x N item indices drawn,
each arm's accuracy gathered), on the same outcomes. Checks the two intervals agree (within
Monte-Carlo error), prints `ratio R` = plain time / vectorised time and `goal: vectorised < 1 s`.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from clipconcepts.report.effects import bootstrap_effects


def plain_bootstrap(pruned, arms, n_boot, seed):
    """Index resampling, one replicate at a time (seeds resampled for multi-row arms)."""
    rng = np.random.default_rng(seed)
    n = pruned.size
    diffs = {name: np.empty(n_boot) for name in arms}
    for b in range(n_boot):
        idx = rng.integers(0, n, size=n)
        base = pruned[idx].mean()
        for name, rows in arms.items():
            seeds = rng.integers(0, rows.shape[0], size=rows.shape[0])
            diffs[name][b] = 100 * (rows[seeds][:, idx].mean() - base)
    return {name: np.quantile(d, (0.025, 0.975)) for name, d in diffs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--plain-bootstrap", type=int, default=200, help="replicates timed")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.images
    rates = {
        "original": 0.70,
        "high": 0.55,
        "low": 0.68,
        "random": [0.64, 0.66, 0.65],
        "concept:t:vs:u": 0.60,
        "concept:u:vs:t": 0.66,
        "concept-random:t:vs:u": [0.65, 0.64, 0.66],
        "manual:x": 0.62,
    }
    rows = {k: rng.random((len(np.atleast_1d(v)), n)) < np.atleast_1d(v)[:, None]
            for k, v in rates.items()}  # fmt: skip
    assert sum(r.shape[0] for r in rows.values()) == 12
    cases = [
        (rows["high"][0], {"random": rows["random"], "low": rows["low"]}),
        (
            rows["concept:t:vs:u"][0],
            {"unrelated": rows["concept:u:vs:t"], "random": rows["concept-random:t:vs:u"]},
        ),
    ]
    start = time.perf_counter()
    fast = [bootstrap_effects(p, arms, n_boot=args.bootstrap, seed=1) for p, arms in cases]
    vectorised = time.perf_counter() - start
    start = time.perf_counter()
    plain = [plain_bootstrap(p, arms, args.plain_bootstrap, 2) for p, arms in cases]
    per_replicate = (time.perf_counter() - start) / args.plain_bootstrap
    plain_time = per_replicate * args.bootstrap  # the plain method's time for as many replicates
    for effects, intervals in zip(fast, plain, strict=True):
        for name, effect in effects.items():
            lo, hi = intervals[name]
            print(
                f"{name:>10}: vectorised [{effect.lower:+.2f}, {effect.upper:+.2f}]  "
                f"plain ({args.plain_bootstrap} replicates) [{lo:+.2f}, {hi:+.2f}]"
            )
            assert abs(effect.lower - lo) < 0.5 and abs(effect.upper - hi) < 0.5
    print(f"{n} images x 12 prune sets, 2 cases x {args.bootstrap} resamples")
    print(f"vectorised {vectorised:.3f} s; plain (extrapolated) {plain_time:.1f} s")
    print(f"ratio {plain_time / vectorised:.0f} goal: vectorised < 1 s -> {vectorised < 1.0}")


if __name__ == "__main__":
    main()
