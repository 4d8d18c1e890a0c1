"""The occlusion mask's part of the scriptable front door: `Project`'s mask methods (labels, copy,
propagation, confirmation, training, apply), each returning a frozen report.

Faces are named by id (see `Project.faces`, or `Project.target_face(frame)` for the chosen target person's
face in a frame). Polygons are lists of [x, y] in frame pixels. Label edits made here are logged in the same
undo log as the studio's edits, so the studio's Ctrl+Z takes them back too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from doppel.errors import DoppelError
from doppel.progress import ProgressCallback, bind
from doppel.reports import Report

if TYPE_CHECKING:
    from doppel.occlusion.labels import StoredLabel
    from doppel.occlusion.train import MaskTrainReport
    from doppel.workspace import Workspace
    from doppel.workspace.faces import Face

Polygon = Sequence[Sequence[float]]


@dataclass(frozen=True)
class MaskLabelReport(Report):
    """A face's mask label as it now is: its newest version (None: the face has no label) and how many
    versions it has. `label` is the JSON form {"base", "shapes": [{"mode", "points"}]} in frame pixels."""

    face: int
    frame: int
    version: int | None
    kind: str | None
    label: dict[str, Any] | None
    origin: int | None
    versions: int


@dataclass(frozen=True)
class MaskEditReport(Report):
    """What a copy, propagation or confirmation changed: the faces that got a label version (`kind`), and
    the faces with an artist's label of their own where it stopped."""

    action: str
    kind: str
    faces: tuple[int, ...]
    stopped_at: tuple[int, ...]


@dataclass(frozen=True)
class MaskApplyReport(Report):
    """`apply_mask`'s outcome: faces seen, masks computed (from the network or from a label)."""

    faces: int
    computed: int
    from_labels: int
    seconds: float
    model: str


