"""The attribution steps end to end through `python -m clipconcepts`'s parser, on a tiny random
model and a small manifest dataset on disk: every target, every output schema."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from clipconcepts.attribution import schemas
from clipconcepts.cli import main

CLASSES = ["red", "blue", "striped"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one thread is fastest, and immune to a busy machine's other threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from clipconcepts.evaluate import build_classifier, save_classifier
    from clipconcepts.models import load_clip

    root = tmp_path_factory.mktemp("attribution")
    data = root / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(data / f"{i}.png")
        rows.append((f"im{i}", f"{i}.png", i % len(CLASSES)))
    pl.DataFrame(rows, schema=["image_id", "path", "label"], orient="row").write_parquet(
        data / "manifest.parquet"
    )
    (data / "classes.json").write_text(
        json.dumps({"classnames": CLASSES, "templates": ["a photo of something {}."]})
    )
    arch = str(Path(__file__).parent / "data/tiny-vit.json")
    torch.manual_seed(0)
    clip = load_clip(arch)
    torch.save(clip.model.state_dict(), root / "tiny.pt")  # every step loads the same weights
    weights = build_classifier(clip, CLASSES, ["a photo of something {}."])
    save_classifier(root / "classifier.pt.parquet", weights, CLASSES)
    # a CCS table for the last layers (tiny-vit: 3 layers of 4 heads)
    ccs = [
        (layer, head, ["color", "texture", "position", "color"][head], "majority", head + 1)
        for layer in range(1, 3)
        for head in range(4)
    ]
    pl.DataFrame(
        ccs, schema=["layer", "head", "label", "judge", "ccs"], orient="row"
    ).write_parquet(root / "ccs.parquet")
    return root, [arch, f"--pretrained={root / 'tiny.pt'}"], data


def _run(step, *args):
    assert main([step, *map(str, args)]) == 0, step


@pytest.mark.parametrize("target", ["truth", "predicted", "prompt"])
def test_every_step_writes_its_schema(setup, target, tmp_path):
    root, arch, data = setup
    spec = json.dumps({"toy": {"kind": "manifest", "root": str(data)}})
    common = [
        "--arch", *arch, "--datasets", "toy", "--dataset-specs", spec,
        "--classifiers", root / "classifier.pt.parquet", "--n-images", 9, "--seed", 1,
        "--target", target, "--prompt", "a striped thing" if target == "prompt" else "",
        "--batch-size", 4,
    ]  # fmt: skip
    out = {k: tmp_path / f"{k}.parquet" for k in ("scores", "ablation", "deletion")}
    _run("attribution-scores", *common, "--out", out["scores"])
    _run("attribution-ablation", *common, "--layers", "last4", "--out", out["ablation"])
    _run(
        "attribution-deletion", *common, "--scores", out["scores"], "--ablation",
        out["ablation"], "--ccs", root / "ccs.parquet", "--num-steps", 3, "--subsets", 3,
        "--out", out["deletion"],
    )  # fmt: skip
    tables = ["--datasets", "toy", "--scores", out["scores"], "--ablation", out["ablation"]]
    heads = tmp_path / "heads.parquet"
    _run("attribution-heads", *tables, "--ccs", root / "ccs.parquet", "--out", heads)
    _run("attribution-faithfulness", *tables, "--heads", heads, "--out", tmp_path / "c.parquet")
    groups = json.dumps({"color": ["color"], "texture": ["texture"], "position": ["position"]})
    _run(
        "attribution-reliance", *tables, "--heads", heads, "--classifiers",
        root / "classifier.pt.parquet", "--concept-groups", groups, "--lexicons",
        json.dumps({"toy": "conceptworld"}), "--top-k", 2,
        "--prompt", "a striped thing" if target == "prompt" else "",
        "--out", tmp_path / "r.parquet",
    )  # fmt: skip
    expected = {
        "scores": schemas.SCORES,
        "ablation": schemas.ABLATION,
        "deletion": schemas.DELETION,
        "heads": schemas.HEADS,
        "c": schemas.CORRELATIONS,
        "r": schemas.RELIANCE,
    }
    for name, schema in expected.items():
        frame = pl.read_parquet(tmp_path / f"{name}.parquet")
        assert frame.schema == pl.Schema(schema), name
    scores = pl.read_parquet(out["scores"])
    assert scores["image_id"].n_unique() == 9 and len(scores) == 9 * 12
    ablation = pl.read_parquet(out["ablation"])
    assert set(ablation["image_id"]) == set(scores["image_id"]) and len(ablation) == 9 * 12
    # the same y everywhere: the scores' clean y is the ablation's and the curves' first point
    y = scores.group_by("image_id").agg(pl.col("y").first()).sort("image_id")
    y2 = ablation.group_by("image_id").agg(pl.col("y").first()).sort("image_id")
    np.testing.assert_allclose(y["y"], y2["y"], rtol=1e-5)
    deletion = pl.read_parquet(out["deletion"])
    start = deletion.filter(pl.col("step") == 0)["y100"]
    np.testing.assert_allclose(start, 100 * y["y"].mean(), rtol=1e-5)
    if target == "prompt":
        assert scores["target"].unique().to_list() == [-1]
        reliance = pl.read_parquet(tmp_path / "r.parquet")
        assert set(reliance["classname"]) <= {"a striped thing"}
    elif target == "truth":
        assert (scores["target"] == scores["label"]).all()
    meta = json.loads(pq.read_schema(out["scores"]).metadata[b"clipconcepts"])
    assert meta["target"] == target and meta["n_images"] == 9 and meta["dataset"] == "toy"


def test_truth_step(setup, tmp_path):
    root, arch, data = setup
    spec = json.dumps({"toy": {"kind": "manifest", "root": str(data)}})
    common = [
        "--arch", *arch, "--datasets", "toy", "--dataset-specs", spec,
        "--classifiers", root / "classifier.pt.parquet", "--n-images", 6,
        "--baselines", "zero",
    ]  # fmt: skip
    _run("attribution-scores", *common, "--out", tmp_path / "s.parquet")
    _run("attribution-ablation", *common, "--out", tmp_path / "a.parquet")
    tables = ["--datasets", "toy", "--scores", tmp_path / "s.parquet"]
    tables += ["--ablation", tmp_path / "a.parquet"]
    _run(
        "attribution-heads", *tables, "--ccs", root / "ccs.parquet", "--out", tmp_path / "h.parquet"
    )
    truth = pl.DataFrame(
        [(layer, head, f, float(head == 0), float(head == 0), (f == "color") == (head == 0))
         for layer in range(3) for head in range(4) for f in ("color", "texture")],
        schema=["layer", "head", "family", "score", "share", "is_top"], orient="row",
    )  # fmt: skip
    truth.write_parquet(tmp_path / "truth_in.parquet")
    _run(
        "attribution-truth", "--datasets", "toy", "--heads", tmp_path / "h.parquet",
        "--head-truth", tmp_path / "truth_in.parquet", "--families", json.dumps({"toy": "color"}),
        "--out", tmp_path / "t.parquet",
    )  # fmt: skip
    frame = pl.read_parquet(tmp_path / "t.parquet")
    assert frame.schema == pl.Schema(schemas.TRUTH)
    assert frame["n_truth"][0] == 3 and frame["n_pool"][0] == 12  # 3 layers: last4 = all
    assert "atp_mean" not in set(frame["view"])  # no mean baseline: no such view
    # a dataset count mismatch fails with a clear message
    bad = ["--datasets", "toy", "other", *tables[2:], "--ccs", root / "ccs.parquet"]
    assert main(["attribution-heads", *map(str, bad), "--out", str(tmp_path / "x.parquet")]) == 1
