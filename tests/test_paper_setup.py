"""The paper config as the authors ran it: the concept pairs on their objects subset of CIFAR-10,
and the `published` strategy (their high and low head lists beside ours) through to the report."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
import torchvision.transforms.functional as TF
import yaml

from clipconcepts.data.zeroshot import build_zeroshot_dataset, classnames_of, dataset_options
from clipconcepts.evaluate import parse_head, resolve_prune_sets
from clipconcepts.published_heads import find_published
from clipconcepts.report import build_report
from clipconcepts.report.paper import load_paper_values
from clipconcepts.report.setup_tables import jaccard
from clipconcepts.schemas import PRUNE_RESULTS
from clipconcepts.steps import prune_sets
from fixtures_datasets import make_cifar

ROOT = Path(__file__).resolve().parents[1]
PAPER = yaml.safe_load((ROOT / "config/config.yaml").read_text())
OBJECTS = ["airplane", "automobile", "ship", "truck"]  # the authors' cifar10objects
# the authors' lists for ViT-B-32 openai (src/association.py; reference-facts.md)
B32_HIGH = ["L11.H5", "L10.H8", "L9.H3", "L8.H11", "L9.H2", "L11.H1", "L11.H9", "L11.H7"]
B32_LOW = ["L8.H5", "L11.H0", "L11.H8", "L9.H9"]


# ------------------------------------------------------------------------------- item 2
def test_the_concept_pairs_run_on_the_objects_subset_of_cifar10(tmp_path, monkeypatch):
    pairs = PAPER["prune"]["concept_pairs"]
    assert "cifar10" not in pairs  # not all of CIFAR-10 ...
    spec = PAPER["datasets"]["cifar10-objects"]  # ... but the authors' objects subset
    assert (
        spec["kind"] == "cifar10-objects" and spec["root"] == PAPER["datasets"]["cifar10"]["root"]
    )
    assert pairs["cifar10-objects"] == [["objects", "locations"], ["objects", "colors"]]
    assert classnames_of("cifar10-objects") == OBJECTS

    # the entry as the workflow passes it, on a fake CIFAR-10 release: only the 4 classes
    labels = make_cifar(tmp_path, "cifar10", monkeypatch, per_class=2)
    options = dataset_options("cifar10-objects", {**spec, "root": str(tmp_path)})
    ds = build_zeroshot_dataset(transform=TF.to_tensor, **options)
    assert ds.classnames == OBJECTS and len(ds) == 2 * 4 < len(labels)
    seen = {
        int(label) for batch in ds.loader(8) for label in batch[-2]
    }  # (images, ids, labels, n_skipped)
    assert seen == {0, 1, 2, 3}
    # the paper's section 5.5 numbers for CIFAR-10 are the objects subset's
    values = load_paper_values()
    assert values.concept("ViT-B-32-OpenAI", "cifar10-objects").original == 87.6
    assert values.concept("ViT-B-32-OpenAI", "cifar10") is None


# ------------------------------------------------------------------------------- item 3
def _groups() -> pl.DataFrame:
    rows = [("high", 11, 5), ("high", 10, 8), ("high", 9, 4), ("low", 8, 5), ("low", 10, 1)]
    return pl.DataFrame(rows, schema=["group", "layer", "head"], orient="row")


def _labels() -> pl.DataFrame:
    rows = [(11, 5, "Colors"), (10, 8, "Locations"), (9, 4, "Animals")]
    return pl.DataFrame(rows, schema=["layer", "head", "label"], orient="row")


def _resolve(arch, pretrained):
    return resolve_prune_sets(
        ["original", "high", "published"],
        _groups(),
        _labels(),
        layers=[8, 9, 10, 11],
        n_heads=12,
        arch=arch,
        pretrained=pretrained,
    )


def test_published_strategy_replays_the_authors_lists_of_vit_b32_openai():
    sets = {s.strategy: s for s in _resolve("ViT-B-32", "openai")}
    assert list(sets) == ["original", "high", "published:high", "published:low"]
    assert sets["published:high"].heads == tuple(sorted(parse_head(h) for h in B32_HIGH))
    assert sets["published:low"].heads == tuple(sorted(parse_head(h) for h in B32_LOW))
    assert sets["published:high"].n_heads == 8 and sets["published:low"].n_heads == 4
    assert sets["published:high"].heads[0] == (8, 11)  # 0-based, sorted
    # the same weights under open_clip's QuickGELU name
    quick = {s.strategy: s.heads for s in _resolve("ViT-B-32-quickgelu", "openai")}
    assert quick["published:high"] == sets["published:high"].heads


def test_a_model_without_published_lists_gets_none_and_a_log_line(caplog):
    with caplog.at_level(logging.WARNING):
        sets = _resolve("ViT-B-32", "laion2b_s34b_b79k")
    assert [s.strategy for s in sets] == ["original", "high"]
    assert "no published CCS head lists for ViT-B-32/laion2b_s34b_b79k" in caplog.text
    assert "ViT-L-14/laion2b_s32b_b82k" in caplog.text  # says which models have lists


def test_the_step_passes_the_model_to_the_published_strategy(tmp_path):
    """`steps.prune_sets` (prune-eval and video-eval) reads --arch / --pretrained."""
    _groups().write_parquet(tmp_path / "groups.parquet")
    _labels().write_parquet(tmp_path / "labels.parquet")
    ccs = pl.DataFrame({"layer": [11], "head": [5], "judge": ["majority"], "ccs": [5]})
    ccs.write_parquet(tmp_path / "ccs.parquet")
    args = SimpleNamespace(
        arch="ViT-B-16",
        pretrained="laion2b_s34b_b88k",
        ccs=tmp_path / "ccs.parquet",
        head_groups=tmp_path / "groups.parquet",
        labels=tmp_path / "labels.parquet",
        layers=[-4, -3, -2, -1],
        strategies=["published"],
        random_seeds=[0],
        concept_groups=None,
        concept_pairs=None,
        concept_heads="high",
        manual=None,
    )
    clip = SimpleNamespace(n_heads=12, layer_index=lambda layer: layer % 12)
    sets = {s.strategy: s.head_names for s in prune_sets(args, clip)}
    lists = find_published("ViT-B-16", "laion2b_s34b_b88k")
    assert sets["published:high"] == sorted(lists["high"], key=parse_head)
    assert len(sets["published:high"]) == 13 and len(sets["published:low"]) == 6


def test_jaccard():
    assert jaccard(["L1.H1", "L1.H2"], ["L1.H2", "L1.H3"]) == pytest.approx(1 / 3)
    assert jaccard([], ["L1.H1"]) == 0.0 and jaccard([], []) is None


# ------------------------------------------------------------------------------- report
def _prune_file(path: Path, rows: list[tuple[str, list[str], float]]) -> None:
    frame = pl.DataFrame(
        {
            "strategy": [r[0] for r in rows],
            "seed": [0] * len(rows),
            "heads": [sorted(r[1], key=parse_head) for r in rows],
            "n_heads": [len(r[1]) for r in rows],
            "top1": [r[2] for r in rows],
            "top5": [99.0] * len(rows),
            "n_images": [4000] * len(rows),
        },
        schema=PRUNE_RESULTS,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)


def _value(html: str, model: str, metric: str) -> str:
    pattern = (
        rf'<span class="ours"[^>]*data-model="{model}"[^>]*data-metric="{metric}"[^>]*>([^<]*)<'
    )
    found = re.findall(pattern, html)
    assert len(found) == 1, (model, metric, found)
    return found[0]


def test_the_report_sets_ours_beside_the_published_lists(tmp_path):
    run = tmp_path / "paper"
    ours_high = ["L11.H5", "L10.H8", "L9.H4"]  # 2 of the authors' 8: Jaccard 2 / 9
    ours_low = ["L8.H5", "L10.H1"]  # 1 of their 4: Jaccard 1 / 5
    _prune_file(
        run / "b32" / "prune" / "cifar10-objects.parquet",
        [
            ("original", [], 87.0),
            ("high", ours_high, 80.0),
            ("low", ours_low, 86.5),
            ("published:high", B32_HIGH, 78.25),
            ("published:low", B32_LOW, 86.0),
        ],
    )
    _prune_file(run / "cw" / "prune" / "cifar10-objects.parquet", [("original", [], 50.0)])
    classifier = pl.DataFrame({"class_id": [0, 1, 2, 3], "classname": OBJECTS})
    (run / "b32" / "classifiers").mkdir()
    classifier.write_parquet(run / "b32" / "classifiers" / "cifar10-objects.parquet")
    models = {
        "b32": {"arch": "ViT-B-32", "pretrained": "openai"},
        "cw": {"arch": "conceptworld-vit.json", "pretrained": "checkpoint.pt"},
    }
    out = build_report(
        run,
        models,
        ["cifar10-objects"],
        run / "report.html",
        run / "report",
        dataset_kinds={"cifar10-objects": "cifar10-objects"},
        prune_strategies=["original", "high", "low", "published"],
    )
    html = out.read_text()
    assert _value(html, "b32", "jaccard_high") == f"{2 / 9:.2f}"
    assert _value(html, "b32", "jaccard_low") == f"{1 / 5:.2f}"
    section = html.split("The authors' published head lists beside ours")[1]
    assert "2 shared of 9" in section and "L10.H8, L11.H5" in section
    assert "78.25" in section and "80.00" in section  # theirs and ours, high pruned
    assert "no published head lists for this model (conceptworld-vit.json" in section
    # the standalone pruning asset carries the same table
    assert "jaccard_high" in (run / "report" / "prune_cifar10-objects.html").read_text()
    # which set ran: the objects subset, with its classes from the classifier file
    setup = html.split('id="setup"')[1].split("</section>")[0]
    assert "CIFAR-10 (objects)" in setup and "<code>cifar10-objects</code>" in setup
    assert "4: airplane, automobile, ship, truck" in setup


def test_no_published_table_when_the_strategy_did_not_run(tmp_path):
    run = tmp_path / "demo"
    _prune_file(run / "m" / "prune" / "color.parquet", [("original", [], 90.0)])
    out = build_report(
        run,
        {"m": {"arch": "ViT-B-32", "pretrained": "openai"}},
        ["color"],
        run / "report.html",
        run / "report",
        prune_strategies=["original", "high"],
    )
    assert "published head lists" not in out.read_text()
