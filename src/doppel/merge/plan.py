"""Merge's plan: what each target frame needs, keyed by everything its pixels depend on.

A frame's cache key covers the plate frame, the model's weights, the face's landmarks and mask, the merge
settings in force at that frame and, with `source_detail` on, the source's faces that lend detail. Frames
without the chosen person's face, or with `swap` turned off, pass through untouched. Export reads the plan
too, to refuse a shot whose renders are out of date.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from doppel.errors import DoppelError
from doppel.merge.edits import edited_face, face_landmarks
from doppel.merge.masks import OCCLUSION_MODES
from doppel.merge.overrides import settings_for
from doppel.merge.photos import photos_digest
from doppel.occlusion.labels import TRAINABLE, current_labels
from doppel.workspace import Workspace, review
from doppel.workspace.faces import Face
from doppel.workspace.settings import MergeSettings


@dataclass(frozen=True)
class FramePlan:
    index: int
    key: str
    settings: MergeSettings
    face: Face | None
    needs_render: bool

    @property
    def passthrough(self) -> bool:
        return self.face is None or not self.settings.swap


def subject_faces(ws: Workspace, media_id: int) -> dict[int, Face]:
    """The chosen target person's face in each frame that has one, with the studio's manual landmark fixes
    applied (they are keyed by frame, so re-extraction keeps them)."""
    by_frame = {f.frame_idx: f for f in ws.faces.of_chosen("target", media_id=media_id)}
    for i, (_, lm68) in review.landmark_edits(ws, media_id).items():
        if i in by_frame:
            by_frame[i] = edited_face(by_frame[i], lm68)
    return by_frame


RENDER_VERSION = 6
"""Part of every render's key: raised when compositing changes in a way the settings do not show (2: the
hair cut's brow line; 3: source_detail lends only inside the landmarks' hull, shrunk above the brows; 4: the
eyes are lent from the photograph that looks where the target looks; 5: its coefficients weighed by half; 6:
only where the face's own photograph looks elsewhere), so the next merge renders every frame again instead of
keeping stale renders."""


def _key(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def plan(ws: Workspace, model_id: str, faces: dict[int, Face] | None = None) -> list[FramePlan]:
    """What each target frame needs: its cache key and whether the stored render is out of date. `faces`:
    `subject_faces` of the target when the caller already has them. Keyframed settings (the studio's) are
    interpolated into each frame's settings, so they are part of its key."""
    target = ws.target()
    if target is None:
        raise DoppelError("the workspace has no target; add one with `doppel add --target`", ws.root)
    faces = subject_faces(ws, target.id) if faces is None else faces
    overrides = ws.overrides.all()
    keyframes = review.keyframes(ws)
    stored = ws.renders.all()
    as_dict: dict[MergeSettings, dict[str, Any]] = {}  # most frames share one settings object
    occlusion = ws.occlusion.masks()
    labels = current_labels(ws.occlusion, TRAINABLE)
    plans = []
    photos: str | None = None
    for i in range(target.info.frame_count):
        s = review.apply_keyframes(settings_for(ws.settings.merge, overrides, i), keyframes, i)
        face = faces.get(i)
        if face is None or not s.swap:
            key = _key("passthrough", target.info.sha256, i)
        else:
            lm = face_landmarks(face)
            if s not in as_dict:
                as_dict[s] = asdict(s)
            occ, label = occlusion.get(face.id), labels.get(face.id)
            # An artist's label is the face's occlusion mask in every mode (render_plans); else the stored one.
            extra = (["label", label.id] if label is not None else
                     [occ.sha256 if occ else "missing"] if s.mask in OCCLUSION_MODES else [])
            if s.source_detail > 0:  # the lent detail comes from the source's faces
                if photos is None:
                    photos = photos_digest(ws)
                extra.append(photos)
            key = _key(RENDER_VERSION, target.info.sha256, i, model_id, as_dict[s], face.id, lm.tobytes(),
                       face.polygon.tobytes(), face.matrix.tobytes(), *extra)
        old = stored.get(i)
        needs = old is None or old.cache_key != key or (
            old.path is not None and not ws.inside(old.path, "render path").is_file())
        plans.append(FramePlan(i, key, s, face, needs))
    return plans


def stale_frames(ws: Workspace, model_id: str) -> list[int]:
    """Target frames whose render is missing or out of date."""
    return [p.index for p in plan(ws, model_id) if p.needs_render]
