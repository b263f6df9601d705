"""Tests of the concept world: generator, captions, lexicon, text bank, datasets, training and
the ground-truth pruning check (family heads found from the decomposition matter for it)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image

from clipconcepts.conceptworld import (
    FAMILIES,
    VALUES,
    conceptworld_lexicon,
    conceptworld_textbank,
    generate,
    train_concept_clip,
    write_datasets,
    write_textbank,
)
from clipconcepts.conceptworld.generator import (
    CELL_CENTRES,
    DIAL_CENTRE,
    STAMP_BOX,
    dial_hand_angle,
    fixed_regions,
    generate_with_mentions,
    glyph_mask,
    tag_glyph_mask,
)
from clipconcepts.conceptworld.lexicon import families_in_text
from clipconcepts.conceptworld.model import MODEL_CONFIG, MODEL_NAME, to_model_input
from clipconcepts.conceptworld.world import (
    BACKGROUND_RGB,
    DIAL_FACE_RGB,
    DIAL_HAND_RGB,
    FRAME_RGB,
    GROUND_RGB,
    OBJECT_RGB,
    STAMP_FACE_RGB,
    STAMP_GLYPHS,
    STAMP_INK_RGB,
    SYNONYMS,
    TAG_FACE_RGB,
    TAG_INK_RGB,
    TEMPLATES,
    TEXTURE_CONTRAST,
)
from clipconcepts.lexicons import words_of

PATTERN_RGB = tuple(tuple(c + TEXTURE_CONTRAST for c in rgb) for rgb in BACKGROUND_RGB)
# object colours, then background colours, their pattern colours, then ground colours: every
# colour the scene inside the fixed places (frame, tag, dial) can show
PALETTE = np.array(OBJECT_RGB + BACKGROUND_RGB + PATTERN_RGB + GROUND_RGB, dtype=np.float32)
N_OBJECT_COLORS, N_BACKGROUNDS = len(OBJECT_RGB), len(BACKGROUND_RGB)
GROUND_START = N_OBJECT_COLORS + 2 * N_BACKGROUNDS
REGIONS = fixed_regions()
SCENE = ~(
    REGIONS["frame"] | REGIONS["tag"] | REGIONS["dial"] | REGIONS["stamp"]
)  # the object may be anywhere here
BACKDROP = SCENE & ~REGIONS["ground"]
SIZE = 48


# ---------------------------------------------------------------- generator


def test_generate_is_deterministic_per_seed():
    a, b, c = generate(48, 7), generate(48, 7), generate(48, 8)
    assert a.images.shape == (48, SIZE, SIZE, 3) and a.images.dtype == np.uint8
    assert np.array_equal(a.images, b.images) and a.captions == b.captions
    assert all(np.array_equal(a.attributes[f], b.attributes[f]) for f in FAMILIES)
    assert not np.array_equal(a.images, c.images)
    assert a.captions != c.captions


def test_every_family_spans_at_least_five_text_directions():
    assert all(len(VALUES[f]) >= 6 for f in FAMILIES)


def test_fixed_attributes_are_rendered_and_leave_other_draws_alone():
    free = generate(40, 3)
    positions = np.arange(40) % 9
    fixed = generate(40, 3, attributes={"position": positions})
    assert np.array_equal(fixed.attributes["position"], positions)
    for family in ("color", "texture", "stamp"):
        assert np.array_equal(fixed.attributes[family], free.attributes[family])
    with pytest.raises(ValueError, match="position"):
        generate(4, 0, attributes={"position": np.array([0, 1, 2, 9])})
    with pytest.raises(KeyError, match="shape"):
        generate(2, 0, attributes={"shape": np.array([0, 0])})
    with pytest.raises(ValueError, match="style"):
        generate(2, 0, style="sketched")


def _nearest_palette(images: np.ndarray) -> np.ndarray:
    """Index into PALETTE of each pixel's nearest palette colour: [n, H, W]."""
    d = ((images[..., None, :].astype(np.float32) - PALETTE) ** 2).sum(-1)
    return d.argmin(-1)


def _texture_from_pattern(pattern: np.ndarray, background: np.ndarray) -> int:
    """Classify a background pattern mask (index into VALUES['texture']) from which neighbours
    agree: stripes agree along their direction, checker and dots in none."""
    if not 0.02 < pattern[background].mean() < 0.9:
        return 0  # uniform (no pattern covers more than half the backdrop)

    def agreement(a, b, valid_a, valid_b):
        valid = valid_a & valid_b
        return (a == b)[valid].mean()

    along_x = agreement(pattern[:, 1:], pattern[:, :-1], background[:, 1:], background[:, :-1])
    along_y = agreement(pattern[1:], pattern[:-1], background[1:], background[:-1])
    anti = agreement(pattern[1:, :-1], pattern[:-1, 1:], background[1:, :-1], background[:-1, 1:])
    if along_x > 0.97:
        return 1  # horizontal stripes: constant along each row
    if along_y > 0.97:
        return 2
    if anti > 0.97:
        return 3
    return 4 if pattern[background].mean() > 0.42 else 5  # checker covers half, dots a third


