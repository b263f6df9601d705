"""Seeded, vectorised renderer of concept-world images and their captions.

An image is 48x48 RGB: one object (of one colour, in one cell of a 3x3 grid; its shape is a random
nuisance) on a background of one colour and one texture (plain, stripes in three directions,
checker, dots). The four families are sampled independently and uniformly. Per-image colour jitter
and per-pixel noise keep images from being exact copies, but stay far below the distance
between palette colours (see `world.OBJECT_RGB`), so every attribute is recoverable from pixels.

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
    FAMILIES,
    OBJECT_RGB,
    SYNONYMS,
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
OUTLINE_WIDTH = 2  # pixels of an outlined (out-of-domain) object's edge
TEXTURE_PERIOD = 6  # pixels per stripe/dot period (not a divisor of the 8 px patch)
COLOR_JITTER = 12.0  # uniform +- per channel, per image, for object and background separately
PIXEL_NOISE_STD = 6.0
# Each family is mentioned in a caption independently with this probability. Colour and
# background colour are the easiest features to learn; mentioning them less often leaves captions
# that only the harder families can match, which keeps contrastive training from latching onto
# the easy families first (first world, measured: shape accuracy 0.48 after 500 steps with 0.7
# for every family, 0.93 after 400 steps with lower rates for the easy families).
MENTION_PROB: dict[str, float] = {
    "color": 0.5,
    "position": 0.9,
    "background": 0.4,
    "texture": 0.7,
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
    """Rasterise one object per image on a (textured) background; returns uint8 [n, 48, 48, 3]."""
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
    obj = np.asarray(OBJECT_RGB, dtype=np.float32)[attrs["color"]]
    bg = np.asarray(BACKGROUND_RGB, dtype=np.float32)[attrs["background"]]
    obj += rng.uniform(-COLOR_JITTER, COLOR_JITTER, size=obj.shape).astype(np.float32)
    bg += rng.uniform(-COLOR_JITTER, COLOR_JITTER, size=bg.shape).astype(np.float32)
    bg_image = bg[:, None, None, :] + TEXTURE_CONTRAST * pattern[..., None]
    image = np.where(mask[..., None], obj[:, None, None, :], bg_image)
    image += PIXEL_NOISE_STD * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


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
    choice = rng.integers(0, 1 << 30, size=(n, 8))
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
        if m["background"] or m["texture"]:
            kinds = [word("texture", c[5] >> 2)] if m["texture"] else []
            kinds += [word("background", 0)] if m["background"] else []
            preposition = _BACKGROUND_PREPOSITIONS[c[5] % len(_BACKGROUND_PREPOSITIONS)]
            phrases.append(_with_article(" ".join(kinds), f"{preposition} ") + " background")
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


def _with_article(noun_phrase: str, before: str = "") -> str:
    article = "an" if noun_phrase[0] in "aeiou" else "a"
    return f"{before}{article} {noun_phrase}"


def images_per_second(n: int = 20_000, seed: Seed = 0) -> float:
    """Measured generation throughput (images with captions per second) on this machine."""
    import time

    start = time.perf_counter()
    generate(n, seed)
    return n / (time.perf_counter() - start)
