"""Every dataset kind config/config.yaml names, read by our loaders from fakes in its release
layout (tests/fixtures_datasets.py): class names in order, counts, and that each label a loader
yields belongs to its image (each fake image encodes its label)."""

from __future__ import annotations

import json
import sys
import types

import polars as pl
import pytest
from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

from clipconcepts import cli
from clipconcepts.data import BadImageError, build_image_records, image_loader
from clipconcepts.data.zeroshot import (
    DatasetNotFoundError,
    build_zeroshot_dataset,
    class_keys_of,
    classnames_of,
)
from clipconcepts.steps import build_dataset
from fixtures_datasets import (
    CIFAR10_CLASSES,
    CIFAR100_CLASSES,
    DATA,
    FOOD101_CLASSES,
    IMAGENET_WNIDS,
    PETS_STEMS,
    decode_label,
    make_cifar,
    make_country211,
    make_food101,
    make_imagenet_ar,
    make_imagenet_val,
    make_pets,
    to_tensor,
    write_label_image,
)


def _read_all(loader) -> tuple[list[int], list[int], int]:
    """(labels, labels decoded from the images, images skipped) over a loader's batches,
    `(images, ids, labels, n_skipped)` or `(images, labels)`."""
    labels, decoded, skipped = [], [], 0
    for batch in loader:
        images, batch_labels = batch[0], batch[-2 if len(batch) == 4 else 1]
        skipped += batch[3] if len(batch) == 4 else 0
        if images is None:
            continue
        labels += batch_labels.tolist()
        decoded += [decode_label(image) for image in images]
    return labels, decoded, skipped


def _aligned_labels(dataset) -> list[int]:
    labels, decoded, skipped = _read_all(dataset.loader(batch_size=64))
    assert skipped == 0
    assert labels == decoded, "a label does not belong to its image"
    return labels


def _spaced(names: list[str]) -> list[str]:
    return [name.replace("_", " ") for name in names]


# ---------------------------------------------------------------------------- CIFAR
def test_cifar10_release_layout(tmp_path, monkeypatch):
    test_labels = make_cifar(tmp_path, "cifar10", monkeypatch, per_class=3)
    ds = build_zeroshot_dataset("cifar10", tmp_path, to_tensor)
    assert ds.classnames == _spaced(CIFAR10_CLASSES)
    assert len(ds) == 30
    assert _aligned_labels(ds) == test_labels


@pytest.mark.parametrize(
    "kind, keep", [("cifar10-objects", (0, 1, 8, 9)), ("cifar10-animals", (2, 3, 4, 5, 6, 7))]
)
def test_cifar10_subsets_relabel_in_their_class_order(tmp_path, monkeypatch, kind, keep):
    test_labels = make_cifar(tmp_path, "cifar10", monkeypatch, per_class=3)
    ds = build_zeroshot_dataset(kind, tmp_path, to_tensor)
    assert ds.classnames == [CIFAR10_CLASSES[i] for i in keep]
    labels, decoded, _ = _read_all(ds.loader(batch_size=8))
    assert len(labels) == len(ds) == 3 * len(keep)
    assert decoded == [label for label in test_labels if label in keep]  # CIFAR-10 labels
    assert [ds.classnames[i] for i in labels] == [CIFAR10_CLASSES[i] for i in decoded]


def test_cifar100_alone_is_read_as_cifar100(tmp_path, monkeypatch):
    """Only cifar-100-python/ under root: once failed naming cifar-10-batches-py/."""
    test_labels = make_cifar(tmp_path, "cifar100", monkeypatch)
    ds = build_zeroshot_dataset("cifar100", tmp_path, to_tensor)
    assert ds.classnames == _spaced(CIFAR100_CLASSES)
    assert ds.classnames[1] == "aquarium fish" and ds.classnames[99] == "worm"
    assert len(ds) == 200
    assert _aligned_labels(ds) == test_labels


def test_cifar100_beside_cifar10_reads_cifar100(tmp_path, monkeypatch):
    """Both CIFAR folders under one root: once scored CIFAR-10's images against CIFAR-100's
    100 names."""
    cifar10_labels = make_cifar(tmp_path, "cifar10", monkeypatch, per_class=3)
    cifar100_labels = make_cifar(tmp_path, "cifar100", monkeypatch, per_class=2)
    ds = build_zeroshot_dataset("cifar100", tmp_path, to_tensor)
    assert ds.n_classes == 100 and len(ds) == 200
    assert _aligned_labels(ds) == cifar100_labels
    assert _aligned_labels(build_zeroshot_dataset("cifar10", tmp_path, to_tensor)) == cifar10_labels