def _pattern_pixels(image: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Pattern pixels of the backdrop: the (unnamed) backdrop colour is the one whose pair
    (colour, colour + contrast) explains the backdrop's pixels best; a pixel is pattern when
    nearer the brighter of the pair. (A palette lookup alone would not do: black's pattern
    colour is within 30 of gray.)"""
    pixels = image[background]  # [p, 3]
    base = np.asarray(BACKGROUND_RGB, np.float32)[:, None, :]  # [c, 1, 3]
    plain = ((pixels - base) ** 2).sum(-1)
    bright = ((pixels - base - TEXTURE_CONTRAST) ** 2).sum(-1)
    best = np.minimum(plain, bright).sum(1).argmin()
    pattern = np.zeros_like(background)
    pattern[background] = bright[best] < plain[best]
    return pattern


def _nearest(rgb: np.ndarray, palette) -> int:
    return int(((np.asarray(palette, np.float32) - rgb) ** 2).sum(-1).argmin())


def _recover(images: np.ndarray) -> dict[str, list[int]]:
    """Every family's value read back from pixels alone."""
    nearest = _nearest_palette(images)
    found: dict[str, list[int]] = {f: [] for f in FAMILIES}
    hand_angles = dial_hand_angle(np.arange(len(VALUES["dial"])))
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    for i in range(len(images)):
        near = nearest[i]
        counts = np.bincount(near[SCENE], minlength=len(PALETTE))
        color = int(counts[:N_OBJECT_COLORS].argmax())
        found["color"].append(color)
        mask = (near == color) & SCENE
        background = BACKDROP & (near >= N_OBJECT_COLORS)  # backdrop, not the object
        pattern = _pattern_pixels(images[i].astype(np.float32), background)
        found["texture"].append(_texture_from_pattern(pattern, background))
        ys, xs = np.nonzero(mask)
        centroid = np.array([xs.mean(), ys.mean()]) + 0.5
        found["position"].append(int(((CELL_CENTRES - centroid) ** 2).sum(1).argmin()))
        ground = np.bincount(near[REGIONS["ground"]], minlength=len(PALETTE))[GROUND_START:]
        found["ground"].append(int(ground.argmax()))
        image = images[i].astype(np.float32)
        found["frame"].append(_nearest(image[REGIONS["frame"]].mean(0), FRAME_RGB))
        tag = image[REGIONS["tag"]]
        ink = ((tag - TAG_INK_RGB) ** 2).sum(-1) < ((tag - TAG_FACE_RGB) ** 2).sum(-1)
        glyphs = tag_glyph_mask(np.arange(len(VALUES["tag"])))[:, REGIONS["tag"]]
        found["tag"].append(int((glyphs != ink).sum(1).argmin()))
        stamp = image[REGIONS["stamp"]]
        ink = ((stamp - STAMP_INK_RGB) ** 2).sum(-1) < ((stamp - STAMP_FACE_RGB) ** 2).sum(-1)
        glyphs = glyph_mask(np.arange(len(VALUES["stamp"])), STAMP_GLYPHS, STAMP_BOX)
        found["stamp"].append(int((glyphs[:, REGIONS["stamp"]] != ink).sum(1).argmin()))
        dial = image[REGIONS["dial"]]
        hand = ((dial - DIAL_HAND_RGB) ** 2).sum(-1) < ((dial - DIAL_FACE_RGB) ** 2).sum(-1)
        dx = cols[REGIONS["dial"]][hand] + 0.5 - DIAL_CENTRE[0]
        dy = rows[REGIONS["dial"]][hand] + 0.5 - DIAL_CENTRE[1]
        angle = np.arctan2(dx.mean(), -dy.mean())  # clockwise from up
        gap = np.abs(np.angle(np.exp(1j * (hand_angles - angle))))
        found["dial"].append(int(gap.argmin()))
    return found


def test_attributes_are_recoverable_from_pixels():
    sample = generate(600, 11)
    found = _recover(sample.images)
    for family in FAMILIES:
        assert found[family] == sample.attributes[family].tolist(), family


def test_outlined_objects_keep_every_attribute_but_fill_less():
    filled = generate(300, 12)
    outlined = generate(300, 12, style="outlined")
    for family in FAMILIES:
        assert np.array_equal(filled.attributes[family], outlined.attributes[family])
    found = _recover(outlined.images)
    for family in FAMILIES:
        assert found[family] == outlined.attributes[family].tolist(), family
    object_pixels = [
        ((_nearest_palette(s.images) < N_OBJECT_COLORS) & SCENE).sum(axis=(1, 2))
        for s in (filled, outlined)
    ]
    assert (object_pixels[1] < 0.85 * object_pixels[0]).mean() > 0.9


def test_captions_mention_only_true_values():
    sample, mentions = generate_with_mentions(500, 5)
    lexicon = conceptworld_lexicon()
    assert mentions.any(axis=1).all()
    for i, caption in enumerate(sample.captions):
        mentioned = {f for f, m in zip(FAMILIES, mentions[i], strict=True) if m}
        assert families_in_text(caption, lexicon) == mentioned, caption
        for family in mentioned:
            true_words = SYNONYMS[family][sample.attributes[family][i]]
            assert any(f" {w} " in f" {caption.replace(',', '')} " for w in true_words), caption
            for value, words in enumerate(SYNONYMS[family]):
                if value != sample.attributes[family][i]:
                    assert not any(f" {w} " in f" {caption} " for w in words), caption
    # Word order varies: the subject does not always come first.
    assert len({c.split(" ")[0] for c in sample.captions}) > 3


def test_generation_is_vectorised_and_fast():
    generate(500, 0)  # warm up
    start = time.perf_counter()
    generate(10_000, 1)
    rate = 10_000 / (time.perf_counter() - start)
    # Measured 2,450-11,000 images/s on 2 cores depending on the machine and what else runs (the
    # suite once failed at 2,454 against a bar of 2,500); a per-pixel Python loop renders well
    # under 100 images/s (48 x 48 pixels, several shape tests each), so 1,000 still tells them apart.
    assert rate > 1_000, rate


# ---------------------------------------------------------------- preprocessing


def test_training_tensor_equals_open_clip_preprocess_of_png(tmp_path):
    open_clip = pytest.importorskip("open_clip")
    config = tmp_path / f"{MODEL_NAME}.json"
    config.write_text(json.dumps(MODEL_CONFIG))
    open_clip.add_model_config(config)
    _, _, preprocess = open_clip.create_model_and_transforms(MODEL_NAME, pretrained=None)
    sample = generate(6, 2)
    ours = to_model_input(sample.images)
    for i, image in enumerate(sample.images):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        theirs = preprocess(Image.open(tmp_path / f"{i}.png"))
        torch.testing.assert_close(ours[i], theirs, rtol=0, atol=1e-6)


def test_trimmed_text_encoding_equals_open_clip_encode_text(tmp_path):
    from clipconcepts.conceptworld.model import build_model, encode_text_trimmed, write_model_config

    torch.manual_seed(0)
    model, tokenizer = build_model(write_model_config(tmp_path))
    with torch.no_grad():  # move off the init so every weight matters
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    tokens = tokenizer(generate(32, 1).captions)
    assert int((tokens != 0).sum(dim=1).max()) < tokens.shape[1]  # something to trim
    torch.testing.assert_close(encode_text_trimmed(model, tokens), model.encode_text(tokens))


def test_clip_loss_with_caption_matches():
    from clipconcepts.conceptworld.train import caption_match, clip_loss

    attributes = {f: np.zeros(3, dtype=np.int64) for f in FAMILIES}
    attributes["color"] = np.array([0, 0, 1])
    mentions = np.zeros((3, len(FAMILIES)), dtype=bool)
    mentions[:, 0] = True  # every caption names only the colour
    match = caption_match(attributes, mentions)
    assert match.tolist() == [[True, True, False], [True, True, False], [False, False, True]]
    # Images 0 and 1 fit captions 0 and 1 equally well. With matches as positives these logits
    # are optimal (zero gradient); one-hot targets still push image 0 away from caption 1.
    logits = torch.tensor(
        [[5.0, 5.0, -5.0], [5.0, 5.0, -5.0], [-5.0, -5.0, 5.0]], requires_grad=True
    )
    (grad_matches,) = torch.autograd.grad(clip_loss(logits, match), logits)
    (grad_one_hot,) = torch.autograd.grad(clip_loss(logits), logits)
    assert grad_matches.abs().max() < 1e-3
    assert grad_one_hot[0, 1] > 0.1


# ---------------------------------------------------------------- lexicon and text bank


def test_lexicon_covers_every_value_and_names_one_family_per_entry():
    lexicon = conceptworld_lexicon()
    assert all(key == key.lower() and key.strip() == key for key in lexicon)
    for family in FAMILIES:
        for value in VALUES[family]:
            assert lexicon[" ".join(words_of(value))] == family  # "two o'clock" -> "two o clock"
    assert families_in_text("bright light", lexicon) == set()  # whole words only
    assert families_in_text("a red circle in the upper left on a dotted background", lexicon) == {
        "color",
        "position",
        "texture",
    }
    assert families_in_text("a teal background", lexicon) == set()  # an unnamed nuisance
    assert families_in_text("a mars stamp beside an alpha tag", lexicon) == {"stamp", "tag"}


def test_textbank_is_balanced_and_each_text_names_exactly_its_family():
    bank = conceptworld_textbank()
    texts = [t for t, _ in bank]
    assert len(set(texts)) == len(texts)
    counts = {f: sum(1 for _, g in bank if g == f) for f in [*FAMILIES, None]}
    assert len(set(counts[f] for f in FAMILIES)) == 1 and counts["color"] >= 40
    assert counts[None] >= 20
    lexicon = conceptworld_lexicon()
    for text, family in bank:
        assert families_in_text(text, lexicon) == ({family} if family else set()), text
    for family in FAMILIES:  # every value appears in several phrasings
        for words in SYNONYMS[family]:
            hits = [t for t, f in bank if f == family and any(f" {w} " in f" {t} " for w in words)]
            assert len(hits) >= 6, (family, words)


def test_textbank_and_templates_fit_the_text_context():
    open_clip = pytest.importorskip("open_clip")
    tokenizer = open_clip.tokenize  # the SimpleTokenizer the model uses
    context = MODEL_CONFIG["text_cfg"]["context_length"]
    prompts = [t.format(v) for f in FAMILIES for t in TEMPLATES[f] for v in VALUES[f]]
    texts = [t for t, _ in conceptworld_textbank()] + prompts + generate(300, 4).captions
    lengths = (tokenizer(texts, context_length=77) != 0).sum(dim=1)
    assert int(lengths.max()) <= context


def test_write_textbank_schema(tmp_path):
    path = write_textbank(tmp_path / "bank" / "texts.parquet")
    frame = pl.read_parquet(path)
    assert frame.schema == pl.Schema({"text_id": pl.Int32, "text": pl.String, "family": pl.String})
    assert frame["text_id"].to_list() == list(range(len(frame)))
    assert frame["family"].null_count() == sum(1 for _, f in conceptworld_textbank() if f is None)


# ---------------------------------------------------------------- datasets


def test_write_datasets(tmp_path):
    written = write_datasets(tmp_path, n_probe=20, n_per_family=18, seed=0, progress=False)
    assert set(written) == {"probe", *FAMILIES, *(f"{f}-outlined" for f in FAMILIES)}
    for name, folder in written.items():
        manifest = pl.read_parquet(folder / "manifest.parquet")
        classes = json.loads((folder / "classes.json").read_text())
        family = "color" if name == "probe" else name.removesuffix("-outlined")
        assert classes["family"] == family and classes["classnames"] == list(VALUES[family])
        assert all("{}" in t for t in classes["templates"])
        assert manifest.schema["label"] == pl.Int32 and manifest.schema["image_id"] == pl.String
        assert manifest["image_id"].n_unique() == len(manifest)
        # label and the family column agree
        names = [classes["classnames"][k] for k in manifest["label"]]
        assert names == manifest[family].to_list()
        image = np.asarray(Image.open(folder / manifest["path"][0]))
        assert image.shape == (SIZE, SIZE, 3)
        # the stored columns match the pixels
        found = _recover(image[None])
        for column in FAMILIES:
            assert VALUES[column][found[column][0]] == manifest[column][0], (name, column)
        if name != "probe":  # class-balanced
            assert manifest["label"].value_counts()["count"].max() <= -(-18 // len(VALUES[family]))
    # the outlined sets are the same classes drawn differently, from their own stream
    filled, outlined = (
        pl.read_parquet(written[n] / "manifest.parquet") for n in ("texture", "texture-outlined")
    )
    assert (
        filled["label"]
        .value_counts()
        .sort("label")
        .equals(outlined["label"].value_counts().sort("label"))
    )
    assert not filled.drop("image_id", "path").equals(outlined.drop("image_id", "path"))
    again = write_datasets(tmp_path / "again", n_probe=20, n_per_family=18, seed=0, progress=False)
    a = pl.read_parquet(written["position"] / "manifest.parquet")
    b = pl.read_parquet(again["position"] / "manifest.parquet")
    assert a.drop("image_id", "path").equals(b.drop("image_id", "path"))
    assert not (tmp_path / "probe.tmp").exists()


# ---------------------------------------------------------------- training and ground truth

from conftest import SHORT_STEPS, demo_recipe  # noqa: E402 - the shared runs' settings

# Learnt first (measured at step 150 of the demo's schedule, 90 images per family: frame 0.91,
# ground 0.92; colour 0.34, dial 0.33, the others 0.20-0.30).
EARLY_FAMILIES = ("frame", "ground")
# Zero-shot accuracy each family of the demo's model must reach (the target: 0.95).
# The shipped recipe (6,000 steps of 128) reaches 1.000 on every family (1,000 held-out images
# per family); with batches of 64 one family stayed short in every run (docs/conceptworld.md).
ACCURACY_FLOOR = dict.fromkeys(FAMILIES, 0.95)


def _assert_floors(accuracy: dict[str, float]) -> None:
    assert set(accuracy) == set(FAMILIES)
    below = {f: a for f, a in accuracy.items() if a < ACCURACY_FLOOR[f]}
    assert not below, below


def _well_above_chance(row: dict) -> float:
    """At least 4 binomial standard deviations above chance, and 0.1 in absolute terms."""
    sd = (row["chance"] * (1 - row["chance"]) / row["n_images"]) ** 0.5
    return row["chance"] + max(4 * sd, 0.1)


def _load(out: Path):
    models = pytest.importorskip("clipconcepts.models")
    return models.load_clip(str(out / f"{MODEL_NAME}.json"), pretrained=str(out / "checkpoint.pt"))


def test_short_training_learns_the_early_families(short_training_run):
    out, metrics = short_training_run
    for name in (f"{MODEL_NAME}.json", "checkpoint.pt", "metrics.parquet", "train_log.parquet"):
        assert (out / name).is_file(), name
    assert pl.read_parquet(out / "metrics.parquet").equals(metrics)
    assert metrics["family"].to_list() == list(FAMILIES)
    for row in metrics.filter(pl.col("family").is_in(EARLY_FAMILIES)).iter_rows(named=True):
        assert row["accuracy"] > _well_above_chance(row), row
    log = pl.read_parquet(out / "train_log.parquet")
    assert log.height == metrics["steps"][0] == SHORT_STEPS
    assert log["loss"].tail(25).mean() < log["loss"].head(25).mean() - 1.0


def test_interrupted_training_resumes_where_it_stopped(tmp_path, monkeypatch):
    import clipconcepts.conceptworld.train as train

    settings = dict(steps=6, batch_size=8, seed=3, eval_images_per_family=8, threads=1)
    straight = train_concept_clip(tmp_path / "straight", progress=False, **settings)
    real_generate = train.generate_with_mentions
    seen = []

    def dies_at_step_4(n, seed, *args, **kwargs):
        if seed[-1] == 4:
            raise KeyboardInterrupt  # a kill between checkpoints
        seen.append(seed[-1])
        return real_generate(n, seed, *args, **kwargs)

    monkeypatch.setattr(train, "generate_with_mentions", dies_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        train_concept_clip(tmp_path / "resumed", progress=False, checkpoint_every=2, **settings)
    assert (tmp_path / "resumed" / train.STATE_NAME).is_file()
    monkeypatch.setattr(train, "generate_with_mentions", real_generate)
    resumed = train_concept_clip(
        tmp_path / "resumed", progress=False, checkpoint_every=2, **settings
    )
    assert seen == [0, 1, 2, 3]  # steps 0-3 ran before the kill, the state holds 0-3
    assert not (tmp_path / "resumed" / train.STATE_NAME).exists()
    log = pl.read_parquet(tmp_path / "resumed" / train.TRAIN_LOG_NAME)
    assert log["step"].to_list() == list(range(6))
    a = torch.load(tmp_path / "straight" / "checkpoint.pt")
    b = torch.load(tmp_path / "resumed" / "checkpoint.pt")
    for name in a:
        torch.testing.assert_close(a[name], b[name], msg=name)
    assert straight.drop("train_seconds").equals(resumed.drop("train_seconds"))


def test_training_state_from_other_settings_is_ignored(tmp_path, caplog):
    import clipconcepts.conceptworld.train as train

    (tmp_path / train.STATE_NAME).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"settings": {"steps": 99}, "step": 3}, tmp_path / train.STATE_NAME)
    train_concept_clip(tmp_path, steps=2, batch_size=8, eval_images_per_family=8, progress=False)
    assert "other settings" in caplog.text
    assert pl.read_parquet(tmp_path / train.TRAIN_LOG_NAME)["step"].to_list() == [0, 1]


def test_checkpoint_loads_with_load_clip_and_reproduces_metrics(shipped_run):
    from clipconcepts.conceptworld.generator import EVAL_STREAM
    from clipconcepts.conceptworld.groundtruth import zero_shot_accuracy
    from clipconcepts.conceptworld.model import held_out_family_set

    out, metrics = shipped_run
    clip = _load(out)
    assert (clip.n_layers, clip.n_heads) == (8, 12)
    n = metrics["n_images"][0]  # the run's own evaluation size
    for index, family in enumerate(FAMILIES[:2]):
        held_out = held_out_family_set(family, n, [0, EVAL_STREAM, index])
        accuracy = zero_shot_accuracy(
            clip, to_model_input(held_out.images), held_out.attributes[family], family
        )
        expected = metrics.filter(pl.col("family") == family)["accuracy"].item()
        assert accuracy == pytest.approx(expected, abs=1.5 / n)


def _pruning_checks(clip, n_images: int, k: int, families=FAMILIES):
    from clipconcepts.conceptworld.groundtruth import pruning_check
    from clipconcepts.conceptworld.model import held_out_family_set

    checks = []
    for index, family in enumerate(FAMILIES):
        if family not in families:
            continue
        # stream tag 7: held out from training (0), its evaluation (1) and the datasets (2)
        held_out = held_out_family_set(family, n_images, [0, 7, index])
        images = to_model_input(held_out.images)
        checks.append(pruning_check(clip, images, held_out.attributes[family], family, k=k))
    return checks


def _assert_family_heads_matter(checks) -> None:
    for check in checks:
        # the mean margin (true-class cosine minus the best other) and accuracy; a family the
        # model knows with large margins may lose margin without losing a single image
        # (measured, full model, background at k = 8: accuracy 1.000 either way, margin drop
        # 0.048 vs 0.015 for random heads), so accuracy is compared without strictness
        assert check.family_heads_margin_drop > 2 * max(check.random_margin_drop, 0.0), check
        assert check.family_heads_drop >= check.random_drop, check


def test_pruning_family_heads_hurts_that_family_more_than_random_heads(shipped_run):
    clip = _load(shipped_run[0])
    # k = 8 of the 96 heads: a family is spread over several heads
    _assert_family_heads_matter(
        _pruning_checks(clip, n_images=300, k=8, families=("color", "dial"))
    )


def test_head_truth_shares_and_top_family(shipped_run):
    from clipconcepts.conceptworld.generator import generate
    from clipconcepts.conceptworld.groundtruth import family_basis, head_truth

    clip = _load(shipped_run[0])
    images = to_model_input(generate(200, [0, 8]).images)
    truth = head_truth(clip, images, batch_size=64)
    assert truth.height == clip.n_layers * clip.n_heads * len(FAMILIES)
    assert truth.filter("is_top").height == clip.n_layers * clip.n_heads
    assert truth["share"].min() >= 0 and truth["share"].max() <= 1 + 1e-9
    # the score of one head against a plain computation: variance of its contributions projected
    # on an orthonormal basis of the family's centred class directions
    basis = family_basis(clip, "color")
    assert torch.allclose(basis @ basis.T, torch.eye(len(basis)), atol=1e-5)
    assert len(basis) == len(VALUES["color"]) - 1
    c = clip.head_contributions(images, [7])[:, 0, 3].double()  # layer 7, head 3
    expected = ((c @ basis.double().T).var(dim=0)).sum().item()
    row = truth.filter(
        (pl.col("layer") == 7) & (pl.col("head") == 3) & (pl.col("family") == "color")
    )
    assert row["score"].item() == pytest.approx(expected, rel=1e-5)
    assert row["share"].item() == pytest.approx(expected / c.var(dim=0).sum().item(), rel=1e-5)
    # its dims: the participation ratio of the covariance of the same projections
    ev = np.linalg.eigvalsh(np.cov((c @ basis.double().T).numpy(), rowvar=False))
    assert row["dims"].item() == pytest.approx(ev.sum() ** 2 / (ev**2).sum(), rel=1e-5)
    assert truth["dims"].min() >= 0 and truth["dims"].max() <= len(VALUES["position"]) - 1 + 1e-6
    # every family is some head's top family (the model has learnt them all)
    assert set(truth.filter("is_top")["family"]) == set(FAMILIES)


def test_model_family_dims_against_a_plain_computation(shipped_run):
    from clipconcepts.conceptworld.generator import generate
    from clipconcepts.conceptworld.groundtruth import family_basis, model_family_dims

    clip = _load(shipped_run[0])
    sample = generate(300, [0, 8])
    images = to_model_input(sample.images)
    dims = model_family_dims(clip, images, sample.attributes, batch_size=64)
    assert dims["family"].to_list() == list(FAMILIES)
    assert dims["n_values"].to_list() == [len(VALUES[f]) for f in FAMILIES]
    assert ((dims["dims"] >= 1) & (dims["dims"] <= dims["n_values"] - 1 + 1e-6)).all()
    assert ((dims["share"] > 0) & (dims["share"] < 1)).all()
    # one family by hand: the per-value means of the normalised embedding on the family's
    # text subspace, their frequency-weighted covariance, its participation ratio
    with torch.no_grad():
        e = torch.nn.functional.normalize(clip.encode_image(images).double(), dim=-1).numpy()
    e -= e.mean(axis=0)
    p = e @ family_basis(clip, "dial").double().numpy().T
    values = sample.attributes["dial"]
    means = np.stack([p[values == v].mean(axis=0) for v in range(len(VALUES["dial"]))])
    weights = np.bincount(values, minlength=len(VALUES["dial"])) / len(values)
    ev = np.linalg.eigvalsh((means * weights[:, None]).T @ means)
    row = dims.row(FAMILIES.index("dial"), named=True)
    assert row["dims"] == pytest.approx(ev.sum() ** 2 / (ev**2).sum(), rel=1e-4)
    assert row["share"] == pytest.approx(ev.sum() / e.var(axis=0, ddof=1).sum(), rel=1e-4)
    # values on a line count as one direction: relabel dial's six values as two halves
    halves = dict(sample.attributes, dial=values // 3)
    two = model_family_dims(clip, images, halves, batch_size=64)
    assert two.row(FAMILIES.index("dial"), named=True)["dims"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="dial values for 300 images"):
        model_family_dims(clip, images, dict(sample.attributes, dial=values[:10]))


def test_ground_truth_is_head_truth_and_model_family_dims_in_one_pass(shipped_run):
    from polars.testing import assert_frame_equal

    from clipconcepts.conceptworld.generator import generate
    from clipconcepts.conceptworld.groundtruth import ground_truth, head_truth, model_family_dims

    clip = _load(shipped_run[0])
    sample = generate(120, [0, 9])
    images = to_model_input(sample.images)
    truth, dims = ground_truth(clip, images, sample.attributes, batch_size=50)
    assert_frame_equal(truth, head_truth(clip, images, batch_size=50), rel_tol=1e-5)
    assert_frame_equal(dims, model_family_dims(clip, images, sample.attributes), rel_tol=1e-5)


def test_family_dims_count_the_directions_a_head_writes_in():
    from clipconcepts.conceptworld.groundtruth import _subspace_dims

    gen = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(16, 5, generator=gen, dtype=torch.float64))[0].T  # [5, 16]
    coords = torch.randn(4000, 5, generator=gen, dtype=torch.float64)
    one = coords[:, :1] @ basis[:1]  # along one of the five directions
    even = coords @ basis  # equally along all five
    outside = torch.randn(4000, 16, generator=gen, dtype=torch.float64)
    outside -= (outside @ basis.T) @ basis  # orthogonal to the subspace
    heads = torch.stack([one, even, outside, one + 0.5 * outside], dim=1)  # [B, 4 heads, 16]
    dims = _subspace_dims(heads, basis)
    assert dims[0].item() == pytest.approx(1.0)
    assert dims[1].item() == pytest.approx(5.0, rel=0.05)
    assert dims[2].item() < 1e-9  # writes nothing inside it
    assert dims[3].item() == pytest.approx(1.0)  # what lies outside does not count


def _demo_runs() -> list[Path]:
    """Trained concept-world folders to check: $CLIPCONCEPTS_CONCEPTWORLD_DIR, else any under
    results/ (the demo's training output)."""
    if os.environ.get("CLIPCONCEPTS_CONCEPTWORLD_DIR"):
        return [Path(os.environ["CLIPCONCEPTS_CONCEPTWORLD_DIR"])]
    results = Path(__file__).resolve().parents[1] / "results"
    return sorted(p.parent for p in results.glob(f"**/{MODEL_NAME}.json"))


@pytest.mark.parametrize("run_dir", _demo_runs() or [None])
def test_demo_model_reaches_its_floors(run_dir):
    if run_dir is None or not (run_dir / "metrics.parquet").is_file():
        pytest.skip("no trained concept-world model under results/ (run the demo first)")
    metrics = pl.read_parquet(run_dir / "metrics.parquet")
    if metrics["steps"].max() < demo_recipe()["steps"]:
        pytest.skip(f"{run_dir} is not a demo-size run ({metrics['steps'].max()} steps)")
    _assert_floors(dict(zip(metrics["family"], metrics["accuracy"], strict=True)))


# ---------------------------------------------------------------- the shipped model


def test_shipped_model_is_the_demo_recipe_and_small():
    from clipconcepts.conceptworld import shipped

    metadata = shipped.read_metadata()
    spec = shipped.recipe(**demo_recipe())
    # the recipe (knobs, fixed settings, model config, the world as rendered now) is the one
    # the weights were trained with: a change to any of them makes this fail
    assert metadata["recipe"] == json.loads(json.dumps(spec))
    assert metadata["recipe_sha256"] == shipped.recipe_sha256(spec)
    weights = shipped.SHIPPED_DIR / shipped.WEIGHTS_NAME
    assert shipped.file_sha256(weights) == metadata["weights_sha256"]
    total = sum(p.stat().st_size for p in shipped.SHIPPED_DIR.iterdir() if p.is_file())
    assert total <= shipped.MAX_SHIPPED_BYTES
    _assert_floors(metadata["training"]["accuracy"])


def test_shipped_model_installs_and_reaches_its_floors(shipped_run):
    out, metrics = shipped_run
    for name in (f"{MODEL_NAME}.json", "checkpoint.pt", "metrics.parquet", "train_log.parquet"):
        assert (out / name).is_file(), name
    assert metrics["family"].to_list() == list(FAMILIES)
    assert metrics["steps"][0] == demo_recipe()["steps"]
    # measured again on held-out images, with the shipped (float16-rounded) weights
    _assert_floors(dict(zip(metrics["family"], metrics["accuracy"], strict=True)))
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())


