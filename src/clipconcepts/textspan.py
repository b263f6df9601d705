"""TEXTSPAN (Gandelsman et al., ICLR 2024), batched over attention heads.

For one head, ``data`` holds its direct contributions to the image embedding over N images
(``[N, D]``) and ``texts`` holds T L2-normalised text embeddings (``[T, D]``). The reference
algorithm (``textspan_reference`` below, the steps of the authors' code) is:

1. SVD of the raw, uncentred data; keep the top ``rank`` right singular vectors ``V`` (``[D, r]``).
2. Project every text onto their span: ``t <- V V^T t`` (no renormalisation).
3. Centre the data (subtract the mean over images).
4. ``iters`` times: score every text by the unbiased std over images of ``data . t``; pick the
   arg-max; remove the picked direction from the data and from every text (Gram-Schmidt with the
   picked text's squared norm).

``textspan`` computes the same picks without touching the images after one pass:

* The right singular vectors of ``X`` are the top eigenvectors of the ``D x D`` Gram ``X^T X``
  (accumulated in float64, from the centred Gram plus ``N m m^T`` to avoid cancellation).
* A projected text is ``V a`` with ``a = V^T t``, so ``data . t = (X_c V) a``; its unbiased
  variance is ``a^T C a`` with ``C = V^T Cov V`` (``r x r``), ``Cov`` the centred covariance.
* Removing a picked direction ``a_p`` maps ``X_c V -> X_c V P`` and ``A -> A P`` with
  ``P = I - a_p a_p^T / |a_p|^2``, so ``C -> P C P``. Each iteration costs ``O(T r^2)`` per head,
  independent of N (the reference's costs ``O(N D T)``).

Only each head's mean and centred Gram (its ``HeadMoments``) enter: ``textspan_from_moments``
runs TEXTSPAN from moments streamed block by block (``MomentAccumulator``, how the workflow reads
``heads.parquet``: ``O(K D^2)`` memory, not ``O(K N D)``), ``textspan`` from data in memory; the
same code runs after the moments, so both pick the same texts.

Two engines compute this: ``numpy`` (the CPU default; numpy's ``b.T @ b`` is a BLAS ``syrk``, and
staying in one library keeps torch's and numpy's thread pools from spinning against each other)
and ``torch`` (any device, batched over heads; the default off CPU). Both give the same picks.

Variance explained by a pick: the variance removed from the (centred, partly deflated) data at
that step, summed over the D dimensions, i.e. ``var(data . t_p) / |t_p|^2`` with unbiased variance.
``variance / total_variance`` is the fraction of the head's total (centred) variance.

Rank: the span keeps ``min(rank, N, D)`` directions, as the reference's thin SVD does, and
additionally drops directions whose singular value is below ``rtol * sigma_max``. A head's
contributions often have a lower rank than the requested 80 (a ViT head writes through a 64-dim
value space); the reference then keeps singular vectors of (numerically) zero singular values,
which are rounding noise and make its later picks depend on the SVD routine. Dropping them makes
the result well defined; with full-rank data nothing changes. On real heads (rank ~67 for a
64-dim head) the authors' later picks can therefore differ from ours; theirs depend on noise.

Picks past a head's kept rank explain no variance (reported as 0); they never repeat a text.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

log = logging.getLogger(__name__)

__all__ = [
    "HeadMoments",
    "MomentAccumulator",
    "TextSpanResult",
    "textspan",
    "textspan_from_moments",
    "textspan_reference",
]

# Default relative tolerance on singular values (see module docstring). Float32 rounding noise in
# a rank-deficient head sits around 1e-7..1e-6 of the largest singular value.
DEFAULT_RTOL = 1e-5
# Eigenvalues of a float64 Gram resolve singular values down to ~sqrt(eps64) ~ 1e-8 of the largest.
MIN_RTOL = 1e-7
# Scores below this fraction of a head's first best score are rounding noise: the span is exhausted.
_NOISE = 1e-12


@dataclass
class TextSpanResult:
    """Picks of TEXTSPAN for K heads (the K dimension is always present, even for 2-D input).

    Attributes:
        indices: ``LongTensor[K, iters]``, picked text indices in pick order.
        variance: ``Tensor[K, iters]`` (float64), variance removed from the head's data by each pick.
        total_variance: ``Tensor[K]`` (float64), total variance of the head's centred data
            (sum over dimensions of the unbiased per-dimension variance).
        rank: ``LongTensor[K]``, number of span directions actually kept per head.
    """

    indices: torch.Tensor
    variance: torch.Tensor
    total_variance: torch.Tensor
    rank: torch.Tensor

    @property
    def fraction(self) -> torch.Tensor:
        """Fraction of each head's total variance explained by each pick, ``[K, iters]``."""
        total = self.total_variance.unsqueeze(-1)
        return torch.where(total > 0, self.variance / total.clamp_min(1e-300), 0.0)


