"""Finding the watermark (watermark.py) in frames of any size, after mirroring, rotation, rescaling and cropping.

The frames of an excerpt are averaged in the canonical view (`watermark.canonical_residual`). For every
hypothesis (mirror, rotation, frame-relative x and y scale) the average is warped back into the embedder's
canonical coordinates and folded into one tile; the sync correlation at every cyclic offset (crop) is one FFT,
batched over hypotheses. The score is self-normalised (see watermark.py); each family of tests
(watermark.FAMILIES: the plain geometries at their one offset, upright crops at the offsets a crop can produce,
everything) has its own threshold, and together they account for every hypothesis and offset searched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import product

import cv2
import numpy as np

from doppel.provenance import watermark as wm

_OUT_TILES = 3
"""The warped canonical picture is 3 x 3 tiles: enough for the smallest scale and largest rotation searched."""
_BATCH = 256


@dataclass
class Detection:
    found: bool
    score: float
    """Self-normalised sync correlation (at most 32) in `family`, the family of tests that came nearest to
    (or furthest above) its threshold."""
    threshold: float
    """That family's threshold."""
    mirrored: bool
    rotation: float
    """Degrees."""
    scale: tuple[float, float]
    """Frame-relative tile size found, x and y (1.0: not cropped)."""
    shift: tuple[int, int]
    tag: int | None
    """The workspace tag when the payload's checksum holds, else None."""
    frames: int
    family: str = "any"
    """watermark.FAMILIES: `plain` (upright whole frame, mirrored or not), `zoom` or `any`."""
    scores: dict[str, float] = field(default_factory=dict)
    """The best score in each family."""


@lru_cache(maxsize=1)
def _filters() -> tuple[np.ndarray, np.ndarray]:
    """rfft2 of phi and of phi correlated with the sync impulses: (TILE, TILE // 2 + 1) complex64 each."""
    phi = np.fft.rfft2(wm._kernel())
    impulses = np.zeros((wm.TILE, wm.TILE))
    impulses[::wm.CELL, ::wm.CELL] = wm.signs()[0]
    return phi.astype(np.complex64), (phi * np.conj(np.fft.rfft2(impulses))).astype(np.complex64)


def hypotheses() -> list[tuple[bool, float, float, float]]:
    """Every (mirrored, rotation in degrees, x scale, y scale) searched: watermark.HYPOTHESES of them."""
    return list(product(wm.MIRRORS, wm.ROTATIONS, wm.AXIS_SCALES, wm.AXIS_SCALES))


def _matrix(rotation: float, sx: float, sy: float, aspect: float) -> np.ndarray:
    """2x3 map from the embedder's canonical coordinates (output, 3 x 3 tiles) to the suspect's (input):
    a rotation by `rotation` degrees in pixel space (`aspect` = suspect width / height) after the scales."""
    c, s = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    m = np.array([[c, -s / aspect], [s * aspect, c]]) @ np.diag([sx, sy])
    centre_out = np.full(2, _OUT_TILES * wm.TILE / 2)
    t = np.full(2, wm.CANON / 2) - m @ centre_out
    return np.hstack([m, t[:, None]])


