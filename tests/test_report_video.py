"""The report's video-retrieval section (CCS paper section 5.6, Figure 5's form), built from
synthetic `{model}/video/{set}.retrieval.parquet` files in the exact schema
(`schemas.VIDEO_RETRIEVAL`): every metric per strategy and direction in the table (random: mean
± sample std over seeds), the chance row, Figure 5's chart, the paper's missing numbers stated,
and reports where the stage did not run or left no file."""

from __future__ import annotations

import html
import statistics
from pathlib import Path

import polars as pl
import pytest

from clipconcepts.report import (
    ReportInputError,
    asset_paths,
    build_report,
    caption_path,
    report_assets,
)
from clipconcepts.report.inputs import RunLayout
from clipconcepts.report.video_inputs import summarise_retrieval
from clipconcepts.schemas import VIDEO_RETRIEVAL
from test_report import MODELS, OTHER_MODEL, PAPER_MODEL, Node, parse, write_synthetic_run

MSRVTT, CLIPS = "msrvtt", "clips"
METRICS = ("r1", "r5", "r10", "r50", "median_rank", "mean_rank")
# strategy, seed, heads, t2v (r1, r5, r10, r50, median, mean), v2t (the same)
ROWS = [
    ("original", 0, [], (30.1, 55.2, 66.3, 90.4, 4.0, 31.25), (28.0, 52.0, 63.0, 88.0, 5.0, 35.5)),
    ("high", 0, ["L11.H5", "L10.H8"], (12.5, 30.0, 41.0, 75.0, 14.0, 80.75),
     (11.0, 28.0, 39.0, 70.0, 16.0, 90.0)),
    ("low", 0, [], (30.1, 55.2, 66.3, 90.4, 4.0, 31.25), (28.0, 52.0, 63.0, 88.0, 5.0, 35.5)),
    ("random", 0, ["L9.H0", "L10.H0"], (28.0, 53.0, 64.0, 89.0, 4.0, 33.0),
     (27.0, 50.0, 61.0, 87.0, 5.0, 37.0)),
    ("random", 1, ["L9.H1", "L10.H1"], (26.0, 51.0, 62.0, 88.0, 5.0, 36.0),
     (25.0, 49.0, 60.0, 86.0, 6.0, 39.0)),
    ("random", 2, ["L9.H2", "L10.H2"], (27.5, 52.5, 63.5, 88.5, 4.5, 34.5),
     (26.0, 51.0, 62.0, 86.5, 5.5, 38.0)),
    ("concept:color:vs:position", 0, ["L2.H7"], (20.0, 45.0, 57.0, 85.0, 6.0, 40.0),
     (21.0, 44.0, 55.0, 84.0, 7.0, 41.0)),
]  # fmt: skip
CHANCE = {"r1": 0.1, "r5": 0.5, "r10": 1.0}
N = 1000


def retrieval_frame(rows=ROWS) -> pl.DataFrame:
    records = []
    for strategy, seed, heads, t2v, v2t in rows:
        for direction, values in (("t2v", t2v), ("v2t", v2t)):
            records.append(
                {
                    "strategy": strategy,
                    "seed": seed,
                    "heads": heads,
                    "n_heads": len(heads),
                    "direction": direction,
                    **dict(zip(METRICS, values, strict=True)),
                    "n_queries": N,
                    "n_candidates": N,
                    **{f"chance_{k}": v for k, v in CHANCE.items()},
                    "ties": "pessimistic",
                    "protocol": "ccs",
                }
            )
    return pl.DataFrame(records, schema=VIDEO_RETRIEVAL)


def write_video(run: Path) -> Path:
    path = RunLayout(run).video_retrieval(PAPER_MODEL, MSRVTT)
    path.parent.mkdir(parents=True, exist_ok=True)
    retrieval_frame().write_parquet(path)
    return run


@pytest.fixture
def built(tmp_path: Path):
    run = write_video(write_synthetic_run(tmp_path / "results" / "demo"))
    out = build_report(
        run,
        MODELS,
        ["cifar10"],
        tmp_path / "report.html",
        tmp_path / "assets",
        video_sets=[MSRVTT, CLIPS],
    )
    text = out.read_text()
    return run, tmp_path / "assets", text, parse(text)


def _section(tree: Node) -> Node:
    (section,) = tree.find_all("section", id="video")
    return section


def _fmt(metric: str, v: float) -> str:
    return f"{v:.2f}" if metric == "mean_rank" else f"{v:.1f}"


# ------------------------------------------------------------------------------- table
def test_table_holds_every_metric_per_strategy_and_direction(built):
    _, assets, _, tree = built
    for where in (_section(tree), parse((assets / f"video_{MSRVTT}.html").read_text())):
        for strategy in ("original", "high", "low", "concept:color:vs:position"):
            (row,) = [r for r in ROWS if r[0] == strategy]
            for direction, values in (("t2v", row[3]), ("v2t", row[4])):
                for metric, v in zip(METRICS, values, strict=True):
                    (cell,) = where.find_all(
                        "span", cls="ours", model=PAPER_MODEL, video_set=MSRVTT,
                        strategy=strategy, direction=direction, metric=metric,
                    )  # fmt: skip
                    assert cell.text() == _fmt(metric, v)
                    assert float(cell.attrs["data-mean"]) == pytest.approx(v)


