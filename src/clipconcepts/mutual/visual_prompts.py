"""Visual prompts: one ellipse per concept region, drawn three ways (the authors' recipe).

A concept's patch mask is upsampled to the image by nearest neighbour; its region is the largest
external contour, and an ellipse is fitted to it (contours under 5 points, or a degenerate fit,
use the region's second moments instead of the authors' random padding). Three prompts per
concept, each with a red ellipse outline (thickness 1): (1) the image, (2) grayscale outside the
ellipse, (3) Gaussian blur 11x11 (sigma 2.0, what OpenCV derives from sigma 0) outside it.
Pixels inside the ellipse are never changed, except under the outline itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

RED = (255, 0, 0)  # images are RGB throughout
BLUR_KERNEL = (11, 11)


@dataclass(frozen=True)
class Ellipse:
    """OpenCV's rotated rectangle: centre (pixels), full axis lengths, angle (degrees)."""

    cx: float
    cy: float
    width: float
    height: float
    angle: float

    @property
    def box(self):
        return ((self.cx, self.cy), (self.width, self.height), self.angle)

    def as_dict(self) -> dict:
        return {k: float(v) for k, v in vars(self).items()}


def upsample_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A patch-grid mask `[h, w]` as an image mask `[size, size]` (nearest neighbour)."""
    return cv2.resize(mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)


def _moments_ellipse(region: np.ndarray) -> Ellipse:
    """The ellipse with the region's centroid and second moments (a uniform ellipse's full axes
    are 4 standard deviations)."""
    m = cv2.moments(region, binaryImage=True)
    if m["m00"] == 0:
        raise ValueError("empty region")
    cx, cy = m["m10"] / m["m00"], m["m01"] / m["m00"]
    cov = np.array([[m["mu20"], m["mu11"]], [m["mu11"], m["mu02"]]]) / m["m00"]
    evals, evecs = np.linalg.eigh(cov + np.eye(2) / 12)  # +1/12: a pixel's own extent
    width, height = 4 * np.sqrt(evals[1]), 4 * np.sqrt(evals[0])
    angle = np.degrees(np.arctan2(evecs[1, 1], evecs[0, 1]))
    return Ellipse(cx, cy, width, height, angle)


def fit_ellipse(region_mask: np.ndarray) -> Ellipse | None:
    """Ellipse of the largest external contour of a binary image mask; None if it is empty."""
    mask = (region_mask > 0).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    largest = max(contours, key=cv2.contourArea)
    if len(largest) >= 5:
        (cx, cy), (w, h), angle = cv2.fitEllipse(largest)
        if np.isfinite([cx, cy, w, h, angle]).all() and w > 0 and h > 0:
            return Ellipse(cx, cy, w, h, angle)
    region = np.zeros_like(mask)
    cv2.drawContours(region, [largest], -1, 1, thickness=cv2.FILLED)
    return _moments_ellipse(region)


def ellipse_mask(shape: tuple[int, int], ellipse: Ellipse) -> np.ndarray:
    """Boolean mask of the filled ellipse."""
    mask = np.zeros(shape, dtype=np.uint8)
    cv2.ellipse(mask, ellipse.box, 1, thickness=-1)
    return mask.astype(bool)


def draw_prompts(image: np.ndarray, ellipse: Ellipse, thickness: int = 1) -> np.ndarray:
    """The three prompts `[3, H, W, 3]` uint8 of one concept: outlined image, grayscale outside,
    blurred outside (all with the red outline)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    inside = ellipse_mask(image.shape[:2], ellipse)[:, :, None]
    gray = np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
    blur = cv2.GaussianBlur(image, BLUR_KERNEL, 0)
    prompts = np.stack([image.copy(), np.where(inside, image, gray), np.where(inside, image, blur)])
    for prompt in prompts:
        cv2.ellipse(prompt, ellipse.box, RED, thickness=thickness)
    return prompts


def concept_ellipses(concept_grid: np.ndarray, image_size: int) -> list[tuple[int, Ellipse]]:
    """(concept id, ellipse) for each concept in a patch grid (-1 = not prominent), in id order."""
    out = []
    for concept in np.unique(concept_grid):
        if concept < 0:
            continue
        ellipse = fit_ellipse(upsample_mask(concept_grid == concept, image_size))
        if ellipse is not None:
            out.append((int(concept), ellipse))
    return out
