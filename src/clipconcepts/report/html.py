"""The self-contained HTML report of a run, and its standalone assets for `snakemake --report`.

`build_report` reads the run's result files (see `inputs.RunLayout`), writes `out_html` (CSS
inlined, figures inlined as base64 SVG, no external resources) and one file per asset in
`assets_dir` (names from `report_assets`, known before the run so a rule can declare them; an
asset without data says so instead of being absent). Every number shown comes from the run's
files or from `paper_values.yaml`.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Mapping, Sequence
from html import escape
from importlib import resources
from pathlib import Path

from matplotlib.figure import Figure

from clipconcepts.io import atomic_path
from clipconcepts.report import (
    attribution_video_sections,
    ccs_truth,
    claims_html,
    figures,
    head_browser,
    label_truth,
    mutual_faithfulness,
    mutual_figures,
    mutual_tables,
    setup_tables,
    tables,
)
from clipconcepts.report import claims as claims_mod
from clipconcepts.report import llm_usage as llm_report
from clipconcepts.report.assets import dataset_name, report_assets
from clipconcepts.report.attribution_inputs import gather_attribution
from clipconcepts.report.head_inputs import gather_heads
from clipconcepts.report.head_links import keep_links
from clipconcepts.report.inputs import ModelInfo, RunData, gather_run
from clipconcepts.report.mutual_inputs import MutualRun, gather_mutual
from clipconcepts.report.paper import PaperValues, load_paper_values
from clipconcepts.report.video_inputs import gather_video

log = logging.getLogger(__name__)


def _css() -> str:
    return resources.files("clipconcepts.report").joinpath("style.css").read_text()


def page(title: str, body: str) -> str:
    """A complete HTML page with the report's CSS inlined."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_css()}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def _write(path: Path, content: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(content, encoding="utf-8")