def test_random_mean_and_std_over_seeds(built):
    _, _, _, tree = built
    seeds = [r for r in ROWS if r[0] == "random"]
    for direction, k in (("t2v", 3), ("v2t", 4)):
        for i, metric in enumerate(METRICS):
            values = [r[k][i] for r in seeds]
            (cell,) = _section(tree).find_all(
                "span", cls="ours", model=PAPER_MODEL, strategy="random", direction=direction,
                metric=metric,
            )  # fmt: skip
            assert cell.text() == _fmt(metric, statistics.mean(values))
            assert float(cell.attrs["data-std"]) == pytest.approx(statistics.stdev(values))
            assert cell.attrs["data-n-runs"] == "3"
            assert cell.parent.find_all("small")[0].text() == (
                f"± {_fmt(metric, statistics.stdev(values))}"
            )


def test_chance_row_counts_and_empty_groups(built):
    _, _, _, tree = built
    section = _section(tree)
    for direction in ("t2v", "v2t"):
        for metric, v in CHANCE.items():
            (cell,) = section.find_all("span", cls="chance", direction=direction, metric=metric)
            assert float(cell.attrs["data-value"]) == v and cell.text() == f"{v:.1f}"
    text = section.text()
    assert f"{N} queries among {N} candidates" in text and "Ties ranked pessimistic" in text
    assert "Protocol: ccs (the CCS authors' code" in html.unescape(text)
    low = [tr for tr in section.find_all("tr") if "Low CCS pruned" in tr.text()]
    assert "empty group: equal to original" in low[0].text()
    assert "2 heads" in [tr for tr in section.find_all("tr") if "High CCS" in tr.text()][0].text()


def test_paper_gives_no_numbers_and_says_so(built):
    _, assets, _, tree = built
    text = _section(tree).text()
    assert "only as a chart" in text and "no paper values stand beside ours" in text
    assert not _section(tree).find_all("span", cls="paper")
    assert "only as a chart" in (assets / f"video_{MSRVTT}.html").read_text()


# ------------------------------------------------------------------------------- figure
def test_figure5_form_written(built):
    _, assets, _, tree = built
    svg = (assets / f"video_{MSRVTT}.svg").read_text()
    assert "<svg" in svg
    for text in ("R@1", "R@5", "R@10", "chance (random ranking)", "high CCS pruned",
                 "random pruned (mean ± std, 3 seeds)", "color heads pruned (vs position)",
                 "text-to-video recall (%)", "MSR-VTT", "0 heads"):  # fmt: skip
        assert text in svg, text
    embedded = _section(tree).find_all("img")
    assert len(embedded) == 1 and "video retrieval bar chart" in embedded[0].attrs["alt"]


def test_summary_groups_strategy_and_direction():
    summary = summarise_retrieval(retrieval_frame())
    assert list(summary)[:2] == [("original", "t2v"), ("original", "v2t")]
    s = summary["random", "t2v"]
    assert s.n_runs == 3 and s.n_heads == (2,) and s.chance == CHANCE
    assert s.std["r1"] == pytest.approx(statistics.stdev([28.0, 26.0, 27.5]))
    assert summary["original", "t2v"].std["r1"] is None
    assert summary["low", "v2t"].is_empty and not summary["high", "v2t"].is_empty


# ------------------------------------------------------------------------------- wiring
def test_models_and_sets_without_files_named(built):
    run, assets, _, tree = built
    text = _section(tree).text()
    assert f"no video retrieval results for {MSRVTT}: Tiny-run" in text
    assert str(RunLayout(run).video_retrieval(OTHER_MODEL, MSRVTT)) in text
    assert f"no video retrieval results for {CLIPS}: B32-OpenAI-run" in text
    assert "no video retrieval results for clips" in (assets / f"video_{CLIPS}.svg").read_text()


def test_assets_listed_and_written(built):
    _, assets, _, _ = built
    listed = report_assets(["cifar10"], (), (), [MSRVTT, CLIPS])
    video = [a for a in listed if a.category == "Video retrieval"]
    assert [a.name for a in video] == [
        f"video_{MSRVTT}.html",
        f"video_{MSRVTT}.svg",
        f"video_{CLIPS}.html",
        f"video_{CLIPS}.svg",
    ]
    assert video[0].subcategory == "MSR-VTT"
    for path in asset_paths(assets, ["cifar10"], (), (), [MSRVTT, CLIPS]):
        assert path.exists(), path
    for asset in video:
        assert caption_path(asset.kind).read_text().strip()


def test_report_without_the_stage_still_builds(tmp_path):
    run = write_synthetic_run(tmp_path / "results" / "demo")
    out = build_report(run, MODELS, ["cifar10"], tmp_path / "r.html", tmp_path / "a")
    assert "video-retrieval stage did not run" in _section(parse(out.read_text())).text()


def test_malformed_file_names_file_and_column(tmp_path):
    run = write_video(tmp_path / "run")
    path = RunLayout(run).video_retrieval(PAPER_MODEL, MSRVTT)
    pl.read_parquet(path).drop("median_rank").write_parquet(path)
    with pytest.raises(ReportInputError) as err:
        build_report(run, MODELS, [], tmp_path / "r.html", tmp_path / "a", video_sets=[MSRVTT])
    assert str(path) in str(err.value) and "'median_rank'" in str(err.value)
