"""The compositing mask: landmark polygon, learned mask, or both; eroded or dilated and feathered in units of
the face, so one setting suits close-ups and wide shots alike."""

from __future__ import annotations

import cv2
import numpy as np

MASK_MODES = ("landmarks", "learned", "intersect", "union")


def combine(landmarks: np.ndarray, learned: np.ndarray, mode: str) -> np.ndarray:
    """HxW float32 in [0, 1] from two HxW float masks in [0, 1]."""
    if mode == "landmarks":
        return landmarks
    if mode == "learned":
        return learned
    if mode == "intersect":
        return np.minimum(landmarks, learned)
    if mode == "union":
        return np.maximum(landmarks, learned)
    raise ValueError(f"unknown mask mode {mode!r}")


def shape_mask(mask: np.ndarray, erode: float, feather: float) -> np.ndarray:
    """Erode (erode > 0) or dilate (erode < 0) by `erode` percent of the mask's size, then feather (blur) the edge
    over `feather` percent. `mask`: HxW float32 in [0, 1] (an aligned crop, so its size is the face's scale)."""
    size = mask.shape[0]
    out: np.ndarray = (mask > 0.5).astype(np.uint8)
    radius = int(round(abs(erode) / 100 * size))
    if radius:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        out = cv2.erode(out, kernel) if erode > 0 else cv2.dilate(out, kernel)
    result: np.ndarray = out.astype(np.float32)
    blur = feather / 100 * size
    if blur > 0:
        # Feather inwards, so the blend never reaches beyond the (eroded) mask's edge.
        inner = cv2.erode(out, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * int(blur / 2) + 1,) * 2))
        result = cv2.GaussianBlur(inner.astype(np.float32), (0, 0), sigmaX=blur / 2)
        result = np.clip(result * (out > 0), 0, 1)
    return result
