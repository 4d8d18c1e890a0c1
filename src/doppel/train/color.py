"""Colour spaces and statistics transfer on NCHW tensors in [0, 1] (used by augmentation and merging)."""

from __future__ import annotations

import torch

_RGB_TO_XYZ = torch.tensor([[0.412453, 0.357580, 0.180423],
                            [0.212671, 0.715160, 0.072169],
                            [0.019334, 0.119193, 0.950227]])
_WHITE = torch.tensor([0.950456, 1.0, 1.088754])


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB (N, 3, H, W) in [0, 1] -> CIE Lab (L in [0, 100])."""
    lin = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = torch.einsum("ij,njhw->nihw", _RGB_TO_XYZ.to(rgb), lin) / _WHITE.to(rgb).view(1, 3, 1, 1)
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-8) ** (1 / 3), 7.787 * xyz + 16 / 116)
    return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    fy = (lab[:, 0] + 16) / 116
    fx = fy + lab[:, 1] / 500
    fz = fy - lab[:, 2] / 200
    f = torch.stack([fx, fy, fz], 1)
    xyz = torch.where(f > 0.206893, f ** 3, (f - 16 / 116) / 7.787) * _WHITE.to(lab).view(1, 3, 1, 1)
    lin = torch.einsum("ij,njhw->nihw", torch.linalg.inv(_RGB_TO_XYZ).to(lab), xyz).clamp(0, 1)
    return torch.where(lin > 0.0031308, 1.055 * lin.clamp_min(1e-8) ** (1 / 2.4) - 0.055, 12.92 * lin).clamp(0, 1)


def masked_stats(x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and standard deviation (N, C, 1, 1) inside `mask` (N, 1, H, W)."""
    if mask is None:
        return x.mean((2, 3), keepdim=True), x.std((2, 3), keepdim=True)
    w = mask / mask.sum((2, 3), keepdim=True).clamp_min(1e-6)
    mean = (x * w).sum((2, 3), keepdim=True)
    var = (((x - mean) ** 2) * w).sum((2, 3), keepdim=True)
    return mean, var.clamp_min(1e-8).sqrt()


def reinhard_transfer(src: torch.Tensor, ref: torch.Tensor, src_mask: torch.Tensor | None = None,
                      ref_mask: torch.Tensor | None = None) -> torch.Tensor:
    """RCT: give `src` the Lab mean and standard deviation of `ref` (Reinhard et al., 2001). NCHW in [0, 1]."""
    s, r = rgb_to_lab(src), rgb_to_lab(ref)
    s_mean, s_std = masked_stats(s, src_mask)
    r_mean, r_std = masked_stats(r, ref_mask)
    return lab_to_rgb((s - s_mean) / s_std * r_std + r_mean)
