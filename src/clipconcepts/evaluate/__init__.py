"""Zero-shot classifiers, pruning strategies and the pruned zero-shot evaluation.

The names below load their module on first use: `python -m clipconcepts` imports this package
for its sub-commands (evaluate/cli.py), and the steps that need no torch start without it.
"""

from importlib import import_module

# name -> the module of this package that defines it
_EXPORTS = {
    **dict.fromkeys(
        ("accuracy", "build_classifier", "load_classifier", "save_classifier", "topk_correct"),
        "classifier",
    ),
    **dict.fromkeys(
        (
            "RESULT_SCHEMA",
            "PruneOutcomes",
            "evaluate_prune_outcomes",
            "evaluate_prune_sets",
            "summarise_items",
            "write_prune_items",
            "write_prune_results",
        ),
        "prune",
    ),
    **dict.fromkeys(
        (
            "STRATEGIES",
            "PruneSet",
            "assign_concepts",
            "concept_of_label",
            "concept_random_name",
            "concept_strategy_names",
            "head_name",
            "parse_head",
            "published_head_lists",
            "resolve_prune_sets",
        ),
        "strategies",
    ),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
