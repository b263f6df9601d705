"""Benchmark: every prune strategy's video retrieval vs one plain (unpruned) video evaluation.

On the same mp4 files, in one process. The plain evaluation decodes each video's sampled frames,
preprocesses them, runs open_clip's own `visual` forward, mean-pools the normalised frame
embeddings, embeds the captions and computes the retrieval metrics. The shared run is
`evaluate_video_retrieval` over S realistic prune sets (those of bench/prune_cost.py: original,
high, low, 3 random, 2 concept): each video is decoded and preprocessed once, the layers before
the first pruned layer run once, the rest once per set. Prints the decode counts (shared: N
videos; S separate runs: S x N) and ends with `ratio R goal G`: R = shared time / plain time,
G = 1 + S*k/L + 0.3 for k pruned layers of L (as bench/prune_cost.py; 1 + S*k/L is the model's
share alone, and decoding once, not S times, brings R below it). S separate runs: ratio S.

Default: a random-init ViT-B-32, 8 synthetic 320x240 videos of 48 frames (moving gradients,
H.264), 4 frames sampled per video, median of 3 runs (about a minute on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import torch

from benchlib import timed
from clipconcepts.models import load_clip
from clipconcepts.video import decode as decode_module
from clipconcepts.video.datasets import build_video_dataset
from clipconcepts.video.decode import decode_video, write_video
from clipconcepts.video.encode import pool_frames
from clipconcepts.video.evaluate import evaluate_video_retrieval
from clipconcepts.video.metrics import retrieval_metrics
from prune_cost import prune_sets  # bench/ is the script's folder


def write_videos(folder: Path, n: int, frames: int, width: int, height: int) -> None:
    """`n` mp4 files of drifting colour gradients, and a manifest with one caption each."""
    (folder / "videos").mkdir(parents=True)
    y, x = np.mgrid[0:height, 0:width]
    rows = []
    for i in range(n):
        clip = np.empty((frames, height, width, 3), dtype=np.uint8)
        for t in range(frames):
            clip[t, ..., 0] = (x + 5 * t + 40 * i) % 256
            clip[t, ..., 1] = (y + 3 * t) % 256
            clip[t, ..., 2] = (x + y + 20 * i) % 256
        path = f"videos/v{i:03d}.mp4"
        write_video(folder / path, clip, fps=24, crf=23)
        rows.append({"video_id": f"v{i:03d}", "path": path, "caption": f"a gradient number {i}"})
    pl.DataFrame(rows).write_parquet(folder / "manifest.parquet")


@torch.no_grad()
def plain_evaluation(clip, dataset) -> dict:
    """One unpruned evaluation, written without the shared machinery."""
    videos = []
    for path in dataset.paths:
        images = decode_video(path, dataset.n_frames, dataset.sampling, dataset.max_seconds)
        frames = torch.stack([clip.preprocess(image) for image in images]).to(clip.device)
        videos.append(pool_frames(clip.visual(frames)[None], [len(frames)])[0, 0])
    texts = clip.encode_text(dataset.captions).float()
    return retrieval_metrics(texts @ torch.stack(videos).T, dataset.caption_video)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--video-frames", type=int, default=48, help="frames in each file")
    parser.add_argument("--frames", type=int, default=4, help="frames sampled per video")
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--batch-size", type=int, default=8, help="videos per batch")
    parser.add_argument("--sets-per-pass", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.split("x"))

    torch.manual_seed(0)
    clip = load_clip(args.arch, None, device=args.device)
    sets = prune_sets(clip.n_layers, clip.n_heads)
    first = min(layer for s in sets for layer, _ in s.heads)
    S, L, k = len(sets), clip.n_layers, clip.n_layers - first
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_videos(folder, args.videos, args.video_frames, width, height)
        dataset = build_video_dataset("bench", "manifest", folder, n_frames=args.frames)
        print(
            f"{clip!r}; {args.videos} videos of {args.video_frames} frames at {width}x{height}, "
            f"{args.frames} sampled each; threads={torch.get_num_threads()}"
        )
        print("prune sets: " + ", ".join(f"{s.strategy}/{s.seed}({s.n_heads})" for s in sets))

        calls = []
        real = decode_module.decode_video

        def counting(*a, **kw):
            calls.append(1)
            return real(*a, **kw)

        decode_module.decode_video = counting

        def shared():
            return evaluate_video_retrieval(
                clip,
                dataset,
                sets,
                batch_size=args.batch_size,
                sets_per_pass=args.sets_per_pass,
                progress=False,
            )

        # warm-up, and a check that the shared run's 'original' row is the plain evaluation
        base = plain_evaluation(clip, dataset)
        calls.clear()
        result = shared()
        n_shared = len(calls)
        original = result.retrieval.filter(pl.col("strategy") == "original").row(0, named=True)
        assert abs(original["mean_rank"] - base["t2v"]["mean_rank"]) < 1e-9, (
            "shared 'original' ranks differ from the plain evaluation"
        )
        base_times, shared_times = [], []
        for _ in range(args.repeats):  # interleaved, so drifting machine load hits both
            base_times.append(timed(lambda: plain_evaluation(clip, dataset)))
            shared_times.append(timed(shared))
        decode_module.decode_video = real
    plain, multi = statistics.median(base_times), statistics.median(shared_times)
    ideal = 1 + S * k / L
    print(
        f"decode calls: shared run {n_shared} ({args.videos} videos, once each); "
        f"{S} separate runs would make {S * args.videos}"
    )
    print(f"plain evaluation: {plain:.3f} s (runs {', '.join(f'{t:.3f}' for t in base_times)})")
    print(
        f"{S} strategies, one decode, shared prefix: {multi:.3f} s "
        f"(runs {', '.join(f'{t:.3f}' for t in shared_times)})"
    )
    print(f"S={S} k={k} L={L}: naive ratio (S full runs) {S}, model-only 1 + S*k/L = {ideal:.2f}")
    print(f"ratio {multi / plain:.2f} goal {ideal + 0.3:.2f}")


if __name__ == "__main__":
    main()
