"""The report's mutual-knowledge section, built from synthetic Parquet files in the stage's exact
schemas: Table 3's form with the paper's values beside, Figure 3's form, the explanation panels
(Figure 1's form) from a thumbnail, the concept world's precision table, and a report without
any mutual file."""

from __future__ import annotations

import base64
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from PIL import Image

from clipconcepts.cli import build_parser
from clipconcepts.mutual.schemas import (  # the stage's own schemas
    IMAGE_SCHEMA,
    SUMMARY_SCHEMA,
    TRUTH_SCHEMA,
)
from clipconcepts.report import (
    ReportInputError,
    asset_paths,
    build_report,
    caption_path,
    load_paper_values,
    report_assets,
)
from clipconcepts.report.inputs import ModelInfo, RunLayout
from clipconcepts.report.mutual_figures import (
    display_size,
    least_squares,
    line_text,
    panel_figure,
)
from clipconcepts.report.mutual_inputs import gather_mutual, model_family
from clipconcepts.report.mutual_tables import truth_verdicts
from test_report import Node, parse, write_synthetic_run

PAPER = (
    Path(
        os.environ.get(
            "CLIPCONCEPTS_PAPERS", Path(__file__).resolve().parents[2] / "shared" / "papers"
        )
    )
    / "mutual-knowledge-sammani-2024.txt"
)

B32, B16, RN50, CW = "ViT-B-32__openai", "ViT-B-16__openai", "RN50__openai", "conceptworld"
MODELS = {
    B32: {"arch": "ViT-B-32", "pretrained": "openai", "display": "B32-run"},
    B16: {"arch": "ViT-B-16", "pretrained": "openai", "display": "B16-run"},
    RN50: {"arch": "RN50", "pretrained": "openai", "display": "RN50-run"},
    CW: {"arch": "conceptworld", "pretrained": "", "display": "CW-run"},
}
IMAGENET, COLOR = "imagenet-val", "color"
SETS = [IMAGENET, COLOR]
IMAGE_SIZE = {IMAGENET: 32, COLOR: 48}
# the dataset-level numbers written per (model, set): top1, {method: (mi, auc, n_no_fg, n_empty)}
NUMBERS = {
    (B32, IMAGENET): (62.5, {"pca": (7.31, 3.52, 2, 1), "kmeans": (7.12, 3.31, 2, 3)}),
    (B16, IMAGENET): (68.75, {"pca": (7.55, 3.71, 0, 0), "kmeans": (7.40, 3.60, 0, 1)}),
    (RN50, IMAGENET): (57.5, {"pca": (7.02, 3.18, 1, 0), "kmeans": (7.09, 3.25, 1, 0)}),
    (CW, COLOR): (100.0, {"pca": (3.24, 1.72, 9, 0), "kmeans": (2.77, 1.33, 9, 0)}),
}
ELLIPSES = [
    {"concept": 2, "cx": 20.5, "cy": 10.0, "width": 8.0, "height": 12.0, "angle": 30.0},
    {"concept": 4, "cx": 5.0, "cy": 25.5, "width": 6.0, "height": 4.0, "angle": 0.0},
]
DV_TEXTS = ["a striped <background>", "an object at the right", "a red object"]
DV_IDS, DY_IDS = [70, 38, 3], [3, 1, 12]


