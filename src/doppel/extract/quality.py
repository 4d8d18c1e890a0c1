"""Per-face measures: head pose from the dense mesh, and sharpness of the aligned crop."""

from __future__ import annotations

import math

import cv2
import numpy as np

# Mesh indices: outer eye corners (subject's right, left), forehead top, chin.
_R_EYE, _L_EYE, _TOP, _CHIN = 33, 263, 10, 152
# The forehead slopes back, so the forehead-to-chin axis leans; measured on frontal portraits (astronaut,
# Grace Hopper, mirrored), it reads about 9.5 degrees chin-down for a level head.
_PITCH_OFFSET = 9.5


def head_pose(mesh: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from 468x3 mesh points (x right, y down, z away from the camera).

    Yaw > 0: the face turns towards the image's right; pitch > 0: the chin goes up; roll > 0: the head
    tilts clockwise in the image.
    """
    p = mesh.astype(np.float64)
    x_axis = p[_L_EYE] - p[_R_EYE]
    x_axis /= np.linalg.norm(x_axis)
    y_axis = p[_CHIN] - p[_TOP]
    y_axis -= x_axis * (y_axis @ x_axis)
    y_axis /= np.linalg.norm(y_axis)
    z_axis = np.cross(x_axis, y_axis)
    yaw = math.degrees(math.atan2(-z_axis[0], z_axis[2]))
    pitch = math.degrees(math.atan2(z_axis[1], math.hypot(z_axis[0], z_axis[2]))) + _PITCH_OFFSET
    roll = math.degrees(math.atan2(x_axis[1], x_axis[0]))
    return yaw, pitch, roll


def sharpness(crop: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Variance of the Laplacian of an aligned HxWx3 uint8 crop, inside `mask` (HxW, >0 = face) if given.

    Comparable between faces only at the same crop size, which extraction guarantees.
    """
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    lap = cv2.Laplacian(gray, cv2.CV_32F, ksize=3)
    values = lap[mask > 127] if mask is not None else lap.ravel()
    return float(values.var()) if values.size else 0.0
