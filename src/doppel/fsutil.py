"""Crash-safe file writes: everything goes to a temporary file beside the target and is renamed into place."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from doppel.errors import DoppelError


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: Path, suffix: str | None = None, *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it is fsynced and renamed onto `target`.

    On any exception the temporary file is removed and `target` is untouched. The temporary name keeps
    the target's suffix (or `suffix`) so that format guessing by extension (FFmpeg, Pillow) still works.
    `durable=False` skips the two fsyncs (about 10 ms a file here): the write stays all-or-nothing for a
    process that is killed, but not across a power cut. Only for files doppel can make again (render and
    crop caches, overlays), never for the user's output or the only copy of anything.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    real_tmp = temporary_name(target, suffix)
    try:
        yield real_tmp
        if durable:
            with open(real_tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(real_tmp, target)
        if durable:
            fsync_dir(target.parent)
    except OSError as exc:
        real_tmp.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise DoppelError("disk full while writing; nothing was changed", target) from exc
        raise
    except BaseException:
        real_tmp.unlink(missing_ok=True)
        raise


def temporary_name(target: Path, suffix: str | None = None) -> Path:
    """A fresh hidden name beside `target` that `remove_temporaries` recognises: `.NAME.RANDOM.part.SUFFIX`
    (the real suffix last, so that FFmpeg and Pillow still guess the format from it)."""
    return target.with_name(f".{target.stem}.{uuid.uuid4().hex[:12]}.part"
                            f"{target.suffix if suffix is None else suffix}")


def remove_temporaries(folder: Path) -> int:
    """Delete the temporary files (`.*.part*`) and folders (`.*.tmp`) that killed runs left under `folder`;
    returns how many.

    Call only while holding the lock of the stage that owns `folder`, so that no live run's file is taken.
    """
    removed = 0
    if not folder.is_dir() or folder.is_symlink():
        return 0
    for path in [*folder.rglob(".*.part*"), *folder.rglob(".*.tmp")]:
        if path.is_symlink() or not path.name.startswith("."):
            continue
        remove_entry(path)
        removed += 1
    return removed


def remove_entry(path: Path) -> None:
    """Delete one of doppel's own leftovers, a file or a whole folder (the caller has checked the name)."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def replace_dir(new: Path, target: Path) -> None:
    """Move the finished folder `new` onto `target`; an existing `target` (which the caller has checked is
    doppel's own earlier output) is moved aside first and deleted only once `new` is in place."""
    old = None
    if os.path.lexists(target):
        old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.old.tmp")
        os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_bytes_atomic(target: Path, data: bytes, *, durable: bool = True) -> None:
    with atomic_path(target, durable=durable) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: Path, text: str) -> None:
    write_bytes_atomic(target, text.encode("utf-8"))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def resolve(path: Path | str) -> Path:
    """`Path.resolve()` that turns a symlink loop or an unreadable path into a one-line DoppelError."""
    try:
        return Path(path).expanduser().resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop (Python < 3.13)
        raise DoppelError(f"cannot resolve this path ({_reason(exc)})", path) from exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == 40:
        return "symlink loop"
    return getattr(exc, "strerror", None) or str(exc)
