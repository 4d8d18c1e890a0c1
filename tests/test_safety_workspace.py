"""Damaged workspaces and bad settings: one-line errors, a non-zero exit, and nothing on disk changed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from doppel.ingest import add_media
from doppel.workspace import Workspace
from tests.mediagen import coded_frame, make_video
from tests.safety import copy_workspace, one_line_error, run, sql, tree_hash


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    assert run("init", tmp_path / "ws")[0] == 0
    return tmp_path / "ws"


def _set(ws: Path, section: str, key: str, value: str) -> None:
    toml = (ws / "doppel.toml").read_text()
    part = toml.index(f"[{section}]")
    start = toml.index(f"\n{key} = ", part) + 1
    end = toml.index("\n", start)
    (ws / "doppel.toml").write_text(toml[:start] + f"{key} = {value}" + toml[end:])


BAD_SETTINGS = [
    ("extract", "crop_size", "-8"), ("extract", "crop_size", str(10**12)), ("extract", "crop_size", "0"),
    ("ingest", "sequence_fps", "0.0"), ("ingest", "sequence_fps", "-25.0"), ("ingest", "sequence_fps", "nan"),
    ("ingest", "sequence_fps", "inf"), ("extract", "detect_threshold", "1.5"),
    ("extract", "detect_threshold", "-0.1"), ("extract", "detect_threshold", "nan"),
    ("extract", "min_face_px", "0"), ("extract", "min_face_px", "-3"), ("export", "crf", "99"),
    ("export", "crf", "-1"),
]


@pytest.mark.parametrize(("section", "key", "value"), BAD_SETTINGS)
def test_out_of_range_settings_are_refused_before_anything_changes(
        extracted_pair: Path, tmp_path: Path, section: str, key: str, value: str) -> None:
    ws = copy_workspace(extracted_pair, tmp_path / "ws")
    _set(ws, section, key, value)
    before = tree_hash(ws)
    faces = sql(ws, "SELECT COUNT(*) FROM faces")[0][0]
    assert faces > 0
    for args in (("extract", ws, "--redo"), ("info", ws), ("export", ws, tmp_path / "out.mp4")):
        code, _, err = run(*args)
        assert code == 1 and one_line_error(err, "doppel.toml", f"[{section}] {key}", "out of range"), err
    assert tree_hash(ws) == before and sql(ws, "SELECT COUNT(*) FROM faces")[0][0] == faces


@pytest.mark.parametrize("crf", ["-1", "52", "1000"])
def test_crf_option_is_checked_before_anything_is_written(merged_pair: Path, tmp_path: Path, crf: str) -> None:
    ws = copy_workspace(merged_pair, tmp_path / "ws")
    before = tree_hash(ws)
    code, _, err = run("export", ws, tmp_path / "out.mp4", "--crf", crf)
    assert code == 1 and one_line_error(err, "--crf", "out of range", "0 to 28"), err
    assert tree_hash(ws) == before and sorted(p.name for p in tmp_path.iterdir()) == ["ws"]


def test_a_zero_byte_database_is_damage_not_a_new_workspace(ws: Path) -> None:
    (ws / "doppel.db").write_bytes(b"")
    before = tree_hash(ws)
    for args in (("info", ws), ("add", ws, "--source", ws / "doppel.toml")):
        code, _, err = run(*args)
        assert code == 1 and one_line_error(err, "doppel.db", "empty (0 bytes)", "restore doppel.db"), err
    assert tree_hash(ws) == before and (ws / "doppel.db").stat().st_size == 0


DAMAGE = {
    "dropped table": ("DROP TABLE frames", "database is damaged"),
    "empty meta": ("DELETE FROM meta", "no workspace id"),
    "fps_den = 0": ("UPDATE media SET fps_den = 0", "media #1 is damaged"),
    "time_base_den = 0": ("UPDATE media SET time_base_den = 0", "media #1 is damaged"),
    "garbage audio JSON": ("UPDATE media SET audio_json = '{nope'", "media #1 is damaged"),
    "garbage files JSON": ("UPDATE media SET files_json = '[\"../../etc/passwd\"]'", "media #1 is damaged"),
    "frame rows deleted": ("DELETE FROM frames WHERE idx >= 5", "5 frame rows for 16 probed frames"),
    "no schema version": ("DELETE FROM schema_version", "has no doppel schema"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_database_rows_are_one_line_errors(merged_pair: Path, tmp_path: Path, damage: str) -> None:
    ws = copy_workspace(merged_pair, tmp_path / "ws")
    statement, expected = DAMAGE[damage]
    sql(ws, statement)
    before = tree_hash(ws)
    for args in (("info", ws), ("merge", ws), ("export", ws, tmp_path / "out.mp4")):
        code, _, err = run(*args)
        assert code == 1 and one_line_error(err, "doppel.db"), (args, err)
        assert "internal error" not in err
    code, _, err = run("info", ws)
    assert expected in err, err
    assert tree_hash(ws) == before and not (tmp_path / "out.mp4").exists()


def test_garbage_blobs_and_damaged_pages_are_one_line_errors(merged_pair: Path, tmp_path: Path) -> None:
    ws = copy_workspace(merged_pair, tmp_path / "ws")
    sql(ws, "UPDATE faces SET lm68 = x'0102', polygon = x'00'")
    before = tree_hash(ws)
    for args in (("merge", ws), ("faces", ws, "--role", "target")):
        code, _, err = run(*args)
        assert code == 1 and one_line_error(err, "doppel.db"), (args, err)
    assert tree_hash(ws) == before
    ws2 = copy_workspace(merged_pair, tmp_path / "ws2")
    sql(ws2, "PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray((ws2 / "doppel.db").read_bytes())
    page = 4096
    data[page * 2:page * 2 + 200] = b"\xff" * 200  # scribble over a b-tree page
    (ws2 / "doppel.db").write_bytes(bytes(data))
    before = tree_hash(ws2)
    for args in (("info", ws2), ("merge", ws2), ("export", ws2, tmp_path / "out.mp4")):
        code, _, err = run(*args)
        assert code == 1 and one_line_error(err, "doppel.db"), (args, err)
    assert tree_hash(ws2) == before


def test_the_one_target_check_runs_inside_the_write_transaction(ws: Path, tmp_path: Path) -> None:
    """A second `add --target` that finishes probing after the first one committed must fail, not add a
    second target: the check is repeated inside BEGIN IMMEDIATE."""
    make_video(tmp_path / "one.mp4", frames=5)
    make_video(tmp_path / "two.mp4", frames=6)

    def rival_adds_a_target(path: Path) -> None:
        with Workspace.open(ws) as other:  # another process, in effect: its own connection
            add_media(other, [tmp_path / "two.mp4"], "target")
        return None

    with Workspace.open(ws) as mine, pytest.raises(Exception, match=re.escape("already has a target (two.mp4")):
        add_media(mine, [tmp_path / "one.mp4"], "target", progress_for=rival_adds_a_target)
    assert sql(ws, "SELECT name FROM media WHERE role = 'target'") == [("two.mp4",)]


@pytest.mark.parametrize("fps", ["0", "-24", "1e9"])
def test_bad_fps_option_for_image_folders_is_refused(ws: Path, tmp_path: Path, fps: str) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(coded_frame(i)).save(folder / f"{i}.png")
    before = tree_hash(ws)
    code, _, err = run("add", ws, "--target", folder, "--fps", fps)
    assert code == 1 and one_line_error(err, "fps"), err
    assert tree_hash(ws) == before


def test_a_killed_init_leaves_nothing_behind_for_long(tmp_path: Path) -> None:
    """`doppel init` builds the workspace in a marked temporary folder beside it. A real init killed half-way
    leaves that folder; the next init of the same name removes it once its creator is gone, and touches
    neither a creation still running nor folders doppel did not make."""
    import os
    import signal
    import subprocess
    import sys

    # a real init, killed (SIGKILL) while it is building the folder: stop it in sqlite's connect
    code = ("import os, signal, sqlite3; from pathlib import Path; from doppel.workspace import Workspace\n"
            "real = sqlite3.connect\n"
            "def stop(*a, **k):\n    os.kill(os.getpid(), signal.SIGKILL)\n"
            "sqlite3.connect = stop\n"
            f"Workspace.create(Path({str(tmp_path / 'ws')!r}))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    killed = list(tmp_path.glob(".ws.doppel-creating.*"))
    assert len(killed) == 1 and (killed[0] / ".creator-pid").exists()
    running = tmp_path / ".ws.doppel-creating.live"
    running.mkdir()
    (running / ".creator-pid").write_text(str(os.getpid()))  # this process is alive
    foreign = tmp_path / ".ws.mine"
    foreign.mkdir()
    assert run("init", tmp_path / "ws")[0] == 0
    assert not killed[0].exists()
    assert running.is_dir() and foreign.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".ws.doppel-creating.live", ".ws.mine", "ws"])


def test_api_reports_a_damaged_database_as_a_doppel_error(merged_pair: Path, tmp_path: Path) -> None:
    """Damage that SQLite finds only when a page is read mid-call (long after the workspace opened) reaches a
    Python caller as a one-line DoppelError naming doppel.db, as the CLI prints it, never as a raw sqlite3
    error: every page of the database scribbled over in turn, three calls on each."""
    import shutil
    import sqlite3

    import doppel
    from doppel.errors import DoppelError

    source = copy_workspace(merged_pair, tmp_path / "source")
    sql(source, "PRAGMA wal_checkpoint(TRUNCATE)")
    pages = (source / "doppel.db").stat().st_size // 4096
    raised = []
    for page in range(1, pages):
        ws = tmp_path / f"ws{page}"
        shutil.copytree(source, ws)
        data = bytearray((ws / "doppel.db").read_bytes())
        data[4096 * page:4096 * page + 200] = b"\xff" * 200
        (ws / "doppel.db").write_bytes(bytes(data))
        for call in ("info", "faces", "overrides"):
            try:
                with doppel.open(ws) as p:
                    getattr(p, call)()
            except DoppelError as exc:
                raised.append(str(exc))
            except sqlite3.DatabaseError as exc:
                pytest.fail(f"page {page}, {call}(): raw sqlite3 error {exc!r}")
        shutil.rmtree(ws)  # one damaged copy at a time: a copy per page filled 2 GB of a CI disk
    assert len(raised) >= 3 and all("doppel.db" in m and "\n" not in m for m in raised), raised
