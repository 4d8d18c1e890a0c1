"""The `face_expressions` table: each face's expression coefficients (`doppel.extract.blendshapes`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

import numpy as np

from doppel.workspace.faces import blob, unblob


class ExpressionStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def get(self, face_ids: Sequence[int]) -> dict[int, tuple[str, np.ndarray]]:
        """{face id: (crop key, coefficients)} of those of `face_ids` that have a row; a damaged row is left
        out (it is computed again)."""
        out: dict[int, tuple[str, np.ndarray]] = {}
        ids = list(face_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = self.db.execute(f"SELECT face_id, crop_key, coefficients FROM face_expressions WHERE face_id IN "
                                   f"({','.join('?' * len(chunk))})", chunk)
            for face_id, key, data in rows:
                try:
                    out[int(face_id)] = (str(key), unblob(data))
                except ValueError:
                    continue
        return out

    def put(self, rows: Iterable[tuple[int, str, np.ndarray]]) -> None:
        """Store (face id, crop key, coefficients) rows (call inside `ws.transaction()`)."""
        self.db.executemany("INSERT OR REPLACE INTO face_expressions VALUES (?,?,?)",
                            [(face_id, key, blob(values)) for face_id, key, values in rows])
