"""The report's standalone files (for `snakemake --report`): names, caption files, categories.

Import-light (standard library only) so a Snakefile can list the report rule's outputs and
their `report()` captions without loading the plotting stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CAPTIONS_DIR = Path(__file__).with_name("captions")
DATASET_NAMES = {
    "cifar10": "CIFAR-10",
    "cifar10-objects": "CIFAR-10 (objects)",  # the CCS authors' subsets: vehicles
    "cifar10-animals": "CIFAR-10 (animals)",
    "cifar100": "CIFAR-100",
    "food101": "Food-101",
    "country211": "Country-211",
    "pets": "Oxford-IIIT Pets",
    "imagenet-a": "ImageNet-A",
    "imagenet-r": "ImageNet-R",
    "imagenet": "ImageNet",
    "imagenet-val": "ImageNet val",
    "msrvtt": "MSR-VTT",
    "msvd": "MSVD",
    "didemo": "DiDeMo",
}


def dataset_name(key: str) -> str:
    """Display name of a dataset key (the key itself when unknown)."""
    return DATASET_NAMES.get(key, key)


@dataclass(frozen=True)
class Asset:
    """A standalone report file: name in the assets folder, caption kind (`captions/{kind}.rst`),
    and the category/subcategory it is filed under in `snakemake --report`."""

    name: str
    kind: str
    category: str
    subcategory: str | None = None

    @property
    def caption(self) -> Path:
        return caption_path(self.kind)


def report_assets(
    datasets: Sequence[str],
    mutual_sets: Sequence[str] = (),
    attribution_sets: Sequence[str] = (),
    video_sets: Sequence[str] = (),
) -> list[Asset]:
    """Every asset `build_report` writes, in a fixed order (each is written even without data,
    then saying what is missing, so a rule can declare them all as outputs). Per mutual set:
    Table 3's form, Figure 3's form, the explanation panels of every model, the concept
    world's descriptor precision, Table 1's form (with the concept world's region check) and
    Table 2's form. Per attribution dataset: the per-head tables, the correlation heat map, the
    deletion curves, the unexpected reliance and the check against the concept world's truth.
    Per video set: Figure 5's table and chart."""
    assets = [
        Asset("claims.html", "claims", "Claims"),
        *[Asset(f"claims_{letter}.svg", "claims_forest", "Claims") for letter in "abcd"],
        Asset("ccs_at_k.html", "ccs_at_k_table", "CCS"),
        Asset("ccs_at_k.svg", "ccs_at_k_figure", "CCS"),
        Asset("ccs_examples.html", "ccs_examples", "CCS"),
    ]
    for d in datasets:
        sub = dataset_name(d)
        assets += [
            Asset(f"prune_{d}.html", "prune_table", "Pruning", sub),
            Asset(f"prune_{d}.svg", "prune_figure", "Pruning", sub),
        ]
    assets += [
        Asset("concept.html", "concept_table", "Concept pruning"),
        Asset("concept.svg", "concept_figure", "Concept pruning"),
        Asset("agreement.html", "agreement", "Agreement"),
        Asset("label_truth.html", "label_truth", "Agreement"),
        Asset("ccs_truth.html", "ccs_truth", "Agreement"),
        Asset("conceptworld_metrics.html", "conceptworld_metrics", "Concept world"),
        Asset("llm_usage.html", "llm_usage", "LLM usage"),
    ]
    for s in mutual_sets:
        sub = dataset_name(s)
        assets += [
            Asset(f"mutual_{s}.html", "mutual_table", "Mutual knowledge", sub),
            Asset(f"mutual_{s}.svg", "mutual_figure", "Mutual knowledge", sub),
            Asset(f"mutual_{s}_examples.html", "mutual_examples", "Mutual knowledge", sub),
            Asset(f"mutual_{s}_truth.html", "mutual_truth", "Mutual knowledge", sub),
            Asset(f"mutual_{s}_faithfulness.html", "mutual_faithfulness", "Mutual knowledge", sub),
            Asset(f"mutual_{s}_augmented.html", "mutual_augmented", "Mutual knowledge", sub),
        ]
    for d in attribution_sets:
        sub = dataset_name(d)
        assets += [
            Asset(f"attribution_{d}.html", "attribution_table", "Attribution", sub),
            Asset(
                f"attribution_{d}_correlations.svg", "attribution_correlations", "Attribution", sub
            ),
            Asset(f"attribution_{d}_deletion.svg", "attribution_deletion", "Attribution", sub),
            Asset(f"attribution_{d}_reliance.html", "attribution_reliance", "Attribution", sub),
            Asset(f"attribution_{d}_truth.html", "attribution_truth", "Attribution", sub),
        ]
    for s in video_sets:
        sub = dataset_name(s)
        assets += [
            Asset(f"video_{s}.html", "video_table", "Video retrieval", sub),
            Asset(f"video_{s}.svg", "video_figure", "Video retrieval", sub),
        ]
    return assets


def asset_paths(
    assets_dir: str | Path,
    datasets: Sequence[str],
    mutual_sets: Sequence[str] = (),
    attribution_sets: Sequence[str] = (),
    video_sets: Sequence[str] = (),
) -> list[Path]:
    assets = report_assets(datasets, mutual_sets, attribution_sets, video_sets)
    return [Path(assets_dir) / a.name for a in assets]


def caption_path(kind: str) -> Path:
    """The RST caption of an asset kind ('report' for the HTML report itself)."""
    path = CAPTIONS_DIR / f"{kind}.rst"
    if not path.exists():
        raise FileNotFoundError(f"no report caption for asset kind {kind!r} ({path})")
    return path
