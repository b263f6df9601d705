"""TEXTSPAN text bank of the concept world: short descriptions tagged with their family.

Every family contributes the same number of texts (`TEXTS_PER_FAMILY`), spread evenly over its
values and phrased in several ways; distractors describe things outside the world (family None).
Each text names exactly one family in the lexicon's terms, distractors none (tested).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from clipconcepts.conceptworld.generator import fix_article
from clipconcepts.conceptworld.world import FAMILIES, SYNONYMS, n_values

TEXTS_PER_FAMILY = 72  # divisible by every family's number of values (8, 9 or 6)

# Phrasings per family; "{}" takes a value word (canonical name or synonym). A family needs
# phrasings x synonyms >= TEXTS_PER_FAMILY / values distinct texts per value.
_PHRASINGS: dict[str, tuple[str, ...]] = {
    "color": (
        "a {} object",
        "something {}",
        "a {} shape",
        "the color {}",
        "a {} colored thing",
        "a photo of something {}",
        "a {} thing",
        "an image of a {} object",
        "a picture of something {}",
        "a {} item",
    ),
    "position": (
        "an object at the {}",
        "something in the {}",
        "a shape at the {}",
        "an object in the {} of the image",
        "a thing placed at the {}",
        "a photo with an object in the {}",
        "a picture with something at the {}",
    ),
    "texture": (
        "a {} background",
        "an object on a {} background",
        "a scene with a {} background",
        "a shape against a {} background",
        "a photo with a {} background",
        "a {} backdrop",
        "something in front of a {} backdrop",
        "a picture with a {} background",
    ),
    "frame": (
        "a {} frame",
        "an image in a {} frame",
        "a picture with a {} frame",
        "a photo in a {} frame",
        "a {} border around the image",
        "a scene framed in {}",
        "an object inside a {} frame",
        "the frame is {}",
        "a {} picture frame",
        "an image with a {} border",
        "something in a {} frame",
        "a shape surrounded by a {} frame",
    ),
    "ground": (
        "{} ground",
        "an object above {} ground",
        "a scene with {} ground",
        "a photo of {} ground",
        "a strip of {} ground",
        "the ground is {}",
        "something over {} ground",
        "a picture with {} ground below",
        "an image with a {} floor",
        "a shape above a {} floor",
        "the floor is {}",
        "a scene over {} ground",
    ),
    "tag": (
        "a {} tag",
        "an image with a {} tag",
        "a picture with a {} tag",
        "a {} tag on the image",
        "a small {} tag",
        "the tag is {}",
        "a photo with a {} label",
        "a {} sticker",
        "something next to a {} tag",
        "a scene with a small {} tag",
        "an image marked with a {} tag",
        "a {} label on the picture",
    ),
    "dial": (
        "a dial pointing to {}",
        "an image with a dial at {}",
        "a photo of a dial showing {}",
        "a dial at {}",
        "a clock hand at {}",
        "the dial reads {}",
        "a small dial set to {}",
        "a dial whose hand points to {}",
        "a gauge pointing at {}",
        "a picture with a dial at {}",
        "a hand pointing to {}",
        "a scene with a dial showing {}",
    ),
    "stamp": (
        "a {} stamp",
        "an image with a {} stamp",
        "a picture with a {} stamp",
        "a {} stamp on the image",
        "a small {} stamp",
        "the stamp is {}",
        "a photo with a {} postmark",
        "a {} postmark",
        "something beside a {} stamp",
        "a scene with a small {} stamp",
        "an image marked with a {} stamp",
        "a {} postmark on the picture",
    ),
}

# Descriptions of things the world does not contain; none uses a lexicon word.
DISTRACTORS: tuple[str, ...] = (
    "a photo of a dog",
    "a photo of a cat",
    "a bowl of soup",
    "a city street at night",
    "a mountain landscape",
    "a person riding a bicycle",
    "a plate of pasta",
    "a sailing boat on the sea",
    "a close-up of a flower",
    "a group of people at a party",
    "an old wooden house",
    "a car parked on a street",
    "a bird sitting on a branch",
    "a crowded market",
    "a snowy mountain pass",
    "a child playing with a ball",
    "a cup of coffee",
    "a stack of books",
    "a horse in a field",
    "a laptop on a desk",
    "a portrait of a woman",
    "a portrait of a man",
    "a plane in the sky",
    "a bridge over a river",
    "a lighthouse on a cliff",
    "a train at a station",
    "a pizza with cheese",
    "a sleeping puppy",
    "a soccer match",
    "a guitar leaning on a wall",
    "a kitchen with a stove",
    "a beach at sunset",
    "a desert with sand dunes",
    "a waterfall in the jungle",
    "a fish in an aquarium",
    "a butterfly on a leaf",
    "a lamp on a table",
    "a pair of shoes",
    "a bottle of wine",
    "an elephant in the savanna",
    "a rainy window",
    "a tree in autumn",
    "a bunch of bananas",
    "a cat sleeping on a sofa",
    "a tall skyscraper",
    "a farm with cows",
    "a sandwich on a plate",
    "a hot air balloon",
)


def conceptworld_textbank() -> list[tuple[str, str | None]]:
    """(text, family) pairs: `TEXTS_PER_FAMILY` per family, then the distractors (family None)."""
    bank: list[tuple[str, str | None]] = []
    for family in FAMILIES:
        per_value = TEXTS_PER_FAMILY // n_values(family)
        for words in SYNONYMS[family]:
            bank.extend((text, family) for text in _value_texts(family, words, per_value))
    bank.extend((text, None) for text in DISTRACTORS)
    return bank


def _value_texts(family: str, words: tuple[str, ...], count: int) -> list[str]:
    """`count` distinct texts for one value: every phrasing once before any repeats, words
    cycling so synonyms get used."""
    phrasings = _PHRASINGS[family]
    texts: list[str] = []
    n_phrasings = len(phrasings)
    for i in range(n_phrasings * len(words)):
        # Diagonal walk: each (phrasing, word) pair once; consecutive texts change word.
        word = words[(i // n_phrasings + i % n_phrasings) % len(words)]
        text = fix_article(phrasings[i % n_phrasings].format(word))
        if text not in texts:
            texts.append(text)
        if len(texts) == count:
            return texts
    raise AssertionError(
        f"text bank: only {len(texts)} phrasings for a {family} value, need {count}"
    )


def write_textbank(path: str | Path) -> Path:
    """Write the bank as Parquet: `text_id: int32, text: str, family: str (null = distractor)`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bank = conceptworld_textbank()
    frame = pl.DataFrame(
        {
            "text_id": list(range(len(bank))),
            "text": [text for text, _ in bank],
            "family": [family for _, family in bank],
        },
        schema={"text_id": pl.Int32, "text": pl.String, "family": pl.String},
    )
    tmp = path.with_name(path.name + ".tmp")
    frame.write_parquet(tmp)
    tmp.replace(path)
    return path
