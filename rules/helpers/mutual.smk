# Helpers of rules/mutual.smk (mutual knowledge: its sets, models and settings): included by the Snakefile after common.smk and
# before the rules, so that every rule file's input functions and sets are defined.


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
        "resize": ("resize", "bilinear"),
        "single_concept": ("single_concept", "logits"),
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
