"""Paths stored in a workspace never lead outside it.

A workspace is a folder people share and download, so everything it names (render paths, face crops, model
names, checkpoint pointers, its own sub-folders) is resolved against the workspace root, symlinks included,
and refused when it escapes. Registered media are the one deliberate exception: they are absolute paths,
checked by size, mtime and hash instead (`doppel.workspace.media_check`).
"""

from __future__ import annotations

import os
from pathlib import Path

from doppel.errors import DoppelError
from doppel.fsutil import resolve


def inside(root: Path, stored: Path | str, what: str = "stored path") -> Path:
    """The absolute path of `stored` (relative to `root`), refused when it leads outside `root`.

    `..` components, absolute paths and symlinks (to files or folders) that resolve outside the workspace
    all count as escaping. The returned path is fully resolved.
    """
    base = resolve(root)
    if not isinstance(stored, str | Path) or not str(stored) or "\0" in str(stored):
        raise DoppelError(f"{what} {str(stored)!r} is not a valid path; the workspace is damaged", base)
    target = resolve(base / stored)
    if not target.is_relative_to(base):
        raise DoppelError(f"{what} {str(stored)!r} leads outside the workspace (to {target}); refusing to use it",
                          base)
    return target


def subdir(root: Path, name: str) -> Path:
    """The workspace's sub-folder `name` (made when missing); refused when it is, or links to, anything
    outside the workspace or is not a folder."""
    path = inside(root, name, "folder")
    if os.path.lexists(path) and not path.is_dir():
        raise DoppelError(f"{name} in the workspace is not a folder", path)
    path.mkdir(parents=True, exist_ok=True)
    return path
