"""Colour transfer, one copy of each algorithm, used by training (source faces matched to target faces) and by
merge (the generated face matched to the plate), by the names DeepFaceLab users know:

- rct: Reinhard: per-channel mean and standard deviation in Lab (`reinhard_transfer`, on torch tensors, so
       training runs it batched on its device; merge runs the same function on one face).
- lct: linear: mean and full 3x3 covariance in RGB, through the covariances' principal axes.
- mkl: Monge-Kantorovich linear: the optimal-transport linear map between the two Gaussians (mean and
       covariance match, with the least change to each colour).
- idt: iterative distribution transfer (Pitie et al.): match 1-D distributions along rotating axes until the
       whole 3-D distributions agree.
- sot: sliced optimal transport: move along many random directions at once, averaging, for a few rounds.

`transfer_image` is the entry point for one face; the sample-level functions (`idt`, `sot`, `linear_map`)
take Nx3 float arrays in [0, 1].
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Literal

import numpy as np
import torch

from doppel.workspace.settings import COLOR_MODES, ColorMode

__all__ = ["COLOR_MODES", "ColorMode", "idt", "lab_stats", "linear_map", "reinhard_transfer", "sot",
           "transfer_image"]

_RGB_TO_XYZ = torch.tensor([[0.412453, 0.357580, 0.180423],
                            [0.212671, 0.715160, 0.072169],
                            [0.019334, 0.119193, 0.950227]])
_WHITE = torch.tensor([0.950456, 1.0, 1.088754])


# -- Lab and Reinhard (torch, NCHW) ---------------------------------------------------------------------------
def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB (N, 3, H, W) in [0, 1] -> CIE Lab (L in [0, 100])."""
    lin = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = torch.einsum("ij,njhw->nihw", _RGB_TO_XYZ.to(rgb), lin) / _WHITE.to(rgb).view(1, 3, 1, 1)
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-8) ** (1 / 3), 7.787 * xyz + 16 / 116)
    return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE Lab (N, 3, H, W) -> sRGB in [0, 1]."""
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


def reinhard_transfer(src: torch.Tensor, ref: torch.Tensor | None, src_mask: torch.Tensor | None = None,
                      ref_mask: torch.Tensor | None = None,
                      ref_stats: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """RCT: give `src` the Lab mean and standard deviation of `ref` (Reinhard et al., 2001). NCHW in [0, 1].
    `ref_stats` (Lab mean and std, (N, 3, 1, 1)) may stand in for `ref` (merge smooths them over time)."""
    s = rgb_to_lab(src)
    s_mean, s_std = masked_stats(s, src_mask)
    if ref_stats is None:
        assert ref is not None
        ref_stats = masked_stats(rgb_to_lab(ref), ref_mask)
    r_mean, r_std = ref_stats
    return lab_to_rgb((s - s_mean) / s_std * r_std + r_mean)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run one face's small tensor ops on one thread: for a 64x64 image, handing work to other threads costs
    more than it saves (measured: 4.7 ms a face on one thread, 94 ms on two of a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _nchw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image, np.float32)).permute(2, 0, 1)[None]


def lab_stats(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lab mean and standard deviation (3,) float32 of `image` (HxWx3 float in [0, 1]) where `mask` > 0.5."""
    with _one_thread():
        mean, std = masked_stats(rgb_to_lab(_nchw(image)),
                                 torch.from_numpy((mask > 0.5).astype(np.float32))[None, None])
    return mean.flatten().numpy(), std.flatten().numpy()


# -- linear maps and distribution transfers (numpy, Nx3 samples) ----------------------------------------------
def _sqrtm(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(c)
    return (v * np.sqrt(np.clip(w, 1e-10, None))) @ v.T


def _cov(x: np.ndarray) -> np.ndarray:
    return np.cov(x, rowvar=False) + np.eye(3) * 1e-6


def linear_map(src: np.ndarray, ref: np.ndarray, kind: Literal["lct", "mkl"]) -> np.ndarray:
    """The 3x3 matrix A of the lct or mkl transfer: (x - mean(src)) @ A + mean(ref) gives x ref's colours."""
    cs, cr = _cov(src), _cov(ref)
    if kind == "lct":
        return np.linalg.inv(_sqrtm(cs)) @ _sqrtm(cr)
    half = _sqrtm(cs)
    inv_half = np.linalg.inv(half)
    return inv_half @ _sqrtm(half @ cr @ half) @ inv_half


def _match_1d(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Histogram matching of a 1-D sample onto another, by quantiles."""
    order = np.argsort(values)
    quantiles = (np.arange(len(values)) + 0.5) / len(values)
    out = np.empty_like(values)
    out[order] = np.quantile(reference, quantiles)
    return out


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def idt(src: np.ndarray, ref: np.ndarray, rounds: int = 12, seed: int = 0) -> np.ndarray:
    """Nx3 `src` moved onto `ref`'s 3-D colour distribution. Returns Nx3 float32 (not clipped)."""
    rng = np.random.default_rng(seed)
    x = src.astype(np.float64).copy()
    for _ in range(rounds):
        rot = _random_rotation(rng)
        xp, rp = x @ rot, ref @ rot
        for axis in range(3):
            xp[:, axis] = _match_1d(xp[:, axis], rp[:, axis])
        x = xp @ rot.T
    return x.astype(np.float32)


def sot(src: np.ndarray, ref: np.ndarray, rounds: int = 10, directions: int = 16, seed: int = 0) -> np.ndarray:
    """Nx3 `src` moved onto `ref`'s distribution by sliced optimal transport. Nx3 float32 (not clipped)."""
    rng = np.random.default_rng(seed)
    x = src.astype(np.float64).copy()
    for _ in range(rounds):
        d = rng.normal(size=(directions, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        shift = np.zeros_like(x)
        for v in d:
            proj = x @ v
            shift += np.outer(_match_1d(proj, ref @ v) - proj, v)
        x += shift * (3 / directions)
    return x.astype(np.float32)


_DISTRIBUTION: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {"idt": idt, "sot": sot}


def transfer_image(face: np.ndarray, plate: np.ndarray, mask: np.ndarray, mode: ColorMode,
                   stats: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Recolour `face` (HxWx3 float32 in [0, 1]) after `plate`'s colours (HxWx3, same size) inside `mask`
    (HxW, > 0.5 = face). Statistics are measured inside the mask; rct and the linear maps then apply to every
    pixel of the crop (edges included), idt and sot to the masked pixels. For `rct`, `stats` may give the
    plate's Lab (mean, std) instead of measuring them here. Returns HxWx3 float32 in [0, 1]."""
    if mode == "none":
        return face
    inside = mask > 0.5
    if inside.sum() < 16:
        return face
    if mode == "rct":
        m = torch.from_numpy(inside.astype(np.float32))[None, None]
        ref_stats = None
        if stats is not None:
            ref_stats = (torch.as_tensor(stats[0], dtype=torch.float32).view(1, 3, 1, 1),
                         torch.as_tensor(stats[1], dtype=torch.float32).view(1, 3, 1, 1))
        with _one_thread():
            out = reinhard_transfer(_nchw(face), _nchw(plate), m, m, ref_stats)
        return out[0].permute(1, 2, 0).numpy()
    s, r = face[inside], plate[inside]
    if mode in ("lct", "mkl"):
        a = linear_map(s, r, mode)
        out = (face.reshape(-1, 3) - s.mean(0)) @ a + r.mean(0)
        return np.clip(out.reshape(face.shape), 0, 1).astype(np.float32)
    result = face.copy()
    result[inside] = _DISTRIBUTION[mode](s, r)
    return np.clip(result, 0, 1)
