"""A generated ground-truth set for the occlusion mask: occluders moving over a development clip's face.

Written independently of doppel.occlusion.synth (which makes the training examples), so the benchmark does
not test the generator against itself: other shapes (a hand drawn as one outline, a microphone with a
highlight, a patch of another clip's background), real textures from other clips, and motion over time.
Every frame's occluder mask is known exactly (frame pixels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from doppel.media import MediaReader, probe

SUB = 16


@dataclass
class Occluded:
    frames: list[np.ndarray]        # HxWx3 uint8 RGB, occluders composited
    masks: list[np.ndarray]         # HxW uint8 {0, 255}: the occluder
    kinds: list[str]                # which occluder is in each frame ("" for none)


def read_frames(path: Path, count: int, start: int = 0) -> list[np.ndarray]:
    with MediaReader(probe(path)) as reader:
        return [reader[i] for i in range(start, start + count)]


def hand_outline(centre: np.ndarray, size: float, angle: float) -> np.ndarray:
    """A flat hand seen from the back, fingers together and thumb out, as one polygon (N, 2)."""
    # Unit hand: palm from y=0 (wrist) to y=-1, fingers to y=-1.9, thumb to the left.
    pts = [(-0.45, 0.6), (-0.5, 0.0), (-0.85, -0.45), (-0.95, -0.65), (-0.8, -0.7), (-0.45, -0.45),
           (-0.5, -1.0), (-0.48, -1.75), (-0.3, -1.85), (-0.22, -1.2), (-0.15, -1.95), (0.05, -1.95),
           (0.08, -1.25), (0.15, -1.9), (0.33, -1.85), (0.32, -1.15), (0.42, -1.6), (0.55, -1.55),
           (0.5, -0.9), (0.5, 0.0), (0.45, 0.6)]
    p = np.array(pts, np.float64) * size
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return p @ rot.T + centre


def _fill(shape: tuple[int, int], polys: list[np.ndarray], circles: list[tuple[np.ndarray, float]]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    for p in polys:
        cv2.fillPoly(mask, [np.round(p * SUB).astype(np.int32)], 255, cv2.LINE_AA, 4)
    for c, r in circles:
        cv2.circle(mask, (int(c[0] * SUB), int(c[1] * SUB)), int(r * SUB), 255, -1, cv2.LINE_AA, 4)
    return mask


def capsule(a: np.ndarray, b: np.ndarray, width: float) -> np.ndarray:
    d = (b - a) / max(np.linalg.norm(b - a), 1e-6)
    n = np.array([-d[1], d[0]]) * width / 2
    return np.array([a + n, b + n, b - n, a - n])


def occlude(frames: list[np.ndarray], face_boxes: list[np.ndarray], skin: np.ndarray, background: np.ndarray,
            seed: int = 0) -> Occluded:
    """Composite three occluders over `frames`, each crossing the face in turn: a hand (filled with `skin`, a
    texture cut from another person's face), a microphone (dark metal, a ball head), and a patch of `background`
    (another clip). face_boxes: per frame (x0, y0, x1, y1) of the face, to aim the motion."""
    rng = np.random.default_rng(seed)
    n = len(frames)
    h, w = frames[0].shape[:2]
    thirds = [(int(n * 0.1), int(n * 0.4)), (int(n * 0.4), int(n * 0.7)), (int(n * 0.7), n)]
    gx, gy = np.meshgrid(np.linspace(-1, 1, w), np.linspace(-1, 1, h))
    skin_tex = cv2.resize(skin, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    bg_tex = cv2.resize(background, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    out = Occluded([], [], [])
    for i, frame in enumerate(frames):
        x0, y0, x1, y1 = face_boxes[i]
        fw = x1 - x0
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        kind, mask, colour = "", np.zeros((h, w), np.uint8), np.zeros((h, w, 3), np.float32)
        for k, (a, b) in enumerate(thirds):
            if not a <= i < b:
                continue
            t = (i - a) / max(b - a - 1, 1)
            if k == 0:   # hand: rises from below and slides across the cheek and mouth
                pos = centre + np.array([-0.55 + 0.9 * t, 0.9 - 0.6 * math.sin(math.pi * t)]) * fw
                mask = _fill((h, w), [hand_outline(pos, 0.33 * fw, math.radians(-25 + 30 * t))], [])
                shade = (1.0 + 0.15 * gx)[..., None]
                colour = skin_tex * shade * np.array([1.03, 0.97, 0.95], np.float32)
                kind = "hand"
            elif k == 1:  # microphone: from the lower right towards the mouth and back
                head = centre + np.array([0.15 + 0.2 * math.cos(math.pi * t), 0.3 + 0.1 * t]) * fw
                tail = head + np.array([0.9, 1.2]) * fw
                mask = _fill((h, w), [capsule(head, tail, 0.12 * fw)], [(head, 0.16 * fw)])
                light = head - 0.05 * fw
                dist = np.hypot(np.arange(w)[None, :] - light[0], np.arange(h)[:, None] - light[1])
                grey = 40 + 60 * np.exp(-(dist / (0.08 * fw)) ** 2) + rng.normal(0, 3, (h, w))
                colour = np.repeat(grey[..., None], 3, 2).astype(np.float32)
                kind = "microphone"
            else:         # a patch of another clip's background, passing over the eyes
                pos = centre + np.array([-0.9 + 1.5 * t, -0.15]) * fw
                mask = np.zeros((h, w), np.uint8)
                cv2.ellipse(mask, (int(pos[0] * SUB), int(pos[1] * SUB)), (int(0.32 * fw * SUB), int(0.2 * fw * SUB)),
                            20 * t, 0, 360, 255, -1, cv2.LINE_AA, 4)
                colour = bg_tex
                kind = "patch"
        alpha = mask.astype(np.float32)[..., None] / 255
        comp = frame.astype(np.float32) * (1 - alpha) + np.clip(colour, 0, 255) * alpha
        out.frames.append(np.clip(comp + 0.5, 0, 255).astype(np.uint8))
        out.masks.append(np.where(mask > 127, 255, 0).astype(np.uint8))
        out.kinds.append(kind)
    return out
