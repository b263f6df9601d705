"""What the benchmarks share: a synchronised timer and the model options of the cost benches."""

from __future__ import annotations

import argparse
import time

import torch


def timed(fn) -> float:
    """Seconds one call of `fn` takes (waiting for the GPU, if any, on both sides)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def model_parser(description: str, **sizes: int) -> argparse.ArgumentParser:
    """`--arch --repeats --device --threads --sets-per-pass` (and `--precision`), plus one int
    option per keyword (e.g. `images=16` -> `--images`, default 16)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--arch", default="ViT-B-32")
    for name, default in sizes.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    parser.add_argument("--sets-per-pass", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--threads", type=int, default=None)
    return parser
