"""Pruning strategies, zero-shot classifiers and the pruned evaluation with prefix reuse."""

from __future__ import annotations

import polars as pl
import pytest
import torch

from clipconcepts.evaluate import (
    RESULT_SCHEMA,
    PruneSet,
    accuracy,
    build_classifier,
    concept_of_label,
    concept_random_name,
    concept_strategy_names,
    evaluate_prune_outcomes,
    evaluate_prune_sets,
    load_classifier,
    parse_head,
    published_head_lists,
    resolve_prune_sets,
    save_classifier,
    summarise_items,
    write_prune_items,
    write_prune_results,
)
from clipconcepts.schemas import PRUNE_ITEMS

LAYERS = [8, 9, 10, 11]
GROUPS = {
    "locations": ["location", "country", "city", "place", "landmark", "geograph"],
    "animals": ["animal", "bird", "dog", "cat"],
    "colors": ["color", "colour"],
}


def _head_groups() -> pl.DataFrame:
    rows = [
        ("high", 11, 5, 5),
        ("high", 10, 8, 5),
        ("high", 9, 3, 5),
        ("high", 8, 11, 5),
        ("high", 11, 1, 5),
        ("moderate", 9, 0, 3),
        ("low", 8, 5, 1),
        ("low", 11, 0, 0),
    ]
    return pl.DataFrame(rows, schema=["group", "layer", "head", "ccs"], orient="row")


def _labels() -> pl.DataFrame:
    rows = [
        (11, 5, "Geographic locations", 5),
        (10, 8, "Countries and cities", 5),
        (9, 3, "Famous landmarks", 5),
        (8, 11, "Animals", 5),
        (11, 1, "Colors", 5),
        (9, 0, "Dog breeds", 3),  # moderate: not a concept head under concept_heads="high"
        (8, 5, "Textures", 1),
        (11, 0, "Numbers", 0),
    ]
    return pl.DataFrame(rows, schema=["layer", "head", "label", "ccs"], orient="row")


def _resolve(strategies, **kw):
    args = dict(
        layers=LAYERS,
        n_heads=12,
        random_seeds=[0, 1, 2],
        concept_groups=GROUPS,
        concept_pairs=[("locations", "animals")],
        manual={},
    )
    args.update(kw)
    return resolve_prune_sets(strategies, _head_groups(), _labels(), **args)


# ---------------------------------------------------------------------------- strategies
def test_original_high_low_counts():
    sets = {s.strategy: s for s in _resolve(["original", "high", "low"])}
    assert sets["original"].heads == ()
    assert sets["high"].heads == ((8, 11), (9, 3), (10, 8), (11, 1), (11, 5))
    assert sets["low"].heads == ((8, 5), (11, 0))
    assert sets["high"].head_names == ["L8.H11", "L9.H3", "L10.H8", "L11.H1", "L11.H5"]


def test_random_sets_exclude_high_and_are_seeded():
    sets = _resolve(["random"])
    high = set(_resolve(["high"])[0].heads)
    assert [s.seed for s in sets] == [0, 1, 2]
    for s in sets:
        assert s.strategy == "random" and len(s.heads) == len(high)
        assert not set(s.heads) & high
        assert all(layer in LAYERS and 0 <= head < 12 for layer, head in s.heads)
    assert len({s.heads for s in sets}) == 3  # seeds differ
    assert _resolve(["random"]) == sets  # and are reproducible
    again = _resolve(["random"], random_seeds=[1])
    assert again[0].heads == sets[1].heads  # a seed's draw does not depend on the others
    with pytest.raises(ValueError, match="non-high heads"):
        _resolve(["random"], layers=[11], n_heads=6)


def test_concept_matching_and_equal_sizes():
    sets = {s.strategy: s for s in _resolve(["concept"])}
    target, unrelated = concept_strategy_names("locations", "animals")
    assert set(sets) == {target, unrelated, concept_random_name("locations", "animals")}
    # three high location heads, one high animal head -> both truncated to one head; the
    # location head kept is a highest-CCS one (all 5: ties go to the lowest (layer, head))
    assert sets[unrelated].heads == ((8, 11),)
    assert sets[target].heads == ((9, 3),)
    # with CCS that differ, truncation keeps the highest-CCS heads
    ccs = pl.DataFrame(
        {"layer": [11, 10, 9, 8], "head": [5, 8, 3, 11], "ccs": [5, 4, 2, 5]},
    )
    groups = _head_groups().with_columns(pl.lit(None).alias("ccs"))
    out = resolve_prune_sets(
        ["concept"],
        groups.with_columns(pl.when(pl.col("layer") > 0).then(pl.lit("high")).alias("group")),
        _labels(),
        layers=LAYERS,
        n_heads=12,
        concept_groups=GROUPS,
        concept_pairs=[("locations", "colors")],
        ccs_df=ccs,
    )
    by_name = {s.strategy: s for s in out}
    assert by_name["concept:locations:vs:colors"].heads == ((11, 5),)
    assert by_name["concept:colors:vs:locations"].heads == ((11, 1),)


