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
        """The record of a media row and its frames' timestamps; ValueError when the row is damaged (its
        frame rows disagree with the probed frame count, a rate is not positive, a JSON column is garbage)."""
        if row["role"] not in ("source", "target") or row["kind"] not in ("video", "image", "sequence"):
            raise ValueError(f"role {row['role']!r} / kind {row['kind']!r}")
        if len(pts) != row["frame_count"] or not pts:
            raise ValueError(f"{len(pts)} frame rows for {row['frame_count']} probed frames")
        if any(not isinstance(p, int) for p in pts) or list(pts) != sorted(set(pts)):
            raise ValueError("frame timestamps are not increasing integers")
        for key in ("fps_num", "fps_den", "time_base_num", "time_base_den", "width", "height"):
            if not isinstance(row[key], int) or row[key] < (0 if key in ("width", "height") else 1):
                raise ValueError(f"{key} = {row[key]!r}")
        if not isinstance(row["path"], str) or not row["path"] or not Path(row["path"]).is_absolute():
            raise ValueError(f"path {row['path']!r}")
        if not isinstance(row["rotation"], int) or row["rotation"] % 90:
            raise ValueError(f"rotation = {row['rotation']!r}")
        files = json.loads(row["files_json"])
        if not isinstance(files, list) or any(not isinstance(f, str) or Path(f).name != f or f in ("", ".", "..")
                                              for f in files):
            raise ValueError("the file list of an image sequence names paths outside its folder")
        if not isinstance(json.loads(row["extra_json"]), dict):
            raise ValueError("extra_json is not an object")
        info = MediaInfo(
            path=row["path"], kind=row["kind"], sha256=row["sha256"], size_bytes=row["size_bytes"],
            codec=row["codec"], width=row["width"], height=row["height"], pix_fmt=row["pix_fmt"],
            fps=Fraction(row["fps_num"], row["fps_den"]),
            time_base=Fraction(row["time_base_num"], row["time_base_den"]), pts=pts,
            rotation=row["rotation"], audio=tuple(AudioInfo(**a) for a in json.loads(row["audio_json"])),
            files=tuple(files), extra=json.loads(row["extra_json"]),
        )
        return cls(id=row["id"], role=row["role"], name=row["name"], info=info, added_at=row["added_at"])

    @property
    def path(self) -> Path:
        return Path(self.info.path)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "role": self.role, "name": self.name, "added_at": self.added_at,
                **self.info.to_json()}
