"""ImageNet-1k validation (50,000 images, 1,000 classes of 50) as zero-shot dataset kind `imagenet`.

Layouts accepted under `root` (the config's `datasets.<name>.root`):

- the official release, `ILSVRC2012_img_val.tar` + `ILSVRC2012_devkit_t12.tar.gz`: on first use
  torchvision's `ImageNet(root, split="val")` checks their md5, parses the devkit (scipy) into
  `root/meta.bin` and extracts and sorts the images into `root/val/<wnid>/`, so `root` must be
  writable (a lock file there keeps jobs that start together from preparing it twice); from
  then on `root/val/` is read as below, without torchvision;
- folders already sorted by WordNet id, as valprep.sh leaves them: `root/val/<wnid>/*.JPEG` or
  `root/<wnid>/*.JPEG` (`val/` wins when both hold class folders).

Labels are a wnid's index in the sorted list of the 1,000 ILSVRC-2012 wnids, shipped as
`imagenet_wnids.txt`, whatever folders are present (the order torchvision's ImageFolder gives a
complete `val/`, and the order of open_clip's `IMAGENET_CLASSNAMES`, the class names, read from
open_clip at run time). A folder with WordNet ids outside the 1,000 is refused naming them;
missing classes are a warning and stay in the classifier. Image ids are `<wnid>/<file>`.
"""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path

import numpy as np

from clipconcepts.data.images import ImageRecords, class_folders, is_image_file
from clipconcepts.data.zeroshot_common import (
    ZeroShotDataset,
    class_keys_of,
    imagenet_classnames,
    imagenet_wnids,
    not_found,
    resolve_templates,
)

log = logging.getLogger(__name__)

KIND = "imagenet"
VAL_TAR = "ILSVRC2012_img_val.tar"
DEVKIT = "ILSVRC2012_devkit_t12.tar.gz"
LOOKED_FOR = f"{VAL_TAR} + {DEVKIT}, val/<wnid>/ or <wnid>/ folders (e.g. n01440764/)"
_WNID = re.compile(r"n\d{8}")
_VAL_FILE = re.compile(r"ILSVRC2012_val_\d{8}\.JPEG", re.IGNORECASE)
_LOCK = ".clipconcepts-imagenet.lock"


def _wnid_folders(folder: Path) -> list[str]:
    return [f for f in class_folders(folder) if _WNID.fullmatch(f)] if folder.is_dir() else []


def _unsorted(folder: Path) -> list[Path]:
    """Validation images lying directly in `folder`, not yet moved into `<wnid>/` folders."""
    return [p for p in folder.iterdir() if p.is_file() and _VAL_FILE.fullmatch(p.name)]


def _refuse_unsorted(folder: Path, n: int, release: bool) -> ValueError:
    redo = (
        f"delete {folder} and build again, so torchvision prepares it anew from the tars"
        if release
        else "finish sorting them into <wnid>/ folders (valprep.sh)"
    )
    return ValueError(
        f"{folder} holds {n} ILSVRC2012_val_*.JPEG images not sorted into <wnid>/ folders: an "
        f"interrupted preparation or extraction; {redo}"
    )


@contextlib.contextmanager
def _lock(root: Path):
    """An exclusive lock on `root/.clipconcepts-imagenet.lock`; none where root is read-only."""
    try:
        import fcntl

        handle = open(root / _LOCK, "a")  # noqa: SIM115 - held for the block
    except (ImportError, OSError):
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prepare_release(root: Path) -> Path:
    """`root/val/<wnid>/` from the release tars, through torchvision's ImageNet (once)."""
    val = root / "val"
    with _lock(root):
        if _wnid_folders(val) and not _unsorted(val):
            return val  # another job prepared it while this one waited
        if val.is_dir() and _unsorted(val):
            raise _refuse_unsorted(val, len(_unsorted(val)), release=True)
        missing = [name for name in (VAL_TAR, DEVKIT) if not (root / name).is_file()]
        if missing:
            raise not_found(KIND, root, LOOKED_FOR, f"{' and '.join(missing)} missing")
        log.info(
            "imagenet: preparing %s from %s (md5 check, devkit, extracting and sorting 50,000 "
            "images): once, a few minutes",
            val,
            VAL_TAR,
        )
        import torchvision.datasets as tvd

        try:
            tvd.ImageNet(str(root), split="val")
        except (RuntimeError, OSError) as err:
            why = str(err).splitlines()[0] if str(err) else type(err).__name__
            if isinstance(err, PermissionError):
                why += f"; torchvision writes meta.bin and val/ into {root}, which must be writable"
            raise not_found(KIND, root, LOOKED_FOR, why) from err
    return val


