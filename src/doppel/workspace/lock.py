"""One writer per stage: `extract`, `merge`, `train` and `export` each hold a lock file in WS/locks/.

The lock is an advisory `flock` on `locks/<stage>.lock`, which the kernel drops when its process ends, even
after kill -9; the file records the owner's pid, host and start time so that a second run can say who holds
it. A lock file that exists but that no process holds is stale (its owner died) and is simply taken over.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from doppel.errors import DoppelError
from doppel.workspace.paths import subdir

STAGES = ("extract", "merge", "train", "export")


def lock_path(root: Path, stage: str) -> Path:
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    return subdir(root, "locks") / f"{stage}.lock"


def _owner(fd: int) -> str:
    """Who holds the lock, from the file's content ("pid 123 on host since ...")."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 4096) or b"{}")
        return f"pid {int(data['pid'])} on {data['host']} since {data['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def stage_lock(root: Path, stage: str) -> Iterator[bool]:
    """Hold the workspace's lock for `stage` for the block; a DoppelError ("busy") when another live
    process holds it. Yields whether a stale lock (left by a killed run) was taken over."""
    path = lock_path(root, stage)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise DoppelError(f"cannot open the {stage} lock ({exc.strerror})", path) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise DoppelError(f"cannot take the {stage} lock ({exc.strerror})", path) from exc
            raise DoppelError(f"workspace is busy: another `doppel {stage}` is running ({_owner(fd)}); "
                              "wait for it to finish", root) from None
        stale = os.fstat(fd).st_size > 0  # the previous owner died without clearing it
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        try:
            yield stale
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
