"""Occlusion labels that move on their own (a hand, not the face) and the merge's hard occlusion cut."""

from __future__ import annotations

import cv2
import numpy as np

from doppel.extract.masks import rasterize
from doppel.merge.masks import occlusion_cut
from doppel.occlusion import labels as lab
from doppel.occlusion.propagate import carry, choose_motion
from doppel.occlusion.track import track_polygon


def _texture(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.uniform(40, 220, (size // 8, size // 8, 3)).astype(np.float32)
    return np.clip(cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


HAND = np.array([[-12, 20], [-14, -4], [-22, -14], [-16, -18], [-8, -10], [-10, -30], [-4, -32], [-2, -14],
                 [2, -34], [8, -33], [7, -14], [12, -28], [17, -26], [12, -6], [12, 20]], np.float64)


def _hand_at(k: int) -> np.ndarray:
    """The hand on frame k: 3 px/frame to the right, 1 px/frame up, turning 1.5 degrees a frame."""
    a = np.radians(1.5 * k)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return HAND @ rot.T + (100 + 3.0 * k, 110 - 1.0 * k)


def _clip(steps: int) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """A textured 'face' drifting 1 px/frame left, a flat, textureless hand-coloured polygon moving over it
    on its own: frames (HxWx3 uint8), face matrices frame -> 128 px crop, crops."""
    face = _texture(240, 1)
    frames, matrices = [], []
    for k in range(steps + 1):
        frame = np.roll(face, -k, axis=1).copy()
        hand = rasterize(_hand_at(k), (240, 240)).astype(np.float32)[..., None] / 255
        frame = (frame * (1 - hand) + np.array([205, 150, 125]) * hand + 0.5).astype(np.uint8)
        frames.append(frame)
        matrices.append(np.array([[1.0, 0, -50 + k], [0, 1.0, -50]]))
    crops = [cv2.warpAffine(f, m, (128, 128)) for f, m in zip(frames, matrices, strict=True)]
    return frames, matrices, crops


def test_a_hand_moving_on_its_own_is_carried_by_its_own_motion() -> None:
    """The hand's outline follows the hand's known motion over 12 frames (the face's motion alone would
    leave it behind); a spot on the face keeps moving with the face."""
    steps = 12
    frames, matrices, crops = _clip(steps)
    spot = np.array([[60, 60], [80, 60], [80, 80], [60, 80]], np.float64)
    label = lab.Label("empty", (lab.Shape("include", _hand_at(0)), lab.Shape("include", spot)))
    carried = carry(label, matrices, crops, frames=frames)
    with_face_only = carry(label, matrices, crops)
    size = (240, 240)
    for k, c in enumerate(carried, start=1):
        assert lab.iou(rasterize(c.shapes[0].points, size), rasterize(_hand_at(k), size)) > 0.9, k
        assert np.abs(c.shapes[1].points - (spot - (k, 0))).max() < 0.75
    assert lab.iou(rasterize(with_face_only[-1].shapes[0].points, size), rasterize(_hand_at(steps), size)) < 0.7


def test_region_tracker_and_the_choice_of_motion() -> None:
    frames, matrices, _ = _clip(8)
    own, scores = track_polygon(frames, _hand_at(0))
    assert len(own) == len(scores) == 8
    assert np.abs(own[-1] - _hand_at(8)).max() < 2.0
    with_face = [_hand_at(0) - (k, 0) for k in range(1, 9)]
    assert choose_motion(frames, _hand_at(0), with_face, own) == "own"
    # A polygon on the face: the face's motion explains it, whatever the region tracker made of it.
    spot = np.array([[150, 150], [180, 150], [180, 180], [150, 180]], np.float64)
    moved = [spot - (k, 0) for k in range(1, 9)]
    assert choose_motion(frames, spot, moved, [p + (6, 6) for p in moved]) == "face"


def test_occlusion_cut_keeps_the_plate_wherever_the_mask_says_occluder() -> None:
    visible = np.ones((40, 40), np.float32)
    visible[10:30, 10:30] = np.linspace(0, 0.5, 20, dtype=np.float32)[None, :]  # occluded, some barely
    cut = occlusion_cut(visible, grow=1)
    assert cut[10:30, 10:30].max() == 0                    # at or below 0.5: exactly the plate
    assert cut[9, 15] == 0 and cut[15, 9] == 0              # the edge's neighbours too (grow)
    assert cut[:7].min() == 1 and cut[33:].min() == 1       # the face away from it: untouched
    ramp = occlusion_cut(np.full((5, 5), 0.625, np.float32), grow=0)
    assert np.allclose(ramp, 0.5)