class MaskMethods:
    """Mixed into `doppel.Project` (which provides `workspace`)."""

    workspace: Workspace

    def target_face(self, frame: int) -> Face:
        """The chosen target person's face in plate frame `frame`."""
        target = self.workspace.target()
        if target is None:
            raise DoppelError("the workspace has no target; add one first", self.workspace.root)
        found = {f.frame_idx: f for f in self.workspace.faces.of_chosen("target", media_id=target.id)}
        if frame not in found:
            raise DoppelError(f"frame {frame} has no face of the chosen target person")
        return found[frame]

    def mask_label(self, face: int) -> MaskLabelReport:
        """The face's current mask label and how many versions it has."""
        from doppel.occlusion import edits
        from doppel.occlusion import labels as lab

        found = edits.face_of(self.workspace, face)
        history = lab.history(self.workspace.occlusion, found.id)
        return _label_report(found, history[-1] if history else None, len(history))

    def mask_labels(self, kind: str | None = None) -> tuple[MaskLabelReport, ...]:
        """The current label of every labelled face (only those whose newest version is `kind`: "drawn",
        "suggested" or "confirmed"), by face id."""
        from doppel.occlusion import labels as lab

        kinds = lab.KINDS if kind is None else (choice_kind(kind),)
        out = []
        for face_id, stored in sorted(lab.current_labels(self.workspace.occlusion, kinds).items()):
            face = self.workspace.faces.by_id(face_id)
            if face is not None:
                out.append(_label_report(face, stored, len(lab.history(self.workspace.occlusion, face_id))))
        return tuple(out)

    def mask_label_history(self, face: int) -> tuple[MaskLabelReport, ...]:
        """Every version of the face's label, oldest first."""
        from doppel.occlusion import edits
        from doppel.occlusion import labels as lab

        found = edits.face_of(self.workspace, face)
        history = lab.history(self.workspace.occlusion, found.id)
        return tuple(_label_report(found, s, k + 1) for k, s in enumerate(history))

    def add_mask_label(self, face: int, *, include: Sequence[Polygon] = (), exclude: Sequence[Polygon] = (),
                       base: str = "landmarks", shapes: Sequence[dict[str, Any]] | None = None) -> MaskLabelReport:
        """Draw a new version of the face's label: `include` polygons painted onto `base` ("landmarks": the
        face's mesh polygon; "empty"), then `exclude` ones; or `shapes` ({"mode", "points"}, in order; with a
        "radius" a shape is a brush stroke, stored as the outline of what it paints). Each polygon needs at least
        3 points (a stroke 1) and must overlap the face's crop. Drawn labels are trained on and, in
        merge, cut that face's mask."""
        from doppel.occlusion import edits

        label = edits.build_label(include, exclude, base, shapes)
        stored = edits.add(self.workspace, face, label, "drawn")
        return self.mask_label(stored.face_id)

    def undo_mask_label(self, face: int) -> MaskLabelReport:
        """Remove the newest version of the face's label (the one before becomes current)."""
        from doppel.occlusion import edits

        edits.remove_newest(self.workspace, face)
        return self.mask_label(face)

    def copy_mask_label(self, face: int, frames: int = 1) -> MaskEditReport:
        """Copy the face's label (drawn or confirmed) to the next `frames` faces of its track, as drawn labels,
        up to the next face with an artist's label."""
        from doppel.occlusion import edits

        result = edits.copy_forward(self.workspace, face, frames)
        return MaskEditReport("copy", "drawn", result.faces, result.stopped_at)

    def propagate_mask(self, face: int, frames: int = 15) -> MaskEditReport:
        """Carry the face's label up to `frames` frames each way along its track by the face's motion, as
        suggested labels (not trained on nor used in merge until confirmed), up to the next artist's label."""
        from doppel.occlusion import edits

        result = edits.propagate(self.workspace, face, frames)
        return MaskEditReport("propagate", "suggested", result.faces, result.stopped_at)

    def confirm_mask_labels(self, faces: int | Sequence[int]) -> MaskEditReport:
        """Accept the suggested labels of these faces (a face named alone must have one)."""
        from doppel.occlusion import edits

        ids = [faces] if isinstance(faces, int) else list(faces)
        if not ids:
            raise DoppelError("name at least one face to confirm")
        result = edits.confirm(self.workspace, ids)
        return MaskEditReport("confirm", "confirmed", result.faces, ())

    def train_mask(self, *, minutes: float | None = None, iterations: int | None = None,
                   resolution: int | None = None, device: str | None = None,
                   progress: ProgressCallback | None = None) -> MaskTrainReport:
        """Train (or continue) the occlusion mask network: on the footage itself (self-supervised, useful with
        no labels) and on the drawn and confirmed labels. Progress is reported as stage "mask"."""
        from doppel.occlusion.train import MaskTrainer

        if minutes is None and iterations is None:
            raise DoppelError("give minutes=M or iterations=N")
        if (minutes is not None and minutes <= 0) or (iterations is not None and iterations < 1):
            raise DoppelError("minutes must be positive and iterations at least 1")
        trainer = MaskTrainer.open(self.workspace, resolution=resolution, device=device)
        step = bind(progress, "mask", "train")
        start = time.monotonic()

        def report(done: int, asked: int) -> None:
            if step is not None:
                step(done, asked) if asked else step(int(time.monotonic() - start), int((minutes or 0) * 60))

        return trainer.train(iterations=iterations, minutes=minutes, progress=report)

    def apply_mask(self, *, force: bool = False, device: str | None = None,
                   progress: ProgressCallback | None = None) -> MaskApplyReport:
        """Store an up-to-date occlusion mask for every face (merge does this itself in the occlusion mask
        modes); a face with a drawn or confirmed label gets its label."""
        from doppel.occlusion.apply import apply_masks

        r = apply_masks(self.workspace, force=force, device=device, progress=bind(progress, "mask", "apply"))
        return MaskApplyReport(r.faces, r.computed, r.from_labels, r.seconds, r.model)


def choice_kind(kind: str) -> str:
    from doppel.occlusion.labels import KINDS

    if kind not in KINDS:
        raise DoppelError(f"label kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return kind


def _label_report(face: Face, stored: StoredLabel | None, versions: int) -> MaskLabelReport:
    if stored is None:
        return MaskLabelReport(face.id, face.frame_idx, None, None, None, None, versions)
    return MaskLabelReport(face.id, face.frame_idx, stored.version, stored.kind, stored.label.to_json(),
                           stored.origin_id, versions)
