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


def _replace_renders(ws: Path, blur: float, *, inside_layer: bool = False) -> None:
    """Each render replaced by its plate, blurred by `blur`; with `inside_layer`, blurred only as far as the
    merge's face layer reaches (a soft face composited with the merge's own alpha)."""
    db = sqlite3.connect(ws / "doppel.db")
    renders = db.execute("SELECT frame_idx, path, layer_path, layer_x, layer_y FROM renders "
                         "WHERE path IS NOT NULL").fetchall()
    db.close()
    with Workspace.open(ws) as w:
        target = w.target()
        assert target is not None
        with MediaReader(target.info) as reader:
            for i, rel, layer_rel, x, y in renders:
                frame = reader[i]
                if blur:
                    soft = cv2.GaussianBlur(frame, (0, 0), blur)
                    if inside_layer:
                        layer = cv2.imread(str(ws / layer_rel), cv2.IMREAD_UNCHANGED)
                        alpha = np.zeros(frame.shape[:2] + (1,), np.float32)
                        alpha[y:y + layer.shape[0], x:x + layer.shape[1], 0] = layer[..., 3] / 255
                        soft = (alpha * soft + (1 - alpha) * frame + 0.5).astype(np.uint8)
                    frame = soft
                cv2.imwrite(str(ws / rel), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))


def test_eval_scores_the_plate_as_perfect_and_a_blurred_plate_as_soft(trained_pair: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(trained_pair, ws)
    runner = CliRunner()
    # The landmark mask, so that the face layer covers the face (the barely trained model's learned mask
    # would leave most of it to the plate, and detail counts only the generated face).
    toml = ws / "doppel.toml"
    toml.write_text(toml.read_text().replace('mask = "intersect"', 'mask = "landmarks"'))
    merged = runner.invoke(cli, ["merge", str(ws)])
    assert merged.exit_code == 0, merged.output
    figures = {}
    for name, blur, inside in (("soft_face", 3.0, True), ("plate", 0.0, False), ("blurred", 3.0, False)):
        _replace_renders(ws, blur, inside_layer=inside)
        result = runner.invoke(cli, ["eval", str(ws), "--json"])
        assert result.exit_code == 0, result.output
        figures[name] = json.loads(result.output)
        if name == "plate":
            rows = json.loads((ws / "eval" / "report.json").read_text())["per_frame"]
            gaps = [abs(r["look_out"] - r["look_plate"]) + abs(r["blink_out"] - r["blink_plate"])
                    for r in rows if "look_out" in r]
            assert len(gaps) >= 12 and max(gaps) < 0.05, gaps  # the plate's own eyes, read again: the same look
    plate, blurred, soft_face = figures["plate"], figures["blurred"], figures["soft_face"]
    # Where the mask leaves the plate (the feathered edge, a lowered forehead), the plate's own detail does not
    # count as the swap's: a soft face composited with the merge's alpha is as soft as a blurred frame.
    assert soft_face["detail_ratio"] < 0.45 and abs(soft_face["detail_ratio"] - blurred["detail_ratio"]) < 0.1
    assert plate["detail_ratio"] == 1.0
    assert plate["seam"] < 1e-6
    assert abs(plate["flicker_ratio"] - 1) < 1e-6
    assert plate["expression_error"] < 0.01   # the plate's own face, found again: the same openings
    assert blurred["detail_ratio"] < 0.45
    assert blurred["seam"] > 0.05             # a whole-frame blur changes the edges around the mask too
    report = json.loads((ws / "eval" / "report.json").read_text())
    assert set(report["flags"]) == {"lost", "identity", "eyes", "gaze", "mouth", "soft", "flicker", "seam"}
    assert report["flags"]["soft"]            # the blurred frames keep under half the detail
    studio = read_flags(ws / "eval" / "report.json")
    assert studio["soft"].shape == (report["frames"],)
    assert list(np.flatnonzero(studio["soft"])) == report["flags"]["soft"]
    assert {"eye_plate", "eye_out", "mouth_plate", "detail", "seam"} <= set(report["per_frame"][5])
    for png in ("report.png", "worst.png"):
        image = cv2.imread(str(ws / "eval" / png))
        assert image is not None and image.std() > 5
    assert "detail:" in (ws / "eval" / "report.txt").read_text()
    assert "gaze:" in (ws / "eval" / "report.txt").read_text()


def test_eval_stops_with_a_clear_error_when_a_face_layer_is_missing(trained_pair: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(trained_pair, ws)
    runner = CliRunner()
    assert runner.invoke(cli, ["merge", str(ws)]).exit_code == 0
    db = sqlite3.connect(ws / "doppel.db")
    layer = db.execute("SELECT layer_path FROM renders WHERE layer_path IS NOT NULL LIMIT 1").fetchone()[0]
    db.close()
    (ws / layer).unlink()
    before = sorted(p.relative_to(ws) for p in ws.rglob("*") if p.is_file())
    result = runner.invoke(cli, ["eval", str(ws)])
    assert result.exit_code == 1
    assert "face layer is missing or unreadable" in result.output and "doppel merge --force" in result.output
    assert not (ws / "eval" / "report.json").exists()
    assert sorted(p.relative_to(ws) for p in ws.rglob("*") if p.is_file()) == before   # nothing removed
