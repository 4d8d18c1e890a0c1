"""Mask label edits as the studio and the API make them: checked against their face, and logged in the
workspace's undo log (doppel.workspace.review), so that the studio's Ctrl+Z / Ctrl+Shift+Z take any of them
back and forth, whoever made it.

Each edit calls doppel.occlusion.labels (or .propagate) for the change itself; `review.record_since` logs the
rows it changed. Kinds: see doppel.occlusion.labels. A copy (`copy_forward`) is the artist's own act, so it
is stored as `drawn` (with the copied label as its origin); a propagation is a guess, so it is `suggested`
until confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from doppel.errors import DoppelError
from doppel.occlusion import labels as lab
from doppel.workspace import review

if TYPE_CHECKING:
    from doppel.workspace import Workspace
    from doppel.workspace.faces import Face

TABLE = "mask_labels"
CHECK_SIZE = 64
"""Crop size (pixels) at which a polygon is checked to overlap its face's crop."""


@dataclass(frozen=True)
class EditResult:
    """Faces whose label an edit changed, and the faces with an artist's label of their own that stopped it."""

    faces: tuple[int, ...]
    stopped_at: tuple[int, ...] = ()


def face_of(ws: Workspace, face_id: int) -> Face:
    """The face with this id; a clear DoppelError when there is none."""
    if isinstance(face_id, bool) or not isinstance(face_id, int | np.integer):
        raise DoppelError(f"a face id is a whole number, not {face_id!r}")
    face = ws.faces.by_id(int(face_id))
    if face is None:
        raise DoppelError(f"no face #{face_id} in this workspace")
    return face


def build_label(include: Any = (), exclude: Any = (), base: str = "landmarks", shapes: Any = None) -> lab.Label:
    """A label from lists of polygons ([[x, y], ...] frame pixels): `include` ones painted first, then the
    `exclude` ones (so an exclude wins where they overlap); or `shapes`, the JSON form's list of
    {"mode", "points"} (or brush strokes, {"mode", "points", "radius"}) in painting order. Malformed input is
    a DoppelError naming the shape."""
    if shapes is None:
        shapes = [{"mode": "include", "points": p} for p in include] + [
            {"mode": "exclude", "points": p} for p in exclude]
    elif include or exclude:
        raise DoppelError("give shapes, or include/exclude polygons, not both")
    return lab.parse_label({"base": base, "shapes": list(shapes)})


def check_label(label: lab.Label, face: Face) -> None:
    """Refuse shapes with no area or wholly outside the face's aligned crop (a click on the wrong face)."""
    m = lab.crop_matrix(face, CHECK_SIZE)
    for i, shape in enumerate(label.shapes):
        x, y = shape.points[:, 0], shape.points[:, 1]
        if abs(0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))) < 1.0:
            raise DoppelError(f"face #{face.id}: shape {i} ({shape.mode}) has no area (its points are on a line)")
        canvas = np.zeros((CHECK_SIZE, CHECK_SIZE), np.uint8)
        pts = np.round((shape.points @ m[:, :2].T + m[:, 2]) * 16).astype(np.int32)
        cv2.fillPoly(canvas, [pts], 255, lineType=cv2.LINE_8, shift=4)
        if not canvas.any():
            raise DoppelError(f"face #{face.id}: shape {i} ({shape.mode}) lies outside the face's crop "
                              f"(frame {face.frame_idx})")


def add(ws: Workspace, face_id: int, label: lab.Label, kind: str = "drawn") -> lab.StoredLabel:
    """A new version of the face's label (checked against the face); undoable."""
    face = face_of(ws, face_id)
    check_label(label, face)
    before = review.snapshot(ws, TABLE)
    with ws.transaction():
        stored = lab.add_label(ws.occlusion, face.id, label, kind)
    review.record_since(ws, f"mask label on frame {face.frame_idx} (face #{face.id}, {kind})", TABLE, before)
    return stored


def remove_newest(ws: Workspace, face_id: int) -> lab.StoredLabel | None:
    """Remove the newest version of the face's label; returns the version now current (None: none left)."""
    face = face_of(ws, face_id)
    before = review.snapshot(ws, TABLE)
    with ws.transaction():
        current = lab.undo(ws.occlusion, face.id)
    review.record_since(ws, f"remove mask label version on frame {face.frame_idx} (face #{face.id})", TABLE, before)
    return current


def confirm(ws: Workspace, face_ids: list[int]) -> EditResult:
    """Accept the suggested labels of these faces (those whose newest version is a suggestion; a face named
    alone must have one). One undo step for them all."""
    faces = [face_of(ws, i) for i in face_ids]
    todo = [f for f in faces if (c := lab.current(ws.occlusion, f.id)) is not None and c.kind == "suggested"]
    if len(faces) == 1 and not todo:
        raise DoppelError(f"face #{faces[0].id} has no suggested label to confirm")
    before = review.snapshot(ws, TABLE)
    with ws.transaction():
        for f in todo:
            lab.confirm(ws.occlusion, f.id)
    if todo:
        review.record_since(ws, f"confirm {len(todo)} suggested mask label(s)", TABLE, before)
    return EditResult(tuple(f.id for f in todo))


def _source(ws: Workspace, face: Face) -> lab.StoredLabel:
    source = lab.current(ws.occlusion, face.id)
    if source is None or source.kind not in lab.TRAINABLE:
        raise DoppelError(f"face #{face.id} has no drawn or confirmed label (draw one, or confirm its suggestion)")
    return source


def copy_forward(ws: Workspace, face_id: int, frames: int) -> EditResult:
    """The face's label, as it is in frame pixels, onto the next `frames` faces of its track, stopping at a
    gap or at a face with an artist's label of its own. Stored as drawn labels; one undo step."""
    from doppel.occlusion.propagate import track_of

    if frames < 1:
        raise DoppelError("copy to at least 1 frame")
    face = face_of(ws, face_id)
    source = _source(ws, face)
    by_frame = {f.frame_idx: f for f in track_of(ws, face)}
    targets, stopped = [], []
    for k in range(1, frames + 1):
        nxt = by_frame.get(face.frame_idx + k)
        if nxt is None:
            break
        own = lab.current(ws.occlusion, nxt.id)
        if own is not None and own.kind in lab.TRAINABLE:
            stopped.append(nxt.id)
            break
        targets.append(nxt)
    before = review.snapshot(ws, TABLE)
    with ws.transaction():
        for f in targets:
            lab.add_label(ws.occlusion, f.id, source.label, "drawn", source.id)
    if targets:
        review.record_since(ws, f"copy mask label of frame {face.frame_idx} to {len(targets)} frame(s)", TABLE,
                            before)
    return EditResult(tuple(f.id for f in targets), tuple(stopped))


def propagate(ws: Workspace, face_id: int, frames: int) -> EditResult:
    """Suggested labels on up to `frames` faces each way along the track, carried by the face's motion
    (doppel.occlusion.propagate), up to the next artist's label; one undo step."""
    from doppel.occlusion.propagate import propagate as carry_label

    face = face_of(ws, face_id)
    _source(ws, face)
    before = review.snapshot(ws, TABLE)
    report = carry_label(ws, face.id, frames)
    review.record_since(ws, f"propagate mask label of frame {face.frame_idx} ({len(report.suggested)} suggestions)",
                        TABLE, before)
    return EditResult(tuple(report.suggested), tuple(report.stopped_at_labels))
