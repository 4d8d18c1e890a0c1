"""Named subsets of the 468-point face mesh: the 68-point (iBUG) layout, regions, and the five-point set.

"Right" and "left" are the subject's: the subject's right eye is on the image's left.
"""

from __future__ import annotations

import numpy as np

# Mesh index for each of the 68 iBUG points, in iBUG order.
MESH_TO_68 = np.array([
    # jaw 0-16, from the subject's right ear round the chin to the left ear
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,
    70, 63, 105, 66, 107,            # right brow 17-21
    336, 296, 334, 293, 300,         # left brow 22-26
    168, 197, 5, 4,                  # nose bridge 27-30
    75, 97, 2, 326, 305,             # nostrils 31-35
    33, 160, 158, 133, 153, 144,     # right eye 36-41
    362, 385, 387, 263, 373, 380,    # left eye 42-47
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lips 48-59
    78, 82, 13, 312, 308, 317, 14, 87,                    # inner lips 60-67
])

# For each 68-point index, its mirror image's index (left and right swapped).
MIRROR_68 = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65]
)

# The face outline in the mesh, clockwise from the top of the forehead.
FACE_OVAL = np.array([
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
])

# Regions of the 68-point layout.
JAW = slice(0, 17)
BROWS = slice(17, 27)
NOSE = slice(27, 36)
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
MOUTH = slice(48, 68)


def to_68(mesh: np.ndarray) -> np.ndarray:
    """68x2 float32 iBUG-layout points from 468xK mesh points (frame pixels)."""
    return np.ascontiguousarray(mesh[MESH_TO_68, :2], dtype=np.float32)


def five_points(lm68: np.ndarray) -> np.ndarray:
    """Right eye centre, left eye centre, nose tip, right and left mouth corners (5x2), for recognisers."""
    return np.stack([
        lm68[RIGHT_EYE].mean(0), lm68[LEFT_EYE].mean(0), lm68[30], lm68[48], lm68[54],
    ]).astype(np.float32)


def inter_ocular(lm68: np.ndarray) -> float:
    """Distance between the eye centres, the scale unit for landmark errors."""
    return float(np.linalg.norm(lm68[RIGHT_EYE].mean(0) - lm68[LEFT_EYE].mean(0)))
