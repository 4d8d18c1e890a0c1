"""Helpers of the safety tests: run the CLI in-process, and fingerprint a workspace's files."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from doppel.cli import cli


def run(*args: object) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `doppel ARGS` run in-process."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def tree_hash(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under `root` (symlinks by target, not followed), leaving out
    what may change without any data changing: SQLite's -wal/-shm side files and the stage lock files."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) == root and d == "locks")]
        for name in filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if rel.endswith(("-wal", "-shm")):
                continue
            if path.is_symlink():
                found[rel] = "-> " + os.readlink(path)
            elif name == "doppel.db":
                found[rel] = _database_hash(path)
            else:
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _database_hash(path: Path) -> str:
    """The hash of a database's content (its SQL dump, WAL included) rather than of its bytes: closing a
    connection folds the WAL into the file, changing bytes but not data. A damaged file: its bytes."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return "sql:" + hashlib.sha256("\n".join(db.iterdump()).encode()).hexdigest()
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line_error(err: str, *needles: str) -> bool:
    """Whether `err` is exactly one `error: ...` line that contains every needle, and no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    return (len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
            and all(n in lines[0] for n in needles))


def copy_workspace(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def sql(ws: Path, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Run one statement on a workspace's database from outside doppel (as a user or another tool would)."""
    db = sqlite3.connect(ws / "doppel.db")
    try:
        rows = db.execute(statement, params).fetchall()
        db.commit()
        return rows
    finally:
        db.close()
