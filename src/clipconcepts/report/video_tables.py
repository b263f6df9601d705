"""HTML fragments of zero-shot video retrieval under head pruning (CCS paper section 5.6).

- `retrieval_table`: per model and video set, a row per strategy (random: mean ± sample std
  over seeds), every metric for text-to-video and video-to-text: R@1/5/10/50 (%), median and
  mean rank; a last row with the chance R@K of a random ranking;
- `retrieval_body`: the tables of every model of a set, with the protocol's counts and a line
  for the models without a file.

The paper gives Figure 5 only as a chart (section 5.6 states no number), so no paper values
stand beside ours (`PAPER_NOTE`). Conventions as in `tables`.
"""

from __future__ import annotations

from html import escape

from clipconcepts.report.inputs import concept_group, manual_name
from clipconcepts.report.tables import (
    STRATEGY_TITLES,
    Span,
    concept_title,
    missing,
    ours,
    small,
    table,
)
from clipconcepts.report.tables import heads as heads_text
from clipconcepts.report.video_inputs import (
    CHANCE,
    METRICS,
    RetrievalSummary,
    VideoResult,
    VideoRun,
)

DIRECTION_NAMES = {"t2v": "text → video", "v2t": "video → text"}
PROTOCOLS = {
    "ccs": "ccs (the CCS authors' code: mean frame embedding not renormalised, each video's "
    "first caption, video → text ranks its caption among all captions)",
    "clip4clip": "clip4clip (mean frame embedding renormalised, every caption, video → text "
    "ranks its video among the videos scored by their best caption)",
}
METRIC_NAMES = {
    "r1": "R@1",
    "r5": "R@5",
    "r10": "R@10",
    "r50": "R@50",
    "median_rank": "MdR",
    "mean_rank": "MnR",
}
PAPER_NOTE = (
    "The CCS paper (section 5.6, Figure 5) reports zero-shot retrieval on MSR-VTT, MSVD and "
    "DiDeMo with the unpruned model and with the high-CCS, low-CCS and random heads pruned, but "
    "only as a chart: its text gives no number, so no paper values stand beside ours (none are "
    "transcribed in paper_values.yaml). Its finding, in words: pruning the high-CCS heads lowers "
    "retrieval far more than pruning low-CCS or random heads; the claims section tests that on "
    "this run's t2v R@1."
)
LEGEND = (
    '<p class="legend">Numbers are this run\'s, in % for R@K (the share of queries whose right '
    "answer ranks in the first K); MdR / MnR = median / mean rank (1 = first, lower = better). "
    "Random: mean ± sample std over seeds. The last row is the R@K of a random ranking.</p>"
)


def strategy_name(strategy: str) -> str:
    if strategy in STRATEGY_TITLES:
        return STRATEGY_TITLES[strategy]
    if concept_group(strategy) is not None or strategy.startswith("concept-random:"):
        return concept_title(strategy)
    name = manual_name(strategy)
    return f"manual: {name}" if name is not None else strategy


def _fmt(metric: str, v: float) -> str:
    return f"{v:.2f}" if metric == "mean_rank" else f"{v:.1f}"


def metric_cell(r: VideoResult, s: RetrievalSummary | None, metric: str) -> str:
    if s is None or s.mean[metric] is None:
        return missing("—")
    mean, std = s.mean[metric], s.std[metric]
    data = {
        "model": r.model.key,
        "video_set": r.video_set,
        "strategy": s.strategy,
        "direction": s.direction,
        "metric": metric,
    }
    if s.n_runs > 1 and std is not None:
        cell = ours(_fmt(metric, mean), mean=mean, std=std, n_runs=s.n_runs, **data)
        return cell + small(f"± {_fmt(metric, std)}")
    return ours(_fmt(metric, mean), mean=mean, **data)


def _heads_cell(summaries: list[RetrievalSummary]) -> str:
    s = summaries[0]
    counts = s.n_heads
    text = heads_text(counts[0]) if len(counts) == 1 else f"{min(counts)}–{max(counts)} heads"
    out = escape(text)
    if s.n_runs > 1:
        out += small(f"{s.n_runs} seeds")
    if s.is_empty and s.strategy != "original":
        out += small("empty group: equal to original", "warn")
    return out


def retrieval_table(r: VideoResult) -> str:
    directions = r.directions()
    header = ["Strategy", "Heads pruned"] + [
        f"{d} {METRIC_NAMES[m]}" for d in directions for m in METRICS
    ]
    rows: list[list[str | Span]] = []
    for strategy in r.strategies():
        summaries = [s for d in directions if (s := r.get(strategy, d)) is not None]
        cells: list[str | Span] = [
            f"<b>{escape(strategy_name(strategy))}</b>",
            _heads_cell(summaries),
        ]
        for d in directions:
            s = r.get(strategy, d)
            cells += [metric_cell(r, s, m) for m in METRICS]
        rows.append(cells)
    chance: list[str | Span] = ["<i>chance (random ranking)</i>", ""]
    for d in directions:
        first = next((r.get(s, d) for s in r.strategies() if r.get(s, d) is not None), None)
        for m in METRICS:
            v = first.chance.get(m) if first is not None and m in CHANCE else None
            chance.append(
                f'<span class="chance" data-direction="{d}" data-metric="{m}" data-value="{v}">'
                f"{v:.1f}</span>"
                if v is not None
                else missing("—")
            )
    rows.append(chance)
    return table(header, rows, "video-retrieval")


def _counts(r: VideoResult) -> str:
    parts = []
    for d in r.directions():
        s = next(r.get(x, d) for x in r.strategies() if r.get(x, d) is not None)
        parts.append(
            f"{DIRECTION_NAMES.get(d, d)} ({d}): {s.n_queries} queries among {s.n_candidates} "
            "candidates"
        )
    ties = {s.ties for s in r.summary.values()}
    protocols = sorted(
        {PROTOCOLS.get(s.protocol, s.protocol or "not recorded") for s in r.summary.values()}
    )
    return (
        '<p class="note">'
        + escape("; ".join(parts))
        + escape(f". Ties ranked {'/'.join(sorted(ties))}. Protocol: {'; '.join(protocols)}.")
        + "</p>"
    )


def retrieval_body(run: VideoRun, video_set: str) -> str:
    """Every model's table for `video_set`; a line for the models without a file."""
    parts = []
    for r in run.of_set(video_set):
        if not r.summary:
            text = f"the retrieval file has no rows ({run.layout.video_retrieval(r.model.key, video_set)})"
            parts.append(f"<h4>{escape(r.model.display)}</h4><p>{missing(text)}</p>")
            continue
        parts.append(f"<h4>{escape(r.model.display)}</h4>{retrieval_table(r)}{_counts(r)}")
    absent = run.absent(video_set)
    if absent:
        names = ", ".join(
            f"{m.display} ({run.layout.video_retrieval(m.key, video_set)})" for m in absent
        )
        parts.append(f"<p>{missing(f'no video retrieval results for {video_set}: {names}')}</p>")
    return "".join(parts)
