"""The `renders` table: merge's render cache, one row per target frame.

A swapped frame has its composited render (`path`) and its face layer (`layer_path`, an RGBA PNG covering the
face's region of the frame, whose top-left corner in the frame is `layer_x`, `layer_y`); a frame passed
through has neither. `cache_key` covers everything the frame's pixels depend on.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from doppel.workspace.records import now


@dataclass(frozen=True)
class Render:
    frame: int
    cache_key: str
    path: str | None = None
    """The composited frame, relative to the workspace root (None: the plate passes through)."""
    layer_path: str | None = None
    layer_x: int = 0
    layer_y: int = 0
    face_id: int | None = None
    matrix: np.ndarray | None = None
    """(2, 3) float64 frame -> model crop matrix used for this frame."""

    @property
    def swapped(self) -> bool:
        return self.path is not None


class RenderStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    @staticmethod
    def files(frame: int) -> tuple[str, str]:
        """Where a swapped frame's render and face layer go (relative to the workspace root)."""
        return f"renders/{frame:06d}.png", f"renders/layers/{frame:06d}.png"

    def all(self) -> dict[int, Render]:
        """Frame index -> its stored render."""
        rows = self.db.execute("SELECT frame_idx, cache_key, path, layer_path, layer_x, layer_y, face_id, matrix "
                               "FROM renders ORDER BY frame_idx")
        return {r[0]: Render(r[0], r[1], r[2], r[3], r[4] or 0, r[5] or 0, r[6],
                             np.array(json.loads(r[7]), np.float64) if r[7] else None) for r in rows}

    def swapped(self) -> dict[int, Render]:
        return {i: r for i, r in self.all().items() if r.swapped}

    def counts(self) -> tuple[int, int]:
        """(frames rendered or passed through, frames swapped)."""
        row = self.db.execute("SELECT COUNT(*), COUNT(path) FROM renders").fetchone()
        return int(row[0]), int(row[1])

    def put(self, renders: Iterable[Render]) -> None:
        """Insert or replace renders (call inside `Workspace.transaction()`)."""
        self.db.executemany(
            "INSERT OR REPLACE INTO renders (frame_idx, cache_key, path, layer_path, layer_x, layer_y, face_id, "
            "matrix, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
            [(r.frame, r.cache_key, r.path, r.layer_path, r.layer_x, r.layer_y, r.face_id,
              json.dumps(r.matrix.tolist()) if r.matrix is not None else None, now()) for r in renders])
