"""The studio's one door into the workspace: every read and edit the web app makes goes through `Backend`.

It calls the same library functions as the CLI (merge, overrides, review state). Not thread-safe: the server
calls it from a single engine thread, except `cached_proxy`, which only looks at the file system.
"""

from __future__ import annotations

from dataclasses import asdict, fields, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

import doppel
from doppel.errors import DoppelError
from doppel.media.video import MediaReader
from doppel.merge import edits
from doppel.merge.plan import FramePlan, plan, subject_faces
from doppel.merge.render import render_plans
from doppel.studio import masks, problems
from doppel.workspace import review
from doppel.workspace.faces import Face
from doppel.workspace.settings import MergeSettings

if TYPE_CHECKING:
    from doppel.merge.model import SwapModel

PROXY_KINDS = ("plate", "merged", "mask")
"""Images the studio serves per frame, by (kind, frame number) — never by a path from the request."""
JPEG_QUALITY = 88


def timecode(frame: int, fps: Fraction) -> str:
    """SMPTE-style HH:MM:SS:FF (non-drop; the frame field counts at the rounded rate)."""
    rate = max(1, round(float(fps)))
    seconds, ff = divmod(frame, rate)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}:{ff:02d}"


def _inside(root: Path, path: Path) -> Path:
    """`path` resolved, refused unless it stays inside `root` (symlinks included)."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise DoppelError("refusing a path that leads outside the workspace", path)
    return resolved


class Backend:
    """A workspace opened for the studio. `root`: the workspace folder."""

    def __init__(self, root: Path, device: str | None = "cpu") -> None:
        self.project = doppel.open(root)  # the public front door; its storage object serves the stages below
        self.ws = self.project.workspace
        target = self.ws.target()
        if target is None:
            raise DoppelError("the workspace has no target; add one with `doppel add --target`", self.ws.root)
        self.target = target
        self.frame_count = target.info.frame_count
        self.device = device
        self.reader = MediaReader(target.info)
        self.proxy_root = _inside(self.ws.root, self.ws.root / "studio" / "proxies")
        for kind in PROXY_KINDS:
            _inside(self.ws.root, self.proxy_root / kind).mkdir(parents=True, exist_ok=True)
        self._model: SwapModel | None = None
        self.model_id: str | None = None
        self.planned = False  # the model's identity and the render plan load on first need (they import torch)
        self.keys: dict[int, str] = {}
        self.plans: list[FramePlan] = []
        self.faces: dict[int, Face] = {}
        self.problems: dict[int, list[str]] = {}
        self.flicker: dict[int, float] = {}  # added_flicker per frame, measured from the proxies when idle
        self.refresh()

    def close(self) -> None:
        self.reader.close()
        self.project.close()

    # -- state ------------------------------------------------------------------------------------------
    def ensure_plan(self) -> None:
        """Find the model's identity and compute the render plan (first call imports torch: about a second)."""
        if self.planned:
            return
        from doppel.train.checkpoint import identity

        try:
            self.model_id = identity(self.ws, self.ws.settings.merge.model).id
        except DoppelError:
            self.model_id = None
        self.planned = True
        self.refresh()

    def refresh(self, faces: bool = False) -> None:
        """Re-read what edits can change: the merge plan (cache keys, staleness), and with `faces` the faces
        (only landmark fixes change those)."""
        if faces or not self.faces:
            self.faces = subject_faces(self.ws, self.target.id)
            self.problems = problems.find(self.ws, self.faces, self.frame_count, self.flicker)
        if self.model_id is not None:
            self.plans = plan(self.ws, self.model_id, self.faces)
        self.keys = {i: r.cache_key for i, r in self.ws.renders.all().items()}

    def stale(self) -> list[int]:
        self.ensure_plan()
        return [p.index for p in self.plans if p.needs_render]

    def shot(self) -> dict[str, Any]:
        info = self.target.info
        spec = []
        for f in fields(MergeSettings):
            default = getattr(self.ws.settings.merge, f.name)
            spec.append({"key": f.name, "type": type(default).__name__, "choices": f.metadata["choices"],
                         "bounds": f.metadata["bounds"], "help": f.metadata["help"],
                         "keyframe": f.name in review.KEYFRAME_KEYS})
        return {"name": self.target.name, "frames": self.frame_count, "width": info.width, "height": info.height,
                "fps": float(info.fps), "fps_text": f"{info.fps.numerator}/{info.fps.denominator}",
                "model": self.model_id, "settings": spec, "workspace": self.ws.root.name}

    def timeline(self) -> dict[str, Any]:
        """Per frame: 'none' (not swapped), 'rendered' or 'stale'; the review state; the problems."""
        states = []
        rendered = {i: r.path for i, r in self.ws.renders.all().items()}
        for i in range(self.frame_count):
            p = self.plans[i] if self.plans else None
            if p is None:  # the plan is not loaded yet: what the render table says
                states.append("rendered" if rendered.get(i) else "none" if i not in self.faces or i in rendered
                              else "stale")
            elif p.passthrough:
                states.append("none")
            else:
                states.append("stale" if p.needs_render else "rendered")
        return {"states": states, "review": review.review_states(self.ws, self.frame_count),
                "problems": {str(i): v for i, v in sorted(self.problems.items())},
                "notes": [n.to_json() for n in review.notes(self.ws)],
                "keyframes": review.summary(self.ws, self.frame_count)["keyframes"],
                "history": review.history(self.ws), "planned": self.planned, "labels": masks.kinds(self)}

    def settings_at(self, frame: int) -> dict[str, dict[str, Any]]:
        """Each merge setting in force at `frame` with where it comes from."""
        base = self.ws.settings.merge
        out = {k: {"value": v, "origin": "doppel.toml"} for k, v in asdict(base).items()}
        for o in self.ws.overrides.all():
            if o.first <= frame <= o.last:
                out[o.key] = {"value": o.value, "origin": f"override #{o.id} ({o.first}-{o.last})"}
        for key, keys in review.keyframes(self.ws).items():
            if keys:
                at = [k.frame for k in keys]
                out[key] = {"value": round(review.interpolate(keys, frame), 4),
                            "origin": "keyframe" + (" (on this frame)" if frame in at else " (interpolated)"),
                            "keyframes": at}
        return out

    def frame(self, frame: int) -> dict[str, Any]:
        self._check(frame)
        face = self.faces.get(frame)
        edit = review.landmark_edits(self.ws, self.target.id).get(frame)
        out: dict[str, Any] = {
            "frame": frame, "timecode": timecode(frame, self.target.info.fps),
            "settings": self.settings_at(frame), "problems": self.problems.get(frame, []),
            "review": review.review_states(self.ws, self.frame_count)[frame],
            "notes": [n.to_json() for n in review.notes(self.ws) if n.first <= frame <= n.last],
            "face": None, "landmark_edit": edit[0] if edit else None, "mask": masks.state(self, frame),
        }
        if face is not None:
            lm = edits.face_landmarks(face)
            out["face"] = {"box": [float(v) for v in lm.min(0)] + [float(v) for v in lm.max(0)],
                           "anchors": edits.anchors(lm).round(2).tolist(), "anchor_names": edits.ANCHOR_NAMES,
                           "score": round(face.score, 3)}
        return out

    def _check(self, frame: int) -> None:
        if not 0 <= frame < self.frame_count:
            raise DoppelError(f"frame {frame} is outside the plate (0-{self.frame_count - 1})")

    # -- images -----------------------------------------------------------------------------------------
    def _proxy_path(self, kind: str, frame: int) -> Path | None:
        if kind == "plate":
            return self.proxy_root / "plate" / f"{frame:06d}.jpg"
        key = self.keys.get(frame)
        if key is None:
            return None
        return self.proxy_root / kind / f"{frame:06d}-{key}.jpg"

    def cached_proxy(self, kind: str, frame: int) -> Path | None:
        """The cached JPEG for (kind, frame) if it is on disk and current; safe to call from any thread."""
        if kind not in PROXY_KINDS or not 0 <= frame < self.frame_count:
            return None
        path = self._proxy_path(kind, frame)
        return path if path is not None and path.is_file() else None

    def proxy(self, kind: str, frame: int) -> Path:
        """The JPEG for (kind, frame), made and cached in the workspace when missing."""
        if kind not in PROXY_KINDS:
            raise DoppelError(f"unknown image kind {kind!r}")
        self._check(frame)
        cached = self.cached_proxy(kind, frame)
        if cached is not None:
            return cached
        if kind == "plate" or self.keys.get(frame) is None:
            image = self.reader[frame] if kind != "mask" else np.zeros(
                (self.target.info.height, self.target.info.width, 3), np.uint8)
            path = self._proxy_path("plate", frame) if kind == "plate" else None
        else:
            image = self._merged_or_mask(kind, frame)
            path = self._proxy_path(kind, frame)
        if path is None:  # a frame with no render yet: the plate (or an empty mask), not cached under a key
            path = self.proxy_root / kind / f"{frame:06d}-unrendered.jpg"
        elif kind != "plate":  # proxies of this frame's earlier renders are out of date: drop them
            for old in path.parent.glob(f"{frame:06d}-*.jpg"):
                old.unlink(missing_ok=True)
        self._write_jpeg(path, image)
        return path

    def _merged_or_mask(self, kind: str, frame: int) -> np.ndarray:
        render = self.ws.renders.all().get(frame)
        info = self.target.info
        if kind == "merged":
            if render is None or render.path is None:
                return self.reader[frame]
            img = cv2.imread(str(_inside(self.ws.root, self.ws.root / render.path)), cv2.IMREAD_COLOR)
            if img is None:
                raise DoppelError("render is missing; run `doppel merge`", self.ws.root / render.path)
            return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        mask = np.zeros((info.height, info.width), np.uint8)
        if render is not None and render.layer_path is not None:
            layer = cv2.imread(str(_inside(self.ws.root, self.ws.root / render.layer_path)), cv2.IMREAD_UNCHANGED)
            if layer is not None and layer.ndim == 3 and layer.shape[2] == 4:
                x, y = render.layer_x, render.layer_y
                h, w = layer.shape[:2]
                mask[y:y + h, x:x + w] = layer[:, :, 3][: info.height - y, : info.width - x]
        return np.dstack([mask] * 3)

    def _write_jpeg(self, path: Path, image: np.ndarray) -> None:
        path = _inside(self.ws.root, path)
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise DoppelError("could not encode a proxy", path)
        tmp = path.with_name(f".{path.name}.part")
        tmp.write_bytes(data.tobytes())
        tmp.replace(path)

    def measure_flicker(self, frames: list[int]) -> None:
        """Measure the swap's added flicker on `frames` from the cached proxies (made when missing)."""
        for i in frames:
            face = self.faces.get(i)
            if i == 0 or face is None or self.keys.get(i) is None:
                self.flicker.pop(i, None)
                continue
            lm = edits.face_landmarks(face)
            (x0, y0), (x1, y1) = lm.min(0).astype(int), lm.max(0).astype(int)
            found = [cv2.imread(str(self.proxy(kind, j)), cv2.IMREAD_GRAYSCALE)
                     for kind in ("merged", "plate") for j in (i - 1, i)]
            read: list[np.ndarray] = [r for r in found if r is not None]
            if len(read) < 4:
                continue
            self.flicker[i] = problems.added_flicker((read[0], read[1]), (read[2], read[3]),
                                                     (max(0, x0), max(0, y0), x1, y1))

    def update_problems(self) -> None:
        self.problems = problems.find(self.ws, self.faces, self.frame_count, self.flicker)

    # -- rendering --------------------------------------------------------------------------------------
    @property
    def model(self) -> SwapModel:
        from doppel.merge.model import SwapModel

        if self._model is None:
            self._model = SwapModel(self.ws, self.ws.settings.merge.model, self.device)
            self.model_id = self._model.id
        return self._model

    def render(self, frames: list[int]) -> int:
        """Re-render the out-of-date frames among `frames` (the same renders `doppel merge` would make, from the
        plan of the last `refresh`). Returns how many were swapped."""
        self.ensure_plan()
        if self.model_id is None:
            raise DoppelError("no trained model in this workspace: run `doppel train` first", self.ws.root)
        model = self.model
        if model.id != self.model_id:  # the model changed since the plan was made
            self.model_id = model.id
            self.refresh()
        todo = [self.plans[i] for i in sorted(set(frames)) if self.plans[i].needs_render]
        done = render_plans(self.ws, model, self.plans, todo, self.reader)
        for p in todo:
            self.plans[p.index] = replace(p, needs_render=False)
            self.keys[p.index] = p.key
        return done

    # -- edits (all undoable) ---------------------------------------------------------------------------
    def set_override(self, first: int, last: int, key: str, value: Any) -> int:
        row = review.set_override(self.ws, first, last, key, value, self.frame_count)
        self.refresh()
        return row

    def set_keyframe(self, key: str, frame: int, value: float) -> int:
        row = review.set_keyframe(self.ws, key, frame, value, self.frame_count)
        self.refresh()
        return row

    def remove_keyframe(self, key: str, frame: int) -> bool:
        removed = review.remove_keyframe(self.ws, key, frame)
        self.refresh()
        return removed

    def set_review(self, first: int, last: int, status: str) -> int:
        return review.set_review(self.ws, first, last, status, self.frame_count)

    def add_note(self, first: int, last: int, text: str) -> int:
        return review.add_note(self.ws, first, last, text, self.frame_count)

    def resolve_note(self, note_id: int, resolved: bool) -> None:
        review.resolve_note(self.ws, note_id, resolved)

    def move_anchors(self, frame: int, points: list[list[float]]) -> int:
        self._check(frame)
        face = self.faces.get(frame)
        if face is None:
            raise DoppelError(f"frame {frame} has no face to fix")
        new = np.asarray(points, np.float64)
        if new.shape != (5, 2):
            raise DoppelError("move_anchors needs five (x, y) points")
        lm = edits.move_anchors(edits.face_landmarks(face), new)
        edit = review.set_landmark_edit(self.ws, self.target.id, frame, "anchors", lm)
        self.refresh(faces=True)
        return edit

    def interpolate_landmarks(self, frame: int) -> int:
        self._check(frame)
        others = {i: f for i, f in self.faces.items() if i != frame}
        lm = edits.interpolate_neighbours(others, frame)
        if lm is None:
            raise DoppelError("no neighbouring frame has a face to interpolate from")
        edit = review.set_landmark_edit(self.ws, self.target.id, frame, "interpolate", lm)
        self.refresh(faces=True)
        return edit

    def undo(self) -> str | None:
        label = review.undo(self.ws)
        self.refresh(faces=bool(label and label.startswith("landmarks")))
        return label

    def redo(self) -> str | None:
        label = review.redo(self.ws)
        self.refresh(faces=bool(label and label.startswith("landmarks")))
        return label

    def summary(self) -> dict[str, Any]:
        return review.summary(self.ws, self.frame_count, sorted(self.problems))


def check_workspace(root: Path) -> None:
    """Raise DoppelError (a clear one-line message) unless `root` is a workspace with a target."""
    with doppel.open(root) as project:
        if project.workspace.target() is None:
            raise DoppelError("the workspace has no target; add one with `doppel add --target`", project.root)


def review_summary(root: Path) -> dict[str, Any]:
    """`doppel review --json`: the same review state the studio shows."""
    backend = Backend(root)
    try:
        return backend.summary()
    finally:
        backend.close()
