"""The report's claims section (verdicts computed from synthetic prune/ccs Parquet files), the
LLM labels vs the concept world's ground truth, and the CCS@K figure's title fitting its canvas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from clipconcepts.ccs import ccs_at_k
from clipconcepts.cli import build_parser
from clipconcepts.evaluate.prune import RESULT_SCHEMA
from clipconcepts.report import ReportInputError, build_report, load_paper_values
from clipconcepts.report.claims import ClaimSettings, evaluate_claims
from clipconcepts.report.figures import ccs_at_k_figure
from clipconcepts.report.inputs import COLUMNS, ModelInfo, gather_run
from clipconcepts.report.label_truth import NONE, SEVERAL, families_named, label_truth
from clipconcepts.report.verdicts import CONTRADICTED, HOLDS, INCONCLUSIVE, UNTESTABLE
from clipconcepts.schemas import PRUNE_ITEMS, VIDEO_ITEMS
from test_report import Node, parse

MODEL = "cw"
MODELS = {MODEL: {"arch": "conceptworld", "pretrained": None, "display": "CW"}}
INFOS = [ModelInfo(MODEL, "conceptworld", None, "CW")]
FAMILIES = ["color", "shape", "position", "size", "background"]


# ------------------------------------------------------------------------------- synthetic files
def write_prune(
    run: Path,
    dataset: str,
    rows: list[tuple[str, int, int, float]],
    model=MODEL,
    n: int = 500,
    items: bool = True,
    seed: int = 0,
):
    """A prune file from (strategy, seed, n_heads, top1) rows and, with `items`, its per-image
    outcomes: round(top1 * n / 100) correct images per set at random positions (seeded), so
    the arms are paired on the same n images with independent errors."""
    folder = run / model / "prune"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    correct = []
    for _, _, _, top1 in rows:
        hits = np.zeros(n, dtype=bool)
        if not np.isnan(top1):
            hits[rng.permutation(n)[: round(top1 * n / 100)]] = True
        correct.append(hits)
    frame = pl.DataFrame(
        {
            "strategy": [r[0] for r in rows],
            "seed": [r[1] for r in rows],
            "heads": [[f"L3.H{i}" for i in range(r[2])] for r in rows],
            "n_heads": [r[2] for r in rows],
            "top1": [
                r[3] if np.isnan(r[3]) else 100.0 * c.mean()
                for r, c in zip(rows, correct, strict=True)
            ],
            "top5": [min(100.0, r[3] + 5) for r in rows],
            "n_images": [n] * len(rows),
        },
        schema=RESULT_SCHEMA,
    )
    path = folder / f"{dataset}.parquet"
    frame.write_parquet(path)
    if items:
        outcome = pl.DataFrame(
            {
                "image_id": [f"img{i}" for i in range(n)] * len(rows),
                "label": [0] * (n * len(rows)),
                "strategy": [r[0] for r in rows for _ in range(n)],
                "seed": [r[1] for r in rows for _ in range(n)],
                "predicted": [0] * (n * len(rows)),
                "correct_top1": np.concatenate(correct) if rows else [],
                "correct_top5": np.concatenate(correct) if rows else [],
                "margin": [0.0] * (n * len(rows)),
            },
            schema=PRUNE_ITEMS,
        )
        outcome.write_parquet(folder / f"{dataset}.items.parquet")
    return path


def base_rows(high=60.0, low=75.0, randoms=(70.0, 72.0, 71.0), n_high=2, n_low=3):
    rows = [("original", 0, 0, 80.0), ("high", 0, n_high, high), ("low", 0, n_low, low)]
    rows += [("random", s, n_high, v) for s, v in enumerate(randoms)]
    return rows


def write_ccs(run: Path, scores: list[int], model=MODEL) -> None:
    """A ccs.parquet (majority judge) with one head per score, layer 3."""
    rows = [
        {
            "layer": 3,
            "head": h,
            "label": "color",
            "judge": "majority",
            "ccs": s,
            "n_invalid": 0,
            "verdicts": [i < s for i in range(5)],
            "texts": [f"t{i}" for i in range(5)],
        }
        for h, s in enumerate(scores)
    ]
    schema = COLUMNS["ccs"]
    frame = pl.DataFrame(rows, schema=schema)
    (run / model).mkdir(parents=True, exist_ok=True)
    frame.write_parquet(run / model / "ccs.parquet")
    ccs_at_k(frame).write_parquet(run / model / "ccs_at_k.parquet")


def claims_of(run: Path, datasets, **kwargs):
    data = gather_run(run, INFOS, list(datasets), kwargs.pop("video", ()))
    settings = ClaimSettings(**kwargs.pop("settings", {}))
    return {c.letter: c for c in evaluate_claims(data, settings=settings, **kwargs)}


# ------------------------------------------------------------------------------- claim (a)
@pytest.mark.parametrize(
    ("rows", "verdict", "words"),
    [
        (base_rows(), HOLDS, ["random − high = +11.", "low − high = +15.00"]),
        # 10 points below both on 500 images: holds
        (base_rows(high=61.0, randoms=(71.0, 71.0, 71.0), low=71.0), HOLDS, ["+10.00"]),
        # a 0.5-point gap on 500 images: inconclusive (the interval includes 0)
        (
            base_rows(high=70.0, randoms=(70.4, 70.6, 70.5), low=70.6),
            INCONCLUSIVE,
            ["interval includes 0"],
        ),
        # reversed: pruning the high heads hurts less
        (base_rows(high=80.0, randoms=(70.0, 70.0, 70.0), low=70.0), CONTRADICTED, ["below 0"]),
        # both arms at 100%: saturated, not "does not hold"
        (
            base_rows(high=100.0, randoms=(100.0, 100.0, 100.0), low=100.0),
            INCONCLUSIVE,
            ["saturated"],
        ),
    ],
)
def test_high_vs_random_low_verdict(tmp_path, rows, verdict, words):
    write_prune(tmp_path, "d1", rows)
    claim = claims_of(tmp_path, ["d1"])["a"]
    (case,) = claim.cases
    assert case.verdict == verdict, case.text
    for w in words:
        assert w in case.text + " " + case.why
    assert claim.verdict == verdict
    assert case.numbers["n_seeds"] == 3 and case.numbers["n_items"] == 500
    (low,) = [e for e in case.effects if e.arm == "low"]
    assert low.mcnemar_p is not None and 0 <= low.mcnemar_p <= 1


def test_min_effect_turns_a_small_significant_difference_inconclusive(tmp_path):
    # 3 points on 5,000 images: clearly above 0, below a 5-point minimum effect
    rows = base_rows(high=70.0, randoms=(73.0, 73.0, 73.0), low=73.0)
    write_prune(tmp_path, "d1", rows, n=5000)
    assert claims_of(tmp_path, ["d1"])["a"].verdict == HOLDS
    claim = claims_of(tmp_path, ["d1"], settings={"min_effect": 5.0})["a"]
    assert claim.verdict == INCONCLUSIVE and "effect below 5 points" in claim.cases[0].why


def test_seed_spread_widens_the_interval(tmp_path):
    """Random seeds 60 / 70 / 80 against high 68 on 20,000 images: the images alone would make
    +2 points significant; resampling the three seeds does not."""
    rows = base_rows(high=68.0, randoms=(60.0, 70.0, 80.0), low=90.0)
    write_prune(tmp_path, "d1", rows, n=20000)
    (case,) = claims_of(tmp_path, ["d1"])["a"].cases
    (rnd,) = [e for e in case.effects if e.arm == "random"]
    assert rnd.estimate == pytest.approx(2.0, abs=0.01)
    assert rnd.lower < 0 < rnd.upper and rnd.upper - rnd.lower > 10
    assert case.verdict == INCONCLUSIVE


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        (base_rows(n_high=0, high=80.0), "the high set is empty (no head has CCS = 5)"),
        (base_rows(n_low=0, low=80.0), "the low set is empty (no head has CCS ≤ 1)"),
        ([r for r in base_rows() if r[0] != "random"], "no 'random' rows"),
        (base_rows(randoms=(70.0, 72.0)), "fewer than 3 random seeds (random: 2)"),
        (base_rows(high=float("nan")), "accuracy is NaN for high"),
    ],
)
def test_high_vs_random_low_not_testable_says_why(tmp_path, rows, reason):
    write_prune(tmp_path, "d1", rows)
    write_ccs(tmp_path, [2, 3, 3])
    claim = claims_of(tmp_path, ["d1"])["a"]
    assert claim.verdict == UNTESTABLE and claim.cases[0].verdict == UNTESTABLE
    assert reason in claim.cases[0].text and reason in claim.summary
    if "empty" in reason:  # the CCS file says why the set is empty
        assert "CCS of the analysed heads here: 2–3, over 3 heads" in claim.cases[0].text


def test_missing_items_or_strategy_in_items_is_not_testable(tmp_path):
    write_prune(tmp_path, "d1", base_rows(), items=False)
    (case,) = claims_of(tmp_path, ["d1"])["a"].cases
    assert case.verdict == UNTESTABLE and "no per-item results" in case.text
    write_prune(tmp_path, "d2", base_rows())
    items = tmp_path / MODEL / "prune" / "d2.items.parquet"
    pl.read_parquet(items).filter(pl.col("strategy") != "low").write_parquet(items)
    (case,) = claims_of(tmp_path, ["d2"])["a"].cases
    assert case.verdict == UNTESTABLE and "lack 'low'" in case.text


def test_items_of_different_images_are_refused(tmp_path):
    write_prune(tmp_path, "d1", base_rows())
    items = tmp_path / MODEL / "prune" / "d1.items.parquet"
    frame = pl.read_parquet(items)
    shifted = frame.with_columns(
        pl.when(pl.col("strategy") == "low")
        .then(pl.col("image_id") + "x")
        .otherwise(pl.col("image_id"))
        .alias("image_id")
    )
    shifted.write_parquet(items)
    with pytest.raises(ReportInputError, match=r"set low \(seed 0\) lists other items"):
        claims_of(tmp_path, ["d1"])


def test_overall_is_the_tally_and_the_papers_reading(tmp_path):
    write_prune(tmp_path, "d1", base_rows())
    claim = claims_of(tmp_path, ["d1", "d2"])["a"]  # d2: no file
    assert [c.verdict for c in claim.cases] == [HOLDS, UNTESTABLE]
    assert claim.cases[1].text == "no pruning results"
    assert claim.verdict == HOLDS  # holds on every testable case ...
    assert claim.tally == {HOLDS: 1, CONTRADICTED: 0, INCONCLUSIVE: 0, UNTESTABLE: 1}
    assert claim.summary.startswith(  # ... and the tally counts the untestable one
        "2 model × dataset cases: 1 holds, 0 contradicted, 0 inconclusive, 1 not testable"
    )
    write_prune(tmp_path, "d3", base_rows(high=70.5))
    assert claims_of(tmp_path, ["d1", "d3"])["a"].verdict == INCONCLUSIVE
    write_prune(tmp_path, "d4", base_rows(high=85.0))
    assert claims_of(tmp_path, ["d1", "d3", "d4"])["a"].verdict == CONTRADICTED
    assert claims_of(tmp_path, ["d2"])["a"].verdict == UNTESTABLE


def test_claim_settings_are_checked():
    with pytest.raises(ValueError, match="report.claims.level"):
        ClaimSettings(level=1.0)
    with pytest.raises(ValueError, match="report.claims.bootstrap"):
        ClaimSettings(bootstrap=10)
    with pytest.raises(ValueError, match="report.claims.min_effect"):
        ClaimSettings(min_effect=-1)


# ------------------------------------------------------------------------------- claim (b)
def concept_rows(target: float, unrelated: float, n: int = 2, randoms=(75.0, 76.0, 77.0)):
    return [
        ("original", 0, 0, 80.0),
        ("concept:color:vs:shape", 0, n, target),
        ("concept:shape:vs:color", 0, n, unrelated),
        *[("concept-random:color:vs:shape", s, n, v) for s, v in enumerate(randoms)],
    ]


@pytest.mark.parametrize(
    ("rows", "verdict", "words"),
    [
        (concept_rows(60.0, 78.0), HOLDS, ["color 60.00 (2 heads); shape 78.00 (2 heads)"]),
        (concept_rows(79.0, 78.0), INCONCLUSIVE, ["shape − color = -1.00"]),
        (concept_rows(60.0, 78.0, randoms=(59.0, 60.0, 61.0)), INCONCLUSIVE, ["random − color"]),
        (concept_rows(80.0, 80.0, 0), UNTESTABLE, ["the concept sets are empty (a pair is"]),
        (concept_rows(60.0, 78.0)[:3], UNTESTABLE, ["no 'concept-random:color:vs:shape' rows"]),
    ],
)
def test_concept_specific_verdict(tmp_path, rows, verdict, words):
    write_prune(tmp_path, "color", rows)
    claim = claims_of(tmp_path, ["color"], concept_pairs={"color": [["color", "shape"]]})["b"]
    (case,) = claim.cases
    assert case.pair == ("color", "shape") and case.verdict == verdict and claim.verdict == verdict
    for w in words:
        assert w in case.text
    if verdict != UNTESTABLE:
        assert case.numbers["n_color"] == case.numbers["n_shape"] == 2
        assert [e.arm for e in case.effects] == ["shape", "random"]


def test_concept_specific_not_testable_without_pairs_or_rows(tmp_path):
    write_prune(tmp_path, "color", base_rows())  # no concept strategies
    claims = claims_of(tmp_path, ["color"])
    assert claims["b"].verdict == UNTESTABLE
    assert "no dataset of this run has concept pairs" in claims["b"].summary
    claim = claims_of(tmp_path, ["color"], concept_pairs={"color": [["color", "shape"]]})["b"]
    assert claim.verdict == UNTESTABLE
    assert "no 'concept:color:vs:shape', 'concept:shape:vs:color'" in claim.cases[0].text


# ------------------------------------------------------------------------------- claims (c), (d)
def test_ood_claim_uses_flagged_datasets_only(tmp_path):
    write_prune(tmp_path, "in", base_rows())
    write_prune(tmp_path, "out", base_rows(high=76.0))
    claims = claims_of(tmp_path, ["in", "out"])
    assert claims["c"].verdict == UNTESTABLE
    assert "no dataset of this run is flagged ood: true" in claims["c"].summary
    assert [c.dataset for c in claims["a"].cases] == ["in", "out"]
    claims = claims_of(tmp_path, ["in", "out"], ood_datasets=["out"])
    assert [c.dataset for c in claims["a"].cases] == ["in"] and claims["a"].verdict == HOLDS
    assert [c.dataset for c in claims["c"].cases] == ["out"]
    assert claims["c"].verdict == CONTRADICTED


def test_ood_claim_not_testable_when_sets_are_empty(tmp_path):
    write_prune(tmp_path, "out", base_rows(n_high=0, high=80.0))
    claim = claims_of(tmp_path, ["out"], ood_datasets=["out"])["c"]
    assert claim.verdict == UNTESTABLE and "the high set is empty" in claim.summary


def write_video_items(path: Path, r1: dict[tuple[str, int], float], n: int = 400, seed: int = 0):
    """Per-query ranks: a share r1 of the t2v queries rank first, the rest rank 2-10."""
    rng = np.random.default_rng(seed)
    parts = []
    for (strategy, s), share in r1.items():
        ranks = rng.integers(2, 11, size=n).astype(float)
        ranks[rng.permutation(n)[: round(share * n / 100)]] = 1.0
        for direction in ("t2v", "v2t"):
            parts.append(
                pl.DataFrame(
                    {
                        "strategy": strategy,
                        "seed": s,
                        "direction": direction,
                        "query": range(n),
                        "query_id": [f"v{i}" for i in range(n)],
                        "rank": ranks,
                        "n_higher": (ranks - 1).astype(int),  # no ties
                        "n_tied": 0,
                    },
                    schema=VIDEO_ITEMS,
                )
            )
    pl.concat(parts).write_parquet(path)


def test_video_claim_follows_its_inputs(tmp_path):
    write_prune(tmp_path, "d1", base_rows())
    claim = claims_of(tmp_path, ["d1"])["d"]
    assert claim.verdict == UNTESTABLE and not claim.cases
    assert claim.summary.startswith("no video stage: the report was given no video")
    video = tmp_path / MODEL / "video" / "msrvtt.parquet"
    video.parent.mkdir(parents=True)
    rows = base_rows(high=20.0, low=30.0, randoms=(28.0, 29.0, 30.0))
    write_prune(tmp_path, "msrvtt", rows, items=False).rename(video)  # top1 = t2v R@1
    claim = claims_of(tmp_path, ["d1"], video=[video])["d"]
    assert claim.verdict == UNTESTABLE and "no per-item results" in claim.cases[0].text
    write_video_items(video.with_name("msrvtt.items.parquet"), {(r[0], r[1]): r[3] for r in rows})
    claim = claims_of(tmp_path, ["d1"], video=[video])["d"]
    (case,) = claim.cases
    assert claim.verdict == HOLDS and case.dataset == "msrvtt"
    assert "high 20.00" in case.text and "over 400 queries" in case.text and "R@5:" in case.text
    assert [e.arm for e in case.shown] == ["random", "low"]  # R@5 shown beside R@1
    elsewhere = tmp_path / "elsewhere.parquet"
    elsewhere.write_bytes(video.read_bytes())
    with pytest.raises(ReportInputError, match="video result must be"):
        claims_of(tmp_path, ["d1"], video=[elsewhere])


# ------------------------------------------------------------------------------- labels vs truth
def write_truth(run: Path, tops: dict[tuple[int, int], str], model=MODEL) -> Path:
    """head_truth with every family per head; `tops` gives each head's top family."""
    rows = []
    for (layer, head), top in tops.items():
        for f in FAMILIES:
            score = 5.0 if f == top else 1.0
            rows.append((layer, head, f, score, score / 9.0, 1.0, f == top))
    schema = COLUMNS["head_truth"]
    (run / model).mkdir(parents=True, exist_ok=True)
    path = run / model / "head_truth.parquet"
    pl.DataFrame(rows, schema=schema, orient="row").write_parquet(path)
    return path


