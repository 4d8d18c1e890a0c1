"""Track a region that moves on its own (a hand, a microphone), not with the face: for label propagation.

A hand sliding over a cheek is not carried by the face's landmarks, and optical flow does not hold it either
when it has little texture of its own (flow inside a flat, skin-coloured region says "nothing moves"; measured
on the generated set of benchmarks/bench_mask.py: IoU 0.0 after 15 frames). What does hold it is how the
region differs from its surroundings: its colours (a likelihood ratio of the region's colour histogram against
a ring around it, learnt on the previous frame) and its outline (colour edges along the polygon). Each step
searches the similarity transform (translation from a constant-velocity guess, then translation and rotation
refined) that maximises

    score = mean over the polygon of log(p(colour | region) / p(colour | ring)) + EDGE_WEIGHT * mean edge
            strength along its outline

on the full frames. doppel.occlusion.propagate runs this beside the face-attached carry and keeps, per
polygon, the motion that explains the region better.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

EDGE_WEIGHT = 2.0     # measured on the generated set: 1 drifts on flat regions, 4-5 jumps to other edges
SEARCH = 8            # pixels either side of the constant-velocity guess, coarse grid step 2
REFINE = 3            # refinement rounds of +-1 px and +-2 degrees
ROTATE_DEG = 2.0
L_BINS, AB_BINS = 8, 16
CLIP = 3.0            # bound on the colour log-ratio, so one rare colour does not decide
EDGE_SCALE = 270.0    # a strong colour edge (the 99th percentile of Sobel magnitude in Lab on the dev clips)


@dataclass(frozen=True)
class Window:
    """A rectangle of the frame (x0, y0) - (x1, y1), exclusive end."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def size(self) -> tuple[int, int]:
        return self.x1 - self.x0, self.y1 - self.y0


def _window(points: np.ndarray, margin: float, shape: tuple[int, int]) -> Window:
    h, w = shape
    lo = np.floor(points.min(0) - margin).astype(int)
    hi = np.ceil(points.max(0) + margin).astype(int)
    return Window(max(0, int(lo[0])), max(0, int(lo[1])), min(w, int(hi[0])), min(h, int(hi[1])))


def _quantise(image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB -> HxW int32 colour bins (Lab: L in L_BINS, a and b in AB_BINS each)."""
    lab = cv2.cvtColor(cv2.GaussianBlur(image, (0, 0), 1.0), cv2.COLOR_RGB2LAB)
    return ((lab[..., 0].astype(np.int32) * L_BINS // 256) * AB_BINS * AB_BINS
            + (lab[..., 1].astype(np.int32) * AB_BINS // 256) * AB_BINS
            + lab[..., 2].astype(np.int32) * AB_BINS // 256)


def _edges(image: np.ndarray) -> np.ndarray:
    """Colour edge strength of an RGB uint8 image: HxW float32, 1 = a strong edge (EDGE_SCALE)."""
    lab = cv2.cvtColor(cv2.GaussianBlur(image, (0, 0), 1.0), cv2.COLOR_RGB2LAB).astype(np.float32)
    total = np.zeros(image.shape[:2], np.float32)
    for c in range(3):
        total += cv2.Sobel(lab[..., c], cv2.CV_32F, 1, 0) ** 2 + cv2.Sobel(lab[..., c], cv2.CV_32F, 0, 1) ** 2
    return np.sqrt(total) / EDGE_SCALE


def _fill(points: np.ndarray, win: Window) -> np.ndarray:
    """The polygon (N, 2 frame pixels) filled in the window: (h, w) float32 in {0, 1} (anti-aliased edge)."""
    mask = np.zeros(win.size[::-1], np.uint8)
    pts = np.round((points - (win.x0, win.y0)) * 16).astype(np.int32)
    cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA, 4)
    return mask.astype(np.float32) / 255


def outline_samples(points: np.ndarray, n: int = 200) -> np.ndarray:
    """`n` points evenly spaced along a closed polygon's outline: (n, 2)."""
    p = np.vstack([points, points[:1]])
    seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0, cum[-1], n, endpoint=False)
    idx = np.clip(np.searchsorted(cum, t, side="right") - 1, 0, len(seg) - 1)
    frac = (t - cum[idx]) / np.maximum(seg[idx], 1e-9)
    out: np.ndarray = p[idx] + (p[idx + 1] - p[idx]) * frac[:, None]
    return out


