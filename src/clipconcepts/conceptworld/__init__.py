"""The concept world: synthetic images with planted concepts and a small CLIP trained on them.

Offline ground truth for the pipeline: a seeded generator (`generate`), contrastive training of a
stock open_clip CLIP (`train_concept_clip`), probe and zero-shot datasets on disk
(`write_datasets`), a family-tagged TEXTSPAN text bank (`conceptworld_textbank`, `write_textbank`)
and a word -> family lexicon for the offline LLM backend (`conceptworld_lexicon`).
See docs/conceptworld.md.
"""

from clipconcepts.conceptworld.datasets import write_datasets
from clipconcepts.conceptworld.generator import WorldSample, generate
from clipconcepts.conceptworld.lexicon import conceptworld_lexicon, families_in_text
from clipconcepts.conceptworld.model import MODEL_CONFIG, MODEL_NAME, write_model_config
from clipconcepts.conceptworld.textbank import conceptworld_textbank, write_textbank
from clipconcepts.conceptworld.train import train_concept_clip
from clipconcepts.conceptworld.world import FAMILIES, TEMPLATES, VALUES

__all__ = [
    "FAMILIES",
    "MODEL_CONFIG",
    "MODEL_NAME",
    "TEMPLATES",
    "VALUES",
    "WorldSample",
    "conceptworld_lexicon",
    "conceptworld_textbank",
    "families_in_text",
    "generate",
    "train_concept_clip",
    "write_datasets",
    "write_model_config",
    "write_textbank",
]