def test_shipped_model_refuses_another_recipe_or_damaged_weights(tmp_path):
    import shutil

    from clipconcepts.conceptworld import shipped

    recipe = {**demo_recipe(), "steps": demo_recipe()["steps"] + 1}
    with pytest.raises(shipped.ShippedModelError, match=r"conceptworld\.train_steps.*train"):
        shipped.install(tmp_path / "out", **recipe)
    copy = tmp_path / "shipped"
    shutil.copytree(shipped.SHIPPED_DIR, copy)
    with open(copy / shipped.WEIGHTS_NAME, "r+b") as fh:
        fh.seek(-8, 2)
        fh.write(b"damaged!")
    with pytest.raises(shipped.ShippedModelError, match="SHA-256"):
        shipped.install(tmp_path / "out", **demo_recipe(), shipped_dir=copy)
    assert not (tmp_path / "out" / "checkpoint.pt").exists()  # nothing half-written
    with pytest.raises(shipped.ShippedModelError, match="conceptworld.model: train"):
        shipped.install(tmp_path / "out", **demo_recipe(), shipped_dir=tmp_path / "none")


@pytest.mark.slow
def test_shipped_model_family_heads_matter_for_every_family(shipped_run):
    """The ground-truth pruning check on every family of the shipped model: its top-8 heads by
    the truth score hurt the family more than 8 random heads. Finding (300 images per family, the
    previous world's model; the check still holds on the stamp world's):
    texture hangs on one early head whose effect is indirect, which a direct-effect truth score
    cannot rank: L0.H7 alone costs texture 46 points (1.00 -> 0.54), so the one random draw of
    three that holds it costs 55 points while texture's top-8 heads cost 0.3 (margin 0.089 against
    0.010, 0.025 and 0.195 for the draws). For texture the family heads must beat the median draw
    in margin; every other family loses more than twice the draws' mean margin (e.g. dial 0.168
    vs -0.006, background 0.033 vs -0.001) and at least their mean accuracy."""
    clip = _load(shipped_run[0])
    checks = _pruning_checks(clip, n_images=300, k=8)
    _assert_family_heads_matter([c for c in checks if c.family != "texture"])
    (texture,) = [c for c in checks if c.family == "texture"]
    assert texture.family_heads_margin_drop > float(np.median(texture.random_margin_drops)), texture
    assert sum(c.family_heads_drop > c.random_drop for c in checks) >= 6, checks


def test_workflow_mirror_of_the_families_is_current():
    """rules/common.smk lists the families without importing the package (it must parse without
    torch): the list must be the package's."""
    import ast
    import re

    text = (Path(__file__).resolve().parents[1] / "rules/common.smk").read_text()
    listed = re.search(r"^CONCEPTWORLD_FAMILIES = (\[.*?\])", text, re.S | re.M).group(1)
    assert ast.literal_eval(listed) == list(FAMILIES)
