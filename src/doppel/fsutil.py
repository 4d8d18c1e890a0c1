"""Crash-safe file writes: everything goes to a temporary file beside the target and is renamed into place."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
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
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=(suffix or target.suffix) + ".part", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp's ".part" ending would hide the real suffix from FFmpeg; use a name that ends in it.
    real_tmp = tmp.with_name(tmp.name[: -len(".part")])
    tmp.unlink()
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
