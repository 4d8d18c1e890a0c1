"""The `doppel` CLI end to end for init / add / info, and every bad input of the ingest stage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import run
from tests.mediagen import coded_frame, make_video


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    assert run("init", tmp_path / "ws")[0] == 0
    return tmp_path / "ws"


def snapshot(ws: Path) -> tuple[str, dict[str, bytes]]:
    """What `info --json` reports plus the bytes of every file but the database's WAL side files."""
    code, out, _ = run("info", ws, "--json")
    assert code == 0
    return out, {p.name: p.read_bytes() for p in ws.iterdir() if p.is_file() and "-wal" not in p.name
                 and "-shm" not in p.name}


def test_add_sources_and_target_then_info(ws: Path, tmp_path: Path) -> None:
    make_video(tmp_path / "a.mp4", frames=20, audio=True)
    folder = tmp_path / "stills"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(coded_frame(i)).save(folder / f"{i}.png")
    make_video(tmp_path / "plate.mp4", frames=12, fps=30)
    assert run("add", ws, "--source", tmp_path / "a.mp4", "--source", folder)[0] == 0
    code, out, _ = run("add", ws, "--target", tmp_path / "plate.mp4", "--json")
    assert code == 0 and json.loads(out)[0]["frame_count"] == 12
    code, out, _ = run("info", ws, "--json")
    summary = json.loads(out)
    assert summary["frames"] == {"source": 23, "target": 12}
    roles = [(m["role"], m["kind"], m["frame_count"]) for m in summary["media"]]
    assert roles == [("source", "video", 20), ("source", "sequence", 3), ("target", "video", 12)]
    code, out, _ = run("info", ws)
    assert code == 0 and "plate.mp4" in out


def _bad(tmp_path: Path, kind: str) -> Path:
    if kind == "missing":
        return tmp_path / "missing.mp4"
    if kind == "text-as-mp4":
        (tmp_path / "notes.mp4").write_text("just text\n" * 20)
        return tmp_path / "notes.mp4"
    if kind == "truncated":
        make_video(tmp_path / "full.mp4", frames=60, faststart=True)
        data = (tmp_path / "full.mp4").read_bytes()
        mdat = data.find(b"mdat")
        (tmp_path / "cut.mp4").write_bytes(data[: mdat + (len(data) - mdat) // 2])
        return tmp_path / "cut.mp4"
    if kind == "zero-frames":
        make_video(tmp_path / "full.mp4", frames=8, faststart=True)
        data = bytearray((tmp_path / "full.mp4").read_bytes())
        start = data.find(b"mdat") + 4
        data[start:] = bytes(len(data) - start)
        (tmp_path / "zero.mp4").write_bytes(bytes(data))
        return tmp_path / "zero.mp4"
    if kind == "not-an-image":
        (tmp_path / "face.jpg").write_bytes(b"\xff\xd8 broken jpeg")
        return tmp_path / "face.jpg"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["missing", "text-as-mp4", "truncated", "zero-frames", "not-an-image"])
def test_bad_source_fails_cleanly_and_changes_nothing(ws: Path, tmp_path: Path, kind: str) -> None:
    make_video(tmp_path / "good.mp4", frames=5)
    bad = _bad(tmp_path, kind)
    before = snapshot(ws)
    code, out, err = run("add", ws, "--source", tmp_path / "good.mp4", "--source", bad)
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and str(bad.name) in lines[0]
    assert snapshot(ws) == before  # the good file given with it was not added either


def test_adding_the_same_file_twice(ws: Path, tmp_path: Path) -> None:
    make_video(tmp_path / "a.mp4", frames=5)
    shutil.copy(tmp_path / "a.mp4", tmp_path / "copy.mp4")
    assert run("add", ws, "--source", tmp_path / "a.mp4")[0] == 0
    before = snapshot(ws)
    code, _, err = run("add", ws, "--source", tmp_path / "copy.mp4")
    assert code == 1 and "already in this workspace as source media #1" in err
    code, _, err = run("add", ws, "--source", tmp_path / "b.mp4", "--source", tmp_path / "b.mp4")
    assert code == 1
    assert snapshot(ws) == before


def test_second_target_and_still_target_are_refused(ws: Path, tmp_path: Path) -> None:
    Image.fromarray(coded_frame(0)).save(tmp_path / "still.png")
    code, _, err = run("add", ws, "--target", tmp_path / "still.png")
    assert code == 1 and "not a single image" in err
    make_video(tmp_path / "p.mp4", frames=5)
    assert run("add", ws, "--target", tmp_path / "p.mp4")[0] == 0
    make_video(tmp_path / "q.mp4", frames=6)
    code, _, err = run("add", ws, "--target", tmp_path / "q.mp4")
    assert code == 1 and "already has a target" in err


def test_not_a_workspace(tmp_path: Path) -> None:
    make_video(tmp_path / "a.mp4", frames=3)
    code, _, err = run("add", tmp_path, "--source", tmp_path / "a.mp4")
    assert code == 1 and "not a doppel workspace" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]


def test_target_image_sequence_with_fps(ws: Path, tmp_path: Path) -> None:
    folder = tmp_path / "plate"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(coded_frame(i)).save(folder / f"plate.{i:04d}.png")
    code, out, _ = run("add", ws, "--target", folder, "--fps", "24000/1001", "--json")
    assert code == 0
    assert json.loads(out)[0]["fps"] == "24000/1001"
    assert run("add", ws, "--source", folder, "--fps", "fast")[0] == 1


@pytest.mark.parametrize("command", ["init", "add", "info", "demo"])
def test_help_has_an_example(command: str) -> None:
    code, out, _ = run(command, "--help")
    assert code == 0 and "Example" in out


@pytest.mark.parametrize("command", ["studio", "review"])
def test_studio_and_review_need_a_target(ws: Path, command: str) -> None:
    code, _, err = run(command, ws, "--no-browser") if command == "studio" else run(command, ws)
    assert code == 1 and "has no target" in err and err.count("\n") == 1


def test_demo_runs_the_whole_job(tmp_path: Path) -> None:
    code, out, err = run("demo", tmp_path / "demo", "--minutes", "0.05", "--preset", "tiny-64")
    assert code == 0, err
    summary = json.loads(run("info", tmp_path / "demo" / "workspace", "--json")[1])
    assert [(m["role"], m["frame_count"], len(m["audio"]), m["faces"]) for m in summary["media"]] == [
        ("source", 75, 1, 75), ("target", 75, 1, 75)]
    from doppel.media import probe

    video = probe(tmp_path / "demo" / "swapped.mp4")
    assert video.frame_count == 75 and len(video.audio) == 1
    report = json.loads((tmp_path / "demo" / "workspace" / "eval" / "report.json").read_text())
    assert report["swapped"] == 75
    code, _, err = run("demo", tmp_path / "demo")
    assert code == 1 and "already exists" in err
    code, _, err = run("demo", tmp_path / "other", "--source", tmp_path / "demo" / "swapped.mp4")
    assert code == 1 and "give both" in err
