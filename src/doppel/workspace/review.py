"""Review and repair state kept by the studio: approval per frame range, notes, keyframes, manual landmark
edits, and the undo log that makes every one of those edits (and the studio's range overrides) undoable.

Every change goes through `record`, which applies row changes in one transaction and logs each row as it was
before and after; `undo` puts the "before" rows back, `redo` the "after" rows. A new edit drops the redo stack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

import numpy as np

from doppel.errors import DoppelError
from doppel.workspace.db import Workspace
from doppel.workspace.faces import blob, unblob
from doppel.workspace.records import now
from doppel.workspace.settings import MergeSettings, check_value

ReviewStatus = Literal["approved", "needs_work"]
REVIEW_STATUSES: tuple[str, ...] = ("approved", "needs_work")
KEYFRAME_KEYS: tuple[str, ...] = ("erode", "feather", "sharpen", "grain", "source_detail")
"""Numeric merge settings that can be keyframed (interpolated linearly between keyframes)."""

# The tables an edit may change, with their columns (the first is the primary key). Nothing else is touched.
_TABLES: dict[str, tuple[str, ...]] = {
    "overrides": ("id", "first_frame", "last_frame", "key", "value_json", "created_at"),
    "keyframes": ("id", "key", "frame", "value_json", "created_at"),
    "review_ranges": ("id", "first_frame", "last_frame", "status", "created_at"),
    "notes": ("id", "first_frame", "last_frame", "text", "resolved", "created_at"),
    "landmark_edits": ("id", "media_id", "frame_idx", "kind", "lm68", "created_at"),
    "mask_labels": ("id", "face_id", "version", "kind", "label_json", "origin_id", "created_at"),
}
Change = tuple[str, int | None, dict[str, Any] | None]
"""(table, row id or None for a new row, the row's new columns or None to delete it)."""


@dataclass(frozen=True)
class Keyframe:
    id: int
    key: str
    frame: int
    value: float


@dataclass(frozen=True)
class Note:
    id: int
    first: int
    last: int
    text: str
    resolved: bool

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "first": self.first, "last": self.last, "text": self.text, "resolved": self.resolved}


@dataclass(frozen=True)
class ReviewRange:
    id: int
    first: int
    last: int
    status: str


# -- the undo log ----------------------------------------------------------------------------------------------
def _encode(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: {"hex": v.hex()} if isinstance(v, bytes) else v for k, v in row.items()}


def _decode(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: bytes.fromhex(v["hex"]) if isinstance(v, dict) else v for k, v in row.items()}


def _get(db: Any, table: str, row_id: int) -> dict[str, Any] | None:
    cols = _TABLES[table]
    row = db.execute(f"SELECT {', '.join(cols)} FROM {table} WHERE id = ?", (row_id,)).fetchone()
    return None if row is None else dict(zip(cols, tuple(row), strict=True))


