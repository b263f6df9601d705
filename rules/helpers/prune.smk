# Helpers of rules/prune.smk (the zero-shot datasets, their specs and files, the prune plan): included by the Snakefile after common.smk and
# before the rules, so that every rule file's input functions and sets are defined.


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


def strategy_plan(stage, pairs):
    """Every (strategy, seed) a pruning job of `stage` (prune | video) evaluates, given its
    concept `pairs`, as listed in the job's message."""
    seeds = knob(stage, "random_seeds", [0, 1, 2])
    plan = []
    for strategy in knob(stage, "strategies", PRUNE_STRATEGIES):
        if strategy == "random":
            plan += [f"random/seed{s}" for s in seeds]
        elif strategy == "concept":
            for target, unrelated in pairs:
                plan += [
                    f"concept:{target}:vs:{unrelated}",
                    f"concept:{unrelated}:vs:{target}",
                ] + [f"concept-random:{target}:vs:{unrelated}/seed{s}" for s in seeds]
        elif strategy == "manual":
            plan += [f"manual:{name}" for name in knob("prune", "manual", {})]
        elif strategy == "published":  # the authors' lists, where the model has them
            plan += ["published:high", "published:low"]
        else:
            plan.append(strategy)
    return plan
