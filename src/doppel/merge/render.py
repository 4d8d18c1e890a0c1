"""`doppel merge`: render every target frame, re-rendering only frames whose inputs changed.

A frame's cache key covers everything its pixels depend on: the plate frame, the model's weights, the face's
landmarks and mask, and the merge settings in force at that frame. Frames without the chosen person's face,
or with `swap` turned off, pass through untouched and need no render file.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from doppel.errors import DoppelError
from doppel.extract.align import align_matrix, invert
from doppel.extract.curate import chosen_person
from doppel.extract.masks import rasterize
from doppel.media.probe import Progress
from doppel.media.video import MediaReader
from doppel.merge import blend, color
from doppel.merge.edits import edited_face
from doppel.merge.masks import combine, shape_mask
from doppel.merge.overrides import list_overrides, settings_for
from doppel.reports import Report
from doppel.workspace import Workspace, review
from doppel.workspace.db import now
from doppel.workspace.faces import Face, query_faces
from doppel.workspace.settings import MergeSettings

if TYPE_CHECKING:  # the model (and torch) load only when a frame is rendered, so `plan` stays light
    from doppel.merge.model import SwapModel

BATCH = 16


@dataclass
class FramePlan:
    index: int
    key: str
    settings: MergeSettings
    face: Face | None
    needs_render: bool

    @property
    def passthrough(self) -> bool:
        return self.face is None or not self.settings.swap


@dataclass(frozen=True)
class MergeReport(Report):
    """`merge`'s result: target frames in all, rendered now, already up to date, passed through untouched."""

    json_properties = ("fps",)
    frames: int
    rendered: int
    cached: int
    passthrough: int
    seconds: float
    model: str
    warnings: tuple[str, ...] = ()

    @property
    def fps(self) -> float:
        """Frames rendered per second."""
        return self.rendered / self.seconds if self.seconds else 0.0


def subject_faces(ws: Workspace, media_id: int) -> dict[int, Face]:
    """The chosen target person's face in each frame that has one."""
    chosen = chosen_person(ws, "target")
    if chosen is None:
        return {}
    faces = query_faces(ws.db, "media_id = ? AND person_id = ?", (media_id, chosen[0]))
    by_frame = {f.frame_idx: f for f in faces}
    # Manual landmark fixes from the studio replace the extracted landmarks (keyed by frame: re-extraction keeps them).
    for i, (_, lm68) in review.landmark_edits(ws, media_id).items():
        if i in by_frame:
            by_frame[i] = edited_face(by_frame[i], lm68)
    return by_frame


