"""Prominent patches: the spectral foreground split of a class's patch features.

All images of one class are split together (the authors' per-class processing): the patch
features of the class are L2-normalised and decomposed by SVD; the second left-singular vector
(component 1) separates prominent patches from the rest. Its sign is arbitrary, so the authors'
rule fixes it: a component is flipped when more than half, but not all, of its entries are
positive; then positive means prominent (an all-positive component is left as it is). Per image
the largest 8-connected region of prominent patches is kept, plus the second largest when it
has at least `second_min` patches.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
FOREGROUND_COMPONENT = 1


def fix_signs(components: np.ndarray) -> np.ndarray:
    """The authors' sign rule, per column: flip when 0.5 < fraction positive < 1."""
    out = components.copy()
    positive = (out > 0).mean(axis=0)
    flip = (positive > 0.5) & (positive < 1.0)
    out[:, flip] *= -1
    return out


def spectral_components(features: torch.Tensor, n_components: int = 3) -> np.ndarray:
    """`[N, K]` left-singular vectors of the L2-normalised rows of `features` `[N, C]`, signs
    fixed by `fix_signs`."""
    flat = torch.nn.functional.normalize(features.float(), dim=-1)
    u, _, _ = torch.linalg.svd(flat, full_matrices=False)
    return fix_signs(u[:, :n_components].cpu().numpy())


def largest_components(mask: np.ndarray, second_min: int = 5) -> np.ndarray:
    """The largest 8-connected component of a boolean grid, with the second largest added when
    it has >= `second_min` cells; an empty grid stays empty."""
    labels, n = ndimage.label(mask, structure=EIGHT_CONNECTED)
    if n == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(-sizes, kind="stable")  # ties: the first label met in raster order
    keep = labels == order[0] + 1
    if n > 1 and sizes[order[1]] >= second_min:
        keep |= labels == order[1] + 1
    return keep


def foreground_masks(
    features: torch.Tensor,
    grid: tuple[int, int],
    n_components: int = 3,
    threshold: float = 0.0,
    second_min: int = 5,
) -> np.ndarray:
    """Boolean `[B, h, w]` prominent-patch masks of a class's patch features `[B, h*w, C]`."""
    b, t, c = features.shape
    if t != grid[0] * grid[1]:
        raise ValueError(f"{t} patch tokens do not fill a {grid[0]}x{grid[1]} grid")
    comps = spectral_components(features.reshape(b * t, c), n_components)
    prominent = comps[:, FOREGROUND_COMPONENT] > threshold
    prominent = prominent.reshape(b, *grid)
    return np.stack([largest_components(m, second_min) for m in prominent])
