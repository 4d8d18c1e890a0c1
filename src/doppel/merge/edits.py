"""Manual landmark fixes: move the five anchor points, or interpolate a frame from its neighbours, and apply a
stored fix to a face so that merge renders the face where the artist put it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from doppel.extract.align import invert, transform_points, umeyama
from doppel.extract.layout import five_points
from doppel.workspace.faces import Face

ANCHOR_NAMES = ("right eye", "left eye", "nose tip", "right mouth corner", "left mouth corner")


def face_landmarks(face: Face) -> np.ndarray:
    """The 68 points merge places the face by (68x2 float32, frame pixels): smoothed when there are some."""
    return face.lm68_smooth if face.lm68_smooth is not None else face.lm68


def anchors(lm68: np.ndarray) -> np.ndarray:
    """5x2 float32 anchor points (see ANCHOR_NAMES) of 68 landmarks."""
    return five_points(lm68)


def move_anchors(lm68: np.ndarray, new_anchors: np.ndarray) -> np.ndarray:
    """68 landmarks that follow moved anchors: a similarity fitted to all five moves the whole face, and what the
    similarity leaves over moves each point by the anchors' residuals weighted by inverse squared distance, so
    moving one mouth corner moves the mouth, not the eyes. lm68: 68x2, new_anchors: 5x2 (frame pixels)."""
    old = anchors(lm68).astype(np.float64)
    new = np.asarray(new_anchors, np.float64)
    m = umeyama(old, new)
    moved = transform_points(m, lm68)
    residual = new - transform_points(m, old)
    d2 = ((moved[:, None, :] - new[None, :, :]) ** 2).sum(-1)
    scale = max(float(np.linalg.norm(new[0] - new[1])), 1.0)
    w = 1.0 / (d2 + (0.05 * scale) ** 2)
    w /= w.sum(1, keepdims=True)
    return (moved + w @ residual).astype(np.float32)


def interpolate_neighbours(faces: dict[int, Face], frame: int) -> np.ndarray | None:
    """68x2 landmarks for `frame` interpolated linearly between the nearest frames before and after it that
    have a face (or copied from the only side that has one); None when no other frame has a face."""
    before = max((i for i in faces if i < frame), default=None)
    after = min((i for i in faces if i > frame), default=None)
    if before is None and after is None:
        return None
    if before is None or after is None:
        return face_landmarks(faces[before if before is not None else after]).copy()  # type: ignore[index]
    t = (frame - before) / (after - before)
    a, b = face_landmarks(faces[before]), face_landmarks(faces[after])
    return ((1 - t) * a + t * b).astype(np.float32)


def edited_face(face: Face, lm68: np.ndarray) -> Face:
    """The face with its landmarks replaced by a manual fix. Its mask polygon and raw alignment follow the
    similarity between the old and new landmarks, so the mask stays where it was relative to the face."""
    t = umeyama(face_landmarks(face), lm68)
    polygon = transform_points(t, face.polygon).astype(np.float32)
    back = np.vstack([invert(t), [0, 0, 1]])
    matrix = np.vstack([face.matrix, [0, 0, 1]]) @ back
    return replace(face, lm68_smooth=np.asarray(lm68, np.float32), polygon=polygon, matrix=matrix[:2])
