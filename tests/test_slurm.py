"""The workflow on a real SLURM cluster: cluster/slurm-local.sh starts a single-node cluster
(installing slurm-wlm and munge with apt-get where they are missing), a reduced concept-world
demo runs through the real executor (snakemake-executor-plugin-slurm) with the project's profile,
a rerun submits nothing, and the cluster is stopped again (only if this test started it).

Needs root (slurmd starts jobs as their users); skipped, saying why, elsewhere. The cluster has
no accounting, like the reporter's: sacct fails there, so this also checks the profile's
`slurm-status-command: squeue`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "cluster" / "slurm-local.sh"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+)")

pytestmark = pytest.mark.slurm


def _skip_reason() -> str | None:
    installed = all(shutil.which(t) for t in ("slurmctld", "slurmd", "sbatch", "munged"))
    if os.geteuid() != 0:
        if not installed:
            return "SLURM is not installed, and installing it (apt-get) needs root"
        return "starting a local SLURM cluster needs root (slurmd starts jobs as their users)"
    if not installed and not shutil.which("apt-get"):
        return "SLURM is not installed and there is no apt-get to install it"
    conf = Path("/etc/slurm/slurm.conf")
    if conf.exists() and "cluster/slurm-local.sh" not in conf.read_text():
        return f"a SLURM cluster is configured here already ({conf}): left alone"
    return None


@pytest.fixture(scope="module")
def cluster():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    was_up = subprocess.run([SCRIPT, "status"], capture_output=True).returncode == 0
    try:
        if not was_up:
            start = subprocess.run([SCRIPT, "start"], capture_output=True, text=True, timeout=900)
            assert start.returncode == 0, f"cluster did not start:\n{start.stdout}{start.stderr}"
        yield
    finally:
        if not was_up:
            subprocess.run([SCRIPT, "stop"], capture_output=True, timeout=120)


def _snakemake(args, cwd, timeout=1800):
    # jobs inherit this environment (sbatch --export=ALL): the rules' `python` is ours
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        SNAKEMAKE + args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"snakemake {' '.join(args)} failed:\n{out[-8000:]}"
    return out


def reduced_demo_config() -> dict:
    """config/demo.yaml with the shipped model, small sets and two datasets: the demo's DAG,
    every rule, in a few minutes on a 2-core machine. Only the knobs are overridden, so this
    follows the demo when the concept world changes."""
    config = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
    config["run"] = "slurm-test"
    config["conceptworld"].update(n_probe=200, n_per_family=40, eval_images_per_family=40)
    config["extract"].update(batch_size=64, part_size=100)
    config["prune"].update(batch_size=64, random_seeds=[0, 1, 2])  # the claims need 3
    keep = [name for name, spec in config["datasets"].items() if not spec.get("ood")][:2]
    config["datasets"] = {name: config["datasets"][name] for name in keep}
    pairs = config["prune"].get("concept_pairs") or {}
    config["prune"]["concept_pairs"] = {k: v for k, v in pairs.items() if k in keep}
    if "agreement" in config:
        config["agreement"]["n"] = 10
    # every later stage too, on its smallest share: one mutual set, few images and clips
    first = next(iter(config["mutual"]["datasets"]))
    config["mutual"]["datasets"] = {first: config["mutual"]["datasets"][first]}
    config["mutual"]["images_per_class"] = 4
    config["attribution"].update(datasets=keep[:1], n_images=8)
    config["video"]["conceptworld"]["n_videos"] = 40
    return config


# The executor's first status check comes this many seconds after a submission, and again as
# soon as a job finished (the profile keeps the plugin's 40 s; MinJobAge 300 s >= 3 x 2 s).
FAST_POLL = ["--slurm-init-seconds-before-status-checks", "2"]


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    """The reduced demo through SLURM, then the same command again."""
    work = tmp_path_factory.mktemp("slurm")
    for name in ("Snakefile", "rules", "config", "profiles", "envs"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
    # a copy of the code: edits to the repository while this runs must not rerun jobs
    shutil.copytree(ROOT / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__"))
    config = reduced_demo_config()
    (work / "config/slurm-test.yaml").write_text(yaml.safe_dump(config))
    args = ["--profile", "profiles/slurm", "--configfile", "config/slurm-test.yaml", *FAST_POLL]
    started = time.monotonic()
    first = _snakemake([*args, "--verbose"], work)  # --verbose: the sbatch calls
    seconds = time.monotonic() - started
    again = _snakemake(args, work)
    dry = _snakemake(["-n", *args], work)
    return work, config, first, again, dry, seconds


def test_sbatch_refuses_what_the_node_cannot_run(cluster):
    """EnforcePartLimits=ALL and a node sized from this machine: an oversized job or a GPU request
    fails at submission instead of pending forever; there is no accounting (sacct fails)."""
    for flags in (["--mem", "100000000"], ["--cpus-per-task", str(os.cpu_count() * 4)]):
        proc = subprocess.run(
            ["sbatch", *flags, "--wrap", "true"], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode != 0, flags
    gpu = subprocess.run(
        ["sbatch", "--gpus=1", "--wrap", "true"], capture_output=True, text=True, timeout=60
    )
    assert gpu.returncode != 0 and "generic resource" in gpu.stderr
    assert subprocess.run(["sacct"], capture_output=True, timeout=60).returncode != 0


def test_reduced_demo_runs_through_slurm(slurm_run, capsys):
    work, config, first, _, _, seconds = slurm_run
    jobs = SUBMITTED.findall(first)
    with capsys.disabled():
        print(f"\n[slurm] reduced demo: {len(jobs)} SLURM jobs, {seconds:.0f} s")
    # every rule but the local (LLM) ones and `all` ran as a SLURM job, the model's among them
    assert len(jobs) >= 10, first[-4000:]
    assert re.search(r"submitted with SLURM jobid \d+ \(log: .*rule_concept_clip", first)
    # status from squeue all along (no accounting here: a fallback to sacct would hang)
    assert "Falling back to 'sacct'" not in first
    # the rules' requests: `device: cpu` asks for no GPU; the model's job for 2 CPUs and 4 GB
    calls = re.findall(r"sbatch call: (.*)", first)
    assert len(calls) == len(jobs) and not any("--gpus" in call for call in calls)
    train = next(call for call in calls if "rule_concept_clip" in call)
    assert "--cpus-per-task=2" in train and "--mem 4000" in train
    results = work / config.get("results", "results") / config["run"]
    model = next(iter(config["models"]))
    assert (results / "report.html").stat().st_size > 0
    assert pl.read_parquet(results / model / "ccs.parquet").height > 0
    for dataset in config["datasets"]:
        pruned = pl.read_parquet(results / model / "prune" / f"{dataset}.parquet")
        assert pruned.height > 0, dataset


def test_rerun_submits_nothing(slurm_run):
    _, _, _, again, dry, _ = slurm_run
    assert not SUBMITTED.findall(again), again[-4000:]
    assert "Nothing to be done" in again and "Nothing to be done" in dry
    # and SLURM agrees: no job carries the rerun's run ID (the plugin's job name)
    run_id = re.search(r"SLURM run ID: (\S+)", again).group(1)
    listed = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--name", run_id],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert listed.stdout.strip() == ""
