"""`doppel mask apply`: a mask per face from the trained network (or the artist's label), smoothed over time,
stored as a PNG in the face's aligned crop (WS/masks/occlusion/) with its hash in the database for merge.

Temporal smoothing: each face's probabilities are averaged with those of the two faces before and after it in
the same track, brought into its crop by the faces' own alignments (after the motion cue, below, has cut out
what moves over the face). The weight of a neighbour's pixel falls
with how much the picture there differs between the two crops, so where the face is still (skin, its outline)
the network's frame-to-frame noise averages out and the edge does not boil, while a moving occluder, which
changes the picture, keeps its own frame's mask and does not leave a ghost behind. A face with an artist's
label enters this average with the label instead of the network's guess, and counts LABEL_WEIGHT times: the
label is the truth on its frame, so its neighbours borrow it wherever the picture has not changed (on the
benchmark's generated set, ten drawn labels: IoU on the other frames 0.928 -> 0.934).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from doppel.device import bf16_supported, pick_device
from doppel.errors import DoppelError
from doppel.extract.aligned import AlignedFace
from doppel.fsutil import write_bytes_atomic
from doppel.occlusion import labels as lab
from doppel.occlusion.model import MaskNet, build
from doppel.occlusion.synth import features
from doppel.occlusion.train import load_crop, network_identity, polygon_mask, predict_probs
from doppel.train import checkpoint
from doppel.train.expression import eyes_mouth_region
from doppel.workspace.occlusion import StoredMask

if TYPE_CHECKING:
    from doppel.workspace import Workspace
    from doppel.workspace.faces import Face

SMOOTH_RADIUS = 2          # frames either side
SMOOTH_SIGMA = 0.06        # picture difference (0-1, mean of RGB) at which a neighbour's weight falls to 0.6
LABEL_WEIGHT = 3.0         # a labelled neighbour's weight in the temporal average, against a network guess's 1
ORIGIN_VERSION = "t7"      # bump when the smoothing or the cue changes, so stored masks are recomputed
MOTION_WINDOW = 60         # frames either side for the motion cue's median face
MOTION_STRIDE = 10         # one median face per this many frames (neighbours share it)
MOTION_Z = 1.0             # departures from the median face beyond this many times its variation: occluders
MOTION_FLOOR = 0.01        # added to the variation (Lab / 100 units): compression noise and landmark jitter
MOTION_QUANTILE = 0.5      # the pixel's normal variation: this quantile of its departures over the window
MOTION_LIGHTNESS = 0.25    # weight of lightness against the two colour axes (a talking face changes its shading)
MOTION_POOL = 2 / 128      # the departures pooled over a Gaussian of this sigma, share of the crop (2 px at 128)
OWN_PARTS_SHARE = 0.8      # a cut lying this much inside the eyes and mouth is the face moving, not an occluder,
OWN_PARTS_REACH = 4 / 128  # ... unless another cut lies within this share of the crop of it (4 px at 128)
MOTION_GROW = 2 / 128      # the cue's safety margin, share of the crop (2 px at 128), for a network without labels


@dataclass
class ApplyReport:
    faces: int
    computed: int
    from_labels: int
    seconds: float
    model: str


class MaskPredictor:
    """`predict(crops, polygons)` for aligned faces at the network's resolution."""

    def __init__(self, ws: Workspace, device: str | None = None) -> None:
        self.id, self.config, path = network_identity(ws)
        ckpt = checkpoint.load(path)
        self.device = pick_device(device)
        self.model: MaskNet = build(self.config)
        self.model.load_state_dict(ckpt.model)
        self.model.to(self.device).to(memory_format=torch.channels_last).eval()  # type: ignore[call-overload]
        self.bf16 = bool(ckpt.state["train"].get("bf16")) and bf16_supported(self.device)
        self.learnt_labels = int(ckpt.state.get("label_steps", 0)) > 0
        """Whether the network was trained with artist's labels (then the cue gets no margin)."""

    @property
    def resolution(self) -> int:
        return self.config.resolution

    def predict(self, crops: np.ndarray, polygons: np.ndarray) -> np.ndarray:
        """crops (N, R, R, 3) uint8 RGB, polygons (N, R, R) uint8 -> (N, R, R) float32 probabilities in [0, 1]."""
        x = np.stack([features(c.astype(np.float32) / 255, p.astype(np.float32) / 255)
                      for c, p in zip(crops, polygons, strict=True)])
        return predict_probs(self.model, np.ascontiguousarray(x.transpose(0, 3, 1, 2)), self.device, self.bf16)


