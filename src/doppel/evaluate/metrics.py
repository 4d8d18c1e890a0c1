"""`doppel eval`: how well the merged shot swaps identity, keeps the performance, and holds still.

- identity: SFace cosine of each swapped face (found again in the render) to the source person and to the
  target person (their mean embeddings from extraction); a swap works where the first beats the second.
- expression / pose fidelity: mean distance of the swapped face's 68 landmarks from the target's, divided
  by the inter-ocular distance.
- expression dynamics: the correlation over the shot of the swapped face's eye and inner-lip opening with the
  plate's (`evaluate.expression`), and the mean gap between them (expression error); and of where its eyes look
  (down or up) and how far its lids close, from blendshape coefficients (`extract.blendshapes`), which see a
  downcast look that the lid landmarks take for an open eye.
- detail: the share of the plate's mid-frequency structure inside the face that the merged face reproduces
  (`evaluate.detail`; noise, grain and fixed patterns cannot raise it); seam: the edge compositing adds at the
  mask outline.
- flicker: the mean absolute frame-to-frame change inside the face region, merged shot against plate; a ratio
  near 1 means the swap adds no flicker of its own.

Per-frame values are kept (`EvalReport.per_frame`, report.json) and `evaluate.flags.problem_flags` turns them
into per-frame problem markers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from doppel.errors import DoppelError
from doppel.evaluate import detail, expression
from doppel.evaluate.flags import FLAGS, frame_ranges, problem_flags, worst_frames
from doppel.evaluate.plots import contact_sheet, plot_series
from doppel.extract.aligned import AlignedFace
from doppel.extract.analyze import AnalyzerConfig, FaceAnalyzer
from doppel.extract.blendshapes import Blendshapes
from doppel.fsutil import write_text_atomic
from doppel.media.probe import Progress
from doppel.media.video import MediaReader
from doppel.reports import Report, internal
from doppel.workspace import Workspace
from doppel.workspace.records import Role
from doppel.workspace.renders import Render

SFACE_SAME_PERSON = 0.363
"""SFace's cosine threshold for "the same person" (OpenCV's published value). `source_wins` only asks whether
the face is closer to the source than to the target, which a featureless blob also achieves; `source_match`
asks that it also clear this threshold."""


@dataclass(frozen=True)
class EvalReport(Report):
    """`evaluate`'s figures (see the module's docstring); `per_frame` (left out of `to_json`) holds each frame's.
    `folder` is where report.json, report.txt and report.png were written, when they were."""

    frames: int
    swapped: int
    found: int
    identity_source: float
    identity_target: float
    source_wins: float
    landmark_error: float
    flicker_merged: float
    flicker_plate: float
    flicker_ratio: float
    source_match: float = float("nan")
    eye_corr: float = float("nan")
    mouth_corr: float = float("nan")
    look_corr: float = float("nan")
    blink_corr: float = float("nan")
    expression_error: float = float("nan")
    detail_ratio: float = float("nan")
    seam: float = float("nan")
    per_frame: tuple[dict[str, Any], ...] = internal(default=())
    folder: Path | None = internal(default=None)

    def to_json(self) -> dict[str, Any]:
        """The figures (rounded to 4 decimals) without the per-frame detail."""
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in super().to_json().items()}

    def summary(self) -> dict[str, Any]:
        return self.to_json()


def _person_embedding(ws: Workspace, role: Role) -> np.ndarray:
    person = ws.people.chosen(role)
    if person is None:
        raise DoppelError(f"no {role} person: run `doppel extract` first", ws.root)
    return person.embedding


def evaluate(ws: Workspace, progress: Progress | None = None) -> EvalReport:
    target = ws.target()
    if target is None:
        raise DoppelError("the workspace has no target", ws.root)
    records = ws.renders.swapped()
    renders = {i: r.path for i, r in records.items() if r.path}
    if not renders:
        raise DoppelError("nothing is merged yet: run `doppel merge` first", ws.root)
    src_emb, dst_emb = _person_embedding(ws, "source"), _person_embedding(ws, "target")
    faces = {f.frame_idx: AlignedFace.of(f) for f in ws.faces.of_chosen("target", media_id=target.id)}
    analyzer = FaceAnalyzer(AnalyzerConfig.from_settings(ws.settings.extract))
    shapes = Blendshapes()
    per_frame: list[dict[str, Any]] = []
    prev: tuple[np.ndarray, np.ndarray] | None = None
    flicker_m, flicker_p = [], []
    with MediaReader(target.info) as reader:
        for i in range(target.info.frame_count):
            plate = reader[i]
            merged = plate
            if i in renders:
                render_path = ws.inside(renders[i], "render path")
                img = cv2.imread(str(render_path))
                if img is None:
                    raise DoppelError("render is missing; run `doppel merge`", render_path)
                merged = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            face = faces.get(i)
            row: dict[str, Any] = {"frame": i, "swapped": i in renders}
            if face is not None:
                mask = face.frame_mask(plate.shape[1], plate.shape[0]) > 127
                if prev is not None and mask.any():
                    flicker_m.append(float(np.abs(merged.astype(np.float32) - prev[0])[mask].mean()))
                    flicker_p.append(float(np.abs(plate.astype(np.float32) - prev[1])[mask].mean()))
                    row["flicker"] = flicker_m[-1] / max(flicker_p[-1], 1e-3)
                eye, mouth = expression.openings(face.landmarks)
                look, blink = expression.gaze(shapes.run(plate, face.landmarks))
                row.update(eye_plate=eye, mouth_plate=mouth, look_plate=look, blink_plate=blink)
                if i in renders:
                    row.update(_image_measures(merged, plate, face, mask, _layer_alpha(ws, records[i], plate.shape)))
                    found = [f for f in analyzer.analyze(merged)
                             if np.linalg.norm(f.lm68.mean(0) - face.centre) < face.size]
                    if found:
                        f = found[0]
                        eye_out, mouth_out = expression.openings(f.lm68)
                        look_out, blink_out = expression.gaze(shapes.run(merged, f.lm68))
                        row.update(identity_source=float(f.embedding @ src_emb),
                                   identity_target=float(f.embedding @ dst_emb),
                                   landmark_error=float(np.linalg.norm(f.lm68 - face.landmarks, axis=1).mean()
                                                        / face.size),
                                   eye_out=eye_out, mouth_out=mouth_out, look_out=look_out, blink_out=blink_out,
                                   expression_error=(abs(eye_out - eye) + abs(mouth_out - mouth)) / 2)
            prev = (merged.astype(np.float32), plate.astype(np.float32)) if face is not None else None
            per_frame.append(row)
            if progress and i % 10 == 0:
                progress(i + 1, target.info.frame_count)
    scored = [r for r in per_frame if "identity_source" in r]
    mean = lambda key: float(np.mean([r[key] for r in scored])) if scored else float("nan")  # noqa: E731
    fm = float(np.mean(flicker_m)) if flicker_m else float("nan")
    fp = float(np.mean(flicker_p)) if flicker_p else float("nan")
    return EvalReport(
        frames=target.info.frame_count, swapped=len(renders), found=len(scored),
        identity_source=mean("identity_source"), identity_target=mean("identity_target"),
        source_wins=float(np.mean([r["identity_source"] > r["identity_target"] for r in scored])) if scored else 0.0,
        landmark_error=mean("landmark_error"), flicker_merged=fm, flicker_plate=fp,
        flicker_ratio=fm / fp if fp and fp == fp else float("nan"),
        source_match=float(np.mean([r["identity_source"] >= SFACE_SAME_PERSON for r in scored])) if scored
        else 0.0,
        eye_corr=expression.correlation(column(per_frame, "eye_out"), column(per_frame, "eye_plate")),
        mouth_corr=expression.correlation(column(per_frame, "mouth_out"), column(per_frame, "mouth_plate")),
        look_corr=expression.correlation(column(per_frame, "look_out"), column(per_frame, "look_plate")),
        blink_corr=expression.correlation(column(per_frame, "blink_out"), column(per_frame, "blink_plate")),
        expression_error=mean("expression_error"),
        detail_ratio=detail.detail_ratio(column(per_frame, "detail_shared"), column(per_frame, "detail_plate")),
        seam=float(np.nanmean(column(per_frame, "seam"))) if np.isfinite(column(per_frame, "seam")).any()
        else float("nan"),
        per_frame=tuple(per_frame),
    )


def column(per_frame: Sequence[dict[str, Any]], key: str) -> np.ndarray:
    """One per-frame value over the shot: (T,) float64, NaN where the frame has none."""
    return np.array([float(r.get(key, np.nan)) for r in per_frame], np.float64)


def _layer_alpha(ws: Workspace, render: Render, shape: tuple[int, ...]) -> np.ndarray:
    """How much of each frame pixel is the generated face (HxW float32 in [0, 1]): the alpha of the face
    layer the merge stored beside the render, placed at its corner."""
    alpha = np.zeros(shape[:2], np.float32)
    if render.layer_path is None:
        raise DoppelError("the render has no face layer; run `doppel merge --force`", ws.root)
    path = ws.inside(render.layer_path, "layer path")
    layer = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if layer is None or layer.ndim != 3 or layer.shape[2] != 4:
        raise DoppelError("face layer is missing or unreadable; run `doppel merge --force`", path)
    h, w = alpha.shape
    x, y = render.layer_x, render.layer_y
    part = layer[: max(0, h - y), : max(0, w - x), 3].astype(np.float32) / 255
    alpha[y:y + part.shape[0], x:x + part.shape[1]] = part
    return alpha


def _image_measures(merged: np.ndarray, plate: np.ndarray, face: AlignedFace, mask: np.ndarray,
                    alpha: np.ndarray) -> dict[str, Any]:
    """Detail and seam of one swapped frame. merged, plate: HxWx3 uint8 RGB; mask: HxW bool face region;
    alpha: HxW float32, how much of each pixel the merge took from the generated face (its layer's alpha).
    Detail counts only the generated face: each pixel of the face region weighs by alpha, so where the mask
    left the plate (a lowered forehead, an eroded or feathered edge, an occluder) the plate's own detail does
    not pass for the model's."""
    size = detail.DETAIL_SIZE
    to_crop = face.stored_alignment(size)
    inner = cv2.erode(face.crop_mask(size), np.ones((5, 5), np.uint8)) > 127
    weight = cv2.warpAffine(alpha, to_crop, (size, size), flags=cv2.INTER_LINEAR, borderValue=0) * inner
    shared, plate_energy = detail.plate_projection(detail.aligned_band(merged, to_crop),
                                                   detail.aligned_band(plate, to_crop), weight)
    return {"detail_shared": shared, "detail_plate": plate_energy,
            "detail": shared / plate_energy if plate_energy > 1e-9 else float("nan"),
            "seam": detail.seam_strength(merged, plate, mask, int(round(0.15 * face.size)))}


def write_report(ws: Workspace, report: EvalReport, worst: int = 8) -> Path:
    """eval/report.json (figures, per-frame values and problem flags), report.txt, report.png (figures over
    frames) and worst.png (plate above swap for the `worst` most-flagged frames); returns the folder."""
    folder = ws.subdir("eval")
    flags = problem_flags(report.per_frame)
    write_text_atomic(folder / "report.json", json.dumps({
        **report.summary(), "per_frame": report.per_frame,
        "flags": {name: [int(f) for f in np.flatnonzero(v)] for name, v in flags.items()}}, indent=1))
    s = report.summary()
    text = [
        f"frames {s['frames']}, swapped {s['swapped']}, swapped face found again in {s['found']}",
        f"identity (SFace cosine): to the source person {s['identity_source']}, to the target person "
        f"{s['identity_target']}; the source wins on {100 * s['source_wins']:.1f} % of frames",
        f"expression/pose: landmarks {s['landmark_error']} inter-ocular distances from the target's",
        f"expression dynamics: eye opening follows the plate's with correlation {s['eye_corr']}, mouth opening "
        f"{s['mouth_corr']}; mean opening error {s['expression_error']} inter-ocular distances",
        f"gaze: where the eyes look (down or up) follows the plate with correlation {s['look_corr']}, how far the "
        f"lids close {s['blink_corr']}",
        f"detail: the face reproduces {s['detail_ratio']} of the plate's mid-frequency structure",
        f"flicker in the face region: merged {s['flicker_merged']}, plate {s['flicker_plate']} "
        f"(ratio {s['flicker_ratio']}); seam at the mask edge {s['seam']}",
    ]
    for name, marks in flags.items():
        ranges = frame_ranges(marks, [r["frame"] for r in report.per_frame])
        if ranges:
            shown = ", ".join(f"{a}-{b}" if b > a else str(a) for a, b in ranges[:8])
            text.append(f"flag {name} ({FLAGS[name][0]}): {int(marks.sum())} frames: {shown}"
                        + (" ..." if len(ranges) > 8 else ""))
    write_text_atomic(folder / "report.txt", "\n".join(text) + "\n")
    plot_series(report.per_frame, s, folder / "report.png")
    contact_sheet(_worst_crops(ws, worst_frames(report.per_frame, worst)), folder / "worst.png")
    return folder


def _worst_crops(ws: Workspace, frames: list[int]) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(frame, plate crop, merged crop) around the subject's face for each of `frames`."""
    target = ws.target()
    if target is None or not frames:
        return []
    faces = {f.frame_idx: AlignedFace.of(f) for f in ws.faces.of_chosen("target", media_id=target.id)}
    renders = {i: r.path for i, r in ws.renders.swapped().items() if r.path}
    out = []
    with MediaReader(target.info) as reader:
        for i in sorted(frames):
            face, img = faces.get(i), cv2.imread(str(ws.root / renders[i])) if i in renders else None
            if face is None or img is None:
                continue
            plate = reader[i]
            pad = 1.2 * face.size
            (x0, y0), (x1, y1) = face.landmarks.min(0) - pad, face.landmarks.max(0) + pad
            x0, y0 = max(0, int(x0)), max(0, int(y0))
            x1, y1 = min(plate.shape[1], int(x1)), min(plate.shape[0], int(y1))
            merged = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            out.append((i, plate[y0:y1, x0:x1], merged[y0:y1, x0:x1]))
    return out
