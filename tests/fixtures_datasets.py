"""Tiny fakes of the zero-shot and probe image sets in their release layouts.

Made the way torchvision's own test suite fakes datasets: the exact folders and file names of each
release, a few tiny files, and the checksums torchvision verifies (CIFAR's md5 lists) patched to
those of the files written, so its integrity check still runs. Every image encodes its label: an
8x16 grey JPEG (quality 100, exact for flat 8x8 blocks) whose left block is `label % 256` and right
block `label // 256`; CIFAR images are filled with the label. `decode_label` reads it back from a
loaded image, so a test can check that each label a loader yields belongs to its image.

The class lists below are the releases' own (CIFAR `batches.meta` / `meta`, Food-101
`meta/classes.txt`, the Oxford-IIIT Pet file-name stems), written independently of the names the
package ships, so the loaders' name checks are tested against the real thing.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clipconcepts.data.zeroshot_common import imagenet_wnids

DATA = Path(__file__).parent / "data"


def _names(text: str) -> list[str]:
    return text.split()


CIFAR10_CLASSES = _names("airplane automobile bird cat deer dog frog horse ship truck")
CIFAR100_CLASSES = _names("""apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy
bridge bus butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach
couch crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo
keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse
mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy
porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper snail
snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger
tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm""")
CIFAR100_COARSE = _names("""aquatic_mammals fish flowers food_containers fruit_and_vegetables
household_electrical_devices household_furniture insects large_carnivores
large_man-made_outdoor_things large_natural_outdoor_scenes large_omnivores_and_herbivores
medium_mammals non-insect_invertebrates people reptiles small_mammals trees vehicles_1
vehicles_2""")
FOOD101_CLASSES = _names("""apple_pie baby_back_ribs baklava beef_carpaccio beef_tartare beet_salad
beignets bibimbap bread_pudding breakfast_burrito bruschetta caesar_salad cannoli caprese_salad
carrot_cake ceviche cheese_plate cheesecake chicken_curry chicken_quesadilla chicken_wings
chocolate_cake chocolate_mousse churros clam_chowder club_sandwich crab_cakes creme_brulee
croque_madame cup_cakes deviled_eggs donuts dumplings edamame eggs_benedict escargots falafel
filet_mignon fish_and_chips foie_gras french_fries french_onion_soup french_toast fried_calamari
fried_rice frozen_yogurt garlic_bread gnocchi greek_salad grilled_cheese_sandwich grilled_salmon
guacamole gyoza hamburger hot_and_sour_soup hot_dog huevos_rancheros hummus ice_cream lasagna
lobster_bisque lobster_roll_sandwich macaroni_and_cheese macarons miso_soup mussels nachos
omelette onion_rings oysters pad_thai paella pancakes panna_cotta peking_duck pho pizza pork_chop
poutine prime_rib pulled_pork_sandwich ramen ravioli red_velvet_cake risotto samosa sashimi
scallops seaweed_salad shrimp_and_grits spaghetti_bolognese spaghetti_carbonara spring_rolls
steak strawberry_shortcake sushi tacos takoyaki tiramisu tuna_tartare waffles""")
# Oxford-IIIT Pet image-name stems, in class-id order (cats capitalised, dogs not, as released)
PETS_STEMS = _names("""Abyssinian american_bulldog american_pit_bull_terrier basset_hound beagle Bengal
Birman Bombay boxer British_Shorthair chihuahua Egyptian_Mau english_cocker_spaniel english_setter
german_shorthaired great_pyrenees havanese japanese_chin keeshond leonberger Maine_Coon
miniature_pinscher newfoundland Persian pomeranian pug Ragdoll Russian_Blue saint_bernard samoyed
scottish_terrier shiba_inu Siamese Sphynx staffordshire_bull_terrier wheaten_terrier
yorkshire_terrier""")
# The 1,000 ImageNet-1k WordNet ids, sorted (= the standard label order): the package's list
# (from CLIP_benchmark's `all_imagenet_wordnet_ids`), checked against its digest in
# tests/test_zeroshot_imagenet.py.
IMAGENET_WNIDS = list(imagenet_wnids())


# ---------------------------------------------------------------------------- label images
def label_pixels(label: int) -> np.ndarray:
    """The 8x16 grey image that encodes `label` (0..65535)."""
    pixels = np.empty((8, 16, 3), np.uint8)
    pixels[:, :8] = label % 256
    pixels[:, 8:] = label // 256
    return pixels


def write_label_image(path: Path, label: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    Image.fromarray(label_pixels(label)).save(path, fmt, quality=100)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """The transform the tests load with: pixel values kept, [C, H, W] in [0, 1]."""
    return torch.from_numpy(np.asarray(image.convert("RGB"), np.float32)).permute(2, 0, 1) / 255.0


def decode_label(image: torch.Tensor) -> int:
    """The label an image was written with (`label_pixels`, or a CIFAR image filled with it)."""
    pixels = (image * 255).round().to(torch.int64)
    if pixels.shape[-1] == 16:
        return int(pixels[0, 0, 0]) + 256 * int(pixels[0, 0, 8])
    return int(pixels[0, 0, 0])


def _order(n: int, seed: int) -> list[int]:
    """A fixed shuffle, so no fake lists its images in label order."""
    return np.random.default_rng(seed).permutation(n).tolist()


# ---------------------------------------------------------------------------- CIFAR
def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _pickle(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=2))  # the releases are Python 2 pickles


def _cifar_batch(labels: list[int], label_key: str, name: str, fine: bool) -> dict:
    data = np.repeat(np.asarray(labels, np.uint8)[:, None], 3 * 32 * 32, axis=1)
    batch = {
        "batch_label": name,
        label_key: labels,
        "data": data,
        "filenames": [f"fake_{i:05d}.png" for i in range(len(labels))],
    }
    if fine:
        batch["coarse_labels"] = [label % 20 for label in labels]
    return batch


def make_cifar(root: Path, kind: str, monkeypatch, per_class: int = 2) -> list[int]:
    """`root/cifar-10-batches-py/` or `root/cifar-100-python/` as the tarballs extract; the
    md5 lists torchvision checks are patched to the files written. Returns the test labels."""
    import torchvision.datasets as tvd

    cls = {"cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100}[kind]
    names = CIFAR10_CLASSES if kind == "cifar10" else CIFAR100_CLASSES
    folder = root / cls.base_folder
    fine = kind == "cifar100"
    label_key = "fine_labels" if fine else "labels"
    n = len(names)
    test = [i % n for i in _order(n * per_class, seed=n)]
    for name, _ in cls.train_list:
        _pickle(folder / name, _cifar_batch(list(range(n)), label_key, name, fine))
    for name, _ in cls.test_list:
        _pickle(folder / name, _cifar_batch(test, label_key, name, fine))
    if fine:
        meta = {"fine_label_names": names, "coarse_label_names": CIFAR100_COARSE}
    else:
        meta = {"num_cases_per_batch": 10000, "label_names": names, "num_vis": 3072}
    _pickle(folder / cls.meta["filename"], meta)
    # torchvision's integrity check stays on, against the fakes' checksums
    md5 = lambda entries: [[name, _md5(folder / name)] for name, _ in entries]  # noqa: E731
    monkeypatch.setattr(cls, "train_list", md5(cls.train_list))
    monkeypatch.setattr(cls, "test_list", md5(cls.test_list))
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": _md5(folder / cls.meta["filename"])})
    return test


# ---------------------------------------------------------------------------- image-file sets
def make_food101(root: Path, per_class: int = 1) -> list[int]:
    """`root/food-101/{images/<class>/<id>.jpg, meta/{classes,labels}.txt, {train,test}.{json,txt}}`.
    Returns the test labels in torchvision's order (meta/test.json's)."""
    base = root / "food-101"
    (base / "meta").mkdir(parents=True)
    splits: dict[str, dict[str, list[str]]] = {"train": {}, "test": {}}
    for label, name in enumerate(FOOD101_CLASSES):
        ids = [str(100000 + 7919 * (label * 10 + k)) for k in range(2 * per_class)]
        splits["test"][name] = [f"{name}/{i}" for i in ids[:per_class]]
        splits["train"][name] = [f"{name}/{i}" for i in ids[per_class:]]
        for image_id in ids:
            write_label_image(base / "images" / name / f"{image_id}.jpg", label)
    for split, entries in splits.items():
        (base / "meta" / f"{split}.json").write_text(json.dumps(entries))
        lines = [path for paths in entries.values() for path in paths]
        (base / "meta" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    (base / "meta" / "classes.txt").write_text("\n".join(FOOD101_CLASSES) + "\n")
    labels_txt = [" ".join(w.capitalize() for w in n.split("_")) for n in FOOD101_CLASSES]
    (base / "meta" / "labels.txt").write_text("\n".join(labels_txt) + "\n")
    return [label for label in range(len(FOOD101_CLASSES)) for _ in range(per_class)]


def make_country211(root: Path, codes: list[str], splits=("train", "valid", "test")) -> list[int]:
    """`root/country211/{train,valid,test}/<ISO code>/<id>.jpg` as country211.tgz extracts.
    Returns the test labels (sorted-code order, one image per country)."""
    for split in splits:
        for label, code in enumerate(codes):
            write_label_image(root / "country211" / split / code / f"{label * 31 + 7}.jpg", label)
    return list(range(len(codes)))


def make_pets(root: Path, per_class: int = 2) -> list[int]:
    """`root/oxford-iiit-pet/{images/<Stem>_<n>.jpg, annotations/{list,trainval,test}.txt,
    annotations/trimaps/}` (lines: image CLASS-ID SPECIES BREED-ID). Returns the test labels in
    test.txt's (shuffled) order."""
    base = root / "oxford-iiit-pet"
    (base / "annotations" / "trimaps").mkdir(parents=True)
    (base / "annotations" / "xmls").mkdir()
    cats = [s for s in PETS_STEMS if s[0].isupper()]
    dogs = [s for s in PETS_STEMS if s[0].islower()]
    rows = {"trainval": [], "test": []}
    for label, stem in enumerate(PETS_STEMS):
        species, breed = (1, cats.index(stem) + 1) if stem in cats else (2, dogs.index(stem) + 1)
        for k in range(2 * per_class):
            image = f"{stem}_{100 + k}"
            write_label_image(base / "images" / f"{image}.jpg", label)
            write_label_image(base / "annotations" / "trimaps" / f"{image}.png", label)
            split = "test" if k < per_class else "trainval"
            rows[split].append((f"{image} {label + 1} {species} {breed}", label))
    for split, entries in rows.items():
        entries = [entries[i] for i in _order(len(entries), seed=len(entries))]
        rows[split] = entries
        (base / "annotations" / f"{split}.txt").write_text("".join(f"{r}\n" for r, _ in entries))
    header = "#Image CLASS-ID SPECIES BREED ID\n"
    listed = sorted(r for split in rows.values() for r, _ in split)
    (base / "annotations" / "list.txt").write_text(header + "".join(f"{r}\n" for r in listed))
    return [label for _, label in rows["test"]]


