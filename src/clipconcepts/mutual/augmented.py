"""Descriptor-augmented zero-shot classification (the mutual-knowledge paper's Table 2, section 4
and Appendix K).

- Base (after Menon & Vondrick): each class is embedded with its own LLM descriptors in the
  paper's prompt (Appendix K, from Pratt et al.): "how can you identify a {class}. Distinctive
  and physical features describing it is {descriptor}"; each prompt's embedding is
  unit-normalised, the class's are averaged and renormalised. A class's own descriptors are the
  bank rows whose `classes` list names it (a bank without that column, or a null entry: every
  class). A class with none keeps its template weight (counted).
- Ours: for an image predicted p under Base, the `neighbours` (2) classes nearest to p by the
  cosine of Base's class weights (p itself excluded; `include_predicted` adds p). Each of them
  gets, besides its own descriptors, the textual part (D_v) of the explanations of the images of
  that class (ground truth; the image itself left out), in the same prompt, and the image is
  classified again with those classes' weights replaced. The texts are appended as a list: one
  that explains several images (or is already the class's own) counts as often, so the weight
  leans towards what the class's images show; with a class-agnostic bank (every class has every
  descriptor) a set union would add nothing.
  The paper's footnote 4 (no additional descriptors for "overly discriminative" classes) names
  no criterion and is not applied.

Batched: every (class, text) prompt is encoded once; a class's augmented weight is its sum of
prompt embeddings plus the sums of its images' explanation texts, minus the image's own sum;
nothing is re-encoded per image.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl
import torch

from clipconcepts.mutual.schemas import AUGMENTED_SCHEMA

log = logging.getLogger(__name__)

PROMPT = (
    "how can you identify a {classname}. Distinctive and physical features describing it is "
    "{descriptor}"
)


@dataclass(frozen=True)
class AugmentedSettings:
    """Knobs of Table 2 (`mutual.augmented`)."""

    prompt: str = PROMPT
    neighbours: int = 2
    include_predicted: bool = False
    batch_size: int = 256

    def __post_init__(self):
        for key in ("{classname}", "{descriptor}"):
            if key not in self.prompt:
                raise ValueError(f"config key mutual.augmented.prompt needs {key}: {self.prompt!r}")
        if self.neighbours < 0:
            raise ValueError("config key mutual.augmented.neighbours must be >= 0")


def descriptor_prompt(classname: str, descriptor: str, prompt: str = PROMPT) -> str:
    """The paper's prompt for one class and one descriptor."""
    return prompt.format(classname=classname, descriptor=descriptor)


def _key(text: str) -> str:
    return " ".join(str(text).split()).casefold()


def class_descriptor_lists(bank: pl.DataFrame, classnames: Sequence[str]) -> list[list[str]]:
    """Each class's own descriptors (bank order) from the bank's `classes` column; a bank
    without it (written before the column existed) or a null entry gives every class."""
    bank = bank.sort("descriptor_id")
    texts = bank["text"].to_list()
    if "classes" not in bank.columns:
        log.warning("the descriptor bank has no 'classes' column: every class gets every text")
        return [list(texts) for _ in classnames]
    index = {str(c): i for i, c in enumerate(classnames)}
    out: list[list[str]] = [[] for _ in classnames]
    for text, classes in zip(texts, bank["classes"].to_list(), strict=True):
        targets = (
            range(len(classnames)) if classes is None else [index[c] for c in classes if c in index]
        )
        for c in targets:
            out[c].append(text)
    return out


class PromptBank:
    """Unit embeddings of (class, text) prompts, encoded once, in batches."""

    def __init__(self, encode: Callable[[list[str]], torch.Tensor], classnames, prompt: str):
        self.encode, self.classnames, self.prompt = encode, list(classnames), prompt
        self.index: dict[tuple[int, str], int] = {}
        self.vectors: torch.Tensor | None = None

    def add(self, pairs: Sequence[tuple[int, str]]) -> None:
        new = []
        for c, text in pairs:
            key = (c, _key(text))
            if key not in self.index:
                self.index[key] = -1
                new.append((key, text))
        if not new:
            return
        texts = [descriptor_prompt(self.classnames[c], t, self.prompt) for (c, _), t in new]
        emb = torch.nn.functional.normalize(self.encode(texts).float(), dim=-1)
        start = 0 if self.vectors is None else self.vectors.shape[0]
        for j, (key, _) in enumerate(new):
            self.index[key] = start + j
        self.vectors = emb if self.vectors is None else torch.cat([self.vectors, emb])

    def sum(self, c: int, keys) -> torch.Tensor:
        ids = [self.index[c, k] for k in keys]
        assert self.vectors is not None
        if not ids:
            return torch.zeros(self.vectors.shape[1], device=self.vectors.device)
        return self.vectors[ids].sum(dim=0)


