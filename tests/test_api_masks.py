"""The occlusion mask through the Python API: labels drawn, undone, copied, propagated as suggestions and
confirmed; what merge's plan makes of each kind; the studio's undo log taking label edits back; training and
applying with progress."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import doppel
from doppel.merge.plan import plan
from doppel.occlusion import labels as lab
from doppel.workspace import review


@pytest.fixture
def project(extracted_pair: Path, tmp_path: Path) -> doppel.Project:
    copy = tmp_path / "ws"
    shutil.copytree(extracted_pair, copy)
    with doppel.open(copy) as p:
        yield p


def square(cx: float, cy: float, r: float) -> list[list[float]]:
    return [[cx - r, cy - r], [cx + r, cy - r], [cx + r, cy + r], [cx - r, cy + r]]


def centre(project: doppel.Project, frame: int) -> tuple[float, float]:
    x, y = project.target_face(frame).polygon.mean(0)
    return float(x), float(y)


def keys(project: doppel.Project) -> list[str]:
    return [p.key for p in plan(project.workspace, "model-x")]


def test_add_undo_and_history_with_reports(project: doppel.Project) -> None:
    face = project.target_face(4).id
    empty = project.mask_label(face)
    assert (empty.version, empty.kind, empty.versions) == (None, None, 0)
    first = project.add_mask_label(face, exclude=[square(*centre(project, 4), 8)])
    assert (first.version, first.kind, first.frame) == (1, "drawn", 4)
    assert first.label is not None and first.label["shapes"][0]["mode"] == "exclude"
    second = project.add_mask_label(face, include=[square(*centre(project, 4), 30)],
                                    exclude=[square(*centre(project, 4), 5)], base="empty")
    assert second.versions == 2 and [s["mode"] for s in second.label["shapes"]] == ["include", "exclude"]  # type: ignore[index]
    assert json.loads(json.dumps(second.to_json()))["kind"] == "drawn"
    assert [r.version for r in project.mask_label_history(face)] == [1, 2]
    back = project.undo_mask_label(face)
    assert (back.version, back.versions, back.label) == (1, 1, first.label)
    assert project.undo_mask_label(face).version is None
    with pytest.raises(doppel.DoppelError, match="no label to undo"):
        project.undo_mask_label(face)


@pytest.mark.parametrize("kwargs, message", [
    ({"exclude": [[[10, 10], [20, 10]]]}, "at least 3"),
    ({"exclude": [[[10, 10], [20, 20], [30, 30]]]}, "has no area"),
    ({"exclude": [[[-900, -900], [-880, -900], [-880, -880]]]}, "outside the face's crop"),
    ({"exclude": [[["a", 1], [2, 3], [4, 5]]]}, "points must be"),
    ({"base": "hair"}, "base must be"),
    ({"shapes": [{"mode": "erase", "points": [[0, 0], [9, 0], [9, 9]]}]}, "mode must be"),
])
def test_bad_polygons_get_one_line_errors_and_store_nothing(project: doppel.Project, kwargs: dict,
                                                           message: str) -> None:
    face = project.target_face(2).id
    with pytest.raises(doppel.DoppelError, match=message) as info:
        project.add_mask_label(face, **kwargs)
    assert "\n" not in str(info.value)
    assert project.mask_label(face).versions == 0


@pytest.mark.parametrize("face, message", [(10**6, "no face #1000000"), (True, "whole number"), ("3", "whole number")])
def test_bad_face_ids_are_refused(project: doppel.Project, face: object, message: str) -> None:
    with pytest.raises(doppel.DoppelError, match=message):
        project.add_mask_label(face, exclude=[square(50, 50, 5)])  # type: ignore[arg-type]
    with pytest.raises(doppel.DoppelError, match="no face of the chosen target"):
        project.target_face(999)


def test_suggestions_are_stored_apart_and_only_confirmed_ones_reach_merge(project: doppel.Project) -> None:
    """Propagation stores suggestions (not used by merge: the render keys do not change); confirming one
    changes that frame's key alone; a drawn label further on stops the propagation."""
    ids = {i: project.target_face(i).id for i in range(16)}
    project.add_mask_label(ids[6], exclude=[square(*centre(project, 6), 7)])
    project.add_mask_label(ids[11], exclude=[square(*centre(project, 11), 7)])
    before = keys(project)
    report = project.propagate_mask(ids[6], frames=3)
    assert report.kind == "suggested" and set(report.faces) == {ids[i] for i in (3, 4, 5, 7, 8, 9)}
    assert report.stopped_at == ()
    assert {project.mask_label(ids[i]).kind for i in (3, 4, 5, 7, 8, 9)} == {"suggested"}
    assert keys(project) == before                               # suggestions are not merged
    assert [r.frame for r in project.mask_labels("suggested")] == [3, 4, 5, 7, 8, 9]
    assert [r.frame for r in project.mask_labels("drawn")] == [6, 11] and len(project.mask_labels()) == 8
    with pytest.raises(doppel.DoppelError, match="kind must be one of"):
        project.mask_labels("maybe")
    far = project.propagate_mask(ids[6], frames=15)
    assert far.stopped_at == (ids[11],) and ids[10] in far.faces and ids[12] not in far.faces
    assert project.mask_label(ids[7]).versions == 1              # the older suggestion gave way
    confirmed = project.confirm_mask_labels(ids[7])
    assert confirmed.faces == (ids[7],) and project.mask_label(ids[7]).kind == "confirmed"
    after = keys(project)
    assert [i for i in range(16) if after[i] != before[i]] == [7]
    with pytest.raises(doppel.DoppelError, match="no suggested label"):
        project.confirm_mask_labels(ids[7])
    # The carried label is the drawn one moved with the face: its hole is on the same spot of the face.
    stored = lab.current(project.workspace.occlusion, ids[7])
    assert stored is not None and stored.origin_id is not None
    moved = np.asarray(stored.label.to_json()["shapes"][0]["points"]).mean(0)
    assert np.linalg.norm(moved - np.array(centre(project, 7))) < 3.0


