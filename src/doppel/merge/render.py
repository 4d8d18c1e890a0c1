"""`doppel merge`: render every target frame, re-rendering only frames whose inputs changed (see plan.py).

Frames without the chosen person's face, or with `swap` turned off, pass through untouched and need no
render file.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from doppel import color
from doppel.errors import DoppelError
from doppel.extract import blendshapes
from doppel.extract.align import invert, transform_points
from doppel.extract.aligned import AlignedFace
from doppel.facetype import FaceType
from doppel.fsutil import remove_temporaries
from doppel.media.images import write_png
from doppel.media.probe import Progress
from doppel.media.video import MediaReader
from doppel.merge import blend
from doppel.merge.edits import face_landmarks
from doppel.merge.masks import OCCLUSION_MODES, combine, hair_keep, occlusion_cut, shape_mask
from doppel.merge.photos import GAZE_GAP, GAZE_GAP_CODED, NO_PHOTOS, SourcePhotos, usable_photos
from doppel.merge.plan import FramePlan, plan
from doppel.occlusion import labels as lab
from doppel.occlusion.apply import apply_masks, load_mask, warp_mask
from doppel.reports import Report
from doppel.train import expression
from doppel.workspace import Workspace
from doppel.workspace.faces import Face
from doppel.workspace.lock import stage_lock
from doppel.workspace.media_check import check_media
from doppel.workspace.renders import Render
from doppel.workspace.settings import MergeSettings

if TYPE_CHECKING:  # the model (and torch) load only when a frame is rendered, so importing merge stays light
    from doppel.merge.model import SwapModel

BATCH = 16


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


def _plate_stats(reader: MediaReader, plans: list[FramePlan], todo: list[FramePlan], resolution: int,
                 face_type: FaceType) -> dict[int, tuple[np.ndarray, np.ndarray]]:
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
        face = AlignedFace.of(p.face)
        crop = _crop(reader[p.index], face.alignment(resolution, face_type), resolution)
        raw[p.index] = color.lab_stats(crop.astype(np.float32) / 255, _landmark_mask(face, resolution))
    smoothed = {}
    for i in (p.index for p in wanted):
        half = plans[i].settings.temporal_color // 2
        near = [raw[j] for j in range(i - half, i + half + 1) if j in raw]
        smoothed[i] = (np.mean([n[0] for n in near], 0), np.mean([n[1] for n in near], 0))
    return smoothed


def _crop(image: np.ndarray, m: np.ndarray, resolution: int) -> np.ndarray:
    """The model's input crop of an HxWx3 uint8 frame (area-averaged: the face is usually shrunk)."""
    return cv2.warpAffine(image, m, (resolution, resolution), flags=cv2.INTER_AREA)


def _landmark_mask(face: AlignedFace, resolution: int, forehead: float = 1.0) -> np.ndarray:
    """The landmark polygon in the aligned crop, RxR float32 in [0, 1], placed by the face's own (raw)
    alignment: it moves with the crop, so it inherits the smoothed alignment's steadiness."""
    return face.crop_mask(resolution, forehead).astype(np.float32) / 255


def face_region(m: np.ndarray, resolution: int, width: int, height: int) -> tuple[int, int, int, int]:
    """The frame rectangle (x0, y0, x1, y1) that the aligned crop covers, clipped to the frame."""
    corners = np.array([[0, 0], [resolution, 0], [0, resolution], [resolution, resolution]], np.float64)
    back = invert(m)
    pts = corners @ back[:, :2].T + back[:, 2]
    x0, y0 = np.floor(pts.min(0)).astype(int) - 2
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 2
    return max(0, x0), max(0, y0), min(width, x1), min(height, y1)


