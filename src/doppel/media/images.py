"""Still images written the one safe way: encoded in memory, then written by `fsutil.atomic_path`.

`durable=False` is for images doppel can make again (render and crop caches, overlays): the write is still
all-or-nothing, without the fsyncs that would otherwise dominate merge and extraction (about 10 ms a file).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from doppel.errors import DoppelError
from doppel.fsutil import write_bytes_atomic


def encode(image: np.ndarray, ext: str, params: list[int] | None = None) -> bytes:
    """HxW (grey), HxWx3 (RGB) or HxWx4 (RGBA) uint8 -> the bytes of a `.png` / `.jpg` file."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(ext, image, params or [])
    if not ok:
        raise DoppelError(f"could not encode an image as {ext}")
    return data.tobytes()


def write_png(path: Path, image: np.ndarray, *, compression: int = 1, durable: bool = True) -> None:
    """An image as PNG (fast compression by default), atomically."""
    write_bytes_atomic(path, encode(image, ".png", [cv2.IMWRITE_PNG_COMPRESSION, compression]), durable=durable)


def write_jpeg(path: Path, image: np.ndarray, *, quality: int = 95, durable: bool = True) -> bytes:
    """An image as JPEG, atomically; returns the bytes written (for hashing)."""
    data = encode(image, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, quality])
    write_bytes_atomic(path, data, durable=durable)
    return data
