"""Alignment: a similarity transform (Umeyama) of the 68 landmarks onto a canonical mean face.

The mean face was measured by us: Procrustes mean of the face mesh's 68 points over 28 frontal faces (the
development clips, the two public-domain portraits, and their mirror images), symmetrised, and normalised so
that the jaw spans x in [0, 1] and the brows-to-chin height spans y in [0, 1].

Face types (square windows on that canonical face) are defined in doppel/facetype.py.
"""

from __future__ import annotations

import cv2
import numpy as np

from doppel.facetype import WINDOWS, FaceType

FACE_TYPES = WINDOWS  # (centre x, centre y, side) of each face type's window, in mean-face units

MEAN_FACE_68 = np.array([
    (0.000, 0.208), (0.008, 0.311), (0.015, 0.417), (0.031, 0.530), (0.063, 0.649), (0.161, 0.818),
    (0.228, 0.880), (0.342, 0.962), (0.500, 1.000), (0.658, 0.962), (0.772, 0.880), (0.839, 0.818),
    (0.937, 0.649), (0.969, 0.530), (0.985, 0.417), (0.992, 0.311), (1.000, 0.208), (0.088, 0.068),
    (0.132, 0.023), (0.200, 0.000), (0.289, 0.003), (0.392, 0.016), (0.608, 0.016), (0.711, 0.003),
    (0.800, 0.000), (0.868, 0.023), (0.912, 0.068), (0.500, 0.154), (0.500, 0.273), (0.500, 0.376),
    (0.500, 0.441), (0.405, 0.505), (0.445, 0.533), (0.500, 0.534), (0.555, 0.533), (0.595, 0.505),
    (0.172, 0.188), (0.222, 0.163), (0.300, 0.159), (0.375, 0.201), (0.310, 0.217), (0.234, 0.216),
    (0.625, 0.201), (0.700, 0.159), (0.778, 0.163), (0.828, 0.188), (0.766, 0.216), (0.690, 0.217),
    (0.308, 0.681), (0.386, 0.641), (0.444, 0.630), (0.500, 0.638), (0.556, 0.630), (0.614, 0.641),
    (0.692, 0.681), (0.607, 0.758), (0.557, 0.778), (0.500, 0.783), (0.443, 0.778), (0.393, 0.758),
    (0.334, 0.679), (0.456, 0.680), (0.500, 0.682), (0.544, 0.680), (0.666, 0.679), (0.547, 0.710),
    (0.500, 0.712), (0.453, 0.710),
], dtype=np.float64)

# The jaw moves with pose and expression; the inner points (brows, nose, eyes, mouth) fix the transform.
_FIT_POINTS = slice(17, 68)


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation) taking src onto dst.

    src, dst: Nx2 float. Returns a 2x3 float64 matrix M with dst ~= src @ M[:, :2].T + M[:, 2].
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1
    rot = u @ np.diag(sign) @ vt
    var_s = (s ** 2).sum() / len(src)
    scale = float((sigma * sign).sum() / var_s)
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def canonical_points(face_type: FaceType, size: int) -> np.ndarray:
    """Where the mean face's 68 points sit in a `size` crop of `face_type` (68x2 float64, crop pixels)."""
    cx, cy, side = FACE_TYPES[face_type]
    return ((MEAN_FACE_68 - (cx - side / 2, cy - side / 2)) / side) * size


def align_matrix(lm68: np.ndarray, face_type: FaceType = "whole_face", size: int = 256) -> np.ndarray:
    """2x3 frame->crop matrix for a face with 68 landmarks (frame pixels)."""
    return umeyama(lm68[_FIT_POINTS], canonical_points(face_type, size)[_FIT_POINTS])


def invert(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix (crop->frame for a frame->crop matrix)."""
    return cv2.invertAffineTransform(np.asarray(m, np.float64))


def transform_points(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 matrix to Nx2 points."""
    pts = np.asarray(points, np.float64)[:, :2]
    return pts @ m[:, :2].T + m[:, 2]


def warp_face(image: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """The aligned crop: HxWx3 uint8 frame -> size x size x 3 uint8, bicubic, edges replicated."""
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
