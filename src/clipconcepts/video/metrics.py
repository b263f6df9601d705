"""Retrieval ranks and recall from a text x video similarity matrix.

`sim[t, v]` is the cosine similarity of caption t and video v; `caption_video[t]` is the video
caption t describes. Ranks start at 1.

- text-to-video (one query per caption): the rank of the caption's video among all videos;
- video-to-text (one query per video that has captions): the rank of the video's best-scored
  own caption among all captions, other own captions not counted (so MSVD's ~40 captions per
  video do not push each other down; the usual multi-caption convention).

Ties (equal similarities, e.g. identical frames or texts) are resolved by `ties`:
`pessimistic` (default: every other candidate scored as high as the right one ranks ahead of
it, so ties never flatter a model), `optimistic` (all rank behind) or `average` (half ahead).
Metrics: R@K in percent, median and mean rank. `chance_recall` is the expected R@K of a random
ranking (a query with g right answers among N candidates: 1 - C(N-g, K) / C(N, K)).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

TIES = ("pessimistic", "optimistic", "average")
KS = (1, 5, 10, 50)


def _resolve(higher: torch.Tensor, equal: torch.Tensor, ties: str) -> torch.Tensor:
    if ties not in TIES:
        raise ValueError(f"ties must be one of {', '.join(TIES)}, got {ties!r}")
    higher = higher.double()
    if ties == "pessimistic":
        return 1 + higher + equal.double()
    if ties == "optimistic":
        return 1 + higher
    return 1 + higher + equal.double() / 2


def _check(sim: torch.Tensor, caption_video) -> tuple[torch.Tensor, torch.Tensor]:
    sim = torch.as_tensor(sim)
    owners = torch.as_tensor(np.asarray(caption_video), dtype=torch.long, device=sim.device)
    if sim.dim() != 2 or owners.shape != (sim.shape[0],):
        raise ValueError(
            f"sim must be [captions, videos] and caption_video [captions]; got "
            f"{tuple(sim.shape)} and {tuple(owners.shape)}"
        )
    if owners.numel() and (owners.min() < 0 or owners.max() >= sim.shape[1]):
        raise ValueError("caption_video points outside the videos")
    return sim, owners


def t2v_ranks(sim, caption_video, ties: str = "pessimistic") -> np.ndarray:
    """Rank of each caption's video among all videos, float64 [captions]."""
    sim, owners = _check(sim, caption_video)
    right = sim.gather(1, owners[:, None])  # [T, 1]
    higher = (sim > right).sum(1)
    equal = (sim == right).sum(1) - 1  # the right video itself is not a tie
    return _resolve(higher, equal, ties).cpu().numpy()


def v2t_ranks(sim, caption_video, ties: str = "pessimistic") -> np.ndarray:
    """Rank of each video's best own caption among the other videos' captions, float64
    [videos with at least one caption] (in video order)."""
    sim, owners = _check(sim, caption_video)
    n_videos = sim.shape[1]
    scores = sim.T  # [V, T]
    own = torch.zeros(n_videos, sim.shape[0], dtype=torch.bool, device=sim.device)
    own[owners, torch.arange(sim.shape[0], device=sim.device)] = True
    has = own.any(1)
    best = torch.where(own, scores, torch.full_like(scores, -torch.inf)).amax(1, keepdim=True)
    higher = ((scores > best) & ~own).sum(1)
    equal = ((scores == best) & ~own).sum(1)
    return _resolve(higher, equal, ties)[has].cpu().numpy()


def summarise_ranks(ranks: np.ndarray, ks: Sequence[int] = KS) -> dict[str, float]:
    """R@K (percent of queries with rank <= K), median and mean rank."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.size == 0:
        out = {f"r{k}": float("nan") for k in ks}
        return {**out, "median_rank": float("nan"), "mean_rank": float("nan")}
    out = {f"r{k}": float(100.0 * np.mean(ranks <= k)) for k in ks}
    out["median_rank"] = float(np.median(ranks))
    out["mean_rank"] = float(np.mean(ranks))
    return out


def chance_recall(n_candidates: int, n_right: Sequence[int] | np.ndarray, k: int) -> float:
    """Expected R@k (percent) of a random ranking, averaged over queries with `n_right` right
    answers each among `n_candidates`."""
    n_right = np.asarray(n_right, dtype=np.int64)
    if n_right.size == 0 or n_candidates < 1:
        return float("nan")
    probs = []
    for g in np.unique(n_right):
        # P(no right answer in the top k) = prod_{i<k} (N - g - i) / (N - i)
        miss = 1.0
        for i in range(min(k, n_candidates)):
            miss *= max(n_candidates - g - i, 0) / (n_candidates - i)
        probs.append((1.0 - miss) * np.sum(n_right == g))
    return float(100.0 * np.sum(probs) / n_right.size)


def retrieval_metrics(
    sim, caption_video, ties: str = "pessimistic", ks: Sequence[int] = KS
) -> dict[str, dict[str, float | int]]:
    """Both directions: {'t2v': {...}, 'v2t': {...}} with R@K, ranks, query and candidate
    counts, and chance R@1/5/10."""
    return retrieval_metrics_and_ranks(sim, caption_video, ties, ks)[0]


def retrieval_metrics_and_ranks(
    sim, caption_video, ties: str = "pessimistic", ks: Sequence[int] = KS
) -> tuple[dict[str, dict[str, float | int]], dict[str, np.ndarray]]:
    """`retrieval_metrics` and the per-query ranks it summarises: {'t2v': [captions],
    'v2t': [videos with captions, in video order]}."""
    sim, owners = _check(sim, caption_video)
    n_captions, n_videos = sim.shape
    per_video = np.bincount(owners.cpu().numpy(), minlength=n_videos)
    out, ranks = {}, {}
    for direction, rank, n_cand, n_right in (
        ("t2v", t2v_ranks(sim, owners, ties), n_videos, np.ones(n_captions, dtype=np.int64)),
        ("v2t", v2t_ranks(sim, owners, ties), n_captions, per_video[per_video > 0]),
    ):
        row: dict[str, float | int] = summarise_ranks(rank, ks)
        row["n_queries"] = int(len(rank))
        row["n_candidates"] = int(n_cand)
        for k in (1, 5, 10):
            row[f"chance_r{k}"] = chance_recall(n_cand, n_right, k)
        out[direction] = row
        ranks[direction] = rank
    return out, ranks