def _fold(picture: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    size = _OUT_TILES * wm.TILE
    warped = cv2.warpAffine(picture, matrix, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return warped.reshape(_OUT_TILES, wm.TILE, _OUT_TILES, wm.TILE).sum((0, 2))


def _scores(folds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(B, TILE, TILE) float32 folded tiles -> best z per tile (B,), its offset (B, 2), the responses G
    (B, TILE, TILE) and z at every offset (B, TILE, TILE)."""
    phi, sync = _filters()
    spectrum = np.fft.rfft2(folds)
    both = np.fft.irfft2(np.stack([spectrum * sync, spectrum * phi]), s=folds.shape[1:])
    s, g = both[0], both[1]
    c = wm.CELL
    v = (g * g).reshape(len(folds), wm.CELLS, c, wm.CELLS, c).sum((1, 3))  # (B, c, c): by offset mod c
    z = s / np.sqrt(np.tile(v, (1, wm.CELLS, wm.CELLS)) + 1e-30)
    flat = z.reshape(len(folds), -1).argmax(1)
    best = z.reshape(len(folds), -1)[np.arange(len(folds)), flat]
    return best, np.stack(np.unravel_index(flat, z.shape[1:]), 1), g, z


PLAIN_SHIFT = int(_OUT_TILES * wm.TILE / 2 - wm.CANON / 2) % wm.TILE
"""The offset at which an upright, uncropped frame's tile lands (the fold's centre is the frame's)."""


def _is_zoom(h: tuple[bool, float, float, float]) -> bool:
    """Whether hypothesis `h` is an upright aspect-preserving crop (the `zoom` family, scored only at the
    offsets within watermark.zoom_reach of PLAIN_SHIFT; `plain` is scored at PLAIN_SHIFT only, see search)."""
    _, r, sx, sy = h
    return r == 0.0 and sx == sy and sx in wm.ZOOM_SCALES


def _zoom_best(zmap: np.ndarray, scale: float) -> tuple[float, tuple[int, int]]:
    """(TILE, TILE) z at every offset -> the best z within watermark.zoom_reach(scale) of PLAIN_SHIFT, its offset."""
    idx = (PLAIN_SHIFT + np.arange(-wm.zoom_reach(scale), wm.zoom_reach(scale) + 1)) % wm.TILE
    window = zmap[np.ix_(idx, idx)]
    i, j = np.unravel_index(int(window.argmax()), window.shape)
    return float(window[i, j]), (int(idx[i]), int(idx[j]))


def _read_tag(g: np.ndarray, shift: tuple[int, int]) -> int | None:
    a = np.roll(g, (-shift[0], -shift[1]), axis=(0, 1))[::wm.CELL, ::wm.CELL]
    sync = wm.signs()[0]
    a = a - (a * sync).sum() / sync.size * sync
    word = 0
    for pattern in wm.signs()[1:]:
        word = word << 1 | int((a * pattern).sum() > 0)
    tag, check = word >> wm.CHECK_BITS, word & ((1 << wm.CHECK_BITS) - 1)
    return tag if wm._checksum(tag) == check else None


def _ordered(prior: tuple[bool, float, float, float] | None) -> list[tuple[bool, float, float, float]]:
    """The hypotheses, nearest to `prior` (default: unmirrored, upright, uncropped) first."""
    m0, r0, x0, y0 = prior or (False, 0.0, 1.0, 1.0)
    step = math.log(wm.AXIS_SCALES[1] / wm.AXIS_SCALES[0])

    def distance(h: tuple[bool, float, float, float]) -> float:
        m, r, sx, sy = h
        return (10.0 * (m != m0) + abs(r - r0) / 1.25 + abs(math.log(sx / x0)) / step
                + abs(math.log(sy / y0)) / step)

    return sorted(hypotheses(), key=distance)


def search(average: np.ndarray, aspect: float, frames: int = 1, thresholds: dict[str, float] | None = None, *,
           exhaustive: bool = True, prior: tuple[bool, float, float, float] | None = None) -> Detection:
    """Search the hypotheses on a (CANON, CANON) float32 average of canonical residuals of frames whose
    width / height is `aspect`. With `exhaustive` False the search stops at the first batch in which a family
    scores above its threshold (the plain geometries first, then nearest `prior`); the false-positive bound is
    unchanged (it counts every test of every family)."""
    limits = wm.thresholds() if thresholds is None else thresholds
    flat = wm.whiten(average)
    pictures = {False: np.ascontiguousarray(flat), True: np.ascontiguousarray(flat[:, ::-1])}
    plain = [(m, 0.0, 1.0, 1.0) for m in wm.MIRRORS]
    queue = plain + [h for h in _ordered(prior) if h not in plain]
    # family -> (score, hypothesis, offset, responses)
    best: dict[str, tuple[float, tuple[bool, float, float, float], tuple[int, int], np.ndarray | None]] = {
        name: (-np.inf, queue[0], (PLAIN_SHIFT, PLAIN_SHIFT), None) for name in wm.FAMILIES}
    refined = False
    while queue:
        chunk, queue = queue[:_BATCH], queue[_BATCH:]
        folds = np.stack([_fold(pictures[m], _matrix(r, sx, sy, aspect)) for m, r, sx, sy in chunk])
        z, shifts, g, zmap = _scores(folds)
        for k, h in enumerate(chunk):
            if h in plain and zmap[k, PLAIN_SHIFT, PLAIN_SHIFT] > best["plain"][0]:
                best["plain"] = (float(zmap[k, PLAIN_SHIFT, PLAIN_SHIFT]), h, (PLAIN_SHIFT, PLAIN_SHIFT), g[k])
            if _is_zoom(h):
                score, at = _zoom_best(zmap[k], h[2])
                if score > best["zoom"][0]:
                    best["zoom"] = (score, h, at, g[k])
            if z[k] > best["any"][0]:
                best["any"] = (float(z[k]), h, (int(shifts[k][0]), int(shifts[k][1])), g[k])
        if not exhaustive and any(best[name][0] > limits[name] for name in wm.FAMILIES):
            if refined:
                break
            # Found: one more batch, the untested hypotheses nearest the best, to report its geometry well.
            top = max(wm.FAMILIES, key=lambda name: best[name][0] - limits[name])
            near = set(_ordered(best[top][1])[:_BATCH])
            queue = [h for h in queue if h in near]
            refined = True
    family = max(wm.FAMILIES, key=lambda name: best[name][0] - limits[name])
    score, (m, r, sx, sy), shift, responses = best[family]
    found = score > limits[family]
    tag = _read_tag(responses, shift) if found and responses is not None else None
    return Detection(bool(found), score, limits[family], m, r, (sx, sy), shift, tag, frames, family,
                     {name: round(best[name][0], 3) for name in wm.FAMILIES})


class Detector:
    """Accumulates frames (HxWx3 uint8 RGB or HxW luma, any size, all the same) and searches their average,
    each frame weighted by the bytes that coded it.

    Why: a codec spends its bits on what a frame adds to the frames it predicts from. A frame that mostly copies
    its references (a B-frame at a high quantiser, a P-frame in a pan) copies their mark too, shifted with the
    picture, and adds little evidence of its own; an intra frame, or one where much was coded, carries the mark
    as the codec kept it in that frame. Weighted by coded bytes, re-encoding at CRF 40 and mirror + 0.5x + CRF 35
    are found in all 31 development excerpts (30 each with equal weights; benchmarks/RESULTS.md, eighth
    session). The weights come from the file, not from the signs, so the average is still a fixed combination of
    pictures that do not carry the mark, and the score a unit-norm weighted sum of random signs: the bound on
    chance is unchanged. Frames whose coded size is unknown (images, raw frames) weigh the mean of the sizes
    seen so far, or 1 when none is known, so that a clip without sizes is a plain average."""

    def __init__(self) -> None:
        self.total = np.zeros((wm.CANON, wm.CANON), np.float64)
        self.weight = 0.0
        self.frames = 0
        self.aspect = 1.0
        self._coded = (0.0, 0)  # sum and count of the coded sizes seen

    def add(self, image: np.ndarray, coded_bytes: int | None = None) -> None:
        """Add a frame; `coded_bytes`: the size of the packet that coded it, when known."""
        if coded_bytes is not None and coded_bytes > 0:
            weight = float(coded_bytes)
            self._coded = (self._coded[0] + weight, self._coded[1] + 1)
        else:
            weight = self._coded[0] / self._coded[1] if self._coded[1] else 1.0
        self.total += weight * wm.canonical_residual(image)
        self.weight += weight
        self.aspect = image.shape[1] / image.shape[0]
        self.frames += 1

    def merge(self, other: Detector) -> None:
        """Pool another detector's frames into this one (the same weighting)."""
        self.total += other.total
        self.weight += other.weight
        self.frames += other.frames
        self._coded = (self._coded[0] + other._coded[0], self._coded[1] + other._coded[1])
        self.aspect = other.aspect

    def average(self) -> np.ndarray:
        """(CANON, CANON) float32 weighted mean canonical residual of the frames added."""
        return (self.total / max(self.weight, 1e-12)).astype(np.float32)

    def result(self, thresholds: dict[str, float] | None = None, *, exhaustive: bool = True,
               prior: tuple[bool, float, float, float] | None = None) -> Detection:
        return search(self.average(), self.aspect, self.frames, thresholds, exhaustive=exhaustive, prior=prior)
