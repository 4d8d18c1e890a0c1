"""Mask labels: include/exclude polygons drawn (or brush strokes painted) on a face, stored per face in the
database, versioned. A brush stroke ({"mode", "points", "radius"}) is stored as the polygon outline of what it
painted (`stroke_polygons`), so everything that reads labels sees polygons only.

A label is a list of polygons in frame pixels, painted in order onto a base: `landmarks` (the face's mesh
polygon, so one exclude polygon over a hand is a complete label) or `empty`. Each edit of a face's label adds
a version; `undo` removes the newest version, bringing back the one before. Kinds:
  drawn      an artist drew it;
  suggested  propagated from a drawn label (doppel.occlusion.propagate); not trained on until confirmed;
  confirmed  an artist accepted a suggestion (a new version with the same polygons).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np

from doppel.errors import DoppelError
from doppel.extract.aligned import AlignedFace
from doppel.extract.masks import rasterize
from doppel.workspace.faces import Face
from doppel.workspace.occlusion import LabelRow, OcclusionStore

LabelKind = Literal["drawn", "suggested", "confirmed"]
KINDS: tuple[str, ...] = ("drawn", "suggested", "confirmed")
TRAINABLE: tuple[str, ...] = ("drawn", "confirmed")
BASES: tuple[str, ...] = ("landmarks", "empty")
SHAPE_MODES: tuple[str, ...] = ("include", "exclude")
BRUSH_RADIUS = (0.5, 200.0)
"""The smallest and largest brush radius, frame pixels."""
BRUSH_EXTENT = 8192
"""The most frame pixels one brush stroke may span."""
BRUSH_PRECISION = 4
"""Sub-pixels per frame pixel at which a brush stroke is traced."""


@dataclass(frozen=True)
class Shape:
    mode: str                  # "include" or "exclude"
    points: np.ndarray         # (N, 2) float64 frame pixels, N >= 3


@dataclass(frozen=True)
class Label:
    """A face's mask label, as drawn (frame pixels)."""

    base: str
    shapes: tuple[Shape, ...]

    def to_json(self) -> dict[str, Any]:
        return {"base": self.base, "shapes": [{"mode": s.mode, "points": np.round(s.points, 3).tolist()}
                                              for s in self.shapes]}

    def transformed(self, fn: Any) -> Label:
        """The same label with every polygon's points mapped by `fn` ((N, 2) -> (N, 2))."""
        return Label(self.base, tuple(Shape(s.mode, np.asarray(fn(s.points), np.float64)) for s in self.shapes))


@dataclass(frozen=True)
class StoredLabel:
    id: int
    face_id: int
    version: int
    kind: str
    label: Label
    origin_id: int | None
    created_at: str


def parse_label(data: Any) -> Label:
    """A Label from its JSON form {"base": ..., "shapes": [{"mode": ..., "points": [[x, y], ...]}]};
    a clear DoppelError for anything malformed."""
    if not isinstance(data, dict):
        raise DoppelError("a mask label is a JSON object with 'shapes' (and optionally 'base')")
    base = data.get("base", "landmarks")
    if base not in BASES:
        raise DoppelError(f"label base must be one of {', '.join(BASES)}, not {base!r}")
    unknown = set(data) - {"base", "shapes"}
    if unknown:
        raise DoppelError(f"unknown label fields: {', '.join(sorted(unknown))}")
    raw = data.get("shapes")
    if not isinstance(raw, list):
        raise DoppelError("label 'shapes' must be a list of {mode, points}")
    shapes = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or item.get("mode") not in SHAPE_MODES:
            raise DoppelError(f"label shape {i}: mode must be one of {', '.join(SHAPE_MODES)}")
        unknown = set(item) - {"mode", "points", "radius"}
        if unknown:
            raise DoppelError(f"label shape {i}: unknown fields: {', '.join(sorted(unknown))}")
        try:
            pts = np.asarray(item.get("points"), np.float64)
        except (TypeError, ValueError) as exc:
            raise DoppelError(f"label shape {i}: points must be [[x, y], ...] numbers") from exc
        stroke = "radius" in item
        if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < (1 if stroke else 3) or not np.isfinite(pts).all():
            raise DoppelError(f"label shape {i}: " + ("a brush stroke needs at least 1 finite [x, y] point" if stroke
                              else "a polygon needs at least 3 finite [x, y] points"))
        if np.abs(pts).max() > 1e6:
            raise DoppelError(f"label shape {i}: points are far outside any frame")
        if stroke:
            shapes += [Shape(item["mode"], p) for p in stroke_polygons(pts, _radius(item["radius"], i))]
        else:
            shapes.append(Shape(item["mode"], pts))
    return Label(base, tuple(shapes))


