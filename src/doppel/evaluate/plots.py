"""Pictures of `doppel eval`: the per-frame figures over the shot, and a contact sheet of the worst frames."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from doppel.evaluate.flags import FLAGS, problem_flags

Row = dict[str, Any]


def _col(per_frame: Sequence[Row], key: str) -> np.ndarray:
    return np.array([float(r.get(key, np.nan)) for r in per_frame], np.float64)


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.name}.part")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    tmp.replace(path)


def plot_series(per_frame: Sequence[Row], summary: dict[str, Any], path: Path) -> None:
    """report.png: identity, eye and mouth opening and where the eyes look (output against plate), detail,
    flicker and seam over frames, with the frames each problem flag marks as a strip underneath."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = np.array([r["frame"] for r in per_frame])
    fig, axes = plt.subplots(7, 1, figsize=(9, 14), dpi=90, sharex=True)
    panels = [
        ("identity (cosine)", [("identity_source", "to source"), ("identity_target", "to target")],
         f"source wins {100 * summary.get('source_wins', float('nan')):.0f} %"),
        ("eye opening (IOD)", [("eye_plate", "plate"), ("eye_out", "swap")], f"corr {summary.get('eye_corr'):.2f}"),
        ("mouth opening (IOD)", [("mouth_plate", "plate"), ("mouth_out", "swap")],
         f"corr {summary.get('mouth_corr'):.2f}"),
        ("look down (+) / up (-)", [("look_plate", "plate"), ("look_out", "swap")],
         f"corr {summary.get('look_corr', float('nan')):.2f}, lids {summary.get('blink_corr', float('nan')):.2f}"),
        ("detail / plate", [("detail", "per frame")], f"overall {summary.get('detail_ratio'):.2f}"),
        ("flicker / plate, seam", [("flicker", "flicker"), ("seam", "seam")],
         f"flicker {summary.get('flicker_ratio'):.2f}, seam {summary.get('seam'):.2f}"),
    ]
    for ax, (label, series, note) in zip(axes, panels, strict=False):
        for key, name in series:
            ax.plot(frames, _col(per_frame, key), label=name, lw=1)
        ax.set_ylabel(label, fontsize=8)
        ax.set_title(note, fontsize=8, loc="right")
        ax.legend(loc="upper left", fontsize=7)
    flags = problem_flags(per_frame)
    ax = axes[-1]
    for row, marks in enumerate(flags.values()):
        ax.scatter(frames[marks], np.full(int(marks.sum()), row), s=4, marker="|")
    ax.set_yticks(range(len(FLAGS)), list(FLAGS), fontsize=7)
    ax.set_xlabel("frame")
    ax.set_title("problem flags", fontsize=8, loc="right")
    fig.tight_layout()
    _save(fig, path)


def contact_sheet(pairs: list[tuple[int, np.ndarray, np.ndarray]], path: Path, tile: int = 128) -> None:
    """worst.png: for each (frame, plate crop, merged crop) (HxWx3 uint8 RGB), the plate above the swap,
    labelled with the frame number."""
    columns = []
    for frame, plate, merged in pairs:
        col = np.concatenate([cv2.resize(plate, (tile, tile)), cv2.resize(merged, (tile, tile))], 0)
        col = np.ascontiguousarray(col)
        cv2.putText(col, str(frame), (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1, cv2.LINE_AA)
        columns.append(col)
    sheet = np.concatenate(columns, 1) if columns else np.zeros((2 * tile, tile, 3), np.uint8)
    tmp = path.with_name(f".{path.name}.part")
    ok, data = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if ok:
        tmp.write_bytes(data.tobytes())
        tmp.replace(path)
