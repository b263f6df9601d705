"""Peak memory of the streamed `textspan` step against the size of the heads file it reads.

For each ``--images`` N, writes a synthetic heads file in extraction's layout and schema (one
zstd row group per batch of 256 images, rows image x layer x head; ViT-L-14's analysed heads by
default: 4 layers x 16 heads, D = 768), its embeddings file and a text bank (T = 3,780 unit texts,
the default bank's size), then runs ``python -m clipconcepts textspan`` on them in a subprocess
(CPU, normalisation on) and reads that process's peak RSS (``ru_maxrss`` from ``wait4``). A
process that only imports the step's modules gives the fixed part. ``--in-memory N`` also measures
the former path (the whole file read into ``[K, N, D]``, then ``textspan``) at that N.

Streaming keeps each head's float64 mean and Gram (K D^2 x 8 B: 302 MB for ViT-L-14), so peak RSS
should not grow with N. Prints, as its last line, ``ratio R goal 1.1`` with R = peak RSS at the
largest N / peak RSS at the smallest. The files are deleted at the end (``--keep`` keeps them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from clipconcepts.extract import embeddings_schema, heads_schema
from clipconcepts.io import ParquetStream, fixed_list, write_table

BATCH = 256  # images per row group, as extraction's default batch


def write_synthetic(folder: Path, n: int, layers: int, heads: int, d: int, t: int, seed: int):
    """Heads, embeddings and texts files for N images; each head a rank-32 signal plus noise."""
    rng = np.random.default_rng(seed)
    k = layers * heads
    basis = rng.standard_normal((k, 32, d)).astype(np.float32) / np.sqrt(d)
    offset = rng.standard_normal((k, d)).astype(np.float32) * 0.05
    layer_ids = np.repeat(np.arange(24 - layers, 24, dtype=np.int16), heads)
    head_ids = np.tile(np.arange(heads, dtype=np.int16), layers)
    with (
        ParquetStream(folder / "heads.parquet", heads_schema(d)) as out,
        ParquetStream(folder / "embeddings.parquet", embeddings_schema(d)) as emb,
    ):
        for lo in tqdm(range(0, n, BATCH), desc=f"write N={n}", unit="batch", leave=False):
            b = min(BATCH, n - lo)
            ids = np.asarray([f"img{i:07d}" for i in range(lo, lo + b)], dtype=object)
            latent = rng.standard_normal((b, k, 32), dtype=np.float32)
            contrib = np.einsum("bkr,krd->bkd", latent, basis) + offset
            contrib += 0.01 * rng.standard_normal(contrib.shape, dtype=np.float32)
            scale = np.exp(0.3 * rng.standard_normal(b, dtype=np.float32))[:, None, None]
            contrib *= scale  # a per-image norm spread, as real images have
            out.write(
                pa.table(
                    {
                        "image_id": np.repeat(ids, k),
                        "label": np.zeros(b * k, np.int32),
                        "layer": np.tile(layer_ids, b),
                        "head": np.tile(head_ids, b),
                        "contribution": fixed_list(contrib.reshape(-1, d)),
                    }
                )
            )
            rest = rng.standard_normal((b, d), dtype=np.float32) * scale[:, :, 0]
            emb.write(
                pa.table(
                    {
                        "image_id": ids,
                        "label": np.zeros(b, np.int32),
                        "embedding": fixed_list(contrib.sum(axis=1) + rest),
                    }
                )
            )
    texts = rng.standard_normal((t, d))
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    write_table(
        pa.table(
            {
                "text_id": pa.array(range(t), pa.int32()),
                "text": [f"text {i}" for i in range(t)],
                "family": pa.array([None] * t, pa.string()),
                "embedding": fixed_list(texts),
            }
        ),
        folder / "texts.parquet",
    )


def peak_rss_mb(argv: list[str]) -> tuple[float, float]:
    """Run ``argv``; (its peak RSS in MB, wall seconds). Fails loudly if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{output.decode(errors='replace')[-3000:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start  # ru_maxrss: KiB on Linux


IN_MEMORY = """
import sys, torch, polars as pl
from clipconcepts.extract import read_heads
from clipconcepts.io import to_numpy
from clipconcepts.textspan import textspan
keys, ids, data = read_heads(sys.argv[1])
texts = to_numpy(pl.read_parquet(sys.argv[2]).to_arrow()["embedding"])
textspan(torch.from_numpy(data), torch.from_numpy(texts.copy()), 5, 80)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[2000, 8000])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--d", type=int, default=768)
    parser.add_argument("--t", type=int, default=3780)
    parser.add_argument("--in-memory", type=int, nargs="*", default=[2000], metavar="N")
    parser.add_argument("--dir", default=None, help="where to write the files (default: a tmp)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    k = args.layers * args.heads
    root = Path(tempfile.mkdtemp(prefix="textspan_memory_", dir=args.dir))
    py = sys.executable
    print(
        f"layout: {args.layers} layers x {args.heads} heads = {k} heads, D={args.d}, "
        f"T={args.t} texts; device cpu, "
        f"normalize embedding_norm; Gram state {k * args.d**2 * 8 / 2**20:.0f} MiB"
    )
    imports, _ = peak_rss_mb(
        [py, "-c", "import clipconcepts.textspan_step, clipconcepts.cli, polars, torch"]
    )
    print(f"imports only (torch, pyarrow, polars): peak RSS {imports:.0f} MiB")
    streamed = {}
    try:
        for n in sorted(args.images):
            folder = root / f"n{n}"
            folder.mkdir()
            start = time.perf_counter()
            write_synthetic(folder, n, args.layers, args.heads, args.d, args.t, args.seed)
            size = (folder / "heads.parquet").stat().st_size
            raw = n * k * args.d * 4
            print(
                f"N={n}: heads.parquet {size / 2**30:.2f} GiB on disk ({n * k:,} rows, "
                f"{raw / 2**30:.2f} GiB of float32 contributions), written in "
                f"{time.perf_counter() - start:.0f} s"
            )
            rss, wall = peak_rss_mb(
                [py, "-m", "clipconcepts", "textspan", "--heads", str(folder / "heads.parquet")]
                + ["--embeddings", str(folder / "embeddings.parquet")]
                + ["--texts", str(folder / "texts.parquet"), "--device", "cpu"]
                + ["--out", str(folder / "textspans.parquet")]
            )
            streamed[n] = rss
            print(
                f"N={n}: streamed textspan peak RSS {rss:.0f} MiB ({rss / (raw / 2**20):.3f} x "
                f"the contributions), {wall:.0f} s"
            )
            if n in args.in_memory:
                rss, wall = peak_rss_mb(
                    [
                        py,
                        "-c",
                        IN_MEMORY,
                        str(folder / "heads.parquet"),
                        str(folder / "texts.parquet"),
                    ]
                )
                print(
                    f"N={n}: in-memory path (read_heads + textspan) peak RSS {rss:.0f} MiB, {wall:.0f} s"
                )
            if not args.keep:
                shutil.rmtree(folder)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    lo, hi = min(streamed), max(streamed)
    print(f"peak RSS N={hi} / N={lo}: {streamed[hi]:.0f} / {streamed[lo]:.0f} MiB")
    print(f"ratio {streamed[hi] / streamed[lo]:.2f} goal 1.1")


if __name__ == "__main__":
    main()
