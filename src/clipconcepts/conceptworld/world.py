"""The concept world's vocabulary: families, their values, palettes, words and prompt templates.

Everything that names a concept lives here, so the generator, the captions, the zero-shot sets,
the text bank and the lexicon can never disagree about what a value is called.

Every family has at least 6 values, so it spans at least 5 directions of the text space: a head
that writes one family can have 5 TEXTSPAN picks inside that family (with 2-4 values, as in the
first world, a family's directions ran out after 1-3 picks and no head could reach CCS 5).

Objects have one of six shapes, drawn at random but never named: shape is not a family. With six
named shapes the demo's model (6 layers x 8 heads, 48 px, ~6 minutes of CPU training) got shape
no higher than 0.41 in eleven training runs of up to 2,200 steps, and naming shapes slowed the
other families; the first world's four large shapes on 32 px images were learnt (see
docs/conceptworld.md).
"""

from __future__ import annotations

# Families in a fixed order; the order is part of the public interface (attribute dicts and
# dataset folders follow it).
FAMILIES: tuple[str, ...] = ("color", "position", "background", "texture")

# Canonical value names per family (index = attribute value = class label).
VALUES: dict[str, tuple[str, ...]] = {
    "color": ("red", "green", "blue", "yellow", "purple", "orange", "pink", "white"),
    "position": (
        "top left",
        "top middle",
        "top right",
        "middle left",
        "center",
        "middle right",
        "bottom left",
        "bottom middle",
        "bottom right",
    ),
    "background": ("black", "gray", "teal", "brown", "navy", "olive"),
    "texture": ("plain", "striped", "banded", "slanted", "checkered", "dotted"),
}

# RGB of each object colour and each background colour. Object colours are bright, background
# colours dark or muted: every object colour is more than 90 away (Euclidean, 0-255) from every
# background colour and from every other object colour, and background colours are more than 60
# apart, far beyond the per-image jitter and pixel noise the generator adds.
OBJECT_RGB: tuple[tuple[int, int, int], ...] = (
    (220, 30, 30),  # red
    (30, 180, 30),  # green
    (30, 60, 220),  # blue
    (230, 220, 30),  # yellow
    (140, 40, 180),  # purple
    (240, 130, 20),  # orange
    (245, 130, 200),  # pink
    (240, 240, 240),  # white
)
BACKGROUND_RGB: tuple[tuple[int, int, int], ...] = (
    (15, 15, 15),  # black
    (110, 110, 110),  # gray
    (0, 110, 110),  # teal
    (110, 60, 15),  # brown
    (15, 25, 95),  # navy
    (70, 110, 0),  # olive
)
# Pattern pixels of a textured background are the background colour brightened by this much
# (per channel), a shift no object colour is near.
TEXTURE_CONTRAST = 50

# Words a caption or a bank text may use for a value (the canonical name first). Synonyms are
# used in training captions too, so the text tower learns them.
SYNONYMS: dict[str, tuple[tuple[str, ...], ...]] = {
    "color": tuple((name,) for name in VALUES["color"]),
    "position": (
        ("top left", "upper left"),
        ("top middle", "upper middle"),
        ("top right", "upper right"),
        ("middle left", "left edge"),
        ("center", "centre"),  # not "middle": it is part of four other positions' names
        ("middle right", "right edge"),
        ("bottom left", "lower left"),
        ("bottom middle", "lower middle"),
        ("bottom right", "lower right"),
    ),
    "background": (("black",), ("gray", "grey"), ("teal",), ("brown",), ("navy",), ("olive",)),
    "texture": (
        ("plain", "uniform"),
        ("striped", "horizontally striped"),
        ("banded", "vertically banded"),  # no other value's words may contain "striped"
        ("slanted", "hatched"),
        ("checkered", "chequered"),
        ("dotted", "spotted"),
    ),
}

# Zero-shot prompt templates per family; "{}" is replaced by the canonical value name. They are
# phrased the way training captions are, so a template is in the text distribution.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "color": ("a {} object.", "a {} shape.", "a photo of a {} object.", "something {}."),
    "position": ("an object at the {}.", "a shape in the {}.", "a photo of an object at the {}."),
    "background": (
        "an object on a {} background.",
        "a scene on a {} background.",
        "a photo of a shape against a {} background.",
    ),
    "texture": (
        "an object on a {} background.",
        "a scene on a {} background.",
        "a photo of a shape against a {} background.",
    ),
}


def n_values(family: str) -> int:
    """Number of values of `family` (raises a clear error for an unknown family)."""
    return len(values_of(family))


def values_of(family: str) -> tuple[str, ...]:
    """Canonical value names of `family`, in label order."""
    if family not in VALUES:
        raise KeyError(f"unknown concept-world family {family!r}; known: {', '.join(FAMILIES)}")
    return VALUES[family]
