"""What the attribution views explain, and on which images.

The target of every view is one scalar per image, `y = cos(image embedding, t)`, with `t` a
unit-norm text embedding (Dreyer et al.'s faithfulness target):

- `truth` (default): `t` is the zero-shot classifier's row of the image's ground-truth class;
- `predicted`: the row of the class the clean model predicts;
- `prompt`: one user text, embedded without a template, for every image.

The class rows are the `classifier` step's (template-averaged, the embeddings the pruned
accuracies use), not the bare class name the reference code embeds.

The images are a seeded sample of a dataset (`sample`): every step of the stage draws the
same images from the same `n_images` and `seed`, and keys its rows by `image_id`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from clipconcepts.attribution.schemas import PROMPT_TARGET

TARGETS = ("truth", "predicted", "prompt")


def wide(x: torch.Tensor) -> torch.Tensor:
    """float64 stays float64; every other dtype computes in float32."""
    return x if x.dtype == torch.float64 else x.float()


def target_cosine(embedding: torch.Tensor, text: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """`y` `[..., B]`: cosine of the (unnormalised) embeddings `[..., B, D]` with `text[ids]`."""
    embedding = wide(embedding)
    t = text[ids].to(embedding.dtype)  # [B, D]
    return (F.normalize(embedding, dim=-1) * t).sum(-1)


@dataclass
class Target:
    """The target of a run: `kind`, the texts `y` is taken against (`text` `[T, D]`, unit rows:
    the classifier, or the one prompt), and the classifier `[C, D]` that accuracy uses."""

    kind: str
    text: torch.Tensor
    classifier: torch.Tensor
    prompt: str = ""

    def ids(self, labels: torch.Tensor) -> torch.Tensor | None:
        """Rows of `text` per image; None means 'the predicted class' (decided on the clean
        embedding by whoever computes it)."""
        if self.kind == "truth":
            return labels.long()
        if self.kind == "prompt":
            return torch.zeros_like(labels, dtype=torch.long)
        return None

    def resolve(self, embedding: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Rows of `text` per image given the clean embeddings `[B, D]`."""
        ids = self.ids(labels.to(embedding.device))
        if ids is None:
            embedding = wide(embedding)
            ids = (F.normalize(embedding, dim=-1) @ self.text.to(embedding.dtype).T).argmax(-1)
        return ids

    def stored(self, ids: torch.Tensor) -> np.ndarray:
        """The `target` column: the class id, or `PROMPT_TARGET` for the prompt."""
        ids = ids.cpu().numpy().astype(np.int32)
        return np.full_like(ids, PROMPT_TARGET) if self.kind == "prompt" else ids


def make_target(clip, kind: str, classifier: torch.Tensor, prompt: str = "") -> Target:
    """A `Target` on the model's device; `prompt` is required for (and only used by) `prompt`."""
    if kind not in TARGETS:
        raise ValueError(
            f"config key attribution.target must be one of {', '.join(TARGETS)}, got {kind!r}"
        )
    classifier = F.normalize(classifier.to(device=clip.device, dtype=torch.float32), dim=-1)
    if kind == "prompt":
        if not prompt or not prompt.strip():
            raise ValueError("config key attribution.prompt must be set for target: prompt")
        text = clip.encode_text([prompt]).float()
        return Target(kind, F.normalize(text, dim=-1), classifier, prompt)
    return Target(kind, classifier, classifier)


# ---------------------------------------------------------------------------- images
@dataclass
class Sample:
    """A seeded sample of a zero-shot dataset: the dataset restricted to it and the image ids
    of its items (records keep their file ids; other datasets use the item index)."""

    dataset: object
    ids: list[str] | None  # item position -> original index, for non-record datasets

    def __len__(self) -> int:
        return len(self.dataset)


def sample(dataset, n_images: int | None, seed: int = 0) -> Sample:
    """`n_images` images of `dataset` (all when None or more than it has), drawn without
    replacement with `numpy.random.default_rng(seed)` and kept in dataset order."""
    if dataset.records is not None:
        return Sample(
            dataclasses.replace(dataset, records=dataset.records.subset(n_images, seed)), None
        )
    total = len(dataset.torch_dataset)
    if n_images is None or n_images >= total:
        keep = np.arange(total)
    else:
        keep = np.sort(np.random.default_rng(seed).choice(total, size=n_images, replace=False))
    subset = torch.utils.data.Subset(dataset.torch_dataset, keep.tolist())
    return Sample(dataclasses.replace(dataset, torch_dataset=subset), [str(i) for i in keep])


def batches(
    picked: Sample, batch_size: int, num_workers: int = 0
) -> Iterator[tuple[torch.Tensor, list[str], torch.Tensor]]:
    """`(images, image_ids, labels)` per batch of the sample, in order (skipped images, with
    `on_bad_image: skip`, are left out)."""
    for images, ids, labels, _ in picked.dataset.loader(batch_size, num_workers):
        if images is None or len(ids) == 0:
            continue
        if picked.ids is not None:
            ids = [picked.ids[int(i)] for i in ids]
        yield images, [str(i) for i in ids], torch.as_tensor(labels).long()
