"""Zero-shot kind `imagenet` (ImageNet-1k val, src/clipconcepts/data/imagenet.py): the release
tars through torchvision, sorted `val/<wnid>/` or `<wnid>/` folders, standard 0..999 labels
whatever folders exist, foreign WordNet ids refused, clear errors, and the preflight check.

Every image encodes its label (tests/fixtures_datasets.py), so label-image alignment is checked
through the loader. The release fake is torchvision's test-suite way: the real file names and
devkit structure (`data/meta.mat` read by scipy, `data/ILSVRC2012_validation_ground_truth.txt`)
with a few classes, and torchvision's md5s patched to those of the files written."""

from __future__ import annotations

import hashlib
import logging
import tarfile
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES, OPENAI_IMAGENET_TEMPLATES

from clipconcepts import preflight
from clipconcepts.data.imagenet import imagenet_val_folder, imagenet_wnids
from clipconcepts.data.zeroshot import (
    ZEROSHOT_KINDS,
    DatasetNotFoundError,
    build_zeroshot_dataset,
    class_keys_of,
    classnames_of,
    resolve_templates,
    template_sets,
)
from fixtures_datasets import IMAGENET_WNIDS, decode_label, to_tensor, write_label_image

# first, middle and last class: labels must be their index among all 1,000, not 0..2
LABELS = (0, 417, 999)
WNIDS = [IMAGENET_WNIDS[i] for i in LABELS]
MUTUAL8 = [
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
    "a photo of a {}.",
]


def _sorted_val(folder: Path, labels=LABELS) -> list[str]:
    """`folder/<wnid>/` with two images per class (a JPEG and a PNG); returns the ids."""
    ids = []
    for k, label in enumerate(labels):
        wnid = IMAGENET_WNIDS[label]
        for name in (f"ILSVRC2012_val_{k + 1:08d}.JPEG", f"ILSVRC2012_val_{k + 11:08d}.png"):
            write_label_image(folder / wnid / name, label)
            ids.append(f"{wnid}/{name}")
    return ids


def _check(ds, ids: list[str], folder: Path) -> None:
    assert ds.name == "imagenet" and ds.records is not None and ds.torch_dataset is None
    assert ds.records.image_ids == ids
    assert all(p.is_file() and p.parent.parent == folder for p in ds.records.paths)
    assert ds.records.labels.tolist() == [label for label in LABELS for _ in range(2)]
    assert ds.classnames == list(IMAGENET_CLASSNAMES) and ds.n_classes == 1000
    assert ds.root == str(folder)
    seen = []
    for images, batch_ids, labels, n_skipped in ds.loader(batch_size=4):
        assert n_skipped == 0
        assert [decode_label(im) for im in images] == labels.tolist()
        seen += list(batch_ids)
    assert seen == ids


# ---------------------------------------------------------------------------- names, templates
WNIDS_SHA256 = "70002b0ff5de60a3a17a82dbfcff291931f96225ddf941ad2e182fc39e183d15"


def test_shipped_wnids_classnames_and_templates():
    # the package's one copy of the sorted list: 1,000 ids, and the released list's digest
    shipped = resources.files("clipconcepts.data").joinpath("imagenet_wnids.txt").read_bytes()
    assert hashlib.sha256(shipped).hexdigest() == WNIDS_SHA256
    assert list(imagenet_wnids()) == IMAGENET_WNIDS and len(IMAGENET_WNIDS) == 1000
    assert class_keys_of("imagenet") == IMAGENET_WNIDS
    assert classnames_of("imagenet") == list(IMAGENET_CLASSNAMES)
    assert "imagenet" in ZEROSHOT_KINDS
    assert template_sets()["mutual8"] == MUTUAL8  # the mutual-knowledge paper's Table 8
    assert resolve_templates("imagenet", "ccs") == MUTUAL8
    assert resolve_templates("imagenet", "openai") == [t("{}") for t in OPENAI_IMAGENET_TEMPLATES]
    assert resolve_templates("imagenet-a", "ccs") == resolve_templates("imagenet", "imagenet80")


# ---------------------------------------------------------------------------- sorted folders
def test_wnid_folders_in_root_keep_standard_labels(tmp_path, caplog):
    ids = _sorted_val(tmp_path)
    (tmp_path / "LOC_synset_mapping.txt").write_text("not a class\n")
    (tmp_path / "notes").mkdir()  # a folder that is not a WordNet id is not a class
    with caplog.at_level(logging.WARNING):
        ds = build_zeroshot_dataset("imagenet", tmp_path, to_tensor)
    _check(ds, ids, tmp_path)
    assert ds.templates == MUTUAL8 and ds.extra["wnids"] == IMAGENET_WNIDS
    assert "3 of 1000 class folders" in caplog.text


