"""The per-class path of the mutual-knowledge analysis: one class's images in, one row per image
and concept method out.

All images of a class go through each step together: one encoder pass for their tokens and
embeddings, one spectral split, one concept fit, all visual prompts of the class encoded in
large batches, one batched Sinkhorn. An image without prominent patches, or whose concepts share
no descriptor, is recorded with a status and an empty D_v (MI 0), never a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from clipconcepts.mutual.concepts import CONCEPT_METHODS, assign_concepts
from clipconcepts.mutual.foreground import foreground_masks
from clipconcepts.mutual.information import MI_FORMS, removal_curve
from clipconcepts.mutual.optimal_transport import SINGLE_CONCEPT, select_descriptors
from clipconcepts.mutual.towers import Tower, wrap_tower
from clipconcepts.mutual.visual_prompts import concept_ellipses, draw_prompts

NO_FOREGROUND = "no_foreground"
FEATURES = ("tokens", "keys")
TEXT_SIDES = ("predicted", "truth")
RESIZE_MODES = ("bilinear", "bicubic")  # the squash to the input size (run.squash_transform)


@dataclass(frozen=True)
class MutualSettings:
    """Every knob of the per-image path (config section `mutual`)."""

    features: str = "tokens"
    foreground_components: int = 3
    second_min: int = 5
    n_concepts: int = 5
    methods: tuple[str, ...] = CONCEPT_METHODS
    kmeans_iterations: int = 500
    seed: int = 0
    top_k: int = 500
    relevance_offset: float = 0.02
    sinkhorn_scale: float = 2.5
    sinkhorn_iterations: int = 1000
    per_concept: int = 3
    top_u: int = 50
    text_side: str = "predicted"
    mi_form: str = "eq9"
    batch_size: int = 256
    resize: str = "bilinear"
    single_concept: str = "logits"

    def __post_init__(self):
        checks = {
            "features": (self.features, FEATURES),
            "text_side": (self.text_side, TEXT_SIDES),
            "mi_form": (self.mi_form, MI_FORMS),
            "resize": (self.resize, RESIZE_MODES),
            "single_concept": (self.single_concept, SINGLE_CONCEPT),
        }
        for key, (value, allowed) in checks.items():
            if value not in allowed:
                raise ValueError(f"config key mutual.{key} is {value!r}; use one of {allowed}")
        for method in self.methods:
            if method not in CONCEPT_METHODS:
                raise ValueError(
                    f"config key mutual.methods: unknown {method!r}; use {CONCEPT_METHODS}"
                )


@dataclass
class TextSide:
    """The text encoder's side: class weights `[C, D]`, descriptor embeddings with the template
    `[T, D]` and without `[T, D]` (all unit-norm), and each class's top-u descriptor ids."""

    classifier: torch.Tensor
    descriptors: torch.Tensor
    descriptors_plain: torch.Tensor
    top_u: int = 50
    class_descriptors: torch.Tensor = field(init=False)

    def __post_init__(self):
        u = min(self.top_u, self.descriptors.shape[0])
        self.class_descriptors = (self.classifier @ self.descriptors.T).topk(u, dim=1).indices


