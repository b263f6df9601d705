"""Shared fixtures: tiny random open_clip models built offline."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
TINY_CONFIGS = {"tiny-vit": DATA / "tiny-vit.json", "tiny-vit-ls": DATA / "tiny-vit-ls.json"}


def _randomise_(model: torch.nn.Module, seed: int) -> None:
    """Random init leaves some parameters at exact constants (LN weight 1, biases 0); perturb
    every parameter so a test can tell the terms apart."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)


@pytest.fixture(scope="session", params=sorted(TINY_CONFIGS))
def tiny_clip(request):
    from clipconcepts.models import load_clip

    torch.manual_seed(0)
    clip = load_clip(str(TINY_CONFIGS[request.param]))
    _randomise_(clip.model, seed=1)
    return clip


@pytest.fixture
def server():
    """A fake OpenAI-compatible server (tests/fake_openai_server.py), stopped afterwards."""
    try:
        from fake_openai_server import FakeOpenAIServer
    except ImportError:  # tests/ imported as a package
        from tests.fake_openai_server import FakeOpenAIServer

    fake = FakeOpenAIServer().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def tiny_images():
    gen = torch.Generator().manual_seed(3)
    return torch.randn(6, 3, 32, 32, generator=gen)


# The concept-world CLIP: the shipped one (the demo's model, installed as the demo's rule does:
# its recipe is config/demo.yaml's) for the pruning, ground-truth and science tests, and one short
# training run of its own for the training code (the fixed-place colours are learnt first).
SHORT_STEPS = 160
DEMO_CONFIG = ROOT / "config/demo.yaml"


def demo_recipe() -> dict:
    import yaml

    world = yaml.safe_load(DEMO_CONFIG.read_text())["conceptworld"]
    return {
        "steps": world["train_steps"],
        "batch_size": world["train_batch_size"],
        "lr": world["lr"],
        "seed": world["seed"],
    }


@pytest.fixture(scope="session")
def shipped_run(tmp_path_factory):
    """(output folder, metrics) of the shipped model installed with the demo's recipe."""
    from clipconcepts.conceptworld.shipped import install

    out = tmp_path_factory.mktemp("conceptworld-shipped")
    metrics = install(out, **demo_recipe(), eval_images_per_family=400)
    return out, metrics


@pytest.fixture(scope="session")
def short_training_run(tmp_path_factory):
    """(output folder, metrics) of the first SHORT_STEPS steps of the demo's schedule."""
    from clipconcepts.conceptworld import train_concept_clip

    recipe = demo_recipe()
    out = tmp_path_factory.mktemp("conceptworld-short")
    metrics = train_concept_clip(
        out,
        steps=SHORT_STEPS,
        schedule_steps=recipe["steps"],
        batch_size=recipe["batch_size"],
        lr=recipe["lr"],
        seed=recipe["seed"],
        eval_images_per_family=200,
        progress=False,
    )
    return out, metrics


# The demo's DAG on a reduced concept world (the shipped model, small sets, every rule), run once
# per session for the workflow tests and the science tests' claims. The probe set stays large
# enough for the demo's TEXTSPAN picks; the other sets and stages are cut down.
REDUCED_DEMO = {
    "conceptworld": {"n_probe": 600, "n_per_family": 80, "eval_images_per_family": 80},
    "extract": {"batch_size": 100, "part_size": 200},
    "prune": {"batch_size": 128, "random_seeds": [0, 1, 2]},  # the claims need 3 seeds
}
SLURM_SCRIPT = ROOT / "cluster" / "slurm-local.sh"
# The SLURM executor checks job status this many seconds after a submission and again as soon as
# a job finished, then 10 s later, 20 s later... (the profile keeps the plugin's 40 s; MinJobAge
# 300 s >= 3 x 1 s). Mostly waiting: the SLURM tests' run overlaps the reduced demo's (below).
FAST_POLL = ["--slurm-init-seconds-before-status-checks", "1"]