def test_val_nesting(tmp_path):
    ids = _sorted_val(tmp_path / "val")
    (tmp_path / "train").mkdir()
    ds = build_zeroshot_dataset("imagenet", tmp_path, to_tensor, templates="openai")
    _check(ds, ids, tmp_path / "val")
    assert len(ds.templates) == 80


def test_foreign_wnid_folder_is_refused_by_name(tmp_path):
    _sorted_val(tmp_path / "val")
    write_label_image(tmp_path / "val" / "n99999999" / "x.JPEG", 0)
    with pytest.raises(ValueError, match=r"not ImageNet-1k val.*val/n99999999"):
        build_zeroshot_dataset("imagenet", tmp_path, to_tensor)


def test_imagenet_a_root_is_a_subset_with_a_hint(tmp_path, caplog):
    for label, wnid in enumerate(class_keys_of("imagenet-a")):
        write_label_image(tmp_path / wnid / "0.jpg", label)
    with caplog.at_level(logging.WARNING):
        ds = build_zeroshot_dataset("imagenet", tmp_path, to_tensor)
    assert len(ds) == 200 and ds.n_classes == 1000
    assert "is this kind imagenet-a?" in caplog.text


def test_unsorted_val_images_are_refused(tmp_path):
    _sorted_val(tmp_path / "val")
    write_label_image(tmp_path / "val" / "ILSVRC2012_val_00000100.JPEG", 0)  # a move cut short
    with pytest.raises(ValueError, match="not sorted into <wnid>/ folders"):
        build_zeroshot_dataset("imagenet", tmp_path, to_tensor)
    flat = tmp_path / "flat"
    write_label_image(flat / "ILSVRC2012_val_00000001.JPEG", 0)
    with pytest.raises(ValueError, match="valprep.sh"):
        build_zeroshot_dataset("imagenet", flat, to_tensor)


def test_missing_or_empty_root_says_what_to_put_there(tmp_path):
    for root in (tmp_path / "nowhere", tmp_path):
        with pytest.raises(DatasetNotFoundError) as err:
            build_zeroshot_dataset("imagenet", root, to_tensor)
        message = str(err.value)
        assert str(root) in message
        assert "ILSVRC2012_img_val.tar" in message and "ILSVRC2012_devkit_t12.tar.gz" in message
        assert "val/<wnid>/" in message and "download: true" not in message


def test_split_and_backend_choices(tmp_path):
    _sorted_val(tmp_path)
    with pytest.raises(ValueError, match="ImageNet-1k val only"):
        build_zeroshot_dataset("imagenet", tmp_path, to_tensor, split="train")
    assert len(build_zeroshot_dataset("imagenet", tmp_path, to_tensor, split="val")) == 6
    with pytest.raises(ValueError, match="clip_benchmark' does not build"):
        build_zeroshot_dataset("imagenet", tmp_path, to_tensor, backend="clip_benchmark")


# ---------------------------------------------------------------------------- release tars
def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _meta_mat(path: Path, ids: dict[str, int]) -> None:
    """`synsets` as the devkit's meta.mat holds it: leaves (num_children 0) for the classes and
    one inner synset, which torchvision must drop."""
    fields = [
        "ILSVRC2012_ID",
        "WNID",
        "words",
        "gloss",
        "num_children",
        "children",
        "wordnet_height",
        "num_train_images",
    ]
    rows = [
        (ids[w], w, f"{IMAGENET_CLASSNAMES[IMAGENET_WNIDS.index(w)]}, fake", "g", 0, [], 0, 1300)
        for w in WNIDS
    ]
    rows.append((1001, "n00001740", "entity", "g", 3, np.array(sorted(ids.values())), 19, 0))
    synsets = np.empty(len(rows), dtype=[(f, object) for f in fields])
    for i, row in enumerate(rows):
        synsets[i] = row
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"synsets": synsets})


