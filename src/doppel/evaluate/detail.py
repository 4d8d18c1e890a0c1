"""Image measures of a merged face against its plate: detail that noise cannot fake, and the seam at the mask edge.

Detail is the share of the plate's mid-frequency structure inside the face that the merged face reproduces.
Both are brought into the face's aligned crop and band-passed (a difference of Gaussians); the figure is the
projection of the merged band onto the plate's, sum(B_merged * B_plate) / sum(B_plate^2) over the face. Noise
and grain are independent of the plate and add zero on average, and so does a fixed pattern of the model's own
(an untrained decoder's checkerboard); a blurred face reproduces a fraction, the plate itself exactly 1, and a
sharper render of the aligned face more. A first version multiplied consecutive frames' bands instead (noise
cancels there too), but a soft face with a steady checkerboard scored 0.70 on it: only the plate knows which
structure belongs.

The seam is the edge that compositing adds: the root-mean-square gradient of (merged - plate) in a band around
the face mask's outline, relative to the plate's own there. A clean blend changes smoothly (near 0); a visible
cut or a colour step gives a large value.
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


def plate_projection(merged: np.ndarray, plate: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(sum of B_merged * B_plate, sum of B_plate^2) inside `mask` ((size, size) bool, or float weights in
    [0, 1]), for band-passed crops (size, size) float32: their ratio is the frame's detail; sums over frames
    give the shot's."""
    weight = mask.astype(np.float32)
    if not (weight > 0).any():
        return float("nan"), float("nan")
    return float((weight * merged * plate).sum()), float((weight * plate * plate).sum())


def detail_ratio(shared: np.ndarray, plate_energy: np.ndarray) -> float:
    """The shot's detail from per-frame sums (T,) of `plate_projection` (NaN where unmeasured): the ratio of
    the sums, so frames with little detail in the plate weigh little."""
    ok = np.isfinite(shared) & np.isfinite(plate_energy)
    total = float(plate_energy[ok].sum())
    return float(shared[ok].sum()) / total if total > 0 else float("nan")


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
