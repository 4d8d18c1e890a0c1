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
        _check_no_target(ws, paths[0])  # early, to spare the probe; checked again inside the write
    if fps is not None and not 0 < fps <= 1000:
        raise DoppelError(f"--fps {fps} is out of range (above 0, at most 1000)")
    seq_fps = fps or Fraction(ws.settings.ingest.sequence_fps).limit_denominator(1001)
    infos: list[MediaInfo] = []
    seen: dict[str, Path] = {}
    for path in paths:
        info = probe(Path(path), fps=seq_fps, progress=progress_for(Path(path)) if progress_for else None)
        if role == "target" and info.kind == "image":
            raise DoppelError("the target must be a video or a folder of frames, not a single image", path)
        if role == "target" and info.kind == "sequence" and info.extra.get("mixed_sizes"):
            raise DoppelError("target image sequence mixes frame sizes", path)
        _check_not_added(ws, info, role, Path(path))
        if info.sha256 in seen:
            raise DoppelError(f"same content as {seen[info.sha256]}, given twice", path)
        seen[info.sha256] = Path(path)
        infos.append(info)
    # The checks are repeated inside the write transaction (BEGIN IMMEDIATE): a concurrent `doppel add` may
    # have added a target or the same file while this one was probing.
    with ws.transaction() as db:
        if role == "target":
            _check_no_target(ws, paths[0])
        for info, path in zip(infos, paths, strict=True):
            _check_not_added(ws, info, role, Path(path))
        return [ws.insert_media(db, info, role) for info in infos]


def _check_no_target(ws: Workspace, path: Path) -> None:
    existing = ws.target()
    if existing is not None:
        raise DoppelError(f"workspace already has a target ({existing.name}, media #{existing.id})", path)


def _check_not_added(ws: Workspace, info: MediaInfo, role: Role, path: Path) -> None:
    duplicate = ws.find_media_by_hash(info.sha256, role)
    if duplicate is not None:
        raise DoppelError(f"already in this workspace as {role} media #{duplicate.id} ({duplicate.name})", path)
