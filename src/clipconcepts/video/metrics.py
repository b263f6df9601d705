"""Retrieval ranks and recall from a text x video similarity matrix.

`sim[t, v]` is the similarity of caption t and video v; `caption_video[t]` is the video caption
t describes. Per query the right answer's standing is two counts: `higher` (candidates scored
strictly above it) and `tied` (other candidates scored exactly as it); ranks start at 1.

- text-to-video (one query per caption): the caption's video among all videos;
- video-to-text (one query per video that has captions), by `v2t`:
  - `caption` (the CCS authors' code, which keeps one caption per video): the video's
    best-scored own caption among the other videos' captions (its other own captions are not
    counted, so several captions per video do not push each other down);
  - `video` (CLIP4Clip's multi-sentence rule): every video with captions is a candidate,
    scored by its best caption for the query video; the query's own video among them.
  With one caption per video the two rules are the same.

Ties (equal similarities, e.g. identical frames or texts) are resolved by `ties`:
`pessimistic` (default: every candidate scored as high as the right one ranks ahead of it, so
ties never flatter a model: rank 1 + higher + tied), `optimistic` (all rank behind: 1 + higher)
or `average` (random tie-breaking, exactly in expectation: the rank is its mean
1 + higher + tied / 2, and the hit at K its probability clip((K - higher) / (tied + 1), 0, 1)).
R@K is the mean of the per-query hits (0/1, or that probability), in percent; median and mean
of the ranks. `chance_recall` is the expected R@K of a random ranking (a query with g right
answers among N candidates: 1 - C(N-g, K) / C(N, K)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

TIES = ("pessimistic", "optimistic", "average")
V2T_RULES = ("caption", "video")
KS = (1, 5, 10, 50)


def _check_ties(ties: str) -> None:
    if ties not in TIES:
        raise ValueError(f"ties must be one of {', '.join(TIES)} (video.ties), got {ties!r}")


@dataclass(frozen=True)
class QueryRanks:
    """Per query: candidates scored strictly above the right answer and tied with it."""

    higher: np.ndarray  # int64 [queries]
    tied: np.ndarray  # int64 [queries]

    def rank(self, ties: str = "pessimistic") -> np.ndarray:
        """float64 [queries]: the rank under the tie rule (`average`: its mean)."""
        _check_ties(ties)
        higher, tied = self.higher.astype(np.float64), self.tied.astype(np.float64)
        if ties == "pessimistic":
            return 1 + higher + tied
        if ties == "optimistic":
            return 1 + higher
        return 1 + higher + tied / 2

    def hits(self, k: int, ties: str = "pessimistic") -> np.ndarray:
        """float64 [queries]: whether the right answer is in the top k (`average`: the
        probability under random tie-breaking, exact)."""
        _check_ties(ties)
        if ties == "pessimistic":
            return (self.higher + self.tied < k).astype(np.float64)
        if ties == "optimistic":
            return (self.higher < k).astype(np.float64)
        return np.clip((k - self.higher) / (self.tied + 1.0), 0.0, 1.0)

    def __len__(self) -> int:
        return len(self.higher)


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


def _counts(higher: torch.Tensor, tied: torch.Tensor) -> QueryRanks:
    return QueryRanks(higher.cpu().numpy().astype(np.int64), tied.cpu().numpy().astype(np.int64))


def t2v_counts(sim, caption_video) -> QueryRanks:
    """Per caption: the videos scored above and tied with its own video."""
    sim, owners = _check(sim, caption_video)
    right = sim.gather(1, owners[:, None])  # [T, 1]
    higher = (sim > right).sum(1)
    tied = (sim == right).sum(1) - 1  # the right video itself is not a tie
    return _counts(higher, tied)


def v2t_counts(sim, caption_video, rule: str = "caption") -> QueryRanks:
    """Per video with at least one caption (in video order): the candidates above and tied
    with its right answer under `rule` (module docstring)."""
    if rule not in V2T_RULES:
        raise ValueError(f"v2t rule must be one of {', '.join(V2T_RULES)}, got {rule!r}")
    sim, owners = _check(sim, caption_video)
    n_captions, n_videos = sim.shape
    own = torch.zeros(n_videos, n_captions, dtype=torch.bool, device=sim.device)
    own[owners, torch.arange(n_captions, device=sim.device)] = True
    has = own.any(1)
    if rule == "caption":
        scores = sim.T  # [V, T]
        best = torch.where(own, scores, torch.full_like(scores, -torch.inf)).amax(1, keepdim=True)
        higher = ((scores > best) & ~own).sum(1)
        tied = ((scores == best) & ~own).sum(1)
        return _counts(higher[has], tied[has])
    # group[u, v]: the best similarity of a caption of video u with video v
    group = torch.full((n_videos, n_videos), -torch.inf, dtype=sim.dtype, device=sim.device)
    group.scatter_reduce_(0, owners[:, None].expand(-1, n_videos), sim, "amax")
    scores = group[has][:, has].T  # [query video, candidate video], both with captions
    right = scores.diagonal()[:, None]
    higher = (scores > right).sum(1)
    tied = (scores == right).sum(1) - 1
    return _counts(higher, tied)


def t2v_ranks(sim, caption_video, ties: str = "pessimistic") -> np.ndarray:
    """Rank of each caption's video among all videos, float64 [captions]."""
    return t2v_counts(sim, caption_video).rank(ties)


