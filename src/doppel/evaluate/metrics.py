"""`doppel eval`: how well the merged shot swaps identity, keeps the performance, and holds still.

- identity: SFace cosine of each swapped face (found again in the render) to the source person and to the
  target person (their mean embeddings from extraction); a swap works where the first beats the second.
- expression / pose fidelity: mean distance of the swapped face's 68 landmarks from the target's, divided
  by the inter-ocular distance.
- flicker: the mean absolute frame-to-frame change inside the face region, merged shot against plate; a ratio
  near 1 means the swap adds no flicker of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from doppel.errors import DoppelError
from doppel.extract.aligned import AlignedFace
from doppel.extract.analyze import AnalyzerConfig, FaceAnalyzer
from doppel.fsutil import atomic_path, write_text_atomic
from doppel.media.probe import Progress
from doppel.media.video import MediaReader
from doppel.reports import Report, internal
from doppel.workspace import Workspace
from doppel.workspace.records import Role


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
    renders = {i: r.path for i, r in ws.renders.swapped().items() if r.path}
    if not renders:
        raise DoppelError("nothing is merged yet: run `doppel merge` first", ws.root)
    src_emb, dst_emb = _person_embedding(ws, "source"), _person_embedding(ws, "target")
    faces = {f.frame_idx: AlignedFace.of(f) for f in ws.faces.of_chosen("target", media_id=target.id)}
    analyzer = FaceAnalyzer(AnalyzerConfig.from_settings(ws.settings.extract))
    per_frame: list[dict[str, Any]] = []
    prev: tuple[np.ndarray, np.ndarray] | None = None
    flicker_m, flicker_p = [], []
    with MediaReader(target.info) as reader:
        for i in range(target.info.frame_count):
            plate = reader[i]
            merged = plate
            if i in renders:
                img = cv2.imread(str(ws.root / renders[i]))
                if img is None:
                    raise DoppelError("render is missing; run `doppel merge`", ws.root / renders[i])
                merged = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            face = faces.get(i)
            row: dict[str, Any] = {"frame": i, "swapped": i in renders}
            if face is not None:
                mask = face.frame_mask(plate.shape[1], plate.shape[0]) > 127
                if prev is not None and mask.any():
                    flicker_m.append(float(np.abs(merged.astype(np.float32) - prev[0])[mask].mean()))
                    flicker_p.append(float(np.abs(plate.astype(np.float32) - prev[1])[mask].mean()))
                if i in renders:
                    found = [f for f in analyzer.analyze(merged)
                             if np.linalg.norm(f.lm68.mean(0) - face.centre) < face.size]
                    if found:
                        f = found[0]
                        row.update(identity_source=float(f.embedding @ src_emb),
                                   identity_target=float(f.embedding @ dst_emb),
                                   landmark_error=float(np.linalg.norm(f.lm68 - face.landmarks, axis=1).mean()
                                                        / face.size))
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
        flicker_ratio=fm / fp if fp and fp == fp else float("nan"), per_frame=tuple(per_frame),
    )


def write_report(ws: Workspace, report: EvalReport) -> Path:
    """eval/report.json, eval/report.txt and eval/report.png in the workspace; returns the folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = ws.subdir("eval")
    write_text_atomic(folder / "report.json", json.dumps({**report.summary(), "per_frame": report.per_frame},
                                                         indent=1))
    s = report.summary()
    text = "\n".join([
        f"frames {s['frames']}, swapped {s['swapped']}, swapped face found again in {s['found']}",
        f"identity (SFace cosine): to the source person {s['identity_source']}, to the target person "
        f"{s['identity_target']}; the source wins on {100 * s['source_wins']:.1f} % of frames",
        f"expression/pose: landmarks {s['landmark_error']} inter-ocular distances from the target's",
        f"flicker in the face region: merged {s['flicker_merged']}, plate {s['flicker_plate']} "
        f"(ratio {s['flicker_ratio']})",
    ])
    write_text_atomic(folder / "report.txt", text + "\n")
    frames = [r["frame"] for r in report.per_frame if "identity_source" in r]
    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=100)
    ax.plot(frames, [r["identity_source"] for r in report.per_frame if "identity_source" in r], label="to source")
    ax.plot(frames, [r["identity_target"] for r in report.per_frame if "identity_source" in r], label="to target")
    ax.set_xlabel("frame")
    ax.set_ylabel("identity (cosine)")
    ax.legend(loc="best")
    ax.set_title("Who does the swapped face look like?")
    fig.tight_layout()
    with atomic_path(folder / "report.png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return folder
