"""Class-agnostic attribute phrases of the concept world, for the mutual-knowledge descriptor bank.

Every value and every synonym of every family, in two phrasings per family ("a red object",
"something red"; "an object at the upper left", ...). Each phrase names exactly one family in the
lexicon's terms (`families_in_text`) and exactly one value (`value_of`), so a descriptor can be
scored against an image's true attributes (tested).
"""

from __future__ import annotations

import re

from clipconcepts.conceptworld.world import FAMILIES, SYNONYMS, VALUES

# Two phrasings per family; "{}" takes a value word (canonical name or synonym). "background" and
# "backdrop" name no family (lexicon.py): the value word says which family a phrase is about.
PHRASINGS: dict[str, tuple[str, str]] = {
    "color": ("a {} object", "something {}"),
    "position": ("an object at the {}", "something in the {}"),
    "texture": ("a {} background", "a {} pattern"),
    "frame": ("a {} frame", "a {} border"),
    "ground": ("{} ground", "a {} floor"),
    "tag": ("a {} tag", "a {} label"),
    "dial": ("a dial at {}", "a hand pointing to {}"),
    "stamp": ("a {} stamp", "a {} postmark"),
}

_WORD = re.compile(r"[a-z]+")


def _norm(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def conceptworld_descriptors() -> list[tuple[str, str, str]]:
    """(text, family, value) per phrase: families in `FAMILIES` order, then values, synonyms
    (canonical name first) and phrasings. `value` is the canonical value name."""
    rows = []
    for family in FAMILIES:
        for value, words in zip(VALUES[family], SYNONYMS[family], strict=True):
            for word in words:
                rows += [(phrasing.format(word), family, value) for phrasing in PHRASINGS[family]]
    return rows


def _value_words() -> dict[str, tuple[str, str]]:
    """Normalised value word or synonym -> (family, canonical value)."""
    return {
        _norm(word): (family, value)
        for family in FAMILIES
        for value, words in zip(VALUES[family], SYNONYMS[family], strict=True)
        for word in words
    }


_VALUE_WORDS = _value_words()


def values_in_text(text: str) -> set[tuple[str, str]]:
    """Every (family, value) whose name or synonym occurs in `text` as whole words."""
    padded = f" {_norm(text)} "
    return {fv for word, fv in _VALUE_WORDS.items() if f" {word} " in padded}


def value_of(text: str) -> tuple[str, str] | None:
    """(family, value) of the one value `text` names; None when it names none or several."""
    found = values_in_text(text)
    return next(iter(found)) if len(found) == 1 else None
