"""The trained model, loaded for rendering."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch

from doppel.errors import DoppelError
from doppel.train import checkpoint
from doppel.train.config import ModelConfig, from_dict
from doppel.train.loop import bf16_supported, model_folder, pick_device
from doppel.train.models import build_model
from doppel.workspace import Workspace


def model_identity(ws: Workspace, name: str = "main") -> tuple[str, ModelConfig]:
    """(id, config) of the workspace's current model, without loading its weights: the id names the model,
    its step and its weights' hash, and keys the render cache."""
    path = checkpoint.latest(model_folder(ws, name))
    if path is None:
        raise DoppelError(f"no trained model {name!r} in this workspace: run `doppel train` first", ws.root)
    try:
        state = json.loads((path / "state.json").read_text())
        digest = hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()
    except (OSError, ValueError) as exc:
        raise DoppelError("checkpoint is missing or unreadable", path) from exc
    if state.get("workspace_id") != ws.id:
        raise DoppelError("this model was trained for another workspace", path)
    return f"{name}@{state['step']}:{digest[:16]}", from_dict(ModelConfig, state["model"])


class SwapModel:
    """`swap(crops)` renders aligned target faces as the source identity."""

    def __init__(self, ws: Workspace, name: str = "main", device: str | None = None) -> None:
        self.id, self.config = model_identity(ws, name)
        path = checkpoint.latest(model_folder(ws, name))
        assert path is not None
        ckpt = checkpoint.load(path)
        self.device = pick_device(device)
        self.model = build_model(self.config)
        self.model.load_state_dict(ckpt.model)
        self.model.to(self.device).eval()
        self.bf16 = bool(ckpt.state["train"].get("bf16")) and bf16_supported(self.device)
        self.step = int(ckpt.state["step"])

    @torch.no_grad()
    def swap(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """crops: N x R x R x 3 uint8 aligned target faces. Returns (faces N x R x R x 3 float32 in [0, 1],
        masks N x R x R float32 in [0, 1])."""
        x = torch.from_numpy(crops).to(self.device).permute(0, 3, 1, 2).float().div(255)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            face, mask = self.model.swap(x)  # type: ignore[operator]
        return (face.float().permute(0, 2, 3, 1).cpu().numpy(), mask.float()[:, 0].cpu().numpy())
