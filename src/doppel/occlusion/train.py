"""`doppel mask train`: fit the occlusion segmenter on the workspace's own faces, resumably.

Reuses the face model's machinery: safetensors checkpoints written crash-safely and their owner check
(doppel.train.checkpoint), the bf16 probe and the device choice (doppel.device). Ctrl-C stops after the
current step and saves. Batches are a pure function of
(seed, salt, step) (doppel.occlusion.synth), so a resumed run continues exactly where the last one stopped.
Checkpoints live in WS/masks/net/.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from doppel import __version__
from doppel.device import bf16_supported, pick_device
from doppel.errors import DoppelError
from doppel.extract.aligned import AlignedFace
from doppel.occlusion import labels as lab
from doppel.occlusion.model import MaskNet, MaskNetConfig, build
from doppel.occlusion.synth import MaskData, features, make_batch
from doppel.reports import Report
from doppel.train import checkpoint
from doppel.train.config import from_dict, to_dict

if TYPE_CHECKING:
    from doppel.workspace import Workspace
    from doppel.workspace.faces import Face

MAX_FACES = 3000  # faces loaded for training, spread evenly over the footage


@dataclass(frozen=True)
class MaskTrainConfig:
    batch_size: int = 16
    learning_rate: float = 2e-3
    label_share: float = 0.5
    """Share of each batch drawn from the artist's labels (drawn or confirmed), when there are any."""
    seed: int = 0
    bf16: bool = True
    """bfloat16 autocast where the hardware has bf16 arithmetic; float32 elsewhere."""
    fill: str = "footage"
    """What synthetic occluders are filled with: "footage" (skin and textures cut from the footage, flat
    colours) or "flat" (flat colours only: learnt in a few dozen steps; for smoke tests)."""

    def __post_init__(self) -> None:
        if self.batch_size < 2:
            raise DoppelError("mask batch size must be at least 2 (batch norm)")
        if not 0 < self.learning_rate < 1:
            raise DoppelError("learning rate must be in (0, 1)")
        if not 0 <= self.label_share <= 1:
            raise DoppelError("label share must be in [0, 1]")
        if self.fill not in ("footage", "flat"):
            raise DoppelError(f"occluder fill must be footage or flat, not {self.fill!r}")


@dataclass(frozen=True)
class MaskTrainReport(Report):
    """`MaskTrainer.train`'s (and `Project.train_mask`'s) outcome: the network's step, what this run did, the
    last loss, and IoU on held-out synthetic occlusions (and on the labels, when there are any) next to the mesh
    polygon's own IoU there (`validation`)."""

    step: int
    steps_run: int
    seconds: float
    samples_per_s: float
    interrupted: bool
    loss: float
    validation: dict[str, float]
    checkpoint: Path
    labels: int
    """How many faces have an artist's label (drawn or confirmed) that the run trained on."""


def net_folder(ws: Workspace) -> Path:
    return ws.root / "masks" / "net"


def load_crop(root: Path, face: Face, size: int) -> np.ndarray:
    """A face's aligned crop at `size`: (size, size, 3) uint8 RGB."""
    img = cv2.imread(str(root / face.crop_path), cv2.IMREAD_COLOR)
    if img is None:
        raise DoppelError("aligned face crop is missing or unreadable; run `doppel extract --redo`",
                          root / face.crop_path)
    interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), (size, size), interpolation=interp)


def polygon_mask(face: Face, size: int) -> np.ndarray:
    """The face's mesh polygon in its own aligned crop at `size`: (size, size) uint8 in {0..255}."""
    return AlignedFace.of(face).crop_mask(size)


def load_mask_data(ws: Workspace, size: int, limit: int = MAX_FACES) -> MaskData:
    """Every usable face of the workspace (both roles), at most `limit` spread evenly, plus every face with a
    drawn or confirmed label."""
    faces = ws.faces.of_role("source", usable_only=True) + ws.faces.of_role("target", usable_only=True)
    if not faces:
        raise DoppelError("no faces to train the mask on: run `doppel extract` first", ws.root)
    labels = lab.current_labels(ws.occlusion, lab.TRAINABLE)
    keep = {int(i) for i in np.linspace(0, len(faces) - 1, min(limit, len(faces))).round()}
    chosen = [f for i, f in enumerate(faces) if i in keep or f.id in labels]
    crops = np.stack([load_crop(ws.root, f, size) for f in chosen])
    polys = np.stack([polygon_mask(f, size) for f in chosen])
    masks = {k: lab.label_mask(labels[f.id].label, f, size, lab.crop_matrix(f, size))
             for k, f in enumerate(chosen) if f.id in labels}
    return MaskData(crops, polys, masks)


