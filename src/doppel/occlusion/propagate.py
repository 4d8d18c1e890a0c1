"""Carry a drawn label to the neighbouring frames of its face's track, as suggested labels.

The motion has two parts. The face's own rigid motion comes from its landmarks: each face's aligned crop is
the frame warped by its landmark similarity transform, so a point fixed to the face keeps its crop
coordinates from frame to frame. What the similarity does not explain (the jaw opening, a hand sliding over
the cheek, hair swinging) is measured by dense optical flow (DIS) between consecutive aligned crops, where
the residual motion is small, which is what optical flow handles well. Flow is trusted only where the forward
and backward flows agree; elsewhere a vertex moves with the face alone. Landmarks alone would pin labels to
the face (wrong for a moving hand); flow alone, on the raw frames, drifts with large head motion. Chaining
frame to frame keeps each flow step small. Where the face mesh is known, its non-rigid motion (the jaw, the
lips) is the prior inside the face, and the flow wins only where it is reliable and clearly different: there
something is moving over the face.

A polygon that is not attached to the face at all (a hand, a microphone) is also followed on the full frames
as a region moving on its own (doppel.occlusion.track: its colours against its surroundings and its outline).
Per polygon, the two motions are compared: where they agree, the face's motion is kept (it carries the jaw's
and lips' non-rigid motion); where they part, the one whose polygons better outline the region drawn on the
first frame (judged by the drawn frame's colour model and the outline's edges, summed over the chain) wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from doppel.errors import DoppelError
from doppel.extract.align import transform_points
from doppel.occlusion import labels as lab
from doppel.occlusion.track import region_score, track_polygon

if TYPE_CHECKING:
    from doppel.workspace import Workspace
    from doppel.workspace.faces import Face

FB_TOLERANCE = 1.0   # crop pixels of forward-backward disagreement beyond which the flow is not trusted
FUSE_PX = 2.5        # crop pixels per frame by which the flow must depart from the mesh's motion to win
AGREE_IOU = 0.85     # the face's and the region's own motion agree when their last polygons overlap this much
KEEP_SCORE = 0.75    # the face's motion explains a region that keeps this share of its drawn score (choose_motion)


@dataclass
class PropagateReport:
    origin_face: int
    suggested: list[int]
    stopped_at_labels: list[int]


def _dis() -> cv2.DISOpticalFlow:
    return cv2.DISOpticalFlow.create(cv2.DISOpticalFlow_PRESET_MEDIUM)


def crop_flow(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense flow a -> b between two aligned crops ((S, S, 3) uint8 RGB) and its reliability: (S, S, 2) float32
    displacements in pixels and (S, S) float32 weights in [0, 1] from the forward-backward check."""
    ga, gb = (cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) for c in (a, b))
    dis = _dis()
    fwd = np.asarray(dis.calc(ga, gb, None), np.float32)  # type: ignore[call-overload]
    bwd = np.asarray(dis.calc(gb, ga, None), np.float32)  # type: ignore[call-overload]
    h, w = ga.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    back = cv2.remap(bwd, gx + fwd[..., 0], gy + fwd[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    err = np.linalg.norm(fwd + back, axis=2)
    reliable = np.exp(-0.5 * (err / FB_TOLERANCE) ** 2).astype(np.float32)
    return fwd, reliable


def inset(polygon: np.ndarray, distance: float) -> np.ndarray:
    """Each vertex of a closed (N, 2) polygon moved `distance` pixels inwards, along its normal."""
    p = np.asarray(polygon, np.float64)
    tangent = np.roll(p, -1, 0) - np.roll(p, 1, 0)
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], 1)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    x, y = p[:, 0], p[:, 1]
    area = 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
    # For a polygon with positive signed area this normal points outwards.
    return p + normal * distance * (-1.0 if area > 0 else 1.0)


def move_points(points: np.ndarray, flow: np.ndarray, reliable: np.ndarray, radius: float) -> np.ndarray:
    """Move the vertices of a polygon ((N, 2) crop pixels) by the reliability-weighted mean flow in a Gaussian
    window just inside it: an outline moves with what it encloses (a hand's outline with the hand, not with
    the cheek beside it). Where nothing there is reliable a vertex stays (it moves with the face only)."""
    sigma = max(radius / 2, 0.5)
    num = cv2.GaussianBlur(flow * reliable[..., None], (0, 0), sigma)
    den = cv2.GaussianBlur(reliable, (0, 0), sigma)
    h, w = reliable.shape
    out = np.asarray(points, np.float64).copy()
    for k, (x, y) in enumerate(inset(out, radius) if len(out) >= 3 else out):
        xi, yi = int(np.clip(round(x), 0, w - 1)), int(np.clip(round(y), 0, h - 1))
        if den[yi, xi] > 0.05:
            out[k] += num[yi, xi] / den[yi, xi]
    return out


