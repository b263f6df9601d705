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
CONCEPTWORLD_FAMILIES = ["color", "position", "background", "texture"]

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


DATASETS = list(section("datasets"))
PRUNE_STRATEGIES = ["original", "high", "low", "random", "concept"]


def dataset_spec(wildcards):
    """A dataset's config entry as JSON; concept-world sets point at the generated data.
    `ood` is for the report only (ood_datasets), left out so that flagging reruns no job.
    """
    spec = dict(config["datasets"][wildcards.dataset])
    spec.pop("ood", None)
    if spec["kind"] == "conceptworld":
        spec.setdefault("root", conceptworld_folder(spec))
    return json.dumps(spec, sort_keys=True)


def conceptworld_folder(spec):
    """A concept-world set's folder: its family's set, outlined for `style: outlined` (OOD)."""
    suffix = "-outlined" if spec.get("style", "filled") == "outlined" else ""
    return f"{CONCEPTWORLD}/data/{spec['family']}{suffix}"


def dataset_files(wildcards):
    spec = config["datasets"][wildcards.dataset]
    if spec["kind"] == "conceptworld":
        return [f"{conceptworld_folder(spec)}/manifest.parquet"]
    return []


def concept_pairs(dataset):
    return knob("prune", "concept_pairs", {}).get(dataset, [])


def prune_plan(dataset):
    """Every (strategy, seed) a prune job evaluates, as listed in its message."""
    plan = []
    for strategy in knob("prune", "strategies", PRUNE_STRATEGIES):
        if strategy == "random":
            plan += [
                f"random/seed{s}" for s in knob("prune", "random_seeds", [0, 1, 2])
            ]
        elif strategy == "concept":
            for target, unrelated in concept_pairs(dataset):
                plan += [
                    f"concept:{target}:vs:{unrelated}",
                    f"concept:{unrelated}:vs:{target}",
                ] + [
                    f"concept-random:{target}:vs:{unrelated}/seed{s}"
                    for s in knob("prune", "random_seeds", [0, 1, 2])
                ]
        elif strategy == "manual":
            plan += [f"manual:{name}" for name in knob("prune", "manual", {})]
        else:
            plan.append(strategy)
    return plan


def per_model(pattern):
    return expand(pattern, model=HEAD_MODELS)


# Extraction writes one heads and one embeddings file per model or, with `extract.shards: N` > 1,
# one pair per image range: {model}/heads/part-0000.parquet ... (each shard its own job, wildcard
# `shard`). Readers take a model's files as one Parquet dataset, never a merged copy.
SHARDS = knob("extract", "shards", 1)
SHARD_IDS = [f"{i:04d}" for i in range(SHARDS)]


def extract_output(kind, suffix=".parquet", root=RESULTS):
    """Output (or log) pattern of `extract` for kind = heads | embeddings | extract (the log)."""
    if SHARDS == 1:
        return f"{root}/{{model}}/{kind}{suffix}"
    return f"{root}/{{model}}/{kind}/part-{{shard}}{suffix}"


def model_extract_files(kind, model):
    """A model's `kind` files (heads | embeddings): the one file, or its shards in order."""
    return [
        extract_output(kind).format(model=model, shard=shard) for shard in SHARD_IDS
    ]


def extract_files(kind):
    """Input function: the `kind` files of the job's model."""
    return lambda wildcards: model_extract_files(kind, wildcards.model)


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


def textbank_params():
    bank = config["textbank"]
    backend = (
        llm_backend_spec(config["llm"]["labeller"])
        if bank["source"] == "generate"
        else None
    )
    # the LLM knobs only matter when generating: other sources do not rerun on them
    llm = config["llm"] if backend else {}
    return {
        "source": bank["source"],
        "path": bank.get("path") or "",
        "n": bank.get("generate_n", 3000),
        "batch": bank.get("generate_batch", 50),
        "backend": json.dumps(backend) if backend else "",
        "retry_invalid": llm.get("retry_invalid", False),
        "max_invalid": llm.get("max_invalid_fraction", 0.1),
    }


def report_models():
    """Model keys with their arch and pretrained tag (the report matches them to the papers)."""
    return json.dumps(
        {
            key: {"arch": spec["arch"], "pretrained": spec.get("pretrained") or ""}
            for key, spec in config["models"].items()
        },
        sort_keys=True,
    )


