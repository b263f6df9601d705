"""Concept-world video clips: the world's objects moving, written as real mp4 files.

A clip is `n_frames` frames of 48x48 at `fps`: one object (the world's colours, its random
shapes as a nuisance) on a background colour and texture that stay fixed, moving in a straight
line from the image centre. Its families are the world's `color` and `texture` plus two of
motion: `motion` (left, right, up, down) and `speed` (slow: 6 px over the clip, half a grid
step; fast: 12 px, to the next grid cell). Per-frame pixel noise is drawn afresh; colours (the
backdrop's an unnamed nuisance, as in the images), shape, size and texture phase are drawn once
per clip. The clips are encoded with H.264 (yuv420p, `CRF`) and read back through the same
decoder as MSR-VTT. The world's fixed places (ground strip, tag, dial, stamp, frame) are drawn as
in its images (`generator.fixed_place_layers`), with values drawn once per clip and never
captioned: they are part of every image the model saw, not of what a clip is about.

Starting every clip at the centre makes the direction visible to a mean-pooled model through
where the object spends its time (left clips lie in the left half); a model that pools frames
by their mean cannot tell a clip from the same clip played backwards, so this is the only way
direction can reach it. The model never saw motion words in training ("moving", "slowly"):
captions name all five families, e.g. "a red object moving left quickly on a dotted
background", and the retrieval score says how far the words it knows carry.

Stream: images come from `[seed, VIDEO_STREAM, 0]`, disjoint from training (0), training
evaluation (1) and the image datasets (2).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import polars as pl

from clipconcepts.conceptworld.generator import (
    _SHAPES,
    CENTRE_JITTER,
    COLOR_JITTER,
    HALF_SIZE,
    IMAGE_SIZE,
    PIXEL_NOISE_STD,
    SIZE_JITTER,
    TEXTURE_CONTRAST,
    TEXTURE_PERIOD,
    dial_hand_mask,
    fixed_place_layers,
    fixed_regions,
    paint,
    stamp_glyph_mask,
    tag_glyph_mask,
    texture_mask,
)
from clipconcepts.conceptworld.world import (
    BACKGROUND_RGB,
    FRAME_RGB,
    GROUND_RGB,
    OBJECT_RGB,
    STAMP_FACE_RGB,
    STAMP_INK_RGB,
    TAG_FACE_RGB,
    TAG_INK_RGB,
    values_of,
)
from clipconcepts.video.decode import write_video

log = logging.getLogger(__name__)

VIDEO_STREAM = 3
MOTIONS: tuple[str, ...] = ("left", "right", "up", "down")
_DIRECTION = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}
SPEEDS: tuple[str, ...] = ("slow", "fast")
_DISTANCE = {"slow": 6.0, "fast": 12.0}  # pixels travelled over the whole clip
_SPEED_WORD = {"slow": "slowly", "fast": "quickly"}
CLIP_FAMILIES: tuple[str, ...] = ("color", "motion", "speed", "texture")
CRF = 12  # H.264 quality (lower = closer to the rendered pixels); 48x48 clips stay ~10 kB


def clip_values(family: str) -> tuple[str, ...]:
    if family == "motion":
        return MOTIONS
    if family == "speed":
        return SPEEDS
    return values_of(family)


def sample_clip_attributes(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Independent uniform value indices of every clip family."""
    return {f: rng.integers(0, len(clip_values(f)), size=n) for f in CLIP_FAMILIES}


