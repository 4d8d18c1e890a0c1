"""Preview grids a person can look at while a model trains."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from doppel.fsutil import atomic_path

COLUMNS = ("source", "source->source", "target", "target->target", "target->source", "swap mask")


@torch.no_grad()
def preview_grid(model: torch.nn.Module, src: torch.Tensor, dst: torch.Tensor,
                 src_expression: torch.Tensor | None = None, dst_expression: torch.Tensor | None = None
                 ) -> np.ndarray:
    """Rows of [source, its reconstruction, target, its reconstruction, the swap, the swap's mask].

    src, dst: (N, 3, R, R) float in [0, 1]; their expression codes (N, dims) for a model that has them.
    Returns an HxWx3 uint8 image with a header row of labels."""
    out = model(src, dst, src_expression, dst_expression)
    swap, swap_mask = model.swap(dst, dst_expression)  # type: ignore[operator]
    cols = [src, out["src"], dst, out["dst"], swap, swap_mask.expand(-1, 3, -1, -1)]
    rows = [torch.cat([c[i].float() for c in cols], 2) for i in range(src.shape[0])]
    grid = (torch.cat(rows, 1).clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
    res = src.shape[-1]
    header = Image.new("RGB", (grid.shape[1], 14), (32, 32, 32))
    draw = ImageDraw.Draw(header)
    for i, label in enumerate(COLUMNS):
        draw.text((i * res + 3, 1), label[: max(4, res // 6)], fill=(230, 230, 230))
    return np.vstack([np.asarray(header), grid])


def save_png(path: Path, image: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
