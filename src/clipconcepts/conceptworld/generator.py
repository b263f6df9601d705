"""Seeded, vectorised renderer of concept-world images and their captions.

An image is 48x48 RGB: one object (of one colour, in one cell of a 3x3 grid; its shape is a random
nuisance) on a backdrop of one texture (plain, stripes in three directions, checker, dots) and one
colour (a nuisance too, never named) above a plain ground strip of one colour, with a glyph tag in
the top right corner, a dial in the top left corner, a glyph stamp in the bottom left corner and a
frame around the edge. Drawing order: backdrop, ground, object, tag, stamp, dial, frame. The
eight families are sampled independently and uniformly. Per-image colour jitter and per-pixel
noise keep images from being exact copies, but stay far below the distance between palette
colours (see `world.OBJECT_RGB`), so every attribute is recoverable from pixels.

Seeds: `seed` is an int or a sequence of ints (numpy `SeedSequence` entropy). The training loop
and the dataset writer use sequences `[seed, stream, ...]` with distinct stream tags, so training
images and held-out images come from independent streams whatever integers the user picks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from clipconcepts.conceptworld.world import (
    BACKGROUND_RGB,
    DIAL_FACE_RGB,
    DIAL_HAND_RGB,
    FAMILIES,
    FRAME_RGB,
    GROUND_RGB,
    OBJECT_RGB,
    STAMP_FACE_RGB,
    STAMP_GLYPHS,
    STAMP_INK_RGB,
    SYNONYMS,
    TAG_FACE_RGB,
    TAG_GLYPHS,
    TAG_INK_RGB,
    TEXTURE_CONTRAST,
    VALUES,
    n_values,
)

IMAGE_SIZE = 48
# Objects sit at one of 3 x 3 grid points, 12 px apart; an object (up to ~21 px across) spans
# several 8 px patches, and neighbouring positions overlap, so position is read from where the
# object's patches are, not from which cell holds any colour at all.
GRID_STEP = IMAGE_SIZE // 4
CELL_CENTRES = np.array(
    [[GRID_STEP * (c + 1), GRID_STEP * (r + 1)] for r in range(3) for c in range(3)],
    dtype=np.float32,
)  # (x, y), y pointing down, indexed like VALUES["position"]
HALF_SIZE = 9.5  # half extent (pixels), +- SIZE_JITTER per image
SIZE_JITTER = 0.75
CENTRE_JITTER = 1.0
# Fixed regions (pixels; y down). The frame is a ring along the edge; the ground strip runs along
# the bottom inside it; the tag and the dial each fill one corner patch (8 x 8, aligned with the
# ViT's patches), drawn over the frame. A first version with an unaligned 8 x 8 tag and a dial of
# radius 6 with a 5 px hand (both inside the frame) trained to chance on both (3,000 steps), while
# the frame and the ground strip reached 1.00. Objects in the top corners lose ~30 of their ~280
# pixels to them.
FRAME_WIDTH = 3
GROUND_TOP = 37  # rows GROUND_TOP .. IMAGE_SIZE - FRAME_WIDTH - 1
TAG_BOX = (0, 8, 40, 48)  # rows [0, 8), columns [40, 48): the top right patch
STAMP_BOX = (40, 48, 0, 8)  # the bottom left patch: a glyph, as the tag's
DIAL_BOX = (0, 8, 0, 8)  # the top left patch: a dark face with a light hand from its centre
DIAL_CENTRE = (4.0, 4.0)  # (x, y)
DIAL_HAND_LENGTH = 4.0
DIAL_HAND_HALF_WIDTH = 0.8
OUTLINE_WIDTH = 2  # pixels of an outlined (out-of-domain) object's edge
TEXTURE_PERIOD = 6  # pixels per stripe/dot period (not a divisor of the 8 px patch)
COLOR_JITTER = 12.0  # uniform +- per channel, per image, for object and background separately
PIXEL_NOISE_STD = 6.0
# Each family is mentioned in a caption independently with this probability. Colour and
# background colour are the easiest features to learn; mentioning them less often leaves captions
# that only the harder families can match, which keeps contrastive training from latching onto
# the easy families first (first world, measured: shape accuracy 0.48 after 500 steps with 0.7
# for every family, 0.93 after 400 steps with lower rates for the easy families).
# The fixed-place colours (frame, ground, tag) are as easy as the background's.
# Measured (3,000 steps, frame/ground/tag 0.35, dial 0.6, texture 0.7, the rest as now + 0.1):
# frame and ground 1.00 after ~200 steps, texture 0.35, tag and dial at chance; so the families
# learnt first are mentioned less and the slow ones more.
MENTION_PROB: dict[str, float] = {
    "color": 0.6,
    "position": 0.9,
    "texture": 0.85,
    "frame": 0.35,
    "ground": 0.35,
    "tag": 0.6,
    "dial": 0.8,
    "stamp": 0.6,
}
STYLES = ("filled", "outlined")  # outlined objects are never seen in training (the OOD shift)
_CHUNK = 2048  # images rendered at once (bounds memory: ~60 MB of float32 per chunk)

# Stream tags: the second entry of every seed sequence the package uses. Training batches use
# [seed, TRAIN_STREAM, step], the training run's held-out evaluation [seed, EVAL_STREAM, family],
# and the datasets on disk [seed, DATASET_STREAM, set]; so they never share a random stream.
TRAIN_STREAM, EVAL_STREAM, DATASET_STREAM = 0, 1, 2

Seed = int | Sequence[int]


class WorldSample(NamedTuple):
    """Generated images and their ground truth (unpacks as `images, attributes, captions`).

    images: uint8 numpy array [n, 48, 48, 3] (height, width, RGB), ready for `PIL.Image.fromarray`.
    attributes: family -> int64 array [n] of value indices (see `world.VALUES`).
    captions: one caption per image mentioning a random non-empty subset of its attributes.
    """

    images: np.ndarray
    attributes: dict[str, np.ndarray]
    captions: list[str]


def generate(
    n: int, seed: Seed, attributes: dict[str, np.ndarray] | None = None, style: str = "filled"
) -> WorldSample:
    """Render `n` random concept-world images with their attributes and captions.

    Deterministic for a given `seed`. `attributes` optionally fixes some families (family -> int
    array of length n); the others are sampled. The random stream is consumed identically either
    way, so fixing one family leaves the others' draws unchanged. `style`: "filled" objects (the
    training distribution) or "outlined" ones (the same classes under a shift never trained on).
    """
    return generate_with_mentions(n, seed, attributes, style)[0]


def generate_with_mentions(
    n: int, seed: Seed, attributes: dict[str, np.ndarray] | None = None, style: str = "filled"
) -> tuple[WorldSample, np.ndarray]:
    """`generate`, plus which families each caption mentions: bool [n, len(FAMILIES)]."""
    if n < 0:
        raise ValueError(f"generate: n must be >= 0, got {n}")
    if style not in STYLES:
        raise ValueError(f"generate: style must be one of {', '.join(STYLES)}, got {style!r}")
    rng = np.random.default_rng(seed)
    attrs = sample_attributes(n, rng)
    for family, values in (attributes or {}).items():
        values = np.asarray(values, dtype=np.int64)
        if values.shape != (n,):
            raise ValueError(f"generate: attributes[{family!r}] must have shape ({n},)")
        if values.size and (values.min() < 0 or values.max() >= n_values(family)):
            raise ValueError(f"generate: attributes[{family!r}] out of range 0..{n_values(family)}")
        attrs[family] = values
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        chunk = {f: v[start : start + _CHUNK] for f, v in attrs.items()}
        images[start : start + _CHUNK] = render(chunk, rng, style)
    captions, mentions = make_captions(attrs, rng)
    return WorldSample(images, attrs, captions), mentions


def sample_attributes(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Independent uniform value indices for every family."""
    return {f: rng.integers(0, n_values(f), size=n, dtype=np.int64) for f in FAMILIES}


