from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from doppel.errors import DoppelError
from doppel.fsutil import atomic_path, write_text_atomic


def test_atomic_write_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "settings.json"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half-written")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["settings.json"]


def test_full_disk_is_a_clear_error_and_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    write_text_atomic(target, "previous")

    with pytest.raises(DoppelError, match="disk full") as err, atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert str(target) in str(err.value)
    assert target.read_text() == "previous"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_temporary_name_keeps_the_suffix(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "clip.mp4") as tmp:
        assert tmp.suffix == ".mp4" and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "clip.mp4").read_bytes() == b"x"


def test_a_cache_write_without_fsync_is_still_all_or_nothing(tmp_path: Path) -> None:
    target = tmp_path / "render.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target, durable=False) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["render.png"]
    with atomic_path(target, durable=False) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