def _key(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def plan(ws: Workspace, model_id: str, faces: dict[int, Face] | None = None) -> list[FramePlan]:
    """What each target frame needs: its cache key and whether the stored render is out of date. `faces`:
    `subject_faces` of the target when the caller already has them."""
    target = ws.target()
    if target is None:
        raise DoppelError("the workspace has no target; add one with `doppel add --target`", ws.root)
    faces = subject_faces(ws, target.id) if faces is None else faces
    as_dict: dict[MergeSettings, dict[str, Any]] = {}  # most frames share one settings object
    overrides = list_overrides(ws)
    keys = review.keyframes(ws)
    stored = {r[0]: (r[1], r[2]) for r in ws.db.execute("SELECT frame_idx, cache_key, path FROM renders")}
    plans = []
    for i in range(target.info.frame_count):
        s = review.apply_keyframes(settings_for(ws.settings.merge, overrides, i), keys, i)
        face = faces.get(i)
        if face is None or not s.swap:
            key = _key("passthrough", target.info.sha256, i)
        else:
            lm = face.lm68_smooth if face.lm68_smooth is not None else face.lm68
            if s not in as_dict:
                as_dict[s] = asdict(s)
            key = _key(target.info.sha256, i, model_id, as_dict[s], face.id, lm.tobytes(), face.polygon.tobytes(),
                       face.matrix.tobytes())
        old = stored.get(i)
        needs = old is None or old[0] != key or (old[1] is not None and not (ws.root / old[1]).is_file())
        plans.append(FramePlan(i, key, s, face, needs))
    return plans


def _plate_stats(reader: MediaReader, plans: list[FramePlan], todo: list[FramePlan], resolution: int,
                 face_type: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Lab mean/std of the plate's face region for each frame of `todo` using rct, averaged over the
    `temporal_color` frames around it. Only those frames and their neighbours are decoded, so re-rendering a
    few frames does not read the whole plate."""
    wanted = [p for p in todo if not p.passthrough and p.settings.color == "rct"]
    near_wanted = {j for p in wanted for j in range(p.index - p.settings.temporal_color // 2,
                                                    p.index + p.settings.temporal_color // 2 + 1)}
    raw: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for p in plans:
        if p.index not in near_wanted or p.passthrough or p.settings.color != "rct":
            continue
        assert p.face is not None
        m = _matrix(p.face, resolution, face_type)
        crop = cv2.warpAffine(reader[p.index], m, (resolution, resolution), flags=cv2.INTER_AREA)
        mask = _landmark_mask(p.face, resolution)
        raw[p.index] = color.lab_stats(crop.astype(np.float32) / 255, mask)
    smoothed = {}
    for i in (p.index for p in wanted):
        half = plans[i].settings.temporal_color // 2
        near = [raw[j] for j in range(i - half, i + half + 1) if j in raw]
        smoothed[i] = (np.mean([n[0] for n in near], 0), np.mean([n[1] for n in near], 0))
    return smoothed


def _matrix(face: Face, resolution: int, face_type: str) -> np.ndarray:
    lm = face.lm68_smooth if face.lm68_smooth is not None else face.lm68
    return align_matrix(lm, face_type, resolution)  # type: ignore[arg-type]


def _landmark_mask(face: Face, resolution: int) -> np.ndarray:
    """The landmark polygon in the aligned crop, placed by the face's own (raw) alignment: it moves with the
    crop, so it inherits the smoothed alignment's steadiness."""
    to_crop = face.matrix * (resolution / face.crop_size)
    return rasterize(face.polygon, (resolution, resolution), to_crop).astype(np.float32) / 255


def face_region(m: np.ndarray, resolution: int, width: int, height: int) -> tuple[int, int, int, int]:
    """The frame rectangle (x0, y0, x1, y1) that the aligned crop covers, clipped to the frame."""
    corners = np.array([[0, 0], [resolution, 0], [0, resolution], [resolution, resolution]], np.float64)
    back = invert(m)
    pts = corners @ back[:, :2].T + back[:, 2]
    x0, y0 = np.floor(pts.min(0)).astype(int) - 2
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 2
    return max(0, x0), max(0, y0), min(width, x1), min(height, y1)


def composite(plate: np.ndarray, face_rgb: np.ndarray, learned: np.ndarray, face: Face, s: MergeSettings,
              m: np.ndarray, resolution: int, stats: tuple[np.ndarray, np.ndarray] | None, seed: int
              ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Put one generated face into its plate frame.

    plate: HxWx3 uint8; face_rgb: RxRx3 float32 in [0, 1]; learned: RxR float32 in [0, 1]; m: 2x3 frame->crop.
    Returns (the composited frame HxWx3 uint8, the face layer as RGBA uint8 over the face's region of the
    frame, that region's top-left corner (x, y)). Only the face's region is touched, so the cost does not
    grow with the frame size."""
    h, w = plate.shape[:2]
    x0, y0, x1, y1 = face_region(m, resolution, w, h)
    region = plate[y0:y1, x0:x1].astype(np.float32) / 255
    mask = shape_mask(combine(_landmark_mask(face, resolution), learned, s.mask), s.erode, s.feather)
    crop_plate = cv2.warpAffine(plate, m, (resolution, resolution), flags=cv2.INTER_AREA).astype(np.float32) / 255
    out_face = color.transfer_image(face_rgb, crop_plate, mask, s.color, stats if s.color == "rct" else None)
    if s.hist_match:
        out_face = blend.histogram_match(out_face, crop_plate, mask)
    out_face = blend.sharpen(out_face, s.sharpen, resolution)
    # Back to the frame: the inverse of the alignment, bicubic (sub-pixel exact), the mask bilinear; both
    # straight into the face's region (the matrix shifted by the region's corner).
    back = invert(m)
    back[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    face_frame = np.clip(cv2.warpAffine(out_face, back, size, flags=cv2.INTER_CUBIC,
                                        borderMode=cv2.BORDER_REFLECT), 0, 1)
    alpha = np.clip(cv2.warpAffine(mask, back, size, flags=cv2.INTER_LINEAR, borderValue=0), 0, 1)
    face_frame = blend.match_grain(face_frame, region, alpha, s.grain, seed)
    if s.blend == "seamless":
        mixed = blend.seamless(region, face_frame, alpha)
    else:
        mixed = blend.alpha_blend(region, face_frame, alpha)
    frame8 = plate.copy()
    frame8[y0:y1, x0:x1] = (np.clip(mixed, 0, 1) * 255 + 0.5).astype(np.uint8)
    layer = np.dstack([(face_frame * 255 + 0.5).astype(np.uint8), (alpha * 255 + 0.5).astype(np.uint8)])
    return frame8, layer, (int(x0), int(y0))


def _write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    code = cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, code), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise DoppelError("could not encode a render", path)
    tmp.write_bytes(data.tobytes())
    tmp.replace(path)


def merge(ws: Workspace, *, device: str | None = None, force: bool = False,
          progress: Progress | None = None, model: SwapModel | None = None,
          frames: Collection[int] | None = None) -> MergeReport:
    """Render every out-of-date target frame (or only those of `frames` that are). Returns what was done."""
    from doppel.merge.model import SwapModel

    start = time.perf_counter()
    model = model or SwapModel(ws, ws.settings.merge.model, device)
    plans = plan(ws, model.id)
    target = ws.target()
    assert target is not None  # plan() checked
    wanted = set(frames) if frames is not None else None
    todo = [p for p in plans if (p.needs_render or force) and (wanted is None or p.index in wanted)]
    warnings = []
    if not any(not p.passthrough for p in plans):
        warnings.append("no frame has the chosen person's face: the plate passes through unchanged")
    with MediaReader(target.info) as reader:
        rendered = render_plans(ws, model, plans, todo, reader, progress)
    return MergeReport(len(plans), rendered, len(plans) - len(todo), sum(p.passthrough for p in plans),
                       time.perf_counter() - start, model.id, tuple(warnings))


def render_plans(ws: Workspace, model: SwapModel, plans: list[FramePlan], todo: list[FramePlan],
                 reader: MediaReader, progress: Progress | None = None) -> int:
    """Render the frames of `todo` (entries of `plans`, the whole shot's plan, which colour statistics read
    around each frame) from the open plate `reader`, and record them in the render table. Returns the number of
    frames swapped. The studio calls this with a plan and reader it keeps open between edits."""
    if model.config.face_type != ws.settings.extract.face_type:
        raise DoppelError(f"the model makes {model.config.face_type} faces but the workspace extracts "
                          f"{ws.settings.extract.face_type}")
    res = model.config.resolution
    stats = _plate_stats(reader, plans, todo, res, model.config.face_type)
    done = rendered = 0
    for b in range(0, len(todo), BATCH):
        batch = todo[b:b + BATCH]
        swaps = [p for p in batch if not p.passthrough]
        images = {p.index: reader[p.index] for p in swaps}
        matrices = {p.index: _matrix(p.face, res, model.config.face_type) for p in swaps if p.face}
        rows: list[tuple[Any, ...]] = []
        if swaps:
            crops = np.stack([cv2.warpAffine(images[p.index], matrices[p.index], (res, res),
                                             flags=cv2.INTER_AREA) for p in swaps])
            faces, masks = model.swap(crops)
            for p, face_rgb, learned in zip(swaps, faces, masks, strict=True):
                assert p.face is not None
                frame, layer, corner = composite(images[p.index], face_rgb, learned, p.face, p.settings,
                                                 matrices[p.index], res, stats.get(p.index), seed=p.index)
                rel = f"renders/{p.index:06d}.png"
                layer_rel = f"renders/layers/{p.index:06d}_{corner[0]}_{corner[1]}.png"
                _write_png(ws.root / rel, frame)
                _write_png(ws.root / layer_rel, layer)
                rows.append((p.index, p.key, rel, layer_rel, p.face.id,
                             json.dumps(matrices[p.index].tolist())))
        rows += [(p.index, p.key, None, None, None, None) for p in batch if p.passthrough]
        with ws.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO renders VALUES (?,?,?,?,?,?,?)",
                           [(*r, now()) for r in rows])
        rendered += len(swaps)
        done += len(batch)
        if progress:
            progress(done, len(todo))
    return rendered


def stale_frames(ws: Workspace, model_id: str) -> list[int]:
    return [p.index for p in plan(ws, model_id) if p.needs_render]