# ------------------------------------------------------------------------------- synthetic files
def _write(frame: pl.DataFrame, path: Path, meta: dict | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = frame.to_arrow()
    if meta is not None:
        table = table.replace_schema_metadata({"clipconcepts": json.dumps(meta)})
    pq.write_table(table, path)


def _meta(model: str, mutual_set: str, mi_form: str = "eq9") -> dict:
    return {
        "mi_form": mi_form,
        "text_side": "predicted",
        "single_concept": "logits",
        "model": model,
        "dataset": mutual_set,
        "image_size": IMAGE_SIZE[mutual_set],
        "n_descriptors": 90,
    }


def _png(size: int) -> bytes:
    rng = np.random.default_rng(size)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _curve(mi: float, n: int = 4) -> list[float]:
    return [mi * (n - i) / n for i in range(n + 1)]


def write_summary(run: Path, model: str, mutual_set: str, mi_form: str = "eq9") -> None:
    top1, methods = NUMBERS[model, mutual_set]
    rows = []
    for method, (mi, auc, no_fg, empty) in methods.items():
        common = {
            "method": method,
            "n_no_foreground": no_fg,
            "n_empty_intersection": empty,
            "n_single_concept": no_fg + 10,
        }
        rows.append(
            {
                "level": "dataset",
                "class_id": None,
                "classname": None,
                "n_images": 40,
                "top1": top1,
                "mi": mi,
                "auc": auc,
                "curve": _curve(mi),
                **common,
            }
        )
        rows.append(
            {
                "level": "class",
                "class_id": 0,
                "classname": "red",
                "n_images": 40,
                "top1": 0.0,  # a class row must not be taken for the dataset's
                "mi": 0.5,
                "auc": 0.25,
                "curve": [0.5, 0.0],
                **common,
            }
        )
    frame = pl.DataFrame(rows, schema=SUMMARY_SCHEMA)
    _write(
        frame,
        RunLayout(run).mutual(model, mutual_set, "summary"),
        _meta(model, mutual_set, mi_form),
    )


def write_images(run: Path, model: str, mutual_set: str) -> None:
    """Three images x two methods; images 0 and 1 have a thumbnail, image 1 has no foreground."""
    rows = []
    size = IMAGE_SIZE[mutual_set]
    for i in range(3):
        for method in ("pca", "kmeans"):
            ok = i != 1
            rows.append(
                {
                    "image_id": f"img-{i}",
                    "class_id": i,
                    "classname": f"class {i}",
                    "predicted_id": 0,
                    "predicted_name": "class 0",
                    "correct": i == 0,
                    "method": method,
                    "status": "ok" if ok else "no_foreground",
                    "n_foreground": 12 if ok else 0,
                    "ellipses": ELLIPSES if ok else [],
                    "dv_ids": DV_IDS if ok else [],
                    "dv_texts": DV_TEXTS if ok else [],
                    "dv_relevance": [0.6, 0.5, 0.4] if ok else [],
                    "dy_ids": DY_IDS,
                    "shared_ids": [3] if ok else [],
                    "mi": 4.5 if ok else 0.0,
                    "curve": [4.5, 4.5, 4.5, 0.0] if ok else [0.0],
                    "thumbnail": _png(size) if i < 2 else None,
                }
            )
    frame = pl.DataFrame(rows, schema=IMAGE_SCHEMA)
    _write(frame, RunLayout(run).mutual(model, mutual_set, "images"), _meta(model, mutual_set))


def truth_frame(below: str | None = None) -> pl.DataFrame:
    """Precision per method x kind x family; `below` puts that family under its baseline;
    the shared descriptors have no texture descriptor (precision null)."""
    rows = []
    for method in ("pca", "kmeans"):
        for kind in ("mutual", "shared"):
            for family, baseline in (("all", 0.14), ("color", 0.125), ("texture", 0.167)):
                precision = 0.9 if family != below else 0.1
                n = 30
                if kind == "shared" and family == "texture":
                    precision, n = None, 0
                rows.append((method, kind, family, precision, baseline, n, 64))
    return pl.DataFrame(rows, schema=TRUTH_SCHEMA, orient="row")


def write_mutual(run: Path) -> Path:
    for model, mutual_set in NUMBERS:
        write_summary(run, model, mutual_set)
        write_images(run, model, mutual_set)
    _write(truth_frame(), RunLayout(run).mutual(CW, COLOR, "truth"), None)
    return run


@pytest.fixture
def built(tmp_path: Path):
    """The real report of the test_report synthetic run plus the mutual files."""
    run = write_synthetic_run(tmp_path / "results" / "demo")
    write_mutual(run)
    out = build_report(
        run,
        MODELS,
        ["cifar10"],
        tmp_path / "report.html",
        tmp_path / "assets",
        title="Demo",
        n_examples=3,
        mutual_sets=SETS,
    )
    text = out.read_text()
    return run, tmp_path / "assets", text, parse(text)


def _section(tree: Node) -> Node:
    (section,) = tree.find_all("section", id="mutual")
    return section


def _table_after(section: Node, heading_id: str) -> Node:
    (heading,) = section.find_all("h3", id=heading_id)
    siblings = [c for c in heading.parent.children if isinstance(c, Node)]
    return siblings[siblings.index(heading) + 1]


def _svg_of(img: Node) -> str:
    prefix = "data:image/svg+xml;base64,"
    assert img.attrs["src"].startswith(prefix)
    return base64.b64decode(img.attrs["src"][len(prefix) :]).decode()


# ------------------------------------------------------------------------------- Table 3
def test_table_holds_the_dataset_numbers(built):
    _, _, _, tree = built
    section = _section(tree)
    for (model, mutual_set), (top1, methods) in NUMBERS.items():
        data = {"model": model, "mutual_set": mutual_set}
        (cell,) = section.find_all("span", cls="ours", metric="top1", **data)
        assert cell.text() == f"{top1:.2f}" and float(cell.attrs["data-value"]) == top1
        for method, (mi, auc, _, _) in methods.items():
            for metric, value in (("mi", mi), ("auc", auc)):
                (cell,) = section.find_all("span", cls="ours", metric=metric, method=method, **data)
                assert cell.text() == f"{value:.2f}"
                assert float(cell.attrs["data-value"]) == pytest.approx(value)
        for column, k in (("n_no_foreground", 2), ("n_empty_intersection", 3)):
            counts = [v[k] for v in methods.values()]  # PCA, K-means
            expected = str(counts[0]) if len(set(counts)) == 1 else f"{counts[0]} / {counts[1]}"
            (cell,) = section.find_all("span", cls="ours", metric=column, **data)
            assert cell.text() == expected
        # images with a single concept, and their share of the 40 images
        counts = [v[2] + 10 for v in methods.values()]
        shares = [f"{100 * c / 40:.0f}%" for c in counts]
        expected = (
            f"{counts[0]} ({shares[0]})"
            if len(set(counts)) == 1
            else f"{counts[0]} / {counts[1]} ({shares[0]} / {shares[1]})"
        )
        (cell,) = section.find_all("span", cls="ours", metric="n_single_concept", **data)
        assert cell.text() == expected
    assert "taken from their concept's top descriptors by its logits" in section.text()


def test_paper_values_beside_matched_models_on_the_paper_dataset(built):
    _, _, _, tree = built
    section = _section(tree)
    table = _table_after(section, f"mutual-{IMAGENET}")
    values = load_paper_values()
    for model, name in ((B32, "ViT-B/32"), (B16, "ViT-B/16"), (RN50, "RN-50")):
        (row,) = [tr for tr in table.find_all("tr") if MODELS[model]["display"] in tr.text()]
        shown = [s.text() for s in row.find_all("span", cls="paper")]
        assert shown == [f"({v:.2f})" for v in values.data["mutual_knowledge"]["rows"][name]]
        assert all(
            "mutual-knowledge paper" in s.attrs["title"] for s in row.find_all("span", cls="paper")
        )
        assert f"paper: {name}" in row.text()
    (cw_row,) = [tr for tr in table.find_all("tr") if "CW-run" in tr.text()]
    assert not cw_row.find_all("span", cls="paper")
    # the concept-world set is not the paper's dataset: no paper values there
    color = _table_after(section, f"mutual-{COLOR}")
    assert not color.find_all("span", cls="paper")


def test_mi_form_and_missing_results_are_stated(built):
    _, _, _, tree = built
    text = _section(tree).text()
    assert "MI form: Eq. 9" in text and "for every model" in text
    assert "Class side D_y taken from: the predicted class" in text
    # imagenet-val: larger count per model over the methods: 2 + 0 + 1 without foreground,
    # 3 + 1 + 0 with an empty intersection
    assert "3 with no foreground, 4 with an empty intersection" in text
    # a model without files for a set says so, naming the file
    assert f"{CW}/mutual/{IMAGENET}/summary.parquet" in text
    assert "ConvNeXt-B2" in text  # unmatched paper models are named


def test_mixed_mi_forms_are_listed_per_model(tmp_path):
    run = write_mutual(tmp_path / "run")
    write_summary(run, B16, IMAGENET, mi_form="eq1")
    out = build_report(run, MODELS, [], tmp_path / "r.html", tmp_path / "a", mutual_sets=[IMAGENET])
    text = _section(parse(out.read_text())).text()
    assert "B32-run: Eq. 9" in text and "B16-run: Eq. 1" in text


# ------------------------------------------------------------------------------- figures
def test_figure3_written_with_family_fits(built):
    _, assets, _, tree = built
    svg = (assets / f"mutual_{IMAGENET}.svg").read_text()
    assert "<svg" in svg
    # two ViTs: a least-squares line per method; one ResNet: no line
    aucs = [NUMBERS[B32, IMAGENET][1]["pca"][1], NUMBERS[B16, IMAGENET][1]["pca"][1]]
    top1 = [NUMBERS[B32, IMAGENET][0], NUMBERS[B16, IMAGENET][0]]
    slope, intercept = least_squares(aucs, top1)
    assert slope == pytest.approx(np.polyfit(aucs, top1, 1)[0])
    assert f"ViT, PCA: top-1 = {line_text(slope, intercept)}" in svg
    assert line_text(11.24, 25.97) == "11.24·AUC + 25.97"
    assert line_text(32.0, -53.5) == "32.00·AUC − 53.50"
    assert "ViT, K-means: top-1 =" in svg
    assert "ResNet, PCA: top-1" not in svg
    assert "B32-run, PCA (AUC 3.52)" in svg  # a dynamics curve per model and method
    embedded = [_svg_of(img) for img in _section(tree).find_all("img")]
    assert any("MI dynamics" in s for s in embedded)
    assert least_squares([3.0, 3.0], [60.0, 70.0]) is None  # one distinct AUC: no fit


def test_model_family_from_arch():
    assert model_family("ViT-B-32-quickgelu") == "ViT"
    assert model_family("RN50x16") == "ResNet"
    assert model_family("convnext_base_w") == "ConvNeXt"
    assert model_family("conceptworld") == "other"


def test_panels_render_from_a_thumbnail(built):
    run, assets, _, _ = built
    examples = parse((assets / f"mutual_{IMAGENET}_examples.html").read_text())
    images = examples.find_all("img")
    assert len(images) == 3  # one panel figure per model with results on the set
    svg = _svg_of(images[0])
    assert "<image" in svg  # the thumbnail, embedded
    assert "✓ shared" in svg and "an object at the right" in svg
    assert "true: class 0" in svg and "predicted: class 0 ✓" in svg
    assert "no foreground" in svg
    # the text version: descriptors escaped, the shared one marked
    assert not examples.find_all("background")
    assert {li.text() for li in examples.find_all("li", cls="yes")} == {"a red object ✓ shared"}


def test_panel_ellipses_scaled_to_the_display(tmp_path):
    run = write_mutual(tmp_path / "run")
    values = load_paper_values()
    infos = [ModelInfo(B32, "ViT-B-32", "openai", "B32-run")]
    result = gather_mutual(RunLayout(run), infos, [IMAGENET], values).results[B32, IMAGENET]
    assert result.examples is not None and result.examples.height == 4  # 2 images x 2 methods
    fig = panel_figure(result, n_examples=1)
    size = IMAGE_SIZE[IMAGENET]
    shown = display_size(size)
    assert shown % size == 0 and shown >= 224
    scale = shown / size
    image_ax = fig.axes[0]
    (picture,) = image_ax.get_images()
    assert picture.get_array().shape[:2] == (shown, shown)
    # nearest neighbour: every block of scale x scale display pixels is one thumbnail pixel
    thumb = np.asarray(Image.open(io.BytesIO(result.examples["thumbnail"][0])).convert("RGB"))
    assert np.array_equal(np.asarray(picture.get_array())[:: int(scale), :: int(scale)], thumb)
    ellipses = image_ax.patches
    assert len(ellipses) == len(ELLIPSES)
    for patch, e in zip(ellipses, ELLIPSES, strict=True):
        assert patch.center == pytest.approx(((e["cx"] + 0.5) * scale, (e["cy"] + 0.5) * scale))
        assert patch.width == pytest.approx(e["width"] * scale)
        assert patch.height == pytest.approx(e["height"] * scale)
        assert patch.angle == pytest.approx(e["angle"])
    colors = {tuple(p.get_edgecolor()) for p in ellipses}
    assert len(colors) == 2  # distinct colours per concept


# ------------------------------------------------------------------------------- concept world
def test_truth_table_shows_precision_and_baseline(built):
    _, assets, _, tree = built
    truth = parse((assets / f"mutual_{COLOR}_truth.html").read_text())
    frame = truth_frame()
    for r in frame.iter_rows(named=True):
        data = {"method": r["method"], "descriptors": r["descriptors"], "family": r["family"]}
        cells = truth.find_all("span", cls="ours", metric="precision", model=CW, **data)
        if r["precision"] is None:
            assert not cells
            continue
        (cell,) = cells
        assert cell.text() == f"{r['precision']:.3f}"
        baseline = cell.parent.find_all("span", cls="baseline")[0]
        assert baseline.text() == f"(baseline {r['baseline']:.3f})"
    overall = truth.find_all("span", cls="verdict", overall="true")
    assert [v.attrs["data-verdict"] for v in overall] == ["holds"]
    assert "no descriptor of texture (not tested)" in truth.text()
    # the same table sits in the page's section
    assert _section(tree).find_all("span", cls="verdict", model=CW, overall="true")


def test_truth_verdict_is_measured():
    verdicts = {(v.method, v.kind): v.verdict for v in truth_verdicts(truth_frame())}
    assert set(verdicts.values()) == {"holds"}
    below = {(v.method, v.kind): v for v in truth_verdicts(truth_frame(below="color"))}
    assert below["pca", "mutual"].verdict == "does not hold"
    assert "at or below baseline: color" in below["pca", "mutual"].text
    empty = truth_frame().with_columns(pl.lit(None, pl.Float64).alias("precision"))
    assert {v.verdict for v in truth_verdicts(empty)} == {"not testable"}


# ------------------------------------------------------------------------------- wiring
def test_assets_listed_and_written(built):
    _, assets, _, _ = built
    names = [a.name for a in report_assets(["cifar10"], SETS)]
    for s in SETS:
        for name in (f"mutual_{s}.html", f"mutual_{s}.svg", f"mutual_{s}_examples.html"):
            assert name in names
        assert f"mutual_{s}_truth.html" in names
    for path in asset_paths(assets, ["cifar10"], SETS):
        assert path.exists(), path
    for asset in report_assets(["cifar10"], SETS):
        assert caption_path(asset.kind).read_text().strip()
    assert report_assets(["cifar10"]) == report_assets(["cifar10"], ())
    page = (assets / f"mutual_{IMAGENET}.html").read_text()
    assert "mutual-knowledge paper's Table 3" in page and "CCS paper" not in page
    assert {a.category for a in report_assets([], SETS)} >= {"Mutual knowledge"}


def test_report_without_mutual_files_still_builds(tmp_path):
    run = write_synthetic_run(tmp_path / "results" / "demo")
    out = build_report(run, MODELS, ["cifar10"], tmp_path / "r.html", tmp_path / "a")
    section = _section(parse(out.read_text()))
    assert "did not run" in section.text()
    # sets given but no files: every asset still written, saying what is missing
    out = build_report(
        run, MODELS, ["cifar10"], tmp_path / "r2.html", tmp_path / "b", mutual_sets=[IMAGENET]
    )
    section = _section(parse(out.read_text()))
    assert "no mutual-knowledge results for imagenet-val" in section.text()
    assert not section.find_all("img")
    for path in asset_paths(tmp_path / "b", ["cifar10"], [IMAGENET]):
        assert path.exists(), path


def test_malformed_summary_names_file_and_column(tmp_path):
    run = write_mutual(tmp_path / "run")
    path = RunLayout(run).mutual(B32, IMAGENET, "summary")
    pl.read_parquet(path).drop("auc").write_parquet(path)
    with pytest.raises(ReportInputError) as err:
        build_report(run, MODELS, [], tmp_path / "r.html", tmp_path / "a", mutual_sets=[IMAGENET])
    assert str(path) in str(err.value) and "'auc'" in str(err.value)


def test_cli_passes_mutual_sets():
    args = build_parser().parse_args(
        ["report", "--run-dir", "r", "--models", "{}", "--out", "o", "--assets-dir", "a",
         "--mutual-sets", IMAGENET, COLOR]
    )  # fmt: skip
    assert args.mutual_sets == SETS
    args = build_parser().parse_args(
        ["report", "--run-dir", "r", "--models", "{}", "--out", "o", "--assets-dir", "a"]
    )
    assert args.mutual_sets == []


# ------------------------------------------------------------------------------- paper values
def test_mutual_models_match_by_arch_and_tag():
    values = load_paper_values()
    assert values.mutual_model_name("ViT-B-32-quickgelu", "openai") == "ViT-B/32"
    assert values.mutual_model_name("ViT-L-14-336", "openai") == "ViT-L/14-336"
    assert values.mutual_model_name("ViT-B-16", "dfn2b") == "ViT-B/16-dfn"
    assert values.mutual_model_name("RN50x4", "openai") == "RN-50x4"
    assert values.mutual_model_name("convnext_base_w", "laion_aesthetic_s13b_b82k") is None
    assert values.mutual_model_name("ViT-B-32", "laion2b_s34b_b79k") is None
    assert "ConvNeXt-B2" in values.mutual_unmatched()
    assert values.mutual("ViT-B/32", "cifar10") is None  # Table 3 is ImageNet val only


TEXT_NAMES = {"ViT-L/14 \\uparrow": "ViT-L/14-336", "CNeXt-B1": "ConvNeXt-B1"}
TEXT_NAMES["CNeXt-B2"] = "ConvNeXt-B2"


@pytest.mark.skipif(not PAPER.exists(), reason=f"paper text not found at {PAPER}")
def test_table3_matches_the_paper_text():
    values = load_paper_values().data["mutual_knowledge"]
    text = PAPER.read_text()
    block = text.split("Table 3: MI and AUC scores")[1].split("with accuracy, with ViT-B/16-dfn")[0]
    rows = {}
    for line in block.splitlines():
        cells = line.split("\t")
        if len(cells) < 8 or not re.match(r"\d", cells[3].strip()):
            continue
        name = cells[1].strip()
        name = TEXT_NAMES.get(name, re.sub(r"RN-50 \\times (\d+)", r"RN-50x\1", name))
        rows[name] = [float(c) for c in cells[3:8]]
        assert values["models"][name]["data"] == cells[2].strip(), name
    assert len(rows) == 13
    assert rows == values["rows"]
