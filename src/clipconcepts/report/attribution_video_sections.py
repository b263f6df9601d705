"""The report's head-attribution and video-retrieval sections, and their standalone assets.

`build_report` passes its writers: `standalone(name, heading, fragment, legend)` writes an HTML
asset, `figure(fig, path, alt, caption, absent)` writes an SVG asset (or a placeholder saying
`absent`) and returns its inline HTML. Each section says so in one line when its stage did not
run (no sets given); every asset of a given set is written even without data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path

from clipconcepts.report import (
    attribution_figures,
    attribution_tables,
    video_figures,
    video_tables,
)
from clipconcepts.report.assets import dataset_name
from clipconcepts.report.attribution_inputs import AttributionRun
from clipconcepts.report.inputs import RunLayout
from clipconcepts.report.tables import missing
from clipconcepts.report.video_inputs import VideoRun

RELIANCE_ROWS = 20  # unexpected (class, head) pairs shown in the page; the asset has them all


def _section(anchor: str, heading: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(heading)}</h2>{body}</section>'


def attribution_section(
    run: AttributionRun, assets: Path, standalone: Callable, figure: Callable
) -> str:
    """Per attribution dataset: the per-model tables, the heat map, the deletion curves, the
    unexpected reliance and the concept world's check against the truth."""
    heading = "Head attribution: which heads drive a prediction"
    if not run.datasets:
        line = "the head-attribution stage did not run (no attribution datasets in this run)"
        return _section("attribution", heading, f"<p>{missing(line)}</p>")
    legend = attribution_tables.LEGEND
    intro = (
        "<p>Four views of each attention head side by side (docs/attribution.md): what its "
        "label says (CCS), what it writes along the direct path (direct effect, logit lens, "
        "energy), its attribution patching score (AtP: the first-order effect of removing it, "
        "from one backward pass) and, as the reference, the true effect of ablating it through "
        "the whole model.</p>"
    )
    parts = [intro, legend]
    for d in run.datasets:
        name = dataset_name(d)
        standalone(
            f"attribution_{d}.html",
            f"Head attribution: {name}",
            attribution_tables.overview_body(run, d, collapsed=False),
            legend,
        )
        heat = figure(
            attribution_figures.correlation_figure(run, d),
            assets / f"attribution_{d}_correlations.svg",
            f"correlation heat map of the head views for {name}",
            f"{name}: Spearman correlation across heads of every pair of views (the diagonal "
            "grey); Kendall's τ is in the correlation table.",
            f"no attribution correlations for {d}",
        )
        deletion = figure(
            attribution_figures.deletion_figure(run, d),
            assets / f"attribution_{d}_deletion.svg",
            f"deletion curves for {name}",
            f"{name}: mean 100·y as heads are zeroed in each method's order (error bars over "
            "interleaved image subsets); the legend gives each method's area (lower = better).",
            f"no deletion curves for {d}",
        )
        reliance_page = attribution_tables.reliance_body(run, d, RELIANCE_ROWS)
        standalone(
            f"attribution_{d}_reliance.html",
            f"Unexpected reliance: {name}",
            attribution_tables.reliance_body(run, d, None),
            legend,
        )
        truth = attribution_tables.truth_body(run, d)
        standalone(f"attribution_{d}_truth.html", f"Head views vs ground truth: {name}", truth, "")
        parts.append(
            f'<h3 id="attribution-{escape(d)}">{escape(name)}</h3>'
            + attribution_tables.overview_body(run, d, collapsed=True)
            + heat
            + deletion
            + f"<h4>Unexpected reliance</h4>{reliance_page}"
            + f"<h4>Precision@k against the ground truth (concept world)</h4>{truth}"
        )
    return _section("attribution", heading, "".join(parts))


def video_section(run: VideoRun, assets: Path, standalone: Callable, figure: Callable) -> str:
    """Per video set: Figure 5's form and the table of every metric."""
    heading = "Zero-shot video retrieval under head pruning"
    if not run.sets:
        line = "the video-retrieval stage did not run (no video sets in this run)"
        return _section("video", heading, f"<p>{missing(line)}</p>")
    legend = video_tables.LEGEND
    parts = [f"<p>{escape(video_tables.PAPER_NOTE)}</p>", legend]
    for s in run.sets:
        name = dataset_name(s)
        body = video_tables.retrieval_body(run, s)
        standalone(
            f"video_{s}.html",
            f"Video retrieval under pruning: {name}",
            f"<p>{escape(video_tables.PAPER_NOTE)}</p>" + body,
            legend,
        )
        fig = figure(
            video_figures.retrieval_figure(run, s),
            assets / f"video_{s}.svg",
            f"video retrieval bar chart for {name}",
            f"{name}: text-to-video R@1/5/10 (%) unpruned and under each pruning strategy "
            "(random: mean over seeds, error bar = sample std); dashed: chance. The paper's "
            "Figure 5 gives no numbers to set beside these.",
            f"no video retrieval results for {s}",
        )
        parts.append(f'<h3 id="video-{escape(s)}">{escape(name)}</h3>{body}{fig}')
    return _section("video", heading, "".join(parts))


def provenance(
    layout: RunLayout,
    model_keys: Sequence[str],
    attribution_sets: Sequence[str],
    video_sets: Sequence[str],
) -> list[tuple[str, list[Path]]]:
    """(heading, files) for the provenance footer; the truth files only where they exist."""
    parts = []
    if attribution_sets:
        paths = [
            layout.attribution(k, d, kind)
            for d in attribution_sets
            for k in model_keys
            for kind in ("heads", "correlations", "deletion", "reliance", "truth")
            if kind != "truth" or layout.attribution(k, d, kind).exists()
        ]
        parts.append(("Head attribution (truth: concept-world models only)", paths))
    if video_sets:
        paths = [layout.video_retrieval(k, s) for s in video_sets for k in model_keys]
        parts.append(("Video retrieval under pruning", paths))
    return parts
