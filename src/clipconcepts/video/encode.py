"""Video embeddings for several prune sets from one decode of each video.

`VideoFrames` decodes a video's sampled frames and applies the model's preprocess (in DataLoader
workers when `num_workers > 0`); `encode_videos` walks the dataset once: per batch of videos, the
frames run through `HeadAwareCLIP.encode_image_multi` (the layers before the first pruned layer
once, the rest once per prune set), each frame embedding is L2-normalised, a video's embedding
is the mean over its frames, renormalised (CLIP4Clip's mean pooling) or not (the CCS authors'
code: `renormalise=False`). So every video is decoded and preprocessed once whatever the number
of strategies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from clipconcepts.video import decode as _decode
from clipconcepts.video.datasets import VideoDataset

log = logging.getLogger(__name__)

Head = tuple[int, int]


class VideoFrames(torch.utils.data.Dataset):
    """Item i: `(i, frames [F, 3, H, W] or None, error message or None)`."""

    def __init__(self, dataset: VideoDataset, transform: Callable):
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return self.dataset.n_videos

    def __getitem__(self, i: int):
        ds = self.dataset
        try:
            # looked up at call time, so a test can count decodes by patching the module
            images = _decode.decode_video(ds.paths[i], ds.n_frames, ds.sampling, ds.max_seconds)
        except _decode.BadVideoError as err:
            return i, None, str(err)
        return i, torch.stack([self.transform(image) for image in images]), None


def _as_list(batch):
    return batch


def video_loader(dataset: VideoDataset, transform, batch_size: int, num_workers: int = 0):
    """Batches of `(index, frames, error)` items, in dataset order."""
    return torch.utils.data.DataLoader(
        VideoFrames(dataset, transform),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_as_list,
        persistent_workers=False,
    )


@dataclass
class VideoEmbeddings:
    """`[S, V_kept, D]` video embeddings per prune set (unit-norm when renormalised), and what
    was decoded."""

    embeddings: torch.Tensor
    kept: list[int]  # dataset indices of the videos embedded (bad ones skipped)
    skipped: list[tuple[int, str]]  # (index, reason)
    n_decoded: int  # decode calls (= videos attempted; once each)
    n_frames: int  # frames embedded in total


def pool_frames(
    frame_emb: torch.Tensor, counts: Sequence[int], renormalise: bool = True
) -> torch.Tensor:
    """`[S, sum(counts), D]` frame embeddings -> `[S, len(counts), D]`: per video the mean of
    its L2-normalised frames, renormalised (or not: its norm is then below 1 as the frames
    differ, which weighs it in a dot product)."""
    frame_emb = F.normalize(frame_emb.float(), dim=-1)
    owner = torch.repeat_interleave(
        torch.arange(len(counts), device=frame_emb.device),
        torch.as_tensor(list(counts), device=frame_emb.device),
    )
    sums = torch.zeros(
        frame_emb.shape[0], len(counts), frame_emb.shape[2], device=frame_emb.device
    ).index_add_(1, owner, frame_emb)
    if renormalise:
        return F.normalize(sums, dim=-1)
    return sums / torch.as_tensor(list(counts), device=sums.device, dtype=sums.dtype)[:, None]


@torch.no_grad()
def embed_frames(
    clip, frames: torch.Tensor, head_lists: Sequence[Sequence[Head]], sets_per_pass: int, chunk: int
) -> torch.Tensor:
    """`[S, N, D]` embeddings of N frames under every prune set, `chunk` frames at a time."""
    parts = [
        clip.encode_image_multi(frames[i : i + chunk], head_lists, sets_per_pass=sets_per_pass)
        for i in range(0, len(frames), chunk)
    ]
    return torch.cat(parts, dim=1)


@torch.no_grad()
def encode_videos(
    clip,
    dataset: VideoDataset,
    head_lists: Sequence[Sequence[Head]],
    *,
    batch_size: int = 16,
    frame_batch_size: int = 256,
    num_workers: int = 0,
    sets_per_pass: int = 8,
    progress: bool = True,
    loader: Iterable | None = None,
    renormalise: bool = True,
) -> VideoEmbeddings:
    """One pass over the dataset's videos; `head_lists[s]` are the heads prune set s zeroes;
    `renormalise`: the mean of the frames is L2-normalised again (`pool_frames`)."""
    if not head_lists:
        raise ValueError("encode_videos needs at least one prune set")
    if loader is None:
        loader = video_loader(dataset, clip.preprocess, batch_size, num_workers)
    parts: list[torch.Tensor] = []
    kept: list[int] = []
    skipped: list[tuple[int, str]] = []
    n_decoded = n_frames = 0
    total = len(loader) if hasattr(loader, "__len__") else None
    bar = tqdm(loader, total=total, disable=not progress, desc=f"videos {dataset.name}")
    for batch in bar:
        good = []
        for index, frames, error in batch:
            n_decoded += 1
            if error is None:
                good.append((index, frames))
            elif dataset.on_bad_video == "skip":
                skipped.append((index, error))
                log.warning("skipped video %s: %s", dataset.video_ids[index], error)
            else:
                raise _decode.BadVideoError(
                    f"{error} (video {dataset.video_ids[index]!r} of {dataset.name}; "
                    "on_bad_video: skip drops such videos)"
                )
        if not good:
            continue
        counts = [len(frames) for _, frames in good]
        stacked = torch.cat([frames for _, frames in good]).to(clip.device, non_blocking=True)
        emb = embed_frames(clip, stacked, head_lists, sets_per_pass, frame_batch_size)
        parts.append(pool_frames(emb, counts, renormalise))
        kept += [index for index, _ in good]
        n_frames += sum(counts)
    if parts:
        embeddings = torch.cat(parts, dim=1)
    else:
        embeddings = torch.empty(len(head_lists), 0, clip.embed_dim, device=clip.device)
    return VideoEmbeddings(embeddings, kept, skipped, n_decoded, n_frames)
