"""The studio's state without a browser: undo/redo of every edit kind, keyframes in the render plan, manual
landmark fixes, problem markers, timecode, `doppel review --json` and the export warning."""

from __future__ import annotations

import json
import sqlite3
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from doppel.cli import cli
from doppel.errors import DoppelError
from doppel.extract.layout import five_points
from doppel.merge import edits
from doppel.studio import problems
from doppel.studio.backend import Backend, timecode
from doppel.workspace import review
from doppel.workspace.faces import Face
from doppel.workspace.review import Keyframe


def test_timecode_counts_frames_at_the_rounded_rate() -> None:
    ntsc = Fraction(30000, 1001)
    assert timecode(0, ntsc) == "00:00:00:00"
    assert timecode(29, ntsc) == "00:00:00:29"
    assert timecode(30, ntsc) == "00:00:01:00"
    assert timecode(1373, ntsc) == "00:00:45:23"
    assert timecode(25 * 3723 + 7, Fraction(25)) == "01:02:03:07"


def test_interpolation_is_linear_between_keyframes_and_held_outside() -> None:
    keys = [Keyframe(1, "erode", 10, 2.0), Keyframe(2, "erode", 20, 12.0), Keyframe(3, "erode", 30, 0.0)]
    assert [review.interpolate(keys, f) for f in (0, 10, 15, 20, 25, 30, 99)] == [2.0, 2.0, 7.0, 12.0, 6.0, 0.0, 0.0]


def test_every_edit_is_undone_and_redone_from_the_database(backend: Backend) -> None:
    db = backend.ws.db

    def snapshot() -> list[list[tuple[object, ...]]]:
        return [db.execute(f"SELECT * FROM {t} ORDER BY id").fetchall()
                for t in ("overrides", "keyframes", "review_ranges", "notes", "landmark_edits")]

    start = snapshot()
    backend.set_override(2, 5, "erode", 12)
    backend.set_keyframe("feather", 3, 4.0)
    backend.set_keyframe("feather", 3, 8.0)  # replaces the keyframe on frame 3: one row, undoable to 4.0
    backend.set_review(0, 9, "approved")
    note = backend.add_note(4, 4, "ear edge")
    backend.resolve_note(note, True)
    backend.interpolate_landmarks(7)
    face = backend.faces[8]
    backend.move_anchors(8, (edits.anchors(edits.face_landmarks(face)) + [2.0, 1.0]).tolist())
    backend.remove_keyframe("feather", 3)
    # Undo walks back through every edit to the start, redo forward again.
    ordered = [snapshot()]
    labels = []
    while (label := backend.undo()) is not None:
        labels.append(label)
        ordered.append(snapshot())
    assert len(labels) == 9 and ordered[-1] == start
    assert labels[0].startswith("remove keyframe") and labels[-1].startswith("set erode")
    redone = 0
    while backend.redo() is not None:
        redone += 1
        assert snapshot() == ordered[-1 - redone]  # each redo gives back the state that edit made
    assert redone == 9 and snapshot() == ordered[0] and snapshot()[1] == []  # the last edit removed the keyframe
    backend.undo()
    assert [tuple(r) for r in db.execute("SELECT value_json FROM keyframes")] == [("8.0",)]
    backend.undo()  # (the landmark move) then a new edit drops the redo stack
    backend.set_review(10, 12, "needs_work")
    assert backend.redo() is None


def test_edits_are_validated(backend: Backend) -> None:
    with pytest.raises(DoppelError, match="out of range"):
        backend.set_override(0, 1, "erode", 99)
    with pytest.raises(DoppelError, match="unknown setting"):
        backend.set_override(0, 1, "eroed", 2)
    with pytest.raises(DoppelError, match="outside the plate"):
        backend.set_review(3, 99, "approved")
    with pytest.raises(DoppelError, match="cannot be keyframed"):
        backend.set_keyframe("color", 1, 1.0)
    with pytest.raises(DoppelError, match="review status"):
        backend.set_review(0, 1, "lgtm")
    with pytest.raises(DoppelError, match="five"):
        backend.move_anchors(3, [[1, 2]])
    assert backend.ws.db.execute("SELECT COUNT(*) FROM edit_log").fetchone()[0] == 0


