"""Mutual knowledge between CLIP's image and text encoders (Sammani & Deligiannis, NeurIPS 2024):
descriptor banks, visual concepts, and the mutual information between the two. See docs/mutual.md."""
