# Helpers of rules/attribution.smk (head attribution: its sets and files): included by the Snakefile after common.smk and
# before the rules, so that every rule file's input functions and sets are defined.


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
