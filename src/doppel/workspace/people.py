"""The `people` table: each role's people (tracks grouped by identity) and which one is chosen."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from doppel.workspace.faces import blob, unblob
from doppel.workspace.records import Role


@dataclass(frozen=True)
class Person:
    """A person of the source or the target footage. `embedding`: (128,) float32 unit mean identity."""

    id: int
    role: Role
    embedding: np.ndarray
    faces: int
    median_size_px: float
    chosen: bool


class PeopleStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def chosen(self, role: Role) -> Person | None:
        """The person whose face is swapped (target) or put in (source), once extraction has chosen one."""
        row = self.db.execute("SELECT * FROM people WHERE role = ? AND chosen = 1", (role,)).fetchone()
        return None if row is None else _person(row)

    def all(self, role: Role | None = None) -> list[Person]:
        rows = self.db.execute("SELECT * FROM people" + (" WHERE role = ?" if role else "") + " ORDER BY id",
                               (role,) if role else ())
        return [_person(r) for r in rows]

    def replace_all(self, people: Iterable[Person]) -> None:
        """Forget every person and store these (call inside `Workspace.transaction()`)."""
        self.db.execute("DELETE FROM people")
        self.db.executemany("INSERT INTO people (id, role, embedding, faces, median_size_px, chosen) "
                            "VALUES (?,?,?,?,?,?)",
                            [(p.id, p.role, blob(p.embedding), p.faces, p.median_size_px, int(p.chosen))
                             for p in people])


def _person(r: sqlite3.Row) -> Person:
    return Person(r["id"], r["role"], unblob(r["embedding"]), r["faces"], r["median_size_px"], bool(r["chosen"]))
