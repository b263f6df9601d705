"""The concept world's small CLIP: its open_clip config, input transform and zero-shot scoring.

The model is a stock open_clip `CLIP` built from a registered JSON config, so anything that loads
open_clip models (including `clipconcepts.models.load_clip(arch=<config path>, pretrained=<ckpt>)`)
loads it. Its inputs are exactly what open_clip's standard preprocess yields from a 48x48 PNG:
RGB / 255, normalised with the OpenAI mean and std (Resize and CenterCrop are no-ops at 48x48).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.transformer import text_global_pool

from clipconcepts.conceptworld.generator import IMAGE_SIZE, Seed, WorldSample, generate
from clipconcepts.conceptworld.world import TEMPLATES, n_values, values_of

MODEL_NAME = "conceptworld-vit"
# 8-layer ViT with 12 heads of width 16 per layer (96 heads; the report analyses the last 3
# layers, a third as the paper's last 4 of 12): more heads per layer than the world has families,
# and each head wide enough to hold one family's 5-8 text directions (with 8 heads of width 8,
# every head that wrote colour also wrote position). 8x8 patches on 48x48 images (36 patches +
# CLS: concept regions span several patches), fixed 2-D sin-cos position embeddings (with
# learnable ones, position stayed at chance for 600+ steps in the first world: the model had to
# discover the patch layout first); a 3-layer text tower whose context holds the longest caption
# (~40 tokens when all eight families are named).
MODEL_CONFIG: dict = {
    "embed_dim": 96,
    "vision_cfg": {
        "image_size": IMAGE_SIZE,
        "patch_size": 8,
        "width": 192,
        "head_width": 16,
        "layers": 8,
        "mlp_ratio": 2.0,
        "pos_embed_type": "sin_cos_2d",
    },
    "text_cfg": {
        "context_length": 48,
        "vocab_size": 49408,
        "width": 64,
        "heads": 4,
        "layers": 3,
    },
}


def write_model_config(out_dir: str | Path) -> Path:
    """Write the model config as `{out_dir}/conceptworld-vit.json` (stem = model name)."""
    path = Path(out_dir) / f"{MODEL_NAME}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(MODEL_CONFIG, indent=2) + "\n")
    tmp.replace(path)
    return path


def build_model(
    config_path: str | Path,
) -> tuple[open_clip.CLIP, open_clip.tokenizer.SimpleTokenizer]:
    """Register `config_path` with open_clip and build a randomly initialised model + tokenizer."""
    config_path = Path(config_path)
    if not config_path.is_file():
        raise FileNotFoundError(f"concept-world model config not found: {config_path}")
    open_clip.add_model_config(config_path)
    model = open_clip.create_model(config_path.stem, pretrained=None)
    with torch.no_grad():
        model.visual.positional_embedding.copy_(grid_position_embedding(model.visual))
    tokenizer = open_clip.get_tokenizer(config_path.stem)
    return model, tokenizer


def grid_position_embedding(visual) -> torch.Tensor:
    """Fixed 2-D sin-cos position embeddings [1 + g*g, width] whose periods (2 to 4g patches)
    suit a g x g patch grid; the CLS row is zero.

    open_clip's `sin_cos_2d` uses MAE's frequencies (periods up to 10,000 patches): on a 6 x 6
    grid only ~5 of every 16 frequencies vary across the grid, and position stayed at chance
    after 800 steps. These are ordinary weights of the model (saved in its state dict), so any
    loader of the checkpoint gets them.
    """
    g = visual.grid_size[0]
    width = visual.positional_embedding.shape[1]
    n_freq = width // 4  # sin and cos, for x and for y
    periods = torch.logspace(math.log10(2.0), math.log10(4.0 * g), n_freq, dtype=torch.float64)
    coords = torch.arange(g, dtype=torch.float64)
    angles = 2 * math.pi * coords[:, None] / periods[None, :]  # [g, n_freq]
    axis = torch.cat([angles.sin(), angles.cos()], dim=1)  # [g, 2 n_freq]
    ys, xs = torch.meshgrid(coords.long(), coords.long(), indexing="ij")
    patches = torch.cat([axis[xs.flatten()], axis[ys.flatten()]], dim=1)  # row-major like conv1
    embedding = torch.zeros(1 + g * g, width, dtype=torch.float64)
    embedding[1:, : patches.shape[1]] = patches
    return embedding.float()


_MEAN = torch.tensor(OPENAI_DATASET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
_STD = torch.tensor(OPENAI_DATASET_STD, dtype=torch.float32).view(1, 3, 1, 1)


def to_model_input(images: np.ndarray) -> torch.Tensor:
    """uint8 [n, H, W, 3] -> float32 [n, 3, H, W], as ToTensor + Normalize(OpenAI mean/std)."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 images [n, H, W, 3], got {images.dtype} {images.shape}")
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)
    return (x - _MEAN) / _STD


