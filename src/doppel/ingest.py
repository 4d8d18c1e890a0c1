"""Ingest: probe source footage and the target plate and record them in the workspace, all or nothing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

from doppel.errors import DoppelError
from doppel.media.probe import MediaInfo, Progress, probe
from doppel.workspace import Workspace
from doppel.workspace.records import Role


def add_media(
    ws: Workspace,
    paths: Sequence[Path],
    role: Role,
    *,
    fps: Fraction | None = None,
    progress_for: Callable[[Path], Progress | None] | None = None,
) -> list[int]:
    """Probe every path first, then insert them in one transaction. Returns the new media ids.

    A target must be one video or image sequence, and a workspace holds one target. Adding a file whose
    content (SHA-256) is already in the workspace in the same role is an error. On any error nothing is
    written.
    """
    if not paths:
        raise DoppelError("nothing to add: give --source PATH... or --target PATH")
    if role == "target":
        if len(paths) != 1:
            raise DoppelError("a workspace has exactly one target; give one --target")
        existing = ws.target()
        if existing is not None:
            raise DoppelError(f"workspace already has a target ({existing.name}, media #{existing.id})",
                              paths[0])
    seq_fps = fps or Fraction(ws.settings.ingest.sequence_fps).limit_denominator(1001)
    infos: list[MediaInfo] = []
    seen: dict[str, Path] = {}
    for path in paths:
        info = probe(Path(path), fps=seq_fps, progress=progress_for(Path(path)) if progress_for else None)
        if role == "target" and info.kind == "image":
            raise DoppelError("the target must be a video or a folder of frames, not a single image", path)
        if role == "target" and info.kind == "sequence" and info.extra.get("mixed_sizes"):
            raise DoppelError("target image sequence mixes frame sizes", path)
        duplicate = ws.find_media_by_hash(info.sha256, role)
        if duplicate is not None:
            raise DoppelError(f"already in this workspace as {role} media #{duplicate.id} ({duplicate.name})",
                              path)
        if info.sha256 in seen:
            raise DoppelError(f"same content as {seen[info.sha256]}, given twice", path)
        seen[info.sha256] = Path(path)
        infos.append(info)
    with ws.transaction() as db:
        return [ws.insert_media(db, info, role) for info in infos]