def snakemake_env() -> dict[str, str]:
    """The rules call `python` (and SLURM jobs inherit this environment, sbatch --export=ALL):
    the interpreter running the tests, whatever PATH says."""
    import sys

    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def snakemake(args: list[str], cwd: Path, timeout: int = 1800) -> str:
    """`snakemake ARGS` in CWD; its output, or an AssertionError with the tail of it."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=snakemake_env(),
    )
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{out[-8000:]}")
    return out


def copy_workflow(work: Path) -> None:
    """The workflow's files and a copy of the code into WORK (tests may edit it; edits to the
    repository while a run goes on must not rerun its jobs)."""
    import shutil

    for name in ("Snakefile", "rules", "config", "profiles", "envs"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
    shutil.copytree(ROOT / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__"))


def reduced_demo_config() -> dict:
    import yaml

    config = yaml.safe_load(DEMO_CONFIG.read_text())
    for section, knobs in REDUCED_DEMO.items():
        config[section].update(knobs)
    config["mutual"]["datasets"] = dict(list(config["mutual"]["datasets"].items())[:2])
    config["mutual"]["images_per_class"] = 5
    config["attribution"]["n_images"] = 8
    config["video"]["conceptworld"]["n_videos"] = 40
    return config


def slurm_demo_config() -> dict:
    """config/demo.yaml with the shipped model, small sets and two datasets: the demo's DAG,
    every rule, in a few minutes on a 2-core machine. Only the knobs are overridden, so this
    follows the demo when the concept world changes."""
    import yaml

    config = yaml.safe_load(DEMO_CONFIG.read_text())
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


def slurm_skip_reason() -> str | None:
    """Why this machine cannot run the local SLURM cluster (cluster/slurm-local.sh), or None."""
    import shutil

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


@dataclass
class SlurmCluster:
    up: bool
    reason: str = ""  # why it is not up


@pytest.fixture(scope="session")
def slurm_cluster():
    """The local SLURM cluster for this session: started if it was down (and stopped at the end
    again), or not up, saying why."""
    import subprocess

    reason = slurm_skip_reason()
    if reason:
        yield SlurmCluster(False, reason)
        return
    was_up = subprocess.run([SLURM_SCRIPT, "status"], capture_output=True).returncode == 0
    try:
        if not was_up:
            start = subprocess.run(
                [SLURM_SCRIPT, "start"], capture_output=True, text=True, timeout=900
            )
            assert start.returncode == 0, f"cluster did not start:\n{start.stdout}{start.stderr}"
        yield SlurmCluster(True)
    finally:
        if not was_up:
            subprocess.run([SLURM_SCRIPT, "stop"], capture_output=True, timeout=120)


class SlurmDemo:
    """The SLURM tests' run (`slurm_demo_config()` through `profiles/slurm`), started in the
    background; `wait()` returns its output (--verbose: the sbatch calls) and its seconds."""

    def __init__(self, work: Path, args: list[str]):
        import subprocess
        import sys
        import time

        self.work, self.args = work, args
        self.log = work / "snakemake-slurm.log"
        self.started = time.time()
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "snakemake", *args, "--verbose"],
                cwd=work,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=snakemake_env(),
            )

    def wait(self, timeout: int = 1800) -> tuple[str, float]:
        code = self.proc.wait(timeout=timeout)
        out = self.log.read_text()
        if code != 0:
            raise AssertionError(f"snakemake {' '.join(self.args)} failed:\n{out[-8000:]}")
        # its last line was written as it ended, whenever a test came to ask
        return out, self.log.stat().st_mtime - self.started

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)


@pytest.fixture(scope="session")
def slurm_demo(request, slurm_cluster, tmp_path_factory):
    """(config, SlurmDemo) of a reduced demo through SLURM, or None where the session runs no
    SLURM test or no cluster can run. Started by the first fixture that asks: the reduced demo
    asks first, so the two overlap (this one mostly waits for the executor's status checks)."""
    import yaml

    wanted = any(item.get_closest_marker("slurm") for item in request.session.items)
    if not wanted or not slurm_cluster.up:
        yield None
        return
    work = tmp_path_factory.mktemp("slurm")
    copy_workflow(work)
    config = slurm_demo_config()
    (work / "config/slurm-test.yaml").write_text(yaml.safe_dump(config))
    args = ["--profile", "profiles/slurm", "--configfile", "config/slurm-test.yaml", *FAST_POLL]
    run = SlurmDemo(work, args)
    yield config, run
    run.stop()


@pytest.fixture(scope="session")
def reduced_demo(slurm_demo, tmp_path_factory):
    """(work folder, config, snakemake output): the workflow copied (Snakefile, rules, config,
    src, ...) into a temporary folder, so tests may edit it, and run on the reduced demo."""
    import yaml

    work = tmp_path_factory.mktemp("workflow")
    copy_workflow(work)
    config = reduced_demo_config()
    (work / "config/small.yaml").write_text(yaml.safe_dump(config))
    args = ["--profile", "profiles/local", "--configfile", "config/small.yaml", "--cores", "2"]
    try:
        out = snakemake(args, work)
    except AssertionError as err:
        raise AssertionError(f"the reduced demo failed: {err}") from None
    return work, config, out
