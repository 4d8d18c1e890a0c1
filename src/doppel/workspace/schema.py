"""The workspace database schema as a list of forward migrations.

`MIGRATIONS[i]` takes a database from version i to version i + 1: SQL statements separated by ";", or a
function `(db, workspace root)` for a step that must also read files. Never edit a released migration:
append a new one. `SCHEMA_VERSION` is the version this doppel writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

Migration = str | Callable[[sqlite3.Connection, Path], None]


def _v4(db: sqlite3.Connection, root: Path) -> None:
    """3 -> 4: trained models recorded in the database; a face layer's corner in `renders` columns (schema 3
    kept it in the layer's file name, renders/layers/<frame>_<x>_<y>.png, read here once)."""
    from doppel.workspace.models import register_existing

    db.execute("""CREATE TABLE models (
        name TEXT PRIMARY KEY,
        checkpoint TEXT NOT NULL,
        step INTEGER NOT NULL,
        preset TEXT NOT NULL,
        config_json TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""")
    db.execute("ALTER TABLE renders ADD COLUMN layer_x INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE renders ADD COLUMN layer_y INTEGER NOT NULL DEFAULT 0")
    rows = db.execute("SELECT frame_idx, layer_path FROM renders WHERE layer_path IS NOT NULL").fetchall()
    for frame_idx, layer_path in rows:
        parts = Path(layer_path).stem.split("_")
        if len(parts) == 3 and all(p.lstrip("-").isdigit() for p in parts[1:]):
            db.execute("UPDATE renders SET layer_x = ?, layer_y = ? WHERE frame_idx = ?",
                       (int(parts[1]), int(parts[2]), frame_idx))
        else:  # not a name schema 3 wrote: render the frame again
            db.execute("UPDATE renders SET cache_key = '' WHERE frame_idx = ?", (frame_idx,))
    register_existing(db, root)


