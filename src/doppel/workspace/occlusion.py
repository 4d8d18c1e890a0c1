"""The `mask_labels` and `occlusion_masks` tables (doppel.occlusion): drawn/suggested/confirmed labels per face,
every edit a new version; and the stored occlusion mask of each face (a PNG in the face's aligned crop).

Labels travel as their JSON text here; parsing and painting them is doppel.occlusion.labels' business.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from doppel.workspace.records import now


@dataclass(frozen=True)
class LabelRow:
    id: int
    face_id: int
    version: int
    kind: str
    label_json: str
    origin_id: int | None
    created_at: str


@dataclass(frozen=True)
class StoredMask:
    face_id: int
    origin: str
    """What made it: the network's id (and apply's version), or `label:<id>` for an artist's label."""
    path: str
    """A PNG relative to the workspace root."""
    sha256: str


def _label(r: sqlite3.Row) -> LabelRow:
    return LabelRow(r["id"], r["face_id"], r["version"], r["kind"], r["label_json"], r["origin_id"], r["created_at"])


class OcclusionStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    # -- labels -------------------------------------------------------------------------------------------
    def face_exists(self, face_id: int) -> bool:
        return self.db.execute("SELECT 1 FROM faces WHERE id = ?", (face_id,)).fetchone() is not None

    def add_label(self, face_id: int, kind: str, label_json: str, origin_id: int | None) -> LabelRow:
        """A new newest version of the face's label (call inside `ws.transaction()`)."""
        version = int(self.db.execute("SELECT COALESCE(MAX(version), 0) FROM mask_labels WHERE face_id = ?",
                                      (face_id,)).fetchone()[0]) + 1
        created = now()
        cur = self.db.execute("INSERT INTO mask_labels (face_id, version, kind, label_json, origin_id, created_at) "
                              "VALUES (?,?,?,?,?,?)", (face_id, version, kind, label_json, origin_id, created))
        return LabelRow(int(cur.lastrowid or 0), face_id, version, kind, label_json, origin_id, created)

    def delete_label(self, label_id: int) -> None:
        self.db.execute("DELETE FROM mask_labels WHERE id = ?", (label_id,))

    def newest_label(self, face_id: int) -> LabelRow | None:
        r = self.db.execute("SELECT * FROM mask_labels WHERE face_id = ? ORDER BY version DESC LIMIT 1",
                            (face_id,)).fetchone()
        return None if r is None else _label(r)

    def label_history(self, face_id: int) -> list[LabelRow]:
        return [_label(r) for r in self.db.execute("SELECT * FROM mask_labels WHERE face_id = ? ORDER BY version",
                                                   (face_id,))]

    def newest_labels(self) -> list[LabelRow]:
        """The newest version of every labelled face's label."""
        rows = self.db.execute("SELECT l.* FROM mask_labels l JOIN (SELECT face_id, MAX(version) AS v "
                               "FROM mask_labels GROUP BY face_id) n ON l.face_id = n.face_id AND l.version = n.v")
        return [_label(r) for r in rows]

    # -- stored masks -------------------------------------------------------------------------------------
    def masks(self) -> dict[int, StoredMask]:
        rows = self.db.execute("SELECT face_id, origin, path, sha256 FROM occlusion_masks")
        return {r[0]: StoredMask(r[0], r[1], r[2], r[3]) for r in rows}

    def put_masks(self, masks: Iterable[StoredMask]) -> None:
        """Record stored masks (call inside `ws.transaction()`)."""
        self.db.executemany("INSERT OR REPLACE INTO occlusion_masks VALUES (?,?,?,?,?)",
                            [(m.face_id, m.origin, m.path, m.sha256, now()) for m in masks])