def _as_tensor(x: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        x = np.ascontiguousarray(x)
        return torch.from_numpy(x if x.flags.writeable else x.copy())  # e.g. Arrow-backed
    raise TypeError(f"textspan: {name} must be a torch.Tensor or numpy array, got {type(x)!r}")


def _validate(
    data: torch.Tensor, texts: torch.Tensor, iters: int, rank: int
) -> tuple[int, int, int, int]:
    if data.ndim != 3:
        raise ValueError(
            f"textspan: contributions must be [K, N, D] or [N, D], got shape {tuple(data.shape)}"
        )
    if texts.ndim != 2:
        raise ValueError(f"textspan: text_embeddings must be [T, D], got {tuple(texts.shape)}")
    k, n, d = data.shape
    t = texts.shape[0]
    if texts.shape[1] != d:
        raise ValueError(
            f"textspan: contributions have D={d} but text_embeddings have D={texts.shape[1]}"
        )
    if n < 2:
        raise ValueError(f"textspan: need at least 2 images for a variance, got N={n}")
    if iters < 1 or rank < 1:
        raise ValueError(f"textspan: iters and rank must be >= 1, got iters={iters}, rank={rank}")
    if t < iters:
        raise ValueError(f"textspan: cannot pick iters={iters} distinct texts from T={t} texts")
    return k, n, d, t


def _moments_numpy(rows: np.ndarray, row_block: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and centred Gram of one head's rows ``[N, D]`` in float64, row block by row block
    (numpy's ``b.T @ b`` is a BLAS ``syrk``, half a ``gemm``'s work)."""
    n, d = rows.shape
    mean = np.zeros(d)
    for start in range(0, n, row_block):
        mean += rows[start : start + row_block].sum(axis=0, dtype=np.float64)
    mean /= n
    gram_c = np.zeros((d, d))
    for start in range(0, n, row_block):
        block = rows[start : start + row_block].astype(np.float64)
        block -= mean
        gram_c += block.T @ block
    return mean, gram_c


def _span_numpy(
    mean: np.ndarray, gram: np.ndarray, n: int, texts: np.ndarray, r: int, rtol: float, first: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Set-up of a chunk of heads from their moments (``mean`` ``[k, D]``, centred Gram
    ``[k, D, D]`` over ``n`` images) in numpy (CPU), head by head.

    Per head: top ``r`` eigenvectors of the raw Gram (= centred Gram + N m m^T, which avoids
    cancellation in the centred one); texts in that basis; the centred covariance in that basis.
    Returns (text coordinates ``[k, T, r]``, covariances ``[k, r, r]``, total variances ``[k]``,
    kept ranks ``[k]``).
    """
    k = len(mean)
    coords = np.empty((k, texts.shape[0], r))
    cov = np.empty((k, r, r))
    total = np.empty(k)
    kept = np.empty(k, dtype=np.int64)
    for i in range(k):
        gram_c = gram[i]
        if not (np.isfinite(gram_c).all() and np.isfinite(mean[i]).all()):
            raise ValueError(f"textspan: contributions of head {first + i} hold NaN/inf")
        # The raw Gram's top eigenvectors are the raw data's top right singular vectors.
        evals, evecs = np.linalg.eigh(gram_c + n * np.outer(mean[i], mean[i]))  # ascending
        evals, basis = evals[::-1][:r], evecs[:, ::-1][:, :r]
        keep = evals > (rtol**2) * max(evals[0], 0.0)
        basis = basis * keep  # dropped directions become zero columns
        coords[i] = texts @ basis
        cov[i] = basis.T @ gram_c @ basis / (n - 1)
        total[i] = np.trace(gram_c) / (n - 1)
        kept[i] = keep.sum()
    return coords, cov, total, kept


def _iterate_numpy(coords: np.ndarray, cov: np.ndarray, iters: int) -> tuple[np.ndarray, ...]:
    """Greedy picks in span coordinates (numpy); see ``_iterate_torch``."""
    k, t, r = coords.shape
    picked = np.zeros((k, t), dtype=bool)
    indices = np.empty((k, iters), dtype=np.int64)
    variance = np.zeros((k, iters))
    heads = np.arange(k)
    floor = None
    for i in range(iters):
        scores = ((coords @ cov) * coords).sum(axis=-1)  # a^T C a = var(data . t)
        if floor is None:
            floor = _NOISE * np.maximum(scores.max(axis=1, keepdims=True), 1e-300)
        scores = np.where(scores > floor, scores, 0.0)
        scores[picked] = -np.inf
        pick = scores.argmax(axis=1)
        indices[:, i] = pick
        picked[heads, pick] = True
        a = coords[heads, pick]  # [k, r]
        norm2 = (a * a).sum(axis=1)
        best = scores[heads, pick]
        ok = (best > 0) & (norm2 > 0)
        safe = np.where(ok, norm2, 1.0)
        variance[:, i] = np.where(ok, best / safe, 0.0)
        outer = np.where(ok[:, None, None], a[:, :, None] * a[:, None, :] / safe[:, None, None], 0)
        proj = np.eye(r) - outer  # P = I - a a^T / |a|^2 (identity where the pick is empty)
        coords = coords @ proj
        cov = proj @ cov @ proj
    return indices, variance


def _moments_torch(heads: torch.Tensor, row_block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Means ``[k, D]`` and centred Grams ``[k, D, D]`` (float64) of a chunk of heads
    ``[k, N, D]`` in torch (any device), batched over heads."""
    k, n, d = heads.shape
    mean = torch.zeros(k, d, dtype=torch.float64, device=heads.device)
    for start in range(0, n, row_block):
        mean += heads[:, start : start + row_block].sum(dim=1, dtype=torch.float64)
    mean /= n
    gram_c = torch.zeros(k, d, d, dtype=torch.float64, device=heads.device)
    for start in range(0, n, row_block):
        block = heads[:, start : start + row_block].to(torch.float64) - mean[:, None, :]
        gram_c.baddbmm_(block.transpose(1, 2), block)
    return mean, gram_c


def _span_torch(
    mean: torch.Tensor, gram_c: torch.Tensor, n: int, texts: torch.Tensor, r: int, rtol: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Set-up of a chunk of heads from their moments in torch (any device), batched over heads.

    The same steps and outputs as ``_span_numpy``.
    """
    if not bool(torch.isfinite(gram_c).all() and torch.isfinite(mean).all()):
        raise ValueError("textspan: contributions hold NaN/inf")
    evals, evecs = torch.linalg.eigh(gram_c + n * mean[:, :, None] * mean[:, None, :])
    evals, basis = evals.flip(-1)[:, :r], evecs.flip(-1)[:, :, :r]
    keep = evals > (rtol**2) * evals[:, :1].clamp_min(0)
    basis = basis * keep[:, None, :]
    coords = texts @ basis
    cov = basis.transpose(1, 2) @ gram_c @ basis / (n - 1)
    total = gram_c.diagonal(dim1=1, dim2=2).sum(-1) / (n - 1)
    return coords, cov, total, keep.sum(-1)


def _iterate_torch(coords: torch.Tensor, cov: torch.Tensor, iters: int) -> tuple[torch.Tensor, ...]:
    """Greedy picks in span coordinates, batched over heads.

    ``coords`` ``[k, T, r]``: texts in the span basis; ``cov`` ``[k, r, r]``: covariance of the
    centred data in that basis. Returns picked indices ``[k, iters]`` and removed variances.
    """
    k, t, r = coords.shape
    dev = coords.device
    picked = torch.zeros(k, t, dtype=torch.bool, device=dev)
    indices = torch.empty(k, iters, dtype=torch.long, device=dev)
    variance = torch.zeros(k, iters, dtype=torch.float64, device=dev)
    eye = torch.eye(r, dtype=torch.float64, device=dev)
    heads = torch.arange(k, device=dev)
    floor = None
    for i in range(iters):
        scores = ((coords @ cov) * coords).sum(dim=-1)  # a^T C a = var(data . t)
        if floor is None:
            floor = _NOISE * scores.amax(dim=1, keepdim=True).clamp_min(1e-300)
        scores = torch.where(scores > floor, scores, 0.0)
        # The reference's picked text becomes exactly zero; masking keeps picks unique even when
        # every remaining score is zero (then the lowest unpicked index is taken).
        scores = scores.masked_fill(picked, -math.inf)
        pick = scores.argmax(dim=1)
        indices[:, i] = pick
        picked[heads, pick] = True
        a = coords[heads, pick]  # [k, r]
        norm2 = (a * a).sum(dim=1)
        best = scores[heads, pick]
        ok = (best > 0) & (norm2 > 0)
        safe = torch.where(ok, norm2, 1.0)
        variance[:, i] = torch.where(ok, best / safe, 0.0)
        outer = a[:, :, None] * a[:, None, :] / safe[:, None, None]
        proj = eye - torch.where(ok[:, None, None], outer, 0.0)  # P = I - a a^T / |a|^2
        coords = coords @ proj
        cov = proj @ cov @ proj
    return indices, variance


def textspan(
    contributions: torch.Tensor | np.ndarray,
    text_embeddings: torch.Tensor | np.ndarray,
    iters: int = 5,
    rank: int = 80,
    device: str | torch.device | None = None,
    rtol: float = DEFAULT_RTOL,
    memory_budget_mb: int = 1024,
    engine: str = "auto",
) -> TextSpanResult:
    """TEXTSPAN for K heads at once (see the module docstring for the algorithm).

    Args:
        contributions: ``[K, N, D]`` (K heads) or ``[N, D]`` (one head), numpy or torch.
        text_embeddings: ``[T, D]``, already L2-normalised by the caller (no template).
        iters: number of texts picked per head.
        rank: span dimension (reference default 80); clamped to ``min(N, D)`` and to the number of
            singular values ``>= rtol * sigma_max`` of each head.
        device: where to compute; default: the device of ``contributions`` (CPU for numpy).
        rtol: relative tolerance below which singular directions count as zero, in
            ``[1e-7, 1)`` (the Gram matrix cannot resolve smaller singular values).
        memory_budget_mb: rough cap on float64 working memory per chunk of heads.
        engine: ``"numpy"`` (CPU only), ``"torch"`` (any device, batched over heads) or
            ``"auto"``: numpy on CPU, torch elsewhere. On CPU, numpy's ``syrk`` halves the Gram
            cost, and keeping to one library keeps torch's and numpy's thread pools from
            spinning against each other.

    Returns:
        ``TextSpanResult`` on CPU; the K dimension is always present (K=1 for 2-D input).
    """
    data = _as_tensor(contributions, "contributions")
    texts = _as_tensor(text_embeddings, "text_embeddings")
    if data.ndim == 2:
        data = data.unsqueeze(0)
    k, n, d, t = _validate(data, texts, iters, rank)
    if not (data.is_floating_point() and texts.is_floating_point()):
        raise TypeError("textspan: contributions and text_embeddings must be floating point")
    dev, engine = _engine(device, data.device, engine, rtol)
    r_max = min(rank, n, d)

    # Heads per chunk, from float64 bytes per head: two Grams (2 D^2), the span basis (D r) and
    # the text coordinates with their temporaries (3 T r); torch also holds a row block per head.
    row_block = 4096
    per_head_bytes = 8 * (2 * d * d + d * r_max + 3 * t * r_max + row_block * d)
    chunk = max(1, min(k, (memory_budget_mb << 20) // per_head_bytes))
    log.debug(
        "textspan: K=%d N=%d D=%d T=%d rank=%d, %d heads/chunk, %s",
        k,
        n,
        d,
        t,
        r_max,
        chunk,
        engine,
    )

    texts = _prepare_texts(texts, engine, dev)
    parts: list[tuple[torch.Tensor, ...]] = []  # per chunk: indices, variance, total, rank
    for start in range(0, k, chunk):
        heads = data[start : start + chunk].detach()
        if engine == "numpy":
            heads = heads.cpu()
            if heads.dtype not in (torch.float32, torch.float64):
                heads = heads.to(torch.float32)
            mean, gram = np.empty((len(heads), d)), np.empty((len(heads), d, d))
            for i, rows in enumerate(heads.numpy()):
                mean[i], gram[i] = _moments_numpy(rows, row_block)
        else:
            mean, gram = _moments_torch(heads.to(dev), row_block)
        parts.append(_pick(mean, gram, n, texts, r_max, rtol, iters, engine, start))
    return _collect(parts, iters)


@dataclass
class HeadMoments:
    """What TEXTSPAN needs of K heads' contributions over the same N images.

    Attributes:
        n: number of images.
        mean: ``[K, D]`` float64, each head's mean contribution.
        gram: ``[K, D, D]`` float64, each head's centred Gram ``sum_i (x_i - m)(x_i - m)^T``.
    """

    n: int
    mean: torch.Tensor
    gram: torch.Tensor


class MomentAccumulator:
    """Streams rows of K heads into ``HeadMoments`` in ``O(K D^2)`` memory, whatever N.

    Rows arrive in blocks per head, in any order and of any size. A block's mean and centred
    Gram (float64) are merged into the head's running ones with the pairwise update of Chan,
    Golub & LeVeque: for counts ``a``, ``b``, means ``m_a``, ``m_b``, ``delta = m_b - m_a``,
    ``m = m_a + delta b / (a + b)`` and ``G = G_a + G_b + delta delta^T a b / (a + b)``, which
    keeps the centred Gram free of the cancellation of raw sums (as the in-memory path, which
    centres first). ``engine``: ``numpy`` (CPU; a block's Gram is a BLAS ``syrk``), ``torch``
    (any device) or ``auto`` (numpy on CPU).
    """

    def __init__(self, n_heads: int, dim: int, device: str | torch.device = "cpu", engine="auto"):
        self.device, self.engine = _engine(device, torch.device(device), engine, DEFAULT_RTOL)
        self.counts = np.zeros(n_heads, dtype=np.int64)
        if self.engine == "numpy":
            self._mean, self._gram = np.zeros((n_heads, dim)), np.zeros((n_heads, dim, dim))
        else:
            kw = {"dtype": torch.float64, "device": self.device}
            self._mean = torch.zeros(n_heads, dim, **kw)
            self._gram = torch.zeros(n_heads, dim, dim, **kw)

    def add(self, head: int, rows: np.ndarray | torch.Tensor, scale: np.ndarray | None = None):
        """Add a block of rows ``[b, D]`` of head index ``head``, each first multiplied by its
        ``scale`` (``[b]``, in float64) if given."""
        b = len(rows)
        if b == 0:
            return
        if self.engine == "numpy":
            x = np.array(rows, dtype=np.float64)  # a copy: scaled and centred in place
            if scale is not None:
                x *= np.asarray(scale, dtype=np.float64)[:, None]
            block_mean = x.mean(axis=0)
            x -= block_mean
            block_gram = x.T @ x
            outer = np.outer
        else:
            x = torch.as_tensor(rows).to(device=self.device, dtype=torch.float64)
            if scale is not None:
                x = x * torch.as_tensor(scale).to(device=self.device, dtype=torch.float64)[:, None]
            block_mean = x.mean(dim=0)
            x = x - block_mean
            block_gram = x.T @ x
            outer = torch.outer
        a = int(self.counts[head])
        total = a + b
        delta = block_mean - self._mean[head]
        self._mean[head] += delta * (b / total)
        self._gram[head] += block_gram
        self._gram[head] += outer(delta, delta) * (a * b / total)
        self.counts[head] = total

    def moments(self) -> HeadMoments:
        """The accumulated moments; every head must have received the same number of rows."""
        if len(self.counts) == 0 or self.counts.min() != self.counts.max():
            raise ValueError(
                f"textspan: heads hold different numbers of rows: {self.counts.tolist()}"
            )
        return HeadMoments(
            int(self.counts[0]), torch.as_tensor(self._mean), torch.as_tensor(self._gram)
        )


def textspan_from_moments(
    moments: HeadMoments,
    text_embeddings: torch.Tensor | np.ndarray,
    iters: int = 5,
    rank: int = 80,
    device: str | torch.device | None = None,
    rtol: float = DEFAULT_RTOL,
    memory_budget_mb: int = 1024,
    engine: str = "auto",
) -> TextSpanResult:
    """TEXTSPAN from the heads' moments (streamed with ``MomentAccumulator``): the picks of
    ``textspan`` on the same data, without the data. Arguments as ``textspan``."""
    texts = _as_tensor(text_embeddings, "text_embeddings")
    mean, gram, n = moments.mean, moments.gram, moments.n
    if mean.ndim != 2 or gram.shape != (*mean.shape, mean.shape[1]):
        raise ValueError(
            f"textspan: moments must hold mean [K, D] and gram [K, D, D], got "
            f"{tuple(mean.shape)} and {tuple(gram.shape)}"
        )
    k, d = mean.shape
    _validate(torch.empty(k, n, d, device="meta"), texts, iters, rank)
    dev, engine = _engine(device, gram.device, engine, rtol)
    r_max = min(rank, n, d)
    t = texts.shape[0]
    per_head_bytes = 8 * (2 * d * d + d * r_max + 3 * t * r_max)
    chunk = max(1, min(k, (memory_budget_mb << 20) // per_head_bytes))
    log.debug(
        "textspan: K=%d N=%d D=%d T=%d rank=%d from moments, %d heads/chunk, %s",
        k,
        n,
        d,
        t,
        r_max,
        chunk,
        engine,
    )
    texts = _prepare_texts(texts, engine, dev)
    parts = []
    for start in range(0, k, chunk):
        m, g = mean[start : start + chunk], gram[start : start + chunk]
        if engine == "numpy":
            m, g = m.cpu().to(torch.float64).numpy(), g.cpu().to(torch.float64).numpy()
        else:
            m, g = m.to(dev, torch.float64), g.to(dev, torch.float64)
        parts.append(_pick(m, g, n, texts, r_max, rtol, iters, engine, start))
    return _collect(parts, iters)


def _engine(device, default: torch.device, engine: str, rtol: float) -> tuple[torch.device, str]:
    """Resolve the device and engine (see ``textspan``); check ``rtol``."""
    if not MIN_RTOL <= rtol < 1:
        raise ValueError(
            f"textspan: rtol must be in [{MIN_RTOL:g}, 1), got {rtol:g} (singular values are "
            "resolved from a float64 Gram matrix, to about 1e-8 of the largest)"
        )
    dev = torch.device(device) if device is not None else default
    if engine == "auto":
        engine = "numpy" if dev.type == "cpu" else "torch"
    if engine not in ("numpy", "torch") or (engine == "numpy" and dev.type != "cpu"):
        raise ValueError(
            f"textspan: engine must be 'auto', 'torch' or 'numpy' (CPU), got {engine!r}"
        )
    return dev, engine


def _prepare_texts(texts: torch.Tensor, engine: str, dev: torch.device):
    if engine == "numpy":
        return texts.detach().cpu().to(torch.float64).numpy()
    return texts.detach().to(device=dev, dtype=torch.float64)


def _pick(mean, gram, n, texts, r, rtol, iters, engine, first) -> tuple[torch.Tensor, ...]:
    """Span set-up and greedy picks of a chunk of heads from their moments; CPU tensors
    (indices, variance, total variance, kept rank)."""
    if engine == "numpy":
        coords, cov, total, kept = _span_numpy(mean, gram, n, texts, r, rtol, first)
        idx, var = _iterate_numpy(coords, cov, iters)
        return tuple(torch.from_numpy(a) for a in (idx, var, total, kept))
    coords, cov, total, kept = _span_torch(mean, gram, n, texts, r, rtol)
    idx, var = _iterate_torch(coords, cov, iters)
    return tuple(a.cpu() for a in (idx, var, total, kept))


def _collect(parts: list[tuple[torch.Tensor, ...]], iters: int) -> TextSpanResult:
    indices, variance, total_variance, rank_kept = (
        torch.cat(cols) for cols in zip(*parts, strict=True)
    )
    if bool((rank_kept < iters).any()):
        log.warning(
            "textspan: some heads keep fewer span directions (min %d) than iters=%d; "
            "picks beyond that explain no variance",
            int(rank_kept.min()),
            iters,
        )
    return TextSpanResult(indices, variance, total_variance, rank_kept)


def textspan_reference(
    data: np.ndarray,
    text_embeddings: np.ndarray,
    iters: int = 5,
    rank: int = 80,
    rtol: float | None = None,
    dtype: type = np.float64,
) -> tuple[np.ndarray, np.ndarray]:
    """SLOW REFERENCE: a plain per-head numpy transcription of the reference steps.

    For tests and the benchmark only. Per head: thin SVD of the ``N x D`` data, projection of the
    texts onto the top ``rank`` right singular vectors, centring, then per iteration the projection
    of every image on every text. ``rtol`` (None = keep every direction, as the authors' code does)
    drops singular values below ``rtol * sigma_max``, to compare with ``textspan`` on rank-deficient
    data. ``dtype`` is the working precision (the authors' code ran float32).

    Returns ``(indices [K, iters], variance [K, iters])``; the same definitions as ``textspan``.
    """
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    texts_in = np.asarray(text_embeddings, dtype=dtype)
    k = data.shape[0]
    indices = np.zeros((k, iters), dtype=np.int64)
    variance = np.zeros((k, iters), dtype=np.float64)
    for h in range(k):
        x = np.asarray(data[h], dtype=dtype)
        _, s, vh = np.linalg.svd(x, full_matrices=False)
        keep = min(rank, vh.shape[0])
        if rtol is not None:
            keep = min(keep, int((s >= rtol * s[0]).sum()))
        vh = vh[:keep]
        # Projection onto the span (vh has orthonormal rows, so V (V^T V)^-1 V^T = vh^T vh).
        texts = texts_in @ vh.T @ vh
        x = x - x.mean(axis=0, keepdims=True)
        for i in range(iters):
            projection = x @ texts.T  # [N, T]: every image on every text
            std = projection.std(axis=0, ddof=1)
            top = int(np.argmax(std))
            indices[h, i] = top
            t_top = texts[top]
            norm2 = float(t_top @ t_top)
            coef = x @ t_top / norm2
            variance[h, i] = float(np.var(coef, ddof=1) * norm2)
            x = x - coef[:, None] * t_top[None, :]
            texts = texts - (texts @ t_top / norm2)[:, None] * t_top[None, :]
    return indices, variance
