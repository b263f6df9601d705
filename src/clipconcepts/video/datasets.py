"""Video-text retrieval test sets read from local folders in their release layouts.

A `VideoDataset` is a list of videos (id, file) and a list of captions, each caption pointing at
its video (`caption_video`). Kinds (the config's `video.datasets.<name>.kind`):

- `msrvtt`: MSR-VTT 1k-A test ("JSFusion" split, 1,000 video-caption pairs), as CLIP4Clip
  distributes it: `MSRVTT_JSFUSION_test.csv` (columns `key, vid_key, video_id, sentence`) at
  `root/` or `root/msrvtt_data/`, videos `<video_id>.mp4` (or .webm) in one of `videos/all/`,
  `MSRVTT_Videos/`, `videos/`, `MSRVTT/videos/all/` (or `video_dir`).
- `msvd`: MSVD test (670 videos, every caption a query): `test_list.txt` (one id per line) and
  `raw-captions.pkl` (id -> list of token lists) at `root/` or `root/msvd_data/`, videos
  `<id>.avi` (or .mp4) in `YouTubeClips/`, `videos/` (or `video_dir`). When the list names
  `vid<N>` ids, `youtube_mapping.txt` (`<youtube clip name> vid<N>` per line) maps them to
  file names.
- `didemo`: DiDeMo test, one paragraph per video (its descriptions joined in file order, as
  CLIP4Clip): `test_list.txt` and `test_data.json` (`[{video, description, times, ...}]`) at
  `root/` or `root/didemo_data/`, videos named by their id (ids carry their extension; an id
  without one is looked up as `<id>.mp4`) in `videos/`, `DiDeMo_Videos/` (or `video_dir`).
- `manifest` (and `conceptworld`, which points at the generated clips): `manifest.parquet` with
  `video_id`, `path` (relative to the folder) and `caption`, one row per caption.

A missing annotation file names the file and the layout; missing video files stop the job (the
first few named) unless `on_bad_video: skip`, which drops them (and their captions) and counts
them, as it does for videos that cannot be decoded. `raw-captions.pkl` is read with an unpickler
that refuses every class, so the file can only hold plain dicts, lists and strings.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clipconcepts.video.decode import SAMPLING

log = logging.getLogger(__name__)

KINDS = ("msrvtt", "msvd", "didemo", "manifest", "conceptworld")
# Frames per video by kind (the CCS authors' 12 for MSR-VTT and MSVD, 32 for DiDeMo).
DEFAULT_FRAMES = {"msrvtt": 12, "msvd": 12, "didemo": 32, "manifest": 12, "conceptworld": 8}
VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mkv", ".mov", ".m4v", ".mpg", ".3gp")
HOW_TO = {
    "msrvtt": "CLIP4Clip's msrvtt_data.zip (MSRVTT_JSFUSION_test.csv) and the MSR-VTT videos "
    "(<video_id>.mp4 in videos/all/ or MSRVTT_Videos/)",
    "msvd": "CLIP4Clip's msvd_data.zip (test_list.txt, raw-captions.pkl) and the MSVD clips "
    "(YouTubeClips/<id>.avi)",
    "didemo": "CLIP4Clip's DiDeMo annotations (test_list.txt, test_data.json) and the DiDeMo "
    "videos (videos/<id>)",
    "manifest": "a folder with manifest.parquet (video_id, path, caption) and the videos it lists",
    "conceptworld": "the concept-world clips (rule conceptworld_videos)",
}
_VIDEO_DIRS = {
    "msrvtt": ("videos/all", "MSRVTT_Videos", "videos", "MSRVTT/videos/all"),
    "msvd": ("YouTubeClips", "videos", "MSVD/YouTubeClips"),
    "didemo": ("videos", "DiDeMo_Videos", "didemo_videos"),
}
_ANNOTATION_DIRS = {"msrvtt": "msrvtt_data", "msvd": "msvd_data", "didemo": "didemo_data"}


class VideoDatasetNotFoundError(FileNotFoundError):
    """A video dataset that is not where the config says, with how to provide it."""


@dataclass
class VideoDataset:
    """Videos and captions of one retrieval test set, with the decoding knobs."""

    name: str
    kind: str
    root: Path
    video_ids: list[str]
    paths: list[Path]
    captions: list[str]
    caption_video: np.ndarray  # int64 [n_captions]: index into video_ids
    n_frames: int = 12
    sampling: str = "uniform"
    max_seconds: float | None = None
    on_bad_video: str = "fail"
    missing: list[str] = field(default_factory=list)  # ids whose file is absent (skip mode)

    def __post_init__(self) -> None:
        self.caption_video = np.asarray(self.caption_video, dtype=np.int64)
        if len(self.video_ids) != len(self.paths):
            raise ValueError("video_ids and paths differ in length")
        if len(self.captions) != len(self.caption_video):
            raise ValueError("captions and caption_video differ in length")
        if len(self.caption_video) and (
            self.caption_video.min() < 0 or self.caption_video.max() >= len(self.video_ids)
        ):
            raise ValueError("caption_video points outside the videos")

    @property
    def n_videos(self) -> int:
        return len(self.video_ids)

    def __repr__(self) -> str:
        return (
            f"VideoDataset({self.name}: {self.kind}, {self.n_videos} videos, "
            f"{len(self.captions)} captions, {self.n_frames} frames, {self.sampling})"
        )


def _not_found(kind: str, root: Path, looked_for: str, why: str = "") -> VideoDatasetNotFoundError:
    reason = f" ({why})" if why else ""
    return VideoDatasetNotFoundError(
        f"video dataset '{kind}' not found: looked for {looked_for} under {root}{reason}. "
        f"Provide {HOW_TO.get(kind, 'the videos')} in that folder "
        "(the config's video.datasets.<name>.root)."
    )


def _annotation(kind: str, root: Path, name: str) -> Path:
    for folder in (root, root / _ANNOTATION_DIRS.get(kind, "")):
        if (folder / name).is_file():
            return folder / name
    raise _not_found(kind, root, f"{name} (in the folder or its {_ANNOTATION_DIRS[kind]}/)")


def _video_dir(kind: str, root: Path, video_dir: str | None) -> Path:
    candidates = [video_dir] if video_dir else _VIDEO_DIRS[kind]
    for name in candidates:
        if (root / name).is_dir():
            return root / name
    raise _not_found(kind, root, "a video folder: " + " or ".join(f"{c}/" for c in candidates))


def _find_file(folder: Path, name: str) -> Path | None:
    """`folder/name` if it exists (ids may carry their extension), else `folder/name.<ext>`."""
    exact = folder / name
    if exact.is_file():
        return exact
    for suffix in VIDEO_SUFFIXES:
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    stem = Path(name).stem
    if stem != name:
        for suffix in VIDEO_SUFFIXES:
            candidate = folder / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _read_list(path: Path) -> list[str]:
    ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [i for i in ids if i]


class _PlainUnpickler(pickle.Unpickler):
    """Plain containers only: any class or function in the pickle is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing {module}.{name}: captions must be plain data")