def test_keyframed_values_are_in_the_render_cache_key(backend: Backend) -> None:
    backend.set_keyframe("erode", 4, 0.0)
    backend.set_keyframe("erode", 12, 16.0)
    backend.refresh()
    assert backend.plans[8].settings.erode == 8.0
    assert backend.settings_at(8)["erode"]["origin"] == "keyframe (interpolated)"
    assert backend.settings_at(4)["erode"]["origin"] == "keyframe (on this frame)"
    stale = backend.stale()
    assert backend.ws.settings.merge.erode == 2.0
    assert stale == [i for i in range(16) if i != 5]  # on frame 5 the interpolated value is the default's 2.0
    backend.render(stale)
    assert backend.stale() == []
    root = backend.ws.root
    backend.close()
    result = CliRunner().invoke(cli, ["merge", str(root), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["rendered"] == 0


def test_moving_anchors_moves_the_face_and_the_fix_outlives_reextraction(backend: Backend) -> None:
    face = backend.faces[6]
    lm = edits.face_landmarks(face)
    moved = edits.anchors(lm).copy()
    moved[3:] += [0.0, 3.0]  # both mouth corners 3 px down
    fixed = edits.move_anchors(lm, moved)
    assert np.allclose(five_points(fixed)[3:], moved[3:], atol=0.6)  # the corners land where they were put
    assert np.abs(fixed[36:48] - lm[36:48]).max() < 1.0  # the eyes barely move
    backend.move_anchors(6, moved.tolist())
    backend.refresh()
    assert np.allclose(edits.face_landmarks(backend.faces[6]), fixed)
    assert backend.stale() == [6]
    key_before = backend.plans[6].key
    # Re-extraction replaces the face rows; the fix is keyed by frame, so it applies to the new face too.
    root = backend.ws.root
    backend.close()
    db = sqlite3.connect(root / "doppel.db")
    with db:
        db.execute("UPDATE faces SET id = id + 1000 WHERE frame_idx = 6 AND media_id = "
                   "(SELECT id FROM media WHERE role = 'target')")
    db.close()
    result = CliRunner().invoke(cli, ["extract", str(root), "--workers", "1"])
    assert result.exit_code == 0, result.output
    again = Backend(root)
    again.ensure_plan()
    assert np.allclose(edits.face_landmarks(again.faces[6]), fixed)
    assert again.plans[6].key != key_before  # the face row changed, the landmarks did not
    again.close()


def test_interpolating_from_neighbours_sits_between_them(backend: Backend) -> None:
    lm = edits.interpolate_neighbours({k: v for k, v in backend.faces.items() if k != 5}, 5)
    assert lm is not None
    a, b = edits.face_landmarks(backend.faces[4]), edits.face_landmarks(backend.faces[6])
    assert np.allclose(lm, (a + b) / 2, atol=1e-4)


def test_problem_markers_find_a_landmark_jump_and_eval_flags() -> None:
    faces = {i: _face(i, shift=30.0 if i == 5 else 0.0, score=0.2 if i == 8 else 0.9) for i in range(10) if i != 2}
    rows = {3: {"frame": 3, "swapped": True, "eye_plate": 0.3},
            4: {"frame": 4, "swapped": True, "identity_source": 0.2, "identity_target": 0.5},
            6: {"frame": 6, "uncovered": ["mouth wide open"]}, 7: {"frame": 7, "swapped": True, "seam": 0.4}}
    found: dict[int, list[str]] = {}
    for detect in problems.DETECTORS.values():
        for i, reason in detect(faces, 10, rows).items():
            found.setdefault(i, []).append(reason)
    assert sorted(found) == [2, 3, 4, 5, 6, 8]
    assert "landmark jump" in found[5][0] and "low detection" in found[8][0] and "no face" in found[2][0]
    assert "not found again" in found[3][0] and "more like the target" in found[4][0]
    assert found[6] == ["the source never shows: mouth wide open"]


def _face(i: int, shift: float, score: float) -> Face:
    lm = np.stack([np.linspace(100, 160, 68), np.linspace(100, 170, 68)], 1).astype(np.float32)
    lm[36:42] = [110, 120]
    lm[42:48] = [150, 120]
    lm = lm + [shift + i * 0.5, 0]
    return Face(id=i, media_id=2, frame_idx=i, face_idx=0, box=np.zeros(4, np.float32), score=score, lm68=lm,
                      lm68_smooth=None, matrix=np.eye(2, 3), face_type="whole_face", crop_size=256,
                      crop_path="", polygon=lm[:17], embedding=np.zeros(128, np.float32), yaw=0, pitch=0, roll=0,
                      sharpness=1, size_px=60, track_id=None, person_id=None, excluded=False, exclude_reason="")


def test_review_cli_and_export_warns_about_unapproved_frames(backend: Backend, tmp_path: Path) -> None:
    backend.set_review(0, 9, "approved")
    backend.set_review(4, 5, "needs_work")
    backend.add_note(4, 5, "teeth smear")
    root = backend.ws.root
    backend.close()
    result = CliRunner().invoke(cli, ["review", str(root), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["approved"], data["needs_work"], data["frames"]) == (8, 2, 16)
    assert data["approved_pct"] == 50.0 and data["open_notes"][0]["text"] == "teeth smear"
    result = CliRunner().invoke(cli, ["export", str(root), str(tmp_path / "out.mp4")])
    assert result.exit_code == 0, result.output
    assert "warning: 8 of 16 frames are not approved" in result.stderr.replace("\n", " ")
    assert (tmp_path / "out.mp4").is_file()


def test_added_flicker_counts_only_what_the_swap_adds() -> None:
    rng = np.random.default_rng(0)
    plate = [rng.integers(0, 200, (40, 50), np.uint8) for _ in range(2)]  # a plate with much change of its own
    assert problems.added_flicker((plate[0], plate[1]), (plate[0], plate[1]), (0, 0, 50, 40)) == 0.0
    still = (plate[0], plate[0])  # a still plate, and a swap whose face brightens by 40 levels
    popped = plate[0].copy()
    popped[10:30, 10:30] += 40
    assert problems.added_flicker((plate[0], popped), still, (10, 10, 30, 30)) == pytest.approx(40)
    assert problems.added_flicker((plate[0], popped), still, (0, 0, 50, 40)) == pytest.approx(40 * 400 / 2000)
    rows = {i: {"frame": i, "added_flicker": 0.3} for i in range(20)}
    rows[7]["added_flicker"] = 9.0
    rows[8]["added_flicker"] = 3.0  # above 3x typical but under the 4-level floor
    assert list(problems.flicker_spike({}, 20, rows)) == [7]
