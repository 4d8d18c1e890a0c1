"""Probe and decode the development clips in ../shared/data (skipped where that folder is absent)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

from click.testing import CliRunner

from doppel.cli import cli
from doppel.media import MediaReader, probe


def test_foreman_through_the_cli(clips: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["init", str(tmp_path / "ws")]).exit_code == 0
    added = runner.invoke(cli, ["add", str(tmp_path / "ws"), "--target", str(clips / "foreman_cif.mp4")])
    assert added.exit_code == 0, added.output
    summary = json.loads(runner.invoke(cli, ["info", str(tmp_path / "ws"), "--json"]).stdout)
    media = summary["media"][0]
    got = (media["frame_count"], media["fps"], media["width"], media["height"])
    assert got == (300, "30000/1001", 352, 288)


def test_422_clip_probes_and_seeks(clips: Path) -> None:
    info = probe(clips / "vtc1nw_422_ntsc.mp4")
    assert (info.width, info.height, info.pix_fmt, info.frame_count) == (720, 486, "yuv422p", 360)
    assert info.fps == Fraction(30)
    with MediaReader(info) as reader:
        sequential = [f.image for f in reader.frames(range(200, 204))]
        assert all((reader[i] == sequential[i - 200]).all() for i in (203, 201, 200, 202))


def test_two_people_and_the_reference_on_mother_daughter(clips: Path, tmp_path: Path) -> None:
    import sqlite3
    from collections import Counter

    from PIL import Image

    info = probe(clips / "mother_daughter_cif.mp4")
    with MediaReader(info) as reader:
        Image.fromarray(reader[info.frame_count - 1][100:260, 40:180]).save(tmp_path / "daughter.png")
    runner = CliRunner()
    ws = str(tmp_path / "ws")
    assert runner.invoke(cli, ["init", ws]).exit_code == 0
    assert runner.invoke(cli, ["add", ws, "--target", str(clips / "mother_daughter_cif.mp4")]).exit_code == 0
    result = runner.invoke(cli, ["extract", ws, "--reference", str(tmp_path / "daughter.png")])
    assert result.exit_code == 0, result.output
    db = sqlite3.connect(tmp_path / "ws" / "doppel.db")
    per_frame = Counter(r[0] for r in db.execute("SELECT frame_idx FROM faces"))
    assert sum(per_frame[i] >= 2 for i in range(300)) >= 297
    chosen = dict(db.execute("""SELECT f.frame_idx, (f.x0 + f.x1) / 2 FROM faces f JOIN people p
                                ON p.id = f.person_id WHERE p.chosen = 1""").fetchall())
    assert sum(1 for i in range(300) if chosen.get(i, 999) < 176) >= 297
