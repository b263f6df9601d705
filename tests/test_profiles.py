"""The profiles: `make install-profile` puts the SLURM profile where Snakemake looks for
`--profile slurm` ($XDG_CONFIG_HOME/snakemake, else ~/.config/snakemake), never over an edited
copy; the SLURM profile leaves per-rule requests to the rules."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "profiles/slurm/config.yaml"


def _install(env_extra: dict, home: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CONFIG_HOME", "PROFILE_HOME")}
    env.update(HOME=str(home), **env_extra)
    proc = subprocess.run(
        ["make", "-s", "install-profile"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_install_profile_honours_xdg_config_home(tmp_path):
    home, xdg = tmp_path / "home", tmp_path / "xdg"
    out = _install({"XDG_CONFIG_HOME": str(xdg)}, home)
    installed = xdg / "snakemake/slurm/config.yaml"
    assert installed.read_text() == PROFILE.read_text(), out
    assert not (home / ".config").exists()
    # an edited copy is left alone
    installed.write_text(installed.read_text() + "\njobs: 7\n")
    out = _install({"XDG_CONFIG_HOME": str(xdg)}, home)
    assert "left as it is" in out and installed.read_text().endswith("jobs: 7\n")
    # no (or an empty) XDG_CONFIG_HOME: ~/.config
    _install({"XDG_CONFIG_HOME": ""}, home)
    assert (home / ".config/snakemake/slurm/config.yaml").read_text() == PROFILE.read_text()


GPU_RULES = {
    "extract",
    "embed_texts",
    "textspan",
    "classifier",
    "prune_eval",
    "mutual",
    "video_eval",
    "attribution_scores",
    "attribution_ablation",
    "attribution_deletion",
}


def test_slurm_profile_leaves_rule_requests_to_the_rules():
    profile = yaml.safe_load(PROFILE.read_text())
    assert profile["executor"] == "slurm"
    # a command-line --set-resources would replace this section whole: the rules carry sizes
    assert "set-resources" not in profile and "set-threads" not in profile
    # squeue status checks work without accounting (sacct would hang the run)
    assert profile["slurm-status-command"] == "squeue"
    # nothing to fill in before a first run on a cluster with a default partition
    assert "YOUR_" not in str(profile)
    # every rule that runs a model asks for a GPU through gpus() (none on `device: cpu`);
    # the light ones (LLM, tables, report) never do
    gpu_rules = set()
    for path in (ROOT / "rules").glob("*.smk"):
        for block in re.split(r"\n(?=rule )", path.read_text()):
            if block.startswith("rule ") and "gpu=gpus()" in block:
                gpu_rules.add(block.split()[1].rstrip(":"))
    assert gpu_rules == GPU_RULES, gpu_rules ^ GPU_RULES