def make_imagenet_ar(root: Path, kind: str, wnids: list[str]) -> list[int]:
    """`root/imagenet-a/<wnid>/<image>.jpg` (+ README.txt) as imagenet-a.tar / imagenet-r.tar
    extract into `root`; two images in the first class, one in each other. Returns the labels
    in folder order."""
    base = root / kind
    base.mkdir(parents=True)
    (base / "README.txt").write_text(f"{kind}: fake for tests\n")
    labels = []
    for label, wnid in enumerate(wnids):
        for k in range(2 if label == 0 else 1):
            name = f"{k}.00{label}_fake_{wnid}.jpg" if kind == "imagenet-a" else f"art_{k}.jpg"
            write_label_image(base / wnid / name, label)
            labels.append(label)
    return labels


def make_imagenet_val(root: Path, flat: bool = False) -> list[int]:
    """ImageNet val, 1,000 images (one per class) named ILSVRC2012_val_%08d.JPEG in a shuffled
    order: flat as ILSVRC2012_img_val.tar extracts, or sorted into `<wnid>/` folders as valprep.sh
    leaves it. Each image encodes its class's standard index. Returns the labels by sorted
    folder, then file name."""
    numbers = [n + 1 for n in _order(len(IMAGENET_WNIDS), seed=2012)]
    for label, wnid in enumerate(IMAGENET_WNIDS):
        name = f"ILSVRC2012_val_{numbers[label]:08d}.JPEG"
        write_label_image(root / name if flat else root / wnid / name, label)
    return list(range(len(IMAGENET_WNIDS)))
