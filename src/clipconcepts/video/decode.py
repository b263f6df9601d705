"""Read N uniformly spaced frames of a video file with PyAV (FFmpeg).

`frame_indices` decides which frames; `decode_video` finds how many frames the file holds by
demuxing it (packets are counted, nothing is decoded), then decodes once from the start and
keeps only the chosen frames, as RGB PIL images.

Sampling (`sampling`):
- `uniform`: the centre of each of N equal segments, `floor((i + 0.5) * n_total / N)`; never
  the very first or last frame unless N is 1 or N = n_total;
- `linspace`: N evenly spaced indices from the first to the last frame inclusive,
  `floor(linspace(0, n_total - 1, N))` (CLIP4Clip's `slice_framepos=2`).
A video with fewer frames than asked gives every frame once (no frame is repeated, so the mean
over frames weighs each distinct frame equally). `max_seconds` keeps only frames presented
before that time (DiDeMo's annotations cover the first 30 s).

A file that cannot be opened or holds no decodable video frame raises `BadVideoError` naming it.
If the decoder yields fewer frames than the container announced (a truncated file), chosen
frames past the end are replaced by the last decoded frame and the shortfall is logged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

SAMPLING = ("uniform", "linspace")


class BadVideoError(RuntimeError):
    """A video file that could not be opened or decoded."""


def frame_indices(n_total: int, n_frames: int, sampling: str = "uniform") -> list[int]:
    """Indices (sorted, distinct) of the frames to keep from a video of `n_total` frames."""
    if sampling not in SAMPLING:
        raise ValueError(f"frame sampling must be one of {', '.join(SAMPLING)}, got {sampling!r}")
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if n_total < 1:
        return []
    if n_frames >= n_total:
        return list(range(n_total))
    if sampling == "uniform":
        picks = [math.floor((i + 0.5) * n_total / n_frames) for i in range(n_frames)]
    else:
        picks = np.floor(np.linspace(0, n_total - 1, n_frames)).astype(int).tolist()
    return sorted(set(picks))


def _open(path: Path):
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise BadVideoError(f"cannot open video {path}: {err}") from err
    if not container.streams.video:
        container.close()
        raise BadVideoError(f"no video stream in {path}")
    return container


def _before(t: float | None, max_seconds: float | None) -> bool:
    return max_seconds is None or t is None or t < max_seconds


def count_frames(path: str | Path, max_seconds: float | None = None) -> int:
    """Frames of the first video stream (presented before `max_seconds`), by demuxing only."""
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        start = stream.start_time or 0
        base = stream.time_base
        n = 0
        for packet in container.demux(stream):
            if packet.size == 0:  # the flush packet at the end
                continue
            t = None if packet.pts is None or base is None else float((packet.pts - start) * base)
            n += _before(t, max_seconds)
        return n
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise BadVideoError(f"cannot read video {path}: {err}") from err
    finally:
        container.close()


def decode_video(
    path: str | Path,
    n_frames: int,
    sampling: str = "uniform",
    max_seconds: float | None = None,
) -> list[Image.Image]:
    """The chosen frames of `path` as RGB PIL images, in presentation order."""
    path = Path(path)
    n_total = count_frames(path, max_seconds)
    wanted = frame_indices(n_total, n_frames, sampling)
    if not wanted:
        raise BadVideoError(f"no video frames in {path}")
    frames, last, seen = _decode_chosen(path, set(wanted), wanted[-1], max_seconds)
    if not frames and last is None:
        raise BadVideoError(f"no decodable video frames in {path}")
    if len(frames) < len(wanted):
        log.warning(
            "%s: the container announced %d frames but %d decoded; %d chosen frame(s) past the "
            "end are the last decoded frame",
            path,
            n_total,
            seen,
            len(wanted) - len(frames),
        )
        frames += [last.to_image()] * (len(wanted) - len(frames))
    return frames


def _decode_chosen(
    path: Path, wanted: set[int], stop: int, max_seconds: float | None
) -> tuple[list[Image.Image], av.VideoFrame | None, int]:
    """Decode from the start; returns the wanted frames, the last decoded frame, frames seen."""
    container = _open(path)
    frames: list[Image.Image] = []
    last = None
    index = 0
    try:
        stream = container.streams.video[0]
        start_time = float((stream.start_time or 0) * stream.time_base) if stream.time_base else 0
        for frame in container.decode(stream):
            t = None if frame.time is None else frame.time - start_time
            if not _before(t, max_seconds):
                break
            if index in wanted:
                frames.append(frame.to_image())
            last = frame
            index += 1
            if index > stop:
                break
    except (av.error.FFmpegError, OSError, ValueError) as err:
        if not frames:
            raise BadVideoError(f"cannot decode video {path}: {err}") from err
        log.warning("%s: decoding stopped early (%s); keeping %d frames", path, err, len(frames))
    finally:
        container.close()
    return frames, last, index


def write_video(path: str | Path, frames: Sequence[np.ndarray] | np.ndarray, fps: int, crf: int):
    """Write uint8 RGB frames `[T, H, W, 3]` (even H and W) as an H.264 mp4 (yuv420p)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames [T, H, W, 3], got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"H.264 with yuv420p needs even frame sizes, got {width}x{height}")
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=int(fps))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