def render(attrs: dict[str, np.ndarray], rng: np.random.Generator, style: str = "filled"):
    """Rasterise every image's scene (see the module docstring); returns uint8 [n, 48, 48, 3]."""
    n = len(attrs["color"])
    half = HALF_SIZE + SIZE_JITTER * rng.uniform(-1, 1, size=n).astype(np.float32)
    jitter = CENTRE_JITTER * rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    centre = CELL_CENTRES[attrs["position"]] + jitter
    phase = rng.integers(0, TEXTURE_PERIOD, size=(n, 2))
    coords = np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5  # pixel centres
    dx = coords[None, None, :] - centre[:, 0, None, None]  # [n, 1, W]
    dy = coords[None, :, None] - centre[:, 1, None, None]  # [n, H, 1]
    shapes = rng.integers(0, len(_SHAPES), size=n)  # a nuisance: shapes are never named
    mask = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    for shape_index, draw in enumerate(_SHAPES):
        sel = shapes == shape_index
        if sel.any():
            mask[sel] = draw(dx[sel], dy[sel], half[sel, None, None])
    if style == "outlined":
        mask &= ~_erode(mask, OUTLINE_WIDTH)
    pattern = texture_mask(attrs["texture"], phase)
    obj = _jittered(OBJECT_RGB, attrs["color"], rng)
    backdrop = rng.integers(0, len(BACKGROUND_RGB), size=n)  # a nuisance: never named
    bg = _jittered(BACKGROUND_RGB, backdrop, rng)
    stamp_face = _jittered((STAMP_FACE_RGB,), np.zeros(n, np.int64), rng)
    stamp_ink = _jittered((STAMP_INK_RGB,), np.zeros(n, np.int64), rng)
    ground = _jittered(GROUND_RGB, attrs["ground"], rng)
    tag_face = _jittered((TAG_FACE_RGB,), np.zeros(n, np.int64), rng)
    tag_ink = _jittered((TAG_INK_RGB,), np.zeros(n, np.int64), rng)
    frame = _jittered(FRAME_RGB, attrs["frame"], rng)
    regions = fixed_regions()
    image = bg[:, None, None, :] + TEXTURE_CONTRAST * pattern[..., None]
    image = np.where(regions["ground"][None, ..., None], ground[:, None, None, :], image)
    image = np.where(mask[..., None], obj[:, None, None, :], image)
    tag = (tag_glyph_mask(attrs["tag"]), tag_face, tag_ink)
    stamp = (stamp_glyph_mask(attrs["stamp"]), stamp_face, stamp_ink)
    image = paint(
        image, fixed_place_layers(regions, tag, stamp, dial_hand_mask(attrs["dial"]), frame)
    )
    image += PIXEL_NOISE_STD * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def paint(image: np.ndarray, layers) -> np.ndarray:
    """`image` (float [..., H, W, 3]) with each `(mask, rgb)` of `layers` drawn over it in turn:
    `mask` bool [H, W] (one place for all) or [n, H, W] (per image), `rgb` one colour [3] or one
    per image [n, 3]."""
    for mask, rgb in layers:
        rgb = np.asarray(rgb, dtype=np.float32)
        if rgb.ndim == 2:
            rgb = rgb[:, None, None, :]
        image = np.where(mask[..., None], rgb, image)
    return image


