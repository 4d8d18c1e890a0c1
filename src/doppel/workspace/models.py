"""The `models` table: each trained model of the workspace, its folder and its current checkpoint.

Training records a model here every time it saves a checkpoint; merge, export and `info` find models here
(never by looking through folders). A model's files live under WS/models/<name>/ (see train/checkpoint.py for
the layout inside).
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doppel.errors import DoppelError
from doppel.workspace.records import now

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class ModelRecord:
    name: str
    checkpoint: str
    """The current checkpoint's folder, relative to the workspace root."""
    step: int
    preset: str
    config: dict[str, Any]
    """The model's configuration (train.config.ModelConfig as a dict)."""
    updated_at: str


class ModelStore:
    def __init__(self, db: sqlite3.Connection, root: Path) -> None:
        self.db, self.root = db, root

    def folder(self, name: str) -> Path:
        """WS/models/<name>/, where a model's checkpoints, previews and loss log go. Names are checked, so a
        model's folder never leads outside the workspace."""
        if not _NAME.match(name):
            raise DoppelError(f"a model name is letters, digits, '_', '.' or '-' (at most 64), not {name!r}")
        return self.root / "models" / name

    def record(self, name: str, checkpoint: Path, step: int, preset: str, config: dict[str, Any]) -> None:
        """Make `checkpoint` (a folder inside the workspace) the model's current one."""
        rel = Path(checkpoint).resolve().relative_to(self.root).as_posix()
        self.db.execute("INSERT OR REPLACE INTO models (name, checkpoint, step, preset, config_json, updated_at) "
                        "VALUES (?,?,?,?,?,?)", (name, rel, step, preset, json.dumps(config), now()))

    def get(self, name: str) -> ModelRecord | None:
        row = self.db.execute("SELECT * FROM models WHERE name = ?", (name,)).fetchone()
        return None if row is None else _record(row)

    def all(self) -> list[ModelRecord]:
        return [_record(r) for r in self.db.execute("SELECT * FROM models ORDER BY name")]

    def path(self, record: ModelRecord) -> Path:
        return self.root / record.checkpoint


def _record(r: sqlite3.Row) -> ModelRecord:
    return ModelRecord(r["name"], r["checkpoint"], r["step"], r["preset"], json.loads(r["config_json"]),
                       r["updated_at"])


def register_existing(db: sqlite3.Connection, root: Path) -> None:
    """Migration 3 -> 4: record the models a schema-3 workspace kept only as WS/models/<name>/latest.json."""
    for pointer in sorted((root / "models").glob("*/latest.json")):
        try:
            name = json.loads(pointer.read_text())["checkpoint"]
            folder = pointer.parent / "checkpoints" / name
            state = json.loads((folder / "state.json").read_text())
        except (OSError, ValueError, KeyError):
            continue  # an unreadable model stays unrecorded; training it again records it
        db.execute("INSERT OR REPLACE INTO models (name, checkpoint, step, preset, config_json, updated_at) "
                   "VALUES (?,?,?,?,?,?)", (pointer.parent.name, folder.relative_to(root).as_posix(),
                                            state.get("step", 0), state.get("preset", ""),
                                            json.dumps(state.get("model", {})), now()))
