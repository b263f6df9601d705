"""The `textspan` step: TEXTSPAN for every analysed head, streamed from the heads dataset.

The heads (one ``heads.parquet``, or the shards of a sharded extraction read as one Parquet
dataset) are read record batch by record batch; each head's mean and centred Gram are
accumulated in float64 (``MomentAccumulator``), so memory is ``O(K D^2)`` (K heads, D dims:
~300 MB for ViT-L-14's 64 analysed heads) rather than the whole file (~10 GB for ViT-L-14 on 50k
images). TEXTSPAN then runs from the moments (``textspan_from_moments``), with the picks of the
in-memory ``textspan`` on the same data.

Normalisation (``--normalize``, the workflow's ``textspan.normalize``):

* ``embedding_norm`` (default, the reference's): each image's contributions are divided by the
  norm of that image's full image embedding (``embeddings.parquet``, joined on ``image_id``; the
  embedding is the sum of every decomposition term, not only the analysed heads), so an image's
  contributions sum to its L2-normalised embedding, as Gandelsman et al.'s code finalises them
  before TEXTSPAN. An image's overall scale then no longer weighs in the picks.
* ``none``: the raw contributions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from tqdm import tqdm

from clipconcepts.io import iter_row_groups, open_dataset, to_numpy, write_table
from clipconcepts.textspan import HeadMoments, MomentAccumulator, textspan_from_moments

log = logging.getLogger(__name__)

NORMALIZE = ("embedding_norm", "none")
# Rows per record batch: about 32 MB of float32 contributions, whatever D.
_BATCH_BYTES = 32 << 20
# Working memory of the picks per chunk of heads, on top of the resident moments (K D^2 x 8 B).
_PICK_BUDGET_MB = 256

Paths = str | Path | Sequence[str | Path]


def _names(paths: Paths) -> str:
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    return ", ".join(map(str, paths[:3])) + (f" (+{len(paths) - 3} more)" if len(paths) > 3 else "")


def embedding_norms(paths: Paths) -> tuple[pa.Array, np.ndarray, int]:
    """Image ids, the norms (float64) of their full image embeddings, and D, from an embeddings
    file or its shards. Refuses repeated ids and zero or non-finite norms, naming the image."""
    dataset = open_dataset(paths, "embeddings")
    ids, norms = [], []
    for batch in iter_row_groups(dataset, ["image_id", "embedding"]):
        ids.extend(batch.column("image_id").chunks)
        values = to_numpy(batch.column("embedding")).astype(np.float64)
        norms.append(np.sqrt(np.einsum("ij,ij->i", values, values)))
    image_ids = pa.chunked_array(ids, pa.string()).combine_chunks()
    norms = np.concatenate(norms) if norms else np.zeros(0)
    if pc.count_distinct(image_ids).as_py() != len(image_ids):
        counts = pc.value_counts(image_ids)
        repeated = counts.filter(pc.greater(counts.field("counts"), 1))[0]["values"]
        raise ValueError(f"embeddings {_names(paths)}: image {repeated} appears more than once")
    bad = ~(np.isfinite(norms) & (norms > 0))
    if bad.any():
        image = image_ids[int(np.flatnonzero(bad)[0])]
        raise ValueError(
            f"embeddings {_names(paths)}: image {image} has a zero or non-finite embedding norm"
        )
    return image_ids, norms, dataset.schema.field("embedding").type.list_size


def stream_moments(
    heads: Paths,
    embeddings: Paths | None = None,
    normalize: str = "embedding_norm",
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> tuple[list[tuple[int, int]], int, HeadMoments]:
    """Each head's moments over the images of a heads dataset, read one row group at a time.

    Returns the ``(layer, head)`` keys (sorted), the number of images and the moments (in that
    head order). With ``normalize="embedding_norm"`` every row is divided by its image's embedding
    norm (joined on ``image_id``). Every head must hold every image exactly once.
    """
    if normalize not in NORMALIZE:
        raise ValueError(f"textspan: normalize must be one of {NORMALIZE}, got {normalize!r}")
    dataset = open_dataset(heads, "heads")
    dim = dataset.schema.field("contribution").type.list_size
    emb_ids = norms = None
    if normalize == "embedding_norm":
        if not embeddings:
            raise ValueError(
                "textspan: normalize=embedding_norm needs the embeddings file(s) (--embeddings)"
            )
        emb_ids, norms, emb_dim = embedding_norms(embeddings)
        if emb_dim != dim:
            raise ValueError(
                f"embeddings {_names(embeddings)} have D={emb_dim} but heads {_names(heads)} "
                f"have D={dim}: not the same model's extraction"
            )

    # The heads present (small int16 columns only), so the accumulators are allocated up front.
    index = dataset.to_table(columns=["layer", "head"])
    n_rows = index.num_rows
    unique = np.unique(_codes(index["layer"].to_numpy(), index["head"].to_numpy()))
    del index
    keys = [(int(c >> 16) - 32768, int(c & 0xFFFF) - 32768) for c in unique]
    accumulator = MomentAccumulator(len(keys), dim, device=device)
    log.info(
        "streaming %d rows of %d heads (D=%d) from %s, normalize=%s",
        n_rows,
        len(keys),
        dim,
        _names(heads),
        normalize,
    )

    seen: set[str] = set()
    columns = ["image_id", "layer", "head", "contribution"]
    rows = max(1, _BATCH_BYTES // (4 * dim))
    with tqdm(total=n_rows, desc="textspan: heads", unit="row", disable=not progress) as bar:
        for group in iter_row_groups(dataset, columns):
            for start in range(0, group.num_rows, rows):
                batch = group.slice(start, rows)
                ids = batch.column("image_id")
                seen.update(pc.unique(ids).to_pylist())
                values, scale = to_numpy(batch.column("contribution")), None
                if norms is not None:
                    where = pc.index_in(ids, value_set=emb_ids)
                    if where.null_count:
                        missing = ids.filter(pc.is_null(where))[0]
                        raise ValueError(
                            f"heads {_names(heads)}: image {missing} has no embedding in "
                            f"{_names(embeddings)} (needed to normalise by its norm)"
                        )
                    scale = 1.0 / norms[where.to_numpy()]
                layer, head = batch.column("layer").to_numpy(), batch.column("head").to_numpy()
                head_of = np.searchsorted(unique, _codes(layer, head))
                _accumulate(accumulator, values, scale, head_of)
                bar.update(min(rows, group.num_rows - start))

    for (layer, head), count in zip(keys, accumulator.counts, strict=True):
        if count != len(seen):
            raise ValueError(
                f"heads {_names(heads)}: head L{layer}.H{head} has {count} rows for "
                f"{len(seen)} images: an image is missing or repeated (a shard written twice?)"
            )
    return keys, len(seen), accumulator.moments()


def _accumulate(accumulator: MomentAccumulator, values, scale, head_of: np.ndarray) -> None:
    """Add a batch's rows ``[b, D]`` (times ``scale`` ``[b]`` unless None) to their heads
    (``head_of``: each row's head index)."""
    order = np.argsort(head_of, kind="stable")
    bounds = np.searchsorted(head_of[order], np.arange(len(accumulator.counts) + 1))
    for h in range(len(accumulator.counts)):
        rows = order[bounds[h] : bounds[h + 1]]
        if len(rows):
            accumulator.add(h, values[rows], None if scale is None else scale[rows])


def _codes(layer: np.ndarray, head: np.ndarray) -> np.ndarray:
    """(layer, head) int16 pairs -> sortable int64 codes (layer-major)."""
    return ((layer.astype(np.int64) + 32768) << 16) + (head.astype(np.int64) + 32768)


def run_textspan(
    heads: Paths,
    embeddings: Paths | None,
    texts: str | Path,
    out: str | Path,
    iters: int = 5,
    rank: int = 80,
    normalize: str = "embedding_norm",
    device: str = "cpu",
    progress: bool = True,
) -> None:
    """The workflow step: stream the heads' moments, TEXTSPAN, write ``textspans.parquet`` (its
    schema metadata records ``normalize``)."""
    import polars as pl

    if device.startswith("cuda") and not torch.cuda.is_available():
        log.warning("device %s requested but CUDA is not available: using cpu", device)
        device = "cpu"
    bank = pl.read_parquet(texts)
    text_emb = to_numpy(bank.to_arrow()["embedding"])
    keys, n_images, moments = stream_moments(heads, embeddings, normalize, device, progress)
    if text_emb.shape[1] != moments.mean.shape[1]:
        raise ValueError(
            f"texts {texts} have D={text_emb.shape[1]} but heads {_names(heads)} have "
            f"D={moments.mean.shape[1]}: embedded by another model?"
        )
    log.info("TEXTSPAN: %d heads x %d images, %d texts", len(keys), n_images, len(bank))
    result = textspan_from_moments(
        moments, text_emb, iters, rank, device, memory_budget_mb=_PICK_BUDGET_MB
    )
    idx = result.indices.numpy()
    var = result.variance.numpy()
    total = result.total_variance.numpy()
    text_list, family = bank["text"].to_list(), bank["family"].to_list()
    rows = []
    for k, (layer, head) in enumerate(keys):
        for rank_ in range(idx.shape[1]):
            t = int(idx[k, rank_])
            rows.append(
                {
                    "layer": layer,
                    "head": head,
                    "rank": rank_,
                    "text_id": t,
                    "text": text_list[t],
                    "family": family[t],
                    "variance": float(var[k, rank_]),
                    "variance_fraction": float(var[k, rank_] / total[k]) if total[k] > 0 else 0.0,
                }
            )
    frame = pl.DataFrame(rows).with_columns(
        pl.col("layer").cast(pl.Int16),
        pl.col("head").cast(pl.Int16),
        pl.col("rank").cast(pl.Int8),
        pl.col("text_id").cast(pl.Int32),
        pl.col("family").cast(pl.String),
    )
    table = frame.to_arrow()
    write_table(table.replace_schema_metadata({"clipconcepts.normalize": normalize}), out)
