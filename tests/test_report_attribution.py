"""The report's head-attribution section, built from synthetic Parquet files in the stage's exact
schemas (`clipconcepts.attribution.schemas`): the per-head table, the CCS correlations, the
correlation matrix (table and heat map), the deletion curves, the unexpected reliance list, the
concept world's precision@k, and reports where the stage did not run or left no files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from clipconcepts.attribution import schemas
from clipconcepts.cli import build_parser
from clipconcepts.report import (
    ReportInputError,
    asset_paths,
    build_report,
    caption_path,
    report_assets,
)
from clipconcepts.report.attribution_figures import correlation_matrix
from clipconcepts.report.attribution_inputs import gather_attribution
from clipconcepts.report.inputs import ModelInfo, RunLayout
from test_report import MODELS, OTHER_MODEL, PAPER_MODEL, Node, parse, write_synthetic_run

B32, TINY = PAPER_MODEL, OTHER_MODEL
CIFAR, COLOR = "cifar10", "color"
SETS = [CIFAR, COLOR]
# (model, dataset) pairs with files; the other two pairs have none
WRITTEN = [(B32, CIFAR), (TINY, COLOR)]
VIEWS = ["atp_zero", "atp_mean", "direct", "logit_lens", "energy", "ccs", "random"]
VIEWS += ["true_zero", "true_mean"]
SCALED = ("atp_zero", "atp_mean", "direct", "true_zero", "true_mean")  # shown x100
LABELS = ["a red <thing>", "position", "texture", "color", "background", "the sky"]


# ------------------------------------------------------------------------------- synthetic files
def _write(frame: pl.DataFrame, path: Path, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = frame.to_arrow().replace_schema_metadata({"clipconcepts": json.dumps(meta)})
    pq.write_table(table, path)


def _meta(model: str, dataset: str, **more) -> dict:
    return {
        "model": model,
        "dataset": dataset,
        "target": "truth",
        "prompt": "",
        "n_images": 18,
        "seed": 0,
        "baselines": ["zero", "mean"],
        **more,
    }


def heads_frame() -> pl.DataFrame:
    """2 layers x 3 heads; CCS and true effects for layer 1 only (the analysed layers and the
    scope); ranks 1 = largest."""
    rows = []
    for layer in range(2):
        for head in range(3):
            i = 3 * layer + head
            analysed = layer == 1
            row = {
                "layer": layer,
                "head": head,
                "label": LABELS[i],
                "ccs": (5 - head) if analysed else None,
                "atp_zero": 0.001 * (i + 1) * (-1) ** i,
                "atp_mean": 0.0009 * (i + 1),
                "direct": 0.002 * (6 - i),
                "logit_lens": 0.05 * i,
                "energy": 0.1 + 0.01 * i,
                "true_zero": 0.0011 * (i + 1) if analysed else None,
                "true_mean": 0.0008 * (i + 1) if analysed else None,
                "acc_drop_zero": 2.5 * head if analysed else None,
                "acc_drop_mean": 1.25 * head if analysed else None,
                "n_images": 18,
            }
            rows.append(row)
    frame = pl.DataFrame(rows)
    ranks = {}
    for view in ["atp_zero", "atp_mean", "direct", "logit_lens", "energy", "ccs"]:
        ranks[f"rank_{view}"] = pl.col(view).rank("min", descending=True)
    for view in ["true_zero", "true_mean"]:
        ranks[f"rank_{view}"] = pl.col(view).rank("min", descending=True)
    frame = frame.with_columns(**ranks)
    return frame.select([pl.col(c).cast(t) for c, t in schemas.HEADS.items()])


def correlations_frame() -> pl.DataFrame:
    rows = []
    for i, x in enumerate(VIEWS):
        for j, y in enumerate(VIEWS):
            if x == y:
                continue
            rho = round(0.9 - 0.1 * abs(i - j), 4) * (1 if (i + j) % 3 else -1)
            tau = round(rho * 0.8, 4)
            if {x, y} == {"random", "energy"}:
                rho, tau = None, None  # undefined: shown as n/a
            n_heads = 3 if "ccs" in (x, y) or x.startswith("true") or y.startswith("true") else 6
            rows.append(("head", x, y, rho, tau, n_heads, 18))
    for i, x in enumerate(VIEWS):
        for y in ("true_zero", "true_mean"):
            if x == y:
                continue
            rows.append(("image", x, y, 0.5 - 0.05 * i, 0.4 - 0.05 * i, 3, 17))
    return pl.DataFrame(rows, schema=schemas.CORRELATIONS, orient="row")


AREAS = {"atp": (57.63, 0.36), "direct": (58.27, 0.48), "ccs": (62.24, 0.12)}
AREAS |= {"random": (61.81, 0.19), "true": (57.57, 0.35)}


def deletion_frame(nan_errors: bool = False) -> pl.DataFrame:
    rows = []
    for k, (method, (area, err)) in enumerate(AREAS.items()):
        for step in range(4):
            y = 61.75 - step * (3 - k * 0.5)
            y_err = float("nan") if nan_errors else 0.1 * step
            a_err = float("nan") if nan_errors else err
            rows.append((method, step, y, y_err, area, a_err, 18))
    return pl.DataFrame(rows, schema=schemas.DELETION, orient="row")


def reliance_frame() -> pl.DataFrame:
    """Two classes x 3 heads; 3 unexpected pairs, one of unknown relation."""
    rows = [
        (0, "red", "color", 1, 1, 0, "color", "color", 5, 0.02, 0.03, 0.021, 9, "related", False),
        (0, "red", "color", 2, 1, 1, "position", "position", 4, 0.015, 0.01, 0.016, 9,
         "unrelated", True),
        (0, "red", "color", 3, 1, 2, "the sky", None, 3, 0.004, 0.002, 0.005, 9, "unknown",
         False),
        (1, "blue", "color", 1, 1, 1, "position", "position", 4, 0.031, 0.02, 0.03, 9,
         "unrelated", True),
        (1, "blue", "color", 2, 1, 0, "color", "color", 5, 0.01, 0.01, 0.012, 9, "related",
         False),
        (1, "blue", "color", 3, 1, 2, "texture <b>", "texture", 3, 0.002, 0.001, 0.003, 9,
         "unrelated", True),
    ]  # fmt: skip
    return pl.DataFrame(rows, schema=schemas.RELIANCE, orient="row")


def truth_frame() -> pl.DataFrame:
    """Family color, 2 truth heads of 3; k = 1, 2 (R-precision), 3."""
    rows = []
    tops = {"atp_zero": ["L1.H0", "L1.H2", "L1.H1"], "ccs": ["L1.H1", "L1.H0", "L1.H2"]}
    tops["true_zero"] = ["L1.H0", "L1.H2", "L1.H1"]
    precision = {"atp_zero": [1.0, 1.0, 2 / 3], "ccs": [0.0, 0.5, 2 / 3]}
    precision["true_zero"] = [1.0, 1.0, 2 / 3]
    rho = {"atp_zero": (0.95, 0.7), "ccs": (-0.5, 0.1), "true_zero": (None, 0.72)}
    for view, top in tops.items():
        for n, k in enumerate((1, 2, 3)):
            rows.append(
                ("color", view, k, precision[view][n], 2, 3, *rho[view], top[:k],
                 ["L1.H0", "L1.H2"])
            )  # fmt: skip
    return pl.DataFrame(rows, schema=schemas.TRUTH, orient="row")


def write_attribution(run: Path) -> Path:
    lay = RunLayout(run)
    for model, dataset in WRITTEN:
        _write(heads_frame(), lay.attribution(model, dataset, "heads"), _meta(model, dataset))
        _write(
            correlations_frame(),
            lay.attribution(model, dataset, "correlations"),
            _meta(model, dataset),
        )
        _write(
            deletion_frame(),
            lay.attribution(model, dataset, "deletion"),
            _meta(model, dataset, layers="last4", subsets=9),
        )
        _write(reliance_frame(), lay.attribution(model, dataset, "reliance"), _meta(model, dataset))
    # the concept world's truth; an empty one elsewhere reads as absent
    _write(truth_frame(), lay.attribution(TINY, COLOR, "truth"), _meta(TINY, COLOR, family="color"))
    _write(truth_frame().clear(), lay.attribution(B32, CIFAR, "truth"), _meta(B32, CIFAR))
    return run


@pytest.fixture
def built(tmp_path: Path):
    run = write_attribution(write_synthetic_run(tmp_path / "results" / "demo"))
    out = build_report(
        run,
        MODELS,
        [CIFAR],
        tmp_path / "report.html",
        tmp_path / "assets",
        title="Demo",
        attribution_sets=SETS,
    )
    text = out.read_text()
    return run, tmp_path / "assets", text, parse(text)


def _section(tree: Node) -> Node:
    (section,) = tree.find_all("section", id="attribution")
    return section


def _value(cell: Node) -> float:
    return float(cell.attrs["data-value"])


# ------------------------------------------------------------------------------- per-head table
def test_heads_table_holds_every_view_and_rank(built):
    _, assets, _, tree = built
    page = parse((assets / f"attribution_{CIFAR}.html").read_text())
    frame = heads_frame()
    for x in frame.iter_rows(named=True):
        head = f"L{x['layer']}.H{x['head']}"
        for view in VIEWS:
            if view == "random":
                continue
            cells = page.find_all("span", cls="ours", model=B32, dataset=CIFAR, head=head,
                                  metric=view)  # fmt: skip
            if x[view] is None:
                assert not cells, (head, view)
                continue
            (cell,) = cells
            assert _value(cell) == pytest.approx(x[view])
            scale = 100 if view in SCALED else 1
            expected = str(x[view]) if view == "ccs" else f"{x[view] * scale:.3f}"
            assert cell.text() == expected
            rank = cell.parent.find_all("small")[0].text()
            assert rank == f"#{x[f'rank_{view}']}"
        drops = page.find_all("span", cls="ours", model=B32, head=head, metric="acc_drop")
        if x["acc_drop_zero"] is None:
            assert not drops
        else:
            (drop,) = drops
            assert drop.text() == f"{x['acc_drop_zero']:.1f} / {x['acc_drop_mean']:.1f}"
    # labels are escaped, the true effects' scope and the CCS layers stated
    assert not page.find_all("thing") and "a red <thing>" in page.text()
    assert "CCS for the 3 heads of the analysed layers" in page.text()
    assert "true effects for the 3 heads of the ablation scope" in page.text()
    # the page keeps the per-head table folded
    summaries = [s.text() for s in _section(tree).find_all("summary")]
    assert "per-head table (6 heads)" in summaries


def test_setup_from_the_metadata(built):
    _, _, _, tree = built
    text = _section(tree).text()
    assert "y = cos(image, the zero-shot text of the image's true class)" in text
    assert "18 images sampled per dataset (seed 0)" in text
    assert "ablation and deletion scope: last4" in text and "9 interleaved" in text


# ------------------------------------------------------------------------------- correlations
def test_ccs_correlations_stated(built):
    _, _, _, tree = built
    section = _section(tree)
    frame = correlations_frame().filter((pl.col("level") == "head") & (pl.col("x") == "ccs"))
    for row in frame.iter_rows(named=True):
        for metric in ("spearman", "kendall"):
            (cell,) = section.find_all("span", cls="ours", model=B32, dataset=CIFAR, x="ccs",
                                       y=row["y"], metric=metric, part="ccs")  # fmt: skip
            assert cell.text() == f"{row[metric]:.2f}"
    # faithfulness: AtP, direct and CCS against the true effect, across heads and per image
    for view in ("atp_zero", "direct", "ccs"):
        for level in ("head", "image"):
            row = correlations_frame().filter(
                (pl.col("level") == level) & (pl.col("x") == view) & (pl.col("y") == "true_zero")
            )
            (cell,) = section.find_all("span", cls="ours", model=B32, x=view, y="true_zero",
                                       level=level, part="faithfulness")  # fmt: skip
            assert cell.text() == f"{row['spearman'][0]:.2f}"


def test_correlation_matrix_table_has_kendall_in_cell_and_hover(built):
    _, assets, _, _ = built
    page = parse((assets / f"attribution_{CIFAR}.html").read_text())
    frame = correlations_frame().filter(pl.col("level") == "head")
    for row in frame.iter_rows(named=True):
        (cell,) = page.find_all("span", cls="ours", model=B32, x=row["x"], y=row["y"],
                                metric="spearman", value=row["spearman"])  # fmt: skip
        wrapper = cell.parent
        if row["spearman"] is None:
            assert cell.text() == "n/a" and "Kendall τ n/a" in wrapper.attrs["title"]
            continue
        assert cell.text() == f"{row['spearman']:.2f}"
        assert f"τ {row['kendall']:.2f}" in wrapper.text()
        assert f"Kendall τ {row['kendall']:.2f}" in wrapper.attrs["title"]
        assert f"{row['n_heads']} heads" in wrapper.attrs["title"]
    # per-image correlations with the true effects
    (cell,) = page.find_all("span", cls="ours", model=B32, x="energy", y="true_mean", level="image",
                            metric="spearman")  # fmt: skip
    assert cell.text() == f"{0.5 - 0.05 * 4:.2f}"


def test_heat_map_matrix_and_svg(built):
    run, assets, _, tree = built
    values = [ModelInfo(B32, "ViT-B-32", "openai", "B32-OpenAI-run")]
    result = gather_attribution(RunLayout(run), values, [CIFAR]).results[B32, CIFAR]
    views, matrix = correlation_matrix(result)
    assert views == VIEWS
    assert all(math.isnan(matrix[i, i]) for i in range(len(views)))  # not in the file
    i, j = views.index("atp_zero"), views.index("true_zero")
    row = correlations_frame().filter(
        (pl.col("level") == "head") & (pl.col("x") == "atp_zero") & (pl.col("y") == "true_zero")
    )
    assert matrix[i, j] == pytest.approx(row["spearman"][0])
    assert math.isnan(matrix[views.index("random"), views.index("energy")])  # undefined
    svg = (assets / f"attribution_{CIFAR}_correlations.svg").read_text()
    assert "<svg" in svg and "Spearman ρ" in svg and "true effect (zero)" in svg
    assert f"{row['spearman'][0]:.2f}" in svg
    assert "B32-OpenAI-run" in svg
    embedded = _section(tree).find_all("img")
    assert any("correlation heat map" in img.attrs["alt"] for img in embedded)


# ------------------------------------------------------------------------------- deletion
def test_deletion_curves_with_areas(built):
    _, assets, _, tree = built
    svg = (assets / f"attribution_{CIFAR}_deletion.svg").read_text()
    assert "<svg" in svg and "100 · y" in svg
    for label, (area, err) in zip(
        ["AtP (zero)", "direct effect", "CCS order", "random order", "true effect"],
        AREAS.values(),
        strict=True,
    ):
        assert f"{label}" in svg and f"area {area:.2f} ± {err:.2f}" in svg
    section = _section(tree)
    for method, (area, _) in AREAS.items():
        (cell,) = section.find_all("span", cls="ours", model=B32, method=method, metric="area")
        assert _value(cell) == pytest.approx(area)
        (last,) = section.find_all("span", cls="ours", model=B32, method=method, step=3)
        y3 = deletion_frame().filter((pl.col("method") == method) & (pl.col("step") == 3))
        assert last.text() == f"{y3['y100'][0]:.2f}"


def test_deletion_without_errors_draws(tmp_path):
    run = write_attribution(tmp_path / "run")
    path = RunLayout(run).attribution(B32, CIFAR, "deletion")
    _write(deletion_frame(nan_errors=True), path, _meta(B32, CIFAR))
    build_report(run, MODELS, [], tmp_path / "r.html", tmp_path / "a", attribution_sets=[CIFAR])
    svg = (tmp_path / "a" / f"attribution_{CIFAR}_deletion.svg").read_text()
    assert "area 57.63" in svg and "area 57.63 ±" not in svg


# ------------------------------------------------------------------------------- reliance
def test_unexpected_reliance_listed(built):
    _, assets, _, tree = built
    frame = reliance_frame()
    unexpected = frame.filter(pl.col("unexpected")).sort("atp", descending=True)
    section = _section(tree)
    (count,) = section.find_all("span", cls="ours", model=B32, dataset=CIFAR, metric="n_unexpected")
    assert count.text() == "3"
    text = section.text()
    assert "of 6 (class, head) pairs are unexpected" in text and "1 of unknown relation" in text
    page = parse((assets / f"attribution_{CIFAR}_reliance.html").read_text())
    (first_table, full) = page.find_all("table", cls="attribution-reliance")
    rows = first_table.find_all("tr")[1:]
    assert len(rows) == unexpected.height
    for tr, x in zip(rows, unexpected.iter_rows(named=True), strict=True):
        (cell,) = tr.find_all("span", cls="ours", metric="atp")
        assert cell.text() == f"{x['atp'] * 100:.3f}"
        assert x["classname"] in tr.text() and f"L{x['layer']}.H{x['head']}" in tr.text()
    assert "texture <b>" in page.text()  # escaped: text, not a tag
    assert len(full.find_all("tr")) == frame.height + 1  # every pair, with its relation
    assert "unrelated (unexpected)" in full.text()


# ------------------------------------------------------------------------------- truth
def test_precision_at_k_against_truth(built):
    _, assets, _, tree = built
    page = parse((assets / f"attribution_{COLOR}_truth.html").read_text())
    for x in truth_frame().iter_rows(named=True):
        (cell,) = page.find_all("span", cls="ours", model=TINY, dataset=COLOR, view=x["view"],
                                k=x["k"], metric="precision")  # fmt: skip
        assert cell.text() == f"{x['precision']:.2f}"
    header = [th.text() for th in page.find_all("th")]
    assert "p@2 = R-precision" in header and "p@1" in header
    assert "2 truth heads of the 3 in the scope (L1.H0, L1.H2" in page.text()
    (rho,) = page.find_all("span", model=TINY, view="atp_zero", metric="spearman_true_zero")
    assert rho.text() == "0.95"
    # no truth file (or an empty one) outside the concept world: a line says so
    cifar = parse((assets / f"attribution_{CIFAR}_truth.html").read_text())
    assert "only concept-world models and sets" in cifar.text()
    assert _section(tree).find_all("h3", id=f"attribution-{COLOR}")


def test_models_without_files_named(built):
    run, _, _, tree = built
    text = _section(tree).text()
    assert f"no attribution results for {CIFAR}: Tiny-run" in text
    assert str(RunLayout(run).attribution(TINY, CIFAR, "heads")) in text
    assert f"no attribution results for {COLOR}: B32-OpenAI-run" in text


# ------------------------------------------------------------------------------- wiring
def test_assets_listed_and_written(built):
    _, assets, _, _ = built
    listed = report_assets([CIFAR], (), SETS)
    names = [a.name for a in listed]
    for d in SETS:
        for suffix in (".html", "_correlations.svg", "_deletion.svg", "_reliance.html"):
            assert f"attribution_{d}{suffix}" in names
        assert f"attribution_{d}_truth.html" in names
    for path in asset_paths(assets, [CIFAR], (), SETS):
        assert path.exists(), path
    for asset in listed:
        assert caption_path(asset.kind).read_text().strip()
    assert {a.category for a in listed if a.name.startswith("attribution_")} == {"Attribution"}
    assert report_assets([CIFAR]) == report_assets([CIFAR], (), ())  # old callers unchanged


def test_report_without_the_stage_still_builds(tmp_path):
    run = write_synthetic_run(tmp_path / "results" / "demo")
    out = build_report(run, MODELS, [CIFAR], tmp_path / "r.html", tmp_path / "a")
    assert "head-attribution stage did not run" in _section(parse(out.read_text())).text()
    # sets given, no files: every asset written, saying what is missing
    out = build_report(
        run, MODELS, [CIFAR], tmp_path / "r2.html", tmp_path / "b", attribution_sets=[CIFAR]
    )
    section = _section(parse(out.read_text()))
    assert "no attribution results for cifar10" in section.text()
    assert not section.find_all("img")
    for path in asset_paths(tmp_path / "b", [CIFAR], (), [CIFAR]):
        assert path.exists(), path
    assert (
        "no deletion curves for cifar10"
        in (tmp_path / "b" / "attribution_cifar10_deletion.svg").read_text()
    )


@pytest.mark.parametrize(("kind", "column"), [("heads", "rank_ccs"), ("deletion", "area_err")])
def test_malformed_file_names_file_and_column(tmp_path, kind, column):
    run = write_attribution(tmp_path / "run")
    path = RunLayout(run).attribution(B32, CIFAR, kind)
    pl.read_parquet(path).drop(column).write_parquet(path)
    with pytest.raises(ReportInputError) as err:
        build_report(run, MODELS, [], tmp_path / "r.html", tmp_path / "a", attribution_sets=[CIFAR])
    assert str(path) in str(err.value) and repr(column) in str(err.value)


def test_cli_passes_attribution_and_video_sets():
    base = ["report", "--run-dir", "r", "--models", "{}", "--out", "o", "--assets-dir", "a"]
    args = build_parser().parse_args(
        [*base, "--attribution-sets", CIFAR, COLOR, "--video-sets", "msrvtt", "--mutual-sets"]
    )
    assert args.attribution_sets == SETS and args.video_sets == ["msrvtt"]
    assert args.mutual_sets == []
    args = build_parser().parse_args(base)
    assert args.attribution_sets == [] and args.video_sets == [] and args.mutual_sets == []


def test_ranks_in_fixture_follow_the_schema():
    frame = heads_frame()
    assert dict(frame.schema) == schemas.HEADS
    assert frame.filter(pl.col("layer") == 0)["rank_true_zero"].null_count() == 3
    assert np.all(frame["rank_ccs"].drop_nulls().to_numpy() >= 1)
