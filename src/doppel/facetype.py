"""Face types, defined once: the square window of an aligned crop on the canonical face.

A face type is (centre x, centre y, side) in the units of the mean face (see extract/align.py: the jaw spans
x in [0, 1], brows to chin y in [0, 1]), as in DeepFaceLab: `full` is brows to chin, `whole_face` adds the
forehead, `head` the whole head.
"""

from __future__ import annotations

from typing import Literal, get_args

FaceType = Literal["full", "whole_face", "head"]
FACE_TYPE_NAMES: tuple[FaceType, ...] = get_args(FaceType)

WINDOWS: dict[FaceType, tuple[float, float, float]] = {
    "full": (0.5, 0.52, 1.30),
    "whole_face": (0.5, 0.40, 1.65),
    "head": (0.5, 0.34, 2.20),
}
