"""Mutual information between an image's visual concepts and its class's text concepts.

Both sides are sets of descriptor ids: D_v (the image's mutual descriptors, ordered by
importance) and D_y (the top-u descriptors of the class). Two forms of MI:

- `eq9` (default): the paper's Appendix B Eq. 9 as the authors' code computes it,
  ln|D_v| + ln|D_y| + H(X, Y) over the 0/1 contingency table of equal ids. With k >= 1 shared
  ids every non-zero cell holds 1/k, so H = ln k and MI = ln(|D_v| * |D_y| * k); with none it
  is 0. Only this form reaches the paper's Table 3 values (6.5-8.2).
- `eq1`: the main text's textbook MI of the same normalised table,
  sum p(x,y) ln p(x,y) / (p(x) p(y)). With k shared ids, each once on each side, every shared
  cell and every non-empty marginal is 1/k, so MI = ln k (0 for k = 1).

The removal curve (MI dynamics) follows the authors' overwrite semantics: the descriptors of
D_v are removed one at a time in descending importance by overwriting each with an impossible
id, so |D_v| stays N and the curve has N + 1 points, ending at 0 when nothing is shared.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

MI_FORMS = ("eq9", "eq1")
REMOVED = -1  # an id no descriptor has: a removed descriptor matches nothing


def _shared_count(dv: Sequence[int], dy: Sequence[int]) -> int:
    """Ones in the 0/1 contingency table: pairs (i, j) with dv[i] == dy[j]."""
    in_dy: dict[int, int] = {}
    for y in dy:
        in_dy[y] = in_dy.get(y, 0) + 1
    return sum(in_dy.get(x, 0) for x in dv if x != REMOVED)


def mutual_information(dv: Sequence[int], dy: Sequence[int], form: str = "eq9") -> float:
    """MI between descriptor-id lists `dv` (may hold REMOVED entries) and `dy`."""
    if form not in MI_FORMS:
        raise ValueError(f"unknown MI form {form!r}; use one of {MI_FORMS} (config mutual.mi_form)")
    n, m = len(dv), len(dy)
    k = _shared_count(dv, dy)
    if n == 0 or m == 0 or k == 0:
        return 0.0
    if form == "eq9":
        return math.log(n) + math.log(m) + math.log(k)
    # eq1: p(x, y) = 1/k on each shared cell; the marginals count a row's (column's) ones.
    rows: dict[int, int] = {}
    cols: dict[int, int] = {}
    cells = [(i, j) for i, x in enumerate(dv) if x != REMOVED for j, y in enumerate(dy) if x == y]
    for i, j in cells:
        rows[i] = rows.get(i, 0) + 1
        cols[j] = cols.get(j, 0) + 1
    return sum((1 / k) * math.log((1 / k) / ((rows[i] / k) * (cols[j] / k))) for i, j in cells)


def removal_curve(dv: Sequence[int], dy: Sequence[int], form: str = "eq9") -> list[float]:
    """MI after removing the first 0, 1, ..., N descriptors of `dv` (N + 1 points; the authors'
    overwrite semantics). An empty `dv` gives the single point [0.0]."""
    current = list(dv)
    curve = [mutual_information(current, dy, form)]
    for i in range(len(current)):
        current[i] = REMOVED
        curve.append(mutual_information(current, dy, form))
    return curve


def average_curves(curves: Sequence[Sequence[float]]) -> np.ndarray:
    """Curves zero-padded to the longest one and averaged point by point (the authors' dataset
    curve: a short curve counts as 0 beyond its end)."""
    if not curves:
        return np.zeros(0)
    length = max(len(c) for c in curves)
    padded = np.zeros((len(curves), length))
    for row, curve in zip(padded, curves, strict=True):
        row[: len(curve)] = curve
    return padded.mean(axis=0)


def area_under_curve(curve: Sequence[float]) -> float:
    """AUC of a (dataset-averaged) curve: its mean over the global length, as the authors do."""
    return float(np.mean(curve)) if len(curve) else 0.0
