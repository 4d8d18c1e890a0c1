"""Self-supervised training examples: the footage's own faces with synthetic occluders pasted over them.

The base label is the face's mesh polygon (or an artist's label where there is one); an occluder pasted on
top is cut out of the label. Occluder families form a registry: hand-like shapes filled with skin cut from the
footage's faces, bars and microphones, patches of real texture from other crops, warped random blobs, and hair
strands. A batch is a pure function of (seed, salt, step), like the face model's, so training resumes exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

Rng = np.random.Generator
SUB = 16  # sub-pixel precision of the drawn shapes (cv2 shift = 4 bits)


@dataclass
class MaskData:
    """Training faces at the network's resolution R: crops (N, R, R, 3) uint8 RGB; polygons (N, R, R) uint8
    in {0..255} (the mesh polygon); labels: face index -> (R, R) uint8 drawn/confirmed label."""

    crops: np.ndarray
    polygons: np.ndarray
    labels: dict[int, np.ndarray]

    def __len__(self) -> int:
        return len(self.crops)


# -- shapes -----------------------------------------------------------------------------------------------
def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(p[0] * SUB)), int(round(p[1] * SUB))


def _capsule(mask: np.ndarray, a: np.ndarray, b: np.ndarray, width: float) -> None:
    cv2.line(mask, _pt(a), _pt(b), 255, max(1, int(round(width))), cv2.LINE_AA, 4)
    for p in (a, b):
        cv2.circle(mask, _pt(p), int(round(width / 2 * SUB)), 255, -1, cv2.LINE_AA, 4)


def _face_point(rng: Rng, base: np.ndarray) -> np.ndarray:
    """A random point inside the face (the base label), or anywhere if the label is empty."""
    ys, xs = np.nonzero(base > 127)
    size = base.shape[0]
    if len(xs) == 0:
        return rng.uniform(0.2, 0.8, 2) * size
    i = rng.integers(len(xs))
    return np.array([xs[i], ys[i]], np.float64) + rng.uniform(-0.5, 0.5, 2)


def hand_shape(rng: Rng, size: int, base: np.ndarray) -> np.ndarray:
    """A palm and four fingers (and often a thumb), anywhere over the face. (size, size) uint8."""
    mask = np.zeros((size, size), np.uint8)
    c = _face_point(rng, base)
    r = rng.uniform(0.10, 0.22) * size
    theta = rng.uniform(0, 2 * math.pi)
    up = np.array([math.cos(theta), math.sin(theta)])
    side = np.array([-up[1], up[0]])
    aspect = rng.uniform(0.75, 1.0)
    cv2.ellipse(mask, _pt(c), (int(r * aspect * SUB), int(r * SUB)), math.degrees(theta) + 90, 0, 360, 255, -1,
                cv2.LINE_AA, 4)
    fingers = rng.integers(2, 5) if rng.random() < 0.3 else 4
    width = r * rng.uniform(0.30, 0.42)
    for k in range(fingers):
        offset = (k - (fingers - 1) / 2) * width * 1.05
        root = c + up * r * 0.75 + side * offset
        bend = up + side * rng.uniform(-0.25, 0.25) + side * offset / (3 * r)
        bend /= np.linalg.norm(bend)
        length = r * rng.uniform(0.5, 1.5)
        _capsule(mask, root, root + bend * length, width)
    if rng.random() < 0.7:
        sgn = rng.choice([-1.0, 1.0])
        root = c + side * sgn * r * aspect * 0.8
        _capsule(mask, root, root + (side * sgn + up * 0.6) * r * rng.uniform(0.5, 1.0), width * 1.1)
    return mask


def bar_shape(rng: Rng, size: int, base: np.ndarray) -> np.ndarray:
    """A bar from outside the crop into the face, often with a ball at its end: a microphone, a pen, a rail."""
    mask = np.zeros((size, size), np.uint8)
    end = _face_point(rng, base)
    angle = rng.uniform(0, 2 * math.pi)
    start = end + np.array([math.cos(angle), math.sin(angle)]) * size * 1.5
    width = rng.uniform(0.04, 0.14) * size
    _capsule(mask, start, end, width)
    if rng.random() < 0.5:
        cv2.circle(mask, _pt(end), int(rng.uniform(0.06, 0.14) * size * SUB), 255, -1, cv2.LINE_AA, 4)
    return mask


def blob_shape(rng: Rng, size: int, base: np.ndarray) -> np.ndarray:
    """A random star-shaped polygon, smoothly warped."""
    mask = np.zeros((size, size), np.uint8)
    c = _face_point(rng, base)
    n = int(rng.integers(5, 14))
    angles = np.sort(rng.uniform(0, 2 * math.pi, n))
    radii = rng.uniform(0.08, 0.3) * size * rng.uniform(0.5, 1.0, n)
    pts = c + np.stack([np.cos(angles) * radii, np.sin(angles) * radii], 1)
    cv2.fillPoly(mask, [np.round(pts * SUB).astype(np.int32)], 255, cv2.LINE_AA, 4)
    return warp_smooth(rng, mask, 0.04 * size)


def patch_shape(rng: Rng, size: int, base: np.ndarray) -> np.ndarray:
    """An ellipse or a rotated rectangle (an object's outline), warped a little."""
    mask = np.zeros((size, size), np.uint8)
    c = _face_point(rng, base)
    ax = rng.uniform(0.08, 0.3, 2) * size
    angle = rng.uniform(0, 180)
    if rng.random() < 0.5:
        cv2.ellipse(mask, _pt(c), (int(ax[0] * SUB), int(ax[1] * SUB)), angle, 0, 360, 255, -1, cv2.LINE_AA, 4)
    else:
        box = cv2.boxPoints(((c[0], c[1]), (2 * ax[0], 2 * ax[1]), angle))
        cv2.fillPoly(mask, [np.round(box * SUB).astype(np.int32)], 255, cv2.LINE_AA, 4)
    return warp_smooth(rng, mask, 0.02 * size)


def strands_shape(rng: Rng, size: int, base: np.ndarray) -> np.ndarray:
    """Thin curved strands falling from the top of the crop over the forehead (hair)."""
    mask = np.zeros((size, size), np.uint8)
    ys, _ = np.nonzero(base > 127)
    top = float(ys.min()) if len(ys) else 0.2 * size
    x0 = rng.uniform(0.2, 0.8) * size
    for _ in range(int(rng.integers(3, 12))):
        p0 = np.array([x0 + rng.normal(0, 0.08 * size), top - rng.uniform(0, 0.1) * size])
        p2 = p0 + np.array([rng.normal(0, 0.15), rng.uniform(0.1, 0.4)]) * size
        p1 = (p0 + p2) / 2 + rng.normal(0, 0.06 * size, 2)
        t = np.linspace(0, 1, 24)[:, None]
        curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2
        cv2.polylines(mask, [np.round(curve * SUB).astype(np.int32)], False, 255,
                      max(1, int(round(rng.uniform(0.008, 0.025) * size))), cv2.LINE_AA, 4)
    return mask


def warp_smooth(rng: Rng, image: np.ndarray, amount: float) -> np.ndarray:
    """A smooth random displacement field of about `amount` pixels applied to `image` (HxW or HxWxC)."""
    h, w = image.shape[:2]
    coarse = rng.normal(0, amount, (2, 5, 5)).astype(np.float32)
    dx, dy = (cv2.resize(c, (w, h), interpolation=cv2.INTER_CUBIC) for c in coarse)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, gx + dx, gy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


ShapeFn = Callable[[Rng, int, np.ndarray], np.ndarray]
SHAPES: dict[str, tuple[ShapeFn, float]] = {
    "hand": (hand_shape, 0.3),
    "bar": (bar_shape, 0.2),
    "blob": (blob_shape, 0.2),
    "patch": (patch_shape, 0.2),
    "strands": (strands_shape, 0.1),
}


# -- fills ------------------------------------------------------------------------------------------------
def _texture(rng: Rng, data: MaskData, size: int, skin: bool) -> np.ndarray:
    """A (size, size, 3) float32 texture in [0, 1] cut from a random crop of the footage: zoomed into its face
    (skin) or anywhere (background, clothes, hair, another face)."""
    k = int(rng.integers(len(data)))
    src = data.crops[k]
    centre = _face_point(rng, data.polygons[k]) if skin else rng.uniform(0, size, 2)
    scale = rng.uniform(1.5, 3.0) if skin else rng.uniform(0.6, 1.6)
    m = np.asarray(cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), rng.uniform(-180, 180), scale),
                   np.float64)
    m[:, 2] += size / 2 - centre
    tex = cv2.warpAffine(src, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return tex.astype(np.float32) / 255


def _flat(rng: Rng, size: int) -> np.ndarray:
    colour = rng.uniform(0, 1, 3) * rng.uniform(0.2, 1.0)
    img = np.ones((size, size, 3), np.float32) * colour.astype(np.float32)
    return img + rng.normal(0, 0.02, (size, size, 1)).astype(np.float32)


def occluder(rng: Rng, data: MaskData, base: np.ndarray, fill: str = "footage") -> tuple[np.ndarray, np.ndarray]:
    """One random occluder for a face whose label is `base` ((R, R) uint8). `fill`: "footage" (skin and
    textures cut from the footage, or flat colours) or "flat" (flat colours only: far easier, for smoke tests).
    Returns (colour (R, R, 3) float32 in [0, 1], alpha (R, R) float32 in [0, 1])."""
    size = base.shape[0]
    names = list(SHAPES)
    probs = np.array([SHAPES[n][1] for n in names])
    name = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    alpha = SHAPES[name][0](rng, size, base).astype(np.float32) / 255
    if rng.random() < 0.5:
        alpha = np.asarray(cv2.GaussianBlur(alpha, (0, 0), rng.uniform(0.3, 1.2)), np.float32)
    pick = rng.random()
    if fill == "flat":
        colour = _flat(rng, size)
    elif name == "hand" or (name == "blob" and pick < 0.3):
        colour = _texture(rng, data, size, skin=True) * rng.uniform(0.75, 1.25, 3).astype(np.float32)
    elif name == "strands":
        colour = _flat(rng, size) * (0.3 if rng.random() < 0.6 else 1.0)
    elif pick < 0.6:
        colour = _texture(rng, data, size, skin=False)
    else:
        colour = _flat(rng, size)
    # Shading across the occluder: objects are lit from one side.
    angle = rng.uniform(0, 2 * math.pi)
    gx, gy = np.meshgrid(np.linspace(-1, 1, size), np.linspace(-1, 1, size))
    shade = 1 + rng.uniform(0, 0.3) * (np.cos(angle) * gx + np.sin(angle) * gy)
    return np.clip(colour * shade[..., None].astype(np.float32), 0, 1), np.clip(alpha, 0, 1)


# -- examples and batches ---------------------------------------------------------------------------------
def features(rgb: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """The network's input for one face: (R, R, 5) float32 in [0, 1] from the crop (R, R, 3) float32 in [0, 1]
    and its polygon (R, R) float32 in [0, 1]. Channels: RGB, the polygon, and each pixel's distance from the
    face's own skin colour (the median colour inside the polygon, in Lab with lightness down-weighted so that
    shading counts less than hue). Most objects differ from skin in colour: with this channel the network
    finds them after a few dozen steps instead of thousands; skin-coloured hands still need the picture."""
    return np.dstack([rgb, polygon, skin_distance(rgb, polygon)]).astype(np.float32)


def skin_distance(rgb: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Each pixel's distance from the face's own skin colour, (R, R) float32 in [0, 1], from the crop (R, R, 3)
    float32 in [0, 1] and its polygon (R, R) float in [0, 1]: the median colour inside the polygon is the skin,
    in Lab with lightness weighted 0.5; the distance is scaled by the skin's own spread."""
    lab = cv2.cvtColor(np.ascontiguousarray(rgb, np.float32), cv2.COLOR_RGB2LAB)
    lab[..., 0] = lab[..., 0] * 0.5
    inside = polygon > 0.5
    ref = np.median(lab[inside], 0) if inside.sum() >= 16 else np.median(lab.reshape(-1, 3), 0)
    dist = np.linalg.norm(lab - ref, axis=2)
    spread = float(np.median(dist[inside])) if inside.sum() >= 16 else float(np.median(dist))
    return np.clip(dist / (4 * spread + 8), 0, 1).astype(np.float32)


def _jitter(rng: Rng, img: np.ndarray) -> np.ndarray:
    """Colour, contrast, blur and noise jitter of an (R, R, 3) float32 image in [0, 1]."""
    grey = img.mean(2, keepdims=True)
    img = grey + (img - grey) * rng.uniform(0.6, 1.3)
    img = (img - 0.5) * rng.uniform(0.75, 1.25) + 0.5 + rng.uniform(-0.12, 0.12)
    img = img * rng.uniform(0.9, 1.1, 3).astype(np.float32)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.2))
    if rng.random() < 0.5:
        img = img + rng.normal(0, rng.uniform(0.005, 0.03), img.shape).astype(np.float32)
    return np.clip(img, 0, 1).astype(np.float32)


def example(rng: Rng, data: MaskData, k: int, labelled: bool, fill: str = "footage") -> tuple[np.ndarray, np.ndarray]:
    """Training pair for face `k`: input (R, R, 5) float32 in [0, 1] (`features`) and target (R, R) float32
    in [0, 1] (visible face). The base label is the artist's label if `labelled`, else the mesh polygon."""
    size = data.crops.shape[1]
    img = data.crops[k].astype(np.float32) / 255
    poly = data.polygons[k].astype(np.float32) / 255
    label = data.labels[k].astype(np.float32) / 255 if labelled else poly.copy()
    n_occ = int(rng.choice([0, 1, 2], p=[0.5, 0.4, 0.1] if labelled else [0.2, 0.6, 0.2]))
    for _ in range(n_occ):
        colour, alpha = occluder(rng, data, (label * 255).astype(np.uint8), fill)
        img = img * (1 - alpha[..., None]) + colour * alpha[..., None]
        label = label * (1 - alpha)
    # The same small similarity transform (and flip) for the picture, the polygon and the label.
    m = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-8, 8), rng.uniform(0.93, 1.07))
    m[:, 2] += rng.uniform(-0.04, 0.04, 2) * size
    stack = np.dstack([img, poly, label])
    stack = cv2.warpAffine(stack, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if rng.random() < 0.5:
        stack = stack[:, ::-1]
    x = features(_jitter(rng, np.ascontiguousarray(stack[..., :3])), stack[..., 3])
    return x, np.ascontiguousarray(stack[..., 4])


def make_batch(data: MaskData, batch_size: int, seed: int, salt: int, step: int, label_share: float = 0.5,
               fill: str = "footage") -> tuple[np.ndarray, np.ndarray]:
    """The batch for `step`: inputs (B, 5, R, R) float32 and targets (B, 1, R, R) float32, both in [0, 1].
    A share `label_share` of the examples comes from the labelled faces, when there are any."""
    rng = np.random.default_rng([seed, salt, step])
    labelled = sorted(data.labels)
    xs, ys = [], []
    for _ in range(batch_size):
        use_label = bool(labelled) and rng.random() < label_share
        k = int(labelled[rng.integers(len(labelled))]) if use_label else int(rng.integers(len(data)))
        x, y = example(rng, data, k, k in data.labels, fill)
        xs.append(x)
        ys.append(y)
    return (np.ascontiguousarray(np.stack(xs).transpose(0, 3, 1, 2)),
            np.ascontiguousarray(np.stack(ys)[:, None]))