def conceptworld_models():
    """Models trained in the concept world: only they have a ground truth (head_truth)."""
    return [
        key for key, spec in config["models"].items() if spec["arch"] == "conceptworld"
    ]


def ood_datasets():
    """Datasets flagged `ood: true`: the report tests the paper's OOD claim on them."""
    return [key for key, spec in section("datasets").items() if spec.get("ood", False)]


# Mutual knowledge (rules/mutual.smk): its own datasets (ImageNet val in the paper's setup), on
# the models of `mutual.models` (all when unset). Its wildcard is `mutual_set`.
MUTUAL_SETS = list(knob("mutual", "datasets", {}) or {})


def mutual_models():
    chosen = knob("mutual", "models", None)
    if not MUTUAL_SETS:
        return []
    if chosen is None:
        chosen = [m for m in MODELS if runs(m, "mutual")]
    unknown = [m for m in chosen if m not in config["models"]]
    if unknown:
        raise ValueError(
            f"config key mutual.models names {', '.join(unknown)}, not in models "
            f"({', '.join(MODELS)})"
        )
    return list(chosen)


def mutual_set_spec(wildcards):
    """A mutual dataset's entry as JSON (concept-world sets point at the generated data)."""
    spec = dict(section("mutual")["datasets"][wildcards.mutual_set])
    if spec["kind"] == "conceptworld":
        spec.setdefault("root", conceptworld_folder(spec))
    return json.dumps(spec, sort_keys=True)


def mutual_set_files(wildcards):
    spec = section("mutual")["datasets"][wildcards.mutual_set]
    if spec["kind"] == "conceptworld":
        return [f"{conceptworld_folder(spec)}/manifest.parquet"]
    return []


def mutual_descriptor_backend():
    name = knob("mutual", "descriptors", {}).get("backend") or config["llm"]["labeller"]
    return llm_backend_spec(name)


def mutual_settings():
    """The per-image knobs as one JSON param (explain.MutualSettings' fields)."""
    keys = {
        "features": ("features", "tokens"),
        "foreground_components": ("foreground_components", 3),
        "n_concepts": ("concepts", 5),
        "methods": ("methods", ["pca", "kmeans"]),
        "kmeans_iterations": ("kmeans_iterations", 500),
        "seed": ("seed", 0),
        "top_k": ("top_k", 500),
        "relevance_offset": ("relevance_offset", 0.02),
        "sinkhorn_scale": ("sinkhorn_scale", 2.5),
        "sinkhorn_iterations": ("sinkhorn_iterations", 1000),
        "per_concept": ("per_concept", 3),
        "top_u": ("top_u", 50),
        "text_side": ("text_side", "predicted"),
        "mi_form": ("mi_form", "eq9"),
        "batch_size": ("batch_size", 256),
    }
    return json.dumps(
        {field: knob("mutual", key, default) for field, (key, default) in keys.items()},
        sort_keys=True,
    )


def mutual_faithfulness_settings():
    """Table 1's knobs (`mutual.faithfulness`) as one JSON param (FaithfulnessSettings; steps
    and seed are mutual.concepts and mutual.seed)."""
    section = knob("mutual", "faithfulness", {}) or {}
    return json.dumps(
        {
            "blur_sigma": section.get("blur_sigma", 0.1),
            "score_scale": section.get("score_scale", 2.5),
            "object_tolerance": section.get("object_tolerance", 60),
            "batch_size": knob("mutual", "batch_size", 256),
        },
        sort_keys=True,
    )


def mutual_augmented_settings():
    """Table 2's knobs (`mutual.augmented`) as one JSON param (AugmentedSettings)."""
    section = knob("mutual", "augmented", {}) or {}
    settings = {
        key: section[key]
        for key in ("prompt", "neighbours", "include_predicted")
        if section.get(key) is not None
    }
    settings["batch_size"] = knob("mutual", "batch_size", 256)
    return json.dumps(settings, sort_keys=True)


def mutual_outputs(kind):
    """Every model x mutual set's `kind` file (images | summary | faithfulness_summary |
    augmented; truth and faithfulness_truth: concept world only)."""
    models = mutual_models()
    if kind in ("truth", "faithfulness_truth"):
        models = [m for m in models if m in conceptworld_models()]
        sets = [
            s
            for s in MUTUAL_SETS
            if section("mutual")["datasets"][s]["kind"] == "conceptworld"
        ]
    else:
        sets = MUTUAL_SETS
    return expand(
        f"{RESULTS}/{{model}}/mutual/{{mutual_set}}/{kind}.parquet",
        model=models,
        mutual_set=sets,
    )


