"""Landmark masks: a polygon per face stored as data (frame pixels), rasterised on demand at any size.

The polygon is the mesh's face oval. For `whole_face` and `head` the upper half of the oval is pushed up
over the forehead (along the face's own vertical axis), as far as those crop types reach.
"""

from __future__ import annotations

import cv2
import numpy as np

from doppel.extract.align import FaceType, transform_points
from doppel.extract.layout import FACE_OVAL, LEFT_EYE, RIGHT_EYE

# How far above the eye line the forehead points are pushed, in units of the eyes-to-chin distance.
_FOREHEAD_LIFT = {"full": 0.0, "whole_face": 0.35, "head": 0.55}


def face_polygon(mesh: np.ndarray, lm68: np.ndarray, face_type: FaceType = "whole_face") -> np.ndarray:
    """Nx2 float32 polygon (frame pixels) around the face for `face_type`."""
    oval = mesh[FACE_OVAL, :2].astype(np.float64)
    lift = _FOREHEAD_LIFT[face_type]
    if lift:
        eyes = (lm68[RIGHT_EYE].mean(0) + lm68[LEFT_EYE].mean(0)) / 2
        down = lm68[8] - eyes  # eyes -> chin
        length = float(np.linalg.norm(down))
        unit = down / max(length, 1e-6)
        along = (oval - eyes) @ unit  # signed position along the face's vertical axis
        above = np.clip(-along / max(length, 1e-6), 0.0, None)  # 0 at the eye line, growing upwards
        weight = np.clip(above / 0.5, 0.0, 1.0)
        oval = oval - np.outer(weight * lift * length, unit)
    return oval.astype(np.float32)


def lower_forehead(polygon: np.ndarray, lm68: np.ndarray, face_type: FaceType, keep: float) -> np.ndarray:
    """`polygon` (Nx2 frame pixels, made by `face_polygon` for `face_type`) with only the share `keep` (0-1) of
    its forehead lift: 1 returns it as it is, 0 brings the forehead back to the mesh oval's top (the hairline
    the mesh sees). The lift is undone along the same axis and with the same ramp that made it."""
    lift = _FOREHEAD_LIFT[face_type]
    if not lift or keep >= 1:
        return polygon
    pts = np.asarray(polygon, np.float64)
    eyes = (lm68[RIGHT_EYE].mean(0) + lm68[LEFT_EYE].mean(0)) / 2
    down = lm68[8] - eyes
    length = max(float(np.linalg.norm(down)), 1e-6)
    unit = down / length
    above = np.clip(-((pts - eyes) @ unit) / length, 0.0, None)
    # invert above_lifted = above + lift * clip(above / 0.5, 0, 1) for the ramp weight the point received
    weight = np.where(above <= 0.5 + lift, np.clip(2 * above / (1 + 2 * lift), 0.0, 1.0), 1.0)
    return (pts + np.outer((1 - keep) * weight * lift * length, unit)).astype(np.float32)


def rasterize(polygon: np.ndarray, size: tuple[int, int], matrix: np.ndarray | None = None) -> np.ndarray:
    """HxW uint8 mask (0 or 255) of a polygon; `matrix` (2x3) maps polygon coordinates first, e.g. to a crop.

    `size` is (width, height). Sub-pixel vertices are kept with 4 bits of fractional precision.
    """
    pts = transform_points(matrix, polygon) if matrix is not None else np.asarray(polygon, np.float64)
    mask = np.zeros((size[1], size[0]), np.uint8)
    fixed = np.round(pts * 16).astype(np.int32)
    cv2.fillPoly(mask, [fixed], 255, lineType=cv2.LINE_AA, shift=4)
    return mask
