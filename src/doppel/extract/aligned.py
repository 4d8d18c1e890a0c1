"""One object per face: everything later stages derive from a stored face's geometry, in one place.

Like faceswap's `AlignedFace`: the raw and smoothed 68 landmarks, the extraction's alignment matrix, the
mask polygon and the pose, and from them the alignment, the crop, the mask and the landmarks at any size and
face type. Train, merge, evaluate (and the studio) ask this object instead of re-deriving geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from doppel.extract.align import align_matrix, transform_points, warp_face
from doppel.extract.layout import inter_ocular
from doppel.extract.masks import lower_forehead, rasterize
from doppel.facetype import FACE_TYPE_NAMES, FaceType
from doppel.workspace.faces import Face


@dataclass(frozen=True)
class AlignedFace:
    """The geometry of one stored face. Points are float frame pixels; matrices 2x3 float64 frame -> crop."""

    landmarks: np.ndarray
    """(68, 2) as detected."""
    smoothed: np.ndarray | None
    """(68, 2) One-Euro smoothed over the face's track (target faces), or None."""
    matrix: np.ndarray
    """The extraction's own alignment: frame -> its `crop_size` crop of `face_type`."""
    crop_size: int
    face_type: FaceType
    polygon: np.ndarray
    """(N, 2) the mask outline."""
    yaw: float
    pitch: float
    roll: float

    @classmethod
    def of(cls, face: Face) -> AlignedFace:
        if face.face_type not in FACE_TYPE_NAMES:
            raise ValueError(f"face #{face.id} has an unknown face type {face.face_type!r}")
        return cls(face.lm68, face.lm68_smooth, face.matrix, face.crop_size, face.face_type,
                   face.polygon, face.yaw, face.pitch, face.roll)

    @property
    def steady_landmarks(self) -> np.ndarray:
        """The smoothed landmarks where there are some (steadier over time), else the detected ones."""
        return self.smoothed if self.smoothed is not None else self.landmarks

    @property
    def size(self) -> float:
        """Inter-ocular distance in frame pixels."""
        return inter_ocular(self.landmarks)

    @property
    def centre(self) -> np.ndarray:
        """(2,) mean of the detected landmarks."""
        return np.asarray(self.landmarks.mean(0))

    def alignment(self, size: int, face_type: FaceType | None = None, *, steady: bool = True) -> np.ndarray:
        """Frame -> crop matrix for a `size` crop of `face_type` (default: the extraction's), fitted to the
        steady landmarks (or the detected ones with `steady=False`)."""
        lm = self.steady_landmarks if steady else self.landmarks
        return align_matrix(lm, face_type or self.face_type, size)

    def stored_alignment(self, size: int) -> np.ndarray:
        """The extraction's own alignment, scaled to a `size` crop (same face type as extracted)."""
        return self.matrix * (size / self.crop_size)

    def crop(self, image: np.ndarray, size: int, face_type: FaceType | None = None, *, steady: bool = True
             ) -> np.ndarray:
        """The aligned crop of an HxWx3 uint8 frame: size x size x 3 uint8."""
        return warp_face(image, self.alignment(size, face_type, steady=steady), size)

    def in_frame(self, size: int, frame_size: tuple[int, int]) -> np.ndarray:
        """Which pixels of the stored crop at `size` come from inside the frame (`frame_size`: width, height):
        (size, size) uint8 0/255, shrunk by a pixel so the blend with the border's fill counts as outside. A face
        at the edge of the picture has a crop filled with black beyond it; that black is not the face."""
        width, height = frame_size
        corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64) - 0.5
        inside = np.zeros((size, size), np.uint8)
        cv2.fillConvexPoly(inside, np.round(transform_points(self.stored_alignment(size), corners) * 16)
                           .astype(np.int32), 255, cv2.LINE_8, 4)
        return cv2.erode(inside, np.ones((3, 3), np.uint8))

    def crop_mask(self, size: int, forehead: float = 1.0) -> np.ndarray:
        """The landmark mask in a `size` crop placed by the extraction's own alignment: (size, size) uint8
        0/255. It moves with the crop, so it inherits whichever alignment the crop used. `forehead` < 1 keeps
        only that share of the crop type's reach over the forehead (see masks.lower_forehead)."""
        polygon = lower_forehead(self.polygon, self.landmarks, self.face_type, forehead)
        return rasterize(polygon, (size, size), self.stored_alignment(size))

    def crop_landmarks(self, size: int) -> np.ndarray:
        """The detected landmarks in that crop: (68, 2) float64 crop pixels."""
        return transform_points(self.stored_alignment(size), self.landmarks)

    def frame_mask(self, width: int, height: int) -> np.ndarray:
        """The landmark mask in the frame: (height, width) uint8 0/255."""
        return rasterize(self.polygon, (width, height))
