"""The compositing mask: landmark polygon, learned mask, occlusion mask, or combinations of them; eroded or
dilated and feathered in units of the face, so one setting suits close-ups and wide shots alike."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from doppel.occlusion.synth import skin_distance

MaskSet = dict[str, np.ndarray]
"""The masks a mode may use, each HxW float32 in [0, 1]: "landmarks", "learned", and "occlusion" (the occlusion
network's mask, doppel.occlusion) when a mode asks for it."""

MASK_MODES: dict[str, Callable[[MaskSet], np.ndarray]] = {
    "landmarks": lambda m: m["landmarks"],
    "learned": lambda m: m["learned"],
    "intersect": lambda m: np.minimum(m["landmarks"], m["learned"]),
    "union": lambda m: np.maximum(m["landmarks"], m["learned"]),
    "occlusion": lambda m: m["occlusion"],
    "landmarks+occlusion": lambda m: np.minimum(m["landmarks"], m["occlusion"]),
    "learned+occlusion": lambda m: np.minimum(m["learned"], m["occlusion"]),
    "intersect+occlusion": lambda m: np.minimum(np.minimum(m["landmarks"], m["learned"]), m["occlusion"]),
}
OCCLUSION_MODES = frozenset(k for k in MASK_MODES if "occlusion" in k)


def combine(landmarks: np.ndarray, learned: np.ndarray, mode: str, occlusion: np.ndarray | None = None
            ) -> np.ndarray:
    """HxW float32 in [0, 1] from HxW float masks in [0, 1]. `occlusion` is needed by the *occlusion modes;
    given to any other mode it still cuts the mask (an artist's label does so on its face, whatever the mode)."""
    if mode not in MASK_MODES:
        raise ValueError(f"unknown mask mode {mode!r}")
    masks = {"landmarks": landmarks, "learned": learned}
    if occlusion is not None:
        masks["occlusion"] = occlusion
    elif mode in OCCLUSION_MODES:
        raise ValueError(f"mask mode {mode!r} needs the occlusion mask")
    out = MASK_MODES[mode](masks)
    return out if occlusion is None or mode in OCCLUSION_MODES else np.minimum(out, occlusion)


HAIR_DISTANCE = 0.3
"""Skin distance (occlusion.synth.skin_distance, 0-1) above which a pixel over the brows is hair, not skin."""
HAIR_MARGIN = 0.03
"""The cut starts this far (share of the crop) above the brows' highest point: the brows are always the face."""


def hair_keep(face_rgb: np.ndarray, polygon: np.ndarray, brow_top: float) -> np.ndarray:
    """Where the generated face may show, (R, R) float32 in [0, 1]: 0 over what it draws above the brows in a
    colour far from its own skin (the source's hair, hat or fringe: its decoder draws them at the height of the
    source's own hairline, which lies inside a target's higher forehead), and over everything above such a
    pixel in its column; the cut's edge is softened over 1/64 of the crop. face_rgb: (R, R, 3) float32 in
    [0, 1]; polygon: the landmark mask (R, R) float32, whose inside defines the skin colour; brow_top: the
    brows' highest point (smallest row, crop pixels)."""
    size = polygon.shape[0]
    above = np.arange(size)[:, None] < brow_top - HAIR_MARGIN * size
    cut = (skin_distance(face_rgb, polygon) > HAIR_DISTANCE) & above
    cut = np.maximum.accumulate(cut[::-1], axis=0)[::-1]  # hair above a hat's band is hair too
    return (1 - cv2.GaussianBlur(cut.astype(np.float32), (0, 0), size / 64)).astype(np.float32)


def shape_mask(mask: np.ndarray, erode: float, feather: float) -> np.ndarray:
    """Erode (erode > 0) or dilate (erode < 0) by `erode` percent of the mask's size, then feather (blur) the edge
    over `feather` percent. `mask`: HxW float32 in [0, 1] (an aligned crop, so its size is the face's scale)."""
    size = mask.shape[0]
    out: np.ndarray = (mask > 0.5).astype(np.uint8)
    radius = int(round(abs(erode) / 100 * size))
    if radius:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        out = cv2.erode(out, kernel) if erode > 0 else cv2.dilate(out, kernel)
    result: np.ndarray = out.astype(np.float32)
    blur = feather / 100 * size
    if blur > 0:
        # Feather inwards, so the blend never reaches beyond the (eroded) mask's edge.
        inner = cv2.erode(out, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * int(blur / 2) + 1,) * 2))
        result = cv2.GaussianBlur(inner.astype(np.float32), (0, 0), sigmaX=blur / 2)
        result = np.clip(result * (out > 0), 0, 1)
    return result


CUT_LOW = 0.5    # visible-face probability at or below which a pixel is the occluder's: the plate's, exactly
CUT_HIGH = 0.75  # ... and from which it is the face's; between the two a short ramp (anti-aliasing)
CUT_GROW = 1     # frame pixels by which the occluder's cut is widened (its edge's mixed pixels stay the plate's)


def occlusion_cut(visible: np.ndarray, grow: int = CUT_GROW, low: float = CUT_LOW, high: float = CUT_HIGH
                  ) -> np.ndarray:
    """A hard-ish cut from an occlusion mask in frame pixels: HxW float32 in [0, 1] (1 = the face may be
    swapped there) from HxW float32 visible-face probabilities in [0, 1].

    Applied after the compositing mask is shaped (eroded, feathered, brought back to the frame), so neither
    the feather, nor the model's lower resolution, nor the bilinear warp back can spread the swapped face over
    the occluder: where the occlusion mask says "occluder" the merged pixel is the plate's, exactly. The
    feather still softens the face's outline, inwards, away from the occluder."""
    cut = np.clip((visible - low) / (high - low), 0, 1).astype(np.float32)
    if grow > 0:
        cut = np.asarray(cv2.erode(cut, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)),
                        borderType=cv2.BORDER_REPLICATE), np.float32)
    return cut
