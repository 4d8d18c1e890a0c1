"""The `frames` table's extraction state: each frame is `new`, `done` or `failed` (with the decoder's error)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable


class FrameStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def _indices(self, media_id: int, status: str) -> list[int]:
        rows = self.db.execute("SELECT idx FROM frames WHERE media_id = ? AND status = ? ORDER BY idx",
                               (media_id, status))
        return [r[0] for r in rows]

    def pending(self, media_id: int) -> list[int]:
        """Frames of a media item that extraction has not processed yet."""
        return self._indices(media_id, "new")

    def done(self, media_id: int) -> list[int]:
        return self._indices(media_id, "done")

    def count_by_media(self, status: str) -> dict[int, int]:
        return dict(self.db.execute("SELECT media_id, COUNT(*) FROM frames WHERE status = ? GROUP BY media_id",
                                    (status,)).fetchall())

    def mark_done(self, media_id: int, indices: Iterable[int]) -> None:
        self.db.executemany("UPDATE frames SET status = 'done', error = '' WHERE media_id = ? AND idx = ?",
                            [(media_id, i) for i in indices])

    def mark_failed(self, media_id: int, failures: Iterable[tuple[int, str]]) -> None:
        """Record frames that could not be decoded, with the error message."""
        self.db.executemany("UPDATE frames SET status = 'failed', error = ? WHERE media_id = ? AND idx = ?",
                            [(message, media_id, i) for i, message in failures])

    def reset(self) -> None:
        """Every frame back to `new` (extraction starts over)."""
        self.db.execute("UPDATE frames SET status = 'new', error = ''")
