"""The `head-images` step: per analysed head, the probe images it writes most and least along its
first TEXTSPAN direction, with small thumbnails for the report's head browser.

A head's first TEXTSPAN direction is the unit embedding `t` of its rank-0 text
(`textspans.parquet`, the text's embedding in `texts.parquet`). An image's score is the
projection of the head's contribution on it, `c . t`, with `c` divided by the norm of the image's
full embedding when TEXTSPAN ran with `normalize: embedding_norm` (the default), so the score is
in the units TEXTSPAN picked the text in. (TEXTSPAN projects `t` onto the head's top-`rank`
singular directions first; a head's contributions lie in that span up to the near-zero
directions it drops, so `c . t` and `c . V V^T t` agree.) The `n` highest scores are the images
the head writes most along its concept, the `n` lowest the ones it writes least (or against).

The heads file (or the shards of a sharded extraction) is read one Parquet row group at a time
and only each head's running top and bottom `n` are kept, so memory does not grow with the probe
set (ViT-L-14 x 50k images: ~10 GB of contributions on disk). Only the chosen images are
decoded, each once, into a thumbnail of at most `thumbnail_px` on its longer side: PNG when the
image already fits (lossless: the concept world's flat colours), JPEG otherwise (`format: auto`).

Output (`{model}/head_images.parquet`, `HEAD_IMAGES`): one row per head, side (`top` | `bottom`)
and rank (0 = most extreme), with the image id, its probe label, its score, the direction's text
and the thumbnail (`thumbnail` bytes, `mime`, `width`, `height`).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

HEAD_IMAGES: dict[str, pl.DataType] = {
    "layer": pl.Int16,
    "head": pl.Int16,
    "side": pl.String,  # top | bottom
    "rank": pl.Int8,  # 0 = the most extreme image of its side
    "image_id": pl.String,
    "label": pl.Int32,  # the image's probe-set label
    "projection": pl.Float64,  # the contribution's projection on the direction
    "text_id": pl.Int32,  # the head's first TEXTSPAN text (the direction)
    "text": pl.String,
    "thumbnail": pl.Binary,
    "mime": pl.String,  # image/png | image/jpeg
    "width": pl.Int16,
    "height": pl.Int16,
}
SIDES = ("top", "bottom")
FORMATS = ("auto", "png", "jpeg")
NORMALIZE = ("embedding_norm", "none")
META_NORMALIZE = b"clipconcepts.normalize"
JPEG_QUALITY = 80

Paths = str | Path | Sequence[str | Path]


# ------------------------------------------------------------------------------- directions
def first_directions(
    textspans: str | Path, texts: str | Path
) -> tuple[list[tuple[int, int]], np.ndarray, list[int], list[str]]:
    """Per head of the TEXTSPAN file (sorted): its key, the unit embedding of its rank-0 text
    (`[K, D]` float64), that text's id and text."""
    spans = pl.read_parquet(textspans)
    for column in ("layer", "head", "rank", "text_id", "text"):
        if column not in spans.columns:
            raise ValueError(f"textspans {textspans}: missing column {column!r}")
    first = spans.filter(pl.col("rank") == 0).sort("layer", "head")
    keys_all = spans.select("layer", "head").unique()
    if first.height != keys_all.height:
        lacking = keys_all.join(first, on=["layer", "head"], how="anti").sort("layer", "head")
        r = lacking.row(0, named=True)
        raise ValueError(
            f"textspans {textspans}: head L{r['layer']}.H{r['head']} has no rank-0 text"
        )
    if first.select("layer", "head").is_duplicated().any():
        raise ValueError(f"textspans {textspans}: a head has several rank-0 texts")
    bank = pl.read_parquet(texts, columns=["text_id", "embedding"])
    ids = bank["text_id"].to_numpy()
    order = {int(t): i for i, t in enumerate(ids)}
    emb = bank["embedding"].to_numpy()
    emb = np.asarray(np.stack(emb) if emb.dtype == object else emb, dtype=np.float64)
    rows = []
    for t in first["text_id"].to_list():
        if t not in order:
            raise ValueError(f"textspans {textspans}: text_id {t} is not in the texts file {texts}")
        rows.append(order[t])
    dirs = emb[rows] if rows else np.zeros((0, emb.shape[1] if emb.ndim == 2 else 0))
    norms = np.linalg.norm(dirs, axis=1, keepdims=True)
    dirs = dirs / np.where(norms > 0, norms, 1.0)
    keys = [(int(a), int(b)) for a, b in first.select("layer", "head").iter_rows()]
    return keys, dirs, [int(t) for t in first["text_id"]], first["text"].to_list()


