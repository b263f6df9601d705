"""Model loading and the head-aware CLIP wrapper."""

from clipconcepts.models.hooked import Decomposition, HeadAwareCLIP, UnsupportedModelError
from clipconcepts.models.loading import ModelSpec, UnknownModelError, load_clip, resolve_model_spec

__all__ = [
    "Decomposition",
    "HeadAwareCLIP",
    "ModelSpec",
    "UnknownModelError",
    "UnsupportedModelError",
    "load_clip",
    "resolve_model_spec",
]
