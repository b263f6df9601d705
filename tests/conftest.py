"""Shared fixtures: tiny random open_clip models built offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

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
SHORT_STEPS = 200
DEMO_CONFIG = Path(__file__).resolve().parents[1] / "config/demo.yaml"


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
# for the workflow tests and the science tests' claims. The probe set stays large enough for the
# demo's TEXTSPAN picks; the other sets and stages are cut down.
REDUCED_DEMO = {
    "conceptworld": {"n_probe": 600, "n_per_family": 80, "eval_images_per_family": 80},
    "extract": {"batch_size": 100, "part_size": 200},
    "prune": {"batch_size": 128, "random_seeds": [0, 1, 2]},  # the claims need 3 seeds
}


@pytest.fixture(scope="session")
def reduced_demo(tmp_path_factory):
    """(work folder, config, snakemake output): the workflow copied (Snakefile, rules, config,
    src, ...) into a temporary folder, so tests may edit it, and run on the reduced demo."""
    import shutil
    import subprocess
    import sys

    import yaml

    root = Path(__file__).resolve().parents[1]
    work = tmp_path_factory.mktemp("workflow")
    for name in ("Snakefile", "rules", "config", "profiles", "envs"):
        src = root / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
    shutil.copytree(root / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__"))
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    for section, knobs in REDUCED_DEMO.items():
        config[section].update(knobs)
    config["mutual"]["datasets"] = dict(list(config["mutual"]["datasets"].items())[:2])
    config["mutual"]["images_per_class"] = 5
    config["attribution"]["n_images"] = 8
    config["video"]["conceptworld"]["n_videos"] = 40
    (work / "config/small.yaml").write_text(yaml.safe_dump(config))
    # the rules call `python`: the interpreter running the tests, whatever PATH says
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    args = ["--profile", "profiles/local", "--configfile", "config/small.yaml", "--cores", "2"]
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=1800,
        env=env,
    )
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise AssertionError(f"the reduced demo failed:\n{out[-8000:]}")
    return work, config, out
