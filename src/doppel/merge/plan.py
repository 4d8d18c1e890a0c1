"""Merge's plan: what each target frame needs, keyed by everything its pixels depend on.

A frame's cache key covers the plate frame, the model's weights, the face's landmarks and mask, and the merge
settings in force at that frame. Frames without the chosen person's face, or with `swap` turned off, pass
through untouched. Export reads the plan too, to refuse a shot whose renders are out of date.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from doppel.errors import DoppelError
from doppel.merge.masks import OCCLUSION_MODES
from doppel.merge.overrides import settings_for
from doppel.workspace import Workspace
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
    """The chosen target person's face in each frame that has one."""
    return {f.frame_idx: f for f in ws.faces.of_chosen("target", media_id=media_id)}


def _key(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def plan(ws: Workspace, model_id: str) -> list[FramePlan]:
    """What each target frame needs: its cache key and whether the stored render is out of date."""
    target = ws.target()
    if target is None:
        raise DoppelError("the workspace has no target; add one with `doppel add --target`", ws.root)
    faces = subject_faces(ws, target.id)
    overrides = ws.overrides.all()
    stored = ws.renders.all()
    occlusion = ws.occlusion.masks()
    plans = []
    for i in range(target.info.frame_count):
        s = settings_for(ws.settings.merge, overrides, i)
        face = faces.get(i)
        if face is None or not s.swap:
            key = _key("passthrough", target.info.sha256, i)
        else:
            lm = face.lm68_smooth if face.lm68_smooth is not None else face.lm68
            occ = occlusion.get(face.id)
            extra = [occ.sha256 if occ else "missing"] if s.mask in OCCLUSION_MODES else []
            key = _key(target.info.sha256, i, model_id, asdict(s), face.id, lm.tobytes(), face.polygon.tobytes(),
                       face.matrix.tobytes(), *extra)
        old = stored.get(i)
        needs = old is None or old.cache_key != key or (
            old.path is not None and not ws.inside(old.path, "render path").is_file())
        plans.append(FramePlan(i, key, s, face, needs))
    return plans


def stale_frames(ws: Workspace, model_id: str) -> list[int]:
    """Target frames whose render is missing or out of date."""
    return [p.index for p in plan(ws, model_id) if p.needs_render]
