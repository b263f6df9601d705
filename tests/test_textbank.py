"""The default text bank, text-bank files, and the keyword lexicon."""

from __future__ import annotations

import re
from collections import Counter

import pyarrow.parquet as pq
import pytest

from clipconcepts.textbank import (
    FAMILIES,
    TextBankEntry,
    dedupe,
    default_lexicon,
    default_textbank,
    family_terms,
    read_textbank_file,
    read_textbank_parquet,
    resolve_textbank,
    write_textbank,
)
from clipconcepts.textbank_vocab import FAMILY_VOCABS

# The concept families the CCS paper reports (plus a few more we cover).
PAPER_FAMILIES = {
    "people",
    "animals",
    "nature",
    "locations",
    "colors",
    "textures",
    "materials",
    "objects",
    "letters",
    "body parts",
    "professions",
    "food",
    "vehicles",
    "art styles",
    "lighting",
    "numbers",
    "emotions",
    "weather",
    "seasons",
    "sports",
    "music",
    "architecture",
    "patterns",
    "shapes",
    "photography",
}


@pytest.fixture(scope="module")
def bank() -> list[TextBankEntry]:
    return default_textbank()


@pytest.fixture(scope="module")
def lexicon() -> dict[str, str]:
    return default_lexicon()


def test_bank_size_and_uniqueness(bank):
    assert len(bank) >= 3000
    keys = [" ".join(e.text.split()).casefold() for e in bank]
    assert len(set(keys)) == len(keys)
    assert all(e.text == e.text.strip() and e.text for e in bank)
    assert all(len(e.text.split()) <= 12 for e in bank), "descriptions should be short"


def test_every_family_present_with_bounded_share(bank):
    counts = Counter(e.family for e in bank)
    assert set(counts) >= PAPER_FAMILIES
    assert set(counts) == set(FAMILIES)
    shares = {family: count / len(bank) for family, count in counts.items()}
    assert max(shares.values()) <= 0.12, shares
    assert min(shares.values()) >= 0.02, shares


def test_bank_is_deterministic_and_interleaved(bank):
    again = default_textbank()
    assert again == bank
    # Round-robin over families: the first len(FAMILIES) entries hold one of each.
    assert [e.family for e in bank[: len(FAMILIES)]] == list(FAMILIES)


def test_phrasings_are_varied(bank):
    """No single opening dominates; several phrasings per family."""
    openings = Counter(" ".join(e.text.split()[:3]).lower() for e in bank)
    assert openings.most_common(1)[0][1] / len(bank) < 0.06
    for family in FAMILIES:
        texts = [e.text for e in bank if e.family == family]
        assert len({" ".join(t.split()[:2]).lower() for t in texts}) >= 4, family


def test_articles_agree(bank):
    bad = [e.text for e in bank if re.search(r"(?<!letter )\b[Aa] [aeiouAEIOU]\w", e.text)]
    bad = [t for t in bad if not re.search(r"\b[Aa] (uni|uku|use|one|eu)", t)]
    assert not bad, bad[:10]


def test_lexicon_covers_every_entry_of_its_family(bank, lexicon):
    """Every description contains a lexicon term of its own family (as a whole word/phrase)."""
    patterns = {
        family: re.compile(
            r"(?<![\w'-])("
            + "|".join(
                re.escape(k) for k in sorted(lexicon, key=len, reverse=True) if lexicon[k] == family
            )
            + r")(?![\w'-])"
        )
        for family in FAMILIES
    }
    missing = [e for e in bank if not patterns[e.family].search(e.text.lower())]
    assert not missing, missing[:10]


def test_lexicon_examples_and_no_cross_family_terms(lexicon):
    assert lexicon["dog"] == "animals"
    assert lexicon["dogs"] == "animals"
    assert lexicon["red"] == "colors"
    assert lexicon["paris"] == "locations"
    assert lexicon["eiffel tower"] == "locations"
    assert lexicon["letter"] == "letters"
    assert lexicon["leg"] == "body parts"
    assert lexicon["women"] == "people"
    assert set(lexicon.values()) == set(FAMILIES)
    assert all(k == k.lower().strip() and k for k in lexicon)
    assert "a" not in lexicon and "the" not in lexicon
    owners: dict[str, set[str]] = {}
    for vocab in FAMILY_VOCABS:
        primary, derived = family_terms(vocab)
        for term in primary + derived:
            owners.setdefault(term, set()).add(vocab.name)
    clashes = {term: names for term, names in owners.items() if len(names) > 1}
    assert not clashes


def test_dedupe_is_case_and_whitespace_insensitive():
    texts = ["A dog", "a  dog ", "A DOG", "", "   ", "A cat", "a cat\t"]
    assert dedupe(texts) == ["A dog", "A cat"]


def test_read_textbank_file(tmp_path):
    path = tmp_path / "bank.txt"
    path.write_text("# my bank\nA red car\n\n  a red  car\nA blue sky\n   # indented comment\n")
    entries = read_textbank_file(path)
    assert entries == [TextBankEntry("A red car", None), TextBankEntry("A blue sky", None)]


def test_read_textbank_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_textbank_file(missing)
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n\n")
    with pytest.raises(ValueError, match="empty.txt"):
        read_textbank_file(empty)


def test_parquet_round_trip(tmp_path, bank):
    path = tmp_path / "sub" / "bank.parquet"
    entries = [*bank[:50], TextBankEntry("From a file", None)]
    write_textbank(entries, path)
    schema = pq.read_schema(path)
    assert str(schema.field("text_id").type) == "int32"
    assert str(schema.field("text").type) == "string"
    assert schema.field("family").nullable
    assert read_textbank_parquet(path) == entries
    assert [p.name for p in path.parent.iterdir()] == ["bank.parquet"]  # no temp file left


def test_resolve_textbank(tmp_path):
    assert resolve_textbank("default") == default_textbank()
    path = tmp_path / "b.txt"
    path.write_text("One line\n")
    assert resolve_textbank(path) == [TextBankEntry("One line")]
    with pytest.raises(ValueError, match="generate"):
        resolve_textbank("generate")
