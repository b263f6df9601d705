"""The papers' claims, tested where the truth is known: the concept world.

Pipeline properties are checked on the concept-world CLIP the training tests share (conftest.py:
the demo's recipe under `make test`, a short schedule under `make test-fast`; the
real pipeline runs in process: decomposition -> TEXTSPAN on the world's text bank -> offline LLM
labels and verdicts -> CCS). The papers' empirical claims need the demo-size model: they are
checked on the demo's outputs (`make demo`), and skipped with a message when there are none.

Findings are asserted as they are, not tuned: where the small world cannot express a claim
(e.g. no head reaches CCS 5) the test says so and checks what the claim reduces to.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import polars as pl
import pytest
import torch

from clipconcepts.ccs import ccs_at_k, ccs_table
from clipconcepts.conceptworld.datasets import write_datasets
from clipconcepts.conceptworld.lexicon import conceptworld_lexicon
from clipconcepts.conceptworld.model import MODEL_NAME
from clipconcepts.conceptworld.textbank import conceptworld_textbank
from clipconcepts.conceptworld.world import FAMILIES
from clipconcepts.data.zeroshot import build_zeroshot_dataset
from clipconcepts.judging import judge_heads
from clipconcepts.labelling import label_heads
from clipconcepts.llm import LLMCache, make_backend
from clipconcepts.models import load_clip
from clipconcepts.textspan import textspan

DEMO = Path(__file__).resolve().parents[1] / "results/demo/conceptworld"


@pytest.fixture(scope="module")
def world(concept_world_run, tmp_path_factory):
    """The shared concept-world training run (conftest.py) and a probe set of 300 images."""
    out, _ = concept_world_run
    root = tmp_path_factory.mktemp("science")
    write_datasets(root / "data", n_probe=300, n_per_family=100, seed=0, progress=False)
    clip = load_clip(str(out / f"{MODEL_NAME}.json"), str(out / "checkpoint.pt"))
    return root, clip


@pytest.fixture(scope="module")
def analysed(world):
    """TEXTSPAN, labels, verdicts and CCS of every head, as the workflow computes them."""
    root, clip = world
    probe = build_zeroshot_dataset("manifest", root / "data/probe", clip.preprocess)
    contributions = torch.cat(
        [clip.head_contributions(images, range(clip.n_layers)) for images, *_ in probe.loader(256)]
    )  # [N, L, H, D]
    keys = [(layer, head) for layer in range(clip.n_layers) for head in range(clip.n_heads)]
    data = contributions.flatten(1, 2).transpose(0, 1)  # [K, N, D]
    bank = conceptworld_textbank()
    texts = clip.encode_text([t for t, _ in bank])
    result = textspan(data, texts, iters=5, rank=80)
    rows = [
        {"layer": layer, "head": head, "rank": r, "text": bank[i][0], "family": bank[i][1]}
        for (layer, head), picks in zip(keys, result.indices.tolist(), strict=True)
        for r, i in enumerate(picks)
    ]
    spans = pl.DataFrame(rows).with_columns(
        pl.col("layer", "head").cast(pl.Int16), pl.col("rank").cast(pl.Int8)
    )
    backend = make_backend({"backend": "offline", "model": "lexicon"}, conceptworld_lexicon())
    cache = LLMCache(root / "llm_cache")
    labels = label_heads(spans, backend, cache)
    verdicts = judge_heads(labels, spans, [backend], "per_text", cache)
    ccs = ccs_table(verdicts, labels, spans)
    return clip, spans, labels, ccs


def test_labels_are_the_majority_family_of_each_heads_texts(analysed):
    _, spans, labels, _ = analysed
    truth = {}
    for (layer, head), group in spans.sort("rank").group_by(["layer", "head"], maintain_order=True):
        families = [f for f in group["family"] if f is not None]
        counts = Counter(families)  # ties: the family met first, as the labeller's rule
        truth[(layer, head)] = max(counts, key=counts.get) if counts else "unclear"
    got = {(r["layer"], r["head"]): r["label"] for r in labels.iter_rows(named=True)}
    assert got == truth


def test_ccs_at_k_sums_to_one_and_matches_the_ground_truth(analysed):
    _, spans, labels, ccs = analysed
    at_k = ccs_at_k(ccs).filter(pl.col("judge") == "majority")
    assert at_k["fraction"].sum() == pytest.approx(1.0)
    assert at_k["n_heads"].sum() == len(labels)
    # CCS = number of a head's texts whose ground-truth family is its label
    family = {(r["layer"], r["head"], r["rank"]): r["family"] for r in spans.iter_rows(named=True)}
    for row in ccs.filter(pl.col("judge") == "majority").iter_rows(named=True):
        expected = sum(family[(row["layer"], row["head"], r)] == row["label"] for r in range(5))
        assert row["ccs"] == expected, row


def _demo(name: str) -> pl.DataFrame:
    path = DEMO / name
    if not path.is_file():
        pytest.skip(f"no demo output {path}: run `make demo` to check this claim")
    return pl.read_parquet(path)


@pytest.mark.xfail(
    strict=False,
    reason="finding: the demo model (6 layers x 8 heads, 4 families of 6-9 values) has no CCS-5 "
    "head: CCS@2 0.25, CCS@3 0.44, CCS@4 0.31 (the first world's 4 x 6 model: max CCS 3-4)",
)
def test_demo_concept_consistent_heads_exist():
    """Issue 9 asks for >= 2 heads with CCS = 5 and >= 2 with CCS <= 1 in the demo. Finding: the
    richer world gives every analysed head CCS 2-4, none 5 and none <= 1 (the world was not tuned
    further to produce them, as the issue asks)."""
    ccs = _demo("ccs.parquet").filter(pl.col("judge") == "majority")
    assert (ccs["ccs"] == 5).sum() >= 2, ccs.select("layer", "head", "label", "ccs")
    assert (ccs["ccs"] <= 1).sum() >= 2, ccs.select("layer", "head", "label", "ccs")


def test_demo_family_heads_matter_more_than_unrelated_family_heads():
    """The CCS paper's concept-specific claim (Figures 3-4) on the demo: on each dataset, pruning
    the target family's labelled heads lowers accuracy more than pruning as many heads of the
    unrelated family. Measured on the 2,200-step demo: it holds on color, position, texture and
    both outlined (OOD) sets; on background neither set moves accuracy off 100% (saturated), the
    one case where the claim cannot show (the report's verdict: inconclusive, saturated)."""
    compared = 0
    tables = [
        p for p in (DEMO / "prune").glob("*.parquet") if not p.name.endswith(".items.parquet")
    ]
    for path in sorted(tables):
        frame = pl.read_parquet(path)
        original = frame.filter(pl.col("strategy") == "original")["top1"].item()
        concept = frame.filter(pl.col("strategy").str.starts_with("concept:"))
        if concept.is_empty() or concept["n_heads"][0] == 0:
            continue
        row = concept.row(0, named=True)  # the pair's target first, as prune_eval writes it
        _, target, _, unrelated = row["strategy"].split(":")
        other = concept.filter(pl.col("strategy") == f"concept:{unrelated}:vs:{target}")
        if row["top1"] == other["top1"].item() == original:
            continue  # saturated: neither set changes a single prediction
        compared += 1
        assert row["top1"] < other["top1"].item(), (path.stem, frame)
    if compared == 0 and not (DEMO / "prune").is_dir():
        pytest.skip(f"no demo output {DEMO / 'prune'}: run `make demo` to check this claim")
    assert compared >= 2, "too few datasets with labelled heads on both sides to test the claim"


def test_demo_high_ccs_heads_matter_more_than_low_and_random():
    """The CCS paper's main claim (Tables 4-6, Figure 2): pruning CCS = 5 heads lowers mean
    accuracy more than pruning CCS <= 1 heads and more than the mean over random seeds. Where the
    world has no head in one of the groups the finding is reported (the report shows the same)."""
    frames = [_demo(f"prune/{family}.parquet") for family in FAMILIES]  # in-domain sets
    frame = pl.concat(frames)
    n = dict(frame.group_by("strategy").agg(pl.col("n_heads").max()).iter_rows())
    if not n.get("high") or not n.get("low"):
        pytest.skip(f"finding: the demo has no CCS-5 or no CCS<=1 heads (heads pruned: {n})")
    mean = dict(frame.group_by("strategy").agg(pl.col("top1").mean()).iter_rows())
    assert mean["high"] < mean["low"], mean
    assert mean["high"] < mean["random"], mean
