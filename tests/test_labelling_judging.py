"""Labelling and judging with the offline lexicon backend, through the same cached path."""

from __future__ import annotations

import polars as pl
import pytest

from clipconcepts.ccs import ccs_at_k, ccs_table, head_groups
from clipconcepts.judging import judge_heads
from clipconcepts.labelling import label_heads
from clipconcepts.llm import LexiconMatcher, LLMCache, make_backend

LEXICON = {
    "dog": "animals",
    "cat": "animals",
    "zebra": "animals",
    "red": "colors",
    "blue": "colors",
    "paris": "locations",
    "new york": "locations",
    "woman": "people",
    "man": "people",
}

# head -> (texts, expected label, expected CCS)
HEADS = {
    (9, 0): (["A dog", "a cat on a sofa", "A zebra", "red car", "a photo of Paris"], "animals", 3),
    # tie people 2 / colors 2: the family met first wins (not the alphabetically first)
    (9, 1): (["a woman", "red", "blue", "a man", "nothing here"], "people", 2),
    # plurals match; every text holds an animal
    (10, 0): (["dogs", "a cat", "zebras", "a dog and a cat", "the cat"], "animals", 5),
    (10, 1): (["hello", "world", "xyz", "abc", "foo"], "unclear", 0),
    # the phrase "new york" matches, "york" alone does not; a text's vote is its first hit
    # ("woman" before "paris"), but judging accepts any hit of the label's family
    (11, 0): (
        ["a street in New York", "Paris at night", "the woman in paris", "blue sky", "york"],
        "locations",
        3,
    ),
}


def _textspans() -> pl.DataFrame:
    rows = [
        (layer, head, rank, text)
        for (layer, head), (texts, _, _) in HEADS.items()
        for rank, text in enumerate(texts)
    ]
    return pl.DataFrame(rows, schema=["layer", "head", "rank", "text"], orient="row").reverse()


@pytest.fixture
def offline():
    return make_backend({"backend": "offline"}, lexicon=LEXICON)


def test_offline_label_is_majority_family(offline, tmp_path):
    cache = LLMCache(tmp_path / "cache")
    labels = label_heads(_textspans(), offline, cache)
    expected = {head: label for head, (_, label, _) in HEADS.items()}
    assert (
        dict(zip(zip(labels["layer"], labels["head"], strict=True), labels["label"], strict=True))
        == expected
    )
    assert labels["valid"].all()
    assert labels["model"][0].startswith("lexicon-")
    assert cache.stats.total().answers == len(HEADS)
    rerun = LLMCache(tmp_path / "cache")
    label_heads(_textspans(), offline, rerun)
    assert rerun.stats.total().hits == len(HEADS) and rerun.stats.total().answers == 0


def test_lexicon_change_changes_the_cache_key(tmp_path):
    spans = _textspans()
    a = label_heads(spans, make_backend({"backend": "offline"}, LEXICON), LLMCache(tmp_path))
    other = {**LEXICON, "sofa": "objects"}
    b = label_heads(spans, make_backend({"backend": "offline"}, other), LLMCache(tmp_path))
    assert set(a["cache_key"]).isdisjoint(b["cache_key"])


@pytest.mark.parametrize("mode", ["per_text", "per_head"])
def test_offline_judging_gives_expected_ccs(offline, mode):
    cache = LLMCache(None)
    spans = _textspans()
    labels = label_heads(spans, offline, cache)
    verdicts = judge_heads(labels, spans, [offline], mode, cache)
    assert verdicts.height == 5 * len(HEADS)
    assert verdicts["valid"].all()
    ccs = ccs_table(verdicts, labels, spans)
    majority = ccs.filter(pl.col("judge") == "majority")
    scores = dict(
        zip(zip(majority["layer"], majority["head"], strict=True), majority["ccs"], strict=True)
    )
    assert scores == {head: score for head, (_, _, score) in HEADS.items()}
    assert majority.filter(pl.col("head") == 1, pl.col("layer") == 9)["verdicts"].to_list() == [
        [True, False, False, True, False]
    ]
    at_k = ccs_at_k(ccs)
    assert at_k.group_by("judge").agg(pl.col("fraction").sum())[
        "fraction"
    ].to_list() == pytest.approx([1.0, 1.0])
    groups = head_groups(ccs)
    assert groups.filter(pl.col("group") == "high").select("layer", "head").rows() == [(10, 0)]
    assert groups.filter(pl.col("group") == "moderate").select("layer", "head").rows() == [
        (9, 0),
        (11, 0),
    ]
    assert groups.filter(pl.col("group") == "low").select("layer", "head").rows() == [(10, 1)]


def test_judging_label_from_another_labeller(offline):
    spans = _textspans().filter(pl.col("layer") == 9, pl.col("head") == 0)
    labels = pl.DataFrame(
        {"layer": [9], "head": [0], "label": ["Animals"], "valid": [True]}
    )  # any case
    verdicts = judge_heads(labels, spans, [offline], "per_text", LLMCache(None))
    assert verdicts.sort("rank")["aligned"].to_list() == [True, True, True, False, False]
    # a label naming no family fits no text
    labels = labels.with_columns(pl.lit("Furniture").alias("label"))
    assert not judge_heads(labels, spans, [offline], "per_text", LLMCache(None))["aligned"].any()


def test_invalid_label_gets_null_verdicts_without_calls(offline):
    spans = _textspans()
    cache = LLMCache(None)
    labels = label_heads(spans, offline, cache)
    labels = labels.with_columns(
        pl.when(pl.col("layer") == 10).then(False).otherwise(pl.col("valid")).alias("valid")
    )
    verdicts = judge_heads(labels, spans, [offline], "per_text", cache)
    skipped = verdicts.filter(pl.col("layer") == 10)
    assert skipped["aligned"].null_count() == 10 and skipped["cache_key"].null_count() == 10
    assert cache.stats.total().answers == len(HEADS) + 15  # 5 labels + 3 labelled heads x 5 texts
    ccs = ccs_table(verdicts, labels, spans).filter(
        pl.col("judge") == "majority", pl.col("layer") == 10
    )
    assert ccs["ccs"].to_list() == [0, 0] and ccs["n_invalid"].to_list() == [5, 5]
    assert ccs["label"].to_list() == [None, None]


def test_mismatched_heads_and_judge_names_are_errors(offline):
    spans = _textspans()
    labels = label_heads(spans, offline, LLMCache(None))
    with pytest.raises(ValueError, match="L9.H0"):
        judge_heads(
            labels.filter(pl.col("head") != 0, pl.col("layer") == 9),
            spans.filter(pl.col("layer") == 9),
            [offline],
            "per_text",
            LLMCache(None),
        )
    with pytest.raises(ValueError, match="unique"):
        judge_heads(labels, spans, [offline, offline], "per_text", LLMCache(None))
    with pytest.raises(ValueError, match="per_sentence"):
        judge_heads(labels, spans, [offline], "per_sentence", LLMCache(None))
    with pytest.raises(ValueError, match="lacks columns \\['text'\\]"):
        label_heads(spans.drop("text"), offline, LLMCache(None))


def test_lexicon_matcher_words_phrases_plurals():
    m = LexiconMatcher(LEXICON)
    assert m.families("Two Dogs and a cat near New York") == ["animals", "animals", "locations"]
    assert m.families("catalogue of newyork") == []  # whole words only
    assert m.families("buses") == []
    assert m.family_of_label("COLORS") == "colors" and m.family_of_label("zebra") == "animals"
    assert m.family_of_label("stuff") is None
