"""Image datasets: probe sets for extraction, zero-shot classification sets."""

from clipconcepts.data.images import (
    BadImageError,
    ImageRecords,
    build_image_records,
    image_loader,
)

__all__ = ["BadImageError", "ImageRecords", "build_image_records", "image_loader"]
