"""Ground-truth lexicon of the concept world: which words and phrases name which family.

Used by the offline LLM backend: a head's label is the majority family among its texts, and a
text is judged aligned with a label when it contains a lexicon entry of the label's family.
`CONCEPTS` declares the coarser concepts the offline labeller may name instead (see
`llm.backends.OfflineBackend`): only these, nothing inferred.
Matching is on whole words (`families_in_text`), so "bright" never matches "right".
"""

from __future__ import annotations

from functools import cache

from clipconcepts.conceptworld.world import FAMILIES, SYNONYMS
from clipconcepts.lexicons import families_in_text as _match
from clipconcepts.lexicons import words_of

# Words that name a family without naming a value
# ("the color red", "the upper corner", "a striped backdrop", ...). "background" and "backdrop" name no
# family: they name a place (whose pattern is the texture family), not a value.
_FAMILY_WORDS: dict[str, tuple[str, ...]] = {
    "color": ("color", "colour", "colored", "coloured"),
    "position": ("top", "bottom", "upper", "lower", "left", "right", "corner", "middle"),
    "texture": (
        "texture",
        "textured",
        "pattern",
        "patterned",
        "stripe",
        "stripes",
        "striped",
        "dots",
        "checker",
        "checkerboard",
        "horizontal",
        "vertical",
        "diagonal",
    ),
    "frame": ("frame", "framed", "border"),
    "ground": ("ground", "floor"),
    "tag": ("tag", "label", "sticker"),
    "dial": ("dial", "clock", "gauge", "hand"),
    "stamp": ("stamp", "postmark"),
}


# Coarser concepts a labeller may name when a head's texts share one (name -> the families it
# covers; the name must not be a lexicon word of them). None in this world: the one it had,
# "backdrop" over the backdrop's colour and pattern, went when the backdrop's colour became an
# unnamed nuisance (docs/conceptworld.md). The mechanism stays: a world may declare one again.
CONCEPTS: dict[str, tuple[str, ...]] = {}


def conceptworld_concepts() -> dict[str, tuple[str, ...]]:
    """Declared coarse concept -> the families it covers."""
    return dict(CONCEPTS)


@cache
def _lexicon() -> dict[str, str]:
    lexicon: dict[str, str] = {}
    for family in FAMILIES:
        entries = [w for words in SYNONYMS[family] for w in words] + list(_FAMILY_WORDS[family])
        for entry in entries:
            entry = " ".join(words_of(entry))
            if lexicon.setdefault(entry, family) != family:
                raise AssertionError(f"lexicon entry {entry!r} names two families")
    return lexicon


def conceptworld_lexicon() -> dict[str, str]:
    """Lowercase word or phrase -> family, covering every value name and synonym."""
    return dict(_lexicon())


def families_in_text(text: str, lexicon: dict[str, str] | None = None) -> set[str]:
    """Families whose lexicon entries occur in `text` as whole words (phrases word by word)."""
    return _match(text, _lexicon() if lexicon is None else lexicon)