def _radius(value: Any, i: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not BRUSH_RADIUS[0] <= value <= BRUSH_RADIUS[1]:
        raise DoppelError(f"label shape {i}: a brush radius is a number of frame pixels from {BRUSH_RADIUS[0]} "
                          f"to {BRUSH_RADIUS[1]}")
    return float(value)


def stroke_polygons(points: np.ndarray, radius: float) -> list[np.ndarray]:
    """A brush stroke as polygons, so that a painted label is stored, propagated and trained on like a drawn
    one: the outline of what a round brush of `radius` (frame pixels) paints along the path `points` ((N, 2)
    float64 frame pixels, N >= 1), traced at 1/4 pixel and simplified to within 1/4 pixel. A stroke that closes
    on itself paints what it encloses too. Returns (M, 2) float64 polygons in frame pixels, one per separate
    painted region (one for a continuous stroke)."""
    lo = points.min(0) - radius - 2
    extent = points.max(0) + radius + 2 - lo
    if extent.max() > BRUSH_EXTENT:
        raise DoppelError(f"a brush stroke spans more than {BRUSH_EXTENT} pixels")
    q = BRUSH_PRECISION
    canvas = np.zeros((int(np.ceil(extent[1] * q)) + 1, int(np.ceil(extent[0] * q)) + 1), np.uint8)
    path = np.round((points - lo) * q).astype(np.int32)
    r = max(1, int(round(radius * q + 0.5)))   # the traced outline runs through the edge pixels' centres
    cv2.polylines(canvas, [path], False, 255, 2 * r + 1, cv2.LINE_8)
    for x, y in path:
        cv2.circle(canvas, (int(x), int(y)), r, 255, -1, cv2.LINE_8)
    contours, _ = cv2.findContours(canvas, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in contours:
        c = cv2.approxPolyDP(c, 0.25 * q, True)[:, 0].astype(np.float64)
        if len(c) >= 3:
            out.append(c / q + lo)
    return out


def label_mask(label: Label, face: Face, size: int, matrix: np.ndarray) -> np.ndarray:
    """The label painted in a crop: (size, size) uint8 in {0..255} (anti-aliased edges). `matrix` (2x3) maps
    frame pixels to the crop, e.g. `face.matrix * size / face.crop_size` for the face's aligned crop."""
    if label.base == "landmarks":
        mask = rasterize(face.polygon, (size, size), matrix)
    else:
        mask = np.zeros((size, size), np.uint8)
    for shape in label.shapes:
        pts = shape.points @ matrix[:, :2].T + matrix[:, 2]
        fixed = np.round(pts * 16).astype(np.int32)
        cv2.fillPoly(mask, [fixed], 255 if shape.mode == "include" else 0, lineType=cv2.LINE_AA, shift=4)
    return mask


def crop_matrix(face: Face, size: int) -> np.ndarray:
    """2x3 frame -> the face's own aligned crop at `size` pixels."""
    return AlignedFace.of(face).stored_alignment(size)


def _row(r: LabelRow) -> StoredLabel:
    return StoredLabel(r.id, r.face_id, r.version, r.kind, parse_label(json.loads(r.label_json)), r.origin_id,
                       r.created_at)


def add_label(store: OcclusionStore, face_id: int, label: Label, kind: str = "drawn",
              origin_id: int | None = None) -> StoredLabel:
    """Store `label` as the newest version of face `face_id`'s label; call inside `ws.transaction()`."""
    if kind not in KINDS:
        raise DoppelError(f"label kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if not store.face_exists(face_id):
        raise DoppelError(f"no face #{face_id} in this workspace")
    return _row(store.add_label(face_id, kind, json.dumps(label.to_json()), origin_id))


def undo(store: OcclusionStore, face_id: int) -> StoredLabel | None:
    """Remove the newest version of a face's label; returns the version now current (None: no label left)."""
    newest = current(store, face_id)
    if newest is None:
        raise DoppelError(f"face #{face_id} has no label to undo")
    store.delete_label(newest.id)
    return current(store, face_id)


def confirm(store: OcclusionStore, face_id: int) -> StoredLabel:
    """Accept a face's suggested label: a new `confirmed` version with the same polygons."""
    newest = current(store, face_id)
    if newest is None or newest.kind != "suggested":
        raise DoppelError(f"face #{face_id} has no suggested label to confirm")
    return add_label(store, face_id, newest.label, "confirmed", newest.origin_id)


def current(store: OcclusionStore, face_id: int) -> StoredLabel | None:
    row = store.newest_label(face_id)
    return None if row is None else _row(row)


def history(store: OcclusionStore, face_id: int) -> list[StoredLabel]:
    """Every version of a face's label, oldest first."""
    return [_row(r) for r in store.label_history(face_id)]


def current_labels(store: OcclusionStore, kinds: tuple[str, ...] = KINDS) -> dict[int, StoredLabel]:
    """The newest version of every labelled face's label, for faces whose newest version is one of `kinds`."""
    return {r.face_id: _row(r) for r in store.newest_labels() if r.kind in kinds}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two masks (any shape; > 127 or > 0.5 counts as inside)."""
    thr_a = 127 if a.dtype == np.uint8 else 0.5
    thr_b = 127 if b.dtype == np.uint8 else 0.5
    x, y = a > thr_a, b > thr_b
    union = np.logical_or(x, y).sum()
    return float(np.logical_and(x, y).sum() / union) if union else 1.0