def model_input(tower: Tower, images: np.ndarray) -> torch.Tensor:
    """uint8 `[B, S, S, 3]` (already squashed to the model's size) -> normalised input."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(255)
    return tower.prepare(x)


@torch.no_grad()
def encode_class(tower: Tower, images: np.ndarray, features: str, batch_size: int):
    """Patch features `[B, T, C]` and unit-norm embeddings `[B, D]` of one pass."""
    feats, embs = [], []
    for start in range(0, len(images), batch_size):
        x = model_input(tower, images[start : start + batch_size])
        tokens, emb = tower.tokens_and_embeddings(x, features)
        feats.append(tokens.float())
        embs.append(torch.nn.functional.normalize(emb.float(), dim=-1))
    return torch.cat(feats), torch.cat(embs)


@torch.no_grad()
def encode_prompts(tower: Tower, prompts: np.ndarray, batch_size: int) -> torch.Tensor:
    """Unit-norm embeddings of a stack of prompt images `[P, S, S, 3]`."""
    out = []
    for start in range(0, len(prompts), batch_size):
        emb = tower.encode_image(model_input(tower, prompts[start : start + batch_size]))
        out.append(torch.nn.functional.normalize(emb.float(), dim=-1))
    return torch.cat(out) if out else torch.empty(0)


def explain_class(
    clip,
    images: np.ndarray,
    image_ids: Sequence[str],
    labels: Sequence[int],
    text: TextSide,
    settings: MutualSettings,
) -> list[dict]:
    """Rows (one per image and method) for the images of one class, squashed to the model's
    input size, uint8 `[B, S, S, 3]`. `clip`: a Tower (or a HeadAwareCLIP)."""
    tower = wrap_tower(clip)
    tower.check_features(settings.features)
    device = text.classifier.device
    grid = tower.grid()
    size = images.shape[1]
    feats, embs = encode_class(tower, images, settings.features, settings.batch_size)
    predicted = (embs.to(device) @ text.classifier.T).argmax(dim=1).cpu().numpy()
    fg = foreground_masks(feats, grid, settings.foreground_components, 0.0, settings.second_min)
    flat_fg = fg.reshape(len(images), -1)
    fg_feats = feats.cpu().numpy()[flat_fg]  # [n_prominent, C], image by image

    rows = []
    for method in settings.methods:
        grids = np.full(flat_fg.shape, -1, dtype=np.int64)
        if len(fg_feats):
            grids[flat_fg] = assign_concepts(
                method, fg_feats, settings.n_concepts, settings.seed, settings.kmeans_iterations
            )
        grids = grids.reshape(len(images), *grid)
        ellipses = [concept_ellipses(g, size) for g in grids]
        prompts = [draw_prompts(images[i], e) for i, per in enumerate(ellipses) for _, e in per]
        prompt_emb = (
            encode_prompts(tower, np.concatenate(prompts), settings.batch_size).to(device)
            if prompts
            else torch.empty(0, text.classifier.shape[1], device=device)
        )
        concept_emb = prompt_emb.view(-1, 3, prompt_emb.shape[-1]).mean(dim=1)  # not renormalised
        with_concepts = [i for i, per in enumerate(ellipses) if per]
        per_image = torch.split(concept_emb, [len(ellipses[i]) for i in with_concepts])
        selections = {}
        if with_concepts:
            chosen = select_descriptors(
                list(per_image),
                embs[with_concepts].to(device),
                text.descriptors,
                text.descriptors_plain,
                settings.top_k,
                settings.relevance_offset,
                settings.sinkhorn_scale,
                settings.per_concept,
                settings.sinkhorn_iterations,
                settings.single_concept,
            )
            selections = dict(zip(with_concepts, chosen, strict=True))
        concept_rows = _concept_scores(
            ellipses, with_concepts, per_image, selections, embs.to(device), text
        )
        for i in range(len(images)):
            side = int(predicted[i]) if settings.text_side == "predicted" else int(labels[i])
            dy = text.class_descriptors[side].tolist()
            sel = selections.get(i)
            dv = sel.ids if sel else []
            curve = removal_curve(dv, dy, settings.mi_form)
            rows.append(
                {
                    "image_id": str(image_ids[i]),
                    "class_id": int(labels[i]),
                    "predicted_id": int(predicted[i]),
                    "method": method,
                    "status": NO_FOREGROUND if sel is None else sel.status,
                    "n_foreground": int(flat_fg[i].sum()),
                    "ellipses": [{"concept": c, **e.as_dict()} for c, e in ellipses[i]],
                    "dv_ids": dv,
                    "dv_relevance": sel.relevance if sel else [],
                    "dy_ids": dy,
                    "shared_ids": [d for d in dv if d in set(dy)],
                    "mi": curve[0],
                    "curve": curve,
                    "concept_grid": grids[i].tolist(),
                    "concepts": concept_rows.get(i, []),
                }
            )
    return rows


def _concept_scores(ellipses, with_concepts, per_image, selections, embs, text) -> dict:
    """Per image with concepts: one dict per concept (id order) with `visual` = cosine of the
    image with the concept's embedding (the mean of its prompts' embeddings), `descriptor_id` =
    its top descriptor (its first Sinkhorn pick; where the image's intersection was empty, its
    top descriptor under the concept classifier) and `textual` = cosine of the image with that
    descriptor (embedded without a template). Faithfulness (Table 1) ranks concepts by
    visual x textual."""
    out = {}
    for i, concept_emb in zip(with_concepts, per_image, strict=True):
        sel = selections.get(i)
        top = sel.concept_top if sel is not None and sel.concept_top else []
        if len(top) != concept_emb.shape[0]:
            top = (concept_emb @ text.descriptors.T).argmax(dim=1).tolist()
        visual = torch.nn.functional.normalize(concept_emb, dim=-1) @ embs[i]
        textual = text.descriptors_plain[top] @ embs[i]
        out[i] = [
            {"concept": c, "visual": float(v), "descriptor_id": int(d), "textual": float(t)}
            for (c, _), v, d, t in zip(ellipses[i], visual, top, textual, strict=True)
        ]
    return out
