"""An invisible, robust watermark: a tiled spread-spectrum pattern in the luma, detected by folding.

Design (ours): a 128x128-pixel tile of smooth pseudo-random noise (random +/-1 on a 3-pixel grid,
interpolated) is repeated over every frame and added to the luma at a few grey levels. The tile is the sum of
a *sync* pattern, which says "doppel made this" (60 % of the power: finding it is what matters), and 20
payload patterns whose signs carry 12 bits of the workspace's id and an 8-bit checksum (read when the mark is
strong enough; a failed checksum reports the tag as unreadable, a wrong tag passes it 1 time in 256). The
pattern sits at mid frequencies, so it survives H.264 and JPEG at ordinary qualities and a halving of the
picture size.

Detection folds every frame of an excerpt into one 128x128 tile (summing the high-passed picture modulo the
tile size), so the watermark adds up over frames while the picture averages out; cropping only shifts the
tile cyclically, which a circular cross-correlation with the sync pattern finds at any offset; resizing is
undone by trying a few scales. The score is the correlation peak in units of the correlation surface's own
spread (a z-score); see `false_positive_rate` for what a threshold means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

TILE = 128
CELL = 3
PAYLOAD_BITS = 12
CHECK_BITS = 8
STRENGTH = 2.4
"""Grey levels (of 255) of the pattern's standard deviation: PSNR about 40 dB."""
SCALES = (1.0, 0.5, 0.75, 1.25, 1.111, 0.625)
"""Picture scales tried at detection (1.25 and 1.111: 20 % or 10 % cropped off and zoomed back)."""
THRESHOLD = 7.0
SYNC_SHARE = 0.6
"""Share of the pattern's power in the sync pattern; the rest carries the payload."""
_SEED = 0x0D0BB1E


@lru_cache(maxsize=1)
def patterns() -> np.ndarray:
    """(1 + 20, TILE, TILE) float32 patterns, zero-mean and unit RMS: sync first, then payload bits."""
    rng = np.random.default_rng(_SEED)
    n = TILE // CELL
    out = []
    for _ in range(1 + PAYLOAD_BITS + CHECK_BITS):
        cells = rng.choice([-1.0, 1.0], size=(n, n)).astype(np.float32)
        # Periodic smooth interpolation: tile the cells 3x3, resize, keep the middle (seamless when tiled).
        big = cv2.resize(np.tile(cells, (3, 3)), (3 * TILE, 3 * TILE), interpolation=cv2.INTER_CUBIC)
        p = big[TILE:2 * TILE, TILE:2 * TILE]
        p = p - p.mean()
        out.append(p / p.std())
    return np.stack(out).astype(np.float32)


def _checksum(value: int) -> int:
    """CRC-8 (polynomial 0x07) of a payload value (as two bytes)."""
    crc = 0
    for byte in value.to_bytes(2, "big"):
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def payload_bits(tag: int) -> np.ndarray:
    """+/-1 signs for a PAYLOAD_BITS tag followed by its checksum."""
    tag &= (1 << PAYLOAD_BITS) - 1
    word = tag << CHECK_BITS | _checksum(tag)
    return np.array([1.0 if word >> (PAYLOAD_BITS + CHECK_BITS - 1 - i) & 1 else -1.0
                     for i in range(PAYLOAD_BITS + CHECK_BITS)], np.float32)


def workspace_tag(workspace_id: str) -> int:
    """The PAYLOAD_BITS bits of a workspace id carried by the watermark (its first hex digits)."""
    return int(workspace_id[:4], 16) >> (16 - PAYLOAD_BITS) if len(workspace_id) >= 4 else 0


@lru_cache(maxsize=8)
def _tile(tag: int) -> np.ndarray:
    p = patterns()
    bits = payload_bits(tag)
    share = math.sqrt((1 - SYNC_SHARE) / len(bits))
    t = math.sqrt(SYNC_SHARE) * p[0] + share * np.tensordot(bits, p[1:], axes=1)
    return (t / t.std()).astype(np.float32)


@lru_cache(maxsize=8)
def _frame_pattern(tag: int, height: int, width: int) -> np.ndarray:
    reps = (math.ceil(height / TILE), math.ceil(width / TILE))
    return np.tile(_tile(tag), reps)[:height, :width] * STRENGTH