def _read_caption_pickle(path: Path) -> dict:
    try:
        data = _PlainUnpickler(io.BytesIO(path.read_bytes())).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise ValueError(f"{path}: not a pickle of plain captions ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict video id -> captions, got {type(data).__name__}")
    return data


def _caption_text(caption) -> str:
    """A caption stored as a string or as a list of tokens (MSVD's raw-captions.pkl)."""
    if isinstance(caption, str):
        return caption.strip()
    return " ".join(str(token) for token in caption).strip()


# ---------------------------------------------------------------------------- readers
def _msrvtt(root: Path, video_dir: str | None):
    table = _annotation("msrvtt", root, "MSRVTT_JSFUSION_test.csv")
    with table.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"video_id", "sentence"} <= set(rows[0]):
        raise ValueError(f"{table}: expected columns video_id and sentence (CLIP4Clip's CSV)")
    folder = _video_dir("msrvtt", root, video_dir)
    ids = list(dict.fromkeys(row["video_id"] for row in rows))
    index = {video_id: i for i, video_id in enumerate(ids)}
    captions = [row["sentence"].strip() for row in rows]
    owners = [index[row["video_id"]] for row in rows]
    return ids, [_find_file(folder, v) for v in ids], captions, owners, folder


def _youtube_mapping(root: Path) -> dict[str, str]:
    """`vid<N>` -> YouTube clip name from youtube_mapping.txt, if present."""
    for folder in (root, root / "msvd_data"):
        path = folder / "youtube_mapping.txt"
        if path.is_file():
            pairs = [line.split() for line in path.read_text(encoding="utf-8").splitlines()]
            return {p[1]: p[0] for p in pairs if len(p) == 2}
    return {}


def _msvd(root: Path, video_dir: str | None):
    ids = _read_list(_annotation("msvd", root, "test_list.txt"))
    captions_by_id = _read_caption_pickle(_annotation("msvd", root, "raw-captions.pkl"))
    mapping = _youtube_mapping(root)
    folder = _video_dir("msvd", root, video_dir)
    captions, owners = [], []
    for i, video_id in enumerate(ids):
        found = captions_by_id.get(video_id, captions_by_id.get(mapping.get(video_id, "")))
        if not found:
            raise ValueError(f"raw-captions.pkl has no captions for test video {video_id!r}")
        for caption in found:
            captions.append(_caption_text(caption))
            owners.append(i)
    paths = [_find_file(folder, v) or _find_file(folder, mapping.get(v, v)) for v in ids]
    return ids, paths, captions, owners, folder


