"""The concept world's vocabulary: families, their values, palettes, words and prompt templates.

Everything that names a concept lives here, so the generator, the captions, the zero-shot sets,
the text bank and the lexicon can never disagree about what a value is called.

Eight families: the object's colour and position, the backdrop's pattern, the frame's colour, the
colour of the ground strip along the bottom, a glyph on a small tag in the top right corner, the
direction a dial's hand points in (top left corner) and a glyph on a stamp in the bottom left
corner. More families than a head has room for keeps a head's 5 TEXTSPAN picks from landing in the
same family by pigeonhole (with 4 families, 5 texts always put 2 in one family), and gives heads
that write several families. The backdrop's colour is drawn at random and never named (a nuisance,
as the object's shape): when it was a family, the heads whose 5 texts spread over five families
always held both the backdrop's colour and its pattern, which the labeller's declared "backdrop"
concept joins, so no head could score CCS <= 1 (docs/conceptworld.md).

The tag and the stamp show one of nine glyphs (4 x 4 bitmaps), named after Greek letters and
planets: values with no order among them and no low-dimensional layout in the pixels (unlike a
colour's 3 channels or a hand's angle), so a head that writes the family can hold its 5 texts.

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
FAMILIES: tuple[str, ...] = (
    "color",
    "position",
    "texture",
    "frame",
    "ground",
    "tag",
    "dial",
    "stamp",
)

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
    "texture": ("plain", "striped", "banded", "slanted", "checkered", "dotted"),
    "frame": ("gold", "silver", "cyan", "magenta", "crimson", "azure"),
    "ground": ("forest", "aqua", "rose", "cream", "lavender", "chartreuse"),
    "tag": (
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "zeta",
        "theta",
        "lambda",
        "sigma",
    ),
    "dial": (
        "twelve o'clock",
        "two o'clock",
        "four o'clock",
        "six o'clock",
        "eight o'clock",
        "ten o'clock",
    ),
    "stamp": (
        "mercury",
        "venus",
        "earth",
        "mars",
        "jupiter",
        "saturn",
        "uranus",
        "neptune",
        "pluto",
    ),
}

# RGB of each object colour and each backdrop colour (a nuisance, never named). Object colours
# are bright, backdrop colours dark or muted: every object colour is more than 85 away (Euclidean,
# 0-255) from every backdrop colour, more than 75 from every pattern colour (backdrop +
# TEXTURE_CONTRAST) and more than 90 from every other object colour, far beyond the per-image
# jitter and pixel noise the generator adds.
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
# The ground strip is drawn under the object: every ground colour is at least 100 from every object
# colour and at least 45 from every backdrop and pattern colour. Frame, tag, dial and stamp sit at fixed
# places drawn over everything, so their colours only need to differ from each other (> 100 apart
# within a family); they are read from where they are, not from how they look.
GROUND_RGB: tuple[tuple[int, int, int], ...] = (
    (15, 60, 0),  # forest
    (0, 255, 195),  # aqua
    (255, 0, 120),  # rose
    (255, 255, 135),  # cream
    (150, 120, 255),  # lavender
    (90, 255, 0),  # chartreuse
)
FRAME_RGB: tuple[tuple[int, int, int], ...] = (
    (255, 200, 0),  # gold
    (190, 190, 200),  # silver
    (0, 220, 255),  # cyan
    (255, 0, 255),  # magenta
    (150, 0, 30),  # crimson
    (0, 110, 255),  # azure
)
# The tag: its patch shows one of nine glyphs, named after Greek letters: a 4 x 4 bitmap of 2 x 2 px
# cells, dark ink on a light face. The glyphs have no order among them (every two differ in at
# least 6 of 16 cells; their pixels spread over ~5.9 of 8 directions), unlike a colour (3
# channels) or a hand's angle (a circle): a family the pixels do not lay out in 2-3 dimensions.
# (6 x 6 bitmaps of single pixels stayed at chance after 3,900 of 6,000 training steps.)
TAG_FACE_RGB = (235, 235, 215)
TAG_INK_RGB = (25, 25, 60)
TAG_GLYPHS: tuple[tuple[str, ...], ...] = (
    (".###", "#.##", "#...", "##.#"),  # alpha
    (".###", "...#", "#.#.", "..#."),  # beta
    ("....", "###.", "####", ".###"),  # gamma
    ("..##", ".#.#", "###.", ".#.#"),  # delta
    ("###.", "###.", ".#.#", ".#.#"),  # epsilon
    ("...#", "###.", ".#..", "#.#."),  # zeta
    (".##.", "..#.", "##.#", "#.#."),  # theta
    ("#...", "#.##", ".#..", "..##"),  # lambda
    ("#...", ".#..", "#.##", "#.#."),  # sigma
)
# The stamp: the bottom left patch shows one of nine glyphs named after planets, in the tag's way
# (a 4 x 4 bitmap of 2 x 2 px cells), dark ink on a pale blue face.
STAMP_FACE_RGB = (200, 220, 255)
STAMP_INK_RGB = (70, 20, 20)
STAMP_GLYPHS: tuple[tuple[str, ...], ...] = (
    (".###", ".#..", "#.##", "..#."),  # mercury
    ("###.", ".#.#", "..##", "##.."),  # venus
    (".###", "..#.", "##.#", ".#.#"),  # earth
    ("#...", "#.#.", "#.##", "..#."),  # mars
    ("....", "###.", ".##.", "##.#"),  # jupiter
    ("##.#", ".##.", ".#..", "#.#."),  # saturn
    ("...#", "#.##", "..##", ".#.."),  # uranus
    ("..#.", "....", ".##.", "#.##"),  # neptune
    ("#.#.", "#.#.", ".#.#", "#..."),  # pluto
)
# The dial: a dark face with a light hand, neither near an object colour.
DIAL_FACE_RGB = (20, 20, 20)
DIAL_HAND_RGB = (120, 255, 255)
# Pattern pixels of a textured backdrop are the backdrop colour brightened by this much (per
# channel). At 50 texture stayed at chance for 6,000 steps once the backdrop's colour was no
# longer named (docs/conceptworld.md); at 80 it is learnt by step ~1,000.
TEXTURE_CONTRAST = 80

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
    "texture": (
        ("plain", "uniform"),
        ("striped", "horizontally striped"),
        ("banded", "vertically banded"),  # no other value's words may contain "striped"
        ("slanted", "hatched"),
        ("checkered", "chequered"),
        ("dotted", "spotted"),
    ),
    "frame": tuple((name,) for name in VALUES["frame"]),
    "ground": tuple((name,) for name in VALUES["ground"]),
    "tag": tuple((name,) for name in VALUES["tag"]),
    "dial": tuple((name,) for name in VALUES["dial"]),
    "stamp": tuple((name,) for name in VALUES["stamp"]),
}

# Zero-shot prompt templates per family; "{}" is replaced by the canonical value name. They are
# phrased the way training captions are, so a template is in the text distribution.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "color": ("a {} object.", "a {} shape.", "a photo of a {} object.", "something {}."),
    "position": ("an object at the {}.", "a shape in the {}.", "a photo of an object at the {}."),
    "texture": (
        "an object on a {} background.",
        "a scene on a {} background.",
        "a photo of a shape against a {} background.",
    ),
    "frame": ("an image in a {} frame.", "a picture with a {} frame.", "a photo in a {} frame."),
    "ground": ("an object above {} ground.", "a scene with {} ground.", "a photo of {} ground."),
    "tag": ("an image with a {} tag.", "a picture with a {} tag.", "a photo with a {} tag."),
    "dial": (
        "a dial pointing to {}.",
        "an image with a dial at {}.",
        "a photo of a dial showing {}.",
    ),
    "stamp": (
        "an image with a {} stamp.",
        "a picture with a {} stamp.",
        "a photo with a {} stamp.",
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
