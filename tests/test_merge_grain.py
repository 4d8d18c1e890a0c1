"""Merge grain follows the plate's noise spectrum, not pixel speckle."""

from __future__ import annotations

import cv2
import numpy as np

from doppel.merge.blend import _fine_detail, grain_like, match_grain, noise_level


def _lag1(noise: np.ndarray) -> float:
    """Correlation of horizontally neighbouring pixels."""
    a, b = noise[:, :-1].ravel(), noise[:, 1:].ravel()
    return float(np.corrcoef(a, b)[0, 1])


def test_grain_has_the_plates_clumpy_spectrum_and_the_missing_level() -> None:
    rng = np.random.default_rng(0)
    # A flat grey plate with soft, clumpy grain (white noise blurred by sigma 1, as after compression).
    clumps = cv2.GaussianBlur(rng.normal(0, 1, (128, 128)).astype(np.float32), (0, 0), 1.0)
    plate = np.clip(0.5 + 0.03 * clumps / clumps.std(), 0, 1)[..., None].repeat(3, 2).astype(np.float32)
    mask = np.ones((128, 128), np.float32)
    g = grain_like(plate, mask, 0.02, seed=1)
    assert abs(float(g.std()) - 0.02) < 1e-4
    # Clumpy like the plate's fine detail (what the median leaves of the clumps).
    assert _lag1(g) > 0.3
    assert abs(_lag1(g) - _lag1(_fine_detail(plate))) < 0.1
    assert abs(_lag1(rng.normal(0, 1, (128, 128)))) < 0.05  # what the old speckle was
    face = np.full_like(plate, 0.5)
    grained = match_grain(face, plate, mask, 1.0, seed=2)
    assert abs(noise_level(grained, mask) - noise_level(plate, mask)) < 0.25 * noise_level(plate, mask)
    assert match_grain(face, plate, mask, 0.0, seed=2) is face


def test_plate_detail_brings_back_only_what_is_finer_than_the_model() -> None:
    from doppel.merge.blend import plate_detail
    from tests.faces import astro

    plate = cv2.resize(astro(), (128, 128), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    soft = cv2.GaussianBlur(plate, (0, 0), 2.0)  # a face made at half the frame's resolution, roughly
    assert plate_detail(soft, plate, 0.0, 1.0) is soft
    kept = plate_detail(soft, plate, 1.0, 2.0)
    err_soft, err_kept = (float(np.abs(x - plate).mean()) for x in (soft, kept))
    assert err_kept < 0.6 * err_soft
    # Coarse structure stays the model's: a face of another colour keeps its colour.
    other = np.clip(soft * 0.5, 0, 1)
    assert abs(float(plate_detail(other, plate, 1.0, 2.0).mean()) - float(other.mean())) < 0.01
