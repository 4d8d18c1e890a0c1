"""The studio's mask editor, server side: the subject's label on a frame, drawing a new version, copying,
propagating and confirming (all through the API's mask methods, so they land in the undo log), and the
occlusion mask as an image over the frame.

Every call names a plate frame; the face is the chosen target person's face there (with the studio's
landmark fixes applied). Called on the engine thread only, like the rest of `Backend`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from doppel.errors import DoppelError
from doppel.occlusion import labels as lab

if TYPE_CHECKING:
    from doppel.studio.backend import Backend
    from doppel.workspace.faces import Face

MAX_FRAMES = 500
"""The most frames one copy or propagation may reach (each way)."""


def _face(b: Backend, frame: int) -> Face:
    b._check(frame)
    face = b.faces.get(frame)
    if face is None:
        raise DoppelError(f"frame {frame} has no face of the chosen target person to label")
    return face


def _frames(n: Any) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_FRAMES:
        raise DoppelError(f"frames must be a whole number from 1 to {MAX_FRAMES}")
    return n


def state(b: Backend, frame: int) -> dict[str, Any] | None:
    """The subject's label on `frame` (None: no face there): newest version, kind, shapes, version count,
    and whether the mask network has stored a mask for the face."""
    face = b.faces.get(frame)
    if face is None:
        return None
    report = b.project.mask_label(face.id)
    return {"face": face.id, "version": report.version, "kind": report.kind, "label": report.label,
            "origin": report.origin, "versions": report.versions,
            "net_mask": face.id in b.ws.occlusion.masks()}


def kinds(b: Backend) -> list[str]:
    """Per plate frame, the kind of the subject's newest label version ("" where none), for the timeline."""
    newest = lab.current_labels(b.ws.occlusion)
    out = [""] * b.frame_count
    for i, face in b.faces.items():
        stored = newest.get(face.id)
        if stored is not None and 0 <= i < b.frame_count:
            out[i] = stored.kind
    return out


def draw(b: Backend, frame: int, shapes: Any, base: Any = "landmarks") -> int:
    """A new drawn version of the label on `frame` with these shapes ([{"mode", "points"}], frame pixels).
    Returns the new version."""
    if not isinstance(shapes, list):
        raise DoppelError("shapes must be a list of {mode, points}")
    report = b.project.add_mask_label(_face(b, frame).id, shapes=shapes, base=str(base))
    b.refresh()
    return int(report.version or 0)


def remove_newest(b: Backend, frame: int) -> int | None:
    """Remove the newest version of the label on `frame`; returns the version now current."""
    report = b.project.undo_mask_label(_face(b, frame).id)
    b.refresh()
    return report.version


def copy(b: Backend, frame: int, frames: Any) -> dict[str, Any]:
    report = b.project.copy_mask_label(_face(b, frame).id, _frames(frames))
    b.refresh()
    return report.to_json()


def propagate(b: Backend, frame: int, frames: Any) -> dict[str, Any]:
    report = b.project.propagate_mask(_face(b, frame).id, _frames(frames))
    b.refresh()
    return report.to_json()


def confirm(b: Backend, first: int, last: int) -> dict[str, Any]:
    """Confirm the suggestions on frames first..last (one frame: it must have one)."""
    if not 0 <= first <= last < b.frame_count:
        raise DoppelError(f"frames {first}-{last} are outside the plate (0-{b.frame_count - 1})")
    ids = [b.faces[i].id for i in range(first, last + 1) if i in b.faces]
    if not ids:
        raise DoppelError(f"no face of the chosen target person on frames {first}-{last}")
    report = b.project.confirm_mask_labels(ids)
    b.refresh()
    return report.to_json()


def overlay(b: Backend, frame: int) -> bytes:
    """The mask the face on `frame` would get from its label (any kind, a suggestion included) or else from
    the mask network's stored mask, as a PNG the size of the frame (grey, 255 = the face's own skin); all
    black when there is neither."""
    from doppel.occlusion.apply import load_mask

    b._check(frame)
    info = b.target.info
    out: np.ndarray = np.zeros((info.height, info.width), np.uint8)
    face = b.faces.get(frame)
    if face is not None:
        current = lab.current(b.ws.occlusion, face.id)
        stored = b.ws.occlusion.masks().get(face.id)
        crop: np.ndarray | None = None
        if current is not None:
            crop = lab.label_mask(current.label, face, face.crop_size, lab.crop_matrix(face, face.crop_size))
        elif stored is not None:
            crop = (load_mask(b.ws, stored.path) * 255 + 0.5).astype(np.uint8)
        if crop is not None:
            back = cv2.invertAffineTransform(lab.crop_matrix(face, crop.shape[0]))
            out = cv2.warpAffine(crop, back, (info.width, info.height), flags=cv2.INTER_LINEAR, borderValue=0)
    ok, data = cv2.imencode(".png", out)
    if not ok:
        raise DoppelError("could not encode the mask overlay")
    return data.tobytes()
