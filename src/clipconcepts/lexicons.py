"""Matching texts against a lexicon (lowercase word or phrase -> family), on whole words, so
"bright" never matches "right". The lexicons themselves live with what they describe (the default
text bank's, the concept world's, a user's JSON file; `llm.factory.resolve_lexicon`)."""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z]+")


def words_of(text: str) -> list[str]:
    """The lowercase words of `text` (letters only)."""
    return _WORD.findall(text.lower())


def families_in_text(text: str, lexicon: dict[str, str]) -> set[str]:
    """Families whose lexicon entries occur in `text` as whole words (phrases word by word)."""
    padded = f" {' '.join(words_of(text))} "
    return {family for entry, family in lexicon.items() if f" {entry} " in padded}
