import json
import os
import re
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")


validate(config, schema="../config/schema.yaml")

RUN = config["run"]
RESULTS = f"{config.get('results', 'results')}/{RUN}"
LOGS = f"logs/{RUN}"
MODELS = list(config["models"])


def is_vit(key):
    """Whether a model's image tower is a ViT, the only tower the head-level stages (extraction,
    TEXTSPAN, labels, CCS, pruning) decompose; ResNets and ConvNeXts run the mutual stage only.
    """
    arch = config["models"][key]["arch"]
    if arch == "conceptworld":
        return True
    if arch.endswith(".json"):
        vision = json.loads(Path(arch).read_text()).get("vision_cfg", {})
        return not vision.get("timm_model_name") and not isinstance(
            vision.get("layers"), list
        )
    return not re.match(r"(rn\d|convnext)", arch.split("/")[-1], re.IGNORECASE)


def runs(key, stage):
    return stage in config["models"][key].get("stages", ["heads", "mutual"])


# Models the head-level stages run on: the ViTs not limited to other stages (`stages:`).
HEAD_MODELS = [m for m in MODELS if is_vit(m) and runs(m, "heads")]
PKG = f"{workflow.basedir}/src/clipconcepts"
CONCEPTWORLD = f"{RESULTS}/conceptworld"
# The world's attribute families (conceptworld/world.py; stdlib-free constants, mirrored here).
CONCEPTWORLD_FAMILIES = [
    "color",
    "position",
    "texture",
    "frame",
    "ground",
    "tag",
    "dial",
    "stamp",
]

# The rules run the package from this source tree (also inside per-rule conda envs); its module
# files are rule inputs, so an edit to the code a rule runs reruns that rule. Progress bars
# write to the logs every 15 s rather than at every step.
shell.prefix(
    "set -euo pipefail; "
    f"export PYTHONPATH={workflow.basedir}/src${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
    "export TQDM_MININTERVAL=${{TQDM_MININTERVAL:-15}}; "
)


def section(name):
    """A config section with its schema defaults (absent sections are empty)."""
    return config.get(name) or {}


def knob(name, key, default):
    return section(name).get(key, default)


def code(*modules):
    """Package files a rule runs (tracked as inputs)."""
    return [f"{PKG}/{m}" for m in modules]


def uses_conceptworld():
    return (
        any(m["arch"] == "conceptworld" for m in config["models"].values())
        or config["probe"]["kind"] == "conceptworld"
        or config["textbank"]["source"] == "conceptworld"
        or any(d["kind"] == "conceptworld" for d in section("datasets").values())
        or any(
            d["kind"] == "conceptworld"
            for d in (section("mutual").get("datasets") or {}).values()
        )
    )


def model_arch(wildcards):
    spec = config["models"][wildcards.model]
    if spec["arch"] == "conceptworld":
        return f"{CONCEPTWORLD}/model/conceptworld-vit.json"
    return spec["arch"]


def model_pretrained(wildcards):
    spec = config["models"][wildcards.model]
    if spec["arch"] == "conceptworld":
        return f"{CONCEPTWORLD}/model/checkpoint.pt"
    return spec.get("pretrained") or ""


def model_files(wildcards):
    """Files a model is loaded from (a trained concept-world checkpoint, a local checkpoint)."""
    spec = config["models"][wildcards.model]
    if spec["arch"] == "conceptworld":
        return [model_arch(wildcards), model_pretrained(wildcards)]
    files = [spec["arch"]] if spec["arch"].endswith(".json") else []
    if spec.get("pretrained") and Path(spec["pretrained"]).suffix in (
        ".pt",
        ".bin",
        ".safetensors",
    ):
        files.append(spec["pretrained"])
    return files


def probe_source():
    probe = config["probe"]
    if probe["kind"] == "conceptworld":
        return "manifest", f"{CONCEPTWORLD}/data/probe"
    if not probe.get("root"):
        raise ValueError(
            f"config key probe.root must be set for probe.kind={probe['kind']}"
        )
    return probe["kind"], probe["root"]


def probe_files():
    return (
        [f"{CONCEPTWORLD}/data/probe/manifest.parquet"]
        if config["probe"]["kind"] == "conceptworld"
        else []
    )


def llm_backend_spec(name):
    """A configured LLM backend by name (the spec holds the key's variable name, never a key)."""
    backends = config["llm"]["backends"]
    if name not in backends:
        raise ValueError(
            f"config key llm: backend '{name}' is not defined under llm.backends "
            f"(defined: {', '.join(backends)})"
        )
    return {"name": name, **backends[name]}


def load_light_module(relpath):
    """Load one stdlib-only package module on its own, so Snakemake's env needs none of our
    dependencies (used for prompt fingerprints and the report's asset list)."""
    import importlib.util

    name = f"_clipconcepts_{Path(relpath).stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, f"{PKG}/{relpath}")
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[name] = loaded  # dataclasses look their module up while being built
        spec.loader.exec_module(loaded)
    return sys.modules[name]


def preflight():
    """Fail at parse time (dry runs too), before any job is submitted: unknown open_clip model
    names or pretrained tags (with the closest valid ones) and data roots that exist here but
    cannot hold what the config says (preflight.py: stdlib only, ~30 ms, no torch)."""
    checks = load_light_module("preflight.py")
    problems, notes = checks.check_config(config)
    for note in notes:
        print(f"clipconcepts: note: {note}", file=sys.stderr)
    if problems:
        raise ValueError(checks.format_problems(problems))


preflight()


# What a job asks a cluster for (SLURM: --cpus-per-task, --mem, --time, --gpus). Rules set these
# in `threads:`/`resources:`, so a user overrides one rule with `--set-threads rule=N` or
# `--set-resources rule:mem_mb=N` without losing the others (profiles/slurm has no
# set-resources). Sizes fit ordinary nodes; GPUs only when the config's device is CUDA.
def gpus():
    """One GPU per torch job when `device` is a CUDA device, none on CPU (`device: cpu`)."""
    return 1 if str(config.get("device", "cuda")).startswith("cuda") else 0


def runtime(minutes):
    """Wall time in minutes, longer on each retry (`retries:` in the profile)."""
    return lambda wildcards, attempt: minutes * attempt


def prompt_hash(*tasks):
    """Hash of the prompt texts used by a rule; editing a prompt reruns exactly those rules."""
    prompts = load_light_module("llm/prompts.py")
    return "-".join(prompts.prompt_fingerprint(task)[:12] for task in tasks)


def per_model(pattern):
    return expand(pattern, model=HEAD_MODELS)


def all_targets():
    targets = [
        path
        for model in HEAD_MODELS
        for path in model_extract_files("embeddings", model)
    ]
    targets += per_model(f"{RESULTS}/{{model}}/ccs_at_k.parquet")
    targets.append(f"{RESULTS}/agreement/annotation_sheet.csv")
    targets += expand(
        f"{RESULTS}/{{model}}/prune/{{dataset}}.parquet",
        model=HEAD_MODELS,
        dataset=DATASETS,
    )
    if knob("agreement", "sheet", None):
        targets.append(f"{RESULTS}/agreement/agreement.parquet")
    targets += mutual_outputs("summary") + mutual_outputs("truth")
    targets += attribution_outputs()
    targets += video_outputs("prune") + video_outputs("retrieval")
    targets.append(f"{RESULTS}/report.html")
    return targets


def conceptworld_models():
    """Models trained in the concept world: only they have a ground truth (head_truth)."""
    return [
        key for key, spec in config["models"].items() if spec["arch"] == "conceptworld"
    ]
