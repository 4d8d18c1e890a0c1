"""Image measures of a merged face against its plate: detail that noise cannot fake, and the seam at the mask edge.

Detail is the mid-frequency energy inside the face that persists from one frame to the next. Both frames are
brought into the face's aligned crop (so the face's own motion is taken out), band-passed (a difference of
Gaussians), and multiplied point by point: structure that stays put adds up, while noise and grain, drawn afresh
in every frame, multiply to zero on average. So adding grain or noise cannot raise the figure (a test proves it),
and a sharper render of the true face does. The same is measured on the plate, and the report gives the ratio.

The seam is the edge that compositing adds: the root-mean-square gradient of (merged - plate) in a band around
the face mask's outline, relative to the plate's own there. A clean blend changes smoothly (near 0); a visible cut or a
colour step gives a large value.
"""

from __future__ import annotations

import cv2
import numpy as np

DETAIL_SIZE = 128
"""Side of the aligned crop the detail is measured in (pixels)."""
BAND = (1.5, 4.0)
"""Gaussian sigmas (crop pixels) of the band-pass: a 128 px whole-face crop's mid frequencies."""


def gray(image: np.ndarray) -> np.ndarray:
    """HxW float32 luma in [0, 1] from an HxWx3 uint8 RGB image."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255


def band_pass(image: np.ndarray, band: tuple[float, float] = BAND) -> np.ndarray:
    """Difference of Gaussians of an HxW float32 image: the detail between the two scales (same shape)."""
    return (cv2.GaussianBlur(image, (0, 0), band[0], borderType=cv2.BORDER_REFLECT)
            - cv2.GaussianBlur(image, (0, 0), band[1], borderType=cv2.BORDER_REFLECT))


def aligned_band(frame: np.ndarray, to_crop: np.ndarray, size: int = DETAIL_SIZE) -> np.ndarray:
    """Band-passed luma of the face's aligned crop. frame: HxWx3 uint8 RGB; to_crop: 2x3 frame -> crop matrix
    for a crop of `size` pixels. Returns (size, size) float32."""
    crop = cv2.warpAffine(frame, to_crop, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return band_pass(gray(crop))


def coherent_energy(previous: np.ndarray, current: np.ndarray, mask: np.ndarray) -> float:
    """Mean product of two band-passed crops inside `mask` ((size, size) bool): the detail energy that the two
    frames share. Independent noise in either frame contributes zero on average."""
    if not mask.any():
        return float("nan")
    return float((previous * current)[mask].mean())


def detail_ratio(merged_energy: np.ndarray, plate_energy: np.ndarray) -> float:
    """Overall detail of the merged face relative to the plate's, from per-frame coherent energies (T,) (NaN
    where unmeasured): the ratio of the sums, so frames with little detail weigh little."""
    ok = np.isfinite(merged_energy) & np.isfinite(plate_energy)
    total = float(np.clip(plate_energy[ok], 0, None).sum())
    return float(np.clip(merged_energy[ok], 0, None).sum()) / total if total > 0 else float("nan")


def edge_band(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels within `width` of the outline of an HxW bool mask: HxW bool."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    m = mask.astype(np.uint8)
    return (cv2.dilate(m, kernel) > 0) & ~(cv2.erode(m, kernel) > 0)


def _gradient(image: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt(gx * gx + gy * gy)


def seam_strength(merged: np.ndarray, plate: np.ndarray, mask: np.ndarray, width: int) -> float:
    """RMS gradient of the change compositing made, in a band of `width` pixels around the mask's outline, over the
    plate's mean gradient there. merged, plate: HxWx3 uint8 RGB; mask: HxW bool (the face region)."""
    band = edge_band(mask, max(1, width))
    if not band.any():
        return float("nan")
    g_plate = gray(plate)
    # Root-mean-square gradients: a step concentrated at the outline counts more than the same change spread
    # over a feathered edge (their mean gradients would be equal).
    change = _gradient(cv2.GaussianBlur(gray(merged) - g_plate, (0, 0), 1.0))
    reference = float(np.sqrt((_gradient(g_plate)[band] ** 2).mean()))
    return float(np.sqrt((change[band] ** 2).mean())) / max(reference, 1e-3)
