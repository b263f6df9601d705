import os
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")


validate(config, schema="../config/schema.yaml")

RUN = config["run"]
RESULTS = f"{config.get('results', 'results')}/{RUN}"
LOGS = f"logs/{RUN}"
MODELS = list(config["models"])
PKG = f"{workflow.basedir}/src/clipconcepts"
CONCEPTWORLD = f"{RESULTS}/conceptworld"

# The rules run the package from this source tree; its module files are rule inputs, so an edit
# to the code a rule runs reruns that rule.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (f"{workflow.basedir}/src", os.environ.get("PYTHONPATH")) if p
)

wildcard_constraints:
    model="|".join(MODELS),
    run=RUN,


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
    if spec.get("pretrained") and Path(spec["pretrained"]).suffix in (".pt", ".bin", ".safetensors"):
        files.append(spec["pretrained"])
    return files


def probe_source():
    probe = config["probe"]
    if probe["kind"] == "conceptworld":
        return "manifest", f"{CONCEPTWORLD}/data/probe"
    if not probe.get("root"):
        raise ValueError(f"config key probe.root must be set for probe.kind={probe['kind']}")
    return probe["kind"], probe["root"]


def probe_files():
    return [f"{CONCEPTWORLD}/data/probe/manifest.parquet"] if config["probe"]["kind"] == "conceptworld" else []


def per_model(pattern):
    return expand(pattern, results=RESULTS, model=MODELS)


def all_targets():
    targets = per_model("{results}/{model}/heads.parquet")
    targets += per_model("{results}/{model}/embeddings.parquet")
    return targets
