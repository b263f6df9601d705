"""Extraction: per-head direct contributions of the CLS token on a probe image set.

Writes two Parquet files, streamed one row group per batch so memory stays bounded:
- heads: `image_id, label, layer, head, contribution` (one row per image x layer x head),
- embeddings: `image_id, label, embedding` (the model's unnormalised image embedding).

Long runs are resumable: images are processed in parts of `part_size`; each finished part is
written atomically to `<heads>.parts/`, a restarted job skips finished parts, and the final files
are assembled from the parts only at the end (so a failed job leaves no partial output).

Large probe sets are sharded by image range (`shard_records`, the workflow's `extract.shards`):
each shard is its own job writing its own pair of files, and readers take the shards as one
Parquet dataset (`open_dataset`), never a concatenated copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from clipconcepts.data.images import ImageRecords, image_loader
from clipconcepts.io import ParquetStream, embedding_type, fixed_list, open_dataset, to_numpy
from clipconcepts.models import HeadAwareCLIP

log = logging.getLogger(__name__)


def heads_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            ("image_id", pa.string()),
            ("label", pa.int32()),
            ("layer", pa.int16()),
            ("head", pa.int16()),
            ("contribution", embedding_type(dim)),
        ]
    )


def embeddings_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [("image_id", pa.string()), ("label", pa.int32()), ("embedding", embedding_type(dim))]
    )


@dataclass
class ExtractionSummary:
    n_images: int
    n_skipped: int
    n_rows: int
    layers: list[int]


def shard_records(records: ImageRecords, shard: int, shards: int) -> ImageRecords:
    """Shard ``shard`` (0-based) of ``shards`` contiguous, near-equal image ranges of the probe
    set: shard i holds images ``[i N // S, (i + 1) N // S)``, so the shards partition it."""
    if not 0 <= shard < shards:
        raise ValueError(
            f"extract: shard must be in [0, {shards}) for shards={shards}, got {shard}"
        )
    if shards > len(records):
        raise ValueError(
            f"extract.shards={shards} exceeds the {len(records)} probe images: every shard needs one"
        )
    lo, hi = shard * len(records) // shards, (shard + 1) * len(records) // shards
    return replace(
        records,
        image_ids=records.image_ids[lo:hi],
        paths=records.paths[lo:hi],
        labels=records.labels[lo:hi],
    )


def _fingerprint(clip: HeadAwareCLIP, records: ImageRecords, layers: list[int], part_size: int):
    digest = hashlib.sha256()
    digest.update(repr((clip.spec, layers, part_size, len(records))).encode())
    for image_id in records.image_ids:
        digest.update(image_id.encode())
    return digest.hexdigest()


def _write_part(clip, records, layers, part_dir, index, batch_size, num_workers, on_bad_image):
    heads_path = part_dir / f"part-{index:05d}.heads.parquet"
    emb_path = part_dir / f"part-{index:05d}.embeddings.parquet"
    loader = image_loader(records, clip.preprocess, batch_size, num_workers, on_bad_image)
    dim, n_heads = clip.embed_dim, clip.n_heads
    skipped = 0
    with (
        ParquetStream(heads_path, heads_schema(dim)) as heads_out,
        ParquetStream(emb_path, embeddings_schema(dim)) as emb_out,
    ):
        for images, ids, labels, n_skipped in loader:
            skipped += n_skipped
            if images is None:
                continue
            dec = clip.decompose(images, layers, with_embedding=False)
            contrib = dec.heads.float().cpu().numpy()  # [B, K, H, D]
            b, k = contrib.shape[:2]
            per_image = k * n_heads
            heads_out.write(
                pa.table(
                    {
                        "image_id": np.repeat(np.asarray(ids, dtype=object), per_image),
                        "label": np.repeat(labels.numpy().astype(np.int32), per_image),
                        "layer": np.tile(np.repeat(np.asarray(layers, np.int16), n_heads), b),
                        "head": np.tile(np.arange(n_heads, dtype=np.int16), b * k),
                        "contribution": fixed_list(contrib.reshape(-1, dim)),
                    }
                )
            )
            emb_out.write(
                pa.table(
                    {
                        "image_id": ids,
                        "label": labels.numpy().astype(np.int32),
                        "embedding": fixed_list(dec.image_embedding.float().cpu().numpy()),
                    }
                )
            )
    return skipped


def _concat(parts: list[Path], out: Path, schema: pa.Schema) -> int:
    """Assemble the parts row group by row group (bounded memory); returns the row count."""
    with ParquetStream(out, schema) as writer:
        for part in parts:
            source = pq.ParquetFile(part)
            for i in range(source.num_row_groups):
                writer.write(source.read_row_group(i))
    return writer.rows


def extract_heads(
    clip: HeadAwareCLIP,
    records: ImageRecords,
    layers: list[int],
    heads_out: str | Path,
    embeddings_out: str | Path,
    batch_size: int = 256,
    num_workers: int = 0,
    on_bad_image: str = "fail",
    part_size: int = 10_000,
    progress: bool = True,
) -> ExtractionSummary:
    """Decompose every probe image and write the heads and embeddings Parquet files."""
    layers = [clip.layer_index(layer) for layer in layers]
    heads_out, embeddings_out = Path(heads_out), Path(embeddings_out)
    part_dir = heads_out.with_name(heads_out.name + ".parts")
    fingerprint = _fingerprint(clip, records, layers, part_size)
    stamp = part_dir / "fingerprint.json"
    if part_dir.exists() and (
        not stamp.exists() or json.loads(stamp.read_text())["fingerprint"] != fingerprint
    ):
        log.info("discarding parts of a different extraction in %s", part_dir)
        shutil.rmtree(part_dir)
    part_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({"fingerprint": fingerprint}))

    n_parts = max(1, -(-len(records) // part_size))
    skipped_file = part_dir / "skipped.json"
    skipped = json.loads(skipped_file.read_text()) if skipped_file.exists() else {}
    bar = tqdm(total=len(records), desc=f"extract {clip.name}", unit="img", disable=not progress)
    for index in range(n_parts):
        lo, hi = index * part_size, min(len(records), (index + 1) * part_size)
        done = all(
            (part_dir / f"part-{index:05d}.{kind}.parquet").exists()
            for kind in ("heads", "embeddings")
        )
        if done:
            log.info("part %d/%d already extracted: reusing it", index + 1, n_parts)
        else:
            part = ImageRecords(
                records.image_ids[lo:hi], records.paths[lo:hi], records.labels[lo:hi]
            )
            skipped[str(index)] = _write_part(
                clip, part, layers, part_dir, index, batch_size, num_workers, on_bad_image
            )
            skipped_file.write_text(json.dumps(skipped))
        bar.update(hi - lo)
    bar.close()

    dim = clip.embed_dim
    names = [f"part-{i:05d}" for i in range(n_parts)]
    n_rows = _concat([part_dir / f"{n}.heads.parquet" for n in names], heads_out, heads_schema(dim))
    n_images = _concat(
        [part_dir / f"{n}.embeddings.parquet" for n in names],
        embeddings_out,
        embeddings_schema(dim),
    )
    shutil.rmtree(part_dir)
    n_skipped = sum(skipped.values())
    if n_skipped:
        log.warning("skipped %d undecodable images (on_bad_image=skip)", n_skipped)
    log.info("extracted %d images, %d head rows, layers %s", n_images, n_rows, layers)
    return ExtractionSummary(n_images, n_skipped, n_rows, layers)


def read_head_matrix(
    path: str | Path | Sequence[str | Path], layer: int, head: int
) -> tuple[list[str], torch.Tensor]:
    """One head's contributions `[N, D]` (and image ids) from a heads file or its shards."""
    table = open_dataset(path).to_table(
        columns=["image_id", "contribution"],
        filter=(pc.field("layer") == layer) & (pc.field("head") == head),
    )
    return table["image_id"].to_pylist(), torch.from_numpy(to_numpy(table["contribution"]).copy())


def read_heads(
    path: str | Path | Sequence[str | Path],
) -> tuple[list[tuple[int, int]], list[str], np.ndarray]:
    """All heads of a heads file (or its shards) as `[K, N, D]` in memory (heads sorted by layer,
    then head; images in file order), with the `(layer, head)` list and the image ids. The
    workflow's TEXTSPAN streams instead (`textspan_step`); this is for small data and tests."""
    table = open_dataset(path).to_table(columns=["image_id", "layer", "head", "contribution"])
    layer = table["layer"].to_numpy()
    head = table["head"].to_numpy()
    order = np.lexsort((head, layer))  # stable: images stay in file order within a head
    dim = table.schema.field("contribution").type.list_size
    values = to_numpy(table["contribution"])[order]
    keys = sorted(set(zip(layer.tolist(), head.tolist(), strict=True)))
    n_images = len(values) // max(1, len(keys))
    image_ids = table["image_id"].to_numpy(zero_copy_only=False)[order[:n_images]].tolist()
    return keys, image_ids, values.reshape(len(keys), n_images, dim)
