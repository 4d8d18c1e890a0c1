"""Temporal smoothing of landmarks: the One-Euro filter (Casiez, Roussel and Vogel, CHI 2012).

A low-pass filter whose cut-off rises with speed: still faces lose their jitter, fast head motion is
followed without lag. Works on timestamps, so variable frame rates are handled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def one_euro(
    times: Sequence[float], points: np.ndarray, *, min_cutoff: float = 1.0, beta: float = 0.05,
    d_cutoff: float = 1.0, scale: Sequence[float] | None = None,
) -> np.ndarray:
    """Filter a track of points over time.

    times: T seconds, increasing. points: T x N x 2 (frame pixels). `scale` (T values, e.g. inter-ocular
    distance) makes `beta` independent of face size: speed is measured in scale units per second.
    Returns T x N x 2 float64. `min_cutoff` (Hz) sets smoothing at rest; `beta` how fast it opens with speed.
    """
    pts = np.asarray(points, np.float64)
    out = np.empty_like(pts)
    if len(pts) == 0:
        return out
    out[0] = pts[0]
    deriv = np.zeros_like(pts[0])
    for t in range(1, len(pts)):
        dt = max(float(times[t] - times[t - 1]), 1e-6)
        unit = float(scale[t]) if scale is not None else 1.0
        raw_deriv = (pts[t] - out[t - 1]) / dt / max(unit, 1e-6)
        a_d = _alpha(d_cutoff, dt)
        deriv = a_d * raw_deriv + (1 - a_d) * deriv
        speed = np.linalg.norm(deriv, axis=-1, keepdims=True)
        a = _alpha(min_cutoff + beta * speed * 100.0, dt)
        out[t] = a * pts[t] + (1 - a) * out[t - 1]
    return out