def test_copy_goes_forward_as_drawn_labels_until_an_artists_label(project: doppel.Project) -> None:
    ids = {i: project.target_face(i).id for i in range(16)}
    drawn = project.add_mask_label(ids[2], exclude=[square(*centre(project, 2), 6)])
    project.add_mask_label(ids[6], exclude=[square(*centre(project, 6), 6)])
    report = project.copy_mask_label(ids[2], frames=10)
    assert report.faces == (ids[3], ids[4], ids[5]) and report.stopped_at == (ids[6],)
    copied = project.mask_label(ids[4])
    assert copied.kind == "drawn" and copied.label == drawn.label
    with pytest.raises(doppel.DoppelError, match="no drawn or confirmed label"):
        project.copy_mask_label(ids[9], frames=2)
    with pytest.raises(doppel.DoppelError, match="at least 1 frame"):
        project.copy_mask_label(ids[2], frames=0)


def test_label_edits_are_undone_and_redone_by_the_studios_undo_log(project: doppel.Project) -> None:
    ws = project.workspace
    ids = {i: project.target_face(i).id for i in range(16)}
    project.add_mask_label(ids[8], exclude=[square(*centre(project, 8), 6)])
    project.propagate_mask(ids[8], frames=2)
    first = {i: project.mask_label(ids[i]).to_json() for i in range(5, 12)}
    project.propagate_mask(ids[8], frames=3)                  # replaces the suggestions on 6, 7, 9, 10
    assert review.undo(ws) is not None                        # the second propagation goes...
    assert {i: project.mask_label(ids[i]).to_json() for i in range(5, 12)} == first  # ...the first one's are back
    assert review.undo(ws) is not None and review.undo(ws) is not None
    assert all(project.mask_label(ids[i]).versions == 0 for i in range(5, 12))
    assert review.redo(ws) is not None and review.redo(ws) is not None
    assert {i: project.mask_label(ids[i]).to_json() for i in range(5, 12)} == first


def test_train_and_apply_report_progress_and_use_the_labels(project: doppel.Project) -> None:
    face = project.target_face(5).id
    project.add_mask_label(face, exclude=[square(*centre(project, 5), 8)])
    calls: list[tuple[str, int, int]] = []
    trained = project.train_mask(iterations=2, resolution=64,
                                 progress=lambda stage, done, total, msg: calls.append((stage, done, total)))
    assert (trained.step, trained.steps_run, trained.labels) == (2, 2, 1)
    assert isinstance(trained, doppel.MaskTrainReport) and trained.checkpoint.is_dir()
    with pytest.raises(dataclasses.FrozenInstanceError):
        trained.step = 3  # type: ignore[misc]
    assert calls == [("mask", 1, 2), ("mask", 2, 2)]
    assert set(json.loads(trained.dumps())["validation"]) >= {"iou_synthetic", "iou_polygon_only", "iou_labels"}
    applied = project.apply_mask()
    assert applied.computed == applied.faces == 32 and applied.from_labels == 1
    with pytest.raises(doppel.DoppelError, match="minutes=M or iterations=N"):
        project.train_mask()


def test_cli_label_copy_and_its_errors_go_through_the_api(project: doppel.Project, tmp_path: Path) -> None:
    from tests.helpers import run

    root = project.root
    far = tmp_path / "far.json"
    far.write_text(json.dumps({"shapes": [{"mode": "exclude", "points": [[-900, -900], [-880, -900], [-880, -880]]}]}))
    code, _, err = run("mask", "label", root, "--frame", 3, "--add", far)
    assert code == 1 and "outside the face's crop" in err and err.startswith("error: ") and err.count("\n") == 1
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"shapes": [{"mode": "exclude", "points": square(*centre(project, 3), 6)}]}))
    code, out, err = run("mask", "label", root, "--frame", 3, "--add", good)
    assert code == 0 and "version 1 (drawn, 1 shape(s))" in out, err
    code, out, err = run("mask", "label", root, "--frame", 3, "--copy", 2)
    assert code == 0 and "copied to 2 face(s)" in out, err
    assert project.mask_label(project.target_face(5).id).kind == "drawn"
    code, _, err = run("mask", "label", root, "--frame", 3, "--copy", 2, "--undo")
    assert code == 1 and "give one of" in err