def _release(root: Path, monkeypatch) -> None:
    """ILSVRC2012_img_val.tar (flat images, shuffled classes) + ILSVRC2012_devkit_t12.tar.gz whose
    ILSVRC2012_IDs are not in sorted-wnid order, with torchvision's md5s patched to them."""
    import torchvision.datasets.imagenet as tv_imagenet

    root.mkdir(parents=True, exist_ok=True)
    work = root.parent / "work"
    ids = {wnid: 3 - k for k, wnid in enumerate(WNIDS)}  # devkit ids: 3, 2, 1
    _meta_mat(work / "ILSVRC2012_devkit_t12" / "data" / "meta.mat", ids)
    order = [2, 0, 1, 2, 1, 0]  # image n's class: each class twice, unsorted
    truth = "".join(f"{ids[WNIDS[k]]}\n" for k in order)
    (work / "ILSVRC2012_devkit_t12" / "data" / "ILSVRC2012_validation_ground_truth.txt").write_text(
        truth
    )
    with tarfile.open(root / "ILSVRC2012_devkit_t12.tar.gz", "w:gz") as tar:
        tar.add(work / "ILSVRC2012_devkit_t12", arcname="ILSVRC2012_devkit_t12")
    with tarfile.open(root / "ILSVRC2012_img_val.tar", "w") as tar:
        for n, k in enumerate(order):
            name = f"ILSVRC2012_val_{n + 1:08d}.JPEG"
            write_label_image(work / "val" / name, LABELS[k])
            tar.add(work / "val" / name, arcname=name)
    for key, name in (
        ("val", "ILSVRC2012_img_val.tar"),
        ("devkit", "ILSVRC2012_devkit_t12.tar.gz"),
    ):
        monkeypatch.setitem(tv_imagenet.ARCHIVE_META, key, (name, _md5(root / name)))


def test_release_tars_are_prepared_by_torchvision_then_read_as_folders(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    root = tmp_path / "ilsvrc"
    _release(root, monkeypatch)
    ds = build_zeroshot_dataset("imagenet", root, to_tensor)
    val = root / "val"
    assert (root / "meta.bin").is_file() and sorted(p.name for p in val.iterdir()) == WNIDS
    # image n went to the class the ground truth names (order 2, 0, 1, 2, 1, 0)
    ids = [
        f"{WNIDS[0]}/ILSVRC2012_val_00000002.JPEG",
        f"{WNIDS[0]}/ILSVRC2012_val_00000006.JPEG",
        f"{WNIDS[1]}/ILSVRC2012_val_00000003.JPEG",
        f"{WNIDS[1]}/ILSVRC2012_val_00000005.JPEG",
        f"{WNIDS[2]}/ILSVRC2012_val_00000001.JPEG",
        f"{WNIDS[2]}/ILSVRC2012_val_00000004.JPEG",
    ]
    _check(ds, ids, val)

    def no_torchvision(*args, **kwargs):
        raise AssertionError("the prepared val/ must be read without torchvision")

    monkeypatch.setattr(tvd, "ImageNet", no_torchvision)
    assert build_zeroshot_dataset("imagenet", root, to_tensor).records.image_ids == ids


def test_release_without_devkit_or_with_a_bad_tar(tmp_path, monkeypatch):
    root = tmp_path / "ilsvrc"
    _release(root, monkeypatch)
    (root / "ILSVRC2012_devkit_t12.tar.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match="ILSVRC2012_devkit_t12.tar.gz missing"):
        build_zeroshot_dataset("imagenet", root, to_tensor)
    _release(root, monkeypatch)
    with open(root / "ILSVRC2012_img_val.tar", "ab") as tar:
        tar.write(b"x")  # md5 no longer matches: torchvision's error is passed on
    with pytest.raises(DatasetNotFoundError, match="ILSVRC2012_img_val.tar.*corrupted"):
        imagenet_val_folder(root)


# ---------------------------------------------------------------------------- preflight
def test_preflight_knows_imagenet(tmp_path):
    def problem(root):
        return preflight.check_root("datasets.inet.root", "imagenet", str(root))

    release = tmp_path / "release"
    release.mkdir()
    (release / "ILSVRC2012_img_val.tar").touch()
    assert "ILSVRC2012_devkit_t12.tar.gz" in problem(release)
    (release / "ILSVRC2012_devkit_t12.tar.gz").touch()
    assert problem(release) is None
    _sorted_val(tmp_path / "sorted" / "val")
    _sorted_val(tmp_path / "flat")
    assert problem(tmp_path / "sorted") is None and problem(tmp_path / "flat") is None
    (tmp_path / "flat" / "n99999999").mkdir()
    assert "n99999999" in problem(tmp_path / "flat")
    (tmp_path / "other" / "images").mkdir(parents=True)
    assert "neither" in problem(tmp_path / "other")
    config = {
        "mutual": {"datasets": {"inet": {"kind": "imagenet", "root": str(tmp_path / "flat")}}}
    }
    problems, _ = preflight.check_roots(config)
    assert len(problems) == 1 and problems[0].startswith("mutual.datasets.inet.root")
