"""Training data: the chosen people's aligned faces, masks and eye/mouth regions, and batched augmentation.

A batch is a pure function of (seed, salt, step): nothing about the data order needs saving to resume
exactly, and every process of a distributed run can build the same global batch and take its share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from doppel.color import reinhard_transfer
from doppel.errors import DoppelError
from doppel.extract import blendshapes
from doppel.extract.aligned import AlignedFace
from doppel.train import expression
from doppel.workspace.paths import inside

if TYPE_CHECKING:  # the workspace (and with it video I/O) is only needed to load faces, not to train on them
    from doppel.workspace import Workspace
    from doppel.workspace.faces import Face
    from doppel.workspace.records import Role


@dataclass
class FaceTensors:
    """N faces at the model's resolution R: images (N, 3, R, R) uint8; masks and eye/mouth regions
    (N, 1, R, R) uint8; `weights` (N,) sampling weights balancing head poses (and eye and mouth opening);
    `expression` (N, DIMS) float32 expression codes (train/expression.py)."""

    images: torch.Tensor
    masks: torch.Tensor
    eyes_mouth: torch.Tensor
    weights: torch.Tensor
    face_ids: list[int]
    expression: torch.Tensor

    def __len__(self) -> int:
        return len(self.face_ids)

    def to(self, device: torch.device) -> FaceTensors:
        """The same faces on `device` (augmentation then runs there too: a GPU never waits for the CPU)."""
        return replace(self, images=self.images.to(device), masks=self.masks.to(device),
                       eyes_mouth=self.eyes_mouth.to(device), expression=self.expression.to(device))


def _inverse_frequency(cells: list[tuple[int, ...]]) -> np.ndarray:
    """1 / (items in the same cell) for each item, normalised to sum to 1: (N,) float64."""
    counts: dict[tuple[int, ...], int] = {}
    for c in cells:
        counts[c] = counts.get(c, 0) + 1
    w = np.array([1.0 / counts[c] for c in cells], np.float64)
    return w / w.sum()


class PosedFace(Protocol):
    """What sampling needs of a face: head angles in degrees and (68, 2) landmarks."""

    @property
    def yaw(self) -> float: ...
    @property
    def pitch(self) -> float: ...
    @property
    def lm68(self) -> np.ndarray: ...


def _pose_weights(faces: Sequence[PosedFace]) -> torch.Tensor:
    """1 / (faces in the same 10-degree yaw x pitch cell), so rare poses are seen as often as common ones."""
    return torch.from_numpy(_inverse_frequency([(int(f.yaw // 10), int(f.pitch // 10)) for f in faces]))


EYE_BIN = 0.015
"""Width of the eye-opening bins for balanced sampling, in inter-ocular distances (a blink spans 5-8)."""
MOUTH_BIN = 0.04
"""Width of the mouth-opening bins (closed to wide open spans about 8)."""


def balanced_weights(faces: Sequence[PosedFace]) -> torch.Tensor:
    """Sampling weights balancing head pose, eye opening and mouth opening: the mean of the three inverse
    frequencies (each over its own bins), so each factor's rare values are drawn far more often than their
    share, without splitting the faces into cells too sparse to mean anything. (N,) float64 summing to 1."""
    from doppel.evaluate.expression import openings

    opened = np.array([openings(f.lm68) for f in faces], np.float64).reshape(-1, 2)
    pose = _pose_weights(faces).numpy()
    eyes = _inverse_frequency([(int(v // EYE_BIN),) for v in opened[:, 0]])
    mouth = _inverse_frequency([(int(v // MOUTH_BIN),) for v in opened[:, 1]])
    w = (pose + eyes + mouth) / 3
    return torch.from_numpy(w / w.sum())


def load_faces(root: Path, faces: list[Face], resolution: int, balance_expressions: bool = False,
               occlusion: dict[int, str] | None = None, reference: tuple[float, float] | None = None,
               frame_sizes: dict[int, tuple[int, int]] | None = None,
               coefficients: np.ndarray | None = None) -> FaceTensors:
    """The faces' crops at `resolution`, with masks, eye/mouth regions and sampling weights (balanced over
    pose, and over eye and mouth opening too when `balance_expressions`). `occlusion`: face id -> stored
    occlusion mask (a PNG in the face's crop, doppel.occlusion); where there is one, the training mask is the
    polygon minus what covers the face, so the model neither learns the occluder as part of the face nor its
    mask as face. `reference`: the person's median eye opening and mouth width for the expression codes (by
    default from these faces). `frame_sizes`: media id -> (width, height) of its frames; where a crop reaches past
    the frame's edge, the black fill there is left out of the mask and the eye/mouth region, so the model does
    not learn it as part of the face. `coefficients`: the faces' (N, 52) blendshape coefficients, for codes with
    the gaze (a model with `expression_dims` 5)."""
    images, masks, regions = [], [], []
    for f in faces:
        crop_path = inside(root, f.crop_path, "face crop path")
        img = cv2.imread(str(crop_path), cv2.IMREAD_COLOR)
        if img is None:
            raise DoppelError("aligned face crop is missing or unreadable; run `doppel extract --redo`", crop_path)
        interp = cv2.INTER_AREA if img.shape[0] > resolution else cv2.INTER_CUBIC
        images.append(cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), (resolution, resolution),
                                 interpolation=interp))
        aligned = AlignedFace.of(f)
        mask = aligned.crop_mask(resolution)
        region = expression.eyes_mouth_region(aligned.crop_landmarks(resolution), resolution)
        if frame_sizes and f.media_id in frame_sizes:
            inside_frame = aligned.in_frame(resolution, frame_sizes[f.media_id])
            mask, region = np.minimum(mask, inside_frame), np.minimum(region, inside_frame)
        if occlusion and f.id in occlusion:
            occ = cv2.imread(str(root / occlusion[f.id]), cv2.IMREAD_GRAYSCALE)
            if occ is not None:
                occ = cv2.resize(occ, (resolution, resolution), interpolation=cv2.INTER_AREA)
                mask = np.minimum(mask, occ)
                region = np.minimum(region, occ)   # a hand over the mouth is not the mouth either
        masks.append(mask)
        regions.append(region)
    return FaceTensors(
        images=torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(),
        masks=torch.from_numpy(np.stack(masks))[:, None].contiguous(),
        eyes_mouth=torch.from_numpy(np.stack(regions))[:, None].contiguous(),
        weights=balanced_weights(faces) if balance_expressions else _pose_weights(faces),
        face_ids=[f.id for f in faces],
        expression=torch.from_numpy(expression.codes([f.lm68 for f in faces], reference, coefficients)),
    )


def split_holdout(ws: Workspace, faces: list[Face], holdout: float) -> tuple[list[Face], list[Face]]:
    """Faces from the last `holdout` share of each video are kept for validation."""
    frames = {m.id: (m.info.frame_count, m.info.kind) for m in ws.media()}
    train: list[Face] = []
    held: list[Face] = []
    for f in faces:
        count, kind = frames[f.media_id]
        (held if kind != "image" and f.frame_idx >= math.ceil(count * (1 - holdout)) else train).append(f)
    return train, held


@dataclass
class TrainingData:
    src: FaceTensors
    dst: FaceTensors
    src_val: FaceTensors | None
    dst_val: FaceTensors | None


def source_as_trained(src: FaceTensors, idx: torch.Tensor, dst: FaceTensors, color_match: bool) -> torch.Tensor:
    """Source faces `idx` as training shows them to the model: float NCHW in [0, 1], with `color_match` in the
    colours of target faces (RCT, as `make_batch` does; here each takes those of the target face at the same
    share of the target set, so a preview or a validation figure is the same at every step). The source decoder
    never sees the source in its own colours, so reconstructing it in them looks softer than the model is."""
    img = src.images[idx].float() / 255
    if not color_match or not len(dst):
        return img
    ref = torch.linspace(0, len(dst) - 1, len(src)).round().long()[idx.cpu()].to(dst.images.device)
    return reinhard_transfer(img, dst.images[ref].float() / 255, src.masks[idx].float() / 255,
                             dst.masks[ref].float() / 255).clamp(0, 1)


def load_training_data(ws: Workspace, resolution: int, face_type: str, holdout: float,
                       balance_expressions: bool = False, gaze: bool = False) -> TrainingData:
    """The usable faces of the chosen source and target persons, split into training and held-out sets.
    `gaze`: their expression codes hold the gaze too (read from the blendshape coefficients, computed once and
    kept in the workspace)."""
    sets = {}
    # Occlusion masks (`doppel mask apply`), where the workspace has them.
    occlusion = {face_id: m.path for face_id, m in ws.occlusion.masks().items()}
    frame_sizes = {m.id: (m.info.width, m.info.height) for m in ws.media()}
    roles: tuple[Role, ...] = ("source", "target")
    for role in roles:
        faces = ws.faces.of_chosen(role, usable_only=True)
        if not faces:
            raise DoppelError(f"no usable {role} faces: run `doppel extract` (and check `doppel faces "
                              f"--role {role}`)", ws.root)
        types = {f.face_type for f in faces}
        if types != {face_type}:
            raise DoppelError(f"the model wants {face_type} faces but the {role} faces are "
                              f"{', '.join(sorted(types))}; set [extract] face_type and run `doppel extract --redo`")
        train, held = split_holdout(ws, faces, holdout)
        if not train:
            train, held = faces, []
        reference = expression.person_reference([f.lm68 for f in faces])
        train_c = held_c = None
        if gaze:
            train_c, held_c = blendshapes.of_faces(ws, train), blendshapes.of_faces(ws, held)
        sets[role] = (load_faces(ws.root, train, resolution, balance_expressions, occlusion, reference, frame_sizes,
                                 train_c),
                      load_faces(ws.root, held, resolution, occlusion=occlusion, reference=reference,
                                 frame_sizes=frame_sizes, coefficients=held_c)
                      if held else None)
    return TrainingData(sets["source"][0], sets["target"][0], sets["source"][1], sets["target"][1])


def batch_generator(seed: int, salt: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + salt * 7_919 + step) % (2**63))


def _affine_grid(n: int, res: int, g: torch.Generator, warp: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampling grids (N, R, R, 2): the target's (random similarity) and the input's (the same plus a smooth
    random warp, as DeepFaceLab's random_warp: random offsets on a coarse grid, interpolated)."""
    angle = (torch.rand(n, generator=g) * 2 - 1) * math.radians(10)
    scale = 1 + (torch.rand(n, generator=g) * 2 - 1) * 0.05
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * 0.05
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, [n, 3, res, res], align_corners=False)
    if not warp:
        return grid, grid
    coarse = torch.randn(n, 2, 5, 5, generator=g) * 0.035
    coarse[:, :, [0, -1], :] = 0
    coarse[:, :, :, [0, -1]] = 0
    flow = F.interpolate(coarse, size=(res, res), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)
    return grid, grid + flow


