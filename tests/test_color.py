"""Colour transfer, through the functions production runs: `transfer_image` (merge) and `reinhard_transfer`
(training's colour matching, and merge's rct), each mode against its defining statistics; mask shaping."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from skimage.color import rgb2lab

from doppel.color import linear_map, reinhard_transfer, rgb_to_lab, transfer_image
from doppel.merge.masks import combine, shape_mask


def samples(seed: int, mean: tuple[float, float, float], mix: np.ndarray, n: int = 4000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) @ mix * 0.08 + np.array(mean)
    return np.clip(x, 0.02, 0.98).astype(np.float32)


SRC = samples(0, (0.7, 0.5, 0.4), np.array([[1, 0.3, 0.1], [0, 0.8, 0.2], [0, 0, 0.5]]))
REF = samples(1, (0.4, 0.45, 0.6), np.array([[0.6, 0, 0.3], [0.2, 1.0, 0], [0, 0.3, 0.9]]))
FULL = np.ones((50, 80), np.float32)


def image(x: np.ndarray) -> np.ndarray:
    """4000 colour samples as a 50x80 image (the mask covers all of it)."""
    return x.reshape(50, 80, 3)


def transfer(mode: str) -> np.ndarray:
    return transfer_image(image(SRC), image(REF), FULL, mode).reshape(-1, 3)  # type: ignore[arg-type]


def lab(x: np.ndarray) -> np.ndarray:
    return rgb2lab(x.reshape(-1, 1, 3).astype(np.float64)).reshape(-1, 3)


def sliced_distance(a: np.ndarray, b: np.ndarray, seed: int = 9) -> float:
    rng = np.random.default_rng(seed)
    dirs = rng.normal(size=(64, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return float(np.mean([np.abs(np.sort(a @ d) - np.sort(b @ d)).mean() for d in dirs]))


def test_our_lab_agrees_with_scikit_image() -> None:
    rgb = np.random.default_rng(5).uniform(0, 1, (64, 64, 3))
    ours = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None].float())[0].permute(1, 2, 0).numpy()
    assert np.abs(ours - rgb2lab(rgb)).max() < 0.05  # L in [0, 100]: agreement to a twentieth of a unit


def test_rct_matches_lab_mean_and_deviation() -> None:
    out = transfer("rct")
    assert np.allclose(lab(out).mean(0), lab(REF).mean(0), atol=0.5)
    assert np.allclose(lab(out).std(0), lab(REF).std(0), rtol=0.03)


def test_training_and_merge_run_the_same_reinhard() -> None:
    """Training matches batches of faces on its device; merge one face. Same function, same numbers."""
    src = torch.from_numpy(image(SRC)).permute(2, 0, 1)[None]
    ref = torch.from_numpy(image(REF)).permute(2, 0, 1)[None]
    batched = reinhard_transfer(torch.cat([src, ref]), torch.cat([ref, src]))
    assert np.allclose(batched[0].permute(1, 2, 0).reshape(-1, 3).numpy(), transfer("rct"), atol=1e-5)


@pytest.mark.parametrize("mode", ["lct", "mkl"])
def test_linear_transfers_match_mean_and_covariance(mode: str) -> None:
    out = transfer(mode)
    assert np.allclose(out.mean(0), REF.mean(0), atol=2e-3)  # (a few samples are clipped to [0, 1])
    assert np.allclose(np.cov(out, rowvar=False), np.cov(REF, rowvar=False), atol=1e-4)


def test_mkl_moves_colours_least_among_covariance_matching_maps() -> None:
    moved = {mode: np.square(transfer(mode) - SRC).sum(1).mean() for mode in ("lct", "mkl")}
    assert moved["mkl"] <= moved["lct"] + 1e-9
    a = linear_map(SRC, REF, "mkl")
    assert np.allclose(a, a.T, atol=1e-6)  # the optimal-transport map between Gaussians is symmetric


@pytest.mark.parametrize("mode", ["idt", "sot"])
def test_distribution_transfers_match_the_whole_distribution(mode: str) -> None:
    before = sliced_distance(SRC, REF)
    after = sliced_distance(transfer(mode), REF)
    assert after < 0.15 * before


def test_image_transfer_recolours_only_by_the_masked_statistics() -> None:
    rng = np.random.default_rng(3)
    face = np.full((32, 32, 3), (0.8, 0.6, 0.5), np.float32) + rng.normal(0, 0.02, (32, 32, 3)).astype(np.float32)
    plate = np.full((32, 32, 3), (0.3, 0.4, 0.7), np.float32) + rng.normal(0, 0.03, (32, 32, 3)).astype(np.float32)
    plate[:, :8] = (1, 1, 0)  # outside the mask: must not count
    mask = np.zeros((32, 32), np.float32)
    mask[:, 8:] = 1
    for mode in ("rct", "lct", "mkl", "idt", "sot"):
        out = transfer_image(face, plate, mask, mode)  # type: ignore[arg-type]
        assert np.allclose(out[:, 8:].mean((0, 1)), plate[:, 8:].mean((0, 1)), atol=0.03), mode
    assert transfer_image(face, plate, mask, "none") is face


def test_mask_shaping_in_face_units() -> None:
    base = np.zeros((128, 128), np.float32)
    cv2.circle(base, (64, 64), 40, 1.0, -1)
    area = base.sum()
    assert shape_mask(base, 10, 0).sum() < 0.7 * area
    assert shape_mask(base, -10, 0).sum() > 1.3 * area
    soft = shape_mask(base, 0, 10)
    assert ((soft > 0.05) & (soft < 0.95)).sum() > 200  # a real gradient at the edge
    assert soft[base == 0].max() == 0  # feathering stays inside the mask
    other = np.zeros_like(base)
    other[:, :64] = 1
    assert combine(base, other, "intersect").sum() == pytest.approx(area / 2, rel=0.05)
    assert combine(base, other, "union").sum() == pytest.approx(other.sum() + area / 2, rel=0.05)
