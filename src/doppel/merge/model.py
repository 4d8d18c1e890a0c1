"""The trained model, loaded for rendering."""

from __future__ import annotations

import numpy as np
import torch

from doppel.device import bf16_supported, pick_device
from doppel.train import checkpoint
from doppel.train.data import hide_regions
from doppel.train.models import build_model
from doppel.workspace import Workspace


class SwapModel:
    """`swap(crops)` renders aligned target faces as the source identity."""

    def __init__(self, ws: Workspace, name: str = "main", device: str | None = None) -> None:
        found = checkpoint.identity(ws, name)
        self.id, self.config = found.id, found.config
        ckpt = checkpoint.load(found.path)
        self.device = pick_device(device)
        self.model = build_model(self.config)
        self.model.load_state_dict(ckpt.render_weights)
        self.model.to(self.device).eval()
        self.bf16 = bool(ckpt.state["train"].get("bf16")) and bf16_supported(self.device)
        self.step = int(ckpt.state["step"])

    @property
    def expression_dims(self) -> int:
        """Numbers in the expression code the model's decoders take (0: none)."""
        return self.config.expression_dims

    @torch.no_grad()
    def swap(self, crops: np.ndarray, expression: np.ndarray | None = None, hide: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """crops: N x R x R x 3 uint8 aligned target faces; expression: their codes (N, dims) float32
        (train/expression.py) for a model that takes them; hide: N x R x R uint8 regions blurred out of the input
        first, as training hides the eyes and mouth (all zero: nothing hidden). Returns (faces N x R x R x 3
        float32 in [0, 1], masks N x R x R float32 in [0, 1])."""
        x = torch.from_numpy(crops).to(self.device).permute(0, 3, 1, 2).float().div(255)
        if hide is not None:
            region = torch.from_numpy(hide).to(self.device)[:, None].float().div(255)
            x = hide_regions(x, region, region.flatten(1).amax(1) > 0)
        x = x.contiguous(memory_format=torch.channels_last)
        code = torch.from_numpy(expression).to(self.device) if expression is not None else None
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            face, mask = self.model.swap(x, code)  # type: ignore[operator]
        return (face.float().permute(0, 2, 3, 1).cpu().numpy(), mask.float()[:, 0].cpu().numpy())