def write_labels(run: Path, labels: dict[tuple[int, int], str | None], model=MODEL) -> None:
    rows = [(layer, head, label, label is not None) for (layer, head), label in labels.items()]
    schema = {"layer": pl.Int16, "head": pl.Int16, "label": pl.String, "valid": pl.Boolean}
    pl.DataFrame(rows, schema=schema, orient="row").write_parquet(run / model / "labels.parquet")


TOPS = {
    (0, 0): "color",
    (0, 1): "color",
    (0, 2): "shape",
    (1, 0): "shape",
    (1, 1): "position",
    (1, 2): "size",
    (2, 0): "background",  # layer 2 is not labelled (not analysed)
}
LABELS = {
    (0, 0): "colors",  # a family name in the plural: names color
    (0, 1): "red objects",  # a lexicon word: names color
    (0, 2): "color",  # wrong
    (1, 0): "shape and size",  # several, includes the true one
    (1, 1): None,  # invalid label: names nothing
    (1, 2): "Object sizes",  # names size
}


def fake_lexicon(text: str) -> set[str]:
    return {"color"} if "red" in text.lower().split() else set()


def test_families_named():
    from clipconcepts.conceptworld.lexicon import families_in_text

    assert families_named("colors", FAMILIES) == {"color"}
    assert families_named("Object sizes and boxes", FAMILIES) == {"size"}
    assert families_named("red objects", FAMILIES) == set()  # needs the lexicon
    assert families_named("red objects", FAMILIES, fake_lexicon) == {"color"}
    assert families_named("Shapes, red", FAMILIES, fake_lexicon) == {"shape", "color"}
    assert families_named("unclear", FAMILIES, fake_lexicon) == set()
    assert families_named(None, FAMILIES) == set()
    # the concept world's own lexicon knows its colour words
    assert "color" in families_named("red", FAMILIES, families_in_text)