def hide_regions(img: torch.Tensor, region: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
    """Blur the eyes and mouth away: inside `region` (N, 1, R, R) in [0, 1], the images `which` ((N,) bool) of
    img (N, 3, R, R) become a heavily blurred copy of themselves (an eighth of the resolution), so only the
    face's colour is left there. Returns the new (N, 3, R, R)."""
    res = img.shape[-1]
    coarse = F.interpolate(F.avg_pool2d(img, 8), size=(res, res), mode="bilinear", align_corners=False)
    hidden = img * (1 - region) + coarse * region
    return torch.where(which.view(-1, 1, 1, 1), hidden, img)


def augment(faces: FaceTensors, idx: torch.Tensor, g: torch.Generator, *, warp: bool, flip: bool,
            hide: float = 0.0) -> dict[str, torch.Tensor]:
    """Warped input, target, mask, eye/mouth region and expression code (N, DIMS) for the faces `idx`: float
    NCHW in [0, 1]. `hide`: share of inputs whose eyes and mouth are blurred away (`hide_regions`)."""
    device = faces.images.device
    idx = idx.to(device)
    img = faces.images[idx].float() / 255
    mask = faces.masks[idx].float() / 255
    em = faces.eyes_mouth[idx].float() / 255
    n, _, res, _ = img.shape
    if flip:
        flipped = (torch.rand(n, generator=g) < 0.5).to(device)
        img = torch.where(flipped.view(-1, 1, 1, 1), img.flip(3), img)
        mask = torch.where(flipped.view(-1, 1, 1, 1), mask.flip(3), mask)
        em = torch.where(flipped.view(-1, 1, 1, 1), em.flip(3), em)
    grid_t, grid_i = (grid.to(device) for grid in _affine_grid(n, res, g, warp))
    stack = torch.cat([img, mask, em], 1)
    target = F.grid_sample(stack, grid_t, mode="bilinear", padding_mode="border", align_corners=False)
    source = img
    if hide > 0:
        source = hide_regions(img, em, (torch.rand(n, generator=g) < hide).to(device))
    warped = F.grid_sample(source, grid_i, mode="bilinear", padding_mode="border", align_corners=False)
    return {"input": warped.clamp(0, 1), "target": target[:, :3].clamp(0, 1), "mask": target[:, 3:4],
            "eyes_mouth": target[:, 4:5], "expression": faces.expression[idx]}


def make_batch(data: TrainingData, batch_size: int, seed: int, salt: int, step: int, *, warp: bool = True,
               flip: bool = True, color_match: bool = True, rank: int = 0, world: int = 1, hide: float = 0.0
               ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(source batch, target batch) for `step`; with `world` > 1 this process's share of the global batch.
    `hide`: share of inputs whose eyes and mouth are blurred away (for a model with an expression code)."""
    g = batch_generator(seed, salt, step)
    src_idx = torch.multinomial(data.src.weights, batch_size, replacement=True, generator=g)
    dst_idx = torch.multinomial(data.dst.weights, batch_size, replacement=True, generator=g)
    ref_idx = torch.multinomial(data.dst.weights, batch_size, replacement=True, generator=g)
    src = augment(data.src, src_idx, g, warp=warp, flip=flip, hide=hide)
    dst = augment(data.dst, dst_idx, g, warp=warp, flip=flip, hide=hide)
    if color_match:
        ref_idx = ref_idx.to(data.dst.images.device)
        ref = data.dst.images[ref_idx].float() / 255
        ref_mask = data.dst.masks[ref_idx].float() / 255
        for key in ("input", "target"):
            src[key] = reinhard_transfer(src[key], ref, src["mask"], ref_mask)
    if world > 1:
        share = slice(rank * batch_size // world, (rank + 1) * batch_size // world)
        src = {k: v[share] for k, v in src.items()}
        dst = {k: v[share] for k, v in dst.items()}
    return src, dst
