"""The CCS paper's published values (`paper_values.yaml`), looked up by open_clip model spec;
also the mutual-knowledge paper's Table 3 (its optional `mutual_knowledge` section).

A run's model matches a paper model when its architecture (minus a `-quickgelu` suffix: OpenAI
weights are loaded with QuickGELU either way) and pretrained tag equal the paper model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

PAPER_VALUES_FILE = "paper_values.yaml"
PRUNE_COLUMNS = ("original", "high", "low")
MUTUAL_COLUMNS = ("top1", "mi_pca", "mi_kmeans", "auc_pca", "auc_kmeans")


def paper_values_path() -> Path:
    """Where the transcribed values live (inside the package)."""
    return Path(str(resources.files("clipconcepts.report").joinpath(PAPER_VALUES_FILE)))


def _normal_arch(arch: str) -> str:
    return arch.removesuffix("-quickgelu")


@dataclass(frozen=True)
class ConceptValues:
    """Section 5.5's numbers for one (model, dataset): unpruned and per pruned concept group."""

    source: str
    original: float
    pruned: dict[str, float]
    note: str | None = None


class PaperValues:
    """Lookups into the transcribed tables; every method returns None where the paper is silent."""

    def __init__(self, data: dict, path: Path | None = None):
        self.path = path
        self.data = data
        self.title: str = data["paper"]
        self._by_spec = {
            (_normal_arch(m["arch"]), m["pretrained"]): name for name, m in data["models"].items()
        }

    def model_name(self, arch: str | None, pretrained: str | None) -> str | None:
        """The paper's name for an open_clip (arch, pretrained), e.g. 'ViT-B-32-OpenAI'."""
        if not arch or not pretrained:
            return None
        return self._by_spec.get((_normal_arch(arch), pretrained))

    def ccs_at_k(self, paper_model: str | None) -> list[float] | None:
        return self.data["ccs_at_k"]["rows"].get(paper_model) if paper_model else None

    @property
    def ccs_at_k_source(self) -> str:
        return self.data["ccs_at_k"]["source"]

    def agreement(self, paper_model: str | None) -> dict[str, float] | None:
        return self.data["agreement"]["rows"].get(paper_model) if paper_model else None

    @property
    def agreement_source(self) -> str:
        return self.data["agreement"]["source"]

    def pruning(self, paper_model: str | None, dataset: str) -> dict[str, float] | None:
        """{'original', 'high', 'low'} accuracy (%) from Tables 4-6, or None."""
        table = self.data["pruning"].get(dataset)
        if not paper_model or table is None or paper_model not in table["rows"]:
            return None
        return dict(zip(PRUNE_COLUMNS, table["rows"][paper_model], strict=True))

    def pruning_source(self, dataset: str) -> str | None:
        table = self.data["pruning"].get(dataset)
        return table["source"] if table else None

    def concept(self, paper_model: str | None, dataset: str) -> ConceptValues | None:
        for entry in self.data["concept"]:
            if entry["model"] == paper_model and entry["dataset"] == dataset:
                return ConceptValues(
                    entry["source"], entry["original"], dict(entry["pruned"]), entry.get("note")
                )
        return None

    @property
    def datasets(self) -> list[str]:
        return list(self.data["pruning"])

    # --------------------------------------------------------------- mutual knowledge (Table 3)
    @property
    def mutual_data(self) -> dict:
        """The optional `mutual_knowledge` section ({} when the file has none)."""
        return self.data.get("mutual_knowledge") or {}

    def mutual_model_name(self, arch: str | None, pretrained: str | None) -> str | None:
        """The mutual-knowledge paper's name for an open_clip (arch, pretrained), e.g. 'ViT-B/32'."""
        if not arch or not pretrained:
            return None
        for name, m in self.mutual_data.get("models", {}).items():
            if m.get("arch") and (_normal_arch(m["arch"]), m.get("pretrained")) == (
                _normal_arch(arch),
                pretrained,
            ):
                return name
        return None

    def mutual(self, paper_model: str | None, dataset: str) -> dict[str, float] | None:
        """{'top1', 'mi_pca', 'mi_kmeans', 'auc_pca', 'auc_kmeans'} from Table 3 when `dataset`
        is one of the keys that mean its dataset (ImageNet val), else None."""
        section = self.mutual_data
        if not paper_model or dataset not in section.get("datasets", []):
            return None
        row = section.get("rows", {}).get(paper_model)
        return dict(zip(MUTUAL_COLUMNS, row, strict=True)) if row else None

    @property
    def mutual_source(self) -> str:
        return self.mutual_data.get("source", "")

    @property
    def mutual_title(self) -> str:
        return self.mutual_data.get("paper", "")

    def mutual_unmatched(self) -> dict[str, str]:
        """Paper models that match no open_clip spec, and why."""
        models = self.mutual_data.get("models", {})
        return {n: m.get("unmatched", "no spec") for n, m in models.items() if not m.get("arch")}


@cache
def load_paper_values(path: str | Path | None = None) -> PaperValues:
    """Read `paper_values.yaml` (or another file of the same form)."""
    path = Path(path) if path is not None else paper_values_path()
    with open(path) as f:
        data = yaml.safe_load(f)
    missing = [
        k
        for k in ("paper", "models", "agreement", "ccs_at_k", "pruning", "concept")
        if k not in data
    ]
    if missing:
        raise ValueError(f"{path}: paper-values file lacks sections {missing}")
    return PaperValues(data, path)
