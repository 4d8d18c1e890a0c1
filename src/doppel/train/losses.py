"""Losses: a registry of named terms, each weighted by a field of TrainConfig. Add a term by registering it."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from doppel.train.config import TrainConfig

LossFn = Callable[[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]], torch.Tensor]
_TERMS: dict[str, tuple[str, LossFn]] = {}


def register_loss(name: str, weight_field: str) -> Callable[[LossFn], LossFn]:
    def wrap(fn: LossFn) -> LossFn:
        _TERMS[name] = (weight_field, fn)
        return fn

    return wrap


def _gaussian_window(size: int, sigma: float, channels: int, like: torch.Tensor) -> torch.Tensor:
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(x: torch.Tensor, y: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean structural similarity per sample (N,), for NCHW images in [0, 1]."""
    c = x.shape[1]
    w = _gaussian_window(size, sigma, c, x)
    mu_x = F.conv2d(x, w, groups=c)
    mu_y = F.conv2d(y, w, groups=c)
    sxx = F.conv2d(x * x, w, groups=c) - mu_x**2
    syy = F.conv2d(y * y, w, groups=c) - mu_y**2
    sxy = F.conv2d(x * y, w, groups=c) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.mean((1, 2, 3))


def masked_ssim(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """SSIM of the masked face (background blacked out in both), per sample."""
    return ssim(pred * mask, target * mask)


@register_loss("dssim", "weight_dssim")
def _dssim(face: torch.Tensor, mask_pred: torch.Tensor, b: dict[str, torch.Tensor]) -> torch.Tensor:
    return ((1 - masked_ssim(face, b["target"], b["mask"])) / 2).mean()


@register_loss("pixel", "weight_pixel")
def _pixel(face: torch.Tensor, mask_pred: torch.Tensor, b: dict[str, torch.Tensor]) -> torch.Tensor:
    return (((face - b["target"]) ** 2) * b["mask"]).mean()


@register_loss("mask", "weight_mask")
def _mask(face: torch.Tensor, mask_pred: torch.Tensor, b: dict[str, torch.Tensor]) -> torch.Tensor:
    return ((mask_pred - b["mask"]) ** 2).mean()


@register_loss("eyes_mouth", "weight_eyes_mouth")
def _eyes_mouth(face: torch.Tensor, mask_pred: torch.Tensor, b: dict[str, torch.Tensor]) -> torch.Tensor:
    return ((face - b["target"]).abs() * b["eyes_mouth"]).mean()


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Band-pass levels of NCHW images, finest first: each level minus its blurred, half-size version brought
    back up (the last entry is the remaining low-pass image)."""
    out = []
    for _ in range(levels):
        low = F.avg_pool2d(x, 2)
        out.append(x - F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False))
        x = low
    out.append(x)
    return out


@register_loss("laplacian", "weight_laplacian")
def _laplacian(face: torch.Tensor, mask_pred: torch.Tensor, b: dict[str, torch.Tensor]) -> torch.Tensor:
    """Masked L1 over the three finest Laplacian-pyramid bands: rewards the mid-frequency structure that the
    pixel and SSIM terms let a blurry face skip (each band's mean error is scaled back up by 2^level, so
    coarser bands, with fewer pixels, count as much as fine ones)."""
    mask = b["mask"]
    total = face.new_zeros(())
    bands_f, bands_t = laplacian_pyramid(face * mask, 3), laplacian_pyramid(b["target"] * mask, 3)
    for level, (pf, pt) in enumerate(zip(bands_f[:-1], bands_t[:-1], strict=True)):
        total = total + (pf - pt).abs().mean() * (2**level)
    return total


def total_loss(out: dict[str, torch.Tensor], src: dict[str, torch.Tensor], dst: dict[str, torch.Tensor],
               cfg: TrainConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum over both identities; also returns each term's value (unweighted, summed over both)."""
    total = out["src"].new_zeros(())
    parts: dict[str, float] = {}
    for name, (weight_field, fn) in _TERMS.items():
        weight = float(getattr(cfg, weight_field))
        if weight == 0:
            continue
        value = fn(out["src"].float(), out["src_mask"].float(), src) + fn(
            out["dst"].float(), out["dst_mask"].float(), dst)
        total = total + weight * value
        parts[name] = value.detach()  # type: ignore[assignment]  # made floats below, in one sync
    parts = {k: float(v) for k, v in parts.items()}
    return total, parts
