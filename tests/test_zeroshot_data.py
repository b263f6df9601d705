"""Zero-shot datasets: shipped class names and templates, folder/manifest sets, clear errors."""

from __future__ import annotations

import json
import re

import numpy as np
import polars as pl
import pytest
import torch
from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES, OPENAI_IMAGENET_TEMPLATES
from PIL import Image

from clipconcepts.data.zeroshot import (
    DatasetNotFoundError,
    build_zeroshot_dataset,
    check_templates,
    class_keys_of,
    classnames_of,
    resolve_templates,
)


def _to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1) / 255.0


def _png(path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4, 3), value, np.uint8)).save(path)


# ---------------------------------------------------------------------------- shipped data
@pytest.mark.parametrize(
    "kind, n",
    [
        ("cifar10", 10),
        ("cifar100", 100),
        ("food101", 101),
        ("country211", 211),
        ("pets", 37),
        ("imagenet-a", 200),
        ("imagenet-r", 200),
        ("cifar10-objects", 4),
        ("cifar10-animals", 6),
    ],
)
def test_class_name_counts(kind, n):
    names = classnames_of(kind)
    assert len(names) == n
    assert len(set(names)) == n
    assert all(name and name == name.strip() and "_" not in name for name in names)


def test_country211_names_are_countries_keyed_by_sorted_iso_codes():
    codes = class_keys_of("country211")
    names = classnames_of("country211")
    assert codes == sorted(codes) and all(re.fullmatch(r"[A-Z]{2}", c) for c in codes)
    assert not any(re.fullmatch(r"[A-Z]{2}", n) for n in names)  # names, not codes
    mapping = dict(zip(codes, names, strict=True))
    assert mapping["XK"] == "Kosovo"
    assert mapping["GB"] == "United Kingdom"
    assert mapping["CI"] == "Cote d'Ivoire"
    assert mapping["US"] == "United States"
    assert mapping["AQ"] == "Antarctica"


def test_imagenet_subsets_use_openai_names_in_wnid_order():
    for kind in ("imagenet-a", "imagenet-r"):
        wnids = class_keys_of(kind)
        assert wnids == sorted(wnids)
        assert set(classnames_of(kind)) <= set(IMAGENET_CLASSNAMES)
    a = dict(zip(class_keys_of("imagenet-a"), classnames_of("imagenet-a"), strict=True))
    assert a["n01498041"] == "stingray" and a["n12267677"] == "acorn"


def test_ccs_and_openai_templates():
    assert len(resolve_templates("cifar10", "ccs")) == 18
    assert resolve_templates("cifar100", "ccs") == resolve_templates("cifar10", "ccs")
    assert resolve_templates("pets", "ccs") == resolve_templates("cifar10", "ccs")
    assert resolve_templates("pets", "openai") == ["a photo of a {}, a type of pet."]
    assert resolve_templates("food101", "ccs") == ["a photo of {}, a type of food."]
    assert len(resolve_templates("country211", "ccs")) == 5
    assert resolve_templates("imagenet-r", "ccs") == [t("{}") for t in OPENAI_IMAGENET_TEMPLATES]
    assert len(resolve_templates("cifar10-objects", "ccs")) == 18
    with pytest.raises(ValueError, match="unknown templates 'fancy'"):
        resolve_templates("cifar10", "fancy")


def test_template_checks():
    assert check_templates(["a {c}."]) == ["a {}."]
    with pytest.raises(ValueError, match="exactly once"):
        check_templates(["no placeholder"], where="x")
    with pytest.raises(ValueError, match="exactly once"):
        check_templates(["{} and {}"])


# ---------------------------------------------------------------------------- folder sets
def _manifest_folder(root, classnames, templates, labels):
    rows = []
    for i, label in enumerate(labels):
        rel = f"img/{i:03d}.png"
        _png(root / rel, value=40 * label + i)
        rows.append({"image_id": f"im{i}", "path": rel, "label": label})
    pl.DataFrame(rows).write_parquet(root / "manifest.parquet")
    (root / "classes.json").write_text(
        json.dumps({"classnames": classnames, "templates": templates})
    )


def test_manifest_round_trip(tmp_path):
    labels = [0, 2, 1, 1, 0]
    _manifest_folder(tmp_path, ["red", "green", "blue"], ["a {} object."], labels)
    ds = build_zeroshot_dataset("manifest", tmp_path, _to_tensor)
    assert ds.classnames == ["red", "green", "blue"]
    assert ds.templates == ["a {} object."]
    assert len(ds) == 5
    batches = list(ds.loader(batch_size=2))
    images = torch.cat([b[0] for b in batches])
    got = torch.cat([b[2] for b in batches]).tolist()
    assert got == labels
    assert images.shape == (5, 3, 4, 4)
    # pixel values identify the files: image i was written with 40 * label + i
    expected = torch.tensor([40 * lab + i for i, lab in enumerate(labels)], dtype=torch.float32)
    assert torch.allclose(images[:, 0, 0, 0] * 255, expected, atol=0.5)
    # an explicit template set overrides the folder's own
    assert len(build_zeroshot_dataset("manifest", tmp_path, templates="cifar18").templates) == 18


