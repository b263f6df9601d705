"""Config checks at start-up (src/clipconcepts/preflight.py, models/registry.py): a model name or
pretrained tag typo, or a data root that cannot hold the data, fails the dry run, before any job
is submitted, with the closest valid names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from clipconcepts import preflight
from clipconcepts.models import registry

ROOT = Path(__file__).resolve().parents[1]


def test_registry_matches_open_clip():
    """The file-read registry is exactly what open_clip itself lists, asked in a fresh process
    (other tests register model configs of their own with open_clip, a process-wide registry)."""
    code = (
        "import json, open_clip; "
        "print(json.dumps([open_clip.list_models(), open_clip.list_pretrained()]))"
    )
    listed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    open_clip_models, open_clip_pretrained = json.loads(listed.strip().splitlines()[-1])
    models, tags = registry.registry()
    assert models == open_clip_models
    expected: dict[str, list[str]] = {}
    for model, tag in open_clip_pretrained:
        expected.setdefault(model, []).append(tag)
    assert tags == expected


def test_registry_is_light():
    """Read without importing open_clip or torch, in well under a second."""
    code = (
        "import sys, time; t = time.perf_counter(); "
        "from clipconcepts.preflight import _registry; _registry().registry(); "
        "print(time.perf_counter() - t, 'torch' in sys.modules, 'open_clip' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    ).stdout.split()
    assert float(out[0]) < 1.0
    assert out[1:] == ["False", "False"]


def test_typos_name_the_closest_valid_names():
    with pytest.raises(registry.UnknownModelError, match=r"'ViT-B-33'.*ViT-B-32"):
        registry.check_model("ViT-B-33", "openai")
    with pytest.raises(registry.UnknownModelError, match=r"'opneai'.*openai"):
        registry.check_model("ViT-B-32", "opneai")
    registry.check_model("ViT-L-14", "laion2b_s32b_b82k")
    registry.check_model("ViT-B-32", None)
    registry.check_model("ViT-B-32", "weights/my-checkpoint.pt")  # a path: the DAG checks it
    problems = registry.check_models(
        {
            "ok": {"arch": "ViT-B-16", "pretrained": "openai"},
            "world": {"arch": "conceptworld"},
            "bad": {"arch": "ViT-B-16", "pretrained": "laion2b_s34b_b8k"},
        }
    )
    assert len(problems) == 1 and problems[0].startswith("models.bad:")
    assert "laion2b_s34b_b88k" in problems[0]


def test_data_roots(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "ILSVRC2012_val_00000001.JPEG").write_bytes(b"")
    good = tmp_path / "good"
    (good / "n01440764").mkdir(parents=True)
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    config = {
        "probe": {"kind": "imagefolder", "root": str(flat)},
        "datasets": {
            "a": {"kind": "cifar10", "root": str(empty)},
            "b": {"kind": "cifar10", "root": str(empty), "download": True},
            "c": {"kind": "imagefolder", "root": str(good)},
            "d": {"kind": "food101", "root": str(afile)},
            "e": {"kind": "pets", "root": str(tmp_path / "elsewhere")},
            "f": {"kind": "conceptworld", "family": "color"},
        },
    }
    problems, notes = preflight.check_roots(config)
    joined = "\n".join(problems)
    assert "probe.root" in joined and "class sub-folders" in joined
    assert "datasets.a.root" in joined and "empty" in joined
    assert "datasets.d.root" in joined and "not a folder" in joined
    assert len(problems) == 3  # b may download, c is fine, e is not on this machine
    assert len(notes) == 1 and "datasets.e.root" in notes[0]


def _dry_run(tmp_path, edit):
    config = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
    edit(config)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc, time.monotonic() - started


def test_typo_fails_the_dry_run(tmp_path):
    def typo(config):
        config["models"]["vitb"] = {"arch": "ViT-B-33", "pretrained": "openai"}
        config["models"]["vitl"] = {"arch": "ViT-L-14", "pretrained": "laion2b_s32b_b8k"}

    proc, _ = _dry_run(tmp_path, typo)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "models.vitb: unknown open_clip model 'ViT-B-33'" in out and "ViT-B-32" in out
    assert "models.vitl: unknown pretrained tag 'laion2b_s32b_b8k'" in out
    assert "laion2b_s32b_b82k" in out
