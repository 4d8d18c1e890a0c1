"""Temporal smoothing of landmarks: the One-Euro filter (Casiez, Roussel and Vogel, CHI 2012).

A low-pass filter whose cut-off rises with speed: still faces lose their jitter, fast head motion is
followed. Works on timestamps, so variable frame rates are handled. Extraction sees the whole shot, so it
runs the filter forwards and backwards and averages the two (`smooth_offline`): the lags of the two
directions cancel, and fast motion is followed without the delay a live filter has.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def one_euro(
    times: Sequence[float], points: np.ndarray, *, min_cutoff: float = 1.0, beta: float = 5.0,
    d_cutoff: float = 1.0, scale: Sequence[float] | None = None,
) -> np.ndarray:
    """Filter a track of points over time.

    times: T seconds, increasing. points: T x N x 2 (frame pixels). `scale` (T values, e.g. inter-ocular
    distance) makes `beta` independent of face size: speed is measured in scale units per second.
    Returns T x N x 2 float64. `min_cutoff` (Hz) sets smoothing at rest; `beta` (Hz per scale unit per
    second) how fast it opens with the face's speed.
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
        # The face's coherent speed (mean velocity over its points) opens the filter: landmark jitter is
        # independent per point and averages out, while head motion moves every point together.
        speed = float(np.linalg.norm(deriv.reshape(-1, deriv.shape[-1]).mean(0)))
        a = _alpha(min_cutoff + beta * speed, dt)
        out[t] = a * pts[t] + (1 - a) * out[t - 1]
    return out


def smooth_offline(
    times: Sequence[float], points: np.ndarray, *, min_cutoff: float = 1.0, beta: float = 5.0,
    scale: Sequence[float] | None = None,
) -> np.ndarray:
    """Zero-phase One-Euro: the mean of a forward and a backward pass over the whole track (T x N x 2)."""
    pts = np.asarray(points, np.float64)
    forward = one_euro(times, pts, min_cutoff=min_cutoff, beta=beta, scale=scale)
    back_times = [-t for t in reversed(times)]
    back_scale = list(reversed(scale)) if scale is not None else None
    backward = one_euro(back_times, pts[::-1], min_cutoff=min_cutoff, beta=beta, scale=back_scale)[::-1]
    return np.asarray((forward + backward) / 2)
