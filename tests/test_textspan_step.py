"""The `textspan` step: streamed statistics from the heads dataset, per-image normalisation by the
embedding norm (the reference's), picks identical to the in-memory TEXTSPAN."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from clipconcepts.cli import main
from clipconcepts.extract import embeddings_schema, heads_schema
from clipconcepts.io import ParquetStream, fixed_list, write_table
from clipconcepts.textspan import textspan, textspan_reference

LAYERS, HEADS = (6, 7), 3


def _case(seed=0, n=240, d=24, t=90):
    """Per-image contributions ``[N, K, D]`` of K = 2 layers x 3 heads (decaying spectra, mean
    offsets, float32), the images' full embeddings (the heads plus the other components, as in a
    real model), unit texts, image ids."""
    rng = np.random.default_rng(seed)
    k = len(LAYERS) * HEADS
    scales = 1.0 / np.sqrt(1.0 + np.arange(d))
    heads = np.stack(
        [
            (rng.standard_normal((n, d)) * scales) @ np.linalg.qr(rng.standard_normal((d, d)))[0]
            + rng.standard_normal(d)
            for _ in range(k)
        ],
        axis=1,
    ).astype(np.float32)
    rest = 3.0 * rng.standard_normal((n, d)) + 2.0 * rng.standard_normal(d)  # MLPs, embedding...
    embedding = (heads.sum(axis=1) + rest).astype(np.float32)
    texts = rng.standard_normal((t, d))
    texts = (texts / np.linalg.norm(texts, axis=1, keepdims=True)).astype(np.float32)
    ids = [f"img{i:05d}" for i in range(n)]
    return heads, embedding, texts, ids


def _write_heads(path, heads, ids, labels=None, batch=64):
    """Extraction's layout: image-major rows (image, layer, head), one row group per batch."""
    n, k, d = heads.shape
    labels = np.zeros(n, np.int32) if labels is None else labels
    with ParquetStream(path, heads_schema(d)) as out:
        for lo in range(0, n, batch):
            hi = min(n, lo + batch)
            out.write(
                pa.table(
                    {
                        "image_id": np.repeat(np.asarray(ids[lo:hi], dtype=object), k),
                        "label": np.repeat(labels[lo:hi], k),
                        "layer": np.tile(np.repeat(np.asarray(LAYERS, np.int16), HEADS), hi - lo),
                        "head": np.tile(np.arange(HEADS, dtype=np.int16), (hi - lo) * len(LAYERS)),
                        "contribution": fixed_list(heads[lo:hi].reshape(-1, d)),
                    }
                )
            )


def _write_embeddings(path, embedding, ids, order=None):
    order = np.arange(len(ids)) if order is None else order
    table = pa.table(
        {
            "image_id": [ids[i] for i in order],
            "label": np.zeros(len(ids), np.int32),
            "embedding": fixed_list(embedding[order]),
        },
        schema=embeddings_schema(embedding.shape[1]),
    )
    write_table(table, path)


def _write_texts(path, texts):
    table = pa.table(
        {
            "text_id": pa.array(range(len(texts)), pa.int32()),
            "text": [f"text {i}" for i in range(len(texts))],
            "family": pa.array([None] * len(texts), pa.string()),
            "embedding": fixed_list(texts),
        }
    )
    write_table(table, path)


def _run_step(tmp_path, name, heads, embedding, texts, ids, *extra, rank=16, iters=5):
    folder = tmp_path / name
    folder.mkdir()
    _write_heads(folder / "heads.parquet", heads, ids)
    # embeddings in another order than the heads: the step must join on image ids
    order = np.random.default_rng(1).permutation(len(ids))
    _write_embeddings(folder / "embeddings.parquet", embedding, ids, order)
    _write_texts(folder / "texts.parquet", texts)
    out = folder / "textspans.parquet"
    argv = ["textspan", "--heads", str(folder / "heads.parquet")]
    argv += ["--embeddings", str(folder / "embeddings.parquet")]
    argv += ["--texts", str(folder / "texts.parquet"), "--iters", str(iters)]
    argv += ["--rank", str(rank), "--device", "cpu", "--out", str(out), *extra]
    assert main(argv) == 0
    return pl.read_parquet(out).sort("layer", "head", "rank")


def _picks(frame: pl.DataFrame) -> np.ndarray:
    return frame["text_id"].to_numpy().reshape(-1, frame["rank"].n_unique())


