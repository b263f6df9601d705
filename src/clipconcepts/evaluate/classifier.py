"""Zero-shot classifiers from class names x prompt templates, and top-k accuracy.

The CCS authors' recipe (their `zero_shot_utils.zeroshot_classifier`, OpenAI's notebook): per
class, encode every template filled with the class name, L2-normalise each text embedding,
average over templates, renormalise. All class x template texts go to the text tower in one
batched call. A classifier is stored as Parquet (`class_id`, `classname`, `embedding`) so the
workflow computes it once per model x dataset.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from clipconcepts.io import fixed_list, to_numpy, write_table

log = logging.getLogger(__name__)


@torch.no_grad()
def build_classifier(
    clip, classnames: Sequence[str], templates: Sequence[str], batch_size: int = 256
) -> torch.Tensor:
    """`[C, D]` unit-norm class embeddings: mean of normalised template embeddings, renormalised."""
    if not classnames:
        raise ValueError("build_classifier: no class names")
    if not templates:
        raise ValueError("build_classifier: no templates")
    texts = [template.format(name) for name in classnames for template in templates]
    emb = clip.encode_text(texts, normalize=True, batch_size=batch_size).float()
    emb = emb.view(len(classnames), len(templates), -1).mean(dim=1)
    return emb / emb.norm(dim=-1, keepdim=True)


def save_classifier(
    path: str | Path,
    weights: torch.Tensor,
    classnames: Sequence[str],
    metadata: dict | None = None,
) -> None:
    """Write `class_id:int32, classname:str, embedding:fixed_size_list<float32>[D]` atomically;
    `metadata` (model, dataset, templates, ...) goes into the Parquet schema metadata as JSON."""
    values = weights.detach().float().cpu().numpy()
    if values.ndim != 2 or values.shape[0] != len(classnames):
        raise ValueError(
            f"classifier weights {tuple(values.shape)} do not match {len(classnames)} class names"
        )
    table = pa.table(
        {
            "class_id": pa.array(np.arange(len(classnames), dtype=np.int32)),
            "classname": pa.array([str(c) for c in classnames], pa.string()),
            "embedding": fixed_list(values),
        }
    )
    if metadata:
        table = table.replace_schema_metadata({"clipconcepts": json.dumps(metadata)})
    write_table(table, path)


def load_classifier(path: str | Path) -> tuple[torch.Tensor, list[str], dict]:
    """`(weights [C, D], classnames, metadata)` from `save_classifier`'s file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"classifier file not found: {path}")
    table = pq.read_table(path)
    missing = {"class_id", "classname", "embedding"} - set(table.column_names)
    if missing:
        raise ValueError(f"classifier file {path} lacks columns {sorted(missing)}")
    order = np.argsort(table["class_id"].to_numpy())
    if not np.array_equal(table["class_id"].to_numpy()[order], np.arange(table.num_rows)):
        raise ValueError(f"classifier file {path}: class_id is not 0..{table.num_rows - 1}")
    weights = torch.from_numpy(to_numpy(table["embedding"])[order].copy())
    classnames = [table["classname"][int(i)].as_py() for i in order]
    raw = (table.schema.metadata or {}).get(b"clipconcepts")
    return weights, classnames, json.loads(raw) if raw else {}


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)):
    """Number of rows whose label is among the top-k logits, per k (k clipped to the class count).

    `logits` `[..., B, C]`, `labels` `[B]`; returns a `[len(ks), ...]` long tensor of counts.
    """
    n_classes = logits.shape[-1]
    kmax = min(max(ks), n_classes)
    top = logits.topk(kmax, dim=-1).indices  # [..., B, kmax]
    hit = top == labels.view(*([1] * (top.dim() - 2)), -1, 1)
    return torch.stack([hit[..., : min(k, n_classes)].any(-1).sum(-1) for k in ks])


def accuracy(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict:
    """Top-k accuracies in percent, `{k: float}`."""
    counts = topk_correct(logits, labels, ks)
    n = labels.numel()
    return {k: 100.0 * counts[i].item() / max(n, 1) for i, k in enumerate(ks)}