def encode_text_trimmed(model: open_clip.CLIP, tokens: torch.Tensor) -> torch.Tensor:
    """`model.encode_text(tokens)` computed on the tokens up to the batch's last non-padding one.

    Exact for open_clip's causal text tower with EOT (argmax) pooling: no position attends to a
    later one, so the padding after the longest text never reaches a pooled token. Training
    captions average 12 of the 24 context tokens, so this saves a quarter of the text compute.
    """
    if model.attn_mask is None or model.text_pool_type != "argmax":
        raise ValueError("encode_text_trimmed needs a causal text tower with argmax pooling")
    length = int((tokens != 0).sum(dim=1).max())
    tokens = tokens[:, :length]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype)
    x = x + model.positional_embedding[:length].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = text_global_pool(model.ln_final(x), tokens, "argmax")
    if isinstance(model.text_projection, torch.nn.Linear):
        return model.text_projection(x)
    return x @ model.text_projection


@torch.no_grad()
def class_text_embeddings(model: open_clip.CLIP, tokenizer, family: str) -> torch.Tensor:
    """Zero-shot classifier [n_values, D]: per class, mean of normalised template embeddings."""
    classnames = values_of(family)
    templates = TEMPLATES[family]
    texts = [t.format(c) for c in classnames for t in templates]
    emb = F.normalize(model.encode_text(tokenizer(texts)), dim=-1)
    emb = emb.view(len(classnames), len(templates), -1).mean(dim=1)
    return F.normalize(emb, dim=-1)


@torch.no_grad()
def encode_images(model: open_clip.CLIP, images: np.ndarray, batch_size: int = 512) -> torch.Tensor:
    """L2-normalised image embeddings [n, D] of uint8 images [n, H, W, 3]."""
    parts = [
        F.normalize(model.encode_image(to_model_input(images[i : i + batch_size])), dim=-1)
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(parts)


def balanced_labels(n: int, family: str, rng: np.random.Generator) -> np.ndarray:
    """`n` value indices of `family`, as equal in count as possible, in random order."""
    return rng.permutation(np.arange(n) % n_values(family))


def held_out_family_set(family: str, n: int, seed: Seed, style: str = "filled") -> WorldSample:
    """A class-balanced set for `family` (its labels: `sample.attributes[family]`); the other
    families are sampled at random. Labels come from stream [*seed, 0], images from [*seed, 1]."""
    labels = balanced_labels(n, family, np.random.default_rng([*_as_list(seed), 0]))
    return generate(n, [*_as_list(seed), 1], attributes={family: labels}, style=style)


def zero_shot_accuracy(
    model: open_clip.CLIP, tokenizer, family: str, images: np.ndarray, labels: np.ndarray
) -> float:
    """Fraction of `images` whose nearest class text embedding (of `family`) is their label."""
    was_training = model.training
    model.eval()
    try:
        classifier = class_text_embeddings(model, tokenizer, family)
        predictions = (encode_images(model, images) @ classifier.T).argmax(dim=1).numpy()
    finally:
        model.train(was_training)
    return float((predictions == labels).mean())


def _as_list(seed: Seed) -> list[int]:
    return [int(seed)] if np.isscalar(seed) else [int(s) for s in seed]