def test_per_image_scaling_keeps_picks_with_normalisation(tmp_path):
    """Scaling an image's contributions and its embedding by the same factor (a per-image norm
    spread) changes nothing once contributions are divided by the embedding norm (the default),
    while the raw form's picks move: the defect of passing unnormalised contributions."""
    heads, embedding, texts, ids = _case()
    factor = np.exp(np.random.default_rng(2).normal(0.0, 0.6, len(ids)))  # ~0.3x .. 3x
    scaled_heads = (heads * factor[:, None, None]).astype(np.float32)
    scaled_embedding = (embedding * factor[:, None]).astype(np.float32)

    plain = _run_step(tmp_path, "plain", heads, embedding, texts, ids)
    scaled = _run_step(tmp_path, "scaled", scaled_heads, scaled_embedding, texts, ids)
    np.testing.assert_array_equal(_picks(plain), _picks(scaled))
    np.testing.assert_allclose(plain["variance_fraction"], scaled["variance_fraction"], rtol=1e-5)

    raw = _run_step(tmp_path, "raw", heads, embedding, texts, ids, "--normalize", "none")
    raw_scaled = _run_step(
        tmp_path, "raw_scaled", scaled_heads, scaled_embedding, texts, ids, "--normalize", "none"
    )
    changed = (_picks(raw) != _picks(raw_scaled)).any(axis=1)
    assert changed.sum() >= 3, "the test data should move the raw picks on most heads"

    # the normalised step picks what the plain reference picks on contributions / |embedding|
    norms = np.linalg.norm(embedding.astype(np.float64), axis=1)
    per_head = np.ascontiguousarray((heads / norms[:, None, None]).transpose(1, 0, 2))
    ref_idx, _ = textspan_reference(per_head, texts, 5, 16)
    np.testing.assert_array_equal(_picks(plain), ref_idx)
    # and the raw form is the old, unnormalised TEXTSPAN
    raw_idx = textspan(np.ascontiguousarray(heads.transpose(1, 0, 2)), texts, 5, 16).indices
    np.testing.assert_array_equal(_picks(raw), raw_idx.numpy())
    assert raw.schema == plain.schema
    assert plain.select("layer", "head").unique().height == len(LAYERS) * HEADS


def test_missing_embedding_names_the_image(tmp_path):
    heads, embedding, texts, ids = _case(n=40)
    _write_heads(tmp_path / "heads.parquet", heads, ids)
    _write_embeddings(tmp_path / "embeddings.parquet", embedding[:-1], ids[:-1])
    _write_texts(tmp_path / "texts.parquet", texts)
    argv = ["textspan", "--heads", str(tmp_path / "heads.parquet")]
    argv += ["--embeddings", str(tmp_path / "embeddings.parquet")]
    argv += ["--texts", str(tmp_path / "texts.parquet"), "--out", str(tmp_path / "out.parquet")]
    from clipconcepts.textspan_step import run_textspan

    with pytest.raises(ValueError, match="img00039"):
        run_textspan(
            [tmp_path / "heads.parquet"],
            [tmp_path / "embeddings.parquet"],
            tmp_path / "texts.parquet",
            tmp_path / "out.parquet",
        )
    assert main(argv) == 1 and not (tmp_path / "out.parquet").exists()
    # an image twice in the embeddings, and normalisation without embeddings
    twice = [*ids[:-1], ids[0]]
    _write_embeddings(tmp_path / "twice.parquet", embedding, twice)
    with pytest.raises(ValueError, match="image img00000 appears more than once"):
        run_textspan(tmp_path / "heads.parquet", tmp_path / "twice.parquet", *argv[-3::2])
    with pytest.raises(ValueError, match="needs the embeddings"):
        run_textspan(tmp_path / "heads.parquet", None, *argv[-3::2])


def test_shards_read_as_one_dataset_and_a_repeated_shard_is_named(tmp_path):
    """Heads and embeddings split into shard files (a sharded extraction) give the picks of the
    single files; a shard passed twice is refused, naming the head."""
    from clipconcepts.textspan_step import run_textspan

    heads, embedding, texts, ids = _case(seed=3, n=150)
    single = _run_step(tmp_path, "single", heads, embedding, texts, ids)
    shards = tmp_path / "shards"
    (shards / "heads").mkdir(parents=True)
    (shards / "embeddings").mkdir()
    bounds = [0, 50, 100, 150]
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        _write_heads(shards / f"heads/part-{i:04d}.parquet", heads[lo:hi], ids[lo:hi])
        _write_embeddings(shards / f"embeddings/part-{i:04d}.parquet", embedding[lo:hi], ids[lo:hi])
    _write_texts(tmp_path / "texts.parquet", texts)
    head_files = sorted((shards / "heads").glob("*.parquet"))
    for heads_arg, emb_arg in [
        (head_files, sorted((shards / "embeddings").glob("*.parquet"))),
        ([shards / "heads"], [shards / "embeddings"]),  # folders of shards
    ]:
        out = tmp_path / "sharded.parquet"
        run_textspan(heads_arg, emb_arg, tmp_path / "texts.parquet", out, rank=16, progress=False)
        sharded = pl.read_parquet(out).sort("layer", "head", "rank")
        np.testing.assert_array_equal(_picks(sharded), _picks(single))
        np.testing.assert_allclose(sharded["variance"], single["variance"], rtol=1e-9)
    with pytest.raises(ValueError, match=r"head L6\.H0 has 200 rows for 150 images"):
        run_textspan(
            [*head_files, head_files[0]],
            [shards / "embeddings"],
            tmp_path / "texts.parquet",
            tmp_path / "bad.parquet",
            rank=16,
            progress=False,
        )
