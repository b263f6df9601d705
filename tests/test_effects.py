"""The claims' statistics (`report.effects`): the paired bootstrap against a plain loop and
an index bootstrap, its calibration by simulation, the exact McNemar test, the verdict rule."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from clipconcepts.report.effects import (
    Effect,
    _patterns,
    bootstrap_effects,
    mcnemar_exact,
    overall,
    tally,
    verdict,
)
from clipconcepts.report.verdicts import CONTRADICTED, HOLDS, INCONCLUSIVE, UNTESTABLE


def _arms(rng, n=60, p=(0.5, 0.6, 0.55, 0.65, 0.7)):
    rows = rng.random((len(p), n)) < np.asarray(p)[:, None]
    return rows[0], {"low": rows[1], "random": rows[2:]}


def test_vectorised_bootstrap_equals_a_plain_loop():
    """Same generator, same draws: per replicate, the explicit resample of items (each pattern's
    items repeated as drawn) and of seeds, accuracies summed item by item in Python."""
    rng = np.random.default_rng(3)
    pruned, arms = _arms(rng)
    n_boot, seed = 300, 11
    got = bootstrap_effects(pruned, arms, n_boot=n_boot, level=0.9, seed=seed)

    stacked = np.concatenate([pruned[None], arms["low"][None], arms["random"]])
    bits, counts = _patterns(stacked)
    members = [
        [i for i in range(stacked.shape[1]) if (stacked[:, i] == bits[p]).all()]
        for p in range(len(counts))
    ]
    assert [len(m) for m in members] == counts.tolist()  # the patterns partition the items
    loop = np.random.default_rng(seed)
    draws = loop.multinomial(stacked.shape[1], counts / stacked.shape[1], size=n_boot)
    seed_draws = loop.integers(0, 3, size=(n_boot, 3))
    diffs = {"low": [], "random": []}
    for b in range(n_boot):
        sample = [item for p, c in enumerate(draws[b]) for item in [members[p][0]] * int(c)]
        acc = [100.0 * sum(bool(stacked[r, i]) for i in sample) / len(sample) for r in range(5)]
        diffs["low"].append(acc[1] - acc[0])
        randoms = [acc[2 + int(s)] for s in seed_draws[b]]
        diffs["random"].append(sum(randoms) / 3 - acc[0])
    for arm in ("low", "random"):
        lower, upper = np.quantile(diffs[arm], (0.05, 0.95))
        assert got[arm].lower == pytest.approx(lower, abs=1e-9)
        assert got[arm].upper == pytest.approx(upper, abs=1e-9)
    assert got["low"].estimate == pytest.approx(100 * (arms["low"].mean() - pruned.mean()))
    assert got["random"].n_seeds == 3 and got["low"].n_seeds == 1


def test_pattern_bootstrap_matches_an_index_bootstrap():
    """Resampling pattern counts is resampling items: the interval of an index bootstrap (other
    draws) agrees within Monte-Carlo error."""
    rng = np.random.default_rng(5)
    pruned, arms = _arms(rng, n=400)
    got = bootstrap_effects(pruned, {"low": arms["low"]}, n_boot=4000, seed=1)["low"]
    index = np.random.default_rng(2).integers(0, 400, size=(4000, 400))
    diffs = 100 * (arms["low"][index].mean(1) - pruned[index].mean(1))
    lower, upper = np.quantile(diffs, (0.025, 0.975))
    assert got.lower == pytest.approx(lower, abs=0.8)
    assert got.upper == pytest.approx(upper, abs=0.8)


def test_calibration_under_the_null_and_with_a_gap():
    """400 simulated cases. Null (both arms from one Bernoulli): 'holds' in at most 5% plus
    binomial slack. True gap of 10 points: the interval covers it in at least 93%."""
    rng = np.random.default_rng(0)
    n_sim, n = 400, 300
    holds = covered = 0
    for k in range(n_sim):
        a, b = rng.random(n) < 0.7, rng.random(n) < 0.7
        e = bootstrap_effects(a, {"other": b}, n_boot=1000, seed=k)["other"]
        holds += verdict([e], 1.0)[0] == HOLDS
        pruned, other = rng.random(n) < 0.6, rng.random(n) < 0.7
        e = bootstrap_effects(pruned, {"other": other}, n_boot=1000, seed=k)["other"]
        covered += e.lower <= 10.0 <= e.upper
    slack = 2 * np.sqrt(0.05 * 0.95 / n_sim)
    assert holds / n_sim <= 0.05 + slack
    assert covered / n_sim >= 0.93


def test_mcnemar_exact_equals_scipy():
    rng = np.random.default_rng(4)
    for n, p in ((30, 0.5), (200, 0.6), (2000, 0.52)):
        a, b = rng.random(n) < 0.5, rng.random(n) < p
        got, (x, y) = mcnemar_exact(a, b)
        assert x == int((a & ~b).sum()) and y == int((~a & b).sum())
        assert got == pytest.approx(binomtest(x, x + y, 0.5).pvalue, rel=1e-9)
    assert mcnemar_exact(np.ones(5, bool), np.ones(5, bool))[0] == 1.0


def _effect(estimate, lower, upper, arm_value=50.0, pruned_value=50.0):
    return Effect("x", estimate, lower, upper, 0.95, arm_value, pruned_value, 100, 1)


@pytest.mark.parametrize(
    ("effects", "expected", "why"),
    [
        ([_effect(5, 2, 8), _effect(3, 1, 5)], HOLDS, "every interval above 0"),
        ([_effect(5, 2, 8), _effect(-3, -5, -1)], CONTRADICTED, "below 0"),
        ([_effect(5, 2, 8), _effect(1, -1, 3)], INCONCLUSIVE, "includes 0"),
        ([_effect(0.5, 0.1, 0.9)], INCONCLUSIVE, "effect below 1 points"),
        ([_effect(0, 0, 0, 100.0, 100.0)], INCONCLUSIVE, "saturated"),
    ],
)
def test_verdict_rule(effects, expected, why):
    got, text = verdict(effects, min_effect=1.0)
    assert got == expected and why in text


def test_overall_and_tally():
    assert overall([HOLDS, HOLDS, UNTESTABLE]) == HOLDS
    assert overall([HOLDS, INCONCLUSIVE]) == INCONCLUSIVE
    assert overall([HOLDS, CONTRADICTED, INCONCLUSIVE]) == CONTRADICTED
    assert overall([UNTESTABLE]) == overall([]) == UNTESTABLE
    assert tally([HOLDS, UNTESTABLE, HOLDS]) == {
        HOLDS: 2,
        CONTRADICTED: 0,
        INCONCLUSIVE: 0,
        UNTESTABLE: 1,
    }


def test_bad_inputs_name_the_arm():
    with pytest.raises(ValueError, match="arm 'low' has outcomes"):
        bootstrap_effects(np.ones(5), {"low": np.ones(4)})
    with pytest.raises(ValueError, match="must be 0/1"):
        bootstrap_effects(np.ones(5), {"low": np.full(5, 0.5)})
    with pytest.raises(ValueError, match="no items"):
        bootstrap_effects(np.ones(0), {"low": np.ones(0)})
