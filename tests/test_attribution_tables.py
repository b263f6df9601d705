"""The attribution stage's tables on hand-made inputs: correlations, per-head table, deletion
summaries, unexpected reliance and the concept world's precision@k."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from clipconcepts.attribution.deletion import deletion_orders, summarise
from clipconcepts.attribution.reliance import group_of, relation, unexpected_reliance
from clipconcepts.attribution.schemas import (
    ABLATION,
    CORRELATIONS,
    DELETION,
    HEADS,
    RELIANCE,
    SCORES,
    TRUTH,
)
from clipconcepts.attribution.tables import (
    correlation,
    correlations,
    fast_correlation,
    head_table,
)
from clipconcepts.attribution.truth_precision import truth_table

POOL = [(1, 0), (1, 1), (2, 0), (2, 1)]


def test_correlation_hand_cases():
    assert correlation([1, 2, 3, 4], [10, 20, 30, 40]) == (
        pytest.approx(1.0),
        pytest.approx(1.0),
        4,
    )
    rho, tau, n = correlation([1, 2, 3, 4], [4, 3, 2, 1])
    assert (rho, tau, n) == (pytest.approx(-1.0), pytest.approx(-1.0), 4)
    # one swapped pair of four: rho = 1 - 6 * 2 / (4 * 15) = 0.8; tau = (5 - 1) / 6
    rho, tau, _ = correlation([1, 2, 3, 4], [1, 3, 2, 4])
    assert rho == pytest.approx(0.8) and tau == pytest.approx(2 / 3)
    # missing values are left out; constant or too short gives NaN
    assert correlation([1, np.nan, 3, 4], [1, 5, 3, 4])[2] == 3
    assert np.isnan(correlation([1, 1, 1], [1, 2, 3])[0])
    assert np.isnan(correlation([1], [2])[0])


def test_fast_correlation_equals_scipy():
    rng = np.random.default_rng(5)
    for n in (2, 3, 7, 40):
        for _ in range(20):
            x = rng.integers(0, 4, n).astype(float)  # many ties
            y = rng.standard_normal(n)
            if n > 3:
                x[rng.integers(0, n)] = np.nan
            np.testing.assert_allclose(fast_correlation(x, y), correlation(x, y), equal_nan=True)
            np.testing.assert_allclose(fast_correlation(y, y), correlation(y, y), equal_nan=True)
    assert np.isnan(fast_correlation(np.ones(5), np.arange(5.0))[0])


def _frames(n_images=6, seed=0):
    """Scores over 2 layers x 2 heads plus layer 0, and ablation over layers 1-2: AtP equals
    the zero-ablation effect, the direct effect is its negative."""
    rng = np.random.default_rng(seed)
    score_rows, ablation_rows = [], []
    for i in range(n_images):
        effects = rng.standard_normal(len(POOL))
        label = i % 2
        for layer, head in [(0, 0), (0, 1), *POOL]:
            e = effects[POOL.index((layer, head))] if (layer, head) in POOL else 0.0
            score_rows.append(
                (f"img{i}", label, label, 0.3, layer, head, e, e / 2, -e, 0.1, abs(e))
            )
            if (layer, head) in POOL:
                drop = e > 0.5
                ablation_rows.append(
                    (f"img{i}", label, label, 0.3, True, layer, head, e, e / 3, not drop, True)
                )
    scores = pl.DataFrame(score_rows, schema=list(SCORES), orient="row").cast(SCORES)
    ablation = pl.DataFrame(ablation_rows, schema=list(ABLATION), orient="row").cast(ABLATION)
    ccs = pl.DataFrame(
        {
            "layer": [1, 1, 2, 2],
            "head": [0, 1, 0, 1],
            "label": ["color", "texture", "position", "stamp"],
            "judge": ["majority"] * 4,
            "ccs": [5, 3, 1, 0],
        }
    )
    return scores, ablation, ccs


def test_head_table_means_and_ranks():
    scores, ablation, ccs = _frames()
    table = head_table(scores, ablation, ccs)
    assert table.schema == pl.Schema(HEADS) and len(table) == 6
    layer0 = table.filter(pl.col("layer") == 0)
    assert layer0["true_zero"].null_count() == 2 and layer0["ccs"].null_count() == 2
    assert layer0["rank_true_zero"].null_count() == 2
    row = table.filter((pl.col("layer") == 1) & (pl.col("head") == 0))
    expected = scores.filter((pl.col("layer") == 1) & (pl.col("head") == 0))["atp_zero"].mean()
    assert row["atp_zero"][0] == pytest.approx(expected)
    assert row["true_zero"][0] == pytest.approx(expected)
    assert row["label"][0] == "color" and row["rank_ccs"][0] == 1
    best = table.sort("atp_zero", descending=True)
    assert best["rank_atp_zero"].to_list()[:2] == [1, 2]
    drops = ablation.group_by("layer", "head").agg(drop=100 * (1 - pl.col("correct_zero").mean()))
    joined = table.join(drops, on=["layer", "head"])
    np.testing.assert_allclose(joined["acc_drop_zero"], joined["drop"])


def test_correlations_of_a_perfect_and_a_reversed_view():
    scores, ablation, ccs = _frames()
    heads = head_table(scores, ablation, ccs)
    frame = correlations(scores, ablation, heads, seed=0)
    assert frame.schema == pl.Schema(CORRELATIONS)

    def value(level, x, y, column="spearman"):
        row = frame.filter((pl.col("level") == level) & (pl.col("x") == x) & (pl.col("y") == y))
        assert len(row) == 1
        return row[column][0]

    for level in ("head", "image"):
        assert value(level, "atp_zero", "true_zero") == pytest.approx(1.0)
        assert value(level, "atp_zero", "true_zero", "kendall") == pytest.approx(1.0)
        assert value(level, "direct", "true_zero") == pytest.approx(-1.0)
    # head level: every ordered pair, on the heads both views cover
    assert value("head", "true_zero", "atp_zero") == pytest.approx(1.0)
    assert frame.filter((pl.col("level") == "head") & (pl.col("x") == "ccs"))["n_heads"].max() == 4
    assert value("head", "atp_zero", "energy", "n_heads") == 6
    assert value("image", "atp_zero", "true_zero", "n_images") == 6
    # a view constant over heads (the Logit Lens here) correlates with nothing: null
    assert value("image", "logit_lens", "true_zero") is None
    assert value("head", "logit_lens", "true_zero") is None


def test_deletion_summary_area_and_error_bars():
    ids = [f"img{i}" for i in range(4)]
    rows = []
    for i, image_id in enumerate(ids):
        for step, y in enumerate([10.0 + i, 5.0 + i, 0.0 + i]):
            rows.append((image_id, "atp", step, y))
    points = pl.DataFrame(rows, schema=["image_id", "method", "step", "y100"], orient="row")
    table = summarise(points, ids, subsets=2)
    assert table.schema == pl.Schema(DELETION)
    assert table["step"].to_list() == [0, 1, 2]
    assert table["y100"].to_list() == pytest.approx([11.5, 6.5, 1.5])
    # per-image areas 5, 6, 7, 8; subsets {0, 2} and {1, 3}: means 6 and 7, std 0.5, / sqrt(2)
    assert table["area"][0] == pytest.approx(6.5)
    assert table["area_err"][0] == pytest.approx(0.5 / np.sqrt(2))
    # one subset only: no error bar
    assert np.isnan(summarise(points, ids, subsets=1)["area_err"][0])


def test_deletion_orders_by_signed_score():
    scores, ablation, _ = _frames(n_images=2)
    ids = ["img0", "img1"]
    orders = deletion_orders(ids, POOL, scores, ablation, {POOL[2]: 5.0}, seed=1)
    for image_id in ids:
        values = scores.filter(pl.col("image_id") == image_id)
        for method, column in (("atp", "atp_zero"), ("direct", "direct"), ("true", "atp_zero")):
            got = [
                values.filter((pl.col("layer") == POOL[i][0]) & (pl.col("head") == POOL[i][1]))[
                    column
                ][0]
                for i in orders[method][image_id]
            ]
            assert got == sorted(got, reverse=True), method
        assert orders["ccs"][image_id][0] == 2  # the only head with a CCS comes first
        assert sorted(orders["random"][image_id]) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="unknown deletion methods"):
        deletion_orders(ids, POOL, scores, ablation, {}, methods=["logit"])


DEMO_GROUPS = {g: [g] for g in ("color", "position", "stamp", "texture")}
PAPER_GROUPS = {
    "locations": ["location", "country", "city", "place", "landmark", "geograph"],
    "animals": ["animal", "bird", "dog", "cat"],
    "objects": ["object", "item", "tool", "vehicle"],
}


def test_groups_and_relations():
    from clipconcepts.conceptworld.lexicon import conceptworld_lexicon
    from clipconcepts.textbank import default_lexicon

    world = conceptworld_lexicon()
    assert group_of("red", DEMO_GROUPS, world) == "color"
    assert group_of("mars", DEMO_GROUPS, world) == "stamp"
    assert group_of("black", DEMO_GROUPS, world) is None  # the backdrop colour is never named
    assert group_of("top left", DEMO_GROUPS, world) == "position"
    assert group_of("texture", DEMO_GROUPS, world) == "texture"
    assert group_of("red", DEMO_GROUPS) is None  # no keyword, no lexicon
    lexicon = default_lexicon()
    assert group_of("golden retriever", PAPER_GROUPS, lexicon) == "animals"
    assert group_of("Geographic locations", PAPER_GROUPS, lexicon) == "locations"
    assert group_of("airplane", PAPER_GROUPS, lexicon) == "objects"  # vehicles -> objects
    assert relation("Geographic locations", "locations", "golden retriever", "animals") == (
        "unrelated"
    )
    assert relation("Dog breeds", "animals", "golden retriever", "animals") == "related"
    assert relation("Numbers", None, "golden retriever", "animals") == "unknown"
    assert relation("Red things", None, "red", None) == "related"  # shares a word


def test_unexpected_reliance_lists_top_heads_per_class():
    from clipconcepts.conceptworld.lexicon import conceptworld_lexicon

    scores, ablation, ccs = _frames(n_images=8, seed=2)
    heads = head_table(scores, ablation, ccs)
    frame = unexpected_reliance(
        scores, ablation, heads, ["red", "striped"], DEMO_GROUPS, conceptworld_lexicon(), top_k=2
    )
    assert frame.schema == pl.Schema(RELIANCE)
    assert set(frame["classname"]) <= {"red", "striped"}
    assert frame.group_by("target").len()["len"].max() <= 2
    assert (frame["atp"] > 0).all() and frame["label"].null_count() == 0
    for row in frame.iter_rows(named=True):
        expected = {"red": "color", "striped": "texture"}[row["classname"]]
        assert row["class_group"] == expected
        assert row["unexpected"] == (row["label_group"] != expected)
    # ranks follow mean AtP within a class
    for _, part in frame.group_by("target"):
        assert part.sort("rank")["atp"].to_list() == sorted(part["atp"], reverse=True)


def test_truth_precision_at_k():
    scores, ablation, ccs = _frames()
    heads = head_table(scores, ablation, ccs)
    # the truth: the two heads with the largest true effect write 'color' most
    top2 = heads.sort("true_zero", descending=True, nulls_last=True).head(2)
    truth_rows = []
    for layer, head in [(0, 0), (0, 1), *POOL]:
        is_color = (layer, head) in set(top2.select("layer", "head").rows())
        for family in ("color", "texture"):
            top = is_color == (family == "color")
            truth_rows.append((layer, head, family, float(top), float(top), top))
    truth = pl.DataFrame(
        truth_rows, schema=["layer", "head", "family", "score", "share", "is_top"], orient="row"
    )
    frame = truth_table(heads, truth, "color")
    assert frame.schema == pl.Schema(TRUTH)
    assert frame["n_pool"].unique().to_list() == [4] and frame["n_truth"][0] == 2
    assert sorted(set(frame["k"])) == [1, 2, 3]

    def precision(view, k):
        return frame.filter((pl.col("view") == view) & (pl.col("k") == k))["precision"][0]

    assert precision("true_zero", 2) == 1.0 and precision("atp_zero", 2) == 1.0
    assert precision("direct", 2) == 0.0  # the reverse order
    assert precision("atp_zero", 3) == pytest.approx(2 / 3)
    row = frame.filter((pl.col("view") == "atp_zero") & (pl.col("k") == 2))
    assert row["spearman_true_zero"][0] == pytest.approx(1.0)
    assert sorted(row["top_heads"][0]) == sorted(row["truth_heads"][0])
    with pytest.raises(ValueError, match="no family"):
        truth_table(heads, truth, "shape")