def test_conceptworld_family_subfolder_and_label_check(tmp_path):
    _manifest_folder(tmp_path / "shape", ["circle", "square"], ["a {}."], [0, 1, 1])
    ds = build_zeroshot_dataset("conceptworld", tmp_path, _to_tensor, family="shape")
    assert ds.classnames == ["circle", "square"] and len(ds) == 3
    bad = tmp_path / "bad"
    _manifest_folder(bad, ["only"], ["a {}."], [0, 3])
    with pytest.raises(ValueError, match="labels outside"):
        build_zeroshot_dataset("manifest", bad, _to_tensor)


def test_imagefolder_names_from_folders_or_classes_json(tmp_path):
    for cls in ("golden_retriever", "tabby_cat"):
        for i in range(2):
            _png(tmp_path / cls / f"{i}.png", 10 * i)
    ds = build_zeroshot_dataset("imagefolder", tmp_path, _to_tensor)
    assert ds.classnames == ["golden retriever", "tabby cat"]
    assert len(ds.templates) == 80  # default: the ImageNet ensemble
    (tmp_path / "classes.json").write_text(
        json.dumps({"classnames": ["dog", "cat"], "templates": ["a photo of a {}."]})
    )
    ds = build_zeroshot_dataset("imagefolder", tmp_path, _to_tensor)
    assert ds.classnames == ["dog", "cat"] and ds.templates == ["a photo of a {}."]


def test_imagenet_a_folders(tmp_path):
    _png(tmp_path / "n01498041" / "a.png", 1)
    _png(tmp_path / "n12267677" / "b.png", 2)
    ds = build_zeroshot_dataset("imagenet-a", tmp_path, _to_tensor)
    assert ds.n_classes == 200 and len(ds) == 2
    labels = ds.records.labels.tolist()
    assert [ds.classnames[i] for i in labels] == ["stingray", "acorn"]


def test_country211_labels_follow_torchvision(tmp_path):
    """torchvision labels Country-211 by sorted ISO folder; our names must line up."""
    codes = class_keys_of("country211")
    for i, code in enumerate(codes):
        _png(tmp_path / "country211" / "test" / code / "a.png", i)
    ds = build_zeroshot_dataset("country211", tmp_path, _to_tensor)
    assert len(ds) == 211
    by_pixel = {}
    for i in range(len(ds)):
        image, label = ds.torch_dataset[i]
        by_pixel[round(image[0, 0, 0].item() * 255)] = ds.classnames[label]
    # the image written into folder codes[i] carries pixel value i
    assert by_pixel[codes.index("XK")] == "Kosovo"
    assert by_pixel[codes.index("JP")] == "Japan"
    assert by_pixel[codes.index("ZW")] == "Zimbabwe"


def test_pets_names_match_torchvision(tmp_path):
    base = tmp_path / "oxford-iiit-pet"
    raw = [n.lower().replace(" ", "_") for n in classnames_of("pets")]
    lines = []
    for label, name in enumerate(raw, start=1):
        _png(base / "images" / f"{name}_1.jpg", label)
        lines.append(f"{name}_1 {label} 1 1")
    (base / "annotations").mkdir(parents=True)
    (base / "annotations" / "test.txt").write_text("\n".join(lines) + "\n")
    # torchvision title-cases the file-name breeds; the build checks them against our names
    ds = build_zeroshot_dataset("pets", tmp_path, _to_tensor)
    assert ds.n_classes == 37 and len(ds) == 37
    assert ds.torch_dataset[20][1] == 20


# ---------------------------------------------------------------------------- errors
def test_missing_dataset_names_the_path(tmp_path):
    where = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError, match=re.escape(str(where))):
        build_zeroshot_dataset("cifar10", where)
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py"):
        build_zeroshot_dataset("cifar10", tmp_path)  # exists, but holds nothing
    with pytest.raises(DatasetNotFoundError, match="wnid"):
        build_zeroshot_dataset("imagenet-r", tmp_path)
    with pytest.raises(DatasetNotFoundError, match="manifest.parquet"):
        build_zeroshot_dataset("manifest", tmp_path)
    with pytest.raises(ValueError, match="unknown zero-shot dataset kind 'cifar11'"):
        build_zeroshot_dataset("cifar11", tmp_path)
    with pytest.raises(ValueError, match="needs a root"):
        build_zeroshot_dataset("food101", None)
