"""Debug overlays a person can look at: box, 68 landmarks, mask outline, track and person per face."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from doppel.media.images import write_jpeg
from doppel.media.probe import Progress
from doppel.media.video import MediaReader
from doppel.workspace import Media, Workspace
from doppel.workspace.faces import Face


def draw(image: np.ndarray, faces: list[Face]) -> np.ndarray:
    """A copy of an HxWx3 uint8 RGB frame with its faces drawn on it."""
    out = image.copy()
    for f in faces:
        colour = (60, 220, 60) if not f.excluded else (230, 60, 60)
        x0, y0, x1, y1 = (int(round(v)) for v in f.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, 1, cv2.LINE_AA)
        cv2.polylines(out, [np.round(f.polygon * 16).astype(np.int32)], True, (255, 200, 0), 1, cv2.LINE_AA, 4)
        for x, y in f.lm68:
            cv2.circle(out, (int(round(x * 16)), int(round(y * 16))), 16, (0, 255, 255), -1, cv2.LINE_AA, 4)
        if f.lm68_smooth is not None:
            for x, y in f.lm68_smooth:
                cv2.circle(out, (int(round(x * 16)), int(round(y * 16))), 16, (255, 0, 255), -1, cv2.LINE_AA, 4)
        label = f"t{f.track_id} p{f.person_id}" + (f" {f.exclude_reason}" if f.excluded else "")
        cv2.putText(out, label, (x0, max(10, y0 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    return out


def write_overlays(ws: Workspace, progress_for: Callable[[Media], Progress | None] | None = None) -> Path:
    """Write WS/debug/m<media id>/<frame>.jpg for every frame of every media item; returns the folder."""
    root = ws.subdir("debug")
    for m in ws.media():
        faces_by_frame: dict[int, list[Face]] = {}
        for f in ws.faces.of_media(m.id):
            faces_by_frame.setdefault(f.frame_idx, []).append(f)
        folder = root / f"m{m.id}"
        folder.mkdir(exist_ok=True)
        progress = progress_for(m) if progress_for else None
        with MediaReader(m.info) as reader:
            for frame in reader:
                img = draw(frame.image, faces_by_frame.get(frame.index, []))
                write_jpeg(folder / f"{frame.index:06d}.jpg", img, durable=False)
                if progress and frame.index % 10 == 0:
                    progress(frame.index + 1, len(reader))
    return root
