"""The mutual-knowledge explanations evaluated: faithfulness (Table 1), descriptor-augmented
zero-shot (Table 2), the concept world's true-vs-random region check, and the descriptor bank's
`classes` column."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from clipconcepts.mutual.augmented import (
    AugmentedSettings,
    PromptBank,
    augmented_table,
    augmented_zeroshot,
    class_descriptor_lists,
    descriptor_prompt,
)
from clipconcepts.mutual.faithfulness import (
    FaithfulnessSettings,
    blur_images,
    class_faithfulness,
    compose,
    curve_area,
    pad_curve,
    rank_concepts,
    region_masks,
    summarise_faithfulness,
)
from clipconcepts.mutual.faithfulness_truth import (
    object_mask,
    random_region,
    summarise_truth,
    true_region,
)

DATA = Path(__file__).parent / "data"


# ------------------------------------------------------------------------------ areas
def test_areas_on_hand_computed_curves():
    assert curve_area([1.0, 1.0, 1.0]) == pytest.approx(2.0)
    assert curve_area([2.0, 1.0, 0.0]) == pytest.approx(1.5 + 0.5)
    # L = 5: six points, unit steps
    assert curve_area([1, 0, 0, 0, 0, 0]) == pytest.approx(0.5)
    assert curve_area([1, 1, 0, 0, 0, 0]) == pytest.approx(1.5)
    assert curve_area([0.8, 0.6, 0.6, 0.4, 0.2, 0.0]) == pytest.approx(
        (1.4 + 1.2 + 1.0 + 0.6 + 0.2) / 2
    )
    assert curve_area([3.0]) == 0.0
    # an image with 2 concepts keeps its last point to L
    assert pad_curve([3.0, 2.0, 1.0], 6) == [3.0, 2.0, 1.0, 1.0, 1.0, 1.0]
    assert curve_area(pad_curve([3.0, 2.0, 1.0], 6)) == pytest.approx(2.5 + 1.5 + 3 * 1.0)


def test_summary_is_the_area_of_the_mean_curve_over_images_with_concepts():
    rows = []
    for image, (deletion, n) in enumerate((([2, 1, 0], 2), ([2, 2, 2], 0), ([1, 1, 1], 2))):
        for order in ("ranked", "random"):
            rows.append(
                {
                    "image_id": str(image),
                    "method": "pca",
                    "order": order,
                    "n_concepts": n,
                    "deletion": [float(x) for x in deletion],
                    "insertion": [0.0, 1.0, 2.0],
                    "deletion_correct": [True, True, False],
                    "insertion_correct": [False, True, True],
                }
            )
    summary = summarise_faithfulness(pl.DataFrame(rows), steps=2)
    row = summary.row(0, named=True)
    assert row["n_images"] == 2 and row["n_no_concepts"] == 1
    assert row["deletion_curve"] == pytest.approx([1.5, 1.0, 0.5])
    assert row["deletion"] == pytest.approx((2.5 + 1.5) / 2)
    assert row["acc_drop"] == pytest.approx(1.5) and row["acc_inc"] == pytest.approx(1.5)
    assert row["insertion"] == pytest.approx(2.0)


# ------------------------------------------------------------------------------ blur
def _picture(size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_deletion_blurs_only_inside_the_region_and_insertion_only_outside():
    image = _picture()
    blurred = blur_images(image[None], 0.1)[0]
    assert (blurred != image).mean() > 0.9  # a heavy blur changes nearly every pixel
    grid = np.full((4, 4), -1)
    grid[1:3, 0:2] = 0
    grid[0, 3] = 1
    masks = region_masks(grid, 32)
    assert set(masks) == {0, 1}
    assert masks[0].sum() == 4 * 8 * 8 and masks[0][8:24, 0:16].all()  # patch mask, 8 px
    deleted = compose(image, blurred, masks[0], "deletion")
    changed = (deleted != image).any(axis=-1)
    assert not changed[~masks[0]].any() and changed[masks[0]].mean() > 0.9
    inserted = compose(image, blurred, masks[0], "insertion")
    assert (inserted[masks[0]] == image[masks[0]]).all()
    assert (inserted[~masks[0]] == blurred[~masks[0]]).all()
    # insertion starts from the fully blurred image: nothing is the original there
    start = compose(image, blurred, np.zeros((32, 32), bool), "insertion")
    assert (start == blurred).all()


def test_concepts_ranked_by_visual_times_textual():
    concepts = [
        {"concept": 0, "visual": 0.9, "textual": 0.1},  # 0.09
        {"concept": 1, "visual": 0.5, "textual": 0.4},  # 0.20
        {"concept": 2, "visual": 0.3, "textual": 0.3},  # 0.09 (tie: id order)
    ]
    assert rank_concepts(concepts) == [1, 0, 2]


class _FakeTower:
    """Embeds an image by its per-channel maximum: blurring the red block lowers red."""

    def __init__(self):
        self.calls = 0

    def prepare(self, x):
        return x

    def encode_image(self, x):
        self.calls += x.shape[0]
        return x.amax(dim=(2, 3)) + 1e-3


def test_class_faithfulness_curves_and_shared_points():
    image = np.zeros((2, 16, 16, 3), np.uint8)
    image[:] = (0, 0, 100)
    image[:, :8, :8] = (255, 0, 0)  # a red quarter: concept 0's region exactly
    grid = [[0, -1], [-1, 1]]
    concepts = [
        {"concept": 0, "visual": 0.9, "textual": 0.9, "descriptor_id": 0},
        {"concept": 1, "visual": 0.1, "textual": 0.1, "descriptor_id": 1},
    ]
    rows = [
        {"index": i, "image_id": f"im{i}", "class_id": 0, "predicted_id": 0, "method": m,
         "concept_grid": grid, "concepts": concepts}
        for i in range(2) for m in ("pca", "kmeans")
    ]  # fmt: skip
    classifier = torch.eye(3)  # classes = R, G, B
    tower = _FakeTower()
    settings = FaithfulnessSettings(steps=3, blur_sigma=0.25, batch_size=7)
    originals = {}
    out = class_faithfulness(
        tower, classifier, image, rows, settings, np.random.default_rng(0), originals
    )
    assert len(out) == 8 and {r["order"] for r in out} == {"ranked", "random"}
    ranked = next(r for r in out if r["order"] == "ranked")
    assert ranked["concept_order"] == [0, 1] and ranked["n_concepts"] == 2
    assert len(ranked["deletion"]) == 4 and ranked["deletion"][2] == ranked["deletion"][3]
    # the original's score: 2.5 x cosine of (255, 0, 100) with red
    assert ranked["deletion"][0] == pytest.approx(2.5 * 255 / np.hypot(255, 100), abs=1e-3)
    assert ranked["deletion"][1] < ranked["deletion"][0]  # the red block blurred
    assert ranked["insertion"][1] > ranked["insertion"][0]  # the red block sharp again
    assert ranked["deletion_area"] == pytest.approx(curve_area(ranked["deletion"]))
    assert ranked["acc_drop"] == pytest.approx(3.0)  # class R predicted throughout
    # unique perturbed images only: per image the original, the blurred one, per method two
    # deletion and two insertion points, and the random order's other first point (if any)
    assert tower.calls <= 2 * (2 + 2 * (2 + 2 + 2))
    assert set(originals) == {0, 1} and originals[0][1] == pytest.approx(ranked["deletion"][0])


# ------------------------------------------------------------------------------ Table 2
def test_descriptor_prompt_is_the_papers():
    assert descriptor_prompt("tiger", "orange fur with black stripes") == (
        "how can you identify a tiger. Distinctive and physical features describing it is "
        "orange fur with black stripes"
    )
    with pytest.raises(ValueError, match="mutual.augmented.prompt"):
        AugmentedSettings(prompt="a photo of a {classname}")


class _TextEncoder:
    """Fixed embeddings of the prompts a test uses; records what it encodes."""

    def __init__(self, table):
        self.table, self.texts = table, []

    def __call__(self, texts):
        self.texts += list(texts)
        return torch.stack([torch.as_tensor(self.table[t], dtype=torch.float32) for t in texts])


E = torch.eye(4)
PROMPTS = {
    "cat whiskers": E[0],
    "dog collar": (E[1] + 0.5 * E[0]).tolist(),  # dog's Base weight leans towards cat's
    "fox bushy": E[2],
    "dog sly": E[3],
}


def _table2(labels, explanations, images):
    encoder = _TextEncoder(PROMPTS)
    prompts = PromptBank(encoder, ["cat", "dog", "fox"], "{classname} {descriptor}")
    settings = AugmentedSettings(prompt="{classname} {descriptor}", neighbours=1)
    own = [["whiskers"], ["collar"], ["bushy"]]
    emb = torch.nn.functional.normalize(torch.stack(images), dim=-1)
    result = augmented_zeroshot(emb, labels, explanations, own, prompts, torch.eye(3, 4), settings)
    return result, encoder


def test_augmented_zeroshot_adds_the_neighbours_explanations_leaving_the_image_out():
    dog = 0.6 * E[0] + 0.8 * E[3]  # a dog image that Base calls a cat
    result, encoder = _table2([1, 1, 2], {"pca": [["sly"], ["sly"], ["bushy"]]}, [dog, dog, E[2]])
    assert result["base"]["predicted"] == [0, 0, 2]
    # cat's nearest class is dog; dog gets "dog sly" from the other dog image (its own left
    # out): (dog collar + dog sly) . image = 0.755 > cat's 0.6
    assert result["pca"]["predicted"] == [1, 1, 2]
    assert sorted(encoder.texts) == sorted(PROMPTS)  # every prompt encoded once
    table = augmented_table(result, [1, 1, 2], [True, False, True])
    row = table.row(0, named=True)
    assert row["method"] == "pca" and row["plain_top1"] == pytest.approx(200 / 3)
    assert row["base_top1"] == pytest.approx(100 / 3) and row["ours_top1"] == pytest.approx(100)
    assert row["delta"] == pytest.approx(200 / 3) and (row["n_fixed"], row["n_broken"]) == (2, 0)


def test_leave_one_out_a_single_image_gets_nothing_from_itself():
    dog = 0.6 * E[0] + 0.8 * E[3]
    result, _ = _table2([1, 2], {"pca": [["sly"], ["bushy"]]}, [dog, E[2]])
    assert result["pca"]["predicted"] == result["base"]["predicted"] == [0, 2]


def test_class_descriptor_lists_from_the_classes_column():
    bank = pl.DataFrame(
        {
            "descriptor_id": [0, 1, 2],
            "text": ["stripes", "mane", "four legs"],
            "classes": [["tiger"], ["lion"], None],
        }
    )
    assert class_descriptor_lists(bank, ["tiger", "lion"]) == [
        ["stripes", "four legs"],
        ["mane", "four legs"],
    ]
    old = bank.drop("classes")  # a bank written before the column: every class, every text
    assert class_descriptor_lists(old, ["tiger", "lion"]) == [["stripes", "mane", "four legs"]] * 2


# ------------------------------------------------------------------------------ bank column
def test_bank_classes_column(tmp_path):
    from clipconcepts.mutual.descriptors import (
        Descriptor,
        build_descriptor_bank,
        pool_descriptors,
        read_descriptor_bank,
        with_classes,
        write_descriptor_bank,
    )

    pool = pool_descriptors(
        [("tiger", ["orange fur", "Stripes"]), ("zebra", ["stripes", "hooves"])]
    )
    assert [(d.text, d.source_class, d.classes) for d in pool] == [
        ("orange fur", "tiger", ("tiger",)),
        ("Stripes", "tiger", ("tiger", "zebra")),  # every class whose answer gave it
        ("hooves", "zebra", ("zebra",)),
    ]
    assert pool_descriptors([(None, ["a"])])[0].classes is None
    assert with_classes([Descriptor("a")], ["x", "y"])[0].classes == ("x", "y")
    # class-agnostic sources: every class of the dataset
    (tmp_path / "d.txt").write_text("fluffy tail\nred collar\n")
    file_pool, _ = build_descriptor_bank("file", path=tmp_path / "d.txt", classnames=["a", "b"])
    assert {d.classes for d in file_pool} == {("a", "b")}
    cw_pool, _ = build_descriptor_bank("conceptworld", classnames=["red", "green"])
    assert {d.classes for d in cw_pool} == {("red", "green")}
    # written and read back; a bank without the column reads as all-null
    path = write_descriptor_bank(pool, tmp_path / "bank.parquet", {"source": "llm"})
    bank, _ = read_descriptor_bank(path)
    assert bank.column("classes").to_pylist() == [["tiger"], ["tiger", "zebra"], ["zebra"]]
    old = pq.read_table(path).drop(["classes"])
    pq.write_table(old, tmp_path / "old.parquet")
    bank, _ = read_descriptor_bank(tmp_path / "old.parquet")
    assert bank.column("classes").to_pylist() == [None] * 3
    assert bank.schema.field("classes").type == pa.list_(pa.string())


def test_offline_llm_bank_names_every_class(tmp_path):
    from clipconcepts.llm.cache import LLMCache
    from clipconcepts.llm.factory import backend_from_spec
    from clipconcepts.mutual.descriptors import llm_descriptors

    backend = backend_from_spec({"backend": "offline", "lexicon": "conceptworld"})
    pool = llm_descriptors(backend, LLMCache(None), ["red", "green", "blue"])
    assert {d.classes for d in pool} == {("red", "green", "blue")}


# ------------------------------------------------------------------------------ concept world
def test_true_and_random_regions():
    from clipconcepts.conceptworld.generator import fixed_regions

    image = np.zeros((48, 48, 3), np.uint8)
    image[:] = (15, 25, 95)  # navy background
    image[16:26, 16:26] = (220, 30, 30)  # a red object
    image[17, 17] = (200, 60, 50)  # within 60 of red
    image[0:3, :] = (220, 30, 30)  # a red-ish frame edge is a fixed place, not the object
    obj = true_region(image, "red", "color", 60)
    assert obj.sum() == 100 and obj[16:26, 16:26].all()
    places = fixed_regions()
    fixed = np.logical_or.reduce(list(places.values()))
    assert (true_region(image, "red", "texture", 60) == (~obj & ~fixed)).all()
    assert (true_region(image, "red", "frame", 60) == places["frame"]).all()
    assert (true_region(image, "red", "dial", 60) == places["dial"]).all()
    assert object_mask(image, (30, 180, 30), 60).sum() == 0  # no green object
    assert (true_region(image, "red", "stamp", 60) == places["stamp"]).all()
    rolled = random_region(obj, np.random.default_rng(0))
    assert rolled.sum() == obj.sum()  # same area
    assert (rolled & obj).sum() == 0  # moved by a quarter to three quarters of the side
    with pytest.raises(ValueError, match="family"):
        true_region(image, "red", "shape", 60)


def test_margin_on_a_synthetic_case():
    per_image = [
        # score, after the true region, after the random one: drops 1.0 / 0.2, 0.5 / 0.5
        dict(image_id="a", class_id=0, skipped=False, area=0.1, score=2.0, score_true=1.0,
             score_random=1.8, correct=True, correct_true=False, correct_random=True),
        dict(image_id="b", class_id=1, skipped=False, area=0.3, score=1.5, score_true=1.0,
             score_random=1.0, correct=True, correct_true=True, correct_random=True),
        dict(image_id="c", class_id=1, skipped=True),
    ]  # fmt: skip
    table = summarise_truth(per_image, "color", ["red", "green"])
    data = table.row(0, named=True)
    assert data["level"] == "dataset" and data["region"] == "object"
    assert data["n_images"] == 2 and data["n_skipped"] == 1
    assert data["drop_true"] == pytest.approx(0.75) and data["drop_random"] == pytest.approx(0.35)
    assert data["margin"] == pytest.approx(0.4)
    assert data["wins"] == pytest.approx(0.5)  # only a's true drop is larger (b: a tie)
    assert data["acc_true"] == pytest.approx(0.5) and data["acc_random"] == pytest.approx(1.0)
    assert data["area"] == pytest.approx(0.2)
    classes = table.filter(pl.col("level") == "class")
    assert classes["classname"].to_list() == ["red", "green"]
    assert classes["margin"].to_list() == pytest.approx([0.8, 0.0])
    assert summarise_truth(per_image, "texture", ["red", "green"])["region"][0] == "background"


# ------------------------------------------------------------------------------ end to end
def _manifest_set(root: Path, size: int, n=6):
    from PIL import Image

    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(1)
    ids, paths, labels, colors = [], [], [], []
    for i in range(n):
        image = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
        red = i % 2 == 0
        image[size // 4 : size // 2, size // 4 : size // 2] = (
            (220, 30, 30) if red else (30, 180, 30)
        )
        Image.fromarray(image).save(root / f"images/{i}.png")
        ids.append(f"im{i}"), paths.append(f"images/{i}.png"), labels.append(i % 2)
        colors.append("red" if red else "green")
    pl.DataFrame({"image_id": ids, "path": paths, "label": labels, "color": colors}).write_parquet(
        root / "manifest.parquet"
    )
    (root / "classes.json").write_text('{"classnames": ["red", "green"], "templates": ["{}."]}')
    return dict(zip(ids, colors, strict=True))


@pytest.mark.parametrize("config", ["tiny-vit.json", "tiny-rn.json", "tiny-convnext.json"])
def test_tiny_towers_run_the_evaluations_end_to_end(config, tmp_path):
    from clipconcepts.data.zeroshot import build_zeroshot_dataset
    from clipconcepts.mutual.evaluation import Evaluation
    from clipconcepts.mutual.per_class import MutualSettings, TextSide
    from clipconcepts.mutual.run import run_mutual, squash_transform
    from clipconcepts.mutual.schemas import (
        AUGMENTED_SCHEMA,
        FAITHFULNESS_SCHEMA,
        FAITHFULNESS_SUMMARY_SCHEMA,
    )
    from clipconcepts.mutual.schemas import REGION_TRUTH_SCHEMA as TRUTH_SCHEMA
    from clipconcepts.mutual.towers import load_tower

    torch.manual_seed(0)
    tower = load_tower(str(DATA / config))
    colors = _manifest_set(tmp_path / "data", tower.image_size)
    dataset = build_zeroshot_dataset(
        "manifest", tmp_path / "data", squash_transform(tower.image_size)
    )
    texts = [f"d{i}" for i in range(30)]
    classifier = tower.encode_text(["red.", "green."])
    text = TextSide(classifier, tower.encode_text(texts), tower.encode_text(texts), top_u=10)
    settings = MutualSettings(top_k=20, top_u=10, sinkhorn_iterations=50, n_concepts=3)
    out = tmp_path / "out"
    evaluation = Evaluation(
        out / "faithfulness.parquet",
        out / "faithfulness_summary.parquet",
        out / "augmented.parquet",
        out / "faithfulness_truth.parquet",
        own_descriptors=[texts[:5], texts[5:10]],
        faithfulness=FaithfulnessSettings(steps=3, batch_size=16),
        augmented=AugmentedSettings(),
        family="color",
        colors=colors,
    )
    run_mutual(
        tower, dataset, text, texts, settings, out / "images.parquet", out / "summary.parquet",
        evaluation=evaluation,
    )  # fmt: skip
    faith = pl.read_parquet(out / "faithfulness.parquet")
    assert faith.schema == pl.Schema(FAITHFULNESS_SCHEMA) and faith.height == 6 * 2 * 2
    assert all(len(c) == 4 for c in faith["deletion"]) and all(
        len(c) == 4 for c in faith["insertion"]
    )
    summary = pl.read_parquet(out / "faithfulness_summary.parquet")
    assert summary.schema == pl.Schema(FAITHFULNESS_SUMMARY_SCHEMA) and summary.height == 4
    meta = json.loads(
        pq.read_schema(out / "faithfulness_summary.parquet").metadata[b"clipconcepts"]
    )
    assert meta["faithfulness"]["steps"] == 3 and meta["faithfulness"]["blur_sigma"] == 0.1
    augmented = pl.read_parquet(out / "augmented.parquet")
    assert augmented.schema == pl.Schema(AUGMENTED_SCHEMA)
    assert augmented["method"].to_list() == ["pca", "kmeans"] and augmented["n_images"][0] == 6
    truth = pl.read_parquet(out / "faithfulness_truth.parquet")
    assert truth.schema == pl.Schema(TRUTH_SCHEMA) and truth["level"].to_list()[0] == "dataset"
    assert truth["n_images"][0] + truth["n_skipped"][0] == 6
    images = pl.read_parquet(out / "images.parquet")
    ok = images.filter(pl.col("n_foreground") > 0)
    assert all(
        len(c) == len(np.unique([x for row in g for x in row if x >= 0]))
        for c, g in zip(ok["concepts"], ok["concept_grid"], strict=True)
    )
    assert not (out / "images.parquet.parts").exists()


# ------------------------------------------------------------------------------ report
def _faithfulness_summary(ranked=(2.4, 3.2, 1.5, 1.9), rand=(2.8, 3.0, 2.0, 1.5)):
    rows = []
    for method in ("pca", "kmeans"):
        for order, v in (("ranked", ranked), ("random", rand)):
            rows.append(
                {"method": method, "order": order, "steps": 5, "n_images": 50,
                 "n_no_concepts": 1, "deletion": v[0], "insertion": v[1], "acc_drop": v[2],
                 "acc_inc": v[3]}
            )  # fmt: skip
    return pl.DataFrame(rows)


def test_report_tables_written_from_the_files(tmp_path):
    from clipconcepts.mutual.schemas import FAITHFULNESS_SUMMARY_SCHEMA
    from clipconcepts.mutual.schemas import REGION_TRUTH_SCHEMA as TRUTH_SCHEMA
    from clipconcepts.report.assets import caption_path, report_assets
    from clipconcepts.report.inputs import ModelInfo, RunLayout
    from clipconcepts.report.mutual_faithfulness import (
        augmented_table as augmented_html,
    )
    from clipconcepts.report.mutual_faithfulness import (
        faithfulness_table,
        faithfulness_verdicts,
        region_verdict,
        regions_section_body,
    )
    from clipconcepts.report.mutual_inputs import gather_mutual
    from clipconcepts.report.paper import load_paper_values

    values = load_paper_values()
    layout = RunLayout(tmp_path)
    model = ModelInfo("ViT-B-16__openai", "ViT-B-16", "openai", "ViT-B/16")
    summary = _faithfulness_summary().cast(
        {k: v for k, v in FAITHFULNESS_SUMMARY_SCHEMA.items() if "curve" not in k}
    )
    for s in ("imagenet-val", "color"):
        path = layout.mutual(model.key, s, "faithfulness_summary")
        path.parent.mkdir(parents=True)
        summary.write_parquet(path)
        pl.DataFrame(
            {"method": ["pca", "kmeans"], "n_images": [10, 10], "plain_top1": [66.0, 66.0],
             "base_top1": [67.0, 67.0], "ours_top1": [69.5, 68.0], "delta": [2.5, 1.0]}
        ).write_parquet(layout.mutual(model.key, s, "augmented"))  # fmt: skip
    regions = pl.DataFrame(
        [("dataset", None, "object", 8, 0, 0.1, 0.3, 0.1, 0.2, 0.75)],
        schema=[c for c in TRUTH_SCHEMA if c not in ("class_id", "score", "accuracy",
                                                      "acc_true", "acc_random")],
        orient="row",
    )  # fmt: skip
    regions.write_parquet(layout.mutual(model.key, "color", "faithfulness_truth"))
    pl.DataFrame(schema=TRUTH_SCHEMA).write_parquet(
        layout.mutual(model.key, "imagenet-val", "faithfulness_truth")
    )
    run = gather_mutual(layout, [model], ["imagenet-val", "color"], values)
    result = run.results[model.key, "imagenet-val"]
    assert result.regions is None  # an empty file (not a concept-world set) reads as absent
    assert faithfulness_verdicts(result.faithfulness)["pca"][0] == "holds"
    worse = _faithfulness_summary(ranked=(2.9, 3.2, 1.5, 1.9))
    assert faithfulness_verdicts(worse)["pca"] == (
        "does not hold",
        "not better than random on Deletion ↓",
    )

    html = faithfulness_table(run, "imagenet-val", values)
    assert 'data-metric="deletion"' in html and "2.400" in html and "[2.800]" in html
    assert "(2.460)" in html and "(2.422)" in html  # the paper's Table 1, PCA and K-means
    assert "(2.460)" not in faithfulness_table(run, "color", values)  # not on its dataset
    html = augmented_html(run, "imagenet-val", values)
    assert "69.50" in html and "(67.93)" in html and "(70.28)" in html  # ViT-B/16's Table 2
    assert "(67.93)" not in augmented_html(run, "color", values)
    body = regions_section_body(run, "color")
    assert 'data-verdict="holds"' in body and "+0.200" in body
    assert region_verdict(run.results[model.key, "color"].regions)[0] == "holds"
    assert "concept-world sets only" in regions_section_body(run, "imagenet-val")
    names = [a.name for a in report_assets([], ["color"])]
    assert {"mutual_color_faithfulness.html", "mutual_color_augmented.html"} <= set(names)
    for asset in report_assets([], ["color"]):
        assert caption_path(asset.kind).read_text().strip()
