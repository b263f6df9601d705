"""The concept world's vocabulary: families, their values, palettes, words and prompt templates.

Everything that names a concept lives here, so the generator, the captions, the zero-shot sets,
the text bank and the lexicon can never disagree about what a value is called.
"""

from __future__ import annotations

# Families in a fixed order; the order is part of the public interface (attribute dicts and
# dataset folders follow it).
FAMILIES: tuple[str, ...] = ("color", "shape", "position", "size", "background")

# Canonical value names per family (index = attribute value = class label).
VALUES: dict[str, tuple[str, ...]] = {
    "color": ("red", "green", "blue", "yellow", "purple", "orange", "pink", "white"),
    "shape": ("circle", "square", "triangle", "cross"),
    "position": ("top left", "top right", "bottom left", "bottom right"),
    "size": ("small", "large"),
    "background": ("black", "gray", "teal", "brown"),
}

# RGB of each object colour and each background. Every pair of these 12 colours is more than 90
# apart (Euclidean, 0-255), far beyond the jitter and noise the generator adds, so a pixel's
# nearest palette entry names its source.
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
    (128, 128, 128),  # gray
    (0, 128, 128),  # teal
    (120, 70, 20),  # brown
)

# Words a caption or a bank text may use for a value (the canonical name first). Synonyms are
# used in training captions too, so the text tower learns them.
SYNONYMS: dict[str, tuple[tuple[str, ...], ...]] = {
    "color": tuple((name,) for name in VALUES["color"]),
    "shape": (
        ("circle", "disk", "round shape"),
        ("square", "box shape"),
        ("triangle", "triangular shape"),
        ("cross", "plus sign"),
    ),
    "position": (
        ("top left", "upper left"),
        ("top right", "upper right"),
        ("bottom left", "lower left"),
        ("bottom right", "lower right"),
    ),
    "size": (("small", "tiny", "little"), ("large", "big", "huge")),
    "background": (("black",), ("gray", "grey"), ("teal",), ("brown",)),
}

# Zero-shot prompt templates per family; "{}" is replaced by the canonical value name. They are
# phrased the way training captions are, so a template is in the text distribution.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "color": ("a {} object.", "a {} shape.", "a photo of a {} object.", "something {}."),
    "shape": ("a {}.", "a photo of a {}.", "an image of a {}."),
    "position": (
        "an object at the {}.",
        "a shape in the {}.",
        "a photo of an object in the {} corner.",
    ),
    "size": ("a {} object.", "a {} shape.", "a photo of a {} object."),
    "background": (
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
