"""Colour transfer between a generated face and the plate, by the names DeepFaceLab users know.

Each function takes `src` (the pixels to change) and `ref` (the pixels whose colours to take), both Nx3
float32 in [0, 1] (the masked face pixels), and returns `src` transferred, Nx3 float32 (not clipped).

- rct: Reinhard: per-channel mean and standard deviation in Lab.
- lct: linear: mean and full 3x3 covariance in RGB, through the covariances' principal axes.
- mkl: Monge-Kantorovich linear: the optimal-transport linear map between the two Gaussians (mean and
       covariance match, with the least change to each colour).
- idt: iterative distribution transfer (Pitie et al.): match 1-D distributions along rotating axes until the
       whole 3-D distributions agree.
- sot: sliced optimal transport: move along many random directions at once, averaging, for a few rounds.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Transfer = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.clip(rgb, 0, 1).reshape(-1, 1, 3).astype(np.float32), cv2.COLOR_RGB2Lab).reshape(-1, 3)


def _rgb(lab: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(lab.reshape(-1, 1, 3).astype(np.float32), cv2.COLOR_Lab2RGB).reshape(-1, 3)


def rct(src: np.ndarray, ref: np.ndarray) -> np.ndarray:
    s, r = _lab(src), _lab(ref)
    out = (s - s.mean(0)) / np.maximum(s.std(0), 1e-6) * r.std(0) + r.mean(0)
    return _rgb(out)


def _sqrtm(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(c)
    return (v * np.sqrt(np.clip(w, 1e-10, None))) @ v.T


def _cov(x: np.ndarray) -> np.ndarray:
    return np.cov(x, rowvar=False) + np.eye(3) * 1e-6


def lct(src: np.ndarray, ref: np.ndarray) -> np.ndarray:
    cs, cr = _cov(src), _cov(ref)
    a = np.linalg.inv(_sqrtm(cs)) @ _sqrtm(cr)
    return ((src - src.mean(0)) @ a + ref.mean(0)).astype(np.float32)


def mkl(src: np.ndarray, ref: np.ndarray) -> np.ndarray:
    cs, cr = _cov(src), _cov(ref)
    cs_half = _sqrtm(cs)
    cs_inv_half = np.linalg.inv(cs_half)
    a = cs_inv_half @ _sqrtm(cs_half @ cr @ cs_half) @ cs_inv_half
    return ((src - src.mean(0)) @ a + ref.mean(0)).astype(np.float32)


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


TRANSFERS: dict[str, Transfer] = {"rct": rct, "lct": lct, "mkl": mkl, "idt": idt, "sot": sot}


def transfer_image(face: np.ndarray, plate: np.ndarray, mask: np.ndarray, mode: str,
                   stats: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Recolour `face` (HxWx3 float32 in [0, 1]) after `plate`'s colours inside `mask` (HxW, >0.5 = face).

    For `rct`, `stats` may give the plate's Lab (mean, std) to use instead of measuring them here (so that
    they can be smoothed over time). Returns HxWx3 float32 in [0, 1]."""
    if mode == "none":
        return face
    inside = mask > 0.5
    if inside.sum() < 16:
        return face
    if mode == "rct":
        s = _lab(face[inside])
        r_mean, r_std = stats if stats is not None else lab_stats(plate, mask)
        lab_all = _lab(face.reshape(-1, 3))
        out = (lab_all - s.mean(0)) / np.maximum(s.std(0), 1e-6) * r_std + r_mean
        return np.clip(_rgb(out).reshape(face.shape), 0, 1)
    fn = TRANSFERS[mode]
    if mode in ("lct", "mkl"):
        # Linear maps: fit on the face pixels, apply to every pixel of the crop (edges included).
        s, r = face[inside], plate[inside]
        cs, cr = _cov(s), _cov(r)
        if mode == "lct":
            a = np.linalg.inv(_sqrtm(cs)) @ _sqrtm(cr)
        else:
            h = _sqrtm(cs)
            hi = np.linalg.inv(h)
            a = hi @ _sqrtm(h @ cr @ h) @ hi
        out = (face.reshape(-1, 3) - s.mean(0)) @ a + r.mean(0)
        return np.clip(out.reshape(face.shape), 0, 1).astype(np.float32)
    result = face.copy()
    result[inside] = fn(face[inside], plate[inside])
    return np.clip(result, 0, 1)


def lab_stats(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lab mean and standard deviation of `image` (HxWx3 float in [0, 1]) inside `mask`."""
    lab = _lab(image[mask > 0.5])
    return lab.mean(0), lab.std(0)