def test_concept_random_sets_match_the_target_size_outside_its_group():
    sets = _resolve(["concept"], concept_heads="all")
    chance = [s for s in sets if s.strategy == concept_random_name("locations", "animals")]
    (target,) = [s for s in sets if s.strategy == "concept:locations:vs:animals"]
    locations = {(11, 5), (10, 8), (9, 3)}  # every head labelled with a location word
    assert [s.seed for s in chance] == [0, 1, 2] and len({s.heads for s in chance}) == 3
    for s in chance:
        assert len(s.heads) == len(target.heads) == 2
        assert not set(s.heads) & locations
        assert all(layer in LAYERS and 0 <= head < 12 for layer, head in s.heads)
    assert _resolve(["concept"], concept_heads="all") == sets  # seeded: reproducible
    # without seeds (the strategy resolver always passes them) no chance sets are drawn
    plain = _resolve(["concept"], random_seeds=[])
    assert not [s for s in plain if s.strategy.startswith("concept-random:")]


def test_concept_heads_all_includes_moderate_heads():
    sets = {s.strategy: s for s in _resolve(["concept"], concept_heads="all")}
    # animals now has L8.H11 (CCS 5) and L9.H0 "Dog breeds" (CCS 3): two heads
    assert sets["concept:animals:vs:locations"].heads == ((8, 11), (9, 0))
    assert len(sets["concept:locations:vs:animals"].heads) == 2


def test_concept_label_rules():
    assert concept_of_label("Locations and landmarks", GROUPS) == "locations"
    assert concept_of_label("GEOGRAPHY", GROUPS) == "locations"
    assert concept_of_label("Animals in cities", GROUPS) == "animals"  # earliest keyword wins
    assert concept_of_label("City animals", GROUPS) == "locations"
    assert concept_of_label("Scattered textures", GROUPS) is None  # 'cat' not at a word start
    assert concept_of_label(None, GROUPS) is None
    tie = {"a": ["bird"], "b": ["bird"]}
    assert concept_of_label("bird songs", tie) == "a"  # same position: config order


def test_empty_groups_give_empty_sets():
    groups = _head_groups().filter(pl.col("group") != "high")
    sets = resolve_prune_sets(
        ["high", "random", "concept"],
        groups,
        _labels(),
        layers=LAYERS,
        n_heads=12,
        random_seeds=[0],
        concept_groups=GROUPS,
        concept_pairs=[("locations", "animals")],
    )
    # high, random, the pair's two concept sets and its random set (seed 0): all empty
    assert [s.n_heads for s in sets] == [0, 0, 0, 0, 0]
    assert [s.strategy for s in sets][:2] == ["high", "random"]
    assert sets[-1].strategy == "concept-random:locations:vs:animals"


def test_manual_lists_and_bad_names():
    sets = _resolve(["manual"], manual={"pub": ["L11.H5", "L8.H5", "L11.H5"], "one": ["L2.H0"]})
    assert [(s.strategy, s.heads) for s in sets] == [
        ("manual:pub", ((8, 5), (11, 5))),
        ("manual:one", ((2, 0),)),
    ]
    with pytest.raises(ValueError, match=r"manual\['pub'\]\[1\]: 'L11H5'"):
        _resolve(["manual"], manual={"pub": ["L11.H5", "L11H5"]})
    with pytest.raises(ValueError, match=r"manual\['x'\]\[0\]: 'L11.H12' names head 12"):
        _resolve(["manual"], manual={"x": ["L11.H12"]})
    with pytest.raises(ValueError, match=r"manual\['x'\] must be a list"):
        _resolve(["manual"], manual={"x": "L11.H1"})
    assert parse_head(" L3.H07 ") == (3, 7)


def test_strategy_and_pair_errors():
    with pytest.raises(ValueError, match="unknown prune strategies \\['hihg'\\]"):
        _resolve(["hihg"])
    with pytest.raises(ValueError, match="'vehicles' is not in concept_groups"):
        _resolve(["concept"], concept_pairs=[("locations", "vehicles")])
    with pytest.raises(ValueError, match="need the head_groups table"):
        resolve_prune_sets(["high"], None, None, layers=LAYERS, n_heads=12)


