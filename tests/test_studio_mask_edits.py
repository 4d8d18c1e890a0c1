"""The studio's mask editor and problem markers without a browser: which frames a label edit makes stale,
undo through the studio's log, suggestions that re-render nothing until confirmed, the overlay image, bad
requests, and coverage gaps as problem markers."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import doppel
from doppel.errors import DoppelError
from doppel.studio import masks
from doppel.studio.backend import Backend


def hole(b: Backend, frame: int, r: float = 8) -> list[dict]:
    cx, cy = b.faces[frame].polygon.mean(0)
    return [{"mode": "exclude", "points": [[cx - r, cy - r], [cx + r, cy - r], [cx + r, cy + r], [cx - r, cy + r]]}]


def test_a_drawn_label_makes_its_frame_stale_and_undo_brings_the_render_back(backend: Backend) -> None:
    assert backend.stale() == []
    assert masks.draw(backend, 6, hole(backend, 6)) == 1
    assert backend.stale() == [6]
    assert backend.timeline()["labels"][6] == "drawn" and backend.frame(6)["mask"]["kind"] == "drawn"
    grey = cv2.imdecode(np.frombuffer(masks.overlay(backend, 6), np.uint8), cv2.IMREAD_GRAYSCALE)
    cx, cy = backend.faces[6].polygon.mean(0).round().astype(int)
    assert grey.shape == (backend.target.info.height, backend.target.info.width)
    assert grey[cy, cx] == 0 and grey[cy, cx + 12] == 255 and grey[0, 0] == 0
    assert backend.undo() is not None
    assert backend.stale() == []          # the stored render matches again: nothing to redo
    assert backend.frame(6)["mask"]["kind"] is None
    assert backend.redo() is not None and backend.stale() == [6]


def test_suggestions_render_nothing_until_confirmed_in_a_range(backend: Backend) -> None:
    masks.draw(backend, 8, hole(backend, 8))
    backend.render([8])
    result = masks.propagate(backend, 8, 3)
    assert len(result["faces"]) == 6 and backend.stale() == []
    assert [backend.timeline()["labels"][i] for i in range(4, 13)] == (
        ["", "suggested", "suggested", "suggested", "drawn", "suggested", "suggested", "suggested", ""])
    confirmed = masks.confirm(backend, 9, 10)
    assert len(confirmed["faces"]) == 2 and backend.stale() == [9, 10]
    copied = masks.copy(backend, 10, 4)   # 11 and 12 replace their suggestions... and 13, 14 are new
    assert len(copied["faces"]) == 4 and backend.stale() == [9, 10, 11, 12, 13, 14]


@pytest.mark.parametrize("call, message", [
    (lambda b: masks.draw(b, 3, "not a list"), "shapes must be a list"),
    (lambda b: masks.draw(b, 99, []), "outside the plate"),
    (lambda b: masks.copy(b, 3, 0), "from 1 to 500"),
    (lambda b: masks.propagate(b, 3, 10), "no drawn or confirmed label"),
    (lambda b: masks.confirm(b, 3, 3), "no suggested label"),
    (lambda b: masks.remove_newest(b, 3), "no label to undo"),
])
def test_bad_requests_are_refused_with_a_clear_message(backend: Backend, call: object, message: str) -> None:
    with pytest.raises(DoppelError, match=message):
        call(backend)  # type: ignore[operator]


def test_frames_the_source_does_not_cover_are_problem_markers(merged_pair: Path, tmp_path: Path) -> None:
    """With only two source faces left, no target pose or expression is covered (a value needs three source
    faces near it): every target frame with a face gets the marker, and the marker says what is missing."""
    ws = tmp_path / "ws"
    shutil.copytree(merged_pair, ws)
    with doppel.open(ws) as p:
        ids = [f.id for f in p.faces(role="source").listed]
        p.exclude(ids[2:])
        gaps = p.coverage()
        assert gaps is not None and gaps.gaps
    b = Backend(ws)
    try:
        marked = {i for i, reasons in b.problems.items() if any("source never shows" in r for r in reasons)}
        assert marked == set(b.faces)
        assert any("head turned" in r or "mouth" in r or "eyes" in r for r in b.problems[min(marked)])
    finally:
        b.close()
