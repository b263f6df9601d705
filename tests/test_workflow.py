"""The Snakemake workflow end to end: the paper config's DAG, a small concept-world run, reruns.

The small run copies the workflow (Snakefile, rules, config, src) into a temporary folder, so a
test can edit a prompt there without touching the repository.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest
import yaml

from clipconcepts.conceptworld.world import FAMILIES as CONCEPTWORLD_FAMILIES

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _run(args, cwd, check=True):
    # the rules call `python`: the interpreter running the tests, whatever PATH says
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        SNAKEMAKE + args, cwd=cwd, capture_output=True, text=True, timeout=1200, env=env
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout + proc.stderr


def _job_counts(output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a (dry) run."""
    table = output.split("Job stats:")[1].split("\n\n")[0]
    counts = {}
    for line in table.splitlines()[3:]:
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


def test_paper_dry_run_lists_every_job():
    out = _run(["-n", "--profile", "profiles/slurm", "--configfile", "config/config.yaml"], ROOT)
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    datasets = list(config["datasets"])

    def runs(spec, stage):
        return stage in spec.get("stages", ["heads", "mutual"])

    # head-level stages: ViTs whose stages include heads; mutual: every model listing it
    models = [
        m
        for m, spec in config["models"].items()
        if runs(spec, "heads") and not spec["arch"].startswith(("RN", "convnext"))
    ]
    mutual_models = [m for m, spec in config["models"].items() if runs(spec, "mutual")]
    assert len(models) == 6 and len(mutual_models) == 13  # the two papers' model lists
    counts = _job_counts(out)
    assert counts["extract"] == counts["textspan"] == counts["ccs"] == len(models)
    assert counts["head_images"] == len(models)  # the report's head browser thumbnails
    assert counts["prune_eval"] == counts["classifier"] == len(models) * len(datasets)
    mutual_sets = list(config["mutual"]["datasets"])
    assert counts["mutual"] == len(mutual_models) * len(mutual_sets)
    assert counts["mutual_descriptors"] == len(mutual_sets)
    assert "mutual_truth" not in counts  # no concept-world model: no ground truth
    seeds = config["prune"]["random_seeds"]
    for model in models:
        for dataset in datasets:
            match = re.search(
                rf"pruned zero-shot accuracy of {re.escape(model)} on {re.escape(dataset)}: (.*)",
                out,
            )
            assert match, (model, dataset)
            plan = match.group(1).split()
            for strategy in ("original", "high", "low"):
                assert strategy in plan
            assert [p for p in plan if p.startswith("random/")] == [
                f"random/seed{s}" for s in seeds
            ]
            for target, other in config["prune"]["concept_pairs"].get(dataset, []):
                assert f"concept:{target}:vs:{other}" in plan


def test_bad_config_names_the_key(tmp_path):
    config = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
    config["extract"]["batch_sise"] = 3
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    out = _run(["-n", "--configfile", str(tmp_path / "bad.yaml")], ROOT, check=False)
    assert "batch_sise" in out
    config["extract"] = {"batch_size": "many"}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    out = _run(["-n", "--configfile", str(tmp_path / "bad.yaml")], ROOT, check=False)
    assert "batch_size" in out and "'many' is not of type 'integer'" in out


def test_claims_need_three_random_seeds(tmp_path):
    config = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
    config["run"] = "seeds-check"
    config["prune"]["random_seeds"] = [0, 1]
    (tmp_path / "seeds.yaml").write_text(yaml.safe_dump(config))
    out = _run(["-n", "--configfile", str(tmp_path / "seeds.yaml")], ROOT, check=False)
    assert "config key prune.random_seeds needs at least 3 distinct seeds" in out
    config["report"]["claims"] = {"enabled": False}  # no claims: two seeds are fine
    (tmp_path / "seeds.yaml").write_text(yaml.safe_dump(config))
    assert "Job stats" in _run(["-n", "--configfile", str(tmp_path / "seeds.yaml")], ROOT)
    config["report"]["claims"] = {"margin": 1.0}  # the old knobs are gone: named
    (tmp_path / "seeds.yaml").write_text(yaml.safe_dump(config))
    out = _run(["-n", "--configfile", str(tmp_path / "seeds.yaml")], ROOT, check=False)
    assert "margin" in out and "Additional properties are not allowed" in out


