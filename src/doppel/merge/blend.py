"""Putting the face into the plate: alpha or Poisson blending, histogram matching, sharpness and grain."""

from __future__ import annotations

import cv2
import numpy as np


def alpha_blend(plate: np.ndarray, face: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """HxWx3 float32 images in [0, 1], alpha HxW in [0, 1]."""
    a = alpha[..., None]
    return face * a + plate * (1 - a)


def seamless(plate: np.ndarray, face: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Poisson (seamless) cloning of the face into the plate inside the mask, then the feathered alpha on top
    so the edge stays soft. Float32 HxWx3 in [0, 1]."""
    binary = (alpha > 0.5).astype(np.uint8) * 255
    if binary.sum() == 0:
        return plate
    ys, xs = np.nonzero(binary)
    # seamlessClone needs the mask away from the image border.
    binary[[0, -1], :] = 0
    binary[:, [0, -1]] = 0
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    center = (int((x0 + x1 + 1) // 2), int((y0 + y1 + 1) // 2))
    p8 = (np.clip(plate, 0, 1) * 255).astype(np.uint8)
    f8 = (np.clip(face, 0, 1) * 255).astype(np.uint8)
    try:
        cloned = cv2.seamlessClone(f8, p8, binary, center, cv2.NORMAL_CLONE).astype(np.float32) / 255
    except cv2.error:
        return alpha_blend(plate, face, alpha)
    return alpha_blend(plate, cloned, alpha)


def histogram_match(face: np.ndarray, plate: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-channel histogram matching of the face to the plate inside the mask (HxWx3 float in [0, 1])."""
    inside = mask > 0.5
    if inside.sum() < 16:
        return face
    out = face.copy()
    for c in range(3):
        src = face[..., c][inside]
        ref = np.sort(plate[..., c][inside])
        ranks = np.argsort(np.argsort(src))
        out[..., c][inside] = ref[(ranks * (len(ref) - 1) / max(len(src) - 1, 1)).astype(int)]
    return out


def sharpen(face: np.ndarray, amount: float, size: int) -> np.ndarray:
    """Unsharp mask (amount > 0) or soften (amount < 0); `amount` in [-1, 1], radius scaled to the face."""
    if amount == 0:
        return face
    sigma = max(0.5, size / 128)
    blurred = cv2.GaussianBlur(face, (0, 0), sigmaX=sigma)
    if amount > 0:
        return np.clip(face + amount * (face - blurred), 0, 1)
    return face + (-amount) * (blurred - face)


def noise_level(image: np.ndarray, mask: np.ndarray) -> float:
    """Standard deviation of the fine detail (image minus its 3x3 median) inside the mask: grain and noise."""
    gray = cv2.cvtColor((np.clip(image, 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
    detail = gray - cv2.medianBlur(gray.astype(np.uint8), 3).astype(np.float32)
    inside = mask > 0.5
    return float(detail[inside].std() / 255) if inside.any() else 0.0


def _fine_detail(image: np.ndarray) -> np.ndarray:
    """Luma minus its 3x3 median: the plate's grain and noise (HxW float32, about zero-mean)."""
    gray = cv2.cvtColor((np.clip(image, 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    return (gray.astype(np.float32) - cv2.medianBlur(gray, 3).astype(np.float32)) / 255


def grain_like(plate: np.ndarray, mask: np.ndarray, std: float, seed: int) -> np.ndarray:
    """HxW float32 grain with the amplitude spectrum of the plate's own fine detail inside `mask` (so a
    compressed or soft plate gets soft, clumpy grain, not pixel speckle), scaled to standard deviation `std`.
    plate: HxWx3 float32 in [0, 1]; mask: HxW in [0, 1]."""
    residual = _fine_detail(plate) * (mask > 0.5)
    amplitude = np.abs(np.fft.rfft2(residual))
    # Smoothing the amplitude over neighbouring frequencies keeps the spectrum's shape but not the plate's
    # particular pattern.
    amplitude = cv2.blur(amplitude.astype(np.float32), (3, 3))
    white = np.random.default_rng(seed).normal(0, 1, residual.shape)
    shaped = np.fft.irfft2(np.fft.rfft2(white) * amplitude, s=residual.shape).astype(np.float32)
    sd = float(shaped.std())
    return shaped * (std / sd) if sd > 0 else np.zeros_like(shaped)


def match_grain(face: np.ndarray, plate: np.ndarray, mask: np.ndarray, strength: float, seed: int) -> np.ndarray:
    """Add grain shaped like the plate's (`grain_like`) until the face's fine-detail level reaches the plate's
    (times `strength`). face, plate: HxWx3 float32 in [0, 1]; mask: HxW in [0, 1]."""
    if strength <= 0:
        return face
    missing = strength * noise_level(plate, mask) ** 2 - noise_level(face, mask) ** 2
    if missing <= 0:
        return face
    grain = grain_like(plate, mask, 1.0, seed)
    # Scale so that the grain's own fine detail (what `noise_level` sees of it) makes up what is missing.
    inside = mask > 0.5
    fine = float((grain - cv2.medianBlur(grain, 3))[inside].std()) if inside.any() else 0.0
    if fine <= 0:
        return face
    return np.clip(face + grain[..., None] * float(np.sqrt(missing) / fine), 0, 1)


def plate_detail(face: np.ndarray, plate: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    """Add `amount` of the plate's detail finer than `sigma` pixels (the frequencies a model working at a lower
    resolution than the frame cannot make) to the face. face, plate: HxWx3 float32 in [0, 1] over the same
    region; the face's own content at those frequencies is left as it is."""
    if amount <= 0 or sigma <= 0:
        return face
    fine = plate - cv2.GaussianBlur(plate, (0, 0), sigma)
    return np.clip(face + amount * fine, 0, 1)