def test_published_lists_replay():
    lists = published_head_lists("ViT-B-32", "openai")
    assert lists["high"] == ["L11.H5", "L10.H8", "L9.H3", "L8.H11", "L9.H2", "L11.H1", "L11.H9",
                             "L11.H7"]  # fmt: skip
    assert lists["low"] == ["L8.H5", "L11.H0", "L11.H8", "L9.H9"]
    sets = _resolve(["manual"], manual=lists)
    assert {s.strategy: s.n_heads for s in sets}["manual:high"] == 8
    with pytest.raises(KeyError, match="ViT-B-32/openai"):
        published_head_lists("ViT-H-14", "laion2b_s32b_b79k")


# ---------------------------------------------------------------------------- classifier
def test_classifier_is_renormalised_mean_of_normalised_templates(tiny_clip):
    classnames = ["red circle", "blue square", "green cross"]
    templates = ["a photo of a {}.", "a {} shape.", "{}"]
    ours = build_classifier(tiny_clip, classnames, templates)
    assert ours.shape == (3, tiny_clip.embed_dim)
    with torch.no_grad():
        for i, name in enumerate(classnames):
            tokens = tiny_clip.tokenizer([t.format(name) for t in templates])
            emb = tiny_clip.model.encode_text(tokens)
            emb = emb / emb.norm(dim=-1, keepdim=True)
            mean = emb.mean(0)
            expected = mean / mean.norm()
            assert torch.allclose(ours[i], expected, atol=1e-5)
            # the unnormalised mean would differ: the test can tell
            assert not torch.allclose(ours[i], mean, atol=1e-3)


def test_classifier_parquet_round_trip(tmp_path, tiny_clip):
    weights = build_classifier(tiny_clip, ["a", "b"], ["{}"])
    path = tmp_path / "clf.parquet"
    save_classifier(path, weights, ["a", "b"], {"model": "tiny", "templates": ["{}"]})
    again, names, meta = load_classifier(path)
    assert torch.equal(again, weights.cpu()) and names == ["a", "b"]
    assert meta == {"model": "tiny", "templates": ["{}"]}
    assert not list(tmp_path.glob(".*tmp*"))
    with pytest.raises(ValueError, match="do not match 3 class names"):
        save_classifier(path, weights, ["a", "b", "c"])


def test_topk_is_clipped_to_class_count():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.15, 0.05], [0.2, 0.3, 0.5]])
    labels = torch.tensor([1, 2, 1])
    acc = accuracy(logits, labels, ks=(1, 2, 5))
    assert acc[1] == pytest.approx(100 / 3)
    assert acc[2] == pytest.approx(200 / 3)  # row 1's label ranks third
    assert acc[5] == pytest.approx(100.0)  # k > C: every label is in the top C


# ---------------------------------------------------------------------------- pruned evaluation
def _separate_pass_accuracy(clip, images, labels, classifier, heads):
    emb = clip.encode_image(images, prune=list(heads))
    emb = emb / emb.norm(dim=-1, keepdim=True)
    return accuracy(emb @ classifier.T, labels, ks=(1, 5))


def test_prefix_reuse_equals_separate_full_passes(tiny_clip):
    torch.manual_seed(0)
    images = torch.randn(23, 3, 32, 32)
    sets = [
        PruneSet("original", 0, ()),
        PruneSet("high", 0, ((1, 0), (2, 1), (2, 3))),
        PruneSet("low", 0, ((2, 2),)),
        PruneSet("random", 7, ((0, 1), (1, 2))),
        PruneSet("manual:all", 0, tuple((la, h) for la in range(3) for h in range(4))),
    ]
    # class embeddings close to the images' mean direction, so that small changes to an image
    # embedding change its ranking; labels are the 'high' set's own predictions, so the sets'
    # accuracies differ and a mix-up of sets would show
    mean = torch.nn.functional.normalize(tiny_clip.encode_image(images), dim=-1).mean(0)
    noise = 0.05 * torch.randn(9, tiny_clip.embed_dim)
    classifier = torch.nn.functional.normalize(mean + noise, dim=-1)
    high_emb = tiny_clip.encode_image(images, prune=list(sets[1].heads))
    labels = (high_emb @ classifier.T).argmax(-1)
    expected = [_separate_pass_accuracy(tiny_clip, images, labels, classifier, s.heads)
                for s in sets]  # fmt: skip
    assert expected[1][1] == 100.0
    assert len({round(e[1], 6) for e in expected}) >= 4

    def batches(with_ids: bool):
        for start in range(0, len(images), 5):  # uneven last batch
            x, y = images[start : start + 5], labels[start : start + 5]
            yield (x, [f"i{j}" for j in range(len(y))], y, 0) if with_ids else (x, y)

    for with_ids in (False, True):
        out = evaluate_prune_sets(
            tiny_clip, batches(with_ids), classifier, sets, sets_per_pass=2, progress=False
        )
        assert out.schema == pl.Schema(RESULT_SCHEMA)
        assert out["strategy"].to_list() == [s.strategy for s in sets]
        assert out["seed"].to_list() == [0, 0, 0, 7, 0]
        assert out["n_heads"].to_list() == [0, 3, 1, 2, 12]
        assert out["heads"][1].to_list() == ["L1.H0", "L2.H1", "L2.H3"]
        assert out["n_images"].to_list() == [23] * 5
        assert out["top1"].to_list() == pytest.approx([e[1] for e in expected], abs=1e-9)
        assert out["top5"].to_list() == pytest.approx([e[5] for e in expected], abs=1e-9)