def mesh_motion(points: np.ndarray, before: np.ndarray, after: np.ndarray, sigma: float) -> np.ndarray:
    """The face's own non-rigid motion at (N, 2) crop points: the mean motion of the nearby mesh points
    (before/after: (M, 2) crop pixels), Gaussian-weighted; it fades to zero (rigid motion only) beyond about
    two `sigma` from the mesh, outside the face."""
    d2 = ((points[:, None, :] - before[None, :, :]) ** 2).sum(2)
    w = np.exp(-0.5 * d2 / sigma ** 2)
    moved: np.ndarray = (w @ (after - before)) / (w.sum(1, keepdims=True) + np.exp(-2.0))
    return moved


def carry(label: lab.Label, matrices: list[np.ndarray], crops: list[np.ndarray],
          meshes: list[np.ndarray] | None = None, frames: list[np.ndarray] | None = None) -> list[lab.Label]:
    """The label (frame pixels of face 0) carried along a chain of faces: matrices[k] (2x3) maps frame k to its
    aligned crop crops[k] ((S, S, 3) uint8); meshes[k] (optional, (M, 2) frame pixels) are the face's mesh
    points, whose motion is the prior where the flow does not clearly say otherwise; frames[k] (optional, the
    full frames HxWx3 uint8 RGB): each polygon is also tracked as a region moving on its own and keeps the
    motion that explains it better (`choose_motion`). Returns the labels for faces 1..K-1, in frame pixels."""
    attached = _carry_with_face(label, matrices, crops, meshes)
    if frames is None or not label.shapes:
        return attached
    if len(frames) != len(crops):
        raise DoppelError("carry needs one full frame per face of the chain")
    chosen: list[list[np.ndarray]] = []
    for i, shape in enumerate(label.shapes):
        with_face = [c.shapes[i].points for c in attached]
        own, _ = track_polygon(frames, shape.points)
        chosen.append(own if choose_motion(frames, shape.points, with_face, own) == "own" else with_face)
    return [lab.Label(label.base, tuple(lab.Shape(s.mode, chosen[i][k]) for i, s in enumerate(label.shapes)))
            for k in range(len(attached))]


def choose_motion(frames: list[np.ndarray], drawn: np.ndarray, with_face: list[np.ndarray],
                  own: list[np.ndarray]) -> str:
    """"face" or "own": which of two tracks of the polygon `drawn` (frame pixels of frames[0]) through
    frames[1:] explains the region better, judged by how well each track's polygons outline what the drawn
    polygon outlined (doppel.occlusion.track.region_score with the drawn frame's colour model). The face's
    motion is kept where the two agree (last polygons' IoU >= AGREE_IOU), and wherever it keeps the region's
    score (at least KEEP_SCORE of the drawn polygon's own): a face-attached region does, while the tracker's
    own optimum can sit a little off it (measured on the benchmark's face oval and jaw: the face's track kept
    91-104 % of the score, and the region tracker, optimising the same score, drifted); a hand the face's
    track loses (below 40 % on the generated set); then the region's own track is taken."""
    h, w = frames[0].shape[:2]
    last = [cv2.fillPoly(np.zeros((h, w), np.uint8), [np.round(p).astype(np.int32)], 255) for p in
            (with_face[-1], own[-1])]
    if lab.iou(last[0], last[1]) >= AGREE_IOU:
        return "face"
    drawn_score = region_score(frames[0], drawn, frames[0], drawn)
    face_score = np.mean([region_score(frames[0], drawn, f, p) for f, p in zip(frames[1:], with_face, strict=True)])
    # A region the face's motion loses is not attached to the face: its own track, even where the drawn
    # frame's colour model judges both poorly (a hand entering the face from below: both scores fall, the
    # face's track is the one that is wrong; measured on the generated set).
    return "face" if drawn_score <= 0 or face_score >= KEEP_SCORE * drawn_score else "own"