def test_label_truth_agreement_and_confusion(tmp_path):
    path = write_truth(tmp_path, TOPS)
    write_labels(tmp_path, LABELS)
    truth = pl.read_parquet(path)
    labels = pl.read_parquet(tmp_path / MODEL / "labels.parquet")
    result = label_truth(INFOS[0], truth, labels, path, fake_lexicon)
    assert result.n_heads == 6 and result.n_without_truth == 0
    assert result.n_agree == 4 and result.fraction == pytest.approx(4 / 6)
    confusion = result.confusion()
    assert confusion.columns == ["family", *FAMILIES, SEVERAL, NONE]
    counts = {
        (r["family"], c): r[c]
        for r in confusion.iter_rows(named=True)
        for c in confusion.columns[1:]
    }
    expected = {
        ("color", "color"): 2,
        ("shape", "color"): 1,
        ("shape", SEVERAL): 1,
        ("position", NONE): 1,
        ("size", "size"): 1,
    }
    assert {k: v for k, v in counts.items() if v} == expected
    assert sum(counts.values()) == 6  # background has no labelled head: a row of zeros


def test_head_truth_needs_a_top_row_and_ties_are_left_out(tmp_path):
    path = write_truth(tmp_path, TOPS)
    write_labels(tmp_path, LABELS)
    labels = pl.read_parquet(tmp_path / MODEL / "labels.parquet")
    truth = pl.read_parquet(path)
    # head L0.H0 ties color with shape (a head writing nothing has every share 0: all top)
    tie = (pl.col("layer") == 0) & (pl.col("head") == 0) & (pl.col("family") == "shape")
    tied = truth.with_columns(pl.when(tie).then(True).otherwise(pl.col("is_top")).alias("is_top"))
    result = label_truth(INFOS[0], tied, labels, path, fake_lexicon)
    assert result.n_tied == 1 and result.n_heads == 5 and result.n_agree == 3
    none = truth.with_columns(pl.lit(False).alias("is_top"))
    with pytest.raises(ReportInputError, match=r"head L0\.H0 has 0 is_top rows"):
        label_truth(INFOS[0], none, labels, path)