class RegionScore:
    """How well a polygon in `frame` outlines the region that `points` outlined in `previous` (see the module
    docstring). frames: HxWx3 uint8 RGB; points: (N, 2) frame pixels."""

    def __init__(self, previous: np.ndarray, points: np.ndarray, frame: np.ndarray, reach: float) -> None:
        shape = frame.shape[:2]
        area = max(float(cv2.contourArea(points.astype(np.float32))), 1.0)
        ring = max(3.0, 0.5 * np.sqrt(area))
        # The colour model, learnt on the previous frame: inside the polygon against a ring around it.
        win = _window(points, ring + 3, shape)
        q = _quantise(previous[win.y0:win.y1, win.x0:win.x1])
        inside = _fill(points, win) > 0.5
        grown = inside.astype(np.uint8)
        outer = cv2.dilate(grown, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * int(ring) + 1,) * 2)) > 0
        ring_px = outer & ~(cv2.dilate(grown, np.ones((5, 5), np.uint8)) > 0)
        n = L_BINS * AB_BINS * AB_BINS
        p_in = (np.bincount(q[inside], minlength=n) + 1.0) / (inside.sum() + n)
        p_out = (np.bincount(q[ring_px], minlength=n) + 1.0) / (ring_px.sum() + n)
        self.log_ratio = np.clip(np.log(p_in / p_out), -CLIP, CLIP).astype(np.float32)
        # The current frame, around everywhere the search may put the polygon.
        self.win = _window(points, reach + 2, shape)
        crop = frame[self.win.y0:self.win.y1, self.win.x0:self.win.x1]
        self.ratio = self.log_ratio[_quantise(crop)]
        self.edges = _edges(crop)
        self.area = area

    def __call__(self, points: np.ndarray) -> float:
        colour = float((self.ratio * _fill(points, self.win)).sum()) / self.area
        pts = outline_samples(points) - (self.win.x0, self.win.y0)
        h, w = self.edges.shape
        xi = np.clip(np.round(pts[:, 0]).astype(int), 0, w - 1)
        yi = np.clip(np.round(pts[:, 1]).astype(int), 0, h - 1)
        return colour + EDGE_WEIGHT * float(self.edges[yi, xi].mean())


def _similar(points: np.ndarray, dx: float, dy: float, degrees: float) -> np.ndarray:
    c = points.mean(0)
    m = np.asarray(cv2.getRotationMatrix2D((float(c[0]), float(c[1])), degrees, 1.0), np.float64)
    m[:, 2] += np.array([dx, dy])
    moved: np.ndarray = points @ m[:, :2].T + m[:, 2]
    return moved


def track_step(previous: np.ndarray, frame: np.ndarray, points: np.ndarray, velocity: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, float]:
    """One frame of tracking: the polygon (N, 2 frame pixels in `previous`) in `frame`, the translation it
    made (2,) (the next step's guess), and its score there."""
    score = RegionScore(previous, points, frame, SEARCH + 2 * REFINE + float(np.abs(velocity).max()))
    best = (-np.inf, 0.0, 0.0, 0.0)
    for dx in range(-SEARCH, SEARCH + 1, 2):
        for dy in range(-SEARCH, SEARCH + 1, 2):
            tx, ty = velocity[0] + dx, velocity[1] + dy
            s = score(points + (tx, ty))
            if s > best[0]:
                best = (s, tx, ty, 0.0)
    for _ in range(REFINE):
        _, bx, by, ba = best
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for da in (-ROTATE_DEG, 0.0, ROTATE_DEG):
                    s = score(_similar(points, bx + dx, by + dy, ba + da))
                    if s > best[0]:
                        best = (s, bx + dx, by + dy, ba + da)
    s, tx, ty, deg = best
    return _similar(points, tx, ty, deg), np.array([tx, ty]), s


def track_polygon(frames: list[np.ndarray], points: np.ndarray) -> tuple[list[np.ndarray], list[float]]:
    """A polygon drawn on frames[0] ((N, 2) frame pixels) followed through frames[1:] (HxWx3 uint8 RGB) as a
    region moving on its own: its outline in each of frames[1:] and the score of each step."""
    out, scores = [], []
    velocity = np.zeros(2)
    current = np.asarray(points, np.float64)
    for k in range(1, len(frames)):
        current, velocity, s = track_step(frames[k - 1], frames[k], current, velocity)
        out.append(current)
        scores.append(s)
    return out, scores


def region_score(previous: np.ndarray, points_before: np.ndarray, frame: np.ndarray, points: np.ndarray
                 ) -> float:
    """The score (as `track_step` maximises it) of `points` in `frame` for the region `points_before` outlined
    in `previous`: how another motion's guess for the region compares with the tracker's."""
    reach = float(np.abs(points.mean(0) - points_before.mean(0)).max()) + 4
    return RegionScore(previous, points_before, frame, reach)(points)