def _put(db: Any, table: str, row_id: int | None, row: dict[str, Any] | None) -> int:
    cols = _TABLES[table]
    if row is None:
        db.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,))
        return int(row_id or 0)
    values = {**row, "id": row_id} if row_id is not None else dict(row)
    names = [c for c in cols if c in values and (c != "id" or values[c] is not None)]
    cur = db.execute(f"INSERT OR REPLACE INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                     tuple(values[c] for c in names))
    return int(row_id if row_id is not None else cur.lastrowid or 0)


def record(ws: Workspace, label: str, changes: list[Change]) -> list[int]:
    """Apply row changes in one transaction and log them for undo. Returns the ids of the rows changed."""
    ids, log = [], []
    with ws.transaction() as db:
        db.execute("DELETE FROM edit_log WHERE undone = 1")
        for table, row_id, row in changes:
            if table not in _TABLES:
                raise ValueError(f"not an editable table: {table}")
            before = _get(db, table, row_id) if row_id is not None else None
            new_id = _put(db, table, row_id, row)
            ids.append(new_id)
            log.append([table, new_id, _encode(before), _encode(_get(db, table, new_id))])
        db.execute("INSERT INTO edit_log (label, changes_json, created_at) VALUES (?,?,?)",
                   (label, json.dumps(log), now()))
    return ids


def snapshot(ws: Workspace, table: str) -> dict[int, dict[str, Any]]:
    """Every row of an editable table by id (for `record_since`, around a library call that writes itself)."""
    cols = _TABLES[table]
    return {int(r[0]): dict(zip(cols, tuple(r), strict=True))
            for r in ws.db.execute(f"SELECT {', '.join(cols)} FROM {table}")}


def record_since(ws: Workspace, label: str, table: str, before: dict[int, dict[str, Any]]) -> int:
    """Log, for undo, what changed in `table` since `snapshot` gave `before` (the changes are already made, by
    a library function with its own transaction). Deleted rows come first in the log, so that undoing puts
    them back after the new rows that took their place are gone. Returns how many rows changed (0: nothing
    is logged)."""
    after = snapshot(ws, table)
    gone = [(i, before[i], None) for i in sorted(set(before) - set(after))]
    changed = [(i, before.get(i), after[i]) for i in sorted(after) if before.get(i) != after[i]]
    log = [[table, i, _encode(old), _encode(new)] for i, old, new in gone + changed]
    if log:
        with ws.transaction() as db:
            db.execute("DELETE FROM edit_log WHERE undone = 1")
            db.execute("INSERT INTO edit_log (label, changes_json, created_at) VALUES (?,?,?)",
                       (label, json.dumps(log), now()))
    return len(log)


def _step(ws: Workspace, undo: bool) -> str | None:
    order = "DESC" if undo else "ASC"
    row = ws.db.execute(f"SELECT id, label, changes_json FROM edit_log WHERE undone = ? ORDER BY id {order} LIMIT 1",
                        (0 if undo else 1,)).fetchone()
    if row is None:
        return None
    changes = json.loads(row[2])
    with ws.transaction() as db:
        for table, row_id, before, after in (reversed(changes) if undo else changes):
            _put(db, table, row_id, _decode(before if undo else after))
        db.execute("UPDATE edit_log SET undone = ? WHERE id = ?", (1 if undo else 0, row[0]))
    return str(row[1])


def undo(ws: Workspace) -> str | None:
    """Revert the latest edit; returns its label, or None when there is nothing to undo."""
    return _step(ws, undo=True)


def redo(ws: Workspace) -> str | None:
    """Re-apply the latest undone edit; returns its label, or None when there is nothing to redo."""
    return _step(ws, undo=False)


def history(ws: Workspace) -> dict[str, Any]:
    rows = ws.db.execute("SELECT label, undone FROM edit_log ORDER BY id").fetchall()
    return {"undo": [r[0] for r in rows if not r[1]][-1:], "redo": [r[0] for r in rows if r[1]][:1],
            "edits": len(rows)}


# -- edits -----------------------------------------------------------------------------------------------------
def _check_range(first: int, last: int, frame_count: int) -> None:
    if not 0 <= first <= last < frame_count:
        raise DoppelError(f"frames {first}-{last} are outside the plate (0-{frame_count - 1})")


def set_override(ws: Workspace, first: int, last: int, key: str, value: Any, frame_count: int) -> int:
    """A [merge] setting for frames first..last (inclusive), validated like doppel.toml; undoable."""
    _check_range(first, last, frame_count)
    value = check_value("merge", key, value, ws.root / "doppel.db")
    row = {"first_frame": first, "last_frame": last, "key": key, "value_json": json.dumps(value),
           "created_at": now()}
    return record(ws, f"set {key} = {value!r} on {first}-{last}", [("overrides", None, row)])[0]


def set_keyframe(ws: Workspace, key: str, frame: int, value: float, frame_count: int) -> int:
    if key not in KEYFRAME_KEYS:
        raise DoppelError(f"{key!r} cannot be keyframed (numeric settings: {', '.join(KEYFRAME_KEYS)})")
    _check_range(frame, frame, frame_count)
    value = check_value("merge", key, value, ws.root / "doppel.db")
    old = ws.db.execute("SELECT id FROM keyframes WHERE key = ? AND frame = ?", (key, frame)).fetchone()
    row = {"key": key, "frame": frame, "value_json": json.dumps(value), "created_at": now()}
    return record(ws, f"keyframe {key} = {value!r} at {frame}", [("keyframes", old[0] if old else None, row)])[0]


def remove_keyframe(ws: Workspace, key: str, frame: int) -> bool:
    old = ws.db.execute("SELECT id FROM keyframes WHERE key = ? AND frame = ?", (key, frame)).fetchone()
    if old is None:
        return False
    record(ws, f"remove keyframe {key} at {frame}", [("keyframes", old[0], None)])
    return True


def set_review(ws: Workspace, first: int, last: int, status: str, frame_count: int) -> int:
    if status not in REVIEW_STATUSES:
        raise DoppelError(f"review status must be one of {', '.join(REVIEW_STATUSES)}, not {status!r}")
    _check_range(first, last, frame_count)
    row = {"first_frame": first, "last_frame": last, "status": status, "created_at": now()}
    return record(ws, f"mark {first}-{last} {status}", [("review_ranges", None, row)])[0]


def add_note(ws: Workspace, first: int, last: int, text: str, frame_count: int) -> int:
    text = text.strip()
    if not text or len(text) > 4000:
        raise DoppelError("a note needs some text (at most 4000 characters)")
    _check_range(first, last, frame_count)
    row = {"first_frame": first, "last_frame": last, "text": text, "resolved": 0, "created_at": now()}
    return record(ws, f"note on {first}-{last}", [("notes", None, row)])[0]


def resolve_note(ws: Workspace, note_id: int, resolved: bool = True) -> None:
    row = _get(ws.db, "notes", note_id)
    if row is None:
        raise DoppelError(f"no note #{note_id}")
    record(ws, f"{'resolve' if resolved else 'reopen'} note #{note_id}",
           [("notes", note_id, {**row, "resolved": int(resolved)})])


def set_landmark_edit(ws: Workspace, media_id: int, frame: int, kind: str, lm68: np.ndarray) -> int:
    """Store a manual 68-point fix (frame pixels) for the subject's face on `frame`; it replaces the extracted
    landmarks in merge and survives re-extraction (it is keyed by frame, not by the face row)."""
    if lm68.shape != (68, 2) or not np.isfinite(lm68).all():
        raise DoppelError("a landmark edit needs 68 finite (x, y) points")
    old = ws.db.execute("SELECT id FROM landmark_edits WHERE media_id = ? AND frame_idx = ?",
                        (media_id, frame)).fetchone()
    row = {"media_id": media_id, "frame_idx": frame, "kind": kind, "lm68": blob(lm68), "created_at": now()}
    return record(ws, f"landmarks on {frame} ({kind})", [("landmark_edits", old[0] if old else None, row)])[0]


# -- reading ---------------------------------------------------------------------------------------------------
def keyframes(ws: Workspace) -> dict[str, list[Keyframe]]:
    """Keyframes per setting, sorted by frame."""
    out: dict[str, list[Keyframe]] = {}
    for r in ws.db.execute("SELECT id, key, frame, value_json FROM keyframes ORDER BY key, frame"):
        out.setdefault(r[1], []).append(Keyframe(r[0], r[1], r[2], float(json.loads(r[3]))))
    return out


def interpolate(keys: list[Keyframe], frame: int) -> float:
    """Linear between the keyframes around `frame`; held at the first/last keyframe outside them."""
    if frame <= keys[0].frame:
        return keys[0].value
    for a, b in zip(keys, keys[1:], strict=False):
        if a.frame <= frame <= b.frame:
            t = (frame - a.frame) / (b.frame - a.frame)
            return a.value + t * (b.value - a.value)
    return keys[-1].value


def apply_keyframes(settings: MergeSettings, keys: dict[str, list[Keyframe]], frame: int) -> MergeSettings:
    """The settings with every keyframed value interpolated at `frame` (keyframes win over range overrides).
    Values are rounded to 4 decimals so the render cache key is stable."""
    changes: dict[str, Any] = {k: round(interpolate(v, frame), 4) for k, v in keys.items() if v}
    return replace(settings, **changes) if changes else settings


def landmark_edits(ws: Workspace, media_id: int) -> dict[int, tuple[str, np.ndarray]]:
    rows = ws.db.execute("SELECT frame_idx, kind, lm68 FROM landmark_edits WHERE media_id = ?", (media_id,))
    return {r[0]: (r[1], unblob(r[2], 2)) for r in rows}


def review_ranges(ws: Workspace) -> list[ReviewRange]:
    rows = ws.db.execute("SELECT id, first_frame, last_frame, status FROM review_ranges ORDER BY id")
    return [ReviewRange(*r) for r in rows]


def review_states(ws: Workspace, frame_count: int) -> list[str]:
    """Per frame: 'approved', 'needs_work' or '' (not reviewed); the latest range wins."""
    states = [""] * frame_count
    for r in review_ranges(ws):
        for i in range(max(0, r.first), min(frame_count - 1, r.last) + 1):
            states[i] = r.status
    return states


def notes(ws: Workspace) -> list[Note]:
    rows = ws.db.execute("SELECT id, first_frame, last_frame, text, resolved FROM notes ORDER BY first_frame, id")
    return [Note(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]


def summary(ws: Workspace, frame_count: int, problem_frames: list[int] | None = None) -> dict[str, Any]:
    """The shot's review state: approved share, frames needing work, open notes, problem frames not approved."""
    states = review_states(ws, frame_count)
    approved = sum(s == "approved" for s in states)
    open_notes = [n.to_json() for n in notes(ws) if not n.resolved]
    out: dict[str, Any] = {
        "frames": frame_count, "approved": approved,
        "approved_pct": round(100 * approved / frame_count, 2) if frame_count else 0.0,
        "needs_work": sum(s == "needs_work" for s in states),
        "unapproved": frame_count - approved,
        "ranges": [{"first": r.first, "last": r.last, "status": r.status} for r in review_ranges(ws)],
        "open_notes": open_notes,
        "keyframes": {k: [{"frame": f.frame, "value": f.value} for f in v] for k, v in keyframes(ws).items()},
    }
    if problem_frames is not None:
        out["problem_frames_left"] = [i for i in problem_frames if states[i] != "approved"]
    return out


def merge_setting_names() -> list[str]:
    return [f.name for f in fields(MergeSettings)]


def unapproved_warning(ws: Workspace) -> str | None:
    """A warning for `doppel export` when frames of the target are not approved in review (None when all are)."""
    row = ws.db.execute("SELECT frame_count FROM media WHERE role = 'target' ORDER BY id LIMIT 1").fetchone()
    if row is None:
        return None
    states = review_states(ws, row[0])
    left = [i for i, s in enumerate(states) if s != "approved"]
    if not left:
        return None
    return (f"{len(left)} of {len(states)} frames are not approved in review (first: {left[0]}); "
            "see `doppel review` or `doppel studio`")