# ------------------------------------------------------------------------------- the page
def _sections(tree: Node) -> list[str]:
    return [n.attrs["id"] for n in tree.iter() if n.tag in ("section", "footer")]


def test_claims_section_is_first_and_label_truth_shown(tmp_path):
    run = tmp_path / "results" / "demo"
    write_prune(run, "color", base_rows() + concept_rows(60.0, 78.0)[1:])
    write_prune(run, "shape", base_rows(n_high=0, high=80.0))
    write_ccs(run, [5, 3, 1])
    write_truth(run, TOPS)
    write_labels(run, LABELS)
    out = build_report(
        run,
        MODELS,
        ["color", "shape"],
        tmp_path / "report.html",
        tmp_path / "assets",
        ood_datasets=["shape"],
        concept_pairs={"color": [["color", "shape"]]},
    )
    tree = parse(out.read_text())
    sections = _sections(tree)
    assert sections[0] == "claims" and sections[1] == "overview"
    claims = tree.find_all(id="claims")[0]
    overall = {
        n.attrs["data-claim"]: n.attrs["data-verdict"]
        for n in claims.find_all("span", cls="verdict", overall="true")
    }
    assert overall == {"a": HOLDS, "b": HOLDS, "c": UNTESTABLE, "d": UNTESTABLE}
    (case,) = claims.find_all("span", cls="verdict", claim="c", model=MODEL, dataset="shape")
    assert case.attrs["data-verdict"] == UNTESTABLE
    text = claims.text()
    assert "the high set is empty (no head has CCS = 5)" in text
    assert "no video stage" in text and "random − high = +11.00 [" in text
    assert "1 holds" in text and "1 not testable" in text and "paired-bootstrap intervals" in text
    for letter in "abcd":  # a forest plot per claim, a placeholder where none is testable
        assert (tmp_path / "assets" / f"claims_{letter}.svg").exists()
    forest = claims.find_all("figure")
    assert len(forest) == 2  # (a) and (b) have testable cases
    truth = tree.find_all(id="label-truth")[0]
    (frac,) = truth.find_all("span", cls="ours", metric="label_truth_agreement")
    assert frac.text() == f"{4 / 6:.3f}" and frac.attrs["data-n-heads"] == "6"
    (cell,) = truth.find_all("span", cls="ours", true="shape", labelled=SEVERAL)
    assert cell.text() == "1"
    assert (tmp_path / "assets" / "claims.html").exists()
    assert (tmp_path / "assets" / "label_truth.html").exists()


