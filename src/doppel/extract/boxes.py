"""Boxes (x0, y0, x1, y1) in frame pixels: overlap measures shared by detection, tracking and extraction."""

from __future__ import annotations

import numpy as np


def box_of(points: np.ndarray) -> np.ndarray:
    """(4,) float64 bounding box of Nx2 (or Nx3: x, y first) points."""
    pts = np.asarray(points, np.float64)[:, :2]
    return np.concatenate([pts.min(0), pts.max(0)])


def area(boxes: np.ndarray) -> np.ndarray:
    """Areas of (N, 4) boxes (or of one (4,) box)."""
    b = np.asarray(boxes, np.float64)
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def intersection(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection areas of one (4,) box with each of (N, 4) boxes (or with one (4,) box)."""
    b = np.asarray(boxes, np.float64)
    w = np.minimum(box[2], b[..., 2]) - np.maximum(box[0], b[..., 0])
    h = np.minimum(box[3], b[..., 3]) - np.maximum(box[1], b[..., 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one (4,) box with each of (N, 4) boxes, in [0, 1] (0 for empty boxes)."""
    inter = intersection(box, boxes)
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