def smooth_in_time(probs: np.ndarray, crops: np.ndarray, matrices: np.ndarray, frames: list[int],
                   radius: int = SMOOTH_RADIUS, sigma: float = SMOOTH_SIGMA,
                   trust: np.ndarray | None = None) -> np.ndarray:
    """Picture-aware temporal average of one track's masks.

    probs (N, R, R) float32 in [0, 1]; crops (N, R, R, 3) uint8; matrices (N, 2, 3) frame -> crop at R;
    frames: the N frame indices (only faces within `radius` frames of each other are mixed); trust: (N,) float
    weight of each face's mask when it is a neighbour (default 1; LABEL_WEIGHT for a label)."""
    n, size = len(probs), probs.shape[1]
    trust = np.ones(n, np.float32) if trust is None else trust
    grey = [cv2.GaussianBlur(c.astype(np.float32) / 255, (0, 0), 1.0) for c in crops]
    out = np.empty_like(probs)
    for i in range(n):
        total = probs[i].copy()
        weight = np.ones((size, size), np.float32)
        for j in range(max(0, i - radius), min(n, i + radius + 1)):
            if j == i or abs(frames[j] - frames[i]) > radius:
                continue
            # crop j -> frame -> crop i
            back = cv2.invertAffineTransform(matrices[j])
            a = matrices[i][:, :2] @ back[:, :2]
            m = np.hstack([a, (matrices[i][:, :2] @ back[:, 2] + matrices[i][:, 2])[:, None]])
            pj = cv2.warpAffine(probs[j], m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            cj = cv2.warpAffine(grey[j], m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            diff = np.abs(cj - grey[i]).mean(2)
            near = 1.0 - abs(frames[j] - frames[i]) / (radius + 1)
            w = np.exp(-0.5 * (diff / sigma) ** 2).astype(np.float32) * (near * float(trust[j]))
            total += w * pj
            weight += w
        out[i] = total / weight
    return out


def cue_features(crops: np.ndarray) -> np.ndarray:
    """The picture the motion cue compares: (N, R, R, 3) float32 CIE Lab / 100 of the crops (N, R, R, 3) uint8
    RGB, lightly blurred, with lightness weighted MOTION_LIGHTNESS against the colour axes."""
    out = np.empty(crops.shape, np.float32)
    for k, c in enumerate(crops):
        lab_img = cv2.cvtColor(cv2.GaussianBlur(c.astype(np.float32) / 255, (0, 0), 1.0), cv2.COLOR_RGB2Lab)
        out[k] = lab_img / 100
        out[k, ..., 0] *= MOTION_LIGHTNESS
    return out


def own_parts(face: Face, size: int) -> np.ndarray:
    """The face's eyes and mouth (grown a little) in its aligned crop at `size`: (size, size) bool."""
    return eyes_mouth_region(AlignedFace.of(face).crop_landmarks(size), size) > 127


def drop_own_motion(cue: np.ndarray, parts: np.ndarray, share: float = OWN_PARTS_SHARE,
                    reach: int = 4) -> np.ndarray:
    """The cue (R, R) float32 without its regions that lie `share` or more inside `parts` (R, R) bool and have
    no other region within `reach` pixels: a blink or a gaze that the window's median did not cover. An
    occluder over an eye reaches beyond it, or its edges beside the eye light the cue too: it stays."""
    n, regions = cv2.connectedComponents((cue > 0).astype(np.uint8))
    if n <= 1:
        return cue
    inside = np.bincount(regions.ravel(), weights=parts.ravel().astype(np.float64), minlength=n)
    area = np.bincount(regions.ravel(), minlength=n)
    own = inside / np.maximum(area, 1) >= share
    own[0] = False
    if not own.any():
        return cue
    others = (regions > 0) & ~own[regions]
    if others.any():
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
        near = cv2.dilate(others.astype(np.uint8), disc) > 0
        touched = np.bincount(regions[near].ravel(), minlength=n) > 0
        own &= ~touched
    return np.where(own[regions], 0, cue).astype(np.float32)


def motion_cue(crops: np.ndarray, frames: list[int], window: int = MOTION_WINDOW, threshold: float = MOTION_Z,
               grow: int = 0, parts: np.ndarray | None = None) -> np.ndarray:
    """How likely each pixel of each crop is covered by something moving over the face: (N, R, R) float32 in
    [0, 1], for one track's aligned crops (N, R, R, 3) uint8 and their frame indices.

    In the aligned crop the face holds still, so the median of the crops within `window` frames is the face
    without whatever passes over it. A pixel counts as occluded where it departs from that median by more
    than `threshold` times the pixel's own normal variation (a middle quantile of its departures over the
    window, which is large where the face itself moves: eyes, mouth), the departures pooled over a small
    neighbourhood first. Departures are measured in CIE Lab with lightness weighted down: a talking, turning
    face changes its own shading, while an object over it changes the colour, even a skin-coloured hand of
    another tone (on the benchmark's generated hand, per-pixel separation from the visible face, ROC AUC:
    RGB 0.84, Lab colour normalised and pooled 0.94-0.95). Something held still for most of the window is not
    seen by this cue; the network and the labels are there for that. On the benchmark's generated set
    (benchmarks/bench_mask.py, zero labels) the cue takes the share of occluder pixels the mask misses from
    24 % (the RGB cue it replaced) to 10 %. `grow` (pixels): a safety margin, the cue dilated by a disc of
    this radius, since it sees an occluder's edge before its inside. `parts` (N, R, R) bool, each face's eyes
    and mouth (`own_parts`): cuts that lie almost entirely inside them, with no other cut beside them, are
    dropped (`drop_own_motion`); on akiyo_cif, where nothing passes over the face, that takes the share of the
    face the cue cuts from 2.6 % to 1.7 %, mostly the eyes (the RGB cue before it: 1.75 %)."""
    n, size = len(crops), crops.shape[1]
    feats = cue_features(crops)
    pool = MOTION_POOL * size
    out = np.zeros(crops.shape[:3], np.float32)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    centres: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for i in range(n):
        centre = MOTION_STRIDE * round(frames[i] / MOTION_STRIDE)
        near = [j for j in range(n) if abs(frames[j] - centre) <= window]
        if len(near) < 5:
            continue
        key = (near[0], near[-1])
        if key not in centres:
            stack = feats[near]
            med = np.median(stack, 0)
            mad = np.quantile(np.abs(stack - med).sum(3), MOTION_QUANTILE, axis=0)
            centres[key] = (med, mad)
        med, mad = centres[key]
        z = np.abs(feats[i] - med).sum(2) / (2 * mad + MOTION_FLOOR)
        z = cv2.GaussianBlur(z, (0, 0), pool)
        cue = np.clip((z - threshold) / threshold, 0, 1).astype(np.float32)
        cue = cv2.morphologyEx(cue, cv2.MORPH_OPEN, kernel)
        if parts is not None:
            cue = drop_own_motion(cue, parts[i], reach=max(1, round(OWN_PARTS_REACH * size)))
        if grow > 0:
            cue = cv2.dilate(cue, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
        out[i] = cv2.GaussianBlur(cue, (0, 0), 1.0)
    return out


def load_mask(ws: Workspace, rel: str) -> np.ndarray:
    """A stored mask: (S, S) float32 in [0, 1] in the face's aligned crop (S = the crop size)."""
    path = (ws.root / rel).resolve()
    if ws.root not in path.parents:
        raise DoppelError("stored mask path leads outside the workspace", rel)
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise DoppelError("occlusion mask is missing or unreadable; run `doppel mask apply`", path)
    return img.astype(np.float32) / 255


def _origin(model_id: str, label: lab.StoredLabel | None, motion: bool, near_labels: tuple[int, ...] = (),
            grow: int = 0) -> str:
    """What a stored mask was made from: its own label, or the network, the cue (and its margin) and the labels
    of the faces it was smoothed with (a new label nearby, or the track's first, makes the mask stale)."""
    if label is not None:
        return f"label:{label.id}"
    near = f"+{','.join(map(str, near_labels))}" if near_labels else ""
    cue = (f"m{grow}" if grow else "m") if motion else ""
    return f"{model_id}/{ORIGIN_VERSION}{cue}{near}"


def _near_labels(group: list[Face], labels: dict[int, lab.StoredLabel], k: int) -> tuple[int, ...]:
    """Ids of the labels of the faces that `smooth_in_time` mixes into face k of a track."""
    return tuple(labels[f.id].id for j, f in enumerate(group) if j != k and f.id in labels
                 and abs(f.frame_idx - group[k].frame_idx) <= SMOOTH_RADIUS)


def _groups(faces: list[Face]) -> list[list[Face]]:
    """Faces split into tracks (same media and track, or each untracked face alone), in frame order."""
    groups: dict[tuple[int, int], list[Face]] = {}
    for f in sorted(faces, key=lambda f: (f.media_id, f.frame_idx, f.face_idx)):
        key = (f.media_id, f.track_id if f.track_id is not None else -f.id)
        groups.setdefault(key, []).append(f)
    return list(groups.values())


def apply_masks(ws: Workspace, faces: list[Face] | None = None, *, force: bool = False, device: str | None = None,
                progress: Callable[[int, int], None] | None = None,
                predictor: MaskPredictor | None = None, motion: bool = True) -> ApplyReport:
    """Store an up-to-date occlusion mask for each of `faces` (default: every face). Masks made by the current
    network (or from the face's current label) are kept unless `force`. `motion`: also cut out what moves
    over the face (`motion_cue`)."""
    import time

    start = time.perf_counter()
    faces = faces if faces is not None else ws.faces.of_role("source") + ws.faces.of_role("target")
    labels = lab.current_labels(ws.occlusion, lab.TRAINABLE)
    predictor = predictor or MaskPredictor(ws, device)
    stored = {fid: m.origin for fid, m in ws.occlusion.masks().items()}
    res = predictor.resolution
    report = ApplyReport(len(faces), 0, 0, 0.0, predictor.id)
    folder = ws.root / "masks" / "occlusion"
    done = 0
    # The cue's safety margin only for a network that has learnt no labels: one trained on the artist's labels
    # has learnt this shot's occluders, and the margin then costs more face than it finds occluder.
    grow = 0 if predictor.learnt_labels else round(MOTION_GROW * res)
    for group in _groups(faces):
        origins = [_origin(predictor.id, labels.get(f.id), motion, _near_labels(group, labels, k), grow)
                   for k, f in enumerate(group)]
        stale = [k for k, f in enumerate(group) if force or stored.get(f.id, "") != origins[k]]
        if not stale:
            done += len(group)
            continue
        reach = SMOOTH_RADIUS + (MOTION_WINDOW if motion else 0)
        loaded = sorted({j for k in stale for j in range(k - reach, k + reach + 1) if 0 <= j < len(group)})
        need = sorted({j for k in stale for j in range(k - SMOOTH_RADIUS, k + SMOOTH_RADIUS + 1)
                       if 0 <= j < len(group)})
        all_crops = np.stack([load_crop(ws.root, group[j], res) for j in loaded])
        pick = [loaded.index(j) for j in need]
        sub = [group[j] for j in need]
        crops = all_crops[pick]
        probs = predictor.predict(crops, np.stack([polygon_mask(f, res) for f in sub]))
        if motion:
            parts = np.stack([own_parts(group[j], res) for j in loaded])
            probs *= 1 - motion_cue(all_crops, [group[j].frame_idx for j in loaded], grow=grow, parts=parts)[pick]
        trust = np.ones(len(sub), np.float32)
        for k, f in enumerate(sub):
            if f.id in labels:   # the label is the truth on its frame: neighbours borrow it, not the guess
                probs[k] = lab.label_mask(labels[f.id].label, f, res, lab.crop_matrix(f, res)) / 255
                trust[k] = LABEL_WEIGHT
        probs = smooth_in_time(probs, crops, np.stack([lab.crop_matrix(f, res) for f in sub]),
                               [f.frame_idx for f in sub], trust=trust)
        rows = []
        for j, f in zip(need, sub, strict=True):
            if j not in stale:
                continue
            label = labels.get(f.id)
            if label is not None:
                mask = lab.label_mask(label.label, f, f.crop_size, lab.crop_matrix(f, f.crop_size))
                report.from_labels += 1
            else:
                p = probs[need.index(j)]
                mask = (np.clip(cv2.resize(p, (f.crop_size, f.crop_size), interpolation=cv2.INTER_LINEAR), 0, 1)
                        * 255 + 0.5).astype(np.uint8)
            ok, data = cv2.imencode(".png", mask, [cv2.IMWRITE_PNG_COMPRESSION, 1])
            if not ok:
                raise DoppelError("could not encode an occlusion mask", folder)
            rel = f"masks/occlusion/{f.id:08d}.png"
            write_bytes_atomic(ws.root / rel, data.tobytes())
            digest = hashlib.sha256(data.tobytes()).hexdigest()[:32]
            rows.append(StoredMask(f.id, origins[j], rel, digest))
        with ws.transaction():
            ws.occlusion.put_masks(rows)
        report.computed += len(rows)
        done += len(group)
        if progress:
            progress(done, len(faces))
    report.seconds = time.perf_counter() - start
    return report


def warp_mask(mask: np.ndarray, m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A mask (HxW float32 in [0, 1]) warped by the 2x3 matrix `m` into a (width, height) = `size` image,
    bilinear, 0 (not the face) outside it."""
    return np.clip(cv2.warpAffine(mask, np.asarray(m[:2], np.float64), size, flags=cv2.INTER_LINEAR,
                                  borderValue=0), 0, 1)