def test_items_aggregate_to_the_summary_and_carry_margins(tmp_path, tiny_clip):
    """Per-image outcomes: the accuracy table equals their aggregate; top-1 correct iff the
    margin (true logit minus the best other) is positive; files round-trip."""
    torch.manual_seed(1)
    images = torch.randn(19, 3, 32, 32)
    classifier = torch.nn.functional.normalize(
        tiny_clip.encode_image(images[:5]) + 0.05 * torch.randn(5, tiny_clip.embed_dim), dim=-1
    )
    labels = torch.arange(19) % 5
    sets = [
        PruneSet("original", 0, ()),
        PruneSet("high", 0, ((2, 1), (2, 3))),
        *[PruneSet("random", s, ((1, s),)) for s in range(3)],
    ]
    batches = [
        (images[i : i + 4], [f"im{j}" for j in range(i, min(i + 4, 19))], labels[i : i + 4], 0)
        for i in range(0, 19, 4)
    ]
    out = evaluate_prune_outcomes(tiny_clip, batches, classifier, sets, progress=False)
    items = out.items
    assert items.schema == pl.Schema(PRUNE_ITEMS) and items.height == 19 * len(sets)
    assert items["image_id"].to_list()[:19] == [f"im{j}" for j in range(19)]
    assert items["label"].to_list()[:19] == labels.tolist()
    assert (items["correct_top1"] == (items["margin"] > 0)).all()
    assert (items["correct_top1"] == (items["predicted"] == items["label"])).all()
    assert (~items["correct_top1"] | items["correct_top5"]).all()
    assert len(set(items["correct_top1"].to_list())) == 2  # some right, some wrong
    aggregate = items.group_by("strategy", "seed", maintain_order=True).agg(
        (100 * pl.col("correct_top1").mean()).alias("top1"),
        (100 * pl.col("correct_top5").mean()).alias("top5"),
        pl.len().alias("n_images"),
    )
    summary = out.summary
    assert summary.select("strategy", "seed").rows() == aggregate.select("strategy", "seed").rows()
    for column in ("top1", "top5"):
        assert summary[column].to_list() == pytest.approx(aggregate[column].to_list(), abs=1e-12)
    assert summary["n_images"].to_list() == aggregate["n_images"].to_list()
    # the same predictions as a full pass with the set's heads zeroed
    high = tiny_clip.encode_image(images, prune=[(2, 1), (2, 3)])
    expected = (torch.nn.functional.normalize(high, dim=-1) @ classifier.T).argmax(-1)
    got = items.filter(pl.col("strategy") == "high")["predicted"].to_list()
    assert got == expected.tolist()
    write_prune_items(items, tmp_path / "d.items.parquet", row_group_size=20)
    back = pl.read_parquet(tmp_path / "d.items.parquet")
    assert back.equals(items)
    assert summarise_items(back, sets).equals(summary)


def test_prune_results_parquet(tmp_path, tiny_clip):
    classifier = torch.nn.functional.normalize(torch.randn(3, tiny_clip.embed_dim), dim=-1)
    loader = [(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0]))]
    out = evaluate_prune_sets(
        tiny_clip, loader, classifier, [PruneSet("original", 0, ())], progress=False
    )
    assert out["top5"].to_list() == [100.0]  # 3 classes: top-5 is clipped to top-3
    path = tmp_path / "prune" / "cifar10.parquet"
    write_prune_results(out, path)
    assert pl.read_parquet(path).equals(out)
    with pytest.raises(ValueError, match="embedding width"):
        evaluate_prune_sets(tiny_clip, loader, torch.zeros(3, 5), [], progress=False)
