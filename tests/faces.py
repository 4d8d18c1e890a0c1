"""Face fixtures from public-domain portraits that ship inside packages (scikit-image, matplotlib)."""

from __future__ import annotations

import functools

import cv2
import numpy as np

from doppel.demo import astronaut, grace_hopper


@functools.cache
def astro() -> np.ndarray:
    return astronaut()


@functools.cache
def hopper() -> np.ndarray:
    return grace_hopper()


def rotated(image: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """Image rotated counter-clockwise about its centre, and the 2x3 original->rotated matrix."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REPLICATE), m


def scaled(image: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    out = cv2.resize(image, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)
    return out, np.array([[factor, 0, 0], [0, factor, 0]], np.float64)


def mirrored(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = image.shape[1]
    return np.ascontiguousarray(image[:, ::-1]), np.array([[-1, 0, w - 1], [0, 1, 0]], np.float64)


def two_people(height: int = 300) -> np.ndarray:
    """The astronaut (left) and Grace Hopper (right) side by side, both scaled to `height`."""
    parts = []
    for img in (astro(), hopper()):
        h, w = img.shape[:2]
        parts.append(cv2.resize(img, (round(w * height / h), height), interpolation=cv2.INTER_AREA))
    return np.hstack(parts)
