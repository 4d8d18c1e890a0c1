"""Where an export may write: never into the workspace, never over registered media, never over a folder
that doppel did not make.

A PNG-sequence export or a `--layers` folder may replace an earlier doppel export of the same kind (its
files are recognised by name); any other existing folder is refused, so nothing doppel did not create is
ever deleted.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from doppel.errors import DoppelError
from doppel.fsutil import remove_entry, resolve

_FRAME = re.compile(r"\d{6}\.png")
_PNG_EXPORT_EXTRAS = frozenset({"timestamps.json"})


def is_png_export(folder: Path) -> bool:
    """Whether `folder` holds only what a PNG-sequence export writes (NNNNNN.png, timestamps.json)."""
    return all(not e.is_symlink() and e.is_file() and (_FRAME.fullmatch(e.name) or e.name in _PNG_EXPORT_EXTRAS)
               for e in folder.iterdir())


def is_layers_export(folder: Path) -> bool:
    """Whether `folder` holds only what `--layers` writes (face/ and mask/ of NNNNNN.png, transforms.json)."""
    for e in folder.iterdir():
        if e.is_symlink():
            return False
        if e.name in ("face", "mask") and e.is_dir():
            if not all(f.is_file() and not f.is_symlink() and _FRAME.fullmatch(f.name) for f in e.iterdir()):
                return False
        elif not (e.name == "transforms.json" and e.is_file()):
            return False
    return True


def remove_export_temporaries(destination: Path) -> int:
    """Delete what a killed export to `destination` left beside it: names made by `fsutil.temporary_name`
    (`.NAME.<12 hex>.part...`) and by `fsutil.replace_dir` (`.NAME.<12 hex>.old.tmp`), nothing else.
    Returns how many were removed."""
    stem, name = re.escape(destination.stem), re.escape(destination.name)
    pattern = re.compile(rf"\.{{1,2}}{stem}\.[0-9a-f]{{12}}\.part.*|\.{name}\.[0-9a-f]{{12}}\.old\.tmp")
    removed = 0
    if not destination.parent.is_dir():
        return 0
    for entry in destination.parent.iterdir():
        if not pattern.fullmatch(entry.name) or entry.is_symlink():
            continue
        remove_entry(entry)
        removed += 1
    return removed


def _overlaps(path: Path, other: Path) -> bool:
    return path == other or path.is_relative_to(other) or other.is_relative_to(path)


def check_destination(path: Path, *, root: Path, media: Iterable[Path], folder: bool, what: str) -> Path:
    """Resolve an export destination and refuse it when it is inside the workspace, is (or holds, or lies in)
    registered media, or already exists as something doppel may not replace. Returns the resolved path."""
    path = resolve(path)
    if _overlaps(path, root):
        raise DoppelError(f"{what} would be written into the workspace (or over it); choose a path outside it",
                          path)
    for m in media:
        if _overlaps(path, m):
            raise DoppelError(f"{what} would overwrite registered media ({m}); choose another path", path)
    if not os.path.lexists(path):
        return path
    mode = os.lstat(path).st_mode
    if not folder:
        if stat.S_ISDIR(mode):
            raise DoppelError(f"{what} exists and is a folder; give a file name", path)
        if not stat.S_ISREG(mode):
            raise DoppelError(f"{what} exists and is not a regular file (a link, FIFO or device)", path)
        return path
    if not stat.S_ISDIR(mode):
        raise DoppelError(f"{what} exists and is not a folder", path)
    mine = is_layers_export(path) if what == "layers folder" else is_png_export(path)
    if not mine:
        raise DoppelError(f"{what} exists and holds files doppel did not write; choose a new folder or empty it",
                          path)
    return path
