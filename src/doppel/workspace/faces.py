"""Face records: what extraction stores per face, and `FaceStore`, the typed queries and updates of the table."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from doppel.workspace.records import Role


def blob(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype=np.float32).tobytes()


def unblob(b: bytes | None, cols: int | None = None) -> np.ndarray:
    if b is None:
        return np.zeros((0, cols or 1), np.float32)
    a = np.frombuffer(b, dtype=np.float32)
    return a.reshape(-1, cols) if cols else a


@dataclass(frozen=True)
class Face:
    """A stored face. Arrays are float32 frame pixels unless said otherwise."""

    id: int
    media_id: int
    frame_idx: int
    face_idx: int
    box: np.ndarray            # (4,)
    score: float
    lm68: np.ndarray           # (68, 2)
    lm68_smooth: np.ndarray | None
    matrix: np.ndarray         # (2, 3) float64 frame -> crop
    face_type: str
    crop_size: int
    crop_path: str             # relative to the workspace root
    polygon: np.ndarray        # (N, 2)
    embedding: np.ndarray      # (128,)
    yaw: float
    pitch: float
    roll: float
    sharpness: float
    size_px: float
    track_id: int | None
    person_id: int | None
    excluded: bool
    exclude_reason: str

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> Face:
        return cls(
            id=r["id"], media_id=r["media_id"], frame_idx=r["frame_idx"], face_idx=r["face_idx"],
            box=np.array([r["x0"], r["y0"], r["x1"], r["y1"]], np.float32), score=r["score"],
            lm68=unblob(r["lm68"], 2),
            lm68_smooth=unblob(r["lm68_smooth"], 2) if r["lm68_smooth"] is not None else None,
            matrix=np.array(json.loads(r["matrix"]), np.float64), face_type=r["face_type"],
            crop_size=r["crop_size"], crop_path=r["crop_path"], polygon=unblob(r["polygon"], 2),
            embedding=unblob(r["embedding"]), yaw=r["yaw"], pitch=r["pitch"], roll=r["roll"],
            sharpness=r["sharpness"], size_px=r["size_px"], track_id=r["track_id"], person_id=r["person_id"],
            excluded=bool(r["excluded"]), exclude_reason=r["exclude_reason"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "media_id": self.media_id, "frame": self.frame_idx, "face": self.face_idx,
            "box": [round(float(v), 2) for v in self.box], "score": round(self.score, 4),
            "yaw": round(self.yaw, 2), "pitch": round(self.pitch, 2), "roll": round(self.roll, 2),
            "sharpness": round(self.sharpness, 2), "size_px": round(self.size_px, 2),
            "track": self.track_id, "person": self.person_id, "excluded": self.excluded,
            "reason": self.exclude_reason, "crop": self.crop_path,
        }


_COLUMNS = ("id, media_id, frame_idx, face_idx, x0, y0, x1, y1, score, lm68, lm68_smooth, matrix, face_type, "
            "crop_size, crop_path, polygon, embedding, yaw, pitch, roll, sharpness, size_px, track_id, "
            "person_id, excluded, exclude_reason")


class FaceStore:
    """The `faces` table: typed queries and updates (the only place its SQL lives)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def _select(self, where: str, params: tuple[Any, ...]) -> list[Face]:
        sql = f"SELECT {_COLUMNS} FROM faces WHERE {where} ORDER BY media_id, frame_idx, face_idx"
        return [Face.from_row(r) for r in self.db.execute(sql, params)]

    def by_id(self, face_id: int) -> Face | None:
        found = self._select("id = ?", (face_id,))
        return found[0] if found else None

    def of_media(self, media_id: int) -> list[Face]:
        """Every face of one media item, in frame order."""
        return self._select("media_id = ?", (media_id,))

    def of_person(self, media_id: int, person_id: int) -> list[Face]:
        return self._select("media_id = ? AND person_id = ?", (media_id, person_id))

    def of_role(self, role: Role, *, person_id: int | None = None, usable_only: bool = False) -> list[Face]:
        """Faces of the `role` media, of one person when `person_id` is given, not excluded if `usable_only`."""
        where = "media_id IN (SELECT id FROM media WHERE role = ?)"
        params: list[Any] = [role]
        if person_id is not None:
            where += " AND person_id = ?"
            params.append(person_id)
        if usable_only:
            where += " AND excluded = 0"
        return self._select(where, tuple(params))

    def of_chosen(self, role: Role, *, media_id: int | None = None, usable_only: bool = False) -> list[Face]:
        """Faces of the person extraction chose for `role` (the one swapped, or the source identity)."""
        where = "person_id = (SELECT id FROM people WHERE role = ? AND chosen = 1)"
        where += " AND media_id IN (SELECT id FROM media WHERE role = ?)"
        params: list[Any] = [role, role]
        if media_id is not None:
            where += " AND media_id = ?"
            params.append(media_id)
        if usable_only:
            where += " AND excluded = 0"
        return self._select(where, tuple(params))

    def count(self, media_id: int | None = None) -> int:
        if media_id is None:
            return int(self.db.execute("SELECT COUNT(*) FROM faces").fetchone()[0])
        return int(self.db.execute("SELECT COUNT(*) FROM faces WHERE media_id = ?", (media_id,)).fetchone()[0])

    def count_by_media(self) -> dict[int, int]:
        return dict(self.db.execute("SELECT media_id, COUNT(*) FROM faces GROUP BY media_id").fetchall())

    def mesh(self, face_id: int) -> np.ndarray:
        """The dense 468x3 mesh of one face (frame pixels; loaded on demand: it is the bulk of a face row)."""
        return unblob(self.db.execute("SELECT mesh FROM faces WHERE id = ?", (face_id,)).fetchone()[0], 3)

    def meshes(self, media_id: int) -> dict[int, list[np.ndarray]]:
        """Frame index -> the 468x3 meshes of that frame's faces, for one media item."""
        out: dict[int, list[np.ndarray]] = {}
        rows = self.db.execute("SELECT frame_idx, mesh FROM faces WHERE media_id = ? ORDER BY frame_idx, face_idx",
                               (media_id,))
        for frame_idx, mesh in rows:
            out.setdefault(frame_idx, []).append(unblob(mesh, 3))
        return out

    def existing(self, ids: Iterable[int]) -> set[int]:
        ids = list(ids)
        placeholders = ",".join("?" * len(ids))
        return {r[0] for r in self.db.execute(f"SELECT id FROM faces WHERE id IN ({placeholders})", ids)}

    def insert(self, media_id: int, frame_idx: int, record: dict[str, Any]) -> None:
        """Insert one face from the plain dict extraction workers send back (arrays as numpy)."""
        self.db.execute(
            """INSERT INTO faces (media_id, frame_idx, face_idx, x0, y0, x1, y1, score, mesh, lm68, matrix,
               face_type, crop_size, crop_path, crop_sha256, polygon, embedding, yaw, pitch, roll, sharpness,
               size_px) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
            (media_id, frame_idx, record["face_idx"], *map(float, record["box"]), record["score"],
             blob(record["mesh"]), blob(record["lm68"]), json.dumps(np.asarray(record["matrix"]).tolist()),
             record["face_type"], record["crop_size"], record["crop_path"], record["crop_sha256"],
             blob(record["polygon"]), blob(record["embedding"]), record["yaw"], record["pitch"], record["roll"],
             record["sharpness"], record["size_px"]),
        )

    def delete_all(self) -> None:
        self.db.execute("DELETE FROM faces")

    def assign(self, face_id: int, track_id: int, person_id: int, reason: str) -> None:
        """Set a face's track and person, and its automatic exclusion flag (`reason`, "" for none). A user's
        own decision (a reason starting "user") is never touched."""
        self.db.execute("UPDATE faces SET track_id = ?, person_id = ? WHERE id = ?", (track_id, person_id, face_id))
        self.db.execute("""UPDATE faces SET excluded = ?, exclude_reason = ?
                           WHERE id = ? AND exclude_reason NOT LIKE 'user%'""", (int(bool(reason)), reason, face_id))

    def set_smoothed(self, smoothed: Iterable[tuple[np.ndarray | None, int]]) -> None:
        """Store smoothed 68-point landmarks ((68, 2) float32 frame pixels, or None) per face id."""
        self.db.executemany("UPDATE faces SET lm68_smooth = ? WHERE id = ?",
                            [(blob(lm) if lm is not None else None, fid) for lm, fid in smoothed])

    def set_excluded(self, ids: list[int], excluded: bool, reason: str) -> None:
        placeholders = ",".join("?" * len(ids))
        self.db.execute(f"UPDATE faces SET excluded = ?, exclude_reason = ? WHERE id IN ({placeholders})",
                        (int(excluded), reason, *ids))