def v2t_ranks(sim, caption_video, ties: str = "pessimistic", rule: str = "caption") -> np.ndarray:
    """Rank of each video's right answer under `rule`, float64 [videos with captions]."""
    return v2t_counts(sim, caption_video, rule).rank(ties)


def summarise_ranks(ranks: np.ndarray, ks: Sequence[int] = KS) -> dict[str, float]:
    """R@K (percent of queries with rank <= K), median and mean rank, from ranks alone."""
    ranks = np.asarray(ranks, dtype=np.float64)
    hits = {k: (ranks <= k).astype(np.float64) for k in ks}
    return _summary(ranks, hits)


def summarise_queries(
    queries: QueryRanks, ties: str = "pessimistic", ks: Sequence[int] = KS
) -> dict[str, float]:
    """R@K = the mean of the per-query hits under `ties` (percent), median and mean rank."""
    return _summary(queries.rank(ties), {k: queries.hits(k, ties) for k in ks})


def _summary(ranks: np.ndarray, hits: dict[int, np.ndarray]) -> dict[str, float]:
    if ranks.size == 0:
        out = {f"r{k}": float("nan") for k in hits}
        return {**out, "median_rank": float("nan"), "mean_rank": float("nan")}
    out = {f"r{k}": float(100.0 * np.mean(h)) for k, h in hits.items()}
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
    sim,
    caption_video,
    ties: str = "pessimistic",
    ks: Sequence[int] = KS,
    v2t: str = "caption",
) -> dict[str, dict[str, float | int]]:
    """Both directions: {'t2v': {...}, 'v2t': {...}} with R@K, ranks, query and candidate
    counts, and chance R@1/5/10."""
    return retrieval_metrics_and_ranks(sim, caption_video, ties, ks, v2t)[0]


def retrieval_metrics_and_ranks(
    sim,
    caption_video,
    ties: str = "pessimistic",
    ks: Sequence[int] = KS,
    v2t: str = "caption",
) -> tuple[dict[str, dict[str, float | int]], dict[str, QueryRanks]]:
    """`retrieval_metrics` and the per-query counts it summarises: {'t2v': [captions],
    'v2t': [videos with captions, in video order]}."""
    _check_ties(ties)
    sim, owners = _check(sim, caption_video)
    n_captions, n_videos = sim.shape
    per_video = np.bincount(owners.cpu().numpy(), minlength=n_videos)
    per_video = per_video[per_video > 0]
    if v2t == "video":  # one right video among the videos with captions
        v2t_candidates, v2t_right = len(per_video), np.ones(len(per_video), dtype=np.int64)
    else:  # any own caption among all captions
        v2t_candidates, v2t_right = n_captions, per_video
    out, queries = {}, {}
    for direction, counts, n_cand, n_right in (
        ("t2v", t2v_counts(sim, owners), n_videos, np.ones(n_captions, dtype=np.int64)),
        ("v2t", v2t_counts(sim, owners, v2t), v2t_candidates, v2t_right),
    ):
        row: dict[str, float | int] = summarise_queries(counts, ties, ks)
        row["n_queries"] = len(counts)
        row["n_candidates"] = int(n_cand)
        for k in (1, 5, 10):
            row[f"chance_r{k}"] = chance_recall(n_cand, n_right, k)
        out[direction] = row
        queries[direction] = counts
    return out, queries