def test_cifar_checksums_are_checked(tmp_path, monkeypatch):
    """The fixtures patch torchvision's md5 lists, not its check: a changed batch still fails."""
    make_cifar(tmp_path, "cifar100", monkeypatch)
    with (tmp_path / "cifar-100-python" / "test").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(DatasetNotFoundError, match="cifar-100-python"):
        build_zeroshot_dataset("cifar100", tmp_path, to_tensor)


# ---------------------------------------------------------------------------- Food-101, Country-211, Pets
def test_food101_release_layout(tmp_path):
    test_labels = make_food101(tmp_path)
    ds = build_zeroshot_dataset("food101", tmp_path, to_tensor)
    assert ds.classnames == _spaced(FOOD101_CLASSES)
    assert len(ds) == 101
    assert _aligned_labels(ds) == test_labels


def test_country211_release_layout(tmp_path):
    codes = class_keys_of("country211")
    test_labels = make_country211(tmp_path, codes)
    ds = build_zeroshot_dataset("country211", tmp_path, to_tensor)
    assert ds.n_classes == 211 and len(ds) == 211
    labels = _aligned_labels(ds)
    assert labels == test_labels
    by_code = {codes[label]: ds.classnames[label] for label in labels}
    assert by_code["JP"] == "Japan" and by_code["XK"] == "Kosovo" and by_code["ZW"] == "Zimbabwe"


def test_pets_release_layout(tmp_path):
    test_labels = make_pets(tmp_path)
    ds = build_zeroshot_dataset("pets", tmp_path, to_tensor)
    assert ds.classnames == [" ".join(w.title() for w in s.split("_")) for s in PETS_STEMS]
    assert len(ds) == 74
    assert _aligned_labels(ds) == test_labels  # test.txt is shuffled: labels come from it


# ---------------------------------------------------------------------------- ImageNet-A / -R
def _imagenet_names(wnids: list[str]) -> list[str]:
    return [IMAGENET_CLASSNAMES[IMAGENET_WNIDS.index(w)] for w in wnids]


@pytest.mark.parametrize("kind", ["imagenet-a", "imagenet-r"])
def test_imagenet_ar_as_the_tar_extracts_and_its_inner_folder(tmp_path, kind):
    """`root/imagenet-a/<wnid>/` (the tar's layout) once gave 'not found'."""
    wnids = class_keys_of(kind)
    labels = make_imagenet_ar(tmp_path, kind, wnids)
    for root in (tmp_path, tmp_path / kind):
        ds = build_zeroshot_dataset(kind, root, to_tensor)
        assert ds.root == str(tmp_path / kind)
        assert ds.classnames == _imagenet_names(wnids)  # OpenAI's names, by standard index
        assert ds.n_classes == 200 and len(ds) == 201
        assert _aligned_labels(ds) == labels


def test_imagenet_ar_refuses_other_imagenet_folders(tmp_path):
    """ImageNet val's 1,000 class folders (or the other of A/R) once passed as ImageNet-A, with
    800 classes silently dropped."""
    make_imagenet_val(tmp_path / "val")
    with pytest.raises(ValueError, match=r"not imagenet-a: 800 of its 1000 WordNet-id folders"):
        build_zeroshot_dataset("imagenet-a", tmp_path / "val", to_tensor)
    make_imagenet_ar(tmp_path / "r", "imagenet-r", class_keys_of("imagenet-r"))
    with pytest.raises(ValueError, match="is not imagenet-a"):
        build_zeroshot_dataset("imagenet-a", tmp_path / "r" / "imagenet-r", to_tensor)
    with pytest.raises(DatasetNotFoundError, match="imagenet-a/ or its 200 <wnid> folders"):
        build_zeroshot_dataset("imagenet-a", tmp_path / "r", to_tensor)


# ---------------------------------------------------------------------------- probe: ImageNet val
def test_imagenet_val_probe_folder_ignores_hidden_folders(tmp_path):
    """A `.ipynb_checkpoints/` (with an image in it) once became class 0 and shifted every
    label by one."""
    labels = make_imagenet_val(tmp_path)
    write_label_image(tmp_path / ".ipynb_checkpoints" / "ILSVRC2012_val_00000001.JPEG", 999)
    write_label_image(tmp_path / IMAGENET_WNIDS[0] / "._ILSVRC2012_val_00000002.JPEG", 5)
    records = build_image_records("imagefolder", tmp_path)
    assert records.classnames == IMAGENET_WNIDS and len(records) == 1000
    got, decoded, _ = _read_all(image_loader(records, to_tensor, batch_size=250))
    assert got == decoded == labels
    assert IMAGENET_CLASSNAMES[got[0]] == "tench" and IMAGENET_CLASSNAMES[got[-1]] == "toilet paper"
    # the zero-shot `imagefolder` kind reads the same folders
    assert build_zeroshot_dataset("imagefolder", tmp_path).n_classes == 1000


