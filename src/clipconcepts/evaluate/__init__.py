"""Zero-shot classifiers, pruning strategies and the pruned zero-shot evaluation.

The names below load their module on first use: `python -m clipconcepts` imports this package
for its sub-commands (evaluate/cli.py), and the steps that need no torch start without it.
"""

from clipconcepts.lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
