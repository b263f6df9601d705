"""Extraction to Parquet: schema, row counts, bad images, resumption."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image

from clipconcepts.data import BadImageError, build_image_records
from clipconcepts.extract import extract_heads, read_head_matrix


def _write_probe(root, n=10, bad=()):
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        path = root / f"img{i:03d}.png"
        if i in bad:
            path.write_bytes(b"not a png")
        else:
            pixels = (np.random.default_rng(i).random((32, 32, 3)) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(path)
        rows.append({"image_id": f"img{i:03d}", "path": path.name, "label": i % 3})
    pl.DataFrame(rows).write_parquet(root / "manifest.parquet")
    return build_image_records("manifest", root)


@pytest.fixture(scope="module")
def clip():
    from tests.conftest import TINY_CONFIGS

    from clipconcepts.models import load_clip

    torch.manual_seed(0)
    return load_clip(str(TINY_CONFIGS["tiny-vit"]))


def test_extract_schema_rows_and_values(tmp_path, clip):
    records = _write_probe(tmp_path / "probe", n=10)
    heads, emb = tmp_path / "out/heads.parquet", tmp_path / "out/embeddings.parquet"
    summary = extract_heads(clip, records, [-2, -1], heads, emb, batch_size=4, part_size=4)
    frame = pl.read_parquet(heads)
    assert frame.schema == pl.Schema(
        {
            "image_id": pl.String,
            "label": pl.Int32,
            "layer": pl.Int16,
            "head": pl.Int16,
            "contribution": pl.Array(pl.Float32, clip.embed_dim),
        }
    )
    assert len(frame) == 10 * 2 * clip.n_heads == summary.n_rows
    assert sorted(frame["layer"].unique().to_list()) == [1, 2]
    embeddings = pl.read_parquet(emb)
    assert len(embeddings) == 10 and embeddings["image_id"].to_list() == records.image_ids
    assert embeddings["label"].to_list() == [i % 3 for i in range(10)]
    # stored contributions equal the wrapper's, image by image
    ids, matrix = read_head_matrix(heads, 2, 1)
    assert ids == records.image_ids
    images = torch.stack([clip.preprocess(Image.open(p).convert("RGB")) for p in records.paths])
    expected = clip.head_contributions(images, [2])[:, 0, 1]
    assert torch.allclose(matrix, expected, atol=1e-5)
    assert not (tmp_path / "out/heads.parquet.parts").exists()


def test_bad_image_fails_with_name_and_leaves_no_output(tmp_path, clip):
    records = _write_probe(tmp_path / "probe", n=6, bad={4})
    heads, emb = tmp_path / "out/heads.parquet", tmp_path / "out/embeddings.parquet"
    with pytest.raises(BadImageError, match="img004.png"):
        extract_heads(clip, records, [-1], heads, emb, batch_size=2, part_size=2)
    assert not heads.exists() and not emb.exists()
    # the parts finished before the failure are kept for a rerun
    assert (tmp_path / "out/heads.parquet.parts/part-00000.heads.parquet").exists()


def test_skip_bad_images_counts_them(tmp_path, clip):
    records = _write_probe(tmp_path / "probe", n=6, bad={1, 4})
    heads, emb = tmp_path / "heads.parquet", tmp_path / "embeddings.parquet"
    summary = extract_heads(clip, records, [-1], heads, emb, batch_size=4, on_bad_image="skip")
    assert summary.n_skipped == 2 and summary.n_images == 4
    assert "img001" not in pl.read_parquet(emb)["image_id"].to_list()


def test_resume_reuses_finished_parts(tmp_path, clip, monkeypatch):
    import clipconcepts.extract as extract

    records = _write_probe(tmp_path / "probe", n=6, bad={5})
    heads, emb = tmp_path / "heads.parquet", tmp_path / "embeddings.parquet"
    with pytest.raises(BadImageError):
        extract_heads(clip, records, [-1], heads, emb, batch_size=2, part_size=2)
    _write_probe(tmp_path / "probe", n=6)  # the bad file is repaired
    calls = []
    real = extract._write_part
    monkeypatch.setattr(extract, "_write_part", lambda *a, **k: calls.append(a[4]) or real(*a, **k))
    extract_heads(clip, records, [-1], heads, emb, batch_size=2, part_size=2)
    assert calls == [2]  # parts 0 and 1 were finished before the failure
    assert len(pl.read_parquet(emb)) == 6


def test_missing_probe_root_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        build_image_records("imagefolder", tmp_path / "nowhere")
