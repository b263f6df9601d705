"""The head browser's inputs: one record per analysed head joining what it writes, what an LLM
calls it, what removing it costs and the images it writes most for.

Per model (files under `run_dir`, `RunLayout`):
- `{model}/ccs.parquet` (required for the model to have heads): the analysed heads, their label,
  each judge's CCS and per-text verdicts;
- `{model}/textspans.parquet`: the 5 TEXTSPAN texts in rank order with their variance fractions;
- `{model}/head_groups.parquet`: the CCS groups (high / moderate / low);
- `{model}/prune/{dataset}.parquet`: every prune set (strategy, seed) that zeroed the head, its
  top-1 accuracy and the unpruned one; concept strategies give the head's concept groups; the
  video stage's `{model}/video/{set}.parquet` (the same schema, text-to-video R@1) likewise;
- `{model}/attribution/{dataset}/heads.parquet`: AtP, direct and true effects with their ranks;
- `{model}/head_truth.parquet` (concept world): the head's true family and share;
- `{model}/head_images.parquet` (rule `head_images`): the top and bottom probe images with
  their thumbnails.
Every file but the CCS one is optional: a card says what it lacks. A file that exists but lacks
a column raises `ReportInputError` naming it (`inputs.read_input`).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from clipconcepts.report.head_links import head_anchor, head_name
from clipconcepts.report.inputs import MAJORITY, ModelInfo, RunData, concept_group, read_input

EFFECTS = ("atp_zero", "atp_mean", "direct", "true_zero", "true_mean", "acc_drop_zero")
RANKED = ("atp_zero", "true_zero")  # the ranks shown in the index (best over the sets)
KINDS = ("textspans", "head_groups", "head_images")


@dataclass(frozen=True)
class HeadText:
    rank: int
    text: str
    variance_fraction: float | None
    verdicts: dict[str, bool | None]  # judge -> verdict (None: invalid)


@dataclass(frozen=True)
class HeadEffect:
    dataset: str
    values: dict[str, float | None]  # EFFECTS
    ranks: dict[str, int | None]  # rank_{view}


@dataclass(frozen=True)
class HeadPruned:
    dataset: str
    strategy: str
    seed: int
    n_heads: int
    top1: float
    original: float | None  # the unpruned top-1 on the same dataset


@dataclass(frozen=True)
class HeadImage:
    side: str  # top | bottom
    rank: int
    image_id: str
    label: int
    projection: float
    thumb: str  # key into HeadBrowserData.thumbs
    width: int
    height: int
    mime: str = "image/jpeg"


@dataclass
class HeadRecord:
    model: ModelInfo
    layer: int
    head: int
    label: str | None
    ccs: dict[str, int | None]  # judge -> CCS (majority included)
    n_invalid: dict[str, int]
    texts: list[HeadText] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)  # high | moderate | low | concept:<group>
    family: str | None = None  # concept world: the true family (None: no truth or a tie)
    shares: dict[str, float] = field(default_factory=dict)  # family -> share
    effects: list[HeadEffect] = field(default_factory=list)
    pruned: list[HeadPruned] = field(default_factory=list)
    images: list[HeadImage] = field(default_factory=list)
    direction: str | None = None  # the first TEXTSPAN text the images are scored on

    @property
    def name(self) -> str:
        return head_name(self.layer, self.head)

    @property
    def anchor(self) -> str:
        return head_anchor(self.model.key, self.name)

    @property
    def share(self) -> float | None:
        return self.shares.get(self.family) if self.family else None

    def best_rank(self, view: str) -> tuple[int, str] | None:
        """The smallest rank of `view` over the attribution sets, and its set."""
        ranked = [(e.ranks.get(view), e.dataset) for e in self.effects]
        ranked = [(r, d) for r, d in ranked if r is not None]
        return min(ranked) if ranked else None


@dataclass
class HeadBrowserData:
    heads: list[HeadRecord]
    judges: list[str]  # every judge, majority first
    thumbs: dict[str, str]  # key -> data URL (one per distinct model x image)
    missing: dict[str, list[Path]]  # model key -> its absent optional files
    sources: list[Path]  # every file read (the provenance footer)
    attribution_sets: list[str] = field(default_factory=list)

    @property
    def anchors(self) -> set[str]:
        return {h.anchor for h in self.heads}

    def has(self, what: str) -> bool:
        """Whether any head has `what`: truth | effects | images | texts."""
        tests = {
            "truth": lambda h: bool(h.shares),
            "effects": lambda h: bool(h.effects),
            "images": lambda h: bool(h.images),
            "texts": lambda h: bool(h.texts),
        }
        return any(tests[what](h) for h in self.heads)


def _by_head(frame: pl.DataFrame | None) -> dict[tuple[int, int], list[dict]]:
    out: dict[tuple[int, int], list[dict]] = {}
    if frame is None:
        return out
    for row in frame.iter_rows(named=True):
        out.setdefault((row["layer"], row["head"]), []).append(row)
    return out


def _judges(frame: pl.DataFrame) -> list[str]:
    judges = list(dict.fromkeys(frame["judge"].to_list()))
    return sorted(judges, key=lambda j: (j != MAJORITY,))


def _texts(ccs_rows: list[dict], spans: list[dict]) -> list[HeadText]:
    """The head's texts in rank order (TEXTSPAN's, else the CCS file's) with each judge's
    verdict on the text at the same rank."""
    spans = sorted(spans, key=lambda r: r["rank"])
    base = ccs_rows[0]["texts"] or []
    texts = [(r["rank"], r["text"], r["variance_fraction"]) for r in spans]
    if not texts:
        texts = [(i, t, None) for i, t in enumerate(base)]
    out = []
    for i, (rank, text, fraction) in enumerate(texts):
        verdicts = {}
        for row in ccs_rows:
            listed = row["verdicts"] or []
            verdicts[row["judge"]] = listed[i] if i < len(listed) else None
        out.append(HeadText(int(rank), text or "", fraction, verdicts))
    return out


def _prune_rows(frames: dict[str, pl.DataFrame]) -> dict[tuple[int, int], list[HeadPruned]]:
    """Per head, every prune set that zeroed it (datasets in order, sets in file order)."""
    out: dict[tuple[int, int], list[HeadPruned]] = {}
    for dataset, frame in frames.items():
        original = frame.filter(pl.col("strategy") == "original")["top1"]
        base = float(original.mean()) if original.len() else None
        for row in frame.iter_rows(named=True):
            for name in row["heads"] or []:
                key = _parse(name)
                if key is None:
                    continue
                out.setdefault(key, []).append(
                    HeadPruned(
                        dataset,
                        row["strategy"],
                        int(row["seed"]),
                        int(row["n_heads"]),
                        float(row["top1"]),
                        base,
                    )
                )
    return out


def _parse(name: str) -> tuple[int, int] | None:
    """'L11.H3' -> (11, 3)."""
    try:
        layer, head = name.split(".")
        return int(layer.removeprefix("L")), int(head.removeprefix("H"))
    except ValueError:
        return None


def _data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def gather_heads(
    run: RunData,
    attribution_heads: dict[tuple[str, str], pl.DataFrame | None],
    attribution_sets: Sequence[str] = (),
) -> HeadBrowserData:
    """Every analysed head of `run`'s models (the heads of their `ccs.parquet`), in model,
    layer, head order. `attribution_heads`: (model key, dataset) -> the attribution stage's
    heads table (None where absent)."""
    lay = run.layout
    heads: list[HeadRecord] = []
    judges: dict[str, None] = {}
    thumbs: dict[str, str] = {}
    thumb_keys: dict[str, str] = {}  # data URL -> key: an image shared by models is stored once
    missing: dict[str, list[Path]] = {}
    sources: list[Path] = []
    for m in run.models:
        ccs = run.ccs.get(m.key)
        if ccs is None:
            continue
        files = {kind: read_input(lay.head_file(m.key, kind), kind) for kind in KINDS}
        missing[m.key] = [lay.head_file(m.key, k) for k, f in files.items() if f is None]
        sources += [lay.head_file(m.key, k) for k in KINDS]
        judges.update(dict.fromkeys(_judges(ccs)))
        spans = _by_head(files["textspans"])
        groups = _by_head(files["head_groups"])
        images = _by_head(files["head_images"])
        truth = _by_head(run.head_truth.get(m.key))
        prune = {
            d: frame
            for d in run.datasets
            if (frame := read_input(lay.prune(m.key, d), "prune")) is not None
        }
        for model, video_set in run.video:
            frame = read_input(lay.video(model, video_set), "prune") if model == m.key else None
            if frame is not None:
                prune[f"{video_set} (video, t2v R@1)"] = frame
        pruned = _prune_rows(prune)
        effects = {
            d: _by_head(attribution_heads.get((m.key, d)))
            for d in attribution_sets
            if attribution_heads.get((m.key, d)) is not None
        }
        for (layer, head), rows in sorted(_by_head(ccs).items()):
            rows = sorted(rows, key=lambda r: (r["judge"] != MAJORITY, r["judge"]))
            key = (layer, head)
            record = HeadRecord(
                model=m,
                layer=layer,
                head=head,
                label=rows[0]["label"],
                ccs={r["judge"]: r["ccs"] for r in rows},
                n_invalid={r["judge"]: int(r["n_invalid"] or 0) for r in rows},
                texts=_texts(rows, spans.get(key, [])),
            )
            record.groups = [r["group"] for r in groups.get(key, [])]
            for p in pruned.get(key, []):
                group = concept_group(p.strategy)
                if group is not None and f"concept:{group[0]}" not in record.groups:
                    record.groups.append(f"concept:{group[0]}")
            record.pruned = pruned.get(key, [])
            tops = [r for r in truth.get(key, []) if r["is_top"]]
            record.shares = {r["family"]: float(r["share"]) for r in truth.get(key, [])}
            record.family = tops[0]["family"] if len(tops) == 1 else None
            for d, by_head in effects.items():
                for r in by_head.get(key, []):
                    record.effects.append(
                        HeadEffect(
                            d,
                            {v: r.get(v) for v in EFFECTS},
                            {v: r.get(f"rank_{v}") for v in EFFECTS},
                        )
                    )
            for r in sorted(images.get(key, []), key=lambda r: (r["side"] != "top", r["rank"])):
                url = _data_url(r["thumbnail"], r["mime"])
                thumb = thumb_keys.get(url)
                if thumb is None:
                    thumb = thumb_keys[url] = str(len(thumbs))
                    thumbs[thumb] = url
                record.images.append(
                    HeadImage(
                        r["side"],
                        int(r["rank"]),
                        r["image_id"],
                        int(r["label"]),
                        float(r["projection"]),
                        thumb,
                        int(r["width"]),
                        int(r["height"]),
                        r["mime"],
                    )
                )
                record.direction = r["text"]
            heads.append(record)
    return HeadBrowserData(
        heads, list(judges), thumbs, missing, sources, attribution_sets=list(attribution_sets)
    )
