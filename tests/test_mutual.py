"""The mutual-knowledge stage: MI and its dynamics, Sinkhorn, the foreground split, concepts,
visual prompts, and the per-class path on a tiny model."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch

from clipconcepts.mutual.concepts import kmeans_concepts, pca_concepts
from clipconcepts.mutual.foreground import fix_signs, foreground_masks, largest_components
from clipconcepts.mutual.information import (
    REMOVED,
    area_under_curve,
    average_curves,
    mutual_information,
    removal_curve,
)
from clipconcepts.mutual.optimal_transport import select_descriptors, sinkhorn
from clipconcepts.mutual.visual_prompts import (
    Ellipse,
    draw_prompts,
    ellipse_mask,
    fit_ellipse,
)

# ------------------------------------------------------------------------------ MI


def test_mi_eq9_hand_cases():
    dy = list(range(50))
    # identical sets of 15: ln(15 * 50 * 15)
    assert mutual_information(list(range(15)), dy) == pytest.approx(math.log(15 * 50 * 15))
    # disjoint: 0
    assert mutual_information([100, 101, 102], dy) == 0.0
    # partial overlap: 2 of 4 shared -> ln(4 * 50 * 2)
    assert mutual_information([3, 100, 7, 101], dy) == pytest.approx(math.log(4 * 50 * 2))
    # empty sides
    assert mutual_information([], dy) == 0.0
    assert mutual_information([1, 2], []) == 0.0


def test_mi_eq9_equals_the_contingency_table_form():
    rng = np.random.default_rng(0)
    for _ in range(20):
        dv = rng.choice(60, size=rng.integers(1, 16), replace=False).tolist()
        dy = rng.choice(60, size=50, replace=False).tolist()
        table = np.array([[float(x == y) for y in dy] for x in dv])
        if table.sum() == 0:
            assert mutual_information(dv, dy) == 0.0
            continue
        p = table / table.sum()
        joint = -np.sum(p[p > 0] * np.log(p[p > 0]))
        assert mutual_information(dv, dy) == pytest.approx(
            math.log(len(dv)) + math.log(len(dy)) + joint
        )


def test_mi_eq1_is_textbook_mi():
    dy = list(range(10))
    assert mutual_information([1, 2, 3, 99], dy, "eq1") == pytest.approx(math.log(3))
    assert mutual_information([1, 99], dy, "eq1") == pytest.approx(0.0)
    with pytest.raises(ValueError, match="mutual.mi_form"):
        mutual_information([1], dy, "eq7")


def test_removal_curve_overwrite_semantics():
    dy = [1, 2, 3, 4]
    curve = removal_curve([1, 9, 2], dy)
    # |D_v| stays 3 at every point (overwritten, not dropped): ln(3*4*k)
    assert curve == pytest.approx(
        [math.log(3 * 4 * 2), math.log(3 * 4 * 1), math.log(3 * 4 * 1), 0]
    )
    assert len(curve) == 4  # N + 1 points
    assert removal_curve([], dy) == [0.0]
    assert REMOVED not in dy


def test_curves_zero_padded_and_averaged():
    mean = average_curves([[3.0, 1.0, 0.0], [5.0, 0.0]])
    assert mean.tolist() == [4.0, 0.5, 0.0]
    # AUC: the mean over the global length, not each curve's own
    assert area_under_curve(mean) == pytest.approx(1.5)
    assert average_curves([]).size == 0


# ------------------------------------------------------------------------------ Sinkhorn


def test_sinkhorn_marginals_and_pot_agreement():
    ot = pytest.importorskip("ot")
    gen = torch.Generator().manual_seed(0)
    scores = torch.rand(5, 12, generator=gen, dtype=torch.float64) * 2 - 1
    plan = sinkhorn(scores, scale=2.5, iterations=2000)
    # columns sum to 1 (the last normalisation), rows to n/m
    assert plan.sum(dim=0) == pytest.approx(torch.ones(12, dtype=torch.float64), abs=1e-9)
    assert plan.sum(dim=1) == pytest.approx(torch.full((5,), 12 / 5, dtype=torch.float64), abs=1e-6)
    pot = ot.sinkhorn(
        np.full(5, 1 / 5), np.full(12, 1 / 12), (-2.5 * scores).numpy(), reg=1.0,
        numItermax=5000, stopThr=1e-12,
    )  # fmt: skip
    assert plan.numpy() / plan.numpy().sum() == pytest.approx(pot / pot.sum(), abs=1e-8)


def test_sinkhorn_batch_masks_padding():
    gen = torch.Generator().manual_seed(1)
    a = torch.rand(3, 4, generator=gen)
    padded = torch.zeros(1, 5, 7)
    padded[0, :3, :4] = a
    rows = torch.tensor([[1, 1, 1, 0, 0]]).float()
    cols = torch.tensor([[1, 1, 1, 1, 0, 0, 0]]).float()
    batched = sinkhorn(padded, rows, cols)[0]
    assert batched[3:].abs().max() == 0 and batched[:, 4:].abs().max() == 0
    assert batched[:3, :4] == pytest.approx(sinkhorn(a), abs=1e-6)


def test_select_descriptors_topk_relevance_and_empty_intersection():
    d = 4
    desc = torch.eye(d)
    # two concepts both closest to descriptors 0 and 1; the image is close to 0, 1
    concepts = [torch.tensor([[1.0, 0.8, 0.0, 0.0], [0.8, 1.0, 0.0, 0.0]])]
    image = torch.nn.functional.normalize(torch.tensor([[1.0, 0.97, 0.1, 0.0]]), dim=-1)
    (sel,) = select_descriptors(concepts, image, desc, desc, top_k=2, per_concept=1)
    assert sel.status == "ok" and set(sel.ids) == {0, 1}
    assert sel.ids == [0, 1]  # ordered by relevance to the image
    # concepts with disjoint top-1 -> empty intersection, reported, not raised
    concepts = [torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])]
    (sel,) = select_descriptors(concepts, image, desc, desc, top_k=1)
    assert sel.status == "empty_intersection" and sel.ids == []


def test_relevance_filter_is_strict_mean_minus_offset():
    desc = torch.eye(3)
    concepts = [torch.ones(1, 3) / math.sqrt(3)]
    image = torch.tensor([[0.6, 0.6, 0.0]])  # relevance 0.6, 0.6, 0 -> mean 0.4
    (sel,) = select_descriptors(concepts, image, desc, desc, top_k=3, relevance_offset=0.0)
    assert sorted(sel.ids) == [0, 1]
    # offset 0.4: threshold exactly 0.0 -> descriptor 2 (relevance 0.0) still excluded (strict)
    (sel,) = select_descriptors(concepts, image, desc, desc, top_k=3, relevance_offset=0.4)
    assert sorted(sel.ids) == [0, 1]


def _one_concept_case():
    """6 unit descriptors whose logits with the single concept fall with their index."""
    gen = torch.Generator().manual_seed(3)
    concept = torch.nn.functional.normalize(torch.randn(1, 8, generator=gen), dim=-1)
    noise = torch.nn.functional.normalize(torch.randn(6, 8, generator=gen), dim=-1)
    weights = torch.tensor([0.95, 0.9, 0.85, 0.2, 0.1, 0.0])[:, None]
    desc = torch.nn.functional.normalize(weights * concept + (1 - weights) * noise, dim=-1)
    image = torch.nn.functional.normalize(torch.randn(1, 8, generator=gen), dim=-1)
    return concept, image, desc


def test_single_concept_picks_by_its_logits_or_the_authors_tie_order():
    concept, image, desc = _one_concept_case()
    logits = (concept @ desc.T)[0]
    assert logits.argsort(descending=True)[:3].tolist() == [0, 1, 2]
    kwargs = {"top_k": 6, "relevance_offset": 10.0, "per_concept": 3}  # every descriptor kept
    (sel,) = select_descriptors([concept], image, desc, desc, **kwargs)
    assert sorted(sel.ids) == [0, 1, 2] and sel.concept_top == [0]
    # D_v is ordered by relevance to the image, as every D_v
    assert sel.relevance == sorted(sel.relevance, reverse=True)
    # the authors' rule: the one-row plan is all ones after the column step, any 3 tie
    plan = sinkhorn(concept @ desc.T, iterations=50)
    assert torch.equal(plan, torch.ones_like(plan))
    (theirs,) = select_descriptors([concept], image, desc, desc, single_concept="authors", **kwargs)
    assert sorted(theirs.ids) == sorted(plan.topk(3, dim=1).indices[0].tolist())
    with pytest.raises(ValueError, match="mutual.single_concept"):
        select_descriptors([concept], image, desc, desc, single_concept="first", **kwargs)


def test_single_concept_rule_leaves_several_concepts_alone():
    concept, image, desc = _one_concept_case()
    two = torch.cat([concept, desc[3:4]])  # a second concept: the plan carries information
    kwargs = {"top_k": 6, "relevance_offset": 10.0, "per_concept": 2, "iterations": 200}
    (ours,) = select_descriptors([two], image, desc, desc, **kwargs)
    (theirs,) = select_descriptors([two], image, desc, desc, single_concept="authors", **kwargs)
    assert ours.ids == theirs.ids and ours.concept_top == theirs.concept_top


# ------------------------------------------------------------------------------ foreground
# ------------------------------------------------------------------------------ foreground


def test_sign_rule_cases():
    comps = np.array(
        [[1.0, -1.0, 1.0, -1.0], [1.0, -1.0, 1.0, 1.0], [1.0, -1.0, -1.0, 1.0], [1, -1, 1.0, -1.0]]
    )
    fixed = fix_signs(comps)
    assert (fixed[:, 0] == comps[:, 0]).all()  # all positive: not flipped
    assert (fixed[:, 1] == comps[:, 1]).all()  # all negative: not flipped
    assert (fixed[:, 2] == -comps[:, 2]).all()  # 3/4 positive: flipped
    assert (fixed[:, 3] == comps[:, 3]).all()  # exactly half positive: not flipped


def test_largest_components_eight_connected_and_second():
    grid = np.zeros((8, 8), bool)
    grid[0, 0] = grid[1, 1] = grid[2, 2] = True  # diagonal: one 8-connected component of 3
    grid[5:8, 5:8] = True  # 9 cells
    grid[0, 7] = True  # a single cell
    kept = largest_components(grid)
    assert kept[5:8, 5:8].all() and kept[0, 0] == kept[1, 1] == False  # noqa: E712 (3 < 5)
    grid[3, 3] = grid[4, 4] = True  # diagonal grows to 5 cells... touching the square (8-conn)
    assert largest_components(grid)[0, 0]
    assert not largest_components(np.zeros((4, 4), bool)).any()


def test_spectral_split_recovers_a_planted_foreground():
    rng = np.random.default_rng(0)
    b, h, w, c = 6, 8, 8, 32
    # CLIP tokens share a dominant direction (the first singular vector); the second one
    # separates the object's patches from the rest
    common, fg_dir, bg_dir = 4 * rng.normal(size=c), rng.normal(size=c), rng.normal(size=c)
    feats = np.empty((b, h, w, c))
    truth = np.zeros((b, h, w), bool)
    for i in range(b):
        top, left = rng.integers(0, 4, size=2)
        truth[i, top : top + 3, left : left + 4] = True
        planted = np.where(truth[i][..., None], fg_dir, bg_dir)
        feats[i] = common + planted + 0.1 * rng.normal(size=(h, w, c))
    masks = foreground_masks(torch.tensor(feats.reshape(b, h * w, c)), (h, w))
    assert (masks == truth).mean() > 0.97


# ------------------------------------------------------------------------------ concepts


def test_concepts_group_planted_clusters():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 5
    x = np.concatenate([c + 0.1 * rng.normal(size=(20, 16)) for c in centres])
    truth = np.repeat(np.arange(3), 20)
    labels = kmeans_concepts(x, 3, seed=0)
    # each planted cluster is one concept
    assert all(len(set(labels[truth == k])) == 1 for k in range(3))
    assert len(set(labels)) == 3
    # PCA + min-max + arg-max: two clusters get different concepts (by majority)
    labels = pca_concepts(x[:40], 2)
    majority = [np.bincount(labels[truth[:40] == k]).argmax() for k in range(2)]
    assert majority[0] != majority[1] and set(labels) <= {0, 1}
    assert (kmeans_concepts(x, 3, seed=4) == kmeans_concepts(x, 3, seed=4)).all()  # seeded
    assert kmeans_concepts(x[:1], 5).tolist() == [0] and pca_concepts(x[:1], 5).tolist() == [0]


_PCA_IN_A_PROCESS = """
import json, sys
import numpy as np
from clipconcepts.mutual.concepts import pca_concepts
np.random.seed(int(sys.argv[1]))  # the global state a randomized solver would follow
x = np.random.default_rng(0).normal(size=(800, 600))  # large enough for sklearn's randomized
print(json.dumps(pca_concepts(x, 5, seed=0).tolist()))
"""


def test_pca_labels_identical_across_two_processes():
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import clipconcepts

    env = {**os.environ, "PYTHONPATH": str(Path(clipconcepts.__file__).parents[1])}
    runs = [
        subprocess.run(
            [sys.executable, "-c", _PCA_IN_A_PROCESS, str(state)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        for state in (1, 2)
    ]
    first, second = (json.loads(r.stdout) for r in runs)
    assert len(first) == 800 and len(set(first)) == 5
    assert first == second


# ------------------------------------------------------------------------------ visual prompts


def test_prompts_leave_the_inside_of_the_ellipse_untouched():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(48, 48, 3), dtype=np.uint8)
    ellipse = Ellipse(20.0, 24.0, 18.0, 10.0, 30.0)
    prompts = draw_prompts(image, ellipse)
    assert prompts.shape == (3, 48, 48, 3)
    outline = np.zeros((48, 48), np.uint8)
    import cv2

    cv2.ellipse(outline, ellipse.box, 1, thickness=1)
    inside = ellipse_mask((48, 48), ellipse) & ~outline.astype(bool)
    for prompt in prompts:
        assert (prompt[inside] == image[inside]).all()
        assert (prompt[outline.astype(bool)] == [255, 0, 0]).all()
    outside = ~ellipse_mask((48, 48), ellipse) & ~outline.astype(bool)
    gray = prompts[1][outside]
    assert (gray[:, 0] == gray[:, 1]).all() and (gray[:, 1] == gray[:, 2]).all()
    assert (prompts[0][outside] == image[outside]).all()
    assert not (prompts[2][outside] == image[outside]).all()  # blurred


def test_fit_ellipse_on_a_region_and_tiny_region():
    mask = np.zeros((48, 48), np.uint8)
    mask[8:24, 16:40] = 1
    e = fit_ellipse(mask)
    assert e.cx == pytest.approx(27.5, abs=1) and e.cy == pytest.approx(15.5, abs=1)
    tiny = np.zeros((48, 48), np.uint8)
    tiny[5, 5] = 1  # a single pixel: contour under 5 points -> moments
    e = fit_ellipse(tiny)
    assert (e.cx, e.cy) == (5.0, 5.0) and e.width > 0 and e.height > 0
    assert fit_ellipse(np.zeros((8, 8), np.uint8)) is None


def test_squash_is_bilinear_as_the_authors_or_bicubic():
    from PIL import Image

    from clipconcepts.mutual.run import squash_transform

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (61, 97, 3), dtype=np.uint8))  # not 224
    bilinear = squash_transform(224)(image)  # the default
    bicubic = squash_transform(224, "bicubic")(image)
    assert bilinear.shape == bicubic.shape == (3, 224, 224) and bilinear.dtype == torch.uint8
    as_pil = {
        mode: torch.from_numpy(np.array(image.resize((224, 224), mode))).permute(2, 0, 1)
        for mode in (Image.BILINEAR, Image.BICUBIC)
    }
    assert torch.equal(bilinear, as_pil[Image.BILINEAR])  # torchvision's default Resize
    assert torch.equal(bicubic, as_pil[Image.BICUBIC])
    assert not torch.equal(bilinear, bicubic)
    with pytest.raises(ValueError, match="mutual.resize"):
        squash_transform(224, "nearest")


# ------------------------------------------------------------------------------ per class
# ------------------------------------------------------------------------------ per class


def _text_side(clip, n_classes=3, n_desc=40):
    from clipconcepts.mutual.per_class import TextSide

    gen = torch.Generator().manual_seed(0)

    def unit(n):
        return torch.nn.functional.normalize(torch.randn(n, clip.embed_dim, generator=gen), dim=-1)

    return TextSide(unit(n_classes), unit(n_desc), unit(n_desc), top_u=10)


def test_explain_class_rows_and_a_blank_image_is_counted(tiny_clip):
    from clipconcepts.mutual.per_class import MutualSettings, explain_class

    size = tiny_clip.visual.preprocess_cfg["size"][0]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(4, size, size, 3), dtype=np.uint8)
    images[3] = 128  # a flat image: no structure to split
    settings = MutualSettings(top_k=20, top_u=10, sinkhorn_iterations=50)
    rows = explain_class(
        tiny_clip, images, [f"im{i}" for i in range(4)], [1] * 4, _text_side(tiny_clip), settings
    )
    assert len(rows) == 8 and {r["method"] for r in rows} == {"pca", "kmeans"}
    for r in rows:
        assert r["status"] in ("ok", "no_foreground", "empty_intersection")
        assert len(r["curve"]) == len(r["dv_ids"]) + 1 and r["mi"] == r["curve"][0]
        assert len(r["dv_ids"]) <= 5 * 3 and len(set(r["dv_ids"])) == len(r["dv_ids"])
        if r["status"] != "ok":
            assert r["dv_ids"] == [] and r["mi"] == 0.0


def test_explain_class_counts_an_image_without_foreground(tiny_clip, monkeypatch):
    from clipconcepts.mutual import per_class
    from clipconcepts.mutual.per_class import MutualSettings, explain_class

    real = per_class.foreground_masks

    def first_image_empty(*args, **kwargs):
        masks = real(*args, **kwargs)
        masks[0] = False
        return masks

    monkeypatch.setattr(per_class, "foreground_masks", first_image_empty)
    size = tiny_clip.visual.preprocess_cfg["size"][0]
    images = np.random.default_rng(2).integers(0, 256, size=(3, size, size, 3), dtype=np.uint8)
    settings = MutualSettings(top_k=20, top_u=10, sinkhorn_iterations=50)
    rows = explain_class(tiny_clip, images, list("abc"), [0] * 3, _text_side(tiny_clip), settings)
    first = [r for r in rows if r["image_id"] == "a"]
    assert [r["status"] for r in first] == ["no_foreground"] * 2
    assert all(r["mi"] == 0.0 and r["curve"] == [0.0] and r["n_foreground"] == 0 for r in first)
    assert all(r["ellipses"] == [] for r in first)


def test_run_writes_schema_and_resumes(tiny_clip, tmp_path):
    from PIL import Image

    from clipconcepts.data.zeroshot import build_zeroshot_dataset
    from clipconcepts.mutual.per_class import MutualSettings
    from clipconcepts.mutual.run import run_mutual, squash_transform
    from clipconcepts.mutual.schemas import IMAGE_SCHEMA, SUMMARY_SCHEMA

    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(1)
    ids, paths, labels = [], [], []
    for i in range(9):
        path = f"images/{i}.png"
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / path)
        ids.append(f"im{i}"), paths.append(path), labels.append(i % 3)
    pl.DataFrame({"image_id": ids, "path": paths, "label": labels}).write_parquet(
        root / "manifest.parquet"
    )
    (root / "classes.json").write_text('{"classnames": ["a", "b", "c"], "templates": ["{}."]}')
    size = tiny_clip.visual.preprocess_cfg["size"][0]
    dataset = build_zeroshot_dataset("manifest", root, squash_transform(size))
    settings = MutualSettings(top_k=20, top_u=10, sinkhorn_iterations=50)
    out = tmp_path / "out"
    texts = [f"d{i}" for i in range(40)]
    args = (tiny_clip, dataset, _text_side(tiny_clip), texts, settings)
    summary = run_mutual(*args, out / "images.parquet", out / "summary.parquet", n_examples=2)
    images = pl.read_parquet(out / "images.parquet")
    assert images.schema == pl.Schema(IMAGE_SCHEMA) and images.height == 18
    assert summary.schema == pl.Schema(SUMMARY_SCHEMA)
    assert images["thumbnail"].drop_nulls().len() == 2 * 2  # 2 classes x 2 methods
    dataset_rows = summary.filter(pl.col("level") == "dataset")
    assert dataset_rows["n_images"].to_list() == [9, 9]
    # images whose D_v came from one concept, per method
    single = (pl.col("status") == "ok") & (pl.col("ellipses").list.len() == 1)
    for row in dataset_rows.iter_rows(named=True):
        method = images.filter(pl.col("method") == row["method"])
        assert row["n_single_concept"] == method.filter(single).height
    assert not (out / "images.parquet.parts").exists()
    # a crash after one class: the rerun skips it (its part is reused as is)
    parts = out / "images.parquet.parts"
    parts.mkdir()
    import json

    from clipconcepts.mutual.schemas import IMAGE_SCHEMA as schema

    stamp = json.dumps({"settings": vars(settings)}, sort_keys=True, default=str)
    (parts / "settings.json").write_text(stamp)
    marker = images.filter(pl.col("class_id") == 0).with_columns(pl.lit("resumed").alias("status"))
    marker.select(list(schema)).write_parquet(parts / "class-00000.parquet")
    run_mutual(*args, out / "images2.parquet", out / "summary2.parquet")
    again = pl.read_parquet(out / "images2.parquet")
    assert again.filter(pl.col("status") == "resumed").height == 0  # other folder: fresh
    run_mutual(*args, out / "images.parquet", out / "summary.parquet")
    resumed = pl.read_parquet(out / "images.parquet")
    assert resumed.filter(pl.col("status") == "resumed").height == 6


# ------------------------------------------------------------------------------ towers

TOWERS = {
    "tiny-rn.json": ("ResNet", (4, 4)),
    "tiny-convnext.json": ("ConvNeXt", (4, 4)),
    "tiny-vit.json": ("ViT", (4, 4)),
}


@pytest.mark.parametrize("config", sorted(TOWERS))
def test_towers_features_and_a_full_pass(config):
    from pathlib import Path

    from clipconcepts.mutual.per_class import MutualSettings, explain_class
    from clipconcepts.mutual.towers import load_tower

    torch.manual_seed(0)
    tower = load_tower(str(Path(__file__).parent / "data" / config))
    kind, grid = TOWERS[config]
    assert tower.kind == kind and tower.grid() == grid
    x = tower.prepare(torch.rand(3, 3, tower.image_size, tower.image_size))
    feats, emb = tower.tokens_and_embeddings(x, "tokens")
    assert feats.shape[:2] == (3, grid[0] * grid[1])
    # the embedding from the feature pass is the tower's own
    assert torch.allclose(emb, tower.encode_image(x), atol=1e-5)
    if kind != "ViT":
        with pytest.raises(ValueError, match="mutual.features"):
            tower.check_features("keys")
    rng = np.random.default_rng(0)
    size = tower.image_size
    images = rng.integers(0, 256, size=(4, size, size, 3), dtype=np.uint8)
    images[:, size // 4 : size // 2, size // 4 : size // 2] = (220, 30, 30)
    settings = MutualSettings(top_k=20, top_u=10, sinkhorn_iterations=50)
    rows = explain_class(tower, images, list("abcd"), [0] * 4, _text_side(tower), settings)
    assert len(rows) == 8 and all(len(r["curve"]) == len(r["dv_ids"]) + 1 for r in rows)
    assert any(r["status"] == "ok" for r in rows)


def test_vit_keys_are_the_last_attention_layers_keys(tiny_clip):
    from clipconcepts.mutual.towers import wrap_tower

    tower = wrap_tower(tiny_clip)
    x = tower.prepare(torch.rand(2, 3, tower.image_size, tower.image_size))
    keys, emb = tower.tokens_and_embeddings(x, "keys")
    tokens, emb_tokens = tower.tokens_and_embeddings(x, "tokens")
    assert torch.allclose(emb, emb_tokens, atol=1e-5) and keys.shape == tokens.shape
    # keys = ln_1(x) W_k^T of the last block, without the in_proj bias
    block = tiny_clip.blocks[-1]
    x_in = tiny_clip.residual_before(x, tiny_clip.n_layers - 1)
    seen = {}
    hook = block.attn.register_forward_hook(lambda m, args, out: seen.update(q=args[0]))
    block(x_in)
    hook.remove()
    w_k = block.attn.in_proj_weight[tiny_clip.width : 2 * tiny_clip.width]
    assert torch.allclose(keys, (seen["q"] @ w_k.T)[:, 1:], atol=1e-5)
