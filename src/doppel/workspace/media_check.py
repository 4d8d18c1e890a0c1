"""Registered media must still be what was probed: checked before every stage that reads them.

Media are the one thing a workspace points at outside itself (absolute paths), so a stage first checks that
each file is still there and unchanged: size and modification time first (cheap), and the SHA-256 recorded
at `doppel add` only when those changed. A file with the same content but a new mtime (copied back, touched)
is accepted and its new stamp remembered.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from doppel.errors import DoppelError
from doppel.media.probe import content_hash, stat_stamp
from doppel.workspace.db import Workspace
from doppel.workspace.records import Media


def check_media(ws: Workspace, media: Sequence[Media]) -> None:
    """Raise a DoppelError naming the first media item that is missing, moved or changed since it was added."""
    refreshed: list[tuple[int, dict[str, object]]] = []
    for m in media:
        path = Path(m.info.path)
        try:
            stamp = stat_stamp(path, m.info.files)
        except OSError as exc:
            raise DoppelError(f"{m.role} media #{m.id} is missing: it was moved or deleted after `doppel add` "
                              f"({exc.strerror or exc}); put it back at this path", path) from exc
        if stamp == m.info.extra.get("stat"):
            continue
        try:
            digest = content_hash(path, m.info.files)
        except OSError as exc:
            raise DoppelError(f"{m.role} media #{m.id} cannot be read ({exc.strerror or exc})", path) from exc
        if digest != m.info.sha256:
            raise DoppelError(f"{m.role} media #{m.id} changed after `doppel add` (its content is not what was "
                              "probed); put the original back, or start a new workspace for the new file", path)
        refreshed.append((m.id, {**m.info.extra, "stat": stamp}))
    if refreshed:
        with ws.transaction() as db:
            db.executemany("UPDATE media SET extra_json = ? WHERE id = ?",
                           [(json.dumps(extra), media_id) for media_id, extra in refreshed])