def textspan_normalize(textspans: str | Path) -> str | None:
    """The normalisation TEXTSPAN ran with (its file's schema metadata; None if unrecorded)."""
    meta = pq.read_schema(textspans).metadata or {}
    value = meta.get(META_NORMALIZE)
    return value.decode() if value is not None else None


# ------------------------------------------------------------------------------- streaming
class Extremes:
    """Each head's running `n` highest and `n` lowest scores with their row payloads
    (image id, label); ties broken by image id, so the result does not depend on row order."""

    def __init__(self, n_heads: int, n: int):
        self.n = n
        self.top: list[list[tuple[float, str, int]]] = [[] for _ in range(n_heads)]
        self.bottom: list[list[tuple[float, str, int]]] = [[] for _ in range(n_heads)]

    def add(self, h: int, scores: np.ndarray, ids: pa.Array, labels: np.ndarray) -> None:
        k = min(self.n, len(scores))
        if k == 0:
            return
        for side, signed in ((self.top, -scores), (self.bottom, scores)):
            pick = np.argpartition(signed, k - 1)[:k] if k < len(scores) else np.arange(k)
            chosen = ids.take(pa.array(pick)).to_pylist()
            merged = side[h] + [
                (float(scores[i]), image, int(labels[i]))
                for i, image in zip(pick, chosen, strict=True)
            ]
            reverse = side is self.top
            merged.sort(key=lambda x: ((-x[0] if reverse else x[0]), x[1]))
            side[h] = merged[: self.n]


def stream_extremes(
    heads: Paths,
    keys: list[tuple[int, int]],
    dirs: np.ndarray,
    n: int,
    norms: tuple[pa.Array, np.ndarray] | None = None,
    what: str = "heads",
) -> tuple[Extremes, int]:
    """Scores of every row of the heads dataset on its head's direction, read row group by row
    group; returns each head's extremes and the number of distinct images seen. `norms` (image
    ids, embedding norms) divides each row by its image's norm first."""
    from clipconcepts.io import iter_row_groups, open_dataset, to_numpy

    dataset = open_dataset(heads, "heads")
    dim = dataset.schema.field("contribution").type.list_size
    if dirs.shape[1] != dim:
        raise ValueError(
            f"{what}: contributions have D={dim} but the TEXTSPAN texts have D={dirs.shape[1]}: "
            "not the same model's extraction"
        )
    index = {key: i for i, key in enumerate(keys)}
    extremes = Extremes(len(keys), n)
    seen: set[str] = set()
    present: set[tuple[int, int]] = set()
    for group in iter_row_groups(dataset, ["image_id", "label", "layer", "head", "contribution"]):
        ids = group.column("image_id").combine_chunks()
        seen.update(ids.unique().to_pylist())
        layer = group.column("layer").to_numpy()
        head = group.column("head").to_numpy()
        labels = group.column("label").to_numpy()
        values = to_numpy(group.column("contribution"))
        pairs = set(zip(layer.tolist(), head.tolist(), strict=True))
        present |= pairs
        scale = None
        if norms is not None:
            import pyarrow.compute as pc

            where = pc.index_in(ids, value_set=norms[0])
            if where.null_count:
                missing = ids.filter(pc.is_null(where))[0]
                raise ValueError(f"{what}: image {missing} has no embedding (needed for its norm)")
            scale = 1.0 / norms[1][where.to_numpy()]
        for key in sorted(pairs & index.keys()):
            rows = np.flatnonzero((layer == key[0]) & (head == key[1]))
            scores = values[rows].astype(np.float64) @ dirs[index[key]]
            if scale is not None:
                scores = scores * scale[rows]
            extremes.add(index[key], scores, ids.take(pa.array(rows)), labels[rows])
    absent = [k for k in keys if k not in present]
    if absent:
        layer, head = absent[0]
        raise ValueError(
            f"{what}: head L{layer}.H{head} has a TEXTSPAN text but no contributions "
            f"({len(absent)} such heads): the heads file is not the one TEXTSPAN read"
        )
    return extremes, len(seen)


