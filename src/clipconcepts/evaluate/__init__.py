"""Zero-shot classifiers, pruning strategies and the pruned zero-shot evaluation."""

from clipconcepts.evaluate.classifier import (
    accuracy,
    build_classifier,
    load_classifier,
    save_classifier,
    topk_correct,
)
from clipconcepts.evaluate.prune import (
    RESULT_SCHEMA,
    PruneOutcomes,
    evaluate_prune_outcomes,
    evaluate_prune_sets,
    summarise_items,
    write_prune_items,
    write_prune_results,
)
from clipconcepts.evaluate.strategies import (
    STRATEGIES,
    PruneSet,
    assign_concepts,
    concept_of_label,
    concept_random_name,
    concept_strategy_names,
    head_name,
    parse_head,
    published_head_lists,
    resolve_prune_sets,
)

__all__ = [
    "RESULT_SCHEMA",
    "STRATEGIES",
    "PruneOutcomes",
    "PruneSet",
    "accuracy",
    "assign_concepts",
    "build_classifier",
    "concept_of_label",
    "concept_random_name",
    "concept_strategy_names",
    "evaluate_prune_outcomes",
    "evaluate_prune_sets",
    "head_name",
    "load_classifier",
    "parse_head",
    "published_head_lists",
    "resolve_prune_sets",
    "save_classifier",
    "summarise_items",
    "topk_correct",
    "write_prune_items",
    "write_prune_results",
]
