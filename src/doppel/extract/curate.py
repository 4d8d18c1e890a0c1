"""Face sets: list, sort, pick the best spread over poses, exclude and include. Nothing is ever deleted."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from doppel.errors import DoppelError
from doppel.workspace import Workspace
from doppel.workspace.faces import Face
from doppel.workspace.records import Role

SORT_KEYS = ("frame", "sharpness", "yaw", "pitch", "size", "identity")


def face_set(ws: Workspace, role: Role, *, person: str = "chosen", excluded: bool = True) -> list[Face]:
    """Faces of `role` media: of the chosen person ("chosen"), of everyone ("all"), or of person id N."""
    if person == "chosen":
        return ws.faces.of_chosen(role, usable_only=not excluded)
    person_id = None
    if person != "all":
        try:
            person_id = int(person)
        except ValueError as exc:
            raise DoppelError(f"--person must be 'chosen', 'all' or a person id, not {person!r}") from exc
    return ws.faces.of_role(role, person_id=person_id, usable_only=not excluded)


def sort_faces(faces: list[Face], key: str, reference: np.ndarray | None = None) -> list[Face]:
    """Sorted copy: sharpness and size best first, yaw and pitch ascending, identity nearest first."""
    keys: dict[str, Callable[[Face], float]] = {
        "frame": lambda f: f.media_id * 1e9 + f.frame_idx * 100 + f.face_idx,
        "sharpness": lambda f: -f.sharpness,
        "yaw": lambda f: f.yaw,
        "pitch": lambda f: f.pitch,
        "size": lambda f: -f.size_px,
        "identity": lambda f: 1.0 - float(f.embedding @ reference) if reference is not None else 0.0,
    }
    if key not in keys:
        raise DoppelError(f"unknown sort key {key!r}; choose one of {', '.join(SORT_KEYS)}")
    return sorted(faces, key=lambda f: (keys[key](f), f.id))


def best_spread(faces: list[Face], n: int, yaw_bins: int = 16, pitch_bins: int = 8) -> list[Face]:
    """Up to `n` faces spread over head poses, the sharpest of each pose first (DeepFaceLab's "final" sort):
    faces are binned by yaw and pitch, and bins are visited round-robin, each giving its next-sharpest face."""
    if n >= len(faces):
        return list(faces)
    bins: dict[tuple[int, int], list[Face]] = {}
    for f in faces:
        y = int(np.clip((f.yaw + 90) / 180 * yaw_bins, 0, yaw_bins - 1))
        p = int(np.clip((f.pitch + 90) / 180 * pitch_bins, 0, pitch_bins - 1))
        bins.setdefault((y, p), []).append(f)
    queues = [sorted(v, key=lambda f: (-f.sharpness, f.id)) for _, v in sorted(bins.items())]
    picked: list[Face] = []
    depth = 0
    while len(picked) < n:
        for q in queues:
            if depth < len(q) and len(picked) < n:
                picked.append(q[depth])
        depth += 1
    return picked


def parse_ids(text: str) -> list[int]:
    """'3,7-9' -> [3, 7, 8, 9]."""
    ids: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part:
                lo, hi = part.split("-", 1)
                ids.extend(range(int(lo), int(hi) + 1))
            elif part.strip():
                ids.append(int(part))
    except ValueError as exc:
        raise DoppelError(f"face ids must look like 3,7-9 (got {text!r})") from exc
    return ids


def set_excluded(ws: Workspace, ids: list[int], excluded: bool, reason: str) -> int:
    """Exclude or include faces by id, recording the user's reason. Unknown ids are an error (nothing changes)."""
    if not ids:
        return 0
    unknown = sorted(set(ids) - ws.faces.existing(ids))
    if unknown:
        raise DoppelError(f"no face with id {', '.join(map(str, unknown[:10]))} in this workspace")
    text = f"user: {reason}" if excluded else "user: included"
    with ws.transaction():
        ws.faces.set_excluded(ids, excluded, text)
    return len(ids)


def keep_best(ws: Workspace, role: Role, n: int) -> tuple[int, int]:
    """Keep the best `n` usable faces of the chosen person spread over poses; exclude the other usable ones.
    Returns (kept, newly excluded)."""
    usable = face_set(ws, role, excluded=False)
    keep = {f.id for f in best_spread(usable, n)}
    drop = [f.id for f in usable if f.id not in keep]
    set_excluded(ws, drop, True, f"not in best {n}")
    return len(keep), len(drop)