# ------------------------------------------------------------------------------- thumbnails
def thumbnail(path: str | Path, px: int, fmt: str = "auto") -> tuple[bytes, str, int, int]:
    """An image file as a thumbnail of at most `px` on its longer side: (bytes, mime, width,
    height). `auto`: PNG when the image already fits (no resampling), else JPEG."""
    from PIL import Image

    if fmt not in FORMATS:
        raise ValueError(f"thumbnail format must be one of {FORMATS}, got {fmt!r}")
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
    except Exception as err:  # any decoder error: name the file
        raise ValueError(f"probe image {path} cannot be decoded ({err})") from err
    fits = max(image.size) <= px
    if not fits:
        image.thumbnail((px, px), Image.Resampling.LANCZOS)
    png = fmt == "png" or (fmt == "auto" and fits)
    buf = io.BytesIO()
    if png:
        image.save(buf, format="PNG", optimize=True)
    else:
        image.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buf.getvalue(), "image/png" if png else "image/jpeg", image.width, image.height


# ------------------------------------------------------------------------------- the step
def run_head_images(
    heads: Paths,
    textspans: str | Path,
    texts: str | Path,
    probe_kind: str,
    probe_root: str | Path,
    out: str | Path,
    embeddings: Paths | None = None,
    n_images: int = 8,
    thumbnail_px: int = 64,
    thumbnail_format: str = "auto",
    normalize: str = "embedding_norm",
) -> pl.DataFrame:
    """The workflow step: write `out` (`HEAD_IMAGES`) and return it."""
    from clipconcepts.io import write_table

    if n_images < 1:
        raise ValueError(f"head-images: n_images must be positive, got {n_images}")
    if thumbnail_px < 8:
        raise ValueError(f"head-images: thumbnail_px must be at least 8, got {thumbnail_px}")
    if normalize not in NORMALIZE:
        raise ValueError(f"head-images: normalize must be one of {NORMALIZE}, got {normalize!r}")
    recorded = textspan_normalize(textspans)
    if recorded is not None and recorded != normalize:
        raise ValueError(
            f"textspans {textspans} were computed with normalize={recorded} but head-images "
            f"was given normalize={normalize} (textspan.normalize): rerun TEXTSPAN"
        )
    keys, dirs, text_ids, text_list = first_directions(textspans, texts)
    norms = None
    if normalize == "embedding_norm":
        if not embeddings:
            raise ValueError("head-images: normalize=embedding_norm needs --embeddings")
        from clipconcepts.textspan_step import embedding_norms

        ids, values, _ = embedding_norms(embeddings)
        norms = (ids, values)
    extremes, n_seen = stream_extremes(heads, keys, dirs, n_images, norms, what=f"heads {heads}")
    log.info("%d heads scored on %d probe images", len(keys), n_seen)

    wanted = {
        image for side in (extremes.top, extremes.bottom) for rows in side for _, image, _ in rows
    }
    from clipconcepts.data import build_image_records

    records = build_image_records(probe_kind, probe_root)
    path_of = dict(zip(records.image_ids, records.paths, strict=True))
    missing = sorted(wanted - path_of.keys())
    if missing:
        raise ValueError(
            f"head-images: image {missing[0]} of the heads file is not in the probe set "
            f"{probe_kind}:{probe_root} ({len(missing)} such images)"
        )
    thumbs = {image: thumbnail(path_of[image], thumbnail_px, thumbnail_format) for image in wanted}
    log.info(
        "%d distinct thumbnails (%d bytes)", len(thumbs), sum(len(t[0]) for t in thumbs.values())
    )

    rows = []
    for k, (layer, head) in enumerate(keys):
        for side, chosen in zip(SIDES, (extremes.top[k], extremes.bottom[k]), strict=True):
            for rank, (score, image, label) in enumerate(chosen):
                data, mime, width, height = thumbs[image]
                rows.append(
                    {
                        "layer": layer,
                        "head": head,
                        "side": side,
                        "rank": rank,
                        "image_id": image,
                        "label": label,
                        "projection": score,
                        "text_id": text_ids[k],
                        "text": text_list[k],
                        "thumbnail": data,
                        "mime": mime,
                        "width": width,
                        "height": height,
                    }
                )
    frame = pl.DataFrame(rows, schema=HEAD_IMAGES)
    table = frame.to_arrow().replace_schema_metadata(
        {
            META_NORMALIZE: normalize.encode(),
            b"clipconcepts.n_images": str(n_seen).encode(),
        }
    )
    write_table(table, out)
    log.info("head images -> %s (%d rows)", out, frame.height)
    return frame
