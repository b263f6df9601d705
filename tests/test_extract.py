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


def test_shards_partition_the_probe_set_and_read_as_one(tmp_path, clip):
    """Extraction in 3 shards (3 jobs) writes the rows of one unsharded extraction, read back as
    one dataset from the shard files without a merged copy."""
    from clipconcepts.extract import read_heads, shard_records
    from clipconcepts.io import open_dataset

    records = _write_probe(tmp_path / "probe", n=10)
    parts = [shard_records(records, i, 3) for i in range(3)]
    assert [len(p) for p in parts] == [3, 3, 4]
    assert sum((p.image_ids for p in parts), []) == records.image_ids
    whole = (tmp_path / "heads.parquet", tmp_path / "embeddings.parquet")
    extract_heads(clip, records, [-1], *whole, batch_size=4, progress=False)
    files = {"heads": [], "embeddings": []}
    for i, part in enumerate(parts):
        for kind in files:
            files[kind].append(tmp_path / f"{kind}/part-{i:04d}.parquet")
        extract_heads(clip, part, [-1], files["heads"][-1], files["embeddings"][-1], batch_size=4)
    keys, ids, values = read_heads(files["heads"])
    keys1, ids1, values1 = read_heads(whole[0])
    assert keys == keys1 and ids == ids1 == records.image_ids
    np.testing.assert_allclose(values, values1, atol=1e-6)
    emb = open_dataset(tmp_path / "embeddings", "embeddings").to_table()  # a folder of shards
    assert emb["image_id"].to_pylist() == records.image_ids
    with pytest.raises(ValueError, match="exceeds the 10 probe images"):
        shard_records(records, 0, 11)
    with pytest.raises(FileNotFoundError, match="nowhere.parquet"):
        open_dataset([files["heads"][0], tmp_path / "nowhere.parquet"])


def test_sharded_dry_run_has_a_job_per_shard(tmp_path):
    """`extract.shards: 3`: three extract jobs per model (a `shard` wildcard), and TEXTSPAN reads
    a model's three heads and embeddings shards (no merge job)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "config/config.yaml").read_text())
    config["extract"]["shards"] = 3
    config["models"] = dict(list(config["models"].items())[:2])
    (tmp_path / "sharded.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "-p",
            "--configfile",
            str(tmp_path / "sharded.yaml"),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    run = config["run"]
    for model in config["models"]:
        for shard in range(3):
            assert (
                f"--shard {shard} --shards 3 --heads-out results/{run}/{model}/heads/part-{shard:04d}.parquet"
                in out
            )
        heads = " ".join(f"results/{run}/{model}/heads/part-{i:04d}.parquet" for i in range(3))
        embeddings = heads.replace("/heads/", "/embeddings/")
        assert f"--heads {heads} --embeddings {embeddings}" in out
    assert "merge" not in out.lower()