def _embed(svg: str, alt: str, caption: str) -> str:
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return (
        f'<figure><img alt="{escape(alt)}" src="data:image/svg+xml;base64,{data}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def _figure(fig: Figure | None, asset: Path, alt: str, caption: str, absent: str) -> str:
    """Write the figure (or a placeholder) to `asset`; return its inline HTML (or the message)."""
    svg = figures.to_svg(fig if fig is not None else figures.message_figure(absent))
    _write(asset, svg)
    if fig is None:
        return f"<p>{tables.missing(absent)}</p>"
    return _embed(svg, alt, caption)


# ------------------------------------------------------------------------------- sections
def _overview(run: RunData, title: str, values: PaperValues) -> str:
    rows = [
        [
            escape(m.key),
            escape(m.display),
            escape(m.arch or ""),
            escape(m.pretrained or ""),
            escape(m.paper_name) if m.paper_name else tables.missing("not in the paper"),
        ]
        for m in run.models
    ]
    models = tables.table(["Key", "Name", "Architecture", "Pretrained", "Paper model"], rows)
    data = ", ".join(f"{escape(dataset_name(d))} (<code>{escape(d)}</code>)" for d in run.datasets)
    return f"""
<section id="overview"><h2>Overview</h2>
<p>Run folder: <code>{escape(str(run.layout.run_dir))}</code> (run <b>{escape(run.layout.run_dir.name)}</b>).
Paper: {escape(values.title)}.</p>
<h3>Models</h3>{models}
<h3>Datasets</h3><p>{data or tables.missing("none")}</p>
<h3>What each section shows</h3>
<ul>
<li><a href="#claims">Claims</a> (top of the page): each claim of the CCS paper in one sentence,
this run's differences with paired-bootstrap intervals, a forest plot per claim, and a verdict
per case (holds, contradicted, inconclusive, not testable) computed from the result files.</li>
<li><a href="#heads">Head browser</a>: every analysed head in one sortable, filterable index;
a head's link (here and in every table that names a head) opens its card: texts, verdicts,
effects, pruning and the images it writes most and least for.</li>
<li><a href="#setup">Setup</a>: the text bank (source, lines, SHA-256) and the datasets
that ran (kind, classes).</li>
<li><a href="#ccs-at-k">CCS@K</a>: for each model, the fraction of analysed heads (last layers)
whose concept consistency score is K, i.e. K of the head's 5 TEXTSPAN texts fit the label an LLM
gave it (paper Table 3). TEXTSPAN runs, as in the reference code, on each image's head
contributions divided by the norm of that image's embedding (unless the config sets
<code>textspan.normalize: none</code>).</li>
<li><a href="#examples">Examples</a>: heads with high (5), moderate (3) and low (&le; 1) CCS,
their label and their 5 texts, ✓ where the judge says a text fits (paper Table 1).</li>
<li><a href="#pruning">Pruning</a>: zero-shot top-1 accuracy (%) per dataset, unpruned and
with the high-CCS, low-CCS or random heads zeroed (paper Tables 4-6, Figure 2).</li>
<li><a href="#concept">Concept-specific pruning</a>: accuracy when the heads of one concept
group (e.g. locations) are pruned vs an unrelated group (paper Figures 3-4, section 5.5).</li>
<li><a href="#agreement">Agreement</a>: human vs LLM verdicts on text-label pairs (paper Table 2).</li>
<li><a href="#label-truth">Labels vs ground truth</a>: concept world only, how often the LLM's
label names the family a head writes most.</li>
<li><a href="#conceptworld">Concept world</a>: zero-shot accuracy per family of the synthetic
world's trained CLIP.</li>
<li><a href="#mutual">Mutual knowledge</a>: the information the image and text encoders share
(Sammani &amp; Deligiannis, NeurIPS 2024): MI and AUC per model (their Table 3), MI dynamics
and accuracy vs AUC (Figure 3), explained images (Figure 1), explanation faithfulness (Table 1),
zero-shot with descriptors and explanations (Table 2) and, in the concept world, the mutual
descriptors against the true attributes and blurring the true attribute's region vs a random
one.</li>
<li><a href="#attribution">Head attribution</a>: per head its CCS, attribution patching (AtP),
direct effect and the true effect of ablating it, their correlations (heat map), deletion
curves, unexpected reliance and, in the concept world, precision@k against the truth.</li>
<li><a href="#video">Video retrieval</a>: zero-shot text-to-video and video-to-text retrieval
under head pruning (paper section 5.6, Figure 5).</li>
<li><a href="#llm-usage">LLM usage</a>: the calls, cached answers, tokens and estimated cost
of every LLM step; the <a href="#llm-prompts">appendix</a> shows the prompts they asked with.</li>
<li><a href="#provenance">Provenance</a>: the file behind each section.</li>
</ul>
{tables.LEGEND}
</section>"""


def _section(anchor: str, heading: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(heading)}</h2>{body}</section>'


def _provenance(
    run: RunData,
    values: PaperValues,
    mutual: MutualRun | None = None,
    extra: Sequence[tuple[str, list[Path]]] = (),
) -> str:
    lay = run.layout

    def files(paths: list[Path]) -> str:
        items = []
        for p in paths:
            state = "" if p.exists() else " " + tables.missing("(missing)")
            items.append(f"<li><code>{escape(str(p))}</code>{state}</li>")
        return "<ul>" + "".join(items) + "</ul>"

    keys = [m.key for m in run.models]
    parts = [
        ("CCS@K", [lay.ccs_at_k(k) for k in keys]),
        ("Examples per CCS bucket", [lay.ccs(k) for k in keys]),
        (
            "Pruning and concept-specific pruning",
            [lay.prune(k, d) for d in run.datasets for k in keys],
        ),
        (
            "Claims (per-image outcomes)",
            [lay.prune_items(k, d) for d in run.datasets for k in keys]
            + [lay.video_items(k, d) for k, d in run.video],
        ),
        ("Agreement", [lay.agreement()]),
        (
            "Labels vs ground truth",
            [p for k in keys for p in (lay.head_truth(k), lay.family_dims(k), lay.labels(k))],
        ),
        ("Video retrieval (claim d)", [lay.video(k, d) for k, d in run.video]),
        ("Concept world", [lay.conceptworld_metrics()]),
    ]
    if mutual is not None and mutual.sets:
        paths = [
            lay.mutual(k, s, what)
            for s in mutual.sets
            for k in keys
            for what in (
                "summary",
                "images",
                "truth",
                "faithfulness_summary",
                "augmented",
                "faithfulness_truth",
            )
            if what not in ("truth", "faithfulness_truth") or lay.mutual(k, s, what).exists()
        ]
        parts.append(("Mutual knowledge (truth: concept-world models only)", paths))
    parts += list(extra)
    body = "".join(f"<h4>{escape(name)}</h4>{files(paths)}" for name, paths in parts)
    body += (
        f"<h4>Paper values</h4><p>{escape(values.title)}, transcribed in "
        f"<code>{escape(str(values.path))}</code> (each value names its table or section).</p>"
    )
    return f'<footer id="provenance"><h2>Provenance</h2>{body}</footer>'


def _mutual_section(
    mutual: MutualRun, values: PaperValues, assets: Path, standalone, n_examples: int
) -> str:
    """Per mutual set: Table 3's form, Figure 3's form, the panels, the concept world's truth;
    each also written as a standalone asset."""
    if not mutual.sets:
        line = "the mutual-knowledge stage did not run (no mutual sets in this run)"
        return _section("mutual", "Mutual knowledge", f"<p>{tables.missing(line)}</p>")
    legend = mutual_tables.LEGEND
    parts = [legend]
    for s in mutual.sets:
        name = dataset_name(s)
        table = mutual_tables.mutual_table(mutual, s, values)
        standalone(f"mutual_{s}.html", f"Mutual knowledge: {name}", table, legend)
        fit = values.mutual_data.get("vit_fit")
        fig = _figure(
            mutual_figures.dynamics_figure(mutual, s, values),
            assets / f"mutual_{s}.svg",
            f"MI dynamics and accuracy vs AUC for {name}",
            f"{name}: MI dynamics per model (PCA solid, K-means dashed) and top-1 vs AUC with a "
            "least-squares line per model family"
            + (f" (the paper's ViT line: {fit['slope']}·AUC + {fit['intercept']})" if fit else "")
            + (
                "; hollow diamonds: the paper's Table 3."
                if any(values.mutual(r.paper_name, s) for r in mutual.of_set(s))
                else "."
            ),
            f"no mutual-knowledge results for {s}",
        )
        panels = []
        for r in mutual.of_set(s):
            if r.summary is None and r.examples is None:
                continue
            panel = mutual_figures.panel_figure(r, n_examples)
            head = f"<h4>{escape(r.model.display)}</h4>"
            if panel is None:
                panels.append(head + f"<p>{tables.missing('no image with a thumbnail')}</p>")
                continue
            caption = (
                f"{r.model.display} on {name}: concept ellipses (one colour per concept) and "
                "the mutual descriptors, most important first; ✓ shared = also a descriptor "
                "of the class side."
            )
            svg = figures.to_svg(panel)
            details = mutual_tables.examples_table(r, n_examples)
            panels.append(
                head
                + _embed(svg, f"explained images of {r.model.display}", caption)
                + f"<details><summary>the same as text</summary>{details}</details>"
            )
        examples = "".join(panels) or f"<p>{tables.missing(f'no results for {s}')}</p>"
        standalone(
            f"mutual_{s}_examples.html", f"Mutual knowledge, explained images: {name}", examples, ""
        )
        truth_body = mutual_tables.truth_section_body(mutual, s)
        standalone(
            f"mutual_{s}_truth.html", f"Mutual descriptors vs ground truth: {name}", truth_body, ""
        )
        faithfulness = mutual_faithfulness.faithfulness_table(mutual, s, values)
        regions = mutual_faithfulness.regions_section_body(mutual, s)
        standalone(
            f"mutual_{s}_faithfulness.html",
            f"Explanation faithfulness: {name}",
            faithfulness + "<h4>True attribute's region vs a random one</h4>" + regions,
            "",
        )
        augmented = mutual_faithfulness.augmented_table(mutual, s, values)
        standalone(f"mutual_{s}_augmented.html", f"Descriptor zero-shot: {name}", augmented, "")
        parts.append(
            f'<h3 id="mutual-{escape(s)}">{escape(name)}</h3>{table}{fig}'
            f"<h4>Explained images</h4>{examples}"
            f"<h4>Mutual descriptors vs the true attributes</h4>{truth_body}"
            f"<h4>Explanation faithfulness (the paper's Table 1)</h4>{faithfulness}"
            f"<h4>Deleting the true attribute's region vs a random one</h4>{regions}"
            f"<h4>Zero-shot with descriptors and explanations (the paper's Table 2)</h4>"
            f"{augmented}"
        )
    return _section("mutual", "Mutual knowledge of the image and text encoders", "".join(parts))


# ------------------------------------------------------------------------------- build
def _model_infos(models: Mapping[str, Mapping[str, str]], values: PaperValues) -> list[ModelInfo]:
    infos = []
    for key, spec in models.items():
        arch, pretrained = spec.get("arch"), spec.get("pretrained")
        infos.append(
            ModelInfo(
                key,
                arch,
                pretrained,
                spec.get("display") or key,
                values.model_name(arch, pretrained),
            )
        )
    return infos


def build_report(
    run_dir: str | Path,
    models: Mapping[str, Mapping[str, str]],
    datasets: Sequence[str],
    out_html: str | Path,
    assets_dir: str | Path,
    title: str = "clipconcepts report",
    n_examples: int = 3,
    paper_values: str | Path | None = None,
    ood_datasets: Sequence[str] = (),
    concept_pairs: Mapping[str, Sequence[Sequence[str]]] | None = None,
    video: Sequence[str | Path] = (),
    claims: claims_mod.ClaimSettings | None = None,
    mutual_sets: Sequence[str] = (),
    attribution_sets: Sequence[str] = (),
    video_sets: Sequence[str] = (),
    dataset_families: Mapping[str, str] | None = None,
    llm_usage: Sequence[str | Path] = (),
    llm_prices: Mapping[str, Mapping[str, float]] | None = None,
    llm_currency: str = "USD",
    dataset_kinds: Mapping[str, str] | None = None,
    prune_strategies: Sequence[str] = (),
) -> Path:
    """Write the report of `run_dir` to `out_html` and its assets to `assets_dir`.

    `models`: key (folder name under `run_dir`) -> {"arch", "pretrained", "display"}.
    The claims section (`claims.evaluate_claims`) uses `ood_datasets` (datasets flagged
    `ood: true`), `concept_pairs` (dataset -> [[target, unrelated], ...]), `video` (video result
    files, `{run_dir}/{model}/video/{dataset}.parquet`, each with its `.items.parquet` beside it)
    and `claims` (bootstrap resamples, confidence level, minimum effect, seed). `mutual_sets`: the sets the
    mutual-knowledge stage ran on (`{run_dir}/{model}/mutual/{set}/`; none: a line says so).
    `attribution_sets`, `video_sets`: the datasets the head-attribution stage and the video sets
    the video-retrieval stage ran on (`{model}/attribution/{dataset}/`,
    `{model}/video/{set}.retrieval.parquet`; none: a line says so). `dataset_families`: the
    concept world's in-domain datasets -> the family their classes are (the CCS-vs-truth section).
    `dataset_kinds` (dataset -> `datasets.<name>.kind`) and `prune_strategies`
    (`prune.strategies`: with `published`, the authors' lists beside ours) feed the setup
    section and the published-lists tables (`setup_tables`).
    `llm_usage`: the LLM steps' usage tables (`llm_report`), costed at `llm_prices`
    (`llm.prices`, in `llm_currency`); their recorded prompts make the prompts appendix.
    Missing result files are reported in the page; a malformed one raises `ReportInputError`."""
    values = load_paper_values(paper_values)
    run = gather_run(run_dir, _model_infos(models, values), list(datasets), list(video))
    mutual = gather_mutual(run.layout, run.models, list(mutual_sets), values)
    attribution = gather_attribution(run.layout, run.models, list(attribution_sets))
    video_run = gather_video(run.layout, run.models, list(video_sets))
    assets = Path(assets_dir)
    assets.mkdir(parents=True, exist_ok=True)
    # the head browser: its cards are the targets of every head link (others are unlinked)
    heads = gather_heads(
        run, {key: r.heads for key, r in attribution.results.items()}, attribution.datasets
    )
    page_from_assets = Path(os.path.relpath(Path(out_html).resolve(), assets.resolve())).as_posix()

    def standalone(name: str, heading: str, fragment: str, legend: str = tables.LEGEND) -> None:
        fragment = keep_links(fragment, heads.anchors, page_from_assets)
        _write(
            assets / name,
            page(f"{title}: {heading}", f"<h1>{escape(heading)}</h1>{legend}{fragment}"),
        )

    # claims (shown first)
    settings = claims or claims_mod.ClaimSettings()
    claims_found = (
        claims_mod.evaluate_claims(run, ood_datasets, concept_pairs, settings)
        if settings.enabled
        else []
    )
    claims_body = claims_html.claims_section_body(claims_found, settings)
    if not settings.enabled:
        claims_body = (
            f"<p>{tables.missing('the claims section is off (report.claims.enabled)')}</p>"
        )
        for name in claims_html.FOREST_ASSETS.values():
            _figure(None, assets / name, "", "", "the claims section is off")
    forests = "".join(
        _figure(
            claims_html.forest_figure(c, settings),
            assets / claims_html.FOREST_ASSETS[c.letter],
            f"forest plot of claim ({c.letter})",
            f"({c.letter}) {c.title}: each testable case's differences (points) with their "
            f"{settings.level:.0%} intervals; solid line 0, dashed line the minimum effect "
            f"({settings.min_effect:g} points).",
            f"({c.letter}) {c.title}: no testable case to plot",
        )
        for c in claims_found
    )
    standalone("claims.html", "The CCS paper's claims on this run", claims_body)
    ood_text = ", ".join(dataset_name(d) for d in run.datasets if d in set(ood_datasets))
    claims_section = _section(
        "claims",
        "The CCS paper's claims on this run",
        "<p>Each verdict is computed from this run's result files by the rule under the claim "
        "(open a claim for its cases). OOD datasets: "
        + (escape(ood_text) if ood_text else tables.missing("none flagged"))
        + ".</p>"
        + claims_body
        + forests,
    )

    # CCS@K
    ccs_table = tables.ccs_at_k_table(run, values)
    standalone("ccs_at_k.html", "CCS@K", ccs_table)
    ccs_fig = _figure(
        figures.ccs_at_k_figure(run, values),
        assets / "ccs_at_k.svg",
        "CCS@K bar chart",
        f"CCS@K per model; grey hatched bars: the paper's {values.ccs_at_k_source}.",
        "no CCS@K results",
    )
    ccs_section = _section(
        "ccs-at-k",
        "CCS@K",
        "<p>Fraction of heads with CCS = K (majority verdict of the judges); the small line is "
        "the head count.</p>" + ccs_table + ccs_fig,
    )

    # examples
    examples = "".join(tables.ccs_examples_table(m, run.ccs[m.key], n_examples) for m in run.models)
    standalone("ccs_examples.html", "Example heads per CCS bucket", examples)
    examples_section = _section(
        "examples",
        "Example heads per CCS bucket",
        f"<p>Up to {n_examples} heads per bucket (last layer first), label in quotes; "
        "✓ = the judge says the text fits the label.</p>" + examples,
    )

    # pruning
    pruning_parts = []
    for d in run.datasets:
        name = dataset_name(d)
        top1 = tables.pruning_table(run, d, values, "top1")
        body = top1
        if tables.has_pruning(run, d):
            top5 = tables.pruning_table(run, d, values, "top5")
            body += f"<details><summary>top-5 accuracy</summary>{top5}</details>"
        published = setup_tables.published_table(run, d, prune_strategies)
        if published is not None:
            body += f"<h4>The authors' published head lists beside ours</h4>{published}"
        standalone(f"prune_{d}.html", f"Pruning: {name}", body)
        seeds = sorted(set(figures.random_seed_counts(run, d)))
        seed_text = "/".join(map(str, seeds)) if seeds else "no"
        source = values.pruning_source(d)
        caption = (
            f"{name}: top-1 accuracy (%) unpruned and after pruning high-CCS, low-CCS or random "
            f"heads. Random: mean over {seed_text} seeds, error bar = sample std."
            + (f" Hollow diamonds: the paper's {source}." if source else "")
        )
        fig = _figure(
            figures.pruning_figure(run, d, values),
            assets / f"prune_{d}.svg",
            f"pruning bar chart for {name}",
            caption,
            f"no pruning results for {d}",
        )
        pruning_parts.append(f'<h3 id="pruning-{escape(d)}">{escape(name)}</h3>{body}{fig}')
    pruning_section = _section(
        "pruning",
        "Pruning per dataset",
        "<p>Zero-shot accuracy in %. Random: mean ± sample std over seeds; the line under a "
        "value is the number of heads pruned.</p>"
        + ("".join(pruning_parts) or tables.missing("no datasets")),
    )

    # concept-specific
    concept_parts = []
    for d in run.datasets:
        fragment = tables.concept_table(run, d, values)
        name = escape(dataset_name(d))
        if fragment is None:
            fragment = f"<p>{tables.missing(f'no concept-specific pruning results for {d}')}</p>"
        concept_parts.append(f"<h3>{name}</h3>{fragment}")
    concept_body = "".join(concept_parts)
    standalone("concept.html", "Concept-specific pruning", concept_body)
    concept_fig = _figure(
        figures.concept_figure(run, run.datasets, values),
        assets / "concept.svg",
        "concept-specific pruning bar chart",
        "Top-1 accuracy (%) unpruned and after pruning each concept group's heads; hollow "
        "diamonds: the numbers the paper's section 5.5 gives.",
        "no concept-specific pruning results",
    )
    concept_section = _section(
        "concept",
        "Concept-specific pruning",
        "<p>Heads whose label falls in a concept group are pruned; a strategy named "
        "'X heads pruned (vs Y)' is paired with pruning the same number of Y heads.</p>"
        + concept_body
        + concept_fig,
    )

    # agreement, concept world
    agreement = tables.agreement_table(run, values)
    standalone("agreement.html", "Human vs LLM agreement", agreement)
    agreement_section = _section("agreement", "Human vs LLM agreement", agreement)
    if run.conceptworld_metrics is None:
        path = run.layout.conceptworld_metrics()
        metrics = f"<p>{tables.missing(f'no concept-world metrics ({path})')}</p>"
    else:
        metrics = tables.frame_table(run.conceptworld_metrics)
    standalone("conceptworld_metrics.html", "Concept-world CLIP: training metrics", metrics)
    metrics_section = _section("conceptworld", "Concept-world CLIP: training metrics", metrics)
    truth_body = label_truth.label_truth_section_body(run, label_truth.compare_run(run))
    standalone("label_truth.html", "LLM labels vs ground truth", truth_body)
    truth_section = _section(
        "label-truth", "LLM labels vs ground truth (concept world)", truth_body
    )
    per_model: dict[str, list] = {}
    for (key, _), result in attribution.results.items():
        per_model.setdefault(key, []).append(result)
    ccs_truth_body = ccs_truth.ccs_truth_section_body(
        run, run.layout.textbank(), per_model, dataset_families or {}
    )
    standalone("ccs_truth.html", "Does CCS measure concept consistency here?", ccs_truth_body)
    truth_section += _section(
        "ccs-truth", "Does CCS measure concept consistency here? (concept world)", ccs_truth_body
    )

    mutual_section = _mutual_section(mutual, values, assets, standalone, n_examples)
    attribution_section = attribution_video_sections.attribution_section(
        attribution, assets, standalone, _figure
    )
    video_section = attribution_video_sections.video_section(video_run, assets, standalone, _figure)
    llm = llm_report.gather_llm_usage(run_dir, llm_usage, llm_prices, llm_currency)
    llm_body, prompts_body = llm_report.section_body(llm), llm_report.prompts_body(llm)
    standalone("llm_usage.html", "LLM usage", llm_body + "<h2>LLM prompts</h2>" + prompts_body)
    llm_sections = _section("llm-usage", "LLM usage and cost", llm_body) + _section(
        "llm-prompts", "Appendix: the LLM prompts", prompts_body
    )
    extra = attribution_video_sections.provenance(
        run.layout, [m.key for m in run.models], attribution.datasets, video_run.sets
    )

    body = (
        f"<h1>{escape(title)}</h1>"
        + claims_section
        + _overview(run, title, values)
        + setup_tables.setup_section(run, dataset_kinds)
        + head_browser.section(heads)
        + ccs_section
        + examples_section
        + pruning_section
        + concept_section
        + agreement_section
        + truth_section
        + metrics_section
        + mutual_section
        + attribution_section
        + video_section
        + llm_sections
        + _provenance(
            run,
            values,
            mutual,
            [
                *extra,
                ("Head browser", heads.sources),
                ("LLM usage and prompts", llm.sources),
                ("Text bank", [setup_tables.textbank_path(run.layout.run_dir)]),
            ],
        )
    )
    body = keep_links(body, heads.anchors)
    out = Path(out_html)
    _write(out, page(title, body))
    log.info(
        "report written to %s (%d assets in %s)",
        out,
        len(report_assets(datasets, mutual_sets, attribution_sets, video_sets)),
        assets,
    )
    return out