@pytest.mark.parametrize("hidden", [False, True])
def test_flat_imagenet_val_says_how_to_arrange_it(tmp_path, hidden):
    make_imagenet_val(tmp_path, flat=True)
    if hidden:
        (tmp_path / ".ipynb_checkpoints").mkdir()
    with pytest.raises(FileNotFoundError, match=r"ImageNet validation.*valprep\.sh"):
        build_image_records("imagefolder", tmp_path)


def test_flat_image_folder_says_one_folder_per_class(tmp_path):
    write_label_image(tmp_path / "a.jpg", 1)
    with pytest.raises(FileNotFoundError, match=r"no class sub-folders: arrange them as"):
        build_image_records("imagefolder", tmp_path)


# ---------------------------------------------------------------------------- on_bad_image
def _cli_args(step: str, name: str, spec: dict, *extra: str):
    argv = [step, "--arch", "x", "--dataset", name, "--dataset-spec", json.dumps(spec)]
    required = {"classifier": ["--out", "o"]}.get(step, [])
    return cli.build_parser().parse_args(argv + required + list(extra))


def _corrupt_food101(root):
    make_food101(root)
    test_split = json.loads((root / "food-101" / "meta" / "test.json").read_text())
    bad = root / "food-101" / "images" / f"{test_split['baklava'][0]}.jpg"
    bad.write_bytes(b"not a jpeg")
    return bad


def test_prune_dataset_honours_on_bad_image(tmp_path):
    """`datasets.<name>.on_bad_image` reaches the loader of a torchvision-read set (once
    ignored: the first bad image stopped the job whatever the config said)."""
    bad = _corrupt_food101(tmp_path)
    spec = {"kind": "food101", "root": str(tmp_path)}
    ds = build_dataset(_cli_args("classifier", "food", {**spec, "on_bad_image": "skip"}), to_tensor)
    labels, decoded, skipped = _read_all(ds.loader(batch_size=16))
    assert skipped == 1 and len(labels) == 100 and labels == decoded
    assert FOOD101_CLASSES.index("baklava") not in labels
    ds = build_dataset(_cli_args("classifier", "food", spec), to_tensor)
    with pytest.raises(BadImageError, match=str(bad)):
        _read_all(ds.loader(batch_size=16))


def test_dataset_spec_errors_name_the_config_key(tmp_path):
    make_food101(tmp_path)
    spec = {"kind": "food101", "root": str(tmp_path)}
    for key, value, message in [
        ("on_bad_image", "ignore", r"datasets\.food\.on_bad_image must be one of"),
        ("backend", "tfds", r"datasets\.food\.backend must be one of"),
    ]:
        with pytest.raises(ValueError, match=message):
            build_dataset(_cli_args("classifier", "food", {**spec, key: value}))
    # keys of other steps (schema-checked) do not reach the builder
    other_steps = {**spec, "ood": True, "style": "filled"}
    assert len(build_dataset(_cli_args("classifier", "food", other_steps))) == 101


def test_prune_eval_cli_skips_bad_images(tmp_path, caplog):
    """End to end through `python -m clipconcepts classifier` and `prune-eval`."""
    bad = _corrupt_food101(tmp_path / "data")
    spec = {"kind": "food101", "root": str(tmp_path / "data"), "on_bad_image": "skip"}
    arch = str(DATA / "tiny-vit.json")
    common = ["--arch", arch, "--dataset", "food", "--dataset-spec", json.dumps(spec)]
    classifier = tmp_path / "classifier.parquet"
    assert cli.main(["classifier", *common, "--out", str(classifier)]) == 0
    heads = pl.DataFrame({"layer": [2], "head": [0], "group": ["moderate"], "ccs": [3]})
    for name in ("groups", "labels", "ccs"):
        heads.with_columns(label=pl.lit("x"), judge=pl.lit("majority")).write_parquet(
            tmp_path / f"{name}.parquet"
        )
    prune = [
        "prune-eval", *common, "--classifier", str(classifier),
        "--head-groups", str(tmp_path / "groups.parquet"), "--labels", str(tmp_path / "labels.parquet"),
        "--ccs", str(tmp_path / "ccs.parquet"), "--layers", "-1", "--strategies", "original",
        "--batch-size", "32", "--out", str(tmp_path / "prune.parquet"),
        "--items-out", str(tmp_path / "prune.items.parquet"),
    ]  # fmt: skip
    assert cli.main(prune) == 0
    assert pl.read_parquet(tmp_path / "prune.parquet")["n_images"].to_list() == [100]
    items = pl.read_parquet(tmp_path / "prune.items.parquet")  # the skipped image is not there
    assert items.height == 100 and items["image_id"].n_unique() == 100
    spec["on_bad_image"] = "fail"
    prune[prune.index("--dataset-spec") + 1] = json.dumps(spec)
    assert cli.main(prune) == 1
    assert f"cannot decode image {bad}" in caplog.text


