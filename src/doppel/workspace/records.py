"""Typed records stored in the workspace database."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from doppel.media.probe import AudioInfo, MediaInfo

Role = Literal["source", "target"]


def now() -> str:
    """The current UTC time as stored in the database (ISO 8601, seconds)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Media:
    """One ingested input: a video, a still, or an image sequence, as a source or as the target."""

    id: int
    role: Role
    name: str
    info: MediaInfo
    added_at: str

    @classmethod
    def from_row(cls, row: sqlite3.Row, pts: tuple[int, ...]) -> Media:
        info = MediaInfo(
            path=row["path"], kind=row["kind"], sha256=row["sha256"], size_bytes=row["size_bytes"],
            codec=row["codec"], width=row["width"], height=row["height"], pix_fmt=row["pix_fmt"],
            fps=Fraction(row["fps_num"], row["fps_den"]),
            time_base=Fraction(row["time_base_num"], row["time_base_den"]), pts=pts,
            rotation=row["rotation"], audio=tuple(AudioInfo(**a) for a in json.loads(row["audio_json"])),
            files=tuple(json.loads(row["files_json"])), extra=json.loads(row["extra_json"]),
        )
        return cls(id=row["id"], role=row["role"], name=row["name"], info=info, added_at=row["added_at"])

    @property
    def path(self) -> Path:
        return Path(self.info.path)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "role": self.role, "name": self.name, "added_at": self.added_at,
                **self.info.to_json()}
