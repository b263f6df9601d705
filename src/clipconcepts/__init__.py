"""clipconcepts: what CLIP's attention heads encode, and how much each matters."""

__version__ = "0.1.0"
