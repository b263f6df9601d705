"""Head attribution: attribution patching, the direct effect, the true effect of ablating each
head, and how faithful each view is (after Dreyer et al. 2025). See docs/attribution.md.

Modules: `targets` (what y is, which images), `patching` (AtP: one forward and one backward
for all heads; mean ablation), `scores` (AtP and direct effect per image), `ablation` (the true
effect), `deletion` (deletion curves), `tables` (the per-head table, correlations), `reliance`
(unexpected reliance), `truth` (concept world: precision@k), `schemas`, `cli` (the steps).
"""

from clipconcepts.lazy import lazy_exports

# Public names -> the submodule defining them; imported on first use, so that `clipconcepts.cli`
# and the light table steps do not pay for torch.
_EXPORTS = {
    "attribution_patching": "patching",
    "head_means": "patching",
    "encode_patched_multi": "patching",
    "frozen": "patching",
    "make_target": "targets",
    "target_cosine": "targets",
    "sample": "targets",
    "score_images": "scores",
    "scope_heads": "ablation",
    "true_effects": "ablation",
    "deletion_orders": "deletion",
    "deletion_points": "deletion",
    "summarise": "deletion",
    "head_table": "tables",
    "correlations": "tables",
    "unexpected_reliance": "reliance",
    "truth_table": "truth",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
