"""`doppel extract` and `doppel faces` on tiny media made from the public-domain portraits."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.faces import astro, hopper, two_people
from tests.helpers import clip, run


def rows(ws: Path, sql: str, params: tuple = ()) -> list[tuple]:
    db = sqlite3.connect(ws / "doppel.db")
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    assert run("init", tmp_path / "ws")[0] == 0
    return tmp_path / "ws"


def test_extract_finds_a_face_on_every_frame_and_stores_everything(ws: Path, tmp_path: Path) -> None:
    run("add", ws, "--source", clip(tmp_path / "astro.mp4", astro(), 12))
    run("add", ws, "--target", clip(tmp_path / "hopper.mp4", hopper(), 10, seed=2))
    code, out, err = run("extract", ws, "--workers", "1", "--json", "--debug")
    assert code == 0, err
    report = json.loads(out)
    assert [m["faces"] for m in report["media"]] == [12, 10]
    assert report["warnings"] == []
    assert rows(ws, "SELECT COUNT(*) FROM frames WHERE status != 'done'") == [(0,)]
    for crop_path, sha, size in rows(ws, "SELECT crop_path, crop_sha256, crop_size FROM faces"):
        img = cv2.imread(str(ws / crop_path))
        assert img.shape == (size, size, 3)
        import hashlib

        assert hashlib.sha256((ws / crop_path).read_bytes()).hexdigest() == sha
    # Smoothed landmarks exist for the target, not for the source.
    assert rows(ws, """SELECT m.role, COUNT(f.lm68_smooth) FROM faces f JOIN media m ON m.id = f.media_id
                       GROUP BY m.role ORDER BY m.role""") == [("source", 0), ("target", 10)]
    assert len(list((ws / "debug" / "m2").glob("*.jpg"))) == 10
    summary = json.loads(run("info", ws, "--json")[1])
    assert summary["faces"] == 22


def test_resumed_run_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    source = clip(tmp_path / "astro.mp4", astro(), 60)
    spaces = []
    for name in ("straight", "killed"):
        assert run("init", tmp_path / name)[0] == 0
        run("add", tmp_path / name, "--target", source)
        spaces.append(tmp_path / name)
    straight, killed = spaces
    assert run("extract", straight, "--workers", "1")[0] == 0

    cmd = [sys.executable, "-m", "doppel", "extract", str(killed), "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        done = rows(killed, "SELECT COUNT(*) FROM frames WHERE status = 'done'")[0][0]
        if done >= 8:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = rows(killed, "SELECT COUNT(*) FROM frames WHERE status = 'done'")[0][0]
    assert 8 <= done < 60, "the kill should land part-way"
    assert run("extract", killed)[0] == 0

    query = """SELECT frame_idx, face_idx, lm68, lm68_smooth, embedding, matrix, crop_sha256, track_id,
               person_id, excluded FROM faces ORDER BY frame_idx, face_idx"""
    a, b = rows(straight, query), rows(killed, query)
    assert len(a) == 60 and len(b) == 60  # one face per frame, none duplicated
    assert a == b


def test_reference_picks_the_right_person(ws: Path, tmp_path: Path) -> None:
    frames = tmp_path / "plate"
    frames.mkdir()
    pair = two_people(240)
    for i in range(3):
        Image.fromarray(np.roll(pair, 4 * i, axis=1)).save(frames / f"{i:03d}.png")
    Image.fromarray(hopper()).save(tmp_path / "hopper.png")
    run("add", ws, "--target", frames)
    code, out, err = run("extract", ws, "--workers", "1", "--reference", tmp_path / "hopper.png", "--json")
    assert code == 0, err
    chosen = rows(ws, """SELECT f.frame_idx, f.x0 FROM faces f JOIN people p ON p.id = f.person_id
                         WHERE p.chosen = 1 ORDER BY f.frame_idx""")
    assert len(chosen) == 3 and all(x0 > pair.shape[1] * 0.45 for _, x0 in chosen)  # Hopper is on the right
    # Without a new reference, a re-run keeps the choice.
    run("extract", ws)
    again = rows(ws, """SELECT f.frame_idx, f.x0 FROM faces f JOIN people p ON p.id = f.person_id
                        WHERE p.chosen = 1 ORDER BY f.frame_idx""")
    assert again == chosen


def test_wrong_identity_in_the_source_is_flagged(ws: Path, tmp_path: Path) -> None:
    run("add", ws, "--source", clip(tmp_path / "astro.mp4", astro(), 8))
    Image.fromarray(hopper()).save(tmp_path / "stranger.png")
    run("add", ws, "--source", tmp_path / "stranger.png")
    assert run("extract", ws, "--workers", "1")[0] == 0
    flagged = rows(ws, """SELECT m.name, f.excluded, f.exclude_reason FROM faces f JOIN media m ON m.id = f.media_id
                          ORDER BY m.id, f.frame_idx""")
    assert flagged[-1] == ("stranger.png", 1, "other person")
    assert all(excluded == 0 for name, excluded, _ in flagged if name == "astro.mp4")


def test_bad_reference_is_a_clear_error_and_changes_nothing(ws: Path, tmp_path: Path) -> None:
    run("add", ws, "--target", clip(tmp_path / "a.mp4", astro(), 4))
    (tmp_path / "ref.jpg").write_text("not an image")
    code, _, err = run("extract", ws, "--reference", tmp_path / "ref.jpg")
    assert code == 1 and "ref.jpg" in err and "cannot read image" in err
    noise = np.full((120, 120, 3), 128, np.uint8)
    Image.fromarray(noise).save(tmp_path / "blank.png")
    code, _, err = run("extract", ws, "--reference", tmp_path / "blank.png")
    assert code == 1 and "no face found in the reference image" in err
    assert rows(ws, "SELECT COUNT(*) FROM frames WHERE status = 'new'") == [(4,)]
    assert rows(ws, "SELECT COUNT(*) FROM faces") == [(0,)]


def test_footage_without_faces_warns_and_failed_frames_are_recorded(ws: Path, tmp_path: Path) -> None:
    frames = tmp_path / "plate"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(frames / f"{i}.png")
    run("add", ws, "--target", frames)
    (frames / "2.png").write_bytes(b"broken after ingest")
    code, out, err = run("extract", ws, "--workers", "1")
    assert code == 0, err
    assert "no face found in plate" in out
    assert "1 frame(s) of plate could not be decoded" in out
    assert rows(ws, "SELECT idx, status FROM frames ORDER BY idx") == [(0, "done"), (1, "done"), (2, "failed"),
                                                                        (3, "done")]


def test_curating_faces_never_deletes_and_survives_reextraction(ws: Path, tmp_path: Path) -> None:
    run("add", ws, "--source", clip(tmp_path / "astro.mp4", astro(), 12))
    assert run("extract", ws, "--workers", "1")[0] == 0
    code, out, _ = run("faces", ws, "--best", "5", "--json", "--limit", "0")
    assert code == 0
    listing = json.loads(out)
    assert listing["faces"] == 12 and listing["usable"] == 5
    code, out, _ = run("faces", ws, "--include", "1-3", "--exclude", "4", "--reason", "hand over face", "--json")
    listing = json.loads(out)
    by_id = {f["id"]: f for f in listing["listed"]}
    assert by_id[4]["excluded"] and by_id[4]["reason"] == "user: hand over face"
    assert all(not by_id[i]["excluded"] for i in (1, 2, 3))
    before = rows(ws, "SELECT id, excluded, exclude_reason FROM faces ORDER BY id")
    assert run("extract", ws)[0] == 0  # the post-pass re-runs, user decisions stay
    assert rows(ws, "SELECT id, excluded, exclude_reason FROM faces ORDER BY id") == before
    code, out, _ = run("faces", ws, "--sort", "sharpness", "--json", "--limit", "0")
    sharp = [f["sharpness"] for f in json.loads(out)["listed"]]
    assert sharp == sorted(sharp, reverse=True) and len(sharp) == 12
    assert run("faces", ws, "--exclude", "999")[0] == 1
