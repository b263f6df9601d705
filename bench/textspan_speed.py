"""Benchmark: TEXTSPAN batched over heads vs the plain per-head numpy reference loop.

Random seeded data (``--heads`` heads, ``--n`` images, ``--t`` texts, ``--d`` dims): each head is
a Gaussian cloud with a decaying spectrum (variance 1/(1+i) along random orthogonal directions;
``--isotropic`` for plain standard normal) plus a random mean offset, in float32 like real
per-head contributions; texts are random unit vectors. Times ``textspan_reference`` (float32, the
authors' working precision; per head: SVD of the N x D data, every image projected on every text
each iteration) against ``textspan`` on the same data, asserts identical picks, and prints as its
last line ``ratio R goal 10`` with R = reference time / ours.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from clipconcepts.textspan import textspan, textspan_reference


def make_data(
    heads: int, n: int, d: int, t: int, seed: int, isotropic: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random head contributions ``[heads, n, d]`` and unit texts ``[t, d]`` (float32)."""
    rng = np.random.default_rng(seed)
    # Decaying spectrum (like real heads, whose variance sits in a few directions) plus noise.
    scales = np.ones(d) if isotropic else 1.0 / np.sqrt(1.0 + np.arange(d))
    data = np.empty((heads, n, d), dtype=np.float32)
    for h in range(heads):
        basis, _ = np.linalg.qr(rng.standard_normal((d, d)))
        latent = rng.standard_normal((n, d)) * scales
        offset = rng.standard_normal(d) * 0.3
        data[h] = (latent @ basis.T + offset).astype(np.float32)
    texts = rng.standard_normal((t, d))
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    return data, texts.astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--t", type=int, default=3_000)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--rank", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--isotropic", action="store_true", help="flat spectrum instead")
    parser.add_argument("--repeats", type=int, default=3, help="ours: median of this many runs")
    args = parser.parse_args()

    data, texts = make_data(args.heads, args.n, args.d, args.t, args.seed, args.isotropic)
    print(
        f"heads={args.heads} N={args.n} T={args.t} D={args.d} iters={args.iters} "
        f"rank={args.rank} torch_threads={torch.get_num_threads()}"
    )

    start, cpu_start = time.perf_counter(), time.process_time()
    ref_idx, ref_var = textspan_reference(data, texts, args.iters, args.rank, dtype=np.float32)
    ref_time, ref_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(f"reference (numpy float32, per head): {ref_time:.2f} s wall, {ref_cpu:.2f} s CPU")

    times, cpu_times = [], []
    for _ in range(args.repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        result = textspan(data, texts, iters=args.iters, rank=args.rank)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    ours_time, ours_cpu = statistics.median(times), statistics.median(cpu_times)
    print(
        f"textspan (batched over heads): {ours_time:.3f} s wall, {ours_cpu:.3f} s CPU "
        f"(medians of {args.repeats})"
    )

    ours_idx = result.indices.numpy()
    if not np.array_equal(ours_idx, ref_idx):
        raise SystemExit(f"picks differ:\nreference\n{ref_idx}\nours\n{ours_idx}")
    rel = np.abs(result.variance.numpy() - ref_var).max() / np.abs(ref_var).max()
    print(f"identical picks; max relative variance difference {rel:.2e}")
    # CPU time is less sensitive to other jobs on the machine; the goal is on wall time.
    print(f"CPU-time ratio {ref_cpu / ours_cpu:.2f}")
    print(f"ratio {ref_time / ours_time:.2f} goal 10")


if __name__ == "__main__":
    main()
