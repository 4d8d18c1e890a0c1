"""Image measures of a merged face against its plate: detail that noise cannot fake, and the seam at the mask edge.

Detail is the share of the plate's mid-frequency structure inside the face that the merged face reproduces.
Both are brought into the face's aligned crop and band-passed (a difference of Gaussians); the figure is the
projection of the merged band onto the plate's, sum(B_merged * B_plate) / sum(B_plate^2) over the face. Noise
and grain are independent of the plate and add zero on average, and so does a fixed pattern of the model's own
(an untrained decoder's checkerboard); a blurred face reproduces a fraction, the plate itself exactly 1, and a
sharper render of the aligned face more. A first version multiplied consecutive frames' bands instead (noise
cancels there too), but a soft face with a steady checkerboard scored 0.70 on it: only the plate knows which
structure belongs.

Detail so defined is bound by identity as much as by sharpness: the plate's mid frequencies are where its person
lives (eyelids, brows, lip edges, glasses rims), and another person's face, however sharp, puts its structure
elsewhere. A real photograph of the source warped onto the target's landmarks keeps 0.33 of deadline's; the
target's own face from another frame, warped the same way, 0.86 (`benchmarks/bench_quality.py ceiling`).

Sharpness asks only whether the face is soft, whoever it is: the fine-band energy (SHARP_BAND) that holds still
from one frame to the next, relative to the plate's, sum(B_t * B_t-1) / sum(P_t * P_t-1) with both frames
brought into the current face's crop. Noise and grain are fresh in every frame and cancel in the product; a blur lowers
it as it lowers the plate's band; a sharp face of another person keeps it. What it cannot tell from detail is a
steady pattern of the model's own at the face's frequencies: `detail` answers that, so both are reported.

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
SHARP_BAND = (1.0, 2.0)
"""The band of sharpness: the finest a 128 px model draws, where a face looks soft or not. In the coarser BAND a
swap can hold the plate's energy while looking soft: on deadline, a 10-minute cpu-128 swap holds 0.89 of it
(darker eye hollows and shading than the plate's add energy there) but 0.48 in this band, where the plate
blurred by a Gaussian of sigma 1.5 frame pixels holds 0.46 and a real photograph of the source 0.64."""


def gray(image: np.ndarray) -> np.ndarray:
    """HxW float32 luma in [0, 1] from an HxWx3 uint8 RGB image."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255


def band_pass(image: np.ndarray, band: tuple[float, float] = BAND) -> np.ndarray:
    """Difference of Gaussians of an HxW float32 image: the detail between the two scales (same shape)."""
    return (cv2.GaussianBlur(image, (0, 0), band[0], borderType=cv2.BORDER_REFLECT)
            - cv2.GaussianBlur(image, (0, 0), band[1], borderType=cv2.BORDER_REFLECT))


def aligned_band(frame: np.ndarray, to_crop: np.ndarray, size: int = DETAIL_SIZE,
                 band: tuple[float, float] = BAND) -> np.ndarray:
    """Band-passed luma of the face's aligned crop. frame: HxWx3 uint8 RGB; to_crop: 2x3 frame -> crop matrix
    for a crop of `size` pixels. Returns (size, size) float32."""
    crop = cv2.warpAffine(frame, to_crop, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return band_pass(gray(crop), band)


def plate_projection(merged: np.ndarray, plate: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(sum of B_merged * B_plate, sum of B_plate^2) inside `mask` ((size, size) bool, or float weights in
    [0, 1]), for band-passed crops (size, size) float32: their ratio is the frame's detail; sums over frames
    give the shot's."""
    weight = mask.astype(np.float32)
    if not (weight > 0).any():
        return float("nan"), float("nan")
    return float((weight * merged * plate).sum()), float((weight * plate * plate).sum())


def aligned_gray(frame: np.ndarray, to_crop: np.ndarray, size: int = DETAIL_SIZE) -> np.ndarray:
    """Luma of the face's aligned crop, (size, size) float32 in [0, 1] (frame: HxWx3 uint8 RGB)."""
    return gray(cv2.warpAffine(frame, to_crop, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))


def steady_energy(merged: tuple[np.ndarray, np.ndarray], plate: tuple[np.ndarray, np.ndarray],
                  weight: tuple[np.ndarray, np.ndarray]) -> tuple[float, float]:
    """The fine-band energy that a frame shares with the one before it, for the merged shot and for the plate:
    sum(B_now * B_before) over the face. Each argument is (now, before): luma crops (size, size) float32 of both
    frames in the current face's crop, and the weights of each frame's pixels in [0, 1]. The previous frame is
    first moved by the plate's own motion between the two (phase correlation), so a moving head does not cancel
    the plate's fine detail against itself; the merged face moves with the plate and gets the same shift."""
    window = cv2.createHanningWindow(plate[0].shape[::-1], cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(plate[1], plate[0], window)
    shift = np.array([[1, 0, dx], [0, 1, dy]], np.float64)
    size = plate[0].shape[::-1]

    def moved(image: np.ndarray, border: int) -> np.ndarray:
        return cv2.warpAffine(image, shift, size, flags=cv2.INTER_LINEAR, borderMode=border)

    w = np.minimum(weight[0], moved(weight[1].astype(np.float32), cv2.BORDER_CONSTANT))
    out = []
    for now, before in (merged, plate):
        a = band_pass(now, SHARP_BAND)
        b = band_pass(moved(before, cv2.BORDER_REFLECT), SHARP_BAND)
        out.append(float((w * a * b).sum()))
    return out[0], out[1]


def sharpness(merged: np.ndarray, plate: np.ndarray) -> float:
    """The shot's sharpness from per-frame `steady_energy` sums (T,) of the merged frames and of the plate (NaN
    where unmeasured): the ratio of their totals (1 for the plate itself; 0.46 for deadline's plate blurred by a
    Gaussian of sigma 1.5 frame pixels), so frames with little detail weigh little."""
    ok = np.isfinite(merged) & np.isfinite(plate)
    total = float(plate[ok].sum())
    return max(0.0, float(merged[ok].sum()) / total) if total > 0 else float("nan")


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