def embed(image: np.ndarray, tag: int) -> np.ndarray:
    """Watermark an HxWx3 uint8 RGB frame (the same luma change on all three channels)."""
    h, w = image.shape[:2]
    delta = _frame_pattern(tag, h, w)[..., None]
    return np.clip(image.astype(np.float32) + delta + 0.5, 0, 255).astype(np.uint8)


def _residual(gray: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """High-passed, contrast-normalised picture: keeps the pattern's band (as seen at `scale`), flattens the
    picture."""
    low = cv2.GaussianBlur(gray, (0, 0), 2.25 * scale)
    fine = cv2.GaussianBlur(gray, (0, 0), max(0.4, 0.525 * scale))
    r = fine - low
    local = np.sqrt(cv2.GaussianBlur(r * r, (0, 0), 6.0 * scale)) + 2.0
    return np.clip(r / local, -3, 3)


@dataclass
class Detection:
    found: bool
    score: float
    """z-score of the sync correlation peak (best scale)."""
    scale: float
    shift: tuple[int, int]
    tag: int | None
    """The workspace tag when the payload's checksum holds, else None."""
    frames: int


class Detector:
    """Accumulates frames (any size) and decides; pools evidence over all frames given.

    At scale s the tile repeats every round(TILE * s) pixels of the suspect picture, so each frame is
    high-passed once and folded at each candidate period; the folded tiles are brought back to TILE pixels
    only when the decision is made."""

    def __init__(self, scales: tuple[float, ...] = SCALES) -> None:
        self.periods = {s: int(round(TILE * s)) for s in scales}
        self.acc = {s: np.zeros((p, p), np.float64) for s, p in self.periods.items()}
        self.count = {s: np.zeros((p, p), np.float64) for s, p in self.periods.items()}
        self.frames = 0

    def add(self, image: np.ndarray) -> None:
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        residuals = {band: _residual(gray, band) for band in {min(1.0, s) for s in self.periods}}
        h, w = gray.shape
        for s, period in self.periods.items():
            r = residuals[min(1.0, s)]
            ph, pw = math.ceil(h / period) * period, math.ceil(w / period) * period
            padded = np.zeros((ph, pw), np.float64)
            padded[:h, :w] = r
            mask = np.zeros((ph, pw), np.float64)
            mask[:h, :w] = 1
            self.acc[s] += padded.reshape(ph // period, period, pw // period, period).sum((0, 2))
            self.count[s] += mask.reshape(ph // period, period, pw // period, period).sum((0, 2))
        self.frames += 1

    def result(self) -> Detection:
        p = patterns()
        best = Detection(False, 0.0, 1.0, (0, 0), None, self.frames)
        for s, period in self.periods.items():
            folded: np.ndarray = self.acc[s] / np.maximum(self.count[s], 1)
            if period != TILE:
                folded = cv2.resize(folded, (TILE, TILE), interpolation=cv2.INTER_LINEAR)
            folded = folded - folded.mean()
            # Circular cross-correlation with the sync pattern at every offset at once.
            surface = np.real(np.fft.ifft2(np.fft.fft2(folded) * np.conj(np.fft.fft2(p[0]))))
            med = np.median(surface)
            spread = 1.4826 * np.median(np.abs(surface - med)) + 1e-12
            z = (surface - med) / spread
            dy, dx = np.unravel_index(int(np.argmax(z)), z.shape)
            if z[dy, dx] > best.score:
                aligned = np.roll(folded, (-dy, -dx), axis=(0, 1))
                signs = np.sign(np.tensordot(p[1:], aligned, axes=([1, 2], [0, 1])))
                word = 0
                for bit in signs:
                    word = word << 1 | int(bit > 0)
                tag, check = word >> CHECK_BITS, word & 0xFF
                best = Detection(bool(z[dy, dx] > THRESHOLD), float(z[dy, dx]), s, (int(dy), int(dx)),
                                 tag if _checksum(tag) == check else None, self.frames)
        return best


def false_positive_rate(threshold: float = THRESHOLD, scales: int = len(SCALES)) -> float:
    """Chance that an unmarked excerpt scores above `threshold`: a union bound over the offsets and scales
    searched, each a standard normal tail under the null hypothesis."""
    tail = 0.5 * math.erfc(threshold / math.sqrt(2))
    return min(1.0, scales * TILE * TILE * tail)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)