MIGRATIONS: list[Migration] = [
    # 0 -> 1: media, frames, settings overrides, review state.
    """
    CREATE TABLE schema_version (version INTEGER NOT NULL);
    INSERT INTO schema_version VALUES (0);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE media (
        id INTEGER PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('source', 'target')),
        kind TEXT NOT NULL CHECK (kind IN ('video', 'image', 'sequence')),
        path TEXT NOT NULL,
        name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size_bytes INTEGER NOT NULL,
        codec TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        pix_fmt TEXT NOT NULL,
        fps_num INTEGER NOT NULL,
        fps_den INTEGER NOT NULL,
        time_base_num INTEGER NOT NULL,
        time_base_den INTEGER NOT NULL,
        frame_count INTEGER NOT NULL,
        duration_s REAL NOT NULL,
        rotation INTEGER NOT NULL DEFAULT 0,
        audio_json TEXT NOT NULL DEFAULT '[]',
        files_json TEXT NOT NULL DEFAULT '[]',
        extra_json TEXT NOT NULL DEFAULT '{}',
        added_at TEXT NOT NULL,
        UNIQUE (role, sha256)
    );
    CREATE TABLE frames (
        media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        pts INTEGER NOT NULL,
        time_s REAL NOT NULL,
        status TEXT NOT NULL DEFAULT 'new',
        PRIMARY KEY (media_id, idx)
    ) WITHOUT ROWID;
    CREATE TABLE overrides (
        id INTEGER PRIMARY KEY,
        first_frame INTEGER NOT NULL,
        last_frame INTEGER NOT NULL,
        key TEXT NOT NULL,
        value_json TEXT NOT NULL,
        created_at TEXT NOT NULL,
        CHECK (first_frame <= last_frame)
    );
    CREATE TABLE review (
        frame_idx INTEGER PRIMARY KEY,
        status TEXT NOT NULL CHECK (status IN ('todo', 'ok', 'fix')),
        note TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL
    );
    """,
    # 1 -> 2: extraction: faces, people, per-frame errors.
    """
    ALTER TABLE frames ADD COLUMN error TEXT NOT NULL DEFAULT '';
    CREATE TABLE faces (
        id INTEGER PRIMARY KEY,
        media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
        frame_idx INTEGER NOT NULL,
        face_idx INTEGER NOT NULL,
        x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
        score REAL NOT NULL,
        mesh BLOB NOT NULL,
        lm68 BLOB NOT NULL,
        lm68_smooth BLOB,
        matrix TEXT NOT NULL,
        face_type TEXT NOT NULL,
        crop_size INTEGER NOT NULL,
        crop_path TEXT NOT NULL,
        crop_sha256 TEXT NOT NULL,
        polygon BLOB NOT NULL,
        embedding BLOB NOT NULL,
        yaw REAL NOT NULL, pitch REAL NOT NULL, roll REAL NOT NULL,
        sharpness REAL NOT NULL,
        size_px REAL NOT NULL,
        track_id INTEGER,
        person_id INTEGER,
        excluded INTEGER NOT NULL DEFAULT 0,
        exclude_reason TEXT NOT NULL DEFAULT '',
        UNIQUE (media_id, frame_idx, face_idx)
    );
    CREATE INDEX faces_person ON faces (person_id);
    CREATE TABLE people (
        id INTEGER PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('source', 'target')),
        embedding BLOB NOT NULL,
        faces INTEGER NOT NULL,
        median_size_px REAL NOT NULL,
        chosen INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 2 -> 3: merge render cache.
    """
    CREATE TABLE renders (
        frame_idx INTEGER PRIMARY KEY,
        cache_key TEXT NOT NULL,
        path TEXT,
        layer_path TEXT,
        face_id INTEGER,
        matrix TEXT,
        updated_at TEXT NOT NULL
    );
    """,
    # 3 -> 4: models table; face layer corners as columns.
    _v4,
    # 4 -> 5: occlusion masks (doppel.occlusion): drawn/suggested labels per face, versioned, and the stored
    # mask of each face.
    """
    CREATE TABLE mask_labels (
        id INTEGER PRIMARY KEY,
        face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('drawn', 'suggested', 'confirmed')),
        label_json TEXT NOT NULL,
        origin_id INTEGER,
        created_at TEXT NOT NULL,
        UNIQUE (face_id, version)
    );
    CREATE TABLE occlusion_masks (
        face_id INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
        origin TEXT NOT NULL,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
    # 5 -> 6 (the studio, issue 12): review state per frame range, notes, keyframes, manual landmark edits and
    # the undo log. Appended last: renumbering it after another branch's migration only moves this entry.
    """
    CREATE TABLE review_ranges (
        id INTEGER PRIMARY KEY,
        first_frame INTEGER NOT NULL,
        last_frame INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('approved', 'needs_work')),
        created_at TEXT NOT NULL,
        CHECK (first_frame <= last_frame)
    );
    CREATE TABLE notes (
        id INTEGER PRIMARY KEY,
        first_frame INTEGER NOT NULL,
        last_frame INTEGER NOT NULL,
        text TEXT NOT NULL,
        resolved INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        CHECK (first_frame <= last_frame)
    );
    CREATE TABLE keyframes (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL,
        frame INTEGER NOT NULL,
        value_json TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (key, frame)
    );
    CREATE TABLE landmark_edits (
        id INTEGER PRIMARY KEY,
        media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
        frame_idx INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('anchors', 'interpolate')),
        lm68 BLOB NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (media_id, frame_idx)
    );
    CREATE TABLE edit_log (
        id INTEGER PRIMARY KEY,
        label TEXT NOT NULL,
        changes_json TEXT NOT NULL,
        undone INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    """,
    # 6 -> 7 (issue 14): each face's 52 expression coefficients (doppel.extract.blendshapes), read from its crop
    # once; `crop_key` says from which crop and models, so a re-made crop is read again.
    """
    CREATE TABLE face_expressions (
        face_id INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
        crop_key TEXT NOT NULL,
        coefficients BLOB NOT NULL
    );
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
