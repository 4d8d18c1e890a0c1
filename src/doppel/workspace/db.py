"""Open, create and migrate a workspace; the queries every stage shares."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from doppel.errors import DoppelError
from doppel.fsutil import fsync_dir, resolve
from doppel.media.probe import MediaInfo
from doppel.workspace.expressions import ExpressionStore
from doppel.workspace.faces import FaceStore
from doppel.workspace.frames import FrameStore
from doppel.workspace.models import ModelStore
from doppel.workspace.occlusion import OcclusionStore
from doppel.workspace.overrides import OverrideStore
from doppel.workspace.paths import inside, subdir
from doppel.workspace.people import PeopleStore
from doppel.workspace.records import Media, Role, now
from doppel.workspace.renders import RenderStore
from doppel.workspace.schema import MIGRATIONS, SCHEMA_VERSION
from doppel.workspace.settings import Settings, default_toml, load_settings

DB_NAME = "doppel.db"
SETTINGS_NAME = "doppel.toml"
RESTORE = "restore doppel.db from a backup"
DatabaseError = sqlite3.DatabaseError
"""What SQLite raises when a database turns out damaged after it opened; the CLI makes it one line."""


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    return db


def schema_version(db: sqlite3.Connection) -> int:
    try:
        row = db.execute("SELECT version FROM schema_version").fetchone()
    except sqlite3.OperationalError:
        return 0
    return row[0] if row is not None and isinstance(row[0], int) else 0


def migrate(db: sqlite3.Connection, path: Path, upto: int = SCHEMA_VERSION) -> None:
    """Bring the database to version `upto` (default: SCHEMA_VERSION), one transaction per step; refuse
    newer databases. `path` is the database file (its folder is the workspace root, for file-aware steps)."""
    version = schema_version(db)
    if version > SCHEMA_VERSION:
        raise DoppelError(
            f"workspace database has schema version {version}, newer than this doppel supports "
            f"({SCHEMA_VERSION}); upgrade doppel", path)
    for step in range(version, upto):
        db.execute("BEGIN IMMEDIATE")
        try:
            migration = MIGRATIONS[step]
            if isinstance(migration, str):
                for statement in migration.split(";"):
                    if statement.strip():
                        db.execute(statement)
            else:
                migration(db, Path(path).parent)
            db.execute("UPDATE schema_version SET version = ?", (step + 1,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


CREATING = ".doppel-creating."
"""Marks the temporary folder a workspace is built in, beside its final place: `.NAME.doppel-creating.XXXX`."""
CREATOR_NAME = ".creator-pid"


def _sweep_killed_creations(root: Path) -> None:
    """Remove the temporary folders that a killed `create` of this same workspace left beside it: doppel's own
    (named with CREATING, holding the creator's pid file) and only once that process is gone."""
    for tmp in root.parent.glob(f".{root.name}{CREATING}*"):
        if tmp.is_symlink() or not tmp.is_dir():
            continue
        try:
            pid = int((tmp / CREATOR_NAME).read_text())
        except (OSError, ValueError):
            continue  # not provably ours, or still being set up: leave it
        if not _alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Workspace:
    """An open workspace. Use `Workspace.create` or `Workspace.open`; close it (or use `with`)."""

    def __init__(self, root: Path, db: sqlite3.Connection, settings: Settings) -> None:
        self.root = root
        self.db = db
        self.settings = settings
        # Typed access to each table; only the workspace package runs SQL.
        self.faces = FaceStore(db)
        self.frames = FrameStore(db)
        self.people = PeopleStore(db)
        self.renders = RenderStore(db)
        self.models = ModelStore(db, root)
        self.overrides = OverrideStore(db)
        self.occlusion = OcclusionStore(db)
        self.expressions = ExpressionStore(db)

    # -- life cycle ---------------------------------------------------------------------------------------
    @classmethod
    def create(cls, root: Path) -> Workspace:
        """Create a new workspace folder (built beside it, then renamed into place)."""
        root = resolve(root)
        if os.path.lexists(root) and (not root.is_dir() or any(root.iterdir())):
            raise DoppelError("already exists and is not an empty folder", root)
        try:
            root.parent.mkdir(parents=True, exist_ok=True)
            _sweep_killed_creations(root)
            tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}{CREATING}", dir=root.parent))
        except OSError as exc:
            raise DoppelError(f"cannot create the workspace here ({exc.strerror})", root) from exc
        try:
            (tmp / CREATOR_NAME).write_text(str(os.getpid()))
            (tmp / SETTINGS_NAME).write_text(default_toml(), encoding="utf-8")
            db = _connect(tmp / DB_NAME)
            migrate(db, tmp / DB_NAME)
            workspace_id = uuid.uuid4().hex
            db.execute("INSERT INTO meta VALUES ('workspace_id', ?), ('created_at', ?)", (workspace_id, now()))
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.close()
            (tmp / CREATOR_NAME).unlink()
            if root.exists():
                root.rmdir()
            os.replace(tmp, root)
            fsync_dir(root.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls.open(root)

    @classmethod
    def open(cls, root: Path) -> Workspace:
        """Open an existing workspace. Its settings are validated in full and its database checked for
        damage (empty file, missing schema or id) before anything is read or written."""
        root = resolve(root)
        if not root.is_dir():
            raise DoppelError("no such workspace folder", root)
        if not (root / DB_NAME).is_file() or not (root / SETTINGS_NAME).is_file():
            raise DoppelError(f"not a doppel workspace (no {DB_NAME} / {SETTINGS_NAME}); "
                              "create one with `doppel init`", root)
        settings = load_settings(root / SETTINGS_NAME)
        db_path = inside(root, DB_NAME, "database")
        if db_path.stat().st_size == 0:
            raise DoppelError(f"workspace database is empty (0 bytes): the workspace is damaged; {RESTORE}", db_path)
        try:
            db = _connect(db_path)
        except sqlite3.DatabaseError as exc:
            raise DoppelError(f"workspace database is unreadable ({exc}); {RESTORE}", db_path) from exc
        try:
            if schema_version(db) == 0:
                raise DoppelError(f"workspace database has no doppel schema: the workspace is damaged; {RESTORE}",
                                  db_path)
            migrate(db, db_path)
            row = db.execute("SELECT value FROM meta WHERE key = 'workspace_id'").fetchone()
            if row is None or not isinstance(row[0], str) or not row[0]:
                raise DoppelError(f"workspace database has no workspace id: the workspace is damaged; {RESTORE}",
                                  db_path)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise DoppelError(f"workspace database is unreadable ({exc}); {RESTORE}", db_path) from exc
        except BaseException:
            db.close()
            raise
        return cls(root, db, settings)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing writes: commit when the block ends, roll back on any exception."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- paths --------------------------------------------------------------------------------------------
    def subdir(self, name: str) -> Path:
        """The sub-folder `name`, made when missing; refused when it is a link leading outside the workspace."""
        return subdir(self.root, name)

    def inside(self, stored: str, what: str = "stored path") -> Path:
        """A path stored in the workspace (relative to its root), refused when it leads outside it."""
        return inside(self.root, stored, what)

    @property
    def id(self) -> str:
        row = self.db.execute("SELECT value FROM meta WHERE key='workspace_id'").fetchone()
        if row is None or not row[0]:
            raise DoppelError(f"workspace database has no workspace id: the workspace is damaged; {RESTORE}",
                              self.root / DB_NAME)
        return str(row[0])

    def get_meta(self, key: str) -> Any:
        """A JSON value stored under `key` in the workspace's `meta` table, or None."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    # -- media --------------------------------------------------------------------------------------------
    def insert_media(self, db: sqlite3.Connection, info: MediaInfo, role: Role) -> int:
        """Insert a probed media item and its frames; call inside `transaction()`."""
        cur = db.execute(
            """INSERT INTO media (role, kind, path, name, sha256, size_bytes, codec, width, height, pix_fmt,
               fps_num, fps_den, time_base_num, time_base_den, frame_count, duration_s, rotation,
               audio_json, files_json, extra_json, added_at)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
            (role, info.kind, info.path, Path(info.path).name, info.sha256, info.size_bytes, info.codec,
             info.width, info.height, info.pix_fmt, info.fps.numerator, info.fps.denominator,
             info.time_base.numerator, info.time_base.denominator, info.frame_count, info.duration_s,
             info.rotation, json.dumps([asdict(a) for a in info.audio]), json.dumps(list(info.files)),
             json.dumps(info.extra), now()),
        )
        media_id = int(cur.lastrowid or 0)
        t0 = info.pts[0]
        db.executemany(
            "INSERT INTO frames (media_id, idx, pts, time_s) VALUES (?,?,?,?)",
            ((media_id, i, p, float((p - t0) * info.time_base)) for i, p in enumerate(info.pts)),
        )
        return media_id

    def media(self, role: Role | None = None) -> list[Media]:
        rows = self.db.execute(
            "SELECT * FROM media" + (" WHERE role = ?" if role else "") + " ORDER BY id",
            (role,) if role else (),
        ).fetchall()
        return [self._media(r) for r in rows]

    def media_by_id(self, media_id: int) -> Media:
        row = self.db.execute("SELECT * FROM media WHERE id = ?", (media_id,)).fetchone()
        if row is None:
            raise DoppelError(f"no media #{media_id} in this workspace", self.root)
        return self._media(row)

    def _media(self, row: sqlite3.Row) -> Media:
        try:
            return Media.from_row(row, self._pts(row["id"]))
        except (ValueError, TypeError, KeyError, ZeroDivisionError, OverflowError) as exc:
            raise DoppelError(f"media #{row['id']} is damaged in the database ({exc}); {RESTORE}",
                              self.root / DB_NAME) from exc

    def target(self) -> Media | None:
        found = self.media("target")
        return found[0] if found else None

    def find_media_by_hash(self, sha256: str, role: Role) -> Media | None:
        row = self.db.execute("SELECT id FROM media WHERE sha256 = ? AND role = ?", (sha256, role)).fetchone()
        return None if row is None else self.media_by_id(row["id"])

    def _pts(self, media_id: int) -> tuple[int, ...]:
        rows = self.db.execute("SELECT pts FROM frames WHERE media_id = ? ORDER BY idx", (media_id,))
        return tuple(r[0] for r in rows)

    def summary(self) -> dict[str, Any]:
        media = self.media()
        per_media = self.faces.count_by_media()
        failed = self.frames.count_by_media("failed")
        pending = self.frames.count_by_media("new")
        faces = sum(per_media.values())
        models = {m.name: {"step": m.step, "preset": m.preset} for m in self.models.all()}
        merged, swapped = self.renders.counts()
        return {
            "models": models,
            "merged_frames": merged,
            "swapped_frames": swapped,
            "workspace": str(self.root),
            "id": self.id,
            "schema_version": schema_version(self.db),
            "media": [{**m.to_json(), "faces": per_media.get(m.id, 0), "frames_failed": failed.get(m.id, 0),
                       "frames_pending": pending.get(m.id, 0)} for m in media],
            "frames": {role: sum(m.info.frame_count for m in media if m.role == role)
                       for role in ("source", "target")},
            "faces": faces,
        }