def _carry_with_face(label: lab.Label, matrices: list[np.ndarray], crops: list[np.ndarray],
                     meshes: list[np.ndarray] | None) -> list[lab.Label]:
    size = crops[0].shape[0]
    radius = size / 40
    in_crop = label.transformed(lambda p: transform_points(matrices[0], p))
    out = []
    for k in range(1, len(crops)):
        flow, reliable = crop_flow(crops[k - 1], crops[k])
        if meshes is None:
            in_crop = in_crop.transformed(lambda p, f=flow, r=reliable: move_points(p, f, r, radius))
        else:
            before, after = (transform_points(matrices[j], meshes[j]) for j in (k - 1, k))
            in_crop = in_crop.transformed(
                lambda p, f=flow, r=reliable, a=before, b=after: _fuse(p, f, r, radius, a, b, size / 30))
        to_frame = cv2.invertAffineTransform(matrices[k])
        out.append(in_crop.transformed(lambda p, m=to_frame: transform_points(m, p)))
    return out


def _fuse(points: np.ndarray, flow: np.ndarray, reliable: np.ndarray, radius: float, before: np.ndarray,
          after: np.ndarray, sigma: float) -> np.ndarray:
    """Move points by the mesh's motion, unless the flow there is reliable and clearly different (by more than
    FUSE_PX): then something is moving over the face, and the points follow it."""
    by_flow = move_points(points, flow, reliable, radius) - points
    by_mesh = mesh_motion(points, before, after, sigma)
    gap = np.linalg.norm(by_flow - by_mesh, axis=1, keepdims=True)
    trust = 1 - np.exp(-0.5 * (gap / FUSE_PX) ** 2)
    return points + by_mesh + trust * (by_flow - by_mesh)


def track_of(ws: Workspace, face: Face) -> list[Face]:
    """The faces of `face`'s track (same media, same track; or same person if untracked), by frame."""
    if face.track_id is not None:
        return [f for f in ws.faces.of_media(face.media_id) if f.track_id == face.track_id]
    if face.person_id is not None:
        return ws.faces.of_person(face.media_id, face.person_id)
    return [face]


def propagate(ws: Workspace, face_id: int, frames: int = 15) -> PropagateReport:
    """Carry face `face_id`'s current (drawn or confirmed) label up to `frames` frames forwards and backwards
    along its track, stopping at gaps and at faces with a drawn or confirmed label of their own. Stores the
    results as `suggested` labels (replacing older suggestions; never an artist's label)."""
    from doppel.media.video import MediaReader
    from doppel.occlusion.train import load_crop

    if frames < 1:
        raise DoppelError("propagate over at least 1 frame")
    found = ws.faces.by_id(face_id)
    if found is None:
        raise DoppelError(f"no face #{face_id} in this workspace")
    origin = found
    source = lab.current(ws.occlusion, face_id)
    if source is None or source.kind not in lab.TRAINABLE:
        raise DoppelError(f"face #{face_id} has no drawn or confirmed label to propagate")
    by_frame = {f.frame_idx: f for f in track_of(ws, origin)}
    report = PropagateReport(face_id, [], [])
    results: list[tuple[int, lab.Label]] = []
    for step in (1, -1):
        chain = [origin]
        for k in range(1, frames + 1):
            nxt = by_frame.get(origin.frame_idx + step * k)
            if nxt is None:
                break
            own = lab.current(ws.occlusion, nxt.id)
            if own is not None and own.kind in lab.TRAINABLE:
                report.stopped_at_labels.append(nxt.id)
                break
            chain.append(nxt)
        if len(chain) < 2:
            continue
        size = origin.crop_size
        crops = [load_crop(ws.root, f, size) for f in chain]
        matrices = [lab.crop_matrix(f, size) for f in chain]
        meshes = [ws.faces.mesh(f.id)[:, :2] for f in chain]
        with MediaReader(ws.media_by_id(origin.media_id).info) as reader:
            frames_rgb = [reader[f.frame_idx] for f in chain]
        carried = carry(source.label, matrices, crops, meshes, frames_rgb)
        results += [(f.id, c) for f, c in zip(chain[1:], carried, strict=True)]
    with ws.transaction():
        for fid, carried_label in results:
            own = lab.current(ws.occlusion, fid)
            if own is not None and own.kind == "suggested":
                ws.occlusion.delete_label(own.id)  # an older suggestion gives way; an artist's label never
            lab.add_label(ws.occlusion, fid, carried_label, "suggested", source.id)
            report.suggested.append(fid)
    return report
