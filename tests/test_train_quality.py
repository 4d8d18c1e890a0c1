"""Training terms for a face that follows the plate and holds detail: expression-balanced sampling and the
Laplacian-pyramid loss."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from doppel.train.data import _pose_weights, balanced_weights
from doppel.train.losses import _laplacian, laplacian_pyramid
from tests.test_evaluate_quality import face


@dataclass
class _Posed:
    yaw: float
    pitch: float
    lm68: np.ndarray


def _record(i: int, eye: float, mouth: float) -> _Posed:
    return _Posed(0.0, 0.0, face(eye, mouth))


def test_rare_blinks_and_open_mouths_are_drawn_far_more_often() -> None:
    faces = [_record(i, 0.14, 0.02) for i in range(90)]          # the common face: eyes open, mouth closed
    faces += [_record(90 + i, 0.03, 0.02) for i in range(5)]     # five blinks
    faces += [_record(95 + i, 0.14, 0.30) for i in range(5)]     # five wide-open mouths
    pose_only = _pose_weights(faces).numpy()
    balanced = balanced_weights(faces).numpy()
    assert abs(balanced.sum() - 1) < 1e-9
    assert abs(pose_only[90:].sum() - 0.1) < 1e-9
    # The eye factor (a third of the weight) gives the blink bin half its share: the 5 % of blinks get about
    # 19 % of the draws; the same for the open mouths. Pose-only sampling draws each 5 %.
    assert balanced[90:95].sum() > 0.18 and pose_only[90:95].sum() < 0.06
    assert balanced[95:].sum() > 0.18
    assert balanced[:90].sum() < 0.65


def test_laplacian_pyramid_rebuilds_the_image_and_the_loss_punishes_blur_more_than_a_shift() -> None:
    g = torch.Generator().manual_seed(0)
    target = F.avg_pool2d(torch.rand(2, 3, 64, 64, generator=g), 3, 1, 1)
    bands = laplacian_pyramid(target, 3)
    rebuilt = bands[-1]
    for band in reversed(bands[:-1]):
        rebuilt = band + F.interpolate(rebuilt, size=band.shape[-2:], mode="bilinear", align_corners=False)
    assert torch.allclose(rebuilt, target, atol=1e-6)
    mask = torch.ones(2, 1, 64, 64)
    blurred = F.avg_pool2d(target, 5, 1, 2, count_include_pad=False)
    mse = float(((blurred - target) ** 2).mean())
    brighter = (target + mse**0.5).clamp(0, 1)  # the same mean squared error, but no structure lost
    batch = {"target": target, "mask": mask}
    assert float(_laplacian(target, mask, batch)) < 1e-6
    assert float(_laplacian(blurred, mask, batch)) > 5 * float(_laplacian(brighter, mask, batch))
