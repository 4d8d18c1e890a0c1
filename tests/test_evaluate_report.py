"""`doppel eval` end to end on a merged workspace whose renders are replaced by known pictures: the plate itself
must score as a perfect swap of the performance, a blurred plate as a soft one."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import cv2
import numpy as np
from click.testing import CliRunner

from doppel.cli import cli
from doppel.evaluate.flags import read_flags
from doppel.media.video import MediaReader
from doppel.workspace import Workspace


def _replace_renders(ws: Path, blur: float) -> None:
    db = sqlite3.connect(ws / "doppel.db")
    renders = dict(db.execute("SELECT frame_idx, path FROM renders WHERE path IS NOT NULL").fetchall())
    db.close()
    with Workspace.open(ws) as w:
        target = w.target()
        assert target is not None
        with MediaReader(target.info) as reader:
            for i, rel in renders.items():
                frame = reader[i]
                if blur:
                    frame = cv2.GaussianBlur(frame, (0, 0), blur)
                cv2.imwrite(str(ws / rel), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))


def test_eval_scores_the_plate_as_perfect_and_a_blurred_plate_as_soft(trained_pair: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(trained_pair, ws)
    runner = CliRunner()
    merged = runner.invoke(cli, ["merge", str(ws)])
    assert merged.exit_code == 0, merged.output
    figures = {}
    for name, blur in (("plate", 0.0), ("blurred", 3.0)):
        _replace_renders(ws, blur)
        result = runner.invoke(cli, ["eval", str(ws), "--json"])
        assert result.exit_code == 0, result.output
        figures[name] = json.loads(result.output)
    plate, blurred = figures["plate"], figures["blurred"]
    assert plate["detail_ratio"] == 1.0
    assert plate["seam"] < 1e-6
    assert abs(plate["flicker_ratio"] - 1) < 1e-6
    assert plate["expression_error"] < 0.01   # the plate's own face, found again: the same openings
    assert blurred["detail_ratio"] < 0.45
    assert blurred["seam"] > 0.05             # a whole-frame blur changes the edges around the mask too
    report = json.loads((ws / "eval" / "report.json").read_text())
    assert set(report["flags"]) == {"lost", "identity", "eyes", "mouth", "soft", "flicker", "seam"}
    assert report["flags"]["soft"]            # the blurred frames keep under half the detail
    studio = read_flags(ws / "eval" / "report.json")
    assert studio["soft"].shape == (report["frames"],)
    assert list(np.flatnonzero(studio["soft"])) == report["flags"]["soft"]
    assert {"eye_plate", "eye_out", "mouth_plate", "detail", "seam"} <= set(report["per_frame"][5])
    for png in ("report.png", "worst.png"):
        image = cv2.imread(str(ws / "eval" / png))
        assert image is not None and image.std() > 5
    assert "detail:" in (ws / "eval" / "report.txt").read_text()