def fixed_place_layers(regions, tag, stamp, dial_hand, frame) -> tuple:
    """`paint` layers of the fixed places in drawing order: the tag's face and glyph, the stamp's,
    the dial's face and hand, the frame. `regions`: `fixed_regions()`; `tag` and `stamp`:
    `(glyph mask, face rgb, ink rgb)`; `dial_hand`: its mask; `frame`: its rgb. Masks and colours
    are per image or one for all, as `paint` takes them (the images and the video clips share
    this)."""
    tag_glyph, tag_face, tag_ink = tag
    stamp_glyph, stamp_face, stamp_ink = stamp
    return (
        (regions["tag"], tag_face),
        (tag_glyph, tag_ink),
        (regions["stamp"], stamp_face),
        (stamp_glyph, stamp_ink),
        (regions["dial"], DIAL_FACE_RGB),
        (dial_hand, DIAL_HAND_RGB),
        (regions["frame"], frame),
    )


def _jittered(palette, index: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Palette colours [n, 3] of `index`, each jittered by up to COLOR_JITTER per channel."""
    rgb = np.asarray(palette, dtype=np.float32)[index]
    return rgb + rng.uniform(-COLOR_JITTER, COLOR_JITTER, size=rgb.shape).astype(np.float32)


def fixed_regions() -> dict[str, np.ndarray]:
    """Boolean [48, 48] masks of the fixed places as drawn (later ones on top): `frame` (without
    the corner patches), `ground` (the strip inside the frame), `tag`, `stamp` and `dial` (its
    face)."""
    rows, cols = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    inner = (
        np.minimum(np.minimum(rows, cols), IMAGE_SIZE - 1 - np.maximum(rows, cols)) >= FRAME_WIDTH
    )

    def box(top, bottom, left, right):
        return (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)

    tag, dial, stamp = box(*TAG_BOX), box(*DIAL_BOX), box(*STAMP_BOX)
    return {
        "frame": ~inner & ~tag & ~dial & ~stamp,
        "ground": inner & (rows >= GROUND_TOP) & ~stamp,
        "tag": tag,
        "dial": dial,
        "stamp": stamp,
    }


def tag_glyph_mask(tag: np.ndarray) -> np.ndarray:
    """Ink pixels of each image's tag glyph, bool [n, H, W]."""
    return glyph_mask(tag, TAG_GLYPHS, TAG_BOX)


def stamp_glyph_mask(stamp: np.ndarray) -> np.ndarray:
    """Ink pixels of each image's stamp glyph, bool [n, H, W]."""
    return glyph_mask(stamp, STAMP_GLYPHS, STAMP_BOX)


def glyph_mask(values: np.ndarray, glyphs, box) -> np.ndarray:
    """Ink pixels of each image's glyph, bool [n, H, W]: its 4 x 4 bitmap of 2 x 2 px cells
    filling the patch `box`."""
    bitmaps = np.array([[[c == "#" for c in row] for row in g] for g in glyphs], dtype=bool)
    cells = bitmaps.repeat(2, axis=1).repeat(2, axis=2)  # [values, 8, 8]
    top, bottom, left, right = box
    mask = np.zeros((len(values), IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    mask[:, top:bottom, left:right] = cells[np.asarray(values, dtype=np.int64)]
    return mask


def dial_hand_angle(dial: np.ndarray) -> np.ndarray:
    """Clockwise angle from straight up (radians) of each dial value (twelve, two, ... o'clock)."""
    return np.asarray(dial, dtype=np.float32) * (np.pi / 3)


def dial_hand_mask(dial: np.ndarray) -> np.ndarray:
    """Pixels of each image's dial hand, bool [n, H, W]: a segment from the dial's centre."""
    angle = dial_hand_angle(dial)
    ux, uy = np.sin(angle), -np.cos(angle)  # y points down: twelve o'clock is -y
    coords = np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5
    px = coords[None, None, :] - DIAL_CENTRE[0]
    py = coords[None, :, None] - DIAL_CENTRE[1]
    along = px * ux[:, None, None] + py * uy[:, None, None]
    across = px * uy[:, None, None] - py * ux[:, None, None]
    return (along >= 0) & (along <= DIAL_HAND_LENGTH) & (np.abs(across) <= DIAL_HAND_HALF_WIDTH)


def texture_mask(texture: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Pattern pixels of each image's background, bool [n, H, W] (`phase`: [n, 2] offsets)."""
    p = TEXTURE_PERIOD
    grid = np.arange(IMAGE_SIZE)
    x = grid[None, None, :] + phase[:, 0, None, None]  # [n, 1, W]
    y = grid[None, :, None] + phase[:, 1, None, None]  # [n, H, 1]
    patterns = (
        np.zeros_like(x + y, dtype=bool),  # plain
        np.broadcast_to(y % p < p // 2, (len(x), IMAGE_SIZE, IMAGE_SIZE)),  # horizontal stripes
        np.broadcast_to(x % p < p // 2, (len(x), IMAGE_SIZE, IMAGE_SIZE)),  # vertical stripes
        (x + y) % p < p // 2,  # diagonal stripes
        (x // (p // 2) + y // (p // 2)) % 2 == 0,  # checker of p/2 squares
        ((x % p) - (p - 1) / 2) ** 2 + ((y % p) - (p - 1) / 2) ** 2 <= 2.5,  # dots
    )
    assert len(patterns) == len(VALUES["texture"])
    return np.choose(texture[:, None, None], patterns)


def _erode(mask: np.ndarray, steps: int) -> np.ndarray:
    """Binary erosion with a 3x3 cross, `steps` times, over [n, H, W] (outside = empty)."""
    for _ in range(steps):
        inner = mask.copy()
        inner[:, 1:] &= mask[:, :-1]
        inner[:, :-1] &= mask[:, 1:]
        inner[:, :, 1:] &= mask[:, :, :-1]
        inner[:, :, :-1] &= mask[:, :, 1:]
        inner[:, [0, -1]] = False
        inner[:, :, [0, -1]] = False
        mask = inner
    return mask


# Shape rasterisers: pixel offsets from the centre (dx, dy; y down) and half extent r -> mask.
def _circle(dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    return dx * dx + dy * dy <= r * r


def _square(dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    # 0.8 r keeps the square's area close to the circle's.
    return np.maximum(np.abs(dx), np.abs(dy)) <= 0.8 * r


def _triangle(dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    # Upward-pointing: apex at dy = -r, base at dy = 0.8 r with half width r.
    return (dy <= 0.8 * r) & (np.abs(dx) <= (dy + r) * (1 / 1.8))


def _cross(dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    adx, ady = np.abs(dx), np.abs(dy)
    arm = 0.3 * r
    return ((adx <= arm) & (ady <= r)) | ((ady <= arm) & (adx <= r))


def _ring(dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    d2 = dx * dx + dy * dy
    return (d2 <= r * r) & (d2 >= (0.5 * r) ** 2)


def _diamond(dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    return np.abs(dx) + np.abs(dy) <= 1.1 * r


_SHAPES = (_circle, _square, _triangle, _cross, _ring, _diamond)

# Caption grammar. A caption is a subject ("a red object") plus optional position and background
# phrases ("on a dotted teal background"), in one of several orders.
_NEUTRAL_NOUNS = ("object", "shape", "thing")
_POSITION_PHRASES = ("at the {}", "in the {}")
_BACKGROUND_PREPOSITIONS = ("on", "against", "with")
_PREFIXES = ("a photo of ", "an image of ")
# Phrases of the fixed-place families; "{}" takes the value word.
_EXTRA_PHRASES: dict[str, tuple[str, ...]] = {
    "frame": ("in a {} frame", "with a {} frame"),
    "ground": ("above {} ground", "over {} ground"),
    "tag": ("with a {} tag", "next to a {} tag"),
    "dial": ("with a dial at {}", "by a dial pointing to {}"),
    "stamp": ("with a {} stamp", "beside a {} stamp"),
}


def make_captions(
    attrs: dict[str, np.ndarray], rng: np.random.Generator
) -> tuple[list[str], np.ndarray]:
    """One caption per image, mentioning a random non-empty subset of families; returns the
    captions and the mention mask (bool [n, len(FAMILIES)])."""
    n = len(attrs["color"])
    mention = rng.random((n, len(FAMILIES))) < np.array([MENTION_PROB[f] for f in FAMILIES])
    forced = rng.integers(0, len(FAMILIES), size=n)  # guarantees at least one mention
    mention[np.arange(n), forced] |= ~mention.any(axis=1)
    # All remaining choices drawn up front so the stream does not depend on string content.
    choice = rng.integers(0, 1 << 30, size=(n, 8 + len(_EXTRA_PHRASES)))
    captions = []
    for i in range(n):
        m = dict(zip(FAMILIES, mention[i], strict=True))
        c = choice[i]

        def word(family: str, k: int, i: int = i) -> str:
            options = SYNONYMS[family][attrs[family][i]]
            return options[k % len(options)]

        phrases = [_subject(m, word, c)]
        if m["position"]:
            pos = _POSITION_PHRASES[c[3] % len(_POSITION_PHRASES)].format(word("position", c[4]))
            phrases.append(pos)
        if m["texture"]:
            kinds = [word("texture", c[5] >> 2)]
            preposition = _BACKGROUND_PREPOSITIONS[c[5] % len(_BACKGROUND_PREPOSITIONS)]
            phrases.append(_with_article(" ".join(kinds), f"{preposition} ") + " background")
        for k, (family, options) in enumerate(_EXTRA_PHRASES.items()):
            if m[family]:
                phrase = options[c[8 + k] % len(options)].format(word(family, 0))
                phrases.append(fix_article(phrase))
        captions.append(_arrange(phrases, int(c[6]), int(c[7])))
    return captions, mention


def _subject(m: dict[str, bool], word, c: np.ndarray) -> str:
    if m["color"] and c[0] % 5 == 0:
        return f"something {word('color', 0)}"
    if not m["color"] and c[0] % 3 == 0:
        return "a scene"
    noun = _NEUTRAL_NOUNS[c[2] % len(_NEUTRAL_NOUNS)]
    return _with_article(f"{word('color', 0)} {noun}" if m["color"] else noun)


def _arrange(phrases: list[str], order: int, prefix: int) -> str:
    subject, rest = phrases[0], phrases[1:]
    if rest and order % 3 == 0:
        # A leading phrase: "at the top left, a red circle on a teal background".
        lead = rest[order // 3 % len(rest)]
        others = [p for p in rest if p is not lead]
        return ", ".join([lead, " ".join([subject, *others])])
    if len(rest) == 2 and order % 3 == 1:
        rest = rest[::-1]
    text = " ".join([subject, *rest])
    if prefix % 4 == 0 and not subject.startswith("something"):
        text = _PREFIXES[prefix // 4 % 2] + text
    return text


def fix_article(text: str) -> str:
    """ "a indigo tag" -> "an indigo tag" (the article before a vowel-initial word)."""
    words = text.split(" ")
    for i, word in enumerate(words[:-1]):
        if word == "a" and words[i + 1][0] in "aeiou":
            words[i] = "an"
    return " ".join(words)


def _with_article(noun_phrase: str, before: str = "") -> str:
    article = "an" if noun_phrase[0] in "aeiou" else "a"
    return f"{before}{article} {noun_phrase}"


def images_per_second(n: int = 20_000, seed: Seed = 0) -> float:
    """Measured generation throughput (images with captions per second) on this machine."""
    import time

    start = time.perf_counter()
    generate(n, seed)
    return n / (time.perf_counter() - start)