def dice_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice (1 - F1), both on (N, 1, R, R)."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    inter = (p * target).sum((1, 2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum((1, 2, 3)) + target.sum((1, 2, 3)) + 1)
    return bce + dice.mean()


def batch_iou(prob: np.ndarray, target: np.ndarray) -> float:
    """Mean IoU of (N, ...) probabilities against (N, ...) targets, both thresholded at 0.5."""
    return float(np.mean([lab.iou(p, t) for p, t in zip(prob, target, strict=True)]))


class MaskTrainer:
    def __init__(self, ws: Workspace, cfg: MaskNetConfig, train_cfg: MaskTrainConfig, device: torch.device,
                 step: int = 0, elapsed: float = 0.0) -> None:
        if train_cfg.bf16 and not bf16_supported(device):
            train_cfg = replace(train_cfg, bf16=False)
        self.ws, self.cfg, self.train_cfg, self.device = ws, cfg, train_cfg, device
        self.step, self.elapsed, self.salt = step, elapsed, 0
        self.label_steps = 0
        """Steps trained with artist's labels in the batches (all runs): apply's cue margin is for networks
        that have learnt no labels (doppel.occlusion.apply.MOTION_GROW)."""
        torch.manual_seed(train_cfg.seed)
        self.model: MaskNet = build(cfg).to(device).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.opt = torch.optim.Adam(self.model.parameters(), lr=train_cfg.learning_rate)
        self.data: MaskData | None = None

    @classmethod
    def open(cls, ws: Workspace, *, resolution: int | None = None, device: str | None = None,
             overrides: dict[str, Any] | None = None) -> MaskTrainer:
        """Continue the workspace's mask network, or start one at `resolution` (default 128)."""
        folder = net_folder(ws)
        current = checkpoint.latest(folder)
        dev = pick_device(device)
        if current is None:
            cfg = MaskNetConfig(resolution=resolution or 128)
            return cls(ws, cfg, replace(MaskTrainConfig(), **(overrides or {})), dev)
        ckpt = checkpoint.load(current)
        state = ckpt.state
        checkpoint.check_owner(state, ws.id, current)
        cfg = from_dict(MaskNetConfig, state["model"])
        if resolution is not None and resolution != cfg.resolution:
            raise DoppelError(f"the mask network here works at {cfg.resolution} px, not {resolution}", folder)
        trainer = cls(ws, cfg, replace(from_dict(MaskTrainConfig, state["train"]), **(overrides or {})), dev,
                      state["step"], state.get("elapsed_s", 0.0))
        trainer.salt = state.get("salt", 0)
        trainer.label_steps = int(state.get("label_steps", 0))
        try:
            trainer.model.load_state_dict(ckpt.model)
        except RuntimeError as exc:
            raise DoppelError("mask checkpoint does not fit this network", current) from exc
        checkpoint.load_optimizer(trainer.opt, ckpt.optimizer, state["optimizer"])
        return trainer

    def state(self) -> dict[str, Any]:
        return {"doppel": __version__, "workspace_id": self.ws.id, "model": to_dict(self.cfg),
                "train": to_dict(self.train_cfg), "salt": self.salt, "elapsed_s": self.elapsed,
                "label_steps": self.label_steps, "torch": torch.__version__}

    def save(self, extra: dict[str, Any] | None = None) -> Path:
        return checkpoint.save(net_folder(self.ws), self.step, self.model, self.opt, {**self.state(), **(extra or {})})

    def load_data(self) -> MaskData:
        if self.data is None:
            self.data = load_mask_data(self.ws, self.cfg.resolution)
        return self.data

    def train_step(self) -> float:
        c = self.train_cfg
        x, y = make_batch(self.load_data(), c.batch_size, c.seed, self.salt, self.step, c.label_share, c.fill)
        xt = torch.from_numpy(x).to(self.device).contiguous(memory_format=torch.channels_last)
        yt = torch.from_numpy(y).to(self.device)
        self.model.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=c.bf16):
            logits = self.model(xt)
        loss = dice_bce(logits.float(), yt)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        self.label_steps += bool(self.load_data().labels) and c.label_share > 0
        return float(loss.detach())

    @torch.no_grad()
    def validate(self, n: int = 32) -> dict[str, float]:
        """IoU on a fixed batch of synthetic occlusions (a seed training never uses), and the polygon's own
        IoU there (the mask without any network); IoU on the labelled faces when there are labels."""
        data = self.load_data()
        x, y = make_batch(MaskData(data.crops, data.polygons, {}), n, self.train_cfg.seed + 7919, 0, 0,
                          fill=self.train_cfg.fill)
        prob = predict_probs(self.model, x, self.device, self.train_cfg.bf16)
        result = {"iou_synthetic": batch_iou(prob, y[:, 0]), "iou_polygon_only": batch_iou(x[:, 3], y[:, 0])}
        if data.labels:
            keys = sorted(data.labels)
            xl = np.stack([features(data.crops[k].astype(np.float32) / 255, data.polygons[k].astype(np.float32) / 255)
                           for k in keys]).transpose(0, 3, 1, 2)
            truth = np.stack([data.labels[k] for k in keys]).astype(np.float32) / 255
            result["iou_labels"] = batch_iou(predict_probs(self.model, np.ascontiguousarray(xl), self.device,
                                                           self.train_cfg.bf16), truth)
        return result

    def train(self, *, iterations: int | None = None, minutes: float | None = None,
              checkpoint_minutes: float = 2.0, progress: Callable[[int, int], None] | None = None
              ) -> MaskTrainReport:
        """`progress(steps done, steps asked)` after each step (steps asked: 0 when only `minutes` bound it)."""
        if iterations is None and minutes is None:
            raise DoppelError("give --iterations N or --minutes M")
        data = self.load_data()
        last = self.step + iterations if iterations is not None else None
        deadline = time.monotonic() + minutes * 60 if minutes is not None else math.inf
        start = mark = time.monotonic()
        steps = 0
        loss = math.nan
        interrupted = False
        try:
            while (last is None or self.step < last) and time.monotonic() < deadline:
                t0 = time.monotonic()
                loss = self.train_step()
                steps += 1
                now = time.monotonic()
                self.elapsed += now - t0
                if not math.isfinite(loss):
                    raise DoppelError("mask training diverged (non-finite loss); lower the learning rate")
                if progress is not None:
                    progress(steps, iterations or 0)
                if now - mark >= checkpoint_minutes * 60:
                    self.save()
                    mark = now
        except KeyboardInterrupt:
            interrupted = True  # a step is all-or-nothing: the model is as of the last completed step
        seconds = time.monotonic() - start
        validation = self.validate()
        path = self.save({"validation": validation, "loss": loss})
        return MaskTrainReport(self.step, steps, seconds, steps * self.train_cfg.batch_size / max(seconds, 1e-9),
                               interrupted, loss, validation, path, len(data.labels))


def predict_probs(model: MaskNet, x: np.ndarray, device: torch.device, bf16: bool, batch: int = 64) -> np.ndarray:
    """Probabilities (N, R, R) float32 in [0, 1] for inputs (N, 5, R, R) float32 in [0, 1] (synth.features)."""
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            xt = torch.from_numpy(x[i:i + batch]).to(device).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(xt)
            out.append(torch.sigmoid(logits.float())[:, 0].cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, *x.shape[2:]), np.float32)


def network_identity(ws: Workspace) -> tuple[str, MaskNetConfig, Path]:
    """(id, config, checkpoint folder) of the workspace's mask network; the id names its step and weights."""
    path = checkpoint.latest(net_folder(ws))
    if path is None:
        raise DoppelError("no occlusion mask network in this workspace: run `doppel mask train` first", ws.root)
    try:
        state = json.loads((path / "state.json").read_text())
        digest = hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()
    except (OSError, ValueError) as exc:
        raise DoppelError("mask checkpoint is missing or unreadable", path) from exc
    checkpoint.check_owner(state, ws.id, path)
    return f"occlusion@{state['step']}:{digest[:16]}", from_dict(MaskNetConfig, state["model"]), path