# Head attribution (rules/attribution.smk): one job per model and step, over the stage's
# datasets (`attribution.datasets`, default: every dataset, as pruning); one output per dataset.
def attribution_sets():
    chosen = knob("attribution", "datasets", None)
    if chosen is None:
        return DATASETS
    unknown = [d for d in chosen if d not in DATASETS]
    if unknown:
        raise ValueError(
            f"config key attribution.datasets names {', '.join(unknown)}, not in datasets "
            f"({', '.join(DATASETS) or 'none defined'})"
        )
    return list(dict.fromkeys(chosen))


ATTRIBUTION_SETS = attribution_sets()


def attribution_files(kind, model="{model}"):
    """A model's `kind` file per attribution dataset, in ATTRIBUTION_SETS order."""
    return [
        f"{RESULTS}/{model}/attribution/{dataset}/{kind}.parquet"
        for dataset in ATTRIBUTION_SETS
    ]


def attribution_truth_sets():
    """Attribution datasets of the concept world: they have a family, hence a ground truth."""
    return [
        d for d in ATTRIBUTION_SETS if config["datasets"][d]["kind"] == "conceptworld"
    ]


def attribution_dataset_specs():
    """name -> the dataset's entry (dataset_spec's form), as one JSON param."""
    from types import SimpleNamespace

    return json.dumps(
        {
            d: json.loads(dataset_spec(SimpleNamespace(dataset=d)))
            for d in ATTRIBUTION_SETS
        },
        sort_keys=True,
    )


def attribution_data_files(wildcards):
    from types import SimpleNamespace

    return [
        f for d in ATTRIBUTION_SETS for f in dataset_files(SimpleNamespace(dataset=d))
    ]


def attribution_classifiers(wildcards):
    return [
        f"{RESULTS}/{wildcards.model}/classifiers/{d}.parquet" for d in ATTRIBUTION_SETS
    ]


def attribution_lexicons():
    """Lexicon per dataset for the relation of head labels to class names."""
    return json.dumps(
        {
            d: (
                "conceptworld"
                if config["datasets"][d]["kind"] == "conceptworld"
                else "default"
            )
            for d in ATTRIBUTION_SETS
        },
        sort_keys=True,
    )


def attribution_outputs(kind=None):
    """Every head model's attribution tables: kind = heads | correlations | reliance |
    deletion | truth (concept-world models and sets only), or None for all of them."""
    kinds = (
        [kind] if kind else ["heads", "correlations", "reliance", "deletion", "truth"]
    )
    out = []
    for k in kinds:
        if k == "truth":
            out += [
                f"{RESULTS}/{m}/attribution/{d}/truth.parquet"
                for m in conceptworld_models()
                if m in HEAD_MODELS
                for d in attribution_truth_sets()
            ]
        else:
            out += [f for m in HEAD_MODELS for f in attribution_files(k, m)]
    return out


# Zero-shot video retrieval (rules/video.smk): its own test sets (`video.datasets`, wildcard
# `video_set`), on the head-level models (`video.models`, default all of them: the strategies
# need their CCS head groups).
VIDEO_SETS = list(knob("video", "datasets", {}) or {})


def video_models():
    chosen = knob("video", "models", None)
    if not VIDEO_SETS:
        return []
    if chosen is None:
        return HEAD_MODELS
    unknown = [m for m in chosen if m not in HEAD_MODELS]
    if unknown:
        raise ValueError(
            f"config key video.models names {', '.join(unknown)}, not among the head-level "
            f"models ({', '.join(HEAD_MODELS)})"
        )
    return list(dict.fromkeys(chosen))


def video_clip_knob(key, default):
    """A knob of the concept-world clips (`video.conceptworld`)."""
    return (knob("video", "conceptworld", {}) or {}).get(key, default)


