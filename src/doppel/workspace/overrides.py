"""The `overrides` table: one [merge] setting for a range of target frames. Later overrides win."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from doppel.workspace.records import now


@dataclass(frozen=True)
class Override:
    id: int
    first: int
    last: int
    key: str
    value: Any


class OverrideStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def add(self, first: int, last: int, key: str, value: Any) -> Override:
        """Store an override (already checked by the caller); returns it with its id."""
        cur = self.db.execute("INSERT INTO overrides (first_frame, last_frame, key, value_json, created_at) "
                              "VALUES (?,?,?,?,?)", (first, last, key, json.dumps(value), now()))
        return Override(int(cur.lastrowid or 0), first, last, key, value)

    def remove(self, ids: list[int] | None = None) -> int:
        """Remove overrides by id (all when `ids` is None); returns how many went."""
        if ids is None:
            return self.db.execute("DELETE FROM overrides").rowcount
        return sum(self.db.execute("DELETE FROM overrides WHERE id = ?", (i,)).rowcount for i in ids)

    def all(self) -> list[Override]:
        rows = self.db.execute("SELECT id, first_frame, last_frame, key, value_json FROM overrides ORDER BY id")
        return [Override(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]
