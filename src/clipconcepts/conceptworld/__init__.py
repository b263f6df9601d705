"""The concept world: synthetic images with planted concepts and a small CLIP trained on them.

Offline ground truth for the pipeline: a seeded generator (`generate`), contrastive training of a
stock open_clip CLIP (`train_concept_clip`), probe and zero-shot datasets on disk
(`write_datasets`), a family-tagged TEXTSPAN text bank (`conceptworld_textbank`, `write_textbank`)
and a word -> family lexicon for the offline LLM backend (`conceptworld_lexicon`).
See docs/conceptworld.md.
"""

from clipconcepts.lazy import lazy_exports

# Public names -> the submodule defining them; imported on first use, so that the workflow's light
# steps (and `clipconcepts.cli`) do not pay for torch and open_clip.
_EXPORTS = {
    "FAMILIES": "world",
    "TEMPLATES": "world",
    "VALUES": "world",
    "MODEL_CONFIG": "model",
    "MODEL_NAME": "model",
    "write_model_config": "model",
    "WorldSample": "generator",
    "generate": "generator",
    "conceptworld_lexicon": "lexicon",
    "families_in_text": "lexicon",
    "conceptworld_textbank": "textbank",
    "write_textbank": "textbank",
    "conceptworld_descriptors": "descriptors",
    "value_of": "descriptors",
    "train_concept_clip": "train",
    "write_datasets": "datasets",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


__all__ = sorted(_EXPORTS)