def composite(plate: np.ndarray, face_rgb: np.ndarray, learned: np.ndarray, face: Face, s: MergeSettings,
              m: np.ndarray, resolution: int, stats: tuple[np.ndarray, np.ndarray] | None, seed: int,
              occlusion: np.ndarray | None = None, occlusion_source: tuple[np.ndarray, np.ndarray] | None = None
              ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Put one generated face into its plate frame.

    plate: HxWx3 uint8; face_rgb: RxRx3 float32 in [0, 1]; learned: RxR float32 in [0, 1]; m: 2x3 frame->crop;
    occlusion: RxR float32 in [0, 1] in the same crop, for the *occlusion mask modes; occlusion_source: the
    stored occlusion mask at its own resolution (SxS float32 in [0, 1]) and its 2x3 frame->mask matrix: then
    the occluder is also cut out at frame resolution after feathering (merge.masks.occlusion_cut).
    Returns (the composited frame HxWx3 uint8, the face layer as RGBA uint8 over the face's region of the
    frame, that region's top-left corner (x, y)). Only the face's region is touched, so the cost does not
    grow with the frame size."""
    h, w = plate.shape[:2]
    x0, y0, x1, y1 = face_region(m, resolution, w, h)
    region = plate[y0:y1, x0:x1].astype(np.float32) / 255
    polygon = _landmark_mask(AlignedFace.of(face), resolution, s.forehead)
    mask = combine(polygon, learned, s.mask, occlusion)
    if s.hair_cut:
        brows = face_landmarks(face)[17:27] @ m[:, :2].T + m[:, 2]  # with any manual fix
        mask = mask * hair_keep(face_rgb, polygon, float(brows[:, 1].min()))
    mask = shape_mask(mask, s.erode, s.feather)
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
    if occlusion_source is not None:
        to_region = invert(occlusion_source[1])
        to_region[:, 2] -= (x0, y0)
        alpha = alpha * occlusion_cut(warp_mask(occlusion_source[0], to_region, size))
    # One model pixel spans this many frame pixels: plate detail finer than that is what the model cannot make.
    model_px = 1.0 / float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    face_frame = blend.plate_detail(face_frame, region, s.plate_detail, 0.5 * model_px)
    face_frame = blend.match_grain(face_frame, region, alpha, s.grain, seed)
    if s.blend == "seamless":
        mixed = blend.seamless(region, face_frame, alpha)
    else:
        mixed = blend.alpha_blend(region, face_frame, alpha)
    frame8 = plate.copy()
    frame8[y0:y1, x0:x1] = (np.clip(mixed, 0, 1) * 255 + 0.5).astype(np.uint8)
    layer = np.dstack([(face_frame * 255 + 0.5).astype(np.uint8), (alpha * 255 + 0.5).astype(np.uint8)])
    return frame8, layer, (int(x0), int(y0))


def merge(ws: Workspace, *, device: str | None = None, force: bool = False,
          progress: Progress | None = None, model: SwapModel | None = None,
          frames: Collection[int] | None = None) -> MergeReport:
    """Render every out-of-date target frame (or only those of `frames` that are). Returns what was done.

    One merge per workspace at a time (a second gets a "busy" error); the plate is checked to be unchanged
    and the temporary files of a killed run are removed first."""
    with stage_lock(ws.root, "merge"):
        remove_temporaries(ws.subdir("renders"))
        return _merge(ws, device=device, force=force, progress=progress, model=model, frames=frames)


def _merge(ws: Workspace, *, device: str | None, force: bool, progress: Progress | None,
           model: SwapModel | None, frames: Collection[int] | None) -> MergeReport:
    from doppel.merge.model import SwapModel

    start = time.perf_counter()
    target = ws.target()
    if target is None:
        raise DoppelError("the workspace has no target; add one with `doppel add --target`", ws.root)
    check_media(ws, [target])
    model = model or SwapModel(ws, ws.settings.merge.model, device)
    plans = plan(ws, model.id)
    if model.config.face_type != ws.settings.extract.face_type:
        raise DoppelError(f"the model makes {model.config.face_type} faces but the workspace extracts "
                          f"{ws.settings.extract.face_type}")
    if any(p.settings.mask in OCCLUSION_MODES for p in plans if not p.passthrough):
        apply_masks(ws, [p.face for p in plans if p.face is not None and p.settings.mask in OCCLUSION_MODES],
                    device=device)
        plans = plan(ws, model.id)  # the keys include the masks just stored
    wanted = set(frames) if frames is not None else None
    todo = [p for p in plans if (p.needs_render or force) and (wanted is None or p.index in wanted)]
    warnings = []
    if not any(not p.passthrough for p in plans):
        warnings.append("no frame has the chosen person's face: the plate passes through unchanged")
    if any(p.settings.source_detail > 0 for p in todo if not p.passthrough) and not usable_photos(ws):
        warnings.append(NO_PHOTOS)
    with MediaReader(target.info) as reader:
        rendered = render_plans(ws, model, plans, todo, reader, progress)
    return MergeReport(len(plans), rendered, len(plans) - len(todo), sum(p.passthrough for p in plans),
                       time.perf_counter() - start, model.id, tuple(warnings))


def hidden_region(p: FramePlan, res: int) -> np.ndarray:
    """What to blur out of the model's input crop for this frame (res x res uint8): the eyes and mouth where the
    frame's settings take the expression from the landmarks alone, else nothing (zeros)."""
    if p.settings.expression != "landmarks" or p.face is None:
        return np.zeros((res, res), np.uint8)
    return expression.eyes_mouth_region(AlignedFace.of(p.face).crop_landmarks(res), res)


def render_plans(ws: Workspace, model: SwapModel, plans: list[FramePlan], todo: list[FramePlan],
                 reader: MediaReader, progress: Progress | None = None) -> int:
    """Render the frames of `todo` (entries of `plans`, the whole shot's plan, which colour statistics read
    around each frame) from the open plate `reader`, and record them in the render table. Returns the number of
    frames swapped. The studio calls this with a plan and reader it keeps open between edits."""
    if model.config.face_type != ws.settings.extract.face_type:
        raise DoppelError(f"the model makes {model.config.face_type} faces but the workspace extracts "
                          f"{ws.settings.extract.face_type}")
    res = model.config.resolution
    occlusion = ws.occlusion.masks()
    labels = lab.current_labels(ws.occlusion, lab.TRAINABLE)
    face_type: FaceType = model.config.face_type
    stats = _plate_stats(reader, plans, todo, res, face_type)
    reference = None
    if model.expression_dims:  # the target's own median eye opening and mouth width, over all its faces
        reference = expression.person_reference([f.lm68 for f in ws.faces.of_chosen("target", usable_only=True)])
    gap = GAZE_GAP_CODED if model.expression_dims > expression.DIMS else GAZE_GAP
    photos = SourcePhotos.load(ws) if any(p.settings.source_detail > 0 for p in todo if not p.passthrough) else None
    done = rendered = 0
    for b in range(0, len(todo), BATCH):
        batch = todo[b:b + BATCH]
        swaps = [p for p in batch if not p.passthrough]
        images = {p.index: reader[p.index] for p in swaps}
        matrices = {p.index: AlignedFace.of(p.face).alignment(res, face_type)
                    for p in swaps if p.face}
        rows: list[Render] = []
        if swaps:
            crops = np.stack([_crop(images[p.index], matrices[p.index], res) for p in swaps])
            codes = hidden = None
            lending = {p.index: p.face for p in swaps
                       if photos is not None and p.settings.source_detail > 0 and p.face is not None}
            coded = [p.face for p in swaps if p.face is not None]
            gazing = model.expression_dims > expression.DIMS
            read = coded if gazing else list(lending.values())   # the coefficients both uses need, read once
            coefficients = dict(zip((f.id for f in read), blendshapes.of_faces(ws, read), strict=True))
            if reference is not None:
                gaze = np.stack([coefficients[f.id] for f in coded]) if gazing and coded else None
                codes = expression.codes([f.lm68 for f in coded], reference, gaze)
                hidden = np.stack([hidden_region(p, res) for p in swaps])
            faces, masks = model.swap(crops, codes, hidden)
            looks = {index: coefficients[face.id] for index, face in lending.items()}
            for p, face_rgb, learned in zip(swaps, faces, masks, strict=True):
                assert p.face is not None
                if photos is not None and p.index in looks:
                    points = transform_points(matrices[p.index], p.face.lm68)  # the landmarks the codes use
                    face_rgb = photos.lend(face_rgb, points, p.settings.source_detail, looks[p.index], gap)
                stored, label = occlusion.get(p.face.id), labels.get(p.face.id)
                occ = source = None
                full: np.ndarray | None = None
                if label is not None:  # the artist's label is this face's occlusion mask, whatever the mode
                    size = p.face.crop_size
                    full = lab.label_mask(label.label, p.face, size, lab.crop_matrix(p.face, size)).astype(
                        np.float32) / 255
                elif p.settings.mask in OCCLUSION_MODES and stored is not None:
                    full = load_mask(ws, stored.path)
                if full is not None:  # in the model's crop, and at full size for the cut at frame resolution
                    source = (full, lab.crop_matrix(p.face, full.shape[0]))
                    occ = warp_mask(full, matrices[p.index] @ np.vstack([invert(source[1]), [0, 0, 1]]), (res, res))
                frame, layer, corner = composite(images[p.index], face_rgb, learned, p.face, p.settings,
                                                 matrices[p.index], res, stats.get(p.index), seed=p.index,
                                                 occlusion=occ, occlusion_source=source)
                rel, layer_rel = ws.renders.files(p.index)
                write_png(ws.inside(rel, "render path"), frame, durable=False)
                write_png(ws.inside(layer_rel, "layer path"), layer, durable=False)
                rows.append(Render(p.index, p.key, rel, layer_rel, corner[0], corner[1], p.face.id,
                                   matrices[p.index]))
        rows += [Render(p.index, p.key) for p in batch if p.passthrough]
        with ws.transaction():
            ws.renders.put(rows)
        rendered += len(swaps)
        done += len(batch)
        if progress:
            progress(done, len(todo))
    return rendered