def _didemo(root: Path, video_dir: str | None):
    ids = _read_list(_annotation("didemo", root, "test_list.txt"))
    records = json.loads(_annotation("didemo", root, "test_data.json").read_text("utf-8"))
    wanted = set(ids)
    paragraphs: dict[str, list[str]] = {}
    for record in records:
        if record.get("video") in wanted:
            paragraphs.setdefault(record["video"], []).append(str(record["description"]).strip())
    without = [v for v in ids if v not in paragraphs]
    if without:
        log.warning("didemo: %d test videos have no description (dropped)", len(without))
    ids = [v for v in ids if v in paragraphs]
    folder = _video_dir("didemo", root, video_dir)
    captions = [" ".join(paragraphs[v]) for v in ids]
    return ids, [_find_file(folder, v) for v in ids], captions, list(range(len(ids))), folder


def _manifest(root: Path, kind: str):
    import polars as pl

    path = root / "manifest.parquet"
    if not path.is_file():
        raise _not_found(kind, root, "manifest.parquet (video_id, path, caption)")
    table = pl.read_parquet(path)
    missing = {"video_id", "path", "caption"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: lacks columns {sorted(missing)}")
    ids = list(dict.fromkeys(table["video_id"].to_list()))
    index = {video_id: i for i, video_id in enumerate(ids)}
    first_path = dict(zip(table["video_id"].to_list(), table["path"].to_list(), strict=True))
    paths = [root / first_path[v] for v in ids]
    paths = [p if p.is_file() else None for p in paths]
    owners = [index[v] for v in table["video_id"].to_list()]
    return ids, paths, table["caption"].to_list(), owners, root


def build_video_dataset(
    name: str,
    kind: str,
    root: str | Path,
    *,
    n_frames: int | None = None,
    sampling: str = "uniform",
    max_seconds: float | None = None,
    on_bad_video: str = "fail",
    video_dir: str | None = None,
) -> VideoDataset:
    """Read a test set's annotations and locate its videos (nothing is decoded here)."""
    if kind not in KINDS:
        raise ValueError(
            f"video dataset {name!r}: unknown kind {kind!r}; known: {', '.join(KINDS)}"
        )
    if on_bad_video not in ("fail", "skip"):
        raise ValueError(f"video dataset {name!r}: on_bad_video must be 'fail' or 'skip'")
    if sampling not in SAMPLING:
        raise ValueError(f"video dataset {name!r}: sampling must be one of {', '.join(SAMPLING)}")
    root = Path(root)
    if not root.is_dir():
        raise _not_found(kind, root, "the dataset folder", "the folder does not exist")
    if kind in ("manifest", "conceptworld"):
        ids, paths, captions, owners, folder = _manifest(root, kind)
    else:
        reader = {"msrvtt": _msrvtt, "msvd": _msvd, "didemo": _didemo}[kind]
        ids, paths, captions, owners, folder = reader(root, video_dir)
    absent = [v for v, p in zip(ids, paths, strict=True) if p is None]
    if absent and on_bad_video == "fail":
        shown = ", ".join(absent[:5]) + (", ..." if len(absent) > 5 else "")
        raise _not_found(
            kind, folder, f"{len(absent)} of {len(ids)} videos ({shown})", "files missing"
        )
    if absent:
        log.warning("%s: %d of %d video files missing (skipped)", name, len(absent), len(ids))
        keep = [i for i, p in enumerate(paths) if p is not None]
        remap = {old: new for new, old in enumerate(keep)}
        kept = [(c, remap[o]) for c, o in zip(captions, owners, strict=True) if o in remap]
        ids, paths = [ids[i] for i in keep], [paths[i] for i in keep]
        captions, owners = [c for c, _ in kept], [o for _, o in kept]
    return VideoDataset(
        name=name,
        kind=kind,
        root=root,
        video_ids=ids,
        paths=paths,
        captions=captions,
        caption_video=np.asarray(owners, dtype=np.int64),
        n_frames=n_frames or DEFAULT_FRAMES[kind],
        sampling=sampling,
        max_seconds=max_seconds,
        on_bad_video=on_bad_video,
        missing=absent,
    )


_SPEC_KEYS = {"kind", "root", "n_frames", "sampling", "max_seconds", "on_bad_video", "video_dir"}


def video_dataset_from_spec(name: str, spec: dict) -> VideoDataset:
    """`build_video_dataset` from a config entry (`video.datasets.<name>`, defaults merged)."""
    unknown = set(spec) - _SPEC_KEYS
    if unknown:
        raise ValueError(f"video.datasets.{name}: unknown keys {sorted(unknown)}")
    if not spec.get("root"):
        raise ValueError(f"video.datasets.{name}: root must be set")
    options = {k: v for k, v in spec.items() if k not in ("kind", "root") and v is not None}
    return build_video_dataset(name, spec["kind"], spec["root"], **options)
