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