class _Sections(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id":
                self.ids.add(value)


@pytest.fixture(scope="module")
def small_demo(reduced_demo):
    """The demo DAG on a reduced concept world (conftest.py), run once per session."""
    return reduced_demo


def test_small_demo_extraction_outputs(small_demo):
    work, config, _ = small_demo
    results = work / "results/demo/conceptworld"
    heads = pl.read_parquet(results / "heads.parquet")
    emb = pl.read_parquet(results / "embeddings.parquet")
    n_probe = config["conceptworld"]["n_probe"]
    assert heads.columns == ["image_id", "label", "layer", "head", "contribution"]
    assert heads.schema["contribution"].size == emb.schema["embedding"].size
    n_heads = heads["head"].n_unique()
    assert len(emb) == n_probe and len(heads) == n_probe * len(config["layers"]) * n_heads
    assert (work / "logs/demo/conceptworld/extract.log").stat().st_size > 0


def test_small_demo_every_stage_and_report(small_demo):
    work, config, _ = small_demo
    results = work / "results/demo"
    textspans = pl.read_parquet(results / "conceptworld/textspans.parquet")
    assert textspans.group_by("layer", "head").len()["len"].unique().to_list() == [5]
    at_k = pl.read_parquet(results / "conceptworld/ccs_at_k.parquet").filter(
        pl.col("judge") == "majority"
    )
    assert at_k["fraction"].sum() == pytest.approx(1.0)
    for dataset in config["datasets"]:
        prune = pl.read_parquet(results / f"conceptworld/prune/{dataset}.parquet")
        assert {"original", "high", "low", "random"} <= set(prune["strategy"])
        assert sorted(prune.filter(pl.col("strategy") == "random")["seed"]) == [0, 1, 2]
        items = pl.read_parquet(results / f"conceptworld/prune/{dataset}.items.parquet")
        assert items.height == prune.height * prune["n_images"][0]
    assert (results / "conceptworld/video/clips.items.parquet").exists()
    # mutual knowledge: per set, images and summary in the documented schemas, and the truth
    from clipconcepts.mutual.schemas import IMAGE_SCHEMA, SUMMARY_SCHEMA

    for name in config["mutual"]["datasets"]:
        folder = results / f"conceptworld/mutual/{name}"
        images = pl.read_parquet(folder / "images.parquet")
        assert images.schema == pl.Schema(IMAGE_SCHEMA) and images.height > 0
        assert set(images["method"]) == {"pca", "kmeans"}
        summary = pl.read_parquet(folder / "summary.parquet")
        assert summary.schema == pl.Schema(SUMMARY_SCHEMA)
        assert summary.filter(pl.col("level") == "dataset")["method"].to_list() == ["pca", "kmeans"]
        truth = pl.read_parquet(folder / "truth.parquet")
        assert set(truth["family"]) == {"all", *CONCEPTWORLD_FAMILIES}
        bank = pl.read_parquet(results / f"mutual/descriptors/{name}.parquet")
        assert bank["family"].null_count() == 0
    # the whole model's directions per family (head_truth rule), shown in the CCS-vs-truth section
    family_dims = pl.read_parquet(results / "conceptworld/family_dims.parquet")
    assert family_dims["family"].to_list() == list(CONCEPTWORLD_FAMILIES)
    assert (family_dims["dims"] > 0).all() and (
        family_dims["dims"] <= family_dims["n_values"] - 1 + 1e-6
    ).all()
    report = (results / "report.html").read_text()
    assert report.count('data-metric="model_family_dims"') == len(CONCEPTWORLD_FAMILIES)
    parser = _Sections()
    parser.feed(report)
    assert {"overview", "ccs-at-k", "examples", "pruning", "concept", "conceptworld"} <= parser.ids
    # the head browser: a card per analysed head, from the head_images rule's thumbnails
    n_heads = textspans.select("layer", "head").n_unique()
    assert sum(i.startswith("head-conceptworld-L") for i in parser.ids) == n_heads
    head_images = pl.read_parquet(results / "conceptworld/head_images.parquet")
    assert head_images.group_by("layer", "head").len()["len"].unique().to_list() == [16]
    # every rule wrote its log
    logs = {p.name for p in (work / "logs/demo").rglob("*.log")}
    assert {
        "extract.log",
        "textspan.log",
        "label.log",
        "judge.log",
        "ccs.log",
        "report.log",
        "head_images.log",
        "mutual_color.log",
        "mutual_truth_color.log",
        "descriptors_color.log",
    } <= logs


def test_snakemake_report_builds(small_demo):
    work, _, _ = small_demo
    out = _run(["--configfile", "config/small.yaml", "--report", "sm_report.html"], work)
    assert "Report created" in out and (work / "sm_report.html").stat().st_size > 10_000


def test_llm_rerun_makes_no_calls(small_demo):
    work, _, _ = small_demo
    log = (work / "logs/demo/conceptworld/label.log").read_text()
    first = re.search(r"(\d+) requests, (\d+) new answers", log)
    assert first and int(first.group(2)) > 0
    (work / "results/demo/conceptworld/labels.parquet").unlink()
    _run(["--profile", "profiles/local", "--configfile", "config/small.yaml", "--cores", "2",
          "results/demo/conceptworld/labels.parquet"], work)  # fmt: skip
    log = (work / "logs/demo/conceptworld/label.log").read_text()
    again = re.search(r"(\d+) requests, (\d+) new answers, (\d+) cache hits", log)
    assert again.groups() == ("0", "0", first.group(1))  # every answer from the cache
    # the labels are the same file again: only the report (its LLM usage table: this job's
    # answers were all reused) is out of date; bring the run up to date for the tests below
    assert set(_dry(work)) == {"report", "all"}
    _run(["--profile", "profiles/local", "--configfile", "config/small.yaml", "--cores", "2"], work)


def _dry(work, *extra):
    return _job_counts(
        _run(
            ["-n", "--profile", "profiles/local", "--configfile", "config/small.yaml", *extra], work
        )
    )


def test_rerun_after_prune_knob_touches_only_pruning_and_report(small_demo):
    work, _, _ = small_demo
    assert "Nothing to be done" in _run(
        ["-n", "--profile", "profiles/local", "--configfile", "config/small.yaml"], work
    )
    config = yaml.safe_load((work / "config/small.yaml").read_text())
    config["prune"]["random_seeds"] = [0, 1, 2, 3]
    (work / "config/touched.yaml").write_text(yaml.safe_dump(config))
    counts = _dry(work, "config/touched.yaml")
    assert set(counts) == {"prune_eval", "report", "all"}, counts


def test_rerun_after_judge_prompt_edit_skips_extraction_textspan_labelling(small_demo):
    work, _, _ = small_demo
    prompts = work / "src/clipconcepts/llm/prompts.py"
    original = prompts.read_text()
    try:
        prompts.write_text(
            original.replace(
                "You check whether an image description", "You decide whether an image description"
            )
        )
        counts = _dry(work)
        expected = {"judge", "ccs", "annotation_sheet", "prune_eval", "video_eval", "report"}
        # attribution tables that set CCS beside the other views of a head
        expected |= {"attribution_deletion", "attribution_heads", "attribution_faithfulness"}
        expected |= {"attribution_reliance", "attribution_truth", "all"}
        assert set(counts) == expected, counts
    finally:
        prompts.write_text(original)


def test_rerun_after_code_edit_of_extraction(small_demo):
    work, _, _ = small_demo
    module = work / "src/clipconcepts/extract.py"
    module.write_text(module.read_text() + "\n")
    counts = _dry(work)
    assert "extract" in counts and "concept_clip" not in counts, counts
