"""Expression measures from 68-point landmarks: how open the eyes and the mouth are, and how well a series follows
another over time.

Openings are in inter-ocular distances (the distance between the eye centres), so they do not depend on the face's
size in the frame: a relaxed open eye is about 0.12-0.15, a closed one under 0.06; a closed mouth (inner lips
touching) is about 0, a wide-open one 0.3 or more.
"""

from __future__ import annotations

import numpy as np

from doppel.extract.blendshapes import NAMES
from doppel.extract.layout import inter_ocular

# Upper and lower lid points facing each other, per eye (iBUG numbering).
_EYE_PAIRS = ((37, 41), (38, 40), (43, 47), (44, 46))
# Inner-lip points facing each other: upper 61-63, lower 67-65.
_MOUTH_PAIRS = ((61, 67), (62, 66), (63, 65))
# Blendshape coefficients of both eyes (doppel.extract.blendshapes.NAMES).
_LOOK_DOWN = [NAMES.index("eyeLookDownLeft"), NAMES.index("eyeLookDownRight")]
_LOOK_UP = [NAMES.index("eyeLookUpLeft"), NAMES.index("eyeLookUpRight")]
_BLINK = [NAMES.index("eyeBlinkLeft"), NAMES.index("eyeBlinkRight")]


def _mean_gap(lm68: np.ndarray, pairs: tuple[tuple[int, int], ...]) -> float:
    return float(np.mean([np.linalg.norm(lm68[a] - lm68[b]) for a, b in pairs]))


def eye_opening(lm68: np.ndarray) -> float:
    """Mean lid gap of both eyes over the inter-ocular distance. `lm68`: (68, 2) float points in any pixel unit."""
    return _mean_gap(lm68, _EYE_PAIRS) / max(inter_ocular(lm68), 1e-6)


def mouth_opening(lm68: np.ndarray) -> float:
    """Mean inner-lip gap over the inter-ocular distance. `lm68`: (68, 2) float points."""
    return _mean_gap(lm68, _MOUTH_PAIRS) / max(inter_ocular(lm68), 1e-6)


def openings(lm68: np.ndarray) -> tuple[float, float]:
    """(eye opening, mouth opening) of one face."""
    return eye_opening(lm68), mouth_opening(lm68)


def gaze(coefficients: np.ndarray) -> tuple[float, float]:
    """(look, blink) of one face from its 52 blendshape coefficients (`doppel.extract.blendshapes`): how far the
    eyes look down (positive) or up (negative), and how far the lids close, each the mean of both eyes, 0-1.
    The landmarks' eye opening does not see a downcast look; these do."""
    c = np.asarray(coefficients, np.float64)
    return float(c[_LOOK_DOWN].mean() - c[_LOOK_UP].mean()), float(c[_BLINK].mean())


def correlation(a: np.ndarray, b: np.ndarray, min_frames: int = 10) -> float:
    """Pearson correlation of two series over the frames where both are finite; NaN when fewer than
    `min_frames` such frames exist or either series does not vary. `a`, `b`: (T,) float."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < min_frames:
        return float("nan")
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 1e-12 else float("nan")