# ---------------------------------------------------------------------------- clip_benchmark backend
def _fake_clip_benchmark(monkeypatch, build_dataset) -> None:
    """Stand-in modules for `clip_benchmark.datasets.builder.build_dataset`."""
    package, datasets = (
        types.ModuleType("clip_benchmark"),
        types.ModuleType("clip_benchmark.datasets"),
    )
    builder = types.ModuleType("clip_benchmark.datasets.builder")
    builder.build_dataset = build_dataset
    package.datasets, datasets.builder = datasets, builder
    for module in (package, datasets, builder):
        monkeypatch.setitem(sys.modules, module.__name__, module)


def _clip_benchmark_imagenet_ar(name, root, transform=None, split="test", download=True, **_):
    """What clip_benchmark 1.6 does for imagenet-a/-r: an ImageFolder on `root` whose `classes`
    it overwrites with the set's 200 display names, whatever folders `root` holds."""
    from torchvision.datasets import ImageFolder

    ds = ImageFolder(root=root, transform=transform)
    ds.classes = classnames_of(name)
    return ds


def test_clip_benchmark_backend_from_the_config_reads_the_tar_layout(tmp_path, monkeypatch):
    """Once handed the root as given: one folder too high, clip_benchmark's ImageFolder saw one
    class (`imagenet-a/`) and labelled every image 0."""
    _fake_clip_benchmark(monkeypatch, _clip_benchmark_imagenet_ar)
    labels = make_imagenet_ar(tmp_path, "imagenet-a", class_keys_of("imagenet-a"))
    spec = {"kind": "imagenet-a", "root": str(tmp_path), "backend": "clip_benchmark"}
    ds = build_dataset(_cli_args("classifier", "ina", spec), to_tensor)
    assert ds.torch_dataset is not None and ds.classnames == classnames_of("imagenet-a")
    assert len(ds) == 201 and _aligned_labels(ds) == labels


def test_clip_benchmark_labels_are_checked(tmp_path, monkeypatch):
    _fake_clip_benchmark(monkeypatch, _clip_benchmark_imagenet_ar)
    make_imagenet_ar(tmp_path, "imagenet-a", class_keys_of("imagenet-a"))
    # ImageFolder counts hidden folders as classes: every label would shift by one
    write_label_image(tmp_path / "imagenet-a" / ".ipynb_checkpoints" / "x.jpg", 0)
    with pytest.raises(ValueError, match=r"clip_benchmark imagenet-a classes .* \(201 vs 200"):
        build_zeroshot_dataset("imagenet-a", tmp_path, to_tensor, backend="clip_benchmark")
    _fake_clip_benchmark(monkeypatch, lambda *a, **k: types.SimpleNamespace(classes=["x"] * 200))
    with pytest.raises(ValueError, match="no class_to_idx"):
        build_zeroshot_dataset("imagenet-a", tmp_path, to_tensor, backend="clip_benchmark")


def _real_fixture(kind, root, monkeypatch):
    if kind == "cifar100":
        return make_cifar(root, kind, monkeypatch)
    if kind == "food101":
        return make_food101(root)
    if kind == "country211":
        return make_country211(root, class_keys_of(kind), splits=("test",))
    if kind == "pets":
        return make_pets(root)
    return make_imagenet_ar(root, kind, class_keys_of(kind))


@pytest.mark.parametrize("kind", ["cifar100", "food101", "country211", "pets", "imagenet-r"])
def test_real_clip_benchmark_backend_on_release_layouts(tmp_path, monkeypatch, kind):
    pytest.importorskip(
        "clip_benchmark.datasets.builder", reason="optional: pip install clip-benchmark"
    )
    labels = _real_fixture(kind, tmp_path, monkeypatch)
    ds = build_zeroshot_dataset(kind, tmp_path, to_tensor, backend="clip_benchmark")
    assert ds.classnames == classnames_of(kind) and len(ds) == len(labels)
    assert _aligned_labels(ds) == labels