def imagenet_val_folder(root: Path) -> Path:
    """The checked folder that holds the `<wnid>/` class folders (preparing it from the release
    tars when that is what `root` holds)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise not_found(KIND, root, LOOKED_FOR, "the folder does not exist")
    val = root / "val"
    release = any((root / name).is_file() for name in (VAL_TAR, DEVKIT))
    if _wnid_folders(val):
        folder = val
    elif _wnid_folders(root):
        folder = root
    elif release:
        folder = _prepare_release(root)
    elif val.is_dir() and _unsorted(val):
        raise _refuse_unsorted(val, len(_unsorted(val)), release=False)
    elif _unsorted(root):
        raise _refuse_unsorted(root, len(_unsorted(root)), release=False)
    else:
        raise not_found(KIND, root, LOOKED_FOR)
    unsorted = _unsorted(folder)
    if unsorted:
        raise _refuse_unsorted(folder, len(unsorted), release=release and folder == val)
    known = set(imagenet_wnids())
    foreign = [f for f in _wnid_folders(folder) if f not in known]
    if foreign:
        raise ValueError(
            f"{folder} is not ImageNet-1k val: {len(foreign)} of its WordNet-id folders are not "
            f"among the 1,000 ILSVRC-2012 classes ({', '.join(str(folder / f) for f in foreign[:3])}"
            f"{', ...' if len(foreign) > 3 else ''}); point the config's datasets.<name>.root at "
            "ImageNet-1k val (ImageNet-21k and other WordNet sets are not this kind)"
        )
    return folder


def _warn_missing(folder: Path, present: set[str]) -> None:
    hint = ""
    for other in ("imagenet-a", "imagenet-r"):
        if present == set(class_keys_of(other)):
            hint = f" (exactly {other}'s 200 classes: is this kind {other}?)"
    log.warning(
        "imagenet: %d of 1000 class folders present under %s%s; the classifier keeps all 1000 "
        "classes",
        len(present),
        folder,
        hint,
    )


def build_imagenet(kind, root, transform, *, download, templates, split, family) -> ZeroShotDataset:
    """ImageNet-1k val as image records (`<wnid>/<file>`, standard 0..999 labels)."""
    if split not in (None, "val", "validation"):
        raise ValueError(
            f"zero-shot dataset '{kind}' reads ImageNet-1k val only (the test labels are not "
            f"public, train is not a zero-shot test set), got split {split!r}"
        )
    if download:
        log.warning("imagenet cannot be downloaded: reading what is under %s", root)
    folder = imagenet_val_folder(Path(root))
    wnids = imagenet_wnids()
    present = set(_wnid_folders(folder))
    if len(present) < len(wnids):
        _warn_missing(folder, present)
    ids, paths, labels = [], [], []
    for label, wnid in enumerate(wnids):
        if wnid not in present:
            continue
        for path in sorted((folder / wnid).iterdir()):
            if is_image_file(path):
                ids.append(f"{wnid}/{path.name}")
                paths.append(path)
                labels.append(label)
    if not ids:
        raise not_found(kind, folder, "images in its <wnid>/ folders", "they are empty")
    classnames = imagenet_classnames()
    records = ImageRecords(ids, paths, np.asarray(labels, np.int64), classnames, str(folder))
    return ZeroShotDataset(
        name=kind,
        classnames=classnames,
        templates=resolve_templates(kind, templates),
        transform=transform,
        records=records,
        root=str(folder),
        extra={"wnids": list(wnids)},
    )
