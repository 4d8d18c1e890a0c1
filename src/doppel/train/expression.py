"""Expression codes: a few numbers from each face's landmarks that the decoders are conditioned on.

The swap is the target's face decoded by the source's decoder. Left alone, the decoder reads the target's eyes and
mouth from the shared code, which it learnt on the source's face only: a hand at the target's chin or a mouth shape
the source never makes comes out as the source's usual mouth (issue 14: the swapped mouth did not follow the
plate). With a code, each decoder is also told, in numbers that mean the same for both people, how open the eyes
and the mouth are; at the swap the source's decoder gets the target's numbers. Training hides the eyes and mouth of
some inputs (blurred away) so that the decoder has to take them from the code.

Code (per face, float32): eye opening relative to the person's own median (0: as usual, -1: closed); inner-lip
opening in inter-ocular distances, scaled so that wide open is about 1 (absolute: closed is closed for anyone);
mouth width relative to the person's median, in tenths of the inter-ocular distance.

A model with the gaze in its code (`GAZE_DIMS` more numbers) is also told where the eyes look and how far the lids
close, from the face's blendshape coefficients (doppel.extract.blendshapes): the 68 lid landmarks see neither a
downcast look nor lowered lids (akiyo reading her notes reads as eyes open wider). Both are absolute, like the
inner lips: looking down is looking down for anyone, and a person's median gaze says where their camera was, not
what their face usually does.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from doppel.evaluate.expression import eye_opening, gaze, mouth_opening
from doppel.extract.layout import LEFT_EYE, MOUTH, RIGHT_EYE, inter_ocular

DIMS = 3
"""Numbers in an expression code."""
MOUTH_SCALE = 0.3
"""Inner-lip opening (inter-ocular distances) that maps to 1: a wide-open mouth."""
WIDTH_SCALE = 0.1
"""Change of mouth width (inter-ocular distances) that maps to 1."""
GAZE_DIMS = 2
"""Numbers the gaze adds to a code: where the eyes look (down minus up) and how far the lids close."""
GAZE_SCALE = 0.5
"""Blendshape coefficient (0-1) that maps to 1: a look half-way down, lids half closed."""


def raw_features(lm68: np.ndarray) -> tuple[float, float, float]:
    """(eye opening, inner-lip opening, mouth width), all in inter-ocular distances. lm68: (68, 2) points."""
    width = float(np.linalg.norm(lm68[54] - lm68[48])) / max(inter_ocular(lm68), 1e-6)
    return eye_opening(lm68), mouth_opening(lm68), width


def person_reference(landmarks: Sequence[np.ndarray]) -> tuple[float, float]:
    """One person's median eye opening and mouth width (inter-ocular distances) over their faces."""
    if not landmarks:
        return 0.13, 1.0
    raw = np.array([raw_features(lm) for lm in landmarks], np.float64)
    return float(np.median(raw[:, 0])), float(np.median(raw[:, 2]))


def codes(landmarks: Sequence[np.ndarray], reference: tuple[float, float] | None = None,
          coefficients: np.ndarray | None = None) -> np.ndarray:
    """Expression codes of one person's faces: (N, DIMS) float32, each clipped to [-2, 2]; (N, DIMS + GAZE_DIMS)
    with the faces' blendshape `coefficients` ((N, 52), doppel.extract.blendshapes). `reference`: the person's
    (median eye opening, median mouth width), by default from these faces themselves."""
    width = DIMS if coefficients is None else DIMS + GAZE_DIMS
    if not landmarks:
        return np.zeros((0, width), np.float32)
    eye_ref, width_ref = reference if reference is not None else person_reference(landmarks)
    raw = np.array([raw_features(lm) for lm in landmarks], np.float64)
    columns = [raw[:, 0] / max(eye_ref, 1e-3) - 1, raw[:, 1] / MOUTH_SCALE, (raw[:, 2] - width_ref) / WIDTH_SCALE]
    if coefficients is not None:
        if len(coefficients) != len(landmarks):
            raise ValueError(f"{len(coefficients)} faces' coefficients for {len(landmarks)} faces' landmarks")
        looks = np.array([gaze(c) for c in coefficients], np.float64).reshape(-1, 2)
        columns += [looks[:, 0] / GAZE_SCALE, looks[:, 1] / GAZE_SCALE]
    return np.clip(np.stack(columns, 1), -2, 2).astype(np.float32)


def eyes_mouth_region(points: np.ndarray, size: int) -> np.ndarray:
    """Filled convex hulls of both eyes and the mouth (points: (68, 2) crop pixels), grown by 30 % of an eye's
    width: (size, size) uint8 in {0..255}."""
    mask = np.zeros((size, size), np.uint8)
    eye_w = float(np.ptp(points[RIGHT_EYE, 0]))
    for region in (RIGHT_EYE, LEFT_EYE, MOUTH):
        hull = cv2.convexHull(np.round(points[region] * 16).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 255, cv2.LINE_AA, 4)
    grow = max(1, int(round(eye_w * 0.3)))
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))