def render_clip(attrs: dict[str, int], n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """One clip, uint8 `[n_frames, 48, 48, 3]`; `attrs` holds one value index per family."""
    motion = MOTIONS[attrs["motion"]]
    distance = _DISTANCE[SPEEDS[attrs["speed"]]]
    half = HALF_SIZE + SIZE_JITTER * rng.uniform(-1, 1)
    start = IMAGE_SIZE / 2 + CENTRE_JITTER * rng.uniform(-1, 1, size=2)
    shape = _SHAPES[rng.integers(0, len(_SHAPES))]
    phase = rng.integers(0, TEXTURE_PERIOD, size=(1, 2))
    obj = np.asarray(OBJECT_RGB[attrs["color"]], dtype=np.float32)
    bg = np.asarray(BACKGROUND_RGB[rng.integers(0, len(BACKGROUND_RGB))], dtype=np.float32)
    obj = obj + rng.uniform(-COLOR_JITTER, COLOR_JITTER, size=3).astype(np.float32)
    bg = bg + rng.uniform(-COLOR_JITTER, COLOR_JITTER, size=3).astype(np.float32)
    pattern = texture_mask(np.array([attrs["texture"]]), phase)[0]  # [H, W]
    background = bg[None, None, :] + TEXTURE_CONTRAST * pattern[..., None]
    progress = np.linspace(0.0, 1.0, n_frames) if n_frames > 1 else np.zeros(1)
    centres = start[None, :] + np.outer(progress * distance, _DIRECTION[motion])  # [T, 2]
    coords = np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5
    dx = coords[None, None, :] - centres[:, 0, None, None]  # [T, 1, W]
    dy = coords[None, :, None] - centres[:, 1, None, None]  # [T, H, 1]
    mask = shape(dx, dy, np.full((n_frames, 1, 1), half, dtype=np.float32))
    places = fixed_regions()
    ground, tag, ink, stamp, stamp_ink, frame_rgb = (
        np.asarray(palette[rng.integers(0, len(palette))], dtype=np.float32)
        + rng.uniform(-COLOR_JITTER, COLOR_JITTER, size=3).astype(np.float32)
        for palette in (
            GROUND_RGB,
            (TAG_FACE_RGB,),
            (TAG_INK_RGB,),
            (STAMP_FACE_RGB,),
            (STAMP_INK_RGB,),
            FRAME_RGB,
        )
    )
    glyph = tag_glyph_mask(rng.integers(0, len(values_of("tag")), size=1))[0]
    stamp_glyph = stamp_glyph_mask(rng.integers(0, len(values_of("stamp")), size=1))[0]
    hand = dial_hand_mask(rng.integers(0, len(values_of("dial")), size=1))[0]
    background = np.where(places["ground"][..., None], ground, background)
    frames = np.where(mask[..., None], obj[None, None, None, :], background[None])
    layers = fixed_place_layers(
        places, (glyph, tag, ink), (stamp_glyph, stamp, stamp_ink), hand, frame_rgb
    )
    frames = paint(frames, layers)
    frames = frames + PIXEL_NOISE_STD * rng.standard_normal(frames.shape, dtype=np.float32)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def clip_caption(attrs: dict[str, int]) -> str:
    """'a red object moving left quickly on a dotted background' (canonical words)."""
    color = values_of("color")[attrs["color"]]
    texture = values_of("texture")[attrs["texture"]]
    motion = MOTIONS[attrs["motion"]]
    speed = _SPEED_WORD[SPEEDS[attrs["speed"]]]
    article = "an" if color[0] in "aeiou" else "a"
    return f"{article} {color} object moving {motion} {speed} on a {texture} background"


def write_clips(
    out_dir: str | Path, n_videos: int, n_frames: int = 16, fps: int = 8, seed: int = 0
) -> Path:
    """Write `n_videos` clips as `videos/*.mp4` with `manifest.parquet` (video_id, path,
    caption, one column per family with the value name, n_frames, fps); built beside
    `out_dir`, then renamed into place."""
    if n_videos < 1 or n_frames < 1 or fps < 1:
        raise ValueError(f"write_clips: sizes must be >= 1 ({n_videos=}, {n_frames=}, {fps=})")
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "videos").mkdir(parents=True)
    rng = np.random.default_rng([seed, VIDEO_STREAM, 0])
    attrs = sample_clip_attributes(n_videos, rng)
    rows = []
    for i in range(n_videos):
        one = {f: int(v[i]) for f, v in attrs.items()}
        video_id = f"clip-{i:05d}"
        path = f"videos/{video_id}.mp4"
        write_video(tmp / path, render_clip(one, n_frames, rng), fps=fps, crf=CRF)
        names = {f: clip_values(f)[one[f]] for f in CLIP_FAMILIES}
        rows.append({"video_id": video_id, "path": path, "caption": clip_caption(one), **names})
    table = pl.DataFrame(rows).with_columns(
        pl.lit(n_frames, dtype=pl.Int32).alias("n_frames"), pl.lit(fps, dtype=pl.Int32).alias("fps")
    )
    table.write_parquet(tmp / "manifest.parquet")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    log.info(
        "wrote %d concept-world clips (%d frames at %d fps) to %s", n_videos, n_frames, fps, out_dir
    )
    return out_dir