def test_label_truth_without_head_truth_says_so(tmp_path):
    run = tmp_path / "run"
    write_prune(run, "d1", base_rows())
    out = build_report(run, MODELS, ["d1"], tmp_path / "r.html", tmp_path / "a")
    truth = parse(out.read_text()).find_all(id="label-truth")[0]
    assert "no head_truth.parquet for any model" in truth.text()


def test_cli_passes_claim_options():
    args = build_parser().parse_args(
        [
            "report",
            "--run-dir",
            "r",
            "--models",
            "{}",
            "--ood-datasets",
            "--video",
            "--concept-pairs",
            '{"color": [["color", "shape"]]}',
            "--claims-min-effect",
            "0.5",
            "--claims-level",
            "0.9",
            "--out",
            "o",
            "--assets-dir",
            "a",
        ]
    )
    assert args.ood_datasets == [] and args.video == []
    assert args.concept_pairs == {"color": [["color", "shape"]]}
    assert args.claims_min_effect == 0.5 and args.claims_level == 0.9
    assert args.claims_bootstrap == 2000 and not args.no_claims


# ------------------------------------------------------------------------------- figure title
@pytest.mark.parametrize("n_models", [1, 2])
def test_ccs_at_k_figure_titles_fit_the_canvas(tmp_path, n_models):
    infos = [ModelInfo(f"m{i}", "tiny", None, f"model number {i}") for i in range(n_models)]
    for info in infos:
        write_ccs(tmp_path, [0, 1, 2, 3, 4, 5], model=info.key)
    fig = ccs_at_k_figure(gather_run(tmp_path, infos, []), load_paper_values())
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    texts = [fig._suptitle, *(ax.title for ax in fig.axes)]
    for text in texts:
        box = text.get_window_extent(renderer)
        # inside the canvas, with room for a browser font up to 15% wider
        slack = 0.15 * box.width / 2
        assert box.x0 - slack >= 0 and box.x1 + slack <= fig.bbox.width, text.get_text()