def augmented_zeroshot(
    image_emb: torch.Tensor,
    labels: Sequence[int],
    explanations: dict[str, Sequence[Sequence[str]]],
    own: Sequence[Sequence[str]],
    prompts: PromptBank,
    fallback: torch.Tensor,
    settings: AugmentedSettings,
) -> dict[str, dict]:
    """Base and Ours predictions. `image_emb` `[N, D]` unit-norm; `explanations`: method -> per
    image its D_v texts; `own`: per class its descriptors; `fallback` `[C, D]` the template
    classifier (for classes without descriptors). Returns {"base": {...}, method: {...}} with
    `predicted` (list) and counts."""
    n_classes = len(own)
    own_keys = [list(dict.fromkeys(_key(t) for t in texts)) for texts in own]
    n_prompts = sum(map(len, own_keys))
    if n_prompts > 200_000:  # a class-agnostic bank on many classes: C x D prompts
        log.warning("Table 2's Base encodes %d class x descriptor prompts", n_prompts)
    prompts.add([(c, t) for c, texts in enumerate(own) for t in texts])
    base_sum = torch.stack([prompts.sum(c, own_keys[c]) for c in range(n_classes)])
    empty = base_sum.norm(dim=1) == 0
    weights = torch.where(
        empty[:, None], fallback.float(), torch.nn.functional.normalize(base_sum, dim=-1)
    )
    logits = image_emb.float() @ weights.T
    base_pred = logits.argmax(dim=1)
    sim = weights @ weights.T
    sim.fill_diagonal_(-float("inf"))
    k = min(settings.neighbours, n_classes - 1)
    near = sim.topk(k, dim=1).indices.tolist() if k > 0 else [[] for _ in range(n_classes)]
    out = {
        "base": {
            "predicted": base_pred.tolist(),
            "n_classes": n_classes,
            "n_classes_without_descriptors": int(empty.sum()),
            "mean_descriptors": sum(map(len, own_keys)) / max(n_classes, 1),
        }
    }
    for method, per_image in explanations.items():
        prompts.add([(y, t) for y, texts in zip(labels, per_image, strict=True) for t in texts])
        own_sum = [  # each image's D_v in its class's prompts (a text counts once per image)
            prompts.sum(y, list(dict.fromkeys(_key(t) for t in texts)))
            for y, texts in zip(labels, per_image, strict=True)
        ]
        added = torch.zeros_like(base_sum)
        n_added = [0] * n_classes
        for y, vec, texts in zip(labels, own_sum, per_image, strict=True):
            added[y] += vec
            n_added[y] += len(set(map(_key, texts)))
        predicted = []
        for i, y in enumerate(labels):
            p = int(base_pred[i])
            row = logits[i].clone()
            for c in near[p] + ([p] if settings.include_predicted else []):
                vec = base_sum[c] + added[c] - (own_sum[i] if c == y else 0)  # leave i out
                if vec.norm() > 1e-6:  # else: no descriptor at all, the template weight stays
                    row[c] = image_emb[i].float() @ torch.nn.functional.normalize(vec, dim=0)
            predicted.append(int(row.argmax()))
        out[method] = {"predicted": predicted, "mean_added": sum(n_added) / max(n_classes, 1)}
    return out


def augmented_table(
    result: dict[str, dict], labels: Sequence[int], plain_correct: Sequence[bool]
) -> pl.DataFrame:
    """One row per method: top-1 (%) of the template classifier (the mutual step's), of Base
    and of Ours, and how many images Ours fixed and broke."""
    n = len(labels)
    y = torch.as_tensor(list(labels))
    base = torch.as_tensor(result["base"]["predicted"]) == y
    rows = []
    for method, r in result.items():
        if method == "base":
            continue
        ours = torch.as_tensor(r["predicted"]) == y
        base_top1 = 100 * base.double().mean().item() if n else float("nan")
        ours_top1 = 100 * ours.double().mean().item() if n else float("nan")
        rows.append(
            {
                "method": method,
                "n_images": n,
                "n_classes": result["base"]["n_classes"],
                "plain_top1": 100 * sum(plain_correct) / n if n else float("nan"),
                "base_top1": base_top1,
                "ours_top1": ours_top1,
                "delta": ours_top1 - base_top1,
                "n_fixed": int((ours & ~base).sum()),
                "n_broken": int((base & ~ours).sum()),
                "n_classes_without_descriptors": result["base"]["n_classes_without_descriptors"],
                "mean_descriptors": result["base"]["mean_descriptors"],
                "mean_added": r["mean_added"],
            }
        )
    return pl.DataFrame(rows, schema=AUGMENTED_SCHEMA)
