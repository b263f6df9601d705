"""Shared fixtures: tiny random open_clip models built offline."""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def tiny_images():
    gen = torch.Generator().manual_seed(3)
    return torch.randn(6, 3, 32, 32, generator=gen)


# One concept-world training run for the training, pruning and science tests. With the slow tests
# selected (`make test`), the demo's full recipe (2,200 steps of 64, as `make demo`): the demo-size
# test asserts on it and the others reuse it (one run instead of three: ~160 s saved). Without them
# (`make test-fast`), a 600-step schedule of its own, which the other tests' assertions also hold on.
DEMO_STEPS, SHORT_STEPS = 2200, 600


def _slow_tests_selected(config) -> bool:
    return "not slow" not in (config.option.markexpr or "")


@pytest.fixture(scope="session")
def concept_world_run(request, tmp_path_factory):
    """(output folder, metrics) of the shared training run (see above)."""
    from clipconcepts.conceptworld import train_concept_clip

    out = tmp_path_factory.mktemp("conceptworld-run")
    steps = DEMO_STEPS if _slow_tests_selected(request.config) else SHORT_STEPS
    metrics = train_concept_clip(out, steps=steps, batch_size=64, seed=0, progress=False)
    return out, metrics
