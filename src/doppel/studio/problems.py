"""Problem markers for the timeline, from per-frame figures that are cheap to have.

Each detector is a function (faces, frame_count, rows) -> {frame: reason}; `find` runs every one in the
registry. Extraction's figures are always there. The rows hold, per frame, the eval report's figures when
`doppel eval` has been run (judged by doppel.evaluate.flags, the same flags the report lists), the studio's
own measure of added flicker (`added_flicker`), and what the source never shows there (`uncovered`, from
doppel.evaluate.coverage: the model cannot make a pose or expression it has never seen).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from doppel.evaluate.coverage import ATTRIBUTES, workspace_coverage
from doppel.evaluate.flags import FLAGS
from doppel.extract.layout import inter_ocular
from doppel.merge.edits import face_landmarks
from doppel.workspace import Workspace
from doppel.workspace.faces import Face

LOW_CONFIDENCE = 0.5
"""Detector score under which a face is marked (the mesh confirmed it, but the detector hesitated)."""
JUMP = 0.12
"""A frame's landmarks further than this (inter-ocular distances) from the mean of its two neighbours."""

FLICKER = 4.0
"""Grey levels of frame-to-frame change in the face that the swap may add before a frame is marked."""

Detector = Callable[[dict[int, Face], int, dict[int, dict[str, Any]]], dict[int, str]]


def low_confidence(faces: dict[int, Face], n: int, rows: dict[int, dict[str, Any]]) -> dict[int, str]:
    return {i: f"low detection confidence ({f.score:.2f})" for i, f in faces.items() if f.score < LOW_CONFIDENCE}


def landmark_jump(faces: dict[int, Face], n: int, rows: dict[int, dict[str, Any]]) -> dict[int, str]:
    """Frames whose landmarks sit off the line between their neighbours' (a spike, not smooth motion); only the
    peak is marked, not the neighbours whose own midpoint it pulls."""
    jumps = {}
    for i, f in faces.items():
        a, b = faces.get(i - 1), faces.get(i + 1)
        if a is None or b is None:
            continue
        mid = (face_landmarks(a) + face_landmarks(b)) / 2
        jumps[i] = float(np.linalg.norm(face_landmarks(f) - mid, axis=1).mean()) / max(inter_ocular(mid), 1.0)
    return {i: f"landmark jump ({j:.2f} eye distances)" for i, j in jumps.items()
            if j > JUMP and j >= jumps.get(i - 1, 0.0) and j >= jumps.get(i + 1, 0.0)}


def face_lost(faces: dict[int, Face], n: int, rows: dict[int, dict[str, Any]]) -> dict[int, str]:
    """No face on a frame whose neighbours within 3 frames both have one: a dropout inside a shot."""
    return {i: "no face found (between frames that have one)" for i in range(n)
            if i not in faces and any(j in faces for j in range(i - 3, i)) and
            any(j in faces for j in range(i + 1, i + 4))}


def eval_flags(faces: dict[int, Face], n: int, rows: dict[int, dict[str, Any]]) -> dict[int, str]:
    """Every flag `doppel eval` raises on a frame (doppel.evaluate.flags.FLAGS: face lost, identity, eyes, gaze,
    mouth, soft, flicker, seam), as one reason."""
    out = {}
    for i, r in rows.items():
        hits = [meaning for meaning, test in FLAGS.values() if test(r)]
        if hits:
            out[i] = "; ".join(hits) + " (eval)"
    return out


def not_covered(faces: dict[int, Face], n: int, rows: dict[int, dict[str, Any]]) -> dict[int, str]:
    """Frames whose pose or expression the source never shows (see `find`)."""
    return {i: "the source never shows: " + ", ".join(r["uncovered"]) for i, r in rows.items()
            if r.get("uncovered")}


def flicker_spike(faces: dict[int, Face], n: int, rows: dict[int, dict[str, Any]]) -> dict[int, str]:
    """Frames where the swap adds more frame-to-frame change in the face than FLICKER grey levels and than
    3x the shot's typical added change (measured by the studio from its proxies, see `added_flicker`)."""
    values = {i: r["added_flicker"] for i, r in rows.items() if isinstance(r.get("added_flicker"), float)}
    if len(values) < 5:
        return {}
    typical = float(np.median(np.abs(list(values.values()))))
    return {i: f"flicker spike (+{v:.1f} grey levels, typical {typical:.1f})" for i, v in values.items()
            if v > max(FLICKER, 3 * typical)}


DETECTORS: dict[str, Detector] = {
    "low_confidence": low_confidence, "landmark_jump": landmark_jump, "face_lost": face_lost,
    "eval_flags": eval_flags, "not_covered": not_covered, "flicker_spike": flicker_spike,
}


def uncovered(ws: Workspace) -> dict[int, list[str]]:
    """Per target frame, what its face asks for that the source never shows (e.g. "mouth wide open"): the
    frames of the coverage's gaps (runs of at least three such frames, as `doppel extract` reports them)."""
    cover = workspace_coverage(ws)
    out: dict[int, list[str]] = {}
    if cover is None:
        return out
    frames = cover.target.frames
    for gap in cover.gaps:
        a = ATTRIBUTES[gap.attribute]
        inside = (cover.uncovered[gap.attribute] == (1 if gap.side == "high" else -1)) & (
            frames >= gap.first) & (frames <= gap.last)
        for frame in frames[inside]:
            out.setdefault(int(frame), []).append(a.high if gap.side == "high" else a.low)
    return out


def eval_rows(ws: Workspace) -> dict[int, dict[str, Any]]:
    path = ws.root / "eval" / "report.json"
    try:
        data = json.loads(path.read_text())
        return {int(r["frame"]): r for r in data.get("per_frame", [])}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def added_flicker(merged: tuple[np.ndarray, np.ndarray], plate: tuple[np.ndarray, np.ndarray],
                  box: tuple[int, int, int, int]) -> float:
    """Change inside the face box from the previous frame to this one that the swap adds to the plate's own:
    mean |merged_i - merged_i-1| minus mean |plate_i - plate_i-1|, in grey levels. Images: HxW (or HxWxC) uint8 pairs
    (previous, current); box: (x0, y0, x1, y1) frame pixels."""
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return 0.0

    def change(pair: tuple[np.ndarray, np.ndarray]) -> float:
        a, b = (im[y0:y1, x0:x1].astype(np.float32) for im in pair)
        return float(np.abs(a - b).mean())

    return change(merged) - change(plate)


def find(ws: Workspace, faces: dict[int, Face], frame_count: int,
         flicker: dict[int, float] | None = None) -> dict[int, list[str]]:
    """Every problem per frame, from all detectors. `flicker`: `added_flicker` per frame where measured."""
    rows = eval_rows(ws)
    for i, value in (flicker or {}).items():
        rows.setdefault(i, {"frame": i})["added_flicker"] = value
    for i, what in uncovered(ws).items():
        rows.setdefault(i, {"frame": i})["uncovered"] = what
    out: dict[int, list[str]] = {}
    for detect in DETECTORS.values():
        for i, reason in detect(faces, frame_count, rows).items():
            out.setdefault(i, []).append(reason)
    return out
