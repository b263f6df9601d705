"""The workflow on a real SLURM cluster: cluster/slurm-local.sh starts a single-node cluster
(installing slurm-wlm and munge with apt-get where they are missing), the reduced concept-world
demo (conftest.py: `slurm_demo`, started in the background beside the session's other reduced
demo) runs through the real executor (snakemake-executor-plugin-slurm) with the project's
profile, a rerun submits nothing, and the cluster is stopped again (only if the session started
it).

Needs root (slurmd starts jobs as their users); skipped, saying why, elsewhere. The cluster has
no accounting, like the reporter's: sacct fails there, so this also checks the profile's
`slurm-status-command: squeue`.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from conftest import snakemake

SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+)")

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def cluster(slurm_cluster):
    if not slurm_cluster.up:
        pytest.skip(slurm_cluster.reason)


@dataclass
class SlurmRun:
    work: Path
    config: dict
    out: str  # the first run's output (--verbose: the sbatch calls)
    seconds: float
    again: str  # the same command once more, and as a dry run
    dry: str


@pytest.fixture(scope="module")
def slurm_run(cluster, slurm_demo):
    """The reduced demo through SLURM (conftest.py: started in the background with the session's
    other reduced demo), then the same command again."""
    config, run = slurm_demo
    out, seconds = run.wait()
    again = snakemake(run.args, run.work)
    dry = snakemake(["-n", *run.args], run.work)
    return SlurmRun(run.work, config, out, seconds, again, dry)


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
    work, config, first = slurm_run.work, slurm_run.config, slurm_run.out
    jobs = SUBMITTED.findall(first)
    with capsys.disabled():
        print(f"\n[slurm] reduced demo: {len(jobs)} SLURM jobs, {slurm_run.seconds:.0f} s")
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
    again, dry = slurm_run.again, slurm_run.dry
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
