"""The `head-images` step: per head, the probe images whose contribution projects most and least on
its first TEXTSPAN direction, streamed over the heads file's row groups, with thumbnails."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from clipconcepts.cli import main
from clipconcepts.extract import embeddings_schema, heads_schema
from clipconcepts.io import ParquetStream, fixed_list
from clipconcepts.report.head_images import HEAD_IMAGES, run_head_images

DIM = 6
N_TEXTS = 12


def _texts_with_ranks(rng, keys, n_texts=N_TEXTS):
    """Random unit text embeddings and 5 distinct picks per head with falling fractions."""
    emb = rng.normal(size=(n_texts, DIM))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    spans = []
    for layer, head in keys:
        picks = rng.choice(n_texts, size=5, replace=False)
        for rank, t in enumerate(picks):
            spans.append((layer, head, rank, int(t), 0.4 / (rank + 1)))
    return emb, spans


def write_step_inputs(
    root: Path,
    keys: list[tuple[int, int]],
    n_images: int = 40,
    image_px: int = 48,
    images_per_group: int = 7,
    seed: int = 0,
    text_names: list[str] | None = None,
    normalize: str = "embedding_norm",
) -> dict:
    """A probe manifest of PNG images, heads and embeddings files (several row groups, rows in
    extraction order), a text bank embedded and a TEXTSPAN file for `keys`. Returns paths and
    the arrays (contributions [N, K, D], embeddings [N, D], text embeddings [T, D])."""
    rng = np.random.default_rng(seed)
    probe = root / "probe"
    (probe / "images").mkdir(parents=True)
    ids = [f"img{i:03d}" for i in range(n_images)]
    labels = [i % 4 for i in range(n_images)]
    for i, image_id in enumerate(ids):
        pixels = rng.integers(0, 255, size=(image_px, image_px, 3), dtype=np.uint8)
        pixels[: image_px // 2] = (37 * i) % 255  # a different band per image
        Image.fromarray(pixels).save(probe / "images" / f"{image_id}.png")
    pl.DataFrame(
        {"image_id": ids, "path": [f"images/{i}.png" for i in ids], "label": labels}
    ).write_parquet(probe / "manifest.parquet")

    contrib = rng.normal(size=(n_images, len(keys), DIM)).astype(np.float32)
    emb = (rng.normal(size=(n_images, DIM)) * rng.uniform(0.2, 5.0, size=(n_images, 1))).astype(
        np.float32
    )
    heads_path, emb_path = root / "heads.parquet", root / "embeddings.parquet"
    with (
        ParquetStream(heads_path, heads_schema(DIM)) as hw,
        ParquetStream(emb_path, embeddings_schema(DIM)) as ew,
    ):
        for start in range(0, n_images, images_per_group):
            block = range(start, min(n_images, start + images_per_group))
            rows = [(i, k) for i in block for k in range(len(keys))]
            hw.write(
                {
                    "image_id": [ids[i] for i, _ in rows],
                    "label": [labels[i] for i, _ in rows],
                    "layer": [keys[k][0] for _, k in rows],
                    "head": [keys[k][1] for _, k in rows],
                    "contribution": fixed_list(np.stack([contrib[i, k] for i, k in rows])),
                }
            )
            ew.write(
                {
                    "image_id": [ids[i] for i in block],
                    "label": [labels[i] for i in block],
                    "embedding": fixed_list(emb[list(block)]),
                }
            )
    text_emb, spans = _texts_with_ranks(rng, keys)
    names = text_names or [f"text number {t}" for t in range(N_TEXTS)]
    texts_path = root / "texts.parquet"
    pa_texts = pa.table(
        {
            "text_id": pa.array(range(N_TEXTS), pa.int32()),
            "text": names,
            "family": pa.array([None] * N_TEXTS, pa.string()),
            "embedding": fixed_list(text_emb),
        }
    )
    pq.write_table(pa_texts, texts_path)
    spans_frame = pl.DataFrame(
        {
            "layer": [s[0] for s in spans],
            "head": [s[1] for s in spans],
            "rank": [s[2] for s in spans],
            "text_id": [s[3] for s in spans],
            "text": [names[s[3]] for s in spans],
            "family": [None] * len(spans),
            "variance": [s[4] for s in spans],
            "variance_fraction": [s[4] for s in spans],
        },
        schema={
            "layer": pl.Int16,
            "head": pl.Int16,
            "rank": pl.Int8,
            "text_id": pl.Int32,
            "text": pl.String,
            "family": pl.String,
            "variance": pl.Float64,
            "variance_fraction": pl.Float64,
        },
    )
    spans_path = root / "textspans.parquet"
    table = spans_frame.to_arrow().replace_schema_metadata({"clipconcepts.normalize": normalize})
    pq.write_table(table, spans_path)
    return {
        "heads": heads_path,
        "embeddings": emb_path,
        "texts": texts_path,
        "textspans": spans_path,
        "probe": probe,
        "ids": ids,
        "labels": labels,
        "contrib": contrib,
        "emb": emb,
        "text_emb": text_emb,
        "spans": spans_frame,
        "keys": keys,
    }


def expected_extremes(inputs: dict, n: int, normalize: bool = True) -> dict:
    """Brute force: per head, (top ids, bottom ids) by c . t (/ |e|), ties by image id."""
    spans = inputs["spans"].filter(pl.col("rank") == 0)
    out = {}
    norms = np.linalg.norm(inputs["emb"].astype(np.float64), axis=1)
    for k, (layer, head) in enumerate(inputs["keys"]):
        t = spans.filter((pl.col("layer") == layer) & (pl.col("head") == head))["text_id"][0]
        scores = inputs["contrib"][:, k].astype(np.float64) @ inputs["text_emb"][t]
        if normalize:
            scores = scores / norms
        ids = inputs["ids"]
        top = sorted(range(len(ids)), key=lambda i: (-scores[i], ids[i]))[:n]
        bottom = sorted(range(len(ids)), key=lambda i: (scores[i], ids[i]))[:n]
        out[layer, head] = ([ids[i] for i in top], [ids[i] for i in bottom], scores)
    return out


KEYS = [(4, 0), (4, 1), (5, 0), (5, 1), (5, 2)]


@pytest.fixture
def inputs(tmp_path):
    return write_step_inputs(tmp_path, KEYS)


def test_top_and_bottom_images_match_brute_force(inputs, tmp_path):
    out = tmp_path / "head_images.parquet"
    run_head_images(
        inputs["heads"],
        inputs["textspans"],
        inputs["texts"],
        "manifest",
        inputs["probe"],
        out,
        embeddings=inputs["embeddings"],
        n_images=8,
    )
    frame = pl.read_parquet(out)
    assert frame.schema == pl.Schema(HEAD_IMAGES)
    assert pq.read_schema(out).metadata[b"clipconcepts.n_images"] == b"40"
    expected = expected_extremes(inputs, 8)
    for (layer, head), (top, bottom, scores) in expected.items():
        mine = frame.filter((pl.col("layer") == layer) & (pl.col("head") == head))
        for side, ids in (("top", top), ("bottom", bottom)):
            rows = mine.filter(pl.col("side") == side).sort("rank")
            assert rows["rank"].to_list() == list(range(8))
            assert rows["image_id"].to_list() == ids, (layer, head, side)
            index = [inputs["ids"].index(i) for i in ids]
            np.testing.assert_allclose(rows["projection"].to_numpy(), scores[index], rtol=1e-5)
            assert rows["label"].to_list() == [inputs["labels"][i] for i in index]
        first = inputs["spans"].filter(
            (pl.col("layer") == layer) & (pl.col("head") == head) & (pl.col("rank") == 0)
        )
        assert set(mine["text"]) == {first["text"][0]}
        assert set(mine["text_id"]) == {first["text_id"][0]}


def test_normalize_none_ranks_raw_projections(inputs, tmp_path):
    spans = pq.read_table(inputs["textspans"])
    pq.write_table(
        spans.replace_schema_metadata({"clipconcepts.normalize": "none"}), inputs["textspans"]
    )
    out = tmp_path / "raw.parquet"
    frame = run_head_images(
        inputs["heads"],
        inputs["textspans"],
        inputs["texts"],
        "manifest",
        inputs["probe"],
        out,
        n_images=3,
        normalize="none",
    )
    expected = expected_extremes(inputs, 3, normalize=False)
    normalised = expected_extremes(inputs, 3, normalize=True)
    differs = False
    for key, (top, bottom, _) in expected.items():
        rows = frame.filter((pl.col("layer") == key[0]) & (pl.col("head") == key[1]))
        assert rows.filter(pl.col("side") == "top").sort("rank")["image_id"].to_list() == top
        assert rows.filter(pl.col("side") == "bottom").sort("rank")["image_id"].to_list() == bottom
        differs |= top != normalised[key][0]
    assert differs, "the embedding norms should change some head's top images"


def test_thumbnails_decode_png_when_small_jpeg_when_resized(inputs, tmp_path):
    small = run_head_images(
        inputs["heads"],
        inputs["textspans"],
        inputs["texts"],
        "manifest",
        inputs["probe"],
        tmp_path / "a.parquet",
        embeddings=inputs["embeddings"],
        n_images=2,
        thumbnail_px=64,
    )
    assert set(small["mime"]) == {"image/png"}
    for row in small.iter_rows(named=True):
        image = Image.open(io.BytesIO(row["thumbnail"]))
        assert image.format == "PNG" and image.size == (48, 48) == (row["width"], row["height"])
    resized = run_head_images(
        inputs["heads"],
        inputs["textspans"],
        inputs["texts"],
        "manifest",
        inputs["probe"],
        tmp_path / "b.parquet",
        embeddings=inputs["embeddings"],
        n_images=2,
        thumbnail_px=32,
    )
    assert set(resized["mime"]) == {"image/jpeg"}
    for row in resized.iter_rows(named=True):
        image = Image.open(io.BytesIO(row["thumbnail"]))
        assert image.format == "JPEG" and image.size == (32, 32)


def test_cli_step_writes_the_file(inputs, tmp_path):
    out = tmp_path / "cli.parquet"
    main(
        [
            "head-images",
            "--heads",
            str(inputs["heads"]),
            "--embeddings",
            str(inputs["embeddings"]),
            "--textspans",
            str(inputs["textspans"]),
            "--texts",
            str(inputs["texts"]),
            "--probe-kind",
            "manifest",
            "--probe-root",
            str(inputs["probe"]),
            "--n-images",
            "4",
            "--out",
            str(out),
        ]
    )
    frame = pl.read_parquet(out)
    assert frame.height == len(KEYS) * 2 * 4


def test_errors_name_the_file(inputs, tmp_path):
    args = (inputs["heads"], inputs["textspans"], inputs["texts"], "manifest", inputs["probe"])
    out = tmp_path / "x.parquet"
    with pytest.raises(ValueError, match="normalize=embedding_norm but head-images was given"):
        run_head_images(*args, out, normalize="none")
    # an image of the heads file that the probe set lacks
    manifest = pl.read_parquet(inputs["probe"] / "manifest.parquet")
    manifest.filter(pl.col("image_id") != "img000").write_parquet(
        inputs["probe"] / "manifest.parquet"
    )
    with pytest.raises(ValueError, match="image img000 of the heads file is not in the probe set"):
        run_head_images(*args, out, embeddings=inputs["embeddings"], n_images=40)
    # a head with a TEXTSPAN text but no contributions
    spans = pq.read_table(inputs["textspans"])
    extra = (
        pl.from_arrow(spans)
        .filter(pl.col("layer") == 5)
        .with_columns(pl.lit(7, pl.Int16).alias("layer"))
    )
    both = pa.concat_tables([spans, extra.to_arrow().cast(spans.schema)])
    pq.write_table(both.replace_schema_metadata(spans.schema.metadata), inputs["textspans"])
    with pytest.raises(ValueError, match=r"head L7\.H0 has a TEXTSPAN text but no contributions"):
        run_head_images(*args, out, embeddings=inputs["embeddings"])
    # a text the bank lacks
    bad = pl.from_arrow(spans).with_columns(pl.lit(99, pl.Int32).alias("text_id"))
    pq.write_table(
        bad.to_arrow().replace_schema_metadata(spans.schema.metadata), inputs["textspans"]
    )
    with pytest.raises(ValueError, match=r"text_id 99 is not in the texts file .*texts\.parquet"):
        run_head_images(*args, out, embeddings=inputs["embeddings"])
    assert not out.exists()
