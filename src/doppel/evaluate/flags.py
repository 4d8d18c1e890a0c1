"""Per-frame problem markers from `doppel eval`'s per-frame figures, for the studio and the report.

Each flag is a (T,) bool array over the target's frames; a frame without a measurement is never flagged for it.
The thresholds are the points where a reviewer (here, looking at foreman->akiyo and foreman->deadline renders)
starts to notice the problem.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

Row = dict[str, Any]


def _value(row: Row, key: str) -> float:
    v = row.get(key)
    return float(v) if v is not None else float("nan")


def _rule(fn: Callable[[Row], bool]) -> Callable[[Row], bool]:
    def safe(row: Row) -> bool:
        try:
            return bool(fn(row))
        except (TypeError, ValueError):
            return False
    return safe


# name -> (what it means, the test on one frame's figures). NaN comparisons are False, so unmeasured frames pass.
FLAGS: dict[str, tuple[str, Callable[[Row], bool]]] = {
    "lost": ("the swapped face is not found again in the render",
             _rule(lambda r: bool(r.get("swapped")) and "eye_plate" in r and "identity_source" not in r)),
    "identity": ("the swapped face looks more like the target than the source",
                 _rule(lambda r: _value(r, "identity_source") <= _value(r, "identity_target"))),
    "eyes": ("eye opening differs from the plate's by more than 0.04 inter-ocular distances (a blink missed)",
             _rule(lambda r: abs(_value(r, "eye_out") - _value(r, "eye_plate")) > 0.04)),
    "gaze": ("the eyes look elsewhere than the plate's (down or up), or the lids close differently, by more than 0.4 "
             "in expression coefficients",
             _rule(lambda r: max(abs(_value(r, "look_out") - _value(r, "look_plate")),
                                 abs(_value(r, "blink_out") - _value(r, "blink_plate"))) > 0.4)),
    "mouth": ("inner-lip opening differs from the plate's by more than 0.06 inter-ocular distances",
              _rule(lambda r: abs(_value(r, "mouth_out") - _value(r, "mouth_plate")) > 0.06)),
    "soft": ("the face keeps less than half of the plate's mid-frequency detail",
             _rule(lambda r: _value(r, "detail") < 0.5)),
    "flicker": ("the face changes more than twice as much as the plate from the previous frame",
                _rule(lambda r: _value(r, "flicker") > 2.0)),
    "seam": ("compositing adds an edge at the mask outline stronger than the plate's own edges there",
             _rule(lambda r: _value(r, "seam") > 1.0)),
}


def problem_flags(per_frame: Sequence[Row]) -> dict[str, np.ndarray]:
    """Flag name -> (T,) bool over the frames of `per_frame` (as in `EvalReport.per_frame`)."""
    return {name: np.array([test(r) for r in per_frame], bool) for name, (_, test) in FLAGS.items()}


def frame_ranges(flags: np.ndarray, frames: list[int] | None = None, min_gap: int = 3) -> list[tuple[int, int]]:
    """Runs of flagged frames as inclusive (first, last) frame numbers, joining runs less than `min_gap` apart.
    `flags`: (T,) bool; `frames`: the frame number of each entry (default 0..T-1)."""
    idx = np.flatnonzero(flags)
    numbers = np.asarray(frames if frames is not None else range(len(flags)))
    out: list[tuple[int, int]] = []
    for i in idx:
        f = int(numbers[i])
        if out and f - out[-1][1] < min_gap:
            out[-1] = (out[-1][0], f)
        else:
            out.append((f, f))
    return out


def worst_frames(per_frame: Sequence[Row], count: int) -> list[int]:
    """Frame numbers of up to `count` swapped frames with the most flags (ties: the larger expression error)."""
    flags = problem_flags(per_frame)
    total = np.sum(np.stack(list(flags.values())), 0)
    scored = [(int(total[i]), _value(r, "expression_error"), r["frame"]) for i, r in enumerate(per_frame)
              if r.get("swapped")]
    scored.sort(key=lambda t: (-t[0], -(t[1] if np.isfinite(t[1]) else -1.0)))
    return [frame for _, _, frame in scored[:count]]


def read_flags(report_json: Path) -> dict[str, np.ndarray]:
    """The problem flags of a written report (WS/eval/report.json), as flag name -> (frames,) bool indexed by
    frame number: what the studio marks on its timeline. Recomputed from the per-frame values, so a report
    written before a flag existed still gets it."""
    data = json.loads(Path(report_json).read_text())
    rows = data["per_frame"]
    frames = int(data.get("frames", len(rows)))
    out = {}
    for name, marks in problem_flags(rows).items():
        full = np.zeros(frames, bool)
        full[[r["frame"] for r, m in zip(rows, marks, strict=True) if m]] = True
        out[name] = full
    return out