def video_spec(wildcards):
    """A video set's entry as JSON with the section's defaults (concept-world clips: the
    generated folder)."""
    spec = dict(section("video")["datasets"][wildcards.video_set])
    spec.setdefault("sampling", knob("video", "sampling", "uniform"))
    spec.setdefault("on_bad_video", knob("video", "on_bad_video", "fail"))
    if spec["kind"] == "conceptworld":
        spec.setdefault("root", f"{CONCEPTWORLD}/data/clips")
    return json.dumps(spec, sort_keys=True)


def video_set_files(wildcards):
    spec = section("video")["datasets"][wildcards.video_set]
    if spec["kind"] == "conceptworld":
        return [f"{CONCEPTWORLD}/data/clips/manifest.parquet"]
    return []


def video_concept_pairs(video_set):
    return (knob("video", "concept_pairs", {}) or {}).get(video_set, [])


def video_plan(video_set):
    """Every (strategy, seed) a video job evaluates, as listed in its message."""
    plan = []
    for strategy in knob("video", "strategies", PRUNE_STRATEGIES):
        if strategy == "random":
            plan += [
                f"random/seed{s}" for s in knob("video", "random_seeds", [0, 1, 2])
            ]
        elif strategy == "concept":
            for target, unrelated in video_concept_pairs(video_set):
                plan += [
                    f"concept:{target}:vs:{unrelated}",
                    f"concept:{unrelated}:vs:{target}",
                ] + [
                    f"concept-random:{target}:vs:{unrelated}/seed{s}"
                    for s in knob("video", "random_seeds", [0, 1, 2])
                ]
        elif strategy == "manual":
            plan += [f"manual:{name}" for name in knob("prune", "manual", {})]
        else:
            plan.append(strategy)
    return plan


def video_outputs(kind="prune"):
    """Every model x video set's table: kind = prune (`{model}/video/{set}.parquet`, the prune
    schema: the report's claim (d)), retrieval (`.retrieval.parquet`, every metric) or items
    (`.items.parquet`, every query's rank: claim (d)'s paired bootstrap).
    """
    suffix = {
        "prune": ".parquet",
        "retrieval": ".retrieval.parquet",
        "items": ".items.parquet",
    }[kind]
    return expand(
        f"{RESULTS}/{{model}}/video/{{video_set}}{suffix}",
        model=video_models(),
        video_set=VIDEO_SETS,
    )


# The report's standalone files (rules/report.smk), known once every stage's sets are: the
# attribution and video sets count only where their stage has models to run (else the report
# says the stage did not run).
REPORT_ATTRIBUTION_SETS = ATTRIBUTION_SETS if HEAD_MODELS else []
REPORT_VIDEO_SETS = VIDEO_SETS if video_models() else []
REPORT_ASSETS = load_light_module("report/assets.py").report_assets(
    DATASETS, MUTUAL_SETS, REPORT_ATTRIBUTION_SETS, REPORT_VIDEO_SETS
)


def claims_knob(key, default):
    """A knob of `report.claims` (the claims section's statistics)."""
    return (section("report").get("claims") or {}).get(key, default)


# The claims' intervals need the random arms' seed-to-seed spread: refuse fewer than 3 seeds
# before anything runs (the report would call every such case not testable).
if claims_knob("enabled", True):
    for _stage, _used in (
        ("prune", bool(HEAD_MODELS)),
        ("video", bool(REPORT_VIDEO_SETS)),
    ):
        _seeds = knob(_stage, "random_seeds", [0, 1, 2])
        if _used and len(set(_seeds)) < 3:
            raise ValueError(
                f"config key {_stage}.random_seeds needs at least 3 distinct seeds while the "
                f"claims section is on (report.claims.enabled), got {_seeds}: add seeds, or "
                "set report.claims.enabled: false"
            )


# The report's head browser (rules/head_browser.smk): its thumbnails' knobs and what it reads.
def head_images_knob(key, default):
    """A knob of `report.head_images`."""
    return (knob("report", "head_images", {}) or {}).get(key, default)


def head_browser_inputs():
    """What the report's head browser reads per head-level model, and its code."""
    return (
        per_model(f"{RESULTS}/{{model}}/head_images.parquet")
        + per_model(f"{RESULTS}/{{model}}/textspans.parquet")
        + per_model(f"{RESULTS}/{{model}}/head_groups.parquet")
        + code(
            "report/head_browser.py",
            "report/head_browser.js",
            "report/head_inputs.py",
            "report/head_links.py",
            "report/head_images.py",
            "report/style.css",
        )
    )
